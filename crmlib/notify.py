"""Delivering alerts: a webhook (HTTP POST of JSON, :mod:`urllib`) and e-mail (SMTP, :mod:`smtplib`).

Configured in the ``notify:`` section of the alert rules file (:mod:`crmlib.alerts.rules`); secrets come
from the environment variables that section names (``url_env``, ``token_env``, ``user_env``,
``password_env``), never from the file, and never reach the state, the outputs or the logs.

Delivery is **at least once**. Each notification is first put in the outbox of ``outputs/alerts.json``
(:func:`queue`) and the state is written; then :func:`deliver` tries every outbox item, up to
``1 + retries`` times with exponential back-off (``backoff_seconds``, doubled each time). A delivered item
leaves the outbox (an event ``delivered`` records it); a failed one stays there with its attempts and
last error (an event ``delivery_failed``) and is tried again at the next check, so nothing is lost. A
missing environment variable is a failed delivery too, with a message naming the variable.

A webhook receives ``{"source": "crmlib", "created": ..., "alerts": [{key, kind, name, severity, kpi,
scope, period, value, threshold, expected, since, owner, message_en, message_zh}, ...]}``; any 2xx answer
is success.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import smtplib
import ssl
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Mapping
from email.message import EmailMessage

from .alerts.rules import SEVERITIES, Email, Notify, Webhook

PAYLOAD_FIELDS = (
    "key",
    "kind",
    "name",
    "severity",
    "kpi",
    "scope",
    "period",
    "value",
    "threshold",
    "expected",
    "since",
    "owner",
    "message_en",
    "message_zh",
)
SEVERITY_LABEL = {
    "en": {"critical": "critical", "warning": "warning", "info": "info"},
    "zh": {"critical": "严重", "warning": "警告", "info": "提示"},
}


class DeliveryError(Exception):
    """One delivery attempt failed (the message is safe to log: no secrets)."""


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def at_least(severity: str, minimum: str) -> bool:
    return SEVERITIES.index(severity) >= SEVERITIES.index(minimum)


def queue(notify: Notify, alerts: list[dict], created: str | None = None) -> list[dict]:
    """Outbox items (one per configured channel) for the alerts at or above ``min_severity``."""
    chosen = [
        {k: a.get(k) for k in PAYLOAD_FIELDS} for a in alerts if at_least(a["severity"], notify.min_severity)
    ]
    if not chosen:
        return []
    created = created or _now()
    channels = [c for c, cfg in (("webhook", notify.webhook), ("email", notify.email)) if cfg is not None]
    return [
        {
            "id": uuid.uuid4().hex,
            "channel": c,
            "created": created,
            "attempts": 0,
            "last_error": None,
            "last_attempt": None,
            "alerts": chosen,
        }
        for c in channels
    ]


def _env(env: Mapping[str, str], name: str | None, what: str) -> str | None:
    if name is None:
        return None
    value = env.get(name)
    if not value:
        raise DeliveryError(
            f"{what}: environment variable {name} is not set (the rules file names it); set it "
            "in the environment of `crmlib alerts check`."
        )
    return value


def send_webhook(cfg: Webhook, alerts: list[dict], env: Mapping[str, str] | None = None) -> None:
    """POST the alerts as JSON; raise :class:`DeliveryError` unless the answer is 2xx."""
    env = os.environ if env is None else env
    url = cfg.url or _env(env, cfg.url_env, "webhook")
    token = _env(env, cfg.token_env, "webhook")
    body = json.dumps({"source": "crmlib", "created": _now(), "alerts": alerts}, ensure_ascii=False).encode()
    req = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json; charset=utf-8", "User-Agent": "crmlib-alerts"},
    )
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=cfg.timeout) as resp:  # noqa: S310 - URL from the user's config
            status = resp.status
    except urllib.error.HTTPError as exc:
        raise DeliveryError(f"webhook answered HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DeliveryError(f"webhook not reachable: {_safe(str(reason), url, token)}") from None
    if not 200 <= status < 300:
        raise DeliveryError(f"webhook answered HTTP {status}")


def _safe(text: str, *secrets: str | None) -> str:
    for s in secrets:
        if s:
            text = text.replace(s, "***")
    return text


def email_message(cfg: Email, alerts: list[dict], lang: str = "en") -> EmailMessage:
    """The e-mail for a batch of alerts: a subject with counts by severity, one line per alert."""
    counts = {s: sum(a["severity"] == s for a in alerts) for s in reversed(SEVERITIES)}
    parts = [f"{n} {SEVERITY_LABEL[lang][s]}" for s, n in counts.items() if n]
    subject = (
        f"[crmlib] {', '.join(parts)} alert{'s' if len(alerts) != 1 else ''}"
        if lang == "en"
        else f"[crmlib] 预警：{'，'.join(parts)}"
    )
    lines = [
        f"- [{SEVERITY_LABEL[lang][a['severity']]}] {a.get(f'message_{lang}') or a.get('message_en')}"
        + (f" ({'owner' if lang == 'en' else '负责人'}: {a['owner']})" if a.get("owner") else "")
        for a in alerts
    ]
    msg = EmailMessage()
    msg["Subject"], msg["From"], msg["To"] = subject, cfg.sender, ", ".join(cfg.to)
    msg.set_content("\n".join(lines) + "\n\n-- crmlib alerts check\n")
    return msg


def send_email(
    cfg: Email, alerts: list[dict], lang: str = "en", env: Mapping[str, str] | None = None
) -> None:
    """Send one e-mail with the alerts; raise :class:`DeliveryError` on any SMTP or network failure."""
    env = os.environ if env is None else env
    user = _env(env, cfg.user_env, "email")
    password = _env(env, cfg.password_env, "email")
    msg = email_message(cfg, alerts, lang)
    try:
        if cfg.security == "ssl":
            smtp = smtplib.SMTP_SSL(
                cfg.host, cfg.port, timeout=cfg.timeout, context=ssl.create_default_context()
            )
        else:
            smtp = smtplib.SMTP(cfg.host, cfg.port, timeout=cfg.timeout)
        with smtp:
            if cfg.security == "starttls":
                smtp.starttls(context=ssl.create_default_context())
            if user:
                smtp.login(user, password or "")
            smtp.send_message(msg)
    except (smtplib.SMTPException, OSError) as exc:
        raise DeliveryError(f"e-mail via {cfg.host}:{cfg.port} failed: {_safe(str(exc), password)}") from None


def deliver(
    notify: Notify,
    state: dict,
    sleep: Callable[[float], None] = time.sleep,
    env: Mapping[str, str] | None = None,
) -> dict[str, list[dict]]:
    """Try every outbox item of ``state`` (see the module docstring); update the outbox and events in place.

    Returns ``{"delivered": [...], "failed": [...]}`` (outbox items).
    """
    result: dict[str, list[dict]] = {"delivered": [], "failed": []}
    keep = []
    for item in state.get("outbox", []):
        cfg = notify.webhook if item["channel"] == "webhook" else notify.email
        if cfg is None:  # the channel was removed from the rules file: keep the item for when it comes back
            item["last_error"] = f"no {item['channel']} section in the rules file any more"
            keep.append(item)
            result["failed"].append(item)
            continue
        ok = False
        for attempt in range(notify.retries + 1):
            if attempt:
                sleep(notify.backoff_seconds * 2 ** (attempt - 1))
            item["attempts"] += 1
            item["last_attempt"] = _now()
            try:
                if item["channel"] == "webhook":
                    send_webhook(cfg, item["alerts"], env)
                else:
                    send_email(cfg, item["alerts"], notify.lang, env)
                ok = True
                break
            except DeliveryError as exc:
                item["last_error"] = str(exc)
        event = {
            "at": _now(),
            "event": "delivered" if ok else "delivery_failed",
            "channel": item["channel"],
            "id": item["id"],
            "attempts": item["attempts"],
            "alerts": len(item["alerts"]),
        }
        if not ok:
            event["error"] = item["last_error"]
            keep.append(item)
        state.setdefault("events", []).append(event)
        result["delivered" if ok else "failed"].append(item)
    state["outbox"] = keep
    return result
