"""A small hand-written CRM (3 sales teams, 6 reps, 21 deals in CNY and USD, 5 leads, 6 cases, monthly
targets) whose KPI values the tests compute by hand. Every number the tests expect is derived from the
rows below; the comments next to each test show the arithmetic.

Calendar of 2025: 1 January is a Wednesday; Mondays: 6, 13, 20, 27 January, 3, 10, 17, 24 February.

USD -> CNY rates (fx_rates): 2024-01-01 6.9, 2025-01-01 7.0, 2025-02-01 7.2, 2025-03-01 7.1 (each valid
until the next). CNY is the base currency (no rate needed).

Won deals (owner, team, account region, close date, amount -> CNY):
  o1  u1 T1 North 2025-01-10  100 USD -> 700        o5  u4 T2 North 2025-02-28   50 USD -> 360
  o2  u1 T1 North 2025-01-20 1000 CNY              o6  u5 T3 North 2025-03-05 3000 CNY
  o3  u2 T1 South 2025-02-03  200 USD -> 1440       o7  u6 T3 South 2025-03-15   10 USD -> 71
  o4  u3 T2 South 2025-02-14 2000 CNY              o8  u1 T1 North 2025-03-31  500 CNY
  o18 u1 T1 North 2024-01-15  400 CNY              o19 u3 T2 South 2024-02-20  100 USD -> 690
  o21 u2 T1 South 2024-12-20  300 CNY
Lost: o9 u1 2025-01-25, o10 u2 2025-02-10, o11 u3 2025-02-20, o12 u5 2025-03-10, o13 u6 2025-03-20,
      o20 u5 2024-03-10.
Open: o14 u1 800 CNY (created 2025-01-12), o15 u3 100 USD (2025-02-18), o16 u5 1500 CNY (2025-03-10),
      o17 u4 250 CNY (2024-11-20).
"""

from __future__ import annotations

import datetime as dt

import polars as pl
from hypothesis import strategies as st

from crmlib import schema

D = dt.date


def T(y, m, d, h=10, mi=0):  # noqa: N802 - a datetime, short on purpose
    return dt.datetime(y, m, d, h, mi)


def frame(name: str, rows: list[dict]) -> pl.DataFrame:
    cols = schema.table(name).column_names
    data = {c: [r.get(c) for r in rows] for c in cols}
    return schema.conform(pl.DataFrame(data, schema=schema.table(name).polars_schema), name)


TEAMS = [
    {"team_id": "T1", "name": "Alpha", "department": "Sales East", "function": "sales"},
    {"team_id": "T2", "name": "Beta", "department": "Sales East", "function": "sales"},
    {"team_id": "T3", "name": "Gamma", "department": "Sales West", "function": "sales"},
    {"team_id": "S1", "name": "Care", "department": "Service", "function": "service"},
]
USERS = [
    {"user_id": u, "name": u, "role": "sales_rep", "team_id": t, "department": dep, "is_active": True}
    for u, t, dep in (
        ("u1", "T1", "Sales East"), ("u2", "T1", "Sales East"), ("u3", "T2", "Sales East"),
        ("u4", "T2", "Sales East"), ("u5", "T3", "Sales West"), ("u6", "T3", "Sales West"),
    )
] + [{"user_id": "a1", "name": "a1", "role": "service_agent", "team_id": "S1", "department": "Service",
      "is_active": True}]
ACCOUNTS = [
    {"account_id": "A1", "name": "A1", "region": "North", "segment": "smb", "created_at": T(2023, 1, 1)},
    {"account_id": "A2", "name": "A2", "region": "South", "segment": "enterprise", "created_at": T(2023, 1, 1)},
    {"account_id": "A3", "name": "A3", "region": "North", "segment": "mid_market", "created_at": T(2024, 1, 1)},
]


def _opp(oid, owner, account, created, close, state, amount, currency, lead=None):
    won, closed = state == "won", state in ("won", "lost")
    stage = "closed_won" if won else "closed_lost" if closed else "proposal"
    return {"opportunity_id": oid, "name": oid, "account_id": account, "owner_id": owner, "created_at": created,
            "close_date": close, "stage": stage, "is_closed": closed, "is_won": won, "amount": float(amount),
            "currency": currency, "type": "new", "lead_id": lead}


OPPORTUNITIES = [
    _opp("o1", "u1", "A1", T(2024, 12, 10), D(2025, 1, 10), "won", 100, "USD"),
    _opp("o2", "u1", "A1", T(2025, 1, 5, 15), D(2025, 1, 20), "won", 1000, "CNY", lead="l1"),
    _opp("o3", "u2", "A2", T(2025, 1, 8), D(2025, 2, 3), "won", 200, "USD"),
    _opp("o4", "u3", "A2", T(2025, 1, 15), D(2025, 2, 14), "won", 2000, "CNY"),
    _opp("o5", "u4", "A3", T(2025, 2, 1), D(2025, 2, 28), "won", 50, "USD", lead="l2"),
    _opp("o6", "u5", "A1", T(2025, 2, 10), D(2025, 3, 5), "won", 3000, "CNY"),
    _opp("o7", "u6", "A2", T(2025, 3, 1), D(2025, 3, 15), "won", 10, "USD"),
    _opp("o8", "u1", "A3", T(2025, 3, 2), D(2025, 3, 31), "won", 500, "CNY"),
    _opp("o9", "u1", "A1", T(2025, 1, 2), D(2025, 1, 25), "lost", 300, "CNY"),
    _opp("o10", "u2", "A2", T(2025, 1, 3), D(2025, 2, 10), "lost", 100, "USD"),
    _opp("o11", "u3", "A2", T(2025, 2, 5), D(2025, 2, 20), "lost", 400, "CNY"),
    _opp("o12", "u5", "A1", T(2025, 2, 15), D(2025, 3, 10), "lost", 600, "CNY", lead="l3"),
    _opp("o13", "u6", "A3", T(2025, 3, 3), D(2025, 3, 20), "lost", 20, "USD"),
    _opp("o14", "u1", "A1", T(2025, 1, 12), D(2025, 4, 30), "open", 800, "CNY"),
    _opp("o15", "u3", "A2", T(2025, 2, 18), D(2025, 5, 15), "open", 100, "USD"),
    _opp("o16", "u5", "A3", T(2025, 3, 10), D(2025, 6, 30), "open", 1500, "CNY", lead="l5"),
    _opp("o17", "u4", "A1", T(2024, 11, 20), D(2025, 4, 15), "open", 250, "CNY"),
    _opp("o18", "u1", "A1", T(2023, 12, 1), D(2024, 1, 15), "won", 400, "CNY"),
    _opp("o19", "u3", "A2", T(2024, 1, 10), D(2024, 2, 20), "won", 100, "USD"),
    _opp("o20", "u5", "A1", T(2024, 2, 1), D(2024, 3, 10), "lost", 200, "CNY"),
    _opp("o21", "u2", "A2", T(2024, 11, 1), D(2024, 12, 20), "won", 300, "CNY"),
]
LEADS = [
    {"lead_id": "l1", "created_at": T(2025, 1, 5, 9), "channel": "email", "status": "converted", "owner_id": "u1",
     "region": "North"},
    {"lead_id": "l2", "created_at": T(2025, 1, 20), "channel": "paid_search", "status": "converted",
     "owner_id": "u2", "region": "South"},
    {"lead_id": "l3", "created_at": T(2025, 2, 10), "channel": "email", "status": "converted", "owner_id": "u3",
     "region": "North"},
    {"lead_id": "l4", "created_at": T(2025, 2, 25), "channel": "events", "status": "working", "owner_id": "u5",
     "region": None},
    {"lead_id": "l5", "created_at": T(2025, 3, 15), "channel": "email", "status": "working", "owner_id": "u6",
     "region": "South"},
]
CASES = [
    {"case_id": "c1", "account_id": "A1", "created_at": T(2025, 1, 3, 9), "closed_at": T(2025, 1, 3, 13),
     "team_id": "S1", "agent_id": "a1", "priority": "high", "status": "solved", "channel": "email"},
    {"case_id": "c2", "account_id": "A2", "created_at": T(2025, 1, 10, 9), "closed_at": T(2025, 1, 12, 9),
     "team_id": "S1", "agent_id": "a1", "priority": "normal", "status": "solved", "channel": "phone"},
    {"case_id": "c3", "account_id": "A1", "created_at": T(2025, 1, 28, 10), "closed_at": T(2025, 2, 2, 10),
     "team_id": "S1", "agent_id": "a1", "priority": "low", "status": "closed", "channel": "email"},
    {"case_id": "c4", "account_id": "A3", "created_at": T(2025, 2, 14, 8), "closed_at": None,
     "team_id": "S1", "agent_id": "a1", "priority": "urgent", "status": "open", "channel": "chat"},
    {"case_id": "c5", "account_id": "A2", "created_at": T(2025, 3, 1, 12), "closed_at": T(2025, 3, 2, 0),
     "team_id": None, "agent_id": None, "priority": "normal", "status": "solved", "channel": "web"},
    {"case_id": "c6", "account_id": "A1", "created_at": T(2025, 3, 20, 9), "closed_at": None,
     "team_id": "S1", "agent_id": "a1", "priority": "high", "status": "pending", "channel": "email"},
]
SURVEYS = [
    {"survey_id": "s1", "type": "csat", "sent_at": T(2025, 1, 3, 14), "responded_at": T(2025, 1, 4), "score": 5,
     "case_id": "c1", "account_id": "A1"},
    {"survey_id": "s2", "type": "csat", "sent_at": T(2025, 1, 12, 10), "responded_at": T(2025, 1, 13), "score": 3,
     "case_id": "c2", "account_id": "A2"},
    {"survey_id": "s3", "type": "csat", "sent_at": T(2025, 2, 2, 11), "responded_at": T(2025, 2, 3), "score": 4,
     "case_id": "c3", "account_id": "A1"},
    {"survey_id": "s4", "type": "csat", "sent_at": T(2025, 3, 2, 1), "responded_at": T(2025, 3, 3), "score": 2,
     "case_id": "c5", "account_id": "A2"},
    {"survey_id": "s5", "type": "csat", "sent_at": T(2025, 1, 5), "responded_at": None, "score": None,
     "case_id": "c1", "account_id": "A1"},
]
FX = [
    {"date": D(2024, 1, 1), "currency": "USD", "rate_to_base": 6.9},
    {"date": D(2025, 1, 1), "currency": "USD", "rate_to_base": 7.0},
    {"date": D(2025, 2, 1), "currency": "USD", "rate_to_base": 7.2},
    {"date": D(2025, 3, 1), "currency": "USD", "rate_to_base": 7.1},
]


def _targets() -> list[dict]:
    rows = []

    def add(kpi, level, entity, values, grain="month"):
        for month, value in zip((1, 2, 3), values, strict=True):
            if value is not None:
                rows.append({"period": D(2025, month, 1), "grain": grain, "level": level, "entity_id": entity,
                             "kpi": kpi, "value": float(value)})

    add("revenue", "company", "company", (4000, 4000, 4000))
    add("revenue", "department", "Sales East", (3000, 3000, 3000))
    add("revenue", "department", "Sales West", (1000, 1000, 1000))
    add("revenue", "team", "T1", (2000, 2000, 2000))
    add("revenue", "team", "T2", (1000, 1000, 1000))
    add("revenue", "team", "T3", (1000, 1000, 1200))  # March: 1200, the department says 1000
    add("revenue", "user", "u1", (1500, 1500, 1500))
    add("revenue", "user", "u2", (500, 500, 500))
    add("revenue", "user", "u3", (600, 600, 600))
    add("revenue", "user", "u4", (400, None, 400))  # no February target for u4
    add("revenue", "user", "u5", (700, 700, 700))
    add("revenue", "user", "u6", (300, 300, 300))
    add("won_deals", "company", "company", (2, 3, 3))
    add("lost_deals", "company", "company", (2, 1, 3))
    add("csat", "team", "S1", (0.8, 0.8, 0.8))
    return rows


def hand_frames() -> dict[str, pl.DataFrame]:
    return {
        "teams": frame("teams", TEAMS),
        "users": frame("users", USERS),
        "accounts": frame("accounts", ACCOUNTS),
        "opportunities": frame("opportunities", OPPORTUNITIES),
        "leads": frame("leads", LEADS),
        "cases": frame("cases", CASES),
        "surveys": frame("surveys", SURVEYS),
        "fx_rates": frame("fx_rates", FX),
        "targets": frame("targets", _targets()),
    }


class MemoryReader:
    """A source of in-memory canonical frames (neither a file nor a DuckDB database)."""

    def __init__(self, frames: dict[str, pl.DataFrame]) -> None:
        self.frames = frames

    def available(self) -> tuple[str, ...]:
        return tuple(self.frames)

    def scan(self, name: str) -> pl.LazyFrame:
        f = self.frames.get(name)
        return (schema.conform(f, name) if f is not None else schema.empty_frame(name)).lazy()

    def close(self) -> None:
        pass


def memory_crm(frames: dict[str, pl.DataFrame]):
    from crmlib.sources import Crm, Resolved

    return Crm(Resolved("files", "<memory>"), MemoryReader(frames))


START = dt.date(2025, 1, 1)


@st.composite
def random_crm(draw):
    """The hand fixture with up to 25 random deals (CNY and USD, some owned by x9, who has no team) and up
    to 15 random leads, from January to mid-April 2025, as an in-memory source."""
    frames = hand_frames()
    n = draw(st.integers(0, 25))
    opps = []
    for i in range(n):
        created = START + dt.timedelta(days=draw(st.integers(0, 80)))
        state = draw(st.sampled_from(["won", "lost", "open"]))
        opps.append({
            "opportunity_id": f"r{i}", "name": "r", "account_id": draw(st.sampled_from(["A1", "A2", "A3"])),
            "owner_id": draw(st.sampled_from(["u1", "u2", "u3", "u4", "u5", "u6", "x9"])),
            "created_at": dt.datetime.combine(created, dt.time(draw(st.integers(0, 23)))),
            "close_date": created + dt.timedelta(days=draw(st.integers(0, 40))),
            "stage": {"won": "closed_won", "lost": "closed_lost", "open": "proposal"}[state],
            "is_closed": state != "open", "is_won": state == "won",
            "amount": float(draw(st.integers(0, 10_000))), "currency": draw(st.sampled_from(["CNY", "USD"])),
            "type": "new",
        })
    frames["opportunities"] = frame("opportunities", opps)
    # x9 owns deals but is in no team: the null group
    frames["users"] = pl.concat([frames["users"], frame("users", [
        {"user_id": "x9", "name": "x9", "role": "sales_rep", "is_active": True}])])
    leads = [{"lead_id": f"L{i}", "created_at": dt.datetime.combine(START + dt.timedelta(days=d), dt.time(9)),
              "channel": "email", "status": "new", "owner_id": o, "region": reg}
             for i, (d, o, reg) in enumerate(draw(st.lists(st.tuples(
                 st.integers(0, 80), st.sampled_from(["u1", "u3", "u5", "x9"]),
                 st.sampled_from(["North", "South", None])), max_size=15)))]
    frames["leads"] = frame("leads", leads)
    return memory_crm(frames)
