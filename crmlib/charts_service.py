"""Customer service charts: a tidy frame of :mod:`crmlib.service` in, a ``go.Figure`` out (never shown).

Titles, axes, legends and category values are in English or Chinese (``lang``); a frame without data
gives a figure that says "No data for this selection." instead of an empty plot.
"""

from __future__ import annotations

import plotly.graph_objects as go
import polars as pl
from plotly.subplots import make_subplots

from . import schema
from .charts import line_mode, template
from .i18n import check_lang

LABELS: dict[str, dict[str, str]] = {
    "no_data": {"en": "No data for this selection.", "zh": "当前筛选条件下没有数据。"},
    "trends": {"en": "Case volume and backlog", "zh": "工单量与积压"},
    "created": {"en": "Created", "zh": "新建"},
    "solved": {"en": "Solved", "zh": "已解决"},
    "cases": {"en": "Cases", "zh": "工单数"},
    "backlog": {"en": "Backlog at period end", "zh": "期末积压"},
    "period": {"en": "Period", "zh": "期间"},
    "sla_heatmap": {"en": "SLA compliance by {y}", "zh": "按{y}的 SLA 达成率"},
    "sla": {"en": "SLA (all targets)", "zh": "SLA（全部目标）"},
    "first_response": {"en": "First response", "zh": "首次响应"},
    "resolution": {"en": "Resolution", "zh": "解决"},
    "compliance": {"en": "Compliance", "zh": "达成率"},
    "outcomes": {"en": "outcomes", "zh": "个结果"},
    "times": {"en": "Time distributions of cases solved ({hours} hours)", "zh": "已解决工单时长分布（{hours}小时）"},
    "histogram": {"en": "{metric} ({hours} hours)", "zh": "{metric}（{hours}小时）"},
    "business": {"en": "business", "zh": "工作"},
    "calendar": {"en": "calendar", "zh": "自然"},
    "hours": {"en": "Hours", "zh": "小时"},
    "first_response_hours": {"en": "First response", "zh": "首次响应"},
    "first_resolution_hours": {"en": "First resolution", "zh": "首次解决"},
    "full_resolution_hours": {"en": "Full resolution", "zh": "完全解决"},
    "requester_wait_hours": {"en": "Requester wait", "zh": "客户等待"},
    "agent_wait_hours": {"en": "Agent wait (pending)", "zh": "等待客户回复"},
    "satisfaction": {"en": "Customer satisfaction", "zh": "客户满意度"},
    "csat": {"en": "CSAT (% satisfied)", "zh": "CSAT（满意占比）"},
    "nps": {"en": "NPS", "zh": "净推荐值（NPS）"},
    "csat_response_rate": {"en": "CSAT response rate", "zh": "CSAT 回复率"},
    "nps_response_rate": {"en": "NPS response rate", "zh": "NPS 回复率"},
    "share": {"en": "Share", "zh": "占比"},
    "0-1d": {"en": "under 1 day", "zh": "1 天内"},
    "1-3d": {"en": "1-3 days", "zh": "1-3 天"},
    "3-7d": {"en": "3-7 days", "zh": "3-7 天"},
    "7-30d": {"en": "7-30 days", "zh": "7-30 天"},
    "30d+": {"en": "over 30 days", "zh": "30 天以上"},
    "low": {"en": "low", "zh": "低"},
    "normal": {"en": "normal", "zh": "普通"},
    "high": {"en": "high", "zh": "高"},
    "urgent": {"en": "urgent", "zh": "紧急"},
    "(none)": {"en": "(none)", "zh": "（空）"},
}
AGE_COLOURS = ("#9ecae1", "#6baed6", "#fdae6b", "#f16913", "#a50f15")
_LAYOUT = {"legend": {"orientation": "h", "y": -0.18},
           "margin": {"l": 60, "r": 30, "t": 70, "b": 70}}


def t(key: str, lang: str = "en", **kw) -> str:
    """This module's label for ``key`` (the key itself when unknown), with ``{placeholders}`` filled."""
    entry = LABELS.get(key)
    text = entry[check_lang(lang)] if entry else key
    return text.format(**kw) if kw else text


def _dim_label(name: str, lang: str) -> str:
    from .kpis.catalog import default_catalog

    cat = default_catalog()
    return cat.dimension(name).label.get(lang) if name in cat.dimensions else t(name, lang)


def no_data_figure(lang: str = "en", title: str | None = None) -> go.Figure:
    """An empty figure that says there is no data for the selection."""
    fig = go.Figure()
    fig.add_annotation(text=t("no_data", lang), x=0.5, y=0.5, xref="paper", yref="paper", showarrow=False,
                       font={"size": 16, "color": "#57606a"})
    fig.update_layout(title=title, xaxis={"visible": False}, yaxis={"visible": False}, **_LAYOUT, **template())
    return fig


def _empty(frame: pl.DataFrame, value: str) -> bool:
    return frame.height == 0 or frame.get_column(value).is_null().all()


def _ordered(values, enum: str | None) -> list:
    present = [v for v in dict.fromkeys(values)]
    if enum and enum in schema.ENUMS:
        order = {v: i for i, v in enumerate(schema.ENUMS[enum])}
        return sorted(present, key=lambda v: (v is None, order.get(v, len(order)), str(v)))
    return sorted(present, key=lambda v: (v is None, str(v)))


def plot_trends(trends: pl.DataFrame, lang: str = "en") -> go.Figure:
    """Cases created and solved per period (lines, top) and the backlog at each period end by age (stacked
    bars, bottom). Input: :func:`crmlib.service.trends`."""
    title = t("trends", lang)
    if _empty(trends, "value"):
        return no_data_figure(lang, title)
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08, row_heights=[0.55, 0.45],
                        subplot_titles=(t("cases", lang), t("backlog", lang)))
    for metric, colour in (("created", "#1f77b4"), ("solved", "#2ca02c")):
        part = trends.filter(pl.col("metric") == metric).sort("period")
        fig.add_trace(go.Scatter(x=part["period"].to_list(), y=part["value"].to_list(), mode=line_mode(part.height),
                                 name=t(metric, lang), line={"color": colour}), row=1, col=1)
    stock = trends.filter(pl.col("metric") == "backlog")
    for i, bucket in enumerate(stock["age_bucket"].unique(maintain_order=True).to_list()):
        part = stock.filter(pl.col("age_bucket") == bucket).sort("period")
        fig.add_trace(go.Bar(x=part["period"].to_list(), y=part["value"].to_list(), name=t(bucket, lang),
                             marker_color=AGE_COLOURS[i % len(AGE_COLOURS)]), row=2, col=1)
    fig.update_layout(title=title, barmode="stack", height=560, **_LAYOUT, **template())
    fig.update_yaxes(title_text=t("cases", lang), rangemode="tozero")
    fig.update_xaxes(title_text=t("period", lang), row=2, col=1)
    return fig


def plot_sla_heatmap(report: pl.DataFrame, lang: str = "en", metric: str = "sla", y: str = "priority",
                     x: str = "period") -> go.Figure:
    """SLA compliance as a heatmap of ``y`` (default priority) by ``x`` (period, or another dimension of
    the report); each cell pools its outcomes (met / (met + breached)) and shows how many there were.
    Input: :func:`crmlib.service.sla_report` for ``metric`` (``sla``, ``first_response``, ``resolution``)."""
    title = f"{t('sla_heatmap', lang, y=_dim_label(y, lang))} · {t(metric, lang)}"
    part = report.filter(pl.col("metric") == metric) if "metric" in report.columns else report
    if part.height == 0 or (part["met"].sum() + part["breached"].sum()) == 0:
        return no_data_figure(lang, title)
    cells = part.group_by(x, y).agg(pl.col("met").sum(), pl.col("breached").sum()).with_columns(
        (pl.col("met") + pl.col("breached")).alias("n")).with_columns(
        pl.when(pl.col("n") > 0).then(pl.col("met") / pl.col("n")).alias("compliance"))
    ys = _ordered(cells[y].to_list(), _enum_of(y))[::-1]
    xs = _ordered(cells[x].to_list(), _enum_of(x))
    lookup = {(r[x], r[y]): r for r in cells.iter_rows(named=True)}
    z = [[_get(lookup, (a, b), "compliance") for a in xs] for b in ys]
    text = [[_cell_text(lookup.get((a, b)), lang) for a in xs] for b in ys]
    fig = go.Figure(go.Heatmap(
        z=z, x=[str(v) if x == "period" else t(str(v) if v is not None else "(none)", lang) for v in xs],
        y=[t(str(v) if v is not None else "(none)", lang) for v in ys], text=text, texttemplate="%{text}",
        colorscale="RdYlGn", zmin=0.5, zmax=1.0, colorbar={"title": t("compliance", lang), "tickformat": ".0%"},
        hovertemplate="%{y} · %{x}<br>%{text}<extra></extra>"))
    fig.update_layout(title=title, xaxis_title=_dim_label(x, lang) if x != "period" else t("period", lang),
                      yaxis_title=_dim_label(y, lang), height=max(320, 60 * len(ys) + 160), **_LAYOUT, **template())
    return fig


def _enum_of(name: str) -> str | None:
    return {"priority": "priority", "case_channel": "case_channel", "segment": "segment", "region": "region"}.get(name)


def _get(lookup: dict, key, col: str):
    row = lookup.get(key)
    return None if row is None else row[col]


def _cell_text(row, lang: str) -> str:
    if row is None or row["compliance"] is None:
        return ""
    return f"{row['compliance'] * 100:.0f}%<br>n={row['n']}"


def plot_time_boxes(summary: pl.DataFrame, lang: str = "en", hours: str = "business", by: str = "priority") -> go.Figure:
    """Box plots of each time metric per group (whiskers at the 5th and 95th percentiles) drawn from the
    summary statistics, so reports stay small whatever the number of cases.
    Input: :func:`crmlib.service.time_summary`."""
    title = t("times", lang, hours=t(hours, lang))
    if _empty(summary, "median"):
        return no_data_figure(lang, title)
    fig = go.Figure()
    groups = _ordered(summary[by].to_list(), _enum_of(by)) if by in summary.columns else [None]
    for g in groups:
        part = summary.filter(pl.col(by) == g) if g is not None else (
            summary.filter(pl.col(by).is_null()) if by in summary.columns else summary)
        fig.add_trace(go.Box(
            x=[t(m, lang) for m in part["metric"].to_list()], q1=part["p25"].to_list(),
            median=part["median"].to_list(), q3=part["p75"].to_list(), lowerfence=part["p5"].to_list(),
            upperfence=part["p95"].to_list(), mean=part["mean"].to_list(),
            name=t(str(g), lang) if g is not None else t("(none)", lang), boxpoints=False))
    fig.update_layout(title=title, boxmode="group", yaxis_title=f"{t('hours', lang)} ({t(hours, lang)})",
                      legend_title_text=_dim_label(by, lang) if by in summary.columns else None, **_LAYOUT, **template())
    return fig


def plot_time_histogram(values: pl.DataFrame, lang: str = "en", metric: str = "first_response_hours",
                        hours: str = "business", bins: int = 40) -> go.Figure:
    """Histogram of one time metric over the cases (input: :func:`crmlib.service.time_values`)."""
    title = t("histogram", lang, metric=t(metric, lang), hours=t(hours, lang))
    part = values.filter(pl.col("metric") == metric) if values.height else values
    if part.height == 0:
        return no_data_figure(lang, title)
    fig = go.Figure(go.Histogram(x=part["hours"].to_list(), nbinsx=bins, marker_color="#1f77b4"))
    fig.update_layout(title=title, xaxis_title=f"{t('hours', lang)} ({t(hours, lang)})",
                      yaxis_title=t("cases", lang), **_LAYOUT, **template())
    return fig


def plot_satisfaction(frame: pl.DataFrame, lang: str = "en") -> go.Figure:
    """CSAT and survey response rates (left axis, %) and NPS (right axis, -100..100) per period.
    Input: :func:`crmlib.service.satisfaction` (the engine's tidy frame, without dimensions)."""
    title = t("satisfaction", lang)
    if _empty(frame, "value"):
        return no_data_figure(lang, title)
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    styles = {"csat": ("#2ca02c", "solid", False), "csat_response_rate": ("#2ca02c", "dot", False),
              "nps_response_rate": ("#9467bd", "dot", False), "nps": ("#9467bd", "solid", True)}
    for kpi, (colour, dash, right) in styles.items():
        part = frame.filter(pl.col("kpi") == kpi).sort("period")
        if part.height == 0 or part["value"].is_null().all():
            continue
        fig.add_trace(go.Scatter(x=part["period"].to_list(), y=part["value"].to_list(), name=t(kpi, lang),
                                 mode=line_mode(part.height), line={"color": colour, "dash": dash}, connectgaps=True),
                      secondary_y=right)  # NPS surveys are often quarterly: join the points across months
    fig.update_layout(title=title, **_LAYOUT, **template())
    fig.update_xaxes(title_text=t("period", lang))
    fig.update_yaxes(title_text=t("share", lang), tickformat=".0%", range=[0, 1.02],
                     tickvals=[0, 0.25, 0.5, 0.75, 1], secondary_y=False)
    fig.update_yaxes(title_text=t("nps", lang), range=[-100, 104], tickvals=[-100, -50, 0, 50, 100],
                     secondary_y=True, showgrid=False)
    return fig
