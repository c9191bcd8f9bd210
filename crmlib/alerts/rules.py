"""The alert rules file (``parameters/alerts.yaml``): thresholds, anomaly watches, signals, notifications.

Loaded into frozen records and validated at load: every problem of the file at once, each with its line,
the rule, the key, the bad value and what to write instead ("did you mean" for unknown keys, KPI names,
dimensions and values). The file format is documented in ``docs/alerts.md``; in short::

    rules:                      # thresholds, standing or temporary (from/until)
      - name: sla_team_priority
        kpi: sla_compliance     # a KPI of the catalog (crmlib kpis list)
        by: [team, priority]    # one alert per group; optional
        scope: {region: South}  # filters (dimension: value or list); optional
        grain: quarter          # the last complete period of this grain is checked (default month)
        condition: {below: 0.5} # below | above | below_target_pct | change_pct
        severity: critical      # info | warning | critical
        owner: service-lead@example.com
        message: {en: "...", zh: "..."}   # optional; placeholders {label} {scope} {value} {threshold} ...
        from: 2025-11-01        # optional validity window (temporary rule), inclusive
        until: 2025-11-30
    anomalies:                  # KPI series watched for anomalies (crmlib.models.anomaly)
      - {name: new_leads_by_region, kpi: new_leads, by: [region], method: seasonal, severity: warning}
      - {name: sla_cells, kpi: sla_compliance, across: [team, priority], grain: quarter,
         weight: new_cases, min_weight: 30, severity: critical}   # peers: a cell far from the others
    signals: {rising_activity: {...}, cross_sell: {...}, campaign_conversion: {...}}
    notify: {min_severity: warning, webhook: {url_env: ...}, email: {...}}

Secrets never live in the file: the webhook URL and token, the SMTP user and password are read from the
environment variables the file names (``url_env``, ``token_env``, ``user_env``, ``password_env``).
"""

from __future__ import annotations

import datetime as dt
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .. import config
from ..errors import ConfigError, suggest
from ..kpis._yaml import LineDict, load_yaml, yaml_error_line
from ..models.anomaly import DEFAULT_K, METHODS, SEASON

SEVERITIES = ("info", "warning", "critical")
CONDITIONS = ("below", "above", "below_target_pct", "change_pct")
COMPARES = ("previous_period", "previous_year")
GRAINS = ("day", "week", "month", "quarter", "year")
TOP_KEYS = ("description", "rules", "anomalies", "signals", "notify")
RULE_KEYS = (
    "name",
    "kpi",
    "by",
    "scope",
    "grain",
    "condition",
    "compare",
    "severity",
    "owner",
    "message",
    "from",
    "until",
    "description",
)
ANOMALY_KEYS = (
    "name",
    "kpi",
    "by",
    "across",
    "scope",
    "grain",
    "method",
    "threshold",
    "window",
    "min_sigma",
    "lookback",
    "weight",
    "min_weight",
    "severity",
    "owner",
    "message",
    "description",
)
PLACEHOLDERS = (
    "label",
    "kpi",
    "scope",
    "value",
    "threshold",
    "period",
    "target",
    "change",
    "expected",
    "score",
    "owner",
)
SIGNAL_DEFAULTS: Mapping[str, Mapping[str, float]] = {
    # activities (or orders) per account: the last window_days against the mean of the 4 windows before
    "rising_activity": {"window_days": 90, "ratio": 2.0, "min_recent": 10, "limit": 20},
    "rising_orders": {"window_days": 90, "ratio": 2.0, "min_recent": 3, "limit": 20},
    # the top top_share of customers by order revenue of the last 365 days holding <= max_products products
    "cross_sell": {"top_share": 0.2, "max_products": 1, "limit": 20},
    # campaigns whose lead-to-opportunity conversion is above their peers' by z standard errors
    "campaign_conversion": {
        "lookback_days": 365,
        "maturity_days": 90,
        "min_leads": 30,
        "z": 3.0,
        "min_lift": 1.5,
        "limit": 20,
    },
}
SIGNAL_KEYS = (*SIGNAL_DEFAULTS, "severity", "enabled")
NOTIFY_KEYS = ("min_severity", "lang", "retries", "backoff_seconds", "webhook", "email")
WEBHOOK_KEYS = ("url_env", "url", "token_env", "timeout")
EMAIL_KEYS = ("host", "port", "security", "user_env", "password_env", "sender", "to", "timeout")
SECURITY = ("starttls", "ssl", "none")
_SECRET_KEY = re.compile(r"pass(word|wd)?$|secret|token$|api_?key|credential", re.IGNORECASE)
_ENV = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


class AlertRulesError(ConfigError):
    """The alert rules file has problems; every one is listed."""

    def __init__(self, file: str, problems: list[str]):
        self.problems = list(problems)
        n = len(problems)
        super().__init__(
            f"alert rules {file}: {n} problem{'s' if n != 1 else ''} found\n"
            + "\n".join("  - " + p for p in problems)
        )


@dataclass(frozen=True)
class Rule:
    """A threshold on a KPI, per group of ``by`` within ``scope``, checked on the last complete period."""

    name: str
    kpi: str
    condition: str
    threshold: float
    severity: str
    by: tuple[str, ...] = ()
    scope: Mapping[str, tuple] = field(default_factory=dict)
    grain: str = "month"
    compare: str = "previous_period"
    owner: str = ""
    message: Mapping[str, str] = field(default_factory=dict)
    valid_from: dt.date | None = None
    valid_until: dt.date | None = None

    def active(self, day: dt.date) -> bool:
        """True when ``day`` is inside the validity window (always, for a standing rule)."""
        return (self.valid_from is None or day >= self.valid_from) and (
            self.valid_until is None or day <= self.valid_until
        )


@dataclass(frozen=True)
class Watch:
    """A KPI watched for anomalies: over time per group (``by``), or across groups (``across``, peers)."""

    name: str
    kpi: str
    severity: str
    by: tuple[str, ...] = ()
    across: tuple[str, ...] = ()
    scope: Mapping[str, tuple] = field(default_factory=dict)
    grain: str = "month"
    method: str = "seasonal"
    threshold: float = DEFAULT_K
    window: int | None = None  # default: 12 (robust), 24 (seasonal)
    min_sigma: float | None = None
    lookback: int = 1
    weight: str | None = None
    min_weight: float = 0.0
    owner: str = ""
    message: Mapping[str, str] = field(default_factory=dict)

    @property
    def peers(self) -> bool:
        return bool(self.across)


@dataclass(frozen=True)
class Webhook:
    url_env: str | None = None
    url: str | None = None
    token_env: str | None = None
    timeout: float = 10.0


@dataclass(frozen=True)
class Email:
    host: str
    sender: str
    to: tuple[str, ...]
    port: int = 25
    security: str = "none"
    user_env: str | None = None
    password_env: str | None = None
    timeout: float = 10.0


@dataclass(frozen=True)
class Notify:
    min_severity: str = "warning"
    lang: str = "en"
    retries: int = 2
    backoff_seconds: float = 1.0
    webhook: Webhook | None = None
    email: Email | None = None


@dataclass(frozen=True)
class RuleSet:
    """Everything in one rules file."""

    rules: tuple[Rule, ...] = ()
    watches: tuple[Watch, ...] = ()
    signals: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    signal_severity: str = "info"
    notify: Notify | None = None
    file: str = "<memory>"


def default_rules_path() -> Path:
    return config.home() / "parameters" / "alerts.yaml"


def load_rules(path: str | Path | RuleSet | None = None, catalog=None) -> RuleSet:
    """Read and validate a rules file (default ``parameters/alerts.yaml``); all problems in one error."""
    if isinstance(path, RuleSet):
        return path
    p = Path(path).expanduser() if path else default_rules_path()
    if not p.is_file():
        raise ConfigError(
            f"Alert rules file {p} does not exist. Give the path of a rules YAML file "
            "(see parameters/alerts.yaml and docs/alerts.md)."
        )
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"Alert rules file {p} cannot be read: {exc}") from None
    return parse_rules(text, str(p), catalog)


def parse_rules(text: str, file: str = "<memory>", catalog=None) -> RuleSet:
    """Validate the YAML text of a rules file (see :func:`load_rules`)."""
    try:
        data, dups = load_yaml(text)
    except yaml.YAMLError as exc:
        line = yaml_error_line(exc)
        raise AlertRulesError(
            file,
            [
                f"line {line}: not valid YAML: {getattr(exc, 'problem', None) or exc}"
                if line
                else f"not valid YAML: {exc}"
            ],
        ) from None
    if catalog is None:
        from ..kpis.catalog import default_catalog

        catalog = default_catalog()
    return _Parser(file, catalog).run(data, dups)


class _Parser:
    def __init__(self, file: str, catalog):
        self.file = file
        self.cat = catalog
        self.problems: list[str] = []

    # -- helpers ------------------------------------------------------------------------------
    def bad(self, node, key: str | None, message: str, what: str = "") -> None:
        line = (
            node.line_of(key)
            if isinstance(node, LineDict) and key is not None
            else getattr(node, "line", None)
        )
        where = f"line {line}" if line else "file"
        bits = [b for b in (what, f"key {key}" if key else "") if b]
        self.problems.append(f"{where}{' (' + ', '.join(bits) + ')' if bits else ''}: {message}")

    def keys(self, node, allowed, what: str, secrets: bool = False) -> None:
        for k in node:
            if secrets and _SECRET_KEY.search(str(k)) and not str(k).endswith("_env"):
                continue  # reported by no_secrets()
            if k not in allowed:
                self.bad(
                    node,
                    k,
                    f"unknown key {k!r}.{suggest(str(k), allowed)} Allowed: {', '.join(allowed)}.",
                    what,
                )

    def enum(self, node, key, allowed, default, what):
        v = node.get(key, default)
        if v not in allowed:
            self.bad(node, key, f"{v!r} is not one of {', '.join(allowed)}.{suggest(str(v), allowed)}", what)
            return default
        return v

    def number(self, node, key, default, what, positive=False, integer=False):
        v = node.get(key, default)
        if v is None:
            return None
        ok = isinstance(v, int | float) and not isinstance(v, bool) and (not integer or isinstance(v, int))
        if not ok or (positive and v <= 0):
            kind = "an integer" if integer else "a number"
            self.bad(node, key, f"{v!r} must be {kind}{' above 0' if positive else ''}.", what)
            return default
        return v

    def kpi(self, node, what):
        name = node.get("kpi")
        if not isinstance(name, str) or name not in self.cat.kpis:
            self.bad(
                node,
                "kpi",
                f"unknown KPI {name!r}.{suggest(str(name), self.cat.kpis)} `crmlib kpis list` "
                "shows the catalog.",
                what,
            )
            return None
        return self.cat.get(name)

    def dims(self, node, key, kpi, what) -> tuple[str, ...]:
        v = node.get(key) or ()
        items = (v,) if isinstance(v, str) else v
        if not isinstance(items, list | tuple) or not all(isinstance(x, str) for x in items):
            self.bad(node, key, f"{v!r} must be a dimension name or a list of them.", what)
            return ()
        for d in items:
            if d not in self.cat.dimensions:
                self.bad(
                    node,
                    key,
                    f"unknown dimension {d!r}.{suggest(d, self.cat.dimensions)} Dimensions: "
                    f"{', '.join(self.cat.dimensions)}.",
                    what,
                )
            elif kpi is not None and d not in kpi.dimensions:
                self.bad(
                    node,
                    key,
                    f"KPI {kpi.name} cannot be grouped by {d!r}. Allowed: "
                    f"{', '.join(kpi.dimensions) or 'none'}.",
                    what,
                )
        return tuple(items)

    def scope(self, node, kpi, what) -> dict[str, tuple]:
        v = node.get("scope") or {}
        if not isinstance(v, dict):
            self.bad(node, "scope", f"must be a mapping {{dimension: value or list}}, not {v!r}.", what)
            return {}
        out = {}
        for d, val in v.items():
            if d not in self.cat.dimensions:
                self.bad(
                    v, d, f"unknown dimension {d!r} in scope.{suggest(str(d), self.cat.dimensions)}", what
                )
                continue
            if kpi is not None and d not in kpi.dimensions:
                self.bad(
                    v,
                    d,
                    f"KPI {kpi.name} cannot be filtered by {d!r}. Allowed: "
                    f"{', '.join(kpi.dimensions) or 'none'}.",
                    what,
                )
                continue
            values = tuple(val) if isinstance(val, list) else (val,)
            allowed = self.cat.dimension(d).values
            for x in values:
                if not isinstance(x, str):
                    self.bad(v, d, f"scope value {x!r} must be text.", what)
                elif allowed and x not in allowed:
                    self.bad(
                        v, d, f"{x!r} is not a {d}.{suggest(x, allowed)} Values: {', '.join(allowed)}.", what
                    )
            out[d] = values
        return out

    def message(self, node, what) -> dict[str, str]:
        v = node.get("message")
        if v is None:
            return {}
        texts = {"en": v, "zh": v} if isinstance(v, str) else v
        if not isinstance(texts, dict) or not all(isinstance(texts.get(x), str) for x in ("en", "zh")):
            self.bad(node, "message", "write a text, or {en: ..., zh: ...} with both languages.", what)
            return {}
        for lang, text in texts.items():
            if lang not in ("en", "zh"):
                self.bad(node, "message", f"unknown language {lang!r}; use en and zh.", what)
                continue
            try:
                names = [f for _, f, _, _ in string.Formatter().parse(text) if f is not None]
            except ValueError as exc:
                self.bad(
                    node,
                    "message",
                    f"{lang} text {text!r} is not a valid template ({exc}); write {{{{ for a literal brace.",
                    what,
                )
                continue
            for f in names:
                base = f.split(":")[0].split("!")[0]
                if base not in PLACEHOLDERS:
                    self.bad(
                        node,
                        "message",
                        f"unknown placeholder {{{f}}}.{suggest(base, PLACEHOLDERS)} "
                        f"Placeholders: {', '.join(PLACEHOLDERS)}.",
                        what,
                    )
        return {k: texts[k] for k in ("en", "zh")}

    def date(self, node, key, what) -> dt.date | None:
        v = node.get(key)
        if v is None:
            return None
        if isinstance(v, dt.datetime):
            return v.date()
        if isinstance(v, dt.date):
            return v
        try:
            return dt.date.fromisoformat(str(v))
        except ValueError:
            self.bad(node, key, f"{v!r} is not a date; write YYYY-MM-DD.", what)
            return None

    def env(self, node, key, what, required=False) -> str | None:
        v = node.get(key)
        if v is None:
            if required:
                self.bad(node, key, "is required: the name of an environment variable.", what)
            return None
        if not isinstance(v, str) or not _ENV.match(v):
            self.bad(
                node,
                key,
                f"{v!r} must be the NAME of an environment variable (e.g. CRMLIB_SMTP_PASSWORD), "
                "never the secret itself.",
                what,
            )
            return None
        return v

    def no_secrets(self, node, what) -> None:
        for k in node:
            if _SECRET_KEY.search(str(k)) and not str(k).endswith("_env"):
                self.bad(
                    node,
                    k,
                    f"a secret must not be written in the rules file. Put it in an environment "
                    f"variable and name that variable in {k}_env (e.g. {k}_env: CRMLIB_ALERTS_"
                    f"{str(k).upper()}).",
                    what,
                )

    # -- sections -----------------------------------------------------------------------------
    def run(self, data, dups) -> RuleSet:
        for d in dups:
            self.problems.append(
                f"line {d.line}: key {d.key!r} appears twice in one mapping (first at line "
                f"{d.first_line}); keep one."
            )
        if data is None:
            data = LineDict()
        if not isinstance(data, dict):
            raise AlertRulesError(self.file, ["the file must be a mapping with keys " + ", ".join(TOP_KEYS)])
        self.keys(data, TOP_KEYS, "")
        rules = self.section(data, "rules", self.rule)
        watches = self.section(data, "anomalies", self.watch)
        names = [r.name for r in rules] + [w.name for w in watches]
        for n in sorted({n for n in names if names.count(n) > 1}):
            self.problems.append(
                f"name {n!r} is used by more than one rule or anomaly watch; names are unique."
            )
        signals, sig_sev = self.signals(data.get("signals"))
        notify = self.notify(data.get("notify")) if data.get("notify") is not None else None
        if self.problems:
            raise AlertRulesError(self.file, self.problems)
        return RuleSet(tuple(rules), tuple(watches), signals, sig_sev, notify, self.file)

    def section(self, data, key, parse):
        items = data.get(key) or []
        if not isinstance(items, list):
            self.bad(data, key, f"must be a list of mappings (- name: ...), not {type(items).__name__}.")
            return []
        out = []
        for i, node in enumerate(items):
            if not isinstance(node, dict):
                self.bad(data, key, f"item {i + 1} must be a mapping, not {node!r}.")
                continue
            got = parse(node, i)
            if got is not None:
                out.append(got)
        return out

    def name(self, node, i, kind):
        name = node.get("name")
        if not isinstance(name, str) or not _NAME.match(name):
            self.bad(
                node,
                "name",
                f"{kind} {i + 1} needs a name of letters, digits, '_', '-' or '.' (got {name!r}).",
            )
            return f"{kind}{i + 1}"
        return name

    def rule(self, node, i) -> Rule | None:
        name = self.name(node, i, "rule")
        what = f"rule {name}"
        before = len(self.problems)
        self.keys(node, RULE_KEYS, what)
        for req in ("kpi", "condition", "severity"):
            if req not in node:
                self.bad(node, None, f"key {req!r} is required.", what)
        kpi = self.kpi(node, what) if "kpi" in node else None
        by = self.dims(node, "by", kpi, what)
        scope = self.scope(node, kpi, what)
        grain = self.enum(node, "grain", GRAINS, "month", what)
        severity = (
            self.enum(node, "severity", SEVERITIES, "warning", what) if "severity" in node else "warning"
        )
        compare = self.enum(node, "compare", COMPARES, "previous_period", what)
        cond, threshold = None, 0.0
        c = node.get("condition")
        if c is not None:
            if not isinstance(c, dict) or len(c) != 1:
                self.bad(
                    node,
                    "condition",
                    f"write exactly one of {', '.join(CONDITIONS)} with a number, e.g. "
                    "{below: 0.8} or {change_pct: -30}.",
                    what,
                )
            else:
                ((cond, threshold),) = c.items()
                if cond not in CONDITIONS:
                    self.bad(
                        c,
                        cond,
                        f"unknown condition {cond!r}.{suggest(str(cond), CONDITIONS)} Use one of: "
                        f"{', '.join(CONDITIONS)}.",
                        what,
                    )
                elif not isinstance(threshold, int | float) or isinstance(threshold, bool):
                    self.bad(c, cond, f"{threshold!r} must be a number.", what)
                elif cond == "below_target_pct" and threshold <= 0:
                    self.bad(
                        c,
                        cond,
                        f"{threshold!r} must be a percentage above 0 (80 = below 80 % of target).",
                        what,
                    )
                elif cond == "change_pct" and threshold == 0:
                    self.bad(
                        c,
                        cond,
                        "0 would fire on any change: give a negative percentage for a drop "
                        "(-30 = fell by 30 % or more) or a positive one for a rise.",
                        what,
                    )
        if "compare" in node and cond not in (None, "change_pct"):
            self.bad(node, "compare", "only a change_pct condition compares periods; remove compare.", what)
        owner = node.get("owner", "")
        if not isinstance(owner, str):
            self.bad(node, "owner", f"{owner!r} must be text (a name or an e-mail address).", what)
            owner = ""
        message = self.message(node, what)
        v_from, v_until = self.date(node, "from", what), self.date(node, "until", what)
        if v_from and v_until and v_from > v_until:
            self.bad(
                node, "until", f"until {v_until} is before from {v_from}; the window would be empty.", what
            )
        if len(self.problems) > before or kpi is None or cond is None:
            return None
        return Rule(
            name,
            kpi.name,
            cond,
            float(threshold),
            severity,
            by,
            scope,
            grain,
            compare,
            owner,
            message,
            v_from,
            v_until,
        )

    def watch(self, node, i) -> Watch | None:
        name = self.name(node, i, "anomaly")
        what = f"anomaly watch {name}"
        before = len(self.problems)
        self.keys(node, ANOMALY_KEYS, what)
        for req in ("kpi", "severity"):
            if req not in node:
                self.bad(node, None, f"key {req!r} is required.", what)
        kpi = self.kpi(node, what) if "kpi" in node else None
        by = self.dims(node, "by", kpi, what)
        across = self.dims(node, "across", kpi, what)
        if by and across:
            self.bad(
                node,
                "across",
                "give by (a series per group, judged over time) or across (groups judged "
                "against each other), not both.",
                what,
            )
        scope = self.scope(node, kpi, what)
        grain = self.enum(node, "grain", GRAINS, "month", what)
        method = self.enum(node, "method", METHODS, "seasonal", what)
        if method == "seasonal" and grain not in SEASON and "method" in node:
            self.bad(node, "method", f"grain {grain} has no season; use method: robust.", what)
        severity = (
            self.enum(node, "severity", SEVERITIES, "warning", what) if "severity" in node else "warning"
        )
        k = self.number(node, "threshold", DEFAULT_K, what, positive=True)
        window = self.number(node, "window", None, what, positive=True, integer=True)
        if isinstance(window, int) and window < 6:
            self.bad(
                node, "window", f"{window} is too short: at least 6 earlier points make a baseline.", what
            )
        min_sigma = self.number(node, "min_sigma", None, what, positive=True)
        lookback = self.number(node, "lookback", 1, what, positive=True, integer=True)
        weight = node.get("weight")
        if weight is not None:
            wk = self.cat.kpis.get(weight) if isinstance(weight, str) else None
            if wk is None:
                self.bad(
                    node, "weight", f"unknown KPI {weight!r}.{suggest(str(weight), self.cat.kpis)}", what
                )
            elif not across:
                self.bad(node, "weight", "weight only applies to a peer watch (across).", what)
            else:
                for d in across:
                    if d not in wk.dimensions:
                        self.bad(node, "weight", f"KPI {weight} cannot be grouped by {d}.", what)
        min_weight = self.number(node, "min_weight", 0, what)
        if kpi is not None and not across and kpi.unit not in ("count", "currency") and min_sigma is None:
            self.bad(
                node,
                "min_sigma",
                f"KPI {kpi.name} is a {kpi.unit}, whose noise depends on a volume the series does not show "
                "(a rate of 5 cases swings far more than one of 500): over time, give min_sigma (the smallest "
                "spread worth an alert, in the KPI's unit, e.g. 0.05 for a rate), or watch it across peers "
                "with a weight, or use a rule with a threshold.",
                what,
            )
        owner = node.get("owner", "")
        message = self.message(node, what)
        if len(self.problems) > before or kpi is None:
            return None
        return Watch(
            name,
            kpi.name,
            severity,
            by,
            across,
            scope,
            grain,
            method,
            float(k),
            window,
            min_sigma,
            int(lookback),
            weight,
            float(min_weight or 0),
            str(owner),
            message,
        )

    def signals(self, node) -> tuple[dict, str]:
        if node is None:
            return {}, "info"
        if not isinstance(node, dict):
            self.bad(node, None, "signals must be a mapping, e.g. {rising_activity: {}, cross_sell: {}}.")
            return {}, "info"
        self.keys(node, SIGNAL_KEYS, "signals")
        sev = self.enum(node, "severity", SEVERITIES, "info", "signals")
        out = {}
        for kind, defaults in SIGNAL_DEFAULTS.items():
            if kind not in node:
                continue
            settings = node.get(kind) or {}
            if settings is False:
                continue
            if not isinstance(settings, dict):
                self.bad(
                    node, kind, "must be a mapping of settings ({} for the defaults) or false.", "signals"
                )
                continue
            self.keys(settings, tuple(defaults), f"signal {kind}")
            merged = dict(defaults)
            for k in defaults:
                if k in settings:
                    merged[k] = self.number(settings, k, defaults[k], f"signal {kind}", positive=True)
            out[kind] = merged
        return out, sev

    def notify(self, node) -> Notify | None:
        if not isinstance(node, dict):
            self.bad(node, None, "notify must be a mapping with webhook and/or email.")
            return None
        self.keys(node, NOTIFY_KEYS, "notify", secrets=True)
        self.no_secrets(node, "notify")
        min_sev = self.enum(node, "min_severity", SEVERITIES, "warning", "notify")
        lang = self.enum(node, "lang", config.LANGS, "en", "notify")
        retries = self.number(node, "retries", 2, "notify", integer=True)
        if isinstance(retries, int) and retries < 0:
            self.bad(node, "retries", "must be 0 or more.", "notify")
        backoff = self.number(node, "backoff_seconds", 1.0, "notify")
        hook = mail = None
        w = node.get("webhook")
        if w is not None:
            if not isinstance(w, dict):
                self.bad(
                    node,
                    "webhook",
                    "must be a mapping with url_env (or url) and optional token_env.",
                    "notify",
                )
            else:
                self.keys(w, WEBHOOK_KEYS, "webhook", secrets=True)
                self.no_secrets(w, "webhook")
                url_env, token_env = self.env(w, "url_env", "webhook"), self.env(w, "token_env", "webhook")
                url = w.get("url")
                if url is not None:
                    from ..sources import redact

                    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
                        self.bad(w, "url", f"{url!r} is not an http(s) URL.", "webhook")
                    elif redact(url) != url or "?" in url:
                        self.bad(
                            w,
                            "url",
                            "this URL carries credentials or a token; put it in an environment "
                            "variable and name it in url_env.",
                            "webhook",
                        )
                if (url_env is None) == (url is None):
                    self.bad(
                        w,
                        None,
                        "give exactly one of url_env (an environment variable holding the URL) or url.",
                        "webhook",
                    )
                hook = Webhook(
                    url_env, url, token_env, float(self.number(w, "timeout", 10.0, "webhook", True) or 10)
                )
        m = node.get("email")
        if m is not None:
            if not isinstance(m, dict):
                self.bad(node, "email", "must be a mapping with host, port, sender, to.", "notify")
            else:
                self.keys(m, EMAIL_KEYS, "email", secrets=True)
                self.no_secrets(m, "email")
                for req in ("host", "sender", "to"):
                    if req not in m:
                        self.bad(m, None, f"key {req!r} is required.", "email")
                to = m.get("to") or []
                to = [to] if isinstance(to, str) else to
                if not isinstance(to, list) or not all(isinstance(a, str) and "@" in a for a in to):
                    self.bad(
                        m, "to", f"{m.get('to')!r} must be an e-mail address or a list of them.", "email"
                    )
                    to = []
                sender = m.get("sender")
                if sender is not None and (not isinstance(sender, str) or "@" not in sender):
                    self.bad(m, "sender", f"{sender!r} is not an e-mail address.", "email")
                port = self.number(m, "port", 25, "email", positive=True, integer=True)
                security = self.enum(m, "security", SECURITY, "none", "email")
                user_env, pw_env = self.env(m, "user_env", "email"), self.env(m, "password_env", "email")
                if (user_env is None) != (pw_env is None):
                    self.bad(
                        m, None, "give both user_env and password_env (SMTP login), or neither.", "email"
                    )
                mail = Email(
                    str(m.get("host", "")),
                    str(sender or ""),
                    tuple(to),
                    int(port or 25),
                    security,
                    user_env,
                    pw_env,
                    float(self.number(m, "timeout", 10.0, "email", True) or 10),
                )
        if hook is None and mail is None:
            self.bad(node, None, "notify needs a webhook or an email section (or remove notify).", "notify")
        return Notify(min_sev, lang, int(retries or 0), float(backoff or 0), hook, mail)
