"""crmlib.sales against hand-computed values on tests/sales_fixture.py (read its docstring first).

Day arithmetic: snapshots and "days to the as-of day" are measured to the end of the as-of day
(2025-03-31 24:00 = 2025-04-01 00:00). Stage stays run from one stage's first row to the next stage's.
"""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from polars.testing import assert_frame_equal
from sales_fixture import D, write_hand_warehouse

import crmlib
from crmlib import sales
from crmlib.errors import ConfigError, CurrencyError
from crmlib.kpis import default_catalog
from crmlib.sources.warehouse import write_warehouse

Q1 = {"start": "2025-01-01", "end": "2025-03-31"}
approx = pytest.approx


@pytest.fixture(autouse=True)
def _defaults(monkeypatch):
    monkeypatch.delenv("CRMLIB_BASE_CURRENCY", raising=False)
    monkeypatch.delenv("CRMLIB_KPI_PATH", raising=False)


@pytest.fixture(scope="module")
def crm(tmp_path_factory):
    with crmlib.open(write_hand_warehouse(tmp_path_factory.mktemp("sales"))) as c:
        yield c


def rows(frame: pl.DataFrame, key: str) -> dict:
    return {r[key]: r for r in frame.iter_rows(named=True)}


# --------------------------------------------------------------------------------------------
# Selection
# --------------------------------------------------------------------------------------------
def test_selection_defaults_filters_and_as_of(crm):
    sel = sales.select(crm)
    # first creation 2024-10-01 (o11); last event 2025-03-31 (o8 created, its history row)
    assert (sel.start, sel.end, sel.as_of, sel.data_as_of) == (D(2024, 10, 1), D(2025, 3, 31), D(2025, 3, 31),
                                                               D(2025, 3, 31))
    sel = sales.select(crm, "2025-Q2", "2025-Q2", team="alpha", product="Support", region="North")
    assert (sel.start, sel.end, sel.as_of) == (D(2025, 4, 1), D(2025, 6, 30), D(2025, 3, 31))  # as-of: data end
    assert dict(sel.filters) == {"team": ("T1",), "region": ("North",), "product": ("P2",)}
    assert sales.select(crm, team="", region="", product="").filters == {}
    with pytest.raises(ConfigError, match="Did you mean"):
        sales.select(crm, region="Nort")
    with pytest.raises(ConfigError, match="ends"):
        sales.select(crm, "2025-03-01", "2025-02-01")


# --------------------------------------------------------------------------------------------
# Funnel
# --------------------------------------------------------------------------------------------
def test_funnel_counts_deals_that_reached_at_least_each_stage(crm):
    f = sales.funnel(crm, **Q1)
    # Cohort: created 2025-01-01..03-31 = o1 o2 o3 o4 o5 o7 o8 o9 o10 (o6, o11 created in 2024).
    # Furthest stage (0 prospecting .. 5 closed_won; closed_lost moves nothing):
    #   o1 5 (won; skipped needs_analysis still counts), o2 1, o3 3, o4 5 (jumped 0 -> 4), o5 0,
    #   o7 1 (no history: its current stage), o8 0, o9 4, o10 0
    # reached >= 0: 9; >= 1: o1 o2 o3 o4 o7 o9 = 6; >= 2: o1 o3 o4 o9 = 4; >= 3: 4; >= 4: o1 o4 o9 = 3; >= 5: 2
    assert f.get_column("stage").to_list() == ["prospecting", "qualification", "needs_analysis", "proposal",
                                               "negotiation", "closed_won"]
    assert f.get_column("deals").to_list() == [9, 6, 4, 4, 3, 2]
    # values at the creation day's rate: o2 100 USD x 7.0 = 700, o7 50 USD x 7.2 = 360, o3 its latest 2500
    # >=0: 1000+700+2500+500+800+360+100+1200+400 = 7560; >=1: 1000+700+2500+500+360+1200 = 6260;
    # >=2, >=3: 1000+2500+500+1200 = 5200; >=4: 1000+500+1200 = 2700; >=5: 1000+500 = 1500
    assert f.get_column("value").to_list() == approx([7560, 6260, 5200, 5200, 2700, 1500])
    assert f.get_column("conversion").to_list() == approx([None, 6 / 9, 4 / 6, 1.0, 3 / 4, 2 / 3], nan_ok=True)
    assert f.get_column("drop_off").to_list()[1:] == approx([1 / 3, 1 / 3, 0.0, 1 / 4, 1 / 3])
    assert f.get_column("from_first").to_list() == approx([1, 6 / 9, 4 / 9, 4 / 9, 3 / 9, 2 / 9])
    # completed stays of the cohort (days): prospecting o1 4, o2 10, o3 10, o4 9, o9 9, o10 31 (to the loss)
    # -> median (9 + 10) / 2 = 9.5; qualification o1 10, o2 17, o3 12 -> 12; needs_analysis o3 28;
    # proposal o1 5; negotiation o1 20, o4 23 (02-10 -> 03-05) -> 21.5; closed_won has no stay
    assert f.get_column("median_days_in_stage").to_list() == approx([9.5, 12, 28, 5, 21.5, None], nan_ok=True)


def test_funnel_drill_down_lists_the_deals_behind_each_stage(crm):
    # the same hand-worked cohort as above: >= 1 (qualification) is o1 o2 o3 o4 o7 o9, >= 4 is o1 o4 o9
    qual = sales.funnel_deals(crm, "qualification", **Q1)
    assert sorted(qual.get_column("opportunity_id").to_list()) == ["o1", "o2", "o3", "o4", "o7", "o9"]
    nego = sales.funnel_deals(crm, {"index": 4}, **Q1)  # a click on the 5th stage of the chart
    assert sorted(nego.get_column("opportunity_id").to_list()) == ["o1", "o4", "o9"]
    assert nego.get_column("amount").sum() == pytest.approx(2700)  # the stage's value, worked above
    assert sorted(sales.funnel_deals(crm, "closed_won", **Q1, team="T2").get_column("opportunity_id")) == ["o4"]
    with pytest.raises(ConfigError, match="Unknown funnel stage"):
        sales.funnel_deals(crm, "won", **Q1)


def test_funnel_filters_and_history_up_to_the_as_of_day(crm):
    # team T2 (u3): o4 (reach 5), o5 (0), o10 (0)
    assert sales.funnel(crm, **Q1, team="T2").get_column("deals").to_list() == [3, 1, 1, 1, 1, 1]
    # as of 2025-02-09: cohort created by then = o1 o2 o3 o4 o10; o1 is in negotiation (4), o2 qualification (1)
    # (its loss comes 02-01: still 1), o3 needs_analysis (2), o4 prospecting (0), o10 prospecting (0)
    f = sales.funnel(crm, **Q1, as_of="2025-02-09")
    assert f.get_column("deals").to_list() == [5, 3, 2, 1, 1, 0]
    assert f.get_column("conversion").to_list()[-1] == 0.0
    empty = sales.funnel(crm, **Q1, team="T9")
    assert empty.height == 6 and empty.get_column("deals").sum() == 0
    assert empty.get_column("conversion").null_count() == 6


# --------------------------------------------------------------------------------------------
# Pipeline and forecast
# --------------------------------------------------------------------------------------------
def test_pipeline_by_stage_at_the_as_of_day(crm):
    p = sales.pipeline(crm, **Q1)
    # open at 2025-03-31: o5 prospecting 800 (p 0.1), o8 prospecting 100 (p empty -> stage default 0.1),
    # o7 qualification 50 USD x 7.2 = 360 (p 0.2), o3 proposal 2500 (0.6), o9 negotiation 1200 (0.8)
    assert p.get_column("stage").to_list() == ["prospecting", "qualification", "needs_analysis", "proposal",
                                               "negotiation"]
    assert p.get_column("deals").to_list() == [2, 1, 0, 1, 1]
    assert p.get_column("amount").to_list() == approx([900, 360, 0, 2500, 1200])
    assert p.get_column("weighted").to_list() == approx([90, 72, 0, 1500, 960])
    # on 2025-01-31: o1 negotiation 1000, o2 qualification 100 USD x 7.0, o3 qualification 2000,
    # o6 negotiation 300, o10 prospecting 400
    p = sales.pipeline(crm, **Q1, as_of="2025-01-31", by="user")
    assert rows(p, "user")["u1"]["amount"] == approx(1700) and rows(p, "user")["u2"]["amount"] == approx(2300)
    assert p.get_column("user").to_list()[0] == "u2"  # largest first


def test_forecast_by_category(crm):
    f = sales.forecast(crm, **Q1)
    # closed: won in Q1 = o1 1000 + o4 500 + o6 300 = 1800 (3 deals)
    # open at 03-31 expected by 03-31 (overdue count in the current period): o5 (close 03-20, pipeline, 800),
    # o9 (03-28, commit, 1200); o3 04-15, o7 05-31, o8 06-30 fall after the quarter
    assert f.get_column("category").to_list() == ["closed", "commit", "best_case", "pipeline"]
    assert f.get_column("deals").to_list() == [3, 1, 0, 1]
    assert f.get_column("amount").to_list() == approx([1800, 1200, 0, 800])
    assert f.get_column("weighted").to_list() == approx([1800, 960, 0, 80])
    assert f.get_column("cumulative").to_list() == approx([1800, 3000, 3000, 3800])
    # quota: company targets 1000 + 2000 + 3000 = 6000; commit attainment (1800 + 1200) / 6000 = 0.5
    assert f.get_column("quota").to_list() == approx([6000] * 4)
    assert f.get_column("attainment").to_list() == approx([0.3, 0.5, 0.5, 3800 / 6000])


def test_forecast_of_a_period_still_to_come_and_of_a_team(crm):
    f = sales.forecast(crm, start="2025-04-01", end="2025-06-30")  # as of the data's end, 03-31
    # nothing closed yet; o3 best_case 2500 (w 1500); pipeline o7 360 (w 72) + o8 100 (no category -> pipeline,
    # w 10); no targets for Q2 -> no quota
    assert f.get_column("amount").to_list() == approx([0, 0, 2500, 460])
    assert f.get_column("weighted").to_list() == approx([0, 0, 1500, 82])
    assert f.get_column("quota").null_count() == 4
    t1 = sales.forecast(crm, **Q1, team="T1")
    # T1 = u1, u2: closed o1 1000 + o6 300; commit o9 1200; quota T1 600 + 1200 + 1800 = 3600
    assert t1.get_column("amount").to_list() == approx([1300, 1200, 0, 0])
    assert t1.get_column("attainment").to_list() == approx([1300 / 3600, 2500 / 3600, 2500 / 3600, 2500 / 3600])
    north = sales.forecast(crm, **Q1, region="North")  # a region cuts across the company target: no quota
    assert north.get_column("quota").null_count() == 4
    assert north.get_column("amount").to_list() == approx([1000, 1200, 0, 800])  # o1; o9; o5


def test_pipeline_coverage_per_month(crm):
    c = rows(sales.pipeline_coverage(crm, **Q1, grain="month"), "period")
    # every month is complete at 03-31: snapshot the day before it began, nothing won yet
    # Jan (snapshot 2024-12-31): o6 300 expected 01-31 (w 30) / quota 1000 -> 0.3, weighted 0.03
    jan = c[D(2025, 1, 1)]
    assert jan["snapshot"] == D(2024, 12, 31)
    assert (jan["quota"], jan["won"], jan["remaining_quota"]) == approx((1000, 0, 1000))
    assert (jan["open_pipeline"], jan["coverage"], jan["weighted_coverage"]) == approx((300, 0.3, 0.03))
    # Feb (01-31): o1 1000 (close 02-15, w 800), o2 100 USD x 7.0 = 700 (02-28, w 140), o10 400 (02-28, w 40);
    # o3 (03-31) and o6 (03-15) are expected in March -> 2100 / 2000 = 1.05, weighted 980 / 2000 = 0.49
    feb = c[D(2025, 2, 1)]
    assert (feb["open_pipeline"], feb["coverage"], feb["weighted_coverage"]) == approx((2100, 1.05, 0.49))
    # Mar (02-28): o3 2000 (w 800), o4 500 (w 400), o5 800 (w 80), o6 300 (w 240) = 3600 / 3000 = 1.2;
    # weighted 1520 / 3000
    mar = c[D(2025, 3, 1)]
    assert (mar["open_pipeline"], mar["coverage"], mar["weighted_coverage"]) == approx((3600, 1.2, 1520 / 3000))


def test_pipeline_coverage_of_the_period_in_progress_uses_remaining_quota(crm):
    c = rows(sales.pipeline_coverage(crm, **Q1, grain="month", as_of="2025-03-15"), "period")
    mar = c[D(2025, 3, 1)]
    # snapshot 03-15; won in March so far: o4 500 -> remaining 3000 - 500 = 2500
    # open at 03-15 expected in March: o5 800 (w 80), o6 300 (close 03-15, w 240), o9 1200 (w 960);
    # o3 moved to proposal on 03-01 with close 04-15 and o7 is expected in May -> 2300 / 2500 = 0.92,
    # weighted 1280 / 2500 = 0.512
    assert mar["snapshot"] == D(2025, 3, 15)
    assert (mar["won"], mar["remaining_quota"], mar["open_pipeline"]) == approx((500, 2500, 2300))
    assert (mar["coverage"], mar["weighted_coverage"]) == approx((0.92, 0.512))
    whole = sales.pipeline_coverage(crm, **Q1, grain=None)  # one period, complete: snapshot 2024-12-31
    assert whole.get_column("coverage").to_list() == approx([300 / 6000])
    by_team = rows(sales.pipeline_coverage(crm, **Q1, grain="month", by="team").filter(
        pl.col("period") == D(2025, 2, 1)), "team")
    # Feb, T1 (u1 o1 1000 + u1 o2 700) / T1 quota 1200; T2 (u3 o10 400) / 800
    assert by_team["T1"]["coverage"] == approx(1700 / 1200) and by_team["T2"]["coverage"] == approx(0.5)


def test_forecast_accuracy_from_start_of_period_snapshots(crm):
    a = sales.forecast_accuracy(crm, **Q1, grain="month")
    got = {(r["period"], r["method"]): r for r in a.iter_rows(named=True)}
    # Jan: snapshot 2024-12-31 holds o6 (pipeline, 300, w 30): commit 0, best case 0, weighted 30; actual 0
    assert got[(D(2025, 1, 1), "weighted")]["forecast"] == approx(30)
    assert got[(D(2025, 1, 1), "weighted")]["accuracy"] is None  # nothing won: no percentage error
    # Feb: snapshot 01-31: o1 commit 1000 (w 800), o2 700 (w 140), o10 400 (w 40); actual = o1 1000
    assert got[(D(2025, 2, 1), "commit")]["accuracy"] == approx(1.0)
    assert got[(D(2025, 2, 1), "best_case")]["forecast"] == approx(1000)
    w = got[(D(2025, 2, 1), "weighted")]
    assert (w["forecast"], w["error"], w["abs_pct_error"], w["accuracy"]) == approx((980, -20, 0.02, 0.98))
    # Mar: snapshot 02-28: commit o4 500 + o6 300 = 800; best case + o3 2000 = 2800;
    # weighted 800 + 400 + 80 + 240 = 1520; actual o4 500 + o6 300 = 800
    assert got[(D(2025, 3, 1), "commit")]["accuracy"] == approx(1.0)
    b = got[(D(2025, 3, 1), "best_case")]
    assert (b["forecast"], b["abs_pct_error"], b["accuracy"]) == approx((2800, 2.5, 0.0))
    assert got[(D(2025, 3, 1), "weighted")]["accuracy"] == approx(1 - 720 / 800)
    assert sales.forecast_accuracy(crm, start="2025-03-01", end="2025-04-30").height == 3  # April not complete


# --------------------------------------------------------------------------------------------
# Stalled deals, lost reasons
# --------------------------------------------------------------------------------------------
def test_stalled_deals(crm):
    s = sales.stalled_deals(crm, **Q1)
    # stage p90 (linear) over every deal's completed stays: prospecting [4, 9, 9, 10, 10, 31, 40 (o6), 45 (o11)]
    # -> position 7 x 0.9 = 6.3 -> 40 + 0.3 x 5 = 41.5; qualification [10, 12, 17] -> 12 + 0.8 x 5 = 16;
    # proposal [5] -> 5; negotiation [20, 23, 69 (o6)] -> 23 + 0.8 x 46 = 59.8
    # open at 03-31 (days to 04-01 00:00):
    #   o3 proposal since 03-01 09:00 -> 30 days > 5; last activity a4 03-25 -> 6 days      -> stage_too_long 30
    #   o5 prospecting since 02-15 09:00 -> 44 days > 41.5; no activity, created 02-15 -> 44 -> both 44
    #   o7 qualification since creation 03-10 -> 21 > 16; no activity -> 21 days           -> stage_too_long 21
    #   o8 0 days; o9 negotiation 19 days < 59.8, activity a5 03-30 (1 day)                   -> not stalled
    assert s.get_column("opportunity_id").to_list() == ["o3", "o5", "o7"]  # largest amount first
    r = rows(s, "opportunity_id")
    assert (r["o3"]["days_in_stage"], r["o3"]["days_since_activity"], r["o3"]["reason"], r["o3"]["days_stalled"]) \
        == (30, 6, "stage_too_long", 30)
    assert r["o3"]["last_activity"] == D(2025, 3, 25) and r["o3"]["stage_p90_days"] == approx(5)
    assert (r["o5"]["reason"], r["o5"]["days_stalled"], r["o5"]["stage_p90_days"]) == ("both", 44, approx(41.5))
    assert (r["o7"]["reason"], r["o7"]["days_stalled"], r["o7"]["stage_p90_days"]) == ("stage_too_long", 21,
                                                                                    approx(16))
    assert r["o7"]["amount"] == approx(360)  # 50 USD at the as-of day's 7.2
    assert (r["o3"]["owner"], r["o3"]["account"], r["o3"]["team_id"]) == ("Bob", "Acme", "T1")
    # a shorter inactivity limit flags o9 too? 1 day since a5: no; limit 5 days flags o3 (6 days) as both
    s5 = rows(sales.stalled_deals(crm, **Q1, inactive_days=5), "opportunity_id")
    assert s5["o3"]["reason"] == "both" and "o9" not in s5
    assert sales.stalled_deals(crm, **Q1, team="T2").get_column("opportunity_id").to_list() == ["o5"]
    with pytest.raises(ConfigError):
        sales.stalled_deals(crm, inactive_days=0)


def test_lost_reasons(crm):
    lost = sales.lost_reasons(crm, **Q1)
    # o2 price 100 USD at its close date 02-01 (7.0) = 700, last open stage qualification;
    # o10 competitor 400, last open stage prospecting
    assert lost.get_column("lost_reason").to_list() == ["price", "competitor"]
    assert lost.get_column("amount").to_list() == approx([700, 400])
    assert lost.get_column("share_deals").to_list() == approx([0.5, 0.5])
    assert lost.get_column("share_amount").to_list() == approx([700 / 1100, 400 / 1100])
    assert lost.get_column("lost_at_stage").to_list() == ["qualification", "prospecting"]
    assert sales.lost_reasons(crm, start="2025-03-01", end="2025-03-31").height == 0


# --------------------------------------------------------------------------------------------
# Engine-backed: cards, trends, velocity, the catalog's sales KPIs
# --------------------------------------------------------------------------------------------
def test_catalog_declares_the_sales_kpis():
    cat = default_catalog()
    for name in ("open_deals", "pipeline_velocity", "sales_cycle_median_days", "weighted_pipeline",
                 "commit_attainment", "pipeline_coverage", "calls", "emails", "meetings"):
        assert name in cat, name
    assert "remaining quota" in cat.get("pipeline_coverage").description.en
    assert "per day" in cat.get("pipeline_velocity").label.en


def test_kpi_summary_with_quota_and_the_external_kpis(crm):
    s = rows(sales.kpi_summary(crm, **Q1, grain="quarter", compare=None), "kpi")
    # revenue 1800 vs quota 6000: attainment 0.3, gap 4200
    assert (s["revenue"]["value"], s["revenue"]["target"], s["revenue"]["attainment"], s["revenue"]["gap"]) \
        == approx((1800, 6000, 0.3, 4200))
    # win rate 3 won / (3 + 2 lost) = 0.6; deal size 1800 / 3 = 600;
    # cycle (39 + 32 + 109) / 3 = 60 days (o1 01-02 -> 02-10, o4 02-01 -> 03-05, o6 2024-12-01 -> 03-20)
    assert (s["win_rate"]["value"], s["avg_deal_size"]["value"], s["sales_cycle_days"]["value"]) \
        == approx((0.6, 600, 60))
    # weighted pipeline at 03-31: 90 + 72 + 1500 + 960 = 2622; commit attainment (1800 + 1200) / 6000 = 0.5
    assert s["weighted_pipeline"]["value"] == approx(2622)
    assert s["commit_attainment"]["value"] == approx(0.5)
    # Q1 is complete at 03-31: coverage at its start = o6 300 / 6000
    assert s["pipeline_coverage"]["value"] == approx(0.05)
    # velocity: 5 open deals (o3 o5 o7 o8 o9) x 600 x 0.6 / 60 = 30 per day
    assert s["pipeline_velocity"]["value"] == approx(30)
    t1 = rows(sales.kpi_summary(crm, **Q1, grain="quarter", team="Alpha", compare=None), "kpi")
    # a team filter brings the team's quota: T1 won o1 1000 + o6 300 = 1300 vs 3600
    assert (t1["revenue"]["value"], t1["revenue"]["target"]) == approx((1300, 3600))
    assert t1["commit_attainment"]["value"] == approx((1300 + 1200) / 3600)
    assert sales.kpi_summary(crm, **Q1, team="T9").height == 0  # no deals: an empty frame (cards say so)


@pytest.mark.parametrize("grain", ["day", "week", "month", "quarter", "year"])
@pytest.mark.parametrize("team", [None, "Alpha"])
def test_kpi_summary_is_the_last_period_of_the_whole_range(crm, grain, team):
    # the cards evaluate only the latest period: the same rows as evaluating the whole range and
    # keeping its last period (values, comparisons, targets, status)
    from crmlib.sales.pipeline import SUMMARY_KPIS, _engine, select

    got = sales.kpi_summary(crm, start="2025-01-15", end="2025-03-31", grain=grain, team=team)
    whole = _engine(crm, select(crm, "2025-01-15", "2025-03-31", team), SUMMARY_KPIS, grain, "previous_period")
    last = whole.filter(pl.col("period") == pl.col("period").max())
    assert got.height == len(SUMMARY_KPIS) == last.height
    assert_frame_equal(got.sort("kpi"), last.sort("kpi"), check_exact=False, rel_tol=1e-9)


def test_pipeline_coverage_by_team_has_no_null_group(crm):
    # weeks where no team has pipeline or won deals still get each team (with its quota), not a null team
    got = sales.pipeline_coverage(crm, **Q1, grain="week", by="team")
    assert got["team"].null_count() == 0
    assert got.group_by("period").len()["len"].unique().to_list() == [got["team"].n_unique()]


def test_velocity_and_trends(crm):
    v = sales.velocity(crm, **Q1, grain="quarter")
    assert v.columns == ["period", "open_deals", "avg_deal_size", "win_rate", "cycle_days", "velocity_per_day"]
    assert v.row(0) == approx((D(2025, 1, 1), 5, 600, 0.6, 60, 30))
    t = sales.trends(crm, **Q1, grain="month")
    rev = t.filter(pl.col("kpi") == "revenue").sort("period")
    assert rev.get_column("value").to_list() == approx([0, 1000, 800])  # o1 in Feb; o4 + o6 in March
    assert rev.get_column("target").to_list() == approx([1000, 2000, 3000])
    assert set(t.get_column("kpi")) == set(sales.TREND_KPIS)
    assert sales.velocity(crm, **Q1, team="T9").height == 0


def test_missing_exchange_rate_is_an_error(tmp_path):
    from sales_fixture import hand_frames

    frames = hand_frames()
    frames["fx_rates"] = frames["fx_rates"].filter(pl.col("currency") != "USD")
    with crmlib.open(write_warehouse(tmp_path / "nofx.duckdb", frames)) as c, \
            pytest.raises(CurrencyError, match="USD"):
        sales.pipeline(c, **Q1, as_of="2025-01-31")


def test_empty_source_gives_empty_frames(tmp_path):
    with crmlib.open(write_warehouse(tmp_path / "empty.duckdb", {})) as c:
        assert sales.funnel(c, **Q1).get_column("deals").sum() == 0
        assert sales.pipeline(c, **Q1).get_column("deals").sum() == 0
        assert sales.stalled_deals(c, **Q1).height == 0
        assert sales.forecast(c, **Q1).get_column("amount").sum() == 0
        assert sales.lost_reasons(c, **Q1).height == 0
        assert sales.kpi_summary(c, **Q1).height == 0
        assert sales.pipeline_coverage(c, **Q1).height == 3
        assert isinstance(sales.select(c).as_of, dt.date)
