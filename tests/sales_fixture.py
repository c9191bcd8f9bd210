"""A small hand-written sales organisation with stage history, whose sales and performance analytics the
tests compute by hand (tests/test_sales.py, tests/test_performance.py). Every expected number is derived
from the rows below; the tests write the arithmetic next to each assertion.

Organisation: department East = team T1 (reps u1, u2); department West = team T2 (rep u3).
Accounts: A1 (North), A2 (South). Products: P1, P2. Base currency CNY; USD -> CNY 7.0 from 2024-10-01,
7.2 from 2025-03-01. All times 09:00 unless noted. The data ends on 2025-03-31 (o8 is created then).

Deals and their stage history (stage, amount, probability, expected close, forecast category):

  o1  u1 A1 P1 created 2025-01-02 1000 CNY, won 2025-02-10
      01-02 prospecting 0.1 (close 02-15, pipeline) | 01-06 qualification 0.2 (pipeline)
      01-16 proposal 0.6 (best_case) | 01-21 negotiation 0.8 (commit) | 02-10 closed_won
  o2  u1 A2 P2 created 2025-01-05 10:00, 100 USD, lost 2025-02-01 (price)
      01-05 10:00 prospecting 0.1 (close 02-28) | 01-15 10:00 qualification 0.2 | 02-01 10:00 closed_lost
  o3  u2 A1 P1 created 2025-01-10 2000 CNY, open
      01-10 prospecting 0.1 (close 03-31) | 01-20 qualification 0.2 | 02-01 needs_analysis 0.4 (best_case)
      03-01 proposal 0.6, amount 2500, close 04-15 (best_case)
  o4  u3 A2 P2 created 2025-02-01 500 CNY, won 2025-03-05
      02-01 prospecting 0.1 (close 03-10) | 02-10 negotiation 0.8 (commit) | 03-05 closed_won
  o5  u3 A1 P1 created 2025-02-15 800 CNY, open: 02-15 prospecting 0.1 (close 03-20, pipeline)
  o6  u2 A2 P1 created 2024-12-01 300 CNY, won 2025-03-20
      2024-12-01 prospecting 0.1 (close 2025-01-31) | 2025-01-10 negotiation 0.8 (close 03-15, commit)
      2025-03-20 closed_won
  o7  u1 A1 P2 created 2025-03-10 50 USD, open qualification 0.2 (close 05-31, pipeline): NO history rows
  o8  u2 A2 P2 created 2025-03-31 16:00 100 CNY, open: 03-31 16:00 prospecting, probability and
      category empty (close 06-30)
  o9  u2 A1 P2 created 2025-03-03 1200 CNY, open
      03-03 prospecting 0.1 (close 03-28) | 03-12 negotiation 0.8 (commit)
  o10 u3 A2 P1 created 2025-01-20 400 CNY, lost 2025-02-20 (competitor)
      01-20 prospecting 0.1 (close 02-28) | 02-20 closed_lost
  o11 u2 A1 P1 created 2024-10-01 600 CNY, won 2024-11-15: 2024-10-01 prospecting | 2024-11-15 closed_won

Activities (type, when 10:00, owner, deal): a1 call 2025-01-03 u1 o1; a2 meeting 01-20 u1 o1;
a3 email 02-05 u1 o2; a4 call 03-25 u2 o3; a5 email 03-30 u2 o9; a6 meeting 02-20 u3 o4;
a7 call 03-15 u3 (account A1, no deal); a8 call 2024-12-15 u2 o6; a9 email 2025-03-18 u2 o6;
a10 call 2025-04-02 u1 o3 (after the data's end: never counted).

Monthly revenue targets: 2025-01..03 company 1000/2000/3000, East = T1 600/1200/1800, West = T2
400/800/1200, u1 300/600/900, u2 300/600/900, u3 400/800/1200; 2024-10..12 company 600, East = T1 500,
West = T2 100, u1 300, u2 200, u3 100 (each month).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl

from crmlib import schema

D = dt.date


def T(y, m, d, h=9, mi=0):  # noqa: N802 - a datetime, short on purpose
    return dt.datetime(y, m, d, h, mi)


def frame(name: str, rows: list[dict]) -> pl.DataFrame:
    cols = schema.table(name).column_names
    return schema.conform(pl.DataFrame({c: [r.get(c) for r in rows] for c in cols},
                                       schema=schema.table(name).polars_schema), name)


TEAMS = [
    {"team_id": "T1", "name": "Alpha", "department": "East", "function": "sales"},
    {"team_id": "T2", "name": "Beta", "department": "West", "function": "sales"},
    {"team_id": "S1", "name": "Care", "department": "Service", "function": "service"},
]
USERS = [
    {"user_id": "u1", "name": "Ann", "role": "sales_rep", "team_id": "T1", "department": "East", "is_active": True},
    {"user_id": "u2", "name": "Bob", "role": "sales_rep", "team_id": "T1", "department": "East", "is_active": True},
    {"user_id": "u3", "name": "Cai", "role": "sales_rep", "team_id": "T2", "department": "West", "is_active": True},
]
ACCOUNTS = [
    {"account_id": "A1", "name": "Acme", "region": "North", "created_at": T(2023, 1, 1)},
    {"account_id": "A2", "name": "Bolt", "region": "South", "created_at": T(2023, 1, 1)},
]
PRODUCTS = [
    {"product_id": "P1", "name": "Platform", "family": "Platform", "list_price": 1.0, "currency": "CNY",
     "is_subscription": True},
    {"product_id": "P2", "name": "Support", "family": "Support", "list_price": 1.0, "currency": "CNY",
     "is_subscription": True},
]
FX = [
    {"date": D(2024, 10, 1), "currency": "USD", "rate_to_base": 7.0},
    {"date": D(2025, 3, 1), "currency": "USD", "rate_to_base": 7.2},
]
_PROB = {"prospecting": 0.1, "qualification": 0.2, "needs_analysis": 0.4, "proposal": 0.6, "negotiation": 0.8,
         "closed_won": 1.0, "closed_lost": 0.0}
_CAT = {"prospecting": "pipeline", "qualification": "pipeline", "needs_analysis": "best_case",
        "proposal": "best_case", "negotiation": "commit", "closed_won": "closed", "closed_lost": "omitted"}


def _opp(oid, owner, account, product, created, close, stage, amount, currency, reason=None, prob="default"):
    closed = stage in ("closed_won", "closed_lost")
    p = _PROB[stage] if prob == "default" else prob
    return {"opportunity_id": oid, "name": f"Deal {oid}", "account_id": account, "owner_id": owner,
            "product_id": product, "created_at": created, "close_date": close, "stage": stage, "is_closed": closed,
            "is_won": stage == "closed_won", "amount": float(amount), "currency": currency, "probability": p,
            "forecast_category": _CAT[stage] if prob == "default" else None, "type": "new", "lost_reason": reason}


OPPORTUNITIES = [
    _opp("o1", "u1", "A1", "P1", T(2025, 1, 2), D(2025, 2, 10), "closed_won", 1000, "CNY"),
    _opp("o2", "u1", "A2", "P2", T(2025, 1, 5, 10), D(2025, 2, 1), "closed_lost", 100, "USD", reason="price"),
    _opp("o3", "u2", "A1", "P1", T(2025, 1, 10), D(2025, 4, 15), "proposal", 2500, "CNY"),
    _opp("o4", "u3", "A2", "P2", T(2025, 2, 1), D(2025, 3, 5), "closed_won", 500, "CNY"),
    _opp("o5", "u3", "A1", "P1", T(2025, 2, 15), D(2025, 3, 20), "prospecting", 800, "CNY"),
    _opp("o6", "u2", "A2", "P1", T(2024, 12, 1), D(2025, 3, 20), "closed_won", 300, "CNY"),
    _opp("o7", "u1", "A1", "P2", T(2025, 3, 10), D(2025, 5, 31), "qualification", 50, "USD"),
    _opp("o8", "u2", "A2", "P2", T(2025, 3, 31, 16), D(2025, 6, 30), "prospecting", 100, "CNY", prob=None),
    _opp("o9", "u2", "A1", "P2", T(2025, 3, 3), D(2025, 3, 28), "negotiation", 1200, "CNY"),
    _opp("o10", "u3", "A2", "P1", T(2025, 1, 20), D(2025, 2, 20), "closed_lost", 400, "CNY", reason="competitor"),
    _opp("o11", "u2", "A1", "P1", T(2024, 10, 1), D(2024, 11, 15), "closed_won", 600, "CNY"),
]


def _h(oid, when, stage, amount, currency, close, prob="default"):
    p = _PROB[stage] if prob == "default" else prob
    return {"opportunity_id": oid, "changed_at": when, "stage": stage, "amount": float(amount), "currency": currency,
            "probability": p, "close_date": close, "forecast_category": _CAT[stage] if prob == "default" else None}


HISTORY = [
    _h("o1", T(2025, 1, 2), "prospecting", 1000, "CNY", D(2025, 2, 15)),
    _h("o1", T(2025, 1, 6), "qualification", 1000, "CNY", D(2025, 2, 15)),
    _h("o1", T(2025, 1, 16), "proposal", 1000, "CNY", D(2025, 2, 15)),
    _h("o1", T(2025, 1, 21), "negotiation", 1000, "CNY", D(2025, 2, 15)),
    _h("o1", T(2025, 2, 10), "closed_won", 1000, "CNY", D(2025, 2, 10)),
    _h("o2", T(2025, 1, 5, 10), "prospecting", 100, "USD", D(2025, 2, 28)),
    _h("o2", T(2025, 1, 15, 10), "qualification", 100, "USD", D(2025, 2, 28)),
    _h("o2", T(2025, 2, 1, 10), "closed_lost", 100, "USD", D(2025, 2, 1)),
    _h("o3", T(2025, 1, 10), "prospecting", 2000, "CNY", D(2025, 3, 31)),
    _h("o3", T(2025, 1, 20), "qualification", 2000, "CNY", D(2025, 3, 31)),
    _h("o3", T(2025, 2, 1), "needs_analysis", 2000, "CNY", D(2025, 3, 31)),
    _h("o3", T(2025, 3, 1), "proposal", 2500, "CNY", D(2025, 4, 15)),
    _h("o4", T(2025, 2, 1), "prospecting", 500, "CNY", D(2025, 3, 10)),
    _h("o4", T(2025, 2, 10), "negotiation", 500, "CNY", D(2025, 3, 10)),
    _h("o4", T(2025, 3, 5), "closed_won", 500, "CNY", D(2025, 3, 5)),
    _h("o5", T(2025, 2, 15), "prospecting", 800, "CNY", D(2025, 3, 20)),
    _h("o6", T(2024, 12, 1), "prospecting", 300, "CNY", D(2025, 1, 31)),
    _h("o6", T(2025, 1, 10), "negotiation", 300, "CNY", D(2025, 3, 15)),
    _h("o6", T(2025, 3, 20), "closed_won", 300, "CNY", D(2025, 3, 20)),
    _h("o8", T(2025, 3, 31, 16), "prospecting", 100, "CNY", D(2025, 6, 30), prob=None),
    _h("o9", T(2025, 3, 3), "prospecting", 1200, "CNY", D(2025, 3, 28)),
    _h("o9", T(2025, 3, 12), "negotiation", 1200, "CNY", D(2025, 3, 28)),
    _h("o10", T(2025, 1, 20), "prospecting", 400, "CNY", D(2025, 2, 28)),
    _h("o10", T(2025, 2, 20), "closed_lost", 400, "CNY", D(2025, 2, 20)),
    _h("o11", T(2024, 10, 1), "prospecting", 600, "CNY", D(2024, 11, 30)),
    _h("o11", T(2024, 11, 15), "closed_won", 600, "CNY", D(2024, 11, 15)),
]


def _a(aid, typ, when, owner, account, opp):
    return {"activity_id": aid, "type": typ, "occurred_at": when, "owner_id": owner, "account_id": account,
            "opportunity_id": opp}


ACTIVITIES = [
    _a("a1", "call", T(2025, 1, 3, 10), "u1", "A1", "o1"),
    _a("a2", "meeting", T(2025, 1, 20, 10), "u1", "A1", "o1"),
    _a("a3", "email", T(2025, 2, 5, 10), "u1", "A2", "o2"),
    _a("a4", "call", T(2025, 3, 25, 10), "u2", "A1", "o3"),
    _a("a5", "email", T(2025, 3, 30, 10), "u2", "A1", "o9"),
    _a("a6", "meeting", T(2025, 2, 20, 10), "u3", "A2", "o4"),
    _a("a7", "call", T(2025, 3, 15, 10), "u3", "A1", None),
    _a("a8", "call", T(2024, 12, 15, 10), "u2", "A2", "o6"),
    _a("a9", "email", T(2025, 3, 18, 10), "u2", "A2", "o6"),
    _a("a10", "call", T(2025, 4, 2, 10), "u1", "A1", "o3"),
]


def _targets() -> list[dict]:
    rows = []
    plan = {
        ("company", "company"): ((600, 600, 600), (1000, 2000, 3000)),
        ("department", "East"): ((500, 500, 500), (600, 1200, 1800)),
        ("department", "West"): ((100, 100, 100), (400, 800, 1200)),
        ("team", "T1"): ((500, 500, 500), (600, 1200, 1800)),
        ("team", "T2"): ((100, 100, 100), (400, 800, 1200)),
        ("user", "u1"): ((300, 300, 300), (300, 600, 900)),
        ("user", "u2"): ((200, 200, 200), (300, 600, 900)),
        ("user", "u3"): ((100, 100, 100), (400, 800, 1200)),
    }
    months = ((D(2024, 10, 1), D(2024, 11, 1), D(2024, 12, 1)), (D(2025, 1, 1), D(2025, 2, 1), D(2025, 3, 1)))
    for (level, entity), quarters in plan.items():
        for firsts, values in zip(months, quarters, strict=True):
            for first, value in zip(firsts, values, strict=True):
                rows.append({"period": first, "grain": "month", "level": level, "entity_id": entity,
                             "kpi": "revenue", "value": float(value)})
    return rows


def hand_frames() -> dict[str, pl.DataFrame]:
    return {
        "teams": frame("teams", TEAMS),
        "users": frame("users", USERS),
        "accounts": frame("accounts", ACCOUNTS),
        "products": frame("products", PRODUCTS),
        "opportunities": frame("opportunities", OPPORTUNITIES),
        "opportunity_history": frame("opportunity_history", HISTORY),
        "activities": frame("activities", ACTIVITIES),
        "fx_rates": frame("fx_rates", FX),
        "targets": frame("targets", _targets()),
    }


def write_hand_warehouse(folder: Path) -> Path:
    from crmlib.sources.warehouse import write_warehouse

    return write_warehouse(folder / "sales.duckdb", hand_frames())
