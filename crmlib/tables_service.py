"""Customer service tables with great_tables: the about-to-breach worklist and the leaderboards.

Input frames come from :mod:`crmlib.service`; labels are English or Chinese (``lang``); an empty frame
gives a table that says so.
"""

from __future__ import annotations

import polars as pl
from great_tables import GT, loc, style

from .charts_service import t as chart_label
from .i18n import check_lang

LABELS: dict[str, dict[str, str]] = {
    "about_to_breach": {"en": "Tickets about to breach their SLA", "zh": "即将违反 SLA 的工单"},
    "about_to_breach_sub": {"en": "Open tickets with less than {h} h left on a target, soonest first",
                            "zh": "目标剩余时间不足 {h} 小时的未结工单，按紧迫程度排序"},
    "none_about_to_breach": {"en": "No data for this selection: no open ticket is about to breach.",
                             "zh": "当前筛选条件下没有数据：没有即将违约的未结工单。"},
    "no_data": {"en": "No data for this selection.", "zh": "当前筛选条件下没有数据。"},
    "case_id": {"en": "Case", "zh": "工单"},
    "priority": {"en": "Priority", "zh": "优先级"},
    "team_id": {"en": "Team", "zh": "团队"},
    "agent_id": {"en": "Agent", "zh": "客服"},
    "status": {"en": "Status", "zh": "状态"},
    "target": {"en": "Target", "zh": "目标"},
    "target_hours": {"en": "Target (h)", "zh": "时限（小时）"},
    "elapsed_hours": {"en": "Elapsed (h)", "zh": "已用（小时）"},
    "remaining_hours": {"en": "Left (h)", "zh": "剩余（小时）"},
    "due_at": {"en": "Due", "zh": "到期时间"},
    "paused": {"en": "paused", "zh": "已暂停"},
    "leaderboard_agent": {"en": "Agent leaderboard", "zh": "客服排行榜"},
    "leaderboard_team": {"en": "Team leaderboard", "zh": "团队排行榜"},
    "leaderboard_sub": {"en": "Ranked by {by}; times in {hours} hours", "zh": "按{by}排名；时长为{hours}小时"},
    "rank": {"en": "Rank", "zh": "排名"},
    "agent": {"en": "Agent", "zh": "客服"},
    "team": {"en": "Team", "zh": "团队"},
    "member_id": {"en": "Id", "zh": "编号"},
    "name": {"en": "Name", "zh": "名称"},
    "rank_change": {"en": "vs previous", "zh": "较上期"},
    "cases": {"en": "Cases", "zh": "新建工单"},
    "solved": {"en": "Solved", "zh": "已解决"},
    "first_response_hours": {"en": "First response (median h)", "zh": "首次响应（中位数，小时）"},
    "resolution_hours": {"en": "Resolution (median h)", "zh": "解决时长（中位数，小时）"},
    "sla_compliance": {"en": "SLA compliance", "zh": "SLA 达成率"},
    "csat": {"en": "CSAT", "zh": "CSAT"},
    "csat_responses": {"en": "CSAT answers", "zh": "CSAT 回复数"},
    "new": {"en": "new", "zh": "新建"},
    "open": {"en": "open", "zh": "处理中"},
    "pending": {"en": "pending", "zh": "等待客户"},
    "on_hold": {"en": "on hold", "zh": "挂起"},
}


def t(key: str, lang: str = "en", **kw) -> str:
    """This module's label (falling back on :mod:`crmlib.charts_service`'s, then the key)."""
    entry = LABELS.get(key)
    text = entry[check_lang(lang)] if entry else chart_label(key, lang)
    return text.format(**kw) if kw else text


def _translate(frame: pl.DataFrame, columns, lang: str) -> pl.DataFrame:
    """Category values (priorities, statuses, targets) in the language asked."""
    from .charts_service import LABELS as CHART_LABELS

    words = {k: t(k, lang) for k in (*CHART_LABELS, *LABELS)}
    return frame.with_columns(pl.col(c).replace(words) for c in columns if c in frame.columns)


def fmt_about_to_breach(frame: pl.DataFrame, lang: str = "en", within_hours: float | None = None,
                        limit: int = 50) -> GT:
    """The about-to-breach worklist (input: :func:`crmlib.service.about_to_breach`): the first ``limit``
    rows, time left in red under one hour, ``due`` says "paused" while the clock waits on the customer.
    ``within_hours`` (for the subtitle) defaults to the SLA file's ``warn_within_hours``, as in
    :func:`crmlib.service.about_to_breach`."""
    check_lang(lang)
    if within_hours is None:
        from .service import load_sla

        within_hours = load_sla().warn_within_hours
    cols = ["case_id", "priority", "team_id", "agent_id", "status", "target", "target_hours", "elapsed_hours",
            "remaining_hours", "due_at"]
    shown = _translate(frame.head(limit).select(cols), ["priority", "status", "target"], lang).with_columns(
        pl.col("due_at").dt.strftime("%Y-%m-%d %H:%M").fill_null(t("paused", lang)))
    gt = GT(shown).tab_header(title=t("about_to_breach", lang),
                              subtitle=t("about_to_breach_sub", lang, h=f"{within_hours:g}"))
    gt = gt.cols_label(cases={c: t(c, lang) for c in cols}).sub_missing(missing_text="–")
    if shown.height == 0:
        return gt.tab_source_note(t("none_about_to_breach", lang))
    gt = gt.fmt_number(columns=["target_hours", "elapsed_hours", "remaining_hours"], decimals=1)
    return gt.tab_style(style=style.text(color="#cf222e", weight="bold"),
                        locations=loc.body(columns="remaining_hours", rows=pl.col("remaining_hours") < 1))


def fmt_leaderboard(frame: pl.DataFrame, lang: str = "en", hours: str = "business", limit: int | None = 30) -> GT:
    """An agent or team leaderboard (input: :func:`crmlib.service.leaderboard`); the rank change against
    the previous period shows as ▲/▼."""
    check_lang(lang)
    level = "agent" if "team_id" in frame.columns else "team"
    sort_by = frame["ranked_by"][0] if frame.height else "solved"
    shown = (frame.head(limit) if limit else frame).with_columns(
        pl.coalesce("name", "member_id").alias("name"),
        pl.when(pl.col("rank_change") > 0).then(pl.lit("▲ ") + pl.col("rank_change").cast(pl.String))
        .when(pl.col("rank_change") < 0).then(pl.lit("▼ ") + (-pl.col("rank_change")).cast(pl.String))
        .when(pl.col("rank_change") == 0).then(pl.lit("=")).alias("rank_change"),
    ).drop("ranked_by", "previous_rank")
    gt = GT(shown).tab_header(title=t(f"leaderboard_{level}", lang),
                              subtitle=t("leaderboard_sub", lang, by=t(sort_by, lang), hours=chart_label(hours, lang)))
    gt = gt.cols_label(cases={c: t(c, lang) for c in shown.columns}).sub_missing(missing_text="–")
    if shown.height == 0:
        return gt.tab_source_note(t("no_data", lang))
    return (gt.fmt_integer(columns=["rank", "cases", "solved", "csat_responses"])
            .fmt_number(columns=["first_response_hours", "resolution_hours"], decimals=1)
            .fmt_percent(columns=["sla_compliance", "csat"], decimals=1)
            .data_color(columns=["sla_compliance"], palette=["#f8d7da", "#ffffff", "#d1e7dd"], domain=[0.5, 1.0],
                        na_color="#ffffff"))
