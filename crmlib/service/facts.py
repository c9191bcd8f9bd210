"""Case facts: each case's status timeline, times and SLA outcome, as of an instant (see
:mod:`crmlib.service` for the definitions)."""

from __future__ import annotations

import datetime as dt
import weakref
from dataclasses import dataclass

import polars as pl

from ..calendars import US_HOUR, Calendar, check_mode, load_calendar
from ._common import (
    AGENT_WAIT,
    CASE_COLUMNS,
    DONE,
    REQUESTER_WAIT,
    apply_filters,
    attach_dims,
    dims_of,
    filters_of,
    window_of,
)
from .sla import Sla, load_sla, outcomes


@dataclass(frozen=True)
class History:
    """Every case created by ``T`` and its history up to ``T`` (see :func:`history`)."""

    cases: pl.DataFrame  # CASE_COLUMNS; cases only in case_events created at their first event
    events: pl.DataFrame  # sorted by case and time
    timeline: pl.DataFrame  # status intervals (:func:`timeline`)
    has_replies: bool  # any agent reply at all (a log of status changes only has none)


def read_history(crm, T: dt.datetime) -> History:
    """The cases and their events up to ``T``, read once (see :func:`history` for the cached one)."""
    ev_lf = crm.case_events.select("case_id", "event_id", "occurred_at", "event_type", "status", "agent_id",
                                   "is_public").filter(pl.col("occurred_at") <= T)
    cs_lf = crm.cases.select(CASE_COLUMNS)
    events, cases = pl.collect_all([ev_lf, cs_lf])
    events = events.sort("case_id", "occurred_at", "event_id")
    stubs = events.group_by("case_id", maintain_order=True).agg(
        pl.col("occurred_at").first().alias("_first"), pl.col("agent_id").drop_nulls().last().alias("_agent"))
    cases = (cases.join(stubs, on="case_id", how="full", coalesce=True)
             .with_columns(pl.coalesce("created_at", "_first").alias("created_at"),
                           pl.coalesce("agent_id", "_agent").alias("agent_id"))
             .drop("_first", "_agent")
             .filter(pl.col("created_at") <= T)
             .sort("case_id"))
    has_replies = bool(events.select((pl.col("event_type") == "agent_reply").any()).item())
    events = events.join(cases.select("case_id"), on="case_id", how="semi")
    return History(cases, events, timeline(cases, events, T), has_replies)


def select_cases(crm, frame: pl.DataFrame, dims: list[str], filters: dict[str, tuple]) -> pl.DataFrame:
    """A frame of cases with a column per dimension of ``dims`` and ``filters``, filtered."""
    return apply_filters(attach_dims(crm, frame, list(dict.fromkeys([*dims, *filters]))), filters)


def timeline(cases: pl.DataFrame, events: pl.DataFrame, T: dt.datetime) -> pl.DataFrame:
    """Status intervals ``case_id, t, end (null: still running at T), status`` sorted by case and time."""
    sc = events.filter((pl.col("event_type") == "status_change") & pl.col("status").is_not_null())
    rows = [
        cases.select("case_id", pl.col("created_at").alias("t"), pl.lit("new").alias("status"),
                     pl.lit(0).alias("_seq"), pl.lit(None, pl.String).alias("event_id"), pl.lit(False).alias("_real")),
        sc.select("case_id", pl.col("occurred_at").alias("t"), "status", pl.lit(1).alias("_seq"), "event_id",
                  pl.lit(True).alias("_real")),
        cases.join(sc.select("case_id").unique(), on="case_id", how="anti")
        .filter(pl.col("closed_at").is_not_null() & (pl.col("closed_at") <= T))
        .select("case_id", pl.col("closed_at").alias("t"), pl.lit("solved").alias("status"), pl.lit(1).alias("_seq"),
                pl.lit(None, pl.String).alias("event_id"), pl.lit(True).alias("_real")),
    ]
    tl = (pl.concat(rows).join(cases.select("case_id", "created_at"), on="case_id")
          .with_columns(pl.max_horizontal("t", "created_at").alias("t"))
          .sort("case_id", "t", "_seq", "event_id", nulls_last=False))
    same_next = pl.col("case_id") == pl.col("case_id").shift(-1)
    same_prev = (pl.col("case_id") == pl.col("case_id").shift(1)).fill_null(False)
    done = pl.col("status").is_in(DONE)
    prev_done = pl.when(same_prev).then(done.shift(1)).otherwise(False)
    return tl.with_columns(
        pl.when(same_next).then(pl.col("t").shift(-1)).alias("end"),
        (done & ~prev_done).alias("_solve"),
        (~done & prev_done).alias("_reopen"),
    )


def clock_stats(tl: pl.DataFrame, T: dt.datetime, cal: Calendar, mode: str, pause: tuple[str, ...],
                targets: pl.DataFrame | None) -> pl.DataFrame:
    """Per case, in clock ``mode``: time in requester/agent wait statuses and on the SLA clock (not done,
    not paused), and the clock value at which the resolution target is passed (``res_breach_clock``)."""
    c_T = cal.clock_of(T, mode)
    same_next = pl.col("case_id") == pl.col("case_id").shift(-1)
    c = tl.select("case_id", "status", cal.clock(pl.col("t"), mode).alias("cs"))
    c = c.with_columns(pl.when(same_next).then(pl.col("cs").shift(-1)).otherwise(c_T).alias("ce"))
    c = c.with_columns((pl.col("ce") - pl.col("cs")).clip(lower_bound=0).alias("dur"),
                       (~pl.col("status").is_in([*DONE, *pause])).alias("_active"))
    aggs = [
        pl.col("dur").filter(pl.col("status").is_in(REQUESTER_WAIT)).sum().alias("requester_us"),
        pl.col("dur").filter(pl.col("status").is_in(AGENT_WAIT)).sum().alias("agent_us"),
        pl.col("dur").filter(pl.col("_active")).sum().alias("active_us"),
    ]
    if targets is not None:
        act = pl.when(pl.col("_active")).then(pl.col("dur")).otherwise(0)
        c = c.join(targets, on="case_id", how="left").with_columns(
            (act.cum_sum().over("case_id") - act).alias("_before"))
        crossing = (pl.col("_active") & (pl.col("_before") < pl.col("res_target_us"))
                    & (pl.col("_before") + pl.col("dur") > pl.col("res_target_us")))
        aggs.append((pl.col("cs") + pl.col("res_target_us") - pl.col("_before")).filter(crossing).min()
                    .alias("res_breach_clock"))
    return c.group_by("case_id").agg(aggs)


def case_facts(crm, period=None, as_of=None, hours: str = "business", filters=None, by=(), calendar=None,
               sla=None) -> pl.DataFrame:
    """One row per case (created by the as-of instant) with its times and SLA outcome.

    Columns: the case's own (``case_id, created_at, channel, priority, category, team_id, agent_id,
    account_id``), the dimensions of ``by`` and ``filters``, ``status`` and ``is_open`` as of ``T``,
    ``first_response_at, first_solved_at, solved_at`` (the last solve, when done), ``reopens``; times in
    hours of ``hours``: ``first_response_hours, first_resolution_hours, full_resolution_hours,
    requester_wait_hours, agent_wait_hours``; SLA (in the SLA file's clock): ``sla_policy``,
    ``first_response_target_hours, resolution_target_hours``, per target ``<t>_elapsed_hours``,
    ``<t>_sla`` (met, breached, pending; null without target), ``<t>_sla_at`` (when it was settled),
    ``<t>_due_at`` (pending targets: when the clock will pass the target if it keeps running; null
    while paused) and ``<t>_remaining_hours``, for ``t`` in ``first_response, resolution``; and for the
    case ``sla``, ``sla_at``, ``remaining_hours`` (the least time left among its pending targets).

    ``period`` only sets the as-of instant here (the end of the period, or the data's last timestamp).
    """
    w = window_of(crm, period, as_of)
    return facts_for(crm, w.T, hours, filters_of(filters), dims_of(by), load_calendar(calendar), load_sla(sla))


_CACHE: dict[tuple, tuple[weakref.ref, object]] = {}
_CACHE_SIZE = 6


def clear_cache() -> None:
    """Forget the case histories and facts kept per data handle (the last few, for the questions asked
    of the same ``Crm`` in a row; a new ``crmlib.open`` always reads the data again)."""
    _CACHE.clear()


def _cached(crm, key: tuple, compute):
    hit = _CACHE.get((id(crm), *key))
    if hit is not None and hit[0]() is crm:
        return hit[1]
    value = compute()
    if len(_CACHE) >= _CACHE_SIZE:
        _CACHE.pop(next(iter(_CACHE)))
    _CACHE[(id(crm), *key)] = (weakref.ref(crm), value)
    return value


def history(crm, T: dt.datetime) -> History:
    """:func:`read_history`, kept for the next questions about the same data handle and instant."""
    return _cached(crm, ("history", T), lambda: read_history(crm, T))


def facts_for(crm, T, hours: str, filters: dict, dims: list[str], cal: Calendar, sla: Sla) -> pl.DataFrame:
    """The case facts of :func:`case_facts`: computed for every case once per data handle, instant, clock,
    calendar and SLA (a notebook and the KPI engine ask several questions in a row), then grouped and
    filtered (a case's facts do not depend on the other cases)."""
    check_mode(hours)
    if T is None:  # no case and no event at all: the same (empty) frame
        T = dt.datetime(1970, 1, 1)
    facts = _cached(crm, ("facts", T, hours, repr(cal), repr(sla)),
                    lambda: compute_facts(history(crm, T), T, hours, cal, sla))
    return select_cases(crm, facts, dims, filters)


def compute_facts(h: History, T: dt.datetime, hours: str, cal: Calendar, sla: Sla) -> pl.DataFrame:
    """The case facts of every case (see :func:`case_facts`): whole-column steps only, no loop over cases."""
    cases, events, tl, has_replies = h.cases, h.events, h.timeline, h.has_replies

    # first responses: public agent replies, or (status-only logs) the first change away from new
    if has_replies:
        first = (events.filter((pl.col("event_type") == "agent_reply") & pl.col("is_public").fill_null(True))
                 .group_by("case_id").agg(pl.col("occurred_at").min().alias("first_response_at")))
    else:
        first = (tl.filter(pl.col("_real") & (pl.col("status") != "new"))
                 .group_by("case_id").agg(pl.col("t").min().alias("first_response_at")))
    per_case = tl.group_by("case_id").agg(
        pl.col("t").filter(pl.col("_solve")).min().alias("first_solved_at"),
        pl.col("t").filter(pl.col("_solve")).max().alias("_last_solve"),
        pl.col("status").last().alias("_status"),
        pl.col("_reopen").sum().cast(pl.Int64).alias("reopens"),
    )
    f = (cases.rename({"status": "_case_status"})
         .join(per_case, on="case_id", how="left")
         .join(first, on="case_id", how="left")
         .with_columns(pl.when(pl.col("first_response_at").is_not_null())
                       .then(pl.max_horizontal("first_response_at", "created_at")).alias("first_response_at"),
                       pl.coalesce("_status", "_case_status").alias("status"))
         .with_columns(pl.col("status").is_in(DONE).not_().alias("is_open"))
         .with_columns(pl.when(~pl.col("is_open")).then(pl.col("_last_solve")).alias("solved_at"))
         .drop("_last_solve", "_status", "_case_status", "closed_at"))

    # SLA targets of each case
    pol = sla.frame()
    f = f.join(pol, on="priority", how="left")
    if sla.default is not None:  # cases whose priority has no policy (or is empty)
        d = sla.default
        no_policy = pl.col("sla_policy").is_null()
        f = f.with_columns(
            pl.when(no_policy).then(pl.lit(d.name)).otherwise("sla_policy").alias("sla_policy"),
            *[pl.when(no_policy).then(pl.lit(None if v is None else round(v * US_HOUR), pl.Int64))
              .otherwise(c).alias(c) for c, v in (("fr_target_us", d.first_response), ("res_target_us", d.resolution))],
        )
    targets = f.select("case_id", "res_target_us")

    # times in the hours asked, and the SLA clock
    modes = dict.fromkeys([hours, sla.hours])
    stats = {m: clock_stats(tl, T, cal, m, sla.pause, targets if m == sla.hours else None) for m in modes}
    f = f.join(stats[hours].select("case_id", "requester_us", "agent_us"), on="case_id", how="left")
    created = cal.clock(pl.col("created_at"), hours)

    def span(col: str) -> pl.Expr:
        return (cal.clock(pl.col(col), hours) - created) / US_HOUR

    f = f.with_columns(
        span("first_response_at").alias("first_response_hours"),
        span("first_solved_at").alias("first_resolution_hours"),
        span("solved_at").alias("full_resolution_hours"),
        (pl.col("requester_us") / US_HOUR).alias("requester_wait_hours"),
        (pl.col("agent_us") / US_HOUR).alias("agent_wait_hours"),
    ).drop("requester_us", "agent_us")
    f = outcomes(f, stats[sla.hours], T, cal, sla)
    return f.sort("case_id")
