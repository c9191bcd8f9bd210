"""Deals that need attention or explain results: the stage funnel, stalled deals and lost reasons
(see :mod:`crmlib.sales` for the definitions)."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import polars as pl

from ..errors import ConfigError
from ._data import (
    _NOFX,
    _SECONDS_PER_DAY,
    FUNNEL_STAGES,
    OPEN_STAGES,
    Selection,
    check_fx,
    history,
    opportunities,
    select,
    states,
    to_base,
)


# ---------------------------------------------------------------------------------------------------
# Funnel
# ---------------------------------------------------------------------------------------------------
def funnel(crm, start=None, end=None, team=None, region=None, product=None, as_of=None) -> pl.DataFrame:
    """Stage funnel of the deals created in the period, from the stage history up to the as-of day.

    ``stage, step, deals, value, conversion, drop_off, from_first, median_days_in_stage``, one row per
    stage of :data:`FUNNEL_STAGES` in pipeline order (never sorted by size).

    * "Reached at least this stage": a deal counts at every stage up to the furthest stage its history
      shows (closed_won counts as the last; closed_lost does not move a deal), so a deal that jumped from
      prospecting to proposal counts at qualification and needs_analysis too. Every deal counts at the
      first stage.
    * ``value``: amount of those deals (their latest amount by the as-of day) in the base currency at
      the rate of their creation day.
    * ``conversion`` = deals at this stage / deals at the previous stage (null for the first);
      ``drop_off`` = 1 − conversion; ``from_first`` = deals / deals at the first stage.
    * ``median_days_in_stage``: median days (fractional) these deals spent in the stage, over completed
      stays (entered, then left for another stage by the as-of day).
    """
    sel = select(crm, start, end, team, region, product, as_of)
    h, reach = _reach(crm, sel)
    per_step = reach.group_by("reach").agg(pl.len().alias("n"), pl.col("amount_base").sum().alias("v"), _NOFX)
    stays = h.filter(pl.col("left").is_not_null() & pl.col("stage").is_in(OPEN_STAGES)).group_by("stage").agg(
        ((pl.col("left") - pl.col("entered")).dt.total_seconds() / _SECONDS_PER_DAY).median()
        .alias("median_days_in_stage"))
    per_step, stays = pl.collect_all([per_step, stays])
    per_step = check_fx(per_step, sel, reach, "opportunities", "created")
    full = pl.DataFrame({"stage": list(FUNNEL_STAGES), "step": list(range(len(FUNNEL_STAGES)))},
                        schema={"stage": pl.String, "step": pl.Int64})
    out = full.join(per_step.rename({"reach": "step"}), on="step", how="left").sort("step").with_columns(
        pl.col("n").fill_null(0).cum_sum(reverse=True).cast(pl.Int64).alias("deals"),
        pl.col("v").fill_null(0.0).cum_sum(reverse=True).alias("value"),
    )
    prev = pl.col("deals").shift(1)
    first = pl.col("deals").first()
    return out.with_columns(
        pl.when(prev > 0).then(pl.col("deals") / prev).alias("conversion"),
        pl.when(first > 0).then(pl.col("deals") / first).alias("from_first"),
    ).with_columns((1.0 - pl.col("conversion")).alias("drop_off")).join(stays, on="stage", how="left").select(
        "stage", "step", "deals", "value", "conversion", "drop_off", "from_first", "median_days_in_stage")


def _reach(crm, sel: Selection) -> tuple[pl.LazyFrame, pl.LazyFrame]:
    """The cohort's stage history, and per deal its furthest funnel step (``reach``) with its latest
    amount in the base currency at the rate of its creation day."""
    order = {s: i for i, s in enumerate(FUNNEL_STAGES)}
    cohort = opportunities(crm, sel).filter(
        (pl.col("created_at") >= dt.datetime.combine(sel.start, dt.time()))
        & (pl.col("created_at") < dt.datetime.combine(sel.end + dt.timedelta(days=1), dt.time()))
        & (pl.col("created_at") < sel.as_of_end)
    ).select("opportunity_id", pl.col("created_at").dt.date().alias("created"))
    h = history(crm, sel, cohort).join(cohort, on="opportunity_id", how="inner")
    step = pl.col("stage").replace_strict(order, default=None, return_dtype=pl.Int64)
    reach = h.group_by("opportunity_id").agg(
        step.max().fill_null(0).alias("reach"),
        pl.col("amount").last(), pl.col("currency").last(), pl.col("created").first(),
    )
    return h, to_base(reach, sel, "created")


def funnel_deals(crm, point: dict | str, start=None, end=None, team=None, region=None, product=None,
                 as_of=None) -> pl.DataFrame:
    """The deals behind one funnel stage: those counted at it by :func:`funnel` (created in the period,
    reached at least this stage by the as-of day), with owner, account, furthest stage and amount.

    ``point`` is a stage name of :data:`FUNNEL_STAGES`, or a clicked point of the funnel chart
    (``{"index": i}``: the i-th stage in pipeline order, as :func:`crmlib.charts_sales.plot_funnel`
    draws them)."""
    if isinstance(point, dict):
        i = point.get("index")
        if not isinstance(i, int) or not 0 <= i < len(FUNNEL_STAGES):
            raise ConfigError(f"No funnel stage at position {i!r}; stages: {', '.join(FUNNEL_STAGES)}.")
        stage = FUNNEL_STAGES[i]
    else:
        stage = str(point)
        if stage not in FUNNEL_STAGES:
            raise ConfigError(f"Unknown funnel stage {stage!r}; stages: {', '.join(FUNNEL_STAGES)}.")
    sel = select(crm, start, end, team, region, product, as_of)
    _, reach = _reach(crm, sel)
    step = FUNNEL_STAGES.index(stage)
    deals = opportunities(crm, sel).select("opportunity_id", "name", "account", "owner", "region",
                                           pl.col("created_at").dt.date().alias("created"), "stage")
    return (
        reach.filter(pl.col("reach") >= step)
        .join(deals, on="opportunity_id", how="left")
        .select("opportunity_id", "name", "account", "owner", "region", "created",
                pl.col("reach").replace_strict(dict(enumerate(FUNNEL_STAGES)), return_dtype=pl.String)
                .alias("furthest_stage"),
                pl.col("stage").alias("current_stage"), pl.col("amount_base").alias("amount"))
        .sort("amount", descending=True, nulls_last=True)
        .collect()
    )


# ---------------------------------------------------------------------------------------------------
# Stalled deals, lost reasons
# ---------------------------------------------------------------------------------------------------
def stage_p90(crm, sel: Selection) -> pl.LazyFrame:
    """``stage, stage_p90_days``: 90th percentile (linear) of completed stays in each open stage, over every
    deal of the company (not only the selection) up to the as-of day: the norm a deal is compared with."""
    everyone = replace(sel, filters={})
    return (history(crm, everyone).filter(pl.col("left").is_not_null() & pl.col("stage").is_in(OPEN_STAGES))
            .group_by("stage").agg(((pl.col("left") - pl.col("entered")).dt.total_seconds() / _SECONDS_PER_DAY)
                                   .quantile(0.9, interpolation="linear").alias("stage_p90_days")))


def stalled_deals(crm, start=None, end=None, team=None, region=None, product=None, as_of=None,
                  inactive_days: int = 30) -> pl.DataFrame:
    """Open deals at the as-of day that are stuck: no activity for more than ``inactive_days`` days, or in
    their current stage longer than the stage's 90th percentile (:func:`stage_p90`). Largest amount first.

    ``opportunity_id, opportunity, owner_id, owner, team_id, account_id, account, stage, amount, close_date,
    days_in_stage, stage_p90_days, last_activity, days_since_activity, days_stalled, reason``.
    Days are whole days to the end of the as-of day. ``days_since_activity`` counts from the deal's last
    activity (``activities.opportunity_id``), or from its creation when it has none. ``reason``:
    ``no_activity``, ``stage_too_long`` or ``both``; ``days_stalled``: the flagged measure (the larger when
    both). ``start`` is not used: every deal open at the as-of day is a candidate."""
    if isinstance(inactive_days, bool) or not isinstance(inactive_days, int | float) or inactive_days <= 0:
        raise ConfigError(f"inactive_days must be a positive number of days, not {inactive_days!r}.")
    sel = select(crm, start, end, team, region, product, as_of)
    end_ = sel.as_of_end
    acts = (crm.table("activities").filter(pl.col("opportunity_id").is_not_null() & (pl.col("occurred_at") < end_))
            .group_by("opportunity_id").agg(pl.col("occurred_at").max().alias("last_activity")))
    st = states(crm, sel).join(acts, on="opportunity_id", how="left").join(stage_p90(crm, sel), on="stage", how="left")

    def days(since: pl.Expr) -> pl.Expr:
        return ((pl.lit(end_) - since).dt.total_seconds() / _SECONDS_PER_DAY).floor().cast(pl.Int64)

    inactive = pl.col("days_since_activity") > inactive_days
    too_long = (pl.col("days_in_stage") > pl.col("stage_p90_days")).fill_null(False)
    lf = st.with_columns(
        days(pl.col("entered")).alias("days_in_stage"),
        days(pl.coalesce(pl.col("last_activity"), pl.col("created_at"))).alias("days_since_activity"),
    ).filter(inactive | too_long).with_columns(
        pl.when(inactive & too_long).then(pl.lit("both")).when(inactive).then(pl.lit("no_activity"))
        .otherwise(pl.lit("stage_too_long")).alias("reason"),
        pl.max_horizontal(pl.when(inactive).then(pl.col("days_since_activity")).otherwise(0),
                          pl.when(too_long).then(pl.col("days_in_stage")).otherwise(0)).alias("days_stalled"),
    )
    got = lf.select(
        "opportunity_id", pl.col("name").alias("opportunity"), "owner_id", "owner", "team_id", "account_id",
        "account", "stage", pl.col("amount_base").alias("amount"), "close_date", "days_in_stage", "stage_p90_days",
        pl.col("last_activity").dt.date(), "days_since_activity", "days_stalled", "reason", "_nofx",
    ).collect()
    got = check_fx(got.with_columns(pl.col("_nofx").cast(pl.Int64)), sel, st, "opportunity_history", "snapshot")
    return got.sort(["amount", "days_stalled", "opportunity_id"], descending=[True, True, False], nulls_last=True)


def lost_reasons(crm, start=None, end=None, team=None, region=None, product=None, as_of=None) -> pl.DataFrame:
    """Deals lost in the period (by close date, up to the as-of day) by ``lost_reason``: ``lost_reason,
    deals, amount, share_deals, share_amount, lost_at_stage`` (the most common last open stage before the
    loss, from the history). Amounts in the base currency at the close date; an empty reason is null.
    Most deals first."""
    sel = select(crm, start, end, team, region, product, as_of)
    lost = opportunities(crm, sel).filter(
        pl.col("is_closed") & ~pl.col("is_won") & pl.col("close_date").is_between(sel.start, sel.as_of))
    lost = to_base(lost, sel, "close_date")
    last_open = (history(crm, sel).filter(pl.col("stage").is_in(OPEN_STAGES)).group_by("opportunity_id")
                 .agg(pl.col("stage").last().alias("_last")))
    got = lost.join(last_open, on="opportunity_id", how="left").group_by("lost_reason").agg(
        pl.len().cast(pl.Int64).alias("deals"), pl.col("amount_base").sum().alias("amount"),
        pl.col("_last").drop_nulls().mode().sort().first().alias("lost_at_stage"), _NOFX,
    ).collect()
    got = check_fx(got, sel, lost, "opportunities", "close_date")
    return got.with_columns(
        (pl.col("deals") / pl.col("deals").sum()).alias("share_deals"),
        pl.when(pl.col("amount").sum() > 0).then(pl.col("amount") / pl.col("amount").sum()).alias("share_amount"),
    ).select("lost_reason", "deals", "amount", "share_deals", "share_amount", "lost_at_stage").sort(
        ["deals", "amount", "lost_reason"], descending=[True, True, False], nulls_last=True)
