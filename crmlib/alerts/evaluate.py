"""Evaluating threshold rules and anomaly watches with the KPI engine (no KPI logic here).

**Which period is checked.** The as-of day (default: the last event day of the data) ends the data. A
rule or watch checks the last *complete* period of its grain at the as-of day: the period holding the
as-of day when the as-of day is its last day, else the period before (on 5 September, monthly rules
check August). A partial period is never checked: a half month of leads is not a drop.

**Temporary rules** (``from``/``until``) are checked only when the as-of day is inside their window,
boundaries included, and only on a period that overlaps the window.

**Conditions** (on the checked period's row of ``crm.kpis``): ``below`` value < x; ``above`` value > x;
``below_target_pct`` attainment < x / 100 (attainment is direction-aware: target / value for a
lower-is-better KPI; no target, no alert); ``change_pct`` delta_pct <= x / 100 for x < 0 (a fall of at
least |x| %), >= x / 100 for x > 0, against the previous period (or ``compare: previous_year``).

**since**: the first period of the unbroken run of periods, ending with the checked one, in which the
condition held (at most 12 periods back).

An alert is a dict (JSON-ready): ``key`` (what it is about: kind, rule, scope; stable from run to run),
``kind`` (rule, anomaly, signal), ``name``, ``severity``, ``kpi``, ``scope``, ``period``, ``value``,
``threshold`` (always in the KPI's unit: for ``below_target_pct`` that share of the target, for
``change_pct`` the comparison moved by x %), ``expected`` (the target, the comparison period's value, or
an anomaly's expected value), ``lower``, ``upper``, ``score``, ``since``, ``owner``, ``message_en``,
``message_zh`` and ``evidence``.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence

import polars as pl

from ..cards import format_value
from ..errors import ConfigError
from ..kpis._periods import parse_as_of, period_end, shift, trunc
from ..models.anomaly import detect, peer_outliers
from .rules import Rule, RuleSet, Watch

EVENT_TABLES = (
    "opportunities",
    "leads",
    "activities",
    "cases",
    "case_events",
    "orders",
    "touchpoints",
    "surveys",
)
SINCE_PERIODS = 12
SEVERITY_RANK = {"critical": 0, "warning": 1, "info": 2}

DEFAULT_MESSAGES = {
    "below": {
        "en": "{label} is {value} ({scope}, {period}), below {threshold}.",
        "zh": "{label}为{value}（{scope}，{period}），低于{threshold}。",
    },
    "above": {
        "en": "{label} is {value} ({scope}, {period}), above {threshold}.",
        "zh": "{label}为{value}（{scope}，{period}），高于{threshold}。",
    },
    "below_target_pct": {
        "en": "{label} is {value} ({scope}, {period}): {change} of target {target}, below {threshold}.",
        "zh": "{label}为{value}（{scope}，{period}）：完成目标{target}的{change}，低于{threshold}。",
    },
    "change_pct": {
        "en": "{label} changed by {change} to {value} ({scope}, {period}); the rule fires at {threshold}.",
        "zh": "{label}变化{change}至{value}（{scope}，{period}）；规则阈值为{threshold}。",
    },
    "anomaly": {
        "en": "{label} is {value} ({scope}, {period}); expected about {expected} (score {score}).",
        "zh": "{label}为{value}（{scope}，{period}）；预期约为{expected}（异常分数{score}）。",
    },
    "peer": {
        "en": "{label} is {value} ({scope}, {period}), far from its peers' {expected} (score {score}).",
        "zh": "{label}为{value}（{scope}，{period}），明显偏离同类的{expected}（异常分数{score}）。",
    },
}
ALL = {"en": "all", "zh": "全部"}


def data_as_of(crm) -> dt.date:
    """The last event day of the data (the latest time of the event tables)."""
    info = crm.info()
    last = info.filter(pl.col("table").is_in(EVENT_TABLES) & pl.col("last").is_not_null())["last"].to_list()
    if not last:
        raise ConfigError(f"{crm.source}: no events in the data ({', '.join(EVENT_TABLES)}); give as_of.")
    return max(dt.date.fromisoformat(v[:10]) for v in last)


def resolve_as_of(crm, as_of) -> dt.date:
    day = parse_as_of(as_of) if as_of not in (None, "") else None
    return day or data_as_of(crm)


def checked_period(as_of: dt.date, grain: str) -> tuple[dt.date, dt.date]:
    """(start, end) of the last complete ``grain`` period on ``as_of``."""
    start = trunc(as_of, grain)
    if period_end(start, grain) != as_of:
        start = shift(start, grain, -1)
    return start, period_end(start, grain)


def _fmt(cat, kpi: str, value, lang: str) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    f = cat.get(kpi).format
    return format_value(
        value, f.style, f.decimals + (1 if f.style != "percent" and abs(value) < 10 else 0), lang
    )


def scope_text(values: Mapping[str, object], lang: str = "en") -> str:
    parts = [f"{k}={'/'.join(map(str, v)) if isinstance(v, list | tuple) else v}" for k, v in values.items()]
    return ", ".join(parts) if parts else ALL[lang]


def _num(v) -> float | None:
    if v is None:
        return None
    v = float(v)
    return v if math.isfinite(v) else None


def make_alert(
    cat,
    *,
    kind: str,
    name: str,
    severity: str,
    kpi: str,
    scope: Mapping[str, object],
    period,
    value,
    owner: str = "",
    template: Mapping[str, str] | None = None,
    threshold=None,
    threshold_text=None,
    expected=None,
    lower=None,
    upper=None,
    score=None,
    target=None,
    change=None,
    since=None,
    evidence: Mapping | None = None,
    default: str = "below",
) -> dict:
    """One alert record (see the module docstring), its messages rendered in English and Chinese."""
    scope = {k: (list(v) if isinstance(v, tuple) else v) for k, v in scope.items()}
    period_s = period.isoformat() if isinstance(period, dt.date) else (str(period) if period else "")
    out = {
        "key": f"{kind}:{name}:{kpi}:{scope_text(scope)}",
        "kind": kind,
        "name": name,
        "severity": severity,
        "kpi": kpi,
        "scope": scope_text(scope),
        "scope_values": scope,
        "period": period_s,
        "value": _num(value),
        "threshold": _num(threshold),
        "expected": _num(expected),
        "lower": _num(lower),
        "upper": _num(upper),
        "score": _num(score),
        "target": _num(target),
        "change": _num(change),
        "since": since.isoformat() if isinstance(since, dt.date) else (since or period_s),
        "owner": owner,
        "evidence": dict(evidence or {}),
    }
    for lang in ("en", "zh"):
        text = (template or {}).get(lang) or DEFAULT_MESSAGES[default][lang]
        label = cat.get(kpi).label.get(lang) if kpi in cat.kpis else kpi
        sign = "+" if default == "change_pct" else ""
        fields = {
            "label": label,
            "kpi": kpi,
            "scope": scope_text(scope, lang),
            "period": period_s,
            "owner": owner,
            "value": _fmt(cat, kpi, out["value"], lang) if kpi in cat.kpis else str(out["value"]),
            "threshold": threshold_text
            if threshold_text is not None
            else _fmt(cat, kpi, out["threshold"], lang),
            "expected": _fmt(cat, kpi, out["expected"], lang) if kpi in cat.kpis else str(out["expected"]),
            "target": _fmt(cat, kpi, out["target"], lang) if kpi in cat.kpis else str(out["target"]),
            "change": "–" if out["change"] is None else f"{out['change'] * 100:{sign}.1f}%",
            "score": "–" if out["score"] is None else f"{out['score']:+.1f}",
        }
        out[f"message_{lang}"] = text.format_map(fields)
    return out


# --------------------------------------------------------------------------------------------
# Rules
# --------------------------------------------------------------------------------------------
def _holds(rule: Rule) -> pl.Expr:
    t = rule.threshold
    if rule.condition == "below":
        return pl.col("value") < t
    if rule.condition == "above":
        return pl.col("value") > t
    if rule.condition == "below_target_pct":
        return pl.col("attainment") < t / 100
    return pl.col("delta_pct") <= t / 100 if t < 0 else pl.col("delta_pct") >= t / 100


def evaluate_rule(crm, rule: Rule, as_of: dt.date, cat) -> list[dict]:
    """The alerts of one rule on the day ``as_of`` (none when a temporary rule is not active then)."""
    if not rule.active(as_of):
        return []
    start, end = checked_period(as_of, rule.grain)
    if (rule.valid_from and end < rule.valid_from) or (rule.valid_until and start > rule.valid_until):
        return []
    first = shift(start, rule.grain, -(SINCE_PERIODS - 1))
    frame = crm.kpis(
        [rule.kpi],
        by=rule.by,
        grain=rule.grain,
        period=(first, end),
        filters=dict(rule.scope) or None,
        compare=rule.compare if rule.condition == "change_pct" else None,
        targets=rule.condition == "below_target_pct",
        as_of=as_of,
    )
    frame = frame.filter(pl.col("complete")).with_columns(_holds(rule).fill_null(False).alias("_holds"))
    now = frame.filter((pl.col("period") == start) & pl.col("_holds"))
    alerts = []
    for row in now.iter_rows(named=True):
        group = {d: row[d] for d in rule.by}
        hist = frame.filter(*[pl.col(d).eq_missing(v) for d, v in group.items()]).sort("period")
        since = start
        for p, holds in zip(
            reversed(hist["period"].to_list()), reversed(hist["_holds"].to_list()), strict=True
        ):
            if not holds:
                break
            since = p
        scope = {**{k: (v[0] if len(v) == 1 else list(v)) for k, v in rule.scope.items()}, **group}
        pct = rule.condition in ("below_target_pct", "change_pct")
        alerts.append(
            make_alert(
                cat,
                kind="rule",
                name=rule.name,
                severity=rule.severity,
                kpi=rule.kpi,
                scope=scope,
                period=start,
                value=row["value"],
                owner=rule.owner,
                template=rule.message,
                threshold=_threshold_value(rule, row, cat.get(rule.kpi).direction),
                expected=row.get("target")
                if rule.condition == "below_target_pct"
                else row.get("comparison")
                if rule.condition == "change_pct"
                else None,
                threshold_text=f"{rule.threshold:+g}%"
                if rule.condition == "change_pct"
                else f"{rule.threshold:g}%"
                if pct
                else None,
                target=row.get("target"),
                change=row.get("attainment")
                if rule.condition == "below_target_pct"
                else row.get("delta_pct"),
                since=since,
                default=rule.condition,
                evidence={
                    "condition": rule.condition,
                    "grain": rule.grain,
                    "comparison": _num(row.get("comparison")),
                    "attainment": _num(row.get("attainment")),
                    "valid_from": _iso(rule.valid_from),
                    "valid_until": _iso(rule.valid_until),
                },
            )
        )
    return alerts


def _threshold_value(rule: Rule, row: dict, direction: str) -> float | None:
    """The rule's threshold in the KPI's unit: the value at which it fires (for percentage conditions,
    that percentage of the target, or of the comparison period)."""
    x = rule.threshold
    if rule.condition in ("below", "above"):
        return x
    if rule.condition == "below_target_pct":
        target = row.get("target")
        if target is None:
            return None
        return target * x / 100 if direction == "higher" else target / (x / 100)
    comparison = row.get("comparison")
    return None if comparison is None else comparison * (1 + x / 100)


def _iso(d):
    return d.isoformat() if d else None


def evaluate_rules(crm, ruleset: RuleSet, as_of: dt.date, cat) -> list[dict]:
    return [a for r in ruleset.rules for a in evaluate_rule(crm, r, as_of, cat)]


# --------------------------------------------------------------------------------------------
# Anomaly watches
# --------------------------------------------------------------------------------------------
def watch_history(crm, watch: Watch, as_of: dt.date, cat) -> pl.DataFrame:
    """The whole checked history of a watch up to ``as_of``: ``watch, kpi, <by…>, period, value, expected,
    lower, upper, score, is_anomaly, status, method`` (over time), or the checked period across peers."""
    counts = cat.get(watch.kpi).unit == "count"
    if watch.peers:
        start, end = checked_period(as_of, watch.grain)
        kpis = [watch.kpi, *([watch.weight] if watch.weight else [])]
        frame = crm.kpis(
            kpis,
            by=watch.across,
            grain=watch.grain,
            period=(start, end),
            filters=dict(watch.scope) or None,
            targets=False,
            as_of=as_of,
        )
        wide = frame.filter(pl.col("kpi") == watch.kpi).select(*watch.across, "period", "value")
        if watch.weight:
            w = frame.filter(pl.col("kpi") == watch.weight).select(*watch.across, pl.col("value").alias("_w"))
            wide = wide.join(w, on=list(watch.across), how="left", nulls_equal=True)
        out = peer_outliers(
            wide,
            watch.across,
            k=watch.threshold,
            weight="_w" if watch.weight else None,
            min_weight=watch.min_weight,
        )
        out = out.with_columns(pl.lit(start).alias("period"), pl.lit("peers").alias("method"))
        if watch.weight:
            out = out.with_columns(wide["_w"].alias("weight"))
    else:
        # period None: from the KPI's first data; periods after the as-of day come back empty and are dropped
        _, end = checked_period(as_of, watch.grain)
        frame = crm.kpis(
            [watch.kpi],
            by=watch.by,
            grain=watch.grain,
            filters=dict(watch.scope) or None,
            targets=False,
            as_of=as_of,
        ).filter(pl.col("period") <= end)
        out = detect(
            frame,
            method=watch.method,
            grain=watch.grain,
            by=watch.by,
            window=watch.window,
            k=watch.threshold,
            counts=counts,
        )
        if watch.min_sigma:
            out = _with_min_sigma(out, frame, watch)
    return out.with_columns(pl.lit(watch.name).alias("watch"), pl.lit(watch.kpi).alias("kpi"))


def _with_min_sigma(out: pl.DataFrame, frame: pl.DataFrame, watch: Watch) -> pl.DataFrame:
    """Re-score with the spread never below ``min_sigma`` (in the KPI's unit): a band at least
    ``±k·min_sigma`` wide around the expected value."""
    k, s = watch.threshold, watch.min_sigma
    width = (pl.col("upper") - pl.col("lower")) / (2 * k)
    sigma = pl.max_horizontal(width, pl.lit(s))
    score = (pl.col("value") - pl.col("expected")) / sigma
    return (
        out.with_columns(
            pl.when(pl.col("expected").is_not_null()).then(score).otherwise(None).alias("score"),
            (pl.col("expected") - k * sigma).alias("lower"),
            (pl.col("expected") + k * sigma).alias("upper"),
        )
        .with_columns(
            (pl.col("score").abs() > k).fill_null(False).alias("is_anomaly"),
        )
        .with_columns(
            pl.when(pl.col("status").is_in(["ok", "anomaly"]))
            .then(pl.when(pl.col("is_anomaly")).then(pl.lit("anomaly")).otherwise(pl.lit("ok")))
            .otherwise(pl.col("status"))
            .alias("status")
        )
    )


def evaluate_watch(crm, watch: Watch, as_of: dt.date, cat, history: pl.DataFrame | None = None) -> list[dict]:
    """Alerts of one watch: anomalies in its last ``lookback`` checked periods (peers: the checked period)."""
    hist = history if history is not None else watch_history(crm, watch, as_of, cat)
    start, _ = checked_period(as_of, watch.grain)
    first = shift(start, watch.grain, -(watch.lookback - 1))
    hits = hist.filter(pl.col("is_anomaly") & (pl.col("period") >= first) & (pl.col("period") <= start))
    direction = cat.get(watch.kpi).direction
    alerts = []
    dims = watch.across or watch.by
    for row in hits.iter_rows(named=True):
        worse = (
            (row["value"] < row["expected"]) if direction == "higher" else (row["value"] > row["expected"])
        )
        scope = {
            **{k: (v[0] if len(v) == 1 else list(v)) for k, v in watch.scope.items()},
            **{d: row[d] for d in dims},
        }
        evidence = {
            "method": row["method"],
            "direction": "worse" if worse else "better",
            "threshold_score": watch.threshold,
            "grain": watch.grain,
        }
        if "weight" in row and row["weight"] is not None:
            evidence["weight"] = {"kpi": watch.weight, "value": row["weight"]}
        alerts.append(
            make_alert(
                cat,
                kind="anomaly",
                name=watch.name,
                severity=watch.severity if worse else "info",
                kpi=watch.kpi,
                scope=scope,
                period=row["period"],
                value=row["value"],
                owner=watch.owner,
                template=watch.message,
                expected=row["expected"],
                lower=row["lower"],
                upper=row["upper"],
                score=row["score"],
                threshold=row["lower"] if worse and direction == "higher" else row["upper"],
                default="peer" if watch.peers else "anomaly",
                evidence=evidence,
            )
        )
    return alerts


def sort_alerts(alerts: Sequence[dict]) -> list[dict]:
    return sorted(
        alerts,
        key=lambda a: (
            SEVERITY_RANK.get(a["severity"], 9),
            {"rule": 0, "anomaly": 1}.get(a["kind"], 2),
            -abs(a.get("score") or 0),
            a["key"],
        ),
    )
