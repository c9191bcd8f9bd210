"""great_tables tables for sales and performance: stalled deals, leaderboards, activity, target cascade.

Small frame in (from :mod:`crmlib.sales` or :mod:`crmlib.performance`), ``GT`` out, labelled in English or
Chinese. An empty frame gives a short message instead of an empty table.
"""

from __future__ import annotations

from great_tables import GT, loc, style

from .cards import STATUS_COLOURS, Cards, format_value
from .charts_sales import LABELS as CHART_LABELS
from .charts_sales import label as chart_label
from .i18n import check_lang
from .kpis.catalog import default_catalog

__all__ = ["LABELS", "fmt_activity", "fmt_cascade", "fmt_leaderboard", "fmt_stalled_deals"]

LABELS: dict[str, dict[str, str]] = {
    "stalled": {"en": "Stalled deals", "zh": "停滞商机"},
    "stalled_note": {"en": "Open deals with no activity for {n} days, or longer in their stage than 90% of past "
                           "stays there; largest first.",
                     "zh": "超过 {n} 天无跟进活动、或在当前阶段停留时间超过历史 90% 的在途商机，按金额从大到小排列。"},
    "no_stalled": {"en": "No stalled deals in this selection.", "zh": "当前筛选条件下没有停滞商机。"},
    "more": {"en": "{n} more not shown.", "zh": "另有 {n} 条未显示。"},
    "opportunity": {"en": "Deal", "zh": "商机"},
    "owner": {"en": "Owner", "zh": "负责人"},
    "account": {"en": "Account", "zh": "客户"},
    "stage": {"en": "Stage", "zh": "阶段"},
    "amount": {"en": "Amount", "zh": "金额"},
    "close_date": {"en": "Expected close", "zh": "预计成交日"},
    "days_in_stage": {"en": "Days in stage", "zh": "阶段停留天数"},
    "stage_p90_days": {"en": "Stage P90 (days)", "zh": "阶段 P90（天）"},
    "days_since_activity": {"en": "Days since activity", "zh": "距上次活动天数"},
    "days_stalled": {"en": "Days stalled", "zh": "停滞天数"},
    "reason": {"en": "Why", "zh": "原因"},
    "no_activity": {"en": "no activity", "zh": "无跟进活动"},
    "stage_too_long": {"en": "too long in stage", "zh": "阶段停留过久"},
    "both": {"en": "both", "zh": "两者皆是"},
    "leaderboard": {"en": "Leaderboard", "zh": "排行榜"},
    "leaderboard_note": {"en": "Ranked by {by}; trend against the previous period of the same length.",
                         "zh": "按{by}排名；趋势与上一等长期间相比。"},
    "rank": {"en": "Rank", "zh": "排名"},
    "move": {"en": "Move", "zh": "名次变化"},
    "name": {"en": "Name", "zh": "姓名"},
    "team_id": {"en": "Team", "zh": "团队"},
    "value": {"en": "Actual", "zh": "实际"},
    "target": {"en": "Target", "zh": "目标"},
    "attainment": {"en": "Attainment", "zh": "完成率"},
    "status": {"en": "Status", "zh": "状态"},
    "previous": {"en": "Previous", "zh": "上期"},
    "delta": {"en": "Trend", "zh": "趋势"},
    "activity": {"en": "Activity per rep", "zh": "销售活动量"},
    "activity_note": {"en": "Per won deal: activities logged on the deals won in the period.",
                      "zh": "每笔赢单：本期赢单商机上记录的活动数。"},
    "won_deals": {"en": "Won deals", "zh": "赢单数"},
    "activities": {"en": "Activities", "zh": "活动数"},
    "activities_per_won_deal": {"en": "Per won deal", "zh": "每笔赢单活动数"},
    "cascade": {"en": "Target cascade check", "zh": "目标分解校验"},
    "cascade_ok": {"en": "Targets add up at every level.", "zh": "各层级目标均能逐级汇总一致。"},
    "level": {"en": "Level", "zh": "层级"},
    "child_level": {"en": "Children", "zh": "下级层级"},
    "checked": {"en": "Targets checked", "zh": "已校验目标数"},
    "problems": {"en": "Not adding up", "zh": "不一致"},
    "worst_entity": {"en": "Largest gap at", "zh": "差额最大的对象"},
    "worst_period": {"en": "In period", "zh": "所在期间"},
    "worst_difference": {"en": "Children − parent", "zh": "下级合计 − 上级目标"},
    "company": {"en": "Company", "zh": "公司"},
    "department": {"en": "Department", "zh": "部门"},
    "team": {"en": "Team", "zh": "团队"},
    "user": {"en": "Rep", "zh": "销售代表"},
    "entity_id": {"en": "Entity", "zh": "对象"},
    "period": {"en": "Period", "zh": "期间"},
    "children_target": {"en": "Children's targets", "zh": "下级目标合计"},
    "difference": {"en": "Difference", "zh": "差额"},
    "problem": {"en": "Problem", "zh": "问题"},
}


def _t(key: str, lang: str) -> str:
    entry = LABELS.get(key) or CHART_LABELS.get(key)
    return entry[lang] if entry else key


def _message(text: str) -> Cards:
    return Cards(f"<div class='crmlib-empty'>{text}</div>")


def _money(lang: str):
    return lambda v: format_value(v, "currency", 0, lang)


def _kpi_fmt(kpi: str, lang: str):
    f = default_catalog().get(kpi).format
    return lambda v: format_value(v, f.style, f.decimals, lang)


def _translate(values: list, lang: str) -> dict:
    return {v: (LABELS[v][lang] if v in LABELS else chart_label(v, lang)) for v in values if v is not None}


def fmt_stalled_deals(frame, lang: str = "en", limit: int | None = 20, inactive_days: int = 30) -> GT | Cards:
    """The actionable list of :func:`crmlib.sales.stalled_deals`: deal, owner, account, stage, amount, days."""
    check_lang(lang)
    if frame is None or frame.height == 0:
        return _message(LABELS["no_stalled"][lang])
    import polars as pl

    shown = frame.head(limit) if limit else frame
    codes = shown.get_column("stage").unique().to_list() + shown.get_column("reason").unique().to_list()
    names = _translate(codes, lang)
    shown = shown.select(
        "opportunity", "owner", "account", pl.col("stage").replace(names), "amount", "close_date", "days_in_stage",
        "stage_p90_days", "days_since_activity", "days_stalled", pl.col("reason").replace(names))
    gt = (GT(shown).tab_header(title=LABELS["stalled"][lang],
                               subtitle=LABELS["stalled_note"][lang].format(n=inactive_days))
          .cols_label(**{c: _t(c, lang) for c in shown.columns})
          .fmt(_money(lang), columns="amount").fmt_number(columns="stage_p90_days", decimals=1)
          .fmt_integer(columns=["days_in_stage", "days_since_activity", "days_stalled"])
          .sub_missing(missing_text="–")
          .tab_style(style.text(weight="bold", color="#cf222e"), loc.body(columns="days_stalled")))
    if limit and frame.height > limit:
        gt = gt.tab_source_note(LABELS["more"][lang].format(n=frame.height - limit))
    return gt


def fmt_leaderboard(frame, lang: str = "en", limit: int | None = None) -> GT | Cards:
    """A leaderboard (:func:`crmlib.performance.leaderboard`): rank and its move, name, actual, target,
    attainment, status and the trend against the previous period."""
    check_lang(lang)
    if frame is None or frame.height == 0 or frame.get_column("value").is_null().all():
        return _message(CHART_LABELS["no_data"][lang])
    import polars as pl

    kpi = frame.get_column("kpi")[0]
    by_att = frame.get_column("ranked_by")[0] == "attainment"
    shown = frame.head(limit) if limit else frame
    move = pl.col("rank_change")
    statuses = _translate(shown.get_column("status").unique().to_list(), lang)
    cols = ["rank", "move", "name", *(["team_id"] if "team_id" in shown.columns else []), "value", "target",
            "attainment", "status", "previous", "delta"]
    shown = shown.with_columns(
        pl.when(move > 0).then(pl.lit("▲ ") + move.cast(pl.String)).when(move < 0)
        .then(pl.lit("▼ ") + (-move).cast(pl.String)).otherwise(pl.lit("–")).alias("move"),
        pl.coalesce("name", "member_id").alias("name"),
        pl.col("status").replace(statuses).alias("status_text"),
        (pl.col("previous_attainment") if by_att else pl.col("previous_value")).alias("previous"),
    )
    colour = shown.get_column("status").replace_strict(
        {k: v for k, v in STATUS_COLOURS.items() if k is not None}, default=STATUS_COLOURS[None])
    shown = shown.with_columns(colour.alias("_colour"), pl.col("status_text").alias("status")).select(*cols, "_colour")
    value_fmt = _kpi_fmt(kpi, lang)
    title = f"{LABELS['leaderboard'][lang]}: {default_catalog().get(kpi).label.get(lang)}"
    by = _t("attainment", lang) if by_att else _t("value", lang)
    gt = (GT(shown).tab_header(title=title, subtitle=LABELS["leaderboard_note"][lang].format(by=by))
          .cols_label(**{c: _t(c, lang) for c in cols})
          .cols_hide("_colour")
          .fmt_integer(columns="rank").fmt(value_fmt, columns=["value", "target"])
          .fmt_percent(columns="attainment", decimals=0)
          .tab_style(style.text(color="#57606a"), loc.body(columns="move"))
          .tab_style(style.text(color=pl.col("_colour"), weight="bold"), loc.body(columns="status"))
          .sub_missing(missing_text="–"))
    if by_att:
        gt = gt.fmt_percent(columns="previous", decimals=0).fmt(
            lambda v: f"{v * 100:+.0f} pp" if v is not None else "–", columns="delta")
    else:
        gt = gt.fmt(value_fmt, columns=["previous", "delta"])
    if limit and frame.height > limit:
        gt = gt.tab_source_note(LABELS["more"][lang].format(n=frame.height - limit))
    return gt


def fmt_activity(frame, lang: str = "en", limit: int | None = None) -> GT | Cards:
    """Activity per rep or team (:func:`crmlib.performance.activity`)."""
    check_lang(lang)
    if frame is None or frame.height == 0 or frame.get_column("activities").sum() == 0:
        return _message(CHART_LABELS["no_data"][lang])
    import polars as pl

    shown = frame.head(limit) if limit else frame
    if "member_id" in shown.columns:
        shown = shown.with_columns(pl.coalesce("name", "member_id").alias("name"))
    cols = [*(["name"] if "name" in shown.columns else []), "calls", "emails", "meetings", "demos", "tasks",
            "activities", "won_deals", "activities_per_won_deal"]
    shown = shown.select(cols)
    return (GT(shown).tab_header(title=LABELS["activity"][lang], subtitle=LABELS["activity_note"][lang])
            .cols_label(**{c: _t(c, lang) for c in cols})
            .fmt_integer(columns=cols[1 if "name" in cols else 0:-1]).fmt_number(columns="activities_per_won_deal",
                                                                                decimals=1)
            .sub_missing(missing_text="–"))


def fmt_cascade(frame, lang: str = "en") -> GT | Cards:
    """The target cascade check (:func:`crmlib.performance.cascade`): per level, targets checked and
    those whose children do not add up, with the largest difference."""
    check_lang(lang)
    if frame is None or frame.height == 0:
        return _message(CHART_LABELS["no_data"][lang])
    import polars as pl

    levels = _translate(frame.get_column("level").to_list() + frame.get_column("child_level").to_list(), lang)
    shown = frame.with_columns(pl.col("level").replace(levels), pl.col("child_level").replace(levels))
    cols = ["level", "child_level", "checked", "problems", "worst_entity", "worst_period", "worst_difference"]
    gt = (GT(shown.select(cols)).tab_header(title=LABELS["cascade"][lang])
          .cols_label(**{c: _t(c, lang) for c in cols})
          .fmt_integer(columns=["checked", "problems"]).fmt_number(columns="worst_difference", decimals=0)
          .tab_style(style.text(weight="bold", color="#cf222e"), loc.body(columns="problems",
                                                                           rows=pl.col("problems") > 0))
          .sub_missing(missing_text="–"))
    if frame.get_column("problems").sum() == 0:
        gt = gt.tab_source_note(LABELS["cascade_ok"][lang])
    return gt
