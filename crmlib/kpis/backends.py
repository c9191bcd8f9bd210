"""Everything backend-specific of the KPI engine lives here; the rest is narwhals.

A :class:`Backend` hands out canonical tables as narwhals lazy frames, turns small polars frames
(calendars, exchange rates) into lazy frames of the same backend so they can be joined, and collects
several lazy results at once into polars DataFrames.

* ``"polars"``: the source's polars ``LazyFrame`` s, each read once per evaluation (``cache()``) and
  collected together with :func:`polars.collect_all` (a DuckDB file's tables scan through a cursor of
  their own: :func:`crmlib.sources.readers.duckdb_scan`).
* ``"duckdb"``: the same narwhals code over DuckDB relations. A DuckDB file is queried in place through
  a cursor of the reader's (read-only) connection; any other source has the tables it needs (only the
  tables it reads) loaded into an in-memory ``duckdb.connect()``.
"""

from __future__ import annotations

from collections.abc import Sequence

import narwhals as nw
import polars as pl

from .. import schema
from ..errors import ConfigError, suggest

BACKENDS = ("polars", "duckdb")


def _nw_dtype(dtype: str):
    return {
        "str": nw.String(),
        "int": nw.Int64(),
        "float": nw.Float64(),
        "bool": nw.Boolean(),
        "date": nw.Date(),
        "datetime": nw.Datetime("us"),
    }[dtype]


class Backend:
    name = ""

    def __init__(self, crm) -> None:
        self.crm = crm

    def table(self, name: str, columns: Sequence[str] | None = None) -> nw.LazyFrame:
        raise NotImplementedError

    def frame(self, df: pl.DataFrame) -> nw.LazyFrame:
        raise NotImplementedError

    def collect_all(self, frames: Sequence[nw.LazyFrame]) -> list[pl.DataFrame]:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class PolarsBackend(Backend):
    name = "polars"

    def __init__(self, crm) -> None:
        super().__init__(crm)
        self._tables: dict[str, nw.LazyFrame] = {}

    def table(self, name: str, columns: Sequence[str] | None = None) -> nw.LazyFrame:
        if name not in self._tables:
            # one scan per table and collect_all, however many queries read it
            self._tables[name] = nw.from_native(self.crm.table(name).cache())
        lf = self._tables[name]
        return lf.select(*columns) if columns is not None else lf

    def frame(self, df: pl.DataFrame) -> nw.LazyFrame:
        return nw.from_native(df.lazy())

    def collect_all(self, frames: Sequence[nw.LazyFrame]) -> list[pl.DataFrame]:
        if not frames:
            return []
        return pl.collect_all([f.to_native() for f in frames])

    def close(self) -> None:
        self._tables.clear()


class DuckDBBackend(Backend):
    name = "duckdb"

    def __init__(self, crm) -> None:
        super().__init__(crm)
        reader = getattr(crm, "_reader", None)
        con = getattr(reader, "con", None)
        self.in_place = crm.kind == "duckdb" and con is not None
        if self.in_place:
            self.con = con.cursor()
        else:
            import duckdb  # only here: importing it costs start-up time of every crmlib.kpis user

            self.con = duckdb.connect()
        self._tables: dict[str, nw.LazyFrame] = {}

    def table(self, name: str, columns: Sequence[str] | None = None) -> nw.LazyFrame:
        if name not in self._tables:
            self._tables[name] = self._table(name)
        lf = self._tables[name]
        return lf.select(*columns) if columns is not None else lf

    def _table(self, name: str) -> nw.LazyFrame:
        t = schema.table(name)
        if self.in_place and name in self.crm.available_tables:
            lf = nw.from_native(self.con.table(name))
            have = lf.collect_schema()
            casts = [
                nw.col(c.name).cast(_nw_dtype(c.dtype))
                for c in t.columns
                if c.name in have and have[c.name] != _nw_dtype(c.dtype)
            ]
            missing = [nw.lit(None, _nw_dtype(c.dtype)).alias(c.name) for c in t.columns if c.name not in have]
            if casts or missing:
                lf = lf.with_columns(*casts, *missing)
        else:
            lf = self.frame(self.crm.table(name).collect())
        return lf

    def frame(self, df: pl.DataFrame) -> nw.LazyFrame:
        return nw.from_native(self.con.from_arrow(df.to_arrow()))

    def collect_all(self, frames: Sequence[nw.LazyFrame]) -> list[pl.DataFrame]:
        return [f.to_native().pl() for f in frames]

    def close(self) -> None:
        self._tables.clear()
        self.con.close()




def backend_for(crm, name: str) -> Backend:
    if name == "polars":
        return PolarsBackend(crm)
    if name == "duckdb":
        return DuckDBBackend(crm)
    raise ConfigError(f"Unknown backend {name!r}.{suggest(str(name), BACKENDS)} Use one of: {', '.join(BACKENDS)}.")
