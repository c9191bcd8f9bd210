"""Data overview: what a source holds, how it spreads over time, and whether it validates."""

from __future__ import annotations

import polars as pl

from . import schema
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
