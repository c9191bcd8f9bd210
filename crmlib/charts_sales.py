"""Plotly figures for sales and performance: tidy frame in (from :mod:`crmlib.sales` or
:mod:`crmlib.performance`), ``go.Figure`` out; never shown or saved here.

Titles, axes, stages, categories and statuses are labelled in English or Chinese (``lang``); KPI names
come from the catalog. An empty frame gives a figure that says there is no data for the selection.
"""

from __future__ import annotations

import plotly.graph_objects as go
import polars as pl
from plotly.subplots import make_subplots

from . import config
from .cards import STATUS_COLOURS, format_value
from .charts import line_mode, template
from .i18n import check_lang
from .kpis.catalog import default_catalog

__all__ = [
    "LABELS",
    "label",
    "plot_activity",
    "plot_attainment",
    "plot_contribution_treemap",
    "plot_contribution_waterfall",
    "plot_coverage",
    "plot_forecast",
    "plot_forecast_accuracy",
    "plot_funnel",
    "plot_leaderboard",
    "plot_lost_reasons",
    "plot_trends",
    "plot_velocity",
]

LABELS: dict[str, dict[str, str]] = {
    # titles
    "trends": {"en": "Sales KPIs over time", "zh": "销售指标趋势"},
    "funnel": {"en": "Stage funnel (deals that reached at least each stage)", "zh": "销售阶段漏斗（至少到达各阶段的商机）"},
    "forecast": {"en": "Forecast by category vs quota", "zh": "按预测类别的业绩预测与目标"},
    "coverage": {"en": "Pipeline coverage (open pipeline / remaining quota)", "zh": "销售管道覆盖率（在途商机 ÷ 剩余目标）"},
    "accuracy": {"en": "Forecast accuracy (start-of-period forecast vs actual)", "zh": "预测准确率（期初预测与实际对比）"},
    "velocity": {"en": "Pipeline velocity (expected revenue per day)", "zh": "销售管道速度（每天预计销售额）"},
    "lost_reasons": {"en": "Lost deals by reason", "zh": "丢单原因"},
    "leaderboard": {"en": "Leaderboard", "zh": "排行榜"},
    "attainment": {"en": "Attainment", "zh": "目标完成率"},
    "attainment_trend": {"en": "Attainment by period", "zh": "各期目标完成率"},
    "treemap": {"en": "Contribution: company → department → team → rep", "zh": "贡献构成：公司 → 部门 → 团队 → 销售"},
    "waterfall": {"en": "Contribution to the total", "zh": "对总额的贡献"},
    "activity": {"en": "Activities per rep", "zh": "每位销售的活动量"},
    "no_data": {"en": "No data for this selection.", "zh": "当前筛选条件下没有数据。"},
    # axes and series
    "period": {"en": "Period", "zh": "期间"},
    "stage": {"en": "Stage", "zh": "阶段"},
    "deals": {"en": "Deals", "zh": "商机数"},
    "amount": {"en": "Amount", "zh": "金额"},
    "value": {"en": "Value", "zh": "数值"},
    "target": {"en": "Target", "zh": "目标"},
    "quota": {"en": "Quota", "zh": "销售目标"},
    "previous_year": {"en": "Previous year", "zh": "去年同期"},
    "comparison": {"en": "Comparison", "zh": "对比期"},
    "actual": {"en": "Actual", "zh": "实际"},
    "open_pipeline": {"en": "Open pipeline", "zh": "在途商机金额"},
    "weighted_pipeline": {"en": "Weighted pipeline", "zh": "加权在途商机金额"},
    "remaining_quota": {"en": "Remaining quota", "zh": "剩余目标"},
    "coverage_ratio": {"en": "Coverage", "zh": "覆盖率"},
    "accuracy_axis": {"en": "Accuracy", "zh": "准确率"},
    "velocity_axis": {"en": "Revenue per day", "zh": "每天销售额"},
    "drop_off": {"en": "drop-off", "zh": "流失"},
    "conversion": {"en": "conversion", "zh": "转化率"},
    "median_days": {"en": "median days in stage", "zh": "阶段停留天数中位数"},
    "of_first": {"en": "of first stage", "zh": "占首阶段"},
    "member": {"en": "Member", "zh": "成员"},
    "share": {"en": "share", "zh": "占比"},
    "total": {"en": "Total", "zh": "合计"},
    "activities": {"en": "Activities", "zh": "活动数"},
    "per_won": {"en": "activities per won deal", "zh": "每笔赢单的活动数"},
    "rep": {"en": "Rep", "zh": "销售代表"},
    "company": {"en": "Company", "zh": "公司"},
    # stages
    "prospecting": {"en": "Prospecting", "zh": "初步接洽"},
    "qualification": {"en": "Qualification", "zh": "资格确认"},
    "needs_analysis": {"en": "Needs analysis", "zh": "需求分析"},
    "proposal": {"en": "Proposal", "zh": "方案报价"},
    "negotiation": {"en": "Negotiation", "zh": "商务谈判"},
    "closed_won": {"en": "Closed won", "zh": "赢单"},
    "closed_lost": {"en": "Closed lost", "zh": "丢单"},
    # forecast categories and methods
    "closed": {"en": "Closed", "zh": "已成交"},
    "commit": {"en": "Commit", "zh": "承诺"},
    "best_case": {"en": "Best case", "zh": "最佳情况"},
    "pipeline": {"en": "Pipeline", "zh": "一般商机"},
    "weighted": {"en": "Weighted", "zh": "加权"},
    # lost reasons
    "price": {"en": "Price", "zh": "价格"},
    "competitor": {"en": "Competitor", "zh": "竞争对手"},
    "no_budget": {"en": "No budget", "zh": "没有预算"},
    "no_decision": {"en": "No decision", "zh": "未做决定"},
    "timing": {"en": "Timing", "zh": "时机不对"},
    "product_fit": {"en": "Product fit", "zh": "产品不匹配"},
    "unknown": {"en": "Not given", "zh": "未填写"},
    # activity types
    "calls": {"en": "Calls", "zh": "电话"},
    "emails": {"en": "E-mails", "zh": "邮件"},
    "meetings": {"en": "Meetings", "zh": "会议"},
    "demos": {"en": "Demos", "zh": "演示"},
    "tasks": {"en": "Tasks", "zh": "任务"},
    # statuses
    "on_track": {"en": "on track", "zh": "达标"},
    "at_risk": {"en": "at risk", "zh": "有风险"},
    "off_track": {"en": "off track", "zh": "未达标"},
}


def label(key, lang: str = "en") -> str:
    """The label of a key in ``lang``; the key itself when unknown (a name, an id)."""
    if key is None:
        return LABELS["unknown"][lang]
    entry = LABELS.get(str(key))
    return entry[lang] if entry else str(key)


def _labels(values, lang: str) -> list[str]:
    return [label(v, lang) for v in values]


def _kpi_label(name: str, lang: str) -> str:
    cat = default_catalog()
    return cat.get(name).label.get(lang) if name in cat else name


def _layout(fig: go.Figure, title: str, lang: str, x: str | None = None, y: str | None = None,
            height: int | None = None) -> go.Figure:
    fig.update_layout(
        title=title, **template(), legend={"orientation": "h", "y": -0.2},
        margin={"l": 60, "r": 20, "t": 70, "b": 60}, separators=".,",
        font={"family": "Helvetica, Arial, 'PingFang SC', 'Microsoft YaHei', sans-serif"},
    )
    if height:
        fig.update_layout(height=height)
    if x is not None:
        fig.update_xaxes(title_text=x)
    if y is not None:
        fig.update_yaxes(title_text=y)
    return fig


def _no_data(title: str, lang: str) -> go.Figure:
    fig = go.Figure()
    fig.add_annotation(text=LABELS["no_data"][lang], x=0.5, y=0.5, xref="paper", yref="paper", showarrow=False,
                       font={"size": 16, "color": "#57606a"})
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return _layout(fig, title, lang, height=260)


def _money(values, lang: str) -> list[str]:
    cur = config.base_currency()  # once, not per value (a day grain formats thousands of values)
    return [format_value(v, "currency", 0, lang, cur) for v in values]


def _fmt(kpi: str, values, lang: str) -> list[str]:
    cat = default_catalog()
    if kpi not in cat:
        return [format_value(v, "number", 2, lang) for v in values]
    f = cat.get(kpi).format
    cur = config.base_currency() if f.style == "currency" else None
    return [format_value(v, f.style, f.decimals, lang, cur) for v in values]


def _periods(dates) -> list[str]:
    """Category labels of period starts: ``2025-04`` when every period starts on the 1st, else the date."""
    monthly = all(d is None or d.day == 1 for d in dates)
    return [("–" if d is None else d.strftime("%Y-%m") if monthly else d.isoformat()) for d in dates]


MAX_BAR_LABELS = 40  # more bars than this (days, weeks): values in the hover only, not printed on the bars


def _bar_text(n: int) -> str:
    """``textposition`` for ``n`` labelled bars: outside them, or none when they would not be readable
    (and would slow the browser down: each label is placed one by one)."""
    return "outside" if n <= MAX_BAR_LABELS else "none"


def _empty(frame: pl.DataFrame | None, value: str = "value") -> bool:
    return frame is None or frame.height == 0 or frame.get_column(value).is_null().all()


# ---------------------------------------------------------------------------------------------------
# Sales
# ---------------------------------------------------------------------------------------------------
def plot_trends(frame: pl.DataFrame, lang: str = "en") -> go.Figure:
    """One panel per KPI: value per period, the target (dashed) and the comparison (dotted)
    (input: :func:`crmlib.sales.trends`, engine rows)."""
    check_lang(lang)
    title = LABELS["trends"][lang]
    if _empty(frame):
        return _no_data(title, lang)
    kpis = frame.get_column("kpi").unique(maintain_order=True).to_list()
    cols = 2 if len(kpis) > 1 else 1
    nrows = (len(kpis) + cols - 1) // cols
    fig = make_subplots(rows=nrows, cols=cols, subplot_titles=[_kpi_label(k, lang) for k in kpis],
                        vertical_spacing=0.12, horizontal_spacing=0.1)
    shown: set[str] = set()
    for i, kpi in enumerate(kpis):
        part = frame.filter(pl.col("kpi") == kpi).sort("period")
        r, c = i // cols + 1, i % cols + 1
        x = part.get_column("period").to_numpy()  # arrays, not lists: plotly checks and copies them whole
        series = [("value", LABELS["actual"][lang], {"width": 2.5, "color": "#0969da"}, "lines+markers"),
                  ("target", LABELS["target"][lang], {"dash": "dash", "width": 1.5, "color": "#cf222e"}, "lines"),
                  ("comparison", LABELS["comparison"][lang], {"dash": "dot", "width": 1.5, "color": "#8c959f"},
                   "lines")]
        for col, name, line, mode in series:
            mode = line_mode(len(x)) if mode == "lines+markers" else mode
            ys = part.get_column(col)
            if ys.is_null().all():
                continue
            fig.add_trace(go.Scatter(x=x, y=ys.to_numpy(), name=name, mode=mode, line=line, legendgroup=col,
                                     showlegend=col not in shown, text=_fmt(kpi, ys.to_list(), lang),
                                     hovertemplate="%{x}: %{text}<extra></extra>"), row=r, col=c)
            shown.add(col)
    return _layout(fig, title, lang, height=max(320, 260 * nrows))


def plot_funnel(frame: pl.DataFrame, lang: str = "en") -> go.Figure:
    """Deals that reached at least each stage, in pipeline order, with conversion, drop-off and median
    days in stage (input: :func:`crmlib.sales.funnel`)."""
    check_lang(lang)
    title = LABELS["funnel"][lang]
    if frame is None or frame.height == 0 or frame.get_column("deals").sum() == 0:
        return _no_data(title, lang)
    f = frame.sort("step")
    conv, drop = f.get_column("conversion").to_list(), f.get_column("drop_off").to_list()
    days = f.get_column("median_days_in_stage").to_list()
    texts = []
    for c, d in zip(conv, drop, strict=True):
        texts.append("" if c is None else f"{LABELS['conversion'][lang]} {c:.0%} · {LABELS['drop_off'][lang]} {d:.0%}")
    hover = [f"{LABELS['median_days'][lang]}: {'–' if d is None else f'{d:.1f}'}<br>{v}"
             for d, v in zip(days, _money(f.get_column("value").to_list(), lang), strict=True)]
    fig = go.Figure(go.Funnel(
        y=_labels(f.get_column("stage").to_list(), lang), x=f.get_column("deals").to_list(),
        textinfo="value+percent initial", customdata=list(zip(texts, hover, strict=True)),
        hovertemplate="%{y}: %{x}<br>%{customdata[0]}<br>%{customdata[1]}<extra></extra>",
        marker={"color": "#0969da"}, connector={"line": {"color": "#d0d7de"}},
    ))
    for i, t in enumerate(texts):
        if t:
            fig.add_annotation(x=1.0, xref="paper", y=i - 0.5, text=t, showarrow=False, xanchor="right",
                               font={"size": 11, "color": "#cf222e"})
    return _layout(fig, title, lang, y=LABELS["stage"][lang], height=420)


def plot_forecast(frame: pl.DataFrame, lang: str = "en") -> go.Figure:
    """Closed, commit, best case and pipeline adding up to the forecast, against the quota
    (input: :func:`crmlib.sales.forecast`)."""
    check_lang(lang)
    title = LABELS["forecast"][lang]
    if frame is None or frame.height == 0 or (frame.get_column("amount").sum() or 0) == 0:
        return _no_data(title, lang)
    amounts = frame.get_column("amount").to_list()
    cats = _labels(frame.get_column("category").to_list(), lang)
    fig = go.Figure(go.Waterfall(
        x=cats, y=amounts, measure=["relative"] * len(amounts), text=_money(amounts, lang), textposition="outside",
        increasing={"marker": {"color": "#1a7f37"}}, connector={"line": {"color": "#d0d7de"}},
        hovertemplate="%{x}: %{text}<extra></extra>",
    ))
    q = frame.get_column("quota")[0]
    if q is not None:
        fig.add_hline(y=q, line_dash="dash", line_color="#cf222e",
                      annotation_text=f"{LABELS['quota'][lang]} {format_value(q, 'currency', 0, lang)}",
                      annotation_position="top left")
    return _layout(fig, title, lang, y=f"{LABELS['amount'][lang]} ({config.base_currency()})")


def plot_coverage(frame: pl.DataFrame, lang: str = "en") -> go.Figure:
    """Open and weighted pipeline against the remaining quota per period, coverage on the bars
    (input: :func:`crmlib.sales.pipeline_coverage`)."""
    check_lang(lang)
    title = LABELS["coverage"][lang]
    if frame is None or frame.height == 0 or frame.select(pl.col("open_pipeline").sum() + pl.col("quota").fill_null(0)
                                                          .sum()).item() == 0:
        return _no_data(title, lang)
    f = frame.sort("period")
    x = _periods(f.get_column("period").to_list())
    cov = f.get_column("coverage").to_list()
    fig = go.Figure()
    fig.add_trace(go.Bar(x=x, y=f.get_column("open_pipeline").to_list(), name=LABELS["open_pipeline"][lang],
                         marker_color="#0969da", text=["" if c is None else f"{c:.2f}×" for c in cov],
                         textposition=_bar_text(len(x))))
    fig.add_trace(go.Bar(x=x, y=f.get_column("weighted_pipeline").to_list(), name=LABELS["weighted_pipeline"][lang],
                         marker_color="#54aeff"))
    fig.add_trace(go.Scatter(x=x, y=f.get_column("remaining_quota").to_list(), name=LABELS["remaining_quota"][lang],
                             mode=line_mode(len(x)), line={"color": "#cf222e", "dash": "dash"}))
    fig.update_layout(barmode="group")
    fig.update_xaxes(type="category")
    return _layout(fig, title, lang, x=LABELS["period"][lang], y=f"{LABELS['amount'][lang]} ({config.base_currency()})")


def plot_forecast_accuracy(frame: pl.DataFrame, lang: str = "en") -> go.Figure:
    """Accuracy of each forecast method per period (input: :func:`crmlib.sales.forecast_accuracy`)."""
    check_lang(lang)
    title = LABELS["accuracy"][lang]
    if _empty(frame, "accuracy"):
        return _no_data(title, lang)
    fig = go.Figure()
    for method in frame.get_column("method").unique(maintain_order=True).to_list():
        part = frame.filter(pl.col("method") == method).sort("period")
        fig.add_trace(go.Scatter(x=part.get_column("period").to_list(), y=part.get_column("accuracy").to_list(),
                                 name=label(method, lang), mode=line_mode(part.height)))
    fig.update_yaxes(tickformat=".0%", range=[0, 1.05])
    return _layout(fig, title, lang, x=LABELS["period"][lang], y=LABELS["accuracy_axis"][lang])


def plot_velocity(frame: pl.DataFrame, lang: str = "en") -> go.Figure:
    """Pipeline velocity per period, its parts in the hover (input: :func:`crmlib.sales.velocity`)."""
    check_lang(lang)
    title = LABELS["velocity"][lang]
    if _empty(frame, "velocity_per_day"):
        return _no_data(title, lang)
    f = frame.sort("period")
    parts = [f"{_kpi_label('open_deals', lang)} {o:,.0f} · {_kpi_label('avg_deal_size', lang)} "
             f"{format_value(a, 'currency', 0, lang)} · {_kpi_label('win_rate', lang)} "
             f"{format_value(w, 'percent', 1, lang)} · {_kpi_label('sales_cycle_days', lang)} "
             f"{format_value(c, 'days', 1, lang)}" if None not in (o, a, w, c) else "–"
             for o, a, w, c in f.select("open_deals", "avg_deal_size", "win_rate", "cycle_days").iter_rows()]
    v = f.get_column("velocity_per_day").to_list()
    fig = go.Figure(go.Bar(x=_periods(f.get_column("period").to_list()), y=v, text=_money(v, lang),
                           textposition=_bar_text(len(v)),
                           customdata=parts, marker_color="#8250df",
                           hovertemplate="%{x}: %{text}<br>%{customdata}<extra></extra>"))
    fig.update_xaxes(type="category")
    return _layout(fig, title, lang, x=LABELS["period"][lang],
                   y=f"{LABELS['velocity_axis'][lang]} ({config.base_currency()})")


def plot_lost_reasons(frame: pl.DataFrame, lang: str = "en") -> go.Figure:
    """Lost deals per reason with their share (input: :func:`crmlib.sales.lost_reasons`)."""
    check_lang(lang)
    title = LABELS["lost_reasons"][lang]
    if frame is None or frame.height == 0:
        return _no_data(title, lang)
    f = frame.reverse()  # most deals on top
    shares = f.get_column("share_deals").to_list()
    fig = go.Figure(go.Bar(
        y=_labels(f.get_column("lost_reason").to_list(), lang), x=f.get_column("deals").to_list(), orientation="h",
        text=[f"{s:.0%}" for s in shares], textposition="outside", marker_color="#cf222e",
        customdata=_money(f.get_column("amount").to_list(), lang),
        hovertemplate="%{y}: %{x} · %{customdata}<extra></extra>"))
    return _layout(fig, title, lang, x=LABELS["deals"][lang])


# ---------------------------------------------------------------------------------------------------
# Performance
# ---------------------------------------------------------------------------------------------------
def _member_names(frame: pl.DataFrame) -> list[str]:
    names = frame.get_column("name") if "name" in frame.columns else frame.get_column("member_id")
    return [n if n is not None else m for n, m in zip(names.to_list(), frame.get_column("member_id").to_list(),
                                                        strict=True)]


def plot_leaderboard(frame: pl.DataFrame, lang: str = "en", top: int | None = 20) -> go.Figure:
    """Members best first: attainment (with the 100 % line) when ranked by attainment, else the value;
    bars coloured by status (input: :func:`crmlib.performance.leaderboard` or ``attainment``)."""
    check_lang(lang)
    kpi = frame.get_column("kpi")[0] if frame is not None and frame.height else None
    title = f"{LABELS['leaderboard'][lang]}: {_kpi_label(kpi, lang)}" if kpi else LABELS["leaderboard"][lang]
    if _empty(frame):
        return _no_data(title, lang)
    by_att = frame.get_column("attainment").is_not_null().any()
    f = frame.head(top) if top else frame
    f = f.reverse()  # best on top
    key = "attainment" if by_att else "value"
    ys = f.get_column(key).to_list()
    names = _member_names(f)
    if "rank" in f.columns:
        names = [f"{r}. {n}" for r, n in zip(f.get_column("rank").to_list(), names, strict=True)]
    colours = [STATUS_COLOURS.get(s, STATUS_COLOURS[None]) for s in f.get_column("status").to_list()]
    text = ([format_value(v, "percent", 0, lang) for v in ys] if by_att else _fmt(kpi, ys, lang))
    fig = go.Figure(go.Bar(y=names, x=ys, orientation="h", marker_color=colours, text=text, textposition="outside",
                           customdata=list(zip(_fmt(kpi, f.get_column("value").to_list(), lang),
                                               f.get_column("member_id").to_list(), strict=True)),
                           hovertemplate="%{y}: %{text} · %{customdata[0]}<extra></extra>"))
    if by_att:
        fig.add_vline(x=1.0, line_dash="dash", line_color="#57606a")
        fig.update_xaxes(tickformat=".0%")
    return _layout(fig, title, lang, x=LABELS["attainment"][lang] if by_att else _kpi_label(kpi, lang),
                   height=max(300, 28 * f.height + 120))


def plot_attainment(frame: pl.DataFrame, lang: str = "en") -> go.Figure:
    """Attainment of each member: bars over the whole period, or lines per period when the frame has a
    ``period`` column (input: :func:`crmlib.performance.attainment`)."""
    check_lang(lang)
    kpi = frame.get_column("kpi")[0] if frame is not None and frame.height else None
    per = frame is not None and "period" in frame.columns
    base = LABELS["attainment_trend" if per else "attainment"][lang]
    title = f"{base}: {_kpi_label(kpi, lang)}" if kpi else base
    if _empty(frame):
        return _no_data(title, lang)
    if not per:
        return plot_leaderboard(frame, lang, top=None).update_layout(title=title)
    by_att = frame.get_column("attainment").is_not_null().any()  # without targets: the values
    key = "attainment" if by_att else "value"
    fig = go.Figure()
    for member in frame.get_column("member_id").unique(maintain_order=True).to_list():
        part = frame.filter(pl.col("member_id") == member).sort("period")
        ys = part.get_column(key).to_list()
        fig.add_trace(go.Scatter(x=part.get_column("period").to_list(), y=ys, name=_member_names(part)[0],
                                 mode=line_mode(part.height), text=_fmt(kpi, part.get_column("value").to_list(), lang),
                                 hovertemplate="%{x}: %{y} · %{text}<extra></extra>"))
    if by_att:
        fig.add_hline(y=1.0, line_dash="dash", line_color="#57606a")
        fig.update_yaxes(tickformat=".0%")
    return _layout(fig, title if by_att else _kpi_label(kpi, lang), lang, x=LABELS["period"][lang],
                   y=LABELS["attainment"][lang] if by_att else _kpi_label(kpi, lang))


def plot_contribution_treemap(tree: pl.DataFrame, lang: str = "en", kpi: str = "revenue") -> go.Figure:
    """Company → department → team → rep, areas by value, share of the parent in the labels
    (input: :func:`crmlib.performance.contribution_tree`)."""
    check_lang(lang)
    title = f"{LABELS['treemap'][lang]} ({_kpi_label(kpi, lang)})"
    if _empty(tree):
        return _no_data(title, lang)
    labels = [LABELS["company"][lang] if lv == "company" else lb
              for lv, lb in tree.select("level", "label").iter_rows()]
    values = tree.get_column("value").to_list()
    fig = go.Figure(go.Treemap(
        ids=tree.get_column("id").to_list(), parents=tree.get_column("parent").to_list(), labels=labels,
        values=values, branchvalues="total", customdata=_fmt(kpi, values, lang),
        texttemplate="%{label}<br>%{customdata}<br>%{percentParent:.0%}",
        hovertemplate="%{label}: %{customdata} (%{percentParent:.1%})<extra></extra>",
    ))
    return _layout(fig, title, lang, height=560)


def plot_contribution_waterfall(frame: pl.DataFrame, lang: str = "en") -> go.Figure:
    """Members adding up to their parent's total, largest first (input:
    :func:`crmlib.performance.contribution`, typically departments in the company)."""
    check_lang(lang)
    kpi = "revenue"
    if frame is not None and frame.height and "kpi" in frame.columns:
        kpi = frame.get_column("kpi")[0]
    title = LABELS["waterfall"][lang]
    if _empty(frame) or (frame.get_column("value").sum() or 0) == 0:
        return _no_data(title, lang)
    f = frame.sort("value", descending=True)
    values = f.get_column("value").to_list()
    total = sum(v for v in values if v is not None)
    shares = f.get_column("share_of_total").to_list() if "share_of_total" in f.columns else [None] * len(values)
    text = [f"{t} ({s:.0%})" if s is not None else t for t, s in zip(_fmt(kpi, values, lang), shares, strict=True)]
    fig = go.Figure(go.Waterfall(
        x=[*_member_names(f), LABELS["total"][lang]], y=[*values, total],
        measure=[*["relative"] * len(values), "total"], text=[*text, _fmt(kpi, [total], lang)[0]],
        textposition="outside", connector={"line": {"color": "#d0d7de"}},
        increasing={"marker": {"color": "#0969da"}}, totals={"marker": {"color": "#1a7f37"}},
        hovertemplate="%{x}: %{text}<extra></extra>"))
    return _layout(fig, title, lang, y=_kpi_label(kpi, lang))


def plot_activity(frame: pl.DataFrame, lang: str = "en", top: int | None = 25) -> go.Figure:
    """Calls, e-mails and meetings per member, stacked, with activities per won deal in the hover
    (input: :func:`crmlib.performance.activity`)."""
    check_lang(lang)
    title = LABELS["activity"][lang]
    if frame is None or frame.height == 0 or "member_id" not in frame.columns or frame.get_column("activities").sum() == 0:
        return _no_data(title, lang)
    f = (frame.head(top) if top else frame).reverse()
    names = _member_names(f)
    per_won = [f"{v:.1f}" if v is not None else "–" for v in f.get_column("activities_per_won_deal").to_list()]
    fig = go.Figure()
    for col, colour in (("calls", "#0969da"), ("emails", "#54aeff"), ("meetings", "#8250df"), ("demos", "#bf8700"),
                        ("tasks", "#8c959f")):
        fig.add_trace(go.Bar(y=names, x=f.get_column(col).to_list(), name=LABELS[col][lang], orientation="h",
                             marker_color=colour, customdata=per_won,
                             hovertemplate="%{y}: %{x}<br>" + LABELS["per_won"][lang] + " %{customdata}<extra></extra>"))
    fig.update_layout(barmode="stack")
    return _layout(fig, title, lang, x=LABELS["activities"][lang], height=max(300, 24 * f.height + 140))
