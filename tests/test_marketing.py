"""crmlib.marketing: hand-computed on a tiny CRM, and the planted channel truth of the demo simulator.

The tiny CRM (2024; base currency CNY; USD at 7.0 from 2024-01-01 and 7.2 from 2024-03-01):

lead  created       source       campaign  MQL        SQL        opportunity                        touches (id: day time channel campaign)
L1    01-10 10:00   paid_search  C1        01-11 10h  01-15 10h  O1 01-25 09:00, won 03-01, 1000 USD  display 2023-10-01 / display 01-05 09h C2 /
                                                                                                      paid_search 01-10 10h C1 / email 01-20 09h /
                                                                                                      webinar 01-26 09h; contact CT1: events 02-15 C3
L2    01-20 10:00   display      C2        01-22 10h  -          -                                    display 01-18 C2 / display 01-20 10h C2 / social_paid 02-01
L3    02-05 10:00   events       C3        02-06 10h  02-10 10h  O2 02-20 10:00, lost, 500 CNY        events 02-01 C3 / events 02-05 10h C3 / email 02-18
L4    02-15 10:00   paid_search  C1        -          -          -                                    paid_search 02-15 10h C1

Other deals: O3 (account A3, no lead) won 2024-02-10, 300 CNY; O4 (account A1) won 2024-05-01, 200 CNY.
Spend: C1 paid_search 01-01 1000 CNY and 02-01 500 USD; C2 display 01-15 2000 CNY; C3 events 02-01 800 CNY and
04-10 300 CNY. Budgets: C1 10000 (01-01..06-30), C2 3000 (01-01..03-31), C3 1000 (02-01..04-30).
"""

from __future__ import annotations

import os
import re
from datetime import date, datetime
from pathlib import Path

import polars as pl
import pytest

import crmlib
from crmlib import charts_marketing as CM
from crmlib import marketing as M
from crmlib.errors import ConfigError, CurrencyError


def _dt(text: str) -> datetime:
    return datetime.fromisoformat(text)


def tiny_frames() -> dict[str, pl.DataFrame]:
    leads = pl.DataFrame({
        "lead_id": ["L1", "L2", "L3", "L4"],
        "created_at": [_dt("2024-01-10 10:00"), _dt("2024-01-20 10:00"), _dt("2024-02-05 10:00"),
                       _dt("2024-02-15 10:00")],
        "channel": ["paid_search", "display", "events", "paid_search"],
        "campaign_id": ["C1", "C2", "C3", "C1"],
        "status": ["converted", "nurturing", "converted", "new"],
        "mql_at": [_dt("2024-01-11 10:00"), _dt("2024-01-22 10:00"), _dt("2024-02-06 10:00"), None],
        "sql_at": [_dt("2024-01-15 10:00"), None, _dt("2024-02-10 10:00"), None],
        "converted_at": [_dt("2024-01-25 09:00"), None, _dt("2024-02-20 10:00"), None],
        "converted_opportunity_id": ["O1", None, "O2", None],
    })
    opps = pl.DataFrame({
        "opportunity_id": ["O1", "O2", "O3", "O4"],
        "name": ["o1", "o2", "o3", "o4"],
        "account_id": ["A1", "A2", "A3", "A1"],
        "owner_id": ["U1"] * 4,
        "created_at": [_dt("2024-01-25 09:00"), _dt("2024-02-20 10:00"), _dt("2024-01-05 10:00"),
                       _dt("2024-04-01 10:00")],
        "close_date": [date(2024, 3, 1), date(2024, 4, 1), date(2024, 2, 10), date(2024, 5, 1)],
        "stage": ["closed_won", "closed_lost", "closed_won", "closed_won"],
        "is_closed": [True] * 4,
        "is_won": [True, False, True, True],
        "amount": [1000.0, 500.0, 300.0, 200.0],
        "currency": ["USD", "CNY", "CNY", "CNY"],
        "type": ["new", "new", "new", "upsell"],
        "lead_id": ["L1", None, None, None],  # O2 is linked through leads.converted_opportunity_id only
    })
    tp = [
        ("T01", "2023-10-01 09:00", "L1", None, "display", "C2"),
        ("T02", "2024-01-05 09:00", "L1", None, "display", "C2"),
        ("T03", "2024-01-10 10:00", "L1", None, "paid_search", "C1"),
        ("T04", "2024-01-20 09:00", "L1", None, "email", None),
        ("T05", "2024-01-26 09:00", "L1", None, "webinar", None),
        ("T06", "2024-02-15 09:00", None, "CT1", "events", "C3"),
        ("T07", "2024-01-18 09:00", "L2", None, "display", "C2"),
        ("T08", "2024-01-20 10:00", "L2", None, "display", "C2"),
        ("T09", "2024-02-01 09:00", "L2", None, "social_paid", None),
        ("T10", "2024-02-01 09:00", "L3", None, "events", "C3"),
        ("T11", "2024-02-05 10:00", "L3", None, "events", "C3"),
        ("T12", "2024-02-18 09:00", "L3", None, "email", None),
        ("T13", "2024-02-15 10:00", "L4", None, "paid_search", "C1"),
        ("T14", "2024-03-01 09:00", None, "CT9", "email", None),  # a contact not converted from a lead
    ]
    touchpoints = pl.DataFrame(
        {"touchpoint_id": [r[0] for r in tp], "occurred_at": [_dt(r[1]) for r in tp], "lead_id": [r[2] for r in tp],
         "contact_id": [r[3] for r in tp], "channel": [r[4] for r in tp], "campaign_id": [r[5] for r in tp],
         "interaction": ["click"] * len(tp)})
    contacts = pl.DataFrame({"contact_id": ["CT1", "CT9"], "account_id": ["A1", "A3"], "lead_id": ["L1", None],
                             "created_at": [_dt("2024-01-25 09:00"), _dt("2023-01-01 09:00")]})
    campaigns = pl.DataFrame({
        "campaign_id": ["C1", "C2", "C3"], "name": ["Search", "Display", "Events"],
        "channel": ["paid_search", "display", "events"],
        "start_date": [date(2024, 1, 1), date(2024, 1, 1), date(2024, 2, 1)],
        "end_date": [date(2024, 6, 30), date(2024, 3, 31), date(2024, 4, 30)],
        "budget": [10000.0, 3000.0, 1000.0], "currency": ["CNY"] * 3})
    spend = pl.DataFrame({
        "date": [date(2024, 1, 1), date(2024, 2, 1), date(2024, 1, 15), date(2024, 2, 1), date(2024, 4, 10)],
        "campaign_id": ["C1", "C1", "C2", "C3", "C3"],
        "channel": ["paid_search", "paid_search", "display", "events", "events"],
        "amount": [1000.0, 500.0, 2000.0, 800.0, 300.0], "currency": ["CNY", "USD", "CNY", "CNY", "CNY"]})
    fx = pl.DataFrame({"date": [date(2024, 1, 1), date(2024, 3, 1)], "currency": ["USD", "USD"],
                       "rate_to_base": [7.0, 7.2]})
    return {"leads": leads, "opportunities": opps, "touchpoints": touchpoints, "contacts": contacts,
            "campaigns": campaigns, "marketing_spend": spend, "fx_rates": fx}


def open_frames(folder, frames: dict[str, pl.DataFrame]) -> crmlib.Crm:
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in frames.items():
        frame.write_parquet(folder / f"{name}.parquet")
    return crmlib.open(folder)


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    monkeypatch.setenv("CRMLIB_BASE_CURRENCY", "CNY")
    crm = open_frames(tmp_path / "tiny", tiny_frames())
    yield crm
    crm.close()


def rows(frame: pl.DataFrame, *cols: str) -> list[tuple]:
    return [tuple(r) for r in frame.select(cols).iter_rows()]


# ---------------------------------------------------------------------------------------------------
# Journeys
# ---------------------------------------------------------------------------------------------------
def test_journeys_opportunity_created_with_lookback(tiny):
    j = M.journeys(tiny, "2024-01-01", "2024-12-31", "opportunity_created", lookback_days=90)
    got = {tuple(p): (c, v, n) for p, c, v, n in rows(j, "path", "conversions", "value", "nulls")}
    # L1 converts at O1's creation (01-25 09:00); the 90-day window starts 2023-10-27 09:00, so the 2023-10-01
    # display touch is out, and the webinar (01-26) is after the conversion. Value: O1 won, 1000 USD at the
    # close-date rate 7.2 = 7200 CNY.
    # L3 converts at O2's creation (02-20), linked by leads.converted_opportunity_id only; O2 is lost: value 0.
    # L2 and L4 have not converted: their touches up to the last one are non-converting paths.
    assert got == {
        ("display", "paid_search", "email"): (1.0, 7200.0, 0.0),
        ("events", "events", "email"): (1.0, 0.0, 0.0),
        ("display", "display", "social_paid"): (0.0, 0.0, 1.0),
        ("paid_search",): (0.0, 0.0, 1.0),
    }
    l1 = j.filter(pl.col("path").list.len() == 3, pl.col("value") > 0).row(0, named=True)
    # days to 01-25 09:00: 01-05 09:00 -> 20; 01-10 10:00 -> 14 days 23 h; 01-20 09:00 -> 5
    assert l1["times"] == pytest.approx([20.0, 14 + 23 / 24, 5.0])
    assert l1["lead_index"] == 1  # the paid_search touch at the lead's creation
    assert l1["opportunity_index"] == 2  # the last touch before the opportunity
    assert l1["campaigns"] == ["C2", "C1", None]
    l4 = j.filter(pl.col("path") == ["paid_search"]).row(0, named=True)
    assert l4["opportunity_index"] is None and l4["lead_index"] == 0


def test_journeys_short_lookback(tiny):
    j = M.journeys(tiny, None, None, "opportunity_created", lookback_days=10, detail=False)
    got = {tuple(p): (c, n) for p, c, n in rows(j, "path", "conversions", "nulls")}
    # 10 days before 01-25 09:00 is 01-15 09:00: only L1's email; before 02-20 10:00: 02-10 10:00, L3's email;
    # L2 went cold at 02-01 09:00, window from 01-22 09:00: the social_paid touch only; L4: its one touch.
    assert got == {("email",): (2.0, 0.0), ("social_paid",): (0.0, 1.0), ("paid_search",): (0.0, 1.0)}


def test_journeys_closed_won_maps_contact_touches_to_the_lead(tiny):
    j = M.journeys(tiny, "2024-01-01", "2024-12-31", "closed_won", lookback_days=90, detail=False)
    got = {tuple(p): (c, v, n) for p, c, v, n in rows(j, "path", "conversions", "value", "nulls")}
    # L1 wins on 03-01: every touch up to the end of that day within 90 days (from 2023-12-02), including the
    # webinar and the events touch of contact CT1 (converted from L1). L3 never wins: non-converting.
    assert got == {
        ("display", "paid_search", "email", "webinar", "events"): (1.0, 7200.0, 0.0),
        ("events", "events", "email"): (0.0, 0.0, 1.0),
        ("display", "display", "social_paid"): (0.0, 0.0, 1.0),
        ("paid_search",): (0.0, 0.0, 1.0),
    }


def test_journeys_period(tiny):
    # Period February: L1 converted before it (no path); L3 converts in it; L2's last touch (02-01) and L4's
    # (02-15) are in it.
    j = M.journeys(tiny, "2024-02-01", "2024-02-29", "opportunity_created", lookback_days=None, detail=False)
    assert j.get_column("conversions").sum() == 1 and j.get_column("nulls").sum() == 2
    # Period January: L1 converts; L2 (last touch before 02-01 is 01-20) has a non-converting path; L3 and L4
    # have no touch before February, so no path.
    j = M.journeys(tiny, "2024-01-01", "2024-01-31", "opportunity_created", lookback_days=None, detail=False)
    got = {tuple(p): (c, n) for p, c, n in rows(j, "path", "conversions", "nulls")}
    assert got == {("display", "display", "paid_search", "email"): (1.0, 0.0), ("display", "display"): (0.0, 1.0)}


def test_journeys_lead_created(tiny):
    j = M.journeys(tiny, None, None, "lead_created", lookback_days=30, detail=True)
    # Every lead converts at its creation; touches at or before it within 30 days.
    got = {tuple(p): (c, li, oi) for p, c, li, oi in rows(j, "path", "conversions", "lead_index",
                                                           "opportunity_index")}
    assert got == {
        ("display", "paid_search"): (1.0, 1, None),  # L1; O1 is created after the conversion
        ("display", "display"): (1.0, 1, None),  # L2
        ("events", "events"): (1.0, 1, None),  # L3
        ("paid_search",): (1.0, 0, None),  # L4
    }


def test_journeys_feed_every_model(tiny):
    from crmlib.models.attribution import MODELS, compare_models

    j = M.journeys(tiny, "2024-01-01", "2024-12-31")
    out = compare_models(j, MODELS)
    totals = out.group_by("model").agg(pl.col("conversions").sum(), pl.col("value").sum())
    assert totals.get_column("conversions").to_list() == pytest.approx([2.0] * len(MODELS))
    assert totals.get_column("value").to_list() == pytest.approx([7200.0] * len(MODELS))


def test_bad_parameters(tiny):
    with pytest.raises(ConfigError, match='Did you mean "closed_won"'):
        M.journeys(tiny, conversion_event="closed_wn")
    with pytest.raises(ConfigError, match="lookback_days"):
        M.journeys(tiny, lookback_days=0)
    with pytest.raises(ConfigError, match="YYYY-MM-DD"):
        M.funnel(tiny, start="last year")
    with pytest.raises(ConfigError, match="before it starts"):
        M.funnel(tiny, "2024-02-01", "2024-01-01")


# ---------------------------------------------------------------------------------------------------
# Funnel, costs, budget
# ---------------------------------------------------------------------------------------------------
def test_funnel_counts_conversion_and_median_days(tiny):
    f = M.funnel(tiny)
    # leads 4; MQL L1 L2 L3 = 3; SQL L1 L3 = 2; opportunity L1 L3 = 2; won L1 = 1
    assert rows(f, "step", "count", "drop_off") == [("lead", 4, 0), ("mql", 3, 1), ("sql", 2, 1),
                                                    ("opportunity", 2, 0), ("won", 1, 1)]
    assert f.get_column("conversion").to_list() == pytest.approx([None, 3 / 4, 2 / 3, 1.0, 1 / 2], nan_ok=True)
    assert f.get_column("from_lead").to_list() == pytest.approx([1.0, 3 / 4, 1 / 2, 1 / 2, 1 / 4])
    # lead -> MQL: 1, 2, 1 days => 1. MQL -> SQL: 4, 4 => 4. SQL -> opportunity: 01-15 10:00 -> 01-25 09:00 =
    # 9 d 23 h, 02-10 10:00 -> 02-20 10:00 = 10 d => (9 23/24 + 10) / 2. Opportunity -> won: 01-25 09:00 ->
    # 03-01 00:00 (2024 is a leap year) = 31 + 4 days + 15 h = 35.625.
    assert f.get_column("median_days").to_list()[1:] == pytest.approx([1.0, 4.0, (9 + 23 / 24 + 10) / 2, 35.625])


def test_funnel_by_channel_and_period(tiny):
    f = M.funnel(tiny, "2024-01-01", "2024-01-31", by="channel")
    # January leads: L1 (paid_search, reaches won), L2 (display, MQL only)
    got = {(c, s): n for c, s, n in rows(f, "channel", "step", "count")}
    assert got[("paid_search", "won")] == 1 and got[("display", "mql")] == 1 and got[("display", "sql")] == 0
    assert f.filter(pl.col("channel") == "display", pl.col("step") == "sql").get_column(
        "conversion").to_list() == [0.0]  # 0 of 1 MQL
    assert f.filter(pl.col("channel") == "display", pl.col("step") == "opportunity").get_column(
        "conversion").to_list() == [None]  # 0 SQLs: no rate rather than a division by zero
    cohorts = M.funnel(tiny, by="cohort").filter(pl.col("step") == "lead")
    assert rows(cohorts, "cohort", "count") == [(date(2024, 1, 1), 2), (date(2024, 2, 1), 2)]


def test_cost_kpis_and_cac(tiny):
    overall = M.cost_kpis(tiny, "2024-01-01", "2024-03-31", by=None).row(0, named=True)
    # spend: 1000 + 500 USD x 7.0 (rate on 02-01) + 2000 + 800 = 7300 (the April spend is outside)
    # leads 4, MQLs 3; new customers: A1 (first win O1 on 03-01) and A3 (O3 on 02-10) => 2
    assert overall["spend"] == pytest.approx(7300.0)
    assert (overall["leads"], overall["mqls"], overall["new_customers"]) == (4, 3, 2)
    assert overall["cost_per_lead"] == pytest.approx(7300 / 4)
    assert overall["cost_per_mql"] == pytest.approx(7300 / 3)
    assert overall["cac"] == pytest.approx(7300 / 2)
    by = {r["channel"]: r for r in M.cost_kpis(tiny, "2024-01-01", "2024-03-31").iter_rows(named=True)}
    # paid_search: spend 4500, leads L1 L4, MQL L1, new customer A1 (its first win came from L1)
    assert (by["paid_search"]["spend"], by["paid_search"]["leads"], by["paid_search"]["mqls"]) == (4500.0, 2, 1)
    assert by["paid_search"]["cac"] == pytest.approx(4500.0)
    assert by["display"]["cac"] is None  # no new customer: null, not a division by zero
    assert by[None]["new_customers"] == 1  # A3's first win came from no lead


def test_budget_vs_actual(tiny):
    b = {r["campaign_id"]: r for r in M.budget_vs_actual(tiny, "2024-01-01", "2024-03-31").iter_rows(named=True)}
    # C1: 4500 of 10000; 91 of 182 days passed => pace 0.45 / 0.5 = 0.9
    assert b["C1"]["spend"] == pytest.approx(4500.0) and b["C1"]["elapsed_share"] == pytest.approx(0.5)
    assert b["C1"]["pace"] == pytest.approx(0.9)
    # C2: 2000 of 3000, all 91 days passed
    assert b["C2"]["spent_share"] == pytest.approx(2 / 3) and b["C2"]["elapsed_share"] == pytest.approx(1.0)
    # C3: 800 of 1000 by 03-31 (the April spend not yet); 60 of 90 days => pace 0.8 / (2/3) = 1.2
    assert b["C3"]["spend"] == pytest.approx(800.0) and b["C3"]["pace"] == pytest.approx(1.2)
    assert b["C3"]["remaining"] == pytest.approx(200.0)


def test_missing_exchange_rate_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv("CRMLIB_BASE_CURRENCY", "CNY")
    frames = tiny_frames()
    frames["fx_rates"] = frames["fx_rates"].with_columns(pl.lit(date(2024, 2, 15)).alias("date"))
    crm = open_frames(tmp_path / "nofx", frames)
    with pytest.raises(CurrencyError, match=r"marketing_spend: 1 row in USD dated 2024-02-01"):
        M.cost_kpis(crm, "2024-01-01", "2024-03-31")
    crm.close()


# ---------------------------------------------------------------------------------------------------
# ROI, wasted spend, reallocation
# ---------------------------------------------------------------------------------------------------
ATTRIBUTED = pl.DataFrame({
    "model": ["markov", "markov", "shapley", "shapley", "last_touch"],
    "channel": ["paid_search", "display", "paid_search", "display", "display"],
    "campaign": ["C1", "C2", "C1", "C2", "C2"],
    "conversions": [1.0, 1.0, 1.0, 1.0, 2.0],
    "value": [9000.0, 1000.0, 6750.0, 3000.0, 5000.0],
})


def test_wasted_spend_roi_agreement_and_flag(tiny):
    w = {r["channel"]: r for r in M.wasted_spend(tiny, ATTRIBUTED, "2024-01-01", "2024-03-31").iter_rows(named=True)}
    # spend: paid_search 4500, display 2000, events 800
    # ROI markov: ps (9000-4500)/4500 = 1.0, display (1000-2000)/2000 = -0.5, events -1
    # ROI shapley: ps 0.5, display 0.5, events -1; last_touch: ps -1, display 1.5, events -1
    assert (w["paid_search"]["roi_markov"], w["paid_search"]["roi_shapley"], w["paid_search"]["roi_last_touch"]) == \
        pytest.approx((1.0, 0.5, -1.0))
    assert (w["display"]["roi_markov"], w["display"]["roi_shapley"], w["display"]["roi_last_touch"]) == \
        pytest.approx((-0.5, 0.5, 1.5))
    # wasted: ROI < 1 under markov AND shapley: not paid_search (markov 1.0), display and events yes
    assert (w["paid_search"]["wasted"], w["display"]["wasted"], w["events"]["wasted"]) == (False, True, True)
    assert (w["display"]["wasted_spend"], w["events"]["wasted_spend"]) == pytest.approx((2000.0, 800.0))
    # agreement: ps 2 of 3 models below 1, display 2 of 3, events 3 of 3
    assert (w["paid_search"]["agreement"], w["display"]["agreement"], w["events"]["agreement"]) == \
        pytest.approx((2 / 3, 2 / 3, 1.0))
    assert (w["paid_search"]["roi_min"], w["paid_search"]["roi_max"]) == pytest.approx((-1.0, 1.0))
    by_campaign = M.wasted_spend(tiny, ATTRIBUTED, "2024-01-01", "2024-03-31", level="campaign")
    assert rows(by_campaign.sort("campaign_id"), "campaign_id", "spend", "wasted") == [
        ("C1", 4500.0, False), ("C2", 2000.0, True), ("C3", 800.0, True)]
    with pytest.raises(ConfigError, match="shapley"):
        M.wasted_spend(tiny, ATTRIBUTED.filter(pl.col("model") != "shapley"))


def test_wasted_spend_table_says_yes_or_no_in_its_language(tiny):
    w = M.wasted_spend(tiny, ATTRIBUTED, "2024-01-01", "2024-03-31")
    flags = dict(w.select("channel", "wasted").iter_rows())
    for lang, yes, no in (("en", "yes", "no"), ("zh", "是", "否")):
        html = CM.fmt_wasted_spend(w, lang=lang).as_raw_html()
        cells = re.findall(r'<td[^>]*>(yes|no|是|否|True|False)</td>', html)
        assert cells.count(yes) == sum(flags.values()) > 0 and cells.count(no) == len(flags) - sum(flags.values())


def test_reallocation_by_hand(tiny):
    w = M.wasted_spend(tiny, ATTRIBUTED, "2024-01-01", "2024-03-31")
    # ROAS markov: paid_search 9000/4500 = 2, display 1000/2000 = 0.5, events 0/800 = 0
    # lowest (n_from=1): events gives 50 % of 800 = 400; highest two (n_to=2): paid_search and display, in
    # proportion to spend 4500 : 2000 => +276.92..., +123.07...; revenue change = change x ROAS.
    r = {x["channel"]: x for x in M.reallocation(w, share=0.5, n_from=1, n_to=2, model="markov").iter_rows(named=True)}
    assert r["events"]["role"] == "donor" and r["events"]["proposed_spend"] == pytest.approx(400.0)
    assert r["paid_search"]["spend_change"] == pytest.approx(400 * 4500 / 6500)
    assert r["display"]["spend_change"] == pytest.approx(400 * 2000 / 6500)
    assert r["paid_search"]["revenue_change"] == pytest.approx(2 * 400 * 4500 / 6500)
    assert r["display"]["revenue_change"] == pytest.approx(0.5 * 400 * 2000 / 6500)
    assert r["events"]["revenue_change"] == pytest.approx(0.0)
    assert sum(x["spend_change"] for x in r.values()) == pytest.approx(0.0)
    assert "constant" in r["events"]["assumption"]


# ---------------------------------------------------------------------------------------------------
# The small demo (scale 0.05): everything runs, nothing divides by zero
# ---------------------------------------------------------------------------------------------------
def test_demo_small_runs_end_to_end(demo_warehouse):
    crm = crmlib.open(demo_warehouse)
    f = M.funnel(crm, "2024-01-01", "2024-12-31", by="channel")
    assert (f.get_column("count").diff().fill_null(0).filter(f.get_column("step") != "lead") <= 0).all()
    att = M.attribution(crm, "2024-01-01", "2024-12-31")
    j = M.journeys(crm, "2024-01-01", "2024-12-31")
    totals = att.group_by("model").agg(pl.col("value").sum())
    assert totals.get_column("value").to_list() == pytest.approx([j.get_column("value").sum()] * totals.height)
    w = M.wasted_spend(crm, att, "2024-01-01", "2024-12-31")
    r = M.reallocation(w)
    assert r.get_column("spend_change").sum() == pytest.approx(0.0, abs=1e-6)
    assert M.cost_kpis(crm, "2024-01-01", "2024-12-31").height > 0
    crm.close()


# ---------------------------------------------------------------------------------------------------
# Planted truth (demo scale 1, two seeds): effective channels earn more per unit of spend than useless ones
# ---------------------------------------------------------------------------------------------------
# The planted truth is read from TRUTH["channels"] (crmlib/sources/demo/marketing.py, CHANNEL_MODEL), never
# from numbers written here. Why first-order Markov fails the acceptance point on this data, and why neither
# the simulator nor the default model was changed to make it pass: docs/attribution.md.
TRUTH_SEEDS = tuple(int(s) for s in os.environ.get("CRMLIB_DEMO_TEST_SEEDS", "42,7").split(","))
MARKOV_ORDERS = (1, 2, 3, "path")  # "path": the whole-path limit of the order (crmlib.models.markov)


@pytest.fixture(scope="module", params=TRUTH_SEEDS, ids=lambda s: f"seed{s}")
def demo_roas(request, tmp_path_factory):
    """Attributed revenue, spend and ROAS per model and channel of the whole demo (scale 1), and TRUTH.

    Models: last_touch, markov (order 1) and shapley through :func:`crmlib.marketing.attribution`, and
    ``markov_order<k>`` for the higher orders (``markov_orderpath``: the whole path) on the same journeys."""
    from crmlib.models.attribution import attribute
    from crmlib.sources import demo

    path = tmp_path_factory.mktemp(f"demo1_{request.param}") / "crm.duckdb"
    demo.write_demo(path, scale=1, seed=request.param, progress=False)
    crm = crmlib.open(path)
    att = M.attribution(crm, models=["last_touch", "markov", "shapley"]).select("model", "channel", "value")
    paths = M.journeys(crm)
    higher = [attribute(paths, "markov", order=k, by_campaign=False).select(
        pl.lit(f"markov_order{k}").alias("model"), "channel", "value") for k in MARKOV_ORDERS if k != 1]
    spend = M._spend(crm, None, None).group_by("channel").agg(pl.col("amount_base").sum().alias("spend"))
    roas = (pl.concat([att, *higher]).group_by("model", "channel").agg(pl.col("value").sum())
            .join(spend, on="channel", how="left").with_columns((pl.col("value") / pl.col("spend")).alias("roas")))
    crm.close()
    return roas, demo.TRUTH["channels"]


def _by_channel(demo_roas, model: str, column: str = "roas") -> dict[str, float]:
    roas, _ = demo_roas
    return dict(roas.filter(pl.col("model") == model).select("channel", column).iter_rows())


def _truth_gap(demo_roas, model: str) -> tuple[dict, dict]:
    _, truth = demo_roas
    r = _by_channel(demo_roas, model)
    # referral has no spend (no campaign), so no ROAS: the effective channels with spend are compared
    effective = {c: r[c] for c in truth["effective"] if r.get(c) is not None}
    useless = {c: r[c] for c in truth["no_effect"]}
    assert set(effective) == {"events", "webinar", "partner", "paid_search"}
    return effective, useless


def test_planted_truth_shapley(demo_roas):
    # The acceptance point of issue 9, under Shapley: every effective channel beats every useless one.
    effective, useless = _truth_gap(demo_roas, "shapley")
    assert min(effective.values()) > max(useless.values()), (effective, useless)


# Not tested because it does not hold (issue 9 reports it): the same acceptance point under first-order
# Markov. events (log-odds +1.3, 10 % exposure, ~1.3 touches) gets ROAS ~0.8-0.9 and paid_search falls below
# social_paid on seed 7, while display and social_paid (no effect, ~6 and ~5 touches per exposed journey)
# get ~1.4-1.5. The tests below pin down what Markov does recover, and why it misses the rest.


def test_planted_truth_markov_ranks_cheap_high_lift_channels_above_useless(demo_roas):
    # What first-order Markov recovers on every seed: webinar and partner (small reach, large lift, small
    # budgets) beat both useless channels. (events and paid_search do not: see the comment above.)
    effective, useless = _truth_gap(demo_roas, "markov")
    for c in ("webinar", "partner"):
        assert effective[c] > max(useless.values()), (c, effective, useless)


def test_markov_first_order_credits_touch_frequency(demo_roas):
    # The mechanism: a first-order chain forgets which journeys a channel was in, so a channel touched many
    # times per journey gets more removal effect than its presence on converting journeys earns (the toy in
    # tests/models/test_attribution.py shows it by hand). Shapley credits presence only. The planted useless
    # channels are the ones touched most often per exposed journey, so Markov / Shapley credit is highest
    # for them - above every planted effective channel.
    _, truth = demo_roas
    per_journey = truth["touches_per_exposed_journey"]
    useless, effective = truth["no_effect"], truth["effective"]
    assert min(per_journey[c] for c in useless) > max(per_journey[c] for c in effective)
    markov_v, shapley_v = _by_channel(demo_roas, "markov", "value"), _by_channel(demo_roas, "shapley", "value")
    ratio = {c: markov_v[c] / shapley_v[c] for c in [*useless, *effective]}
    assert min(ratio[c] for c in useless) > 1, ratio  # over-credited relative to presence
    assert min(ratio[c] for c in useless) > max(ratio[c] for c in effective), ratio


def test_markov_higher_order_moves_toward_the_planted_truth(demo_roas):
    # A chain that remembers more of the path credits less frequency and more presence (its limit, the
    # whole-path removal effect, is tested by hand in tests/models/test_attribution.py): the gap between
    # the worst effective channel and the best useless one narrows at every order.
    gaps = []
    for k in MARKOV_ORDERS:
        effective, useless = _truth_gap(demo_roas, "markov" if k == 1 else f"markov_order{k}")
        gaps.append(min(effective.values()) - max(useless.values()))
    assert all(a < b for a, b in zip(gaps, gaps[1:], strict=False)), gaps


def test_planted_truth_markov_whole_path(demo_roas):
    # The acceptance point holds under the Markov chain that remembers the whole path (order="path"), which
    # credits presence on converting journeys, not touch frequency (docs/attribution.md: not at orders 1-4).
    effective, useless = _truth_gap(demo_roas, "markov_orderpath")
    assert min(effective.values()) > max(useless.values()), (effective, useless)


# ---------------------------------------------------------------------------------------------------
# The notebook under papermill, for a parameter grid (nbval runs it with its defaults)
# ---------------------------------------------------------------------------------------------------
NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "marketing.ipynb"


@pytest.mark.slow
@pytest.mark.parametrize("params", [
    {"lang": "zh", "conversion_event": "closed_won", "lookback_days": 180, "models": ["last_touch", "markov"]},
    {"lang": "en", "conversion_event": "lead_created", "start": "2024-03-01", "end": "2024-03-01",
     "half_life_days": 2.5},
    {"lang": "en", "start": "2030-01-01", "end": "2030-12-31"},  # a period without data
], ids=["zh-closed_won", "en-one-day", "en-empty"])
def test_notebook_parameter_grid(params, demo_warehouse, tmp_path, monkeypatch):
    import nbformat
    import papermill

    monkeypatch.setenv("CRMLIB_SOURCE", str(demo_warehouse))
    out = tmp_path / "marketing.ipynb"
    papermill.execute_notebook(str(NOTEBOOK), str(out), parameters={**params, "interactive": False},
                               kernel_name="python3", progress_bar=False, cwd=str(NOTEBOOK.parent))
    nb = nbformat.read(out, as_version=4)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error" or o.get("name") == "stderr"]
    assert sum("application/vnd.plotly.v1+json" in o.get("data", {}) for o in outputs) == 5
