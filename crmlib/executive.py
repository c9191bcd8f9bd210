"""The executive summary: one page for the CEO, built on the KPI engine and the area analytics.

>>> crm = crmlib.open()                                                      # doctest: +SKIP
>>> s = crmlib.executive.summarize(crm, as_of="2026-06-30", grain="month")  # doctest: +SKIP
>>> s.scorecard(); s.trends(); s.risks(); s.opportunities(); s.changes()     # doctest: +SKIP

**Period.** ``as_of`` (default: the last day with data, :func:`default_as_of`) falls in
the *current* ``grain`` period; the summary reads that period up to ``as_of`` (the engine projects a
partial period to its end for the status) and the ``periods - 1`` periods before it for the trend. The
*previous* period is the grain period before the current one (a partial period is compared like for like,
see :mod:`crmlib.kpis.engine`).

**Headline KPIs** (:data:`HEADLINE`, by area): catalog KPIs computed by one ``crm.kpis`` call (value,
comparison with the previous period, target, attainment, status), plus *reps on target* (performance):
the share of reps with a revenue target in the ``targets`` table (:func:`crmlib.sales.quota`) whose status
(:mod:`crmlib.kpis.targets`) is ``on_track`` in the engine's revenue per user (a rep without any deal is off
track). Targets are the ``targets`` table's (company level), plus a CSV/YAML file
of extra targets when given (``targets=``).

**Top risks.** :func:`crmlib.alerts.top_alerts` when that module exists (its rows in its order, severity
as it says: critical, warning); else the
*off-track KPIs*: headline KPIs whose status is ``off_track`` (severity high) or ``at_risk`` (medium),
and the teams whose ``revenue``, ``sla_compliance`` or ``csat`` is off track against their own targets
(severity high); ``since`` is the first period of the current run of periods not on track.

**Top opportunities**, from the area functions: *momentum* (headline KPIs with the largest change for the
better against the previous period), *campaigns* (the campaigns whose leads created in the trend window
were won most often, :func:`crmlib.marketing.funnel`, among campaigns with at least
:data:`MIN_CAMPAIGN_LEADS` leads and one win) and *rescue* (the largest stalled open deals,
:func:`crmlib.sales.stalled_deals`).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from functools import cached_property

import polars as pl

from .cards import format_value
from .errors import ConfigError, CrmlibError
from .i18n import check_lang
from .kpis._periods import check_grain, parse_as_of, shift, trunc
from .kpis.catalog import default_catalog
from .sources import Crm

__all__ = ["HEADLINE", "MIN_CAMPAIGN_LEADS", "REPS_ON_TARGET", "Summary", "default_as_of", "summarize"]

REPS_ON_TARGET = "reps_on_target"
HEADLINE: tuple[tuple[str, str], ...] = (
    ("sales", "revenue"),
    ("sales", "win_rate"),
    ("sales", "open_pipeline"),
    ("performance", "won_deals"),
    ("performance", REPS_ON_TARGET),
    ("marketing", "new_leads"),
    ("marketing", "cost_per_lead"),
    ("service", "sla_compliance"),
    ("service", "csat"),
    ("service", "first_response_business_hours"),
    ("customers", "order_revenue"),
    ("customers", "active_accounts"),
)
TEAM_RISK_KPIS = ("revenue", "sla_compliance", "csat")
MIN_CAMPAIGN_LEADS = 20
GRAINS = ("week", "month", "quarter", "year")

AREAS = {
    "sales": {"en": "Sales", "zh": "销售"},
    "performance": {"en": "Performance", "zh": "绩效"},
    "marketing": {"en": "Marketing", "zh": "市场"},
    "service": {"en": "Customer service", "zh": "客户服务"},
    "customers": {"en": "Customer value", "zh": "客户价值"},
}
TEXT = {
    REPS_ON_TARGET: {"en": "Reps on target", "zh": "达标销售占比"},
    "company": {"en": "Company", "zh": "公司"},
    "team": {"en": "Team", "zh": "团队"},
    "target": {"en": "target", "zh": "目标"},
    "attainment": {"en": "attainment", "zh": "完成率"},
    "high": {"en": "high", "zh": "高"},
    "medium": {"en": "medium", "zh": "中"},
    "momentum": {"en": "Momentum", "zh": "向好指标"},
    "campaign": {"en": "Scale up campaign", "zh": "可加码活动"},
    "rescue": {"en": "Rescue stalled deal", "zh": "待挽救商机"},
    "vs_previous": {"en": "vs previous period", "zh": "较上期"},
    "leads_won": {"en": "of {n} leads won", "zh": "{n} 条线索赢单率"},
    "stalled": {
        "en": "{stage}, stalled {days} days, owner {owner}",
        "zh": "{stage}阶段，停滞 {days} 天，负责人 {owner}",
    },
}
_EXTRA_FORMAT = {REPS_ON_TARGET: ("percent", 0, "higher")}


_log = logging.getLogger("crmlib.executive")


def _text(key: str, lang: str) -> str:
    return TEXT[key][lang]


def kpi_meta(kpi: str, lang: str) -> tuple[str, str, int, str]:
    """(label, format style, decimals, direction) of a headline KPI."""
    if kpi in _EXTRA_FORMAT:
        style, decimals, direction = _EXTRA_FORMAT[kpi]
        return _text(kpi, lang), style, decimals, direction
    k = default_catalog().get(kpi)
    return k.label.get(lang), k.format.style, k.format.decimals, k.direction


FACT_TIMES = {
    "opportunities": "created_at",
    "opportunity_history": "changed_at",
    "leads": "created_at",
    "activities": "occurred_at",
    "marketing_spend": "date",
    "cases": "created_at",
    "case_events": "occurred_at",
    "surveys": "sent_at",
    "orders": "ordered_at",
}


def default_as_of(crm: Crm) -> dt.date:
    """The last day with data: the latest record time of the fact tables (:data:`FACT_TIMES`)."""
    got = pl.collect_all([crm.table(t).select(pl.col(c).max().cast(pl.Date)) for t, c in FACT_TIMES.items()])
    days = [f.item() for f in got if f.item() is not None]
    if not days:
        raise ConfigError(
            f"{crm.source or 'The source'} has no opportunities, leads, activities, cases, surveys or "
            "orders: there is nothing to summarise. Import data first (crmlib data import) or give "
            "another source."
        )
    return max(days)


def summarize(
    crm: Crm,
    as_of: str | dt.date | None = "",
    grain: str = "month",
    periods: int = 12,
    targets: str = "",
    lang: str = "en",
) -> Summary:
    """Compute the headline KPIs once (see the module docstring); sections read the returned :class:`Summary`."""
    check_lang(lang)
    check_grain(grain)
    if grain not in GRAINS:
        raise ConfigError(
            f"grain {grain!r} is too fine for an executive summary. Use one of: {', '.join(GRAINS)}."
        )
    if isinstance(periods, bool) or not isinstance(periods, int) or not 2 <= periods <= 60:
        raise ConfigError(f"periods must be a whole number from 2 to 60 (the trend length), not {periods!r}.")
    day = parse_as_of(as_of) if as_of not in (None, "") else default_as_of(crm)
    current = trunc(day, grain)
    first = shift(current, grain, -(periods - 1))
    tg: bool | str = targets if targets else True
    catalog_kpis = [k for _, k in HEADLINE if k != REPS_ON_TARGET]
    rows = crm.kpis(
        catalog_kpis, grain=grain, period=(first, day), compare="previous_period", targets=tg, as_of=day
    )
    rows = pl.concat([rows, _reps_on_target(crm, grain, first, day, tg)], how="diagonal_relaxed")
    return Summary(
        crm=crm, as_of=day, grain=grain, current=current, first=first, targets=tg, lang=lang, rows=rows
    )


def _reps_on_target(crm: Crm, grain: str, first: dt.date, day: dt.date, targets) -> pl.DataFrame:
    """Engine-shaped rows of ``reps_on_target``: on-track reps / reps with a revenue target, per period."""
    from . import sales

    per_rep = crm.kpis("revenue", by="user", grain=grain, period=(first, day), targets=targets, as_of=day)
    # every rep with a target counts, also one without any deal (the engine has no row for them: off track)
    quota = sales.quota(crm, sales.select(crm, first, day), grain, "user")
    share = (
        quota.join(per_rep.select("period", "user", "status"), on=["period", "user"], how="left")
        .with_columns(
            pl.col("status").fill_null(
                pl.when(pl.col("target") <= 0).then(pl.lit("on_track")).otherwise(pl.lit("off_track"))
            )
        )
        .group_by("period")
        .agg((pl.col("status") == "on_track").mean().alias("value"))
    )
    periods = per_rep.select("period", "days", "complete").unique("period")
    out = (
        periods.join(share, on="period", how="left")
        .sort("period")
        .with_columns(pl.lit(REPS_ON_TARGET).alias("kpi"), pl.col("value").cast(pl.Float64))
    )
    return out.with_columns(
        pl.col("value").shift(1).alias("comparison"),
    ).with_columns(
        (pl.col("value") - pl.col("comparison")).alias("delta"),
        pl.when(pl.col("comparison") != 0)
        .then((pl.col("value") - pl.col("comparison")) / pl.col("comparison").abs())
        .alias("delta_pct"),
        pl.col("value").alias("projection"),
    )


@dataclass(frozen=True)
class Summary:
    """The executive summary's data: ``rows`` holds the engine rows of every headline KPI and period."""

    crm: Crm = field(repr=False)
    as_of: dt.date
    grain: str
    current: dt.date
    first: dt.date
    targets: bool | str
    lang: str
    rows: pl.DataFrame = field(repr=False)

    @property
    def previous(self) -> dt.date:
        return shift(self.current, self.grain, -1)

    # -- headline -------------------------------------------------------------------------------
    @cached_property
    def _meta(self) -> pl.DataFrame:
        recs = []
        for order, (area, kpi) in enumerate(HEADLINE):
            label, style, decimals, direction = kpi_meta(kpi, self.lang)
            recs.append(
                {
                    "order": order,
                    "area": area,
                    "area_label": AREAS[area][self.lang],
                    "kpi": kpi,
                    "label": label,
                    "style": style,
                    "decimals": decimals,
                    "direction": direction,
                }
            )
        return pl.DataFrame(recs)

    def scorecard(self) -> pl.DataFrame:
        """One row per headline KPI for the current period: ``area, area_label, kpi, label, period, value,
        comparison, delta, delta_pct, target, attainment, status, style, decimals, direction, trend, period_label,
        as_of`` (``trend``: the values of the trend periods, oldest first, null where there is no value)."""
        trend = (
            self.rows.sort("period").group_by("kpi", maintain_order=True).agg(pl.col("value").alias("trend"))
        )
        cur = self.rows.filter(pl.col("period") == self.current).select(
            "kpi", "period", "value", "comparison", "delta", "delta_pct", "target", "attainment", "status"
        )
        return (
            self._meta.join(cur, on="kpi", how="left")
            .join(trend, on="kpi", how="left")
            .sort("order")
            .drop("order")
            .with_columns(pl.lit(self.period_label).alias("period_label"), pl.lit(self.as_of).alias("as_of"))
        )

    @property
    def period_label(self) -> str:
        """The current period as people write it: 2026-06, 2026-Q2, 2026, or the week's Monday."""
        c = self.current
        return {
            "month": f"{c:%Y-%m}",
            "quarter": f"{c.year}-Q{(c.month - 1) // 3 + 1}",
            "year": f"{c.year}",
        }.get(self.grain, f"{c:%Y-%m-%d}")

    def trends(self) -> pl.DataFrame:
        """``area, kpi, label, style, period, value, target`` for every headline KPI and trend period."""
        return (
            self._meta.join(self.rows.select("kpi", "period", "value", "target"), on="kpi")
            .sort("order", "period")
            .select("area", "kpi", "label", "style", "decimals", "period", "value", "target")
        )

    def changes(self) -> pl.DataFrame:
        """What changed since the previous period: ``kpi, label, style, decimals, previous, value, delta,
        delta_pct, better, status`` (``better``: the change goes the KPI's good way), largest relative change
        first; KPIs without both values are left out."""
        sc = self.scorecard().filter(pl.col("value").is_not_null() & pl.col("comparison").is_not_null())
        better = (
            pl.when(pl.col("direction") == "higher").then(pl.col("delta") > 0).otherwise(pl.col("delta") < 0)
        )
        return sc.select(
            "area_label",
            "kpi",
            "label",
            "style",
            "decimals",
            pl.col("comparison").alias("previous"),
            "value",
            "delta",
            "delta_pct",
            better.alias("better"),
            "status",
        ).sort(pl.col("delta_pct").abs(), descending=True, nulls_last=True)

    # -- risks ----------------------------------------------------------------------------------
    def risks(self, n: int = 5) -> pl.DataFrame:
        """The top ``n`` risks: ``severity, kpi, scope, message, value, expected, since, source``
        (``source`` is ``alerts`` or ``kpi_status``; see the module docstring)."""
        top = _alerts_function()
        if top is not None:
            try:
                return normalise_alerts(top(self.crm, as_of=self.as_of, n=n, lang=self.lang)).head(n)
            except CrmlibError as exc:  # no (valid) alert rules here: the engine's status still tells
                _log.warning("executive summary: alerts unavailable (%s); risks from KPI status instead", exc)
        return self.off_track(n)

    def off_track(self, n: int = 5) -> pl.DataFrame:
        """Risks from the engine's status: headline KPIs off track or at risk, and teams off track."""
        lang = self.lang
        status = self.rows.select("kpi", "period", "status")
        company = (
            self.scorecard()
            .filter(pl.col("status").is_in(["off_track", "at_risk"]))
            .with_columns(
                pl.lit(_text("company", lang)).alias("scope"), pl.lit(None, pl.String).alias("team_id")
            )
        )
        company = company.join(_since(status, self.current), on="kpi", how="left")
        teams = self._team_risks()
        recs = []
        for r in pl.concat(
            [company.select(_RISK_COLS), teams.select(_RISK_COLS)], how="vertical_relaxed"
        ).iter_rows(named=True):
            label, style, decimals, _ = kpi_meta(r["kpi"], lang)
            value = format_value(r["value"], style, decimals, lang)
            target = format_value(r["target"], style, decimals, lang)
            att = f"{r['attainment'] * 100:.0f}%" if r["attainment"] is not None else "–"
            sev = "high" if r["status"] == "off_track" else "medium"
            recs.append(
                {
                    "severity": sev,
                    "kpi": r["kpi"],
                    "scope": r["scope"],
                    "message": f"{label} {value}, {_text('target', lang)} {target} ({_text('attainment', lang)} {att})",
                    "value": r["value"],
                    "expected": r["target"],
                    "since": r["since"],
                    "source": "kpi_status",
                    "_att": r["attainment"],
                }
            )
        out = pl.DataFrame(recs, schema={**RISK_SCHEMA, "_att": pl.Float64})
        return out.sort(pl.col("severity") == "medium", "_att", nulls_last=True).drop("_att").head(n)

    def _team_risks(self) -> pl.DataFrame:
        rows = self.crm.kpis(
            list(TEAM_RISK_KPIS),
            by="team",
            grain=self.grain,
            period=(self.first, self.as_of),
            targets=self.targets,
            as_of=self.as_of,
        )
        since = _since(rows.select("kpi", "team", "period", "status"), self.current, by=["team"])
        names = self.crm.table("teams").select(pl.col("team_id").alias("team"), "name").collect()
        prefix = _text("team", self.lang)
        return (
            rows.filter((pl.col("period") == self.current) & (pl.col("status") == "off_track"))
            .join(since, on=["kpi", "team"], how="left")
            .join(names, on="team", how="left")
            .with_columns(
                pl.format(f"{prefix} {{}} {{}}", "team", pl.col("name").fill_null(""))
                .str.strip_chars()
                .alias("scope")
            )
        )

    # -- opportunities --------------------------------------------------------------------------
    def opportunities(self, n: int = 3) -> pl.DataFrame:
        """Up to ``n`` opportunities of each kind (momentum, campaign, rescue): ``kind, item, detail, value,
        style`` (``value`` in the unit ``style`` names), in that order."""
        from . import marketing, sales

        lang = self.lang
        recs: list[dict] = []
        for r in self.changes().filter(pl.col("better")).head(n).iter_rows(named=True):
            pct = f"{'+' if r['delta'] >= 0 else '−'}{abs(r['delta_pct'] or 0) * 100:.1f}%"
            recs.append(
                {
                    "kind": "momentum",
                    "item": r["label"],
                    "detail": f"{format_value(r['previous'], r['style'], r['decimals'], lang)} → "
                    f"{format_value(r['value'], r['style'], r['decimals'], lang)} ({pct} "
                    f"{_text('vs_previous', lang)})",
                    "value": r["value"],
                    "style": r["style"],
                }
            )
        fun = marketing.funnel(self.crm, self.first, self.as_of, by="campaign")
        if fun.height:
            leads = fun.filter(pl.col("step") == "lead").select("campaign_id", pl.col("count").alias("leads"))
            won = fun.filter(pl.col("step") == "won").select("campaign_id", pl.col("count").alias("won"))
            names = self.crm.table("campaigns").select("campaign_id", "name").collect()
            best = (
                leads.join(won, on="campaign_id", how="left")
                .filter(
                    pl.col("campaign_id").is_not_null()
                    & (pl.col("leads") >= MIN_CAMPAIGN_LEADS)
                    & (pl.col("won") > 0)
                )
                .with_columns((pl.col("won").fill_null(0) / pl.col("leads")).alias("rate"))
                .join(names, on="campaign_id", how="left")
                .sort(["rate", "leads", "campaign_id"], descending=[True, True, False])
                .head(n)
            )
            for r in best.iter_rows(named=True):
                recs.append(
                    {
                        "kind": "campaign",
                        "item": f"{r['name'] or r['campaign_id']} ({r['campaign_id']})",
                        "detail": f"{r['rate'] * 100:.1f}% " + _text("leads_won", lang).format(n=r["leads"]),
                        "value": r["rate"],
                        "style": "percent",
                    }
                )
        stalled = sales.stalled_deals(self.crm, end=self.as_of).head(n)
        for r in stalled.iter_rows(named=True):
            recs.append(
                {
                    "kind": "rescue",
                    "item": r["opportunity"] or r["opportunity_id"],
                    "detail": _text("stalled", lang).format(
                        stage=r["stage"], days=r["days_stalled"], owner=r["owner"] or r["owner_id"]
                    ),
                    "value": r["amount"],
                    "style": "currency",
                }
            )
        return pl.DataFrame(
            recs,
            schema={
                "kind": pl.String,
                "item": pl.String,
                "detail": pl.String,
                "value": pl.Float64,
                "style": pl.String,
            },
        )


RISK_SCHEMA = {
    "severity": pl.String,
    "kpi": pl.String,
    "scope": pl.String,
    "message": pl.String,
    "value": pl.Float64,
    "expected": pl.Float64,
    "since": pl.Date,
    "source": pl.String,
}
_RISK_COLS = ("kpi", "scope", "value", "target", "attainment", "status", "since")


def _since(status: pl.DataFrame, current: dt.date, by: list[str] | None = None) -> pl.DataFrame:
    """Per KPI (and ``by`` group): the first period of the run of periods not on track that ends at ``current``."""
    keys = ["kpi", *(by or [])]
    ok = status.filter(pl.col("period") <= current).with_columns(
        (pl.col("status") == "on_track").fill_null(True).alias("_ok")
    )
    last_ok = ok.filter(pl.col("_ok")).group_by(keys).agg(pl.col("period").max().alias("_last_ok"))
    return (
        ok.join(last_ok, on=keys, how="left")
        .filter(~pl.col("_ok") & (pl.col("_last_ok").is_null() | (pl.col("period") > pl.col("_last_ok"))))
        .group_by(keys)
        .agg(pl.col("period").min().alias("since"))
    )


def _alerts_function():
    """:func:`crmlib.alerts.top_alerts` when the alerts module exists, else None."""
    import importlib

    try:
        alerts = importlib.import_module(f"{__package__}.alerts")
    except ModuleNotFoundError as exc:
        if exc.name == f"{__package__}.alerts":  # not written yet; a broken alerts module still raises
            return None
        raise
    return getattr(alerts, "top_alerts", None)


def normalise_alerts(frame: pl.DataFrame) -> pl.DataFrame:
    """The alerts' rows in the risk columns: ``expected`` is their ``expected``, else their ``threshold``;
    ``since`` a date (text such as ``2026-04-01`` is parsed); columns they lack are null."""
    cols = set(frame.columns)
    exp = [pl.col(c).cast(pl.Float64, strict=False) for c in ("expected", "threshold") if c in cols]
    out = []
    for name, dtype in RISK_SCHEMA.items():
        if name == "source":
            out.append(pl.lit("alerts").alias("source"))
        elif name == "expected":
            out.append((pl.coalesce(exp) if exp else pl.lit(None, pl.Float64)).alias("expected"))
        elif name not in cols:
            out.append(pl.lit(None, dtype).alias(name))
        elif name == "since" and frame.schema["since"] == pl.String:
            out.append(pl.col("since").str.slice(0, 10).str.to_date("%Y-%m-%d", strict=False))
        else:
            out.append(pl.col(name).cast(dtype, strict=False))
    return frame.select(out)
