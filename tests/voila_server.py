"""Run ``crmlib serve`` for a test or a benchmark, and always stop it.

::

    from voila_server import voila_server   # tests/ is on sys.path under pytest

    with voila_server(source=demo_warehouse, notebooks=folder, pool=1, token=None) as url:
        page.goto(url + "voila/render/sales.ipynb")   # url is "http://127.0.0.1:<port>/"

``voila_server(source, notebooks=None, *, pool=1, token=None, host="127.0.0.1", wait_for_pool=False,
env=None, ready_timeout=180)`` starts ``crmlib serve`` in its own process group on a free port, waits until
the landing page answers (and, with ``wait_for_pool=True``, until every notebook has a preheated kernel whose
render has finished), and yields the base URL. The URL is a ``str`` with extras:

* ``url.login`` — the URL that logs a browser in: ``url + "?token=..."`` when a token is set, else ``url``;
* ``url.token``, ``url.port``, ``url.pid``;
* ``url.log()`` — everything the server printed so far (stdout and stderr);
* ``url.rss()`` — resident memory in bytes of the server and its kernels (the process tree).

On exit the server gets SIGTERM (Voila then shuts its kernels down); whatever is left after 30 s, the
process group and every kernel (kernels run in their own sessions), is killed. ``source`` goes to the
server as ``--source`` (a path or ``db``; a database URL with a password belongs in ``CRMLIB_DB_URL`` in
``env``); the token goes through ``CRMLIB_SERVE_TOKEN``, never the command line. Jupyter's folders go to a
temporary folder unless the environment already sets them (the root conftest.py does, under pytest).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path

import psutil  # a dependency of ipykernel

CRMLIB = [sys.executable, "-m", "crmlib"]
_JUPYTER_VARS = ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR", "IPYTHONDIR")


class ServerURL(str):
    """The base URL of a running server (``http://127.0.0.1:<port>/``) with a few handles."""

    token: str | None
    port: int
    pid: int
    _log_path: Path

    def __new__(cls, url: str, *, token: str | None, port: int, pid: int, log_path: Path) -> ServerURL:
        obj = super().__new__(cls, url)
        obj.token, obj.port, obj.pid, obj._log_path = token, port, pid, log_path
        return obj

    @property
    def login(self) -> str:
        return f"{self}?token={self.token}" if self.token else str(self)

    def log(self) -> str:
        try:
            return self._log_path.read_text(errors="replace")
        except OSError:
            return ""

    def processes(self) -> list[psutil.Process]:
        try:
            root = psutil.Process(self.pid)
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def rss(self) -> int:
        total = 0
        for p in self.processes():
            with contextlib.suppress(psutil.Error):
                total += p.memory_info().rss
        return total


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def voila_server(
    source: str | os.PathLike | None,
    notebooks: str | os.PathLike | None = None,
    *,
    pool: int = 1,
    token: str | None = None,
    host: str = "127.0.0.1",
    wait_for_pool: bool = False,
    env: Mapping[str, str] | None = None,
    ready_timeout: float = 180.0,
) -> Iterator[ServerURL]:
    """Start ``crmlib serve``, yield its base URL once it answers, stop it and its kernels on exit."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="crmlib-serve-") as tmp:
        tmp_path = Path(tmp)
        run_env = {**os.environ, **(env or {})}
        for var in _JUPYTER_VARS:
            run_env.setdefault(var, str(tmp_path / var.lower()))
        run_env.pop("CRMLIB_SERVE_TOKEN", None)
        if token:
            run_env["CRMLIB_SERVE_TOKEN"] = token
        cmd = [*CRMLIB, "serve", "--host", host, "--port", str(port), "--pool", str(pool)]
        if source is not None:
            cmd += ["--source", str(source)]
        if notebooks is not None:
            cmd += ["--notebooks", str(notebooks)]
        log_path = tmp_path / "server.log"
        with open(log_path, "wb") as log_file:
            proc = subprocess.Popen(
                cmd,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=run_env,
                start_new_session=True,
            )
        shown = "localhost" if host in ("0.0.0.0", "", "::") else host
        url = ServerURL(f"http://{shown}:{port}/", token=token, port=port, pid=proc.pid, log_path=log_path)
        seen: dict[int, psutil.Process] = {}
        try:
            _wait_ready(proc, url, ready_timeout, seen)
            if wait_for_pool and pool > 0:
                _wait_pool(proc, url, notebooks, ready_timeout, seen)
            yield url
        finally:
            _remember(url, seen)
            _stop(proc, seen)


def _remember(url: ServerURL, seen: dict[int, psutil.Process]) -> None:
    for p in url.processes():
        seen.setdefault(p.pid, p)


def _wait_ready(proc: subprocess.Popen, url: ServerURL, timeout: float, seen) -> None:
    deadline = time.monotonic() + timeout
    while True:
        _remember(url, seen)
        if proc.poll() is not None:
            raise RuntimeError(f"crmlib serve exited with code {proc.returncode}:\n{url.log()[-4000:]}")
        try:
            with urllib.request.urlopen(url.login, timeout=10) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"crmlib serve did not answer within {timeout:.0f} s:\n{url.log()[-4000:]}")
        time.sleep(0.25)


def _wait_pool(proc: subprocess.Popen, url: ServerURL, notebooks, timeout: float, seen) -> None:
    """Wait until every notebook served has a preheated kernel whose render has finished."""
    from crmlib.serve import RENDERED, list_dashboards

    folder = Path(notebooks) if notebooks is not None else None
    expected = {d.path for d in list_dashboards(folder)} if folder else None
    deadline = time.monotonic() + timeout
    while True:
        _remember(url, seen)
        done = {line.split(RENDERED, 1)[1].strip() for line in url.log().splitlines() if RENDERED in line}
        if done and (expected is None or expected <= done):
            return
        if proc.poll() is not None:
            raise RuntimeError(f"crmlib serve exited with code {proc.returncode}:\n{url.log()[-4000:]}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"preheated kernels not rendered within {timeout:.0f} s:\n{url.log()[-4000:]}")
        time.sleep(0.25)


def _stop(proc: subprocess.Popen, seen: dict[int, psutil.Process]) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=30)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    if proc.poll() is None:
        proc.kill()
        proc.wait(timeout=10)
    leftovers = []
    for p in seen.values():
        with contextlib.suppress(psutil.Error):
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                p.kill()
                leftovers.append(p)
    psutil.wait_procs(leftovers, timeout=10)
