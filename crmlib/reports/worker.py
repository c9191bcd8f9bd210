"""One report in its own process: ``python -m crmlib.reports.worker EVENTS_FD SPEC_JSON``.

The runner starts one worker per report (several at a time). The worker executes the notebook with
papermill, writes ``<name>.ipynb``, ``.html`` and ``.pdf`` into the run's temporary folder and reports
progress as JSON lines on file descriptor ``EVENTS_FD``: ``start``, ``cell``, ``export``, then ``result``.
Its own stdout/stderr (and the kernel's) go to a log file the runner reads only when something breaks.

SIGTERM or SIGINT stop it: the kernel is killed and waited for, and the worker exits 130 without a result;
the runner then removes the temporary folder.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import time
from pathlib import Path

_KERNELS: list = []


def skip_slow_optional_imports() -> None:
    """Keep jsonschema from loading its optional IRI checker: ``rfc3987_syntax`` builds a grammar at import
    (about 1 s per process) and the notebook schema nbformat validates against has no IRI fields."""
    sys.modules.setdefault("rfc3987_syntax", None)


def _interrupt(signum, _frame):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise KeyboardInterrupt(f"signal {signum}")


def _kill_kernels() -> None:
    for km in _KERNELS:
        proc = getattr(getattr(km, "provisioner", None), "process", None)
        if proc is None:
            continue
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # the kernel leads its own session (jupyter_client)
        except (ProcessLookupError, PermissionError):
            with contextlib.suppress(OSError):
                proc.kill()
        with contextlib.suppress(Exception):
            proc.wait()
        with contextlib.suppress(OSError, TypeError):
            Path(km.connection_file).unlink(missing_ok=True)


def _engine(emit):
    from jupyter_client.manager import AsyncKernelManager
    from papermill.engines import NBClientEngine, papermill_engines

    class TrackedKernelManager(AsyncKernelManager):
        async def start_kernel(self, **kw):
            result = await super().start_kernel(**kw)
            _KERNELS.append(self)
            return result

    class ProgressEngine(NBClientEngine):
        @classmethod
        def execute_managed_notebook(cls, nb_man, kernel_name, **kwargs):
            code = [i for i, c in enumerate(nb_man.nb.cells) if c.cell_type == "code"]
            position = {index: n + 1 for n, index in enumerate(code)}
            complete = nb_man.cell_complete

            def cell_complete(cell, cell_index=None, **kw):
                complete(cell, cell_index=cell_index, **kw)
                if cell_index in position:
                    emit("cell", done=position[cell_index], total=len(code))

            nb_man.cell_complete = cell_complete
            emit("start", cells=len(code))
            return super().execute_managed_notebook(nb_man, kernel_name, **kwargs)

    papermill_engines.register("crmlib", ProgressEngine)
    return TrackedKernelManager


def run(spec: dict, emit) -> dict:
    """Execute one report into ``spec['folder']``; returns the result fields (never raises for report errors)."""
    import nbformat
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    from .export import export_html, export_pdf
    from .secrets import scrub, scrub_notebook, secret_values

    name, folder = spec["name"], Path(spec["folder"])
    out_nb = folder / f"{name}.ipynb"
    secrets = secret_values()
    status, error, failed_cell = "ok", None, None
    km_class = _engine(emit)
    nb = None
    try:
        nb = pm.execute_notebook(
            spec["notebook"], str(out_nb), parameters=spec["parameters"], cwd=spec["cwd"],
            engine_name="crmlib", kernel_name=spec.get("kernel", "python3"), progress_bar=False,
            request_save_on_cell_execute=False, kernel_manager_class=km_class,
            # the report is complete when the last cell is: no graceful kernel shutdown to wait for, and no
            # IPython history database that parallel kernels would queue on
            shutdown_kernel="immediate", extra_arguments=["--HistoryManager.enabled=False"],
        )
    except PapermillExecutionError as exc:
        status, failed_cell = "failed", exc.exec_count
        error = f"{exc.ename}: {exc.evalue} (cell [{exc.exec_count}])"
    except Exception as exc:  # noqa: BLE001 - kernel died, bad notebook...: recorded, the others still run
        status, error = "failed", f"{type(exc).__name__}: {exc}"
    files = []
    if nb is None and out_nb.exists():  # papermill wrote the failed notebook, with the error, before raising
        nb = nbformat.read(out_nb, as_version=4)
    if nb is not None and scrub_notebook(nb, secrets):
        nbformat.write(nb, out_nb)
    try:
        if nb is not None and ("html" in spec["formats"] or (status == "ok" and "pdf" in spec["formats"])):
            emit("export", format="html")
            export_html(nb, folder / f"{name}.html", spec["title"], failed=status != "ok")
            files.append(f"{name}.html")
        if status == "ok" and "pdf" in spec["formats"]:
            emit("export", format="pdf")
            export_pdf(folder / f"{name}.html", folder / f"{name}.pdf", spec.get("chromium"))
            files.append(f"{name}.pdf")
    except Exception as exc:  # noqa: BLE001
        status, error = "failed", error or f"export failed: {type(exc).__name__}: {exc}"
    if out_nb.exists():
        if "ipynb" in spec["formats"] or status != "ok":  # a failed report keeps its executed notebook
            files.insert(0, out_nb.name)
        else:
            out_nb.unlink()
    if status == "ok" and "html" not in spec["formats"]:
        (folder / f"{name}.html").unlink(missing_ok=True)  # printed for the PDF only
        files = [f for f in files if not f.endswith(".html")]
    return {
        "status": status,
        "error": scrub(error, secrets)[:4000] if error else None,
        "failed_cell": failed_cell,
        "files": files,
        "cells": len([c for c in nb.cells if c.cell_type == "code"]) if nb is not None else None,
    }


def main(argv: list[str]) -> int:
    skip_slow_optional_imports()
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    events = os.fdopen(int(argv[0]), "w", buffering=1, encoding="utf-8")
    spec = json.loads(argv[1])

    def emit(event: str, **fields) -> None:
        events.write(json.dumps({"event": event, **fields}) + "\n")

    start = time.time()
    try:
        result = run(spec, emit)
    except KeyboardInterrupt:
        _kill_kernels()
        return 130
    emit("result", started=start, ended=time.time(), **result)
    events.close()
    return 0


if __name__ == "__main__":  # pragma: no cover - run by the report runner
    code = main(sys.argv[1:])
    sys.stdout.flush()
    sys.stderr.flush()
    # Every file is written and closed, the kernel is gone: skip the interpreter's teardown (garbage
    # collecting the notebooks, joining asyncio and zmq threads), which costs up to a second per report.
    os._exit(code)
