"""Shapley-value attribution ("simplified Shapley" of Zhao et al. 2018), exact or by permutation sampling.

Players are the channels. The characteristic function of a coalition ``S`` of channels is

    v(S) = sum of the conversions (value) of the paths whose channel SET is a subset of S,

the conversions that the channels of ``S`` could have produced on their own (Zhao et al. 2018, sec.
3.1). ``v(empty) = 0`` and ``v(all channels) = total``, so the Shapley values add up to the total
conversions (value) exactly. Non-converting paths (``nulls``) do not enter this game; repeated touches
and the order of touches do not matter.

Computation:

* **exact** when there are at most ``max_exact`` channels (default :data:`MAX_EXACT_CHANNELS` = 15):
  ``v`` is tabulated over all ``2**m`` coalitions as numpy arrays indexed by bit mask (a subset-sum
  transform), and ``phi_i = sum over S not containing i of |S|! (m-|S|-1)! / m! (v(S + i) - v(S))``;
* **sampled** above it: ``n_permutations`` random channel orders (seeded). In an order, channel ``i``'s
  marginal contribution is the total of the paths whose channel set is completed by ``i`` (``i`` is the
  set's last member in that order); ``phi_i`` is its mean over the orders. Every sampled order credits
  the total exactly, so the estimate still conserves the total. The standard error of each channel's
  estimate (sample standard deviation / sqrt(n_permutations)) is returned in ``conversions_se`` and
  ``value_se`` (0 when exact).

For this game the Shapley value has the closed form ``phi_i = sum over sets T containing i of
R(T) / |T|`` (``R(T)``: conversions of paths whose channel set is exactly T; Zhao et al. eq. 9) - every
converting path's credit split evenly over its distinct channels. The tests use it as an independent
check of both computations.

References
----------
Shapley, L. S. (1953). A value for n-person games. Contributions to the Theory of Games II, 307-317.
Zhao, K., Mahboobi, S. H. and Bagheri, S. R. (2018). Shapley value methods for attribution modeling in
    online advertising. arXiv:1804.05327.
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl

from ..errors import ConfigError
from .attribution import (
    _use_campaigns,
    channel_codes,
    channels_of,
    prepare_paths,
    split_by_campaign,
)

__all__ = ["MAX_EXACT_CHANNELS", "shapley"]

MAX_EXACT_CHANNELS = 15
DEFAULT_PERMUTATIONS = 2000
_BATCH_CELLS = 4_000_000  # permutations x (set, member) pairs per sampling batch


def _set_masks(paths: pl.DataFrame, channels: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Distinct channel sets of the converting paths as bit masks (< 63 channels), and R (n_sets, 2):
    their conversions and value."""
    conv = paths.get_column("conversions").to_numpy()
    value = paths.get_column("value").to_numpy()
    codes, lengths = channel_codes(paths, channels)
    starts = np.cumsum(lengths) - lengths
    masks = np.bitwise_or.reduceat(np.left_shift(np.int64(1), codes), starts)
    keep = conv > 0
    sets, inv = np.unique(masks[keep], return_inverse=True)
    r = np.column_stack([np.bincount(inv, weights=conv[keep], minlength=len(sets)),
                         np.bincount(inv, weights=value[keep], minlength=len(sets))])
    return sets, r


def _exact(sets: np.ndarray, r: np.ndarray, m: int) -> np.ndarray:
    n = 1 << m
    v = np.column_stack([np.bincount(sets, weights=r[:, k], minlength=n) for k in range(2)])
    for i in range(m):  # subset-sum (zeta) transform: v(S) = sum of R(T) for T within S
        v3 = v.reshape(n >> (i + 1), 2, 1 << i, 2)
        v3[:, 1] += v3[:, 0]
    popcount = np.zeros(n, dtype=np.int64)
    for i in range(m):
        popcount += (np.arange(n) >> i) & 1
    weight = np.array([math.factorial(s) * math.factorial(m - s - 1) / math.factorial(m) for s in range(m)])
    phi = np.zeros((m, 2))
    for i in range(m):  # a loop over channels; coalitions are vectorised
        v3 = v.reshape(n >> (i + 1), 2, 1 << i, 2)
        pc = popcount.reshape(n >> (i + 1), 2, 1 << i)[:, 0]
        phi[i] = np.einsum("ab,abk->k", weight[pc], v3[:, 1] - v3[:, 0])
    return phi


def _sampled(sets: np.ndarray, r: np.ndarray, m: int, n_perm: int, seed: int):
    # member pairs (set, channel), sorted by set
    bits = (sets[:, None] >> np.arange(m)) & 1
    pset, pch = np.nonzero(bits)
    rng = np.random.default_rng(seed)
    starts = np.flatnonzero(np.r_[True, pset[1:] != pset[:-1]])
    total = np.zeros((m, 2))
    total_sq = np.zeros((m, 2))
    batch = max(1, min(n_perm, _BATCH_CELLS // max(1, len(pch))))
    done = 0
    while done < n_perm:
        b = min(batch, n_perm - done)
        perm = np.argsort(rng.random((b, m)), axis=1)  # perm[k, position] = channel
        rank = np.argsort(perm, axis=1)  # rank[k, channel] = position
        last = np.maximum.reduceat(rank[:, pch], starts, axis=1)  # (b, n_sets): position of the last member
        winner = np.take_along_axis(perm, last, axis=1)  # (b, n_sets) channel completing each set
        flat = (np.arange(b)[:, None] * m + winner).ravel()
        x = np.column_stack([np.bincount(flat, weights=np.tile(r[:, k], b), minlength=b * m) for k in range(2)])
        x = x.reshape(b, m, 2)
        total += x.sum(axis=0)
        total_sq += (x**2).sum(axis=0)
        done += b
    mean = total / n_perm
    var = np.maximum(total_sq / n_perm - mean**2, 0.0) * n_perm / max(n_perm - 1, 1)
    return mean, np.sqrt(var / n_perm)


def shapley(paths, max_exact: int = MAX_EXACT_CHANNELS, n_permutations: int = DEFAULT_PERMUTATIONS, seed: int = 0,
            by_campaign: bool | None = None) -> pl.DataFrame:
    """Simplified Shapley attribution: ``channel, [campaign], conversions, value, conversions_se, value_se``.

    Exact over all coalitions when the paths name at most ``max_exact`` channels (at most 22: the table
    has ``2**channels`` rows); otherwise the mean marginal contribution over ``n_permutations`` random
    channel orders drawn with ``seed``, with its standard error (see the module doc).

    >>> import polars as pl
    >>> paths = pl.DataFrame({"path": [["A"], ["A", "B"]], "conversions": [2, 2]})
    >>> shapley(paths)["conversions"].to_list()
    [3.0, 1.0]
    """
    if not isinstance(max_exact, int) or not 0 <= max_exact <= 22:
        raise ConfigError(f"max_exact must be an integer from 0 to 22 (2**22 coalitions), not {max_exact!r}.")
    if not isinstance(n_permutations, int) or n_permutations < 2:
        raise ConfigError(f"n_permutations must be an integer >= 2, not {n_permutations!r}.")
    paths = prepare_paths(paths)
    campaign = _use_campaigns(paths, by_campaign)
    schema = {"channel": pl.String, "conversions": pl.Float64, "value": pl.Float64,
              "conversions_se": pl.Float64, "value_se": pl.Float64}
    channels = channels_of(paths) if paths.height else []
    m = len(channels)
    if m == 0:
        empty = pl.DataFrame(schema=schema)
        return empty.insert_column(1, pl.Series("campaign", [], pl.String)) if campaign else empty
    if m > 62:
        raise ConfigError(f"shapley handles at most 62 channels, and the paths name {m}. Group rare channels "
                          "into one (e.g. 'other') first.")
    sets, r = _set_masks(paths, channels)
    if len(sets) == 0:
        phi, se = np.zeros((m, 2)), np.zeros((m, 2))
    elif m <= max_exact:
        phi, se = _exact(sets, r, m), np.zeros((m, 2))
    else:
        phi, se = _sampled(sets, r, m, n_permutations, seed)
    credit = pl.DataFrame({"channel": channels, "conversions": phi[:, 0], "value": phi[:, 1],
                           "conversions_se": se[:, 0], "value_se": se[:, 1]}, schema=schema)
    if campaign:
        return split_by_campaign(credit, paths)
    return credit  # every channel of the paths, sorted
