"""Scheduled report runs: notebooks executed by papermill into ``outputs/<run-id>/``.

A run definition is a YAML file in ``parameters/`` (other YAML files there, without a ``notebook`` key,
are not run definitions)::

    name: overview                    # report name, also its file names (default: the file's stem)
    notebook: notebooks/overview.ipynb
    parameters: {lang: en}            # values for the notebook's `parameters` cell; checked against it
    formats: [ipynb, html, pdf]       # default [ipynb, html]; pdf prints the HTML with the system Chromium
    schedule: "0 6 * * 1-5"           # optional cron expression (local time) for `crmlib report run --due`
    lang: zh                          # optional: the same as parameters.lang

``crmlib report run`` executes the chosen definitions, each in its own worker process (``--jobs``, default
the number of cores), and writes ``outputs/<run-id>/<name>.{ipynb,html,pdf}`` and ``run.json`` (parameters,
data source with its password hidden, data fingerprint, crmlib version, git commit, timings, status).
The data source reaches the kernels through ``CRMLIB_SOURCE``, never as a notebook parameter, so a
database password (``CRMLIB_DB_URL``, source ``db``) is never written into a report.

Reliability: the run is built in ``outputs/.tmp-<run-id>-*`` and renamed into place when complete; a
failing report is recorded with its executed notebook and the error, the others still run, and the run
is marked failed; ``outputs/.lock`` keeps two runs from writing at once; a signal removes the unfinished
run. ``outputs/index.html`` lists every run; ``outputs/latest/`` holds the newest good version of each
report; ``outputs/.state.json`` remembers each report's last success for ``--due``.
"""

from __future__ import annotations

from .definitions import FORMATS, RunDefinition, is_due, load_definitions, next_run
from .history import list_runs, read_state, write_index
from .lock import LockedError, OutputsLock
from .pool import ReportResult
from .runner import ReportInterrupted, RunResult, run_reports, select

__all__ = [
    "FORMATS", "LockedError", "OutputsLock", "ReportInterrupted", "ReportResult", "RunDefinition", "RunResult",
    "is_due", "list_runs", "load_definitions", "next_run", "read_state", "run_reports", "select", "write_index",
]
