"""Export the canonical tables of any source to a folder, a DuckDB file, SQLite or PostgreSQL.

``crmlib data export DEST [--source S] [--format parquet|csv] [--replace]`` calls :func:`export`.

Destinations
    * a folder (a path without a suffix, or an existing folder): one ``<table>.parquet`` per table, or
      ``<table>.csv`` with ``format="csv"``;
    * a DuckDB file (``*.duckdb``, ``*.db``, ``*.ddb`` or ``duckdb:///path``): a complete warehouse (tables not
      exported are created empty), readable by ``crmlib.open``;
    * ``sqlite:///path`` (see :func:`crmlib.sources.sql.sqlite_path`) or a ``*.sqlite`` / ``*.sqlite3`` path;
    * ``postgresql://user@host:port/db`` (``?schema=crm`` or ``CRMLIB_DB_SCHEMA`` for a schema other than
      ``public``, created when missing), or ``"db"`` for ``$CRMLIB_DB_URL``. The password comes from the
      URL in ``CRMLIB_DB_URL`` or from ``PGPASSWORD``; messages never show it.

Database tables are created with :func:`crmlib.schema.create_table_sql` (canonical types, NOT NULL and
primary keys), so a source with duplicate keys fails to export instead of producing a table that the
warehouse would refuse.

Atomicity and ``if_exists``
    * ``"fail"`` (the default): nothing is written when the destination already holds any of the tables
      (a non-empty folder, an existing DuckDB file, an exported table in the database).
    * ``"replace"``: a folder or DuckDB file is replaced as a whole; in SQLite and PostgreSQL only the
      exported tables are dropped and recreated (other tables are left alone).
    * Every destination is written all or nothing: a folder is built beside the target and renamed into
      place, a DuckDB file likewise; SQLite and PostgreSQL load everything in one transaction (PostgreSQL
      through ADBC, which uses ``COPY``). On any error the destination is as it was.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path

import polars as pl

from .. import schema
from ..errors import ConfigError, SourceError
from . import Crm, redact, resolve
from .sql import PgTarget, pg_connect, pg_target, quote_ident, sqlite_path

__all__ = ["FORMATS", "destination", "export"]

FORMATS = ("parquet", "csv")
IF_EXISTS = ("fail", "replace")
_DUCKDB_SUFFIXES = {".duckdb", ".db", ".ddb"}
_SQLITE_SUFFIXES = {".sqlite", ".sqlite3"}
# SQLite stores dates and timestamps as ISO text; these formats sort and parse back exactly (µs precision).
SQLITE_DATE_FORMAT = "%Y-%m-%d"
SQLITE_DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S%.6f"


def destination(dest: str | os.PathLike) -> tuple[str, str]:
    """(kind, location) of an export destination: kind is folder, duckdb, sqlite or postgres.

    Unlike :func:`crmlib.sources.resolve`, a path that does not exist yet and has no suffix is a folder.
    """
    text = str(dest).strip()
    if not text:
        raise ConfigError("The export destination is empty. Give a folder, a .duckdb file, sqlite:///path or a "
                          "postgresql:// URL.")
    low = text.lower()
    if text in {"db", "$CRMLIB_DB_URL", "env:CRMLIB_DB_URL"} or low.startswith(
        ("postgresql://", "postgres://", "postgresql+psycopg://", "sqlite://")
    ):
        resolved = resolve(text)
        return resolved.kind, resolved.location
    if low.startswith("duckdb://"):
        return "duckdb", str(Path(text[len("duckdb://"):]).expanduser().resolve())
    if "://" in text:
        raise ConfigError(
            f"Cannot export to {redact(text)!r}. Give a folder, a .duckdb file, sqlite:///path or "
            "postgresql://user@host/db."
        )
    path = Path(text).expanduser().resolve()
    if path.is_dir():
        return "folder", str(path)
    suffix = path.suffix.lower()
    if suffix in _DUCKDB_SUFFIXES:
        return "duckdb", str(path)
    if suffix in _SQLITE_SUFFIXES:
        return "sqlite", f"sqlite:///{path}"
    if path.exists():
        raise ConfigError(
            f"{path} exists and is not a folder, a .duckdb or a .sqlite file. Choose another destination."
        )
    if suffix in {".parquet", ".csv", ".xlsx", ".json"}:
        raise ConfigError(
            f"Export writes one file per table into a folder, not a single {suffix} file: give a folder such as "
            f"{path.with_suffix('')}."
        )
    return "folder", str(path)


def export(
    crm: Crm,
    dest: str | os.PathLike,
    tables: Iterable[str] | None = None,
    if_exists: str = "fail",
    format: str | None = None,  # noqa: A002 - the CLI option is --format
    progress: Callable[[str], None] | None = None,
) -> dict[str, int]:
    """Write canonical tables of ``crm`` to ``dest``; returns rows written per table (see the module doc).

    ``tables`` defaults to every canonical table (tables the source lacks are exported empty).
    ``format`` (``parquet`` or ``csv``) applies to folders only. ``progress`` is called with each table
    name before it is written.
    """
    if if_exists not in IF_EXISTS:
        raise ConfigError(f"if_exists={if_exists!r} is not supported. Use 'fail' or 'replace'.")
    fmt = (format or "parquet").lower()
    if fmt not in FORMATS:
        raise ConfigError(f"Export format {format!r} is not supported. Use one of: {', '.join(FORMATS)}.")
    names = _table_list(tables)
    kind, location = destination(dest)
    if fmt != "parquet" and kind != "folder":
        raise ConfigError(f"--format {fmt} applies to folder destinations only; {_display(kind, location)} is a "
                          f"{kind} destination.")
    _refuse_same(crm, kind, location)
    frames = _Frames(crm, names, progress)
    if kind == "folder":
        _export_folder(frames, Path(location), fmt, if_exists)
    elif kind == "duckdb":
        _export_duckdb(crm, frames, Path(location), if_exists)
    elif kind == "sqlite":
        _export_sqlite(frames, sqlite_path(location, for_writing=True), if_exists)
    elif kind == "postgres":
        _export_postgres(frames, pg_target(location), if_exists)
    else:  # pragma: no cover - destination() returns only the kinds above
        raise ConfigError(f"Cannot export to a {kind} destination.")
    return {name: frames.rows[name] for name in names}


# ---------------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------------
def _table_list(tables: Iterable[str] | None) -> tuple[str, ...]:
    if tables is None:
        return schema.LOAD_ORDER
    if isinstance(tables, str):
        tables = [t for t in tables.replace(",", " ").split() if t]
    wanted = {schema.table(t).name for t in tables}  # validates names, with a suggestion
    if not wanted:
        raise ConfigError("No tables to export. Name canonical tables, or leave the list out to export all.")
    return tuple(t for t in schema.LOAD_ORDER if t in wanted)


class _Frames(Mapping[str, pl.DataFrame]):
    """The tables to export, collected from the source one at a time, when the writer asks for them."""

    def __init__(self, crm: Crm, names: tuple[str, ...], progress: Callable[[str], None] | None) -> None:
        self.crm, self.names, self.progress = crm, names, progress
        self.rows: dict[str, int] = {}

    def __getitem__(self, name: str) -> pl.DataFrame:
        if name not in self.names:
            raise KeyError(name)
        if self.progress:
            self.progress(name)
        frame = schema.conform(self.crm.table(name).collect(), name)
        self.rows[name] = frame.height
        return frame

    def __contains__(self, name: object) -> bool:  # Mapping's default would collect the table
        return name in self.names

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)

    def __len__(self) -> int:
        return len(self.names)


def _display(kind: str, location: str) -> str:
    return pg_target(location).display if kind == "postgres" else redact(location)


def _refuse_same(crm: Crm, kind: str, location: str) -> None:
    """Exporting a source onto itself would read tables while replacing them."""
    src = crm.resolved
    same = False
    if (kind == "folder" and src.kind == "files") or kind == src.kind == "duckdb":
        same = Path(src.location).resolve() == Path(location).resolve()
    elif kind == src.kind == "sqlite":
        same = sqlite_path(src.location) == sqlite_path(location, for_writing=True)
    elif kind == src.kind == "postgres":
        a, b = pg_target(src.location), pg_target(location)
        same = (a.display, a.schema) == (b.display, b.schema)
    if same:
        raise ConfigError(
            f"The export destination {_display(kind, location)} is the source itself. Export to another place."
        )


def _fail_exists(where: str, what: str) -> SourceError:
    return SourceError(f"{where} already holds {what}. Nothing was written. Use --replace (if_exists='replace') "
                       "to overwrite, or choose another destination.")


# ---------------------------------------------------------------------------------------------------
# folder
# ---------------------------------------------------------------------------------------------------
def _export_folder(frames: _Frames, path: Path, fmt: str, if_exists: str) -> None:
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{path} exists and is not a folder. Choose another destination.")
    existing = sorted(p.name for p in path.iterdir()) if path.is_dir() else []
    if existing:
        if if_exists == "fail":
            raise _fail_exists(f"Folder {path}", f"{len(existing)} file(s) ({', '.join(existing[:5])})")
        table_files = {f"{t}{ext}" for t in schema.TABLE_NAMES for ext in (".parquet", ".csv")}
        others = [n for n in existing if n not in table_files]
        if others:
            raise SourceError(
                f"Folder {path} holds files that are not table exports ({', '.join(others[:5])}); --replace only "
                "replaces a folder of exported tables. Choose an empty or new folder. Nothing was written."
            )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    backup: Path | None = None
    try:
        for name in frames:
            frame = frames[name]
            if fmt == "parquet":
                frame.write_parquet(tmp / f"{name}.parquet")
            else:
                frame.write_csv(tmp / f"{name}.csv")
        if path.exists():
            backup = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
            backup.rmdir()
            os.rename(path, backup)
        os.rename(tmp, path)
    except BaseException:
        if backup is not None and backup.exists() and not path.exists():
            os.rename(backup, path)
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if backup is not None:
        shutil.rmtree(backup, ignore_errors=True)


# ---------------------------------------------------------------------------------------------------
# DuckDB
# ---------------------------------------------------------------------------------------------------
def _export_duckdb(crm: Crm, frames: _Frames, path: Path, if_exists: str) -> None:
    import duckdb

    from .warehouse import write_warehouse

    if path.exists() and if_exists == "fail":
        raise _fail_exists(f"{path}", "a DuckDB database")
    try:
        write_warehouse(path, frames, meta={"created_by": "export", "exported_from": crm.source})
    except duckdb.Error as exc:
        raise SourceError(f"Cannot export to DuckDB file {path}: {exc}. Nothing was written.") from None


# ---------------------------------------------------------------------------------------------------
# SQLite
# ---------------------------------------------------------------------------------------------------
def _sqlite_ready(frame: pl.DataFrame) -> pl.DataFrame:
    """Dates and timestamps as ISO text, booleans as 0/1: what SQLite stores and crmlib reads back exactly."""
    exprs = []
    for col, dtype in frame.schema.items():
        if dtype == pl.Date:
            exprs.append(pl.col(col).dt.to_string(SQLITE_DATE_FORMAT))
        elif isinstance(dtype, pl.Datetime):
            exprs.append(pl.col(col).dt.to_string(SQLITE_DATETIME_FORMAT))
        elif dtype == pl.Boolean:
            exprs.append(pl.col(col).cast(pl.Int8))
        else:
            exprs.append(pl.col(col))
    return frame.select(exprs)


def _export_sqlite(frames: _Frames, path: Path, if_exists: str) -> None:
    existed = path.exists()
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        con = sqlite3.connect(path, isolation_level=None)
    except sqlite3.Error as exc:
        raise SourceError(f"Cannot open SQLite file {path} for writing: {exc}.") from None
    try:
        try:
            con.execute("BEGIN IMMEDIATE")
            present = {
                r[0].lower() for r in con.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")
            }
            clash = [t for t in frames if t in present]
            if clash and if_exists == "fail":
                raise _fail_exists(f"SQLite file {path}", f"table(s) {', '.join(clash)}")
            for name in frames:
                if name in present:
                    con.execute(f"DROP TABLE IF EXISTS {quote_ident(name)}")
                con.execute(schema.create_table_sql(name))
                frame = _sqlite_ready(frames[name])
                cols = ", ".join(quote_ident(c) for c in frame.columns)
                marks = ", ".join("?" for _ in frame.columns)
                con.executemany(
                    f"INSERT INTO {quote_ident(name)} ({cols}) VALUES ({marks})", frame.iter_rows()
                )
            con.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                con.execute("ROLLBACK")
            raise
        finally:
            con.close()
    except sqlite3.Error as exc:
        _drop_new_file(path, existed)
        raise SourceError(f"Cannot export to SQLite file {path}: {exc}. Nothing was written.") from None
    except BaseException:
        _drop_new_file(path, existed)
        raise


def _drop_new_file(path: Path, existed: bool) -> None:
    if existed:
        return
    for leftover in (path, Path(f"{path}-journal"), Path(f"{path}-wal"), Path(f"{path}-shm")):
        with contextlib.suppress(FileNotFoundError):
            leftover.unlink()


# ---------------------------------------------------------------------------------------------------
# PostgreSQL
# ---------------------------------------------------------------------------------------------------
def _export_postgres(frames: _Frames, target: PgTarget, if_exists: str) -> None:
    con = pg_connect(target, autocommit=False)
    step = "starting the transaction"
    try:
        cur = con.cursor()
        try:
            step = f"creating schema {target.schema}"
            if target.schema != "public":
                cur.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(target.schema)}")
            step = "listing existing tables"
            cur.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = $1", (target.schema,)
            )
            present = {r[0] for r in cur.fetchall()}
            clash = [t for t in frames if t in present]
            if clash and if_exists == "fail":
                raise _fail_exists(f"PostgreSQL at {target.display}", f"table(s) {', '.join(clash)}")
            # create_table_sql names tables without a schema: point the search path at ours, for this
            # transaction only.
            cur.execute(f"SET LOCAL search_path TO {quote_ident(target.schema)}")
            for name in frames:
                if name in present:
                    step = f"dropping table {name}"
                    cur.execute(f"DROP TABLE {quote_ident(target.schema)}.{quote_ident(name)}")
                step = f"creating table {name}"
                cur.execute(schema.create_table_sql(name))
                frame = frames[name]
                step = f"loading table {name}"
                if frame.height:
                    cur.adbc_ingest(name, frame.to_arrow(), mode="append", db_schema_name=target.schema)
            step = "committing"
            con.commit()
        finally:
            with contextlib.suppress(Exception):
                cur.close()
    except SourceError:
        with contextlib.suppress(Exception):
            con.rollback()
        raise
    except BaseException as exc:
        with contextlib.suppress(Exception):
            con.rollback()
        if not isinstance(exc, Exception):
            raise
        raise SourceError(
            f"Cannot export to PostgreSQL at {target.display} ({step}): {target.scrub(exc)}. "
            "Nothing was written (the transaction was rolled back)."
        ) from None
    finally:
        with contextlib.suppress(Exception):
            con.close()
