"""The lazy queries of the KPI engine, written once on narwhals for every backend.

Each query reads one fact table once: the columns it needs, joined to the dimension tables of the
requested dimensions (``_d_<name>`` columns), filtered by the user's filters and by the date range of
its windows, then aggregated per window (``wid``) and dimension values. All measures of one table and
time column are computed in the same query, each with its own filters applied inside the aggregation
(``sum(when(filter).then(x))``).

* :func:`flow_query`: rows placed in windows by the date of their time column (a join with a small
  calendar ``_day -> wid``). When windows overlap (cumulative windows, partial comparisons), rows are
  first aggregated per day when every aggregation allows it.
* :func:`snapshot_query`: rows alive at each window's end (a cross join with the window ends).
* :func:`conversion_query`: base entities per window with a converted row within the window days.
* :func:`domain_query`: the dimension values that occur in a table (the rows of empty groups).
* :func:`stats_query`: first and last event date of a table (default period and as-of date).

Money is converted per row (:mod:`crmlib.kpis._money`).
"""

from __future__ import annotations

import datetime as dt
import functools
import operator
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import narwhals as nw
import polars as pl

from . import _sql
from ._exprs import all_of, as_date, as_datetime, dcol, dtype_of, filter_expr, in_days, values_expr
from ._money import diagnose, with_rates
from ._periods import calendar, overlapping
from .spec import Filter, Measure, Snapshot

DAY_US = 86_400_000_000


# --------------------------------------------------------------------------------------------
# Context
# --------------------------------------------------------------------------------------------
@dataclass
class Ctx:
    """What every query needs: the backend, the catalog, the grouping and the filters."""

    bk: object  # backends.Backend
    catalog: object  # catalog.Catalog
    by: tuple[str, ...]
    filters: Mapping[str, tuple]
    rates: nw.LazyFrame | None = None
    diagnostics: dict[str, object] = field(default_factory=dict)

    @property
    def keys(self) -> list[str]:
        return [dcol(d) for d in self.by]


def source(ctx: Ctx, table: str, columns: Iterable[str], where: nw.Expr | None = None,
           extra: Sequence[nw.Expr] = (), distinct: bool = False) -> nw.LazyFrame:
    """``table`` with ``columns``, the ``extra`` expressions and ``_d_<dim>`` for the grouping and filter
    dimensions, each reached through its path (a left join for one hop); ``where`` (on the table's own
    columns) applied before the joins, the user's filters after. ``distinct``: only distinct rows are
    needed (they are taken before the joins)."""
    _, own, hops = _sql.dimension_paths(ctx, table)
    cols = list(dict.fromkeys([*columns, *(via for _, via, _ in hops)]))
    lf = ctx.bk.table(table)
    if where is not None:
        lf = lf.filter(where)
    lf = lf.select(*cols, *[nw.col(c).alias(dcol(d)) for d, c in own.items()], *extra)
    if distinct:
        lf = lf.unique()
    for (target, via, key), items in hops.items():
        right = ctx.bk.table(target).select(
            nw.col(key).alias(f"_k_{via}"), *[nw.col(c).alias(dcol(d)) for d, c in items]
        )
        lf = lf.join(right, left_on=via, right_on=f"_k_{via}", how="left")
    conds = [values_expr(dcol(d), vals) for d, vals in ctx.filters.items()]
    if conds:
        lf = lf.filter(all_of(conds))
    return lf


# --------------------------------------------------------------------------------------------
# Measures as aggregations
# --------------------------------------------------------------------------------------------
@dataclass
class Parts:
    """A measure as partial aggregations (``(column, expression, agg)``) and a final expression."""

    parts: list[tuple[str, nw.Expr, str]]
    final: nw.Expr
    decomposable: bool  # partial aggregates of days can be merged (sum, count, mean, min, max)


def measure_value(m: Measure) -> nw.Expr | None:
    if m.duration is not None:
        d = m.duration
        if d.unit == "days":
            start = as_date(m.table, d.start).cast(nw.Datetime("us"))
            end = as_date(m.table, d.end).cast(nw.Datetime("us"))
            return (end - start).dt.total_microseconds().cast(nw.Float64()) / DAY_US
        start, end = as_datetime(m.table, d.start), as_datetime(m.table, d.end)
        return (end - start).dt.total_microseconds().cast(nw.Float64()) / 3_600_000_000
    if m.column is None:
        return None
    c = nw.col(m.column)
    return c.cast(nw.Float64()) if dtype_of(m.table, m.column) in ("int", "float", "bool") else c


def measure_parts(m: Measure, i: int, rate: str | None) -> Parts:
    p = f"_p{i}_"
    cond = all_of(filter_expr(f) for f in m.filters)
    val = measure_value(m)
    if val is not None and m.money:
        val = val * nw.col(rate)
    v = val if cond is None or val is None else nw.when(cond).then(val)
    if m.agg == "count":
        x = nw.lit(1, nw.Int64()) if cond is None else cond.fill_null(False).cast(nw.Int64())
        out = Parts([(p + "c", x, "sum")], nw.col(p + "c"), True)
    elif m.agg == "sum":
        out = Parts([(p + "s", v, "sum")], nw.col(p + "s"), True)
    elif m.agg == "mean":
        n = nw.col(p + "n")
        out = Parts(
            [(p + "s", v, "sum"), (p + "n", (~v.is_null()).cast(nw.Int64()), "sum")],
            nw.when(n > 0).then(nw.col(p + "s") / n),
            True,
        )
    elif m.agg in ("min", "max"):
        out = Parts([(p + "v", v, m.agg)], nw.col(p + "v"), True)
    elif m.agg == "median":
        out = Parts([(p + "v", v, "median")], nw.col(p + "v"), False)
    elif m.agg == "count_distinct":
        # n_unique counts null as a value: take it off when the group has a null (or a filtered-out row)
        out = Parts(
            [(p + "u", v, "n_unique"), (p + "z", v.is_null().cast(nw.Int64()), "max")],
            nw.col(p + "u") - nw.col(p + "z"),
            False,
        )
    else:  # pragma: no cover - the catalog checks aggs
        raise ValueError(m.agg)
    if m.money:
        miss = nw.col(rate).is_null() if cond is None else (cond & nw.col(rate).is_null())
        out.parts.append((p + "miss", miss.fill_null(False).cast(nw.Int64()), "sum"))
    return out


MERGE = {"sum": "sum", "min": "min", "max": "max"}


def _agg(column: str, how: str) -> nw.Expr:
    return getattr(nw.col(column), how)().alias(column)


def aggregate(lf: nw.LazyFrame, measures: Sequence[Measure], parts: Sequence[Parts], keys: list[str]) -> nw.LazyFrame:
    """Group by ``keys`` and compute every measure: ``m__<name>`` (Float64), ``miss__<name>`` for money."""
    lf = lf.with_columns(*[e.alias(c) for pp in parts for c, e, _ in pp.parts])
    lf = lf.group_by(*keys).agg(*[_agg(c, how) for pp in parts for c, _, how in pp.parts])
    return _finish(lf, measures, parts, keys)


def _finish(lf, measures, parts, keys) -> nw.LazyFrame:
    outs = []
    for i, (m, pp) in enumerate(zip(measures, parts, strict=True)):
        outs.append(pp.final.cast(nw.Float64()).alias(f"m__{m.name}"))
        if m.money:
            outs.append(nw.col(f"_p{i}_miss").cast(nw.Int64()).alias(f"miss__{m.name}"))
    return lf.select(*keys, *outs)


# --------------------------------------------------------------------------------------------
# Queries
# --------------------------------------------------------------------------------------------
def flow_query(
    ctx: Ctx, table: str, time: str, measures: Sequence[Measure], bounds: list[tuple[int, dt.date, dt.date]]
) -> nw.LazyFrame:
    """``wid, _d_*, m__*``: flow measures of ``table`` by ``time`` over each window."""
    lo, hi = min(b[1] for b in bounds), max(b[2] for b in bounds)
    cols = list(dict.fromkeys(c for m in measures for c in m.columns))
    where = in_days(table, time, lo, hi)
    # rows no measure counts are dropped early (each distinct set of filters once)
    distinct = {tuple(map(repr, m.filters)): m.filters for m in measures}
    conds = [all_of(filter_expr(f) for f in fs) for fs in distinct.values()]
    if all(c is not None for c in conds):
        where = where & functools.reduce(operator.or_, conds)  # null: not counted
    if ctx.bk.sql:
        return _sql.flow(ctx, table, time, measures, bounds, cols, where)
    lf = source(ctx, table, cols, where, [as_date(table, time).alias("_day")])
    lf, rate_cols = with_rates(ctx, lf, measures, "_day")
    parts = [measure_parts(m, i, rate_cols.get(m.currency_column)) for i, m in enumerate(measures)]
    diagnose(ctx, table, measures, lf, rate_cols, "_day")
    cal = ctx.bk.frame(calendar(bounds))
    keys = ctx.keys
    if overlapping(bounds) and all(pp.decomposable for pp in parts):
        lf = lf.with_columns(*[e.alias(c) for pp in parts for c, e, _ in pp.parts])
        lf = lf.group_by("_day", *keys).agg(*[_agg(c, how) for pp in parts for c, _, how in pp.parts])
        lf = lf.join(cal, on="_day").group_by("wid", *keys).agg(
            *[_agg(c, MERGE[how]) for pp in parts for c, _, how in pp.parts]
        )
        return _finish(lf, measures, parts, ["wid", *keys])
    return aggregate(lf.join(cal, on="_day"), measures, parts, ["wid", *keys])


def snapshot_query(
    ctx: Ctx, table: str, snap: Snapshot, measures: Sequence[Measure], ends: list[tuple[int, dt.date]]
) -> nw.LazyFrame:
    """``wid, _d_*, m__*``: snapshot measures over the rows alive at each window's end ``_E``: started
    on or before it and not ended on or before it (end reached where ``end_if`` holds)."""
    first, last = min(e for _, e in ends), max(e for _, e in ends)
    cols = list(dict.fromkeys(c for m in measures for c in m.columns))
    start = as_date(table, snap.start)
    where = start <= nw.lit(last, nw.Date())
    alive = start <= nw.col("_E")
    if snap.end:
        end = as_date(table, snap.end)
        stop = all_of(filter_expr(f) for f in snap.end_if) if snap.end_if else ~nw.col(snap.end).is_null()
        where = where & ~(stop & (end < nw.lit(first, nw.Date()))).fill_null(False)
        alive = alive & ~(stop & (end <= nw.col("_E"))).fill_null(False)
    if ctx.bk.sql:
        return _sql.snapshot(ctx, table, snap, measures, ends, cols, where, alive)
    lf = source(ctx, table, cols, where)
    frame = pl.DataFrame({"wid": [w for w, _ in ends], "_E": [e for _, e in ends]},
                         schema={"wid": pl.Int64, "_E": pl.Date})
    lf = lf.join(ctx.bk.frame(frame), how="cross").filter(alive)
    lf, rate_cols = with_rates(ctx, lf, measures, "_E")
    parts = [measure_parts(m, i, rate_cols.get(m.currency_column)) for i, m in enumerate(measures)]
    diagnose(ctx, table, measures, lf, rate_cols, "_E")
    return aggregate(lf, measures, parts, ["wid", *ctx.keys])


def conversion_query(
    ctx: Ctx, base: Measure, converted: Measure, entity: str, window_days: int,
    bounds: list[tuple[int, dt.date, dt.date]],
) -> nw.LazyFrame:
    """``wid, _d_*, base, conv``: distinct base entities whose base time falls in the window, and how
    many of them have a converted row 0..window_days days after their base time."""
    lo, hi = min(b[1] for b in bounds), max(b[2] for b in bounds)
    cond = all_of([in_days(base.table, base.time, lo, hi), ~nw.col(entity).is_null(),
                   *(filter_expr(f) for f in base.filters)])
    ccond = all_of([
        in_days(converted.table, converted.time, lo, hi + dt.timedelta(days=window_days)),
        ~nw.col(entity).is_null(),
        *(filter_expr(f) for f in converted.filters),
    ])
    gap = (nw.col("_tc") - nw.col("_tb")).dt.total_microseconds()
    ok = ((gap >= 0) & (gap <= window_days * DAY_US)).fill_null(False).cast(nw.Int64())
    if ctx.bk.sql:
        return _sql.conversion(ctx, base, converted, entity, bounds, cond, ccond, ok)
    extra = [as_date(base.table, base.time).alias("_day"), as_datetime(base.table, base.time).alias("_tb"),
             nw.col(entity).alias("_ent")]
    rows = (
        source(ctx, base.table, [], cond, extra)
        .join(ctx.bk.frame(calendar(bounds)), on="_day")
        .select("wid", *ctx.keys, "_ent", "_tb")
    )
    conv = (
        ctx.bk.table(converted.table)
        .select(*dict.fromkeys([entity, *converted.columns]))
        .filter(ccond)
        .select(nw.col(entity).alias("_ent"), as_datetime(converted.table, converted.time).alias("_tc"))
    )
    per_entity = (
        rows.join(conv, on="_ent", how="left")
        .with_columns(ok.alias("_ok"))
        .group_by("wid", *ctx.keys, "_ent")
        .agg(nw.col("_ok").max())
    )
    return per_entity.group_by("wid", *ctx.keys).agg(
        nw.len().cast(nw.Float64()).alias("base"), nw.col("_ok").sum().cast(nw.Float64()).alias("conv")
    )


def domain_query(ctx: Ctx, table: str) -> nw.LazyFrame:
    """The combinations of the grouping dimensions' values in ``table`` (all time, after filters)."""
    if ctx.bk.sql:
        return _sql.domain(ctx, table)
    # a grouping, not unique(): on DuckDB relations unique() is a window function
    return source(ctx, table, [], distinct=True).group_by(*ctx.keys).agg(nw.len().alias("_n")).select(*ctx.keys)


def stats_query(ctx: Ctx, table: str, items: Sequence[tuple[str, tuple[Filter, ...]]],
                first: bool = True) -> nw.LazyFrame:
    """``lo, hi``: the first and last date of ``table``'s events: each given time column where its
    filters hold (a planned date, e.g. the expected close of an open deal, is no event: measures count
    closed deals by close date). ``first=False``: only ``hi`` (``lo`` null), when the period is given."""
    conds: dict[str, list] = {}  # time column -> the filters of its items (None: no filter)
    for col, filters in items:
        conds.setdefault(col, []).append(all_of(filter_expr(f) for f in filters))
    firsts, lasts = [], []
    for col, cs in conds.items():
        cond = None if any(c is None for c in cs) else functools.reduce(operator.or_, cs)  # null: no event
        v = nw.col(col) if cond is None else nw.when(cond).then(nw.col(col))
        # the date of the first / last value (cheaper than the first / last of every row's date)
        to_date = dtype_of(table, col) == "datetime"
        firsts.append(v.min().cast(nw.Date()) if to_date else v.min())
        lasts.append(v.max().cast(nw.Date()) if to_date else v.max())
    lo = nw.min_horizontal(*firsts) if first else nw.lit(None, nw.Date())
    hi = nw.max_horizontal(*lasts)
    if ctx.bk.sql:
        return _sql.stats(ctx, table, lo, hi)
    return ctx.bk.table(table).select(lo.alias("lo"), hi.alias("hi"))
