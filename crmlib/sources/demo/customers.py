"""Customer value: web-shop orders (BG/NBD + Gamma-Gamma) and subscriptions (with a churn spike)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import polars as pl

from ._base import (
    DAY_MIDX,
    END_T,
    N_DAYS,
    date_series,
    dt_series,
    id_expr,
    labels,
    month_index,
    office_time,
    rng_for,
)
from .accounts import CURRENCIES
from .org import PRODUCTS, SUBSCRIPTION_PRODUCTS, WEBSHOP_PRODUCTS
from .sales import NOMINAL_RATE

# --------------------------------------------------------------------------------------------
# PLANTED TRUTH 7 - customers drawn from BG/NBD (Fader, Hardie & Lee 2005) and Gamma-Gamma
# (Fader, Hardie & Lee 2005b). The web shop opened at go-live (DEMO_START). A share BUYER_SHARE
# of accounts buys there; an account's first order (its "trial", time 0 of the model) comes
# FIRST_ORDER_LAG_DAYS (exponential mean) after max(account created, DEMO_START). Then, with time
# in WEEKS and T = weeks from the first order to the end of DEMO_END:
#   transaction rate   lambda ~ Gamma(shape r, rate alpha)
#   dropout prob.      p      ~ Beta(a, b); after every REPEAT order the customer becomes
#                                inactive for good with probability p (never right after the
#                                first order: as in the paper, every buyer is active at time 0+)
#   repeat orders      Poisson(lambda) process on (0, T] while active
# Spend per order (every completed order, the first included), in base currency CNY at the order
# day's exchange rate: z ~ Gamma(shape p, rate nu), nu ~ Gamma(shape q, rate v) per customer;
# USD/EUR orders store z / rate_to_base. Values are those of CDNOW (v scaled x100 from USD).
# Orders with status "cancelled" (CANCELLED_SHARE, copies placed within two days of a real order)
# are not part of the process: fit the models on completed orders only.
# --------------------------------------------------------------------------------------------
BGNBD = {"r": 0.24, "alpha": 4.41, "a": 0.79, "b": 2.43}
GAMMA_GAMMA = {"p": 6.25, "q": 3.74, "v": 1544.0}
BUYER_SHARE = 0.70
FIRST_ORDER_LAG_DAYS = 30.0
MIN_OBSERVATION_DAYS = 7.0
CANCELLED_SHARE = 0.03

# --------------------------------------------------------------------------------------------
# PLANTED TRUTH 5 - churn spike. Every subscription is cancelled with a constant monthly hazard
# (CHURN_MONTHLY_HAZARD by segment; contracts migrated at go-live are at risk from DEMO_START on),
# except in CHURN_SPIKE["month"], when the hazard is multiplied by CHURN_SPIKE["multiplier"]
# (a price increase): that month has several times the usual number of cancellations (end_date).
# --------------------------------------------------------------------------------------------
CHURN_MONTHLY_HAZARD = (0.006, 0.010, 0.016)  # enterprise, mid_market, smb
CHURN_SPIKE = {"month": "2025-03", "multiplier": 5.0, "story": "price increase announced for March 2025"}
LEGACY_MRR_CNY = (30_000.0, 8_000.0, 2_000.0)  # median MRR of migrated contracts, by segment


def orders(w: SimpleNamespace, seed: int) -> pl.DataFrame:
    rng = rng_for(seed, "orders")
    A = w.acc
    t0 = np.maximum(A.t, 0.0) + rng.exponential(FIRST_ORDER_LAG_DAYS, A.n)
    t0 = np.floor(t0) + office_time(rng, A.n)
    buyer = np.flatnonzero((rng.random(A.n) < BUYER_SHARE) & (t0 < END_T - MIN_OBSERVATION_DAYS))
    nb = len(buyer)
    # PLANTED TRUTH 7 (see BGNBD / GAMMA_GAMMA): repeat orders and spend per order.
    T = (END_T - t0[buyer]) / 7.0  # weeks
    lam = rng.gamma(BGNBD["r"], 1.0 / BGNBD["alpha"], nb)
    p = rng.beta(BGNBD["a"], BGNBD["b"], nb)
    alive_for = rng.geometric(p)  # repeat orders made before dropping out (>= 1: drops after the j-th)
    m = rng.poisson(lam * T)  # Poisson arrivals in (0, T] if always active
    x = np.minimum(m, alive_for)
    # The first x arrival times are the x smallest of m uniform points on (0, T].
    cust = np.repeat(np.arange(nb), m)
    u = rng.random(len(cust))
    order = np.lexsort((u, cust))
    cust, u = cust[order], u[order]
    rank = np.arange(len(cust)) - np.repeat(np.cumsum(m) - m, m)
    keep = rank < x[cust]
    rep_cust, rep_t = cust[keep], t0[buyer][cust[keep]] + 7.0 * T[cust[keep]] * u[keep]

    who = np.concatenate([np.arange(nb), rep_cust])
    t = np.concatenate([t0[buyer], np.minimum(rep_t, END_T - 1e-4)])
    nu = rng.gamma(GAMMA_GAMMA["q"], 1.0 / GAMMA_GAMMA["v"], nb)
    z = rng.gamma(GAMMA_GAMMA["p"], 1.0 / nu[who])
    canc = rng.random(len(who)) < CANCELLED_SHARE
    who = np.concatenate([who, who[canc]])
    t = np.concatenate([t, np.minimum(t[canc] + rng.uniform(0.01, 2.0, int(canc.sum())), END_T - 1e-4)])
    z = np.concatenate([z, rng.gamma(GAMMA_GAMMA["p"], 1.0 / nu[who[len(z):]])])
    status = np.concatenate([np.zeros(len(who) - int(canc.sum()), dtype=np.int64), np.ones(int(canc.sum()),
                                                                                               dtype=np.int64)])
    account = buyer[who]
    cur = A.currency[account]
    amount = np.round(z / w.rate(cur, t), 2)
    product = WEBSHOP_PRODUCTS[rng.integers(0, len(WEBSHOP_PRODUCTS), len(who))]
    o = np.argsort(t, kind="stable")
    w.orders = SimpleNamespace(buyer=buyer, t0=t0[buyer], T_weeks=T, x=x)
    return pl.DataFrame(
        {
            "idx": np.arange(len(o)),
            "account_idx": account[o],
            "ordered_at": dt_series("ordered_at", t[o]),
            "amount": amount[o],
            "currency": labels(CURRENCIES, cur[o]),
            "product_id": labels([q[0] for q in PRODUCTS], product[o]),
            "status": labels(["completed", "cancelled"], status[o]),
        },
        schema_overrides={"currency": pl.String, "product_id": pl.String, "status": pl.String},
    ).select(id_expr("idx", "OR", 7, "order_id"), id_expr("account_idx", "A", 6, "account_id"),
             pl.exclude("idx", "account_idx"))


def subscriptions(w: SimpleNamespace, seed: int) -> pl.DataFrame:
    """Contracts migrated at go-live, plus one per won new/upsell deal of a subscription product."""
    rng = rng_for(seed, "subscriptions")
    A, D = w.acc, w.opp
    legacy = np.flatnonzero(A.t < 0)
    legacy = np.concatenate([legacy, legacy[rng.random(len(legacy)) < 0.4]])
    l_start = np.floor(A.t[legacy] + rng.random(len(legacy)) * (-1.0 - A.t[legacy]))
    l_product = SUBSCRIPTION_PRODUCTS[np.minimum(rng.geometric(0.5, len(legacy)) - 1, len(SUBSCRIPTION_PRODUCTS) - 1)]
    l_product[(l_product == 0) & (A.segment[legacy] == 0)] = 1
    l_mrr = np.asarray(LEGACY_MRR_CNY)[A.segment[legacy]] * np.exp(rng.normal(0.0, 0.5, len(legacy)))
    l_mrr = np.round(l_mrr / np.asarray(NOMINAL_RATE)[A.currency[legacy]], 2)

    deal = np.flatnonzero(D.won & np.isin(D.product, SUBSCRIPTION_PRODUCTS) & (D.type <= 1))
    d_start = np.floor(D.close_t[deal])
    account = np.concatenate([legacy, D.account[deal]])
    start = np.concatenate([l_start, d_start])
    product = np.concatenate([l_product, D.product[deal]])
    mrr = np.concatenate([l_mrr, np.round(D.amount[deal] / 12.0, 2)])
    cur = np.concatenate([A.currency[legacy], D.currency[deal]])

    # PLANTED TRUTH 5: cancellation day from a piecewise-constant hazard (see CHURN_SPIKE).
    y, m = map(int, CHURN_SPIKE["month"].split("-"))
    mult = np.where(month_index(y, m) == DAY_MIDX, CHURN_SPIKE["multiplier"], 1.0)
    H = np.concatenate([[0.0], np.cumsum(mult / 30.4375)])  # H[d]: unit hazard before day d
    s = np.maximum(start, 0).astype(np.int64)
    need = rng.exponential(1.0, len(start)) / np.asarray(CHURN_MONTHLY_HAZARD)[A.segment[account]]
    end_day = np.searchsorted(H, H[s] + need, side="left") - 1  # cancelled during this day
    active = end_day >= N_DAYS
    o = np.lexsort((account, start))
    return pl.DataFrame(
        {
            "idx": np.arange(len(o)),
            "account_idx": account[o],
            "product_id": labels([q[0] for q in PRODUCTS], product[o]),
            "start_date": date_series("start_date", start[o]),
            "end_date": date_series("end_date", np.maximum(end_day, s)[o].astype(np.float64), ~active[o]),
            "mrr": mrr[o],
            "currency": labels(CURRENCIES, cur[o]),
        },
        schema_overrides={"product_id": pl.String, "currency": pl.String},
    ).select(id_expr("idx", "SUB", 6, "subscription_id"), id_expr("account_idx", "A", 6, "account_id"),
             pl.exclude("idx", "account_idx"))
