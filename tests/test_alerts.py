"""crmlib.alerts: the rules file, rule conditions, temporary windows, de-duplication, the CLI, and the truths
planted in the demo (the anomalous month, the SLA problem, the channels that convert) with the false-alarm
rate on everything else.

The planted-truth tests use the demo at scale 1 (seed 7): at the suite's scale 0.05 a region has ~5 new
leads a month, and a month at a quarter of its level (1 lead instead of 5) is within Poisson noise, so the
detector rightly says nothing (tested too).
"""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path

import polars as pl
import pytest

import crmlib
from crmlib import alerts
from crmlib.alerts import AlertRulesError, load_rules, parse_rules
from crmlib.alerts.evaluate import checked_period, evaluate_watch, watch_history
from crmlib.alerts.state import read_state
from crmlib.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def demo1(tmp_path_factory) -> Path:
    from crmlib.sources import demo

    path = tmp_path_factory.mktemp("alerts-demo1") / "crm.duckdb"
    demo.write_demo(path, scale=1, seed=7, progress=False)
    return path


@pytest.fixture(scope="module")
def crm1(demo1):
    with crmlib.open(demo1) as crm:
        yield crm


@pytest.fixture(scope="module")
def crm005(demo_warehouse):
    with crmlib.open(demo_warehouse) as crm:
        yield crm


def rules_file(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "rules.yaml"
    p.write_text(text, encoding="utf-8")
    return p


# ---------------------------------------------------------------------------------------------------
# The rules file
# ---------------------------------------------------------------------------------------------------
def test_shipped_rules_file_loads_and_is_not_a_run_definition():
    rs = load_rules(ROOT / "parameters" / "alerts.yaml")
    assert {r.name for r in rs.rules} >= {"sla_team_priority", "leads_drop", "csat_during_migration"}
    assert any(w.peers for w in rs.watches) and any(not w.peers for w in rs.watches)
    assert set(rs.signals) == {"rising_activity", "rising_orders", "cross_sell", "campaign_conversion"}
    from crmlib.reports.definitions import load_definitions

    defs = load_definitions(ROOT / "parameters")
    assert "alerts" not in defs and {"alerts_report", "alerts_report_zh"} <= set(defs)
    assert defs["alerts_report_zh"].parameters["lang"] == "zh"


BAD = """\
rules:
  - name: r1
    kpi: new_lead
    by: [regoin]
    condition: {bellow: 3}
    severty: warning
  - name: r2
    kpi: new_leads
    scope: {region: Sout}
    condition: {below: 3}
    severity: urgent
    message: {en: "{valeu} is low", zh: "低"}
    from: 2025-02-01
    until: 2025-01-01
anomalies:
  - {name: w1, kpi: csat, by: [region], severity: warning}
notify:
  email: {host: smtp.example.com, sender: a@example.com, to: [b@example.com], password: hunter2}
  webhook: {url: "https://user:pw@hooks.example.com/x"}
"""


def test_every_problem_at_once_with_suggestions(tmp_path):
    with pytest.raises(AlertRulesError) as err:
        load_rules(rules_file(tmp_path, BAD))
    text = str(err.value)
    assert "12 problems found" in text, text
    for piece in (
        "unknown KPI 'new_lead'. Did you mean \"new_leads\"?",
        'Did you mean "region"?',
        'Did you mean "severity"?',
        'Did you mean "below"?',
        "key 'severity' is required",
        "'Sout' is not a region. Did you mean \"South\"?",
        "'urgent' is not one of info, warning, critical",
        'unknown placeholder {valeu}. Did you mean "value"?',
        "until 2025-01-01 is before from 2025-02-01",
        "give min_sigma",
        "password_env",
        "carries credentials",
    ):
        assert piece in text, piece
    assert "line 3 (rule r1, key kpi)" in text  # lines name where to look
    assert "hunter2" not in text


def test_valid_minimal_file_and_defaults(tmp_path):
    rs = parse_rules("rules:\n  - {name: x, kpi: win_rate, condition: {below: 0.2}, severity: info}\n")
    r = rs.rules[0]
    assert (r.grain, r.by, r.scope, r.valid_from, r.valid_until) == ("month", (), {}, None, None)
    assert rs.watches == () and rs.notify is None
    with pytest.raises(ConfigError, match="does not exist"):
        load_rules(tmp_path / "nope.yaml")
    with pytest.raises(AlertRulesError, match="not valid YAML"):
        parse_rules("rules: [\n")


# ---------------------------------------------------------------------------------------------------
# Periods and conditions
# ---------------------------------------------------------------------------------------------------
def test_checked_period_is_the_last_complete_one():
    assert checked_period(dt.date(2024, 9, 5), "month") == (dt.date(2024, 8, 1), dt.date(2024, 8, 31))
    assert checked_period(dt.date(2024, 8, 31), "month") == (dt.date(2024, 8, 1), dt.date(2024, 8, 31))
    assert checked_period(dt.date(2024, 9, 5), "day") == (dt.date(2024, 9, 5), dt.date(2024, 9, 5))
    assert checked_period(dt.date(2024, 9, 5), "quarter") == (dt.date(2024, 4, 1), dt.date(2024, 6, 30))
    assert checked_period(dt.date(2024, 9, 5), "week") == (dt.date(2024, 8, 26), dt.date(2024, 9, 1))


def _leads_by_region(crm, lo: dt.date, hi: dt.date) -> dict[str, int]:
    """New leads per region between two days, counted by hand from the leads table."""
    frame = (
        crm.table("leads")
        .filter(
            (pl.col("created_at") >= dt.datetime.combine(lo, dt.time()))
            & (pl.col("created_at") < dt.datetime.combine(hi + dt.timedelta(days=1), dt.time()))
        )
        .group_by("region")
        .len()
        .collect()
    )
    return dict(zip(frame["region"], frame["len"], strict=True))


def test_below_and_change_conditions_match_hand_counts(crm1, tmp_path):
    aug = _leads_by_region(crm1, dt.date(2025, 8, 1), dt.date(2025, 8, 31))
    jul = _leads_by_region(crm1, dt.date(2025, 7, 1), dt.date(2025, 7, 31))
    cut = sorted(aug.values())[2]  # two regions are below it
    change = {r: aug[r] / jul[r] - 1 for r in aug}
    drop = sorted(change.values())[1] * 100 + 0.01  # the two largest falls (in %) reach it
    p = rules_file(
        tmp_path,
        f"""
rules:
  - {{name: low, kpi: new_leads, by: [region], condition: {{below: {cut}}}, severity: warning}}
  - {{name: fall, kpi: new_leads, by: [region], condition: {{change_pct: {drop}}}, severity: critical}}
  - {{name: high, kpi: new_leads, scope: {{region: [North, East]}}, condition: {{above: 1}}, severity: info}}
""",
    )
    got = alerts.evaluate(crm1, p, as_of="2025-09-10")
    low = {a["scope_values"]["region"]: a for a in got if a["name"] == "low"}
    assert set(low) == {r for r, n in aug.items() if n < cut} and len(low) == 2
    for r, a in low.items():
        assert a["value"] == aug[r] and a["period"] == "2025-08-01" and a["threshold"] == cut
    fall = {a["scope_values"]["region"]: a for a in got if a["name"] == "fall"}
    assert set(fall) == {r for r, c in change.items() if c * 100 <= drop} and len(fall) == 2
    for r, a in fall.items():
        assert a["change"] == pytest.approx(change[r]) and a["severity"] == "critical"
        assert a["expected"] == jul[r] and a["threshold"] == pytest.approx(jul[r] * (1 + drop / 100))
    high = [a for a in got if a["name"] == "high"]
    assert len(high) == 1 and high[0]["value"] == aug["North"] + aug["East"]
    assert high[0]["scope"] == "region=North/East"
    assert [a["severity"] for a in got] == sorted(
        (a["severity"] for a in got), key={"critical": 0, "warning": 1, "info": 2}.get
    )


def test_below_target_pct_uses_the_engines_attainment(crm1, tmp_path):
    p = rules_file(
        tmp_path,
        "rules:\n  - {name: t, kpi: revenue, by: [team], condition: {below_target_pct: 80}, "
        "severity: warning}\n",
    )
    got = {a["scope_values"]["team"]: a for a in alerts.evaluate(crm1, p, as_of="2025-06-30")}
    eng = crm1.kpis(["revenue"], by=["team"], grain="month", period="2025-06", as_of="2025-06-30")
    expect = {
        r["team"]: r
        for r in eng.iter_rows(named=True)
        if r["attainment"] is not None and r["attainment"] < 0.8
    }
    assert set(got) == set(expect) and got
    for team, a in got.items():
        assert a["change"] == pytest.approx(expect[team]["attainment"])
        assert a["target"] == pytest.approx(expect[team]["target"])
        assert a["expected"] == a["target"] and a["threshold"] == pytest.approx(0.8 * expect[team]["target"])
        assert a["value"] == pytest.approx(expect[team]["value"])


def test_since_is_the_start_of_the_unbroken_run(crm1, tmp_path):
    p = rules_file(
        tmp_path,
        "rules:\n  - {name: s, kpi: sla_compliance, by: [team, priority], grain: quarter, "
        "condition: {below: 0.5}, severity: critical}\n",
    )
    got = alerts.evaluate(crm1, p, as_of="2025-12-31")
    # the planted cell is slow from the first day: the run covers the 12 quarters looked back
    assert [a["scope"] for a in got] == ["team=T11, priority=high"]
    assert got[0]["since"] == "2023-01-01" and got[0]["period"] == "2025-10-01"


@pytest.mark.parametrize(
    ("day", "fires"),
    [("2025-03-09", False), ("2025-03-10", True), ("2025-03-16", True), ("2025-03-17", False)],
)
def test_temporary_rule_fires_only_inside_its_window(crm005, tmp_path, day, fires):
    p = rules_file(
        tmp_path,
        """
rules:
  - name: launch_week
    kpi: new_leads
    grain: day
    condition: {above: -1}
    severity: warning
    from: 2025-03-10
    until: 2025-03-16
  - {name: standing, kpi: new_leads, grain: day, condition: {above: -1}, severity: info}
""",
    )
    got = alerts.evaluate(crm005, p, as_of=day, include_signals=False)
    assert [a["name"] for a in got if a["name"] == "launch_week"] == (["launch_week"] if fires else [])
    assert [a["period"] for a in got if a["name"] == "standing"] == [day]  # the standing rule fires every day
    if fires:
        a = next(a for a in got if a["name"] == "launch_week")
        assert a["period"] == day and a["evidence"]["valid_until"] == "2025-03-16"


def test_monthly_temporary_rule_needs_a_period_overlapping_the_window(crm005, tmp_path):
    p = rules_file(
        tmp_path,
        "rules:\n  - {name: m, kpi: new_leads, condition: {above: -1}, severity: info, "
        "from: 2025-03-05, until: 2025-04-20}\n",
    )
    assert alerts.evaluate(crm005, p, as_of="2025-03-20") == []  # checks February: before the window
    assert [a["period"] for a in alerts.evaluate(crm005, p, as_of="2025-04-02")] == ["2025-03-01"]
    assert alerts.evaluate(crm005, p, as_of="2025-04-21") == []  # the as-of day is past the window


# ---------------------------------------------------------------------------------------------------
# Planted truths and false alarms (demo at scale 1)
# ---------------------------------------------------------------------------------------------------
def _watches():
    return {w.name: w for w in load_rules(ROOT / "parameters" / "alerts.yaml").watches}


def test_planted_anomalous_month_is_detected_and_alerted(crm1):
    from crmlib.kpis import default_catalog
    from crmlib.sources.demo import TRUTH

    truth = TRUTH["anomaly"]
    month = dt.date.fromisoformat(truth["month"] + "-01")
    watch = next(w for w in _watches().values() if w.kpi == truth["kpi"] and w.by == ("region",))
    hist = watch_history(crm1, watch, dt.date(2026, 6, 30), default_catalog())
    hits = hist.filter(pl.col("is_anomaly"))
    assert hits.select("region", "period").rows() == [(truth["region"], month)]
    row = hits.row(0, named=True)
    assert row["value"] == pytest.approx(row["expected"] * truth["multiplier"], rel=0.35)
    assert row["value"] < row["lower"] < row["expected"] < row["upper"] and row["score"] < -3.5
    # a year later the region is back to normal: no echo
    later = hist.filter(
        (pl.col("region") == truth["region"]) & (pl.col("period") == dt.date(month.year + 1, month.month, 1))
    )
    assert later["status"].to_list() == ["ok"]
    # the check a few days after the month raises it, with the rule on the drop as well
    got = alerts.evaluate(
        crm1,
        ROOT / "parameters" / "alerts.yaml",
        as_of=month.replace(month=month.month + 1, day=5),
        include_signals=False,
    )
    keys = {(a["kind"], a["name"], a["scope"], a["period"]) for a in got}
    assert ("anomaly", watch.name, f"region={truth['region']}", month.isoformat()) in keys
    assert ("rule", "leads_drop", f"region={truth['region']}", month.isoformat()) in keys


def test_false_alarm_rate_over_the_whole_history_is_low(crm1):
    """Every watch over time of the shipped rules, over the whole history: anomalies outside the planted
    region-month, per checked point. Measured on seed 7: 0 of 383; over seeds 1-5, 7, 42: 10 of 2,681 (0.37 %, bench/bench_alerts.py); docs/alerts.md states it."""
    from crmlib.kpis import default_catalog
    from crmlib.sources.demo import TRUTH

    cat = default_catalog()
    truth = TRUTH["anomaly"]
    planted = (truth["kpi"], truth["region"], dt.date.fromisoformat(truth["month"] + "-01"))
    checked = false = 0
    for w in _watches().values():
        if w.peers:
            continue
        hist = watch_history(crm1, w, dt.date(2026, 6, 30), cat)
        judged = hist.filter(pl.col("status").is_in(["ok", "anomaly"]))
        for r in judged.iter_rows(named=True):
            if (w.kpi, r.get("region"), r["period"]) == planted:
                continue
            checked += 1
            false += r["is_anomaly"]
    assert checked == 4 * 4 * 24 - 1  # 4 watches x 4 regions x 24 months with 18 months of history before
    assert false / checked <= 0.01, (false, checked)


def test_planted_sla_problem_is_the_only_peer_outlier_in_every_quarter(crm1):
    from crmlib.kpis import default_catalog
    from crmlib.sources.demo import TRUTH

    cat = default_catalog()
    sla = TRUTH["sla"]
    watch = _watches()["sla_cells"]
    quarters = 0
    day = dt.date(2023, 3, 31)
    while day <= dt.date(2026, 6, 30):
        hist = watch_history(crm1, watch, day, cat)
        flagged = hist.filter(pl.col("is_anomaly")).select("team", "priority").rows()
        assert flagged == [(sla["team_id"], sla["priority"])], (day, flagged)
        al = evaluate_watch(crm1, watch, day, cat, history=hist)
        assert [a["severity"] for a in al] == ["critical"]
        quarters += 1
        nxt = day + dt.timedelta(days=1)
        day = dt.date(nxt.year + (nxt.month > 9), (nxt.month + 2) % 12 + 1, 1) - dt.timedelta(days=1)
    assert quarters == 14


def test_small_demo_raises_no_anomaly_from_noise(crm005):
    from crmlib.kpis import default_catalog

    w = _watches()["new_leads_by_region"]
    hist = watch_history(crm005, w, dt.date(2026, 6, 30), default_catalog())
    assert hist.filter(pl.col("status") == "ok").height > 50 and not hist["is_anomaly"].any()


def test_campaign_signals_find_only_channels_that_convert(crm1):
    from crmlib.sources.demo import TRUTH

    ch = TRUTH["channels"]
    found = alerts.signals(crm1, as_of="2026-06-30", rules=ROOT / "parameters" / "alerts.yaml")
    camp = found.filter(pl.col("name") == "campaign_conversion")
    assert camp.height >= 1
    ids = [s.split("=")[1] for s in camp["scope"]]
    table = crm1.table("campaigns").filter(pl.col("campaign_id").is_in(ids)).collect()
    assert set(table["channel"]) <= set(ch["effective"]) and not set(table["channel"]) & set(ch["no_effect"])


def test_signal_evidence_is_hand_checkable(tmp_path):
    from crmlib.alerts.signals import campaign_conversion, cross_sell, rising

    as_of = dt.date(2025, 6, 30)
    t = dt.datetime(2025, 6, 1)
    old = dt.datetime(2025, 1, 15)
    events = pl.DataFrame(
        {
            "account_id": ["a"] * 12 + ["a"] * 4 + ["b"] * 5 + ["b"] * 8 + ["c"] * 10,
            "occurred_at": [t] * 12 + [old] * 4 + [t] * 5 + [old] * 8 + [t] * 10,
        }
    )
    accounts = pl.DataFrame(
        {
            "account_id": ["a", "b", "c"],
            "name": ["A", "B", "C"],
            "owner_id": ["u1"] * 3,
            "segment": ["smb"] * 3,
        }
    )
    got = rising(events, accounts, as_of, min_recent=10)
    # a: 12 recent, usual 4 / 4 windows = 1 -> x12; b: 5 recent (< 10); c: 10 recent, no history -> new
    assert got.select("account_id", "recent", "usual", "ratio").rows() == [
        ("a", 12, 1.0, 12.0),
        ("c", 10, 0.0, None),
    ]
    d = dt.datetime(2025, 3, 1)
    leads = pl.DataFrame(
        {
            "campaign_id": ["x"] * 40 + ["y"] * 200,
            "created_at": [d] * 240,
            "converted_at": [d + dt.timedelta(days=10)] * 20
            + [None] * 20
            + [d + dt.timedelta(days=10)] * 20
            + [None] * 180,
        }
    )
    camps = pl.DataFrame({"campaign_id": ["x", "y"], "name": ["X", "Y"], "channel": ["events", "display"]})
    c = campaign_conversion(leads, camps, as_of, lookback_days=365, maturity_days=90, min_leads=30)
    # x: 20/40 = .5 against y's 20/200 = .1: z = (.5 - .1) / sqrt(.1 * .9 / 40) = 8.43
    assert c["campaign_id"].to_list() == ["x"]
    assert c["z"][0] == pytest.approx(0.4 / math.sqrt(0.09 / 40)) and c["lift"][0] == pytest.approx(5.0)
    orders = pl.DataFrame(
        {
            "order_id": list("12345"),
            "account_id": ["a", "a", "b", "c", "d"],
            "ordered_at": [dt.datetime(2025, 5, 1)] * 5,
            "amount": [500.0, 500, 300, 200, 100],
            "currency": ["CNY"] * 5,
            "product_id": ["p1", "p1", "p1", "p2", "p1"],
            "status": ["completed"] * 5,
        }
    )
    subs = pl.DataFrame(
        {
            "account_id": ["b", "b"],
            "product_id": ["p2", "p3"],
            "start_date": [dt.date(2024, 1, 1)] * 2,
            "end_date": [None, None],
        },
        schema_overrides={"end_date": pl.Date},
    )
    fx = pl.DataFrame({"date": [dt.date(2025, 1, 1)], "currency": ["USD"], "rate_to_base": [7.0]})
    acc = pl.DataFrame(
        {"account_id": list("abcd"), "name": list("ABCD"), "owner_id": ["u"] * 4, "segment": ["smb"] * 4}
    )
    cs = cross_sell(orders, subs, acc, fx, as_of, top_share=0.5, max_products=1)
    # top half by revenue: a (1000, one product) and b (300, three products): a is the cross-sell signal
    assert cs.select("account_id", "revenue_12m", "products", "revenue_rank").rows() == [("a", 1000.0, 1, 1)]
    assert cs["tier_median_products"][0] == 2.0


# ---------------------------------------------------------------------------------------------------
# check: state, de-duplication, exit codes, CLI
# ---------------------------------------------------------------------------------------------------
WINDOW_RULES = """
rules:
  - {name: launch, kpi: new_leads, grain: day, condition: {above: -1}, severity: critical,
     from: 2025-03-10, until: 2025-03-12}
  - {name: standing, kpi: new_leads, grain: day, condition: {above: -1}, severity: warning}
"""


def test_check_deduplicates_and_closes_resolved(crm005, tmp_path):
    p = rules_file(tmp_path, WINDOW_RULES)
    out = tmp_path / "out"
    r1 = alerts.check(crm005, p, as_of="2025-03-10", outputs=out)
    assert {a["name"] for a in r1.raised} == {"launch", "standing"} and r1.exit_code == 2
    r2 = alerts.check(crm005, p, as_of="2025-03-11", outputs=out)
    assert r2.raised == [] and {a["name"] for a in r2.unchanged} == {"launch", "standing"}
    r3 = alerts.check(crm005, p, as_of="2025-03-13", outputs=out)
    assert [a["name"] for a in r3.resolved] == ["launch"] and r3.exit_code == 0 and r3.raised == []
    r4 = alerts.check(crm005, p, as_of="2025-03-12", outputs=out)  # back inside the window: raised again
    assert [a["name"] for a in r4.raised] == ["launch"]
    state = read_state(out / "alerts.json")
    launch = next(a for a in state["alerts"].values() if a["name"] == "launch")
    assert launch["status"] == "open" and launch["times_raised"] == 2
    assert [e["event"] for e in state["events"] if e["key"] == launch["key"]] == [
        "raised",
        "resolved",
        "raised",
    ]
    assert [r["raised"] for r in state["runs"]] == [2, 0, 0, 1] and state["outbox"] == []
    assert not list(out.glob(".alerts.json.*"))  # atomic: no temporary file left


def test_escalation_raises_again(crm005, tmp_path):
    out = tmp_path / "out"
    p = rules_file(
        tmp_path,
        "rules:\n  - {name: a, kpi: new_leads, grain: day, condition: {above: -1}, severity: warning}\n",
    )
    alerts.check(crm005, p, as_of="2025-03-10", outputs=out)
    p.write_text(p.read_text().replace("warning", "critical"))
    r = alerts.check(crm005, p, as_of="2025-03-11", outputs=out)
    assert [a["name"] for a in r.escalated] == ["a"] and r.escalated[0]["previous_severity"] == "warning"


def test_corrupt_state_is_a_clear_error(crm005, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "alerts.json").write_text("{not json")
    with pytest.raises(ConfigError, match="alerts.json cannot be read"):
        alerts.check(crm005, rules_file(tmp_path, WINDOW_RULES), as_of="2025-03-10", outputs=out)
    assert (out / "alerts.json").read_text() == "{not json"  # left as it was


def test_top_alerts_for_the_executive_summary(crm1):
    top = alerts.top_alerts(
        crm1, as_of="2024-09-05", n=3, lang="zh", rules=ROOT / "parameters" / "alerts.yaml"
    )
    for col in ("severity", "kpi", "scope", "message", "value", "expected", "threshold", "since"):
        assert col in top.columns
    assert top.height == 3 and top["severity"][0] == "critical" and "info" not in top["severity"].to_list()
    assert top["severity"].to_list() == sorted(
        top["severity"].to_list(), key={"critical": 0, "warning": 1}.get
    )
    assert all(any("\u4e00" <= ch <= "\u9fff" for ch in m) for m in top["message"])
    assert len(set(zip(top["kpi"], top["scope"], strict=True))) == top.height  # the SLA cell once, not twice
    with pytest.raises(ConfigError, match="positive integer"):
        alerts.top_alerts(crm1, n=0)


def test_cli_check_exit_codes_and_json(demo_warehouse, tmp_path, capsys):
    from crmlib.cli import main

    p = rules_file(tmp_path, WINDOW_RULES)
    out = tmp_path / "out"
    args = ["alerts", "check", "--source", str(demo_warehouse), "--rules", str(p), "--outputs", str(out)]
    with pytest.raises(SystemExit) as ex:
        main([*args, "--as-of", "2025-03-10", "--format", "json"])
    assert ex.value.code == 2
    doc = json.loads(capsys.readouterr().out)
    assert doc["critical"] and {a["name"] for a in doc["alerts"]} == {"launch", "standing"}
    assert all(a["new"] for a in doc["alerts"])
    main([*args, "--as-of", "2025-03-13"])  # only a warning: exit 0 (main returns normally)
    shown = capsys.readouterr().out
    assert "standing" in shown or "New leads" in shown
    assert json.loads((out / "alerts.json").read_text())["runs"][-1]["resolved"] == 1
    with pytest.raises(SystemExit) as ex:
        main(
            [
                "alerts",
                "check",
                "--source",
                str(demo_warehouse),
                "--rules",
                str(rules_file(tmp_path, BAD)),
                "--outputs",
                str(out),
            ]
        )
    assert ex.value.code == 1
    err = capsys.readouterr().err
    assert "problems found" in err and "Traceback" not in err


def test_a_second_check_at_the_same_time_changes_nothing(crm005, tmp_path):
    import fcntl
    import os

    from crmlib.alerts.state import AlertsBusyError

    out = tmp_path / "out"
    p = rules_file(tmp_path, WINDOW_RULES)
    alerts.check(crm005, p, as_of="2025-03-10", outputs=out)
    before = (out / "alerts.json").read_bytes()
    fd = os.open(out / ".alerts.lock", os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)  # as a running check holds it
    try:
        with pytest.raises(AlertsBusyError, match="Another `crmlib alerts check`") as err:
            alerts.check(crm005, p, as_of="2025-03-13", outputs=out)
        assert err.value.exit_code == 75
    finally:
        os.close(fd)
    assert (out / "alerts.json").read_bytes() == before
    assert [a["name"] for a in alerts.check(crm005, p, as_of="2025-03-13", outputs=out).resolved] == [
        "launch"
    ]
