"""The executive summary (crmlib.executive, tables/charts_executive, notebooks/executive.ipynb).

Numbers on the page are checked against polars computed here, independently of the engine, on the demo
fixtures (scale 0.05, seed 7): headline revenue (won amounts converted at the latest rate on or before
the close date), its company target, CSAT (answers scoring 4-5 / answers, by answer time), reps on target
and team revenue risks. Risks come from crmlib.alerts when it exists (a monkeypatched top_alerts here) and
from the engine's status otherwise. The notebook runs under papermill in en and zh, and the report runner
writes HTML that draws offline and a PDF with the title on its first page.
"""

from __future__ import annotations

import ast
import datetime as dt
import importlib
import json
import re
import shutil
from pathlib import Path

import nbformat
import polars as pl
import pytest
import yaml
from notebook_checks import assert_thin_sections, stored_parameters

import crmlib
from crmlib import executive
from crmlib.cards import format_value
from crmlib.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "executive.ipynb"
PARAMETERS = ("source", "as_of", "grain", "periods", "targets", "lang", "interactive")
CJK = re.compile(r"[\u4e00-\u9fff]")
JUNE, MAY = dt.date(2026, 6, 1), dt.date(2026, 5, 1)


# ---------------------------------------------------------------------------------------------------
# Independent computations on the demo frames
# ---------------------------------------------------------------------------------------------------
def won_amounts(frames, lo: dt.date, hi: dt.date) -> pl.DataFrame:
    """Won deals closed in [lo, hi] with ``base`` = amount × the latest fx rate on or before the close date."""
    opp = (
        frames["opportunities"]
        .filter(pl.col("is_won") & pl.col("close_date").is_between(lo, hi))
        .sort("close_date")
    )
    fx = frames["fx_rates"].sort("date")
    got = opp.join_asof(
        fx, left_on="close_date", right_on="date", by="currency", strategy="backward", check_sortedness=False
    )  # both sorted by date
    assert got["rate_to_base"].null_count() == 0
    return got.with_columns((pl.col("amount") * pl.col("rate_to_base")).alias("base"))


def last_day(frames) -> dt.date:
    days = [frames[t][c].max() for t, c in executive.FACT_TIMES.items()]
    return max(d.date() if isinstance(d, dt.datetime) else d for d in days if d is not None)


def month_end(first: dt.date) -> dt.date:
    nxt = (first.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return nxt - dt.timedelta(days=1)


@pytest.fixture(scope="module")
def crm(demo_warehouse):
    with crmlib.open(demo_warehouse) as c:
        yield c


@pytest.fixture(scope="module")
def summary(crm):
    return executive.summarize(crm)  # as_of: the last day with data (2026-06-30), month grain, 12 periods


@pytest.fixture(scope="module")
def may(crm):
    """A summary whose current period is a complete month (May 2026)."""
    return executive.summarize(crm, as_of="2026-05-31", periods=6)


# ---------------------------------------------------------------------------------------------------
# Headline numbers against hand computations
# ---------------------------------------------------------------------------------------------------
def test_default_as_of_is_the_last_day_with_data(summary, demo_frames):
    assert summary.as_of == last_day(demo_frames) == dt.date(2026, 6, 30)
    assert summary.current == JUNE and summary.previous == MAY and summary.first == dt.date(2025, 7, 1)
    assert summary.period_label == "2026-06"


def test_headline_revenue_equals_won_amounts_in_base_currency(summary, demo_frames):
    card = summary.scorecard().filter(pl.col("kpi") == "revenue").row(0, named=True)
    june = won_amounts(demo_frames, JUNE, dt.date(2026, 6, 30))
    may_ = won_amounts(demo_frames, MAY, dt.date(2026, 5, 31))
    assert june.height > 0 and june["currency"].n_unique() >= 1
    assert card["value"] == pytest.approx(june["base"].sum(), rel=1e-9)
    assert card["comparison"] == pytest.approx(may_["base"].sum(), rel=1e-9)
    assert card["delta"] == pytest.approx(june["base"].sum() - may_["base"].sum(), rel=1e-9)
    tg = demo_frames["targets"].filter(
        (pl.col("kpi") == "revenue")
        & (pl.col("level") == "company")
        & (pl.col("grain") == "month")
        & (pl.col("period") == JUNE)
    )
    assert card["target"] == pytest.approx(tg["value"].item())
    att = june["base"].sum() / tg["value"].item()
    assert card["attainment"] == pytest.approx(att)
    # a complete month: status from the value itself (>= 1 on track, >= 0.9 at risk)
    assert card["status"] == ("on_track" if att >= 1 else "at_risk" if att >= 0.9 else "off_track")
    # the trend holds the twelve monthly revenues, oldest first
    first = won_amounts(demo_frames, dt.date(2025, 7, 1), dt.date(2025, 7, 31))["base"].sum()
    assert len(card["trend"]) == 12 and card["trend"][0] == pytest.approx(first, rel=1e-9)


def test_service_kpi_csat_equals_satisfied_answers_over_answers(summary, demo_frames):
    card = summary.scorecard().filter(pl.col("kpi") == "csat").row(0, named=True)
    for first, value in ((JUNE, card["value"]), (MAY, card["comparison"])):
        lo = dt.datetime.combine(first, dt.time())
        hi = dt.datetime.combine(month_end(first) + dt.timedelta(days=1), dt.time())
        answers = demo_frames["surveys"].filter(
            (pl.col("type") == "csat")
            & pl.col("score").is_not_null()
            & (pl.col("responded_at") >= lo)
            & (pl.col("responded_at") < hi)
        )
        assert answers.height > 0
        assert value == pytest.approx((answers["score"] >= 4).sum() / answers.height)
    assert (
        card["area"] == "service" and card["target"] is None and card["status"] is None
    )  # team targets only


def test_reps_on_target_share_by_hand(may, demo_frames):
    """Complete month: a rep is on track when revenue >= its monthly target."""
    won = won_amounts(demo_frames, MAY, dt.date(2026, 5, 31)).group_by("owner_id").agg(pl.col("base").sum())
    tg = demo_frames["targets"].filter(
        (pl.col("kpi") == "revenue")
        & (pl.col("level") == "user")
        & (pl.col("grain") == "month")
        & (pl.col("period") == MAY)
    )
    reps = tg.join(won, left_on="entity_id", right_on="owner_id", how="left").with_columns(
        pl.col("base").fill_null(0.0)
    )
    share = (reps["base"] >= reps["value"]).mean()
    card = may.scorecard().filter(pl.col("kpi") == executive.REPS_ON_TARGET).row(0, named=True)
    assert reps.height > 10 and card["value"] == pytest.approx(share)


def test_scorecard_has_every_area_in_order_and_changes_know_the_good_direction(summary):
    sc = summary.scorecard()
    assert sc["kpi"].to_list() == [k for _, k in executive.HEADLINE]
    assert sc["area"].unique(maintain_order=True).to_list() == [
        "sales",
        "performance",
        "marketing",
        "service",
        "customers",
    ]
    ch = summary.changes()
    for r in ch.iter_rows(named=True):
        direction = sc.filter(pl.col("kpi") == r["kpi"])["direction"].item()
        assert r["better"] == ((r["delta"] > 0) if direction == "higher" else (r["delta"] < 0))
    rel = ch["delta_pct"].abs().drop_nulls().to_list()
    assert rel == sorted(rel, reverse=True)


# ---------------------------------------------------------------------------------------------------
# Risks: alerts when they exist, off-track KPIs otherwise
# ---------------------------------------------------------------------------------------------------
def test_fallback_risks_are_the_off_track_kpis(may, demo_frames, monkeypatch):
    monkeypatch.setattr(executive, "_alerts_function", lambda: None)
    risks = may.risks(n=50)
    assert set(risks["source"]) == {"kpi_status"}
    sc = may.scorecard()
    flagged = sc.filter(pl.col("status").is_in(["off_track", "at_risk"]))
    company = risks.filter(pl.col("scope") == "Company")
    assert sorted(company["kpi"]) == sorted(flagged["kpi"])
    for r in company.iter_rows(named=True):
        row = flagged.filter(pl.col("kpi") == r["kpi"]).row(0, named=True)
        assert r["severity"] == ("high" if row["status"] == "off_track" else "medium")
        assert r["value"] == row["value"] and r["expected"] == row["target"]
    # teams whose May revenue is below 90 % of their target (computed here) are all listed
    won = won_amounts(demo_frames, MAY, dt.date(2026, 5, 31))
    users = demo_frames["users"].select(pl.col("user_id").alias("owner_id"), "team_id")
    by_team = won.join(users, on="owner_id").group_by("team_id").agg(pl.col("base").sum())
    tg = demo_frames["targets"].filter(
        (pl.col("kpi") == "revenue")
        & (pl.col("level") == "team")
        & (pl.col("grain") == "month")
        & (pl.col("period") == MAY)
    )
    teams = tg.join(by_team, left_on="entity_id", right_on="team_id", how="left").with_columns(
        pl.col("base").fill_null(0.0)
    )
    off = sorted(teams.filter(pl.col("base") / pl.col("value") < 0.9)["entity_id"])
    listed = sorted(
        re.match(r"Team (\S+)", s).group(1)
        for s in risks.filter((pl.col("kpi") == "revenue") & pl.col("scope").str.starts_with("Team"))["scope"]
    )
    assert off and listed == off
    assert risks["severity"].to_list() == sorted(risks["severity"].to_list(), key=lambda s: s != "high")
    assert all(r["since"] is None or r["since"] <= MAY for r in risks.iter_rows(named=True))
    assert may.risks(n=2).height == 2


def test_since_is_the_start_of_the_current_run_off_track():
    status = pl.DataFrame(
        {
            "kpi": ["k"] * 5,
            "period": [dt.date(2026, m, 1) for m in range(1, 6)],
            "status": ["off_track", "on_track", "at_risk", "off_track", "off_track"],
        }
    )
    got = executive._since(status, dt.date(2026, 5, 1))
    assert got.row(0) == ("k", dt.date(2026, 3, 1))
    none_ok = status.with_columns(pl.lit("off_track").alias("status"))
    assert executive._since(none_ok, dt.date(2026, 5, 1)).row(0) == ("k", dt.date(2026, 1, 1))


def test_alerts_are_used_when_they_exist(may, monkeypatch):
    calls = []

    def fake_top_alerts(crm, as_of=None, n=5, lang="en"):
        calls.append((as_of, n, lang))
        return pl.DataFrame(
            {
                "severity": ["critical", "warning"],
                "kind": ["rule", "anomaly"],
                "kpi": ["sla_compliance", "new_leads"],
                "scope": ["team=T11, priority=high", "region=South"],
                "message": ["SLA 61 % below 90 %", "leads dropped"],
                "value": [0.61, 120.0],
                "threshold": [0.9, None],
                "expected": [None, 480.0],
                "since": ["2026-04-01", None],
            }
        )

    monkeypatch.setattr(executive, "_alerts_function", lambda: fake_top_alerts)
    risks = may.risks(n=5)
    assert calls == [(dt.date(2026, 5, 31), 5, "en")]
    assert risks.columns == list(executive.RISK_SCHEMA)
    assert risks["source"].to_list() == ["alerts", "alerts"]
    assert risks["severity"].to_list() == ["critical", "warning"]
    assert risks["expected"].to_list() == [0.9, 480.0]  # threshold, else expected
    assert risks["since"].to_list() == [dt.date(2026, 4, 1), None]
    from crmlib.tables_executive import fmt_risks

    html = fmt_risks(risks, lang="zh").as_raw_html()
    assert "严重" in html and "预警模块" in html and "SLA 61 % below 90 %" in html


def test_alerts_module_lookup(monkeypatch):
    spec = importlib.util.find_spec("crmlib.alerts")
    got = executive._alerts_function()
    if spec is None:
        assert got is None
    else:
        assert got is importlib.import_module("crmlib.alerts").top_alerts
    real = importlib.import_module

    def missing(name, *a, **k):
        if name == "crmlib.alerts":
            raise ModuleNotFoundError("No module named 'crmlib.alerts'", name="crmlib.alerts")
        return real(name, *a, **k)

    monkeypatch.setattr(importlib, "import_module", missing)
    assert executive._alerts_function() is None

    def broken(name, *a, **k):  # alerts exists but needs something missing: that is a bug, not "no alerts"
        if name == "crmlib.alerts":
            raise ModuleNotFoundError("No module named 'sklearn'", name="sklearn")
        return real(name, *a, **k)

    monkeypatch.setattr(importlib, "import_module", broken)
    with pytest.raises(ModuleNotFoundError, match="sklearn"):
        executive._alerts_function()


# ---------------------------------------------------------------------------------------------------
# Opportunities
# ---------------------------------------------------------------------------------------------------
def test_opportunities_come_from_the_area_functions(summary, crm):
    opp = summary.opportunities(n=3)
    assert opp["kind"].unique(maintain_order=True).to_list() == ["momentum", "campaign", "rescue"]
    better = summary.changes().filter(pl.col("better")).head(3)
    assert opp.filter(pl.col("kind") == "momentum")["item"].to_list() == better["label"].to_list()
    stalled = crmlib.sales.stalled_deals(crm, end="2026-06-30").head(3)
    assert stalled.height >= 1
    assert opp.filter(pl.col("kind") == "rescue")["value"].to_list() == stalled["amount"].to_list()
    fun = crmlib.marketing.funnel(crm, summary.first, summary.as_of, by="campaign")
    camp = opp.filter(pl.col("kind") == "campaign")
    rates = camp["value"].to_list()
    assert rates == sorted(rates, reverse=True)
    for r in camp.iter_rows(named=True):
        cid = re.search(r"\((C\d+)\)$", r["item"]).group(1)
        counts = dict(fun.filter(pl.col("campaign_id") == cid).select("step", "count").iter_rows())
        assert counts["lead"] >= executive.MIN_CAMPAIGN_LEADS and counts["won"] > 0
        assert r["value"] == pytest.approx(counts["won"] / counts["lead"])
    # no campaign with at least that many leads converts better than the ones shown
    lead_counts = fun.filter(
        (pl.col("step") == "lead")
        & pl.col("campaign_id").is_not_null()
        & (pl.col("count") >= executive.MIN_CAMPAIGN_LEADS)
    )
    won_counts = fun.filter(pl.col("step") == "won").select("campaign_id", pl.col("count").alias("won"))
    all_rates = lead_counts.join(won_counts, on="campaign_id").select(pl.col("won") / pl.col("count"))["won"]
    assert camp.height >= 1 and max(rates) == pytest.approx(all_rates.max())


# ---------------------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"grain": "day"}, "too fine for an executive summary"),
        ({"grain": "fortnight"}, "grain"),
        ({"periods": 1}, "periods must be a whole number from 2 to 60"),
        ({"periods": 2.5}, "periods must be a whole number"),
        ({"as_of": "2026-13-01"}, "as_of"),
        ({"lang": "fr"}, "Language 'fr' is not supported"),
    ],
)
def test_bad_parameters_are_clear_errors(crm, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        executive.summarize(crm, **kwargs)


# ---------------------------------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------------------------------
def test_views_render_in_both_languages(summary):
    from crmlib import charts_executive, tables_executive

    html = tables_executive.fmt_scorecard(summary.scorecard(), lang="en").as_raw_html()
    assert "Headline KPIs" in html and "<svg" in html  # sparklines are inline SVG (no script)
    rev = summary.scorecard().filter(pl.col("kpi") == "revenue").row(0, named=True)
    assert format_value(rev["value"], "currency", 0, "en") in html
    zh = executive.summarize(summary.crm, lang="zh")
    html_zh = tables_executive.fmt_scorecard(zh.scorecard(), lang="zh").as_raw_html()
    assert (
        "核心指标" in html_zh
        and "销售额" in html_zh
        and format_value(rev["value"], "currency", 0, "zh") in html_zh
    )
    fig = charts_executive.plot_trends(summary.trends(), lang="zh")
    assert len({t.xaxis for t in fig.data}) == len(executive.HEADLINE)  # one panel per KPI
    ch = charts_executive.plot_changes(summary.changes(), lang="en")
    assert ch.data[0].marker.color  # coloured by better/worse


# ---------------------------------------------------------------------------------------------------
# The notebook
# ---------------------------------------------------------------------------------------------------
def test_notebook_is_thin_and_stored_without_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code, body = stored_parameters(nb, "Executive summary", PARAMETERS)
    assert all(isinstance(n, ast.AnnAssign) and isinstance(n.value, ast.Constant) for n in body)
    assert_thin_sections(nb, code)


def test_papermill_reads_the_parameters_and_run_definitions_exist():
    import papermill

    got = papermill.inspect_notebook(str(NOTEBOOK))
    assert list(got) == list(PARAMETERS) and all(got[p]["help"] for p in PARAMETERS)
    for suffix, lang in (("", "en"), ("_zh", "zh")):
        spec = yaml.safe_load((ROOT / "parameters" / f"executive{suffix}.yaml").read_text(encoding="utf-8"))
        assert spec["name"] == f"executive{suffix}" and spec["notebook"] == "notebooks/executive.ipynb"
        # HTML in the repository's definitions: `make report` must work without Chromium (PDF added where it is)
        assert spec["parameters"]["lang"] == lang and spec["formats"] == ["ipynb", "html"]
        assert set(spec["parameters"]) <= set(PARAMETERS)


def _text(nb) -> str:
    parts = []
    for c in nb.cells:
        for o in c.get("outputs", []):
            d = o.get("data", {})
            parts += [
                str(d.get("text/html", "")),
                json.dumps(d.get("application/vnd.plotly.v1+json", ""), ensure_ascii=False),
                str(o.get("text", "")),
            ]
    return "\n".join(parts)


@pytest.mark.slow
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_notebook_runs_under_papermill(lang, demo_warehouse, demo_frames, tmp_path, monkeypatch):
    import papermill

    monkeypatch.setenv("CRMLIB_SOURCE", str(demo_warehouse))
    out = tmp_path / "executive.ipynb"
    papermill.execute_notebook(
        str(NOTEBOOK),
        str(out),
        parameters={"lang": lang, "interactive": False},
        kernel_name="python3",
        progress_bar=False,
        cwd=str(NOTEBOOK.parent),
    )
    nb = nbformat.read(out, as_version=4)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error" or o.get("name") == "stderr"]
    setup = next(i for i, c in enumerate(nb.cells) if "crmlib.notebook.start" in c.source)
    assert all(c.get("outputs") for c in nb.cells[setup + 1 :] if c.cell_type == "code")
    text = _text(nb)
    june = won_amounts(demo_frames, JUNE, dt.date(2026, 6, 30))["base"].sum()
    assert format_value(june, "currency", 0, lang) in text  # the headline revenue, computed here
    assert sum("application/vnd.plotly.v1+json" in o.get("data", {}) for o in outputs) == 2
    if lang == "zh":
        assert "核心指标" in text and "主要风险" in text and "主要机会" in text and CJK.search(text)
        assert "Headline KPIs" not in text and "Top risks" not in text
    else:
        assert "Headline KPIs" in text and "Top opportunities" in text


# ---------------------------------------------------------------------------------------------------
# The reports: HTML drawn offline, PDF with the title on page 1
# ---------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def report_run(tmp_path_factory, demo_warehouse):
    """`crmlib report run executive executive_zh roi roi_zh` in a copy of the project (its own outputs)."""
    from browser import require_chinese_font, require_chromium

    from crmlib import reports

    require_chromium()
    require_chinese_font()  # executive_zh is printed to PDF too
    home = tmp_path_factory.mktemp("exec-home")
    for sub in ("parameters", "notebooks"):
        (home / sub).mkdir()
    for name in ("executive", "roi"):
        shutil.copy(ROOT / "notebooks" / f"{name}.ipynb", home / "notebooks")
        for suffix in ("", "_zh"):
            spec = yaml.safe_load((ROOT / "parameters" / f"{name}{suffix}.yaml").read_text(encoding="utf-8"))
            if name == "executive":  # as a company with Chromium sets it up: the CEO page as PDF too
                spec["formats"] = [*spec["formats"], "pdf"]
            (home / "parameters" / f"{name}{suffix}.yaml").write_text(yaml.safe_dump(spec), encoding="utf-8")
    for path in (ROOT / "parameters").glob(
        "*.yaml"
    ):  # settings the notebooks read (calendar, SLA, alert rules)
        if "notebook" not in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}):
            shutil.copy(path, home / "parameters")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CRMLIB_HOME", str(home))
        for var in ("CRMLIB_OUTPUTS", "CRMLIB_SOURCE", "CRMLIB_DB_URL"):
            mp.delenv(var, raising=False)
        result = reports.run_reports(
            ["executive", "executive_zh", "roi", "roi_zh"], source=str(demo_warehouse)
        )
    assert result.status == "ok", [r.error for r in result.reports]
    return result


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.parametrize(
    "name, title, charts",
    [
        ("executive", "Executive summary · 经营摘要", 2),
        ("executive_zh", "Executive summary · 经营摘要", 2),
        ("roi", "ROI calculator · 投资回报测算", 2),
        ("roi_zh", "ROI calculator · 投资回报测算", 2),
    ],
)
def test_html_report_draws_every_chart_offline(report_run, name, title, charts):
    from browser import offline_page

    html = report_run.folder / f"{name}.html"
    text = html.read_text(encoding="utf-8")
    assert text.count('class="plotly-graph-div"') == charts
    assert "crmlib.notebook.start" not in text and not re.findall(r'<script[^>]+src="https?:', text)
    with offline_page() as page:
        page.goto(html.as_uri(), wait_until="load")
        drawn = page.evaluate("""() => Array.from(document.querySelectorAll('.js-plotly-plot')).map(p => ({
            svg: p.querySelectorAll('.main-svg').length, traces: p.querySelectorAll('g.trace').length}))""")
        assert page.blocked == [] and page.errors == []
        assert page.title() == title
        assert page.locator("text=crmlib.roi.calculate").count() == 0
    assert len(drawn) == charts and all(d["svg"] >= 1 and d["traces"] >= 1 for d in drawn), drawn


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.parametrize("name", ["executive", "executive_zh"])
def test_pdf_report_has_the_title_on_its_first_page(report_run, name, demo_frames):
    from pypdf import PdfReader

    pdf = report_run.folder / f"{name}.pdf"
    assert pdf.stat().st_size > 10_000
    first = PdfReader(pdf).pages[0].extract_text()
    assert "Executive summary" in first
    assert "crmlib.executive.summarize" not in "\n".join(p.extract_text() for p in PdfReader(pdf).pages)
    assert "Headline KPIs" in first  # the scorecard starts on page 1, under the title
    june = won_amounts(demo_frames, JUNE, dt.date(2026, 6, 30))["base"].sum()
    if name == "executive":
        assert "Revenue" in first and format_value(june, "currency", 0, "en") in first
        assert "Active accounts" in first  # the whole scorecard fits on page 1
    else:  # printed with a Chinese font (the run checks there is one): the Chinese labels are text
        assert "核心指标" in first and "销售额" in first and "客户满意度" in first
        assert format_value(june, "currency", 0, "zh").replace(" ", "") in first.replace(" ", "")
    meta = json.loads((report_run.folder / "run.json").read_text())
    files = {r["name"]: r["files"] for r in meta["reports"]}
    assert files[name] == [f"{name}.ipynb", f"{name}.html", f"{name}.pdf"]
    assert files["roi"] == ["roi.ipynb", "roi.html"]
