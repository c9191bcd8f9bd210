"""Shared machinery of the CLV models: input checks at the door and maximum likelihood in log space.

The models (:mod:`crmlib.models.bgnbd`, :mod:`crmlib.models.gamma_gamma`) hand a vectorised
log-likelihood and its gradient (both in log-parameter space) to :func:`fit_log_params`, which

1. minimises the negative log-likelihood with L-BFGS-B from a few starting points and keeps the best;
2. takes the Hessian of the negative log-likelihood at the optimum by central differences of the
   analytic gradient (in log space, where it is well conditioned) and inverts it;
3. maps the covariance of the log-parameters to the parameters by the delta method:
   ``cov(theta) = J cov(log theta) J'`` with ``J = diag(theta)``.

Input checks raise :class:`~crmlib.errors.CrmlibError` with rows numbered from 1, a few sample values
and what to do.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize

from ..errors import CrmlibError

MAX_ROWS_SHOWN = 8
LOG_BOUND = 25.0  # |log parameter| <= 25: parameters between 1e-11 and 7e10


# ---------------------------------------------------------------------------------------------
# Input checks
# ---------------------------------------------------------------------------------------------
def as_vector(values, name: str, model: str) -> np.ndarray:
    """A 1-d float array (numpy, list, polars/pandas Series); a scalar becomes a length-1 array."""
    try:
        arr = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise CrmlibError(
            f"{model}: {name} must be numbers (an array, a list or a Series of numbers); got {type(values).__name__}."
        ) from None
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1:
        raise CrmlibError(f"{model}: {name} must be one-dimensional (one value per customer); got shape {arr.shape}.")
    return arr


def rows_text(mask: np.ndarray) -> str:
    """'rows 3, 17 and 20 (numbered from 1)' or 'rows 3, 17, ... (12 rows, first 8 shown, numbered from 1)'."""
    idx = np.flatnonzero(mask) + 1
    shown = ", ".join(f"{i:,}" for i in idx[:MAX_ROWS_SHOWN])
    if len(idx) == 1:
        return f"row {shown} (numbered from 1)"
    if len(idx) > MAX_ROWS_SHOWN:
        return f"rows {shown}, ... ({len(idx):,} rows, first {MAX_ROWS_SHOWN} shown, numbered from 1)"
    return f"rows {shown} (numbered from 1)"


def _fmt(v: float) -> str:
    return f"{v:.6g}"


def check_finite(model: str, **columns: np.ndarray) -> None:
    for name, arr in columns.items():
        bad = ~np.isfinite(arr)
        if bad.any():
            raise CrmlibError(
                f"{model}: {name} has missing or infinite values at {rows_text(bad)}. "
                "Drop those customers or fill the values before fitting."
            )


def check_same_length(model: str, **columns: np.ndarray) -> int:
    lengths = {name: len(arr) for name, arr in columns.items()}
    if len(set(lengths.values())) != 1:
        shown = ", ".join(f"{k} has {v:,}" for k, v in lengths.items())
        raise CrmlibError(f"{model}: the inputs must have one value per customer, but {shown}.")
    n = next(iter(lengths.values()))
    if n == 0:
        raise CrmlibError(f"{model}: there are no customers to fit (the inputs are empty).")
    return n


def check_non_negative(model: str, **columns: np.ndarray) -> None:
    for name, arr in columns.items():
        bad = arr < 0
        if bad.any():
            sample = ", ".join(_fmt(v) for v in arr[bad][:3])
            raise CrmlibError(
                f"{model}: some customers have a negative {name}: {rows_text(bad)}; values {sample}. "
                f"{name} counts time or purchases and cannot be negative: check the as-of date and the order dates."
            )


def check_integer(model: str, name: str, arr: np.ndarray) -> None:
    bad = arr != np.round(arr)
    if bad.any():
        sample = ", ".join(_fmt(v) for v in arr[bad][:3])
        raise CrmlibError(
            f"{model}: {name} must be a whole number of repeat purchases, but {rows_text(bad)} "
            f"hold {sample}. frequency is the number of purchase periods minus one "
            "(crmlib.customers.customer_summary computes it)."
        )


def check_recency_T(model: str, frequency: np.ndarray, recency: np.ndarray, T: np.ndarray) -> None:
    bad = recency > T * (1 + 1e-12)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise CrmlibError(
            f"{model}: some customers have recency greater than T: {rows_text(bad)} "
            f"(first: recency={_fmt(recency[i])}, T={_fmt(T[i])}). Recency (first to last purchase) cannot exceed "
            "the customer's age T (first purchase to the as-of date): measure both in the same time unit and "
            "to the same as-of date, and drop orders after it."
        )
    bad = (frequency == 0) & (recency != 0)
    if bad.any():
        raise CrmlibError(
            f"{model}: some customers have no repeat purchase (frequency 0) but a non-zero recency: "
            f"{rows_text(bad)}. Recency is the time from the first to the last purchase, so it is 0 when there is "
            "no repeat purchase."
        )


def check_weights(model: str, weights, n: int) -> np.ndarray:
    if weights is None:
        return np.ones(n)
    w = as_vector(weights, "weights", model)
    check_same_length(model, customers=np.empty(n), weights=w)
    check_finite(model, weights=w)
    check_non_negative(model, weights=w)
    if w.sum() <= 0:
        raise CrmlibError(f"{model}: the weights add up to 0; give each row the number of customers it stands for.")
    return w


# ---------------------------------------------------------------------------------------------
# Maximum likelihood in log-parameter space
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Fit:
    log_params: np.ndarray
    log_likelihood: float
    covariance: np.ndarray  # of the parameters (delta method), NaN when the Hessian is singular
    converged: bool
    message: str
    n_iterations: int


def hessian_from_gradient(grad: Callable[[np.ndarray], np.ndarray], x: np.ndarray, step: float = 1e-5) -> np.ndarray:
    """Hessian by central differences of an analytic gradient, symmetrised."""
    k = len(x)
    H = np.empty((k, k))
    for j in range(k):
        e = np.zeros(k)
        e[j] = step
        H[:, j] = (grad(x + e) - grad(x - e)) / (2 * step)
    return (H + H.T) / 2


def fit_log_params(
    model: str,
    neg_ll_and_grad: Callable[[np.ndarray], tuple[float, np.ndarray]],
    starts: Sequence[np.ndarray],
    gtol: float = 1e-10,
    maxiter: int = 2000,
) -> Fit:
    """Minimise a negative log-likelihood over log-parameters; covariance of the parameters by the delta method.

    The starting points are tried in order until one converges cleanly (inside the bounds, small gradient);
    when none does, the best optimum found is kept and reported as not converged.
    """
    best = None
    for x0 in starts:
        with np.errstate(all="ignore"):
            res = minimize(
                neg_ll_and_grad, np.asarray(x0, dtype=float), jac=True, method="L-BFGS-B",
                bounds=[(-LOG_BOUND, LOG_BOUND)] * len(x0),
                options={"maxiter": maxiter, "gtol": gtol, "ftol": 1e-15, "maxcor": 20},
            )
        if np.isfinite(res.fun) and (best is None or res.fun < best.fun):
            best = res
        if best is res and (res.success or _small_gradient(res)) and np.all(np.abs(res.x) < LOG_BOUND - 1e-6):
            break
    if best is None:
        raise CrmlibError(
            f"{model}: the likelihood could not be evaluated at any starting point. The data may be degenerate "
            "(for example a single customer, or every customer identical)."
        )
    x = best.x
    with np.errstate(all="ignore"):
        H = hessian_from_gradient(lambda v: neg_ll_and_grad(v)[1], x)
    at_bound = bool(np.any(np.abs(x) >= LOG_BOUND - 1e-6))
    try:
        cov_log = np.linalg.inv(H)
        if not np.all(np.isfinite(cov_log)) or np.any(np.diag(cov_log) <= 0):
            raise np.linalg.LinAlgError
    except np.linalg.LinAlgError:
        cov_log = np.full_like(H, np.nan)
    J = np.diag(np.exp(x))
    converged = bool(best.success or _small_gradient(best)) and not at_bound and bool(np.all(np.isfinite(cov_log)))
    message = str(best.message)
    if at_bound:
        message = "a parameter ran off to 0 or infinity (the data do not identify it)"
    return Fit(x, -float(best.fun), J @ cov_log @ J, converged, message, int(best.nit))


def _small_gradient(res) -> bool:
    # L-BFGS-B can stop on "ABNORMAL_TERMINATION_IN_LNSRCH" at an optimum when the objective is flat to
    # machine precision; a tiny projected gradient is an optimum all the same.
    return bool(np.max(np.abs(res.jac)) < 1e-4)


def interval(estimate: float, se: float, z: float = 1.96) -> tuple[float, float]:
    """95 % interval on the log scale, where the likelihood was maximised: ``estimate * exp(-/+ z * se / estimate)``
    (``se / estimate`` is the standard error of the log-parameter). Always positive, unlike estimate -/+ z * se."""
    if not (np.isfinite(se) and estimate > 0):
        return float("nan"), float("nan")
    k = np.exp(z * se / estimate)
    return float(estimate / k), float(estimate * k)


def summary(params: np.ndarray, standard_errors: dict, names: Sequence[str]) -> dict[str, dict[str, float]]:
    out = {}
    for name, v in zip(names, params, strict=True):
        lo, hi = interval(float(v), standard_errors[name])
        out[name] = {"estimate": float(v), "se": standard_errors[name], "lower_95": lo, "upper_95": hi}
    return out


def compress(*columns: np.ndarray, weights: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """Group identical customer rows and add their weights (the likelihood is a weighted sum over patterns)."""
    stacked = np.column_stack(columns)
    unique, inverse = np.unique(stacked, axis=0, return_inverse=True)
    w = np.bincount(inverse.ravel(), weights=weights, minlength=len(unique))
    return [unique[:, j] for j in range(unique.shape[1])], w
