"""Readers for file-based sources: the DuckDB warehouse and folders of Parquet/CSV files."""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl

from .. import schema
from ..errors import SourceError


def duckdb_scan(con, name: str) -> pl.LazyFrame:
    """A polars scan of a DuckDB table that opens its own cursor each time it runs.

    (The scans of DuckDB's ``relation.pl(lazy=True)`` share the relation's connection, and DuckDB
    refuses a second call while one runs: the scans of a join, run in parallel, fail.) Columns are
    pushed down; polars applies the predicate.
    """
    from polars.io.plugins import register_io_source

    cur = con.cursor()
    try:
        schema_ = cur.table(name).limit(0).pl().schema
    finally:
        cur.close()

    def source(with_columns, predicate, n_rows, batch_size):
        cur = con.cursor()
        try:
            rel = cur.table(name)
            if with_columns is not None:
                rel = rel.project(", ".join('"' + c.replace('"', '""') + '"' for c in with_columns))
            if n_rows is not None:
                rel = rel.limit(n_rows)
            reader = rel.to_arrow_reader() if batch_size is None else rel.to_arrow_reader(batch_size)
            for batch in iter(reader.read_next_batch, None):
                frame = pl.from_arrow(batch)
                # lazily, so a constant predicate (pl.lit(True)) broadcasts like any other
                yield frame.lazy().filter(predicate).collect() if predicate is not None else frame
        except StopIteration:
            return
        finally:
            cur.close()

    return register_io_source(source, schema=schema_)


class DuckDBReader:
    """Reads canonical tables from a DuckDB file, read-only, as lazy frames."""

    def __init__(self, path: str) -> None:
        self.path = path
        if not Path(path).exists():
            raise SourceError(f"DuckDB file {path} does not exist. Create it with `crmlib data demo --out {path}`.")
        try:
            self.con = duckdb.connect(path, read_only=True)
        except duckdb.Error as exc:
            raise SourceError(
                f"Cannot open DuckDB file {path}: {exc}. If another process is writing to it, wait for it to finish; "
                "if the file is not a DuckDB database, point CRMLIB_SOURCE elsewhere."
            ) from None
        self._tables = {r[0] for r in self.con.sql("SELECT table_name FROM information_schema.tables").fetchall()}

    def available(self) -> tuple[str, ...]:
        return tuple(t for t in schema.TABLE_NAMES if t in self._tables)

    def scan(self, name: str) -> pl.LazyFrame:
        if name not in self._tables:
            return schema.empty_frame(name).lazy()
        return schema.conform(duckdb_scan(self.con, name), name)

    def close(self) -> None:
        self.con.close()


class FolderReader:
    """Reads ``<table>.parquet`` or ``<table>.csv`` files from a folder (Parquet wins when both exist)."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)
        self._files: dict[str, Path] = {}
        for name in schema.TABLE_NAMES:
            for ext in (".parquet", ".csv"):
                f = self.path / f"{name}{ext}"
                if f.exists():
                    self._files[name] = f
                    break
        if not self._files:
            raise SourceError(
                f"Folder {self.path} holds no file named after a canonical table (e.g. opportunities.parquet or "
                f"accounts.csv). Expected names: {', '.join(schema.TABLE_NAMES)}."
            )

    def available(self) -> tuple[str, ...]:
        return tuple(self._files)

    def scan(self, name: str) -> pl.LazyFrame:
        f = self._files.get(name)
        if f is None:
            return schema.empty_frame(name).lazy()
        if f.suffix == ".parquet":
            return schema.conform(pl.scan_parquet(f), name)
        return schema.conform(pl.scan_csv(f, infer_schema=False), name)

    def close(self) -> None:
        pass
