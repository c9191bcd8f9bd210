"""Money in the base currency: the one conversion rule every area uses.

An amount converts at the latest ``fx_rates`` rate of its currency on or before the row's day; the base
currency (:func:`crmlib.config.base_currency`) needs no rate. A row without a rate is an error
(:class:`~crmlib.errors.CurrencyError` naming the table, currency, dates and rows), never a silent total.
The rule lives in :func:`dense_rates` (one rate per currency and day, carried forward), which the KPI
engine (inside its queries, :mod:`crmlib.kpis._money`), the sales module and :func:`to_base_currency`
all join on.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from . import config, schema
from .errors import CurrencyError

__all__ = ["check_rates", "convert", "dense_rates", "to_base_currency"]

RATE_COLUMNS = ("_cur", "_rday", "_rate")


def dense_rates(fx: pl.DataFrame, lo: dt.date, hi: dt.date, base: str | None = None) -> pl.DataFrame:
    """``_cur, _rday, _rate``: one rate per currency and day ``lo..hi``, the latest ``fx_rates`` rate on
    or before the day (rates carried forward); the base currency is 1 every day. Days before a
    currency's first rate have no row: a join on (currency, day) leaves such an amount without a rate."""
    base = (base or config.base_currency()).upper()
    fx = fx.filter(
        (pl.col("currency") != base) & pl.col("rate_to_base").is_not_null() & (pl.col("date") <= hi)
    ).select(pl.col("currency").alias("_cur"), pl.col("date").alias("_rday"),
             pl.col("rate_to_base").cast(pl.Float64).alias("_rate"), pl.lit(0).alias("_grid"))
    days = pl.DataFrame({"_rday": pl.date_range(lo, hi, eager=True)})
    grid = fx.select(pl.col("_cur").unique()).join(days, how="cross").with_columns(
        pl.lit(None, pl.Float64).alias("_rate"), pl.lit(1).alias("_grid")
    )
    dense = (
        pl.concat([fx, grid.select(fx.columns)])
        .sort("_cur", "_rday", "_grid")  # a rate of the day comes before the day's grid row
        .with_columns(pl.col("_rate").forward_fill().over("_cur"))
        .filter((pl.col("_grid") == 1) & pl.col("_rate").is_not_null())
        .select(*RATE_COLUMNS)
    )
    base_rows = days.select(pl.lit(base).alias("_cur"), "_rday", pl.lit(1.0).alias("_rate"))
    return pl.concat([dense, base_rows])


def to_base_currency(
    lf: pl.LazyFrame,
    fx_rates: pl.LazyFrame | pl.DataFrame | None,
    until: dt.date,
    base: str | None = None,
    *,
    amount: str = "amount",
    currency: str = "currency",
    day: str = "_day",
    out: str = "amount_base",
) -> pl.LazyFrame:
    """Add ``out``: ``amount`` in the base currency at the latest rate on or before the row's ``day``.

    The rates are made dense (:func:`dense_rates`, from the first rate up to ``until``) in a small
    frame, so that the conversion is an equi-join. A row in another currency without a rate gets a null
    ``out`` and ``_no_rate = 1``; :func:`check_rates` turns those into a :class:`CurrencyError`.
    """
    base = (base or config.base_currency()).upper()
    fx = fx_rates.collect() if isinstance(fx_rates, pl.LazyFrame) else fx_rates
    fx = (fx if fx is not None else schema.empty_frame("fx_rates")).filter(
        (pl.col("currency") != base) & pl.col("rate_to_base").is_not_null() & (pl.col("date") <= until)
    )
    if fx.height:
        lo = fx.get_column("date").min()
        dense = (dense_rates(fx, lo, max(until, lo), base).filter(pl.col("_cur") != base)
                 .rename({"_cur": "_rcur"}))
    else:
        dense = pl.DataFrame(schema={"_rcur": pl.String, "_rday": pl.Date, "_rate": pl.Float64})
    if dense.height:
        joined = lf.join(dense.lazy(), left_on=[currency, day], right_on=["_rcur", "_rday"], how="left")
    else:  # no rates at all: only base-currency amounts convert (a join against nothing costs time)
        joined = lf.with_columns(pl.lit(None, pl.Float64).alias("_rate"))
    is_base = pl.col(currency) == base
    return joined.with_columns(
        pl.when(is_base).then(pl.col(amount)).otherwise(pl.col(amount) * pl.col("_rate")).alias(out),
        (~is_base.fill_null(False) & pl.col("_rate").is_null()).cast(pl.Int64).alias("_no_rate"),
    ).drop("_rate")


def check_rates(lf: pl.LazyFrame, n_missing: int, base: str, table: str = "orders",
                currency: str = "currency", day: str = "_day") -> None:
    """Raise a :class:`CurrencyError` describing the rows of ``lf`` without a rate (when ``n_missing`` > 0)."""
    if not n_missing:
        return
    diag = (
        lf.filter(pl.col("_no_rate") == 1)
        .group_by(currency)
        .agg(pl.len().alias("rows"), pl.col(day).min().alias("first"), pl.col(day).max().alias("last"))
        .sort(currency, nulls_last=True)
        .collect()
    )
    lines = []
    for cur, rows, lo, hi in diag.iter_rows():
        what = f"in {cur}" if cur is not None else "with no currency"
        lines.append(f"{table}: {rows:,} row{'s' if rows != 1 else ''} {what} dated {lo} to {hi}")
    raise CurrencyError(
        f"Cannot convert amounts to the base currency {base}: no exchange rate in fx_rates on or before the rows' "
        "dates for\n  - " + "\n  - ".join(lines) + "\nImport fx_rates with a rate for each currency from the first "
        f"date on (`crmlib data import fx.csv --table fx_rates`; rate_to_base = {base} per unit), or set "
        "CRMLIB_BASE_CURRENCY to the currency of your data."
    )


def convert(frame: pl.DataFrame, fx_rates, *, amount: str = "amount", currency: str = "currency",
            day: str = "date", table: str = "table") -> pl.DataFrame:
    """Eager form for small frames: adds ``<amount>_base``; raises CurrencyError for rows without a rate."""
    if frame.height == 0:
        return frame.with_columns(pl.lit(None, pl.Float64).alias(f"{amount}_base"))
    base = config.base_currency()
    lf = frame.lazy().with_columns(pl.col(day).cast(pl.Date).alias("_day"))
    until = frame.select(pl.col(day).cast(pl.Date).max()).item() or dt.date.today()
    out = to_base_currency(lf, fx_rates, until, base, amount=amount, currency=currency, day="_day",
                           out=f"{amount}_base").collect()
    # rows with no amount need no rate
    missing = out.filter((pl.col("_no_rate") == 1) & pl.col(amount).is_not_null()).height
    check_rates(out.lazy().filter(pl.col(amount).is_not_null()), missing, base, table=table, currency=currency)
    return out.drop("_day", "_no_rate")
