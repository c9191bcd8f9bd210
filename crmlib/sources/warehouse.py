"""The embedded DuckDB warehouse: atomic creation and transactional upserts.

Every write here either completes or leaves the previous file as it was:

* :func:`write_warehouse` builds a new file beside the target and renames it into place, so a failed or
  interrupted build (exception, Ctrl-C, kill) never touches an existing warehouse;
* :func:`upsert` runs in one transaction (``INSERT OR REPLACE`` by primary key), rolled back on any error.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

import duckdb
import polars as pl

from .. import schema
from ..errors import SourceError

META_TABLE = "_crmlib_meta"


def _create_schema(con: duckdb.DuckDBPyConnection) -> None:
    for name in schema.LOAD_ORDER:
        con.execute(schema.create_table_sql(name))
    con.execute(f'CREATE TABLE "{META_TABLE}" (key VARCHAR PRIMARY KEY, value VARCHAR)')


def _insert(con: duckdb.DuckDBPyConnection, name: str, frame: pl.DataFrame) -> None:
    if frame.height == 0:
        return
    data = schema.conform(frame, name)  # noqa: F841 - DuckDB reads the local variable by name
    cols = ", ".join(f'"{c}"' for c in schema.table(name).column_names)
    con.execute(f'INSERT INTO "{name}" ({cols}) SELECT {cols} FROM data')


def write_warehouse(
    path: str | Path,
    frames: Mapping[str, pl.DataFrame],
    meta: Mapping[str, str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> Path:
    """Create a complete warehouse at ``path`` from canonical frames, atomically.

    Tables missing from ``frames`` are created empty. The new file replaces ``path`` only once fully
    written and checkpointed; on any failure the temporary file is removed and ``path`` is untouched.
    """
    path = Path(path).expanduser().resolve()
    unknown = set(frames) - set(schema.TABLE_NAMES)
    if unknown:
        raise SourceError(f"Not canonical tables: {', '.join(sorted(unknown))}.")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    tmp.unlink()  # DuckDB wants to create the file itself
    try:
        con = duckdb.connect(str(tmp))
        try:
            _create_schema(con)
            for name in schema.LOAD_ORDER:
                if name in frames:
                    if progress:
                        progress(name)
                    _insert(con, name, frames[name])
            for key, value in (meta or {}).items():
                con.execute(f'INSERT INTO "{META_TABLE}" VALUES (?, ?)', [key, str(value)])
            con.execute("CHECKPOINT")
        finally:
            con.close()
        os.replace(tmp, path)
    except BaseException:
        for leftover in (tmp, Path(str(tmp) + ".wal")):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()
        raise
    return path


def upsert(path: str | Path, frames: Mapping[str, pl.DataFrame]) -> dict[str, int]:
    """Insert or replace rows by primary key in one transaction; returns rows written per table.

    The warehouse must exist (``crmlib data demo`` or a first import creates it).
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise SourceError(f"Warehouse {path} does not exist. Create it first (crmlib data import creates one).")
    written: dict[str, int] = {}
    con = duckdb.connect(str(path))
    try:
        con.execute("BEGIN TRANSACTION")
        try:
            for name in schema.LOAD_ORDER:
                if name not in frames:
                    continue
                data = schema.conform(frames[name], name)  # noqa: F841 - read by DuckDB by name
                cols = ", ".join(f'"{c}"' for c in schema.table(name).column_names)
                con.execute(f'INSERT OR REPLACE INTO "{name}" ({cols}) SELECT {cols} FROM data')
                written[name] = frames[name].height
            con.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(Exception):
                con.execute("ROLLBACK")
            raise
        con.execute("CHECKPOINT")
    finally:
        con.close()
    return written


def create_empty(path: str | Path) -> Path:
    """An empty warehouse with every canonical table (atomic)."""
    return write_warehouse(path, {}, meta={"created_by": "import"})


def read_meta(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    try:
        return dict(con.sql(f'SELECT key, value FROM "{META_TABLE}"').fetchall())
    except duckdb.Error:
        return {}
