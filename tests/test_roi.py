"""The ROI calculator (crmlib.roi, charts_roi, notebooks/roi.ipynb).

Every formula is checked by hand: NPV and IRR on textbook cases (−100, 60, 60 → 13.07 %; −4000, 2000,
4000 → 28.08 %, both the roots of a quadratic solved here), IRR undefined when the cash flows never change
sign or change it twice (−100, 230, −132 has two IRRs, 10 % and 20 %), payback crossing mid-month, exactly at
a month end, and not within the horizon; the cash-flow model on a small made-up baseline with numbers
worked out by hand; the baseline against polars on the demo fixtures; the tornado's swings against closed
forms. The notebook runs under papermill in en and zh and shows the NPV computed here.
"""

from __future__ import annotations

import ast
import datetime as dt
import json
import math
import re
from pathlib import Path

import nbformat
import polars as pl
import pytest
import yaml
from notebook_checks import assert_thin_sections, stored_parameters

import crmlib
from crmlib import roi
from crmlib.cards import format_value
from crmlib.errors import ConfigError, CrmlibError

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "roi.ipynb"
PARAMETERS = (
    "source",
    "baseline_start",
    "baseline_end",
    "upfront_cost",
    "monthly_cost",
    "horizon_months",
    "discount_rate",
    "margin",
    "win_rate_change",
    "deal_size_change",
    "churn_change",
    "leads_change",
    "ramp_months",
    "sensitivity",
    "lang",
    "interactive",
)
CJK = re.compile(r"[\u4e00-\u9fff]")


def quadratic_irr(c0: float, c1: float, c2: float) -> list[float]:
    """IRRs of (c0, c1, c2): with v = 1 / (1 + r), c2 v² + c1 v + c0 = 0, v > 0."""
    disc = math.sqrt(c1 * c1 - 4 * c2 * c0)
    vs = [(-c1 + disc) / (2 * c2), (-c1 - disc) / (2 * c2)]
    return sorted(1 / v - 1 for v in vs if v > 0)


# ---------------------------------------------------------------------------------------------------
# NPV, IRR, payback
# ---------------------------------------------------------------------------------------------------
def test_npv_textbook():
    assert roi.npv(0.10, [-100, 60, 60]) == pytest.approx(-100 + 60 / 1.1 + 60 / 1.21)  # 4.1322
    assert roi.npv(0.10, [-100, 60, 60]) == pytest.approx(4.132231, abs=1e-6)
    assert roi.npv(0.0, [-100, 60, 60]) == pytest.approx(20.0)
    assert roi.npv(0.05, [100]) == 100.0  # month 0 is not discounted


def test_irr_textbook_cases():
    got = roi.irr([-100, 60, 60])
    assert got.reason is None
    assert round(got.rate * 100, 2) == 13.07
    assert got.rate == pytest.approx(quadratic_irr(-100, 60, 60)[0], abs=1e-10)
    assert roi.npv(got.rate, [-100, 60, 60]) == pytest.approx(0.0, abs=1e-9)
    got = roi.irr([-4000, 2000, 4000])
    assert round(got.rate * 100, 2) == 28.08 and got.rate == pytest.approx(
        quadratic_irr(-4000, 2000, 4000)[0]
    )
    # a long annuity: 12 payments of 10 for 100 -> about 2.92 % per period (NPV zero at it)
    flows = [-100] + [10] * 12
    r = roi.irr(flows).rate
    assert 0.029 < r < 0.0293 and roi.npv(r, flows) == pytest.approx(0.0, abs=1e-9)
    assert got.annual(1) == pytest.approx(got.rate) and roi.IrrResult(0.01).annual() == pytest.approx(
        1.01**12 - 1
    )


@pytest.mark.parametrize("flows", [[100, 60, 60], [-100, -60, -10], [0, 0, 0], [], [-5, 0, 0]])
def test_irr_without_a_sign_change_is_undefined_not_a_crash(flows):
    got = roi.irr(flows)
    assert got.rate is None and got.annual() is None
    assert got.reason.startswith("undefined") and "never change sign" in got.reason


def test_irr_with_two_roots_says_so():
    assert quadratic_irr(-100, 230, -132) == pytest.approx([0.10, 0.20])
    got = roi.irr([-100, 230, -132])
    assert (
        got.rate is None
        and "several rates" in got.reason
        and "10.00 %" in got.reason
        and "20.00 %" in got.reason
    )


def test_irr_with_no_root_in_range():
    got = roi.irr([-100, 1e-9])  # would need a rate near -100 %
    assert got.rate is None and got.reason.startswith("undefined")


def test_payback():
    assert roi.payback([-100, 60, 60]) == pytest.approx(1 + 40 / 60)  # crosses during month 2
    assert roi.payback([-100, 30, 30, 30, 30]) == pytest.approx(
        3 + 10 / 30
    )  # cumulative -10 after 3, +20 after 4
    assert roi.payback([-100, 50, 50]) == 2.0  # exactly at the end of month 2
    assert roi.payback([-100, 10, 10]) is None  # not within the horizon
    assert roi.payback([0, 10]) == 0.0 and roi.payback([]) is None
    assert roi.payback([-100, 150, -200, 300]) == pytest.approx(100 / 150)  # the first crossing


@pytest.mark.parametrize("rate", [-1, -1.5, float("nan"), "0.1", True])
def test_bad_rates_are_clear_errors(rate):
    with pytest.raises(ConfigError, match="rate"):
        roi.npv(rate, [-1, 2])


def test_monthly_rate():
    assert roi.monthly_rate(0.10) == pytest.approx(1.1 ** (1 / 12) - 1)
    assert (1 + roi.monthly_rate(0.268242)) ** 12 == pytest.approx(1.268242)
    with pytest.raises(ConfigError, match="above -100 %"):
        roi.monthly_rate(-1.0)


# ---------------------------------------------------------------------------------------------------
# The model on a made-up baseline, by hand
# ---------------------------------------------------------------------------------------------------
BASE = roi.Baseline(
    start=dt.date(2025, 1, 1),
    end=dt.date(2025, 12, 31),
    months=12.0,
    decided_deals=10.0,
    win_rate=0.25,
    deal_size=1000.0,
    new_leads=100.0,
    mrr=10_000.0,
    churn=0.02,
)


def test_cash_flows_by_hand():
    a = roi.Assumptions(
        upfront_cost=1000,
        monthly_cost=100,
        horizon_months=3,
        discount_rate=0.12,
        margin=0.5,
        win_rate_change=0.05,
        deal_size_change=0.10,
        churn_change=-0.5,
        leads_change=0.20,
    )
    r = roi.evaluate(BASE, a)
    cf = r.cash_flows
    # sales: 10 × 1.2 deals × 30 % won × 1100 = 3960 a month against 2500: +1460
    assert cf["sales_revenue"].to_list() == pytest.approx([0, 1460, 1460, 1460])
    # recurring: 10000 × (0.99^t − 0.98^t) = 100, 197, 291.07
    assert cf["recurring_revenue"].to_list() == pytest.approx([0, 100, 197, 291.07])
    assert cf["incremental_margin"].to_list() == pytest.approx([0, 780, 828.5, 875.535])
    assert cf["cash_flow"].to_list() == pytest.approx([-1000, 680, 728.5, 775.535])
    assert cf["cumulative"].to_list() == pytest.approx([-1000, -320, 408.5, 1184.035])
    m = 1.12 ** (1 / 12) - 1
    assert r.monthly_discount_rate == pytest.approx(m)
    assert r.npv == pytest.approx(-1000 + 680 / (1 + m) + 728.5 / (1 + m) ** 2 + 775.535 / (1 + m) ** 3)
    assert r.payback_months == pytest.approx(1 + 320 / 728.5)
    assert roi.npv(r.irr_monthly, cf["cash_flow"].to_list()) == pytest.approx(0, abs=1e-8)
    assert r.irr_annual == pytest.approx((1 + r.irr_monthly) ** 12 - 1)
    disc = [-1000, 680 / (1 + m), 728.5 / (1 + m) ** 2]
    assert r.discounted_payback_months == pytest.approx(1 + (-(disc[0] + disc[1])) / disc[2])
    metrics = dict(r.metrics().select("metric", "value").iter_rows())
    assert metrics["total_cost"] == 1300 and metrics["incremental_margin"] == pytest.approx(
        780 + 828.5 + 875.535
    )


def test_ramp_up_by_hand():
    a = roi.Assumptions(
        horizon_months=3,
        margin=1.0,
        win_rate_change=0.05,
        deal_size_change=0.10,
        churn_change=-0.5,
        leads_change=0.20,
        ramp_months=2,
    )
    cf = roi.evaluate(BASE, a).cash_flows
    # month 1 at half effect: 10 × 1.1 × 0.275 × 1050 = 3176.25 (+676.25); churn 1.5 % then 1 %, 1 %
    assert cf["sales_revenue"].to_list() == pytest.approx([0, 676.25, 1460, 1460])
    kept = [0.985, 0.985 * 0.99, 0.985 * 0.99**2]
    assert cf["recurring_revenue"].to_list()[1:] == pytest.approx(
        [10_000 * (k - 0.98**t) for t, k in enumerate(kept, start=1)]
    )
    assert cf["recurring_revenue"][1] == pytest.approx(50.0)


def test_costs_only_npv_is_an_annuity_and_nothing_pays_back():
    a = roi.Assumptions(upfront_cost=500, monthly_cost=50, horizon_months=24, discount_rate=0.10)
    r = roi.evaluate(BASE, a)
    m = 1.1 ** (1 / 12) - 1
    assert r.npv == pytest.approx(-500 - 50 * (1 - (1 + m) ** -24) / m)
    assert r.irr_monthly is None and r.payback_months is None
    notes = dict(r.metrics().select("metric", "note").iter_rows())
    assert notes["payback_months"] == "not within the 24-month horizon"
    assert "never change sign" in notes["irr_annual"]


def test_tornado_swings_against_closed_forms():
    a = roi.Assumptions(
        upfront_cost=1000,
        monthly_cost=100,
        horizon_months=12,
        discount_rate=0.10,
        margin=0.3,
        win_rate_change=0.02,
        deal_size_change=0.05,
    )
    r = roi.evaluate(BASE, a, sensitivity=0.5)
    t = r.tornado()
    assert set(t["assumption"]) == {
        "upfront_cost",
        "monthly_cost",
        "discount_rate",
        "margin",
        "win_rate_change",
        "deal_size_change",
    }  # churn and leads are 0: nothing to vary
    assert t["swing"].to_list() == sorted(t["swing"].to_list(), reverse=True)
    row = {x["assumption"]: x for x in t.iter_rows(named=True)}
    up = row["upfront_cost"]
    assert (up["low_value"], up["high_value"]) == (500, 1500)
    assert up["npv_low"] - up["npv_high"] == pytest.approx(1000)  # month 0 is not discounted
    m = 1.1 ** (1 / 12) - 1
    annuity = (1 - (1 + m) ** -12) / m
    assert row["monthly_cost"]["swing"] == pytest.approx(100 * annuity)
    # margin scales the incremental margin linearly: NPV + costs is proportional to it
    costs = 1000 + 100 * annuity
    assert (row["margin"]["npv_high"] + costs) / (row["margin"]["npv_low"] + costs) == pytest.approx(
        0.45 / 0.15
    )
    w = row["win_rate_change"]
    assert (w["low_value"], w["high_value"]) == pytest.approx((0.01, 0.03)) and w["npv_high"] > w["npv_low"]
    assert set(t["base_npv"]) == {r.npv}


def test_tornado_keeps_values_in_range():
    a = roi.Assumptions(
        horizon_months=6, margin=0.8, win_rate_change=0.6
    )  # 25 % + 60 pt, high would pass 100 %
    t = {x["assumption"]: x for x in roi.evaluate(BASE, a, sensitivity=0.5).tornado().iter_rows(named=True)}
    assert t["margin"]["high_value"] == 1.0 and t["win_rate_change"]["high_value"] == pytest.approx(0.75)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"horizon_months": 0}, "horizon_months must be from 1 to 600"),
        ({"horizon_months": -12}, "horizon_months must be from 1 to 600"),
        ({"horizon_months": 12.5}, "whole number of months"),
        ({"discount_rate": -1.0}, r"discount_rate must be above -100 % \(-1.0\)"),
        ({"discount_rate": -2.5}, r"discount_rate must be above -100 %"),
        ({"margin": 1.5}, "margin must be a fraction from 0 to 1"),
        ({"upfront_cost": -10}, "upfront_cost must be 0 or more"),
        ({"deal_size_change": -1.5}, "deal_size_change must be -1.0"),
        ({"win_rate_change": 0.9}, r"takes the measured win rate 25.0% to 115.0%"),
        ({"horizon_months": "12"}, "horizon_months must be a number"),
        ({"ramp_months": -1}, "ramp_months must be 0 or more"),
    ],
)
def test_bad_parameters_are_clear_errors(kwargs, message):
    with pytest.raises(ConfigError, match=message) as exc:
        roi.evaluate(BASE, roi.Assumptions(**kwargs))
    assert isinstance(exc.value, CrmlibError) and str(exc.value).startswith("ROI parameters:")


def test_every_problem_at_once_and_bad_sensitivity():
    with pytest.raises(ConfigError) as exc:
        roi.evaluate(BASE, roi.Assumptions(horizon_months=0, discount_rate=-1, margin=2))
    assert all(k in str(exc.value) for k in ("horizon_months", "discount_rate", "margin"))
    with pytest.raises(ConfigError, match="sensitivity must be a fraction between 0 and 1"):
        roi.evaluate(BASE, roi.Assumptions(), sensitivity=1.5)


# ---------------------------------------------------------------------------------------------------
# The measured baseline (demo fixtures, scale 0.05 seed 7)
# ---------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def crm(demo_warehouse):
    with crmlib.open(demo_warehouse) as c:
        yield c


def test_baseline_by_hand(crm, demo_frames):
    b = roi.baseline(crm, "2025-01-01", "2025-12-31")
    lo, hi = dt.date(2025, 1, 1), dt.date(2025, 12, 31)
    closed = demo_frames["opportunities"].filter(
        pl.col("is_closed") & pl.col("close_date").is_between(lo, hi)
    )
    won = (
        closed.filter(pl.col("is_won"))
        .sort("close_date")
        .join_asof(
            demo_frames["fx_rates"].sort("date"),
            left_on="close_date",
            right_on="date",
            by="currency",
            strategy="backward",
            check_sortedness=False,
        )
    )
    revenue = (won["amount"] * won["rate_to_base"]).sum()
    months = 365 / (365.25 / 12)
    assert b.months == pytest.approx(months)
    assert b.decided_deals == pytest.approx(closed.height / months)
    assert b.win_rate == pytest.approx(won.height / closed.height)
    assert b.deal_size == pytest.approx(revenue / won.height)
    assert b.revenue == pytest.approx(revenue / months)
    leads = demo_frames["leads"].filter(pl.col("created_at").dt.date().is_between(lo, hi)).height
    assert b.new_leads == pytest.approx(leads / months)
    # MRR and churn: the customer module's monthly movements over the same months
    ret = crmlib.customers.subscription_retention(crmlib.customers.load(crm, as_of=hi)).filter(
        pl.col("month").is_between(lo, hi)
    )
    assert ret.height == 12
    assert b.mrr == pytest.approx(ret["closing_mrr"][-1])
    assert b.churn == pytest.approx(
        (ret["churned_mrr"].sum() + ret["contraction_mrr"].sum()) / ret["opening_mrr"].sum()
    )
    assert 0 < b.churn < 0.1


def test_default_baseline_is_the_last_twelve_complete_months(crm):
    b = roi.baseline(crm)
    assert (b.start, b.end) == (dt.date(2025, 7, 1), dt.date(2026, 6, 30))


def test_baseline_errors(crm):
    with pytest.raises(ConfigError, match="baseline_start must be a date YYYY-MM-DD"):
        roi.baseline(crm, "2025-02-30", "2025-12-31")
    with pytest.raises(ConfigError, match="ends .* before it starts"):
        roi.baseline(crm, "2025-12-01", "2025-01-31")
    with pytest.raises(ConfigError, match="No deal was won between 2030-01-01 and 2030-12-31"):
        roi.baseline(crm, "2030-01-01", "2030-12-31")
    with pytest.raises(
        ConfigError, match="Unknown ROI parameter 'win_rate'.*Did you mean \"win_rate_change\""
    ):
        roi.calculate(crm, win_rate=0.02)


# ---------------------------------------------------------------------------------------------------
# Views
# ---------------------------------------------------------------------------------------------------
def test_views_in_both_languages():
    from crmlib import charts_roi

    r = roi.evaluate(
        BASE,
        roi.Assumptions(
            upfront_cost=1000, monthly_cost=100, horizon_months=12, margin=0.5, win_rate_change=0.05
        ),
    )  # +150 a month: pays back after 6.7 months
    assert r.payback_months == pytest.approx(1000 / 150)
    cards = charts_roi.roi_cards(r.metrics(), lang="en")._repr_html_()
    assert format_value(r.npv, "currency", 0, "en") in cards and f"{r.irr_annual * 100:.1f}%" in cards
    assert f"{r.payback_months:.1f} months" in cards
    none = roi.evaluate(BASE, roi.Assumptions(upfront_cost=500, horizon_months=3))
    zh = charts_roi.roi_cards(none.metrics(), lang="zh")._repr_html_()
    assert "无法计算" in zh and "期限内无法回收" in zh
    assert "赢单率" in charts_roi.fmt_baseline(r.baseline_table(), lang="zh").as_raw_html()
    fig = charts_roi.plot_tornado(r.tornado(), lang="zh")
    assert fig.layout.title.text.startswith("净现值敏感性") and len(fig.data) == 2
    assert charts_roi.plot_tornado(roi.evaluate(BASE, roi.Assumptions()).tornado()).layout.annotations
    cf = charts_roi.plot_cash_flows(r.cash_flows, lang="en", payback_months=r.payback_months)
    assert [t.name for t in cf.data] == [
        "Incremental margin",
        "Cost",
        "Cumulative cash flow",
        "Cumulative discounted",
    ]


# ---------------------------------------------------------------------------------------------------
# The notebook
# ---------------------------------------------------------------------------------------------------
def test_notebook_is_thin_and_stored_without_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code, body = stored_parameters(nb, "ROI calculator", PARAMETERS)
    # simple scalars only, so that a dashboard can offer them as widgets
    assert all(isinstance(n, ast.AnnAssign) for n in body)
    assert all(type(ast.literal_eval(n.value)).__name__ == n.annotation.id for n in body)  # typed literals
    assert {n.annotation.id for n in body} <= {"str", "int", "float", "bool"}
    assert_thin_sections(nb, code)


def test_papermill_reads_the_parameters_and_run_definitions_exist():
    import papermill

    got = papermill.inspect_notebook(str(NOTEBOOK))
    assert list(got) == list(PARAMETERS) and all(got[p]["help"] for p in PARAMETERS)
    defaults = {
        n.target.id: ast.literal_eval(n.value)
        for n in ast.parse(
            [c for c in nbformat.read(NOTEBOOK, as_version=4).cells if c.cell_type == "code"][0].source
        ).body
    }
    for suffix, lang in (("", "en"), ("_zh", "zh")):
        spec = yaml.safe_load((ROOT / "parameters" / f"roi{suffix}.yaml").read_text(encoding="utf-8"))
        assert spec["name"] == f"roi{suffix}" and spec["notebook"] == "notebooks/roi.ipynb"
        assert spec["parameters"]["lang"] == lang and spec["formats"] == ["ipynb", "html"]
        assert set(spec["parameters"]) <= set(PARAMETERS)
        assert all(type(v) is type(defaults[k]) for k, v in spec["parameters"].items())


@pytest.mark.slow
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_notebook_runs_under_papermill(lang, demo_warehouse, tmp_path, monkeypatch):
    import papermill

    monkeypatch.setenv("CRMLIB_SOURCE", str(demo_warehouse))
    out = tmp_path / "roi.ipynb"
    params = {
        "lang": lang,
        "interactive": False,
        "upfront_cost": 200000.0,
        "monthly_cost": 5000.0,
        "horizon_months": 24,
        "win_rate_change": 0.02,
        "deal_size_change": 0.05,
        "ramp_months": 3,
    }
    papermill.execute_notebook(
        str(NOTEBOOK),
        str(out),
        parameters=params,
        kernel_name="python3",
        progress_bar=False,
        cwd=str(NOTEBOOK.parent),
    )
    nb = nbformat.read(out, as_version=4)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error" or o.get("name") == "stderr"]
    setup = next(i for i, c in enumerate(nb.cells) if "crmlib.notebook.start" in c.source)
    assert all(c.get("outputs") for c in nb.cells[setup + 1 :] if c.cell_type == "code")
    text = "\n".join(
        str(o.get("data", {}).get("text/html", ""))
        + json.dumps(o.get("data", {}).get("application/vnd.plotly.v1+json", ""), ensure_ascii=False)
        for o in outputs
    )
    with crmlib.open(demo_warehouse) as crm:
        b = roi.baseline(crm)
    hand = roi.evaluate(
        b,
        roi.Assumptions(
            upfront_cost=200000.0,
            monthly_cost=5000.0,
            horizon_months=24,
            discount_rate=0.1,
            margin=0.3,
            win_rate_change=0.02,
            deal_size_change=0.05,
            churn_change=-0.1,
            ramp_months=3,
        ),
    )
    assert format_value(hand.npv, "currency", 0, lang) in text
    assert sum("application/vnd.plotly.v1+json" in o.get("data", {}) for o in outputs) == 2
    if lang == "zh":
        assert "净现值" in text and "回收期" in text and CJK.search(text) and "Payback" not in text
    else:
        assert "NPV" in text and "Payback" in text and "Sensitivity of the NPV" in text
