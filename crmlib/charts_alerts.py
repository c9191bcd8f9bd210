"""Alerts charts: anomalies over time with their band, anomalies among peers (tables: :mod:`crmlib.tables_alerts`).

Inputs come from :mod:`crmlib.alerts`; labels are English or Chinese (``lang``); an empty input gives a
figure that says so.
"""

from __future__ import annotations

import plotly.graph_objects as go
import polars as pl
from plotly.subplots import make_subplots

from .charts import template
from .i18n import check_lang

LABELS: dict[str, dict[str, str]] = {
    "alerts": {"en": "Alerts", "zh": "预警"},
    "alerts_sub": {
        "en": "Rules and anomalies on the last complete period as of {day}; most severe first",
        "zh": "截至 {day} 最近一个完整周期的规则与异常预警，按严重程度排序",
    },
    "no_alerts": {
        "en": "No alert: every rule and watched KPI is within its limits.",
        "zh": "没有预警：所有规则和监控指标均在正常范围内。",
    },
    "signals": {"en": "Opportunity signals", "zh": "商机信号"},
    "signals_sub": {
        "en": "Accounts and campaigns worth a look, with the evidence",
        "zh": "值得关注的客户与活动，附依据",
    },
    "no_signals": {"en": "No signal for this selection.", "zh": "当前筛选条件下没有商机信号。"},
    "severity": {"en": "Severity", "zh": "级别"},
    "kind": {"en": "Type", "zh": "类型"},
    "scope": {"en": "Scope", "zh": "范围"},
    "period": {"en": "Period", "zh": "期间"},
    "message": {"en": "What happened", "zh": "说明"},
    "since": {"en": "Since", "zh": "起始"},
    "owner": {"en": "Owner", "zh": "负责人"},
    "critical": {"en": "critical", "zh": "严重"},
    "warning": {"en": "warning", "zh": "警告"},
    "info": {"en": "info", "zh": "提示"},
    "rule": {"en": "rule", "zh": "规则"},
    "anomaly": {"en": "anomaly", "zh": "异常"},
    "signal": {"en": "signal", "zh": "信号"},
    "rising_activity": {"en": "Rising activity", "zh": "活动增加"},
    "rising_orders": {"en": "Ordering more often", "zh": "下单频率上升"},
    "cross_sell": {"en": "Cross-sell", "zh": "交叉销售"},
    "campaign_conversion": {"en": "Campaign converting above peers", "zh": "转化率高于同类的活动"},
    "anomaly_title": {
        "en": "{label}: actual, expected and normal band",
        "zh": "{label}：实际值、预期值与正常区间",
    },
    "actual": {"en": "Actual", "zh": "实际值"},
    "expected": {"en": "Expected", "zh": "预期值"},
    "band": {"en": "Normal band", "zh": "正常区间"},
    "flagged": {"en": "Anomaly", "zh": "异常"},
    "no_data": {"en": "No data for this selection.", "zh": "当前筛选条件下没有数据。"},
    "peers_title": {
        "en": "{label} across peers: median and band",
        "zh": "{label} 同类比较：中位数与正常区间",
    },
}
SEVERITY_COLOURS = {"critical": "#d62728", "warning": "#ff7f0e", "info": "#1f77b4"}
_LAYOUT = {"margin": {"l": 60, "r": 20, "t": 70, "b": 50}}


def t(key: str, lang: str = "en", **kw) -> str:
    entry = LABELS.get(key)
    text = entry[check_lang(lang)] if entry else key
    return text.format(**kw) if kw else text


def _label(kpi: str, lang: str) -> str:
    from .kpis.catalog import default_catalog

    cat = default_catalog()
    return cat.get(kpi).label.get(lang) if kpi in cat.kpis else kpi


def no_data_figure(lang: str, title: str) -> go.Figure:
    fig = go.Figure()
    fig.add_annotation(
        text=t("no_data", lang), showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper", font={"size": 16}
    )
    fig.update_layout(title=title, xaxis={"visible": False}, yaxis={"visible": False}, **_LAYOUT, **template())
    return fig


# The columns of crmlib.alerts.anomaly_history that are not the watch's dimensions.
_HISTORY_COLUMNS = frozenset({"watch", "kpi", "period", "value", "expected", "lower", "upper", "score", "is_anomaly",
                              "status", "method"})


def plot_anomalies(history: pl.DataFrame, lang: str = "en") -> go.Figure:
    """Actual values, the expected value and the normal band per group, anomalies marked (input:
    :func:`crmlib.alerts.anomaly_history`). A peer watch (one period, groups side by side) is drawn as bars
    against the peers' median and band."""
    check_lang(lang)
    kpi = history["kpi"][0] if history.height else ""
    if not history.height or history["value"].drop_nulls().len() == 0:
        return no_data_figure(lang, t("anomaly_title", lang, label=_label(kpi, lang) if kpi else ""))
    if history["method"][0] == "peers":
        return _plot_peers(history, lang, kpi)
    label = _label(kpi, lang)
    dims = [c for c in history.columns if c not in _HISTORY_COLUMNS]
    groups = history.select(dims).unique(maintain_order=True).rows() if dims else [()]
    n = len(groups)
    fig = make_subplots(
        rows=n,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.04 if n > 1 else 0.1,
        subplot_titles=[", ".join(map(str, g)) or label for g in groups],
    )
    for i, g in enumerate(groups, start=1):
        part = history.filter(*[pl.col(d).eq_missing(v) for d, v in zip(dims, g, strict=True)]).sort("period")
        x = part["period"].to_list()
        show = i == 1
        fig.add_trace(
            go.Scatter(
                x=x,
                y=part["upper"].to_list(),
                mode="lines",
                line={"width": 0},
                showlegend=False,
                hoverinfo="skip",
                legendgroup="band",
            ),
            row=i,
            col=1,
        )
        fig.add_trace(
            go.Scatter(
                x=x,
                y=part["lower"].to_list(),
                mode="lines",
                line={"width": 0},
                fill="tonexty",
                fillcolor="rgba(31,119,180,0.15)",
                name=t("band", lang),
                showlegend=show,
                legendgroup="band",
            ),
            row=i,
            col=1,
        )
        fig.add_trace(
            go.Scatter(
                x=x,
                y=part["expected"].to_list(),
                mode="lines",
                line={"dash": "dot", "color": "#1f77b4"},
                name=t("expected", lang),
                showlegend=show,
                legendgroup="exp",
            ),
            row=i,
            col=1,
        )
        fig.add_trace(
            go.Scatter(
                x=x,
                y=part["value"].to_list(),
                mode="lines+markers",
                line={"color": "#333"},
                name=t("actual", lang),
                showlegend=show,
                legendgroup="act",
            ),
            row=i,
            col=1,
        )
        hits = part.filter(pl.col("is_anomaly"))
        fig.add_trace(
            go.Scatter(
                x=hits["period"].to_list(),
                y=hits["value"].to_list(),
                mode="markers",
                marker={"color": "#d62728", "size": 12, "symbol": "x"},
                name=t("flagged", lang),
                showlegend=show,
                legendgroup="hit",
                text=[f"score {s:+.1f}" for s in hits["score"].to_list()],
            ),
            row=i,
            col=1,
        )
    fig.update_layout(title=t("anomaly_title", lang, label=label), height=max(320, 220 * n), **_LAYOUT, **template())
    return fig


def _plot_peers(history: pl.DataFrame, lang: str, kpi: str) -> go.Figure:
    dims = [c for c in history.columns if c not in _HISTORY_COLUMNS | {"weight"}]
    part = history.sort("value", nulls_last=True)
    names = [" · ".join(str(r[d]) for d in dims) for r in part.iter_rows(named=True)]
    colours = [
        "#d62728" if a else "#7f7f7f" if s == "insufficient_history" else "#1f77b4"
        for a, s in zip(part["is_anomaly"].to_list(), part["status"].to_list(), strict=True)
    ]
    fig = go.Figure(go.Bar(x=names, y=part["value"].to_list(), marker_color=colours, name=t("actual", lang)))
    exp, lo, hi = part["expected"][0], part["lower"][0], part["upper"][0]
    if exp is not None:
        fig.add_hline(y=exp, line_dash="dot", annotation_text=t("expected", lang))
        fig.add_hrect(y0=lo, y1=hi, fillcolor="rgba(31,119,180,0.12)", line_width=0)
    fig.update_layout(
        title=t("peers_title", lang, label=_label(kpi, lang)) + f" · {part['period'][0]}",
        height=420,
        **_LAYOUT, **template(),
    )
    return fig
