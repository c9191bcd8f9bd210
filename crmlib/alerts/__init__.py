"""Alerts and signals: KPI thresholds (standing and temporary), anomalies, opportunity signals, notifications.

::

    crm = crmlib.open()
    crmlib.alerts.current_alerts(crm)                  # rules + anomalies on the last complete periods
    crmlib.alerts.top_alerts(crm, n=5, lang="zh")      # the few that matter most (executive summary)
    crmlib.alerts.anomaly_history(crm)                 # a watch's whole history with expected value and band
    crmlib.alerts.signals(crm)                         # opportunity signals with their evidence
    crmlib.alerts.check(crm)                           # all of it, de-duplicated into outputs/alerts.json,
                                                       # notifications delivered (`crmlib alerts check`)

Modules: :mod:`.rules` (the rules file, validated at load), :mod:`.evaluate` (rules and anomaly watches on
the KPI engine; which period is checked), :mod:`.signals`, :mod:`.state` (``alerts.json``, de-duplication);
delivery is :mod:`crmlib.notify`, the detectors :mod:`crmlib.models.anomaly`. The guide is ``docs/alerts.md``.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from .. import config
from ..errors import ConfigError
from ..i18n import check_lang
from .evaluate import (
    SEVERITY_RANK,
    checked_period,
    data_as_of,
    evaluate_rules,
    evaluate_watch,
    resolve_as_of,
    sort_alerts,
    watch_history,
)
from .rules import AlertRulesError, Rule, RuleSet, Watch, default_rules_path, load_rules, parse_rules
from .state import STATE_FILE, locked, open_alerts, read_state, reconcile, write_state

__all__ = [
    "AlertRulesError",
    "CheckResult",
    "Rule",
    "RuleSet",
    "Watch",
    "alerts_frame",
    "anomaly_history",
    "check",
    "checked_period",
    "current_alerts",
    "data_as_of",
    "default_rules_path",
    "evaluate",
    "load_rules",
    "parse_rules",
    "signals",
    "top_alerts",
]

COLUMNS = {
    "severity": pl.String,
    "kind": pl.String,
    "name": pl.String,
    "kpi": pl.String,
    "scope": pl.String,
    "period": pl.String,
    "message": pl.String,
    "value": pl.Float64,
    "threshold": pl.Float64,
    "expected": pl.Float64,
    "score": pl.Float64,
    "since": pl.String,
    "owner": pl.String,
    "key": pl.String,
}


def _catalog():
    from ..kpis.catalog import default_catalog

    return default_catalog()


def evaluate(crm, rules=None, as_of=None, include_signals: bool = True) -> list[dict]:
    """Every alert of the rules file on the as-of day: rules, anomaly watches and (optionally) signals,
    most severe first (alert records, see :mod:`crmlib.alerts.evaluate`)."""
    cat = _catalog()
    ruleset = load_rules(rules, cat)
    day = resolve_as_of(crm, as_of)
    alerts = evaluate_rules(crm, ruleset, day, cat)
    for w in ruleset.watches:
        alerts += evaluate_watch(crm, w, day, cat)
    if include_signals and ruleset.signals:
        from .signals import compute, signal_alerts

        alerts += signal_alerts(
            compute(crm, day, ruleset.signals), ruleset.signals, ruleset.signal_severity, day
        )
    return sort_alerts(alerts)


def alerts_frame(alerts: list[dict], lang: str = "en") -> pl.DataFrame:
    """Alert records as a frame: ``severity, kind, name, kpi, scope, period, message, value, threshold,
    expected, score, since, owner, key`` (message in ``lang``)."""
    check_lang(lang)
    rows = [{**{k: a.get(k) for k in COLUMNS}, "message": a.get(f"message_{lang}")} for a in alerts]
    return pl.DataFrame(rows, schema=COLUMNS)


def current_alerts(
    crm, as_of=None, rules=None, lang: str = "en", include_signals: bool = False
) -> pl.DataFrame:
    """Alerts of the rules and anomaly watches on the as-of day, most severe first (a frame)."""
    return alerts_frame(evaluate(crm, rules, as_of, include_signals), lang)


def top_alerts(crm, as_of=None, n: int = 5, lang: str = "en", rules=None) -> pl.DataFrame:
    """The ``n`` most important alerts (critical first, then warning; rules before anomalies; larger scores
    first), signals left out, one row per KPI and scope (the most important when a rule and an anomaly
    watch flag the same thing): for the executive summary. Columns as :func:`alerts_frame`."""
    if not isinstance(n, int) or n < 1:
        raise ConfigError(f"n must be a positive integer, not {n!r}.")
    seen, alerts = set(), []
    for a in evaluate(crm, rules, as_of, include_signals=False):
        if (
            a["severity"] != "info" and (a["kpi"], a["scope"]) not in seen
        ):  # a rule and a watch on one thing: once
            seen.add((a["kpi"], a["scope"]))
            alerts.append(a)
    return alerts_frame(alerts[:n], lang)


def anomaly_history(crm, watch: str | None = None, as_of=None, rules=None) -> pl.DataFrame:
    """A watch's checked history (default: the first watch over time in the rules file) up to the as-of
    day: ``watch, kpi, <by…>, period, value, expected, lower, upper, score, is_anomaly, status, method``."""
    cat = _catalog()
    ruleset = load_rules(rules, cat)
    series = [w for w in ruleset.watches if not w.peers]
    if not ruleset.watches:
        raise ConfigError(f"The rules file {ruleset.file} has no anomalies: section to show.")
    if watch in (None, ""):
        chosen = (series or list(ruleset.watches))[0]
    else:
        found = [w for w in ruleset.watches if w.name == watch]
        if not found:
            from ..errors import suggest

            names = [w.name for w in ruleset.watches]
            raise ConfigError(
                f"No anomaly watch {watch!r} in {ruleset.file}.{suggest(str(watch), names)} "
                f"Watches: {', '.join(names)}."
            )
        chosen = found[0]
    return watch_history(crm, chosen, resolve_as_of(crm, as_of), cat)


def signals(crm, as_of=None, rules=None, lang: str = "en") -> pl.DataFrame:
    """The opportunity signals of the rules file's ``signals:`` section, with their evidence in the message."""
    from .signals import compute, signal_alerts

    ruleset = load_rules(rules, _catalog())
    day = resolve_as_of(crm, as_of)
    found = signal_alerts(compute(crm, day, ruleset.signals), ruleset.signals, ruleset.signal_severity, day)
    return alerts_frame(found, lang)


@dataclass
class CheckResult:
    """What :func:`check` did: the current alerts, what changed, deliveries, and where the state is."""

    as_of: dt.date
    alerts: list[dict]
    raised: list[dict]
    escalated: list[dict]
    unchanged: list[dict]
    resolved: list[dict]
    path: Path
    delivered: list[dict] = field(default_factory=list)
    failed: list[dict] = field(default_factory=list)

    @property
    def critical(self) -> bool:
        """True when an alert of the current evaluation is critical (``crmlib alerts check`` exits 2)."""
        return any(a["severity"] == "critical" for a in self.alerts)

    @property
    def exit_code(self) -> int:
        return 2 if self.critical else 0


def check(
    crm,
    rules=None,
    as_of=None,
    outputs=None,
    notify: bool = True,
    sleep: Callable[[float], None] = time.sleep,
    env=None,
) -> CheckResult:
    """Evaluate everything, de-duplicate against ``<outputs>/alerts.json``, queue and deliver notifications
    for raised and escalated alerts, and write the state (atomically; see :mod:`crmlib.alerts.state` and
    :mod:`crmlib.notify`)."""
    from .. import notify as nt

    cat = _catalog()
    ruleset = load_rules(rules, cat)
    day = resolve_as_of(crm, as_of)
    current = evaluate(crm, ruleset, day)
    folder = Path(outputs) if outputs else config.outputs_dir()
    path = folder / STATE_FILE
    with locked(folder):
        return _update(crm, ruleset, day, current, path, notify, sleep, env, nt)


def _update(crm, ruleset, day, current, path, notify, sleep, env, nt) -> CheckResult:
    state = read_state(path)
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    changes = reconcile(state, current, now, day.isoformat())
    news = changes["raised"] + changes["escalated"]
    if ruleset.notify is not None and notify:
        state["outbox"] += nt.queue(ruleset.notify, sort_alerts(news), now)
    by_sev = {s: sum(a["severity"] == s for a in current) for s in SEVERITY_RANK}
    state["runs"].append(
        {
            "at": now,
            "as_of": day.isoformat(),
            "rules_file": str(ruleset.file),
            "source": str(getattr(crm, "source", "")),
            **{k: len(v) for k, v in changes.items()},
            "open": len(open_alerts(state)),
            **by_sev,
        }
    )
    state["updated"] = now
    write_state(path, state)  # queued notifications are safe on disk before any attempt
    result = CheckResult(
        day, current, changes["raised"], changes["escalated"], changes["unchanged"], changes["resolved"], path
    )
    if ruleset.notify is not None and notify and state["outbox"]:
        got = nt.deliver(ruleset.notify, state, sleep=sleep, env=env)
        result.delivered, result.failed = got["delivered"], got["failed"]
        write_state(path, state)
    return result
