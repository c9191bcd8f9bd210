"""The Dashboard: static sections for papermill, reactive widgets for Voila."""

import json

import plotly.graph_objects as go
import polars as pl
import pytest

from crmlib.cards import Cards
from crmlib.chart_widget import Chart, plotly_js
from crmlib.dashboard import Dashboard, download_links, records_view
from crmlib.errors import ConfigError

CALLS: list[tuple[str, dict]] = []


def by_team(crm, *, start, team=""):
    CALLS.append(("by_team", {"start": start, "team": team}))
    rows = {"T1": 3, "T2": 5}
    keep = [t for t in rows if team in ("", t)]
    return pl.DataFrame({"team": keep, "n": [rows[t] for t in keep]}, schema={"team": pl.String, "n": pl.Int64})


def by_start(crm, *, start):
    CALLS.append(("by_start", {"start": start}))
    return pl.DataFrame({"x": [1]})


def plot(frame, lang="en"):
    if frame.height == 0:
        raise ValueError("nothing to draw")  # a renderer without an empty state: the dashboard says so
    return go.Figure(go.Bar(x=frame["team"].to_list(), y=frame["n"].to_list()),
                     layout={"title": {"text": "Deals" if lang == "en" else "商机"}})


def broken(crm, *, team):
    raise ZeroDivisionError("boom")


def unhappy(crm, *, team):
    raise ConfigError("Team T9 does not exist.")


@pytest.fixture(autouse=True)
def _clear():
    CALLS.clear()


def test_static_sections_return_plain_output():
    dash = Dashboard(None, start="2025-01-01", team="", lang="en", interactive=False)
    fig = dash.show(by_team, plot)
    assert isinstance(fig, go.Figure) and not isinstance(fig, go.FigureWidget)
    assert list(fig.data[0].y) == [3, 5]
    assert CALLS == [("by_team", {"start": "2025-01-01", "team": ""})]  # only the filters it takes
    assert "From: 2025-01-01" in dash.filter_bar().html
    zh = Dashboard(None, start="2025-01-01", grain="quarter", lang="zh", interactive=False).filter_bar().html
    assert "开始: 2025-01-01" in zh and "粒度: 季度" in zh  # a report's caption in its language


def test_empty_and_failing_sections_say_so_without_traceback():
    dash = Dashboard(None, start="2025-01-01", team="T9", lang="zh", interactive=False)
    assert "没有数据" in dash.show(by_team, plot).html
    failed = dash.show(broken)
    assert isinstance(failed, Cards) and "此部分无法计算" in failed.html and "Traceback" not in failed.html
    assert "Team T9 does not exist." in dash.show(unhappy).html


def test_interactive_updates_only_affected_sections_in_place():
    dash = Dashboard(None, start="2025-01-01", team="", lang="en", interactive=True)
    dash.show(by_team, plot)
    dash.show(by_start)
    chart = dash._sections[0].figure
    assert isinstance(chart, Chart)
    sent = []
    chart.observe(lambda change: sent.append(json.loads(change["new"])), names="spec")
    CALLS.clear()
    assert dash.update(team="T2") == [0]  # by_start does not take team: not re-run
    assert [c[0] for c in CALLS] == ["by_team"]
    assert dash._sections[0].figure is chart  # updated in place, same widget
    assert len(sent) == 1 and sent[0]["data"][0]["y"] == [5]  # one message to the browser
    assert dash.update(lang="zh") == [0, 1]  # a language change redraws everything
    assert json.loads(chart.spec)["layout"]["title"]["text"] == "商机"
    dash.update(team="T9")  # empty selection: the figure gives way to the message
    section = dash._sections[0]
    assert section.figure is None and section.widget.children == (section.output,)
    assert "当前筛选条件下没有数据" in section.output.value  # the language is zh by now


def test_filter_bar_widgets_drive_the_sections(demo_warehouse):
    import crmlib

    with crmlib.open(demo_warehouse) as crm:
        n_teams = crm.table("teams").collect().height
        dash = Dashboard(crm, start="2025-01-01", team="", lang="en", interactive=True)
        dash.show(by_team, plot)
        bar = dash.filter_bar()
        *controls, status = bar.children
        assert [c.description for c in controls] == ["From", "Team", "Language"]
        assert "crmlib-status" in status._dom_classes and "data-updates='0'" in status.value
        team = bar.children[1]
        assert len(team.options) == n_teams + 1 and team.options[0] == ("All", "")
        CALLS.clear()
        team.value = team.options[1][1]  # a user picks the first team
        assert [("by_team", {"start": "2025-01-01", "team": team.options[1][1]})] == CALLS
        # the status counts finished updates, idle again (what the browser tests wait for)
        assert "data-updates='1'" in status.value and "data-busy='0'" in status.value
        bar.children[0].value = __import__("datetime").date(2025, 3, 1)
        assert CALLS[-1][1]["start"] == "2025-03-01"
        assert "data-updates='2'" in status.value


def test_status_says_updating_while_sections_redraw():
    dash = Dashboard(None, start="2025-01-01", lang="zh", interactive=True)
    seen = []
    dash.show(lambda crm, *, start: seen.append(dash._status and dash._status.value) or pl.DataFrame(
        {"team": ["T1"], "n": [1]}), plot)
    dash.filter_bar()
    dash.update(start="2025-02-01")
    assert "更新中" in seen[-1] and "data-busy='1'" in seen[-1]  # during the update, in the page's language
    assert "更新中" not in dash._status.value and "data-busy='0'" in dash._status.value


def slow_team(crm, *, team=""):
    import time

    time.sleep(0.05)
    return by_team(crm, start="2025-01-01", team=team)


@pytest.mark.parametrize("workers", [1, 2])
def test_sections_of_an_update_are_computed_together_and_drawn_each(monkeypatch, workers):
    # two at a time (threads) or in turn: every section re-drawn, each with its own result
    import crmlib.dashboard

    monkeypatch.setattr(crmlib.dashboard, "WORKERS", workers)
    dash = Dashboard(None, start="2025-01-01", team="", lang="en", interactive=True)
    for _ in range(4):
        dash.show(slow_team, plot)
    dash.show(broken)  # a failing section among them still says so, and the others draw
    assert dash.update(team="T2") == [0, 1, 2, 3, 4]
    for section in dash._sections[:4]:
        assert json.loads(section.figure.spec)["data"][0]["x"] == ["T2"]
    assert "could not be computed" in dash._sections[4].output.value


def by_period(crm, *, period, filters):
    CALLS.append(("by_period", {"period": period, "filters": filters}))
    return pl.DataFrame({"x": [1]})


def where(team="", channel=""):
    return {k: v for k, v in {"team": team, "case_channel": channel}.items() if v}


def test_period_and_filters_are_built_for_functions_that_take_them():
    dash = Dashboard(None, start="2025-01-01", end="2025-03-31", team="T1", channel="", lang="en",
                     interactive=True, where=where)
    dash.show(by_period)
    assert CALLS[-1][1] == {"period": ("2025-01-01", "2025-03-31"), "filters": {"team": "T1"}}
    assert dash.uses(by_period) == {"start", "end", "team", "channel"}
    dash.update(channel="email")
    assert CALLS[-1][1]["filters"] == {"team": "T1", "case_channel": "email"}


def deals_of(crm, point, *, team=""):
    CALLS.append(("deals_of", {"point": point, "team": team}))
    ids = {"T1": ["o1", "o2", "o3"], "T2": ["o4", "o5", "o6", "o7", "o8"]}[point["x"]]
    return pl.DataFrame({"opportunity_id": ids, "amount": [100.0 * (i + 1) for i in range(len(ids))]})


def test_drill_down_shows_the_records_with_count_and_downloads():
    import base64
    import io

    dash = Dashboard(None, start="2025-01-01", team="", lang="en", interactive=True)
    dash.show(by_team, plot, drill=deals_of)
    section = dash._sections[0]
    assert section.widget.children == (section.figure, section.drill_output)
    # the message the browser sends when the second bar is clicked (see crmlib/chart_widget.py)
    section.figure._on_msg(section.figure, {"type": "click", "point": {"x": "T2", "y": 5, "index": 1, "curve": 0,
                                                                      "label": None, "customdata": None}}, [])
    assert CALLS[-1] == ("deals_of", {"point": {"x": "T2", "y": 5, "index": 1, "trace": None, "customdata": None},
                                      "team": ""})
    assert section.last_drill.height == 5  # the bar's value, the records behind it
    assert "data-count='5'" in section.drill_output.value  # shown under the chart
    html = records_view(section.last_drill, "zh", "T2").html
    assert "data-count='5'" in html and "条记录" in html and "下载" in html
    links = download_links(section.last_drill)
    csv = base64.b64decode(links["csv"].split(",", 1)[1]).decode("utf-8-sig")
    assert csv.splitlines() == ["opportunity_id,amount", "o4,100.0", "o5,200.0", "o6,300.0", "o7,400.0", "o8,500.0"]
    xlsx = pl.read_excel(io.BytesIO(base64.b64decode(links["xlsx"].split(",", 1)[1])))
    assert xlsx.get_column("opportunity_id").to_list() == ["o4", "o5", "o6", "o7", "o8"]
    dash.update(team="T1")  # a filter change clears the drill-down (it belonged to the old selection)
    assert section.last_drill is None and section.drill_output.value == ""


def test_failing_drill_down_says_so_in_place():
    def bad(crm, point):
        raise ZeroDivisionError("boom")

    dash = Dashboard(None, start="2025-01-01", team="", lang="en", interactive=True)
    dash.show(by_team, plot, drill=bad)
    text = dash.drill_view(0, {"x": "T1"}).html
    assert dash._sections[0].last_drill is None
    assert "could not be computed" in text and "Traceback" not in text and "boom" not in text


def test_language_switch_relabels_the_filter_bar(demo_warehouse):
    import crmlib

    with crmlib.open(demo_warehouse) as crm:
        dash = Dashboard(crm, start="2025-01-01", team="", hours="business", lang="en", interactive=True)
        bar = dash.filter_bar()
        assert [c.description for c in bar.children[:-1]] == ["From", "Team", "Hours", "Language"]
        bar.children[-2].value = "zh"  # the language toggle (the last child is the status)
        assert [c.description for c in bar.children[:-1]] == ["开始", "团队", "计时", "语言"]
        assert bar.children[1].options[0] == ("全部", "") and bar.children[1].value == ""
        assert bar.children[2].options[0] == ("工作时间", "business")


def test_language_switch_keeps_the_filters_and_redraws_once(demo_warehouse):
    """Relabelling a dropdown makes it jump to its first choice and back: no filter change, no redraw."""
    import crmlib

    with crmlib.open(demo_warehouse) as crm:
        dash = Dashboard(crm, start="2025-01-01", team="T03", grain="quarter", lang="en", interactive=True)
        bar = dash.filter_bar()
        seen = []
        dash.show(lambda crm, team, grain, lang: seen.append((team, grain, lang)) or pl.DataFrame({"x": [1]}))
        team, grain = bar.children[1], bar.children[2]
        assert ("quarter", "quarter") in grain.options
        seen.clear()
        bar.children[-2].value = "zh"  # the language toggle
        assert seen == [("T03", "quarter", "zh")] and dash.updates == 1
        assert team.value == "T03" and grain.value == "quarter" and dash.filters["team"] == "T03"
        assert [label for label, _ in grain.options] == ["日", "周", "月", "季度", "年"]
        grain.value = "year"  # a real change still redraws
        assert seen[-1] == ("T03", "year", "zh") and dash.updates == 2


def test_chart_widget_sends_plotly_js_once_asked_and_names_the_clicked_trace():
    fig = go.Figure([go.Bar(name="won", x=["a", "b"], y=[1, 2]), go.Bar(name="lost", x=["a", "b"], y=[3, 4])])
    chart = Chart(fig)
    assert json.loads(chart.spec)["data"][1]["name"] == "lost"
    sent = []
    chart.send = lambda content, buffers=None: sent.append((content, buffers))
    chart._on_msg(chart, {"type": "need-plotly.js"}, [])
    assert sent[0][0] == {"type": "plotly.js"} and sent[0][1][0] is plotly_js()
    assert b"window.Plotly" in plotly_js()[-200:]  # the bundle defines the global the front end waits for
    points = []
    chart.on_click(points.append)
    chart._on_msg(chart, {"type": "click", "point": {"x": "b", "y": 4, "index": 1, "curve": 1}}, [])
    chart._on_msg(chart, {"type": "click", "point": {"label": "Email", "index": 0, "curve": 0}}, [])
    assert points == [{"x": "b", "y": 4, "index": 1, "trace": "lost", "customdata": None},
                      {"x": "Email", "y": None, "index": 0, "trace": "won", "customdata": None}]
    assert len(chart._esm) < 10_000  # the front end is a few lines; plotly.js is not in it


def test_a_filter_offers_the_values_of_the_enum_the_area_means(demo_warehouse):
    import crmlib
    from crmlib import schema

    with crmlib.open(demo_warehouse) as crm:
        marketing = Dashboard(crm, channel="", lang="en", interactive=True)
        assert [v for _, v in marketing.options("channel")] == ["", *schema.ENUMS["channel"]]
        service = Dashboard(crm, channel="", lang="en", interactive=True, enums={"channel": "case_channel"})
        assert [v for _, v in service.options("channel")] == ["", "email", "phone", "chat", "web", "social"]
    with pytest.raises(ValueError, match="case_chanel"):
        Dashboard(None, channel="", enums={"channel": "case_chanel"})


def test_a_dashboard_update_reads_shared_lookups_once(demo_warehouse):
    import crmlib

    with crmlib.open(demo_warehouse) as crm:
        calls = []

        def lookup():
            calls.append(1)
            return len(calls)

        assert [crm.once(("k",), lookup) for _ in range(2)] == [1, 2]  # outside a batch: fresh every time
        with crm.batch():
            with crm.batch():  # nested: one batch
                assert crm.once(("k",), lookup) == 3
            assert crm.once(("k",), lookup) == 3 and crm.once(("other",), lookup) == 4
        assert crm.once(("k",), lookup) == 5  # the batch is over: nothing kept

        seen = []

        def section(crm, *, team=""):
            seen.append(crm.once(("shared",), lookup))
            return pl.DataFrame({"team": ["T1"], "n": [1]})

        dash = Dashboard(crm, start="2025-01-01", team="", lang="en", interactive=True)
        dash.show(section, plot)
        dash.show(section, plot)
        dash.update(team="T2")  # both sections re-drawn in one batch: the lookup runs once for both
        assert seen[-2] == seen[-1] and seen[0] != seen[1]


@pytest.mark.parametrize("kind", ["once", "memo"])
def test_threads_asking_for_the_same_key_share_one_computation(demo_warehouse, kind):
    # a dashboard computes sections two at a time: a lookup both need runs once, the other thread waits;
    # a failure reaches both and is not kept (the next call computes again)
    import threading
    import time

    import crmlib

    with crmlib.open(demo_warehouse) as crm:
        calls = []

        def slow(fail=False):
            calls.append(1)
            time.sleep(0.2)
            if fail:
                raise ValueError("boom")
            return len(calls)

        def ask(key, out, fail=False):
            try:
                out.append(getattr(crm, kind)(key, lambda: slow(fail)))
            except ValueError as exc:
                out.append(str(exc))

        with crm.batch():
            got: list = []
            threads = [threading.Thread(target=ask, args=(("k",), got)) for _ in range(3)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert got == [1, 1, 1] and len(calls) == 1
            got = []
            threads = [threading.Thread(target=ask, args=(("bad",), got, True)) for _ in range(2)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert got == ["boom", "boom"] and len(calls) == 2
            assert getattr(crm, kind)(("bad",), lambda: slow()) == 3  # not kept: computed again


def test_workers_from_the_environment(monkeypatch, caplog):
    from crmlib.dashboard import workers_from_env

    monkeypatch.setenv("CRMLIB_DASHBOARD_WORKERS", "1")
    assert workers_from_env() == 1
    monkeypatch.setenv("CRMLIB_DASHBOARD_WORKERS", "0")
    assert workers_from_env() == 1  # at least one
    monkeypatch.setenv("CRMLIB_DASHBOARD_WORKERS", "two")
    assert workers_from_env() in (1, 2) and "not a whole number" in caplog.text  # a warning, no traceback
