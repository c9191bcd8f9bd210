"""Targets: grains, status rules, target files, cascade checks and contribution shares (kpi_fixture.py)."""

from __future__ import annotations

import textwrap

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kpi_fixture import D, hand_frames, random_crm

import crmlib
from crmlib.errors import ConfigError
from crmlib.kpis import cascade_check, contribution, load_catalog, read_targets_file
from crmlib.kpis.targets import TARGET_SCHEMA, status_columns, target_level, targets_for
from crmlib.sources.warehouse import write_warehouse

Q1 = ("2025-01-01", "2025-03-31")
CAT = load_catalog(paths=[])


@pytest.fixture(autouse=True)
def _defaults(monkeypatch):
    monkeypatch.delenv("CRMLIB_BASE_CURRENCY", raising=False)
    monkeypatch.delenv("CRMLIB_KPI_PATH", raising=False)


@pytest.fixture(scope="module")
def crm(tmp_path_factory):
    path = write_warehouse(tmp_path_factory.mktemp("hand") / "hand.duckdb", hand_frames())
    with crmlib.open(path) as c:
        yield c


def targets(rows) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=TARGET_SCHEMA, orient="row")


# --------------------------------------------------------------------------------------------
# Levels, grains, status
# --------------------------------------------------------------------------------------------
def test_target_level_follows_the_grouping():
    assert target_level((), {}) == "company"
    assert target_level((), {"region": ("North",)}) is None  # part of the company
    assert target_level(("team",), {}) == "team"
    assert target_level(("team",), {"department": ("Sales East",)}) == "team"  # picks teams
    assert target_level(("team",), {"user": ("u1",)}) is None  # part of a team
    assert target_level(("user",), {"team": ("T1",)}) == "user"
    assert target_level(("region",), {}) is None
    assert target_level(("team", "user"), {}) is None


MONTHS = [(D(2025, m, 1), D(2025, m, 1).replace(day=28) if m == 2 else D(2025, m, 31 if m != 4 else 30))
          for m in (1, 2, 3, 4)]


def test_targets_of_the_asked_grain_are_used_as_they_are():
    t = targets([(D(2025, 1, 1), "month", "company", "company", "revenue", 10.0),
                 (D(2025, 1, 1), "quarter", "company", "company", "revenue", 99.0)])
    got = targets_for(t, CAT, "month", MONTHS[:1])
    assert got.select("period", "target").rows() == [(D(2025, 1, 1), 10.0)]  # the month, not a share of Q1
    got = targets_for(t, CAT, "quarter", [(D(2025, 1, 1), D(2025, 3, 31))])
    assert got["target"].to_list() == [99.0]  # the quarter's own target wins over summed months


def test_finer_targets_add_up_average_or_take_the_last_by_kind():
    rows = []
    for kpi, values in (("revenue", (10, 20, 30)), ("csat", (0.8, 0.9, 0.7)), ("open_pipeline", (5, 6, 7))):
        for m, v in zip((1, 2, 3), values, strict=True):
            rows.append((D(2025, m, 1), "month", "company", "company", kpi, float(v)))
    got = targets_for(targets(rows), CAT, "quarter", [(D(2025, 1, 1), D(2025, 3, 31))])
    by_kpi = dict(got.select("kpi", "target").iter_rows())
    assert by_kpi["revenue"] == pytest.approx(60)  # flow: 10 + 20 + 30
    # rate: day-weighted mean: (0.8 x 31 + 0.9 x 28 + 0.7 x 31) / 90
    assert by_kpi["csat"] == pytest.approx((0.8 * 31 + 0.9 * 28 + 0.7 * 31) / 90)
    assert by_kpi["open_pipeline"] == pytest.approx(7)  # stock: the target at the quarter's last day
    # a coarser period not covered by targets gets none; a finer one its days' share
    assert targets_for(targets(rows), CAT, "year", [(D(2025, 1, 1), D(2025, 12, 31))]).is_empty()
    week = targets_for(targets(rows), CAT, "week", [(D(2025, 3, 24), D(2025, 3, 30))])
    assert dict(week.select("kpi", "target").iter_rows())["revenue"] == pytest.approx(30 * 7 / 31)


def test_status_rules():
    frame = pl.DataFrame(
        {
            "v": [100.0, 95.0, 80.0, 0.0, 5.0, 0.0, 4.0, None, 50.0],
            "t": [100.0, 100.0, 100.0, 0.0, 4.0, 3.0, 5.0, 10.0, None],
            "p": [100.0, 95.0, 80.0, 0.0, 5.0, 0.0, 4.0, None, 50.0],
            "higher": [True, True, True, True, False, False, False, True, True],
        }
    )
    out = frame.select(**status_columns(pl.col("v"), pl.col("t"), pl.col("p"), pl.col("higher")))
    assert out["status"].to_list() == [
        "on_track",  # 100 / 100
        "at_risk",  # 0.95
        "off_track",  # 0.8
        "on_track",  # a target of 0 is met by any value
        "off_track",  # lower is better: 4 / 5 = 0.8
        "on_track",  # lower is better and nothing happened
        "on_track",  # 5 / 4
        None,  # no value
        None,  # no target
    ]
    assert out["attainment"].to_list()[:7] == pytest.approx([1.0, 0.95, 0.8, None, 0.8, None, 1.25])
    assert out["gap"].to_list()[:7] == [0.0, 5.0, 20.0, 0.0, 1.0, -3.0, -1.0]


# --------------------------------------------------------------------------------------------
# Target files
# --------------------------------------------------------------------------------------------
def test_target_file_problems_are_listed_together(tmp_path):
    path = tmp_path / "plan.yaml"
    path.write_text(textwrap.dedent("""
        targets:
          - {period: 2025-01-01, grain: month, level: company, entity_id: company, kpi: revenue, value: 10}
          - {period: 2025-01-15, grain: month, level: company, entity_id: company, kpi: revenue, value: 10}
          - {period: 2025-01-01, grain: monthly, level: team, entity_id: T1, kpi: revenu, value: ten}
          - {period: 2025-01-01, grain: month, level: company, entity_id: all, kpi: revenue, value: 1}
          - {period: 2025-01-01, grain: month, level: team}
    """))
    with pytest.raises(ConfigError) as err:
        read_targets_file(path, CAT)
    text = str(err.value)
    assert "6 problems" in text  # row 3 has three
    assert "row 2: period 2025-01-15 is not the first day of its month (2025-01-01)" in text
    assert "row 3: grain 'monthly'" in text and 'Did you mean "month"' in text
    assert "row 3: unknown KPI 'revenu'" in text and "row 3: value 'ten' is not a number" in text
    assert "row 4: a company target has entity_id 'company'" in text
    assert "row 5: entity_id, kpi, value missing" in text


def test_a_good_target_file(tmp_path):
    path = tmp_path / "plan.yml"
    path.write_text("- {period: 2025-04-01, grain: quarter, level: team, entity_id: T1, kpi: won_deals, value: 9}\n")
    got = read_targets_file(path, CAT)
    assert got.rows() == [(D(2025, 4, 1), "quarter", "team", "T1", "won_deals", 9.0)]
    with pytest.raises(ConfigError, match="use a .csv, .yaml or .yml file"):
        (tmp_path / "plan.txt").write_text("")
        read_targets_file(tmp_path / "plan.txt", CAT)


# --------------------------------------------------------------------------------------------
# Cascade
# --------------------------------------------------------------------------------------------
def test_cascade_check_finds_where_children_do_not_add_up(crm):
    got = cascade_check(crm, "revenue", period=Q1, catalog=CAT)
    rows = got.select("period", "level", "entity_id", "target", "child_level", "children", "children_target",
                      "difference", "problem").rows()
    assert rows == [
        # February: T2 has 1000, but only u3 has a target (600); u4 has none
        (D(2025, 2, 1), "team", "T2", 1000.0, "user", 1, 600.0, -400.0, "children do not add up"),
        # March: T3 was raised to 1200, its department still says 1000 and its reps 700 + 300
        (D(2025, 3, 1), "department", "Sales West", 1000.0, "team", 1, 1200.0, 200.0, "children do not add up"),
        (D(2025, 3, 1), "team", "T3", 1200.0, "user", 2, 1000.0, -200.0, "children do not add up"),
    ]
    assert got["kpi"].unique().to_list() == ["revenue"] and got["grain"].unique().to_list() == ["month"]


def test_cascade_check_reports_missing_parents_and_children(crm, tmp_path):
    path = tmp_path / "extra.csv"
    path.write_text("period,grain,level,entity_id,kpi,value\n"
                    "2025-01-01,month,department,Sales North,revenue,500\n"  # no team of it has a target
                    "2025-04-01,month,user,u1,revenue,100\n")  # T1 has no April target
    got = cascade_check(crm, "revenue", period=("2025-01-01", "2025-04-30"), targets=path, catalog=CAT)
    jan = got.filter(pl.col("period") == D(2025, 1, 1)).select("level", "entity_id", "difference", "problem").rows()
    assert jan == [
        ("company", "company", 500.0, "children do not add up"),  # 3000 + 1000 + 500 - 4000
        ("department", "Sales North", -500.0, "no child targets"),
    ]
    apr = got.filter(pl.col("period") == D(2025, 4, 1)).select("level", "entity_id", "target", "problem").rows()
    assert apr == [("team", "T1", None, "no parent target")]


def test_cascade_check_needs_an_additive_kpi(crm):
    with pytest.raises(ConfigError, match="KPI csat, which is a rate"):
        cascade_check(crm, "csat", catalog=CAT)


def test_demo_targets_cascade_exactly(demo_warehouse):
    with crmlib.open(demo_warehouse) as c:
        for kpi in ("revenue", "won_deals"):
            assert cascade_check(c, kpi, catalog=CAT).is_empty()


# --------------------------------------------------------------------------------------------
# Contribution
# --------------------------------------------------------------------------------------------
def test_contribution_shares_of_reps_in_their_team(crm):
    got = contribution(crm, "revenue", "user", Q1, "team", catalog=CAT)
    # Q1 revenue: T1 u1 = o1 700 + o2 1000 + o8 500 = 2200, u2 = o3 1440; T2 u3 2000, u4 360; T3 u5 3000, u6 71
    assert got.select("period", "parent_id", "member_id").rows() == [
        (D(2025, 1, 1), t, u) for t, u in (("T1", "u1"), ("T1", "u2"), ("T2", "u3"), ("T2", "u4"), ("T3", "u5"),
                                           ("T3", "u6"))
    ]
    assert got["value"].to_list() == pytest.approx([2200, 1440, 2000, 360, 3000, 71])
    assert got["parent_value"].to_list() == pytest.approx([3640, 3640, 2360, 2360, 3071, 3071])
    assert got["share"].to_list() == pytest.approx([2200 / 3640, 1440 / 3640, 2000 / 2360, 360 / 2360,
                                                    3000 / 3071, 71 / 3071])
    assert (got["parent_level"] == "team").all() and (got["level"] == "user").all()


def test_contribution_at_other_levels_and_grains(crm):
    dep = contribution(crm, "revenue", "department", Q1, "company", catalog=CAT)
    assert dep.select("member_id", "share").rows() == [
        ("Sales East", pytest.approx(6000 / 9071)), ("Sales West", pytest.approx(3071 / 9071))]
    monthly = contribution(crm, "won_deals", "team", Q1, "department", grain="month", catalog=CAT, backend="duckdb")
    # January: Sales East won o1, o2 (T1), T2 none; Sales West (T3) nothing at all -> no share
    jan = monthly.filter(pl.col("period") == D(2025, 1, 1))
    assert jan.select("parent_id", "member_id", "share").rows() == [
        ("Sales East", "T1", 1.0), ("Sales East", "T2", 0.0), ("Sales West", "T3", None)]
    with pytest.raises(ConfigError, match="win_rate, which is a rate"):
        contribution(crm, "win_rate", "team", Q1, catalog=CAT)
    with pytest.raises(ConfigError, match="must be above level team"):
        contribution(crm, "revenue", "team", Q1, "team", catalog=CAT)
    with pytest.raises(ConfigError, match='Did you mean "user"'):
        contribution(crm, "revenue", "users", Q1, catalog=CAT)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=random_crm(), level=st.sampled_from([("user", "team"), ("team", "department"), ("user", "company")]),
       kpi=st.sampled_from(["revenue", "won_deals", "new_leads"]))
def test_contribution_shares_add_up_to_one_within_each_parent(data, level, kpi):
    got = contribution(data, kpi, level[0], ("2025-01-01", "2025-04-30"), level[1], grain="month", catalog=CAT)
    sums = got.group_by("period", "parent_id").agg(pl.col("share").sum(), pl.col("value").sum().alias("total"),
                                                   pl.col("parent_value").first())
    with_value = sums.filter(pl.col("parent_value") > 0)
    assert with_value["share"].to_list() == pytest.approx([1.0] * with_value.height)
    assert with_value["total"].to_list() == pytest.approx(with_value["parent_value"].to_list())
