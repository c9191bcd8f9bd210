"""crmlib.models.anomaly against hand-computed values (robust median/MAD, seasonal year-over-year, peers)."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import polars as pl
import pytest

from crmlib.errors import ConfigError
from crmlib.models.anomaly import detect, detect_series, min_history, peer_outliers

C = 1.4826  # MAD -> standard deviation of a normal


def test_robust_hand_computed():
    x = [10, 12, 11, 13, 9, 10, 30]
    res = detect_series(x, method="robust", k=3.5)
    assert res.status[:6] == ["insufficient_history"] * 6  # fewer than 6 earlier points
    # history 10 12 11 13 9 10: median (10 + 11) / 2 = 10.5; |dev| .5 1.5 .5 2.5 1.5 .5 -> MAD (0.5 + 1.5) / 2 = 1
    assert res.expected[6] == pytest.approx(10.5)
    assert res.score[6] == pytest.approx((30 - 10.5) / (C * 1.0))
    assert res.lower[6] == pytest.approx(10.5 - 3.5 * C) and res.upper[6] == pytest.approx(10.5 + 3.5 * C)
    assert res.anomaly.tolist() == [False] * 6 + [True] and res.status[6] == "anomaly"


def test_robust_counts_never_below_poisson_spread():
    res = detect_series([10, 12, 11, 13, 9, 10, 30], method="robust", counts=True)
    # MAD spread 1.4826 < sqrt(10.5) = 3.2404: the Poisson spread is used
    assert res.score[6] == pytest.approx(19.5 / math.sqrt(10.5))
    # small counts: 3 leads after a run of 5-7 is noise, not an anomaly
    quiet = detect_series([5, 6, 7, 5, 6, 5, 2], method="robust", counts=True)
    assert not quiet.anomaly.any()
    assert quiet.score[6] == pytest.approx((2 - 5.5) / math.sqrt(5.5))


def test_seasonal_hand_computed():
    x = [100, 50, 80, 120, 110, 60, 84, 20]
    res = detect_series(x, method="seasonal", season=4, min_points=2, k=3.5)
    assert res.status[:6] == ["insufficient_history"] * 6  # t=4: no ratio yet; t=5: one ratio < 2
    # t=6: ratios log(110/100), log(60/50); median = their mean, MAD = half their distance
    r4, r5 = math.log(1.1), math.log(1.2)
    rho, sigma = (r4 + r5) / 2, C * (r5 - r4) / 2
    assert res.expected[6] == pytest.approx(80 * math.exp(rho))
    assert res.score[6] == pytest.approx((math.log(84 / 80) - rho) / sigma)
    assert res.status[6] == "ok"
    # t=7: ratios r4, r5, log(84/80): median r4; |dev| 0, r5-r4, r4-log(1.05) -> MAD = r4 - log(1.05)
    r6 = math.log(84 / 80)
    mad = sorted([0, r5 - r4, r4 - r6])[1]
    assert res.expected[7] == pytest.approx(120 * 1.1)
    assert res.score[7] == pytest.approx((math.log(20 / 120) - r4) / (C * mad))
    assert res.lower[7] == pytest.approx(120 * math.exp(r4 - 3.5 * C * mad))
    assert res.upper[7] == pytest.approx(120 * math.exp(r4 + 3.5 * C * mad))
    assert res.anomaly.tolist() == [False] * 7 + [True]


def test_seasonal_differences_for_values_that_can_be_negative():
    x = [-5, 10, 0, 4, -3, 12, 3]
    res = detect_series(x, method="seasonal", season=4, min_points=2)
    # t=6: differences -3 - -5 = 2, 12 - 10 = 2: drift 2, spread 0; expected 0 + 2; 3 != 2 -> infinite score
    assert res.expected[6] == pytest.approx(2)
    assert math.isinf(res.score[6]) and res.anomaly[6]


def test_an_anomaly_neither_masks_later_points_nor_echoes_a_season_later():
    rng = np.random.default_rng(3)
    season = np.array([100, 60, 90, 130])
    x = np.concatenate([season * 1.05**y * rng.uniform(0.97, 1.03, 4) for y in range(5)])
    x[9] *= 0.25  # one bad quarter
    res = detect_series(x, method="seasonal", season=4, min_points=4)
    assert np.flatnonzero(res.anomaly).tolist() == [9]
    # a year later the base is the bad quarter's expected value, not the bad value itself
    assert res.expected[13] == pytest.approx(x[13], rel=0.1)
    assert res.status[13] == "ok"


def test_minimum_history_is_stated_and_kept():
    assert min_history("seasonal", "month") == 18 and min_history("seasonal", "quarter") == 10
    assert min_history("seasonal", "week") == 58 and min_history("robust", "month") == 6
    assert min_history("seasonal", "year") == 6  # no season: the robust rule
    y = [100.0] * 17 + [1.0]
    assert set(detect_series(y, method="seasonal", season=12).status) == {"insufficient_history"}
    assert detect_series([5, 5, 5, 5, 5, 50], method="robust").status[-1] == "insufficient_history"
    assert detect_series([5, 5, 5, 5, 5, 5, 50], method="robust", counts=True).status[-1] == "anomaly"


def test_partial_and_missing_points_are_not_checked():
    res = detect_series([10, 11, 10, 12, 11, 10, None, 1], method="robust", complete=[True] * 7 + [False])
    assert res.status[6:] == ["missing", "partial"] and not res.anomaly.any()


def test_zero_counts_are_scored():
    x = [20, 22, 18, 21, 19, 20, 0]
    res = detect_series(x, method="robust", counts=True)
    assert res.anomaly[6] and res.score[6] == pytest.approx((0 - 20) / math.sqrt(20))


def test_detect_frame_per_group_and_grain_without_season():
    periods = [dt.date(2020 + i, 1, 1) for i in range(8)]
    frame = pl.DataFrame(
        {
            "region": ["a"] * 8 + ["b"] * 8,
            "period": periods * 2,
            "value": [10.0, 12, 11, 13, 9, 10, 30, 11] + [5.0] * 8,
            "complete": [True] * 15 + [False],
        }
    )
    out = detect(frame, method="seasonal", grain="year", by=["region"])
    assert out["method"].unique().to_list() == ["robust"]
    a = out.filter(pl.col("region") == "a")
    assert a.filter(pl.col("is_anomaly"))["period"].to_list() == [dt.date(2026, 1, 1)]
    assert a["expected"][6] == pytest.approx(10.5)
    b = out.filter(pl.col("region") == "b")
    assert b["status"].to_list()[-1] == "partial" and not b["is_anomaly"].any()
    assert out.columns == [
        "region",
        "period",
        "value",
        "expected",
        "lower",
        "upper",
        "score",
        "is_anomaly",
        "status",
        "method",
    ]


def test_peer_outliers_hand_computed():
    frame = pl.DataFrame(
        {
            "team": list("abcdefg"),
            "value": [0.9, 0.92, 0.88, 0.95, 0.91, 0.3, 0.1],
            "n": [50, 60, 40, 45, 55, 48, 3],
        }
    )
    out = peer_outliers(frame, ["team"], weight="n", min_weight=30)
    # judged: a-f (g has 3 cases). median of .3 .88 .9 .91 .92 .95 = .905; |dev| -> MAD (.015 + .025) / 2 = .02
    sigma = C * 0.02
    f = out.filter(pl.col("team") == "f").row(0, named=True)
    assert f["expected"] == pytest.approx(0.905) and f["score"] == pytest.approx((0.3 - 0.905) / sigma)
    assert f["is_anomaly"] and f["status"] == "anomaly"
    g = out.filter(pl.col("team") == "g").row(0, named=True)
    assert g["status"] == "insufficient_history" and not g["is_anomaly"] and g["score"] is None
    assert out.filter(pl.col("is_anomaly"))["team"].to_list() == ["f"]
    few = peer_outliers(frame.head(3), ["team"])
    assert set(few["status"]) == {"insufficient_history"}


def test_bad_settings_are_clear_errors():
    with pytest.raises(ConfigError, match='Did you mean "seasonal"'):
        detect_series([1, 2, 3], method="seasonl")
    with pytest.raises(ConfigError, match="k must be > 0"):
        detect_series([1, 2, 3], method="robust", k=0)
    with pytest.raises(ConfigError, match="has no column value"):
        detect(pl.DataFrame({"period": [1]}), by=[])
