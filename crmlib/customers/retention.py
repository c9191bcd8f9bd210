"""Retention: order cohorts by first-order month, and monthly subscription churn, GRR, NRR and logo churn.

Order cohorts (:func:`retention_matrix`)
========================================
A customer's cohort is the month of their first order that counts. For each cohort and each month
``months_since`` = 0, 1, 2, ... after it (up to the as-of month, which may be partial): ``customers`` who
ordered in that month (0 when nobody did), ``revenue`` of their orders (base currency), ``retention`` =
customers / cohort size and ``revenue_retention`` = revenue / the cohort's revenue in month 0.

Subscriptions (:func:`subscription_retention`)
==============================================
A subscription is active at the start of day ``d`` when ``start_date < d`` and (``end_date`` is empty or
``end_date >= d``): it started before that day and has not ended yet (``end_date`` is the cancellation
day). For each complete month m (first day ``s``, first day of the next month ``s'``; the last day of the
month on or before the as-of day) and each account, ``open`` = its MRR at ``s`` and ``close`` = its MRR at
``s'``, both converted to the base currency at the rate of ``s`` (exchange-rate moves are not churn). Then

* opening MRR = sum of open; new MRR = sum of close over accounts with open = 0;
* expansion = sum of max(close - open, 0) and contraction = sum of max(open - close, 0) over accounts
  with open > 0 and close > 0; churned MRR = sum of open over accounts with open > 0 and close = 0;
* **GRR** (gross revenue retention) = (opening - contraction - churned) / opening
  = sum of min(open, close) / sum of open, over accounts with open > 0 (at most 1);
* **NRR** (net revenue retention) = (opening + expansion - contraction - churned) / opening
  = sum of close / sum of open, over accounts with open > 0 (new accounts excluded);
* **logo churn** = accounts with open > 0 and close = 0 / accounts with open > 0;
* **subscription churn rate** = subscriptions active at s and not at s' / subscriptions active at s.

Rates are null in a month with nothing open (never a division by zero).
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from .data import CustomerData, check_rates, load, to_base_currency
from .summary import purchase_days

__all__ = ["retention_matrix", "subscription_retention"]


def _month_index(col: str) -> pl.Expr:
    return pl.col(col).dt.year().cast(pl.Int32) * 12 + pl.col(col).dt.month().cast(pl.Int32) - 1


def retention_matrix(data) -> pl.DataFrame:
    """Tidy cohort matrix: cohort (first day of the month), months_since, customers, revenue, cohort_size,
    retention, revenue_retention; sorted by cohort and months_since."""
    data = data if isinstance(data, CustomerData) else load(data)
    days = purchase_days(data.orders, data.as_of, data.fx_rates, data.base_currency)
    first = days.group_by("account_id").agg(pl.col("day").min().dt.truncate("1mo").alias("cohort"))
    monthly = (
        days.join(first, on="account_id")
        .with_columns(pl.col("day").dt.truncate("1mo").alias("month"))
        .group_by("cohort", "month")
        .agg(pl.col("account_id").n_unique().cast(pl.Int64).alias("customers"), pl.col("value").sum().alias("revenue"),
             pl.col("_no_rate").sum().alias("_no_rate"))
        .with_columns((_month_index("month") - _month_index("cohort")).cast(pl.Int64).alias("months_since"))
    )
    out = monthly.collect()
    _raise_missing_rates(data, int(out.get_column("_no_rate").sum() or 0))
    m0 = out.filter(pl.col("months_since") == 0).select(
        "cohort", pl.col("customers").alias("cohort_size"), pl.col("revenue").alias("_rev0")
    )
    # every month from the cohort's to the as-of month, 0 where nobody ordered
    last = data.as_of.year * 12 + data.as_of.month - 1
    grid = m0.with_columns(
        pl.int_ranges(0, last - _month_index("cohort") + 1, dtype=pl.Int64).alias("months_since")
    ).explode("months_since")
    return (
        grid.join(out.select("cohort", "months_since", "customers", "revenue"), on=["cohort", "months_since"],
                  how="left")
        .with_columns(pl.col("customers").fill_null(0), pl.col("revenue").fill_null(0.0))
        .with_columns(
            (pl.col("customers") / pl.col("cohort_size")).alias("retention"),
            pl.when(pl.col("_rev0") > 0).then(pl.col("revenue") / pl.col("_rev0")).otherwise(None)
            .alias("revenue_retention"),
        )
        .select("cohort", "months_since", "customers", "revenue", "cohort_size", "retention", "revenue_retention")
        .sort("cohort", "months_since")
    )


def _raise_missing_rates(data: CustomerData, missing: int) -> None:
    if missing:
        from .data import kept_orders

        lf = kept_orders(data.orders, data.as_of).with_columns(pl.col("ordered_at").dt.date().alias("_day"))
        check_rates(to_base_currency(lf, data.fx_rates, data.as_of, data.base_currency), missing, data.base_currency)


def _months(first: dt.date, as_of: dt.date) -> pl.DataFrame:
    """Complete months from the month of ``first`` to the last month ending on or before ``as_of``."""
    start = first.replace(day=1)
    nxt = (as_of + dt.timedelta(days=1)).replace(day=1)  # first month not complete on as_of
    if nxt <= start:
        return pl.DataFrame(schema={"month": pl.Date, "next": pl.Date})
    months = pl.date_range(start, nxt, interval="1mo", eager=True)
    return pl.DataFrame({"month": months[:-1], "next": months[1:]})


def subscription_retention(data) -> pl.DataFrame:
    """Monthly MRR movements, GRR, NRR, logo churn and subscription churn (definitions in the module doc)."""
    data = data if isinstance(data, CustomerData) else load(data)
    subs = data.subscriptions.filter(pl.col("start_date") <= data.as_of)
    first = subs.select(pl.col("start_date").min()).collect().item()
    empty = pl.DataFrame(schema={
        "month": pl.Date, "accounts_open": pl.Int64, "subscriptions_open": pl.Int64, "opening_mrr": pl.Float64,
        "new_mrr": pl.Float64, "expansion_mrr": pl.Float64, "contraction_mrr": pl.Float64,
        "churned_mrr": pl.Float64, "closing_mrr": pl.Float64, "subscriptions_churned": pl.Int64,
        "accounts_churned": pl.Int64, "subscription_churn_rate": pl.Float64, "logo_churn_rate": pl.Float64,
        "grr": pl.Float64, "nrr": pl.Float64,
    })
    if first is None:
        return empty
    months = _months(first, data.as_of)
    if months.height == 0:
        return empty

    def active(at: str) -> pl.Expr:
        return (pl.col("start_date") < pl.col(at)) & (pl.col("end_date").is_null() | (pl.col("end_date") >= pl.col(at)))

    grid = (
        subs.join(months.lazy(), how="cross")
        .with_columns(active("month").alias("is_open"), active("next").alias("is_close"), pl.col("month").alias("_day"))
        .filter(pl.col("is_open") | pl.col("is_close"))
    )
    grid = to_base_currency(grid, data.fx_rates, data.as_of, data.base_currency, amount="mrr", out="mrr_base")
    per_account = grid.group_by("month", "account_id").agg(
        pl.col("mrr_base").filter(pl.col("is_open")).sum().alias("open"),
        pl.col("mrr_base").filter(pl.col("is_close")).sum().alias("close"),
        pl.col("is_open").sum().cast(pl.Int64).alias("subs_open"),
        (pl.col("is_open") & ~pl.col("is_close")).sum().cast(pl.Int64).alias("subs_churned"),
        pl.col("_no_rate").sum().alias("_no_rate"),
    )
    had, has = pl.col("open") > 0, pl.col("close") > 0
    monthly = per_account.group_by("month").agg(
        had.sum().cast(pl.Int64).alias("accounts_open"),
        pl.col("subs_open").sum().alias("subscriptions_open"),
        pl.col("open").sum().alias("opening_mrr"),
        pl.col("close").filter(~had).sum().alias("new_mrr"),
        (pl.col("close") - pl.col("open")).clip(lower_bound=0).filter(had & has).sum().alias("expansion_mrr"),
        (pl.col("open") - pl.col("close")).clip(lower_bound=0).filter(had & has).sum().alias("contraction_mrr"),
        pl.col("open").filter(had & ~has).sum().alias("churned_mrr"),
        pl.col("close").sum().alias("closing_mrr"),
        pl.col("subs_churned").sum().alias("subscriptions_churned"),
        (had & ~has).sum().cast(pl.Int64).alias("accounts_churned"),
        pl.col("close").filter(had).sum().alias("_retained_net"),
        pl.min_horizontal("open", "close").filter(had).sum().alias("_retained_gross"),
        pl.col("_no_rate").sum().alias("_no_rate"),
    )
    out = months.select("month").join(monthly.collect(), on="month", how="left")
    missing = int(out.get_column("_no_rate").sum() or 0)
    if missing:
        check_rates(grid, missing, data.base_currency, table="subscriptions")
    counts = ["accounts_open", "subscriptions_open", "subscriptions_churned", "accounts_churned"]
    money = ["opening_mrr", "new_mrr", "expansion_mrr", "contraction_mrr", "churned_mrr", "closing_mrr",
             "_retained_net", "_retained_gross"]

    def ratio(num: str, den: str) -> pl.Expr:
        return pl.when(pl.col(den) > 0).then(pl.col(num) / pl.col(den)).otherwise(None)

    return (
        out.with_columns([pl.col(c).fill_null(0) for c in counts] + [pl.col(c).fill_null(0.0) for c in money])
        .with_columns(
            ratio("subscriptions_churned", "subscriptions_open").alias("subscription_churn_rate"),
            ratio("accounts_churned", "accounts_open").alias("logo_churn_rate"),
            ratio("_retained_gross", "opening_mrr").alias("grr"),
            ratio("_retained_net", "opening_mrr").alias("nrr"),
        )
        .select(empty.columns)
        .sort("month")
    )
