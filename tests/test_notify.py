"""Notifications against real servers on loopback started here: an HTTP server (webhook) and aiosmtpd (SMTP),
including a failed delivery that stays in the outbox and succeeds at the next check."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import crmlib
from crmlib import alerts
from crmlib.alerts.rules import Email, Notify, Webhook
from crmlib.notify import DeliveryError, deliver, email_message, queue, send_webhook

RULE = """
rules:
  - {{name: launch, kpi: new_leads, grain: day, condition: {{above: -1}}, severity: critical,
     owner: ops@example.com, from: 2025-03-10, until: 2025-03-20}}
  - {{name: quiet, kpi: new_leads, grain: day, condition: {{above: -1}}, severity: info}}
notify:
  min_severity: warning
  retries: 2
  backoff_seconds: 0.5
{channel}
"""


class Hook:
    """A webhook receiver: answers ``fail`` times with 503, then 200; records every request."""

    def __init__(self, fail: int = 0):
        self.fail = fail
        self.requests: list[dict] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hook.requests.append(
                    {"path": self.path, "headers": dict(self.headers), "body": json.loads(body)}
                )
                code = 503 if hook.fail > 0 else 200
                hook.fail -= 1
                self.send_response(code)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hook():
    h = Hook()
    yield h
    h.close()


@pytest.fixture(scope="module")
def crm(demo_warehouse):
    with crmlib.open(demo_warehouse) as c:
        yield c


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_rules(tmp_path: Path, channel: str) -> Path:
    p = tmp_path / "rules.yaml"
    p.write_text(RULE.format(channel=channel), encoding="utf-8")
    return p


def test_webhook_delivers_json_with_token_from_the_environment(crm, hook, tmp_path):
    rules = write_rules(tmp_path, "  webhook: {url_env: TEST_HOOK_URL, token_env: TEST_HOOK_TOKEN}")
    env = {"TEST_HOOK_URL": hook.url, "TEST_HOOK_TOKEN": "s3cret-token"}
    sleeps: list[float] = []
    r = alerts.check(crm, rules, as_of="2025-03-10", outputs=tmp_path / "out", env=env, sleep=sleeps.append)
    assert len(hook.requests) == 1 and sleeps == []
    req = hook.requests[0]
    assert req["headers"]["Authorization"] == "Bearer s3cret-token"
    assert req["headers"]["Content-Type"].startswith("application/json")
    sent = req["body"]["alerts"]
    assert [a["name"] for a in sent] == ["launch"]  # info is below min_severity
    assert (
        sent[0]["severity"] == "critical" and sent[0]["owner"] == "ops@example.com" and sent[0]["message_zh"]
    )
    assert len(r.delivered) == 1 and r.failed == []
    text = (tmp_path / "out" / "alerts.json").read_text()
    assert "s3cret-token" not in text and hook.url not in text
    state = json.loads(text)
    assert state["outbox"] == [] and [e["event"] for e in state["events"] if "channel" in e] == ["delivered"]
    # an unchanged open alert is not sent again
    alerts.check(crm, rules, as_of="2025-03-11", outputs=tmp_path / "out", env=env)
    assert len(hook.requests) == 1


def test_webhook_failure_is_kept_and_retried_at_the_next_check(crm, tmp_path):
    h = Hook(fail=3)  # 1 + 2 retries fail in the first check
    try:
        rules = write_rules(tmp_path, "  webhook: {url_env: TEST_HOOK_URL}")
        env = {"TEST_HOOK_URL": h.url}
        sleeps: list[float] = []
        r1 = alerts.check(
            crm, rules, as_of="2025-03-10", outputs=tmp_path / "out", env=env, sleep=sleeps.append
        )
        assert len(h.requests) == 3 and sleeps == [0.5, 1.0]  # back-off doubles
        assert r1.delivered == [] and len(r1.failed) == 1
        state = json.loads((tmp_path / "out" / "alerts.json").read_text())
        (item,) = state["outbox"]
        assert item["attempts"] == 3 and "HTTP 503" in item["last_error"]
        assert [e["event"] for e in state["events"] if "channel" in e] == ["delivery_failed"]
        # next check: the alert is unchanged (not raised again) but the queued notification goes out
        r2 = alerts.check(
            crm, rules, as_of="2025-03-11", outputs=tmp_path / "out", env=env, sleep=sleeps.append
        )
        assert r2.raised == [] and len(r2.delivered) == 1
        assert len(h.requests) == 4 and h.requests[-1]["body"]["alerts"][0]["name"] == "launch"
        state = json.loads((tmp_path / "out" / "alerts.json").read_text())
        assert state["outbox"] == []
        assert [e["event"] for e in state["events"] if "channel" in e] == ["delivery_failed", "delivered"]
    finally:
        h.close()


def test_unreachable_webhook_and_missing_variable_are_recorded_not_raised(tmp_path):
    port = free_port()  # nothing listens there
    notify = Notify(retries=0, webhook=Webhook(url_env="HOOK"))
    state = {"outbox": queue(notify, [{"key": "k", "severity": "critical", "message_en": "m"}]), "events": []}
    got = deliver(notify, state, env={"HOOK": f"http://127.0.0.1:{port}/x"})
    assert len(got["failed"]) == 1 and "not reachable" in state["outbox"][0]["last_error"]
    got = deliver(notify, state, env={})
    assert "environment variable HOOK is not set" in state["outbox"][0]["last_error"]
    assert state["outbox"][0]["attempts"] == 2
    with pytest.raises(DeliveryError, match="HTTP 503"):
        h = Hook(fail=1)
        try:
            send_webhook(Webhook(url=h.url), [])
        finally:
            h.close()


class Inbox:
    """aiosmtpd handler that keeps the messages it receives."""

    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
        self.messages.append(
            (
                envelope.mail_from,
                list(envelope.rcpt_tos),
                envelope.content.decode("utf-8"),
                getattr(session, "login_data", None),
            )
        )
        return "250 OK"


def _authenticator(logins: list):
    from aiosmtpd.smtp import AuthResult, LoginPassword

    def auth(server, session, envelope, mechanism, data):
        ok = isinstance(data, LoginPassword) and data.login == b"alerts" and data.password == b"pw-from-env"
        logins.append(ok)
        return AuthResult(success=ok)

    return auth


def test_email_failure_then_delivery_with_login(crm, tmp_path):
    from aiosmtpd.controller import Controller

    port = free_port()
    rules = write_rules(
        tmp_path,
        f"""  email: {{host: 127.0.0.1, port: {port}, sender: crm@example.com,
           to: [ops@example.com, lead@example.com], user_env: TEST_SMTP_USER, password_env: TEST_SMTP_PASSWORD}}
  lang: zh""",
    )
    env = {"TEST_SMTP_USER": "alerts", "TEST_SMTP_PASSWORD": "pw-from-env"}
    # first check: no SMTP server yet
    r1 = alerts.check(crm, rules, as_of="2025-03-10", outputs=tmp_path / "out", env=env, sleep=lambda s: None)
    assert r1.delivered == [] and len(r1.failed) == 1
    state = json.loads((tmp_path / "out" / "alerts.json").read_text())
    assert state["outbox"][0]["attempts"] == 3 and f"127.0.0.1:{port}" in state["outbox"][0]["last_error"]
    inbox, logins = Inbox(), []
    ctl = Controller(
        inbox, hostname="127.0.0.1", port=port, auth_require_tls=False, authenticator=_authenticator(logins)
    )
    ctl.start()
    try:
        r2 = alerts.check(
            crm, rules, as_of="2025-03-11", outputs=tmp_path / "out", env=env, sleep=lambda s: None
        )
    finally:
        ctl.stop()
    assert len(r2.delivered) == 1 and logins == [True]
    ((sender, rcpts, content, _),) = inbox.messages
    assert sender == "crm@example.com" and rcpts == ["ops@example.com", "lead@example.com"]
    import email

    msg = email.message_from_string(content)
    subject = str(email.header.make_header(email.header.decode_header(msg["Subject"])))
    assert subject == "[crmlib] 预警：1 严重"
    body = msg.get_payload(decode=True).decode("utf-8")
    assert "[严重]" in body and "负责人: ops@example.com" in body
    text = (tmp_path / "out" / "alerts.json").read_text()
    assert "pw-from-env" not in text and json.loads(text)["outbox"] == []


def test_email_message_in_english():
    cfg = Email(host="h", sender="a@example.com", to=("b@example.com",))
    msg = email_message(
        cfg,
        [
            {"severity": "critical", "message_en": "SLA low", "owner": ""},
            {"severity": "warning", "message_en": "Leads fell", "owner": "x@example.com"},
        ],
    )
    assert msg["Subject"] == "[crmlib] 1 critical, 1 warning alerts"
    assert msg.get_content().splitlines()[:2] == [
        "- [critical] SLA low",
        "- [warning] Leads fell (owner: x@example.com)",
    ]
