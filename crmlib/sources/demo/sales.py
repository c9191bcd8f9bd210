"""Opportunities, their stage history, and sales activities."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import polars as pl

from ... import schema
from ._base import (
    DAY_MIDX,
    DAY_MONTH,
    DAY_WEEKDAY,
    END_T,
    N_DAYS,
    categorical,
    categorical_rows,
    date_series,
    day_weights,
    dt_series,
    from_business_hours,
    id_expr,
    labels,
    month_start_day,
    office_time,
    rng_for,
    sample_days,
    scaled,
    to_business_hours,
)
from .accounts import CURRENCIES
from .org import PRODUCTS, pick_rep, rep_index_of_user

OPPORTUNITIES_AT_SCALE_1 = 12_000
STAGES = schema.ENUMS["stage"]
OPEN_STAGES = schema.OPEN_STAGES
TYPES = schema.ENUMS["opportunity_type"]
TYPE_P = (0.35, 0.35, 0.30)  # deals not sourced from a lead: new / upsell / renewal
# Base win probability by deal type; multiplied by the owner's skill (PLANTED TRUTH 2, org.py).
BASE_WIN = (0.20, 0.35, 0.60)
WIN_CAP = 0.95
LOST_AT_STAGE_P = (0.30, 0.25, 0.20, 0.15, 0.10)  # last open stage of a lost deal
CYCLE_DAYS = (130.0, 70.0, 35.0)  # mean days from creation to close, by segment
MEDIAN_AMOUNT_CNY = (450_000.0, 110_000.0, 28_000.0)  # by segment
TYPE_AMOUNT = (1.0, 0.5, 0.8)
AMOUNT_SIGMA = 0.6
NOMINAL_RATE = (1.0, 7.2, 7.8)  # CNY per unit: how USD/EUR deals are priced
STALL_SHARE, STALL_FACTOR = 0.05, 8.0  # deals that get stuck in one stage
ACCOUNT_WEIGHT = (1.1, 1.25, 0.8)  # how often an account gets deals, by segment
OWNER_IS_ACCOUNT_OWNER = 0.9
LOST_REASONS = ("price", "competitor", "no_budget", "no_decision", "timing", "product_fit")
FORECAST = {"prospecting": "pipeline", "qualification": "pipeline", "needs_analysis": "best_case",
            "proposal": "best_case", "negotiation": "commit", "closed_won": "closed", "closed_lost": "omitted"}
# Main product of a deal by type (columns P01..P09); enterprise deals sell P02 instead of P01.
PRODUCT_MIX = np.array(
    [
        [0.45, 0.0, 0.05, 0.05, 0.05, 0.20, 0.05, 0.10, 0.05],  # new
        [0.05, 0.0, 0.25, 0.25, 0.15, 0.05, 0.10, 0.05, 0.10],  # upsell
        [0.50, 0.0, 0.15, 0.10, 0.25, 0.00, 0.00, 0.00, 0.00],  # renewal
    ]
)

# --------------------------------------------------------------------------------------------
# PLANTED TRUTH 3 (closing side) - won deals that would naturally close between 1 and 25 January
# are pulled into the last ten days of December with probability PULL_INTO_DECEMBER (year-end
# push); won deals that would close in February slip to the first ten days of March with
# probability PUSH_OUT_OF_FEBRUARY (Chinese New Year). Creation follows _base.SEASON.
# --------------------------------------------------------------------------------------------
PULL_INTO_DECEMBER = 0.5
PUSH_OUT_OF_FEBRUARY = 0.5

BH_PER_CALENDAR_DAY = 9.0 * 5.0 / 7.0
ACTIVITY_TYPES = schema.ENUMS["activity_type"]
ACTIVITY_MIX = (0.32, 0.35, 0.13, 0.08, 0.12)  # call, email, meeting, demo, task


def opportunities(w: SimpleNamespace, seed: int, scale: float) -> dict[str, pl.DataFrame]:
    rng = rng_for(seed, "opportunities")
    L, A, org = w.lead, w.acc, w.org
    conv = np.flatnonzero(L.converted)
    n_other = max(0, scaled(OPPORTUNITIES_AT_SCALE_1, scale, minimum=50) - len(conv))

    # Deals on existing accounts (outbound, upsell, renewal): seasonal creation day, then an
    # account that existed then, weighted by segment.
    t_o = sample_days(rng, n_other, day_weights()) + office_time(rng, n_other)
    cw = np.cumsum(np.asarray(ACCOUNT_WEIGHT)[A.segment])
    k = np.maximum(np.searchsorted(A.t, t_o, side="right"), 1)
    acc_o = np.minimum(np.searchsorted(cw, rng.random(n_other) * cw[k - 1], side="right"), k - 1)
    t_o = np.maximum(t_o, A.t[acc_o] + 0.01)
    type_o = categorical(rng, TYPE_P, n_other)
    # Deals from converted leads: created at conversion; "new" for a new logo, else upsell.
    acc_l = L.account[conv]
    type_l = np.where(A.lead[acc_l] == conv, 0, 1)

    t = np.concatenate([t_o, L.conv_t[conv]])
    acc = np.concatenate([acc_o, acc_l])
    typ = np.concatenate([type_o, type_l])
    lead = np.concatenate([np.full(n_other, -1), conv])
    order = np.argsort(t, kind="stable")
    t, acc, typ, lead = t[order], acc[order], typ[order], lead[order]
    n = len(t)
    L.opportunity[lead[lead >= 0]] = np.flatnonzero(lead >= 0)
    campaign = np.where(lead >= 0, L.campaign[np.maximum(lead, 0)], -1)

    seg = A.segment[acc]
    owner = A.owner[acc].copy()
    other = rng.random(n) > OWNER_IS_ACCOUNT_OWNER
    owner_team = org.rep_team[rep_index_of_user(org, owner)]
    owner[other] = pick_rep(rng, org, owner_team[other])
    product = categorical_rows(rng, PRODUCT_MIX, typ)
    product[(product == 0) & (seg == 0)] = 1
    amount_cny = np.asarray(MEDIAN_AMOUNT_CNY)[seg] * np.asarray(TYPE_AMOUNT)[typ] * np.exp(
        rng.normal(0.0, AMOUNT_SIGMA, n))
    currency = A.currency[acc]
    amount = np.maximum(np.round(amount_cny / np.asarray(NOMINAL_RATE)[currency], -2), 1000.0)
    estimate = np.maximum(np.round(amount * rng.uniform(0.75, 1.3, n), -2), 1000.0)

    # Outcome: PLANTED TRUTH 2 - win probability = base rate of the type x skill of the owner.
    skill = org.rep_skill[rep_index_of_user(org, owner)]
    p_win = np.minimum(WIN_CAP, np.asarray(BASE_WIN)[typ] * skill)
    won = rng.random(n) < p_win
    n_pass = np.where(won, 5, categorical(rng, LOST_AT_STAGE_P, n) + 1)  # open stages passed through
    cycle = np.asarray(CYCLE_DAYS)[seg]
    dur = rng.gamma(2.0, 1.0, (n, 5)) * (cycle / 10.0)[:, None] + 0.02
    stalled = rng.random(n) < STALL_SHARE
    dur[stalled, rng.integers(0, 5, int(stalled.sum()))] *= STALL_FACTOR
    # Stage changes are made by people at work: durations run on the business-hours clock
    # (a calendar day is 9 x 5/7 business hours on average), so every change falls in office hours.
    cum = np.cumsum(dur, axis=1) * BH_PER_CALENDAR_DAY
    t_bh = to_business_hours(t)
    entry = np.concatenate([t[:, None], from_business_hours(t_bh[:, None] + cum[:, :4])], axis=1)
    close_t = from_business_hours(t_bh + cum[np.arange(n), n_pass - 1])
    last_entry = entry[np.arange(n), n_pass - 1]

    # PLANTED TRUTH 3, closing side (see PULL_INTO_DECEMBER / PUSH_OUT_OF_FEBRUARY).
    cday = np.minimum(np.floor(close_t).astype(np.int64), N_DAYS - 1)
    inside = close_t < END_T
    dom = cday - month_start_day(DAY_MIDX[cday])
    pull = won & inside & (DAY_MONTH[cday] == 1) & (dom < 25) & (rng.random(n) < PULL_INTO_DECEMBER)
    pulled = month_start_day(DAY_MIDX[cday]) - 1 - rng.integers(0, 10, n) + office_time(rng, n)
    pull &= pulled > last_entry + 0.01
    push = won & inside & (DAY_MONTH[cday] == 2) & (rng.random(n) < PUSH_OUT_OF_FEBRUARY)
    pushed = month_start_day(DAY_MIDX[cday] + 1) + rng.integers(0, 10, n) + office_time(rng, n)
    close_t = np.where(pull, pulled, np.where(push, pushed, close_t))

    closed = close_t < END_T
    reached = np.where(closed, n_pass, np.minimum(n_pass, (entry < END_T).sum(axis=1)))  # open stages entered
    expected_close = t + cycle * np.exp(rng.normal(0.0, 0.3, n))
    stage = np.where(closed, np.where(won, 5, 6), reached - 1)
    final_amount = np.where(reached >= 4, amount, estimate)  # amounts are revised at the proposal stage

    # History: one row per stage entered (and the closing row), with the deal as it was then.
    h_opp = np.repeat(np.arange(n), reached)
    h_stage = np.arange(len(h_opp)) - np.repeat(np.cumsum(reached) - reached, reached)
    h_t = entry[h_opp, h_stage]
    h_close = np.maximum(np.floor(expected_close[h_opp]), np.floor(h_t) + 7)
    ci = np.flatnonzero(closed)
    h_opp = np.concatenate([h_opp, ci])
    h_stage = np.concatenate([h_stage, stage[ci]])
    h_t = np.concatenate([h_t, close_t[ci]])
    h_close = np.concatenate([h_close, np.floor(close_t[ci])])
    h_amount = np.where((h_stage >= 3) & (h_stage < 5) | ((h_stage >= 5) & (reached[h_opp] >= 4)),
                        amount[h_opp], estimate[h_opp])
    order = np.lexsort((h_t, h_opp))
    h_opp, h_stage, h_t, h_close, h_amount = (a[order] for a in (h_opp, h_stage, h_t, h_close, h_amount))
    last_row = np.cumsum(np.bincount(h_opp, minlength=n)) - 1
    close_day = h_close[last_row]

    prob = np.asarray([schema.DEFAULT_STAGE_PROBABILITY[s] for s in STAGES])
    fc = [FORECAST[s] for s in STAGES]
    reason = np.where(closed & ~won, categorical(rng, (0.25, 0.25, 0.15, 0.15, 0.1, 0.1), n), -1)
    product_names = pl.Series([p[1] for p in PRODUCTS])
    opp_df = pl.DataFrame(
        {
            "idx": np.arange(n),
            "name": A.names.gather(acc) + " - " + product_names.gather(product),
            "account_idx": acc,
            "owner_id": labels(org.user_ids, owner),
            "product_id": labels([p[0] for p in PRODUCTS], product),
            "created_at": dt_series("created_at", t),
            "close_date": date_series("close_date", close_day),
            "stage": labels(STAGES, stage),
            "is_closed": closed,
            "is_won": closed & won,
            "amount": final_amount,
            "currency": labels(CURRENCIES, currency),
            "probability": prob[stage],
            "forecast_category": labels(fc, stage),
            "type": labels(TYPES, typ),
            "campaign_idx": campaign,
            "lead_idx": lead,
            "lost_reason": labels(LOST_REASONS, reason),
        },
        schema_overrides={c: pl.String for c in ("owner_id", "product_id", "stage", "currency",
                                                  "forecast_category", "type", "lost_reason")},
    ).select(
        id_expr("idx", "O", 7, "opportunity_id"),
        "name",
        id_expr("account_idx", "A", 6, "account_id"),
        "owner_id", "product_id", "created_at", "close_date", "stage", "is_closed", "is_won", "amount",
        "currency", "probability", "forecast_category", "type",
        id_expr("campaign_idx", "C", 3, "campaign_id"),
        id_expr("lead_idx", "L", 7, "lead_id"),
        "lost_reason",
    )
    hist_df = pl.DataFrame(
        {
            "opp_idx": h_opp,
            "changed_at": dt_series("changed_at", h_t),
            "stage": labels(STAGES, h_stage),
            "amount": h_amount,
            "currency": labels(CURRENCIES, currency[h_opp]),
            "probability": prob[h_stage],
            "close_date": date_series("close_date", h_close),
            "forecast_category": labels(fc, h_stage),
        },
        schema_overrides={"stage": pl.String, "currency": pl.String, "forecast_category": pl.String},
    ).select(id_expr("opp_idx", "O", 7, "opportunity_id"), pl.exclude("opp_idx"))

    w.opp = SimpleNamespace(n=n, t=t, account=acc, owner=owner, type=typ, product=product, closed=closed,
                            won=closed & won, close_t=close_t, amount=final_amount, currency=currency,
                            reached=reached, seg=seg)
    return {"opportunities": opp_df, "opportunity_history": hist_df}


def _office_times_between(rng: np.random.Generator, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Random instants in [lo, hi), moved into office hours on a weekday where the window allows."""
    raw = lo + rng.random(len(lo)) * (hi - lo)
    day = np.clip(np.floor(raw).astype(np.int64), 0, N_DAYS - 1)
    wd = DAY_WEEKDAY[day]
    friday = day - np.maximum(wd - 4, 0)
    monday = day + np.where(wd >= 5, 7 - wd, 0)
    day = np.where(friday >= np.floor(lo), friday, np.where(monday < hi, monday, day))
    return np.clip(day + office_time(rng, len(day)), lo, np.maximum(lo, hi - 1e-4))


def activities(w: SimpleNamespace, seed: int) -> pl.DataFrame:
    """Calls, e-mails, meetings, demos and tasks on deals, on leads, and on accounts."""
    rng = rng_for(seed, "activities")
    D, L, A = w.opp, w.lead, w.acc
    # on deals: more stages and longer deals mean more activities
    end = np.minimum(D.close_t, END_T - 1e-4)
    span = end - D.t
    k = rng.poisson(1.0 + 1.5 * D.reached + 0.07 * np.minimum(span, 200.0))
    o = np.repeat(np.arange(D.n), k)
    t_o = _office_times_between(rng, D.t[o], end[o])
    # on leads being worked (from MQL until conversion or for a month)
    li = np.flatnonzero(L.has_mql)
    lk = 1 + rng.poisson(1.5, len(li))
    lead = np.repeat(li, lk)
    lead_end = np.minimum(np.where(L.converted[lead], L.conv_t[lead], L.mql_t[lead] + 30.0), END_T - 1e-4)
    t_l = _office_times_between(rng, L.mql_t[lead], np.maximum(lead_end, L.mql_t[lead]))
    # account management (no deal): about 3 a year per account
    a_start = np.maximum(A.t, 0.0)
    ak = rng.poisson(3.0 * (END_T - a_start) / 365.25)
    a = np.repeat(np.arange(A.n), ak)
    t_a = _office_times_between(rng, a_start[a], np.full(len(a), END_T - 1e-4))

    t = np.concatenate([t_o, t_l, t_a])
    owner = np.concatenate([D.owner[o], L.owner[lead], A.owner[a]])
    account = np.concatenate([D.account[o], np.full(len(lead), -1), a])
    opp = np.concatenate([o, np.full(len(lead) + len(a), -1)])
    lead_c = np.concatenate([np.full(len(o), -1), lead, np.full(len(a), -1)])
    typ = categorical(rng, ACTIVITY_MIX, len(t))
    typ[len(o):len(o) + len(lead)] = rng.integers(0, 2, len(lead))  # leads: calls and e-mails
    order = np.argsort(t, kind="stable")
    return pl.DataFrame(
        {
            "idx": np.arange(len(t)),
            "type": labels(ACTIVITY_TYPES, typ[order]),
            "occurred_at": dt_series("occurred_at", t[order]),
            "owner_id": labels(w.org.user_ids, owner[order]),
            "account_idx": account[order],
            "opp_idx": opp[order],
            "lead_idx": lead_c[order],
        },
        schema_overrides={"type": pl.String, "owner_id": pl.String},
    ).select(
        id_expr("idx", "ACT", 8, "activity_id"),
        "type",
        "occurred_at",
        "owner_id",
        id_expr("account_idx", "A", 6, "account_id"),
        id_expr("opp_idx", "O", 7, "opportunity_id"),
        id_expr("lead_idx", "L", 7, "lead_id"),
    )
