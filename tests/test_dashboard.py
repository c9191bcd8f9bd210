"""The Dashboard: static sections for papermill, reactive widgets for Voila."""

import plotly.graph_objects as go
import polars as pl
import pytest

from crmlib.cards import Cards
from crmlib.dashboard import Dashboard
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
    fig_widget = dash._sections[0].figure
    assert isinstance(fig_widget, go.FigureWidget)
    CALLS.clear()
    assert dash.update(team="T2") == [0]  # by_start does not take team: not re-run
    assert [c[0] for c in CALLS] == ["by_team"]
    assert dash._sections[0].figure is fig_widget  # updated in place, same widget
    assert list(fig_widget.data[0].y) == [5]
    assert dash.update(lang="zh") == [0, 1]  # a language change redraws everything
    assert fig_widget.layout.title.text == "商机"
    dash.update(team="T9")  # empty selection: the figure gives way to the message
    assert dash._sections[0].figure is None and dash._sections[0].output is not None


def test_filter_bar_widgets_drive_the_sections(demo_warehouse):
    import crmlib

    with crmlib.open(demo_warehouse) as crm:
        n_teams = crm.table("teams").collect().height
        dash = Dashboard(crm, start="2025-01-01", team="", lang="en", interactive=True)
        dash.show(by_team, plot)
        bar = dash.filter_bar()
        labels = [c.description for c in bar.children]
        assert labels == ["From", "Team", "Language"]
        team = bar.children[1]
        assert len(team.options) == n_teams + 1 and team.options[0] == ("All", "")
        CALLS.clear()
        team.value = team.options[1][1]  # a user picks the first team
        assert CALLS == [("by_team", {"start": "2025-01-01", "team": team.options[1][1]})]
        bar.children[0].value = __import__("datetime").date(2025, 3, 1)
        assert CALLS[-1][1]["start"] == "2025-03-01"
