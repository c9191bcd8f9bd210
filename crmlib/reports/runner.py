"""Run reports: one worker process per report, several at a time, into one atomic run folder.

Order of a run: load and validate the definitions -> choose (names, ``--all``, ``--due``) -> take the outputs
lock -> fingerprint the data -> run the workers in ``outputs/.tmp-<run-id>-*`` -> write ``run.json`` ->
rename the folder to ``outputs/<run-id>`` -> update ``latest/``, the schedule state and ``index.html``.
A Ctrl-C, SIGTERM or SIGHUP stops the workers (their kernels are killed), removes the temporary folder
and leaves every earlier output as it was.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .. import __version__, config
from ..errors import ConfigError, CrmlibError
from ..sources import Resolved, redact, resolve
from . import history
from .definitions import RunDefinition, is_due, load_definitions
from .lock import OutputsLock
from .pool import EventHandler, Interrupt, ReportResult, Signals, execute, worker_env
from .secrets import contains_secret, mask, scrub, secret_values


class ReportInterrupted(CrmlibError):
    """The run was stopped by a signal; nothing of it was kept."""

    def __init__(self, signum: int, stopped: int) -> None:
        self.exit_code = 128 + signum
        name = signal.Signals(signum).name
        super().__init__(
            f"interrupted by {name}: stopped {stopped} running report{'s' if stopped != 1 else ''} and removed the "
            "unfinished run; earlier reports, latest/ and index.html are unchanged."
        )


@dataclass
class RunResult:
    run_id: str | None  # None when nothing was run (``--due`` and nothing due)
    status: str  # ok | failed | nothing due
    folder: Path | None
    index: Path
    reports: list[ReportResult] = field(default_factory=list)
    duration: float = 0.0


def _now(now: dt.datetime | None = None) -> dt.datetime:
    now = now or dt.datetime.now()
    return now.astimezone() if now.tzinfo is None else now


def _git() -> dict:
    def git(*args: str) -> str | None:
        try:
            proc = subprocess.run(["git", *args], cwd=config.home(), capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return None
        return proc.stdout.strip() if proc.returncode == 0 else None

    commit = git("rev-parse", "--short", "HEAD")
    dirty = git("status", "--porcelain", "--untracked-files=no") if commit else None
    return {"git_commit": commit, "git_dirty": bool(dirty) if dirty is not None else None}


def _public_parameters(d: RunDefinition) -> dict:
    # Definitions with secrets are rejected at load; this is the second line of defence.
    return {k: v for k, v in d.execution_parameters().items() if redact(str(v)) == str(v)}


def select(defs: dict[str, RunDefinition], names: list[str] | None, run_all: bool) -> list[RunDefinition]:
    from ..errors import suggest

    if names and run_all:
        raise ConfigError("Give report names or --all, not both.")
    if not names:
        return list(defs.values())
    missing = [n for n in names if n not in defs]
    if missing:
        hints = "".join(suggest(n, defs) for n in missing)
        raise ConfigError(
            f"No run definition named {missing} in parameters/.{hints} Known: {', '.join(sorted(defs)) or 'none'}."
        )
    return [defs[n] for n in dict.fromkeys(names)]


class _Fingerprint(threading.Thread):
    """The data fingerprint, computed in a thread while the reports run (it reads every table)."""

    def __init__(self, resolved: Resolved) -> None:
        from .. import open as open_source

        super().__init__(name="crmlib-fingerprint", daemon=True)
        self.crm = open_source(resolved.location)  # raises SourceError for a missing or bad source
        self.value: str | None = None
        self.error: str | None = None
        self.start()

    def run(self) -> None:
        try:
            self.value = self.crm.fingerprint()
        except Exception as exc:  # noqa: BLE001 - recorded in run.json; the reports show their own errors
            self.error = redact(f"{type(exc).__name__}: {exc}")
        finally:
            self.crm.close()

    def result(self) -> str | None:
        self.join()
        return self.value


def _seal(folder: Path, secrets: tuple[str, ...]) -> None:
    """Last check before the rename: no file holds a secret; permissions follow the umask."""
    shutil.rmtree(folder / ".work", ignore_errors=True)
    for path in folder.iterdir():
        if path.suffix in {".ipynb", ".html", ".json"} and secrets:
            data = path.read_bytes()
            if contains_secret(data, secrets):
                path.write_text(mask(data.decode("utf-8", "replace"), secrets), encoding="utf-8")
    umask = os.umask(0)
    os.umask(umask)
    folder.chmod(0o777 & ~umask)


def run_reports(
    names: list[str] | None = None,
    *,
    source: str | None = None,
    run_all: bool = False,
    due: bool = False,
    jobs: int | None = None,
    now: dt.datetime | None = None,
    on_event: EventHandler | None = None,
    definitions: Path | None = None,
) -> RunResult:
    """Run the named reports (default: all) into ``outputs/<run-id>/``; see the module doc.

    ``due``: only scheduled definitions whose schedule fired since their last successful run. ``now``
    (default: the clock) is the time the schedule is evaluated at and the run is recorded at.
    A report that fails is recorded (``status == "failed"``) and the others still run; a signal raises
    :class:`ReportInterrupted`; another run holding the outputs raises :class:`~.lock.LockedError`.
    """
    emit = on_event or (lambda _e: None)
    defs = load_definitions(definitions)
    chosen = select(defs, names, run_all)
    if not chosen:
        raise ConfigError(f"No run definitions in {config.home() / 'parameters'}/*.yaml. "
                          "Add one (see crmlib/reports/__init__.py for the keys).")
    if jobs is not None and jobs < 1:
        raise ConfigError(f"--jobs must be 1 or more, not {jobs}.")
    chromium = None
    if any("pdf" in d.formats for d in chosen):
        from .export import check_chinese_font, find_chromium

        chromium = find_chromium()
        check_chinese_font([d.name for d in chosen if "pdf" in d.formats and d.parameters.get("lang") == "zh"])
    resolved = resolve(source)
    secrets = secret_values([resolved.location])
    outputs = config.outputs_dir()
    start_clock = time.perf_counter()
    with Signals() as signals:
        lock = OutputsLock(outputs, notice=lambda m: emit({"event": "notice", "message": m}))
        try:
            try:
                with signals.critical():
                    lock.acquire()
                for name in history.remove_stale_temp(outputs):
                    emit({"event": "notice", "message": f"removed {name}, left by a run that was killed"})
                started = _now(now)
                if due:
                    state = history.read_state(outputs)
                    chosen = [d for d in chosen if is_due(d, history.last_success(state, d.name), started)]
                    if not chosen:
                        emit({"event": "notice", "message": "no report is due"})
                        return RunResult(None, "nothing due", None, outputs / "index.html")
                fingerprint = _Fingerprint(resolved)  # opens the source now (a bad one stops here)
                return _run(chosen, started, outputs, resolved, fingerprint, jobs, emit, signals, chromium,
                            secrets, start_clock)
            finally:
                with signals.critical():
                    lock.release()
        except Interrupt as exc:
            raise ReportInterrupted(exc.signum, getattr(exc, "stopped", 0)) from None


def _run(chosen, started, outputs, resolved, fingerprint, jobs, emit, signals, chromium, secrets,
         start_clock) -> RunResult:
    run_id = started.strftime("%Y%m%d-%H%M%S")
    n_jobs = max(1, min(jobs or _cpus(), len(chosen)))
    tmp = None
    try:
        with signals.critical():
            tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{run_id}-", dir=outputs))
        emit({"event": "plan", "run_id": run_id, "jobs": n_jobs, "source": resolved.display,
              "reports": [{"name": d.name, "title": d.title} for d in chosen]})
        results = execute(chosen, tmp, n_jobs, worker_env(resolved), emit, signals, chromium, secrets)
        fingerprint, fingerprint_error = fingerprint.result(), fingerprint.error
        ended = _now()
        status = "ok" if all(r.status == "ok" for r in results) else "failed"
        duration = round(time.perf_counter() - start_clock, 3)
        meta = {
            "run_id": run_id,
            "status": status,
            "started": started.isoformat(timespec="seconds"),
            "ended": ended.isoformat(timespec="seconds"),
            "duration": duration,
            "source": resolved.display,
            "source_kind": resolved.kind,
            "data_fingerprint": fingerprint,
            **({"data_fingerprint_error": fingerprint_error} if fingerprint_error else {}),
            "crmlib_version": __version__,
            **_git(),
            "host": socket.gethostname(),
            "python": sys.version.split()[0],
            "jobs": n_jobs,
            "reports": [
                {**asdict(r), "notebook_path": _rel(d.notebook), "definition": _rel(d.file),
                 "parameters": _public_parameters(d), "formats": list(d.formats), "schedule": d.schedule}
                for r, d in zip(results, chosen, strict=True)
            ],
        }
        text = scrub(json.dumps(meta, indent=2, ensure_ascii=False), secrets)
        with signals.critical(then_raise=False):  # from here the run is complete: a late signal is dropped
            (tmp / "run.json").write_text(text, encoding="utf-8")
            _seal(tmp, secrets)
            final = outputs / run_id
            suffix = 1
            while final.exists():
                suffix += 1
                final = outputs / f"{run_id}-{suffix}"
            if final.name != run_id:
                meta["run_id"] = final.name
                (tmp / "run.json").write_text(scrub(json.dumps(meta, indent=2, ensure_ascii=False), secrets),
                                              encoding="utf-8")
            os.replace(tmp, final)
            history.update_latest(outputs, final, meta["reports"])
            history.update_state(outputs, meta)
            index = history.write_index(outputs)
    except BaseException:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        raise
    return RunResult(final.name, status, final, index, results, duration)


def _rel(path: Path) -> str:
    try:
        return path.relative_to(config.home()).as_posix()
    except ValueError:
        return str(path)


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1
