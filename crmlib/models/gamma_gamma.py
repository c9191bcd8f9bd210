"""The Gamma-Gamma model of spend per transaction (Fader, Hardie & Lee 2005b; Hardie note 025)."""

from __future__ import annotations

import warnings

import numpy as np
from scipy.special import digamma, gammaln

from ..errors import CrmlibError
from . import _mle

__all__ = ["GammaGammaModel"]

NAME = "Gamma-Gamma"
PARAMS = ("p", "q", "v")


class GammaGammaModel:
    r"""Gamma-Gamma model of the average value of a customer's transactions.

    Assumptions: the value of each transaction of a customer is :math:`\mathrm{Gamma}(p, \nu)`
    (shape ``p``, rate :math:`\nu`), so the customer's mean value is :math:`p/\nu`;
    :math:`\nu \sim \mathrm{Gamma}(q, v)` across customers (shape ``q``, rate ``v``, in money units);
    spend is independent of the purchase process (check: a weak correlation between ``frequency`` and
    ``monetary`` among repeat buyers). The likelihood of a customer's mean value :math:`\bar z` over
    :math:`x` transactions is

    .. math:: L(p, q, v \mid x, \bar z) = \frac{\Gamma(px+q)}{\Gamma(px)\Gamma(q)}
              \frac{v^q\, \bar z^{px-1}\, x^{px}}{(v + x\bar z)^{px+q}}

    maximised with L-BFGS-B over the log-parameters (analytic gradient); standard errors from the inverse
    Hessian by the delta method, as for :class:`~crmlib.models.bgnbd.BetaGeoModel`.

    Only customers with at least one repeat purchase (``frequency > 0``) carry information on spend in
    the lifetimes convention (``monetary`` is the mean value of the *repeat* purchases): customers with
    ``frequency == 0`` are left out of the fit, counted in ``n_excluded_`` and announced with a warning.

    Attributes
    ----------
    params_ : dict
        ``{"p", "q", "v"}``.
    standard_errors_ : dict
    covariance_ : numpy.ndarray
    log_likelihood_ : float
    n_customers_ : int
        Customers used in the fit (frequency > 0).
    n_excluded_ : int
        Customers left out because their frequency is 0.
    converged_ : bool

    References
    ----------
    .. [1] Fader, P. S., Hardie, B. G. S. and Lee, K. L. (2005), "RFM and CLV: Using Iso-Value Curves for
       Customer Base Analysis", Journal of Marketing Research, 42(4), 415-430.
    .. [2] Fader, P. S. and Hardie, B. G. S. (2013), "The Gamma-Gamma Model of Monetary Value",
       http://brucehardie.com/notes/025/.
    """

    def __init__(self) -> None:
        self.params_: dict[str, float] | None = None

    def fit(self, frequency, monetary, weights=None) -> GammaGammaModel:
        """Estimate (p, q, v) by maximum likelihood on the customers with ``frequency > 0``.

        Parameters
        ----------
        frequency : array_like
            Repeat purchases per customer (whole numbers >= 0): the number of values averaged.
        monetary : array_like
            Mean value of those purchases (> 0 wherever frequency > 0; ignored where frequency is 0).
        weights : array_like, optional
            Number of customers each row stands for (default 1).

        Returns
        -------
        GammaGammaModel
            ``self``, fitted.
        """
        x = _mle.as_vector(frequency, "frequency", NAME)
        z = _mle.as_vector(monetary, "monetary", NAME)
        n = _mle.check_same_length(NAME, frequency=x, monetary=z)
        w = _mle.check_weights(NAME, weights, n)
        _mle.check_finite(NAME, frequency=x)
        _mle.check_non_negative(NAME, frequency=x)
        _mle.check_integer(NAME, "frequency", x)
        use = x > 0
        bad = use & ~np.isfinite(z)
        if bad.any():
            raise CrmlibError(
                f"{NAME}: monetary is missing or infinite for customers with repeat purchases at "
                f"{_mle.rows_text(bad)}. Every customer with frequency > 0 needs the mean value of those purchases."
            )
        bad = use & (z <= 0)
        if bad.any():
            sample = ", ".join(f"{v:.6g}" for v in z[bad][:3])
            raise CrmlibError(
                f"{NAME}: monetary must be greater than 0 for customers with repeat purchases, but "
                f"{_mle.rows_text(bad)} hold {sample}. The model describes positive spend: drop zero-value and "
                "refund orders (or customers whose repeat purchases add up to nothing) before fitting."
            )
        self.n_excluded_ = int(round(float(w[~use].sum())))
        if self.n_excluded_:
            warnings.warn(
                f"{NAME}: {self.n_excluded_:,} customers with no repeat purchase (frequency 0) are left out of the "
                "fit; their expected value is the population mean.", UserWarning, stacklevel=2)
        x, z, w = x[use], z[use], w[use]
        if len(x) < 2:
            raise CrmlibError(
                f"{NAME}: the fit needs at least two customers with repeat purchases; there are {len(x)}."
            )
        (x, z), w = _mle.compress(x, z, weights=w)
        scale = 1.0 / float(np.average(z, weights=w))  # money scaled to mean 1: better conditioned

        def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
            ll, grad = _loglik(theta, x, z * scale, w, with_grad=True)
            return -ll, -grad

        starts = [np.log([1.0, 2.0, 1.0]), np.log([5.0, 4.0, 3.0]), np.zeros(3) + np.log(1.1)]
        fit = _mle.fit_log_params(NAME, objective, starts)
        theta = fit.log_params - np.array([0.0, 0.0, np.log(scale)])
        cov = fit.covariance.copy()
        cov[2, :] /= scale
        cov[:, 2] /= scale
        self.params_ = dict(zip(PARAMS, map(float, np.exp(theta)), strict=True))
        self.covariance_ = cov
        self.standard_errors_ = dict(zip(PARAMS, map(float, np.sqrt(np.diag(cov))), strict=True))
        # back to money units: each customer's density of zbar picks up a factor `scale`
        self.log_likelihood_ = float(fit.log_likelihood + w.sum() * np.log(scale))
        self.n_customers_ = int(round(float(w.sum())))
        self.converged_ = fit.converged
        self.message_ = fit.message
        return self

    def conditional_expected_average_value(self, frequency, monetary) -> np.ndarray:
        r"""Expected mean transaction value of a customer with ``frequency`` purchases averaging ``monetary``.

        .. math:: E[Z \mid x, \bar z] = \frac{p (v + x \bar z)}{px + q - 1}
                  = \frac{q-1}{px+q-1}\,\frac{pv}{q-1} + \frac{px}{px+q-1}\,\bar z

        a weighted mean of the population mean :math:`pv/(q-1)` and the customer's own mean. For
        ``frequency == 0`` it is the population mean (``monetary`` is ignored there).
        """
        p, q, v = self._params()
        x = np.asarray(frequency, dtype=float)
        z = np.where(x > 0, np.asarray(monetary, dtype=float), 0.0)
        if q <= 1 and np.any(x == 0):
            raise CrmlibError(
                f"{NAME}: the population mean spend p*v/(q-1) is infinite because q = {q:.4g} <= 1, so customers "
                "without repeat purchases have no expected value. Fit on more customers with repeat purchases."
            )
        return p * (v + x * z) / (p * x + q - 1)

    def summary(self) -> dict[str, dict[str, float]]:
        """{parameter: {"estimate", "se", "lower_95", "upper_95"}}; see :func:`crmlib.models._mle.interval`."""
        return _mle.summary(self._params(), self.standard_errors_, PARAMS)

    def expected_average_value(self) -> float:
        """Population mean transaction value ``p * v / (q - 1)`` (infinite when q <= 1)."""
        p, q, v = self._params()
        return float(p * v / (q - 1)) if q > 1 else float("inf")

    def _params(self) -> np.ndarray:
        if self.params_ is None:
            raise CrmlibError(f"{NAME}: the model is not fitted yet; call .fit(frequency, monetary) first.")
        return np.array([self.params_[k] for k in PARAMS])

    def __repr__(self) -> str:
        if self.params_ is None:
            return "GammaGammaModel()"
        shown = ", ".join(f"{k}={v:.4g}" for k, v in self.params_.items())
        return f"GammaGammaModel({shown}, n={self.n_customers_:,})"


def _loglik(theta, x, z, w, with_grad: bool = False):
    """Weighted Gamma-Gamma log-likelihood of the mean values z over x transactions, gradient in theta = log p, q, v."""
    p, q, v = np.exp(theta)
    px = p * x
    log_xzv = np.log(x * z + v)
    ll_i = (gammaln(px + q) - gammaln(px) - gammaln(q) + q * np.log(v) + (px - 1) * np.log(z) + px * np.log(x)
            - (px + q) * log_xzv)
    ll = float(np.sum(w * ll_i))  # not np.dot: BLAS is slow on inf/strided input
    if not with_grad:
        return ll, None
    psi = digamma(px + q)
    d_p = x * (psi - digamma(px) + np.log(z) + np.log(x) - log_xzv)
    d_q = psi - digamma(q) + np.log(v) - log_xzv
    d_v = q / v - (px + q) / (x * z + v)
    return ll, np.array([np.sum(w * d_p) * p, np.sum(w * d_q) * q, np.sum(w * d_v) * v])
