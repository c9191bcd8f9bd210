"""crmlib.charts_sales and crmlib.tables_sales: a figure or table for every analytic, in English and Chinese,
and a clear message instead of an empty chart (data: tests/sales_fixture.py)."""

from __future__ import annotations

import re

import plotly.graph_objects as go
import pytest
from great_tables import GT
from sales_fixture import write_hand_warehouse

import crmlib
from crmlib import charts_sales as C
from crmlib import performance as P
from crmlib import sales as S
from crmlib import tables_sales as TB
from crmlib.cards import Cards

Q1 = {"start": "2025-01-01", "end": "2025-03-31"}
CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture(scope="module")
def crm(tmp_path_factory):
    with crmlib.open(write_hand_warehouse(tmp_path_factory.mktemp("charts"))) as c:
        yield c


CHARTS = [
    ("trends", lambda crm, **kw: S.trends(crm, grain="month", **kw), C.plot_trends),
    ("funnel", S.funnel, C.plot_funnel),
    ("forecast", S.forecast, C.plot_forecast),
    ("coverage", lambda crm, **kw: S.pipeline_coverage(crm, grain="month", **kw), C.plot_coverage),
    ("accuracy", lambda crm, **kw: S.forecast_accuracy(crm, grain="month", **kw), C.plot_forecast_accuracy),
    ("velocity", lambda crm, **kw: S.velocity(crm, grain="month", **kw), C.plot_velocity),
    ("lost", S.lost_reasons, C.plot_lost_reasons),
    ("leaderboard", P.leaderboard, C.plot_leaderboard),
    ("attainment", lambda crm, **kw: P.attainment(crm, "revenue", "team", **kw), C.plot_attainment),
    ("attainment per month", lambda crm, **kw: P.attainment(crm, "revenue", "user", grain="month", **kw),
     C.plot_attainment),
    ("treemap", P.contribution_tree, C.plot_contribution_treemap),
    ("waterfall", lambda crm, **kw: P.contribution(crm, "revenue", "department", "company", **kw),
     C.plot_contribution_waterfall),
    ("activity", P.activity, C.plot_activity),
]


def _texts(fig: go.Figure) -> str:
    return str(fig.to_plotly_json())  # unicode as it is (to_json escapes it)


@pytest.mark.parametrize("name, compute, plot", CHARTS, ids=[c[0] for c in CHARTS])
def test_every_chart_in_english_and_chinese(crm, name, compute, plot):
    frame = compute(crm, **Q1)
    en, zh = plot(frame, lang="en"), plot(frame, lang="zh")
    assert isinstance(en, go.Figure) and isinstance(zh, go.Figure)
    assert en.data, name  # something is drawn
    assert en.layout.title.text and not CJK.search(en.layout.title.text)
    assert CJK.search(zh.layout.title.text), zh.layout.title.text
    assert "No data" not in _texts(en)
    empty = plot(frame.clear(), lang="zh")
    assert "当前筛选条件下没有数据" in _texts(empty) and not empty.data


@pytest.mark.parametrize("name, compute, plot", CHARTS, ids=[c[0] for c in CHARTS])
def test_every_chart_has_the_white_template_whatever_plotlys_default(crm, name, compute, plot, monkeypatch):
    """crmlib.charts.template: charts set plotly_white themselves under plotly's own default template,
    and take it from the default where crmlib.notebook.start made it plotly_white (cheaper): the same
    figure either way, in its JSON too."""
    import json

    import plotly.io as pio

    frame = compute(crm, **Q1)
    monkeypatch.setattr(pio.templates, "default", "plotly")
    own = plot(frame, lang="en")
    monkeypatch.setattr(pio.templates, "default", "plotly_white")
    default = plot(frame, lang="en")
    white = pio.templates["plotly_white"].to_plotly_json()
    assert own.layout.template.to_plotly_json() == white
    assert json.loads(default.to_json()) == json.loads(own.to_json())


def test_notebook_start_makes_the_charts_template_plotlys_default(monkeypatch, tmp_path):
    import plotly.io as pio

    monkeypatch.setattr(pio.templates, "default", "plotly")
    monkeypatch.setattr(pio.renderers, "default", pio.renderers.default)
    crmlib.notebook.start(str(write_hand_warehouse(tmp_path)), interactive=False).close()
    assert pio.templates.default == "plotly_white"


def test_funnel_chart_keeps_pipeline_order_and_shows_drop_off(crm):
    fig = C.plot_funnel(S.funnel(crm, **Q1), lang="zh")
    assert list(fig.data[0].y) == ["初步接洽", "资格确认", "需求分析", "方案报价", "商务谈判", "赢单"]
    assert list(fig.data[0].x) == [9, 6, 4, 4, 3, 2]
    assert any("流失 33%" in a.text for a in fig.layout.annotations)  # 6 of 9 went on: 1/3 dropped


def test_forecast_chart_adds_up_to_the_forecast_against_quota(crm):
    fig = C.plot_forecast(S.forecast(crm, **Q1), lang="en")
    assert list(fig.data[0].y) == [1800, 1200, 0, 800]
    assert any("Quota" in (a.text or "") for a in fig.layout.annotations)


def test_tables_in_english_and_chinese(crm):
    stalled = S.stalled_deals(crm, **Q1)
    for lang, word in (("en", "Days stalled"), ("zh", "停滞天数")):
        html = TB.fmt_stalled_deals(stalled, lang=lang).as_raw_html()
        assert word in html and "Deal o3" in html and "Bob" in html
    assert "阶段停留过久" in TB.fmt_stalled_deals(stalled, lang="zh").as_raw_html()
    assert "2 more" in TB.fmt_stalled_deals(stalled, limit=1).as_raw_html()
    lb = P.leaderboard(crm, **Q1)
    html = TB.fmt_leaderboard(lb, lang="zh").as_raw_html()
    assert "排行榜" in html and "▲ 1" in html and "▼ 2" in html and "未达标" in html
    assert isinstance(TB.fmt_activity(P.activity(crm, **Q1), lang="zh"), GT)
    cascade = TB.fmt_cascade(P.cascade(crm, **Q1), lang="en").as_raw_html()
    assert "Targets add up at every level." in cascade


def test_empty_tables_say_so(crm):
    assert isinstance(TB.fmt_stalled_deals(S.stalled_deals(crm, **Q1).clear(), lang="en"), Cards)
    assert "没有停滞商机" in TB.fmt_stalled_deals(S.stalled_deals(crm, **Q1, team="T9"), lang="zh").html
    assert "No data" in TB.fmt_leaderboard(P.leaderboard(crm, **Q1, team="T9")).html
    assert "No data" in TB.fmt_activity(P.activity(crm, **Q1, team="T9")).html


def test_long_series_drop_markers_and_bar_labels(crm):
    # a quarter by day (90 points): lines without markers, bars without printed labels (values on hover);
    # by month (3 points): markers and labels
    for grain, mode, text in (("day", "lines", "none"), ("month", "lines+markers", "outside")):
        trends = C.plot_trends(S.trends(crm, grain=grain, **Q1), lang="en")
        actual = [t for t in trends.data if t.name == "Actual"]
        assert actual and {t.mode for t in actual} == {mode}, grain
        velocity = C.plot_velocity(S.velocity(crm, grain=grain, **Q1), lang="en")
        assert velocity.data[0].textposition == text and len(velocity.data[0].text) == len(velocity.data[0].y)
        coverage = C.plot_coverage(S.pipeline_coverage(crm, grain=grain, **Q1), lang="en")
        assert coverage.data[0].textposition == text and coverage.data[2].mode == mode
