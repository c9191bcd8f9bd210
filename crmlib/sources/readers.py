"""Readers for file-based sources: the DuckDB warehouse and folders of Parquet/CSV files."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import duckdb
import polars as pl

from .. import schema
from ..errors import SourceError


def duckdb_scan(con, name: str) -> pl.LazyFrame:
    """A polars scan of a DuckDB table that opens its own cursor each time it runs.

    (The scans of DuckDB's ``relation.pl(lazy=True)`` share the relation's connection, and DuckDB
    refuses a second call while one runs: the scans of a join, run in parallel, fail.) Columns are
    pushed down, and so is the predicate, as far as DuckDB's own translator turns its conjuncts into
    SQL (:func:`_pushdown`): DuckDB then reads only the rows asked (a date range of a year, not the
    table). polars applies the whole predicate again on what arrives, so a conjunct left out only costs
    time.
    """
    from polars.io.plugins import register_io_source

    cur = con.cursor()
    try:
        rel = cur.table(name)
        schema_ = rel.limit(0).pl().schema
        engine_types = dict(zip(rel.columns, map(str, rel.types), strict=True))
    finally:
        cur.close()

    def source(with_columns, predicate, n_rows, batch_size):
        pushed, predicate = _pushdown(predicate, schema_, engine_types)
        cur = con.cursor()
        try:
            rel = cur.table(name)
            if with_columns is not None:
                rel = rel.project(", ".join('"' + c.replace('"', '""') + '"' for c in with_columns))
            if pushed is not None:
                rel = rel.filter(pushed)
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


def _pushdown(predicate, schema_, engine_types):
    """``(sql, predicate)``: the conjuncts of a polars predicate that DuckDB's polars plugin translates
    to SQL (None: none), and the predicate for polars to apply (a planner-only "dynamic" hint taken out).

    The translation is DuckDB's own (``duckdb.polars_io``), on the columns whose polars type stands for
    their DuckDB type; if that module changes shape, nothing is pushed and polars filters everything.
    """
    if predicate is None:
        return None, None
    try:
        import functools
        import json
        import operator

        from duckdb import polars_io as pio

        comparable = {c: t for c, t in schema_.items() if pio._stands_for(t, engine_types.get(c, ""))}
        tree, had_dynamic = pio._strip_dynamic_predicates(json.loads(predicate.meta.serialize(format="json")))
        if tree is None:
            return None, None
        sql = [e for e in (pio._tree_to_sql_expression(c, comparable) for c in pio._conjuncts(tree)) if e is not None]
        return (functools.reduce(operator.and_, sql) if sql else None), (
            pio._expression_from_tree(tree) if had_dynamic else predicate
        )
    except Exception:  # noqa: BLE001 - any surprise: push nothing, polars filters
        return None, predicate


def _stamp(path: str) -> tuple:
    """What identifies the content of a DuckDB file while a read-only connection holds it (no process
    can write it meanwhile): the file's and its write-ahead log's identity, size and modification
    time. A cache of things derived from the schema (compiled SQL) is keyed by it."""
    out: list = [str(Path(path).resolve())]
    for f in (path, f"{path}.wal"):
        try:
            st = os.stat(f)
        except OSError:
            out.append(None)
        else:
            out.append((st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns))
    return tuple(out)


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
        self.stamp = _stamp(path)
        self._table_names: set[str] | None = None
        self._lock = threading.Lock()

    @property
    def _tables(self) -> set[str]:
        # listed when first needed: the first catalog query of a connection costs ~6 ms, and an
        # evaluation of KPIs whose SQL is already compiled needs no list (crmlib.kpis.engine.PLANS);
        # on a cursor of its own, as the scans and the KPI engine query (maybe from other threads)
        with self._lock:
            if self._table_names is None:
                cur = self.con.cursor()
                try:
                    rows = cur.sql("SELECT table_name FROM information_schema.tables").fetchall()
                finally:
                    cur.close()
                self._table_names = {r[0] for r in rows}
        return self._table_names

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
