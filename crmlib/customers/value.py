"""Customer value: BG/NBD + Gamma-Gamma fitted on the data, CLV per customer, the watchlist and rising accounts.

:func:`customer_value` fits both models on the customer summary (time in weeks by default) and returns a
:class:`CustomerValue`: one row per customer with

* ``p_alive``: BG/NBD probability that the customer is still active;
* ``expected_purchases``: expected repeat purchases over the horizon;
* ``expected_value``: Gamma-Gamma expected value per purchase (base currency);
* ``clv``: discounted expected margin over the horizon (:func:`crmlib.models.clv.customer_lifetime_value`);
* ``value_at_stake`` = ``clv / p_alive``: the CLV if the customer is still active (the BG/NBD conditional
  expectation is P(alive) x the expectation given alive, so this is exact). It is what slips away when a
  valuable customer leaves, and it ranks the customers into ``value_tier``: **top** (the top 20 %),
  **middle** (next 30 %), **low** (the rest).

When a model cannot be fitted (too few repeat purchases, e.g. a small segment) the analysis still
returns, with the reason in ``notes`` and empty (null) model columns; the notebook shows the notes.

Watchlist (:func:`watchlist`): customers of the top value tier who are slipping: P(alive) below a
threshold, or a current gap since the last purchase more than ``gap_ratio`` times their usual gap
(recency / frequency, the mean time between their purchases). With the account, its owner and the last
logged activity (``activities``), sorted by value at stake.

Rising accounts (:func:`rising_accounts`): customers who, in the last ``window_days``, bought at least
``min_purchases`` times and at least ``ratio`` times what BG/NBD expected from their history before the
window; sorted by the extra value (extra purchases x expected value per purchase).
"""

from __future__ import annotations

import datetime as dt
import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from ..errors import ConfigError, CrmlibError
from ..models.bgnbd import BetaGeoModel
from ..models.clv import TIME_UNITS, customer_lifetime_value
from ..models.gamma_gamma import GammaGammaModel
from .data import CustomerData, load, parse_day
from .summary import customer_summary, holdout_check

__all__ = ["CustomerValue", "customer_value", "holdout_validation", "p_alive_grid", "rising_accounts", "watchlist"]

TIERS = (("top", 0.20), ("middle", 0.50))  # cumulative share of customers by value at stake


@dataclass
class CustomerValue:
    """Result of :func:`customer_value`: per-customer values, the fitted models and notes."""

    customers: pl.DataFrame
    bgnbd: BetaGeoModel | None
    gamma_gamma: GammaGammaModel | None
    as_of: dt.date
    horizon: int
    discount_rate: float
    margin: float
    time_unit: str
    base_currency: str
    notes: list[str] = field(default_factory=list)

    def parameters(self) -> pl.DataFrame:
        """model, parameter, estimate, se, lower_95, upper_95 (log-scale interval) of both fitted models."""
        rows = []
        for name, m in (("BG/NBD", self.bgnbd), ("Gamma-Gamma", self.gamma_gamma)):
            if m is None:
                continue
            for k, row in m.summary().items():
                rows.append({"model": name, "parameter": k, **row})
        return pl.DataFrame(rows, schema={"model": pl.String, "parameter": pl.String, "estimate": pl.Float64,
                                          "se": pl.Float64, "lower_95": pl.Float64, "upper_95": pl.Float64})

    def top(self, n: int = 20) -> pl.DataFrame:
        """The ``n`` customers with the highest CLV."""
        return self.customers.sort("clv", descending=True, nulls_last=True).head(n)

    def __repr__(self) -> str:
        return (f"CustomerValue({self.customers.height:,} customers, as_of={self.as_of}, horizon={self.horizon} months, "
                f"bgnbd={self.bgnbd!r}, gamma_gamma={self.gamma_gamma!r})")


def _check_args(horizon, discount_rate, margin) -> None:
    if not isinstance(horizon, int) or isinstance(horizon, bool) or horizon < 1:
        raise ConfigError(f"horizon is a whole number of months >= 1, not {horizon!r}.")
    if not isinstance(discount_rate, int | float) or not 0 <= discount_rate < 1:
        raise ConfigError(f"discount_rate is a monthly rate in [0, 1) (0.01 = 1 % a month), not {discount_rate!r}.")
    if not isinstance(margin, int | float) or not 0 < margin <= 1:
        raise ConfigError(f"margin is the share of revenue that is profit, in (0, 1], not {margin!r}.")


def customer_value(data, horizon: int = 12, discount_rate: float = 0.01, margin: float = 1.0,
                   time_unit: str = "W") -> CustomerValue:
    """Fit BG/NBD and Gamma-Gamma on the customers of ``data`` and value each customer (see the module doc)."""
    _check_args(horizon, discount_rate, margin)
    data = data if isinstance(data, CustomerData) else load(data)
    s = customer_summary(data.orders, data.as_of, time_unit, fx_rates=data.fx_rates,
                         base_currency=data.base_currency).sort("account_id")
    notes: list[str] = []
    x, tx, T = (s.get_column(c).to_numpy().astype(float) for c in ("frequency", "recency", "T"))
    z = s.get_column("monetary").to_numpy().astype(float)
    n = s.height
    bg = _fit_bgnbd(x, tx, T, notes)
    gg = _fit_gg(x, z, notes)
    nan = np.full(n, np.nan)
    p_alive = bg.probability_alive(x, tx, T) if bg else nan
    u = (365.25 / 12) / TIME_UNITS[time_unit]
    exp_purch = bg.conditional_expected_purchases(horizon * u, x, tx, T) if bg else nan
    usable = (x > 0) & (z > 0)
    if gg is not None:
        value = gg.conditional_expected_average_value(np.where(usable, x, 0), np.where(usable, z, 0))
    else:
        days = float((x + 1).sum())
        mean_value = float(s.get_column("revenue").sum()) / days if days else float("nan")
        value = np.full(n, mean_value)
        notes.append("Expected value per purchase = the average purchase-day value "
                     f"({mean_value:,.2f} {data.base_currency}) for every customer.")
    if bg is not None:
        clv = customer_lifetime_value(bg, None, x, tx, T, value, horizon=horizon,
                                      discount_rate=discount_rate, margin=margin, time_unit=time_unit)
    else:
        clv = nan
    with np.errstate(divide="ignore", invalid="ignore"):
        at_stake = np.where(p_alive > 0, clv / p_alive, np.nan)
    out = s.with_columns(
        pl.Series("p_alive", p_alive), pl.Series("expected_purchases", exp_purch),
        pl.Series("expected_value", value), pl.Series("clv", clv), pl.Series("value_at_stake", at_stake),
    ).with_columns(pl.col(c).fill_nan(None) for c in ("p_alive", "expected_purchases", "clv", "value_at_stake"))
    rank = pl.col("value_at_stake").rank(method="ordinal", descending=True) / pl.col("value_at_stake").count()
    tier = pl.when(pl.col("value_at_stake").is_null()).then(None)
    for name, upto in TIERS:
        tier = tier.when(rank <= upto + 1e-12).then(pl.lit(name))
    out = out.with_columns(tier.otherwise(pl.lit("low")).alias("value_tier"))
    return CustomerValue(out, bg, gg, data.as_of, horizon, float(discount_rate), float(margin), time_unit,
                         data.base_currency, notes)


def _fit_bgnbd(x, tx, T, notes: list[str]) -> BetaGeoModel | None:
    try:
        bg = BetaGeoModel().fit(x, tx, T)
    except CrmlibError as exc:
        notes.append(f"BG/NBD not fitted: {exc}")
        return None
    if not bg.converged_:
        notes.append(f"BG/NBD fit did not converge cleanly ({bg.message_}); treat P(alive) and CLV as rough.")
    return bg


def _fit_gg(x, z, notes: list[str]) -> GammaGammaModel | None:
    usable = (x > 0) & (z > 0)
    zero = int(((x > 0) & ~(z > 0)).sum())
    if zero:
        notes.append(f"Gamma-Gamma: {zero:,} customers whose repeat purchases add up to 0 or less are left out "
                     "of the spend model (they get the population mean).")
    n0 = int((x == 0).sum())
    if n0:
        notes.append(f"Gamma-Gamma: {n0:,} customers without repeat purchases are left out of the spend model "
                     "(they get the population mean).")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            gg = GammaGammaModel().fit(x[usable], z[usable])
    except CrmlibError as exc:
        notes.append(f"Gamma-Gamma not fitted: {exc}")
        return None
    if gg.params_["q"] <= 1:
        notes.append(f"Gamma-Gamma: q = {gg.params_['q']:.3g} <= 1, the population mean spend is infinite; "
                     "not used.")
        return None
    if not gg.converged_:
        notes.append(f"Gamma-Gamma fit did not converge cleanly ({gg.message_}); treat expected values as rough.")
    return gg


def p_alive_grid(value: CustomerValue, max_frequency: int | None = None, n_recency: int = 40) -> pl.DataFrame:
    """P(alive) over frequency x recency for customers of the oldest age T (tidy: frequency, recency, T,
    p_alive). ``max_frequency`` defaults to the 99th percentile of frequency (at least 5, at most 50)."""
    c = value.customers
    schema = {"frequency": pl.Int64, "recency": pl.Float64, "T": pl.Float64, "p_alive": pl.Float64}
    if value.bgnbd is None or c.height == 0:
        return pl.DataFrame(schema=schema)
    T = float(c.get_column("T").max())
    if max_frequency is None:
        max_frequency = int(min(50, max(5, math.ceil(float(c.get_column("frequency").quantile(0.99))))))
    f = np.arange(max_frequency + 1)
    r = np.linspace(0.0, T, n_recency + 1)
    F, R = np.meshgrid(f, r, indexing="ij")
    p = value.bgnbd.probability_alive(F.ravel(), R.ravel(), np.full(F.size, T))
    keep = (F.ravel() > 0) | (R.ravel() == 0)  # frequency 0 has recency 0 only
    return pl.DataFrame({"frequency": F.ravel()[keep], "recency": R.ravel()[keep], "T": np.full(int(keep.sum()), T),
                         "p_alive": p[keep]}, schema=schema)


def holdout_validation(data, calibration_end=None, time_unit: str = "W", max_frequency: int = 7) -> pl.DataFrame:
    """Fit BG/NBD on a calibration period, compare its holdout predictions with what customers did.

    ``calibration_end`` defaults to two thirds of the way from the first order to the as-of day. Returns
    :func:`~crmlib.customers.summary.holdout_check` (bucket, order, customers, actual, predicted); the
    predictions are null when the calibration data cannot be fitted.
    """
    data = data if isinstance(data, CustomerData) else load(data)
    cal_end = parse_day(calibration_end, "calibration_end")
    if cal_end is None:
        from .data import kept_orders

        first = kept_orders(data.orders, data.as_of).select(pl.col("ordered_at").min()).collect().item()
        span = (data.as_of - first.date()).days
        cal_end = first.date() + dt.timedelta(days=max(1, span * 2 // 3))
        if cal_end >= data.as_of:
            cal_end = data.as_of - dt.timedelta(days=1)
    s = customer_summary(data.orders, data.as_of, time_unit, calibration_end=cal_end, fx_rates=data.fx_rates,
                         base_currency=data.base_currency)
    try:
        model = BetaGeoModel().fit(s.get_column("frequency"), s.get_column("recency"), s.get_column("T"))
    except CrmlibError:
        model = None
    if model is None:
        return holdout_check(s, _NoModel(), max_frequency)
    return holdout_check(s, model, max_frequency)


class _NoModel:
    def conditional_expected_purchases(self, t, frequency, recency, T):
        return np.full(len(np.atleast_1d(frequency)), np.nan)


def _account_info(data: CustomerData) -> pl.DataFrame:
    """account_id, account, segment, owner (name), last_activity (on or before the as-of day)."""
    last = (
        data.activities.filter(pl.col("account_id").is_not_null() & (pl.col("occurred_at").dt.date() <= data.as_of))
        .group_by("account_id").agg(pl.col("occurred_at").max().alias("last_activity"))
    )
    users = data.users.select(pl.col("user_id").alias("owner_id"), pl.col("name").alias("owner"))
    q = (
        data.accounts.select("account_id", pl.col("name").alias("account"), "segment", "owner_id")
        .join(users, on="owner_id", how="left")
        .join(last, on="account_id", how="left")
        .select("account_id", "account", "segment", "owner", "last_activity")
    )
    return q.collect()


def _with_accounts(frame: pl.DataFrame, data: CustomerData) -> pl.DataFrame:
    info = _account_info(data)
    return frame.join(info, on="account_id", how="left")


def watchlist(value: CustomerValue, data, p_alive_below: float = 0.5, gap_ratio: float = 2.0) -> pl.DataFrame:
    """Top-tier customers who are slipping, with owner and last activity (see the module doc).

    Columns: account_id, account, segment, owner, value_at_stake, clv, p_alive, last_order,
    days_since_last_order, usual_gap_days, gap_ratio, last_activity, reason.
    """
    if not 0 < p_alive_below <= 1:
        raise ConfigError(f"p_alive_below is a probability in (0, 1], not {p_alive_below!r}.")
    if gap_ratio <= 0:
        raise ConfigError(f"gap_ratio must be positive (2 = twice the usual gap), not {gap_ratio!r}.")
    data = data if isinstance(data, CustomerData) else load(data)
    days = TIME_UNITS[value.time_unit]
    c = value.customers.with_columns(
        ((pl.col("T") - pl.col("recency")) * days).alias("days_since_last_order"),
        pl.when(pl.col("frequency") > 0).then(pl.col("recency") * days / pl.col("frequency")).otherwise(None)
        .alias("usual_gap_days"),
    ).with_columns(
        pl.when(pl.col("usual_gap_days") > 0).then(pl.col("days_since_last_order") / pl.col("usual_gap_days"))
        .otherwise(None).alias("gap_ratio"),
    )
    low = pl.col("p_alive") < p_alive_below
    gap = pl.col("gap_ratio") > gap_ratio
    reason = pl.concat_str(
        pl.when(low).then(pl.format("P(alive) {} < {}", pl.col("p_alive").round(2), pl.lit(p_alive_below))),
        pl.when(gap).then(pl.format("gap {}x the usual", pl.col("gap_ratio").round(1))),
        separator="; ", ignore_nulls=True,
    )
    flagged = c.filter((pl.col("value_tier") == "top") & (low.fill_null(False) | gap.fill_null(False)))
    flagged = flagged.with_columns(reason.alias("reason")).sort("value_at_stake", descending=True)
    cols = ["account_id", "account", "segment", "owner", "value_at_stake", "clv", "p_alive", "last_order",
            "days_since_last_order", "usual_gap_days", "gap_ratio", "last_activity", "reason"]
    return _with_accounts(flagged, data).select(cols)


def rising_accounts(value: CustomerValue, data, window_days: int = 90, ratio: float = 2.0,
                    min_purchases: int = 2) -> pl.DataFrame:
    """Customers buying well above what their history predicts, over the last ``window_days`` (module doc).

    Columns: account_id, account, segment, owner, purchases (in the window), expected (BG/NBD, from the
    history before the window), extra_value, p_alive, clv, last_activity.
    """
    cols = ["account_id", "account", "segment", "owner", "purchases", "expected", "extra_value", "p_alive", "clv",
            "last_activity"]
    data = data if isinstance(data, CustomerData) else load(data)
    if value.bgnbd is None:
        return pl.DataFrame(schema={c: pl.String for c in cols[:4]} | {
            "purchases": pl.Int64, "expected": pl.Float64, "extra_value": pl.Float64, "p_alive": pl.Float64,
            "clv": pl.Float64, "last_activity": pl.Datetime("us")})
    start = data.as_of - dt.timedelta(days=window_days)
    before = customer_summary(data.orders, start, value.time_unit, fx_rates=data.fx_rates,
                              base_currency=data.base_currency)
    now = value.customers.select("account_id", pl.col("frequency").alias("_f_now"), "p_alive", "clv",
                                 "expected_value")
    both = before.join(now, on="account_id", how="inner")
    w = window_days / TIME_UNITS[value.time_unit]
    expected = value.bgnbd.conditional_expected_purchases(
        w, both.get_column("frequency").to_numpy(), both.get_column("recency").to_numpy(),
        both.get_column("T").to_numpy())
    out = both.with_columns(
        (pl.col("_f_now") - pl.col("frequency")).alias("purchases"), pl.Series("expected", expected),
    ).filter((pl.col("purchases") >= min_purchases) & (pl.col("purchases") >= ratio * pl.col("expected")))
    out = out.with_columns(((pl.col("purchases") - pl.col("expected")) * pl.col("expected_value")).alias("extra_value"))
    return _with_accounts(out.sort("extra_value", descending=True), data).select(cols)
