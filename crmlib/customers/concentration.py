"""Revenue concentration: the Pareto curve, the share of the top x % of customers, ABC classes.

Customers are ranked by revenue (orders that count, base currency, up to the as-of day), largest first;
ties are broken by ``account_id`` so that the result does not depend on row order.

* ``customer_share`` = rank / n, ``revenue_share`` = cumulative revenue / total (the Pareto curve);
* :func:`top_share`: share of revenue of the top ``ceil(x * n)`` customers;
* ABC classes (80/15/5): a customer is **A** when the revenue of the customers ranked above it is below
  80 % of the total (so A is the smallest top group reaching 80 %), **B** when it is below 95 %, else **C**.
"""

from __future__ import annotations

import math

import polars as pl

from .data import CustomerData, load
from .summary import customer_summary

__all__ = ["ABC_LIMITS", "TOP_SHARES", "abc_summary", "concentration", "pareto", "top_share"]

ABC_LIMITS = (0.80, 0.95)
TOP_SHARES = (0.01, 0.05, 0.10, 0.20, 0.50)


def pareto(data) -> pl.DataFrame:
    """One row per customer, largest revenue first: rank, account_id, revenue, customer_share,
    revenue_share (cumulative), abc."""
    data = data if isinstance(data, CustomerData) else load(data)
    s = customer_summary(data.orders, data.as_of, "D", fx_rates=data.fx_rates, base_currency=data.base_currency)
    return pareto_from_revenue(s.select("account_id", "revenue"))


def pareto_from_revenue(frame: pl.DataFrame) -> pl.DataFrame:
    """:func:`pareto` from a frame of account_id and revenue."""
    n = frame.height
    total = float(frame.get_column("revenue").sum() or 0.0)
    ranked = frame.sort(["revenue", "account_id"], descending=[True, False]).with_columns(
        pl.int_range(1, n + 1, dtype=pl.Int64).alias("rank"),
        pl.col("revenue").cum_sum().alias("_cum"),
    )
    if total > 0:
        share = pl.col("_cum") / total
        before = (pl.col("_cum") - pl.col("revenue")) / total
    else:
        share = before = pl.lit(0.0)
    return ranked.with_columns(
        (pl.col("rank") / n).alias("customer_share"),
        share.alias("revenue_share"),
        pl.when(before < ABC_LIMITS[0] - 1e-12).then(pl.lit("A"))
        .when(before < ABC_LIMITS[1] - 1e-12).then(pl.lit("B"))
        .otherwise(pl.lit("C")).alias("abc"),
    ).select("rank", "account_id", "revenue", "customer_share", "revenue_share", "abc")


def top_share(pareto_frame: pl.DataFrame, share: float = 0.2) -> float:
    """Share of revenue of the top ``ceil(share * n)`` customers (0 when there is no revenue)."""
    if not 0 < share <= 1:
        from ..errors import ConfigError

        raise ConfigError(f"share is a fraction of customers in (0, 1], e.g. 0.2 for the top 20 %, not {share!r}.")
    n = pareto_frame.height
    if n == 0:
        return 0.0
    k = max(1, math.ceil(share * n - 1e-9))
    return float(pareto_frame.get_column("revenue_share")[k - 1])


def concentration(pareto_frame: pl.DataFrame, shares=TOP_SHARES) -> pl.DataFrame:
    """Share of revenue of the top 1, 5, 10, 20 and 50 % of customers: top, customers, revenue_share."""
    n = pareto_frame.height
    return pl.DataFrame({
        "top": list(shares),
        "customers": [max(1, math.ceil(s * n - 1e-9)) if n else 0 for s in shares],
        "revenue_share": [top_share(pareto_frame, s) for s in shares],
    }, schema={"top": pl.Float64, "customers": pl.Int64, "revenue_share": pl.Float64})


def abc_summary(pareto_frame: pl.DataFrame) -> pl.DataFrame:
    """Per ABC class: customers, revenue, customer_share, revenue_share (all three classes, even when empty)."""
    n = pareto_frame.height
    total = float(pareto_frame.get_column("revenue").sum() or 0.0)
    agg = pareto_frame.group_by("abc").agg(pl.len().cast(pl.Int64).alias("customers"),
                                           pl.col("revenue").sum().alias("revenue"))
    return pl.DataFrame({"abc": ["A", "B", "C"]}).join(agg, on="abc", how="left").with_columns(
        pl.col("customers").fill_null(0), pl.col("revenue").fill_null(0.0)
    ).with_columns(
        (pl.col("customers") / n if n else pl.lit(0.0)).alias("customer_share"),
        (pl.col("revenue") / total if total else pl.lit(0.0)).alias("revenue_share"),
    )
