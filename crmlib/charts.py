"""Plotly figure builders: take a tidy frame, return a ``go.Figure``; never show or save."""

from __future__ import annotations

import plotly.graph_objects as go
import plotly.io as pio
import polars as pl

from .i18n import t

TEMPLATE = "plotly_white"  # every crmlib chart's plotly template
MAX_MARKERS = 60  # points per line beyond which markers are left out (days, weeks)


def line_mode(n: int) -> str:
    """Scatter ``mode`` for a line of ``n`` points: markers only while they can be told apart (hundreds
    of daily markers hide the line and slow the browser: each one is an SVG element)."""
    return "lines+markers" if n <= MAX_MARKERS else "lines"


def template() -> dict:
    """``update_layout`` arguments that give a figure :data:`TEMPLATE`: none when plotly's default
    template is it already (``crmlib.notebook.start`` makes it so), since plotly then gave the figure
    that template when it made it, without checking it again; setting it by name checks and copies the
    whole template (~7 ms a figure: a tenth of a dashboard update's time at demo scale 1). The figure's
    JSON is the same either way (tests/test_sales_charts.py)."""
    return {} if pio.templates.default == TEMPLATE else {"template": TEMPLATE}


def plot_monthly_volume(volume: pl.DataFrame, lang: str = "en") -> go.Figure:
    """Lines of records per month, one per table (input: :func:`crmlib.overview.monthly_volume`)."""
    fig = go.Figure()
    for name in volume.get_column("table").unique(maintain_order=True).to_list():
        part = volume.filter(pl.col("table") == name)
        fig.add_trace(
            go.Scatter(x=part.get_column("month").to_list(), y=part.get_column("records").to_list(),
                       mode="lines+markers", marker={"size": 4}, name=name)
        )
    fig.update_layout(
        title=t("records_per_month", lang),
        xaxis_title=t("month", lang),
        yaxis_title=t("records", lang),
        **template(),
        legend={"orientation": "h", "y": -0.2},
        margin={"l": 60, "r": 20, "t": 60, "b": 60},
    )
    return fig
