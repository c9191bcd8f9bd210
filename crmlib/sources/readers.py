"""Readers for file-based sources: the DuckDB warehouse and folders of Parquet/CSV files."""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl

from .. import schema
from ..errors import SourceError


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
        return schema.conform(self.con.table(name).pl(lazy=True), name)

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
