"""crmlib.performance against hand-computed values (tests/sales_fixture.py) and the demo's planted rep skill.

Revenue won in 2025-Q1 (by close date): o1 1000 (u1, T1), o4 500 (u3, T2), o6 300 (u2, T1) = 1800;
in 2024-Q4: o11 600 (u2). Quarterly targets (sums of the monthly ones): 2025-Q1 u1 1800, u2 1800, u3 2400,
T1 3600, T2 2400, East 3600, West 2400, company 6000; 2024-Q4 u1 900, u2 600, u3 300.
"""

from __future__ import annotations

import polars as pl
import pytest
from sales_fixture import D, hand_frames, write_hand_warehouse

import crmlib
from crmlib import performance
from crmlib.errors import ConfigError
from crmlib.sources.warehouse import write_warehouse

Q1 = {"start": "2025-01-01", "end": "2025-03-31"}
approx = pytest.approx


@pytest.fixture(autouse=True)
def _defaults(monkeypatch):
    monkeypatch.delenv("CRMLIB_BASE_CURRENCY", raising=False)
    monkeypatch.delenv("CRMLIB_KPI_PATH", raising=False)


@pytest.fixture(scope="module")
def crm(tmp_path_factory):
    with crmlib.open(write_hand_warehouse(tmp_path_factory.mktemp("perf"))) as c:
        yield c


def rows(frame: pl.DataFrame, key: str = "member_id") -> dict:
    return {r[key]: r for r in frame.iter_rows(named=True)}


def test_previous_period():
    assert performance.previous_period(D(2025, 1, 1), D(2025, 3, 31)) == (D(2024, 10, 1), D(2024, 12, 31))
    assert performance.previous_period(D(2025, 1, 1), D(2025, 12, 31)) == (D(2024, 1, 1), D(2024, 12, 31))
    assert performance.previous_period(D(2025, 3, 1), D(2025, 3, 31)) == (D(2025, 2, 1), D(2025, 2, 28))
    assert performance.previous_period(D(2025, 1, 10), D(2025, 1, 19)) == (D(2024, 12, 31), D(2025, 1, 9))


def test_attainment_at_every_level(crm):
    users = performance.attainment(crm, "revenue", "user", **Q1)
    # u1 1000 / 1800, u3 500 / 2400, u2 300 / 1800: best attainment first
    assert users.get_column("member_id").to_list() == ["u1", "u3", "u2"]
    assert users.get_column("attainment").to_list() == approx([1000 / 1800, 500 / 2400, 300 / 1800])
    assert users.get_column("gap").to_list() == approx([800, 1900, 1500])
    assert users.get_column("status").to_list() == ["off_track"] * 3
    assert rows(users)["u1"]["name"] == "Ann" and rows(users)["u1"]["team_id"] == "T1"
    teams = rows(performance.attainment(crm, "revenue", "team", **Q1))
    assert teams["T1"]["attainment"] == approx(1300 / 3600) and teams["T2"]["attainment"] == approx(500 / 2400)
    assert teams["T1"]["name"] == "Alpha"
    depts = rows(performance.attainment(crm, "revenue", "department", **Q1))
    assert depts["East"]["target"] == approx(3600) and depts["West"]["value"] == approx(500)
    # a team filter keeps its reps, with their own targets
    assert performance.attainment(crm, "revenue", "user", **Q1, team="T1").get_column("member_id").to_list() \
        == ["u1", "u2"]
    # per month: u1 won 1000 in February against 600
    monthly = performance.attainment(crm, "revenue", "user", **Q1, grain="month")
    feb_u1 = monthly.filter((pl.col("period") == D(2025, 2, 1)) & (pl.col("member_id") == "u1")).row(0, named=True)
    assert (feb_u1["value"], feb_u1["target"], feb_u1["attainment"]) == approx((1000, 600, 1000 / 600))
    # a KPI without targets is ranked by value: win rate u1 1 won / (1 + o2 lost) = 0.5, u2 o6 1 / 1 = 1,
    # u3 o4 1 / (1 + o10 lost) = 0.5
    wr = performance.attainment(crm, "win_rate", "user", **Q1)
    assert wr.get_column("member_id").to_list()[0] == "u2"
    assert wr.get_column("target").null_count() == 3
    with pytest.raises(ConfigError, match="Did you mean"):
        performance.attainment(crm, "revenue", "teams", **Q1)


def test_leaderboard_ranks_and_trend(crm):
    lb = performance.leaderboard(crm, "revenue", "user", **Q1)
    # now (Q1): u1 0.5556, u3 0.2083, u2 0.1667 -> ranks 1, 2, 3
    # before (2024-Q4): u2 600 / 600 = 1.0 (rank 1); u1 0 / 900 and u3 0 / 300 tie at 0 (rank 2 both)
    assert lb.get_column("member_id").to_list() == ["u1", "u3", "u2"]
    assert lb.get_column("rank").to_list() == [1, 2, 3]
    r = rows(lb)
    assert (r["u2"]["previous_rank"], r["u1"]["previous_rank"], r["u3"]["previous_rank"]) == (1, 2, 2)
    # rank change = previous rank - rank: u1 2 - 1 = +1, u3 2 - 2 = 0, u2 1 - 3 = -2
    assert (r["u1"]["rank_change"], r["u3"]["rank_change"], r["u2"]["rank_change"]) == (1, 0, -2)
    # trend in attainment points: u2 300 / 1800 - 1.0; value change u2 (300 - 600) / 600
    assert r["u2"]["delta"] == approx(300 / 1800 - 1.0)
    assert r["u2"]["delta_pct"] == approx(-0.5)
    assert r["u1"]["delta_pct"] is None  # nothing won before: no relative change
    assert set(lb.get_column("ranked_by")) == {"attainment"}
    # lower-is-better KPI without targets: shorter sales cycle ranks first
    # u1 o1 39 days, u3 o4 32 days, u2 o6 109 days
    cyc = performance.leaderboard(crm, "sales_cycle_days", "user", **Q1)
    assert cyc.get_column("member_id").to_list() == ["u3", "u1", "u2"]
    assert set(cyc.get_column("ranked_by")) == {"value"}
    teams = performance.leaderboard(crm, "revenue", "team", **Q1)
    assert teams.get_column("member_id").to_list() == ["T1", "T2"]  # 1300 / 3600 > 500 / 2400
    assert performance.leaderboard(crm, "revenue", "user", **Q1, team="T9").height == 0


def test_member_drill_down_lists_the_won_deals_behind_a_bar(crm):
    # 2025-Q1 revenue of T1: o1 1000 (u1) + o6 300 (u2); of u3: o4 500 (module docstring)
    t1 = performance.member_deals(crm, {"customdata": ["CNY 1.3k", "T1"]}, "team", **Q1)
    assert sorted(t1.get_column("opportunity_id").to_list()) == ["o1", "o6"]
    assert t1.get_column("amount").sum() == approx(1300)
    u3 = performance.member_deals(crm, "u3", "user", **Q1)
    assert u3.get_column("opportunity_id").to_list() == ["o4"] and u3.get_column("amount").sum() == approx(500)
    assert performance.member_deals(crm, "u2", "user", start="2024-10-01", end="2024-12-31") \
        .get_column("opportunity_id").to_list() == ["o11"]
    with pytest.raises(ConfigError, match="does not name a member"):
        performance.member_deals(crm, {"customdata": None}, "team", **Q1)


def test_contribution_of_members_and_departments(crm):
    c = rows(performance.contribution(crm, "revenue", "user", "team", **Q1))
    # T1: u1 1000 / 1300, u2 300 / 1300; T2: u3 500 / 500; of the whole selection: u1 1000 / 1800
    assert (c["u1"]["share"], c["u2"]["share"], c["u3"]["share"]) == approx((1000 / 1300, 300 / 1300, 1.0))
    assert c["u1"]["share_of_total"] == approx(1000 / 1800)
    assert (c["u1"]["name"], c["u1"]["parent_name"]) == ("Ann", "Alpha")
    d = rows(performance.contribution(crm, "revenue", "department", "company", **Q1))
    assert (d["East"]["share"], d["West"]["share"]) == approx((1300 / 1800, 500 / 1800))
    tree = rows(performance.contribution_tree(crm, "revenue", **Q1), "id")
    assert tree["company"]["value"] == approx(1800) and tree["company"]["share"] == 1.0
    assert tree["department:East"]["value"] == approx(1300) and tree["department:East"]["parent"] == "company"
    assert tree["team:T1"]["parent"] == "department:East" and tree["team:T1"]["share"] == approx(1.0)
    assert tree["user:u2"]["share"] == approx(300 / 1300) and tree["user:u2"]["label"] == "Bob"
    assert len(tree) == 1 + 2 + 2 + 3
    assert performance.contribution_tree(crm, "revenue", **Q1, team="T9").height == 0
    with pytest.raises(ConfigError, match="parts do not sum"):
        performance.contribution(crm, "win_rate", "user", "team", **Q1)


def test_activity_per_rep_and_per_won_deal(crm):
    a = rows(performance.activity(crm, **Q1))
    # in Q1 (a8 is 2024, a10 after the data's end): u1 a1 call, a2 meeting, a3 email; u2 a4 call, a5 email,
    # a9 email; u3 a6 meeting, a7 call
    assert (a["u1"]["calls"], a["u1"]["meetings"], a["u1"]["emails"], a["u1"]["activities"]) == (1, 1, 1, 3)
    assert (a["u2"]["calls"], a["u2"]["emails"], a["u2"]["activities"]) == (1, 2, 3)
    assert (a["u3"]["calls"], a["u3"]["meetings"], a["u3"]["activities"]) == (1, 1, 2)
    # won deals and the activities logged on them (any time): u1 o1 (a1 call, a2 meeting) -> 2 per won deal;
    # u2 o6 (a8 call, a9 email) -> 2; u3 o4 (a6 meeting) -> 1
    assert (a["u1"]["won_deals"], a["u1"]["activities_per_won_deal"], a["u1"]["meetings_per_won_deal"]) \
        == (1, 2.0, 1.0)
    assert (a["u2"]["activities_per_won_deal"], a["u2"]["calls_per_won_deal"], a["u2"]["emails_per_won_deal"]) \
        == (2.0, 1.0, 1.0)
    assert a["u3"]["activities_per_won_deal"] == 1.0
    total = performance.activity(crm, **Q1, by=None).row(0, named=True)
    # 3 reps, 8 activities (3 calls + 3 emails + 2 meetings); 5 activities on 3 won deals
    assert (total["reps"], total["activities"], total["calls"], total["emails"], total["meetings"]) == (3, 8, 3, 3, 2)
    assert total["activities_per_won_deal"] == approx(5 / 3)
    teams = rows(performance.activity(crm, **Q1, by="team"))
    assert (teams["T1"]["activities"], teams["T1"]["reps"], teams["T1"]["won_deals"]) == (6, 2, 2)
    # region North = account A1: a1, a2, a4, a5, a7
    assert performance.activity(crm, **Q1, region="North", by=None).row(0, named=True)["activities"] == 5


def test_kpi_cards_leave_out_activity_kpis_under_a_product_filter(crm):
    # an activity has no product: calls and meetings cannot follow a product filter, so they are not shown
    # (unfiltered numbers under a product filter would mislead); the deal KPIs follow it
    every = performance.kpi_summary(crm, **Q1, grain="quarter")
    assert set(every.get_column("kpi")) == set(performance.SUMMARY_KPIS)
    p1 = performance.kpi_summary(crm, **Q1, grain="quarter", product="P1")
    assert set(p1.get_column("kpi")) == set(performance.SUMMARY_KPIS) - {"calls", "meetings"}
    revenue = crm.kpis("revenue", grain="quarter", period=(Q1["start"], Q1["end"]), filters={"product": "P1"})
    assert p1.filter(pl.col("kpi") == "revenue").get_column("value").to_list() == revenue.get_column("value").to_list()


def test_cascade_flags_targets_that_do_not_add_up(crm, tmp_path):
    ok = performance.cascade(crm, "revenue", **Q1)
    # parents' monthly targets in Q1: company 3, departments 2 x 3, teams 2 x 3; all add up
    assert ok.get_column("level").to_list() == ["company", "department", "team"]
    assert ok.get_column("checked").to_list() == [3, 6, 6]
    assert ok.get_column("problems").to_list() == [0, 0, 0]
    frames = hand_frames()
    frames["targets"] = frames["targets"].with_columns(
        pl.when((pl.col("entity_id") == "u1") & (pl.col("period") == D(2025, 3, 1))).then(1000.0)
        .otherwise(pl.col("value")).alias("value"))
    with crmlib.open(write_warehouse(tmp_path / "bad.duckdb", frames)) as bad:
        got = rows(performance.cascade(bad, "revenue", **Q1), "level")
    # T1 in March: u1 1000 + u2 900 = 1900 against 1800 -> +100
    assert got["team"]["problems"] == 1 and got["department"]["problems"] == 0
    assert (got["team"]["worst_entity"], got["team"]["worst_period"], got["team"]["worst_difference"]) == (
        "T1", D(2025, 3, 1), approx(100))


# --------------------------------------------------------------------------------------------
# Planted truth: rep skill (demo at scale 1, seed 42)
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    from crmlib.sources.demo import truth, write_demo

    path = write_demo(tmp_path_factory.mktemp("demo1") / "crm.duckdb", scale=1, seed=42, progress=False)
    with crmlib.open(path) as c:
        yield c, truth(1, 42)["rep_skill"]


@pytest.mark.parametrize("start, end", [("2025-01-01", "2025-12-31"), ("2023-01-01", "2026-06-30")])
def test_planted_best_rep_ranks_above_the_worst(demo, start, end):
    crm, skill = demo
    best, worst = skill["best_rep_id"], skill["worst_rep_id"]
    for kpi in ("win_rate", "revenue"):  # revenue: ranked by attainment of the rep's quota
        lb = rows(performance.leaderboard(crm, kpi, "user", start=start, end=end))
        assert lb[best]["rank"] < lb[worst]["rank"], (kpi, lb[best], lb[worst])
        assert lb[best]["ranked_by"] == ("attainment" if kpi == "revenue" else "value")
    wr = rows(performance.attainment(crm, "win_rate", "user", start=start, end=end))
    # skill 2.0 vs 0.45: the best rep's win rate is more than twice the worst's
    assert wr[best]["value"] > 2 * wr[worst]["value"]
