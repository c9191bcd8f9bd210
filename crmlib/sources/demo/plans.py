"""Exchange rates and targets (the plan the company set itself)."""

from __future__ import annotations

from datetime import date
from types import SimpleNamespace

import numpy as np
import polars as pl

from ._base import (
    DAY_MONTH,
    DAY_YEAR,
    DEMO_END,
    DEMO_START,
    FX_START,
    day_weights,
    rng_for,
)
from .accounts import CURRENCIES
from .marketing import LEADS_AT_SCALE_1
from .org import SALES_DEPARTMENTS, SALES_TEAMS, SERVICE_TEAMS, rep_index_of_user

# Daily rates to the base currency CNY: an AR(1) around a mean, clipped to a band.
FX_MODEL = {"USD": {"mean": 7.2, "band": (7.05, 7.35), "phi": 0.985, "sd": 0.012},
            "EUR": {"mean": 7.8, "band": (7.45, 8.15), "phi": 0.985, "sd": 0.02}}
TARGET_YEARS = (2023, 2024, 2025, 2026)
TARGET_GROWTH = 0.15  # next year's plan = this year's actual x (1 + growth) x a team stretch
SLA_TARGET = (0.90, 0.90, 0.88, 0.95)  # T09..T12: share of cases whose first reply meets the SLA
CSAT_TARGET = (0.85, 0.85, 0.80, 0.90)  # share of CSAT answers 4 or 5
LEADS_TARGET_UPLIFT = 1.05


def fx(w: SimpleNamespace, seed: int) -> pl.DataFrame:
    rng = rng_for(seed, "fx_rates")
    n = (DEMO_END - FX_START).days + 1
    offset = (DEMO_START - FX_START).days
    rates = np.ones((len(CURRENCIES), n))
    for ci, cur in enumerate(CURRENCIES[1:], start=1):
        m = FX_MODEL[cur]
        eps = rng.normal(0.0, m["sd"], n)
        # AR(1) x_t = phi x_{t-1} + eps_t, vectorised per year: x_t = phi^t (x_0 + sum_k phi^-k eps_k)
        x = np.empty(n)
        prev = 0.0
        for a in range(0, n, 365):
            e = eps[a:a + 365]
            k = np.arange(1, len(e) + 1)
            x[a:a + len(e)] = m["phi"] ** k * (prev + np.cumsum(e * m["phi"] ** -k))
            prev = x[a + len(e) - 1]
        rates[ci] = np.round(np.clip(m["mean"] + x, *m["band"]), 4)

    def rate(cur: np.ndarray, t: np.ndarray) -> np.ndarray:
        return rates[cur, np.clip(np.floor(t).astype(np.int64) + offset, 0, n - 1)]

    w.rate = rate
    days = np.datetime64(FX_START, "D") + np.arange(n)
    return pl.DataFrame(
        {
            "date": np.tile(days, len(CURRENCIES)),
            "currency": np.repeat(np.asarray(CURRENCIES, dtype=object), n),
            "rate_to_base": rates.ravel(),
        },
        schema_overrides={"currency": pl.String},
    )


def targets(w: SimpleNamespace, seed: int, scale: float) -> pl.DataFrame:
    """Monthly targets: revenue and won_deals for company, departments, teams and reps (children sum to
    their parent exactly); new_leads for the company; sla_compliance and csat for service teams."""
    rng = rng_for(seed, "targets")
    D, org = w.opp, w.org
    n_teams = len(SALES_TEAMS)
    years = np.asarray(TARGET_YEARS)
    won = np.flatnonzero(D.won)
    cday = np.floor(D.close_t[won]).astype(np.int64)
    year = DAY_YEAR[cday]
    month = DAY_MONTH[cday]
    rev = D.amount[won] * w.rate(D.currency[won], D.close_t[won])
    team = org.rep_team[rep_index_of_user(org, D.owner[won])]
    # actuals per team x year, and the company's seasonal profile of closings (full years only)
    yi = np.searchsorted(years, year)
    act_rev = np.zeros((n_teams, len(years)))
    act_cnt = np.zeros((n_teams, len(years)))
    np.add.at(act_rev, (team, yi), rev)
    np.add.at(act_cnt, (team, yi), 1.0)
    full = year < DEMO_END.year
    prof_rev = np.bincount(month[full] - 1, weights=rev[full], minlength=12) + 1e-9
    prof_cnt = np.bincount(month[full] - 1, minlength=12) + 1e-9
    prof_rev, prof_cnt = prof_rev / prof_rev.sum(), prof_cnt / prof_cnt.sum()
    # plan per team-year: last year's actual x (1 + growth) (the first year: its own actual) x stretch
    base_rev = np.concatenate([act_rev[:, :1], act_rev[:, :-1] * (1 + TARGET_GROWTH)], axis=1)
    base_cnt = np.concatenate([act_cnt[:, :1], act_cnt[:, :-1] * (1 + TARGET_GROWTH)], axis=1)
    stretch = rng.uniform(1.0, 1.12, base_rev.shape)
    n_rep = org.team_rep_count

    frames = []
    periods = np.array([date(y, m, 1) for y in TARGET_YEARS for m in range(1, 13)], dtype="datetime64[D]")
    rep_ids = org.user_ids[org.rep_user]
    team_ids = np.asarray([t[0] for t in SALES_TEAMS], dtype=object)
    team_dept = np.asarray([SALES_DEPARTMENTS.index(t[2]) for t in SALES_TEAMS])
    for kpi, base, prof, step in (("revenue", base_rev, prof_rev, 100.0), ("won_deals", base_cnt, prof_cnt, 0.1)):
        # rep targets: the team's monthly plan shared equally, rounded; parents are exact sums
        team_month = (base * stretch)[:, :, None] * prof[None, None, :]  # team x year x month
        rep_month = np.round(team_month[org.rep_team] / n_rep[org.rep_team][:, None, None] / step) * step
        rep_month = rep_month.reshape(len(rep_ids), -1)
        team_month = np.zeros((n_teams, rep_month.shape[1]))
        np.add.at(team_month, org.rep_team, rep_month)
        dept_month = np.zeros((len(SALES_DEPARTMENTS), rep_month.shape[1]))
        np.add.at(dept_month, team_dept, team_month)
        company = dept_month.sum(axis=0, keepdims=True)
        for level, ids, values in (("user", rep_ids, rep_month), ("team", team_ids, team_month),
                                   ("department", np.asarray(SALES_DEPARTMENTS, dtype=object), dept_month),
                                   ("company", np.asarray(["company"], dtype=object), company)):
            frames.append(_target_frame(periods, level, ids, kpi, np.round(values, 2)))
    # new leads: the expected monthly volume of the lead process, plus 5%
    wts = day_weights()
    exp_leads = np.bincount((DAY_YEAR - DEMO_START.year) * 12 + DAY_MONTH - 1, weights=wts,
                            minlength=len(periods))[:len(periods)]
    exp_leads[-6:] = exp_leads[-18:-12] * (1 + TARGET_GROWTH)  # July-December 2026: 2025 plus growth
    leads_per_weight = LEADS_AT_SCALE_1 * scale / wts.sum()
    frames.append(_target_frame(periods, "company", np.asarray(["company"], dtype=object), "new_leads",
                                np.round(exp_leads * leads_per_weight * LEADS_TARGET_UPLIFT)[None, :]))
    svc_ids = np.asarray([t[0] for t in SERVICE_TEAMS], dtype=object)
    for kpi, vals in (("sla_compliance", SLA_TARGET), ("csat", CSAT_TARGET)):
        frames.append(_target_frame(periods, "team", svc_ids, kpi,
                                    np.repeat(np.asarray(vals)[:, None], len(periods), axis=1)))
    return pl.concat(frames).sort("kpi", "level", "entity_id", "period")


def _target_frame(periods: np.ndarray, level: str, ids: np.ndarray, kpi: str, values: np.ndarray) -> pl.DataFrame:
    n_ent, n_per = values.shape
    return pl.DataFrame(
        {
            "period": np.tile(periods, n_ent),
            "grain": ["month"] * (n_ent * n_per),
            "level": [level] * (n_ent * n_per),
            "entity_id": np.repeat(ids, n_per),
            "kpi": [kpi] * (n_ent * n_per),
            "value": values.ravel().astype(np.float64),
        },
        schema_overrides={"entity_id": pl.String},
    )
