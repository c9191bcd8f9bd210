"""``outputs/alerts.json``: the alerts' state and history, written atomically.

The file holds

* ``alerts``: every alert ever raised, by key, with ``status`` (``open`` or ``closed``), ``first_seen``,
  ``last_seen``, ``closed_at``, ``times_raised`` and the latest values and messages;
* ``events``: what happened, oldest first (``raised``, ``escalated``, ``resolved``, ``delivered``,
  ``delivery_failed``), at most :data:`MAX_EVENTS`;
* ``runs``: one line per check (time, as-of day, counts);
* ``outbox``: notifications not yet delivered (retried at the next check, never dropped).

**De-duplication** (:func:`reconcile`): an alert whose key is open already is *unchanged* (its values are
refreshed, it is not raised again); one whose severity changed is *escalated* (raised again); an open
alert absent from the current evaluation is *resolved* (closed); a closed key that fires again is raised
again. The key says what an alert is about (kind, rule, KPI and scope), not its period: a rule that
keeps failing month after month stays one open alert.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from ..errors import ConfigError, CrmlibError

VERSION = 1
MAX_EVENTS = 5000
MAX_RUNS = 1000
STATE_FILE = "alerts.json"


class AlertsBusyError(CrmlibError):
    """Another ``crmlib alerts check`` is updating the same state file."""

    exit_code = 75  # EX_TEMPFAIL: try again later


@contextlib.contextmanager
def locked(folder: Path) -> Iterator[None]:
    """Hold ``<folder>/.alerts.lock`` (an exclusive ``flock``, released by the kernel if the process dies)
    while a check reads, changes and writes the state; a second check at the same time stops at once."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / ".alerts.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise AlertsBusyError(
                f"Another `crmlib alerts check` is updating {folder / STATE_FILE}; nothing was changed. "
                "Try again when it has finished."
            ) from None
        yield
    finally:
        os.close(fd)


def empty_state() -> dict:
    return {"version": VERSION, "updated": None, "alerts": {}, "events": [], "runs": [], "outbox": []}


def read_state(path: Path) -> dict:
    """The state in ``path`` (an empty one when the file does not exist)."""
    path = Path(path)
    if not path.exists():
        return empty_state()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(
            f"The alert state {path} cannot be read ({exc}). It is written by `crmlib alerts check`; "
            "if it was edited by hand, fix it, or move it away to start a new history."
        ) from None
    if (
        not isinstance(data, dict)
        or data.get("version") != VERSION
        or not isinstance(data.get("alerts"), dict)
    ):
        raise ConfigError(
            f"The alert state {path} is not an alerts.json of this crmlib version (version {VERSION}). "
            "Move it away to start a new history."
        )
    for key, default in empty_state().items():
        data.setdefault(key, default)
    return data


def write_state(path: Path, state: dict) -> None:
    """Write ``state`` to ``path`` atomically (a temporary file in the same folder, then a rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state["events"] = state["events"][-MAX_EVENTS:]
    state["runs"] = state["runs"][-MAX_RUNS:]
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(state, f, ensure_ascii=False, indent=1, default=str)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _event(state: dict, at: str, event: str, alert: dict, **extra) -> None:
    state["events"].append(
        {
            "at": at,
            "event": event,
            "key": alert["key"],
            "severity": alert["severity"],
            "period": alert.get("period"),
            "message_en": alert.get("message_en"),
            **extra,
        }
    )


def reconcile(state: dict, current: list[dict], now: str, as_of: str) -> dict[str, list[dict]]:
    """Merge the current evaluation into ``state`` (see the module docstring).

    Returns ``{"raised": [...], "escalated": [...], "unchanged": [...], "resolved": [...]}`` (alert records).
    """
    out: dict[str, list[dict]] = {"raised": [], "escalated": [], "unchanged": [], "resolved": []}
    seen = set()
    for alert in current:
        key = alert["key"]
        if key in seen:
            continue
        seen.add(key)
        old = state["alerts"].get(key)
        entry = {**alert, "last_seen": now, "as_of": as_of}
        if old is None or old.get("status") != "open":
            entry.update(
                status="open",
                first_seen=now,
                closed_at=None,
                times_raised=(old or {}).get("times_raised", 0) + 1,
            )
            out["raised"].append(entry)
            _event(state, now, "raised", alert)
        elif old.get("severity") != alert["severity"]:
            entry.update(
                status="open",
                first_seen=old["first_seen"],
                closed_at=None,
                times_raised=old.get("times_raised", 1) + 1,
                previous_severity=old.get("severity"),
            )
            out["escalated"].append(entry)
            _event(state, now, "escalated", alert, previous_severity=old.get("severity"))
        else:
            entry.update(
                status="open",
                first_seen=old["first_seen"],
                closed_at=None,
                times_raised=old.get("times_raised", 1),
            )
            out["unchanged"].append(entry)
        state["alerts"][key] = entry
    for key, old in state["alerts"].items():
        if old.get("status") == "open" and key not in seen:
            old.update(status="closed", closed_at=now)
            out["resolved"].append(old)
            _event(state, now, "resolved", old)
    return out


def open_alerts(state: dict) -> list[dict]:
    return [a for a in state["alerts"].values() if a.get("status") == "open"]
