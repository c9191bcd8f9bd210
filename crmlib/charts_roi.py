"""Views of the ROI calculator (:mod:`crmlib.roi`): result cards, baseline table, cash-flow chart, tornado.
Builders return a ``go.Figure``, a great_tables ``GT`` or HTML cards; never show or save."""

from __future__ import annotations

from html import escape

import plotly.graph_objects as go
import polars as pl
from great_tables import GT

from .cards import Cards, format_value
from .charts import template
from .i18n import check_lang

LABELS = {
    "npv": {"en": "NPV", "zh": "净现值"},
    "irr_annual": {"en": "IRR (annual)", "zh": "内部收益率（年化）"},
    "irr_monthly": {"en": "IRR (monthly)", "zh": "内部收益率（月）"},
    "payback_months": {"en": "Payback", "zh": "回收期"},
    "discounted_payback_months": {"en": "Discounted payback", "zh": "折现回收期"},
    "total_cost": {"en": "Total cost", "zh": "总投入"},
    "incremental_margin": {"en": "Incremental margin", "zh": "新增毛利"},
    "months": {"en": "{m:.1f} months", "zh": "{m:.1f} 个月"},
    "not_within": {"en": "not within the horizon", "zh": "期限内无法回收"},
    "undefined": {"en": "undefined", "zh": "无法计算"},
    "baseline": {
        "en": "Measured baseline and the scenario at full effect",
        "zh": "实测基线与完全见效后的情景",
    },
    "baseline_sub": {"en": "Per month, measured {start} to {end}", "zh": "月均值，测量期 {start} 至 {end}"},
    "measure": {"en": "Measure", "zh": "指标"},
    "base": {"en": "Baseline", "zh": "基线"},
    "scenario": {"en": "With the investment", "zh": "投资后"},
    "decided_deals": {"en": "Closed deals (won + lost)", "zh": "已结商机（赢单+输单）"},
    "win_rate": {"en": "Win rate", "zh": "赢单率"},
    "deal_size": {"en": "Average deal size", "zh": "平均客单价"},
    "new_leads": {"en": "New leads", "zh": "新增线索"},
    "revenue": {"en": "New-business revenue", "zh": "新签销售额"},
    "mrr": {"en": "Recurring revenue (MRR)", "zh": "月度经常性收入"},
    "churn": {"en": "Monthly revenue churn", "zh": "月收入流失率"},
    "cash_flows": {"en": "Monthly cash flows and cumulative position", "zh": "月度现金流与累计现金流"},
    "month": {"en": "Month", "zh": "月份"},
    "amount": {"en": "Amount", "zh": "金额"},
    "margin_bar": {"en": "Incremental margin", "zh": "新增毛利"},
    "cost_bar": {"en": "Cost", "zh": "投入"},
    "cumulative": {"en": "Cumulative cash flow", "zh": "累计现金流"},
    "cumulative_discounted": {"en": "Cumulative discounted", "zh": "累计折现现金流"},
    "payback_at": {"en": "payback", "zh": "回收点"},
    "tornado": {
        "en": "Sensitivity of the NPV (each assumption low / high, others at base)",
        "zh": "净现值敏感性（单项假设取低 / 高值，其余取基准）",
    },
    "low": {"en": "low", "zh": "低"},
    "high": {"en": "high", "zh": "高"},
    "base_npv": {"en": "base NPV", "zh": "基准净现值"},
    "no_sensitivity": {
        "en": "No assumption to vary (every effect and cost is 0).",
        "zh": "没有可变动的假设（各效果与成本均为 0）。",
    },
    "win_rate_change": {"en": "Win rate change (points)", "zh": "赢单率变化（百分点）"},
    "deal_size_change": {"en": "Deal size change", "zh": "客单价变化"},
    "churn_change": {"en": "Churn change", "zh": "流失率变化"},
    "leads_change": {"en": "Leads change", "zh": "线索量变化"},
    "margin": {"en": "Margin", "zh": "毛利率"},
    "discount_rate": {"en": "Discount rate (annual)", "zh": "折现率（年）"},
    "upfront_cost": {"en": "Upfront cost", "zh": "一次性投入"},
    "monthly_cost": {"en": "Monthly cost", "zh": "每月费用"},
}
_PERCENT = {"win_rate_change", "deal_size_change", "churn_change", "leads_change", "margin", "discount_rate"}
GOOD, BAD, GREY, BLUE = "#1a7f37", "#cf222e", "#6e7781", "#0969da"


def _t(key: str, lang: str) -> str:
    return LABELS[key][lang]


def _money(v, lang: str) -> str:
    return format_value(v, "currency", 0, lang)


def _metric_text(metric: str, value, note, lang: str) -> str:
    if value is None:
        if metric.startswith("irr"):
            return _t("undefined", lang)
        return _t("not_within", lang) if note else "–"
    if metric.startswith("irr"):
        return f"{value * 100:.1f}%"
    if metric.endswith("payback_months"):
        return _t("months", lang).format(m=value)
    return _money(value, lang)


def roi_cards(metrics: pl.DataFrame, lang: str = "en") -> Cards:
    """NPV, IRR, payback, discounted payback, cost and margin as cards (input: :meth:`RoiResult.metrics`);
    a missing value says why (IRR undefined and the reason, payback not within the horizon)."""
    check_lang(lang)
    shown = (
        "npv",
        "irr_annual",
        "payback_months",
        "discounted_payback_months",
        "total_cost",
        "incremental_margin",
    )
    rows = {r["metric"]: r for r in metrics.iter_rows(named=True)}
    cards = []
    for m in shown:
        r = rows.get(m)
        if r is None:
            continue
        v = r["value"]
        colour = GREY
        if m == "npv" and v is not None:
            colour = GOOD if v >= 0 else BAD
        elif m.endswith("payback_months"):
            colour = GOOD if v is not None else BAD
        note = ""
        if m == "irr_annual":
            monthly = rows.get("irr_monthly", {}).get("value")
            note = (
                f"{monthly * 100:.2f}% / {'month' if lang == 'en' else '月'}"
                if monthly is not None
                else (r["note"] or "")
            )
        cards.append(
            f"<div class='crmlib-card' data-metric='{m}' style='border:1px solid #d0d7de;border-left:6px solid {colour};"
            f"border-radius:6px;padding:10px 14px;min-width:180px;flex:1 1 180px;background:#fff'>"
            f"<div style='font-size:13px;color:#57606a'>{escape(_t(m, lang))}</div>"
            f"<div style='font-size:24px;font-weight:600;margin:2px 0'>{escape(_metric_text(m, v, r['note'], lang))}</div>"
            f"<div style='font-size:12px;color:#57606a'>{escape(note)}</div></div>"
        )
    return Cards(
        f"<div class='crmlib-cards' style='display:flex;flex-wrap:wrap;gap:10px'>{''.join(cards)}</div>"
    )


def fmt_baseline(table: pl.DataFrame, lang: str = "en") -> GT:
    """The measured baseline and the scenario at full effect (input: :meth:`RoiResult.baseline_table`)."""
    check_lang(lang)

    def fmt(v, unit):
        return format_value(v, unit, 1 if unit in ("percent", "count") else 0, lang)

    frame = pl.DataFrame(
        {
            "measure": [_t(m, lang) for m in table["measure"]],
            "baseline": [fmt(v, u) for v, u in zip(table["baseline"], table["unit"], strict=True)],
            "scenario": [fmt(v, u) for v, u in zip(table["scenario"], table["unit"], strict=True)],
        }
    )
    sub = (
        _t("baseline_sub", lang).format(start=table["start"][0], end=table["end"][0])
        if table.height
        else None
    )
    return (
        GT(frame)
        .tab_header(title=_t("baseline", lang), subtitle=sub)
        .cols_label(measure=_t("measure", lang), baseline=_t("base", lang), scenario=_t("scenario", lang))
        .cols_align("right", columns=["baseline", "scenario"])
    )


def plot_cash_flows(
    cash_flows: pl.DataFrame, lang: str = "en", payback_months: float | None = None
) -> go.Figure:
    """Bars of the monthly incremental margin and cost, lines of the cumulative (and discounted cumulative)
    cash flow, and the payback point when there is one (input: :attr:`RoiResult.cash_flows`)."""
    check_lang(lang)
    m = cash_flows.get_column("month").to_list()
    fig = go.Figure()
    fig.add_trace(
        go.Bar(
            x=m,
            y=cash_flows.get_column("incremental_margin").to_list(),
            name=_t("margin_bar", lang),
            marker_color=GOOD,
            opacity=0.6,
        )
    )
    fig.add_trace(
        go.Bar(
            x=m,
            y=(-cash_flows.get_column("cost")).to_list(),
            name=_t("cost_bar", lang),
            marker_color=BAD,
            opacity=0.6,
        )
    )
    fig.add_trace(
        go.Scatter(
            x=m,
            y=cash_flows.get_column("cumulative").to_list(),
            name=_t("cumulative", lang),
            mode="lines+markers",
            line={"color": BLUE},
        )
    )
    fig.add_trace(
        go.Scatter(
            x=m,
            y=cash_flows.get_column("cumulative_discounted").to_list(),
            name=_t("cumulative_discounted", lang),
            mode="lines",
            line={"color": BLUE, "dash": "dot"},
        )
    )
    if payback_months is not None:
        fig.add_vline(
            x=payback_months,
            line_dash="dash",
            line_color=GREY,
            annotation_text=f"{_t('payback_at', lang)} {payback_months:.1f}",
        )
    fig.update_layout(
        title=_t("cash_flows", lang),
        **template(),
        barmode="relative",
        xaxis_title=_t("month", lang),
        yaxis_title=_t("amount", lang),
        legend={"orientation": "h", "y": -0.2},
        margin={"l": 60, "r": 20, "t": 60, "b": 60},
    )
    return fig


def _value_text(name: str, v: float, lang: str) -> str:
    if name == "win_rate_change":
        return f"{v * 100:+.1f} pt"
    if name in _PERCENT:
        return f"{v * 100:+.1f}%" if name.endswith("change") else f"{v * 100:.1f}%"
    return _money(v, lang)


def plot_tornado(tornado: pl.DataFrame, lang: str = "en") -> go.Figure:
    """Tornado chart: per assumption a bar from the NPV at its low value to the NPV at its high value,
    around the base NPV, the largest swing on top (input: :meth:`RoiResult.tornado`)."""
    check_lang(lang)
    fig = go.Figure()
    if tornado.height == 0:
        fig.add_annotation(
            text=_t("no_sensitivity", lang), showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper"
        )
        fig.update_layout(
            title=_t("tornado", lang),
            **template(),
            height=200,
            xaxis_visible=False,
            yaxis_visible=False,
        )
        return fig
    t = tornado.sort("swing")  # plotly draws the first category at the bottom
    base = float(t.get_column("base_npv")[0])
    labels = [_t(a, lang) for a in t.get_column("assumption")]
    for side, colour in (("low", BAD), ("high", GOOD)):
        npvs = t.get_column(f"npv_{side}").to_list()
        vals = t.get_column(f"{side}_value").to_list()
        text = [
            f"{_t(side, lang)} {_value_text(a, v, lang)}" for a, v in zip(t["assumption"], vals, strict=True)
        ]
        fig.add_trace(
            go.Bar(
                y=labels,
                x=[n - base for n in npvs],
                base=[base] * len(npvs),
                orientation="h",
                name=_t(side, lang),
                marker_color=colour,
                opacity=0.75,
                text=text,
                textposition="inside",
                customdata=[_money(n, lang) for n in npvs],
                hovertemplate="%{y}: %{text} → NPV %{customdata}<extra></extra>",
            )
        )
    fig.add_vline(x=base, line_color=GREY, annotation_text=f"{_t('base_npv', lang)} {_money(base, lang)}")
    fig.update_layout(
        title=_t("tornado", lang),
        **template(),
        barmode="overlay",
        height=120 + 45 * t.height,
        xaxis_title=_t("npv", lang),
        legend={"orientation": "h", "y": -0.2},
        margin={"l": 20, "r": 20, "t": 60, "b": 60},
    )
    fig.update_yaxes(automargin=True)
    return fig
