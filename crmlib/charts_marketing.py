"""Marketing figures and tables: tidy frame in, ``go.Figure`` (or ``great_tables.GT``) out; never shown or saved.

* :func:`plot_funnel` - the lead funnel with drop-off (:func:`crmlib.marketing.funnel`);
* :func:`plot_attribution` - attributed revenue (or conversions) per channel, grouped by model
  (:func:`crmlib.marketing.attribution`);
* :func:`plot_path_sankey` - the most frequent journeys as a Sankey diagram (:func:`crmlib.marketing.journeys`);
* :func:`plot_wasted_spend` - ROI per channel under every model, wasted spend highlighted
  (:func:`crmlib.marketing.wasted_spend`);
* :func:`plot_reallocation` - current vs proposed budget and the expected revenue change
  (:func:`crmlib.marketing.reallocation`);
* :func:`fmt_cost_kpis`, :func:`fmt_budget`, :func:`fmt_wasted_spend` - the tables.

Labels are English or Chinese (``lang``); this module keeps its own :data:`LABELS` and falls back to
:func:`crmlib.i18n.t`.
"""

from __future__ import annotations

import plotly.graph_objects as go
import polars as pl
from great_tables import GT

from . import i18n
from .cards import format_value
from .charts import template

LABELS: dict[str, dict[str, str]] = {
    # titles and axes
    "funnel": {"en": "Lead funnel", "zh": "线索漏斗"},
    "leads": {"en": "Leads", "zh": "线索数"},
    "of_previous": {"en": "of previous step", "zh": "上一步转化率"},
    "drop_off": {"en": "drop-off", "zh": "流失"},
    "median_days": {"en": "median days from previous step", "zh": "距上一步中位天数"},
    "attribution": {"en": "Attributed revenue by channel and model", "zh": "各渠道归因收入（按模型）"},
    "attribution_conv": {"en": "Attributed conversions by channel and model", "zh": "各渠道归因转化数（按模型）"},
    "channel": {"en": "Channel", "zh": "渠道"},
    "campaign": {"en": "Campaign", "zh": "营销活动"},
    "model": {"en": "Model", "zh": "模型"},
    "revenue": {"en": "Revenue", "zh": "收入"},
    "conversions": {"en": "Conversions", "zh": "转化数"},
    "top_paths": {"en": "Most frequent journeys", "zh": "最常见的客户旅程"},
    "step": {"en": "step", "zh": "第"},
    "step_suffix": {"en": "", "zh": "步"},
    "converted": {"en": "Converted", "zh": "已转化"},
    "not_converted": {"en": "Not converted", "zh": "未转化"},
    "journeys": {"en": "journeys", "zh": "条旅程"},
    "wasted_title": {"en": "ROI by channel under each model (below the line: ROI < {t})",
                     "zh": "各渠道在各模型下的 ROI（虚线以下：ROI < {t}）"},
    "roi": {"en": "ROI = (attributed revenue − spend) / spend", "zh": "ROI =（归因收入 − 费用）÷ 费用"},
    "wasted": {"en": "Wasted (ROI below threshold under every data-driven model)",
               "zh": "浪费（所有数据驱动模型下 ROI 均低于阈值）"},
    "reallocation": {"en": "Budget reallocation proposal", "zh": "预算再分配建议"},
    "spend": {"en": "Spend", "zh": "费用"},
    "current_spend": {"en": "Current spend", "zh": "当前费用"},
    "proposed_spend": {"en": "Proposed spend", "zh": "建议费用"},
    "revenue_change": {"en": "Expected revenue change", "zh": "预期收入变化"},
    "assumption": {"en": "Assumption", "zh": "假设"},
    "assumption_text": {
        "en": "constant ROAS per channel under {m} (no saturation): an upper bound on the gain",
        "zh": "各渠道 ROAS 在 {m} 模型下保持不变（不考虑饱和），收益为上限估计",
    },
    "cost_kpis": {"en": "Cost KPIs", "zh": "成本指标"},
    "cost_note": {"en": "CAC = marketing spend / new customers won in the period",
                  "zh": "获客成本（CAC）= 营销费用 ÷ 统计期内新赢得的客户数"},
    "mqls": {"en": "MQLs", "zh": "MQL 数"},
    "new_customers": {"en": "New customers", "zh": "新客户数"},
    "cost_per_lead": {"en": "Cost per lead", "zh": "单条线索成本"},
    "cost_per_mql": {"en": "Cost per MQL", "zh": "单个 MQL 成本"},
    "cac": {"en": "CAC", "zh": "获客成本"},
    "budget": {"en": "Budget vs actual spend", "zh": "预算与实际费用"},
    "budget_col": {"en": "Budget", "zh": "预算"},
    "remaining": {"en": "Remaining", "zh": "剩余"},
    "spent_share": {"en": "Spent", "zh": "已用比例"},
    "elapsed_share": {"en": "Time elapsed", "zh": "时间进度"},
    "pace": {"en": "Pace", "zh": "花费节奏"},
    "name": {"en": "Name", "zh": "名称"},
    "wasted_table": {"en": "Wasted spend: spend and ROI under each model", "zh": "浪费的费用：各模型下的费用与 ROI"},
    "agreement": {"en": "Agreement", "zh": "模型一致度"},
    "wasted_spend": {"en": "Wasted spend", "zh": "浪费费用"},
    "no_data": {"en": "No data in the period", "zh": "统计期内无数据"},
    "none": {"en": "(none)", "zh": "（无）"},
    "yes": {"en": "yes", "zh": "是"},
    "no": {"en": "no", "zh": "否"},
    # steps
    "lead": {"en": "Lead", "zh": "线索"},
    "mql": {"en": "MQL", "zh": "市场合格线索（MQL）"},
    "sql": {"en": "SQL", "zh": "销售合格线索（SQL）"},
    "opportunity": {"en": "Opportunity", "zh": "商机"},
    "won": {"en": "Won", "zh": "赢单"},
    # models
    "first_touch": {"en": "First touch", "zh": "首次触点"},
    "last_touch": {"en": "Last touch", "zh": "末次触点"},
    "linear": {"en": "Linear", "zh": "线性"},
    "time_decay": {"en": "Time decay", "zh": "时间衰减"},
    "u_shaped": {"en": "U-shaped", "zh": "U 型"},
    "w_shaped": {"en": "W-shaped", "zh": "W 型"},
    "markov": {"en": "Markov chain", "zh": "马尔可夫链"},
    "shapley": {"en": "Shapley value", "zh": "沙普利值"},
    # channels
    "paid_search": {"en": "Paid search", "zh": "付费搜索"},
    "organic_search": {"en": "Organic search", "zh": "自然搜索"},
    "social_paid": {"en": "Paid social", "zh": "付费社交"},
    "social_organic": {"en": "Organic social", "zh": "自然社交"},
    "display": {"en": "Display", "zh": "展示广告"},
    "email": {"en": "Email", "zh": "电子邮件"},
    "events": {"en": "Events", "zh": "线下活动"},
    "webinar": {"en": "Webinar", "zh": "网络研讨会"},
    "referral": {"en": "Referral", "zh": "转介绍"},
    "partner": {"en": "Partner", "zh": "合作伙伴"},
    "direct": {"en": "Direct", "zh": "直接访问"},
    "donor": {"en": "gives budget", "zh": "调出预算"},
    "recipient": {"en": "receives budget", "zh": "调入预算"},
    "unchanged": {"en": "unchanged", "zh": "不变"},
}

_LAYOUT = {"margin": {"l": 60, "r": 20, "t": 60, "b": 60},
           "legend": {"orientation": "h", "y": -0.2}}
_STEP_DIMS = ("channel", "campaign_id", "cohort")


def t(key, lang: str = "en") -> str:
    """Label of ``key`` in ``lang`` (this module's labels, then :mod:`crmlib.i18n`'s, else the key)."""
    i18n.check_lang(lang)
    if key is None:
        return LABELS["none"][lang]
    entry = LABELS.get(str(key))
    return entry[lang] if entry else i18n.t(str(key), lang)


def _empty(title: str, lang: str) -> go.Figure:
    fig = go.Figure()
    fig.add_annotation(text=t("no_data", lang), showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    fig.update_layout(title=title, **_LAYOUT, **template())
    return fig


def plot_funnel(funnel: pl.DataFrame, lang: str = "en") -> go.Figure:
    """Lead funnel with drop-off: one funnel per group when the frame is grouped (channel, campaign, cohort)."""
    if funnel.height == 0:
        return _empty(t("funnel", lang), lang)
    dims = [c for c in _STEP_DIMS if c in funnel.columns]
    groups = funnel.select(dims).unique(maintain_order=True).rows() if dims else [()]
    fig = go.Figure()
    for g in groups:
        part = funnel
        for d, v in zip(dims, g, strict=True):
            part = part.filter(pl.col(d).is_null() if v is None else pl.col(d) == v)
        part = part.sort("step_index")
        text = []
        for conv, drop, days in part.select("conversion", "drop_off", "median_days").iter_rows():
            bits = [] if conv is None else [f"{conv:.0%} {t('of_previous', lang)}"]
            if drop:
                bits.append(f"−{drop:,} {t('drop_off', lang)}")
            if days is not None:
                bits.append(format_value(days, "days", 1, lang))  # 1.4 d, 1.4 天
            text.append("<br>".join(bits))
        name = " / ".join(t(v, lang) if d == "channel" else str(v) for d, v in zip(dims, g, strict=True)) or None
        fig.add_trace(go.Funnel(
            y=[t(s, lang) for s in part.get_column("step")], x=part.get_column("count").to_list(),
            name=name, text=text, textinfo="value+text", hovertext=text,
            hovertemplate="%{y}: %{x:,}<br>%{hovertext}<extra>%{fullData.name}</extra>"))
    fig.update_layout(title=t("funnel", lang), showlegend=bool(dims), **_LAYOUT, **template())
    return fig


def plot_attribution(attributed: pl.DataFrame, lang: str = "en", measure: str = "value") -> go.Figure:
    """Grouped bars: attributed ``measure`` ("value" = revenue, or "conversions") per channel, one bar per model."""
    title = t("attribution" if measure == "value" else "attribution_conv", lang)
    if attributed.height == 0:
        return _empty(title, lang)
    per = attributed.group_by("model", "channel").agg(pl.col(measure).sum())
    models = list(dict.fromkeys(attributed.get_column("model").to_list()))
    ref = "markov" if "markov" in models else models[0]
    order = (per.filter(pl.col("model") == ref).sort(measure, descending=True).get_column("channel").to_list())
    fig = go.Figure()
    for m in models:
        part = per.filter(pl.col("model") == m)
        values = dict(part.select("channel", measure).iter_rows())
        fig.add_trace(go.Bar(x=[t(c, lang) for c in order], y=[values.get(c, 0.0) for c in order], name=t(m, lang)))
    fig.update_layout(title=title, barmode="group", xaxis_title=t("channel", lang),
                      yaxis_title=t("revenue" if measure == "value" else "conversions", lang), **_LAYOUT, **template())
    return fig


def plot_path_sankey(paths: pl.DataFrame, lang: str = "en", top: int = 15, max_steps: int = 5) -> go.Figure:
    """The ``top`` most frequent journeys (by journeys = conversions + nulls) as a Sankey: one column of nodes per
    step (the first ``max_steps`` touches), ending in converted / not converted."""
    title = t("top_paths", lang)
    if paths.height == 0:
        return _empty(title, lang)
    agg = (paths.group_by(pl.col("path").list.head(max_steps))
           .agg(pl.col("conversions").sum(), pl.col("nulls").sum())
           .with_columns((pl.col("conversions") + pl.col("nulls")).alias("n"))
           .sort(["n", "path"], descending=[True, False]).head(top).with_row_index("pid"))
    steps = agg.explode("path").with_columns(pl.int_range(pl.len()).over("pid").alias("k"))
    hops = (steps.with_columns(pl.col("path").shift(-1).over("pid").alias("next"))
            .filter(pl.col("next").is_not_null())
            .group_by("k", "path", "next").agg(pl.col("n").sum()))
    last = steps.filter(pl.col("k") == pl.col("k").max().over("pid"))
    ends = pl.concat([
        last.select("k", "path", pl.lit("__conv").alias("next"), pl.col("conversions").alias("n")),
        last.select("k", "path", pl.lit("__null").alias("next"), pl.col("nulls").alias("n")),
    ]).group_by("k", "path", "next").agg(pl.col("n").sum()).filter(pl.col("n") > 0)
    nodes: dict[tuple, int] = {}
    labels: list[str] = []

    def node(key: tuple, label: str) -> int:
        if key not in nodes:
            nodes[key] = len(labels)
            labels.append(label)
        return nodes[key]

    source, target, value = [], [], []
    for k, ch, nxt, n in hops.sort("k", "path", "next").iter_rows():  # links of the top paths: a few dozen
        source.append(node((k, ch), t(ch, lang)))
        target.append(node((k + 1, nxt), t(nxt, lang)))
        value.append(n)
    end_label = {"__conv": t("converted", lang), "__null": t("not_converted", lang)}
    for k, ch, nxt, n in ends.sort("k", "path", "next").iter_rows():
        source.append(node((k, ch), t(ch, lang)))
        target.append(node(("end", nxt), end_label[nxt]))
        value.append(n)
    fig = go.Figure(go.Sankey(node={"label": labels, "pad": 12, "thickness": 14},
                              link={"source": source, "target": target, "value": value}))
    fig.update_layout(title=f"{title} (top {agg.height}, ≤ {max_steps} {t('step', lang)}{t('step_suffix', lang)})",
                      **template(), margin={"l": 20, "r": 20, "t": 60, "b": 20})
    return fig


def plot_wasted_spend(wasted: pl.DataFrame, lang: str = "en", roi_threshold: float = 1.0) -> go.Figure:
    """ROI per channel (or campaign) under every model as markers; wasted rows (below the threshold under every
    data-driven model) shaded; the threshold as a dashed line. Rows without spend are left out."""
    title = t("wasted_title", lang).format(t=roi_threshold)
    paid = wasted.filter(pl.col("spend") > 0)
    if paid.height == 0:
        return _empty(title, lang)
    key = "campaign_id" if "campaign_id" in wasted.columns else "channel"
    paid = paid.sort("spend", descending=True)
    x = [t(v, lang) if key == "channel" else str(v) for v in paid.get_column(key)]
    fig = go.Figure()
    flagged = paid.get_column("wasted").to_list()
    top = max(paid.get_column("roi_max").max() or 0.0, roi_threshold) + 0.5
    low = min(paid.get_column("roi_min").min() or 0.0, -1.0) - 0.2
    fig.add_trace(go.Bar(x=[xi for xi, f in zip(x, flagged, strict=True) if f],
                         y=[top - low] * sum(flagged), base=low, marker={"color": "rgba(220,50,50,0.12)"},
                         name=t("wasted", lang), hoverinfo="skip"))
    for m in [c[len("roi_"):] for c in wasted.columns if c.startswith("roi_") and c not in ("roi_min", "roi_max")]:
        fig.add_trace(go.Scatter(x=x, y=paid.get_column(f"roi_{m}").to_list(), mode="markers", name=t(m, lang),
                                 marker={"size": 11 if m in ("markov", "shapley") else 7,
                                         "symbol": "diamond" if m in ("markov", "shapley") else "circle"}))
    fig.add_hline(y=roi_threshold, line_dash="dash", line_color="gray")
    fig.update_layout(title=title, xaxis_title=t("channel" if key == "channel" else "campaign", lang),
                      yaxis_title=t("roi", lang), yaxis_range=[low, top], **_LAYOUT, **template())
    return fig


def plot_reallocation(proposal: pl.DataFrame, lang: str = "en") -> go.Figure:
    """Current vs proposed spend per channel (bars) and the expected revenue change (markers, right axis);
    the assumption is printed under the chart."""
    if proposal.height == 0:
        return _empty(t("reallocation", lang), lang)
    x = [f"{t(c, lang)}<br>({t(r, lang)})" for c, r in proposal.select("channel", "role").iter_rows()]
    fig = go.Figure()
    fig.add_trace(go.Bar(x=x, y=proposal.get_column("spend").to_list(), name=t("current_spend", lang)))
    fig.add_trace(go.Bar(x=x, y=proposal.get_column("proposed_spend").to_list(), name=t("proposed_spend", lang)))
    fig.add_trace(go.Scatter(x=x, y=proposal.get_column("revenue_change").to_list(), mode="markers",
                             marker={"size": 12, "symbol": "diamond"}, name=t("revenue_change", lang), yaxis="y2"))
    model = proposal.get_column("model").first()
    note = f"{t('assumption', lang)}: {t('assumption_text', lang).format(m=t(model, lang))}"
    fig.update_layout(
        title={"text": t("reallocation", lang), "subtitle": {"text": note}}, barmode="group",
        yaxis_title=t("spend", lang),
        yaxis2={"title": t("revenue_change", lang), "overlaying": "y", "side": "right", "showgrid": False},
        **template(), margin={"l": 60, "r": 60, "t": 80, "b": 60},
        legend={"orientation": "h", "y": -0.2})
    return fig


# ---------------------------------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------------------------------
def _channel_labels(frame: pl.DataFrame, lang: str) -> pl.DataFrame:
    if "channel" not in frame.columns:
        return frame
    mapping = {c: t(c, lang) for c in frame.get_column("channel").unique().to_list() if c is not None}
    return frame.with_columns(pl.col("channel").replace_strict(mapping, default=t(None, lang)))


def fmt_cost_kpis(costs: pl.DataFrame, lang: str = "en") -> GT:
    """Spend, leads, MQLs, new customers, cost per lead / MQL and CAC (:func:`crmlib.marketing.cost_kpis`)."""
    shown = _channel_labels(costs, lang)
    labels = {c: t(c if c != "campaign_id" else "campaign", lang) for c in shown.columns}
    labels.update(leads=t("leads", lang))
    money = [c for c in ("spend", "cost_per_lead", "cost_per_mql", "cac") if c in shown.columns]
    return (GT(shown).tab_header(title=t("cost_kpis", lang)).cols_label(**labels)
            .fmt_number(columns=money, decimals=0).fmt_integer(columns=["leads", "mqls", "new_customers"])
            .sub_missing(missing_text="–").tab_source_note(t("cost_note", lang)))


def fmt_budget(budget: pl.DataFrame, lang: str = "en") -> GT:
    """Budget vs actual per campaign (:func:`crmlib.marketing.budget_vs_actual`)."""
    shown = _channel_labels(budget, lang).drop("start_date", "end_date")
    return (GT(shown).tab_header(title=t("budget", lang))
            .cols_label(campaign_id=t("campaign", lang), name=t("name", lang), channel=t("channel", lang),
                        budget=t("budget_col", lang), spend=t("spend", lang), remaining=t("remaining", lang),
                        spent_share=t("spent_share", lang), elapsed_share=t("elapsed_share", lang),
                        pace=t("pace", lang))
            .fmt_number(columns=["budget", "spend", "remaining"], decimals=0)
            .fmt_percent(columns=["spent_share", "elapsed_share"], decimals=0)
            .fmt_number(columns="pace", decimals=2).sub_missing(missing_text="–"))


def fmt_wasted_spend(wasted: pl.DataFrame, lang: str = "en") -> GT:
    """The wasted-spend report (:func:`crmlib.marketing.wasted_spend`): spend, ROI under each model, agreement,
    the flag and the wasted amount; rows without spend are left out."""
    roi_cols = [c for c in wasted.columns if c.startswith("roi_") and c not in ("roi_min", "roi_max")]
    keys = [c for c in ("channel", "campaign_id") if c in wasted.columns]
    shown = _channel_labels(wasted.filter(pl.col("spend") > 0), lang).select(
        *keys, "spend", *roi_cols, "agreement",
        pl.when(pl.col("wasted")).then(pl.lit(t("yes", lang))).otherwise(pl.lit(t("no", lang))).alias("wasted"),
        "wasted_spend")
    labels = {c: t(c[len("roi_"):], lang) for c in roi_cols}
    labels.update(spend=t("spend", lang), agreement=t("agreement", lang), wasted=t("wasted", lang),
                  wasted_spend=t("wasted_spend", lang), channel=t("channel", lang))
    if "campaign_id" in keys:
        labels["campaign_id"] = t("campaign", lang)
    return (GT(shown).tab_header(title=t("wasted_table", lang), subtitle=t("roi", lang)).cols_label(**labels)
            .tab_spanner(label="ROI", columns=roi_cols)
            .fmt_number(columns=["spend", "wasted_spend"], decimals=0).fmt_number(columns=roi_cols, decimals=2)
            .fmt_percent(columns="agreement", decimals=0).sub_missing(missing_text="–"))
