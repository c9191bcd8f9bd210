"""Shared fixtures: a real PostgreSQL server and the demo data (Jupyter folders: see the root conftest.py).

* ``postgres_url``: a throw-away PostgreSQL server (``initdb`` + ``pg_ctl``) in a temporary folder for the
  test session, trust authentication, user ``crm``. When the binaries are missing the tests that need it
  are skipped, except on CI (``CI=true``) where that is a failure.
* ``demo_frames`` / ``demo_warehouse``: the demo simulator at scale 0.05, seed 7 (frames, and a DuckDB file).
* ``edge_frames``: every canonical table with a few rows of awkward values (unicode, quotes, newlines, empty
  strings, nulls, microseconds, large and tiny floats), generated from the schema.
* ``crmlib_home``: a temporary project folder (``parameters/``, ``notebooks/``) as ``CRMLIB_HOME``, for the
  tests that need one; nothing sets ``CRMLIB_HOME`` globally.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
from datetime import date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from crmlib import schema

# ---------------------------------------------------------------------------------------------------
# PostgreSQL
# ---------------------------------------------------------------------------------------------------
PG_MISSING = "PostgreSQL binaries (initdb/pg_ctl) not found; install Debian's postgresql package — CI installs it"


def _pg_tools() -> tuple[str, str] | None:
    """(initdb, pg_ctl): from PATH, else from the newest /usr/lib/postgresql/<version>/bin."""
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if initdb and pg_ctl:
        return initdb, pg_ctl
    folders = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: _version_key(Path(p).parent.name))
    for folder in reversed(folders):
        initdb, pg_ctl = Path(folder, "initdb"), Path(folder, "pg_ctl")
        if initdb.exists() and pg_ctl.exists():
            return str(initdb), str(pg_ctl)
    return None


def _version_key(text: str) -> list[int]:
    return [int(x) if x.isdigit() else 0 for x in text.split(".")]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_pg_user(cmd: list[str]) -> list[str]:
    """initdb and postgres refuse to run as root: run them as the postgres user when we are root."""
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


def _tail(path: Path, n: int = 60) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "(no log)"


@pytest.fixture(scope="session")
def postgres_url(request):
    """``postgresql://crm@127.0.0.1:<port>/postgres`` of a server that lives for the test session."""
    tools = _pg_tools()
    if tools is None:
        if os.environ.get("CI") == "true":
            pytest.fail(PG_MISSING + " (CI=true: PostgreSQL tests must run on CI)")
        pytest.skip(PG_MISSING)
    initdb, pg_ctl = tools
    root = os.geteuid() == 0
    # Not under pytest's tmp folder: that one is private to root and the postgres user could not enter it.
    base = Path(tempfile.mkdtemp(prefix="crmlib-pg-"))
    data, log = base / "data", base / "server.log"
    if root:
        shutil.chown(base, "postgres", "postgres")
    base.chmod(0o700)

    def run(cmd: list[str], what: str) -> None:
        proc = subprocess.run(_as_pg_user(cmd), capture_output=True, text=True)
        if proc.returncode != 0:
            shutil.rmtree(base, ignore_errors=True)
            pytest.fail(
                f"PostgreSQL {what} failed (exit {proc.returncode}): {' '.join(cmd)}\n"
                f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}\nserver log:\n{_tail(log)}"
            )

    run([initdb, "-D", str(data), "-U", "crm", "--auth=trust", "-E", "UTF8", "--no-locale"], "initdb")
    port = None
    for _attempt in range(3):  # the free port can be taken between probing and starting: try again
        port = _free_port()
        opts = f"-c listen_addresses=127.0.0.1 -p {port} -k {base} -c fsync=off -c full_page_writes=off"
        proc = subprocess.run(
            _as_pg_user([pg_ctl, "-D", str(data), "-l", str(log), "-o", opts, "-w", "start"]),
            capture_output=True, text=True,
        )
        if proc.returncode == 0:
            break
    else:
        text = f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}\nserver log:\n{_tail(log)}"
        # a start that timed out may have left a server behind
        subprocess.run(_as_pg_user([pg_ctl, "-D", str(data), "-m", "immediate", "stop"]), capture_output=True)
        shutil.rmtree(base, ignore_errors=True)
        pytest.fail(f"PostgreSQL did not start:\n{text}")

    yield f"postgresql://crm@127.0.0.1:{port}/postgres"

    stop = subprocess.run(
        _as_pg_user([pg_ctl, "-D", str(data), "-m", "fast", "-w", "stop"]),
        capture_output=True, text=True,
    )
    if request.session.testsfailed or stop.returncode != 0:
        reporter = request.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(f"\n--- PostgreSQL test server log (last lines) ---\n{_tail(log)}")
    shutil.rmtree(base, ignore_errors=True)


# ---------------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------------
DEMO_SCALE, DEMO_SEED = 0.05, 7


@pytest.fixture(scope="session")
def demo_frames() -> dict[str, pl.DataFrame]:
    """The demo simulator's canonical frames at scale 0.05, seed 7."""
    from crmlib.sources import demo

    return demo.generate(scale=DEMO_SCALE, seed=DEMO_SEED)


@pytest.fixture(scope="session")
def demo_warehouse(tmp_path_factory) -> Path:
    """A DuckDB warehouse of the demo at scale 0.05, seed 7 (shared by the session: do not modify it)."""
    from crmlib.sources import demo

    path = tmp_path_factory.mktemp("demo") / "crm.duckdb"
    demo.write_demo(path, scale=DEMO_SCALE, seed=DEMO_SEED, progress=False)
    return path


_STRINGS = ("plain", "", 'comma, "quote"\nnew line', "中文 ünïcödé 🚀", "  padded  ", "NULL", "back\\slash;")
_INTS = (0, 1, 42, 2**53 + 1, 7, 1_000_000, 3)
_FLOATS = (0.0, 0.1 + 0.2, 1e-12, 123456789.123456, 1e15 + 0.25, 2.5, 1 / 3)
_DATES = (date(2024, 2, 29), date(1999, 12, 31), date(2038, 1, 19), date(1970, 1, 1), date(2024, 12, 31),
          date(2000, 6, 15), date(2025, 3, 1))
_DATETIMES = (datetime(2024, 2, 29, 23, 59, 59, 999999), datetime(1970, 1, 1), datetime(2099, 12, 31, 0, 0, 0, 1),
              datetime(2024, 6, 1, 12, 30, 0, 500000), datetime(2001, 9, 9, 1, 46, 40, 123456),
              datetime(2024, 11, 3, 1, 30), datetime(2025, 1, 1, 0, 0, 0, 10))
EDGE_ROWS = 7


def _edge_value(table: schema.Table, col: schema.Column, j: int, i: int):
    if col.nullable and (i + j) % 4 == 3:
        return None
    if col.name in table.primary_key:  # unique per row
        if col.dtype == "str":
            return f"K{i}-中,\"{i}\""
        if col.dtype == "date":
            return _DATES[i]
        if col.dtype == "datetime":
            return _DATETIMES[i]
    if col.enum:
        values = schema.ENUMS[col.enum]
        return values[i % len(values)]
    if col.dtype == "str":
        return _STRINGS[(i + j) % len(_STRINGS)]
    if col.dtype == "int":
        return _INTS[(i + j) % len(_INTS)]
    if col.dtype == "float":
        return _FLOATS[(i + j) % len(_FLOATS)]
    if col.dtype == "bool":
        return (i + j) % 2 == 0
    if col.dtype == "date":
        return _DATES[(i + j) % len(_DATES)] + timedelta(days=j)
    if col.dtype == "datetime":
        return _DATETIMES[(i + j) % len(_DATETIMES)] + timedelta(microseconds=j)
    raise AssertionError(col.dtype)


def make_edge_frames() -> dict[str, pl.DataFrame]:
    frames = {}
    for table in schema.TABLES.values():
        data = {
            col.name: [_edge_value(table, col, j, i) for i in range(EDGE_ROWS)] for j, col in enumerate(table.columns)
        }
        frames[table.name] = pl.DataFrame(data, schema=table.polars_schema)
    return frames


@pytest.fixture(scope="session")
def edge_frames() -> dict[str, pl.DataFrame]:
    return make_edge_frames()


@pytest.fixture(scope="session")
def edge_warehouse(tmp_path_factory, edge_frames) -> Path:
    from crmlib.sources.warehouse import write_warehouse

    return write_warehouse(tmp_path_factory.mktemp("edge") / "edge.duckdb", edge_frames)


@pytest.fixture
def crmlib_home(tmp_path, monkeypatch) -> Path:
    """A fresh project folder as CRMLIB_HOME (with parameters/ and notebooks/), no CRMLIB_SOURCE."""
    home = tmp_path / "project"
    for sub in ("parameters", "notebooks"):
        (home / sub).mkdir(parents=True)
    monkeypatch.setenv("CRMLIB_HOME", str(home))
    for var in ("CRMLIB_SOURCE", "CRMLIB_DB_URL", "CRMLIB_OUTPUTS"):
        monkeypatch.delenv(var, raising=False)
    with contextlib.suppress(Exception):
        from crmlib import config

        config._default_home.cache_clear()
    return home
