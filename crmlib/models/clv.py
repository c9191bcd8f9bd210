"""Customer lifetime value: BG/NBD purchases x Gamma-Gamma value x margin, discounted month by month.

The two models live in their own files (:mod:`crmlib.models.bgnbd`, :mod:`crmlib.models.gamma_gamma`)
and are re-exported here, so ``from crmlib.models.clv import BetaGeoModel, GammaGammaModel,
customer_lifetime_value`` is the whole API.
"""

from __future__ import annotations

import numpy as np

from ..errors import CrmlibError
from . import _mle
from .bgnbd import BetaGeoModel
from .gamma_gamma import GammaGammaModel

__all__ = ["TIME_UNITS", "BetaGeoModel", "GammaGammaModel", "customer_lifetime_value", "periods_per_month"]

# Length of a month in each time unit a customer summary can be expressed in (a month is 365.25 / 12 days).
DAYS_PER_MONTH = 365.25 / 12
TIME_UNITS = {"D": 1.0, "W": 7.0, "M": DAYS_PER_MONTH}  # days per unit


def periods_per_month(time_unit: str) -> float:
    """Time units in a month: 30.4375 days, 4.348 weeks or 1 month."""
    if time_unit not in TIME_UNITS:
        raise CrmlibError(
            f"time_unit {time_unit!r} is not supported; use 'D' (days), 'W' (weeks) or 'M' (months)."
        )
    return DAYS_PER_MONTH / TIME_UNITS[time_unit]


def customer_lifetime_value(
    bgnbd: BetaGeoModel,
    gg: GammaGammaModel | None,
    frequency,
    recency,
    T,
    monetary,
    horizon: int = 12,
    discount_rate: float = 0.01,
    margin: float = 1.0,
    time_unit: str = "W",
) -> np.ndarray:
    r"""Discounted expected margin of each customer over the next ``horizon`` months.

    .. math:: \mathrm{CLV} = m \sum_{k=1}^{H} \frac{E[Z \mid x, \bar z]\,
              \bigl(E[Y(k u) \mid x, t_x, T] - E[Y((k-1) u) \mid x, t_x, T]\bigr)}{(1+d)^k}

    where :math:`E[Y(t) \mid \cdot]` is the BG/NBD conditional expected number of purchases in the next
    :math:`t` time units (:meth:`BetaGeoModel.conditional_expected_purchases`), :math:`u` the number of time
    units in a month (:func:`periods_per_month`: 4.348 weeks), :math:`E[Z \mid x, \bar z]` the Gamma-Gamma
    expected value per purchase (:meth:`GammaGammaModel.conditional_expected_average_value`; the population
    mean for customers without repeat purchases), :math:`m` the margin and :math:`d` the monthly discount
    rate. Purchases of month :math:`k` are discounted as if they fell at its end. This is lifetimes'
    ``customer_lifetime_value`` with a margin and an exact month length.

    Parameters
    ----------
    bgnbd : BetaGeoModel
        Fitted.
    gg : GammaGammaModel or None
        Fitted; or None to use ``monetary`` as the expected value per purchase as it is (e.g. values
        computed beforehand, or a flat average order value).
    frequency, recency, T : array_like
        The customers' histories, in ``time_unit`` (the unit the BG/NBD model was fitted in).
    monetary : array_like
        Mean value of the repeat purchases (ignored where frequency is 0).
    horizon : int
        Months ahead (>= 1).
    discount_rate : float
        Monthly discount rate (0.01 = 1 % a month, about 12.7 % a year).
    margin : float
        Share of the purchase value that is profit, in (0, 1].
    time_unit : {"D", "W", "M"}
        Time unit of recency and T.

    Returns
    -------
    numpy.ndarray
        CLV per customer, in the money unit of ``monetary``.

    References
    ----------
    .. [1] Fader, P. S., Hardie, B. G. S. and Lee, K. L. (2005), "RFM and CLV: Using Iso-Value Curves for
       Customer Base Analysis", Journal of Marketing Research, 42(4), 415-430.
    """
    if not isinstance(horizon, int | np.integer) or isinstance(horizon, bool) or horizon < 1:
        raise CrmlibError(f"horizon must be a whole number of months >= 1, not {horizon!r}.")
    if not np.isfinite(discount_rate) or not 0 <= discount_rate < 1:
        raise CrmlibError(
            f"discount_rate is a monthly rate between 0 and 1 (0.01 = 1 % a month), not {discount_rate!r}."
        )
    if not np.isfinite(margin) or not 0 < margin <= 1:
        raise CrmlibError(f"margin is the share of revenue that is profit, in (0, 1], not {margin!r}.")
    u = periods_per_month(time_unit)
    x = _mle.as_vector(frequency, "frequency", "CLV")
    tx = _mle.as_vector(recency, "recency", "CLV")
    T_ = _mle.as_vector(T, "T", "CLV")
    z = _mle.as_vector(monetary, "monetary", "CLV")
    _mle.check_same_length("CLV", frequency=x, recency=tx, T=T_, monetary=z)
    value = z if gg is None else gg.conditional_expected_average_value(x, z)
    months = np.arange(0, horizon + 1, dtype=float)
    cum = bgnbd.conditional_expected_purchases(months[None, :] * u, x[:, None], tx[:, None], T_[:, None])
    per_month = np.diff(cum, axis=1)
    discount = (1.0 + discount_rate) ** -months[1:]
    return margin * value * (per_month @ discount)
