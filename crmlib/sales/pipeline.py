"""Pipeline, forecast, coverage and the engine-backed sales KPIs (cards, trends, velocity), and the
providers of the catalog's external sales KPIs (see :mod:`crmlib.sales` for the definitions)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import replace

import polars as pl

from .. import schema
from ..errors import ConfigError
from ..kpis._periods import check_grain, latest
from ._data import (
    _NOFX,
    CATEGORIES,
    DIMENSIONS,
    OPEN_STAGES,
    ORG_LEVELS,
    SUMMARY_KPIS,
    TREND_KPIS,
    Selection,
    check_fx,
    opportunities,
    periods,
    quota,
    select,
    states,
    won_deals,
)


# ---------------------------------------------------------------------------------------------------
# Engine-backed KPIs: cards, trends, velocity
# ---------------------------------------------------------------------------------------------------
def _has_deals(crm, sel: Selection) -> bool:
    return crm.once(("sales.has_deals", sel.key),
                    lambda: opportunities(crm, sel).select(pl.len()).collect().item() > 0)


def _engine(crm, sel: Selection, kpis: Sequence[str], grain: str, compare: str | None) -> pl.DataFrame:
    """Engine rows for the selection, without the grouping column a single-entity filter adds."""
    by, flt = sel.engine_args()
    out = crm.kpis(list(kpis), by=by, grain=grain, period=(sel.start, sel.end), filters=flt or None,
                   compare=compare, targets=True)
    return out.drop(*by)


def kpi_summary(crm, start=None, end=None, grain: str = "month", team=None, region=None, product=None,
                kpis: Sequence[str] = SUMMARY_KPIS, compare: str | None = "previous_period") -> pl.DataFrame:
    """The engine's rows of the latest ``grain`` period for the sales KPI cards (:func:`crmlib.cards.kpi_cards`):
    revenue with quota (attainment = quota attainment, gap = gap to quota), win rate, deal size, cycle,
    pipeline, commit attainment, coverage and velocity. Empty when the selection has no deal."""
    sel = select(crm, start, end, team, region, product)
    if not _has_deals(crm, sel):
        return _empty_engine()
    lo, _ = latest(sel.start, sel.end, check_grain(grain))
    return _engine(crm, replace(sel, start=lo), kpis, grain, compare)


def trends(crm, start=None, end=None, grain: str = "month", team=None, region=None, product=None,
           kpis: Sequence[str] = TREND_KPIS, compare: str | None = "previous_year") -> pl.DataFrame:
    """Catalog KPIs per grain period, with the same period a year earlier and targets (engine rows)."""
    sel = select(crm, start, end, team, region, product)
    if not _has_deals(crm, sel):
        return _empty_engine()
    return _engine(crm, sel, kpis, grain, compare)


def _empty_engine() -> pl.DataFrame:
    return pl.DataFrame(schema={
        "kpi": pl.String, "period": pl.Date, "value": pl.Float64, "comparison": pl.Float64, "delta": pl.Float64,
        "delta_pct": pl.Float64, "target": pl.Float64, "attainment": pl.Float64, "gap": pl.Float64,
        "status": pl.String, "projection": pl.Float64, "days": pl.Int64, "complete": pl.Boolean})


VELOCITY_PARTS = {"open_deals": "open_deals", "avg_deal_size": "avg_deal_size", "win_rate": "win_rate",
                  "sales_cycle_days": "cycle_days", "pipeline_velocity": "velocity_per_day"}


def velocity(crm, start=None, end=None, grain: str = "month", team=None, region=None,
             product=None) -> pl.DataFrame:
    """Pipeline velocity per period and its parts (catalog KPIs ``open_deals``, ``avg_deal_size``,
    ``win_rate``, ``sales_cycle_days``, ``pipeline_velocity``): ``period, open_deals, avg_deal_size,
    win_rate, cycle_days, velocity_per_day``. Velocity = open deals at the period end × average won deal
    size × win rate / mean sales cycle in days: the expected revenue per day the open pipeline produces."""
    sel = select(crm, start, end, team, region, product)
    cols = {"period": pl.Date, **{v: pl.Float64 for v in VELOCITY_PARTS.values()}}
    if not _has_deals(crm, sel):
        return pl.DataFrame(schema=cols)
    rows = _engine(crm, sel, list(VELOCITY_PARTS), grain, None)
    wide = rows.pivot(on="kpi", index="period", values="value").rename(VELOCITY_PARTS)
    return wide.select([pl.col(c).cast(t) for c, t in cols.items()]).sort("period")


# ---------------------------------------------------------------------------------------------------
# Pipeline, forecast, coverage
# ---------------------------------------------------------------------------------------------------
def pipeline(crm, start=None, end=None, team=None, region=None, product=None, as_of=None,
             by: str = "stage") -> pl.DataFrame:
    """Open pipeline at the as-of day by ``by`` (``stage``, ``forecast_category`` or a dimension of
    :data:`DIMENSIONS`): ``<by>, deals, amount, weighted`` (base currency). Stages and categories come
    in pipeline order, other groups by amount."""
    sel = select(crm, start, end, team, region, product, as_of)
    col = DIMENSIONS.get(by, by)
    if col not in ("stage", "forecast_category", *DIMENSIONS.values()):
        raise ConfigError(f"Cannot show the pipeline by {by!r}. Use stage, forecast_category or one of "
                          f"{', '.join(DIMENSIONS)}.")
    lf = states(crm, sel)
    got = lf.group_by(col).agg(pl.len().alias("deals"), pl.col("amount_base").sum().alias("amount"),
                               pl.col("weighted_base").sum().alias("weighted"), _NOFX).collect()
    got = check_fx(got, sel, lf, "opportunity_history", "snapshot").rename({col: by})
    order = {"stage": OPEN_STAGES, "forecast_category": schema.ENUMS["forecast_category"]}.get(by)
    if order is None:
        return got.sort("amount", descending=True)
    full = pl.DataFrame({by: list(order)})
    return full.join(got, on=by, how="full", coalesce=True).with_columns(
        pl.col("deals").fill_null(0).cast(pl.Int64), pl.col("amount").fill_null(0.0), pl.col("weighted").fill_null(0.0),
        pl.col(by).replace_strict({s: i for i, s in enumerate(order)}, default=len(order)).alias("_o"),
    ).sort("_o").drop("_o")


def _category() -> pl.Expr:
    """Forecast category of an open state: its own, or ``pipeline`` when empty."""
    return pl.col("forecast_category").fill_null("pipeline")


def _expected_in(snapshot: pl.Expr, lo: pl.Expr, hi: pl.Expr) -> pl.Expr:
    """An open deal at ``snapshot`` counts in [lo, hi] by its expected close, overdue deals in the
    snapshot's period (see the module docstring)."""
    when = pl.max_horizontal(pl.col("close_date"), snapshot)
    return (when >= lo) & (when <= hi)


def forecast(crm, start=None, end=None, team=None, region=None, product=None, as_of=None) -> pl.DataFrame:
    """Forecast of the period by category at the as-of day: ``category, deals, amount, weighted,
    cumulative, quota, attainment``, categories in order closed, commit, best_case, pipeline.

    ``closed`` = deals won in the period up to the as-of day; the others = deals open at the as-of day
    in that forecast category and expected in the period (``omitted`` deals are left out).
    ``cumulative`` adds the categories above: closed + commit is the *commit forecast*, + best_case the
    best-case forecast; ``attainment`` = cumulative / quota (for ``commit``: the commit attainment)."""
    sel = select(crm, start, end, team, region, product, as_of)
    won = won_deals(crm, sel).filter(pl.col("close_date") >= sel.start)
    closed_q = won.select(pl.lit("closed").alias("category"), pl.len().alias("deals"),
                          pl.col("amount_base").sum().alias("amount"), pl.col("amount_base").sum().alias("weighted"),
                          _NOFX)
    st = states(crm, sel).filter(_expected_in(pl.col("snapshot"), pl.lit(sel.start), pl.lit(sel.end)))
    open_q = st.with_columns(_category().alias("category")).filter(pl.col("category").is_in(CATEGORIES[1:])) \
        .group_by("category").agg(pl.len().alias("deals"), pl.col("amount_base").sum().alias("amount"),
                                  pl.col("weighted_base").sum().alias("weighted"), _NOFX)
    closed, opened = pl.collect_all([closed_q, open_q])
    closed = check_fx(closed.with_columns(pl.col("deals").cast(pl.Int64)), sel, won, "opportunities", "close_date")
    opened = check_fx(opened, sel, st, "opportunity_history", "snapshot")
    q = quota(crm, sel)
    target = q.get_column("target").sum() if q.height else None
    full = pl.DataFrame({"category": list(CATEGORIES), "_o": list(range(len(CATEGORIES)))})
    out = full.join(pl.concat([closed, opened], how="vertical_relaxed"), on="category", how="left").sort("_o")
    out = out.with_columns(pl.col("deals").fill_null(0).cast(pl.Int64), pl.col("amount").fill_null(0.0),
                           pl.col("weighted").fill_null(0.0))
    return out.with_columns(
        pl.col("amount").cum_sum().alias("cumulative"),
        pl.lit(target, pl.Float64).alias("quota"),
    ).with_columns(
        pl.when(pl.col("quota") > 0).then(pl.col("cumulative") / pl.col("quota")).alias("attainment"),
        pl.lit(sel.as_of).alias("as_of"),
    ).drop("_o")


def _snapshot_rule(per: pl.DataFrame, as_of: dt.date, rule: str) -> pl.DataFrame:
    """Add ``snapshot``: ``"end"``: the period's last day or the as-of day, whichever is first;
    ``"coverage"``: the day before the period for a complete period (hi <= as-of), else the as-of day."""
    if rule == "end":
        snap = pl.min_horizontal(pl.col("hi"), pl.lit(as_of))
    else:
        snap = pl.when(pl.col("hi") <= as_of).then(pl.col("lo") - pl.duration(days=1)).otherwise(pl.lit(as_of))
    return per.with_columns(snap.cast(pl.Date).alias("snapshot"))


def _period_pipeline(crm, sel: Selection, per: pl.DataFrame, by: Sequence[str]) -> pl.DataFrame:
    """Open deals at each period's ``snapshot`` expected in the period: ``period, <by>, open_pipeline,
    weighted_pipeline, commit_pipeline``."""
    cols = [DIMENSIONS[b] for b in by]
    st = states(crm, sel, per.get_column("snapshot").to_list())
    lf = st.join(per.lazy(), on="snapshot").filter(_expected_in(pl.col("snapshot"), pl.col("lo"), pl.col("hi")))
    got = lf.group_by("period", *cols).agg(
        pl.col("amount_base").sum().alias("open_pipeline"),
        pl.col("weighted_base").sum().alias("weighted_pipeline"),
        pl.col("amount_base").filter(_category() == "commit").sum().alias("commit_pipeline"),
        _NOFX,
    ).collect()
    return check_fx(got, sel, st, "opportunity_history", "snapshot").rename(dict(zip(cols, by, strict=True)))


def _period_won(crm, sel: Selection, per: pl.DataFrame, by: Sequence[str], cut: str) -> pl.DataFrame:
    """Revenue won in each period from its ``lo`` to its ``cut`` column: ``period, <by>, won``."""
    cols = [DIMENSIONS[b] for b in by]
    won = won_deals(crm, sel)
    lf = won.join_where(per.lazy(), pl.col("close_date") >= pl.col("lo"), pl.col("close_date") <= pl.col(cut))
    got = lf.group_by("period", *cols).agg(pl.col("amount_base").sum().alias("won"), _NOFX).collect()
    return check_fx(got, sel, won, "opportunities", "close_date").rename(dict(zip(cols, by, strict=True)))


def _frame_by(per: pl.DataFrame, parts: Sequence[pl.DataFrame], by: Sequence[str]) -> pl.DataFrame:
    """Periods × the groups that occur in any part (in any period), with every part joined (missing sums
    are 0). A period where no group has rows still gets every group, never a row of null group."""
    keys = ["period", *by]
    groups = pl.concat([p.select(by) for p in parts], how="vertical_relaxed").unique() if by else None
    base = per.join(groups, how="cross") if by else per
    for p in parts:
        base = base.join(p, on=keys, how="left", nulls_equal=True)
    return base


def pipeline_coverage(crm, start=None, end=None, grain: str | None = "month", team=None, region=None,
                      product=None, as_of=None, by: str | None = None) -> pl.DataFrame:
    """Pipeline coverage per period: open pipeline expected in the period / remaining quota.

    ``period, [by], snapshot, quota, won, remaining_quota, open_pipeline, weighted_pipeline, coverage,
    weighted_coverage``. For the period in progress (or still to come) the snapshot is the as-of day:
    remaining quota = quota − revenue won in the period so far. For a complete period it is the day
    before the period began (the coverage the period started with; nothing won yet, so remaining
    quota = quota). Coverage is null without quota or when nothing remains (quota met)."""
    return _coverage(crm, select(crm, start, end, team, region, product, as_of), grain, by)


def _coverage(crm, sel: Selection, grain: str | None, by: str | None) -> pl.DataFrame:
    group = [by] if by else []
    per = _snapshot_rule(periods(sel, grain), sel.as_of, "coverage")
    pipe = _period_pipeline(crm, sel, per, group)
    won = _period_won(crm, sel, per.with_columns(pl.col("snapshot").alias("_cut")), group, "_cut")
    q = quota(crm, sel, grain, by)
    out = _frame_by(per, [pipe, won, q], group)  # a group with quota and nothing else has coverage 0
    remaining = (pl.col("quota") - pl.col("won")).clip(lower_bound=0.0)
    cover = pl.when(pl.col("remaining_quota") > 0)
    return out.with_columns(
        pl.col("target").alias("quota"),
        *[pl.col(c).fill_null(0.0) for c in ("won", "open_pipeline", "weighted_pipeline")],
    ).with_columns(remaining.alias("remaining_quota")).with_columns(
        cover.then(pl.col("open_pipeline") / pl.col("remaining_quota")).alias("coverage"),
        cover.then(pl.col("weighted_pipeline") / pl.col("remaining_quota")).alias("weighted_coverage"),
    ).select("period", *group, "snapshot", "quota", "won", "remaining_quota", "open_pipeline", "weighted_pipeline",
             "coverage", "weighted_coverage").sort("period", *group, nulls_last=True)


def forecast_accuracy(crm, start=None, end=None, grain: str = "month", team=None, region=None,
                      product=None) -> pl.DataFrame:
    """How good the start-of-period forecasts were, per complete period: ``period, method, forecast,
    actual, error, abs_pct_error, accuracy``.

    The forecast is taken from the stage history as of the day before the period began, over the open
    deals expected in the period: ``commit`` (amount of commit deals), ``best_case`` (commit + best case)
    and ``weighted`` (amount × probability of every open deal). ``actual`` = revenue won in the period
    (by close date, including deals created during it). error = forecast − actual; abs_pct_error =
    |error| / actual; accuracy = max(0, 1 − abs_pct_error) (null when actual is 0). Periods not complete
    at the data's last day are left out."""
    sel = select(crm, start, end, team, region, product)
    cols = {"period": pl.Date, "method": pl.String, "forecast": pl.Float64, "actual": pl.Float64,
            "error": pl.Float64, "abs_pct_error": pl.Float64, "accuracy": pl.Float64}
    last = sel.data_as_of or sel.as_of
    per = periods(sel, grain).filter(pl.col("hi") <= last)
    if per.is_empty():
        return pl.DataFrame(schema=cols)
    per = per.with_columns((pl.col("lo") - pl.duration(days=1)).cast(pl.Date).alias("snapshot"))
    full = replace(sel, as_of=last)
    st = states(crm, full, per.get_column("snapshot").to_list())
    lf = st.join(per.lazy(), on="snapshot").filter(_expected_in(pl.col("snapshot"), pl.col("lo"), pl.col("hi")))
    cat = _category()
    fc = lf.group_by("period").agg(
        pl.col("amount_base").filter(cat == "commit").sum().alias("commit"),
        pl.col("amount_base").filter(cat.is_in(["commit", "best_case"])).sum().alias("best_case"),
        pl.col("weighted_base").sum().alias("weighted"),
        _NOFX,
    ).collect()
    fc = check_fx(fc, full, st, "opportunity_history", "snapshot")
    won = _period_won(crm, full, per, [], "hi")
    out = per.join(fc, on="period", how="left").join(won, on="period", how="left").unpivot(
        on=["commit", "best_case", "weighted"], index=["period", "won"], variable_name="method", value_name="forecast")
    out = out.with_columns(pl.col("forecast").fill_null(0.0), pl.col("won").fill_null(0.0).alias("actual"))
    ape = pl.when(pl.col("actual") > 0).then((pl.col("forecast") - pl.col("actual")).abs() / pl.col("actual"))
    out = out.with_columns((pl.col("forecast") - pl.col("actual")).alias("error"), ape.alias("abs_pct_error"))
    out = out.with_columns((1.0 - pl.col("abs_pct_error")).clip(lower_bound=0.0).alias("accuracy"))
    order = {"commit": 0, "best_case": 1, "weighted": 2}
    return out.with_columns(pl.col("method").replace_strict(order, return_dtype=pl.Int64).alias("_o")) \
        .sort("period", "_o").select([pl.col(c).cast(t) for c, t in cols.items()])


# ---------------------------------------------------------------------------------------------------
# External catalog KPIs (see sales.yaml): called by the engine per grain period
# ---------------------------------------------------------------------------------------------------
def _kpi_selection(crm, period, filters) -> Selection:
    lo, hi = period
    return select(crm, lo, hi, filters={d: list(v) for d, v in (filters or {}).items()}, as_of=hi)


def weighted_pipeline_kpi(crm, by, grain, period, filters) -> pl.DataFrame:
    """``weighted_pipeline``: Σ amount × probability of deals open at each period's end (or the as-of day)."""
    sel = _kpi_selection(crm, period, filters)
    per = _snapshot_rule(periods(sel, grain), sel.as_of, "end")
    cols = [DIMENSIONS[b] for b in by]
    st = states(crm, sel, per.get_column("snapshot").to_list())
    got = st.join(per.lazy(), on="snapshot").group_by("period", *cols).agg(
        pl.col("weighted_base").sum().alias("value"), _NOFX).collect()
    return check_fx(got, sel, st, "opportunity_history", "snapshot").rename(dict(zip(cols, by, strict=True)))


def _with_quota(crm, sel: Selection, per: pl.DataFrame, parts, by, grain) -> pl.DataFrame:
    group = list(by)
    if len(group) > 1 or (group and group[0] not in ORG_LEVELS):
        q = pl.DataFrame(schema={"period": pl.Date, **{b: pl.String for b in group}, "target": pl.Float64})
    else:
        q = quota(crm, sel, grain, group[0] if group else None)
    return _frame_by(per, [*parts, q], group)


def commit_attainment_kpi(crm, by, grain, period, filters) -> pl.DataFrame:
    """``commit_attainment``: (revenue won in the period + open commit deals expected in it) / quota, as of
    the period's end or the as-of day."""
    sel = _kpi_selection(crm, period, filters)
    per = _snapshot_rule(periods(sel, grain), sel.as_of, "end")
    pipe = _period_pipeline(crm, sel, per, by)
    won = _period_won(crm, sel, per, by, "snapshot")
    out = _with_quota(crm, sel, per, [pipe, won], by, grain)
    value = (pl.col("won").fill_null(0.0) + pl.col("commit_pipeline").fill_null(0.0)) / pl.col("target")
    return out.select("period", *by, pl.when(pl.col("target") > 0).then(value).alias("value"))


def pipeline_coverage_kpi(crm, by, grain, period, filters) -> pl.DataFrame:
    """``pipeline_coverage``: :func:`pipeline_coverage`'s coverage per period and group."""
    lo, hi = period
    group = list(by)
    flt = {d: list(v) for d, v in (filters or {}).items()}
    if len(group) > 1:
        return pl.DataFrame(schema={"period": pl.Date, **{b: pl.String for b in group}, "value": pl.Float64})
    got = _coverage(crm, select(crm, lo, hi, filters=flt, as_of=hi), grain, group[0] if group else None)
    return got.select("period", *group, pl.col("coverage").alias("value"))
