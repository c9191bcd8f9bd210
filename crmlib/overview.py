"""Data overview: what a source holds, how it spreads over time, and whether it validates."""

from __future__ import annotations

import datetime as dt

import polars as pl

from . import schema
from .errors import ConfigError
from .sources import Crm


def table_info(crm: Crm) -> pl.DataFrame:
    """One row per canonical table: rows and the first/last date of its time column."""
    return crm.info()


def monthly_volume(crm: Crm, tables: tuple[str, ...] = ("leads", "opportunities", "activities", "cases", "orders")):
    """Records per month and table, by each table's time column (tidy: table, month, records)."""
    parts = []
    for name in tables:
        col = schema.table(name).time_column
        parts.append(
            crm.table(name)
            .group_by(pl.col(col).dt.truncate("1mo").cast(pl.Date).alias("month"))
            .agg(pl.len().cast(pl.Int64).alias("records"))
            .with_columns(pl.lit(name).alias("table"))
            .select("table", "month", "records")
        )
    return pl.concat(pl.collect_all(parts)).sort("table", "month")


def month_records(crm: Crm, point: dict) -> pl.DataFrame:
    """The records behind one point of :func:`monthly_volume`'s chart: the rows of table ``point["trace"]``
    whose time column falls in the month starting ``point["x"]`` (drill-down of the overview)."""
    name = str(point.get("trace"))
    schema.table(name)  # a clear error, with a suggestion, for an unknown table
    try:
        first = dt.date.fromisoformat(str(point.get("x"))[:10]).replace(day=1)
    except ValueError:
        raise ConfigError(f"No month at {point.get('x')!r}; click a point of the records-per-month chart.") from None
    after = (first.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    col = schema.table(name).time_column
    day = pl.col(col).cast(pl.Date)
    return crm.table(name).filter((day >= first) & (day < after)).sort(col).collect()
