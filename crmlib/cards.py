"""KPI cards and value formatting shared by every area notebook.

``kpi_cards(frame, lang)`` takes the engine's tidy output (``crm.kpis(...)``) and shows one card per
KPI for its latest period: the value, the target and attainment, the change against the comparison,
and a status colour. ``format_value`` formats a number the way the KPI's catalog ``format`` says, with
Chinese units (万, 亿) when the language is ``zh``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape

import polars as pl

from . import config
from .i18n import check_lang
from .kpis.catalog import default_catalog

STATUS_COLOURS = {"on_track": "#1a7f37", "at_risk": "#bf8700", "off_track": "#cf222e", None: "#6e7781"}
_TEXT = {
    "on_track": {"en": "on track", "zh": "达标"},
    "at_risk": {"en": "at risk", "zh": "有风险"},
    "off_track": {"en": "off track", "zh": "未达标"},
    "target": {"en": "Target", "zh": "目标"},
    "attainment": {"en": "attainment", "zh": "完成率"},
    "vs": {"en": "vs previous", "zh": "较上期"},
    "no_data": {"en": "No data for this selection.", "zh": "当前筛选条件下没有数据。"},
}


def _compact(value: float, lang: str) -> tuple[float, str]:
    a = abs(value)
    if lang == "zh":
        for size, unit in ((1e8, "亿"), (1e4, "万")):
            if a >= size:
                return value / size, unit
        return value, ""
    for size, unit in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if a >= size:
            return value / size, unit
    return value, ""


def format_value(value, style: str, decimals: int = 0, lang: str = "en", currency: str | None = None,
                 compact: bool = True) -> str:
    """Format one number by a catalog format style (currency, integer, number, percent, days, hours).

    >>> format_value(1234567, "currency", 0, "en", "CNY")
    'CNY 1.23M'
    >>> format_value(1234567, "currency", 0, "zh", "CNY")
    'CNY 123.46万'
    >>> format_value(0.4567, "percent", 1)
    '45.7%'
    """
    check_lang(lang)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if style == "percent":
        return f"{value * 100:.{decimals}f}%"
    if style in ("days", "hours"):
        unit = {"days": {"en": "d", "zh": "天"}, "hours": {"en": "h", "zh": "小时"}}[style][lang]
        return f"{value:,.{decimals}f} {unit}"
    if compact and abs(value) >= (1e4 if lang == "zh" else 1e3):
        scaled, unit = _compact(float(value), lang)
        text = f"{scaled:,.2f}{unit}"
    else:
        text = f"{value:,.{decimals}f}" if style != "integer" else f"{round(value):,}"
    if style == "currency":
        return f"{currency or config.base_currency()} {text}"
    return text


@dataclass(frozen=True)
class Cards:
    """Rendered KPI cards; displays as HTML in notebooks, reports and Voila."""

    html: str

    def _repr_html_(self) -> str:
        return self.html


def _card(row: dict, lang: str) -> str:
    kpi = default_catalog().get(row["kpi"])
    fmt = kpi.format
    value = format_value(row.get("value"), fmt.style, fmt.decimals, lang)
    status = row.get("status")
    colour = STATUS_COLOURS.get(status, STATUS_COLOURS[None])
    lines = []
    if row.get("target") is not None:
        att = row.get("attainment")
        att_text = f" · {_TEXT['attainment'][lang]} {att * 100:.0f}%" if att is not None else ""
        lines.append(f"{_TEXT['target'][lang]} {format_value(row['target'], fmt.style, fmt.decimals, lang)}{att_text}")
    if row.get("delta_pct") is not None:
        d = row["delta_pct"]
        better = (d >= 0) == (kpi.direction == "higher")
        arrow = "▲" if d >= 0 else "▼"
        lines.append(
            f"<span style='color:{'#1a7f37' if better else '#cf222e'}'>{arrow} {abs(d) * 100:.1f}%</span> "
            f"{_TEXT['vs'][lang]}"
        )
    status_text = _TEXT[status][lang] if status in _TEXT else ""
    body = "".join(f"<div style='font-size:12px;color:#57606a;margin-top:2px'>{ln}</div>" for ln in lines)
    return (
        f"<div class='crmlib-card' data-kpi='{escape(kpi.name)}' data-status='{escape(str(status))}' "
        f"style='border:1px solid #d0d7de;border-left:6px solid {colour};border-radius:6px;padding:10px 14px;"
        f"min-width:180px;flex:1 1 180px;background:#fff'>"
        f"<div style='font-size:13px;color:#57606a'>{escape(kpi.label.get(lang))}</div>"
        f"<div style='font-size:24px;font-weight:600;margin:2px 0'>{escape(value)}</div>{body}"
        f"<div style='font-size:12px;color:{colour};margin-top:4px'>{escape(status_text)}</div></div>"
    )


def kpi_cards(frame: pl.DataFrame, lang: str = "en") -> Cards:
    """One card per KPI for the latest period in ``frame`` (engine output without dimensions)."""
    check_lang(lang)
    if frame.height == 0 or frame.get_column("value").is_null().all():
        return Cards(f"<div class='crmlib-empty'>{_TEXT['no_data'][lang]}</div>")
    latest = frame.filter(pl.col("period") == pl.col("period").max().over("kpi"))
    cards = "".join(_card(row, lang) for row in latest.iter_rows(named=True))
    return Cards(f"<div class='crmlib-cards' style='display:flex;flex-wrap:wrap;gap:10px'>{cards}</div>")


def no_data(lang: str = "en") -> Cards:
    """The message a section shows when the selection has no rows."""
    return Cards(f"<div class='crmlib-empty'>{_TEXT['no_data'][check_lang(lang)]}</div>")
