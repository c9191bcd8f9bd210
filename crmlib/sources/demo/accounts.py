"""Accounts (customer companies and prospects) and their contacts."""

from __future__ import annotations

from datetime import date
from types import SimpleNamespace

import numpy as np
import polars as pl

from ._base import (
    DEMO_START,
    END_T,
    categorical,
    company_names,
    day_weights,
    dt_series,
    id_expr,
    labels,
    office_time,
    person_names,
    pick_words,
    rng_for,
    sample_days,
    scaled,
)
from .marketing import REGION_P
from .org import REGIONS, SEGMENTS, pick_rep

ACCOUNTS_AT_SCALE_1 = 2_000
# Accounts come from three places: migrated from the legacy CRM at go-live (created_at kept from the
# old system, 2019-2022), created when a lead converts into a new logo, and created by reps
# prospecting outbound during the period.
LEGACY_SHARE = 0.40
LEGACY_FROM = date(2019, 1, 1)
NEW_LOGO_SHARE = 0.45  # share of all accounts created by a converting lead (other conversions join an account)
SEGMENT_P = (0.15, 0.35, 0.50)
COUNTRIES = (
    ("China", "CNY", 0.80),
    ("United States", "USD", 0.06),
    ("Singapore", "USD", 0.04),
    ("Japan", "USD", 0.02),
    ("United Kingdom", "USD", 0.02),
    ("Germany", "EUR", 0.04),
    ("France", "EUR", 0.02),
)
CURRENCIES = ("CNY", "USD", "EUR")
INDUSTRIES = ("Manufacturing", "Retail", "Healthcare", "Financial Services", "Technology", "Logistics", "Energy",
              "Education", "Automotive", "Consumer Goods")
TITLES = ("CEO", "CTO", "CIO", "IT Manager", "Procurement Manager", "Operations Director", "Sales Director",
          "Finance Manager", "Engineer", "Product Manager", "Customer Service Manager")
# mean number of contacts per account beyond the first, by segment
EXTRA_CONTACTS = (2.5, 1.2, 0.6)


def accounts(w: SimpleNamespace, seed: int, scale: float) -> pl.DataFrame:
    rng = rng_for(seed, "accounts")
    L = w.lead
    n_total = scaled(ACCOUNTS_AT_SCALE_1, scale, minimum=20)
    conv = np.flatnonzero(L.converted)
    new_logo = np.sort(rng.choice(conv, min(len(conv), round(NEW_LOGO_SHARE * n_total)), replace=False))
    n_legacy = round(LEGACY_SHARE * n_total)
    n_outbound = max(0, n_total - n_legacy - len(new_logo))
    legacy_days = (DEMO_START - LEGACY_FROM).days
    t = np.concatenate([
        -rng.integers(1, legacy_days + 1, n_legacy) + office_time(rng, n_legacy),
        L.conv_t[new_logo],
        sample_days(rng, n_outbound, day_weights()) + office_time(rng, n_outbound),
    ])
    n = len(t)
    src_lead = np.concatenate([np.full(n_legacy, -1), new_logo, np.full(n_outbound, -1)])
    segment = categorical(rng, SEGMENT_P, n)
    region = categorical(rng, REGION_P, n)
    from_lead = src_lead >= 0
    segment[from_lead] = L.segment[src_lead[from_lead]]
    region[from_lead] = L.region[src_lead[from_lead]]
    owner = pick_rep(rng, w.org, w.org.cover[segment, region])
    owner[from_lead] = L.owner[src_lead[from_lead]]
    country = categorical(rng, [c[2] for c in COUNTRIES], n)

    order = np.argsort(t, kind="stable")
    t, src_lead, segment, region, owner, country = (a[order] for a in (t, src_lead, segment, region, owner, country))
    from_lead = src_lead >= 0
    L.account[src_lead[from_lead]] = np.flatnonzero(from_lead)
    # Leads converting into an existing account: any account that existed then.
    joins = conv[L.account[conv] < 0]
    k = np.searchsorted(t, L.conv_t[joins], side="right")
    L.account[joins] = np.minimum(np.floor(rng.random(len(joins)) * k).astype(np.int64), k - 1)

    currency_of_country = np.array([CURRENCIES.index(c[1]) for c in COUNTRIES])
    w.acc = SimpleNamespace(n=n, t=t, segment=segment, region=region, owner=owner, lead=src_lead,
                            currency=currency_of_country[country], names=company_names(rng, n))
    return pl.DataFrame(
        {
            "idx": np.arange(n),
            "name": w.acc.names,
            "industry": pick_words(rng, INDUSTRIES, n),
            "segment": labels(SEGMENTS, segment),
            "region": labels(REGIONS, region),
            "country": labels([c[0] for c in COUNTRIES], country),
            "owner_id": labels(w.org.user_ids, owner),
            "created_at": dt_series("created_at", t),
        },
        schema_overrides={"segment": pl.String, "region": pl.String, "country": pl.String, "owner_id": pl.String},
    ).select(id_expr("idx", "A", 6, "account_id"), pl.exclude("idx"))


def contacts(w: SimpleNamespace, seed: int) -> pl.DataFrame:
    """Contacts of every account; each converted lead also becomes a contact (with its lead_id)."""
    rng = rng_for(seed, "contacts")
    A, L = w.acc, w.lead
    extra = rng.poisson(np.asarray(EXTRA_CONTACTS)[A.segment])
    first = (A.lead < 0).astype(np.int64)  # lead-created accounts get their first contact from the lead
    k = first + extra
    acc = np.repeat(np.arange(A.n), k)
    is_first = np.zeros(len(acc), dtype=bool)
    is_first[(np.cumsum(k) - k)[k > 0]] = True
    is_first &= np.repeat(first, k).astype(bool)
    start = np.maximum(A.t[acc], 0.0)
    t = np.where(is_first, A.t[acc], start + rng.random(len(acc)) * 0.6 * (END_T - start))
    conv = np.flatnonzero(L.converted)
    acc = np.concatenate([acc, L.account[conv]])
    t = np.concatenate([t, L.conv_t[conv]])
    lead = np.concatenate([np.full(len(t) - len(conv), -1), conv])
    order = np.lexsort((lead, acc, t))
    acc, t, lead = acc[order], t[order], lead[order]
    n = len(t)
    L.contact[lead[lead >= 0]] = np.flatnonzero(lead >= 0)

    # Contacts sorted by (account, created) for "a contact of this account existing at time t".
    by_acc = np.lexsort((t, acc))
    w.contact = SimpleNamespace(n=n, account=acc, t=t, lead=lead, by_acc=by_acc,
                                key=acc[by_acc] * 10_000.0 + t[by_acc] + 5_000.0,
                                start=np.searchsorted(acc[by_acc], np.arange(A.n)))
    names, local = person_names(rng, n)
    domain = A.names.str.split(" ").list.first().str.to_lowercase().gather(acc)
    return pl.DataFrame(
        {
            "idx": np.arange(n),
            "account_idx": acc,
            "name": names,
            "email": local + "@" + domain + ".example.com",
            "title": pick_words(rng, TITLES, n),
            "lead_idx": lead,
            "created_at": dt_series("created_at", t),
        }
    ).select(
        id_expr("idx", "CT", 7, "contact_id"),
        id_expr("account_idx", "A", 6, "account_id"),
        "name",
        "email",
        "title",
        id_expr("lead_idx", "L", 7, "lead_id"),
        "created_at",
    )


def contact_at(w: SimpleNamespace, rng: np.random.Generator, account: np.ndarray, t: np.ndarray) -> np.ndarray:
    """A random contact of each account among those created by time t (-1 when there is none)."""
    C = w.contact
    lo = C.start[account]
    hi = np.searchsorted(C.key, account * 10_000.0 + t + 5_000.0, side="right")
    cnt = hi - lo
    pos = lo + np.floor(rng.random(len(account)) * cnt).astype(np.int64)
    return np.where(cnt > 0, C.by_acc[np.minimum(pos, C.n - 1)], -1)
