"""Column expressions shared by the engine's queries (narwhals): dates, filters, dimension columns."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence

import narwhals as nw

from ..schema import TABLES
from ._periods import ONE_DAY
from .spec import Filter


def dcol(dimension: str) -> str:
    """The internal column of a dimension (renamed to the dimension's name in the result)."""
    return f"_d_{dimension}"


def dtype_of(table: str, column: str) -> str:
    return TABLES[table].column(column).dtype


def as_date(table: str, column: str) -> nw.Expr:
    c = nw.col(column)
    return c.cast(nw.Date()) if dtype_of(table, column) == "datetime" else c


def as_datetime(table: str, column: str) -> nw.Expr:
    c = nw.col(column)
    return c.cast(nw.Datetime("us")) if dtype_of(table, column) == "date" else c


def lit_day(table: str, column: str, day: dt.date) -> nw.Expr:
    """``day`` as a literal comparable with ``table.column`` (midnight for datetimes)."""
    if dtype_of(table, column) == "datetime":
        return nw.lit(dt.datetime.combine(day, dt.time()), nw.Datetime("us"))
    return nw.lit(day, nw.Date())


def in_days(table: str, column: str, lo: dt.date, hi: dt.date) -> nw.Expr:
    """``lo <= column < hi + 1 day``: the rows of days lo..hi, on the column's own type (pushdown)."""
    c = nw.col(column)
    return (c >= lit_day(table, column, lo)) & (c < lit_day(table, column, hi + ONE_DAY))


def all_of(exprs: Iterable[nw.Expr]) -> nw.Expr | None:
    out = None
    for e in exprs:
        out = e if out is None else out & e
    return out


def filter_expr(f: Filter) -> nw.Expr:
    """SQL semantics, except that ne / not_in keep nulls (IS DISTINCT FROM), as the spec says."""
    c = nw.col(f.column)
    v = f.value
    if f.op == "eq":
        return c == v
    if f.op == "ne":
        return (c != v) | c.is_null()
    if f.op == "in":
        return c.is_in(list(v))
    if f.op == "not_in":
        return ~c.is_in(list(v)) | c.is_null()
    if f.op == "gt":
        return c > v
    if f.op == "ge":
        return c >= v
    if f.op == "lt":
        return c < v
    if f.op == "le":
        return c <= v
    if f.op == "is_null":
        return c.is_null()
    if f.op == "not_null":
        return ~c.is_null()
    raise ValueError(f"unknown filter op {f.op}")  # pragma: no cover - the catalog checks ops


def values_expr(column: str, values: Sequence) -> nw.Expr:
    """``column`` is one of ``values`` (None in ``values`` matches empty values)."""
    c = nw.col(column)
    wanted = [v for v in values if v is not None]
    expr = c.is_in(wanted).fill_null(False) if wanted else None
    if len(wanted) < len(values):
        expr = c.is_null() if expr is None else expr | c.is_null()
    return expr
