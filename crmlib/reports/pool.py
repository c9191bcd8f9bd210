"""Worker processes: one per report, at most ``jobs`` at a time, read through one ``selectors`` loop.

Each worker (:mod:`crmlib.reports.worker`) writes JSON events on a pipe; its stdout and stderr (and its
kernel's) go to a log in the run's temporary folder, read only when the worker dies without a result.
SIGINT, SIGTERM and SIGHUP become :class:`Interrupt` in the runner (see :class:`Signals`); every running
worker then gets SIGTERM (it kills its kernel) and is waited for.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import selectors
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..sources import Resolved
from .definitions import RunDefinition
from .secrets import scrub

EventHandler = Callable[[dict], None]
STOP_GRACE = 20  # seconds a worker gets to stop its kernel after SIGTERM before it is killed


@dataclass
class ReportResult:
    name: str
    status: str  # ok | failed
    duration: float
    title: str = ""
    notebook: str | None = None  # the executed notebook's file name in the run folder
    html: str | None = None
    pdf: str | None = None
    error: str | None = None
    failed_cell: int | None = None
    started: str | None = None
    ended: str | None = None
    files: list[str] = field(default_factory=list)


class Interrupt(BaseException):
    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


class Signals:
    """Turn SIGINT/SIGTERM/SIGHUP into ``Interrupt``; inside ``critical()`` the signal waits until it ends."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

    def __init__(self) -> None:
        self.pending: int | None = None
        self.raised = False
        self._depth = 0
        self._old: dict = {}

    def _handler(self, signum, _frame) -> None:
        if self.raised:
            return  # already stopping: later signals are ignored
        if self._depth:
            self.pending = self.pending or signum
            return
        self.raised = True
        raise Interrupt(signum)

    def __enter__(self) -> Signals:
        if threading.current_thread() is threading.main_thread():
            for s in self.SIGNALS:
                self._old[s] = signal.signal(s, self._handler)
        return self

    def __exit__(self, *exc) -> None:
        for s, old in self._old.items():
            signal.signal(s, old)

    @contextlib.contextmanager
    def critical(self, then_raise: bool = True):
        """Signals wait until the block ends; ``then_raise=False``: the work is done, a late signal is dropped."""
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
            if not self._depth and self.pending and not self.raised:
                if then_raise:
                    self.raised = True
                    raise Interrupt(self.pending)
                self.pending = None


@dataclass
class _Job:
    definition: RunDefinition
    proc: subprocess.Popen
    fd: int
    log: Path
    started: float
    buffer: bytes = b""
    result: dict | None = None


def _spawn(d: RunDefinition, folder: Path, env: dict, chromium: str | None) -> _Job:
    read_fd, write_fd = os.pipe()
    spec = {
        "name": d.name, "title": d.title, "notebook": str(d.notebook), "cwd": str(d.notebook.parent),
        "parameters": d.execution_parameters(), "formats": list(d.formats), "folder": str(folder),
        "chromium": chromium,
    }
    log = folder / ".work" / f"{d.name}.log"
    log.parent.mkdir(exist_ok=True)
    with open(log, "wb") as out:
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", "crmlib.reports.worker", str(write_fd), json.dumps(spec)],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env, pass_fds=(write_fd,),
                cwd=str(d.notebook.parent),
            )
        finally:
            os.close(write_fd)
    os.set_blocking(read_fd, False)
    return _Job(d, proc, read_fd, log, time.time())


def _finish(job: _Job, secrets: tuple[str, ...]) -> ReportResult:
    d, r = job.definition, job.result
    ended = time.time()
    if r is None:
        code = job.proc.returncode
        try:
            tail = job.log.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-12:]
        except OSError:
            tail = []
        error = scrub(f"the report's worker process exited with code {code} before finishing"
                      + (":\n" + "\n".join(tail) if tail else ""), secrets)
        r = {"status": "failed", "error": error, "files": [], "started": job.started, "ended": ended}
        if (job.log.parent.parent / f"{d.name}.ipynb").exists():
            r["files"] = [f"{d.name}.ipynb"]
    files = r.get("files") or []

    def pick(ext: str) -> str | None:
        return next((f for f in files if f.endswith("." + ext)), None)

    return ReportResult(
        # from the worker's start (process, imports) to its files written
        name=d.name, status=r["status"], duration=round(r.get("ended", ended) - job.started, 3),
        title=d.title, notebook=pick("ipynb"), html=pick("html"), pdf=pick("pdf"), error=r.get("error"),
        failed_cell=r.get("failed_cell"), files=files,
        started=dt.datetime.fromtimestamp(job.started).astimezone().isoformat(timespec="seconds"),
        ended=dt.datetime.fromtimestamp(r.get("ended", ended)).astimezone().isoformat(timespec="seconds"),
    )


def _read_events(job: _Job, emit: EventHandler) -> bool:
    """Read what the worker wrote; False at end of stream."""
    try:
        chunk = os.read(job.fd, 65536)
    except BlockingIOError:
        return True
    if not chunk:
        return False
    job.buffer += chunk
    *lines, job.buffer = job.buffer.split(b"\n")
    for line in lines:
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if event.get("event") == "result":
            job.result = event
        else:
            emit({**event, "name": job.definition.name})
    return True


def _stop(jobs: list[_Job]) -> None:
    """SIGTERM every worker (each kills its kernel), then wait; SIGKILL after STOP_GRACE seconds."""
    for job in jobs:
        with contextlib.suppress(ProcessLookupError):
            job.proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE
    for job in jobs:
        try:
            job.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            job.proc.kill()
            job.proc.wait()
        with contextlib.suppress(OSError):
            os.close(job.fd)


def execute(chosen: list[RunDefinition], folder: Path, jobs: int, env: dict, emit: EventHandler,
             signals: Signals, chromium: str | None, secrets: tuple[str, ...]) -> list[ReportResult]:
    pending = list(chosen)
    running: dict[int, _Job] = {}
    results: dict[str, ReportResult] = {}
    sel = selectors.DefaultSelector()
    try:
        while pending or running:
            while pending and len(running) < jobs:
                d = pending.pop(0)
                with signals.critical():
                    job = _spawn(d, folder, env, chromium)
                    running[job.fd] = job
                sel.register(job.fd, selectors.EVENT_READ, job)
                emit({"event": "spawn", "name": d.name})
            for key, _mask in sel.select(timeout=1.0):
                job = key.data
                if _read_events(job, emit):
                    continue
                sel.unregister(job.fd)
                os.close(job.fd)
                del running[job.fd]
                job.proc.wait()
                res = _finish(job, secrets)
                results[res.name] = res
                emit({"event": "done", **asdict(res), "completed": len(results), "total": len(chosen)})
    except Interrupt as exc:
        exc.stopped = len(running)
        raise
    finally:
        if running:
            _stop(list(running.values()))
        sel.close()
    return [results[d.name] for d in chosen]


def worker_env(resolved: Resolved) -> dict:
    env = dict(os.environ)
    db_url = os.environ.get("CRMLIB_DB_URL")
    # A URL with a password travels as "db" (the kernel reads CRMLIB_DB_URL), never as a copy.
    env["CRMLIB_SOURCE"] = "db" if db_url and resolved.location == db_url.strip() else resolved.location
    env.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    return env
