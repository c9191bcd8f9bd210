"""Everything backend-specific of the KPI engine lives here; the rest is narwhals.

A :class:`Backend` hands out canonical tables as narwhals lazy frames, turns small polars frames
(calendars, exchange rates) into lazy frames of the same backend so they can be joined, and collects
several lazy results at once into polars DataFrames.

* ``"polars"``: the source's polars ``LazyFrame`` s, each read once per evaluation (``cache()``) and
  collected together with :func:`polars.collect_all` (a DuckDB file's tables scan through a cursor of
  their own: :func:`crmlib.sources.readers.duckdb_scan`).
* ``"duckdb"``: the same queries run by DuckDB. A DuckDB file is queried in place through a cursor of
  the reader's (read-only) connection; any other source has the tables it needs (only the tables it
  reads) loaded into an in-memory ``duckdb.connect()``. The queries are SQL text whose expressions are
  the engine's narwhals expressions compiled by narwhals (:mod:`crmlib.kpis._sql`), a statement each,
  two at once on cursors of their own (a DuckDB file); the text is compiled once per request and file
  (``crmlib.kpis.engine.PLANS``). Where this narwhals version cannot compile the expressions, narwhals
  runs the same queries over DuckDB relations, one statement each.
* ``"auto"`` (the default): ``"duckdb"`` when the source is a DuckDB file (the data never leaves
  DuckDB: less CPU time and memory than reading it into polars, see bench/RESULTS.md, "KPI engine"),
  else ``"polars"``.

Both give the same results (tests/kpis check it on hand-made and random data).
"""

from __future__ import annotations

from collections.abc import Sequence

import narwhals as nw
import polars as pl

from .. import schema
from ..errors import ConfigError, suggest

BACKENDS = ("auto", "polars", "duckdb")


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
    sql = False  # queries are SQL text (crmlib.kpis._sql), not narwhals frames

    def __init__(self, crm) -> None:
        self.crm = crm

    def table(self, name: str, columns: Sequence[str] | None = None) -> nw.LazyFrame:
        raise NotImplementedError

    def frame(self, df: pl.DataFrame) -> nw.LazyFrame:
        raise NotImplementedError

    def small(self) -> Backend:
        """The backend for the first, small queries of an evaluation (first and last dates, exchange
        rates, targets): this one, except where another reads them with less work."""
        return self

    def read(self, name: str, columns: Sequence[str], where: nw.Expr | None = None):
        """Some columns of a (small) table, filtered: exchange rates, targets."""
        lf = self.table(name).select(*columns)
        return lf.filter(where) if where is not None else lf

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
        self._small: Backend | None = None

    def small(self) -> Backend:
        """For a DuckDB file, DuckDB: the first and last dates of a table are an aggregate DuckDB computes
        in place, instead of sending the table's date columns to polars (a second read of every fact
        table; 19 KPIs at scale 10: 37 -> 25 ms)."""
        if self._small is None:
            in_place = self.crm.kind == "duckdb" and getattr(getattr(self.crm, "_reader", None), "con", None)
            self._small = DuckDBBackend(self.crm) if in_place else self
        return self._small

    def table(self, name: str, columns: Sequence[str] | None = None) -> nw.LazyFrame:
        if name not in self._tables:
            # one scan per table and collect_all, however many queries read it
            # (reading a DuckDB file once is cheaper than letting each query push its own date range
            # down: measured, 19 KPIs at scale 10)
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
        if self._small is not None and self._small is not self:
            self._small.close()
        self._small = None


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
        self._sql_tables: dict[str, str] = {}
        self._keep: list = []  # relations whose registered data the SQL text reads
        self.shared: dict[str, dict] = {}  # CTEs that the queries of a statement share (crmlib.kpis._sql)
        self.frames: dict[str, object] = {}  # frames registered by name on the cursor (crmlib.kpis._sql)
        self.frame_names: dict[tuple, tuple] = {}  # key -> (name, table) (crmlib.kpis._sql.named_frame)
        self._compiler = None
        from . import _sql

        self.sql = _sql.compiles(self.con)

    @property
    def compiler(self):
        """narwhals expressions to SQL (made when first needed: a compiled plan may be cached)."""
        if self._compiler is None:
            from ._sql import Compiler

            self._compiler = Compiler(self.con)
        return self._compiler

    def plan_token(self) -> tuple | None:
        """What the SQL text of a query depends on besides the request: the file's schema (which
        tables it holds, the types :meth:`table_sql` casts), stood for by the file's stamp (its
        identity, size and modification time: :func:`crmlib.sources.readers._stamp`). None: the text
        names relations of this cursor (tables loaded from another source, the relation path), so it
        cannot be reused."""
        stamp = getattr(getattr(self.crm, "_reader", None), "stamp", None)
        return ("duckdb-sql", stamp) if self.sql and self.in_place and stamp is not None else None

    def register(self, name: str, df) -> None:
        """Make ``df`` (polars or Arrow) a table ``name`` of this cursor's queries (replacing one of
        the same name)."""
        table = df.to_arrow() if isinstance(df, pl.DataFrame) else df
        self.con.register(name, table)
        self.frames[name] = table

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

    def table_sql(self, name: str) -> str:
        """The canonical table ``name`` as SQL: its name, or a query giving it canonical types and columns."""
        if name not in self._sql_tables:
            from ._sql import frame_sql, q

            t = schema.table(name)
            if self.in_place and name in self.crm.available_tables:
                have = nw.from_native(self.con.table(name)).collect_schema()
                c = self.compiler
                casts = [f"{c.expr(nw.col(col.name).cast(_nw_dtype(col.dtype)))} AS {q(col.name)}"
                         for col in t.columns if col.name in have and have[col.name] != _nw_dtype(col.dtype)]
                missing = [f"{c.expr(nw.lit(None, _nw_dtype(col.dtype)))} AS {q(col.name)}"
                           for col in t.columns if col.name not in have]
                text = q(name)
                if casts or missing:
                    star = f"* REPLACE ({', '.join(casts)})" if casts else "*"
                    text = f"(SELECT {', '.join([star, *missing])} FROM {q(name)})"
            else:
                text, rel = frame_sql(self.frame(self.crm.table(name).collect()))
                self._keep.append(rel)
            self._sql_tables[name] = text
        return self._sql_tables[name]

    def read(self, name: str, columns: Sequence[str], where: nw.Expr | None = None):
        if not self.sql:
            return super().read(name, columns, where)
        from ._sql import read

        return read(self, name, columns, where)

    def frame(self, df: pl.DataFrame) -> nw.LazyFrame:
        return nw.from_native(self.con.from_arrow(df.to_arrow()))

    def collect_all(self, frames: Sequence) -> list[pl.DataFrame]:
        from ._sql import Sql, collect_all, frame_sql

        if not self.sql:
            return [f.to_native().pl() for f in frames]
        queries = []
        for f in frames:
            if not isinstance(f, Sql):
                text, rel = frame_sql(f)
                f = Sql(f"SELECT * FROM {text}", tuple(f.columns), (rel,))
            queries.append(f)
        return collect_all(self, queries, self.shared)

    def close(self) -> None:
        self._tables.clear()
        self._sql_tables.clear()
        self._keep.clear()
        self.frames.clear()
        self.con.close()




def backend_for(crm, name: str) -> Backend:
    if name == "auto":
        name = "duckdb" if crm.kind == "duckdb" and getattr(getattr(crm, "_reader", None), "con", None) else "polars"
    if name == "polars":
        return PolarsBackend(crm)
    if name == "duckdb":
        return DuckDBBackend(crm)
    raise ConfigError(f"Unknown backend {name!r}.{suggest(str(name), BACKENDS)} Use one of: {', '.join(BACKENDS)}.")
