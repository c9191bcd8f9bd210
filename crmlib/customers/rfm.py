"""RFM: recency, frequency and monetary value per customer, quintile scores and named segments.

Per customer, from the orders that count up to the as-of day (:mod:`crmlib.customers.data`):

* ``recency_days``: days from the last order to the as-of day (smaller is better);
* ``frequency``: number of orders (every order, not purchase days);
* ``monetary``: total order value in the base currency.

Scores 1-5 (5 best) are quintiles of the share of customers with a strictly worse value:
``score = 1 + floor(5 * worse / n)``, where ``worse`` counts the customers with a longer recency (fewer
orders, less money). With n = 10 distinct values the scores are 1,1,2,2,...,5,5; tied customers share
the score of the group, so the many customers with a single order all get f_score 1.
``fm_score`` = ``round_half_up((f_score + m_score) / 2)``.

Segments, from ``r_score`` (rows) and ``fm_score`` (columns):

==========  =============  ==================  =========  ============
r_score     fm 1           fm 2                fm 3       fm 4-5
==========  =============  ==================  =========  ============
4-5         new            potential loyalist  loyal      champions
3           hibernating    hibernating         loyal      loyal
2           hibernating    hibernating         at risk    at risk / can't lose (fm 5)
1           lost           lost                at risk    at risk / can't lose (fm 5)
==========  =============  ==================  =========  ============

That is: *champions* bought recently, often and for much; *loyal* buy regularly (fm >= 3, r >= 3);
*potential loyalist* recent with some repeat value; *new* recent with little history; *at risk* used
to buy well (fm 3-4) but not lately (r <= 2); *can't lose* were the best (fm 5) and have gone quiet
(r <= 2); *hibernating* neither recent nor valuable (r 2-3, fm <= 2); *lost* the oldest and smallest
(r 1, fm <= 2).
"""

from __future__ import annotations

import polars as pl

from .data import CustomerData, load
from .summary import customer_summary

__all__ = ["SEGMENTS", "quintile_score", "rfm", "rfm_grid", "rfm_segments", "segment_expr"]

SEGMENTS = ("champions", "loyal", "potential loyalist", "new", "at risk", "can't lose", "hibernating", "lost")


def quintile_score(col: str | pl.Expr, descending: bool = False) -> pl.Expr:
    """1 + floor(5 * share of customers with a strictly worse value); ``descending``: smaller values are better."""
    expr = pl.col(col) if isinstance(col, str) else col
    if descending:
        expr = -expr
    worse = expr.rank(method="min") - 1
    return (1 + (worse * 5 / expr.count()).floor()).clip(1, 5).cast(pl.Int8)


def segment_expr(r: str = "r_score", fm: str = "fm_score") -> pl.Expr:
    """The segment of each (r_score, fm_score) pair; see the module doc for the grid."""
    R, FM = pl.col(r), pl.col(fm)
    return (
        pl.when((R >= 4) & (FM >= 4)).then(pl.lit("champions"))
        .when((R >= 4) & (FM == 3)).then(pl.lit("loyal"))
        .when((R >= 4) & (FM == 2)).then(pl.lit("potential loyalist"))
        .when(R >= 4).then(pl.lit("new"))
        .when((R == 3) & (FM >= 3)).then(pl.lit("loyal"))
        .when(R == 3).then(pl.lit("hibernating"))
        .when(FM == 5).then(pl.lit("can't lose"))
        .when(FM >= 3).then(pl.lit("at risk"))
        .when(R == 2).then(pl.lit("hibernating"))
        .otherwise(pl.lit("lost"))
        .cast(pl.Enum(SEGMENTS))
    )


def rfm(data) -> pl.DataFrame:
    """One row per customer: recency_days, frequency, monetary, r/f/m/fm scores, segment, sorted by account_id.

    ``data`` is a :class:`~crmlib.customers.data.CustomerData` (or a Crm: its last order day is the as-of).
    """
    data = data if isinstance(data, CustomerData) else load(data)
    s = customer_summary(data.orders, data.as_of, "D", fx_rates=data.fx_rates,
                         base_currency=data.base_currency).sort("account_id")
    return score(s.select(
        "account_id",
        ((pl.lit(data.as_of) - pl.col("last_order")).dt.total_days()).cast(pl.Int64).alias("recency_days"),
        pl.col("orders").alias("frequency"),
        pl.col("revenue").alias("monetary"),
        "last_order",
    ))


def score(frame: pl.DataFrame) -> pl.DataFrame:
    """Add the RFM scores and segment to a frame with recency_days, frequency and monetary."""
    return frame.with_columns(
        quintile_score("recency_days", descending=True).alias("r_score"),
        quintile_score("frequency").alias("f_score"),
        quintile_score("monetary").alias("m_score"),
    ).with_columns(
        ((pl.col("f_score").cast(pl.Int32) + pl.col("m_score") + 1) // 2).cast(pl.Int8).alias("fm_score"),
    ).with_columns(segment_expr().alias("segment"))


def _rfm_frame(rfm_or_data) -> pl.DataFrame:
    return rfm_or_data if isinstance(rfm_or_data, pl.DataFrame) else rfm(rfm_or_data)


def rfm_segments(rfm_frame) -> pl.DataFrame:
    """Per segment (all eight, in :data:`SEGMENTS` order): customers, revenue, their shares, mean recency and orders.

    ``rfm_frame`` is :func:`rfm`'s result, or the data to compute it from.
    """
    rfm_frame = _rfm_frame(rfm_frame)
    total_c = rfm_frame.height
    total_m = float(rfm_frame.get_column("monetary").sum() or 0.0)
    agg = rfm_frame.group_by("segment").agg(
        pl.len().cast(pl.Int64).alias("customers"),
        pl.col("monetary").sum().alias("revenue"),
        pl.col("recency_days").mean().alias("mean_recency_days"),
        pl.col("frequency").mean().alias("mean_orders"),
    )
    base = pl.DataFrame({"segment": pl.Series(SEGMENTS, dtype=pl.Enum(SEGMENTS))})
    return base.join(agg, on="segment", how="left").with_columns(
        pl.col("customers").fill_null(0),
        pl.col("revenue").fill_null(0.0),
    ).with_columns(
        (pl.col("customers") / total_c if total_c else pl.lit(0.0)).alias("customer_share"),
        (pl.col("revenue") / total_m if total_m else pl.lit(0.0)).alias("revenue_share"),
    )


def rfm_grid(rfm_frame) -> pl.DataFrame:
    """Customers and revenue in each of the 25 (r_score, fm_score) cells, with the cell's segment
    (from :func:`rfm`'s result, or the data to compute it from)."""
    rfm_frame = _rfm_frame(rfm_frame)
    cells = pl.DataFrame({"r_score": [r for r in range(1, 6) for _ in range(5)],
                          "fm_score": [f for _ in range(5) for f in range(1, 6)]},
                         schema={"r_score": pl.Int8, "fm_score": pl.Int8})
    agg = rfm_frame.group_by("r_score", "fm_score").agg(
        pl.len().cast(pl.Int64).alias("customers"), pl.col("monetary").sum().alias("revenue")
    )
    return cells.join(agg, on=["r_score", "fm_score"], how="left").with_columns(
        pl.col("customers").fill_null(0), pl.col("revenue").fill_null(0.0), segment_expr().alias("segment")
    )
