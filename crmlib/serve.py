"""``crmlib serve``: the area notebooks as Voila dashboards, safe by default.

Voila (0.5) runs in this process over a notebooks folder in tree mode:

* a landing page (``/``) lists the dashboards by title (each notebook's first markdown heading) and
  its first paragraph, from ``crmlib/voila/templates/tree.html``; it needs no JavaScript and loads
  nothing from the internet;
* ``pool`` preheated kernels per notebook (``--preheat_kernel``; 0 starts a kernel per visit instead).
  A preheated kernel runs the notebook with its default parameters, so the data source reaches the
  kernels through the environment (``CRMLIB_SOURCE``; a database password stays in ``CRMLIB_DB_URL``),
  never through a command line or a log;
* tracebacks off: a failing cell shows Voila's generic "There was an error when executing cell" line;
* arbitrary code execution from the page stays disabled (Voila's kernel websocket only lets widget
  messages through; nothing here changes that), and template/theme overrides from the URL are off;
* bound to 127.0.0.1. Any other address requires a token (``--token`` or ``CRMLIB_SERVE_TOKEN``): every
  request must carry ``?token=...`` (or the ``Authorization: token ...`` header) once, after which a
  login cookie is set. The token is never printed or logged: the printed URL has a placeholder.

Voila's token lives in ``jupyter_server``'s ``PasswordIdentityProvider`` (``Voila.token``); without a
token the identity provider lets every request through, which is why a non-loopback address refuses
to start without one.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import signal
import socket
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from . import config, sources
from .errors import ConfigError

TOKEN_ENV = "CRMLIB_SERVE_TOKEN"
MIN_TOKEN_LENGTH = 8
TEMPLATES = Path(__file__).parent / "voila" / "templates"
# The dashboard page: Voila's lab page plus plotly.js, once per page (crmlib/chart_widget.py).
RENDER_TEMPLATES = Path(__file__).parent / "voila" / "render"
# Landing page order; notebooks not named here follow alphabetically.
ORDER = (
    "executive",
    "overview",
    "sales",
    "performance",
    "marketing",
    "customers",
    "service",
    "alerts",
    "roi",
)
IDLE_KERNEL_SECONDS = 3600  # a viewer's kernel idle this long is shut down
RENDERED = "crmlib: preheated kernel rendered"  # logged with the notebook path; tests wait for it
STALL_SECONDS = 90.0  # a preheated render unfinished after this long is dropped (see _serve_whole_renders)


@dataclass(frozen=True)
class DashboardInfo:
    """One notebook on the landing page."""

    path: str  # relative to the notebooks folder, with "/" separators
    title: str  # the first markdown heading, else the file name
    description: str = ""  # the first paragraph after the heading


@dataclass(frozen=True)
class ServeOptions:
    """What ``crmlib serve`` was asked for, checked by :func:`check_options`."""

    notebooks: Path
    host: str = "127.0.0.1"
    port: int = 8866
    pool: int = 1
    token: str | None = None
    source: str | None = None

    @property
    def url(self) -> str:
        """The landing page URL as printed: the token, if any, is a placeholder."""
        shown = socket.gethostname() if self.host in ("", "0.0.0.0", "::") else self.host
        if ":" in shown:
            shown = f"[{shown}]"
        return f"http://{shown}:{self.port}/" + ("?token=<token>" if self.token else "")


# ------------------------------------------------------------------------------------------------
# landing page
# ------------------------------------------------------------------------------------------------
def notebook_info(path: Path, root: Path | None = None) -> DashboardInfo:
    """Title and first paragraph of a notebook (its first markdown cell that starts with a heading)."""
    rel = path.relative_to(root).as_posix() if root else path.name
    return _notebook_info(str(path), rel, path.stat().st_mtime_ns if path.exists() else 0)


@lru_cache(maxsize=256)
def _notebook_info(path: str, rel: str, _mtime: int) -> DashboardInfo:
    fallback = DashboardInfo(rel, Path(rel).stem.replace("_", " ").capitalize())
    try:
        cells = json.loads(Path(path).read_text(encoding="utf-8")).get("cells", [])
    except (OSError, ValueError, AttributeError):
        return fallback
    for cell in cells:
        if not isinstance(cell, dict) or cell.get("cell_type") != "markdown":
            continue
        source = cell.get("source", "")
        text = "".join(source) if isinstance(source, list) else str(source)
        lines = [line.strip() for line in text.strip().splitlines()]
        if not lines or not lines[0].startswith("#"):
            continue
        title = lines[0].lstrip("#").strip() or fallback.title
        paragraph: list[str] = []
        for line in lines[1:]:
            if not line:
                if paragraph:
                    break
                continue
            if line.startswith("#"):
                break
            paragraph.append(line)
        return DashboardInfo(rel, title, " ".join(paragraph).replace("`", ""))
    return fallback


def list_dashboards(folder: Path) -> list[DashboardInfo]:
    """Every notebook under ``folder`` (checkpoints and hidden folders skipped), in landing-page order."""
    found = [
        p
        for p in folder.rglob("*.ipynb")
        if not any(part.startswith(".") for part in p.relative_to(folder).parts)
    ]
    infos = [notebook_info(p, folder) for p in found]
    return sorted(infos, key=lambda d: _order_key(d.path))


def _order_key(rel: str) -> tuple[int, str]:
    stem = Path(rel).stem
    return (ORDER.index(stem) if stem in ORDER else len(ORDER), rel)


# ------------------------------------------------------------------------------------------------
# checks
# ------------------------------------------------------------------------------------------------
def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_options(
    *,
    host: str = "127.0.0.1",
    port: int = 8866,
    pool: int = 1,
    token: str | None = None,
    source: str | None = None,
    notebooks: Path | str | None = None,
) -> ServeOptions:
    """Refuse unsafe or impossible settings with a message that says what to do."""
    token = token if token is not None else os.environ.get(TOKEN_ENV) or None
    if token is not None:
        token = token.strip()
        if len(token) < MIN_TOKEN_LENGTH or any(c.isspace() for c in token):
            raise ConfigError(
                f"The serve token must be at least {MIN_TOKEN_LENGTH} characters without spaces. Make one with "
                '`python -c "import secrets; print(secrets.token_urlsafe(24))"` and pass it in '
                f"{TOKEN_ENV} (or --token)."
            )
    if not is_loopback(host) and not token:
        raise ConfigError(
            f"Refusing to listen on {host or 'all addresses'} without a token: anyone who can reach the address "
            f"would see the dashboards. Set {TOKEN_ENV} (or pass --token), or keep the default --host 127.0.0.1."
        )
    if not 1 <= port <= 65535:
        raise ConfigError(f"--port {port} is not a TCP port; use a number from 1024 to 65535, e.g. 8866.")
    if pool < 0:
        raise ConfigError(f"--pool {pool} is negative; use 0 (no preheated kernels) or more.")
    folder = Path(notebooks).expanduser() if notebooks else config.home() / "notebooks"
    if not folder.is_dir():
        raise ConfigError(
            f"Notebooks folder {folder} does not exist. Pass --notebooks DIR or run from the project."
        )
    if not list_dashboards(folder):
        raise ConfigError(
            f"No notebooks (*.ipynb) in {folder}. Pass --notebooks DIR with the dashboards to serve."
        )
    if source is not None:
        sources.resolve(source)  # raises a clear error for 'db' without CRMLIB_DB_URL
    _check_port_free(host, port)
    return ServeOptions(
        notebooks=folder.resolve(), host=host, port=port, pool=pool, token=token, source=source
    )


def _check_port_free(host: str, port: int) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            raise ConfigError(
                f"Cannot listen on {host}:{port} ({exc.strerror}). Another program (maybe another crmlib serve) "
                "uses the port: pick another with --port, or stop that program."
            ) from None


# ------------------------------------------------------------------------------------------------
# the server
# ------------------------------------------------------------------------------------------------
# JupyterLab extensions installed beside crmlib that a dashboard page does not need, so Voila does not
# load them: plotly's own (its front end is a second, 4.8 MB copy of plotly.js; the dashboards draw with
# crmlib.chart_widget.Chart, which uses the page's one copy) and the pygments theme (sources are
# stripped). Measured in Chromium at demo scale 1: first render 3.3-3.8 s -> 3.1-3.4 s (docs/dashboards.md).
UNUSED_LABEXTENSIONS = ("jupyterlab-plotly", "jupyterlab_pygments")


def voila_argv(opts: ServeOptions) -> list[str]:
    """Voila's settings, passed as its command line in this process (they win over any voila.json).

    The token is not here: it goes to the app object directly, so no argument list ever holds it.
    """
    argv = [
        "--no-browser",
        f"--Voila.ip={opts.host}",
        f"--Voila.port={opts.port}",
        "--Voila.port_retries=0",
        f"--Voila.root_dir={opts.notebooks}",
        "--VoilaConfiguration.show_tracebacks=False",
        "--VoilaConfiguration.classic_tree=True",
        "--VoilaConfiguration.template=lab",
        "--VoilaConfiguration.allow_template_override=NO",
        "--VoilaConfiguration.allow_theme_override=NO",
        "--VoilaConfiguration.strip_sources=True",
        f"--VoilaConfiguration.extension_denylist={list(UNUSED_LABEXTENSIONS)!r}",
        f"--MappingKernelManager.cull_idle_timeout={IDLE_KERNEL_SECONDS}",
        "--MappingKernelManager.cull_interval=300",
    ]
    if opts.pool > 0:
        argv += [
            "--VoilaConfiguration.preheat_kernel=True",
            f"--VoilaConfiguration.default_pool_size={opts.pool}",
        ]
    return argv


def kernel_environment(opts: ServeOptions) -> dict[str, str]:
    """Environment variables the server sets for its kernels (inherited; never on a command line)."""
    env = {"CRMLIB_HOME": str(config.home())}
    if opts.source is not None:
        env["CRMLIB_SOURCE"] = opts.source
    return env


def make_app(opts: ServeOptions):
    """A Voila application configured from ``opts`` with the crmlib landing page (not started)."""
    from jinja2 import ChoiceLoader, FileSystemLoader
    from voila.app import Voila

    root = opts.notebooks

    class CrmlibVoila(Voila):
        def setup_template_dirs(self):
            super().setup_template_dirs()
            # our page template first; plotly.js from the installed plotly package at /voila/static/
            self.template_paths = [str(RENDER_TEMPLATES), *self.template_paths]
            self.static_paths = [*self.static_paths, plotly_static_dir()]

        def init_settings(self):
            settings = super().init_settings()
            env = settings["voila_jinja2_env"]
            env.loader = ChoiceLoader([FileSystemLoader(str(TEMPLATES)), env.loader])
            env.globals["crmlib_dashboard"] = lambda rel: notebook_info(root / rel, root)
            env.globals["crmlib_order"] = _content_order
            _serve_whole_renders(self.kernel_manager)
            return settings

    app = CrmlibVoila()
    app.initialize(voila_argv(opts))
    if opts.token:
        app.token = opts.token  # read in init_settings(), at start()
    return app


def plotly_static_dir() -> str:
    """The installed plotly package's folder holding ``plotly.min.js`` (served, never downloaded)."""
    import plotly

    folder = Path(plotly.__file__).parent / "package_data"
    if not (folder / "plotly.min.js").is_file():
        raise ConfigError(f"plotly.min.js is missing from {folder}; reinstall plotly (pip install --force-reinstall plotly).")
    return str(folder)


def _serve_whole_renders(kernel_manager, stall_seconds: float = STALL_SECONDS) -> None:
    """Give a viewer a preheated kernel only once its notebook has been rendered to the end.

    Two Voila 0.5.13 behaviours seen here (ipykernel 7.4, jupyter_client 8.10), both ending in a page
    that never finishes loading: (1) a viewer who takes a preheated kernel while its render is still
    running gets the cells rendered so far and then nothing (45 of 48 kB, reproduced with plain
    ``voila --preheat_kernel``); (2) now and then a preheated render itself stops after a cell that
    writes into an ``Output`` widget, with the kernel idle. So the pool counts only kernels whose render
    has finished (others make Voila start a fresh kernel for the viewer, as without preheating), and a
    render still unfinished after ``stall_seconds`` is dropped: its kernel is shut down and the pool
    refilled.
    """
    pools = getattr(kernel_manager, "_pools", None)
    original = getattr(kernel_manager, "get_rendered_notebook", None)
    if original is None or not isinstance(pools, dict) or not hasattr(kernel_manager, "fill_if_needed"):
        return  # preheating off, or a Voila whose internals differ: leave it alone

    def rendered(item) -> bool:
        if not item.done() or item.cancelled() or item.exception() is not None:
            return False
        task = item.result().get("task")
        return task is not None and task.done() and not task.cancelled() and task.exception() is None

    def ready(name: str) -> list:
        return [item for item in kernel_manager._pools.get(name, []) if rendered(item)]

    async def get_rendered_notebook(notebook_name, *args, **kwargs):
        pool = kernel_manager._pools.get(notebook_name, [])
        done = ready(notebook_name)
        if done and pool and pool[0] is not done[0]:
            pool.remove(done[0])
            pool.insert(0, done[0])
        return await original(notebook_name, *args, **kwargs)

    tracked: set[int] = set()

    def track(name: str) -> None:
        """Log RENDERED when a pool kernel's render finishes (tests and benchmarks wait for it)."""
        for item in kernel_manager._pools.get(name, []):
            if id(item) in tracked:
                continue
            tracked.add(id(item))

            def on_kernel(item, name=name) -> None:
                if item.cancelled() or item.exception() is not None:
                    return

                def on_render(task) -> None:
                    if not task.cancelled() and task.exception() is None:
                        kernel_manager.log.info("%s %s", RENDERED, name)

                item.result()["task"].add_done_callback(on_render)

            item.add_done_callback(on_kernel)

    fill = kernel_manager.fill_if_needed

    def fill_and_track(*args, **kwargs) -> None:
        fill(*args, **kwargs)
        for name in list(kernel_manager._pools):
            track(name)

    kernel_manager.fill_if_needed = fill_and_track
    for name in list(kernel_manager._pools):
        track(name)
    kernel_manager.get_pool_size = lambda notebook_name: len(ready(notebook_name))
    kernel_manager.get_rendered_notebook = get_rendered_notebook

    first_seen: dict[int, float] = {}

    async def drop_stalled() -> None:
        now = time.monotonic()
        alive = set()
        for name, pool in list(kernel_manager._pools.items()):
            for item in list(pool):
                alive.add(id(item))
                if rendered(item) or not item.done():
                    continue
                since = first_seen.setdefault(id(item), now)
                if now - since < stall_seconds:
                    continue
                if item in pool:
                    pool.remove(item)
                first_seen.pop(id(item), None)
                content = item.result() if item.exception() is None else {}
                kernel_id = content.get("kernel_id")
                kernel_manager.log.warning(
                    "preheated render of %s unfinished after %.0f s: kernel %s dropped, pool refilled",
                    name,
                    stall_seconds,
                    kernel_id,
                )
                if content.get("task") is not None:
                    content["task"].cancel()
                if kernel_id and kernel_id in kernel_manager:
                    with contextlib.suppress(Exception):
                        await kernel_manager.shutdown_kernel(kernel_id, now=True)
                kernel_manager.fill_if_needed(delay=0, notebook_name=name)
        for key in set(first_seen) - alive:
            first_seen.pop(key, None)

    from tornado.ioloop import PeriodicCallback

    kernel_manager._crmlib_watchdog = PeriodicCallback(drop_stalled, 10_000)
    kernel_manager._crmlib_watchdog.start()

    # The pool Voila fills while it is being set up (before the event loop runs) stalled on its first
    # render in every run seen here; a pool filled once the loop runs did not. Not started yet, so
    # cancelling them costs nothing.
    from tornado.ioloop import IOLoop

    warnings.filterwarnings(
        "ignore", message=r"coroutine .*_initialize' was never awaited", category=RuntimeWarning
    )
    for name, pool in list(kernel_manager._pools.items()):
        for item in pool:
            item.cancel()
        pool.clear()
        IOLoop.current().add_callback(kernel_manager.fill_if_needed, delay=0, notebook_name=name)


def _content_order(items) -> list[dict]:
    items = list(items)
    return sorted(items, key=lambda c: (c.get("type") != "directory", _order_key(c.get("path", ""))))


def _stop_on_sigint(app) -> None:
    """Ctrl-C stops the server like SIGTERM does, even where SIGINT was ignored (a shell's background job)."""

    def stop(signum, frame):
        loop = getattr(app, "ioloop", None)
        if loop is None:
            raise KeyboardInterrupt
        loop.add_callback_from_signal(loop.stop)

    signal.signal(signal.SIGINT, stop)


def serve(
    *,
    host: str = "127.0.0.1",
    port: int = 8866,
    pool: int = 1,
    token: str | None = None,
    source: str | None = None,
    notebooks: Path | str | None = None,
    echo: Callable[[str], None] | None = None,
) -> None:
    """Run the dashboards until interrupted (Ctrl-C or SIGTERM), then shut every kernel down."""
    opts = check_options(host=host, port=port, pool=pool, token=token, source=source, notebooks=notebooks)
    say = echo or (lambda text: print(text, file=sys.stderr, flush=True))
    os.environ.update(kernel_environment(opts))
    with sources.open(opts.source):  # a clear error now, not in every kernel; creates the default demo once
        pass
    if opts.source is not None and sources.redact(opts.source) != opts.source:
        say(
            "note: the --source URL holds a password, which other users of this machine can see in the process "
            "list; prefer CRMLIB_DB_URL in the environment and --source db."
        )
    shown = sources.redact(opts.source or config.default_source())
    names = ", ".join(d.path for d in list_dashboards(opts.notebooks))
    say(f"crmlib serve: {names} from {opts.notebooks}")
    say(f"data source: {shown}; preheated kernels per dashboard: {opts.pool}")
    app = make_app(opts)
    say(f"dashboards at {opts.url}" + ("  (the token is not shown)" if opts.token else "") + "; Ctrl-C stops")
    _stop_on_sigint(app)
    app.start()  # blocks; Voila stops on Ctrl-C or SIGTERM and shuts its kernels down
    say("crmlib serve: stopped")
