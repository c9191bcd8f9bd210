"""Run notebooks with papermill into ``outputs/<run-id>/`` (ipynb + self-contained HTML).

A run definition is a YAML file in ``parameters/``::

    name: overview                # report name (default: file stem)
    notebook: notebooks/overview.ipynb
    parameters: {lang: en}        # overrides of the notebook's parameters cell
    formats: [ipynb, html]

The data source reaches the kernel through the ``CRMLIB_SOURCE`` environment variable, never as a
notebook parameter, so a database URL with a password is never written into an output.
Outputs are built in a temporary folder and renamed into place: a failed run never replaces a good one.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass, field
from html import escape
from pathlib import Path

import yaml

from . import __version__, config
from .errors import ConfigError
from .sources import redact, resolve

FORMATS = ("ipynb", "html")
_KEYS = {"name", "notebook", "parameters", "formats", "schedule", "lang"}


@dataclass(frozen=True)
class RunDefinition:
    name: str
    notebook: Path
    parameters: dict
    formats: tuple[str, ...]
    file: Path


@dataclass
class ReportResult:
    name: str
    status: str
    duration: float
    notebook: str | None = None
    html: str | None = None
    error: str | None = None


@dataclass
class RunResult:
    run_id: str
    status: str
    folder: Path
    index: Path
    reports: list[ReportResult] = field(default_factory=list)


def load_definitions(folder: Path | None = None) -> dict[str, RunDefinition]:
    folder = folder or config.home() / "parameters"
    defs: dict[str, RunDefinition] = {}
    problems = []
    for f in sorted(folder.glob("*.yaml")):
        raw = yaml.safe_load(f.read_text(encoding="utf-8")) or {}
        if not isinstance(raw, dict) or "notebook" not in raw:
            continue  # other parameter files (alerts, calendars) live here too
        unknown = set(raw) - _KEYS
        if unknown:
            problems.append(f"{f}: unknown keys {sorted(unknown)}; allowed: {sorted(_KEYS)}")
            continue
        nb = (config.home() / raw["notebook"]).resolve()
        if not nb.exists():
            problems.append(f"{f}: notebook {raw['notebook']} does not exist")
            continue
        formats = tuple(raw.get("formats") or FORMATS)
        bad = [x for x in formats if x not in FORMATS]
        if bad:
            problems.append(f"{f}: unsupported formats {bad}; supported: {list(FORMATS)}")
            continue
        name = str(raw.get("name") or f.stem)
        defs[name] = RunDefinition(name, nb, dict(raw.get("parameters") or {}), formats, f)
    if problems:
        raise ConfigError("Bad run definitions in parameters/:\n  - " + "\n  - ".join(problems))
    return defs


def _export_html(ipynb: Path, html: Path) -> None:
    import nbformat
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True)
    body, _ = exporter.from_notebook_node(nbformat.read(ipynb, as_version=4))
    html.write_text(body, encoding="utf-8")


def _git_commit() -> str | None:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=config.home(), capture_output=True, text=True, timeout=5
        ).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def _run_one(d: RunDefinition, folder: Path) -> ReportResult:
    import papermill as pm

    start = time.perf_counter()
    out_nb = folder / f"{d.name}.ipynb"
    result = ReportResult(d.name, "ok", 0.0, notebook=out_nb.name)
    try:
        pm.execute_notebook(
            str(d.notebook), str(out_nb), parameters={**d.parameters, "interactive": False},
            cwd=str(d.notebook.parent), progress_bar=False, kernel_name="python3",
        )
        if "html" in d.formats:
            _export_html(out_nb, folder / f"{d.name}.html")
            result.html = f"{d.name}.html"
    except Exception as exc:  # a failing report is recorded; the others still run
        result.status = "failed"
        result.error = redact(f"{type(exc).__name__}: {exc}")[:2000]
        if out_nb.exists() and "html" in d.formats:
            try:
                _export_html(out_nb, folder / f"{d.name}.html")
                result.html = f"{d.name}.html"
            except Exception:  # noqa: BLE001 - the notebook itself is kept
                pass
    result.duration = time.perf_counter() - start
    return result


def run_reports(names: list[str] | None = None, source: str | None = None) -> RunResult:
    defs = load_definitions()
    if names:
        missing = [n for n in names if n not in defs]
        if missing:
            raise ConfigError(f"No run definition named {missing} in parameters/. Known: {sorted(defs)}.")
        chosen = [defs[n] for n in names]
    else:
        chosen = list(defs.values())
    if not chosen:
        raise ConfigError("No run definitions in parameters/*.yaml. Add one (see crmlib/reports.py).")
    resolved = resolve(source)
    outputs = config.outputs_dir()
    outputs.mkdir(parents=True, exist_ok=True)
    started = dt.datetime.now()
    run_id = started.strftime("%Y%m%d-%H%M%S")
    tmp = Path(tempfile.mkdtemp(prefix=f".{run_id}.", dir=outputs))
    env_before = os.environ.get("CRMLIB_SOURCE")
    os.environ["CRMLIB_SOURCE"] = resolved.location
    try:
        from . import open as open_source

        with open_source(resolved.location) as crm:
            fingerprint = crm.fingerprint()
        reports = [_run_one(d, tmp) for d in chosen]
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        if env_before is None:
            os.environ.pop("CRMLIB_SOURCE", None)
        else:
            os.environ["CRMLIB_SOURCE"] = env_before
    status = "ok" if all(r.status == "ok" for r in reports) else "failed"
    meta = {
        "run_id": run_id,
        "status": status,
        "started": started.isoformat(timespec="seconds"),
        "ended": dt.datetime.now().isoformat(timespec="seconds"),
        "source": resolved.display,
        "source_kind": resolved.kind,
        "data_fingerprint": fingerprint,
        "crmlib_version": __version__,
        "git_commit": _git_commit(),
        "reports": [
            {**asdict(r), "parameters": defs_params(d)} for r, d in zip(reports, chosen, strict=True)
        ],
    }
    (tmp / "run.json").write_text(json.dumps(meta, indent=2, ensure_ascii=False), encoding="utf-8")
    final = outputs / run_id
    suffix = 1
    while final.exists():
        suffix += 1
        final = outputs / f"{run_id}-{suffix}"
    os.replace(tmp, final)
    index = write_index(outputs)
    return RunResult(final.name, status, final, index, reports)


def defs_params(d: RunDefinition) -> dict:
    return {k: v for k, v in d.parameters.items() if redact(str(v)) == str(v)}


def write_index(outputs: Path) -> Path:
    """``outputs/index.html``: every run, newest first, with status and links."""
    rows = []
    for run_json in sorted(outputs.glob("*/run.json"), reverse=True):
        try:
            meta = json.loads(run_json.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        links = " ".join(
            f'<a href="{escape(run_json.parent.name)}/{escape(r["html"])}">{escape(r["name"])}</a>'
            for r in meta.get("reports", [])
            if r.get("html")
        )
        rows.append(
            f"<tr><td>{escape(meta['run_id'])}</td><td>{escape(meta['status'])}</td>"
            f"<td>{escape(meta['started'])}</td><td>{links}</td></tr>"
        )
    html = (
        "<!doctype html><meta charset='utf-8'><title>CRM KPI Workbench reports</title>"
        "<h1>Report runs</h1><table border=1 cellpadding=4><tr><th>run</th><th>status</th><th>started</th>"
        "<th>reports</th></tr>" + "".join(rows) + "</table>"
    )
    index = outputs / "index.html"
    tmp = index.with_suffix(".html.tmp")
    tmp.write_text(html, encoding="utf-8")
    os.replace(tmp, index)
    return index
