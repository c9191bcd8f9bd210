"""Plotly figures of the executive summary (:mod:`crmlib.executive`): small multiples of the headline KPIs
against target, and what changed since the previous period. Builders return a ``go.Figure``; never show."""

from __future__ import annotations

import math

import plotly.graph_objects as go
import polars as pl
from plotly.subplots import make_subplots

from .cards import format_value
from .charts import template
from .i18n import check_lang

LABELS = {
    "trends": {"en": "Headline KPIs per period, with target", "zh": "核心指标走势（含目标）"},
    "actual": {"en": "Actual", "zh": "实际"},
    "target": {"en": "Target", "zh": "目标"},
    "changes": {"en": "Change against the previous period", "zh": "较上期变化"},
    "better": {"en": "better", "zh": "向好"},
    "worse": {"en": "worse", "zh": "变差"},
    "change_axis": {"en": "change (%; percentage points for rates)", "zh": "变化（%；比率为百分点）"},
    "no_data": {"en": "No data for this selection.", "zh": "当前筛选条件下没有数据。"},
}
GOOD, BAD, GREY = "#1a7f37", "#cf222e", "#6e7781"


def _t(key: str, lang: str) -> str:
    return LABELS[key][lang]


def _empty(title: str, lang: str) -> go.Figure:
    fig = go.Figure()
    fig.add_annotation(text=_t("no_data", lang), showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    fig.update_layout(
        title=title, **template(), height=200, xaxis_visible=False, yaxis_visible=False
    )
    return fig


def plot_trends(trends: pl.DataFrame, lang: str = "en", cols: int = 4) -> go.Figure:
    """One small panel per headline KPI: the actual per period (line) and its target (dashed), each panel on its
    own scale (input: :meth:`crmlib.executive.Summary.trends`)."""
    check_lang(lang)
    title = _t("trends", lang)
    if trends.height == 0 or trends.get_column("value").is_null().all():
        return _empty(title, lang)
    kpis = trends.get_column("kpi").unique(maintain_order=True).to_list()
    rows = math.ceil(len(kpis) / cols)
    labels = [trends.filter(pl.col("kpi") == k).get_column("label")[0] for k in kpis]
    fig = make_subplots(
        rows=rows, cols=cols, subplot_titles=labels, vertical_spacing=0.5 / rows, horizontal_spacing=0.06
    )
    for i, kpi in enumerate(kpis):
        part = trends.filter(pl.col("kpi") == kpi).sort("period")
        style, decimals = part.get_column("style")[0], part.get_column("decimals")[0]
        x = part.get_column("period").to_list()
        y = part.get_column("value").to_list()
        text = [format_value(v, style, decimals, lang) for v in y]
        r, c = i // cols + 1, i % cols + 1
        fig.add_trace(
            go.Scatter(
                x=x,
                y=y,
                mode="lines+markers",
                name=_t("actual", lang),
                line={"color": "#0969da"},
                marker={"size": 4},
                text=text,
                hovertemplate="%{x|%Y-%m-%d}: %{text}<extra></extra>",
                showlegend=i == 0,
                legendgroup="actual",
            ),
            row=r,
            col=c,
        )
        target = part.get_column("target")
        if target.is_not_null().any():
            fig.add_trace(
                go.Scatter(
                    x=x,
                    y=target.to_list(),
                    mode="lines",
                    name=_t("target", lang),
                    line={"color": GREY, "dash": "dash"},
                    showlegend="target" not in {t.legendgroup for t in fig.data},
                    legendgroup="target",
                    hoverinfo="skip",
                ),
                row=r,
                col=c,
            )
        if style == "percent":
            fig.update_yaxes(tickformat=".0%", row=r, col=c)
    fig.update_annotations(font_size=12)
    fig.update_layout(
        title=title,
        **template(),
        height=230 * rows + 80,
        showlegend=True,
        legend={"orientation": "h", "y": -0.08},
        margin={"l": 50, "r": 20, "t": 80, "b": 50},
    )
    fig.update_xaxes(tickformat="%Y-%m", nticks=4)
    return fig


def plot_changes(changes: pl.DataFrame, lang: str = "en") -> go.Figure:
    """Horizontal bars of each headline KPI's change against the previous period (relative change; rates in
    percentage points), green when the change goes the KPI's good way, red otherwise
    (input: :meth:`crmlib.executive.Summary.changes`)."""
    check_lang(lang)
    title = _t("changes", lang)
    if changes.height == 0:
        return _empty(title, lang)
    frame = (
        changes.with_columns(
            pl.when(pl.col("style") == "percent")
            .then(pl.col("delta") * 100)
            .otherwise(pl.col("delta_pct") * 100)
            .alias("shown")
        )
        .filter(pl.col("shown").is_not_null())
        .sort(pl.col("shown").abs())
    )
    text = [
        f"{format_value(p, s, d, lang)} → {format_value(v, s, d, lang)}"
        for p, v, s, d in frame.select("previous", "value", "style", "decimals").iter_rows()
    ]
    colours = [GOOD if b else BAD if b is False else GREY for b in frame.get_column("better").to_list()]
    fig = go.Figure(
        go.Bar(
            x=frame.get_column("shown").to_list(),
            y=frame.get_column("label").to_list(),
            orientation="h",
            marker_color=colours,
            text=text,
            textposition="auto",
            insidetextanchor="middle",
            hovertemplate="%{y}: %{x:+.1f}<br>%{text}<extra></extra>",
        )
    )
    fig.update_layout(
        title=title,
        **template(),
        height=60 + 34 * frame.height,
        xaxis_title=_t("change_axis", lang),
        margin={"l": 20, "r": 20, "t": 60, "b": 50},
    )
    fig.update_yaxes(automargin=True)
    return fig
