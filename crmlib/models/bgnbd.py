"""The BG/NBD model of repeat purchasing (Fader, Hardie & Lee 2005), fitted by maximum likelihood."""

from __future__ import annotations

import numpy as np
from scipy.special import digamma, expit, gammaln, hyp2f1

from ..errors import CrmlibError
from . import _mle

__all__ = ["BetaGeoModel"]

NAME = "BG/NBD"
PARAMS = ("r", "alpha", "a", "b")


class BetaGeoModel:
    r"""BG/NBD ("beta-geometric / negative binomial distribution") model of repeat purchases.

    Assumptions, for a customer observed from the first purchase (time 0) to time ``T``:

    1. while active, repeat purchases follow a Poisson process with rate :math:`\lambda`;
    2. :math:`\lambda \sim \mathrm{Gamma}(r, \alpha)` across customers (shape ``r``, rate ``alpha``);
    3. after each repeat purchase the customer becomes inactive for good with probability :math:`p`;
    4. :math:`p \sim \mathrm{Beta}(a, b)` across customers, independent of :math:`\lambda`.

    A customer's history is summarised by ``frequency`` :math:`x` (repeat purchases), ``recency``
    :math:`t_x` (time of the last purchase, 0 when :math:`x=0`) and ``T``, all in one time unit (weeks in
    the paper). The parameters are estimated by maximum likelihood (equation 6 of the paper, section 7 of
    its technical appendix) with L-BFGS-B over the log-parameters and an analytic gradient; standard errors
    come from the inverse Hessian of the negative log-likelihood at the optimum (central differences of
    the gradient in log space) mapped to the parameters by the delta method.

    Attributes
    ----------
    params_ : dict
        ``{"r", "alpha", "a", "b"}``; ``alpha`` is in the time unit of the data.
    standard_errors_ : dict
        Standard errors of ``params_`` (NaN when the Hessian is singular).
    covariance_ : numpy.ndarray
        4 x 4 covariance matrix of (r, alpha, a, b).
    log_likelihood_ : float
        Maximised log-likelihood (weighted sum over customers).
    n_customers_ : float
        Number of customers (sum of the weights).
    converged_ : bool
        False when the optimiser stopped early or a parameter ran off to a bound; the estimates are then
        not trustworthy (too few repeat purchases).

    Examples
    --------
    >>> m = BetaGeoModel().fit(frequency, recency, T)      # doctest: +SKIP
    >>> m.params_["r"], m.probability_alive(2, 30.43, 38.86)  # doctest: +SKIP

    References
    ----------
    .. [1] Fader, P. S., Hardie, B. G. S. and Lee, K. L. (2005), "'Counting Your Customers' the Easy Way:
       An Alternative to the Pareto/NBD Model", Marketing Science, 24(2), 275-284.
    .. [2] Fader, P. S., Hardie, B. G. S. and Lee, K. L. (2008), "Computing P(alive) Using the BG/NBD
       Model", http://brucehardie.com/notes/021/.
    .. [3] Davidson-Pilon, C., lifetimes 0.11.3, ``BetaGeoFitter`` (the reference implementation checked
       against in ``bench/bench_clv.py``).
    """

    def __init__(self) -> None:
        self.params_: dict[str, float] | None = None

    # -- fitting -------------------------------------------------------------------------------------
    def fit(self, frequency, recency, T, weights=None) -> BetaGeoModel:
        """Estimate (r, alpha, a, b) by maximum likelihood.

        Parameters
        ----------
        frequency : array_like
            Repeat purchases per customer (whole numbers >= 0).
        recency : array_like
            Time from the first to the last purchase (0 when frequency is 0).
        T : array_like
            Time from the first purchase to the end of observation (same unit as recency).
        weights : array_like, optional
            Number of customers each row stands for (default 1): lets a table of distinct
            (frequency, recency, T) patterns with counts be fitted directly.

        Returns
        -------
        BetaGeoModel
            ``self``, fitted.
        """
        x, tx, T_, w = _check(frequency, recency, T, weights)
        if not np.any((x > 0) & (w > 0)):
            raise CrmlibError(
                f"{NAME}: no customer has a repeat purchase (every frequency is 0), so the dropout process cannot "
                "be estimated. Fit on a longer history or more customers."
            )
        (x, tx, T_), w = _mle.compress(x, tx, T_, weights=w)
        scale = 1.0 / T_.max() if T_.max() > 0 else 1.0  # time scaled so that max T = 1: better conditioned
        tx_s, T_s = tx * scale, T_ * scale

        def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
            ll, grad = _loglik(theta, x, tx_s, T_s, w, with_grad=True)
            return -ll, -grad

        mean_rate = max(float(np.average(x, weights=w) / max(np.average(T_s, weights=w), 1e-12)), 1e-3)
        starts = [
            np.log([1.0, 1.0 / mean_rate, 1.0, 1.0]),
            np.log([0.5, 0.5 / mean_rate, 0.5, 2.0]),
            np.zeros(4) + np.log(1.1),
        ]
        fit = _mle.fit_log_params(NAME, objective, starts)
        shift = np.array([0.0, -np.log(scale), 0.0, 0.0])  # alpha back to the data's time unit
        theta = fit.log_params + shift
        params = np.exp(theta)
        cov = fit.covariance.copy()
        cov[1, :] /= scale
        cov[:, 1] /= scale
        self.params_ = dict(zip(PARAMS, map(float, params), strict=True))
        self.covariance_ = cov
        self.standard_errors_ = dict(zip(PARAMS, map(float, np.sqrt(np.diag(cov))), strict=True))
        # The log-likelihood in the data's time unit (scaling time shifts it by sum(w * x) * log(scale)).
        self.log_likelihood_ = float(fit.log_likelihood + np.sum(w * x) * np.log(scale))
        self.n_customers_ = float(w.sum())
        self.converged_ = fit.converged
        self.message_ = fit.message
        return self

    def log_likelihood(self, frequency, recency, T, weights=None) -> float:
        """Log-likelihood of the data at the fitted parameters."""
        x, tx, T_, w = _check(frequency, recency, T, weights)
        return float(_loglik(np.log(self._params()), x, tx, T_, w)[0])

    # -- predictions ---------------------------------------------------------------------------------
    def expected_purchases(self, t) -> np.ndarray:
        r"""Expected repeat purchases of a new customer in (0, t]: equation (9) of [1]_.

        .. math:: E[X(t)] = \frac{a+b-1}{a-1}\left[1 - \left(\frac{\alpha}{\alpha+t}\right)^r
                  {}_2F_1\!\left(r, b; a+b-1; \frac{t}{\alpha+t}\right)\right]
        """
        r, alpha, a, b = self._params()
        t = np.asarray(t, dtype=float)
        log_h = _log_hyp2f1(r, b, a + b - 1, t / (alpha + t))
        return (a + b - 1) / (a - 1) * (1 - np.exp(log_h + r * np.log(alpha / (alpha + t))))

    def conditional_expected_purchases(self, t, frequency, recency, T) -> np.ndarray:
        r"""Expected repeat purchases in (T, T + t] of a customer with history (x, t_x, T): equation (10) of [1]_.

        .. math:: E[Y(t) \mid x, t_x, T] = \frac{\frac{a+b+x-1}{a-1}\left[1 - \left(\frac{\alpha+T}
                  {\alpha+T+t}\right)^{r+x} {}_2F_1\!\left(r+x, b+x; a+b+x-1; \frac{t}{\alpha+T+t}\right)\right]}
                  {1 + \delta_{x>0} \frac{a}{b+x-1}\left(\frac{\alpha+T}{\alpha+t_x}\right)^{r+x}}

        ``t`` may be a scalar or broadcast against the customers (e.g. shape ``(n, 1)`` customers by
        ``(1, k)`` horizons).
        """
        r, alpha, a, b = self._params()
        x, tx, T_ = (np.asarray(v, dtype=float) for v in (frequency, recency, T))
        t = np.asarray(t, dtype=float)
        log_h = _log_hyp2f1(r + x, b + x, a + b + x - 1, t / (alpha + T_ + t))
        numer = (a + b + x - 1) / (a - 1) * -np.expm1(log_h + (r + x) * np.log((alpha + T_) / (alpha + T_ + t)))
        return numer * self.probability_alive(x, tx, T_)

    def probability_alive(self, frequency, recency, T) -> np.ndarray:
        r"""Probability that a customer with history (x, t_x, T) is still active at T ([2]_).

        .. math:: P(\text{alive} \mid x, t_x, T) = 1 \Big/ \left(1 + \delta_{x>0} \frac{a}{b+x-1}
                  \left(\frac{\alpha+T}{\alpha+t_x}\right)^{r+x}\right)
        """
        r, alpha, a, b = self._params()
        x, tx, T_ = (np.asarray(v, dtype=float) for v in (frequency, recency, T))
        with np.errstate(divide="ignore", invalid="ignore"):
            log_odds = np.log(a) - np.log(b + np.maximum(x, 1) - 1) + (r + x) * np.log((alpha + T_) / (alpha + tx))
        return np.where(x > 0, expit(-log_odds), 1.0)

    def summary(self) -> dict[str, dict[str, float]]:
        """{parameter: {"estimate", "se", "lower_95", "upper_95"}}; see :func:`crmlib.models._mle.interval`."""
        return _mle.summary(self._params(), self.standard_errors_, PARAMS)

    def _params(self) -> np.ndarray:
        if self.params_ is None:
            raise CrmlibError(f"{NAME}: the model is not fitted yet; call .fit(frequency, recency, T) first.")
        return np.array([self.params_[k] for k in PARAMS])

    def __repr__(self) -> str:
        if self.params_ is None:
            return "BetaGeoModel()"
        shown = ", ".join(f"{k}={v:.4g}" for k, v in self.params_.items())
        return f"BetaGeoModel({shown}, n={self.n_customers_:,.0f}, LL={self.log_likelihood_:.1f})"


def _check(frequency, recency, T, weights):
    x = _mle.as_vector(frequency, "frequency", NAME)
    tx = _mle.as_vector(recency, "recency", NAME)
    T_ = _mle.as_vector(T, "T", NAME)
    n = _mle.check_same_length(NAME, frequency=x, recency=tx, T=T_)
    _mle.check_finite(NAME, frequency=x, recency=tx, T=T_)
    _mle.check_non_negative(NAME, frequency=x, recency=tx, T=T_)
    _mle.check_integer(NAME, "frequency", x)
    _mle.check_recency_T(NAME, x, tx, T_)
    w = _mle.check_weights(NAME, weights, n)
    return x, tx, T_, w


def _loglik(theta, x, tx, T, w, with_grad: bool = False):
    """Weighted BG/NBD log-likelihood (FHL 2005, eq. 6) at log-parameters theta, and its gradient in theta."""
    r, alpha, a, b = np.exp(theta)
    pos = x > 0
    bx1 = b + np.maximum(x, 1) - 1
    a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    a2 = gammaln(a + b) + gammaln(b + x) - gammaln(b) - gammaln(a + b + x)
    log_aT, log_atx = np.log(alpha + T), np.log(alpha + tx)
    a3 = -(r + x) * log_aT
    a4 = np.where(pos, np.log(a) - np.log(bx1) - (r + x) * log_atx, -np.inf)
    m = np.maximum(a3, a4)
    e3, e4 = np.exp(a3 - m), np.exp(a4 - m)
    ll_i = a1 + a2 + m + np.log(e3 + e4)
    ll = float(np.sum(w * ll_i))  # not np.dot: BLAS is slow on inf/strided input
    if not with_grad:
        return ll, None
    w4 = e4 / (e3 + e4)  # weight of the "dropped out after the last purchase" branch
    w3 = 1 - w4
    d_r = digamma(r + x) - digamma(r) + np.log(alpha) - w3 * log_aT - w4 * log_atx
    d_alpha = r / alpha - (r + x) * (w3 / (alpha + T) + w4 / (alpha + tx))
    psi_ab, psi_abx = digamma(a + b), digamma(a + b + x)
    d_a = psi_ab - psi_abx + w4 / a
    d_b = psi_ab + digamma(b + x) - digamma(b) - psi_abx - w4 / bx1
    grad = np.array([np.sum(w * d_r) * r, np.sum(w * d_alpha) * alpha, np.sum(w * d_a) * a, np.sum(w * d_b) * b])
    return ll, grad


def _log_hyp2f1(a, b, c, z):
    """log 2F1(a, b; c; z) for 0 <= z < 1, with Euler's transformation where the direct series fails."""
    a, b, c, z = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (a, b, c, z)))
    with np.errstate(all="ignore"):
        direct = np.log(hyp2f1(a, b, c, z))
        bad = ~np.isfinite(direct)
        if np.any(bad):
            euler = np.log(hyp2f1(c - a, c - b, c, z)) + (c - a - b) * np.log1p(-z)
            direct = np.where(bad, euler, direct)
    return direct
