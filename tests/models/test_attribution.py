"""Attribution models: hand-computed cases, conservation of totals, and the ChannelAttribution demo data.

Every expected number below is computed by hand in the comment next to it (or comes from the data's
SOURCE.md), never copied from the code's output.
"""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crmlib.errors import ConfigError
from crmlib.models import attribution as A
from crmlib.models.markov import markov, removal_effects, transition_matrix
from crmlib.models.shapley import shapley

DATA_CSV = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "channelattribution_pathdata" / "Data.csv"


def credit(frame: pl.DataFrame, column: str = "conversions") -> dict[str, float]:
    return dict(zip(frame.get_column("channel").to_list(), frame.get_column(column).to_list(), strict=True))


def approx(d: dict[str, float], rel=1e-9, abs=1e-9):  # noqa: A002 - mirrors pytest.approx
    return pytest.approx(d, rel=rel, abs=abs)


# ---------------------------------------------------------------------------------------------------
# Markov: the toy case of issue 9
# ---------------------------------------------------------------------------------------------------
# Paths: A x2 converting, B x1 converting, A > B x1 converting, A x1 not converting.
# Transition counts (every journey weighs conversions + nulls):
#   (start) -> A: 2 + 1 + 1 = 4, (start) -> B: 1                  => P(start->A) = 4/5, P(start->B) = 1/5
#   A -> (conversion): 2, A -> B: 1, A -> (null): 1               => 1/2, 1/4, 1/4
#   B -> (conversion): 1 (path B) + 1 (path A > B) = 2            => 1
# P(conversion) = 4/5 * (1/2 + 1/4 * 1) + 1/5 * 1 = 3/5 + 1/5 = 4/5
# Without A: only (start) -> B -> (conversion) survives:           P = 1/5  => RE_A = 1 - (1/5)/(4/5) = 0.75
# Without B: (start) -> A -> (conversion) only:                    P = 4/5 * 1/2 = 2/5 => RE_B = 1 - (2/5)/(4/5) = 0.5
# 4 conversions split 0.75 : 0.5 => A = 4 * 0.75 / 1.25 = 2.4, B = 4 * 0.5 / 1.25 = 1.6
TOY = pl.DataFrame({"path": [["A"], ["B"], ["A", "B"], ["A"]], "conversions": [2, 1, 1, 0], "nulls": [0, 0, 0, 1]})


def test_markov_toy_removal_effects():
    re = removal_effects(TOY)
    assert credit(re, "removal_effect") == approx({"A": 0.75, "B": 0.5})
    assert re.get_column("conversion_probability").to_list() == pytest.approx([0.8, 0.8])


def test_markov_toy_attribution():
    assert credit(markov(TOY)) == approx({"A": 2.4, "B": 1.6})


def test_markov_toy_transition_matrix():
    tm = transition_matrix(TOY)
    got = {(f, t): p for f, t, p in tm.select("from", "to", "probability").iter_rows()}
    assert got == pytest.approx({
        ("(start)", "A"): 4 / 5, ("(start)", "B"): 1 / 5,
        ("A", "(conversion)"): 1 / 2, ("A", "B"): 1 / 4, ("A", "(null)"): 1 / 4,
        ("B", "(conversion)"): 1.0,
    })


def test_markov_value_chain_by_hand():
    # The toy paths with values: A x2 -> 100 in total, B -> 10, A > B -> 50, A x1 null.
    # Value reward for moving to (conversion): from A the two conversions are worth 100 (50 each):
    #   r_A = P(A->conv) * 50 = 1/2 * 50 = 25; from B two conversions worth 10 + 50 = 60: r_B = 1 * 30 = 30.
    # y_B = 30, y_A = 25 + 1/4 * y_B = 32.5; V = 4/5 * 32.5 + 1/5 * 30 = 32 (= 160 value / 5 journeys).
    # Without A: V = 1/5 * 30 = 6 => RE_A = 1 - 6/32 = 26/32. Without B: V = 4/5 * 25 = 20 => RE_B = 12/32.
    # Value 160 split 26 : 12 => A = 160 * 26/38, B = 160 * 12/38.
    paths = TOY.with_columns(pl.Series("value", [100.0, 10.0, 50.0, 0.0]))
    assert credit(removal_effects(paths), "value_removal_effect") == approx({"A": 26 / 32, "B": 12 / 32})
    assert credit(markov(paths), "value") == approx({"A": 160 * 26 / 38, "B": 160 * 12 / 38})
    assert credit(markov(paths)) == approx({"A": 2.4, "B": 1.6})  # conversions unchanged


def test_markov_second_order_by_hand():
    # A > C converts once, B > C never (one null).
    # Order 1: (start) -> A, B 1/2 each; A -> C, B -> C 1; C -> (conversion), (null) 1/2 each. P = 1/2
    #   without A: 1/2 * 1/2 = 1/4 => RE_A = 1/2; without B: RE_B = 1/2; without C: 0 => RE_C = 1
    #   1 conversion split 1/2 : 1/2 : 1 => A 0.25, B 0.25, C 0.5
    # Order 2: states A, B, (A,C), (B,C); (A,C) -> conversion 1, (B,C) -> null 1. P = 1/2.
    #   without A: A and (A,C) go => P = 0 => RE_A = 1; without B: P = 1/2 => RE_B = 0; without C: RE_C = 1
    #   => A 0.5, B 0, C 0.5
    paths = pl.DataFrame({"path": [["A", "C"], ["B", "C"]], "conversions": [1, 0], "nulls": [0, 1]})
    assert credit(markov(paths)) == approx({"A": 0.25, "B": 0.25, "C": 0.5})
    assert credit(markov(paths, order=2)) == approx({"A": 0.5, "B": 0.0, "C": 0.5})


def test_markov_sparse_solver_matches_dense(monkeypatch):
    from crmlib.models import markov as mk

    paths = pl.DataFrame({
        "path": [["a", "b", "c"], ["b", "a"], ["c", "c", "a", "d"], ["d"], ["a", "d", "b"]],
        "conversions": [3, 1, 2, 0, 1], "nulls": [1, 4, 0, 2, 3], "value": [30.0, 5.0, 12.0, 0.0, 9.0]})
    dense = markov(paths, order=2)
    monkeypatch.setattr(mk, "DENSE_MAX_STATES", 0)
    sparse = markov(paths, order=2)
    assert credit(sparse) == approx(credit(dense))
    assert credit(sparse, "value") == approx(credit(dense, "value"))


# ---------------------------------------------------------------------------------------------------
# What removal effects credit (docs/attribution.md): touch frequency at first order, channel presence
# in the limit of a chain that remembers the whole path
# ---------------------------------------------------------------------------------------------------
def test_markov_first_order_credits_a_repeated_channel_more():
    # Two data sets with the same channel sets and outcomes: {D, E} converts once, {D} never (one null).
    # (1) D > E converts, D does not.
    #   (start) -> D 2; D -> E 1, D -> (null) 1 => 1/2, 1/2; E -> (conversion) 1. P = 1/2 * 1 = 1/2.
    #   Without D: 0 => RE_D = 1. Without E: 0 => RE_E = 1. 1 conversion split 1 : 1 => D 1/2, E 1/2.
    # (2) D > E > D converts (one more D touch, after E), D does not.
    #   (start) -> D 2; D -> E 1, D -> (conversion) 1, D -> (null) 1 => 1/3 each; E -> D 1.
    #   x_D = 1/3 + 1/3 x_E and x_E = x_D => x_D = 1/2 = P.
    #   Without D: 0 => RE_D = 1. Without E: x_D = 1/3 => RE_E = 1 - (1/3)/(1/2) = 1/3.
    #   Split 1 : 1/3 => D 3/4, E 1/4: the extra D touch moved a quarter of E's credit to D.
    # Order 3 (>= the longest path) remembers whole paths: RE_D = RE_E = 1 (every conversion has both) =>
    # 1/2 each, as Shapley gives (the converting set {D, E} split evenly), however often D repeats.
    once = pl.DataFrame({"path": [["D", "E"], ["D"]], "conversions": [1, 0], "nulls": [0, 1]})
    twice = pl.DataFrame({"path": [["D", "E", "D"], ["D"]], "conversions": [1, 0], "nulls": [0, 1]})
    assert credit(markov(once)) == approx({"D": 0.5, "E": 0.5})
    assert credit(markov(twice)) == approx({"D": 0.75, "E": 0.25})
    assert credit(removal_effects(twice), "removal_effect") == approx({"D": 1.0, "E": 1 / 3})
    assert credit(markov(twice, order=3)) == approx({"D": 0.5, "E": 0.5})
    assert credit(markov(twice, order="path")) == approx({"D": 0.5, "E": 0.5})
    assert credit(shapley(twice)) == approx({"D": 0.5, "E": 0.5})


# Whole-path limit by hand: A > B converts 2 (no null), B > A > B converts 1 and 1 null, A 2 nulls, C > A converts 1.
# 7 journeys, 4 conversions. Every path has A => RE_A = 1. Without B only C > A and A remain: 1 conversion
# => RE_B = 1 - 1/4 = 3/4. Without C: 3 conversions remain => RE_C = 1/4. Sum 2: A 4 * 1/2 = 2, B 4 * 3/8 = 1.5,
# C 4 * 1/8 = 0.5. At order >= 3 every state is a path prefix (a tree), so the chain gives exactly that.
WHOLE_PATH = pl.DataFrame({"path": [["A", "B"], ["B", "A", "B"], ["A"], ["C", "A"]],
                           "conversions": [2, 1, 0, 1], "nulls": [0, 1, 2, 0]})


def test_markov_order_at_least_the_path_length_is_the_whole_path_removal_effect():
    re = removal_effects(WHOLE_PATH, order=3)
    assert credit(re, "removal_effect") == approx({"A": 1.0, "B": 0.75, "C": 0.25})
    assert re.get_column("conversion_probability").to_list() == pytest.approx([4 / 7] * 3)
    assert credit(markov(WHOLE_PATH, order=3)) == approx({"A": 2.0, "B": 1.5, "C": 0.5})
    assert credit(markov(WHOLE_PATH, order=4)) == approx({"A": 2.0, "B": 1.5, "C": 0.5})
    # order="path" is that limit in closed form
    whole = removal_effects(WHOLE_PATH, order="path")
    assert credit(whole, "removal_effect") == approx({"A": 1.0, "B": 0.75, "C": 0.25})
    assert whole.get_column("conversion_probability").to_list() == pytest.approx([4 / 7] * 3)
    assert credit(markov(WHOLE_PATH, order="path")) == approx({"A": 2.0, "B": 1.5, "C": 0.5})


def test_markov_whole_path_value_by_hand():
    # WHOLE_PATH with values: A > B 2 conversions worth 30, B > A > B 1 worth 10, C > A 1 worth 60 (total 100).
    # Value on paths with A: 100 => 1; with B: 40 => 0.4; with C: 60 => 0.6. Sum 2 => A 50, B 20, C 30.
    # Expected value per journey: 100 / 7. Conversions are unchanged (2, 1.5, 0.5).
    paths = WHOLE_PATH.with_columns(pl.Series("value", [30.0, 10.0, 0.0, 60.0]))
    re = removal_effects(paths, order="path")
    assert credit(re, "value_removal_effect") == approx({"A": 1.0, "B": 0.4, "C": 0.6})
    assert re.get_column("expected_value").to_list() == pytest.approx([100 / 7] * 3)
    assert credit(markov(paths, order="path"), "value") == approx({"A": 50.0, "B": 20.0, "C": 30.0})
    assert credit(markov(paths, order="path")) == approx({"A": 2.0, "B": 1.5, "C": 0.5})
    # the chain at order 3 agrees on the value too
    assert credit(markov(paths, order=3), "value") == approx({"A": 50.0, "B": 20.0, "C": 30.0})


# ---------------------------------------------------------------------------------------------------
# Shapley
# ---------------------------------------------------------------------------------------------------
# Converting paths and their channel sets: A x3 -> {A}: 3; B x1 -> {B}: 1; B > A > B x2 -> {A,B}: 2;
# B > C x2 -> {B,C}: 2; A > B > C x1 -> {A,B,C}: 1 (9 conversions); C x5 never converts (ignored).
# v(S) = conversions of paths whose set is within S:
#   v() = 0, v(A) = 3, v(B) = 1, v(C) = 0, v(AB) = 6, v(AC) = 3, v(BC) = 3, v(ABC) = 9
# Shapley weights for 3 players by |S| (S without i): 0 -> 1/3, 1 -> 1/6, 2 -> 1/3.
# phi_A = 1/3 (3 - 0) + 1/6 (6 - 1) + 1/6 (3 - 0) + 1/3 (9 - 3) = 1 + 5/6 + 3/6 + 2 = 13/3
# phi_B = 1/3 (1 - 0) + 1/6 (6 - 3) + 1/6 (3 - 0) + 1/3 (9 - 3) = 1/3 + 1/2 + 1/2 + 2 = 10/3
# phi_C = 1/3 (0 - 0) + 1/6 (3 - 3) + 1/6 (3 - 1) + 1/3 (9 - 6) = 0 + 0 + 1/3 + 1 = 4/3
# (13 + 10 + 4) / 3 = 9: efficiency. Every conversion is worth 10, so values are 10x.
SHAPLEY_PATHS = pl.DataFrame({
    "path": [["A"], ["B"], ["B", "A", "B"], ["B", "C"], ["A", "B", "C"], ["C"]],
    "conversions": [3, 1, 2, 2, 1, 0], "value": [30.0, 10.0, 20.0, 20.0, 10.0, 0.0], "nulls": [0, 0, 1, 0, 0, 5]})
SHAPLEY_BY_HAND = {"A": 13 / 3, "B": 10 / 3, "C": 4 / 3}


def test_shapley_exact_by_hand():
    out = shapley(SHAPLEY_PATHS)
    assert credit(out) == approx(SHAPLEY_BY_HAND)
    assert credit(out, "value") == approx({k: 10 * v for k, v in SHAPLEY_BY_HAND.items()})
    assert out.get_column("conversions_se").to_list() == [0.0, 0.0, 0.0]


def test_shapley_sampled_is_close_and_states_its_error():
    out = shapley(SHAPLEY_PATHS, max_exact=0, n_permutations=4000, seed=3)
    assert out.get_column("conversions").sum() == pytest.approx(9.0)  # every sampled order conserves
    for ch, exact in SHAPLEY_BY_HAND.items():
        row = out.filter(pl.col("channel") == ch).row(0, named=True)
        assert 0 < row["conversions_se"] < 0.1
        assert abs(row["conversions"] - exact) < 5 * row["conversions_se"]
    again = shapley(SHAPLEY_PATHS, max_exact=0, n_permutations=4000, seed=3)
    assert again.equals(out)  # seeded


def test_shapley_sampled_many_channels_matches_closed_form():
    # 18 channels (above the exact limit of 15). For v(S) = sum of R(T) over sets T within S the Shapley
    # value is sum over T containing i of R(T) / |T| (each unanimity game splits its worth evenly).
    names = [f"c{i:02d}" for i in range(18)]
    paths = [names[i:i + k] for k in (1, 2, 3, 5) for i in range(0, 18 - k + 1, 2)]
    conv = [1 + (i % 4) for i in range(len(paths))]
    frame = pl.DataFrame({"path": paths, "conversions": conv})
    closed = {n: 0.0 for n in names}
    for p, c in zip(paths, conv, strict=True):
        for ch in set(p):
            closed[ch] += c / len(set(p))
    out = shapley(frame, n_permutations=3000, seed=1)
    assert out.get_column("conversions").sum() == pytest.approx(sum(conv))
    got, se = credit(out), credit(out, "conversions_se")
    for ch in names:
        assert abs(got[ch] - closed[ch]) <= 5 * se[ch] + 1e-9


# ---------------------------------------------------------------------------------------------------
# Rule-based models by hand
# ---------------------------------------------------------------------------------------------------
def test_first_last_linear_toy():
    # converting paths: A (2), B (1), A > B (1)
    assert credit(A.first_touch(TOY)) == approx({"A": 3.0, "B": 1.0})
    assert credit(A.last_touch(TOY)) == approx({"A": 2.0, "B": 2.0})
    assert credit(A.linear(TOY)) == approx({"A": 2.5, "B": 1.5})  # A > B: 0.5 each


def test_time_decay_by_hand():
    # path a > b > a, touches 14, 7 and 0 days before conversion, half-life 7:
    # weights 2^-2, 2^-1, 2^0 = 1/4, 1/2, 1 (sum 7/4) => a = (1/4 + 1) / (7/4) = 5/7, b = 2/7.
    # 7 conversions worth 70 => a 5 (50), b 2 (20).
    paths = pl.DataFrame({"path": [["a", "b", "a"]], "conversions": [7], "value": [70.0], "times": [[14.0, 7.0, 0.0]]})
    out = A.time_decay(paths, half_life_days=7)
    assert credit(out) == approx({"a": 5.0, "b": 2.0})
    assert credit(out, "value") == approx({"a": 50.0, "b": 20.0})
    # half-life 14: weights 2^-1, 2^-0.5, 1 => b = 2^-0.5 / (1.5 + 2^-0.5)
    b = 2**-0.5 / (1.5 + 2**-0.5)
    assert credit(A.time_decay(paths, half_life_days=14)) == approx({"a": 7 * (1 - b), "b": 7 * b})


def test_u_shaped_by_hand():
    # a > b > c > d x10: 40/20/40 => a 4, b 1, c 1, d 4
    # a > b x2: no middle => 50/50 => a 1, b 1
    # c x1: 100 % => c 1
    paths = pl.DataFrame({"path": [["a", "b", "c", "d"], ["a", "b"], ["c"]], "conversions": [10, 2, 1]})
    assert credit(A.u_shaped(paths)) == approx({"a": 5.0, "b": 2.0, "c": 2.0, "d": 4.0})
    # custom 50/0/50: a > b > c > d gives a 5, d 5; a > b gives 1, 1; c gives 1
    assert credit(A.u_shaped(paths, first=0.5, middle=0.0, last=0.5)) == approx(
        {"a": 6.0, "b": 1.0, "c": 1.0, "d": 5.0})


def test_w_shaped_by_hand():
    # a > b > c > d > e x10, lead created at b (1), opportunity at d (3):
    #   a 3, b 3, d 3, the 10 % rest over c and e: 0.5 each
    # a > b x3, lead created at a (0, = first touch), opportunity at b (1):
    #   raw a 0.3 + 0.3, b 0.3, no rest => a 2/3, b 1/3 => a 2, b 1
    # c x1 with no lead or opportunity touch: 100 % => c 1
    paths = pl.DataFrame({
        "path": [["a", "b", "c", "d", "e"], ["a", "b"], ["c"]], "conversions": [10, 3, 1],
        "lead_index": [1, 0, None], "opportunity_index": [3, 1, None]})
    assert credit(A.w_shaped(paths)) == approx({"a": 5.0, "b": 4.0, "c": 1.5, "d": 3.0, "e": 0.5})


def test_rule_models_by_campaign():
    # a > b > a x4 with campaigns x, null, y: linear 4/3 per touch => (a, x) 4/3, (a, y) 4/3, (b, null) 4/3
    paths = pl.DataFrame({"path": [["a", "b", "a"]], "conversions": [4], "campaigns": [["x", None, "y"]]})
    out = A.linear(paths)
    got = {(c, k): v for c, k, v in out.select("channel", "campaign", "conversions").iter_rows()}
    assert got == pytest.approx({("a", "x"): 4 / 3, ("a", "y"): 4 / 3, ("b", None): 4 / 3})
    # Markov: a -> b 4, b -> a 4, a -> (conversion) 4, so P(a -> b) = P(a -> conversion) = 1/2 and P = 1.
    # Without a: P = 0, RE_a = 1. Without b: (start) -> a -> (conversion) only, P = 1/2, RE_b = 1/2.
    # => a 4 * 1 / 1.5 = 8/3, b 4/3; a's 8/3 split like its linear credit (x and y equally): 4/3 each.
    mk = markov(paths)
    got = {(c, k): v for c, k, v in mk.select("channel", "campaign", "conversions").iter_rows()}
    assert got == pytest.approx({("a", "x"): 4 / 3, ("a", "y"): 4 / 3, ("b", None): 4 / 3})
    assert markov(paths, by_campaign=False).columns == ["channel", "conversions", "value"]


def test_channels_without_credit_are_listed():
    out = A.last_touch(TOY.vstack(pl.DataFrame({"path": [["Z"]], "conversions": [0], "nulls": [3]})))
    assert credit(out)["Z"] == 0.0


# ---------------------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------------------
def test_bad_inputs_say_what_to_do():
    with pytest.raises(ConfigError, match="no column 'path'"):
        A.linear(pl.DataFrame({"paths": [["a"]], "conversions": [1]}))
    with pytest.raises(ConfigError, match="list of channel names"):
        A.linear(pl.DataFrame({"path": ["a > b"], "conversions": [1]}))
    with pytest.raises(ConfigError, match="negative"):
        A.linear(pl.DataFrame({"path": [["a"]], "conversions": [-1]}))
    with pytest.raises(ConfigError, match="no touches"):
        markov(pl.DataFrame({"path": [[], ["a"]], "conversions": [1, 1]}, schema={"path": pl.List(pl.String),
                                                                                   "conversions": pl.Int64}))
    with pytest.raises(ConfigError, match="times"):
        A.time_decay(TOY)
    with pytest.raises(ConfigError, match="lead_index"):
        A.w_shaped(TOY)
    with pytest.raises(ConfigError, match="points outside"):
        A.w_shaped(pl.DataFrame({"path": [["a"]], "conversions": [1], "lead_index": [2], "opportunity_index": [0]}))
    with pytest.raises(ConfigError, match='Did you mean "markov"'):
        A.attribute(TOY, "markow")
    with pytest.raises(ConfigError, match="half_life_days"):
        A.time_decay(TOY.with_columns(times=pl.col("path").list.eval(pl.lit(0.0))), half_life_days=0)
    with pytest.raises(ConfigError, match="order"):
        markov(TOY, order=0)
    with pytest.raises(ConfigError, match="'path' \\(the state is the whole path so far\\)"):
        markov(TOY, order="whole")
    with pytest.raises(ConfigError, match="integer from 1 to 6, not 'path'"):
        transition_matrix(TOY, order="path")


def test_empty_frame_gives_empty_result():
    empty = pl.DataFrame(schema={"path": pl.List(pl.String), "conversions": pl.Int64})
    for model in ("first_touch", "linear", "markov", "shapley"):
        out = A.attribute(empty, model)
        assert out.height == 0 and {"channel", "conversions", "value"} <= set(out.columns)


# ---------------------------------------------------------------------------------------------------
# Conservation (property test)
# ---------------------------------------------------------------------------------------------------
@st.composite
def path_frames(draw):
    n = draw(st.integers(1, 12))
    rows = []
    for _ in range(n):
        k = draw(st.integers(1, 6))
        path = draw(st.lists(st.sampled_from("abcdef"), min_size=k, max_size=k))
        times = sorted(draw(st.lists(st.floats(0, 60, allow_nan=False), min_size=k, max_size=k)), reverse=True)
        lead = draw(st.one_of(st.none(), st.integers(0, k - 1)))
        opp = draw(st.one_of(st.none(), st.integers(0, k - 1)))
        conv = draw(st.integers(0, 5))
        rows.append({"path": path, "conversions": conv, "value": draw(st.floats(0, 1e4)) if conv else 0.0,
                     "nulls": draw(st.integers(0, 5)), "times": times, "lead_index": lead, "opportunity_index": opp,
                     "campaigns": [draw(st.sampled_from(["x", "y", None])) for _ in range(k)]})
    return pl.DataFrame(rows, schema={"path": pl.List(pl.String), "conversions": pl.Int64, "value": pl.Float64,
                                      "nulls": pl.Int64, "times": pl.List(pl.Float64), "lead_index": pl.Int64,
                                      "opportunity_index": pl.Int64, "campaigns": pl.List(pl.String)})


MODEL_OPTIONS = [(m, {}) for m in A.MODELS] + [("markov", {"order": 2}), ("markov", {"order": 3}),
                                                ("markov", {"order": "path"}),
                                                ("shapley", {"max_exact": 0, "n_permutations": 50})]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frame=path_frames())
def test_every_model_conserves_totals(frame):
    total_c = float(frame.get_column("conversions").sum())
    total_v = float(frame.get_column("value").sum())
    for model, opts in MODEL_OPTIONS:
        for by_campaign in (False, True):
            out = A.attribute(frame, model, by_campaign=by_campaign, **opts)
            assert out.get_column("conversions").sum() == pytest.approx(total_c, rel=1e-9, abs=1e-9), model
            assert out.get_column("value").sum() == pytest.approx(total_v, rel=1e-9, abs=1e-6), model
            assert (out.get_column("conversions") >= -1e-12).all(), model


# ---------------------------------------------------------------------------------------------------
# ChannelAttribution's demo data (../shared/data)
# ---------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def path_data() -> pl.DataFrame:
    if not DATA_CSV.exists():
        msg = (f"{DATA_CSV.resolve()} is missing: the ChannelAttribution demo paths (see "
               "../shared/data/channelattribution_pathdata/SOURCE.md)")
        if os.environ.get("CI") == "true":
            pytest.fail(msg + " (CI=true: the shared data must be present on CI)")
        pytest.skip(msg)
    return A.read_path_csv(DATA_CSV)


def test_path_data_totals_match_source_md(path_data):
    # SOURCE.md: 10,000 rows, 12 channels, 19,785 conversions, value 74,802.972, 68,602 nulls
    assert path_data.height == 10_000
    assert len(A.channels_of(path_data)) == 12
    assert path_data.get_column("conversions").sum() == 19_785
    assert path_data.get_column("value").sum() == pytest.approx(74_802.972, abs=5e-4)
    assert path_data.get_column("nulls").sum() == 68_602


@pytest.mark.parametrize(("model", "opts"), MODEL_OPTIONS[:-1])
def test_every_model_conserves_on_path_data(path_data, model, opts):
    # time_decay and w_shaped need touch times and key positions the data does not have: give every path
    # one touch per day up to the conversion, the lead created at the first touch and the opportunity at
    # the last (any values would do: the totals are what is checked).
    frame = path_data.with_columns(
        times=pl.col("path").list.eval((pl.len() - 1 - pl.int_range(pl.len())).cast(pl.Float64)),
        lead_index=pl.lit(0, pl.Int64),
        opportunity_index=(pl.col("path").list.len() - 1).cast(pl.Int64),
    )
    out = A.attribute(frame, model, **opts)
    assert out.get_column("conversions").sum() == pytest.approx(19_785, rel=1e-12)
    assert out.get_column("value").sum() == pytest.approx(74_802.972, abs=5e-4)


def _presence_shares(paths: pl.DataFrame) -> tuple[dict, dict]:
    """Share of the conversions and of the value on the paths that contain each channel (list.contains)."""
    conv, value = paths.get_column("conversions").sum(), paths.get_column("value").sum()
    shares_c, shares_v = {}, {}
    for ch in A.channels_of(paths):
        has = paths.filter(pl.col("path").list.contains(ch))
        shares_c[ch] = has.get_column("conversions").sum() / conv
        shares_v[ch] = has.get_column("value").sum() / value
    return shares_c, shares_v


def test_markov_whole_path_limit_on_path_data(path_data):
    # The paths of Data.csv with at most 3 touches, at order 3: every state is a path prefix, so the chain's
    # removal effect of a channel is the share of the conversions (value) on paths that contain it - counted
    # here directly with list.contains. order="path" gives the same, on the short paths and on all of them.
    short = path_data.filter(pl.col("path").list.len() <= 3)
    chain, whole = removal_effects(short, order=3), removal_effects(short, order="path")
    expected_c, expected_v = _presence_shares(short)
    for re in (chain, whole):
        assert credit(re, "removal_effect") == approx(expected_c, rel=1e-9, abs=1e-12)
        assert credit(re, "value_removal_effect") == approx(expected_v, rel=1e-9, abs=1e-12)
    expected_c, expected_v = _presence_shares(path_data)
    every = removal_effects(path_data, order="path")
    assert credit(every, "removal_effect") == approx(expected_c, rel=1e-9, abs=1e-12)
    assert credit(every, "value_removal_effect") == approx(expected_v, rel=1e-9, abs=1e-12)


def test_shapley_on_path_data_is_exact_and_equals_the_closed_form(path_data):
    # 12 channels: exact enumeration of 4,096 coalitions; the closed form splits each converting path's
    # conversions evenly over its distinct channels.
    out = shapley(path_data)
    assert out.get_column("conversions_se").sum() == 0
    per_path = path_data.with_row_index("i").select(
        "i", pl.col("path").list.unique().alias("s"),
        (pl.col("conversions") / pl.col("path").list.unique().list.len()).alias("c")).explode("s")
    closed = per_path.group_by("s").agg(pl.col("c").sum())
    assert credit(out) == pytest.approx(dict(closed.iter_rows()), rel=1e-9)
