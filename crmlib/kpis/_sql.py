"""The DuckDB backend's queries as SQL text.

The same queries as :mod:`crmlib.kpis._queries`, with the same column expressions: every filter,
measure, date and money expression is the narwhals expression of :mod:`._queries`, :mod:`._exprs` and
:mod:`._money`, compiled to DuckDB SQL by narwhals (:meth:`Compiler.expr`). Only the skeleton of each
query (which table, joins, grouping) is written here, as text. Why not narwhals over DuckDB relations,
as before (and still, when this narwhals version cannot compile the expressions)? Each relation step
is bound by DuckDB when it is made (~0.4 ms a step, ~260 steps for 19 KPIs: a third of the time), and
``unique()`` became a window function. Here an evaluation costs a few binds (each table's schema)
and a statement per query, two running at once (:func:`collect_all`); the plans were checked with
``EXPLAIN`` (filters on dates reach the table scans).

Frames made in Python (calendars, snapshot ends, exchange rates) are Arrow tables registered on the
evaluation's cursor under names of their own (:meth:`crmlib.kpis.backends.DuckDBBackend.register`):
a query names them in its text and carries the calendars and ends it reads (:attr:`Sql.frames`,
registered before it runs); the exchange rates, data, are registered by the engine as :data:`RATES`.
So the text of a query depends only on the request and the file's schema, and the engine reuses it
from one evaluation to the next (see ``crmlib.kpis.engine``: compiling it is most of the Python
time of an evaluation).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import narwhals as nw
import polars as pl

from .. import schema
from ._exprs import all_of, as_date, as_datetime, dcol, filter_expr, values_expr
from ._periods import calendar, overlapping
from .spec import Measure, Snapshot

WID, DAY, CWID = '"wid"', '"_day"', '_c."wid"'
RATES = "_crmlib_rates"  # the dense exchange rates of an evaluation (registered by the engine)


def q(name: str) -> str:
    """A quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


@dataclass
class Sql:
    """A query as SQL text, its output columns, and the relations its text reads (kept alive)."""

    text: str
    columns: tuple[str, ...]
    keep: tuple = field(default=(), repr=False)
    small: bool = False  # a few rows from a cheap query: run together with the other small ones
    frames: tuple = field(default=(), repr=False)  # (name, Arrow table) to register before it runs


class Compiler:
    """Narwhals expressions to DuckDB SQL text, without a relation (and so without a bind)."""

    def __init__(self, con) -> None:
        frame = nw.from_native(con.sql("SELECT 1 AS _one"))._compliant_frame
        self._frame, self._ns = frame, frame.__narwhals_namespace__()

    def expr(self, e: nw.Expr) -> str:
        (out,) = e._to_compliant_expr(self._ns)(self._frame)
        return str(out)

    def works(self) -> bool:
        """Whether this narwhals version compiles the expressions the engine uses (else: relations)."""
        try:
            probe = (
                nw.when(nw.col("a").is_in(["x"]).fill_null(False)).then(nw.col("b").cast(nw.Float64())).sum()
            )
            return "sum" in self.expr(probe) and "contains" in self.expr(nw.col("a").is_in(["x"]))
        except Exception:  # noqa: BLE001 - any failure means: use the relation path
            return False


_COMPILES: bool | None = None


def compiles(con) -> bool:
    """:meth:`Compiler.works`, probed once per process (it depends on the narwhals version only)."""
    global _COMPILES
    if _COMPILES is None:
        _COMPILES = Compiler(con).works()
    return _COMPILES


def named_frame(ctx, key: tuple, make, frames: list) -> str:
    """The SQL name of a small frame a query reads, ``make()`` (the same name for the same ``key``
    in an evaluation: registered once); ``(name, Arrow table)`` is appended to ``frames``."""
    bk = ctx.bk
    if key not in bk.frame_names:
        bk.frame_names[key] = (f"_crmlib_f{len(bk.frame_names)}", make().to_arrow())
    frames.append(bk.frame_names[key])
    return q(bk.frame_names[key][0])


def frame_sql(lf) -> tuple[str, object]:
    """The SQL of a narwhals lazy frame over a DuckDB relation, and the relation (to keep alive)."""
    rel = lf.to_native() if hasattr(lf, "to_native") else lf
    return f"({rel.sql_query()})", rel


def _group(cols: Sequence[str]) -> str:
    return f" GROUP BY {', '.join(cols)}" if cols else ""


_HOLE = "__crmlib_value__"


def _agg(c: Compiler, e: nw.Expr, how: str) -> str:
    """The aggregation ``how`` of ``e`` (narwhals' own SQL for it, around the SQL of ``e``: narwhals
    refuses to aggregate a constant such as the 1 a count sums)."""
    return c.expr(getattr(nw.col(_HOLE), how)()).replace(q(_HOLE), f"({c.expr(e)})")


# --------------------------------------------------------------------------------------------
# The rows of a fact table, with the dimension columns
# --------------------------------------------------------------------------------------------
def source(
    ctx,
    table: str,
    columns: Sequence[str],
    where: nw.Expr | None = None,
    extra: Sequence[tuple[str, nw.Expr]] = (),
    distinct: bool = False,
) -> str:
    """SQL of :func:`crmlib.kpis._queries.source`: ``columns``, ``extra`` (name, expression) and
    ``_d_<dim>`` of the grouping and filter dimensions; ``where`` on the table's own columns, the
    user's filters on the dimension values.

    A table whose dimensions need a join (a rep's team through ``owner_id``) is read through a common
    table expression (:func:`shared`) holding the join, which DuckDB inlines (filters pushed down).
    """
    bk, c = ctx.bk, ctx.bk.compiler
    dims, own, hops = dimension_paths(ctx, table)
    flt = all_of(values_expr(dcol(d), vals) for d, vals in ctx.filters.items())
    extras = [f"{c.expr(e)} AS {q(name)}" for name, e in extra]
    where_sql = c.expr(where) if where is not None else None
    if hops:
        used = set(columns) | _idents(where_sql) | _idents(" ".join(extras))
        name = shared(ctx, table, own, hops, used)
        sel = [*map(q, columns), *[q(dcol(d)) for d in dims], *extras]
        conds = [x for x in (where_sql, c.expr(flt) if flt is not None else None) if x is not None]
        return f"SELECT {'DISTINCT ' if distinct else ''}{', '.join(sel) or '1 AS _one'} FROM {name}" + (
            f" WHERE {' AND '.join(f'({x})' for x in conds)}" if conds else ""
        )
    sel = [*map(q, columns), *[f"{q(col)} AS {q(dcol(d))}" for d, col in own.items()], *extras]
    text = (
        f"SELECT {'DISTINCT ' if distinct else ''}{', '.join(sel) or '1 AS _one'} FROM {bk.table_sql(table)}"
        + (f" WHERE {where_sql}" if where_sql is not None else "")
    )
    if flt is not None:
        text = f"SELECT * FROM ({text}) _f WHERE {c.expr(flt)}"
    return text


def dimension_paths(ctx, table: str):
    """The grouping and filter dimensions; those that are columns of ``table`` ({dim: column}); those
    reached through a foreign key ({(target table, key column, target key): [(dim, column)]})."""
    dims = list(dict.fromkeys([*ctx.by, *ctx.filters]))
    paths = {d: ctx.catalog.dimension(d).paths[table] for d in dims}
    own = {d: p.column for d, p in paths.items() if not p.via}
    hops: dict[tuple[str, str, str], list[tuple[str, str]]] = {}
    for d, p in paths.items():
        if p.via:
            hops.setdefault((p.target, p.via, p.target_key), []).append((d, p.column))
    return dims, own, hops


def _idents(text: str | None) -> set[str]:
    """The quoted identifiers of compiled SQL (the columns it reads; literals are single-quoted)."""
    return {m.replace('""', '"') for m in re.findall(r'"((?:[^"]|"")*)"', text or "")}


def shared(ctx, table: str, own, hops, used: set[str]) -> str:
    """The name of the CTE of ``table``: its columns that some query reads and the dimension columns
    ``_d_<dim>`` (left joins on the foreign keys). :func:`collect_all` writes it."""
    spec = {"table": table, "own": own, "hops": hops}
    same = [n for n, e in ctx.bk.shared.items() if {k: e[k] for k in spec} == spec]
    name = same[0] if same else f"_src{len(ctx.bk.shared)}_{table}"  # another grouping: another CTE
    have = {col.name for col in schema.table(table).columns}
    entry = ctx.bk.shared.setdefault(name, {"cols": set(), **spec})
    entry["cols"].update(used & have)
    return q(name)


def _shared_sql(bk, entry, base: str | None = None) -> str:
    """The rows of ``entry["table"]`` (or of ``base``, a query over it) with the dimension columns."""
    cols = sorted(entry["cols"] | {via for _, via, _ in entry["hops"]})
    sel = [f"_t.{q(x)}" for x in cols] + [f"_t.{q(col)} AS {q(dcol(d))}" for d, col in entry["own"].items()]
    joins = []
    for i, ((target, via, key), items) in enumerate(entry["hops"].items()):
        h = f"_h{i}"
        right = ", ".join(
            [f"{q(key)} AS {q('_k_' + via)}", *[f"{q(col)} AS {q(dcol(d))}" for d, col in items]]
        )
        joins.append(
            f" LEFT JOIN (SELECT {right} FROM {bk.table_sql(target)}) {h} "
            f"ON _t.{q(via)} = {h}.{q('_k_' + via)}"
        )
        sel += [f"{h}.{q(dcol(d))}" for d, _ in items]
    return f"SELECT {', '.join(sel)} FROM {base or bk.table_sql(entry['table'])} _t{''.join(joins)}"


def with_rates(ctx, src: str, measures: Sequence[Measure], day: str) -> tuple[str, dict]:
    """``src`` with the rate of each money measure's currency column at ``day`` (:mod:`._money`; the
    rates are the table :data:`RATES`)."""
    rate_cols: dict[str, str] = {}
    for m in measures:
        if m.money and m.currency_column not in rate_cols:
            rc = f"_rate_{m.currency_column}"
            src = (
                f'SELECT _r.*, _x."_rate" AS {q(rc)} FROM ({src}) _r LEFT JOIN {q(RATES)} _x '
                f'ON _r.{q(m.currency_column)} = _x."_cur" AND _r.{q(day)} = _x."_rday"'
            )
            rate_cols[m.currency_column] = rc
    return src, rate_cols


def diagnose(ctx, table: str, measures, src: str, rate_cols, day: str, frames) -> None:
    """SQL of :func:`crmlib.kpis._money.diagnose` (run only when a money measure misses a rate)."""
    c = ctx.bk.compiler
    for m in measures:
        if not m.money:
            continue
        cond = all_of(filter_expr(f) for f in m.filters)
        rc = rate_cols[m.currency_column]
        miss = nw.col(rc).is_null() if cond is None else (cond & nw.col(rc).is_null()).fill_null(False)
        cur = q(m.currency_column)
        text = (
            f'SELECT {cur}, count(*) AS "rows", min({q(day)}) AS "first", max({q(day)}) AS "last" '
            f"FROM ({src}) _d WHERE {c.expr(miss)} GROUP BY {cur}"
        )
        ctx.diagnostics[m.name] = (
            table,
            m.currency_column,
            Sql(text, (m.currency_column, "rows", "first", "last"), frames=tuple(frames)),
        )


def _finish(ctx, inner: str, measures, parts, keys: list[str], frames) -> Sql:
    c = ctx.bk.compiler
    outs, names = [], []
    for i, (m, pp) in enumerate(zip(measures, parts, strict=True)):
        outs.append(f"CAST({c.expr(pp.final)} AS DOUBLE) AS {q('m__' + m.name)}")
        names.append(f"m__{m.name}")
        if m.money:
            outs.append(f"CAST({q(f'_p{i}_miss')} AS BIGINT) AS {q('miss__' + m.name)}")
            names.append(f"miss__{m.name}")
    text = f"SELECT {', '.join([*map(q, keys), *outs])} FROM ({inner}) _a"
    return Sql(text, (*keys, *names), frames=tuple(frames))


# --------------------------------------------------------------------------------------------
# Queries (see crmlib.kpis._queries for what each computes)
# --------------------------------------------------------------------------------------------
def flow(ctx, table: str, time: str, measures: Sequence[Measure], bounds, cols, where) -> Sql:
    from ._queries import MERGE, measure_parts

    c, keys, frames = ctx.bk.compiler, ctx.keys, []
    src = source(ctx, table, cols, where, [("_day", as_date(table, time))])
    src, rate_cols = with_rates(ctx, src, measures, "_day")
    parts = [measure_parts(m, i, rate_cols.get(m.currency_column)) for i, m in enumerate(measures)]
    diagnose(ctx, table, measures, src, rate_cols, "_day", frames)
    cal = named_frame(ctx, ("calendar", tuple(bounds)), lambda: calendar(bounds), frames)
    qk = [q(k) for k in keys]
    sk = [f"_s.{k}" for k in qk]
    if overlapping(bounds) and all(pp.decomposable for pp in parts):
        day = [f"{_agg(c, e, how)} AS {q(col)}" for pp in parts for col, e, how in pp.parts]
        daily = f"SELECT {', '.join([DAY, *qk, *day])} FROM ({src}) _s{_group([DAY, *qk])}"
        merged = [
            f"{_agg(c, nw.col(col), MERGE[how])} AS {q(col)}" for pp in parts for col, _, how in pp.parts
        ]
        inner = (
            f"SELECT {', '.join([CWID, *sk, *merged])} FROM ({daily}) _s "
            f'JOIN {cal} _c ON _s."_day" = _c."_day"{_group([CWID, *sk])}'
        )
    else:
        aggs = [f"{_agg(c, e, how)} AS {q(col)}" for pp in parts for col, e, how in pp.parts]
        inner = (
            f"SELECT {', '.join([CWID, *sk, *aggs])} FROM ({src}) _s "
            f'JOIN {cal} _c ON _s."_day" = _c."_day"{_group([CWID, *sk])}'
        )
    return _finish(ctx, inner, measures, parts, ["wid", *keys], frames)


def snapshot(
    ctx, table: str, snap: Snapshot, measures, ends: list[tuple[int, dt.date]], cols, where, alive
) -> Sql:
    from ._queries import measure_parts

    c, keys, frames = ctx.bk.compiler, ctx.keys, []
    src = source(ctx, table, cols, where)
    efr = named_frame(ctx, ("ends", tuple(ends)), lambda: pl.DataFrame(
        {"wid": [w for w, _ in ends], "_E": [e for _, e in ends]}, schema={"wid": pl.Int64, "_E": pl.Date}
    ), frames)
    src = f'SELECT _s.*, _e."wid", _e."_E" FROM ({src}) _s JOIN {efr} _e ON {c.expr(alive)}'
    src, rate_cols = with_rates(ctx, src, measures, "_E")
    parts = [measure_parts(m, i, rate_cols.get(m.currency_column)) for i, m in enumerate(measures)]
    diagnose(ctx, table, measures, src, rate_cols, "_E", frames)
    qk = [q(k) for k in ["wid", *keys]]
    aggs = [f"{_agg(c, e, how)} AS {q(col)}" for pp in parts for col, e, how in pp.parts]
    inner = f"SELECT {', '.join([*qk, *aggs])} FROM ({src}) _s{_group(qk)}"
    return _finish(ctx, inner, measures, parts, ["wid", *keys], frames)


def conversion(ctx, base: Measure, converted: Measure, entity: str, bounds, cond, ccond, ok) -> Sql:
    c, keys, frames = ctx.bk.compiler, ctx.keys, []
    extra = [
        ("_day", as_date(base.table, base.time)),
        ("_tb", as_datetime(base.table, base.time)),
        ("_ent", nw.col(entity)),
    ]
    src = source(ctx, base.table, [], cond, extra)
    cal = named_frame(ctx, ("calendar", tuple(bounds)), lambda: calendar(bounds), frames)
    qk = [q(k) for k in keys]
    sk, bk_ = [f"_s.{k}" for k in qk], [f"_b.{k}" for k in qk]
    row_cols = ", ".join([CWID, *sk, '_s."_ent"', '_s."_tb"'])
    ent_cols = ['_b."wid"', *bk_, '_b."_ent"']
    rows = f'SELECT {row_cols} FROM ({src}) _s JOIN {cal} _c ON _s."_day" = _c."_day"'
    conv = (
        f'SELECT {q(entity)} AS "_ent", {c.expr(as_datetime(converted.table, converted.time))} AS "_tc" '
        f"FROM {ctx.bk.table_sql(converted.table)} WHERE {c.expr(ccond)}"
    )
    per_entity = (
        f"SELECT {', '.join(ent_cols)}, "
        f'max({c.expr(ok)}) AS "_ok" FROM ({rows}) _b LEFT JOIN ({conv}) _v ON _b."_ent" = _v."_ent"'
        + _group(ent_cols)
    )
    text = (
        f'SELECT {", ".join([WID, *qk])}, CAST(count(*) AS DOUBLE) AS "base", '
        f'CAST(COALESCE(sum("_ok"), 0) AS DOUBLE) AS "conv" FROM ({per_entity}) _p' + _group([WID, *qk])
    )
    return Sql(text, ("wid", *keys, "base", "conv"), frames=tuple(frames))


def domain(ctx, table: str) -> Sql:
    """The distinct dimension values of ``table``. Through a foreign key, every row is joined (no
    distinct keys first, unlike the polars path): in DuckDB that is as fast where keys repeat (a rep's
    leads: 2.8 vs 3.1 ms at scale 10) and faster where they hardly do (a survey's case: 17 vs 23 ms)."""
    keys = [q(k) for k in ctx.keys]
    _, own, hops = dimension_paths(ctx, table)
    if not hops:
        text = f"SELECT DISTINCT {', '.join(keys)} FROM ({source(ctx, table, [], distinct=True)}) _s"
        return Sql(text, tuple(ctx.keys))
    cols = sorted({*own.values(), *(via for _, via, _ in hops)})
    base = f"(SELECT {', '.join(map(q, cols))} FROM {ctx.bk.table_sql(table)})"
    rows = _shared_sql(ctx.bk, {"table": table, "own": own, "hops": hops, "cols": set()}, base)
    flt = all_of(values_expr(dcol(d), vals) for d, vals in ctx.filters.items())
    where = f" WHERE {ctx.bk.compiler.expr(flt)}" if flt is not None else ""
    return Sql(f"SELECT DISTINCT {', '.join(keys)} FROM ({rows}) _s{where}", tuple(ctx.keys))


def stats(ctx, table: str, lo: nw.Expr, hi: nw.Expr) -> Sql:
    c = ctx.bk.compiler
    text = f'SELECT {c.expr(lo)} AS "lo", {c.expr(hi)} AS "hi" FROM {ctx.bk.table_sql(table)}'
    return Sql(text, ("lo", "hi"), small=True)


def read(bk, table: str, columns: Sequence[str], where: nw.Expr | None = None) -> Sql:
    """Some columns of a (small) table: exchange rates, targets."""
    text = f"SELECT {', '.join(map(q, columns))} FROM {bk.table_sql(table)}"
    if where is not None:
        text += f" WHERE {bk.compiler.expr(where)}"
    return Sql(text, tuple(columns), small=True)


# --------------------------------------------------------------------------------------------
# Running them
# --------------------------------------------------------------------------------------------
PER_STATEMENT = 1  # queries run together in one statement (see collect_all)
WORKERS = 2  # statements run at once, each on a cursor of its own (see collect_all)


def collect_all(bk, queries: Sequence[Sql], shared: dict | None = None) -> list[pl.DataFrame]:
    """Run the queries, :data:`PER_STATEMENT` to a statement (several in one ``UNION ALL BY NAME``
    statement: each query's columns renamed apart, so that no types mix; the CTEs they read,
    :func:`shared`, at its head), :data:`WORKERS` statements at once (a thread and a cursor each:
    DuckDB runs a statement without holding the GIL), each worker taking the next statement. The
    small ones (``small``: first and last dates, exchange rates, targets) go one statement per worker.

    Why: the tables are small (one or two of DuckDB's row groups), so one query keeps about one core
    busy, and a statement has serial parts (parsing, planning, converting the result). Measured on a
    machine of 2 cores at scale 10 (19 KPIs, 14 queries; best of 25, the machine shared): one
    statement at a time, two queries each 108-150 ms, all 14 in one 94-148 ms; two statements at once
    74-81 ms whether they hold one, two, three or seven queries. Peak memory grows with the queries
    of a statement (one: +0, seven: about +25 MB), hence one.
    """
    shared = shared or {}
    # cursors of their own only for a file queried in place, by queries that read no relation (frames
    # loaded from another source, relations, are the evaluation's cursor's)
    workers = WORKERS if getattr(bk, "in_place", False) and not any(sq.keep for sq in queries) else 1
    small = [i for i, sq in enumerate(queries) if sq.small]
    rest = [i for i, sq in enumerate(queries) if not sq.small]
    statements = [
        *_deal(small, min(workers, len(small))),  # the small ones: one statement per worker
        *_deal(rest, -(-len(rest) // PER_STATEMENT)),
    ]
    out: dict[int, pl.DataFrame] = {}
    results = _run_all(bk, [[queries[i] for i in idx] for idx in statements], shared, min(workers, len(statements)))
    for idx, frames in zip(statements, results, strict=True):
        out.update(zip(idx, frames, strict=True))
    return [out[i] for i in range(len(queries))]


def _deal(items: list[int], n: int) -> list[list[int]]:
    """``items`` dealt out in turn to ``n`` groups (neighbours, often of the same table, apart)."""
    return [items[k::n] for k in range(n)] if items else []


class _Cursor:
    """Another cursor of a backend's connection, with the frames it registered (for a worker)."""

    def __init__(self, bk) -> None:
        self.con, self.frames, self.in_place = bk.con.cursor(), {}, bk.in_place
        if RATES in bk.frames:
            self.register(RATES, bk.frames[RATES])

    def register(self, name: str, table) -> None:
        self.con.register(name, table)
        self.frames[name] = table


def _run_all(bk, statements: list[list[Sql]], shared: dict, workers: int) -> list[list[pl.DataFrame]]:
    """The results of each statement's queries, ``workers`` statements running at once (the calling
    thread on the backend's cursor, the others on cursors of their own), each taking the next one."""
    if workers <= 1:
        return [_run(bk, qs, shared) for qs in statements]
    import threading

    for entry in shared.values():  # every CTE's text written here, not in the workers
        if "sql" not in entry:
            entry["sql"] = _shared_sql(bk, entry)
    results: list = [None] * len(statements)
    todo = iter(range(len(statements)))
    lock = threading.Lock()
    errors: list[BaseException] = []

    def work(cur) -> None:
        try:
            while not errors:
                with lock:
                    i = next(todo, None)
                if i is None:
                    return
                results[i] = _run(cur, statements[i], shared)
        except BaseException as exc:  # noqa: BLE001 - raised again by the calling thread
            errors.append(exc)

    curs = [_Cursor(bk) for _ in range(workers - 1)]
    threads = [threading.Thread(target=work, args=(c,), daemon=True) for c in curs]
    try:
        for t in threads:
            t.start()
        work(bk)
        for t in threads:
            t.join()
    finally:
        for c in curs:
            c.con.close()
    if errors:
        raise errors[0]
    return results


def _run(bk, queries: Sequence[Sql], shared: dict) -> list[pl.DataFrame]:
    """One statement for ``queries``, split back into one polars frame per query."""
    for sq in queries:
        for name, table in sq.frames:
            # names are unique within a plan, not across plans: a cursor that ran another plan's
            # queries may hold another frame under the same name
            if bk.frames.get(name) is not table:
                bk.register(name, table)
    # a CTE's text is final once every query of the evaluation is written (they are, before any
    # runs): kept in its entry, which a cached plan shares (crmlib.kpis.engine.PLANS)
    ctes = []
    for name, entry in shared.items():
        if any(q(name) in sq.text for sq in queries):
            if "sql" not in entry:
                entry["sql"] = _shared_sql(bk, entry)
            ctes.append(f"{q(name)} AS NOT MATERIALIZED ({entry['sql']})")
    head = f"WITH {', '.join(ctes)}\n" if ctes else ""
    if len(queries) == 1:
        return [bk.con.sql(head + queries[0].text).pl()]
    branches = []
    for i, sq in enumerate(queries):
        cols = ", ".join(f"{q(col)} AS {q(f'_q{i}_{col}')}" for col in sq.columns)
        branches.append(f'SELECT {i} AS "_q"{", " + cols if cols else ""} FROM ({sq.text}) _b{i}')
    df = bk.con.sql(head + "\nUNION ALL BY NAME\n".join(branches)).pl()
    parts = df.partition_by("_q", as_dict=True)
    return [
        parts.get((i,), df.clear()).select([pl.col(f"_q{i}_{col}").alias(col) for col in sq.columns])
        for i, sq in enumerate(queries)
    ]
