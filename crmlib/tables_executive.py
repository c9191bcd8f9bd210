"""great_tables views of the executive summary (:mod:`crmlib.executive`): scorecard with sparklines, risks,
opportunities. Static HTML (inline SVG sparklines, no JavaScript), so they read the same in e-mail and PDF."""

from __future__ import annotations

import polars as pl
from great_tables import GT, loc, style

from .cards import STATUS_COLOURS, format_value
from .i18n import check_lang

LABELS = {
    "scorecard": {"en": "Headline KPIs", "zh": "核心指标"},
    "scorecard_sub": {
        "en": "{period} up to {as_of}, against target and the previous period",
        "zh": "{period}（截至 {as_of}），对比目标与上期",
    },
    "kpi": {"en": "KPI", "zh": "指标"},
    "scorecard_note": {
        "en": "Status: the period's run-rate projection reaches ≥ 100 % of target (on track) or ≥ 90 % "
        "(at risk). Trend: the last {n} periods.",
        "zh": "状态：本期按当前进度预测达到目标的 100% 以上为达标，90% 以上为有风险。趋势：最近 {n} 期。",
    },
    "value": {"en": "Actual", "zh": "实际"},
    "target": {"en": "Target", "zh": "目标"},
    "attainment": {"en": "Attainment", "zh": "完成率"},
    "change": {"en": "vs previous", "zh": "较上期"},
    "status": {"en": "Status", "zh": "状态"},
    "trend": {"en": "Trend", "zh": "趋势"},
    "on_track": {"en": "on track", "zh": "达标"},
    "at_risk": {"en": "at risk", "zh": "有风险"},
    "off_track": {"en": "off track", "zh": "未达标"},
    "no_target": {"en": "no target", "zh": "无目标"},
    "risks": {"en": "Top risks", "zh": "主要风险"},
    "severity": {"en": "Severity", "zh": "级别"},
    "scope": {"en": "Scope", "zh": "范围"},
    "message": {"en": "What", "zh": "内容"},
    "since": {"en": "Since", "zh": "起始"},
    "high": {"en": "high", "zh": "高"},
    "medium": {"en": "medium", "zh": "中"},
    "low": {"en": "low", "zh": "低"},
    "critical": {"en": "critical", "zh": "严重"},
    "warning": {"en": "warning", "zh": "警告"},
    "info": {"en": "info", "zh": "提示"},
    "no_risks": {
        "en": "No KPI is off track and no alert is open.",
        "zh": "没有未达标指标，也没有未处理的预警。",
    },
    "from_alerts": {"en": "From the alerts (crmlib.alerts).", "zh": "来自预警模块（crmlib.alerts）。"},
    "from_status": {
        "en": "KPIs off track or at risk against their targets (company and teams).",
        "zh": "相对目标未达标或有风险的指标（公司与团队）。",
    },
    "opportunities": {"en": "Top opportunities", "zh": "主要机会"},
    "kind": {"en": "Kind", "zh": "类别"},
    "item": {"en": "Item", "zh": "对象"},
    "detail": {"en": "Detail", "zh": "说明"},
    "amount": {"en": "Value", "zh": "数值"},
    "momentum": {"en": "Momentum", "zh": "向好指标"},
    "campaign": {"en": "Scale up campaign", "zh": "可加码活动"},
    "rescue": {"en": "Rescue stalled deal", "zh": "待挽救商机"},
    "no_opportunities": {"en": "Nothing to report.", "zh": "暂无。"},
}


# small rows, so that the scorecard fits on the first page of the PDF with the title
COMPACT = {
    "table_font_size": "13px",
    "data_row_padding": "2px",
    "row_group_padding": "2px",
    "heading_title_font_size": "16px",
    "heading_subtitle_font_size": "12px",
    "column_labels_padding": "3px",
}
SEVERITIES = ("critical", "high", "warning", "medium", "low", "info")


def _t(key: str, lang: str) -> str:
    return LABELS[key][lang]


def _change_text(delta_pct, delta, direction: str, style_: str) -> str:
    if delta is None:
        return "–"
    arrow = "▲" if delta > 0 else "▼" if delta < 0 else "="
    if style_ == "percent":  # a rate: the change in percentage points
        return f"{arrow} {abs(delta) * 100:.1f} pt"
    if delta_pct is None:
        return arrow
    return f"{arrow} {abs(delta_pct) * 100:.1f}%"


def fmt_scorecard(scorecard: pl.DataFrame, lang: str = "en") -> GT:
    """The headline KPIs by area (input: :meth:`crmlib.executive.Summary.scorecard`): actual, target,
    attainment, change against the previous period (green when it goes the KPI's good way), status and a
    sparkline of the trend periods."""
    check_lang(lang)
    rows = []
    for r in scorecard.iter_rows(named=True):
        s, d = r["style"], r["decimals"]
        better = None if not r["delta"] else (r["delta"] > 0) == (r["direction"] == "higher")
        trend = [v for v in (r["trend"] or [])]
        rows.append(
            {
                "area": r["area_label"],
                "kpi": r["label"],
                "value": format_value(r["value"], s, d, lang),
                "target": format_value(r["target"], s, d, lang) if r["target"] is not None else "–",
                "attainment": f"{r['attainment'] * 100:.0f}%" if r["attainment"] is not None else "–",
                "change": _change_text(r["delta_pct"], r["delta"], r["direction"], s),
                "status": _t(r["status"], lang) if r["status"] else _t("no_target", lang),
                "trend": trend if any(v is not None for v in trend) else [0.0],
                "_status": r["status"] or "none",
                "_better": better,
            }
        )
    frame = pl.DataFrame(
        rows,
        schema={
            "area": pl.String,
            "kpi": pl.String,
            "value": pl.String,
            "target": pl.String,
            "attainment": pl.String,
            "change": pl.String,
            "status": pl.String,
            "trend": pl.List(pl.Float64),
            "_status": pl.String,
            "_better": pl.Boolean,
        },
    )
    sub = None
    if scorecard.height and "period_label" in scorecard.columns:
        sub = _t("scorecard_sub", lang).format(
            period=scorecard["period_label"][0], as_of=scorecard["as_of"][0]
        )
    gt = (
        GT(frame, groupname_col="area", rowname_col="kpi")
        .tab_header(title=_t("scorecard", lang), subtitle=sub)
        .cols_hide(["_status", "_better"])
        .cols_label(
            value=_t("value", lang),
            target=_t("target", lang),
            attainment=_t("attainment", lang),
            change=_t("change", lang),
            status=_t("status", lang),
            trend=_t("trend", lang),
        )
        .tab_stubhead(label=_t("kpi", lang))
        .cols_align("right", columns=["value", "target", "attainment", "change"])
        .fmt_nanoplot(columns="trend", plot_type="line", missing_vals="gap", plot_height="1.4em")
        .tab_style(style.text(weight="bold"), loc.body(columns="value"))
        .tab_options(**COMPACT)
    )
    if scorecard.height:
        n = max(len(t or []) for t in scorecard["trend"].to_list())
        gt = gt.tab_source_note(_t("scorecard_note", lang).format(n=n))
    for status, colour in STATUS_COLOURS.items():
        if status is None:
            continue
        gt = gt.tab_style(
            style.text(color=colour, weight="bold"),
            loc.body(columns="status", rows=pl.col("_status") == status),
        )
    gt = gt.tab_style(
        style.text(color="#6e7781"), loc.body(columns="status", rows=pl.col("_status") == "none")
    )
    gt = gt.tab_style(
        style.text(color="#1a7f37"), loc.body(columns="change", rows=pl.col("_better").eq(True))
    )
    return gt.tab_style(
        style.text(color="#cf222e"), loc.body(columns="change", rows=pl.col("_better").eq(False))
    )


def fmt_risks(risks: pl.DataFrame, lang: str = "en") -> GT:
    """The top risks (input: :meth:`crmlib.executive.Summary.risks`); says so when there are none."""
    check_lang(lang)
    source = risks.get_column("source").drop_nulls().first() if risks.height else None
    frame = risks.select(
        pl.col("severity").replace_strict(
            {k: _t(k, lang) for k in SEVERITIES}, default=pl.col("severity"), return_dtype=pl.String
        ),
        pl.col("scope").fill_null(""),
        pl.col("message").fill_null(""),
        pl.col("since").cast(pl.String).fill_null("–"),
        pl.col("severity").alias("_sev"),
    )
    gt = (
        GT(frame)
        .tab_header(title=_t("risks", lang))
        .cols_hide("_sev")
        .cols_label(
            severity=_t("severity", lang),
            scope=_t("scope", lang),
            message=_t("message", lang),
            since=_t("since", lang),
        )
        .tab_options(**COMPACT)
    )
    if frame.height == 0:
        return gt.tab_source_note(_t("no_risks", lang))
    for severities, colour in (
        (("critical", "high"), STATUS_COLOURS["off_track"]),
        (("warning", "medium"), STATUS_COLOURS["at_risk"]),
    ):
        gt = gt.tab_style(
            style.text(color=colour, weight="bold"),
            loc.body(columns="severity", rows=pl.col("_sev").is_in(severities)),
        )
    return gt.tab_source_note(_t("from_alerts" if source == "alerts" else "from_status", lang))


def fmt_opportunities(opportunities: pl.DataFrame, lang: str = "en") -> GT:
    """The top opportunities by kind (input: :meth:`crmlib.executive.Summary.opportunities`)."""
    check_lang(lang)
    values = [
        format_value(v, s, 1 if s == "percent" else 0, lang)
        for v, s in zip(opportunities["value"].to_list(), opportunities["style"].to_list(), strict=True)
    ]
    frame = opportunities.select(
        pl.col("kind").replace_strict(
            {k: _t(k, lang) for k in ("momentum", "campaign", "rescue")},
            default=pl.col("kind"),
            return_dtype=pl.String,
        ),
        "item",
        "detail",
    ).with_columns(pl.Series("value", values, dtype=pl.String))
    gt = (
        GT(frame, groupname_col="kind")
        .tab_header(title=_t("opportunities", lang))
        .cols_label(item=_t("item", lang), detail=_t("detail", lang), value=_t("amount", lang))
        .cols_align("right", columns="value")
        .tab_options(**COMPACT)
    )
    if frame.height == 0:
        return gt.tab_source_note(_t("no_opportunities", lang))
    return gt
