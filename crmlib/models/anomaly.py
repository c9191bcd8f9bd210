"""Anomalies in KPI time series and among peers: robust (median/MAD) and seasonal-aware baselines.

The input is small and aggregated: one value per period (and per group), as the KPI engine returns it.
Every checked point gets an **expected** value, a **band** ``[lower, upper]`` and a **score** (how many
robust standard deviations the point is from the expected value); it is an anomaly when ``|score| > k``.

Methods (``method=``):

* ``"robust"``: the baseline is the **median of the previous ``window`` points** (default 12), the spread
  ``sigma = 1.4826 * MAD`` of those points (the MAD scaled to a normal standard deviation). Score
  ``(x - median) / sigma``; band ``median ± k·sigma``. For series that have no seasonality (or a grain
  without one, e.g. years).
* ``"seasonal"``: **same period last year, scaled by the recent year-over-year change.** With the season
  length ``m`` (12 months, 4 quarters, 52 weeks, 7 days), the year-over-year log ratios
  ``r_s = log(x_s + c) - log(x_{s-m} + c)`` of the previous ``window`` points (default 24: up to two
  years of ratios, as many as there are; the MAD of a handful is itself noisy) give their median ``ρ``
  and spread ``sigma = 1.4826 * MAD(r)``. Expected ``x̂_t = (x_{t-m} + c)·exp(ρ) - c``; score
  ``(log(x_t + c) - log(x_{t-m} + c) - ρ) / sigma``; band ``(x_{t-m} + c)·exp(ρ ± k·sigma) - c``.
  ``c`` is 0.5 for counts (so that a zero count is defined) and 0 otherwise. A series with values
  ≤ 0 (and not counts) uses differences instead of log ratios (``x̂_t = x_{t-m} + median(x_s - x_{s-m})``).

Both are *causal*: a point is judged only on what came before it, as an alert would have been raised at
the time. A point found anomalous is left out of the windows that later points are judged on (it would
widen their spread), and as the year-ago base ``x_{t-m}`` of a seasonal check it is replaced by its
expected value, so one bad month neither masks the next ones nor raises an "echo" a season later.

**Counts** (``counts=True``, KPIs with unit ``count``) are noisy by nature: a count with mean λ has a
Poisson standard deviation √λ. The spread is never taken below it: robust ``sigma ≥ √expected``;
seasonal ``sigma ≥ sqrt(1/(x_{t-m}+c) + 1/(x̂_t+c))`` (the delta-method spread of a log ratio of two
Poisson counts). So a series of small counts (5 leads a month) cannot raise an alert from noise.

**Minimum history (no alert from too little data).** A point is checked only when it is complete (the
caller passes ``complete``) and has at least ``min_points`` (default 6) usable earlier points in its
window: for ``robust`` 6 earlier values; for ``seasonal`` one full season plus 6 year-over-year ratios,
i.e. ``m + 6`` earlier periods (18 months for monthly data, 10 quarters, 58 weeks, 13 days). Other points
get status ``"insufficient_history"`` (or ``"partial"``) and no score.

The threshold ``k = 3.5`` is the usual cut-off for the modified (median/MAD) z-score (Iglewicz and
Hoaglin, *How to Detect and Handle Outliers*, ASQC 1993).

:func:`peer_outliers` applies the same robust score *across groups* in one period (a team × priority
cell far below the other cells), with the median and MAD of all groups as the baseline.

References
----------
Iglewicz, B. and Hoaglin, D. C. (1993). *How to Detect and Handle Outliers*. ASQC Quality Press.
Hyndman, R. J. and Athanasopoulos, G. (2021). *Forecasting: Principles and Practice*, 3rd ed., §5.2
(the seasonal naïve method with drift).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from ..errors import ConfigError

METHODS = ("seasonal", "robust")
SEASON = {"day": 7, "week": 52, "month": 12, "quarter": 4}
MAD_TO_SD = 1.4826
DEFAULT_K = 3.5
DEFAULT_WINDOW = {"robust": 12, "seasonal": 24}  # earlier points (robust) or year-over-year ratios
MIN_POINTS = 6
STATUSES = ("ok", "anomaly", "insufficient_history", "partial", "missing")


@dataclass(frozen=True)
class SeriesResult:
    """Per point of one series: expected value, band, score, anomaly flag and status (arrays)."""

    expected: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    score: np.ndarray
    anomaly: np.ndarray
    status: list[str]


def min_history(method: str, grain: str | None = None, min_points: int = MIN_POINTS) -> int:
    """How many earlier periods a point needs before it is checked."""
    _check_method(method)
    if method == "seasonal" and grain in SEASON:
        return SEASON[grain] + min_points
    return min_points


def _check_method(method: str) -> str:
    if method not in METHODS:
        from ..errors import suggest

        raise ConfigError(
            f"Unknown anomaly method {method!r}.{suggest(str(method), METHODS)} Use one of: "
            f"{', '.join(METHODS)}."
        )
    return method


def _mad_sigma(values: np.ndarray) -> tuple[float, float]:
    med = float(np.median(values))
    return med, MAD_TO_SD * float(np.median(np.abs(values - med)))


def detect_series(
    values: Sequence[float] | np.ndarray,
    method: str = "seasonal",
    season: int | None = 12,
    window: int | None = None,
    k: float = DEFAULT_K,
    counts: bool = False,
    complete: Sequence[bool] | None = None,
    min_points: int = MIN_POINTS,
) -> SeriesResult:
    """Check every point of one series (oldest first; NaN/None = missing) against its causal baseline.

    ``method="seasonal"`` needs ``season`` (periods per year); with ``season=None`` it falls back to
    ``"robust"``. See the module docstring for the formulas.
    """
    _check_method(method)
    window = window or DEFAULT_WINDOW[method]
    if k <= 0 or window < 2 or min_points < 2:
        raise ConfigError(
            f"Anomaly settings: k must be > 0, window >= 2 and min_points >= 2 (got k={k}, "
            f"window={window}, min_points={min_points})."
        )
    x = np.array([np.nan if v is None else float(v) for v in values], dtype=float)
    n = len(x)
    done = np.ones(n, dtype=bool) if complete is None else np.asarray(complete, dtype=bool)
    seasonal = method == "seasonal" and season is not None and season > 0
    c = 0.5 if counts else 0.0
    # log ratios need positive values; a series with values <= 0 (not counts) works on differences
    finite = x[np.isfinite(x)]
    logs = seasonal and (counts or (finite.size > 0 and bool((finite > 0).all())))
    clean = x.copy()  # anomalies replaced by their expected value (seasonal base x_{t-m})
    kept = x.copy()  # anomalies left out (NaN): the windows that give centre and spread
    out = {name: np.full(n, np.nan) for name in ("expected", "lower", "upper", "score")}
    anomaly = np.zeros(n, dtype=bool)
    status = ["insufficient_history"] * n
    for t in range(n):
        if not np.isfinite(x[t]):
            status[t] = "missing"
            continue
        if not done[t]:
            status[t] = "partial"
            continue
        if seasonal:
            got = _seasonal_point(clean, kept, t, season, window, k, counts, c, logs, min_points)
        else:
            got = _robust_point(kept, t, window, k, counts, min_points)
        if got is None:
            continue
        expected, lower, upper, score = got
        out["expected"][t], out["lower"][t], out["upper"][t], out["score"][t] = expected, lower, upper, score
        anomaly[t] = abs(score) > k
        status[t] = "anomaly" if anomaly[t] else "ok"
        if anomaly[t]:
            clean[t], kept[t] = expected, np.nan
    return SeriesResult(out["expected"], out["lower"], out["upper"], out["score"], anomaly, status)


def _score(x: float, centre: float, sigma: float) -> float:
    if sigma > 0:
        return (x - centre) / sigma
    return 0.0 if x == centre else math.copysign(math.inf, x - centre)


def _robust_point(kept, t, window, k, counts, min_points):
    hist = kept[max(0, t - window) : t]
    hist = hist[np.isfinite(hist)]
    if hist.size < min_points:
        return None
    med, sigma = _mad_sigma(hist)
    if counts:
        sigma = max(sigma, math.sqrt(max(med, 1.0)))
    x = kept[t]
    return med, med - k * sigma, med + k * sigma, _score(x, med, sigma)


def _seasonal_point(clean, kept, t, m, window, k, counts, c, logs, min_points):
    if t < m or not np.isfinite(clean[t - m]):
        return None
    s = np.arange(max(m, t - window), t)
    cur, base = kept[s], clean[s - m]
    ok = np.isfinite(cur) & np.isfinite(base)
    if logs:
        ok &= (cur + c > 0) & (base + c > 0)
    if ok.sum() < min_points or (logs and clean[t - m] + c <= 0):
        return None
    x, b = clean[t], clean[t - m]
    if logs:
        r = np.log(cur[ok] + c) - np.log(base[ok] + c)
        rho, sigma = _mad_sigma(r)
        expected = (b + c) * math.exp(rho) - c
        if counts:
            sigma = max(sigma, math.sqrt(1.0 / (b + c) + 1.0 / max(expected + c, c or 1e-12)))
        score = _score(math.log(x + c) - math.log(b + c), rho, sigma) if x + c > 0 else -math.inf
        lower = (b + c) * math.exp(rho - k * sigma) - c
        upper = (b + c) * math.exp(rho + k * sigma) - c
        return expected, lower, upper, score
    d = cur[ok] - base[ok]
    drift, sigma = _mad_sigma(d)
    expected = b + drift
    return expected, expected - k * sigma, expected + k * sigma, _score(x, expected, sigma)


def detect(
    frame: pl.DataFrame,
    method: str = "seasonal",
    grain: str = "month",
    by: Sequence[str] = (),
    value: str = "value",
    period: str = "period",
    window: int | None = None,
    k: float = DEFAULT_K,
    counts: bool = False,
    min_points: int = MIN_POINTS,
) -> pl.DataFrame:
    """Check each series of a tidy frame (one row per ``by`` group and ``period``).

    A ``complete`` column (as the KPI engine returns it) marks partial periods, which are not checked.
    ``method="seasonal"`` on a grain without a season (``year``) falls back to ``"robust"``.

    Returns the frame's ``by`` columns, ``period``, ``value`` and ``expected, lower, upper, score,
    is_anomaly, status, method``, sorted by group and period.
    """
    _check_method(method)
    by = list(by)
    missing = [c for c in (*by, period, value) if c not in frame.columns]
    if missing:
        raise ConfigError(
            f"detect(): the frame has no column {', '.join(missing)}; it has {', '.join(frame.columns)}."
        )
    season = SEASON.get(grain) if method == "seasonal" else None
    used = method if season is not None or method == "robust" else "robust"
    cols = [*by, period, value, *(["complete"] if "complete" in frame.columns else [])]
    data = frame.select(cols).sort([*by, period], nulls_last=True)
    parts = data.partition_by(by, maintain_order=True) if by else [data]
    out = []
    for part in parts:
        done = part["complete"].fill_null(False).to_list() if "complete" in part.columns else None
        res = detect_series(
            part[value].cast(pl.Float64).to_numpy(),
            method=used,
            season=season,
            window=window,
            k=k,
            counts=counts,
            complete=done,
            min_points=min_points,
        )
        out.append(
            part.select(*by, period, pl.col(value).cast(pl.Float64).alias("value")).with_columns(
                pl.Series("expected", res.expected),
                pl.Series("lower", res.lower),
                pl.Series("upper", res.upper),
                pl.Series("score", res.score),
                pl.Series("is_anomaly", res.anomaly),
                pl.Series("status", res.status, dtype=pl.String),
                pl.lit(used).alias("method"),
            )
        )
    if not out:
        return _empty(frame, by, period)
    return pl.concat(out).with_columns(pl.col(c).fill_nan(None) for c in ("expected", "lower", "upper"))


def _empty(frame: pl.DataFrame, by, period) -> pl.DataFrame:
    schema = {c: frame.schema[c] for c in (*by, period)}
    schema.update(
        {
            "value": pl.Float64,
            "expected": pl.Float64,
            "lower": pl.Float64,
            "upper": pl.Float64,
            "score": pl.Float64,
            "is_anomaly": pl.Boolean,
            "status": pl.String,
            "method": pl.String,
        }
    )
    return pl.DataFrame(schema=schema)


def peer_outliers(
    frame: pl.DataFrame,
    by: Sequence[str],
    value: str = "value",
    k: float = DEFAULT_K,
    min_groups: int = 5,
    weight: str | None = None,
    min_weight: float = 0,
) -> pl.DataFrame:
    """Groups far from their peers in one period: robust score against the median and MAD of all groups.

    ``frame`` has one row per group (``by``). Groups with a null value (or ``weight`` below
    ``min_weight``, e.g. too few cases behind a rate) are left out of the baseline and not judged. With
    fewer than ``min_groups`` judged groups nothing is scored (status ``insufficient_history``).

    Returns ``by…, value, expected (peer median), lower, upper, score, is_anomaly, status``.
    """
    by = list(by)
    base = frame.with_columns(pl.col(value).cast(pl.Float64))
    vals = base[value].fill_nan(None).to_numpy().astype(float)
    judged = np.isfinite(vals)
    if weight is not None:
        judged &= base[weight].fill_null(0).to_numpy().astype(float) >= min_weight
    n = len(vals)
    expected = lower = upper = None
    score = np.full(n, np.nan)
    if judged.sum() >= min_groups:
        expected, sigma = _mad_sigma(vals[judged])
        lower, upper = expected - k * sigma, expected + k * sigma
        score[judged] = [_score(v, expected, sigma) for v in vals[judged]]
    flag = np.isfinite(score) & (np.abs(np.nan_to_num(score, nan=0.0)) > k) | np.isinf(score)
    status = [
        "insufficient_history" if not np.isfinite(s) and not np.isinf(s) else "anomaly" if f else "ok"
        for s, f in zip(score, flag, strict=True)
    ]
    return base.select(*by, pl.col(value).alias("value")).with_columns(
        pl.lit(expected, pl.Float64).alias("expected"),
        pl.lit(lower, pl.Float64).alias("lower"),
        pl.lit(upper, pl.Float64).alias("upper"),
        pl.Series("score", score).fill_nan(None),
        pl.Series("is_anomaly", flag),
        pl.Series("status", status, dtype=pl.String),
    )


__all__ = [
    "DEFAULT_K",
    "METHODS",
    "MIN_POINTS",
    "SEASON",
    "SeriesResult",
    "detect",
    "detect_series",
    "min_history",
    "peer_outliers",
]
