"""Service analytics by period: volume, backlog by age, SLA reports, about-to-breach worklist, time
distributions (see :mod:`crmlib.service` for the definitions)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import polars as pl

from ..calendars import load_calendar
from ..errors import ConfigError, suggest
from ..kpis._periods import check_grain
from ._common import (
    AGE_BUCKETS,
    DONE,
    SLA_METRICS,
    TIME_METRICS,
    Window,
    complete,
    dims_of,
    filters_of,
    grid,
    in_window,
    next_start,
    period_col,
    period_starts,
    window_of,
)
from .facts import facts_for, history, select_cases
from .sla import load_sla


def prepare(crm, by, grain, period, filters, as_of=None, hours="business", calendar=None, sla=None):
    dims = dims_of(by)
    grain = check_grain(grain)
    w = window_of(crm, period, as_of)
    facts = facts_for(crm, w.T, hours, filters_of(filters), dims, load_calendar(calendar), load_sla(sla))
    return facts, w, dims, grain


def _count_by_period(facts: pl.DataFrame, col: str, w: Window, grain: str, dims: list[str], name: str,
                     cond: pl.Expr | None = None) -> pl.DataFrame:
    keep = facts.filter(in_window(col, w) & (cond if cond is not None else True))
    return keep.group_by(period_col(col, grain), *dims).agg(pl.len().cast(pl.Int64).alias(name))


def volume(crm, by=(), grain: str = "month", period=None, filters=None, as_of=None) -> pl.DataFrame:
    """Cases created and solved per period: ``period, <by…>, created, solved``.

    ``solved`` counts cases by their last solve (cases done as of the as-of instant), like the catalog's
    ``solved_cases``. Every period and every group found gets a row (0 when nothing happened).
    """
    facts, w, dims, grain = prepare(crm, by, grain, period, filters, as_of)
    if w.lo is None:
        return pl.DataFrame(schema={"period": pl.Date, **{d: pl.String for d in dims}, "created": pl.Int64,
                                    "solved": pl.Int64})
    created = _count_by_period(facts, "created_at", w, grain, dims, "created")
    solved = _count_by_period(facts, "solved_at", w, grain, dims, "solved")
    got = created.join(solved, on=["period", *dims], how="full", coalesce=True, nulls_equal=True)
    return complete(grid(facts, w, grain, dims), got, dims, ("created", "solved"))


def backlog(crm, by=(), grain: str = "month", period=None, filters=None, as_of=None,
            buckets=AGE_BUCKETS) -> pl.DataFrame:
    """Open cases at the end of each period by age: ``period, <by…>, age_bucket, cases``.

    A case is open at an instant when its status then (from the timeline) is not solved or closed; its
    age is the calendar time since creation. ``buckets`` are ``(label, from_days, to_days or None)``.
    The last period's snapshot is taken at the as-of instant. Computed without a loop over cases or
    periods: each open interval × age bucket covers a range of period ends (two binary searches), and
    the ranges are added up with a running sum.
    """
    dims = dims_of(by)
    grain = check_grain(grain)
    w = window_of(crm, period, as_of)
    schema_out = {"period": pl.Date, **{d: pl.String for d in dims}, "age_bucket": pl.String, "cases": pl.Int64}
    if w.lo is None:
        return pl.DataFrame(schema=schema_out)
    h = history(crm, w.T)
    flt = filters_of(filters)
    cases = select_cases(crm, h.cases, dims, flt)
    tl = h.timeline.filter(~pl.col("status").is_in(DONE))
    if flt:
        tl = tl.join(cases.select("case_id"), on="case_id", how="semi")
    starts = period_starts(w.lo, w.hi, grain)
    starts = starts.filter(starts <= w.T.date())  # no snapshot of a period that starts after the as-of instant
    if starts.len() == 0:
        return pl.DataFrame(schema=schema_out)
    ends = [min(dt.datetime.combine(next_start(s, grain), dt.time()), w.T) for s in starts]
    ends_us = pl.Series(ends, dtype=pl.Datetime("us")).cast(pl.Int64)
    labels = [b[0] for b in buckets]
    parts = []
    for label, lo_d, hi_d in buckets:  # one vectorised pass per bucket (five), not per case
        age_lo = pl.col("created_at") + pl.duration(days=lo_d)
        lo = pl.max_horizontal(pl.col("t"), age_lo)
        hi = pl.col("end") if hi_d is None else pl.min_horizontal(pl.col("end"), pl.col("created_at")
                                                                  + pl.duration(days=hi_d))
        parts.append(tl.select("case_id", lo.alias("lo"), hi.alias("hi"), pl.lit(label).alias("age_bucket")))
    iv = pl.concat(parts).filter(pl.col("hi").is_null() | (pl.col("hi") > pl.col("lo")))
    # [lo, hi) covers the period ends P_k with lo <= P_k < hi: k from first(P_k >= lo) to first(P_k >= hi)
    k_lo = ends_us.search_sorted(iv["lo"].cast(pl.Int64), side="left")
    k_hi = ends_us.search_sorted(iv["hi"].cast(pl.Int64).fill_null(ends_us.max() + 1), side="left")
    iv = iv.with_columns(k_lo.alias("k_lo"), k_hi.alias("k_hi")).filter(pl.col("k_hi") > pl.col("k_lo"))
    if dims:
        iv = iv.join(cases.select("case_id", *dims), on="case_id", how="left")
    keys = [*dims, "age_bucket"]
    steps = pl.concat([
        iv.group_by(*keys, pl.col("k_lo").alias("k")).agg(pl.len().cast(pl.Int64).alias("step")),
        iv.group_by(*keys, pl.col("k_hi").alias("k")).agg((-pl.len().cast(pl.Int64)).alias("step")),
    ]).group_by(*keys, "k").agg(pl.col("step").sum())
    periods = pl.DataFrame({"k": pl.Series(range(len(starts)), dtype=pl.UInt32), "period": starts})
    groups = cases.select(dims).unique() if dims else None
    cells = periods.join(pl.DataFrame({"age_bucket": labels}), how="cross")
    if groups is not None:
        cells = cells.join(groups, how="cross")
    out = (cells.join(steps.with_columns(pl.col("k").cast(pl.UInt32)), on=[*keys, "k"], how="left", nulls_equal=True)
           .with_columns(pl.col("step").fill_null(0))
           .sort("k")
           .with_columns(pl.col("step").cum_sum().over(keys).alias("cases")))
    order = pl.col("age_bucket").replace_strict({b: i for i, b in enumerate(labels)}, return_dtype=pl.Int64)
    return out.sort("period", *dims, order, nulls_last=True).select(schema_out.keys())


def trends(crm, grain: str = "month", period=None, filters=None, as_of=None) -> pl.DataFrame:
    """Volume and backlog over time, long: ``period, metric (created, solved, backlog), age_bucket, value``
    (``age_bucket`` only for backlog rows). Input of :func:`crmlib.charts_service.plot_trends`."""
    v = volume(crm, grain=grain, period=period, filters=filters, as_of=as_of)
    b = backlog(crm, grain=grain, period=period, filters=filters, as_of=as_of)
    if v.height == 0 or (v["created"].sum() == 0 and v["solved"].sum() == 0 and b["cases"].sum() == 0):
        return pl.DataFrame(schema={"period": pl.Date, "metric": pl.String, "age_bucket": pl.String,
                                    "value": pl.Int64})
    flows = v.unpivot(["created", "solved"], index="period", variable_name="metric").select(
        "period", "metric", pl.lit(None, pl.String).alias("age_bucket"), pl.col("value").cast(pl.Int64))
    stock = b.select("period", pl.lit("backlog").alias("metric"), "age_bucket", pl.col("cases").alias("value"))
    return pl.concat([flows, stock])


def sla_report(crm, by=("priority",), grain: str = "month", period=None, filters=None, as_of=None, sla=None,
               calendar=None) -> pl.DataFrame:
    """SLA outcomes settled per period: ``period, <by…>, metric, met, breached, compliance``.

    ``metric`` is ``sla`` (the case: every target of its policy met), ``first_response`` or
    ``resolution``; an outcome belongs to the period in which it became known (the achievement or the
    breach instant); ``compliance`` = met / (met + breached), null without outcome.
    """
    facts, w, dims, grain = prepare(crm, by, grain, period, filters, as_of, calendar=calendar, sla=sla)
    schema_out = {"period": pl.Date, **{d: pl.String for d in dims}, "metric": pl.String, "met": pl.Int64,
                  "breached": pl.Int64, "compliance": pl.Float64}
    if w.lo is None:
        return pl.DataFrame(schema=schema_out)
    parts = []
    for m in SLA_METRICS:
        col, at = m if m == "sla" else f"{m}_sla", "sla_at" if m == "sla" else f"{m}_sla_at"
        got = (facts.filter(pl.col(col).is_in(["met", "breached"]) & in_window(at, w))
               .group_by(period_col(at, grain), *dims)
               .agg((pl.col(col) == "met").sum().cast(pl.Int64).alias("met"),
                    (pl.col(col) == "breached").sum().cast(pl.Int64).alias("breached")))
        parts.append(complete(grid(facts, w, grain, dims), got, dims, ("met", "breached"))
                     .with_columns(pl.lit(m).alias("metric")))
    out = pl.concat(parts).with_columns(
        pl.when(pl.col("met") + pl.col("breached") > 0)
        .then(pl.col("met") / (pl.col("met") + pl.col("breached"))).alias("compliance"))
    return out.select(schema_out.keys())


def sla_cases(crm, point: dict, grain: str = "month", period=None, filters=None, as_of=None, sla=None,
              calendar=None, metric: str = "sla", lang: str = "en") -> pl.DataFrame:
    """The cases behind one cell of the SLA heatmap (:func:`crmlib.charts_service.plot_sla_heatmap` of
    :func:`sla_report` by priority): the cases of that priority whose ``metric`` outcome (met or breached)
    became known in that period, breaches first. ``point``: ``{"x": period start (YYYY-MM-DD),
    "y": priority}`` as clicked (the priority may be its label in ``lang``)."""
    from ..charts_service import t
    from ..schema import ENUMS

    if metric not in SLA_METRICS:
        raise ConfigError(f"Unknown SLA metric {metric!r}.{suggest(metric, SLA_METRICS)}")
    label = str(point.get("y"))
    priority = next((p for p in ENUMS["priority"] if label in (p, t(p, lang))), None)
    try:
        start = dt.date.fromisoformat(str(point.get("x"))[:10])
    except ValueError:
        start = None
    if priority is None or start is None:
        raise ConfigError(f"No SLA cell at {point.get('x')!r} × {label!r}; click a cell of the SLA heatmap.")
    facts, w, _, grain = prepare(crm, (), grain, period, filters, as_of, calendar=calendar, sla=sla)
    if w.lo is None:
        return pl.DataFrame()
    col, at = (metric, "sla_at") if metric == "sla" else (f"{metric}_sla", f"{metric}_sla_at")
    return (
        facts.filter(pl.col(col).is_in(["met", "breached"]) & in_window(at, w) & (pl.col("priority") == priority)
                     & (period_col(at, grain) == start))
        .select("case_id", "priority", "team_id", "agent_id", "channel", "created_at", "status",
                pl.col(col).alias("outcome"), pl.col(at).alias("known_at"), "first_response_hours",
                "full_resolution_hours")
        .sort(pl.col("outcome") != "breached", "known_at")
    )


def about_to_breach(crm, within_hours: float | None = None, filters=None, period=None, as_of=None, sla=None,
                    calendar=None, include_breached: bool = False) -> pl.DataFrame:
    """Open cases with an SLA target due within ``within_hours`` (default ``warn_within_hours`` of the SLA
    file), soonest first: ``case_id, priority, team_id, agent_id, status, created_at, target (first_response
    or resolution), target_hours, elapsed_hours, remaining_hours, due_at`` (``due_at`` null while the clock is
    paused), as of the end of ``period`` or the data's last timestamp, whichever is earlier.
    ``include_breached`` adds open cases already past a target (negative remaining time)."""
    s = load_sla(sla)
    limit = s.warn_within_hours if within_hours is None else float(within_hours)
    w = window_of(crm, period, as_of)
    facts = facts_for(crm, w.T, s.hours, filters_of(filters), [], load_calendar(calendar), s)
    parts = []
    for m in ("first_response", "resolution"):
        left = pl.col(f"{m}_target_hours") - pl.col(f"{m}_elapsed_hours")
        cond = pl.col("is_open") & (pl.col(f"{m}_sla") == "pending") & (left < limit)
        if include_breached:
            cond = cond | (pl.col("is_open") & (pl.col(f"{m}_sla") == "breached"))
        parts.append(facts.filter(cond).select(
            "case_id", "priority", "team_id", "agent_id", "status", "created_at", pl.lit(m).alias("target"),
            pl.col(f"{m}_target_hours").alias("target_hours"), pl.col(f"{m}_elapsed_hours").alias("elapsed_hours"),
            left.alias("remaining_hours"), pl.col(f"{m}_due_at").alias("due_at")))
    return pl.concat(parts).sort("remaining_hours", "case_id")


def time_summary(crm, by="priority", period=None, filters=None, as_of=None, hours: str = "business",
                 calendar=None, metrics: Sequence[str] = TIME_METRICS) -> pl.DataFrame:
    """Distribution of each time metric over the cases solved in the period (their times are final):
    ``metric, <by…>, cases, mean, p5, p25, median, p75, p95`` in hours (box plots: whiskers at p5/p95)."""
    facts, w, dims, _ = prepare(crm, by, "month", period, filters, as_of, hours, calendar)
    for m in metrics:
        if m not in TIME_METRICS:
            raise ConfigError(f"Unknown time metric {m!r}.{suggest(m, TIME_METRICS)} Use {', '.join(TIME_METRICS)}.")
    solved = facts.filter(in_window("solved_at", w)) if w.lo is not None else facts.clear()
    long = solved.unpivot(list(metrics), index=dims, variable_name="metric", value_name="hours").drop_nulls("hours")
    stats = [pl.len().cast(pl.Int64).alias("cases"), pl.col("hours").mean().alias("mean")]
    stats += [pl.col("hours").quantile(q, "linear").alias(n) for q, n in
              ((0.05, "p5"), (0.25, "p25"), (0.5, "median"), (0.75, "p75"), (0.95, "p95"))]
    order = pl.col("metric").replace_strict({m: i for i, m in enumerate(TIME_METRICS)}, return_dtype=pl.Int64)
    return long.group_by("metric", *dims).agg(stats).sort(order, *dims, nulls_last=True)


def time_values(crm, by="priority", period=None, filters=None, as_of=None, hours: str = "business",
                calendar=None) -> pl.DataFrame:
    """The time metrics of each case solved in the period, long: ``case_id, <by…>, metric, hours``
    (for histograms)."""
    facts, w, dims, _ = prepare(crm, by, "month", period, filters, as_of, hours, calendar)
    solved = facts.filter(in_window("solved_at", w)) if w.lo is not None else facts.clear()
    return solved.unpivot(list(TIME_METRICS), index=["case_id", *dims], variable_name="metric",
                          value_name="hours").drop_nulls("hours")
