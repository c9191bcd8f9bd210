"""Alerts tables with great_tables: the alerts by severity and the opportunity signals.

Inputs come from :mod:`crmlib.alerts`; labels are English or Chinese (``lang``, shared with
:mod:`crmlib.charts_alerts`); an empty input gives a table that says so.
"""

from __future__ import annotations

import polars as pl
from great_tables import GT, loc, style

from .charts_alerts import SEVERITY_COLOURS, t
from .i18n import check_lang


def fmt_alerts(alerts: pl.DataFrame, lang: str = "en", as_of=None) -> GT:
    """The alerts table (input: :func:`crmlib.alerts.current_alerts`), rows coloured by severity."""
    check_lang(lang)
    day = as_of or (alerts["period"].max() if alerts.height else "")
    shown = (
        alerts.select(
            pl.col("severity").replace_strict(
                {s: t(s, lang) for s in SEVERITY_COLOURS}, default=pl.col("severity")
            ),
            pl.col("kind").replace_strict(
                {k: t(k, lang) for k in ("rule", "anomaly", "signal")}, default=pl.col("kind")
            ),
            "scope",
            "period",
            "message",
            "since",
            "owner",
        )
        if alerts.height
        else pl.DataFrame({"message": [t("no_alerts", lang)]})
    )
    gt = GT(shown).tab_header(
        title=t("alerts", lang), subtitle=t("alerts_sub", lang, day=day) if day else None
    )
    if not alerts.height:
        return gt.cols_label(message=t("message", lang))
    gt = gt.cols_label(**{c: t(c, lang) for c in shown.columns})
    for sev, colour in SEVERITY_COLOURS.items():
        rows = [i for i, s in enumerate(alerts["severity"].to_list()) if s == sev]
        if rows:
            gt = gt.tab_style(
                style=style.text(color=colour, weight="bold"),
                locations=loc.body(columns="severity", rows=rows),
            )
    return gt


def fmt_signals(signals: pl.DataFrame, lang: str = "en") -> GT:
    """The opportunity signals (input: :func:`crmlib.alerts.signals`), grouped by kind."""
    check_lang(lang)
    if not signals.height:
        return (
            GT(pl.DataFrame({"message": [t("no_signals", lang)]}))
            .tab_header(title=t("signals", lang))
            .cols_label(message=t("message", lang))
        )
    shown = signals.select(
        pl.col("name")
        .replace_strict(
            {
                k: t(k, lang)
                for k in ("rising_activity", "rising_orders", "cross_sell", "campaign_conversion")
            },
            default=pl.col("name"),
        )
        .alias("kind"),
        "scope",
        "message",
        "owner",
    )
    return (
        GT(shown, groupname_col="kind")
        .tab_header(title=t("signals", lang), subtitle=t("signals_sub", lang))
        .cols_label(scope=t("scope", lang), message=t("message", lang), owner=t("owner", lang))
    )
