"""The KPI engine: KPIs × dimensions × grain × period × filters, with comparisons and targets.

>>> import crmlib
>>> crm = crmlib.open()                                                    # doctest: +SKIP
>>> crm.kpis(["revenue", "win_rate"], by="team", grain="month",            # doctest: +SKIP
...          period=("2025-01-01", "2025-06-30"), compare="previous_year")

One call, :func:`evaluate`, returns a tidy polars DataFrame, one row per KPI × period × group:

``kpi, period, <dimensions…>, value, comparison, delta, delta_pct, target, attainment, gap, status,
projection, days, complete``

Semantics (the KPI spec's are in :mod:`crmlib.kpis.spec`):

* **Periods.** ``period`` is a start and end date, inclusive (dates or strings ``YYYY-MM-DD``,
  ``YYYY-MM``, ``YYYY``, ``YYYY-Qn``; ``"2025-01:2025-06"`` also works; None = from the first to the
  last event of the KPIs' tables). Every ``grain`` period (day, week from Monday, month, quarter, year)
  that meets the range gets a row, labelled by its first day (``period``). A period cut by the range,
  or by the as-of date, covers only its days inside: ``days`` says how many, ``complete`` whether that
  is the whole grain period. Periods starting after the as-of date have no value (null).
* **As of.** ``as_of`` ends the data: events after it are not counted, snapshots are taken at it in the
  last period, conversion cohorts whose window has not elapsed by it are null, and a partial period's
  ``projection`` extrapolates to the period end from it. Default: the latest event date of the KPIs'
  tables, whatever the filters: the creation of their rows and the dates the KPIs count them by (the
  close date of a won deal; a planned date, such as an open deal's expected close, is no event).
* **Groups.** ``by`` names dimensions of ``dimensions.yaml``; a fact row reaches a dimension through
  its path (a column of its own, or a join on a foreign key). Rows whose dimension value is empty form
  their own group (null). The groups shown are the combinations of values that occur in the KPI's fact
  table(s), over all time, after the filters, each with a row for every period: **empty groups appear**
  rather than missing rows. An external KPI's groups are those its provider returns and, when every
  ``by`` dimension is filtered, the combinations of the filtered values. An empty group's value is 0
  for a measure that adds up (sum, count, distinct count: no rows means none; a rep who sold nothing has
  revenue 0 and attainment 0, off track, not unknown), and null for averages, medians, minima, maxima,
  and for ratios and derived divisions whose denominator is 0 (a team with no closed deal has no win
  rate).
* **Filters.** ``filters={dimension: value or list}`` keeps rows whose dimension value is one of the
  values (None matches empty values).
* **Comparison.** ``compare="previous_period"``: the previous grain period; ``"previous_year"``: the
  same period a year earlier (weeks: 52 weeks earlier). A partial period is compared like for like:
  the same number of days from the start of the earlier period (June 1-15 with May 1-15). ``delta`` =
  value − comparison; ``delta_pct`` = delta / |comparison| (null when the comparison is 0).
* **Money** is converted row by row to the base currency (``CRMLIB_BASE_CURRENCY``, default CNY) at the
  latest ``fx_rates`` rate on or before the row's date (snapshots: the as-of day of each period). A row
  whose currency has no such rate raises :class:`~crmlib.errors.CurrencyError`; nothing is added across
  currencies silently.
* **Targets** (``targets=True``, or a CSV/YAML file of extra targets): see :mod:`crmlib.kpis.targets`.
  ``attainment`` = value / target (lower-is-better KPIs: target / value); ``gap`` = how far the value is
  short of the target, in the KPI's unit (target − value; lower-is-better: value − target), negative when
  the target is beaten; ``status`` compares the run-rate ``projection`` with the target: attainment of
  the projection >= 1 ``on_track``, >= 0.9 ``at_risk``, else ``off_track``; null without target.
* **Projection**: the run-rate at the end of the period: a flow KPI (sums and counts) is extrapolated,
  value / days × days of the whole grain period; a cumulative KPI adds the extrapolated rest of its
  period; derived KPIs apply their expression to the projections of their parts; other KPIs (ratios,
  averages, snapshots, conversion rates) project as their value. Complete periods: projection = value.
* **Backends.** ``backend="polars"`` or ``"duckdb"`` run the same queries and give the same results;
  ``"auto"`` (the default) is ``"duckdb"`` for a DuckDB file, else ``"polars"`` (see
  :mod:`crmlib.kpis.backends`). Each fact table is read by one query per time column
  (all its measures together, each filter inside the aggregation), one per snapshot and one for its
  groups; the queries are collected together, then KPIs are combined on the small aggregated frames.
  The SQL backend's queries are text, compiled once per request and file and reused (:data:`PLANS`);
  each call runs them on the data.

External KPIs are computed by the function their ``provider`` names (``"module:function"``), called as
``provider(crm, by=[…], grain=…, period=(start, end), filters={…})`` and expected to return a frame
``period, <dimensions…>, value``.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from .. import config
from ..errors import ConfigError, suggest
from . import _queries as q
from ._assemble import Assembler, kpi_kind, tables_of
from ._external import external, provider
from ._money import check_currencies, dense_rates
from ._periods import (
    ALL,
    COMPARES,
    Period,
    Windows,
    check_grain,
    comparison_window,
    cumulative_start,
    parse_as_of,
    parse_period,
    periods,
)
from ._plan import Needs, check_measure, periods_frame, stats_items
from ._sql import RATES
from .backends import backend_for
from .spec import ConversionKpi, CumulativeKpi, ExternalKpi, RatioKpi, SimpleKpi

RESERVED = ("kpi", "period", "value", "comparison", "delta", "delta_pct", "target", "attainment", "gap",
            "status", "projection", "days", "complete")


@dataclass(frozen=True)
class Request:
    catalog: object
    kpis: tuple[str, ...]
    by: tuple[str, ...]
    grain: str
    period: tuple[dt.date, dt.date] | None
    filters: Mapping[str, tuple]
    compare: str | None
    targets: bool | Path
    as_of: dt.date | None

    @property
    def closure(self) -> tuple[str, ...]:
        """The requested KPIs and every KPI they use, dependencies first."""
        return tuple(dict.fromkeys(d for n in self.kpis for d in self.catalog.dependencies(n)))


def evaluate(
    crm,
    kpis: str | Sequence[str],
    by: str | Sequence[str] = (),
    grain: str = "month",
    period=None,
    filters: Mapping[str, object] | None = None,
    compare: str | None = None,
    targets: bool | str | os.PathLike = True,
    backend: str = "auto",
    catalog=None,
    as_of=None,
) -> pl.DataFrame:
    """KPI values per period and group, with comparison and targets (see the module docstring).

    Parameters
    ----------
    crm : crmlib.sources.Crm
        The data (``crmlib.open(...)``).
    kpis : str or list of str
        Catalog KPI names (``crmlib kpis list``).
    by : str or list of str
        Dimensions to group by (``region``, ``team``, ``user``, …), allowed for every KPI asked.
    grain : {"day", "week", "month", "quarter", "year"}
    period : (start, end), "start:end", "2025", or None for the data's whole range.
    filters : {dimension: value or list of values}
    compare : None, "previous_period" or "previous_year"
    targets : bool or path
        Join targets of the ``targets`` table (True), none (False), or those plus a CSV/YAML file.
    backend : "auto" (duckdb for a DuckDB file, else polars), "polars" or "duckdb"
    catalog : Catalog, default ``default_catalog()``
    as_of : date, default the latest event date of the KPIs' data.

    Returns
    -------
    polars.DataFrame sorted by KPI (in the order asked), period and dimension values.
    """
    req = resolve(kpis, by, grain, period, filters, compare, targets, catalog, as_of)
    with backend_for(crm, backend) as bk:
        return run(crm, bk, req)


# --------------------------------------------------------------------------------------------
# Checking the request
# --------------------------------------------------------------------------------------------
def _names(value, what: str) -> tuple[str, ...]:
    if value is None:
        return ()
    items = (value,) if isinstance(value, str) else tuple(value)
    for v in items:
        if not isinstance(v, str):
            raise ConfigError(f"{what} must be names (strings), not {v!r}.")
    return tuple(dict.fromkeys(items))


def resolve(kpis, by=(), grain="month", period=None, filters=None, compare=None, targets=True, catalog=None,
            as_of=None, *, internal: bool = False) -> Request:
    """Check every argument; raise :class:`ConfigError` saying what is wrong and what would be right."""
    if catalog is None:
        from .catalog import default_catalog

        catalog = default_catalog()
    names = _names(kpis, "kpis")
    if not names:
        raise ConfigError("Give at least one KPI name, e.g. kpis=['revenue']. `crmlib kpis list` shows them.")
    for n in names:
        catalog.get(n)
    dims = _names(by, "by")
    for d in dims:
        catalog.dimension(d)
        if d in RESERVED:
            raise ConfigError(f"Dimension {d!r} has the name of a result column; rename it in the catalog.")
    flt: dict[str, tuple] = {}
    if filters:
        if not isinstance(filters, Mapping):
            raise ConfigError(f"filters must be a mapping {{dimension: value or list}}, not {filters!r}.")
        for d, v in filters.items():
            dim = catalog.dimension(d)
            values = tuple(v) if isinstance(v, list | tuple | set | frozenset) else (v,)
            if not values:
                raise ConfigError(f"Filter {d}: give at least one value.")
            allowed = dim.values
            for x in values:
                if x is not None and not isinstance(x, str):
                    raise ConfigError(f"Filter {d}: value {x!r} is not a text value.")
                if allowed and x is not None and x not in allowed:
                    raise ConfigError(
                        f"Filter {d}: {x!r} is not a {d}.{suggest(x, allowed)} Values: {', '.join(allowed)}."
                    )
            flt[d] = values
    for n in names:
        k = catalog.get(n)
        for d in (*dims, *flt):
            if d not in k.dimensions:
                how = "grouped" if d in dims else "filtered"
                tables = ", ".join(t.replace("external:", "") for t in tables_of(catalog, n))
                raise ConfigError(
                    f"KPI {n} cannot be {how} by {d}: its data ({tables}) has no path to {d}. "
                    f"Allowed dimensions for {n}: {', '.join(k.dimensions) or 'none'}."
                )
    if not (internal and grain == ALL):
        grain = check_grain(grain)
    if compare is not None and compare not in COMPARES:
        raise ConfigError(
            f"Unknown comparison {compare!r}.{suggest(str(compare), COMPARES)} "
            f"Use None, {' or '.join(COMPARES)}."
        )
    if isinstance(targets, str | os.PathLike):
        targets = Path(targets)
    elif not isinstance(targets, bool):
        raise ConfigError(f"targets must be True, False or the path of a targets file, not {targets!r}.")
    return Request(catalog, names, dims, grain, parse_period(period), flt, compare, targets, parse_as_of(as_of))


# --------------------------------------------------------------------------------------------
# Running it
# --------------------------------------------------------------------------------------------
def pinned_groups(req: Request, keys: list[str]) -> list[pl.DataFrame]:
    """``[the combinations of the filters' values]`` when every ``by`` dimension is filtered, else ``[]``:
    groups an external KPI has even where its provider returns no row (a period without data)."""
    if not req.by or any(b not in req.filters for b in req.by):
        return []
    frame = pl.DataFrame({keys[0]: list(req.filters[req.by[0]])}, schema={keys[0]: pl.String})
    for b, k in zip(req.by[1:], keys[1:], strict=True):
        frame = frame.join(pl.DataFrame({k: list(req.filters[b])}, schema={k: pl.String}), how="cross")
    return [frame]


def run(crm, bk, req: Request) -> pl.DataFrame:
    """Evaluate a checked request on a backend (see :func:`evaluate`)."""
    from . import targets as tg

    cat = req.catalog
    closure = req.closure
    kpis = {n: cat.get(n) for n in closure}
    ctx = q.Ctx(bk, cat, req.by, req.filters)
    money = any(cat.measure(m).money for k in kpis.values() for m in k.measure_names)
    level = tg.target_level(req.by, req.filters) if req.targets is not False and req.grain != ALL else None
    providers = {n: provider(k) for n, k in kpis.items() if isinstance(k, ExternalKpi)}

    # 1. small things first: the data's dates, exchange rates, targets (where the data is: see
    #    Backend.small; a polars evaluation of a DuckDB file asks DuckDB for its first and last dates)
    sbk = bk.small()
    sctx = q.Ctx(sbk, cat, req.by, req.filters)
    stats_needed = req.as_of is None or req.period is None
    skey = _key(sbk, req, "first", stats_needed, req.period is None, money, level)
    first = PLANS.get(skey, cat)
    if first is None:
        first = {}
        if stats_needed:
            for table, items in stats_items(cat, closure).items():
                first[f"stats:{table}"] = q.stats_query(sctx, table, items, first=req.period is None)
        if money:
            first["fx"] = sbk.read("fx_rates", ["date", "currency", "rate_to_base"])
        if level is not None:
            first["targets"] = tg.targets_query(sbk, req.kpis, level)
        PLANS.put(skey, cat, first)
    got = dict(zip(first, sbk.collect_all(list(first.values())), strict=True))
    stats = [f for key, f in got.items() if key.startswith("stats:")]
    lo_data = min((s["lo"][0] for s in stats if s["lo"][0] is not None), default=None)
    hi_data = max((s["hi"][0] for s in stats if s["hi"][0] is not None), default=None)
    if req.period is None:
        if lo_data is None:
            raise ConfigError(f"There is no data for {', '.join(req.kpis)}: give period=(start, end).")
        start, end = lo_data, hi_data
    else:
        start, end = req.period
    as_of = req.as_of or hi_data or end

    # 2. periods, the windows to compute (covered parts, comparisons, cumulative windows) and the
    #    queries: a pure function of the request, its dates and the file's schema, compiled once
    #    (the SQL backend's queries are text: see PLANS) and run on every call
    pkey = _key(bk, req, "plan", start, end, as_of)
    plan = PLANS.get(pkey, cat)
    if plan is None:
        plan = _windows(kpis, req, start, end, as_of)
    if money and plan.win.ids:
        rates = dense_rates(got["fx"], plan.lo_all, plan.hi_all, config.base_currency())
        if bk.sql:
            bk.register(RATES, rates)  # the queries name it (crmlib.kpis._sql)
        else:
            ctx.rates = bk.frame(rates)
    if plan.queries is None:
        plan.queries = _queries(ctx, kpis, plan, closure)
        plan.diagnostics, plan.shared = ctx.diagnostics, getattr(bk, "shared", None)
        PLANS.put(pkey, cat, plan)
    else:
        ctx.diagnostics = plan.diagnostics
        bk.shared = plan.shared
    ps, win, cur, cmp, base, needs = plan.ps, plan.win, plan.cur, plan.cmp, plan.base, plan.needs

    # 3. the queries, collected together
    results = dict(zip(plan.queries, bk.collect_all(list(plan.queries.values())), strict=True))
    check_currencies(bk, ctx, results)

    # 4. KPI values on grids of windows x groups
    asm = Assembler(cat, ctx.keys, req.by, as_of)
    asm.passes = [f for key, f in results.items() if key.startswith(("flow:", "snap:"))]
    asm.conversions = {key[5:]: f for key, f in results.items() if key.startswith("conv:")}
    asm.domains = {key[7:]: f for key, f in results.items() if key.startswith("domain:")}
    for n, func in providers.items():
        asm.externals[n] = external(crm, func, kpis[n], req, win, base, ctx.keys)
        asm.domains[f"external:{n}"] = pl.concat([asm.externals[n].select(ctx.keys), *pinned_groups(req, ctx.keys)],
                                                 how="vertical_relaxed").unique()
    asm.windows = win.frame()
    observed = [(w, p) for w, p in zip(cur, ps, strict=True) if w is not None]
    asm.factors = pl.DataFrame({"wid": [w for w, _ in observed], "_f": [p.period_days / p.days for _, p in observed]},
                               schema={"wid": pl.Int64, "_f": pl.Float64})
    asm.cum_maps = {
        w: pl.DataFrame({"wid": list(m), "cwid": list(m.values())}, schema={"wid": pl.Int64, "cwid": pl.Int64})
        for w, m in needs.cum_maps.items()
    }
    out = asm.rows(list(req.kpis), periods_frame(ps, cur, cmp), base)

    # 5. targets, attainment, status
    tframe = got.get("targets")
    if level is not None:
        tframe = tg.with_file_targets(tframe, req.targets, req.kpis, level, cat)
    out = tg.attach(out, tframe, req, level, [(p.start, p.end) for p in ps])
    order = {n: i for i, n in enumerate(req.kpis)}
    out = out.with_columns(pl.col("kpi").replace_strict(order, return_dtype=pl.Int64).alias("_o"))
    out = out.sort(["_o", "period", *req.by], nulls_last=True).drop("_o")
    return out.select("kpi", "period", *req.by, "value", "comparison", "delta", "delta_pct", "target",
                      "attainment", "gap", "status", "projection", "days", "complete")


@dataclass
class Plan:
    """What an evaluation computes: its periods, windows and queries (see :data:`PLANS`)."""

    ps: list[Period]
    win: Windows
    cur: list
    cmp: list
    base: list[int]
    needs: Needs
    lo_all: dt.date | None  # the first and last day of any window (the days rates are needed for)
    hi_all: dt.date | None
    queries: dict[str, object] | None = None  # key -> query (crmlib.kpis._sql.Sql for SQL backends)
    diagnostics: dict | None = None  # measure -> query describing rows without a rate
    shared: dict | None = None  # the CTEs the SQL queries read (DuckDBBackend.shared)


def _key(bk, req: Request, *parts) -> tuple | None:
    """The key of what :data:`PLANS` keeps for ``req`` on ``bk``; None when the backend's queries
    cannot be reused (they read frames of the evaluation itself: polars, relations)."""
    token = bk.plan_token() if hasattr(bk, "plan_token") else None
    if token is None:
        return None
    filters = tuple((d, tuple(v)) for d, v in req.filters.items())
    return (*parts, req.kpis, req.by, filters, req.grain, req.compare, token)


def _windows(kpis, req: Request, start, end, as_of) -> Plan:
    cat = req.catalog
    ps = periods(start, end, req.grain, as_of)
    win = Windows()
    cur = [win.id(p.lo, p.hi) if p.hi is not None else None for p in ps]
    cmp = [_cmp_window(win, p, req, start, end, as_of) for p in ps] if req.compare else [None] * len(ps)
    base = sorted({w for w in (*cur, *cmp) if w is not None})
    needs = Needs({}, {}, {}, {}, {})
    bounds = {w: (lo, hi) for w, lo, hi in win.bounds(base)}
    for name, k in kpis.items():
        for mname in k.measure_names if isinstance(k, SimpleKpi | RatioKpi | CumulativeKpi) else ():
            check_measure(cat.measure(mname), name)
            needs.add(cat.measure(mname), base)
        if isinstance(k, CumulativeKpi):
            cmap = needs.cum_maps.setdefault(k.window, {})
            for w in base:
                cmap[w] = win.id(cumulative_start(bounds[w][1], k.window), bounds[w][1])
            needs.add(cat.measure(k.measure), list(cmap.values()))
    lo_all = min(lo for lo, _ in win.ids) if win.ids else None
    hi_all = max(hi for _, hi in win.ids) if win.ids else None
    return Plan(ps, win, cur, cmp, base, needs, lo_all, hi_all)


def _queries(ctx, kpis, plan: Plan, closure) -> dict[str, object]:
    """Each fact table's queries: one per time column, one per snapshot, conversions, groups."""
    cat, needs, win, base = ctx.catalog, plan.needs, plan.win, plan.base
    queries: dict[str, object] = {}
    for key, ms in needs.flows.items():
        queries[f"flow:{key}"] = q.flow_query(ctx, key[0], key[1], list(ms.values()),
                                              win.bounds(needs.flow_wids[key]))
    for key, ms in needs.snaps.items():
        ends = [(w, hi) for w, _, hi in win.bounds(needs.snap_wids[key])]
        queries[f"snap:{key}"] = q.snapshot_query(ctx, key[0], key[1], list(ms.values()), ends)
    for name, k in kpis.items():
        if isinstance(k, ConversionKpi) and base:
            queries[f"conv:{name}"] = q.conversion_query(
                ctx, cat.measure(k.base), cat.measure(k.converted), k.entity, k.window_days, win.bounds(base)
            )
    if ctx.by:
        for table in dict.fromkeys(t for n in closure for t in tables_of(cat, n) if not t.startswith("external:")):
            queries[f"domain:{table}"] = q.domain_query(ctx, table)
    return queries


class PlanCache:
    """The last compiled plans, by request and catalog (a small LRU of the process).

    Only pure things are kept: SQL text, the calendars it reads, the windows; never data. Every
    evaluation still runs its queries on the source (and reads the exchange rates and the data's
    dates), so a changed file gives new values; a changed schema gives another key. The catalog
    is compared by identity (it is frozen; ``default_catalog()`` returns the same object until a
    file changes) and kept alive by its entries.
    """

    def __init__(self, size: int = 64) -> None:
        self.size = size
        self._items: dict[tuple, tuple[object, object]] = {}
        self._lock = threading.Lock()  # evaluations may run in threads (a dashboard's sections)

    def get(self, key: tuple | None, catalog):
        if key is None:
            return None
        with self._lock:
            item = self._items.pop((id(catalog), *key), None)
            if item is None:
                return None
            self._items[(id(catalog), *key)] = item  # the most recently used last
        return item[1] if item[0] is catalog else None

    def put(self, key: tuple | None, catalog, value) -> None:
        if key is None:
            return
        with self._lock:
            self._items[(id(catalog), *key)] = (catalog, value)
            while len(self._items) > self.size:
                self._items.pop(next(iter(self._items)))

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


PLANS = PlanCache()


def _cmp_window(win: Windows, p: Period, req: Request, start, end, as_of) -> int | None:
    lo, hi = comparison_window(p, req.grain, req.compare, start, end)
    hi = min(hi, as_of)
    return win.id(lo, hi) if lo <= hi else None


__all__ = ["evaluate", "kpi_kind"]
