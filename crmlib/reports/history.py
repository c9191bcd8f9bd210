"""What the outputs folder remembers: run records, ``index.html``, ``latest/`` and the schedule state.

* ``outputs/<run-id>/run.json``: one record per run (written by the runner).
* ``outputs/index.html``: every run, newest first, with status, duration and links to each report.
* ``outputs/latest/<name>.{html,pdf,ipynb}``: the newest *successful* version of each report (hard links), a
  stable address for bookmarks and mail scripts; a failed report never replaces it.
* ``outputs/.state.json``: per report, its last successful run, for ``crmlib report run --due``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
from html import escape
from pathlib import Path

STATE_FILE = ".state.json"
LATEST = "latest"


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def list_runs(outputs: Path) -> list[dict]:
    """Every run record under ``outputs``, newest first (unreadable records are skipped)."""
    runs = []
    for run_json in Path(outputs).glob("*/run.json"):
        if run_json.parent.name.startswith("."):
            continue
        try:
            meta = json.loads(run_json.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(meta, dict) and meta.get("run_id"):
            meta["folder"] = run_json.parent.name
            runs.append(meta)
    runs.sort(key=lambda m: (str(m.get("started", "")), m["folder"]), reverse=True)
    return runs


def read_state(outputs: Path) -> dict:
    try:
        state = json.loads((Path(outputs) / STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"reports": {}}
    return state if isinstance(state, dict) and isinstance(state.get("reports"), dict) else {"reports": {}}


def last_success(state: dict, name: str) -> dt.datetime | None:
    value = state.get("reports", {}).get(name, {}).get("last_success")
    try:
        return dt.datetime.fromisoformat(value) if value else None
    except ValueError:
        return None


def update_state(outputs: Path, meta: dict) -> None:
    """Record each report's outcome of the run ``meta`` (its start time counts as the run time)."""
    state = read_state(outputs)
    for r in meta["reports"]:
        entry = state["reports"].setdefault(r["name"], {})
        entry.update(last_run=meta["started"], last_run_id=meta["run_id"], last_status=r["status"])
        if r["status"] == "ok":
            entry.update(last_success=meta["started"], last_success_run_id=meta["run_id"])
    _write_atomic(Path(outputs) / STATE_FILE, json.dumps(state, indent=2, ensure_ascii=False))


def update_latest(outputs: Path, folder: Path, reports: list[dict]) -> None:
    """Point ``outputs/latest/<file>`` at the files of the reports that succeeded in ``folder``."""
    latest = Path(outputs) / LATEST
    latest.mkdir(exist_ok=True)
    for r in reports:
        if r["status"] != "ok":
            continue
        for name in r.get("files", []):
            src, tmp = folder / name, latest / f".{name}.{os.getpid()}.tmp"
            tmp.unlink(missing_ok=True)
            try:
                os.link(src, tmp)
            except OSError:  # a file system without hard links
                shutil.copy2(src, tmp)
            os.replace(tmp, latest / name)


def _duration(seconds) -> str:
    if not isinstance(seconds, int | float):
        return ""
    if seconds < 60:
        return f"{seconds:.1f} s"
    return f"{int(seconds // 60)} min {seconds % 60:02.0f} s"


def _when(text: str | None) -> str:
    if not text:
        return ""
    try:
        return dt.datetime.fromisoformat(text).strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return text


_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", "Noto Sans", "PingFang SC", sans-serif; margin: 2em;
       color: #1f2933; }
h1 { font-size: 1.5em; } h2 { font-size: 1.15em; margin-top: 2em; }
table { border-collapse: collapse; width: 100%; font-size: 0.92em; }
th, td { text-align: left; padding: 6px 10px; border-bottom: 1px solid #e4e7eb; vertical-align: top; }
th { background: #f5f7fa; }
.status { font-weight: 600; border-radius: 4px; padding: 1px 6px; white-space: nowrap; }
.ok { color: #0b6e4f; background: #e3f9e5; } .failed { color: #ab091e; background: #ffe3e3; }
.report { margin: 2px 0; } .err { color: #ab091e; font-size: 0.88em; white-space: pre-wrap; }
.muted { color: #7b8794; font-size: 0.88em; }
"""


def _links(folder: str, r: dict) -> str:
    parts = []
    for f in r.get("files", []):
        ext = f.rsplit(".", 1)[-1]
        parts.append(f'<a href="{escape(folder)}/{escape(f)}">{escape(ext)}</a>')
    return " · ".join(parts)


def render_index(runs: list[dict]) -> str:
    latest: dict[str, tuple[dict, dict]] = {}
    for run in runs:  # newest first: the first ok version of each report is its latest
        for r in run.get("reports", []):
            if r.get("status") == "ok" and r["name"] not in latest:
                latest[r["name"]] = (run, r)
    rows_latest = "".join(
        f"<tr><td>{escape(r.get('title') or name)}</td><td>{escape(name)}</td>"
        f"<td>{_links(LATEST, r)}</td><td>{escape(_when(run.get('started')))}</td>"
        f"<td><a href=\"{escape(run['folder'])}/run.json\">{escape(run['run_id'])}</a></td></tr>"
        for name, (run, r) in sorted(latest.items())
    )
    rows = []
    for run in runs:
        items = []
        for r in run.get("reports", []):
            status = escape(str(r.get("status")))
            err = f"<div class='err'>{escape(r['error'][:300])}</div>" if r.get("error") else ""
            name = escape(r["name"])
            if r.get("html"):
                name = f'<a href="{escape(run["folder"])}/{escape(r["html"])}">{name}</a>'
            items.append(
                f"<div class='report'><b>{name}</b> <span class='status {status}'>{status}</span> "
                f"<span class='muted'>{escape(_duration(r.get('duration')))}</span> {_links(run['folder'], r)}{err}</div>"
            )
        status = escape(str(run.get("status")))
        rows.append(
            f"<tr><td><a href=\"{escape(run['folder'])}/run.json\">{escape(run['run_id'])}</a></td>"
            f"<td><span class='status {status}'>{status}</span></td><td>{escape(_when(run.get('started')))}</td>"
            f"<td>{escape(_duration(run.get('duration')))}</td>"
            f"<td>{escape(str(run.get('source', '')))}<div class='muted'>{escape(str(run.get('data_fingerprint') or ''))}"
            f"</div></td><td>{''.join(items)}</td></tr>"
        )
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>CRM KPI Workbench reports</title><style>{_CSS}</style></head><body>"
        "<h1>CRM KPI Workbench reports</h1>"
        f"<p class='muted'>{len(runs)} run{'s' if len(runs) != 1 else ''}; newest first. "
        "Written by <code>crmlib report run</code>.</p>"
        "<h2>Latest successful version of each report</h2>"
        + (f"<table><tr><th>report</th><th>name</th><th>files</th><th>run at</th><th>run</th></tr>{rows_latest}</table>"
           if rows_latest else "<p class='muted'>none yet</p>")
        + "<h2>Every run</h2><table><tr><th>run</th><th>status</th><th>started</th><th>duration</th><th>data</th>"
        f"<th>reports</th></tr>{''.join(rows)}</table></body></html>\n"
    )


def write_index(outputs: Path) -> Path:
    """``outputs/index.html``: every run, newest first, with status, duration and links."""
    outputs = Path(outputs)
    index = outputs / "index.html"
    _write_atomic(index, render_index(list_runs(outputs)))
    return index


def remove_stale_temp(outputs: Path) -> list[str]:
    """Temporary run folders left by a run that was killed outright (the caller holds the lock)."""
    removed = []
    for p in Path(outputs).glob(".tmp-*"):
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p.name)
        else:
            with contextlib.suppress(OSError):
                p.unlink()
    return removed
