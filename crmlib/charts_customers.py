"""Figures and tables for customer value (:mod:`crmlib.customers`): tidy frame in, ``go.Figure`` / ``GT`` out.

Builders never show or save. Labels come from :data:`LABELS` (en / zh), kept here because
:mod:`crmlib.i18n` has no way yet to register an area's labels; unknown keys fall back to
:func:`crmlib.i18n.t`.
"""

from __future__ import annotations

import plotly.graph_objects as go
import polars as pl
from great_tables import GT

from . import i18n
from .charts import template

__all__ = [
    "LABELS", "fmt_notes", "fmt_order_exclusions", "fmt_parameters", "fmt_rising", "fmt_top_customers",
    "fmt_watchlist", "plot_calibration_holdout", "plot_clv_distribution", "plot_cohort_heatmap", "plot_p_alive",
    "plot_pareto", "plot_revenue_retention", "plot_rfm_grid", "plot_rfm_segments",
]

LABELS: dict[str, dict[str, str]] = {
    # RFM
    "rfm_segments": {"en": "RFM segments", "zh": "RFM 客户分群"},
    "rfm_grid": {"en": "Customers by recency and frequency-monetary score", "zh": "按最近购买与频次金额评分的客户分布"},
    "r_score": {"en": "Recency score (5 = most recent)", "zh": "最近购买评分（5 = 最近）"},
    "fm_score": {"en": "Frequency-monetary score (5 = most)", "zh": "频次金额评分（5 = 最高）"},
    "segment": {"en": "Segment", "zh": "客户群"},
    "customers": {"en": "Customers", "zh": "客户数"},
    "revenue": {"en": "Revenue", "zh": "收入"},
    "revenue_share": {"en": "Revenue share", "zh": "收入占比"},
    "customer_share": {"en": "Share of customers", "zh": "客户占比"},
    "champions": {"en": "Champions", "zh": "冠军客户"},
    "loyal": {"en": "Loyal", "zh": "忠诚客户"},
    "potential loyalist": {"en": "Potential loyalist", "zh": "潜在忠诚客户"},
    "new": {"en": "New", "zh": "新客户"},
    "at risk": {"en": "At risk", "zh": "流失风险客户"},
    "can't lose": {"en": "Can't lose", "zh": "不可流失客户"},
    "hibernating": {"en": "Hibernating", "zh": "休眠客户"},
    "lost": {"en": "Lost", "zh": "已流失客户"},
    # CLV
    "clv_distribution": {"en": "Customer lifetime value", "zh": "客户终身价值分布"},
    "clv": {"en": "CLV", "zh": "客户终身价值"},
    "value_at_stake": {"en": "Value at stake", "zh": "潜在价值"},
    "value_tier": {"en": "Value tier", "zh": "价值层级"},
    "top": {"en": "Top 20 %", "zh": "前 20%"},
    "middle": {"en": "Next 30 %", "zh": "其后 30%"},
    "low": {"en": "Other 50 %", "zh": "其余 50%"},
    "p_alive": {"en": "P(alive)", "zh": "存活概率"},
    "p_alive_matrix": {"en": "Probability a customer is still active", "zh": "客户仍然活跃的概率"},
    "frequency": {"en": "Repeat purchases", "zh": "复购次数"},
    "recency_weeks": {"en": "Weeks from first to last purchase", "zh": "首购至末次购买的周数"},
    "expected_purchases": {"en": "Expected purchases", "zh": "预期购买次数"},
    "expected_value": {"en": "Expected value per purchase", "zh": "每次购买预期金额"},
    "model": {"en": "Model", "zh": "模型"},
    "parameter": {"en": "Parameter", "zh": "参数"},
    "estimate": {"en": "Estimate", "zh": "估计值"},
    "se": {"en": "Std. error", "zh": "标准误"},
    "lower_95": {"en": "95 % low", "zh": "95% 下限"},
    "upper_95": {"en": "95 % high", "zh": "95% 上限"},
    "model_parameters": {"en": "Fitted models (maximum likelihood)", "zh": "模型参数（最大似然估计）"},
    "top_customers": {"en": "Top customers by CLV", "zh": "客户终身价值最高的客户"},
    "account_id": {"en": "Account", "zh": "客户"},
    "account": {"en": "Account name", "zh": "客户名称"},
    "owner": {"en": "Owner", "zh": "负责人"},
    "orders": {"en": "Orders", "zh": "订单数"},
    "last_order": {"en": "Last order", "zh": "最近下单"},
    "holdout": {"en": "Calibration / holdout: repeat purchases in the holdout", "zh": "校准/验证：验证期内的复购次数"},
    "actual": {"en": "Actual", "zh": "实际"},
    "predicted": {"en": "Predicted (BG/NBD)", "zh": "预测（BG/NBD）"},
    "calibration_purchases": {"en": "Repeat purchases in the calibration period", "zh": "校准期内复购次数"},
    "mean_holdout_purchases": {"en": "Mean purchases per customer", "zh": "人均购买次数"},
    # cohorts, retention
    "cohort_heatmap": {"en": "Customers ordering again, by first-order month", "zh": "按首单月份的客户留存"},
    "cohort_revenue_heatmap": {"en": "Revenue retention, by first-order month", "zh": "按首单月份的收入留存"},
    "cohort": {"en": "First-order month", "zh": "首单月份"},
    "months_since": {"en": "Months since first order", "zh": "首单后月数"},
    "retention": {"en": "Retention", "zh": "留存率"},
    "revenue_retention": {"en": "Revenue retention", "zh": "收入留存率"},
    "revenue_retention_title": {"en": "Subscription revenue retention and churn", "zh": "订阅收入留存与流失"},
    "month": {"en": "Month", "zh": "月份"},
    "nrr": {"en": "NRR", "zh": "净收入留存率"},
    "grr": {"en": "GRR", "zh": "总收入留存率"},
    "logo_churn_rate": {"en": "Logo churn", "zh": "客户流失率"},
    "subscription_churn_rate": {"en": "Subscription churn", "zh": "订阅流失率"},
    # concentration
    "pareto": {"en": "Revenue concentration (Pareto curve)", "zh": "收入集中度（帕累托曲线）"},
    "equal_share": {"en": "Equal shares", "zh": "均匀分布"},
    "eighty": {"en": "80 % of revenue", "zh": "80% 收入"},
    # watchlist
    "watchlist": {"en": "Watchlist: valuable customers slipping", "zh": "关注名单：正在流失的高价值客户"},
    "rising": {"en": "Rising accounts: buying more than expected", "zh": "上升客户：购买超出预期"},
    "reason": {"en": "Why", "zh": "原因"},
    "days_since_last_order": {"en": "Days since last order", "zh": "距上次下单天数"},
    "usual_gap_days": {"en": "Usual gap (days)", "zh": "通常间隔（天）"},
    "last_activity": {"en": "Last activity", "zh": "最近跟进"},
    "purchases": {"en": "Purchases in window", "zh": "窗口期购买次数"},
    "expected": {"en": "Expected", "zh": "预期次数"},
    "extra_value": {"en": "Extra value", "zh": "超额价值"},
    "nobody": {"en": "Nobody on the list", "zh": "名单为空"},
    "no_data": {"en": "No data", "zh": "无数据"},
    "orders_used": {"en": "Orders used and left out", "zh": "订单使用与排除情况"},
    "reason_used": {"en": "used", "zh": "已使用"},
    "reason_cancelled": {"en": "cancelled", "zh": "已取消"},
    "reason_no customer id": {"en": "no customer id", "zh": "无客户编号"},
    "reason_no date or amount": {"en": "no date or amount", "zh": "无日期或金额"},
    "reason_after the as-of day": {"en": "after the as-of day", "zh": "晚于分析日期"},
    "amount": {"en": "Amount (own currencies)", "zh": "金额（原币种）"},
    "share": {"en": "Share", "zh": "占比"},
    "notes": {"en": "Notes", "zh": "说明"},
    "no_notes": {"en": "Nothing to note", "zh": "无"},
}

_LAYOUT = {"margin": {"l": 60, "r": 20, "t": 60, "b": 60}}
_SEGMENT_COLORS = {
    "champions": "#1a9850", "loyal": "#66bd63", "potential loyalist": "#a6d96a", "new": "#74add1",
    "at risk": "#fdae61", "can't lose": "#d73027", "hibernating": "#bababa", "lost": "#878787",
}


def t(key: str, lang: str = "en") -> str:
    """This area's label, else :func:`crmlib.i18n.t`."""
    i18n.check_lang(lang)
    entry = LABELS.get(key)
    return entry[lang] if entry else i18n.t(key, lang)


def _empty(title: str, lang: str) -> go.Figure:
    fig = go.Figure()
    fig.add_annotation(text=t("no_data", lang), showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper",
                       font={"size": 16})
    fig.update_layout(title=title, xaxis={"visible": False}, yaxis={"visible": False}, **_LAYOUT, **template())
    return fig


# ---------------------------------------------------------------------------------------------------
# RFM
# ---------------------------------------------------------------------------------------------------
def plot_rfm_segments(segments: pl.DataFrame, lang: str = "en") -> go.Figure:
    """Treemap of segments sized by customers, coloured per segment (input: :func:`crmlib.customers.rfm_segments`)."""
    title = t("rfm_segments", lang)
    seg = segments.filter(pl.col("customers") > 0).with_columns(pl.col("segment").cast(pl.String))
    if seg.height == 0:
        return _empty(title, lang)
    names = seg.get_column("segment").to_list()
    text = [f"{t('customers', lang)} {c:,} ({cs:.0%})<br>{t('revenue_share', lang)} {rs:.0%}"
            for c, cs, rs in seg.select("customers", "customer_share", "revenue_share").iter_rows()]
    fig = go.Figure(go.Treemap(
        labels=[t(n, lang) for n in names], parents=[""] * len(names), values=seg.get_column("customers").to_list(),
        text=text, textinfo="label+text", marker={"colors": [_SEGMENT_COLORS[n] for n in names]}, customdata=names,
        hovertemplate="%{label}<br>%{text}<extra></extra>", branchvalues="total",
    ))
    fig.update_layout(title=title, **_LAYOUT, **template())
    return fig


def plot_rfm_grid(grid: pl.DataFrame, lang: str = "en") -> go.Figure:
    """5 x 5 heatmap of customers by r_score and fm_score, each cell named by its segment
    (input: :func:`crmlib.customers.rfm_grid`)."""
    title = t("rfm_grid", lang)
    if grid.height == 0:
        return _empty(title, lang)
    g = grid.sort("r_score", "fm_score")
    z = [[0] * 5 for _ in range(5)]
    text = [[""] * 5 for _ in range(5)]
    for r, f, n, seg in g.select("r_score", "fm_score", "customers", pl.col("segment").cast(pl.String)).iter_rows():
        z[r - 1][f - 1] = n
        text[r - 1][f - 1] = f"{t(seg, lang)}<br>{n:,}"
    fig = go.Figure(go.Heatmap(z=z, x=list(range(1, 6)), y=list(range(1, 6)), text=text, texttemplate="%{text}",
                               colorscale="Blues", colorbar={"title": t("customers", lang)},
                               hovertemplate="R %{y} / FM %{x}: %{z}<extra></extra>"))
    fig.update_layout(title=title, xaxis_title=t("fm_score", lang), yaxis_title=t("r_score", lang), **_LAYOUT, **template())
    return fig


# ---------------------------------------------------------------------------------------------------
# CLV
# ---------------------------------------------------------------------------------------------------
def plot_clv_distribution(customers: pl.DataFrame, lang: str = "en", currency: str = "") -> go.Figure:
    """Histogram of CLV, stacked by value tier (input: ``CustomerValue.customers``)."""
    title = t("clv_distribution", lang)
    c = customers.filter(pl.col("clv").is_not_null())
    if c.height == 0:
        return _empty(title, lang)
    fig = go.Figure()
    for tier in ("top", "middle", "low"):
        part = c.filter(pl.col("value_tier") == tier)
        if part.height:
            fig.add_trace(go.Histogram(x=part.get_column("clv").to_list(), name=t(tier, lang), nbinsx=40))
    xlabel = t("clv", lang) + (f" ({currency})" if currency else "")
    fig.update_layout(title=title, barmode="stack", xaxis_title=xlabel, yaxis_title=t("customers", lang),
                      legend={"title": t("value_tier", lang)}, **_LAYOUT, **template())
    return fig


def plot_p_alive(grid: pl.DataFrame, lang: str = "en") -> go.Figure:
    """Heatmap of P(alive) over frequency (rows) x recency (columns) at the oldest age T
    (input: :func:`crmlib.customers.p_alive_grid`)."""
    title = t("p_alive_matrix", lang)
    if grid.height == 0:
        return _empty(title, lang)
    wide = grid.pivot(on="recency", index="frequency", values="p_alive", sort_columns=False).sort("frequency")
    recency = [float(c) for c in wide.columns[1:]]
    order = sorted(range(len(recency)), key=recency.__getitem__)
    z = wide.select(wide.columns[1:]).to_numpy()[:, order]
    T = float(grid.get_column("T").max())
    fig = go.Figure(go.Heatmap(z=z, x=[recency[i] for i in order], y=wide.get_column("frequency").to_list(),
                               zmin=0, zmax=1, colorscale="RdYlGn", colorbar={"title": t("p_alive", lang)},
                               hovertemplate="x=%{y}, t_x=%{x:.1f}: %{z:.2f}<extra></extra>"))
    fig.update_layout(title=f"{title} (T = {T:.0f})", xaxis_title=t("recency_weeks", lang),
                      yaxis_title=t("frequency", lang), **_LAYOUT, **template())
    return fig


def plot_calibration_holdout(check: pl.DataFrame, lang: str = "en") -> go.Figure:
    """Actual vs predicted mean holdout purchases by calibration frequency
    (input: :func:`crmlib.customers.holdout_validation`)."""
    title = t("holdout", lang)
    if check.height == 0:
        return _empty(title, lang)
    x = check.get_column("bucket").to_list()
    fig = go.Figure([
        go.Scatter(x=x, y=check.get_column("actual").to_list(), mode="lines+markers", name=t("actual", lang)),
        go.Scatter(x=x, y=check.get_column("predicted").to_list(), mode="lines+markers", name=t("predicted", lang),
                   line={"dash": "dash"}),
    ])
    fig.update_layout(title=title, xaxis_title=t("calibration_purchases", lang),
                      yaxis_title=t("mean_holdout_purchases", lang), xaxis={"type": "category"}, **_LAYOUT, **template())
    return fig


# ---------------------------------------------------------------------------------------------------
# Cohorts, subscription retention
# ---------------------------------------------------------------------------------------------------
def plot_cohort_heatmap(matrix: pl.DataFrame, lang: str = "en", metric: str = "retention") -> go.Figure:
    """Cohort (rows) x months since first order (columns), coloured by ``metric`` (``retention`` or
    ``revenue_retention``; input: :func:`crmlib.customers.retention_matrix`). Month 0 (100 %) is left out."""
    if metric not in ("retention", "revenue_retention"):
        from .errors import ConfigError

        raise ConfigError(f"metric must be 'retention' or 'revenue_retention', not {metric!r}.")
    title = t("cohort_heatmap" if metric == "retention" else "cohort_revenue_heatmap", lang)
    m = matrix.filter(pl.col("months_since") > 0)
    if m.height == 0:
        return _empty(title, lang)
    wide = m.with_columns(pl.col("cohort").dt.strftime("%Y-%m")).pivot(
        on="months_since", index="cohort", values=metric, sort_columns=True
    ).sort("cohort")
    months = [int(c) for c in wide.columns[1:]]
    fig = go.Figure(go.Heatmap(
        z=wide.select(wide.columns[1:]).to_numpy(), x=months, y=wide.get_column("cohort").to_list(),
        colorscale="Blues", colorbar={"title": t(metric, lang), "tickformat": ".0%"},
        hovertemplate="%{y} +%{x}: %{z:.1%}<extra></extra>",
    ))
    fig.update_layout(title=title, xaxis_title=t("months_since", lang), yaxis_title=t("cohort", lang),
                      yaxis={"autorange": "reversed", "type": "category"}, **_LAYOUT, **template())
    return fig


def plot_revenue_retention(monthly: pl.DataFrame, lang: str = "en", last_months: int | None = 24) -> go.Figure:
    """Monthly NRR and GRR (lines) and logo churn (bars, right axis) over the last ``last_months`` months
    (None: all; the first months of a book are tiny and swing wildly) (input:
    :func:`crmlib.customers.subscription_retention`)."""
    title = t("revenue_retention_title", lang)
    m = monthly.filter(pl.col("nrr").is_not_null())
    if last_months is not None:
        m = m.tail(last_months)
    if m.height == 0:
        return _empty(title, lang)
    x = m.get_column("month").to_list()
    fig = go.Figure([
        go.Scatter(x=x, y=m.get_column("nrr").to_list(), mode="lines", name=t("nrr", lang)),
        go.Scatter(x=x, y=m.get_column("grr").to_list(), mode="lines", name=t("grr", lang)),
        go.Bar(x=x, y=m.get_column("logo_churn_rate").to_list(), name=t("logo_churn_rate", lang), yaxis="y2",
               opacity=0.4),
    ])
    fig.update_layout(title=title, xaxis_title=t("month", lang), yaxis={"tickformat": ".0%"},
                      yaxis2={"overlaying": "y", "side": "right", "tickformat": ".1%", "showgrid": False},
                      legend={"orientation": "h", "y": -0.2}, **_LAYOUT, **template())
    return fig


# ---------------------------------------------------------------------------------------------------
# Concentration
# ---------------------------------------------------------------------------------------------------
def plot_pareto(pareto: pl.DataFrame, lang: str = "en") -> go.Figure:
    """Cumulative share of revenue vs share of customers, largest first (input: :func:`crmlib.customers.pareto`)."""
    title = t("pareto", lang)
    if pareto.height == 0:
        return _empty(title, lang)
    x = [0.0, *pareto.get_column("customer_share").to_list()]
    y = [0.0, *pareto.get_column("revenue_share").to_list()]
    fig = go.Figure([
        go.Scatter(x=x, y=y, mode="lines", name=t("revenue_share", lang), line={"width": 3}),
        go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name=t("equal_share", lang), line={"dash": "dot", "color": "grey"}),
    ])
    fig.add_hline(y=0.8, line={"dash": "dash", "color": "#d73027"}, annotation_text=t("eighty", lang))
    fig.update_layout(title=title, xaxis_title=t("customer_share", lang), yaxis_title=t("revenue_share", lang),
                      xaxis={"tickformat": ".0%"}, yaxis={"tickformat": ".0%"}, **_LAYOUT, **template())
    return fig


# ---------------------------------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------------------------------
def _labels(frame: pl.DataFrame, lang: str) -> dict[str, str]:
    return {c: t(c, lang) for c in frame.columns}


def fmt_order_exclusions(exclusions: pl.DataFrame, lang: str = "en") -> GT:
    """Orders used and left out, by reason (input: :func:`crmlib.customers.order_exclusions`)."""
    reasons = exclusions.get_column("reason").unique().to_list()
    shown = exclusions.with_columns(
        pl.col("reason").replace_strict({r: t(f"reason_{r}", lang) for r in reasons}, return_dtype=pl.String)
    )
    return (GT(shown).tab_header(title=t("orders_used", lang)).cols_label(**_labels(shown, lang))
            .fmt_integer(columns="orders").fmt_number(columns="amount", decimals=0).fmt_percent(columns="share", decimals=1))


def fmt_parameters(parameters: pl.DataFrame, lang: str = "en") -> GT:
    """Model parameters with standard errors and 95 % intervals (input: ``CustomerValue.parameters()``)."""
    gt = GT(parameters).tab_header(title=t("model_parameters", lang))
    if parameters.height == 0:
        return gt.tab_source_note(t("no_data", lang))
    return gt.cols_label(**_labels(parameters, lang)).fmt_number(
        columns=["estimate", "se", "lower_95", "upper_95"], n_sigfig=4)


def fmt_notes(notes: list[str], lang: str = "en") -> GT:
    """The notes of a :class:`~crmlib.customers.CustomerValue` (what was left out or not fitted) as a table."""
    frame = pl.DataFrame({"notes": notes or [t("no_notes", lang)]}, schema={"notes": pl.String})
    return GT(frame).cols_label(notes=t("notes", lang))


def fmt_top_customers(top: pl.DataFrame, lang: str = "en", currency: str = "") -> GT:
    """The customers with the highest CLV (input: ``CustomerValue.top(n)``)."""
    cols = ["account_id", "orders", "revenue", "last_order", "p_alive", "expected_purchases", "expected_value", "clv",
            "value_tier"]
    shown = top.select([c for c in cols if c in top.columns])
    gt = GT(shown).tab_header(title=t("top_customers", lang), subtitle=currency or None)
    if shown.height == 0:
        return gt.tab_source_note(t("no_data", lang))
    return (gt.cols_label(**_labels(shown, lang)).fmt_number(columns=["revenue", "expected_value", "clv"], decimals=0)
            .fmt_number(columns="expected_purchases", decimals=2).fmt_percent(columns="p_alive", decimals=0)
            .sub_missing(missing_text="–"))


def fmt_watchlist(watch: pl.DataFrame, lang: str = "en", currency: str = "") -> GT:
    """Valuable customers slipping, with owner and last activity (input: :func:`crmlib.customers.watchlist`)."""
    cols = ["account_id", "account", "owner", "value_at_stake", "p_alive", "last_order", "days_since_last_order",
            "usual_gap_days", "last_activity", "reason"]
    shown = watch.select(cols).with_columns(pl.col("last_activity").dt.date())
    gt = GT(shown).tab_header(title=t("watchlist", lang), subtitle=currency or None)
    if shown.height == 0:
        return gt.tab_source_note(t("nobody", lang))
    return (gt.cols_label(**_labels(shown, lang)).fmt_number(columns="value_at_stake", decimals=0)
            .fmt_percent(columns="p_alive", decimals=0)
            .fmt_number(columns=["days_since_last_order", "usual_gap_days"], decimals=0)
            .sub_missing(missing_text="–"))


def fmt_rising(rising: pl.DataFrame, lang: str = "en", currency: str = "") -> GT:
    """Accounts buying more than BG/NBD expected (input: :func:`crmlib.customers.rising_accounts`)."""
    cols = ["account_id", "account", "owner", "purchases", "expected", "extra_value", "p_alive", "last_activity"]
    shown = rising.select(cols).with_columns(pl.col("last_activity").dt.date())
    gt = GT(shown).tab_header(title=t("rising", lang), subtitle=currency or None)
    if shown.height == 0:
        return gt.tab_source_note(t("nobody", lang))
    return (gt.cols_label(**_labels(shown, lang)).fmt_integer(columns="purchases")
            .fmt_number(columns="expected", decimals=2).fmt_number(columns="extra_value", decimals=0)
            .fmt_percent(columns="p_alive", decimals=0)
            .sub_missing(missing_text="–"))
