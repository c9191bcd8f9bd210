"""Shared by the service modules: constants, selections (dimensions and filters of cases), the window
of dates and the as-of instant, period grids."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import polars as pl

from .. import schema
from ..errors import ConfigError, suggest
from ..kpis._periods import parse_date, parse_period, period_end, trunc

DONE = ("solved", "closed")
REQUESTER_WAIT = ("new", "open", "on_hold")
AGENT_WAIT = ("pending",)
AGE_BUCKETS = (("0-1d", 0, 1), ("1-3d", 1, 3), ("3-7d", 3, 7), ("7-30d", 7, 30), ("30d+", 30, None))
TIME_METRICS = ("first_response_hours", "first_resolution_hours", "full_resolution_hours",
                "requester_wait_hours", "agent_wait_hours")
SLA_METRICS = ("sla", "first_response", "resolution")
TRUNC = {"day": "1d", "week": "1w", "month": "1mo", "quarter": "1q", "year": "1y"}
ALIASES = {"channel": "case_channel", "category": "case_category", "team_id": "team", "agent_id": "agent"}
CASE_COLUMNS = ("case_id", "account_id", "created_at", "channel", "priority", "category", "team_id", "agent_id",
                "status", "closed_at")


def selection(team: str = "", channel: str = "", priority: str = "", agent: str = "", category: str = "") -> dict:
    """Filters from notebook parameters; empty values mean all (``{"team": "T11"}``)."""
    given = {"team": team, "case_channel": channel, "priority": priority, "agent": agent, "case_category": category}
    return {k: v for k, v in given.items() if v not in ("", None, [], ())}


def catalog():
    """The KPI catalog (its dimensions say how cases reach a team, a region...)."""
    from ..kpis.catalog import default_catalog

    return default_catalog()


def dim_name(name: str) -> str:
    """The catalog dimension a name means for cases (``channel`` is ``case_channel`` here)."""
    name = ALIASES.get(name, name)
    cat = catalog()
    dim = cat.dimension(name)
    if "cases" not in dim.paths:
        usable = [d for d, x in cat.dimensions.items() if "cases" in x.paths]
        raise ConfigError(f"Cases cannot be grouped or filtered by {name}. Use one of: {', '.join(usable)}.")
    return name


def dims_of(by) -> list[str]:
    """The dimensions of ``by`` (a name or a list; empty: none), checked."""
    if by is None or by == "":
        return []
    items = [by] if isinstance(by, str) else list(by)
    return list(dict.fromkeys(dim_name(b) for b in items))


def filters_of(filters) -> dict[str, tuple]:
    """{dimension: values}; '' or [] means no filter on that dimension; None matches empty values."""
    out: dict[str, tuple] = {}
    if not filters:
        return out
    if not isinstance(filters, Mapping):
        raise ConfigError(f"filters must be a mapping {{dimension: value or list}}, not {filters!r}.")
    cat = catalog()
    for d, v in filters.items():
        values = tuple(v) if isinstance(v, list | tuple | set | frozenset) else (v,)
        values = tuple(x for x in values if x != "")
        if not values:
            continue
        name = dim_name(d)
        allowed = cat.dimension(name).values
        for x in values:
            if x is not None and not isinstance(x, str):
                raise ConfigError(f"Filter {d}: value {x!r} is not a text value.")
            if allowed and x is not None and x not in allowed:
                raise ConfigError(f"Filter {d}: {x!r} is not a {name}.{suggest(x, allowed)} "
                                  f"Values: {', '.join(allowed)}.")
        out[name] = values
    return out


def dim_expr(name: str) -> tuple[pl.Expr, tuple[str, str, str, str] | None]:
    """The expression of a dimension on the case frame, and the join it needs (table, key, column, via)."""
    path = catalog().dimension(name).paths["cases"]
    if path.via is None:
        return pl.col(path.column), None
    key = path.target_key or schema.table(path.target).primary_key[0]
    return pl.col(f"_{path.target}_{path.column}"), (path.target, key, path.column, path.via)


def attach_dims(crm, cases: pl.DataFrame, dims: Sequence[str]) -> pl.DataFrame:
    """Add one column per dimension (named after it) to a frame of cases."""
    joins = {}
    exprs = []
    for d in dims:
        expr, join = dim_expr(d)
        exprs.append(expr.alias(d))
        if join is not None:
            joins.setdefault((join[0], join[1], join[3]), []).append(join[2])
    for (table, key, via), cols in joins.items():
        right = crm.table(table).select(pl.col(key).alias(via), *[pl.col(c).alias(f"_{table}_{c}") for c in cols])
        cases = cases.join(right.collect(), on=via, how="left")
    return cases.with_columns(exprs) if exprs else cases


def apply_filters(frame: pl.DataFrame, filters: dict[str, tuple]) -> pl.DataFrame:
    """Keep the rows whose dimension columns hold one of the filter values (None: empty values)."""
    for d, values in filters.items():
        keep = [v for v in values if v is not None]
        cond = pl.col(d).is_in(keep) if keep else pl.lit(False)
        if None in values:
            cond = cond | pl.col(d).is_null()
        frame = frame.filter(cond)
    return frame


@dataclass(frozen=True)
class Window:
    """The dates asked (``lo``..``hi``, inclusive) and the as-of instant ``T``."""

    lo: dt.date | None
    hi: dt.date | None
    T: dt.datetime | None


def data_range(crm) -> tuple[dt.datetime | None, dt.datetime | None]:
    """The first and the latest timestamp of cases and case events (None, None without any)."""
    a = crm.cases.select(pl.col("created_at").min().alias("lo"), pl.col("created_at").max().alias("hi"))
    b = crm.case_events.select(pl.col("occurred_at").min().alias("lo"), pl.col("occurred_at").max().alias("hi"))
    both = pl.concat(pl.collect_all([a, b]))
    return both["lo"].min(), both["hi"].max()


def period_of(crm, period):
    """``period`` with empty ends filled from the data: ``("", "2025-06-30")`` starts at the first case;
    ``("", "")`` (or "") is the whole range, None. Anything else as :func:`crmlib.kpis.evaluate` reads it."""
    if isinstance(period, tuple | list) and len(period) == 2 and "" in period and period != ("", ""):
        return _filled(period, *data_range(crm))
    return _filled(period, None, None)


def _filled(period, first: dt.datetime | None, latest: dt.datetime | None):
    if period in ("", None) or (isinstance(period, tuple | list) and tuple(period) == ("", "")):
        return None
    if isinstance(period, tuple | list) and len(period) == 2 and "" in period:
        if first is None:
            return None
        return (period[0] or first.date(), period[1] or latest.date())
    return period


def window_of(crm, period=None, as_of=None) -> Window:
    """The dates of ``period`` (default: the data's range) and the as-of instant: ``as_of`` (a date means
    its end), else the data's latest timestamp or the end of the period, whichever is earlier."""
    first, latest = data_range(crm)
    p = parse_period(_filled(period, first, latest))
    if as_of is not None:
        if isinstance(as_of, dt.datetime):
            T = as_of
        else:
            day = as_of if isinstance(as_of, dt.date) else parse_date(as_of, end=True, what="as_of")
            T = dt.datetime.combine(day + dt.timedelta(days=1), dt.time())
    elif latest is None:
        T = None if p is None else dt.datetime.combine(p[1] + dt.timedelta(days=1), dt.time())
    else:
        T = latest if p is None else min(latest, dt.datetime.combine(p[1] + dt.timedelta(days=1), dt.time()))
    if p is not None:
        return Window(p[0], p[1], T)
    lo = first.date() if first is not None else None
    hi = (T - dt.timedelta(microseconds=1)).date() if T is not None else None
    return Window(lo, hi, T)


def period_col(col: str, grain: str) -> pl.Expr:
    """The first day of the grain period holding the timestamp ``col``, as ``period``."""
    return pl.col(col).dt.truncate(TRUNC[grain]).cast(pl.Date).alias("period")


def period_starts(lo: dt.date, hi: dt.date, grain: str) -> pl.Series:
    return pl.date_range(trunc(lo, grain), hi, TRUNC[grain], eager=True).alias("period")


def in_window(col: str, w: Window) -> pl.Expr:
    """``col`` falls on one of the window's days (false where it is empty)."""
    lo = dt.datetime.combine(w.lo, dt.time())
    hi = dt.datetime.combine(w.hi + dt.timedelta(days=1), dt.time())
    return (pl.col(col) >= lo) & (pl.col(col) < hi)


def grid(facts: pl.DataFrame, w: Window, grain: str, dims: list[str]) -> pl.DataFrame:
    """Every period of the window × every combination of dimension values found in ``facts``."""
    periods = pl.DataFrame(period_starts(w.lo, w.hi, grain)) if w.lo is not None else pl.DataFrame(
        schema={"period": pl.Date})
    if not dims:
        return periods
    return periods.join(facts.select(dims).unique(), how="cross")


def complete(grid: pl.DataFrame, got: pl.DataFrame, dims: list[str], zeros: Sequence[str]) -> pl.DataFrame:
    """``got`` on the whole grid; the columns of ``zeros`` (counts) are 0 where nothing happened."""
    out = grid.join(got, on=["period", *dims], how="left", nulls_equal=True)
    return out.with_columns(pl.col(c).fill_null(0) for c in zeros).sort(["period", *dims], nulls_last=True)


def next_start(start: dt.date, grain: str) -> dt.date:
    return period_end(start, grain) + dt.timedelta(days=1)
