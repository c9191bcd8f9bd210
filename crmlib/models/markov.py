"""Markov-chain attribution with removal effects, solved exactly (absorbing-chain linear algebra).

The journeys of a path frame (:mod:`crmlib.models.attribution`) define an absorbing Markov chain:
``(start)`` -> channel states -> ``(conversion)`` or ``(null)``. Every journey contributes its
transitions with weight ``conversions + nulls``; its last state moves to ``(conversion)`` with weight
``conversions`` and to ``(null)`` with weight ``nulls``. Transition probabilities are the weighted
counts normalised per state. With ``Q`` the transient-to-transient probabilities, ``r`` the
probabilities of moving to ``(conversion)`` and ``pi`` the start distribution, the probability of
converting is ``P = pi . x`` where ``(I - Q) x = r`` (solved with :func:`numpy.linalg.solve`, or a
sparse LU for large higher-order chains) - no simulation.

**Removal effect** of channel ``c``: remove every state that contains ``c`` (the journeys that reach
it are lost: they go to ``(null)``) and solve again: ``RE_c = 1 - P_without_c / P``. Attributed
conversions ``= total conversions x RE_c / sum of RE``. Value is attributed the same way with a value
chain: the reward for moving from state ``s`` to ``(conversion)`` is the mean value of the journeys
that convert from ``s``, so ``V = pi . y`` with ``(I - Q) y = r_value`` is the expected value per
journey, and ``value RE_c = 1 - V_without_c / V`` (equal to the conversion RE when every conversion
has the same value).

Order: ``order=1`` (default) has one state per channel. ``order=k`` has one state per k-tuple of
consecutive channels (the last k touches; the first k-1 touches of a path are shorter tuples), as in
Anderl et al. (2016). Self-transitions (repeated channels) are kept; they do not change absorption
probabilities. ``order="path"`` is the limit of large k: once k reaches the longest path every state is a
path prefix, the chain is a tree and its removal effect is, exactly, the share of the observed
conversions (value) on the journeys that contain the channel, ``RE_c = conversions of paths with c /
all conversions``; it is computed in that closed form, for paths of any length.

**What removal effects credit** (docs/attribution.md). A first-order chain forgets which journey a
touch belongs to: it recombines pieces of different journeys, so a channel touched many times per
journey (display retargeting, social ads) lies on more of the chain's routes to conversion than its
presence on converting journeys would give it - the first-order removal effect rewards reach *and*
frequency. Higher orders remember more of each journey; ``order="path"`` rewards presence on converting
journeys only (as Shapley does). None of them is causal: a channel without any effect still gets credit
for the conversions of the journeys it happened to be in.

References
----------
Anderl, E., Becker, I., von Wangenheim, F. and Schumann, J. H. (2016). Mapping the customer journey:
    lessons learned from graph-based online attribution modeling. IJRM 33(3), 457-474.
Kemeny, J. G. and Snell, J. L. (1976). Finite Markov Chains, ch. III (absorbing chains).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from ..errors import ConfigError
from .attribution import (
    _empty,
    _use_campaigns,
    channel_codes,
    channels_of,
    prepare_paths,
    split_by_campaign,
)

__all__ = ["WHOLE_PATH", "markov", "removal_effects", "transition_matrix"]

START, CONVERSION, NULL = "(start)", "(conversion)", "(null)"
DENSE_MAX_STATES = 1500  # above this many states the linear systems are solved sparse
MAX_ORDER = 6
WHOLE_PATH = "path"  # order="path": the state is the whole path so far (the limit of large orders)


@dataclass(frozen=True)
class Chain:
    """The absorbing chain of a path frame (transition counts; probabilities are derived)."""

    channels: list[str]  # channel names, code = index
    states: np.ndarray  # int64 state ids (base len(channels)+1 digits, last touch in the lowest digit)
    base: int
    order: int
    start: np.ndarray  # (S,) weight of journeys starting in each state
    trans_from: np.ndarray  # transient transitions, aggregated: from state index
    trans_to: np.ndarray
    trans_w: np.ndarray
    conv: np.ndarray  # (S,) conversions leaving each state to (conversion)
    value: np.ndarray  # (S,) value leaving each state to (conversion)
    null: np.ndarray  # (S,) weight leaving each state to (null)

    @property
    def n_states(self) -> int:
        return len(self.states)

    @property
    def out_total(self) -> np.ndarray:
        return np.bincount(self.trans_from, weights=self.trans_w, minlength=self.n_states) + self.conv + self.null

    def digits(self) -> np.ndarray:
        """(order, S) channel code of each position of each state (-1 where the tuple is shorter)."""
        out = np.empty((self.order, self.n_states), dtype=np.int64)
        for j in range(self.order):
            out[j] = (self.states // self.base**j) % self.base - 1
        return out

    def state_names(self, sep: str = " > ") -> list[str]:
        d = self.digits()
        names = []
        for s in range(self.n_states):  # a loop over states (small), not over paths
            parts = [self.channels[d[j, s]] for j in range(self.order - 1, -1, -1) if d[j, s] >= 0]
            names.append(sep.join(parts))
        return names


def _check_order(order, whole_path_ok: bool = True) -> int | str:
    if whole_path_ok and order == WHOLE_PATH:
        return order
    if not isinstance(order, int) or isinstance(order, bool) or not 1 <= order <= MAX_ORDER:
        also = f", or {WHOLE_PATH!r} (the state is the whole path so far)" if whole_path_ok else ""
        raise ConfigError(f"Markov order must be an integer from 1 to {MAX_ORDER}{also}, not {order!r}.")
    return order


def build_chain(paths: pl.DataFrame, order: int = 1) -> Chain:
    """Transition counts of the chain of order ``order`` of a prepared path frame (numpy, vectorised)."""
    _check_order(order, whole_path_ok=False)
    channels = channels_of(paths)
    m = len(channels)
    base = m + 1
    if base ** order > 2**62:
        raise ConfigError(f"Markov order {order} with {m} channels has too many possible states; lower the order.")
    flat, lengths = channel_codes(paths, channels)
    conv = paths.get_column("conversions").to_numpy()
    nulls = paths.get_column("nulls").to_numpy()
    value = paths.get_column("value").to_numpy()
    weight = conv + nulls
    n_touch = len(flat)
    ends = np.cumsum(lengths)
    starts = ends - lengths
    last = ends - 1
    if order == 1:
        sid = flat + 1
    else:
        pos = np.arange(n_touch) - np.repeat(starts, lengths)
        sid = np.zeros(n_touch, dtype=np.int64)
        for j in range(order):  # a loop over the order, not over paths
            src = np.maximum(np.arange(n_touch) - j, 0)
            sid += np.where(pos >= j, flat[src] + 1, 0) * base**j
    if base**order <= 20_000_000:
        seen = np.zeros(base**order, dtype=bool)
        seen[sid] = True
        states = np.flatnonzero(seen)
        inv = sid - 1 if order == 1 and seen[1:].all() else (np.cumsum(seen) - 1)[sid]
    else:
        states, inv = np.unique(sid, return_inverse=True)
    n_states = len(states)
    inv = inv.astype(np.int64)
    # every touch moves to the next one with its path's weight, except the last touch of a path
    w = np.repeat(weight, lengths)[:-1]
    w[last[:-1]] = 0.0
    key = inv[:-1] * n_states + inv[1:]
    if n_states * n_states <= 20_000_000:
        agg = np.bincount(key, weights=w, minlength=n_states * n_states)
        ukey = np.flatnonzero(agg)
        agg_w = agg[ukey]
    else:
        key, w = key[w > 0], w[w > 0]
        ukey, kinv = np.unique(key, return_inverse=True)
        agg_w = np.bincount(kinv, weights=w)
    return Chain(
        channels=channels, states=states.astype(np.int64), base=base, order=order,
        start=np.bincount(inv[starts], weights=weight, minlength=n_states),
        trans_from=(ukey // n_states).astype(np.int64), trans_to=(ukey % n_states).astype(np.int64),
        trans_w=agg_w,
        conv=np.bincount(inv[last], weights=conv, minlength=n_states),
        value=np.bincount(inv[last], weights=value, minlength=n_states),
        null=np.bincount(inv[last], weights=nulls, minlength=n_states),
    )


def _solver(chain: Chain):
    """Return solve(keep) -> (P(conversion), expected value) with the states ``keep`` only."""
    n = chain.n_states
    out = chain.out_total
    out_safe = np.where(out > 0, out, 1.0)
    q_w = chain.trans_w / out_safe[chain.trans_from]
    rhs = np.column_stack([chain.conv / out_safe, chain.value / out_safe])
    total_start = chain.start.sum()
    pi = chain.start / total_start if total_start > 0 else chain.start
    if n <= DENSE_MAX_STATES:
        a = np.eye(n)
        np.subtract.at(a, (chain.trans_from, chain.trans_to), q_w)

        def solve(keep: np.ndarray) -> np.ndarray:
            idx = np.flatnonzero(keep)
            if len(idx) == 0:
                return np.zeros(2)
            x = np.linalg.solve(a[np.ix_(idx, idx)], rhs[idx])
            return pi[idx] @ x
    else:
        import scipy.sparse as sp
        from scipy.sparse.linalg import splu

        a = (sp.identity(n, format="csr") - sp.csr_matrix((q_w, (chain.trans_from, chain.trans_to)), shape=(n, n)))
        a = a.tocsc()

        def solve(keep: np.ndarray) -> np.ndarray:
            idx = np.flatnonzero(keep)
            if len(idx) == 0:
                return np.zeros(2)
            sub = a[idx][:, idx].tocsc()
            x = splu(sub).solve(rhs[idx])
            return pi[idx] @ x

    return solve


def _effects(chain: Chain) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Removal effects (conversions, value) per channel, and P(conversion), expected value per journey."""
    solve = _solver(chain)
    full = solve(np.ones(chain.n_states, dtype=bool))
    digits = chain.digits()
    m = len(chain.channels)
    re = np.zeros((m, 2))
    for c in range(m):  # one solve per channel
        keep = ~(digits == c).any(axis=0)
        part = solve(keep)
        with np.errstate(divide="ignore", invalid="ignore"):
            re[c] = np.where(full > 0, 1.0 - part / np.where(full > 0, full, 1.0), 0.0)
    re = np.clip(re, 0.0, 1.0)  # exact in theory; clip rounding noise
    return re[:, 0], re[:, 1], float(full[0]), float(full[1])


def _whole_path_effects(paths: pl.DataFrame) -> tuple[list[str], np.ndarray, np.ndarray, float, float]:
    """``order="path"``: RE_c = share of the conversions (value) on the paths that contain c (closed form)."""
    channels = channels_of(paths)
    m = len(channels)
    codes, lengths = channel_codes(paths, channels)
    conv = paths.get_column("conversions").to_numpy().astype(np.float64)
    value = paths.get_column("value").to_numpy().astype(np.float64)
    journeys = float(conv.sum() + paths.get_column("nulls").to_numpy().sum())
    pid = np.repeat(np.arange(len(lengths)), lengths)
    pair = np.unique(pid * m + codes)  # each (path, channel) once, however often the channel repeats
    p_of, c_of = pair // m, pair % m
    share = []
    for w in (conv, value):
        total = w.sum()
        with_c = np.bincount(c_of, weights=w[p_of], minlength=m)
        share.append(with_c / total if total > 0 else np.zeros(m))
    p = conv.sum() / journeys if journeys > 0 else 0.0
    v = value.sum() / journeys if journeys > 0 else 0.0
    return channels, share[0], share[1], float(p), float(v)


def _channel_effects(paths: pl.DataFrame, order) -> tuple[list[str], np.ndarray, np.ndarray, float, float]:
    if _check_order(order) == WHOLE_PATH:
        return _whole_path_effects(paths)
    chain = build_chain(paths, order)
    re, rv, p, v = _effects(chain)
    return chain.channels, re, rv, p, v


def removal_effects(paths, order: int | str = 1) -> pl.DataFrame:
    """Removal effect per channel: ``channel, removal_effect, value_removal_effect``.

    The frame also carries the chain's ``conversion_probability`` (P of converting from ``(start)``) and
    ``expected_value`` per journey, repeated on every row.
    """
    _check_order(order)
    paths = prepare_paths(paths)
    schema = {"channel": pl.String, "removal_effect": pl.Float64, "value_removal_effect": pl.Float64,
              "conversion_probability": pl.Float64, "expected_value": pl.Float64}
    if paths.height == 0:
        return pl.DataFrame(schema=schema)
    channels, re, rv, p, v = _channel_effects(paths, order)
    return pl.DataFrame({"channel": channels, "removal_effect": re, "value_removal_effect": rv,
                         "conversion_probability": p, "expected_value": v}, schema=schema)


def markov(paths, order: int | str = 1, by_campaign: bool | None = None) -> pl.DataFrame:
    """Markov removal-effect attribution, exact: ``channel, [campaign], conversions, value``.

    Attributed conversions of channel ``c`` = total conversions x RE_c / sum of RE (value likewise with
    the value removal effects). ``order``: 1 to :data:`MAX_ORDER`, or ``"path"`` (the whole path, the
    limit of large orders). See the module doc for what each order credits.

    >>> import polars as pl
    >>> paths = pl.DataFrame({"path": [["A"], ["B"], ["A", "B"], ["A"]],
    ...                       "conversions": [2, 1, 1, 0], "nulls": [0, 0, 0, 1]})
    >>> markov(paths)["conversions"].round(6).to_list()
    [2.4, 1.6]
    """
    _check_order(order)
    paths = prepare_paths(paths)
    campaign = _use_campaigns(paths, by_campaign)
    if paths.height == 0:
        return _empty(campaign)
    channels, re, rv, _, _ = _channel_effects(paths, order)
    total_c = float(paths.get_column("conversions").sum())
    total_v = float(paths.get_column("value").sum())
    conv = total_c * re / re.sum() if re.sum() > 0 else np.zeros_like(re)
    val = total_v * rv / rv.sum() if rv.sum() > 0 else np.zeros_like(rv)
    credit = pl.DataFrame({"channel": channels, "conversions": conv, "value": val},
                          schema={"channel": pl.String, "conversions": pl.Float64, "value": pl.Float64})
    if campaign:
        return split_by_campaign(credit, paths)
    return credit  # every channel of the paths, sorted


def transition_matrix(paths, order: int = 1) -> pl.DataFrame:
    """The chain's transition probabilities, tidy: ``from, to, count, probability``.

    States are channel names (k-tuples joined by `` > `` for higher orders), plus ``(start)``,
    ``(conversion)`` and ``(null)``. Counts are journey weights (conversions + nulls). ``order`` is an
    integer here (the ``"path"`` chain is a tree of every distinct path prefix: not a graph to draw).
    """
    _check_order(order, whole_path_ok=False)
    paths = prepare_paths(paths)
    schema = {"from": pl.String, "to": pl.String, "count": pl.Float64, "probability": pl.Float64}
    if paths.height == 0:
        return pl.DataFrame(schema=schema)
    chain = build_chain(paths, order)
    names = np.array(chain.state_names(), dtype=object)
    idx = np.arange(chain.n_states)
    frm = np.concatenate([np.full(chain.n_states, START, dtype=object), names[chain.trans_from], names[idx],
                          names[idx]])
    to = np.concatenate([names[idx], names[chain.trans_to], np.full(chain.n_states, CONVERSION, dtype=object),
                         np.full(chain.n_states, NULL, dtype=object)])
    cnt = np.concatenate([chain.start, chain.trans_w, chain.conv, chain.null])
    out = pl.DataFrame({"from": frm.tolist(), "to": to.tolist(), "count": cnt}, schema={
        "from": pl.String, "to": pl.String, "count": pl.Float64})
    return (out.filter(pl.col("count") > 0)
            .with_columns((pl.col("count") / pl.col("count").sum().over("from")).alias("probability"))
            .sort("from", "to"))
