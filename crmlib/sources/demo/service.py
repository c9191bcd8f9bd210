"""Customer service: cases, their event history (status changes and replies), and surveys."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import polars as pl

from ... import schema
from ._base import (
    END_T,
    N_MONTHS,
    add_business_hours,
    any_time,
    categorical,
    day_weights,
    dt_series,
    id_expr,
    labels,
    month_start_day,
    office_time,
    rng_for,
    sample_days,
    scaled,
)
from .accounts import contact_at
from .org import SERVICE_TEAMS

CASES_AT_SCALE_1 = 15_000
CASE_CHANNELS = schema.ENUMS["case_channel"]
CASE_CHANNEL_P = (0.35, 0.20, 0.20, 0.20, 0.05)
PRIORITIES = schema.ENUMS["priority"]
PRIORITY_P = (0.25, 0.50, 0.18, 0.07)
CATEGORIES = ("technical", "bug", "billing", "account", "onboarding", "feature_request")
CATEGORY_P = (0.30, 0.15, 0.15, 0.15, 0.10, 0.15)
ACCOUNT_WEIGHT = (3.0, 1.5, 1.0)  # cases per account, by segment
STATUSES = schema.ENUMS["case_status"]
EVENT_TYPES = schema.ENUMS["case_event_type"]

# SLA policy: first public agent reply within this many business hours (Mon-Fri 09:00-18:00).
FIRST_REPLY_TARGET_BH = {"low": 24.0, "normal": 8.0, "high": 4.0, "urgent": 1.0}
# --------------------------------------------------------------------------------------------
# PLANTED TRUTH 4 - SLA problem. First reply time (business hours) is log-normal with median
# FIRST_REPLY_MEDIAN_BH[priority] x TEAM_SPEED[team] and log-sd FIRST_REPLY_SIGMA - except in
# the cell SLA_PROBLEM (team "Technical Support", priority "high"), where the median is
# multiplied by SLA_PROBLEM["multiplier"]: its median first reply is the slowest of all
# team x priority cells and its SLA compliance by far the lowest (~33% against 85-99% elsewhere).
# --------------------------------------------------------------------------------------------
FIRST_REPLY_MEDIAN_BH = {"low": 2.5, "normal": 2.0, "high": 1.0, "urgent": 0.4}
FIRST_REPLY_SIGMA = 0.9
TEAM_SPEED = (1.0, 1.15, 1.0, 0.7)  # T09..T12
SLA_PROBLEM = {"team_id": "T11", "team": "Technical Support", "priority": "high", "multiplier": 6.0}
REPLY_MEDIAN_BH, SOLVE_MEDIAN_BH = 3.0, 2.0  # later agent replies; solving after the last reply
P_INTERNAL_NOTE, P_HOLD, P_REOPEN = 0.20, 0.08, 0.06
AUTO_CLOSE_DAYS = 4.0
CSAT_RESPONSE_RATE, NPS_RESPONSE_RATE, NPS_SAMPLE = 0.35, 0.30, 0.25
# P(CSAT 4-5) when the first reply met / missed the SLA
P_SATISFIED = (0.88, 0.62)


def cases(w: SimpleNamespace, seed: int, scale: float) -> dict[str, pl.DataFrame]:
    rng = rng_for(seed, "cases")
    A, org = w.acc, w.org
    n = scaled(CASES_AT_SCALE_1, scale, minimum=50)
    t0 = np.sort(sample_days(rng, n, day_weights(season=False, weekend=0.35)) + any_time(rng, n))
    cw = np.cumsum(np.asarray(ACCOUNT_WEIGHT)[A.segment])
    k = np.maximum(np.searchsorted(A.t, t0, side="right"), 1)
    acc = np.minimum(np.searchsorted(cw, rng.random(n) * cw[k - 1], side="right"), k - 1)
    contact = np.where(rng.random(n) < 0.9, contact_at(w, rng, acc, t0), -1)
    channel = categorical(rng, CASE_CHANNEL_P, n)
    priority = categorical(rng, PRIORITY_P, n)
    category = categorical(rng, CATEGORY_P, n)
    team = np.where(A.segment[acc] == 0, 3, np.where(category <= 1, 2, np.where(A.region[acc] <= 1, 0, 1)))
    k_agent = org.team_agent_start[team] + np.floor(rng.random(n) * org.team_agent_count[team]).astype(np.int64)
    agent = org.agent_user[k_agent]

    # PLANTED TRUTH 4: first reply delay in business hours.
    median = np.asarray([FIRST_REPLY_MEDIAN_BH[p] for p in PRIORITIES])[priority] * np.asarray(TEAM_SPEED)[team]
    bad = (team == [t[0] for t in SERVICE_TEAMS].index(SLA_PROBLEM["team_id"])) & (
        priority == PRIORITIES.index(SLA_PROBLEM["priority"]))
    median = np.where(bad, median * SLA_PROBLEM["multiplier"], median)
    frt = 0.05 + median * np.exp(rng.normal(0.0, FIRST_REPLY_SIGMA, n))
    met = frt <= np.asarray([FIRST_REPLY_TARGET_BH[p] for p in PRIORITIES])[priority]

    ev_case, ev_t, ev_type, ev_status, ev_agent = [], [], [], [], []

    def emit(mask, times, etype, status=-1, by_agent=True):
        idx = np.flatnonzero(mask)
        ev_case.append(idx)
        ev_t.append(times[idx] if np.ndim(times) else np.full(len(idx), times))
        ev_type.append(np.full(len(idx), EVENT_TYPES.index(etype)))
        ev_status.append(np.full(len(idx), status))
        ev_agent.append(agent[idx] if by_agent else np.full(len(idx), -1))

    everyone = np.ones(n, dtype=bool)
    S = {s: STATUSES.index(s) for s in STATUSES}
    emit(everyone, t0, "status_change", S["new"], by_agent=False)
    note = rng.random(n) < P_INTERNAL_NOTE
    emit(note, add_business_hours(t0, frt * rng.uniform(0.2, 0.8, n)), "internal_note")
    t1 = add_business_hours(t0, frt)
    emit(everyone, t1, "status_change", S["open"])
    emit(everyone, t1, "agent_reply")
    cur = t1.copy()
    rounds = np.minimum(rng.poisson(1.0, n), 4)
    for j in range(4):  # back-and-forth with the customer (at most four rounds)
        act = rounds > j
        emit(act, cur + 1.0 / 1440, "status_change", S["pending"])
        t_c = cur + 0.01 + rng.exponential(1.5, n)
        emit(act, t_c, "customer_reply", by_agent=False)
        emit(act, t_c, "status_change", S["open"])
        t_r = add_business_hours(t_c, 0.05 + REPLY_MEDIAN_BH * np.exp(rng.normal(0.0, 0.8, n)))
        emit(act, t_r, "agent_reply")
        cur = np.where(act, t_r, cur)
    hold = rng.random(n) < P_HOLD
    emit(hold, cur + 1.0 / 1440, "status_change", S["on_hold"])
    t_h = add_business_hours(cur + 1.0 / 1440, 1.0 + rng.exponential(16.0, n))
    emit(hold, t_h, "status_change", S["open"])
    cur = np.where(hold, t_h, cur)
    t_solved = add_business_hours(cur, 0.05 + SOLVE_MEDIAN_BH * np.exp(rng.normal(0.0, 0.8, n)))
    emit(everyone, t_solved, "status_change", S["solved"])
    reopen = rng.random(n) < P_REOPEN
    emit(~reopen, t_solved + AUTO_CLOSE_DAYS, "status_change", S["closed"], by_agent=False)
    t_back = t_solved + rng.uniform(0.1, AUTO_CLOSE_DAYS - 0.5, n)
    emit(reopen, t_back, "customer_reply", by_agent=False)
    emit(reopen, t_back, "status_change", S["open"])
    t_r2 = add_business_hours(t_back, 0.05 + REPLY_MEDIAN_BH * np.exp(rng.normal(0.0, 0.8, n)))
    emit(reopen, t_r2, "agent_reply")
    t_solved2 = add_business_hours(t_r2, 0.05 + SOLVE_MEDIAN_BH * np.exp(rng.normal(0.0, 0.8, n)))
    emit(reopen, t_solved2, "status_change", S["solved"])
    emit(reopen, t_solved2 + AUTO_CLOSE_DAYS, "status_change", S["closed"], by_agent=False)

    seq = np.concatenate([np.full(len(c), i) for i, c in enumerate(ev_case)])
    e_case, e_t, e_type, e_status, e_agent = (np.concatenate(x) for x in (ev_case, ev_t, ev_type, ev_status,
                                                                          ev_agent))
    keep = e_t < END_T - 1e-4  # as of DEMO_END
    e_case, e_t, e_type, e_status, e_agent, seq = (a[keep] for a in (e_case, e_t, e_type, e_status, e_agent, seq))
    order = np.lexsort((seq, e_t, e_case))
    e_case, e_t, e_type, e_status, e_agent = (a[order] for a in (e_case, e_t, e_type, e_status, e_agent))

    # Current status = last status change; closed_at = last time solved while solved or closed.
    is_sc = e_type == EVENT_TYPES.index("status_change")
    sc_case, sc_status, sc_t = e_case[is_sc], e_status[is_sc], e_t[is_sc]
    last = np.cumsum(np.bincount(sc_case, minlength=n)) - 1
    status = sc_status[last]
    s_case, s_t = sc_case[sc_status == S["solved"]], sc_t[sc_status == S["solved"]]
    last_solve = np.r_[s_case[1:] != s_case[:-1], True] if len(s_case) else np.zeros(0, dtype=bool)
    solved_at = np.full(n, np.nan)
    solved_at[s_case[last_solve]] = s_t[last_solve]  # events are sorted by (case, time)
    done = status >= S["solved"]

    case_df = pl.DataFrame(
        {
            "idx": np.arange(n),
            "account_idx": acc,
            "contact_idx": contact,
            "created_at": dt_series("created_at", t0),
            "channel": labels(CASE_CHANNELS, channel),
            "priority": labels(PRIORITIES, priority),
            "category": labels(CATEGORIES, category),
            "team_id": labels([t[0] for t in SERVICE_TEAMS], team),
            "agent_id": labels(org.user_ids, agent),
            "status": labels(STATUSES, status),
            "closed_at": dt_series("closed_at", solved_at, done),
        },
        schema_overrides={c: pl.String for c in ("channel", "priority", "category", "team_id", "agent_id",
                                                  "status")},
    ).select(
        id_expr("idx", "CS", 7, "case_id"),
        id_expr("account_idx", "A", 6, "account_id"),
        id_expr("contact_idx", "CT", 7, "contact_id"),
        pl.exclude("idx", "account_idx", "contact_idx"),
    )
    replies = np.isin(e_type, [EVENT_TYPES.index("agent_reply"), EVENT_TYPES.index("customer_reply")])
    has_public = replies | (e_type == EVENT_TYPES.index("internal_note"))
    ev_df = pl.DataFrame(
        {
            "idx": np.arange(len(e_case)),
            "case_idx": e_case,
            "occurred_at": dt_series("occurred_at", e_t),
            "event_type": labels(EVENT_TYPES, e_type),
            "status": labels(STATUSES, e_status),
            "agent_id": labels(org.user_ids, np.where(e_agent >= 0, e_agent, -1)),
            "is_public": replies,
            "has_public": has_public,
        },
        schema_overrides={"event_type": pl.String, "status": pl.String, "agent_id": pl.String},
    ).select(
        id_expr("idx", "EV", 8, "event_id"),
        id_expr("case_idx", "CS", 7, "case_id"),
        "occurred_at", "event_type", "status", "agent_id",
        pl.when(pl.col("has_public")).then(pl.col("is_public")).otherwise(None).alias("is_public"),
    )
    w.case = SimpleNamespace(n=n, t=t0, account=acc, contact=contact, team=team, priority=priority, met=met,
                             first_solved=t_solved, frt=frt)
    return {"cases": case_df, "case_events": ev_df}


def surveys(w: SimpleNamespace, seed: int) -> pl.DataFrame:
    """CSAT (1-5) and CES (1-7) after solved cases; NPS (0-10) to a quarterly sample of accounts."""
    rng = rng_for(seed, "surveys")
    C, A = w.case, w.acc
    # CSAT one hour after the first solve; better when the first reply met the SLA.
    ci = np.flatnonzero(C.first_solved + 1.0 / 24 < END_T)
    ces = ci[rng.random(len(ci)) < 0.10]
    c_all = np.concatenate([ci, ces])
    kind = np.concatenate([np.zeros(len(ci), dtype=np.int64), np.full(len(ces), 2)])
    sent_c = C.first_solved[c_all] + 1.0 / 24
    satisfied = rng.random(len(c_all)) < np.where(C.met[c_all], P_SATISFIED[0], P_SATISFIED[1])
    csat = np.where(satisfied, 4 + (rng.random(len(c_all)) < 0.55), 1 + categorical(rng, (0.3, 0.3, 0.4),
                                                                                    len(c_all)))
    ces_score = 1 + categorical(rng, (0.03, 0.04, 0.08, 0.15, 0.25, 0.25, 0.20), len(c_all))
    score_c = np.where(kind == 0, csat, ces_score)
    # NPS: each quarter a sample of the accounts that exist, to one of their contacts.
    q_starts = month_start_day(np.arange(0, N_MONTHS, 3))
    acc_by_q = [np.flatnonzero((A.t < s) & (rng.random(A.n) < NPS_SAMPLE)) for s in q_starts]
    q_of = np.concatenate([np.full(len(a), i) for i, a in enumerate(acc_by_q)])
    n_acc = np.concatenate(acc_by_q)
    sent_n = q_starts[q_of] + rng.integers(0, 20, len(q_of)) + office_time(rng, len(q_of))
    score_n = categorical(rng, (0.02, 0.01, 0.02, 0.03, 0.03, 0.05, 0.09, 0.15, 0.20, 0.22, 0.18), len(q_of))

    sent = np.concatenate([sent_c, sent_n])
    kind = np.concatenate([kind, np.ones(len(q_of), dtype=np.int64)])
    case = np.concatenate([c_all, np.full(len(q_of), -1)])
    account = np.concatenate([C.account[c_all], n_acc])
    contact = np.concatenate([C.contact[c_all], contact_at(w, rng, n_acc, sent_n)])
    score = np.concatenate([score_c, score_n])
    rate = np.where(kind == 1, NPS_RESPONSE_RATE, CSAT_RESPONSE_RATE)
    responded_t = sent + 0.01 + rng.exponential(0.8, len(sent))
    answered = (rng.random(len(sent)) < rate) & (responded_t < END_T)
    keep = sent < END_T
    order = np.flatnonzero(keep)[np.argsort(sent[keep], kind="stable")]
    return pl.DataFrame(
        {
            "idx": np.arange(len(order)),
            "type": labels(schema.ENUMS["survey_type"], kind[order]),
            "sent_at": dt_series("sent_at", sent[order]),
            "responded_at": dt_series("responded_at", responded_t[order], answered[order]),
            "score": pl.Series(np.where(answered[order], score[order], 0)).cast(pl.Int64),
            "answered": answered[order],
            "case_idx": case[order],
            "account_idx": account[order],
            "contact_idx": contact[order],
        },
        schema_overrides={"type": pl.String},
    ).select(
        id_expr("idx", "SV", 7, "survey_id"),
        "type",
        "sent_at",
        "responded_at",
        pl.when(pl.col("answered")).then(pl.col("score")).otherwise(None).alias("score"),
        id_expr("case_idx", "CS", 7, "case_id"),
        id_expr("account_idx", "A", 6, "account_id"),
        id_expr("contact_idx", "CT", 7, "contact_id"),
    )
