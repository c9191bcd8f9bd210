"""What the customer-value analytics read: orders (kept and excluded), money in the base currency, as-of day.

:func:`load` gathers the lazy tables of a :class:`~crmlib.sources.Crm` (or plain frames, in tests) into a
:class:`CustomerData`, resolves the as-of day once (default: the day of the last kept order) and applies
an optional account segment filter. Every function of :mod:`crmlib.customers` takes one.

Which orders count
==================
An order counts as a purchase when its ``status`` is not ``cancelled`` (``completed`` or empty), it has an
``account_id`` and it was placed on or before the as-of day. :func:`order_exclusions` counts every order
left out and why, so nothing is dropped silently.

Money
=====
Amounts are converted to the base currency (:func:`crmlib.config.base_currency`) at the latest
``fx_rates`` rate on or before the order's day (:func:`to_base_currency`), the same rule as the KPI engine.
An amount in another currency without such a rate is an error (:class:`~crmlib.errors.CurrencyError`),
never a silent total.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, replace

import polars as pl

from .. import config, schema
from ..errors import ConfigError, CrmlibError
from ..money import check_rates, to_base_currency  # noqa: F401 - re-exported for the area modules

__all__ = ["CustomerData", "kept_orders", "load", "order_exclusions", "to_base_currency"]

TABLES = ("orders", "fx_rates", "subscriptions", "accounts", "users", "activities")


@dataclass(frozen=True)
class CustomerData:
    """Lazy canonical tables for the customer analytics, an as-of day, a base currency, a segment filter."""

    orders: pl.LazyFrame
    fx_rates: pl.LazyFrame
    subscriptions: pl.LazyFrame
    accounts: pl.LazyFrame
    users: pl.LazyFrame
    activities: pl.LazyFrame
    as_of: dt.date
    base_currency: str
    segment: str | None = None
    source: str = ""

    def __repr__(self) -> str:
        seg = f", segment={self.segment!r}" if self.segment else ""
        return f"CustomerData(as_of={self.as_of}, base_currency={self.base_currency!r}{seg}, source={self.source!r})"


def _lazy(frame, name: str) -> pl.LazyFrame:
    if frame is None:
        return schema.empty_frame(name).lazy()
    if isinstance(frame, pl.DataFrame):
        frame = frame.lazy()
    if not isinstance(frame, pl.LazyFrame):
        raise ConfigError(f"Table {name} must be a polars DataFrame or LazyFrame, not {type(frame).__name__}.")
    return schema.conform(frame, name)


def parse_day(value, what: str = "as_of") -> dt.date | None:
    """A date from a date, datetime or ISO string ('' and None mean not given)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip()[:10])
        except ValueError:
            pass
    raise ConfigError(f"{what} must be a date written YYYY-MM-DD (e.g. 2025-06-30), not {value!r}.")


def load(source, as_of=None, segment: str | None = None, base_currency: str | None = None) -> CustomerData:
    """The tables the customer analytics need, with the as-of day resolved.

    Parameters
    ----------
    source : Crm or mapping
        A :class:`~crmlib.sources.Crm` (``crmlib.open()``) or a mapping of table name -> polars frame
        (missing tables are empty).
    as_of : date or str, optional
        The day the analysis looks from (orders after it are ignored). Default: the day of the last
        order that counts.
    segment : str, optional
        Keep only accounts of this ``accounts.segment`` (enterprise, mid_market, smb). '' or None: all.
    base_currency : str, optional
        Default :func:`crmlib.config.base_currency`.
    """
    if isinstance(source, CustomerData):
        data = source
        if as_of not in (None, ""):
            data = replace(data, as_of=parse_day(as_of))
        return data
    if isinstance(source, Mapping):
        unknown = sorted(set(source) - set(schema.TABLE_NAMES))
        if unknown:
            raise ConfigError(f"Unknown table(s) {', '.join(map(str, unknown))}; the customer analytics read "
                              f"{', '.join(TABLES)}.")
        tables = {name: _lazy(source.get(name), name) for name in TABLES}
        shown = "frames"
    elif hasattr(source, "table"):
        tables = {name: source.table(name) for name in TABLES}
        shown = getattr(source, "source", "")
    else:
        raise ConfigError(
            f"Cannot read customer data from a {type(source).__name__}: pass crmlib.open(...) or a dict of frames."
        )
    segment = (segment or "").strip() or None
    if segment is not None:
        allowed = schema.ENUMS["segment"]
        if segment not in allowed:
            raise ConfigError(f"segment {segment!r} is not one of {', '.join(allowed)} (or '' for all accounts).")
        keep = tables["accounts"].filter(pl.col("segment") == segment).select("account_id")
        for name in ("orders", "subscriptions", "activities"):
            tables[name] = tables[name].join(keep, on="account_id", how="semi")
        tables["accounts"] = tables["accounts"].filter(pl.col("segment") == segment)
    base = (base_currency or config.base_currency()).upper()
    day = parse_day(as_of)
    if day is None:
        last = kept_orders(tables["orders"], None).select(pl.col("ordered_at").max()).collect().item()
        if last is None:
            where = f" for segment {segment}" if segment else ""
            raise CrmlibError(
                f"There are no orders{where} (completed, with an account) to analyse in {shown or 'the source'}. "
                "Import orders (`crmlib data import orders.csv --table orders`) or pick another segment."
            )
        day = last.date()
    return CustomerData(as_of=day, base_currency=base, segment=segment, source=str(shown), **tables)


def kept_orders(orders: pl.LazyFrame, as_of: dt.date | None) -> pl.LazyFrame:
    """Orders that count as purchases: not cancelled, with an account, on or before the as-of day."""
    cond = (pl.col("status").is_null() | (pl.col("status") != "cancelled")) & pl.col("account_id").is_not_null()
    cond = cond & pl.col("ordered_at").is_not_null() & pl.col("amount").is_not_null()
    if as_of is not None:  # before the start of the next day (cheaper than comparing dates)
        cond = cond & (pl.col("ordered_at") < dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time()))
    return orders.filter(cond)


def order_exclusions(data: CustomerData) -> pl.DataFrame:
    """Every order and what happens to it: one row per reason (used, cancelled, no customer, ...).

    Columns: ``reason``, ``orders``, ``amount`` (in the orders' own currencies, summed only to show
    size; not a money total), ``share`` of all orders. Reasons are checked in this order: cancelled, no
    customer id, no date or amount, after the as-of day, used.
    """
    reason = (
        pl.when(pl.col("status") == "cancelled").then(pl.lit("cancelled"))
        .when(pl.col("account_id").is_null()).then(pl.lit("no customer id"))
        .when(pl.col("ordered_at").is_null() | pl.col("amount").is_null()).then(pl.lit("no date or amount"))
        .when(pl.col("ordered_at").dt.date() > data.as_of).then(pl.lit("after the as-of day"))
        .otherwise(pl.lit("used"))
    )
    order = ["used", "cancelled", "no customer id", "no date or amount", "after the as-of day"]
    counts = (
        data.orders.group_by(reason.alias("reason"))
        .agg(pl.len().cast(pl.Int64).alias("orders"), pl.col("amount").sum().alias("amount"))
        .collect()
    )
    frame = pl.DataFrame({"reason": order}).join(counts, on="reason", how="left").with_columns(
        pl.col("orders").fill_null(0), pl.col("amount").fill_null(0.0)
    )
    total = frame.get_column("orders").sum()
    return frame.with_columns((pl.col("orders") / total if total else pl.lit(0.0)).alias("share"))


