"""Campaigns, daily marketing spend, leads (with their funnel) and touchpoints (their journeys)."""

from __future__ import annotations

from datetime import date
from types import SimpleNamespace

import numpy as np
import polars as pl

from ... import schema
from ._base import (
    DAY_MIDX,
    DAY_WEEKDAY,
    DEMO_START,
    END_T,
    N_DAYS,
    WEEKEND_FACTOR,
    add_business_hours,
    any_time,
    categorical,
    categorical_rows,
    date_series,
    day_weights,
    dt_series,
    id_expr,
    labels,
    month_index,
    month_start_day,
    rng_for,
    sample_days,
    scaled,
)
from .org import REGIONS, SEGMENTS, pick_rep

CHANNELS = schema.ENUMS["channel"]
INTERACTIONS = schema.ENUMS["interaction"]
LEADS_AT_SCALE_1 = 20_000
REGION_P = (0.25, 0.30, 0.25, 0.20)
LEAD_SEGMENT_P = (0.10, 0.35, 0.55)

# --------------------------------------------------------------------------------------------
# PLANTED TRUTH 1 - channels. Every lead has a journey: each channel is in it independently with
# probability EXPOSURE[c] (randomised exposure, so the effects below are causal and a simple
# with/without comparison recovers them), and contributes 1 + Poisson(EXTRA_TOUCHES[c]) touches.
# Whether the journey converts (lead -> opportunity) is Bernoulli(sigmoid(INTERCEPT + sum of
# EFFECT[c] over the channels present)): the log-odds effect of a channel's presence, not of its
# number of touches. display and social_paid have EFFECT 0 - no causal effect at all - but the
# largest exposure, the most touches and the largest budgets (CAMPAIGN_PLAN): the wasted half.
# SOURCE_WEIGHT only decides which channel of the journey is recorded as the lead source.
# Touch times are uniform over the journey (touchpoints()): neither the order nor the number of a
# channel's touches carries any signal. A first-order Markov chain credits touch frequency, so it
# over-credits display and social_paid here; Shapley and whole-path Markov credit presence only
# (docs/attribution.md).
# --------------------------------------------------------------------------------------------
#                  exposure, extra touches, log-odds effect, source weight
CHANNEL_MODEL = {
    "paid_search": (0.35, 2.0, 0.60, 3.0),
    "organic_search": (0.40, 1.0, 0.30, 3.0),
    "social_paid": (0.45, 4.0, 0.00, 1.0),
    "social_organic": (0.20, 0.5, 0.15, 1.0),
    "display": (0.55, 5.0, 0.00, 0.5),
    "email": (0.45, 1.0, 0.35, 1.5),
    "events": (0.10, 0.3, 1.30, 4.0),
    "webinar": (0.15, 0.5, 0.90, 4.0),
    "referral": (0.07, 0.2, 1.10, 4.0),
    "partner": (0.06, 0.5, 0.70, 3.0),
    "direct": (0.30, 0.5, 0.20, 2.0),
}
INTERCEPT = -2.95
EXPOSURE = np.array([CHANNEL_MODEL[c][0] for c in CHANNELS])
EXTRA_TOUCHES = np.array([CHANNEL_MODEL[c][1] for c in CHANNELS])
EFFECT = np.array([CHANNEL_MODEL[c][2] for c in CHANNELS])
SOURCE_WEIGHT = np.array([CHANNEL_MODEL[c][3] for c in CHANNELS])

# Funnel of leads whose journey does not convert: they still reach MQL / SQL sometimes.
P_MQL_NOT_CONVERTING, P_SQL_GIVEN_MQL_NOT_CONVERTING = 0.35, 0.30
FUNNEL_GAP_DAYS = {"mql": 2.0, "sql": 6.0, "converted": 8.0}  # exponential means

# --------------------------------------------------------------------------------------------
# PLANTED TRUTH 6 - anomalous month. In ANOMALY["month"] the web-form integration of region
# ANOMALY["region"] was broken: only a fraction ANOMALY["multiplier"] of that region's new leads
# reached the CRM. New leads of that region and month are far below their seasonal level.
# --------------------------------------------------------------------------------------------
ANOMALY = {"kpi": "new_leads", "month": "2024-08", "region": "South", "multiplier": 0.25,
           "story": "web-form integration outage in region South: 75% of new leads lost for a month"}

# interaction mix per channel:   impression click visit email_open form_submit event_attend call
INTERACTION_MIX = np.array(
    [
        [0.0, 0.6, 0.4, 0.0, 0.0, 0.0, 0.0],  # paid_search
        [0.0, 0.2, 0.8, 0.0, 0.0, 0.0, 0.0],  # organic_search
        [0.7, 0.3, 0.0, 0.0, 0.0, 0.0, 0.0],  # social_paid
        [0.4, 0.3, 0.3, 0.0, 0.0, 0.0, 0.0],  # social_organic
        [0.9, 0.1, 0.0, 0.0, 0.0, 0.0, 0.0],  # display
        [0.0, 0.3, 0.0, 0.7, 0.0, 0.0, 0.0],  # email
        [0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0],  # events
        [0.0, 0.0, 0.2, 0.0, 0.3, 0.5, 0.0],  # webinar
        [0.0, 0.0, 0.5, 0.0, 0.0, 0.0, 0.5],  # referral
        [0.0, 0.0, 0.3, 0.0, 0.0, 0.2, 0.5],  # partner
        [0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0],  # direct
    ]
)

# Campaign plan: channel, how many campaigns, budget per campaign at scale 1 (CNY), name.
# The paid digital channels run back-to-back half-year flights; events are 45-day seasons.
CAMPAIGN_PLAN = (
    ("paid_search", 7, 800_000.0, "Search Always-on"),
    ("display", 7, 1_200_000.0, "Display Brand"),
    ("social_paid", 7, 1_000_000.0, "Social Ads"),
    ("email", 6, 60_000.0, "Nurture Program"),
    ("events", 6, 400_000.0, "Trade Show Season"),
    ("webinar", 5, 80_000.0, "Webinar Series"),
    ("partner", 2, 200_000.0, "Partner Co-marketing"),
)
EVENT_STARTS = ((2023, 3, 15), (2023, 10, 10), (2024, 3, 15), (2024, 10, 10), (2025, 3, 15), (2025, 10, 10))
EVENT_DAYS = 45


def _windows(count: int) -> list[tuple[int, int]]:
    edges = np.linspace(0, N_DAYS, count + 1).round().astype(int)
    return [(int(edges[i]), int(edges[i + 1]) - 1) for i in range(count)]


def campaigns(w: SimpleNamespace, seed: int, scale: float) -> dict[str, pl.DataFrame]:
    rng = rng_for(seed, "campaigns")
    rows = []  # (channel index, start day, end day, budget, name)
    for channel, count, budget, label in CAMPAIGN_PLAN:
        if channel == "events":
            wins = [((date(*s) - DEMO_START).days, (date(*s) - DEMO_START).days + EVENT_DAYS - 1)
                    for s in EVENT_STARTS]
        elif count == 7:  # calendar half-years
            starts = month_start_day(np.arange(0, 42, 6))
            wins = [(int(a), int(b)) for a, b in zip(starts, [*(starts[1:] - 1), N_DAYS - 1], strict=True)]
        else:
            wins = _windows(count)
        for i, (a, b) in enumerate(wins):
            year = DEMO_START.year + int(DAY_MIDX[a]) // 12
            tag = f"{year}H{1 + int(DAY_MIDX[a]) % 12 // 6}" if count == 7 else f"{year} #{i + 1}"
            rows.append((CHANNELS.index(channel), a, b, budget * scale * rng.uniform(0.9, 1.1), f"{label} {tag}"))
    ch = np.array([r[0] for r in rows])
    start = np.array([r[1] for r in rows])
    end = np.array([r[2] for r in rows])
    budget = np.round(np.array([r[3] for r in rows]), -2)
    n = len(rows)
    owner = w.org.marketers[np.arange(n) % len(w.org.marketers)]
    w.camp = SimpleNamespace(channel=ch, start=start, end=end, n=n)
    camp_df = pl.DataFrame(
        {
            "campaign_id": [f"C{i + 1:03d}" for i in range(n)],
            "name": [r[4] for r in rows],
            "channel": [CHANNELS[c] for c in ch],
            "start_date": date_series("start_date", start),
            "end_date": date_series("end_date", end),
            "budget": budget,
            "currency": ["CNY"] * n,
            "owner_id": labels(w.org.user_ids, owner),
        }
    )
    # Daily spend: budget spread over the active days, lower at weekends for digital channels,
    # with day-to-day noise; a finished campaign spends 93-102% of its budget.
    ndays = end - start + 1
    ci = np.repeat(np.arange(n), ndays)
    day = start[ci] + (np.arange(len(ci)) - np.repeat(np.cumsum(ndays) - ndays, ndays))
    wk = np.where(DAY_WEEKDAY[day] >= 5, np.where(np.isin(ch[ci], [6, 8, 9]), WEEKEND_FACTOR, 0.7), 1.0)
    raw = wk * np.exp(rng.normal(0.0, 0.2, len(ci)))
    total = np.bincount(ci, weights=raw, minlength=n)
    amount = np.round(raw / total[ci] * budget[ci] * rng.uniform(0.93, 1.02, n)[ci], 2)
    spend_df = pl.DataFrame(
        {
            "date": date_series("date", day),
            "campaign_id": camp_df["campaign_id"].gather(ci),
            "channel": camp_df["channel"].gather(ci),
            "amount": amount,
            "currency": ["CNY"] * len(ci),
        }
    )
    return {"campaigns": camp_df, "marketing_spend": spend_df}


def campaign_at(w: SimpleNamespace, channel: np.ndarray, day: np.ndarray) -> np.ndarray:
    """Index of the campaign of ``channel`` running on ``day`` (-1 when none runs)."""
    out = np.full(len(channel), -1, dtype=np.int64)
    c = w.camp
    for k in np.unique(c.channel):
        idx = np.flatnonzero(c.channel == k)
        idx = idx[np.argsort(c.start[idx])]
        sel = np.flatnonzero(channel == k)
        pos = np.searchsorted(c.start[idx], day[sel], side="right") - 1
        ok = pos >= 0
        cand = idx[np.maximum(pos, 0)]
        ok &= day[sel] <= c.end[cand]
        out[sel[ok]] = cand[ok]
    return out


def leads(w: SimpleNamespace, seed: int, scale: float) -> None:
    """Leads and their journeys (arrays in ``w.lead``); the frame is built by :func:`leads_frame`."""
    rng = rng_for(seed, "leads")
    n = scaled(LEADS_AT_SCALE_1, scale, minimum=50)
    day = sample_days(rng, n, day_weights())
    region = categorical(rng, REGION_P, n)
    # PLANTED TRUTH 6 (see ANOMALY): thin the anomalous region-month.
    a_y, a_m = map(int, ANOMALY["month"].split("-"))
    lost = ((region == REGIONS.index(ANOMALY["region"])) & (DAY_MIDX[day] == month_index(a_y, a_m))
            & (rng.random(n) > ANOMALY["multiplier"]))
    day, region = day[~lost], region[~lost]
    t = day + any_time(rng, len(day))
    order = np.argsort(t, kind="stable")
    t, region = t[order], region[order]
    n = len(t)
    segment = categorical(rng, LEAD_SEGMENT_P, n)

    # PLANTED TRUTH 1 (see CHANNEL_MODEL): journeys and their conversion.
    exposed = rng.random((n, len(CHANNELS))) < EXPOSURE
    none = ~exposed.any(axis=1)
    exposed[none, CHANNELS.index("direct")] = True
    touches = exposed * (1 + rng.poisson(EXTRA_TOUCHES, (n, len(CHANNELS))))
    gumbel = np.log(SOURCE_WEIGHT) - np.log(-np.log(rng.random((n, len(CHANNELS)))))
    source = np.argmax(np.where(exposed, gumbel, -np.inf), axis=1)
    p_convert = 1.0 / (1.0 + np.exp(-(INTERCEPT + exposed @ EFFECT)))
    will_convert = rng.random(n) < p_convert

    reach_mql = will_convert | (rng.random(n) < P_MQL_NOT_CONVERTING)
    reach_sql = will_convert | (reach_mql & (rng.random(n) < P_SQL_GIVEN_MQL_NOT_CONVERTING))
    # MQL is automatic (lead scoring), any time; SQL and conversion are done by reps in office hours.
    bh_per_day = 9.0 * 5.0 / 7.0
    mql_t = t + 0.01 + rng.exponential(FUNNEL_GAP_DAYS["mql"], n)
    sql_t = add_business_hours(mql_t, 0.2 + bh_per_day * rng.exponential(FUNNEL_GAP_DAYS["sql"], n))
    conv_t = add_business_hours(sql_t, 0.2 + bh_per_day * rng.exponential(FUNNEL_GAP_DAYS["converted"], n))
    has_mql = reach_mql & (mql_t < END_T)
    has_sql = reach_sql & (sql_t < END_T)
    converted = will_convert & (conv_t < END_T)

    owner = pick_rep(rng, w.org, w.org.cover[segment, region])
    w.lead = SimpleNamespace(
        n=n, t=t, region=region, segment=segment, exposed=exposed, touches=touches, source=source,
        will_convert=will_convert, p_convert=p_convert, mql_t=mql_t, sql_t=sql_t, conv_t=conv_t,
        has_mql=has_mql, has_sql=has_sql, converted=converted, owner=owner,
        campaign=campaign_at(w, source, np.floor(t).astype(np.int64)),
        status_u=rng.random(n),
        # filled by accounts.py / sales.py
        account=np.full(n, -1, dtype=np.int64), opportunity=np.full(n, -1, dtype=np.int64),
        contact=np.full(n, -1, dtype=np.int64),
    )


def leads_frame(w: SimpleNamespace) -> pl.DataFrame:
    L = w.lead
    age = END_T - L.t
    # Status as of DEMO_END, from the funnel position and how long the lead has been there.
    status = np.select(
        [L.converted, L.has_sql & (L.will_convert | (END_T - L.sql_t < 30)), L.has_sql,
         L.has_mql & (END_T - L.mql_t < 45), L.has_mql, age < 14, L.status_u < 0.6],
        ["converted", "qualified", "unqualified", "working", "nurturing", "new", "nurturing"],
        "unqualified",
    )
    frame = pl.DataFrame(
        {
            "lead_idx": np.arange(L.n),
            "created_at": dt_series("created_at", L.t),
            "channel": labels(CHANNELS, L.source),
            "campaign_idx": L.campaign,
            "status": status,
            "owner_id": labels(w.org.user_ids, L.owner),
            "region": labels(REGIONS, L.region),
            "mql_at": dt_series("mql_at", L.mql_t, L.has_mql),
            "sql_at": dt_series("sql_at", L.sql_t, L.has_sql),
            "converted_at": dt_series("converted_at", L.conv_t, L.converted),
            "account_idx": np.where(L.converted, L.account, -1),
            "opp_idx": np.where(L.converted, L.opportunity, -1),
        },
        schema_overrides={"channel": pl.String, "status": pl.String, "owner_id": pl.String, "region": pl.String},
    )
    return frame.select(
        id_expr("lead_idx", "L", 7, "lead_id"),
        "created_at",
        "channel",
        id_expr("campaign_idx", "C", 3, "campaign_id"),
        "status",
        "owner_id",
        "region",
        "mql_at",
        "sql_at",
        "converted_at",
        id_expr("account_idx", "A", 6, "converted_account_id"),
        id_expr("opp_idx", "O", 7, "converted_opportunity_id"),
    )


def touchpoints(w: SimpleNamespace, seed: int) -> pl.DataFrame:
    """Journeys of leads before conversion (lead_id), and later touches of contacts (contact_id)."""
    rng = rng_for(seed, "touchpoints")
    L = w.lead
    li, ci = np.nonzero(L.touches)
    k = L.touches[li, ci]
    lead = np.repeat(li, k)
    chan = np.repeat(ci, k)
    block_start = np.cumsum(k) - k
    first_of_block = np.zeros(len(lead), dtype=bool)
    first_of_block[block_start] = True
    creation = first_of_block & (chan == L.source[lead])
    # The journey starts up to a few weeks before the lead is created (anonymous visits stitched to
    # the lead) and ends at conversion, or when the prospect goes cold.
    first = np.maximum(0.0, L.t - rng.exponential(10.0, L.n))
    last = np.where(L.converted, L.conv_t, np.minimum(END_T - 1e-4, np.where(
        L.will_convert, END_T, L.t + rng.exponential(25.0, L.n))))
    last = np.maximum(last, L.t)
    tt = first[lead] + rng.random(len(lead)) * (last[lead] - first[lead])
    tt[creation] = L.t[lead[creation]]
    inter = categorical_rows(rng, INTERACTION_MIX, chan)
    inter[creation] = np.where(chan[creation] == CHANNELS.index("events"), INTERACTIONS.index("event_attend"),
                               INTERACTIONS.index("form_submit"))
    contact = np.full(len(lead), -1, dtype=np.int64)

    # Touches of contacts (after a lead converted, and of contacts of existing accounts).
    C = w.contact
    n_c = np.where(rng.random(C.n) < np.where(C.lead >= 0, 0.4, 0.2), 1 + rng.poisson(1.2, C.n), 0)
    c_idx = np.repeat(np.arange(C.n), n_c)
    c_start = np.maximum(C.t[c_idx], 0.0)  # the CRM records touches from go-live on
    c_t = c_start + rng.random(len(c_idx)) * (END_T - 1e-4 - c_start)
    c_chan = np.asarray([CHANNELS.index(x) for x in ("email", "webinar", "events")])[
        categorical(rng, (0.6, 0.25, 0.15), len(c_idx))]
    c_inter = categorical_rows(rng, INTERACTION_MIX, c_chan)

    t_all = np.concatenate([tt, c_t])
    chan_all = np.concatenate([chan, c_chan])
    lead_all = np.concatenate([lead, np.full(len(c_idx), -1)])
    contact_all = np.concatenate([contact, c_idx])
    inter_all = np.concatenate([inter, c_inter])
    order = np.lexsort((contact_all, lead_all, t_all))
    t_all, chan_all, lead_all, contact_all, inter_all = (a[order] for a in (t_all, chan_all, lead_all, contact_all,
                                                                            inter_all))
    camp = campaign_at(w, chan_all, np.floor(t_all).astype(np.int64))
    frame = pl.DataFrame(
        {
            "idx": np.arange(len(t_all)),
            "occurred_at": dt_series("occurred_at", t_all),
            "lead_idx": lead_all,
            "contact_idx": contact_all,
            "channel": labels(CHANNELS, chan_all),
            "campaign_idx": camp,
            "interaction": labels(INTERACTIONS, inter_all),
        },
        schema_overrides={"channel": pl.String, "interaction": pl.String},
    )
    return frame.select(
        id_expr("idx", "TP", 8, "touchpoint_id"),
        "occurred_at",
        id_expr("lead_idx", "L", 7, "lead_id"),
        id_expr("contact_idx", "CT", 7, "contact_id"),
        "channel",
        id_expr("campaign_idx", "C", 3, "campaign_id"),
        "interaction",
    )


TRUTH = {
    "channels": {
        "model": "journey converts ~ Bernoulli(sigmoid(intercept + sum of log-odds effects of the channels present)); "
                 "exposure to each channel independent (randomised)",
        "conversion": "lead converted to an opportunity (leads.converted_at / converted_opportunity_id)",
        "intercept": INTERCEPT,
        "log_odds_effect": {c: CHANNEL_MODEL[c][2] for c in CHANNELS},
        "exposure_probability": {c: CHANNEL_MODEL[c][0] for c in CHANNELS},
        "touches_per_exposed_journey": {c: 1.0 + CHANNEL_MODEL[c][1] for c in CHANNELS},
        "no_effect": ["display", "social_paid"],
        "effective": ["events", "referral", "webinar", "partner", "paid_search"],
        "budget_per_campaign_at_scale_1": {c: b for c, _, b, _ in CAMPAIGN_PLAN},
        "campaigns": {c: k for c, k, _, _ in CAMPAIGN_PLAN},
    },
    "anomaly": dict(ANOMALY),
    "leads": {"at_scale_1": LEADS_AT_SCALE_1, "region_share": dict(zip(REGIONS, REGION_P, strict=True)),
              "segment_share": dict(zip(SEGMENTS, LEAD_SEGMENT_P, strict=True))},
}
