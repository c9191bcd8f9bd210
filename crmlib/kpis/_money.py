"""Money in the KPI engine: every amount is converted to the base currency before it is aggregated.

The rate of a row is the latest ``fx_rates`` rate of its currency on or before the row's date (the
date of its time column; for snapshots the as-of day of the period): the one rule of
:mod:`crmlib.money`. The rates are first made dense (:func:`crmlib.money.dense_rates`: one row per
currency and day of the windows, rates carried forward), a small polars frame handed to the backend,
so that the conversion is an equi-join on (currency, day) in any backend. The base currency needs no rate. An amount without a rate is never summed: the queries count
such rows, and :func:`check_currencies` raises a :class:`~crmlib.errors.CurrencyError` naming the
table, currency, dates and number of rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import narwhals as nw
import polars as pl

from .. import config
from ..errors import CurrencyError
from ..money import RATE_COLUMNS, dense_rates  # noqa: F401 - the engine's rates are crmlib.money's
from ._exprs import all_of, filter_expr
from .spec import Measure


def with_rates(ctx, lf: nw.LazyFrame, measures: Sequence[Measure], day: str) -> tuple[nw.LazyFrame, dict]:
    """Join the rate of each money measure's currency column at ``day``; {currency column: rate column}."""
    rate_cols: dict[str, str] = {}
    for m in measures:
        if m.money and m.currency_column not in rate_cols:
            rc = f"_rate_{m.currency_column}"
            rates = ctx.rates.select(
                nw.col("_cur").alias(f"_c_{rc}"), nw.col("_rday").alias(f"_d_{rc}"), nw.col("_rate").alias(rc)
            )
            lf = lf.join(rates, left_on=[m.currency_column, day], right_on=[f"_c_{rc}", f"_d_{rc}"], how="left")
            rate_cols[m.currency_column] = rc
    return lf, rate_cols


def diagnose(ctx, table: str, measures, lf, rate_cols, day: str) -> None:
    """Keep a query that describes rows without a rate (run only when a money measure misses one)."""
    for m in measures:
        if not m.money:
            continue
        cond = all_of(filter_expr(f) for f in m.filters)
        rc = rate_cols[m.currency_column]
        miss = nw.col(rc).is_null() if cond is None else (cond & nw.col(rc).is_null()).fill_null(False)
        ctx.diagnostics[m.name] = (
            table,
            m.currency_column,
            lf.filter(miss)
            .group_by(m.currency_column)
            .agg(nw.len().alias("rows"), nw.col(day).min().alias("first"), nw.col(day).max().alias("last")),
        )


def check_currencies(bk, ctx, results: Mapping[str, pl.DataFrame]) -> None:
    """Raise :class:`CurrencyError` when a query met amounts without a rate (``miss__<measure>`` > 0)."""
    missing = [
        col[len("miss__"):]
        for frame in results.values()
        for col in frame.columns
        if col.startswith("miss__") and (frame[col].sum() or 0) > 0
    ]
    if not missing:
        return
    lines = []
    for name in dict.fromkeys(missing):
        table, cur_col, query = ctx.diagnostics[name]
        (diag,) = bk.collect_all([query])
        for cur, rows, lo, hi in diag.sort(cur_col, nulls_last=True).iter_rows():
            what = f"in {cur}" if cur is not None else "with no currency"
            lines.append(f"{table}: {rows} row{'s' if rows != 1 else ''} {what} dated {lo} to {hi} (measure {name})")
    base = config.base_currency()
    raise CurrencyError(
        f"Cannot convert amounts to the base currency {base}: no exchange rate in fx_rates on or before "
        "the rows' dates for\n  - " + "\n  - ".join(lines) + "\nImport fx_rates with a rate for each "
        "currency from the first date on (`crmlib data import fx.csv --table fx_rates`; rate_to_base = "
        f"{base} per unit), or set CRMLIB_BASE_CURRENCY to the currency of your data."
    )
