"""A plain helpdesk event log (ticket, timestamp, status) imported with a mapping file into a fresh warehouse
(issue 5): `crmlib data import --table case_events` derives the cases (and their accounts) from the log,
and crmlib.service computes the metrics from what was imported.

The hand-made log (business hours: Mon-Fri 09:00-18:00, ``Calendar()``; 2025-03-03 is a Monday; as of
Mon 2025-03-10 14:00):

====  ================  ===================  ==========================================================
case  when              state                note
====  ================  ===================  ==========================================================
T1    Mon 03-03 09:00   New                  priority P3, team Support, email, customer ACME
T1    Mon 03-03 10:30   In progress          first change away from new = first response: 1.5 h
T1    Mon 03-03 14:00   Waiting on customer  pending (agent wait; the SLA clock pauses)
T1    Tue 03-04 11:00   In progress          priority raised to P2 (the last value counts: high)
T1    Tue 03-04 16:00   Solved               first solve: Mon 9 h + Tue 7 h = 16 business h (31 calendar h)
T1    Thu 03-06 10:00   Reopened             a reopen
T1    Thu 03-06 12:00   Solved               last solve: Mon 9 + Tue 9 + Wed 9 + Thu 3 = 30 h (75 calendar h)
T1    Fri 03-07 09:00   Closed               closed_at stays the last solve (Thu 12:00)
T2    Fri 03-07 16:00   New                  P1, Support, phone, Globex
T2    Fri 03-07 17:30   In progress          first response 1.5 h
T2    Mon 03-10 10:00   Solved               over the weekend: Fri 2 h + Mon 1 h = 3 business h (66 calendar h)
T3    Mon 03-10 11:00   New                  P3, Billing, web, ACME
T3    Mon 03-10 13:00   Waiting on customer  first response 2 h; still open (pending) at 14:00
====  ================  ===================  ==========================================================

By hand: T1 requester wait (new + open) = 1.5 + 3.5 + 5 + 2 = 12 h; agent wait (pending) Mon 14-18 + Tue
09-11 = 6 business h (21 calendar h). T2 requester wait = 1.5 + 0.5 + 1 = 3 business h (66 calendar h). T3
requester wait 2 h, agent wait 1 h. March: 3 cases created, 2 solved (T1, T2), 1 open at the end (T3, aged
under a day); reopen rate = reopened / first solved in March = 1 / 2.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import polars as pl
import pytest
from helpers_import import make_warehouse, sha256
from typer.testing import CliRunner

import crmlib
from crmlib import service
from crmlib.calendars import Calendar
from crmlib.cli import app
from crmlib.errors import MappingError, ValidationError
from crmlib.importer import import_files

LOG = """\
Ticket,Updated,State,Priority,Group,Via,Customer
T1,2025-03-03 09:00,New,P3,Support,Email,ACME
T1,2025-03-03 10:30,In progress,,,,
T1,2025-03-03 14:00,Waiting on customer,,,,
T1,2025-03-04 11:00,In progress,P2,,,
T1,2025-03-04 16:00,Solved,,,,
T1,2025-03-06 10:00,Reopened,,,,
T1,2025-03-06 12:00,Solved,,,,
T1,2025-03-07 09:00,Closed,,,,
T2,2025-03-07 16:00,New,P1,Support,Phone,Globex
T2,2025-03-07 17:30,In progress,,,,
T2,2025-03-10 10:00,Solved,,,,
T3,2025-03-10 11:00,New,P3,Billing,Web,ACME
T3,2025-03-10 13:00,Waiting on customer,,,,
"""

MAPPING = """\
table: case_events
derive: [cases, accounts]     # the log is all there is: cases and accounts come from it
columns:
  Ticket: case_id
  Updated: occurred_at
  State: status
  Priority: priority          # columns of cases: carried to the derived cases (last non-empty value)
  Group: team_id
  Via: channel
  Customer: account_id
values:
  status: {In progress: open, Waiting on customer: pending, Reopened: open}
  priority: {P1: urgent, P2: high, P3: normal}
defaults:
  event_type: status_change
"""

AS_OF = dt.datetime(2025, 3, 10, 14)
SLA = Path(__file__).resolve().parent / "service_fixtures" / "sla.yaml"


@pytest.fixture(autouse=True)
def _base_currency(monkeypatch):
    monkeypatch.setenv("CRMLIB_BASE_CURRENCY", "CNY")


@pytest.fixture
def log(tmp_path) -> tuple[Path, Path]:
    (tmp_path / "log.csv").write_text(LOG, encoding="utf-8")
    (tmp_path / "log.yaml").write_text(MAPPING, encoding="utf-8")
    return tmp_path / "log.csv", tmp_path / "log.yaml"


@pytest.fixture
def imported(log, tmp_path) -> tuple[Path, str]:
    """The log imported with `crmlib data import` into a warehouse that does not exist yet."""
    into = tmp_path / "fresh" / "crm.duckdb"
    result = CliRunner().invoke(
        app,
        [
            "data",
            "import",
            str(log[0]),
            "--table",
            "case_events",
            "--mapping",
            str(log[1]),
            "--into",
            str(into),
        ],
    )
    assert result.exit_code == 0, result.output
    return into, result.output


def _facts(crm, hours: str) -> dict[str, dict]:
    f = service.case_facts(crm, as_of=AS_OF, hours=hours, calendar=Calendar(), sla=SLA)
    return {r["case_id"]: r for r in f.iter_rows(named=True)}


def test_the_import_says_what_it_derived(imported):
    _, output = imported
    assert "Imported 13 rows into case_events (13 new, 0 replaced)" in output
    assert "derived 3 cases rows from the file" in output
    assert "derived 2 accounts rows from the file" in output
    # teams are not in the warehouse: the team ids cannot be checked yet, which is said, not an error
    assert "warning: [orphan_key]" in output and "table teams is empty" in output


def test_cases_are_derived_from_the_log(imported):
    with crmlib.open(imported[0]) as crm:
        cases = {r["case_id"]: r for r in crm.cases.collect().iter_rows(named=True)}
        accounts = crm.accounts.collect().sort("account_id")
        events = crm.case_events.collect()
    t1, t2, t3 = cases["T1"], cases["T2"], cases["T3"]
    assert (t1["created_at"], t1["status"], t1["closed_at"]) == (
        dt.datetime(2025, 3, 3, 9),
        "closed",
        dt.datetime(2025, 3, 6, 12),
    )
    assert (t1["priority"], t1["channel"], t1["team_id"], t1["account_id"]) == (
        "high",
        "email",
        "Support",
        "ACME",
    )
    assert (t2["status"], t2["closed_at"], t2["priority"], t2["channel"]) == (
        "solved",
        dt.datetime(2025, 3, 10, 10),
        "urgent",
        "phone",
    )
    assert (t3["status"], t3["closed_at"], t3["priority"], t3["team_id"]) == (
        "pending",
        None,
        "normal",
        "Billing",
    )
    assert accounts.select("account_id", "name", "created_at").rows() == [
        ("ACME", "ACME", dt.datetime(2025, 3, 3, 9)),
        ("Globex", "Globex", dt.datetime(2025, 3, 7, 16)),
    ]
    assert events.height == 13 and events["event_id"].n_unique() == 13
    assert set(events["event_type"]) == {"status_change"}


def test_service_metrics_match_the_hand_values(imported):
    with crmlib.open(imported[0]) as crm:
        b, c = _facts(crm, "business"), _facts(crm, "calendar")
        kpis = crm.kpis(
            ["new_cases", "solved_cases", "open_cases", "reopen_rate"],
            grain="month",
            period=("2025-03-01", "2025-03-31"),
        )
        backlog = service.backlog(crm, grain="month", period=("2025-03-01", "2025-03-31"), as_of=AS_OF)
    cols = (
        "first_response_hours",
        "first_resolution_hours",
        "full_resolution_hours",
        "requester_wait_hours",
        "agent_wait_hours",
        "reopens",
    )
    assert tuple(b["T1"][k] for k in cols) == (1.5, 16, 30, 12, 6, 1)
    assert tuple(c["T1"][k] for k in cols) == (1.5, 31, 75, 12, 21, 1)
    assert tuple(b["T2"][k] for k in cols) == (1.5, 3, 3, 3, 0, 0)  # over the weekend
    assert tuple(c["T2"][k] for k in cols) == (1.5, 66, 66, 66, 0, 0)
    assert tuple(b["T3"][k] for k in cols) == (2, None, None, 2, 1, 0)
    assert b["T3"]["is_open"] and not b["T1"]["is_open"] and not b["T2"]["is_open"]
    # SLA (service_fixtures/sla.yaml): T1 high (4 h / 16 h): resolution clock 1.5 + 3.5 + 5 + 2 = 12 h, met
    assert (b["T1"]["sla_policy"], b["T1"]["sla"]) == ("high", "met")
    values = dict(zip(kpis["kpi"], kpis["value"], strict=True))
    assert values == {"new_cases": 3, "solved_cases": 2, "open_cases": 1, "reopen_rate": 0.5}
    assert backlog.filter(pl.col("cases") > 0).select("age_bucket", "cases").rows() == [("0-1d", 1)]


def test_importing_the_same_log_again_replaces_its_rows(imported, log):
    into, _ = imported
    report = import_files(log[0], "case_events", mapping=log[1], into=into)
    assert (report.rows_inserted, report.rows_updated) == (0, 13)
    assert report.derived == (("cases", 0, 3), ("accounts", 0, 2))  # kept as they were
    con = duckdb.connect(str(into), read_only=True)
    try:
        counts = [
            con.sql(f"select count(*) from {t}").fetchall()[0][0]
            for t in ("case_events", "cases", "accounts")
        ]
    finally:
        con.close()
    assert counts == [13, 3, 2]


def test_unmapped_statuses_are_listed_with_their_rows(log, tmp_path):
    text = LOG.replace("T1,2025-03-06 10:00,Reopened", "T1,2025-03-06 10:00,Escalated")
    text = text.replace("T2,2025-03-07 17:30,In progress", "T2,2025-03-07 17:30,On vendor")
    text = text.replace("T3,2025-03-10 13:00,Waiting on customer", "T3,2025-03-10 13:00,Escalated")
    bad = tmp_path / "bad.csv"
    bad.write_text(text, encoding="utf-8")
    into = tmp_path / "none" / "crm.duckdb"
    with pytest.raises(ValidationError) as e:
        import_files(bad, "case_events", mapping=log[1], into=into)
    msg = str(e.value)
    assert "[unknown_value]" in msg and "column status" in msg
    # every unmapped value (not a sample), with its rows: Escalated on rows 6 and 13, On vendor on row 10
    assert "2 values are neither mapped" in msg
    assert "'Escalated' (2 rows, first row 6)" in msg and "'On vendor' (1 row, first row 10)" in msg
    assert "rows 6, 10, 13" in msg
    assert not into.exists()


def test_derived_cases_need_their_required_columns(tmp_path):
    (tmp_path / "log.csv").write_text("Ticket,Updated,State\nT1,2025-03-03 09:00,New\n", encoding="utf-8")
    (tmp_path / "log.yaml").write_text(
        "derive: [cases]\ncolumns: {Ticket: case_id, Updated: occurred_at, State: status}\n"
        "defaults: {event_type: status_change}\n",
        encoding="utf-8",
    )
    into = make_warehouse(tmp_path / "crm.duckdb")
    before = sha256(into)
    with pytest.raises(ValidationError) as e:
        import_files(tmp_path / "log.csv", "case_events", mapping=tmp_path / "log.yaml", into=into)
    msg = str(e.value)
    for column in ("account_id", "channel", "priority"):
        assert f"required column {column} is missing" in msg
    assert "The cases rows derived from the file need channel" in msg and "defaults: {channel: ...}" in msg
    assert sha256(into) == before


def test_derive_is_checked_in_the_mapping(tmp_path):
    bad = tmp_path / "m.yaml"
    bad.write_text("derive: [cases, users]\n", encoding="utf-8")
    with pytest.raises(MappingError) as e:
        import_files(tmp_path / "x.csv", "orders", mapping=bad, into=tmp_path / "crm.duckdb")
    msg = str(e.value)
    assert "derive: 'users' cannot be derived" in msg and "derive: cases cannot be derived from orders" in msg


# --------------------------------------------------------------------------------------------------
# Round trip: the demo's case history as a plain 3-column log gives the demo's figures
# --------------------------------------------------------------------------------------------------
ROUND_TRIP_MAPPING = """\
table: case_events
derive: [cases, accounts]
columns: {Case: case_id, Timestamp: occurred_at, Status: status}
defaults: {event_type: status_change, channel: web, priority: normal, account_id: helpdesk}
"""
LOG_ONLY = (
    "status",
    "is_open",
    "reopens",
    "first_solved_at",
    "solved_at",
    "first_resolution_hours",
    "full_resolution_hours",
    "requester_wait_hours",
    "agent_wait_hours",
)


def test_demo_log_round_trip(demo_warehouse, tmp_path):
    with crmlib.open(demo_warehouse) as demo:
        plain = (
            demo.case_events.filter(pl.col("event_type") == "status_change")
            .select(
                pl.col("case_id").alias("Case"),
                pl.col("occurred_at").dt.strftime("%Y-%m-%d %H:%M:%S").alias("Timestamp"),
                pl.col("status").alias("Status"),
            )
            .collect()
        )
        T = demo.case_events.select(pl.col("occurred_at").max()).collect().item()
        want = service.case_facts(demo, as_of=T, calendar=Calendar()).select("case_id", *LOG_ONLY)
        want_kpis = demo.kpis(["new_cases", "solved_cases", "open_cases", "reopen_rate"], grain="month")
    plain.write_csv(tmp_path / "log.csv")
    (tmp_path / "log.yaml").write_text(ROUND_TRIP_MAPPING, encoding="utf-8")
    into = tmp_path / "log" / "crm.duckdb"
    report = import_files(tmp_path / "log.csv", "case_events", mapping=tmp_path / "log.yaml", into=into)
    assert report.rows_written == plain.height and report.derived[0][:2] == ("cases", want.height)
    with crmlib.open(into) as log:
        got = service.case_facts(log, as_of=T, calendar=Calendar()).select("case_id", *LOG_ONLY)
        got_kpis = log.kpis(["new_cases", "solved_cases", "open_cases", "reopen_rate"], grain="month")
    assert want.height > 500 and want["reopens"].sum() > 0 and want["is_open"].sum() > 0  # a real test
    assert got.equals(want)
    key = ["kpi", "period"]
    assert got_kpis.select(*key, "value").sort(key).equals(want_kpis.select(*key, "value").sort(key))
