"""Customer service analytics (crmlib.service): every time metric computed by hand on six tickets, the SLA
outcomes and their periods, backlog ageing, about-to-breach, leaderboards, the catalog's external KPIs,
a plain helpdesk event log, and the planted SLA problem of the demo (team T11 x priority high).

The hand fixture (calendar tests/service_fixtures/calendar.yaml: Monday-Friday 09:00-18:00, 1 January 2025
off; SLA tests/service_fixtures/sla.yaml: high 4 h / 16 h, normal and no priority 8 h / 24 h, pending
pauses the resolution clock). 2025-01-06 is a Monday. As of Tuesday 2025-01-14 12:00 (T) unless said:

* A  high,   T1/U1: created Mon 6 Jan 10:00, internal note 10:30, public reply + open 11:30, pending 12:00,
                   customer reply + open 15:00, solved 17:00, closed Fri 10 Jan 17:00.
* B  normal, T1/U1: created Thu 9 Jan 16:00, reply + open Fri 10:00, solved Fri 12:00, customer reopens
                   Sat 11 Jan 20:00, reply + pending Mon 13 Jan 10:00, open 14:00, solved 16:00.
* C  high,   T1/U2: created Tue 7 Jan 09:00, private reply 10:00 (not a response), public reply + open 14:00,
                   pending 15:00, open Wed 8 Jan 09:00, still open at T.
* D  high,   T2/U3: created Tue 14 Jan 09:30, nothing else (open, no response yet at T).
* E  normal, T2/U3: created Tue 31 Dec 17:00 (no "new" event), reply + pending Thu 2 Jan 10:00; pending at T.
* X9 only in case_events (no cases row: no priority, team or channel): new Wed 8 Jan 10:00 (its first event),
                   solved 12:00 by U2.
"""

from __future__ import annotations

import datetime as dt
import math
import shutil
from pathlib import Path

import polars as pl
import pytest

import crmlib
from crmlib import service
from crmlib.calendars import Calendar, load_calendar
from crmlib.errors import ConfigError

FIXTURES = Path(__file__).parent / "service_fixtures"
ROOT = Path(__file__).parents[1]
D = dt.datetime
T = D(2025, 1, 14, 12)
PERIOD = ("2024-12-30", "2025-01-14")  # three weeks: 30 Dec, 6 Jan, 13 Jan
CAL = FIXTURES / "calendar.yaml"
SLA = FIXTURES / "sla.yaml"
W1, W2, W3 = dt.date(2024, 12, 30), dt.date(2025, 1, 6), dt.date(2025, 1, 13)


def _events() -> pl.DataFrame:
    rows = [
        # A
        ("e01", "A", D(2025, 1, 6, 10), "status_change", "new", None, None),
        ("e02", "A", D(2025, 1, 6, 10, 30), "internal_note", None, "U1", False),
        ("e03", "A", D(2025, 1, 6, 11, 30), "agent_reply", None, "U1", True),
        ("e04", "A", D(2025, 1, 6, 11, 30), "status_change", "open", "U1", None),
        ("e05", "A", D(2025, 1, 6, 12), "status_change", "pending", "U1", None),
        ("e06", "A", D(2025, 1, 6, 15), "customer_reply", None, None, True),
        ("e07", "A", D(2025, 1, 6, 15), "status_change", "open", None, None),
        ("e08", "A", D(2025, 1, 6, 17), "status_change", "solved", "U1", None),
        ("e09", "A", D(2025, 1, 10, 17), "status_change", "closed", None, None),
        # B
        ("e10", "B", D(2025, 1, 9, 16), "status_change", "new", None, None),
        ("e11", "B", D(2025, 1, 10, 10), "agent_reply", None, "U1", True),
        ("e12", "B", D(2025, 1, 10, 10), "status_change", "open", "U1", None),
        ("e13", "B", D(2025, 1, 10, 12), "status_change", "solved", "U1", None),
        ("e14", "B", D(2025, 1, 11, 20), "customer_reply", None, None, True),
        ("e15", "B", D(2025, 1, 11, 20), "status_change", "open", None, None),
        ("e16", "B", D(2025, 1, 13, 10), "agent_reply", None, "U1", True),
        ("e17", "B", D(2025, 1, 13, 10), "status_change", "pending", "U1", None),
        ("e18", "B", D(2025, 1, 13, 14), "status_change", "open", None, None),
        ("e19", "B", D(2025, 1, 13, 16), "status_change", "solved", "U1", None),
        # C
        ("e20", "C", D(2025, 1, 7, 9), "status_change", "new", None, None),
        ("e21", "C", D(2025, 1, 7, 10), "agent_reply", None, "U2", False),
        ("e22", "C", D(2025, 1, 7, 14), "agent_reply", None, "U2", True),
        ("e23", "C", D(2025, 1, 7, 14), "status_change", "open", "U2", None),
        ("e24", "C", D(2025, 1, 7, 15), "status_change", "pending", "U2", None),
        ("e25", "C", D(2025, 1, 8, 9), "status_change", "open", None, None),
        # D
        ("e26", "D", D(2025, 1, 14, 9, 30), "status_change", "new", None, None),
        # E
        ("e27", "E", D(2025, 1, 2, 10), "agent_reply", None, "U3", True),
        ("e28", "E", D(2025, 1, 2, 10), "status_change", "pending", "U3", None),
        # X9
        ("e29", "X9", D(2025, 1, 8, 10), "status_change", "new", None, None),
        ("e30", "X9", D(2025, 1, 8, 12), "status_change", "solved", "U2", None),
    ]
    return pl.DataFrame(rows, orient="row", schema={
        "event_id": pl.String, "case_id": pl.String, "occurred_at": pl.Datetime("us"), "event_type": pl.String,
        "status": pl.String, "agent_id": pl.String, "is_public": pl.Boolean})


def _cases() -> pl.DataFrame:
    rows = [
        ("A", "A1", D(2025, 1, 6, 10), "email", "high", "billing", "T1", "U1", "closed", D(2025, 1, 6, 17)),
        ("B", "A1", D(2025, 1, 9, 16), "chat", "normal", "technical", "T1", "U1", "solved", D(2025, 1, 13, 16)),
        ("C", "A2", D(2025, 1, 7, 9), "phone", "high", "technical", "T1", "U2", "open", None),
        ("D", "A2", D(2025, 1, 14, 9, 30), "web", "high", "bug", "T2", "U3", "new", None),
        ("E", "A1", D(2024, 12, 31, 17), "chat", "normal", "billing", "T2", "U3", "pending", None),
    ]
    return pl.DataFrame(rows, orient="row", schema={
        "case_id": pl.String, "account_id": pl.String, "created_at": pl.Datetime("us"), "channel": pl.String,
        "priority": pl.String, "category": pl.String, "team_id": pl.String, "agent_id": pl.String,
        "status": pl.String, "closed_at": pl.Datetime("us")})


def _surveys() -> pl.DataFrame:
    rows = [
        ("s1", "csat", D(2025, 1, 6, 18), D(2025, 1, 7, 9), 5, "A", "A1"),
        ("s2", "csat", D(2025, 1, 8, 13), D(2025, 1, 9, 10), 4, "X9", "A1"),
        ("s3", "csat", D(2025, 1, 10, 8), None, None, "C", "A2"),
        ("s4", "csat", D(2025, 1, 13, 17), D(2025, 1, 14, 9), 3, "B", "A1"),
        ("s5", "nps", D(2025, 1, 3, 10), D(2025, 1, 3, 11), 10, None, "A1"),
        ("s6", "nps", D(2025, 1, 3, 10), D(2025, 1, 4, 11), 9, None, "A2"),
        ("s7", "nps", D(2025, 1, 5, 10), D(2025, 1, 6, 11), 8, None, "A1"),
        ("s8", "nps", D(2025, 1, 5, 10), D(2025, 1, 6, 12), 6, None, "A2"),
        ("s9", "nps", D(2025, 1, 7, 10), None, None, None, "A2"),
    ]
    return pl.DataFrame(rows, orient="row", schema={
        "survey_id": pl.String, "type": pl.String, "sent_at": pl.Datetime("us"), "responded_at": pl.Datetime("us"),
        "score": pl.Int64, "case_id": pl.String, "account_id": pl.String})


def _write(folder: Path, frames: dict[str, pl.DataFrame]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, f in frames.items():
        f.write_parquet(folder / f"{name}.parquet")
    return folder


@pytest.fixture(scope="module")
def crm(tmp_path_factory):
    folder = _write(tmp_path_factory.mktemp("service") / "crm", {
        "cases": _cases(), "case_events": _events(), "surveys": _surveys(),
        "users": pl.DataFrame({"user_id": ["U1", "U2", "U3"], "name": ["Ann", "Bo", "Cy"], "role": ["service_agent"] * 3,
                               "team_id": ["T1", "T1", "T2"], "is_active": [True] * 3}),
        "teams": pl.DataFrame({"team_id": ["T1", "T2"], "name": ["Desk One", "Desk Two"], "department": ["Service"] * 2,
                               "function": ["service"] * 2}),
        "accounts": pl.DataFrame({"account_id": ["A1", "A2"], "name": ["One", "Two"], "region": ["North", "South"],
                                  "segment": ["smb", "enterprise"]}),
        "targets": pl.DataFrame({"period": [dt.date(2025, 1, 1)], "grain": ["month"], "level": ["team"],
                                 "entity_id": ["T1"], "kpi": ["sla_compliance"], "value": [0.9]}),
    })
    with crmlib.open(folder) as c:
        yield c


@pytest.fixture(scope="module")
def facts(crm) -> dict[str, dict]:
    f = service.case_facts(crm, as_of=T, calendar=CAL, sla=SLA)
    return {r["case_id"]: r for r in f.iter_rows(named=True)}


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A project folder whose parameters/ hold the test calendar and SLA (for the KPI engine's providers)."""
    home = tmp_path / "project"
    (home / "parameters").mkdir(parents=True)
    (home / "notebooks").mkdir()
    shutil.copy(CAL, home / "parameters" / "calendar.yaml")
    shutil.copy(SLA, home / "parameters" / "sla.yaml")
    monkeypatch.setenv("CRMLIB_HOME", str(home))
    service.clear_cache()
    return home


# --------------------------------------------------------------------------------------------
# Time metrics, business hours
# --------------------------------------------------------------------------------------------
def test_simple_ticket_with_a_pause(facts):
    a = facts["A"]
    # first response: 10:00 -> 11:30 public reply = 1.5 h (the internal note at 10:30 is no response)
    assert a["first_response_hours"] == 1.5
    assert a["first_response_at"] == D(2025, 1, 6, 11, 30)
    # solved 17:00: 10:00 -> 17:00 = 7 h; the later close (solved -> closed) is no new solve
    assert a["first_resolution_hours"] == 7 and a["full_resolution_hours"] == 7
    assert a["solved_at"] == D(2025, 1, 6, 17) and a["reopens"] == 0 and a["status"] == "closed"
    # requester wait: new 10:00-11:30 (1.5) + open 11:30-12:00 (0.5) + open 15:00-17:00 (2) = 4 h
    # agent wait: pending 12:00-15:00 = 3 h
    assert a["requester_wait_hours"] == 4 and a["agent_wait_hours"] == 3


def test_reopened_ticket_over_a_weekend(facts):
    b = facts["B"]
    # first response: Thu 16:00-18:00 (2) + Fri 09:00-10:00 (1) = 3 h
    assert b["first_response_hours"] == 3
    # first solve Fri 12:00: 2 + 3 = 5 h; last solve Mon 13 Jan 16:00: Thu 2 + Fri 9 + (weekend 0) + Mon 7 = 18 h
    assert b["first_resolution_hours"] == 5 and b["full_resolution_hours"] == 18
    assert b["first_solved_at"] == D(2025, 1, 10, 12) and b["solved_at"] == D(2025, 1, 13, 16)
    assert b["reopens"] == 1
    # requester: new Thu 16:00-Fri 10:00 (3) + open Fri 10-12 (2) + open Sat 20:00-Mon 10:00 (Mon 9-10: 1)
    #            + open Mon 14-16 (2) = 8 h; solved Fri 12:00-Sat 20:00 counts for nobody
    # agent: pending Mon 10-14 = 4 h
    assert b["requester_wait_hours"] == 8 and b["agent_wait_hours"] == 4


def test_open_ticket_breaching_both_targets(facts):
    c = facts["C"]
    # the private reply at 10:00 is no response; the public one at 14:00: 09:00 -> 14:00 = 5 h
    assert c["first_response_hours"] == 5
    assert c["first_resolution_hours"] is None and c["full_resolution_hours"] is None and c["is_open"]
    # requester: new 9-14 (5) + open 14-15 (1) + open Wed 8 09:00 -> T (Wed 9, Thu 9, Fri 9, Mon 9, Tue 9-12 3) = 45
    # agent: pending Tue 15:00 -> Wed 09:00 = Tue 15-18 = 3 h
    assert c["requester_wait_hours"] == 45 and c["agent_wait_hours"] == 3
    # first response target 4 h: passed at Tue 09:00 + 4 h = 13:00 (the reply came at 14:00)
    assert c["first_response_sla"] == "breached" and c["first_response_sla_at"] == D(2025, 1, 7, 13)
    # resolution clock (not pending, not solved): 5 + 1 = 6 h by Tue 15:00, paused until Wed 09:00, then
    # Wed 9 h (15 h at 18:00) and 1 more h on Thursday: passes 16 h at Thu 9 Jan 10:00
    assert c["resolution_elapsed_hours"] == 45
    assert c["resolution_sla"] == "breached" and c["resolution_sla_at"] == D(2025, 1, 9, 10)
    # the case breaches at its first breach
    assert c["sla"] == "breached" and c["sla_at"] == D(2025, 1, 7, 13)


def test_new_ticket_about_to_breach(facts):
    d = facts["D"]
    assert d["first_response_hours"] is None and d["first_response_at"] is None
    # Tue 09:30 -> T 12:00 = 2.5 h of the 4 h: 1.5 h left, due at 13:30
    assert d["first_response_sla"] == "pending" and d["first_response_elapsed_hours"] == 2.5
    assert d["first_response_remaining_hours"] == 1.5 and d["first_response_due_at"] == D(2025, 1, 14, 13, 30)
    # resolution: 2.5 of 16 h: 13.5 h left; from T: Tue 12-18 (6 h), Wed 09:00 + 7.5 h -> Wed 15 Jan 16:30
    assert d["resolution_remaining_hours"] == 13.5 and d["resolution_due_at"] == D(2025, 1, 15, 16, 30)
    assert d["sla"] == "pending" and d["sla_at"] is None and d["remaining_hours"] == 1.5


def test_ticket_over_a_holiday_waiting_on_the_customer(facts):
    e = facts["E"]
    # no "new" event: new from its creation. Tue 31 Dec 17:00 -> Thu 2 Jan 10:00:
    # Tue 17-18 (1) + Wed 1 Jan holiday (0) + Thu 9-10 (1) = 2 h
    assert e["first_response_hours"] == 2 and e["first_response_sla"] == "met"
    # pending since Thu 2 Jan 10:00 until T: Thu 8 + Fri 9 + Mon 6..Fri 10 (5 x 9) + Mon 13 9 + Tue 14 3 = 74 h
    assert e["agent_wait_hours"] == 74 and e["requester_wait_hours"] == 2
    # the resolution clock is paused: 2 h used, 22 h left, no due time while it waits
    assert e["resolution_sla"] == "pending" and e["resolution_remaining_hours"] == 22
    assert e["resolution_due_at"] is None and e["status"] == "pending"
    assert e["sla"] == "pending" and e["remaining_hours"] == 22


def test_case_known_only_from_its_events(facts):
    x = facts["X9"]
    # created at its first event (Wed 10:00), agent from its events, no priority: the default policy
    assert x["created_at"] == D(2025, 1, 8, 10) and x["agent_id"] == "U2" and x["priority"] is None
    assert x["sla_policy"] == "default" and x["first_response_target_hours"] == 8
    # no reply (the log has replies, so no stand-in): no first response time; solved at 12:00 = 2 h
    assert x["first_response_hours"] is None and x["full_resolution_hours"] == 2
    # the solve fulfils the first-response target too (2 h <= 8 h)
    assert x["first_response_sla"] == "met" and x["first_response_sla_at"] == D(2025, 1, 8, 12)
    assert x["sla"] == "met" and x["sla_at"] == D(2025, 1, 8, 12)


def test_met_cases_are_dated_by_their_last_achievement(facts):
    # A: reply 11:30 (1.5 <= 4), resolution clock 4 h <= 16 at the solve 17:00 -> met at 17:00
    assert (facts["A"]["sla"], facts["A"]["sla_at"]) == ("met", D(2025, 1, 6, 17))
    # B: reply Fri 10:00 (3 <= 8); resolution clock = requester wait 8 h <= 24 -> met at the last solve
    assert (facts["B"]["sla"], facts["B"]["sla_at"]) == ("met", D(2025, 1, 13, 16))
    assert facts["B"]["resolution_elapsed_hours"] == 8


def test_calendar_hours(crm):
    f = {r["case_id"]: r for r in service.case_facts(crm, as_of=T, hours="calendar", calendar=CAL, sla=SLA)
         .iter_rows(named=True)}
    # A: 1.5 h, 7 h, requester 4 h, agent 3 h (all inside one working day)
    assert (f["A"]["first_response_hours"], f["A"]["full_resolution_hours"]) == (1.5, 7)
    # B: Thu 16:00 -> Fri 10:00 = 18 h; -> Fri 12:00 = 20 h; -> Mon 13 16:00 = 4 days = 96 h
    assert (f["B"]["first_response_hours"], f["B"]["first_resolution_hours"], f["B"]["full_resolution_hours"]) == (
        18, 20, 96)
    # B requester: 18 + 2 + (Sat 20:00 -> Mon 10:00 = 38) + 2 = 60 h; agent: 4 h
    assert (f["B"]["requester_wait_hours"], f["B"]["agent_wait_hours"]) == (60, 4)
    # E: Tue 31 Dec 17:00 -> Thu 2 Jan 10:00 = 41 h (the holiday counts in calendar hours)
    assert f["E"]["first_response_hours"] == 41
    # the SLA keeps the policy's clock (business): C still breaches at Tue 13:00
    assert f["C"]["first_response_sla_at"] == D(2025, 1, 7, 13)


def test_time_zone_of_the_data(tmp_path):
    # A helpdesk exporting in UTC, a desk in Shanghai: created 00:30 UTC (08:30 local, before opening),
    # public reply 02:00 UTC (10:00 local): 1 business hour, 1.5 calendar hours.
    cases = pl.DataFrame({"case_id": ["Z"], "account_id": ["A1"], "created_at": [D(2025, 1, 6, 0, 30)],
                          "channel": ["email"], "priority": ["high"], "status": ["open"]})
    events = pl.DataFrame({"event_id": ["z1"], "case_id": ["Z"], "occurred_at": [D(2025, 1, 6, 2)],
                           "event_type": ["agent_reply"], "is_public": [True]})
    with crmlib.open(_write(tmp_path / "utc", {"cases": cases, "case_events": events})) as c:
        utc = Calendar(timezone="Asia/Shanghai", data_timezone="UTC")
        got = service.case_facts(c, as_of=D(2025, 1, 6, 3), calendar=utc, sla=SLA)
        assert got["first_response_hours"].to_list() == [1.0]
        got = service.case_facts(c, as_of=D(2025, 1, 6, 3), calendar=utc, sla=SLA, hours="calendar")
        assert got["first_response_hours"].to_list() == [1.5]
        # the same naive times read as Shanghai time: 00:30 -> 02:00 is all outside hours
        got = service.case_facts(c, as_of=D(2025, 1, 6, 3), calendar=CAL, sla=SLA)
        assert got["first_response_hours"].to_list() == [0.0]


def test_as_of_ignores_later_events(crm):
    # As of Fri 10 Jan 11:00, B is open (answered at 10:00, not solved yet) and A is solved, not closed.
    f = {r["case_id"]: r for r in service.case_facts(crm, as_of=D(2025, 1, 10, 11), calendar=CAL, sla=SLA)
         .iter_rows(named=True)}
    assert "D" not in f  # created later
    assert f["B"]["status"] == "open" and f["B"]["reopens"] == 0 and f["B"]["full_resolution_hours"] is None
    assert f["A"]["status"] == "solved"
    # default as-of: the latest timestamp of the data (D's creation, Tue 14 Jan 09:30)
    d = service.case_facts(crm, calendar=CAL, sla=SLA).filter(pl.col("case_id") == "D")
    assert d["first_response_elapsed_hours"].to_list() == [0.0]


# --------------------------------------------------------------------------------------------
# By period
# --------------------------------------------------------------------------------------------
def rows(frame: pl.DataFrame, *cols) -> list[tuple]:
    return [tuple(r) for r in frame.select(cols).iter_rows()]


def test_volume(crm):
    v = service.volume(crm, grain="week", period=PERIOD, as_of=T)
    # created: week of 30 Dec: E; of 6 Jan: A, C, X9, B; of 13 Jan: D
    # solved (last solve): A (6 Jan), X9 (8 Jan); B (13 Jan)
    assert rows(v, "period", "created", "solved") == [(W1, 1, 0), (W2, 4, 2), (W3, 1, 1)]
    by = service.volume(crm, by="priority", grain="week", period=PERIOD, as_of=T)
    assert by.filter(pl.col("period") == W2).sort("priority", nulls_last=True).select("priority", "created").rows() == [
        ("high", 2), ("normal", 1), (None, 1)]
    # every period x group gets a row, zero when nothing happened
    assert by.height == 3 * 3
    assert service.volume(crm, grain="week", period=PERIOD, as_of=T, filters={"team": "T2"})["created"].to_list() == [
        1, 0, 1]


def test_open_ended_periods(crm):
    # an empty end means the data's: from the first case (Tue 31 Dec) to Tue 7 Jan, by month
    v = service.volume(crm, grain="month", period=("", "2025-01-07"), as_of=T)
    assert rows(v, "period", "created") == [(dt.date(2024, 12, 1), 1), (dt.date(2025, 1, 1), 2)]  # E; A and C
    assert service.volume(crm, grain="year", period=("", ""), as_of=T)["created"].sum() == 6


def test_backlog_by_age(crm):
    b = service.backlog(crm, grain="week", period=PERIOD, as_of=T).filter(pl.col("cases") > 0)
    # end of week 30 Dec (Mon 6 Jan 00:00): E (created Tue 31 Dec 17:00: 5 d 7 h old) -> 3-7 days
    # end of week 6 Jan (Mon 13 Jan 00:00): E (12 d 7 h) 7-30 d; C (5 d 15 h) and B (reopened Sat, 3 d 8 h) 3-7 d
    # at T (Tue 14 Jan 12:00): D (2.5 h) under 1 day; C (7 d 3 h) and E (13 d 19 h) 7-30 days
    assert rows(b, "period", "age_bucket", "cases") == [
        (W1, "3-7d", 1), (W2, "3-7d", 2), (W2, "7-30d", 1), (W3, "0-1d", 1), (W3, "7-30d", 2)]
    by = service.backlog(crm, by="team", grain="week", period=PERIOD, as_of=T)
    # every group found gets its rows, X9's empty team too (nothing open there)
    assert by.filter(pl.col("period") == W3).group_by("team").agg(pl.col("cases").sum()).sort(
        "team", nulls_last=True).rows() == [("T1", 1), ("T2", 2), (None, 0)]


def test_sla_report_dates_outcomes_when_known(crm):
    r = service.sla_report(crm, by=(), grain="week", period=PERIOD, as_of=T, calendar=CAL, sla=SLA)

    def metric(m):
        return rows(r.filter(pl.col("metric") == m), "period", "met", "breached", "compliance")

    # cases: week 6 Jan: A met (6 Jan), X9 met (8 Jan), C breached (7 Jan) -> 2/3; week 13 Jan: B met -> 1
    assert metric("sla") == [(W1, 0, 0, None), (W2, 2, 1, pytest.approx(2 / 3)), (W3, 1, 0, 1.0)]
    # first responses: E met 2 Jan; A, B (Fri 10 Jan) and X9 (by its solve) met, C breached; D still pending
    assert metric("first_response") == [(W1, 1, 0, 1.0), (W2, 3, 1, 0.75), (W3, 0, 0, None)]
    # resolutions: A and X9 met, C breached on Thu 9 Jan; B met on 13 Jan; D and E pending
    assert metric("resolution") == [(W1, 0, 0, None), (W2, 2, 1, pytest.approx(2 / 3)), (W3, 1, 0, 1.0)]
    by = service.sla_report(crm, by="priority", grain="month", period=("2025-01-01", "2025-01-31"), as_of=T,
                            calendar=CAL, sla=SLA).filter(pl.col("metric") == "sla")
    # January: high A met, C breached (D pending) -> 1/2; normal B met (E pending) -> 1; no priority X9 met
    assert rows(by.sort("priority", nulls_last=True), "priority", "met", "breached") == [
        ("high", 1, 1), ("normal", 1, 0), (None, 1, 0)]


def test_about_to_breach(crm):
    a = service.about_to_breach(crm, as_of=T, calendar=CAL, sla=SLA)  # within warn_within_hours = 2
    assert rows(a, "case_id", "target", "remaining_hours", "due_at") == [
        ("D", "first_response", 1.5, D(2025, 1, 14, 13, 30))]
    a = service.about_to_breach(crm, within_hours=14, as_of=T, calendar=CAL, sla=SLA, include_breached=True)
    # C: resolution 16 - 45 = -29 h, first response 4 - 5 = -1 h; D: 1.5 h and 13.5 h; E (22 h) is not within 14 h
    assert rows(a, "case_id", "target", "remaining_hours") == [
        ("C", "resolution", -29.0), ("C", "first_response", -1.0), ("D", "first_response", 1.5),
        ("D", "resolution", 13.5)]
    assert service.about_to_breach(crm, as_of=T, calendar=CAL, sla=SLA, filters={"team": "T1"}).height == 0


def test_time_summary(crm):
    s = service.time_summary(crm, by=(), period=PERIOD, as_of=T, calendar=CAL)
    got = {r["metric"]: r for r in s.iter_rows(named=True)}
    # cases solved in the period: A, B, X9. Full resolution 7, 18, 2 -> median 7, mean 9
    assert got["full_resolution_hours"]["cases"] == 3 and got["full_resolution_hours"]["median"] == 7
    assert got["full_resolution_hours"]["mean"] == 9
    # first responses of those: 1.5 and 3 (X9 has none) -> median 2.25
    assert got["first_response_hours"]["cases"] == 2 and got["first_response_hours"]["median"] == 2.25


def test_leaderboards(crm):
    lb = service.leaderboard(crm, period=PERIOD, as_of=T, calendar=CAL, sla=SLA)
    # U1: A, B created and solved; first responses 1.5, 3 -> 2.25; resolutions 7, 18 -> 12.5; both met;
    #     CSAT answers 5 and 3 -> 1 of 2 satisfied
    # U2: C, X9 created; X9 solved (2 h); C answered in 5 h; C breached, X9 met; X9 answered 4 -> 1 of 1
    # U3: D, E created, none solved; E answered in 2 h; no SLA outcome, no answer
    assert rows(lb, "rank", "member_id", "name", "team_id", "cases", "solved", "first_response_hours",
                "resolution_hours", "sla_compliance", "csat", "csat_responses") == [
        (1, "U1", "Ann", "T1", 2, 2, 2.25, 12.5, 1.0, 0.5, 2),
        (2, "U2", "Bo", "T1", 2, 1, 5.0, 2.0, 0.5, 1.0, 1),
        (3, "U3", "Cy", "T2", 2, 0, 2.0, None, None, None, 0)]
    # lower times rank first; members without a value rank last
    fr = service.leaderboard(crm, period=PERIOD, as_of=T, calendar=CAL, sla=SLA, sort_by="first_response_hours")
    assert rows(fr, "member_id", "rank") == [("U3", 1), ("U1", 2), ("U2", 3)]
    sla = service.leaderboard(crm, period=PERIOD, as_of=T, calendar=CAL, sla=SLA, sort_by="sla_compliance")
    assert rows(sla, "member_id", "rank") == [("U1", 1), ("U2", 2), ("U3", None)]
    # the 16 days before (14-29 Dec) had no activity: no previous rank
    assert lb["previous_rank"].is_null().all() and (lb["ranked_by"] == "solved").all()
    teams = service.leaderboard(crm, level="team", period=PERIOD, as_of=T, calendar=CAL, sla=SLA)
    # T1: A, B, C; first responses 1.5, 3, 5 -> 3; A and B met, C breached -> 2/3; X9 has no team
    assert rows(teams, "member_id", "name", "cases", "first_response_hours", "sla_compliance") == [
        ("T1", "Desk One", 3, 3.0, pytest.approx(2 / 3)), (None, None, 1, None, 1.0), ("T2", "Desk Two", 2, 2.0, None)]
    with pytest.raises(ConfigError, match='Did you mean "csat"'):
        service.leaderboard(crm, sort_by="cast")


def test_previous_period_rank(crm):
    lb = service.leaderboard(crm, period=("2025-01-08", "2025-01-14"), as_of=T, calendar=CAL, sla=SLA)
    prev = {r["member_id"]: (r["rank"], r["previous_rank"], r["rank_change"]) for r in lb.iter_rows(named=True)}
    # now (8-14 Jan), by cases solved: U1 solved B, U2 solved X9 -> both rank 1; U3 none (created D) -> 3
    # the 7 days before (1-7 Jan): U1 solved A -> 1; U2 created C, solved none -> 2; U3 did nothing then
    # (E was created on 31 Dec) -> no previous rank
    assert prev == {"U1": (1, 1, 0), "U2": (1, 2, 1), "U3": (3, None, None)}


# --------------------------------------------------------------------------------------------
# Through the KPI engine (providers of the catalog's external KPIs) and the survey KPIs
# --------------------------------------------------------------------------------------------
def test_external_kpis_through_the_engine(crm, project):
    week = crm.kpis(["sla_compliance", "sla_breaches", "first_response_business_hours"], grain="week",
                    period=("2024-12-30", "2025-01-12"))
    # as of the end of the period (Mon 13 Jan 00:00): week 6 Jan: A, X9 met, C breached -> 2/3, one breach;
    # median first response of the cases answered in the week: A 1.5, C 5, B 3 -> 3; week 30 Dec: E 2
    values = {(r["kpi"], r["period"]): r["value"] for r in week.iter_rows(named=True)}
    assert values[("sla_compliance", W2)] == pytest.approx(2 / 3) and values[("sla_compliance", W1)] is None
    assert values[("sla_breaches", W2)] == 1 and values[("sla_breaches", W1)] == 0
    assert values[("first_response_business_hours", W2)] == 3 and values[("first_response_business_hours", W1)] == 2
    month = crm.kpis(["sla_compliance", "reopen_rate", "first_response_hours"], by="team", grain="month",
                     period=("2025-01-01", "2025-01-31"))
    got = {(r["kpi"], r["team"]): r["value"] for r in month.iter_rows(named=True)}
    # T1: A met, B met (13 Jan), C breached -> 2/3; T2: D and E pending -> none; X9 (no team) met
    assert got[("sla_compliance", "T1")] == pytest.approx(2 / 3) and got[("sla_compliance", "T2")] is None
    assert got[("sla_compliance", None)] == 1.0
    # reopen rate: T1 first solved A and B in January, B was reopened -> 1/2
    assert got[("reopen_rate", "T1")] == 0.5
    # first response in calendar hours: T1 A 1.5, B 18, C 5 -> 5; T2: E (2 Jan) 41 h
    assert got[("first_response_hours", "T1")] == 5 and got[("first_response_hours", "T2")] == 41


def test_survey_kpis(crm):
    out = service.satisfaction(crm, period=("2025-01-01", "2025-01-31"))
    got = {r["kpi"]: r["value"] for r in out.iter_rows(named=True)}
    # CSAT answered in January: 5, 4, 3 -> 2 of 3 satisfied; NPS answers 10, 9, 8, 6: 50% - 25% = 25
    assert got["csat"] == pytest.approx(2 / 3) and got["nps"] == pytest.approx(25)
    # sent in January: CSAT 4 (3 answered), NPS 5 (4 answered)
    assert got["csat_response_rate"] == 0.75 and got["nps_response_rate"] == 0.8
    by = service.satisfaction(crm, by="team", period=("2025-01-01", "2025-01-31"))
    csat = {r["team"]: r["value"] for r in by.filter(pl.col("kpi") == "csat").iter_rows(named=True)}
    assert csat["T1"] == 0.5  # A scored 5, B scored 3


def test_kpi_summary_and_empty_selection(crm, project):
    s = service.kpi_summary(crm, period=("2025-01-01", "2025-01-31"), filters={"team": "T1"})
    assert s["kpi"].unique(maintain_order=True).to_list() == service.card_kpis("business")
    # one team selected: its January target applies. T1's SLA in January: A, B met, C breached -> 2/3;
    # attainment 2/3 / 0.9 = 0.741 (below 0.9 of the target: off track)
    sla = s.filter(pl.col("kpi") == "sla_compliance").row(0, named=True)
    assert "team" not in s.columns and sla["target"] == 0.9
    assert sla["value"] == pytest.approx(2 / 3) and sla["attainment"] == pytest.approx(2 / 3 / 0.9)
    assert sla["status"] == "off_track"
    # a team and a priority: the team's target is not the target of its high-priority cases
    both = service.kpi_summary(crm, period=("2025-01-01", "2025-01-31"), filters={"team": "T1", "priority": "high"})
    assert both.filter(pl.col("kpi") == "sla_compliance")["target"].to_list() == [None]
    assert service.kpi_summary(crm, period=("2025-01-01", "2025-01-31"), filters={"team": "T9"}).height == 0


def test_selection_and_filters(crm):
    assert service.selection(team="T1", channel="", priority="high") == {"team": "T1", "priority": "high"}
    f = service.volume(crm, grain="month", period=("2025-01-01", "2025-01-31"), as_of=T,
                       filters={"priority": ["high", None], "channel": ""})
    assert f["created"].to_list() == [4]  # A, C, D and X9 (no priority); "" means every channel
    with pytest.raises(ConfigError, match='"high"'):
        service.volume(crm, filters={"priority": "hihg"})
    with pytest.raises(ConfigError, match="Cases cannot be grouped or filtered by campaign"):
        service.volume(crm, by="campaign")


def test_empty_selection_gives_empty_results(crm):
    none = {"team": "nobody"}
    assert service.trends(crm, grain="week", period=PERIOD, filters=none).height == 0
    assert service.sla_report(crm, grain="week", period=PERIOD, filters=none)["compliance"].is_null().all()
    assert service.leaderboard(crm, period=PERIOD, filters=none).height == 0
    assert service.time_summary(crm, period=PERIOD, filters=none).height == 0
    assert service.satisfaction(crm, period=PERIOD, filters=none).height == 0


# --------------------------------------------------------------------------------------------
# SLA settings
# --------------------------------------------------------------------------------------------
def test_the_project_sla_file_loads():
    sla = service.load_sla(ROOT / "parameters" / "sla.yaml")
    assert sla.hours == "business" and sla.pause == ("pending",)
    assert set(sla.policies) == {"low", "normal", "high", "urgent"} and sla.default is not None
    load_calendar(ROOT / "parameters" / "calendar.yaml")


def test_a_wrong_sla_file_lists_every_problem():
    with pytest.raises(ConfigError) as e:
        service.load_sla(FIXTURES / "wrong_sla.yaml")
    text = str(e.value)
    for fragment in ("wrong_sla.yaml", "hours must be business or calendar, not 'bussiness'",
                     "pause: 'solved' is not an open status", "policies: 'urgnt' is not a priority",
                     "policies.high.first_response must be a number of hours > 0",
                     "policies.high: unknown key 'resolve'"):
        assert fragment in text, fragment


# --------------------------------------------------------------------------------------------
# A plain helpdesk event log (ticket id, activity id, timestamp, activity) with a mapping file
# --------------------------------------------------------------------------------------------
def _mapped_log(tmp_path: Path) -> Path:
    """The log mapped to case_events by the mapping file, through the importer's own mapping steps, into
    a folder source (the CLI import into a fresh warehouse: tests/test_import_eventlog.py)."""
    from crmlib import importer
    from crmlib.sources import files
    from crmlib.validate import Options, check_frame

    mapping = importer.load_mapping(FIXTURES / "helpdesk_log_mapping.yaml", "case_events")
    data = files.load_file(FIXTURES / "helpdesk_log.csv")
    frame, _ = importer._rename(data.frame, mapping, crmlib.schema.table("case_events"))
    frame, _ = importer._transform(frame, mapping, crmlib.schema.table("case_events"))
    typed, problems = check_frame(frame, "case_events", options=Options(date_formats=mapping.dates), columns=False)
    assert [p for p in problems if p.severity == "error"] == []
    return _write(tmp_path / "log", {"case_events": typed})


def test_metrics_from_a_plain_event_log(tmp_path):
    with crmlib.open(_mapped_log(tmp_path)) as log:
        f = {r["case_id"]: r for r in service.case_facts(log, calendar=Calendar(), sla=SLA).iter_rows(named=True)}
        # A status-only log: the first change away from new stands in for the first response.
        # 1001: Mon 6 Jan 09:15 -> 10:45 "Agent responded" = 1.5 h; resolved Tue 11:30: Mon 8.75 + Tue 2.5 = 11.25 h
        #       requester: new 1.5 + open 10:45-11:00 0.25 + open Tue 09:30-11:30 2 = 3.75; agent: pending
        #       Mon 11:00 -> Tue 09:30 = 7 + 0.5 = 7.5
        assert (f["1001"]["first_response_hours"], f["1001"]["full_resolution_hours"]) == (1.5, 11.25)
        assert (f["1001"]["requester_wait_hours"], f["1001"]["agent_wait_hours"]) == (3.75, 7.5)
        assert f["1001"]["agent_id"] == "agent.li" and f["1001"]["status"] == "closed"
        # 1002: Fri 10 Jan 17:00 -> Mon 09:30 = 1 + 0.5 = 1.5 h; first solve Mon 12:00 = 4 h; reopened Tue 10:00,
        #       solved 15:00: Fri 1 + Mon 9 + Tue 6 = 16 h; one reopen
        assert (f["1002"]["first_response_hours"], f["1002"]["first_resolution_hours"],
                f["1002"]["full_resolution_hours"], f["1002"]["reopens"]) == (1.5, 4, 16, 1)
        # 1003: created at the last timestamp, nothing yet; the default policy of the SLA file applies
        assert f["1003"]["is_open"] and f["1003"]["first_response_sla"] == "pending"
        assert f["1003"]["first_response_remaining_hours"] == 8
        # both solved tickets met the default policy (first response 8 h, resolution 24 h)
        assert f["1001"]["sla"] == "met" and f["1002"]["sla"] == "met"


# The CLI import of such a log into a fresh warehouse (`derive: [cases, accounts]` in the mapping file) is
# tested in tests/test_import_eventlog.py, hand-computed metrics included.


# --------------------------------------------------------------------------------------------
# Planted truth 4 on the demo: team T11 (Technical Support) x priority high
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    from crmlib.sources.demo import write_demo

    path = tmp_path_factory.mktemp("demo-service") / "crm.duckdb"
    write_demo(path, scale=1, seed=42, progress=False)
    with crmlib.open(path) as c:
        yield c


def _phi(x: float) -> float:
    return 0.5 * (1 + math.erf(x / math.sqrt(2)))


def test_planted_sla_problem_is_the_lowest_cell(demo):
    from crmlib.sources.demo import TRUTH

    truth = TRUTH["sla"]
    # Expected first-response compliance of the cell, from the simulator's parameters: first reply =
    # 0.05 h + median x exp(N(0, sigma)), median = 1.0 h (high) x 1.0 (T11's speed) x 6 = 6 h, target 4 h:
    # P(reply <= 4) = Phi(ln(3.95 / 6) / 0.9) = Phi(-0.465) = 0.321.
    median = truth["first_reply_median_business_hours"]["high"] * truth["team_speed"]["T11"] * truth["multiplier"]
    target = truth["first_reply_target_business_hours"]["high"]
    expected = _phi(math.log((target - 0.05) / median) / truth["first_reply_log_sd"])
    assert expected == pytest.approx(0.321, abs=0.001)

    sla = service.load_sla(ROOT / "parameters" / "sla.yaml")
    assert sla.policies["high"].first_response == target  # the project's SLA is the demo company's
    report = service.sla_report(demo, by=["team", "priority"], grain="year", period=("2023-01-01", "2026-06-30"),
                                sla=sla, calendar=ROOT / "parameters" / "calendar.yaml")
    cells = (report.group_by("metric", "team", "priority").agg(pl.col("met").sum(), pl.col("breached").sum())
             .with_columns((pl.col("met") / (pl.col("met") + pl.col("breached"))).alias("compliance")))
    overall = cells.filter(pl.col("metric") == "sla").sort("compliance")
    lowest = overall.row(0, named=True)
    assert (lowest["team"], lowest["priority"]) == (truth["team_id"], truth["priority"])
    fr = cells.filter((pl.col("metric") == "first_response") & (pl.col("team") == "T11")
                      & (pl.col("priority") == "high"))["compliance"].item()
    assert fr == pytest.approx(expected, abs=0.05)  # ~880 cases: 3 standard errors
    # every other cell is far above it (the next worst are the urgent cells: 1 h target, ~0.75)
    assert overall["compliance"][0] < 0.4 and overall["compliance"][1] > 0.6
    # and in every year, through the KPI engine
    by_year = demo.kpis("sla_compliance", by=["team", "priority"], grain="year", period=("2023-01-01", "2026-06-30"))
    worst = by_year.sort("value").group_by("period", maintain_order=True).first()
    assert set(zip(worst["team"], worst["priority"], strict=True)) == {("T11", "high")}
    assert worst.height == 4


# --------------------------------------------------------------------------------------------
# Consistency with the KPI engine, additivity, charts and tables (on the small demo)
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def small(demo_warehouse):
    with crmlib.open(demo_warehouse) as c:
        yield c


def test_volume_agrees_with_the_catalog_and_adds_up(small):
    period = ("2025-01-01", "2026-06-30")
    v = service.volume(small, grain="month", period=period)
    engine = small.kpis(["new_cases", "solved_cases"], grain="month", period=period, targets=False)
    # the catalog counts cases by created_at and by closed_at (the last solve): the same cases
    assert v["created"].to_list() == engine.filter(pl.col("kpi") == "new_cases")["value"].cast(pl.Int64).to_list()
    assert v["solved"].to_list() == engine.filter(pl.col("kpi") == "solved_cases")["value"].cast(pl.Int64).to_list()
    by = service.volume(small, by="team", grain="month", period=period).group_by("period").agg(
        pl.col("created").sum(), pl.col("solved").sum()).sort("period")
    assert by["created"].to_list() == v["created"].to_list() and by["solved"].to_list() == v["solved"].to_list()


def test_sla_outcomes_add_up_over_groups(small):
    total = service.sla_report(small, by=(), grain="quarter", period=("2025-01-01", "2026-06-30"))
    by = service.sla_report(small, by=["team", "priority"], grain="quarter", period=("2025-01-01", "2026-06-30"))
    summed = by.group_by("period", "metric").agg(pl.col("met").sum(), pl.col("breached").sum())
    joined = total.join(summed, on=["period", "metric"], suffix="_sum")
    assert joined.height == total.height
    assert (joined["met"] == joined["met_sum"]).all() and (joined["breached"] == joined["breached_sum"]).all()
    back = service.backlog(small, by="priority", grain="quarter", period=("2025-01-01", "2026-06-30"))
    assert back.group_by("period").agg(pl.col("cases").sum()).sort("period")["cases"].to_list() == (
        service.backlog(small, grain="quarter", period=("2025-01-01", "2026-06-30"))
        .group_by("period").agg(pl.col("cases").sum()).sort("period")["cases"].to_list())


def test_charts_and_tables_in_both_languages(small):
    from crmlib import charts_service as charts
    from crmlib import tables_service as tables

    period = ("2025-07-01", "2026-06-30")
    figures = [
        lambda lang, f: charts.plot_trends(service.trends(small, period=period, filters=f), lang),
        lambda lang, f: charts.plot_sla_heatmap(service.sla_report(small, period=period, filters=f), lang),
        lambda lang, f: charts.plot_time_boxes(service.time_summary(small, period=period, filters=f), lang),
        lambda lang, f: charts.plot_time_histogram(service.time_values(small, period=period, filters=f), lang),
        lambda lang, f: charts.plot_satisfaction(service.satisfaction(small, period=period, filters=f), lang),
    ]
    for make in figures:
        en, zh = make("en", None), make("zh", None)
        assert en.layout.title.text and len(en.data) > 0
        assert any("\u4e00" <= ch <= "\u9fff" for ch in zh.layout.title.text), zh.layout.title.text
        empty = make("zh", {"team": "nobody"})
        assert len(empty.data) == 0 and empty.layout.annotations[0].text == "当前筛选条件下没有数据。"
    cells = charts.plot_sla_heatmap(service.sla_report(small, by=["team", "priority"], grain="year", period=period),
                                    "en", x="team")
    # teams across; priorities read from the top in their order (plotly draws y from the bottom)
    assert list(cells.data[0].x) == ["T09", "T10", "T11", "T12"]
    assert list(cells.data[0].y) == ["urgent", "high", "normal", "low"]
    html = tables.fmt_leaderboard(service.leaderboard(small, period=period), "zh").as_raw_html()
    assert "客服排行榜" in html and "SLA 达成率" in html
    html = tables.fmt_about_to_breach(service.about_to_breach(small, filters={"team": "nobody"}), "en").as_raw_html()
    assert "No data for this selection" in html
