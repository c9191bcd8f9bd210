"""The sales analytics' building blocks: the selection, money in the base currency, deals and their
stage history, states at given days, periods and quota (see :mod:`crmlib.sales` for the definitions)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import polars as pl

from .. import config, schema
from ..errors import ConfigError, CurrencyError, suggest
from ..kpis._periods import parse_date, period_end, trunc
from ..kpis.spec import GRAINS
from ..money import dense_rates

STAGES = schema.ENUMS["stage"]
OPEN_STAGES = schema.OPEN_STAGES
FUNNEL_STAGES = STAGES[:-1]  # prospecting .. closed_won: the steps a won deal passes
CATEGORIES = ("closed", "commit", "best_case", "pipeline")  # forecast categories, most certain first
# dimension -> column of the opportunity frame (owner's team and department, account's region)
DIMENSIONS: Mapping[str, str] = {
    "department": "department", "team": "team_id", "user": "owner_id", "region": "region", "product": "product_id",
}
ORG_LEVELS = ("department", "team", "user")
SUMMARY_KPIS = ("revenue", "win_rate", "avg_deal_size", "sales_cycle_days", "open_pipeline", "weighted_pipeline",
                "commit_attainment", "pipeline_coverage", "pipeline_velocity")
TREND_KPIS = ("revenue", "won_deals", "win_rate", "avg_deal_size", "pipeline_created", "sales_cycle_days")
_SECONDS_PER_DAY = 86_400.0
_FOREVER = dt.datetime(9999, 12, 31)
_PROB = pl.col("stage").replace_strict(dict(schema.DEFAULT_STAGE_PROBABILITY), default=None,
                                       return_dtype=pl.Float64)



# ---------------------------------------------------------------------------------------------------
# The selection: period, filters, as-of day, exchange rates
# ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Selection:
    """A checked period and filter set (:func:`select`)."""

    start: dt.date
    end: dt.date
    as_of: dt.date
    data_as_of: dt.date | None
    filters: Mapping[str, tuple[str, ...]]
    base: str
    rates: pl.LazyFrame = field(repr=False)

    @property
    def key(self) -> tuple:
        """What identifies the selection (for :meth:`crmlib.sources.Crm.once`)."""
        return (self.start, self.end, self.as_of, self.base, tuple(sorted(self.filters.items())))

    @property
    def as_of_end(self) -> dt.datetime:
        """The first instant after the as-of day (snapshots see changes strictly before it)."""
        return dt.datetime.combine(self.as_of + dt.timedelta(days=1), dt.time())

    def engine_args(self) -> tuple[tuple[str, ...], dict[str, tuple[str, ...]]]:
        """(by, filters) for the KPI engine so that targets apply: a single org entity selected by the
        filters becomes the grouping (a team filter groups by team), as :mod:`crmlib.kpis.targets` wants."""
        return _org_grouping((), self.filters)


def _text_values(value, what: str) -> tuple[str, ...]:
    if value is None or value == "":
        return ()
    items = [value] if isinstance(value, str) else list(value)
    out = []
    for v in items:
        if not isinstance(v, str):
            raise ConfigError(f"{what} must be text (an id or a name), not {v!r}.")
        if v.strip():
            out.append(v.strip())
    return tuple(dict.fromkeys(out))


def _resolve_names(crm, table: str, key: str, values: tuple[str, ...]) -> tuple[str, ...]:
    """Ids for ids or names (case-insensitive); an unknown value is kept (it selects nothing)."""
    if not values:
        return ()
    asked = pl.LazyFrame({"_v": list(values), "_i": list(range(len(values)))})
    known = crm.table(table).select(key, pl.col("name").str.to_lowercase().alias("_n"))
    got = (asked.with_columns(pl.col("_v").str.to_lowercase().alias("_n"))
           .join(known.select(pl.col(key).alias("_id")), left_on="_v", right_on="_id", how="left", coalesce=False)
           .join(known.select("_n", pl.col(key).alias("_by_name")).unique("_n"), on="_n", how="left")
           .select("_i", pl.coalesce("_id", "_by_name", "_v").alias("_out")).sort("_i").collect())
    return tuple(dict.fromkeys(got.get_column("_out").to_list()))


def select(crm, start=None, end=None, team=None, region=None, product=None, as_of=None,
           filters: Mapping[str, object] | None = None) -> Selection:
    """Check a period and filters and find the as-of day and exchange rates (see the module docstring).

    ``filters`` adds any of :data:`DIMENSIONS` (``{"user": "U0007"}``); ``team``, ``region`` and
    ``product`` are the notebook parameters. Empty strings mean no filter / no limit.
    """
    flt: dict[str, tuple[str, ...]] = {}
    given = dict(filters) if filters else {}
    for dim, value in (("team", team), ("region", region), ("product", product)):
        if value not in (None, "", (), []):
            given[dim] = value
    for dim, value in given.items():
        if dim not in DIMENSIONS:
            raise ConfigError(f"Cannot filter sales by {dim!r}.{suggest(str(dim), DIMENSIONS)} "
                              f"Use: {', '.join(DIMENSIONS)}.")
        values = _text_values(value, dim)
        if values:
            flt[dim] = values
    if "team" in flt:
        flt["team"] = _resolve_names(crm, "teams", "team_id", flt["team"])
    if "product" in flt:
        flt["product"] = _resolve_names(crm, "products", "product_id", flt["product"])
    for r in flt.get("region", ()):
        allowed = schema.ENUMS["region"]
        if r not in allowed:
            raise ConfigError(f"Region {r!r} is not a region.{suggest(r, allowed)} Regions: {', '.join(allowed)}.")

    s = parse_date(start, end=False) if start not in (None, "") else None
    e = parse_date(end, end=True) if end not in (None, "") else None
    if s and e and e < s:
        raise ConfigError(f"The period ends ({e}) before it starts ({s}).")
    bounds, hist, fx = crm.once(("sales.select",), lambda: _data_bounds(crm))
    his = [d for d in (bounds["hi_created"][0], bounds["hi_closed"][0], hist["hi"][0]) if d is not None]
    data_as_of = max(his) if his else None
    fallback = e or s or data_as_of or dt.date.today()
    e = e or data_as_of or fallback
    s = s or bounds["lo"][0] or e
    if e < s:  # only an open-ended period can get here: the data ends before the start given
        e = s
    day = parse_date(as_of, end=True, what="as-of day") if as_of not in (None, "") else min(e, data_as_of or e)
    base = config.base_currency()
    lo = min([d for d in (fx["date"].min(), s) if d is not None])
    hi = max([d for d in (fx["date"].max(), e, day, data_as_of) if d is not None])
    rates = crm.once(("sales.rates", lo, hi, base), lambda: dense_rates(fx, lo, hi, base).lazy())
    return Selection(s, e, day, data_as_of, flt, base, rates)


def _data_bounds(crm) -> list[pl.DataFrame]:
    """The data's first and last days (deals and stage history) and the exchange rates."""
    opp = crm.table("opportunities")
    return pl.collect_all([
        opp.select(
            pl.col("created_at").min().dt.date().alias("lo"),
            pl.col("created_at").max().dt.date().alias("hi_created"),
            pl.col("close_date").filter(pl.col("is_closed")).max().alias("hi_closed"),
        ),
        crm.table("opportunity_history").select(pl.col("changed_at").max().dt.date().alias("hi")),
        crm.table("fx_rates").select("date", "currency", "rate_to_base"),
    ])


def _org_grouping(by: Sequence[str], filters: Mapping[str, tuple]) -> tuple[tuple[str, ...], dict]:
    by = tuple(by)
    flt = dict(filters)
    if by or not flt or any(d not in ORG_LEVELS or len(v) != 1 for d, v in flt.items()):
        return by, flt
    finest = max(flt, key=ORG_LEVELS.index)
    return (finest,), flt


# ---------------------------------------------------------------------------------------------------
# Money
# ---------------------------------------------------------------------------------------------------
def to_base(lf: pl.LazyFrame, sel: Selection, day: str, amount: str = "amount", currency: str = "currency",
            out: str = "amount_base") -> pl.LazyFrame:
    """Add ``out`` = ``amount`` in the base currency at the rate of ``day`` (a Date column) and ``_nofx``
    (True where a rate is missing; :func:`check_fx` raises on those)."""
    lf = lf.join(sel.rates, left_on=[currency, day], right_on=["_cur", "_rday"], how="left", coalesce=False)
    rate = pl.when(pl.col(currency) == sel.base).then(pl.lit(1.0)).otherwise(pl.col("_rate"))
    return lf.with_columns(
        (pl.col(amount) * rate).alias(out),
        (rate.is_null() & pl.col(amount).is_not_null()).alias("_nofx"),
    ).drop("_cur", "_rday", "_rate")


def check_fx(frame: pl.DataFrame, sel: Selection, lf: pl.LazyFrame, table: str, day: str) -> pl.DataFrame:
    """Raise :class:`CurrencyError` when ``frame``'s ``_nofx`` count is positive (naming the currencies,
    from the lazy ``lf`` that was converted), else return ``frame`` without it."""
    if "_nofx" not in frame.columns:
        return frame
    if (frame.get_column("_nofx").sum() or 0) > 0:
        diag = (lf.filter(pl.col("_nofx")).group_by("currency")
                .agg(pl.len().alias("rows"), pl.col(day).min().alias("lo"), pl.col(day).max().alias("hi"))
                .sort("currency", nulls_last=True).collect())
        lines = [f"{table}: {n} row{'s' if n != 1 else ''} in {c or 'no currency'} dated {lo} to {hi}"
                 for c, n, lo, hi in diag.iter_rows()]
        raise CurrencyError(
            f"Cannot convert amounts to the base currency {sel.base}: no exchange rate in fx_rates on or before "
            "the rows' dates for\n  - " + "\n  - ".join(lines) + "\nImport fx_rates with a rate for each currency "
            "from the first date on, or set CRMLIB_BASE_CURRENCY to the currency of your data."
        )
    return frame.drop("_nofx")


_NOFX = pl.col("_nofx").sum().alias("_nofx")


# ---------------------------------------------------------------------------------------------------
# Deals, history, states
# ---------------------------------------------------------------------------------------------------
def opportunities(crm, sel: Selection) -> pl.LazyFrame:
    """The selected opportunities with ``owner`` (name), ``team_id``, ``department``, ``account`` (name),
    ``region``: the deal columns the analytics need."""
    return crm.once_frame(("sales.opportunities", tuple(sorted(sel.filters.items()))), lambda: _opportunities(crm, sel))


def _opportunities(crm, sel: Selection) -> pl.LazyFrame:
    users = crm.table("users").select("user_id", pl.col("name").alias("owner"), "team_id", "department")
    accounts = crm.table("accounts").select("account_id", pl.col("name").alias("account"), "region")
    lf = (
        crm.table("opportunities")
        .select("opportunity_id", "name", "account_id", "owner_id", "product_id", "created_at", "close_date",
                "stage", "is_closed", "is_won", "amount", "currency", "probability", "forecast_category",
                "lost_reason")
        .join(users, left_on="owner_id", right_on="user_id", how="left")
        .join(accounts, on="account_id", how="left")
    )
    conds = [pl.col(DIMENSIONS[d]).is_in(list(v)) for d, v in sel.filters.items()]
    return lf.filter(pl.all_horizontal(conds)) if conds else lf


_HIST_COLS = ("opportunity_id", "changed_at", "stage", "amount", "currency", "probability", "close_date",
              "forecast_category")


def history(crm, sel: Selection, deals: pl.LazyFrame | None = None) -> pl.LazyFrame:
    """Stage history up to the as-of day, one row per change, with ``valid_to`` (the next change, or far
    future), ``entered`` (when the deal entered the row's stage: the first row of a run of the same stage)
    and ``left`` (on the last row of a run: when the next stage began; null while it lasts).

    Deals without history rows get rows from their current record (see the module docstring). ``deals``
    (a frame with ``opportunity_id``) keeps only those deals, before any sorting."""
    if deals is not None:
        return _history(crm, sel, deals)
    return crm.once_frame(("sales.history", sel.as_of), lambda: _history(crm, sel, None))


def _history(crm, sel: Selection, deals: pl.LazyFrame | None) -> pl.LazyFrame:
    h = crm.table("opportunity_history").select(*_HIST_COLS)
    o = crm.table("opportunities")
    if deals is not None:
        ids = deals.select("opportunity_id")
        h, o = h.join(ids, on="opportunity_id", how="semi"), o.join(ids, on="opportunity_id", how="semi")
    missing = o.select("opportunity_id", "created_at", "is_closed", *_HIST_COLS[2:]).join(
        h.select("opportunity_id").unique(), on="opportunity_id", how="anti").cache()  # usually none
    opened = missing.select(
        "opportunity_id",
        pl.col("created_at").alias("changed_at"),
        pl.when(~pl.col("is_closed")).then(pl.col("stage")).alias("stage"),
        "amount", "currency",
        pl.when(~pl.col("is_closed")).then(pl.col("probability")).alias("probability"),
        "close_date",
        pl.when(~pl.col("is_closed")).then(pl.col("forecast_category")).alias("forecast_category"),
    )
    closed = missing.filter(pl.col("is_closed")).select(
        "opportunity_id",
        pl.max_horizontal(pl.col("close_date").cast(pl.Datetime("us")), pl.col("created_at")).alias("changed_at"),
        *_HIST_COLS[2:],
    )
    # Rows sorted by deal and time: neighbours are compared with shifts over the whole frame (a deal
    # boundary ends a run), which is much faster than windows per deal.
    opp, stage, at = pl.col("opportunity_id"), pl.col("stage"), pl.col("changed_at")
    same_next = opp == opp.shift(-1)
    first_of_run = (opp != opp.shift(1)).fill_null(True) | stage.ne_missing(stage.shift(1))
    last_of_run = ~same_next.fill_null(False) | stage.ne_missing(stage.shift(-1))
    nxt = pl.when(same_next).then(at.shift(-1))
    return (
        pl.concat([h, opened, closed], how="vertical_relaxed")
        .filter(at < sel.as_of_end)
        .sort("opportunity_id", "changed_at")
        .with_columns(
            nxt.fill_null(_FOREVER).alias("valid_to"),
            pl.when(last_of_run).then(nxt).alias("left"),
            pl.when(first_of_run).then(at).forward_fill().alias("entered"),
        )
    )


def states(crm, sel: Selection, days: Sequence[dt.date] | None = None, open_only: bool = True) -> pl.LazyFrame:
    """The state of each selected deal at the end of each of ``days`` (default: the as-of day):
    ``snapshot`` (the day), the deal's columns (:func:`opportunities`), the state's ``stage``,
    ``amount_base`` and ``weighted_base`` (at the snapshot day's rate), ``probability``,
    ``forecast_category``, expected ``close_date``, ``entered`` (into the stage) and ``changed_at`` (last
    change). ``open_only``: only deals open then (a deal not yet created has no state)."""
    days = sorted(set(days or [sel.as_of]))
    return crm.once_frame(("sales.states", sel.key, tuple(days), open_only),
                          lambda: _states(crm, sel, days, open_only))


def _states(crm, sel: Selection, days: list[dt.date], open_only: bool) -> pl.LazyFrame:
    snaps = pl.LazyFrame({"snapshot": days}, schema={"snapshot": pl.Date}).with_columns(
        (pl.col("snapshot").cast(pl.Datetime("us")) + pl.duration(days=1)).alias("_snap_end"))
    deals = opportunities(crm, sel).drop("stage", "amount", "currency", "probability", "close_date",
                                         "forecast_category")
    if sel.filters:  # the history of the selected deals, shared by the batch's snapshots of the selection
        key = ("sales.history", sel.as_of, tuple(sorted(sel.filters.items())))
        h = crm.once_frame(key, lambda: history(crm, sel, deals))
    else:
        h = history(crm, sel)
    h = h.join_where(
        snaps, pl.col("changed_at") < pl.col("_snap_end"), pl.col("valid_to") >= pl.col("_snap_end"))
    if open_only:
        h = h.filter(pl.col("stage").is_null() | pl.col("stage").is_in(OPEN_STAGES))
    h = h.join(deals, on="opportunity_id", how="inner")
    h = to_base(h, sel, "snapshot").with_columns(
        pl.coalesce(pl.col("probability"), _PROB).alias("probability"))
    return h.with_columns((pl.col("amount_base") * pl.col("probability")).alias("weighted_base")).drop("_snap_end")


def won_deals(crm, sel: Selection) -> pl.LazyFrame:
    """Selected deals won by the as-of day, with ``amount_base`` at the close date (the ``revenue`` KPI's rule)."""
    lf = opportunities(crm, sel).filter(pl.col("is_won") & (pl.col("close_date") <= sel.as_of))
    return to_base(lf, sel, "close_date")


# ---------------------------------------------------------------------------------------------------
# Periods and quota
# ---------------------------------------------------------------------------------------------------
def periods(sel: Selection, grain: str | None) -> pl.DataFrame:
    """``period`` (first day of the grain period), ``lo``, ``hi`` (cut to the selection), one row per period;
    ``grain`` None: the whole selection as one period."""
    if grain is None or grain == "":
        return pl.DataFrame({"period": [sel.start], "lo": [sel.start], "hi": [sel.end]})
    if grain not in GRAINS:
        raise ConfigError(f"Unknown grain {grain!r}.{suggest(str(grain), GRAINS)} Use one of: {', '.join(GRAINS)}.")
    rows, p = [], trunc(sel.start, grain)
    while p <= sel.end:
        rows.append((p, max(p, sel.start), min(period_end(p, grain), sel.end)))
        p = period_end(p, grain) + dt.timedelta(days=1)
    return pl.DataFrame(rows, schema={"period": pl.Date, "lo": pl.Date, "hi": pl.Date}, orient="row")


def quota(crm, sel: Selection, grain: str | None = None, by: str | None = None, kpi: str = "revenue") -> pl.DataFrame:
    """Targets of ``kpi`` per period (and member of ``by``): ``period, [by], target``.

    Level: ``by`` (department, team or user) or, without ``by``, the company or the single org entity the
    filters select; no rows when the filters cut across the level (region, product, a team of another
    department…). Targets are spread over days and summed (flow KPIs), averaged (rates) or taken at the
    last day (stocks); a period gets a target only when targets cover all of its days."""
    from ..kpis._assemble import kpi_kind
    from ..kpis.catalog import default_catalog
    from ..kpis.targets import target_level, targets_for

    cat = default_catalog()
    cat.get(kpi)
    group, flt = _org_grouping((by,) if by else (), sel.filters)
    level = target_level(group, flt)
    key = group[0] if group else None
    cols = {"period": pl.Date, **({by: pl.String} if by else {}), "target": pl.Float64}
    if level is None:
        return pl.DataFrame(schema=cols)
    tf = crm.table("targets").filter((pl.col("kpi") == kpi) & (pl.col("level") == level)).collect()
    if key is not None and key in flt:
        tf = tf.filter(pl.col("entity_id").is_in(list(flt[key])))
    days = pl.date_range(sel.start, sel.end, eager=True).to_list()
    daily = targets_for(tf, cat, "day", [(d, d) for d in days])
    per = periods(sel, grain)
    daily = daily.join_where(per, pl.col("period") >= pl.col("lo"), pl.col("period") <= pl.col("hi"),
                             suffix="_p")
    kind = kpi_kind(cat, kpi)
    agg = {"flow": pl.col("target").sum(), "stock": pl.col("target").sort_by("period").last()}.get(
        kind, pl.col("target").mean())
    out = (
        daily.group_by("period_p", "entity_id", "lo", "hi")
        .agg(agg.alias("target"), pl.len().alias("_n"))
        .filter(pl.col("_n") == (pl.col("hi") - pl.col("lo")).dt.total_days() + 1)
        .select(pl.col("period_p").alias("period"), pl.col("entity_id").alias(by or "_entity"), "target")
    )
    if by is None:  # the company, or the one entity the filters select
        out = out.drop("_entity") if key is None else out.group_by("period").agg(pl.col("target").sum())
    return out.select(list(cols)).sort(list(cols)[:-1])
