"""Shared machinery of the demo simulator: calendar, random generators, ids, time conversions.

Internally every timestamp is a float number of **days since DEMO_START 00:00** (``t``); day index
``d = floor(t)``. Frames get real ``Date``/``Datetime("us")`` columns only when they are built.
Nothing here reads the clock: the output depends on (scale, seed) only.
"""

from __future__ import annotations

import zlib
from datetime import date

import numpy as np
import polars as pl

DEMO_START = date(2023, 1, 1)
DEMO_END = date(2026, 6, 30)  # the "as of" day: open deals and open cases exist as of its end
FX_START = date(2019, 1, 1)  # migrated accounts and contracts go back to 2019: rates from then on

N_DAYS = (DEMO_END - DEMO_START).days + 1
END_T = float(N_DAYS)  # the as-of instant (DEMO_END 24:00) in days since DEMO_START
DAY0 = np.datetime64(DEMO_START, "D")
_EPOCH_US = np.datetime64(DEMO_START, "us")
_D0 = int(DAY0.astype(np.int64))  # DEMO_START in days since 1970-01-01

# Calendar of the simulated period, one entry per day index.
DAY_DATES = DAY0 + np.arange(N_DAYS)
DAY_YEAR = DAY_DATES.astype("datetime64[Y]").astype(np.int64) + 1970
DAY_MONTH = DAY_DATES.astype("datetime64[M]").astype(np.int64) % 12 + 1  # 1..12
DAY_MIDX = DAY_DATES.astype("datetime64[M]").astype(np.int64) - int(DAY0.astype("datetime64[M]").astype(np.int64))
DAY_WEEKDAY = (DAY_DATES.astype(np.int64) + 3) % 7  # 0 = Monday (1970-01-01 was a Thursday)
N_MONTHS = int(DAY_MIDX[-1]) + 1
MONTH_STARTS = np.unique(DAY_DATES.astype("datetime64[M]"))  # datetime64[M], one per month


def month_start_day(midx: np.ndarray | int) -> np.ndarray:
    """Day index of the first day of month index ``midx`` (0 = the month of DEMO_START)."""
    return (MONTH_STARTS[0] + np.asarray(midx)).astype("datetime64[D]").astype(np.int64) - _D0


def month_index(year: int, month: int) -> int:
    return (year - DEMO_START.year) * 12 + month - DEMO_START.month


# --------------------------------------------------------------------------------------------
# Random generators: one independent child generator per table (or per concern), keyed by name,
# so that adding randomness to one table never shifts another table's draws.
# --------------------------------------------------------------------------------------------
def rng_for(seed: int, name: str) -> np.random.Generator:
    return np.random.default_rng([int(seed), zlib.crc32(name.encode())])


def scaled(n: float, scale: float, minimum: int = 1) -> int:
    return max(minimum, round(n * scale))


# --------------------------------------------------------------------------------------------
# Time conversions
# --------------------------------------------------------------------------------------------
def to_datetime(t: np.ndarray) -> np.ndarray:
    """Days since DEMO_START -> datetime64[us], rounded to the second."""
    secs = np.round(np.asarray(t, dtype=np.float64) * 86400.0).astype(np.int64)
    return _EPOCH_US + secs.astype("timedelta64[s]")


def to_date(t: np.ndarray) -> np.ndarray:
    """Days since DEMO_START -> datetime64[D] (the calendar day containing t)."""
    return DAY0 + np.floor(np.asarray(t, dtype=np.float64)).astype(np.int64)


def dt_series(name: str, t: np.ndarray, valid: np.ndarray | None = None) -> pl.Series:
    """A Datetime("us") series; null where ``valid`` is False (or t is NaN)."""
    t = np.asarray(t, dtype=np.float64)
    ok = ~np.isnan(t) if valid is None else (np.asarray(valid, dtype=bool) & ~np.isnan(t))
    arr = to_datetime(np.where(ok, t, 0.0))
    arr[~ok] = np.datetime64("NaT")
    return pl.Series(name, arr)


def date_series(name: str, t: np.ndarray, valid: np.ndarray | None = None) -> pl.Series:
    """A Date series of the day containing t; null where ``valid`` is False (or t is NaN)."""
    t = np.asarray(t, dtype=np.float64)
    ok = ~np.isnan(t) if valid is None else (np.asarray(valid, dtype=bool) & ~np.isnan(t))
    arr = to_date(np.where(ok, t, 0.0))
    arr[~ok] = np.datetime64("NaT")
    return pl.Series(name, arr)


# Business calendar: Monday-Friday 09:00-18:00, no holidays. Service-level delays are drawn in
# business hours and converted to wall-clock time with these two functions.
BH_START, BH_END = 9.0, 18.0
BH_PER_DAY = BH_END - BH_START


def to_business_hours(t: np.ndarray) -> np.ndarray:
    """Business hours elapsed since a fixed origin up to instant t (time outside hours counts 0)."""
    t = np.asarray(t, dtype=np.float64)
    d = np.floor(t)
    a = d.astype(np.int64) + _D0 + 3  # a % 7 == 0 on Mondays
    week, wd = a // 7, a % 7
    bdays = week * 5 + np.minimum(wd, 5)
    hour = (t - d) * 24.0
    within = np.where(wd < 5, np.clip(hour, BH_START, BH_END) - BH_START, 0.0)
    return bdays * BH_PER_DAY + within


def from_business_hours(bh: np.ndarray) -> np.ndarray:
    """Inverse of :func:`to_business_hours`: the wall-clock instant (days since DEMO_START)."""
    bh = np.asarray(bh, dtype=np.float64)
    bd = np.floor(bh / BH_PER_DAY)
    within = bh - bd * BH_PER_DAY
    bd = bd.astype(np.int64)
    a = (bd // 5) * 7 + bd % 5
    d = a - 3 - _D0
    return d + (BH_START + within) / 24.0


def add_business_hours(t: np.ndarray, hours: np.ndarray) -> np.ndarray:
    return from_business_hours(to_business_hours(t) + hours)


# --------------------------------------------------------------------------------------------
# PLANTED TRUTH 3 - seasonality. Monthly multipliers (January first) of the rate at which
# opportunities and leads are created: a February dip for Chinese New Year, a summer lull, and a
# Q4 peak (budgets spent before year end). On top, volumes grow by GROWTH_PER_YEAR (smooth
# exponential trend), and business activity is much lower at weekends. The closing side of the
# seasonality (December pull-in, February push-out) is planted in sales.py.
# --------------------------------------------------------------------------------------------
SEASON = (0.95, 0.55, 1.05, 1.0, 0.95, 1.05, 0.9, 0.9, 1.05, 0.95, 1.25, 1.3)
GROWTH_PER_YEAR = 0.15
WEEKEND_FACTOR = 0.15


def day_weights(season: bool = True, growth: bool = True, weekend: float = WEEKEND_FACTOR) -> np.ndarray:
    """Relative intensity of business events per day index (not normalised)."""
    w = np.ones(N_DAYS)
    if season:
        w *= np.asarray(SEASON)[DAY_MONTH - 1]
    if growth:
        w *= (1.0 + GROWTH_PER_YEAR) ** (np.arange(N_DAYS) / 365.25)
    w *= np.where(DAY_WEEKDAY >= 5, weekend, 1.0)
    return w


def sample_days(rng: np.random.Generator, n: int, weights: np.ndarray) -> np.ndarray:
    cdf = np.cumsum(weights)
    cdf /= cdf[-1]
    return np.minimum(np.searchsorted(cdf, rng.random(n), side="right"), len(weights) - 1)


def office_time(rng: np.random.Generator, n: int) -> np.ndarray:
    """Time of day (fraction of a day) concentrated in office hours, 08:30-18:30."""
    return (8.5 + 10.0 * rng.beta(2.2, 2.2, n)) / 24.0


def any_time(rng: np.random.Generator, n: int) -> np.ndarray:
    """Time of day for web-driven events: mostly daytime, some evening."""
    return (6.0 + 17.0 * rng.beta(2.0, 2.0, n)) / 24.0


def categorical(rng: np.random.Generator, probs, n: int) -> np.ndarray:
    """n draws of category indices with the given (unnormalised) probabilities."""
    p = np.asarray(probs, dtype=np.float64)
    cdf = np.cumsum(p / p.sum())
    return np.minimum(np.searchsorted(cdf, rng.random(n), side="right"), len(p) - 1)


def categorical_rows(rng: np.random.Generator, prob_matrix: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """One category per element, drawn from row ``rows[i]`` of a (k x m) probability matrix."""
    pm = np.asarray(prob_matrix, dtype=np.float64)
    cdf = np.cumsum(pm / pm.sum(axis=1, keepdims=True), axis=1)
    u = rng.random(len(rows))
    out = np.empty(len(rows), dtype=np.int64)
    for k in range(pm.shape[0]):  # one vectorised draw per row of the matrix (a handful)
        sel = rows == k
        out[sel] = np.searchsorted(cdf[k], u[sel], side="right")
    return np.minimum(out, pm.shape[1] - 1)


# --------------------------------------------------------------------------------------------
# Ids and names
# --------------------------------------------------------------------------------------------
def id_expr(col: str, prefix: str, width: int, alias: str | None = None) -> pl.Expr:
    """``prefix`` + zero-padded (index + 1); null where the index is negative."""
    c = pl.col(col)
    return (
        pl.when(c >= 0)
        .then(pl.lit(prefix) + (c + 1).cast(pl.String).str.zfill(width))
        .otherwise(None)
        .alias(alias or col)
    )


def pick_words(rng: np.random.Generator, words: tuple[str, ...], n: int) -> pl.Series:
    return pl.Series(np.asarray(words, dtype=object)[rng.integers(0, len(words), n)], dtype=pl.String)


SURNAMES = (
    "Wang", "Li", "Zhang", "Liu", "Chen", "Yang", "Huang", "Zhao", "Wu", "Zhou", "Xu", "Sun", "Ma", "Zhu",
    "Hu", "Guo", "He", "Lin", "Gao", "Luo", "Zheng", "Liang", "Xie", "Song", "Tang", "Han", "Feng", "Deng",
    "Cao", "Peng", "Zeng", "Xiao", "Tian", "Dong", "Pan", "Yuan", "Cai", "Jiang", "Yu", "Du",
)
GIVEN_NAMES = (
    "Wei", "Fang", "Min", "Jing", "Lei", "Jun", "Yan", "Hui", "Tao", "Ping", "Gang", "Hua", "Xin", "Yu",
    "Ling", "Qiang", "Hong", "Bo", "Chao", "Mei", "Jie", "Lin", "Dan", "Ning", "Kai", "Rui", "Hao", "Yue",
    "Xiaoming", "Jiahui", "Zihan", "Yuxuan", "Haoran", "Shuang", "Yiming", "Siyu", "Wenjie", "Zhiqiang",
)
COMPANY_WORDS = (
    "Huaxin", "Jinfeng", "Tianrui", "Hengda", "Zhongke", "Xinghai", "Longteng", "Ruida", "Boyuan", "Shengshi",
    "Kaiyuan", "Mingde", "Haitong", "Yuntu", "Anxin", "Jiahe", "Chuangyi", "Dingxin", "Fuhua", "Guangda",
    "Hongtu", "Jiaxing", "Lianchuang", "Meida", "Nanfang", "Pengcheng", "Qianhai", "Rongsheng", "Sanli",
    "Taihe", "Weiye", "Xiangyun", "Yongtai", "Zhenhua", "Aurora", "Pacific", "Summit", "Northstar",
    "Bluewave", "Evergreen", "Keystone", "Silverline", "Redwood", "Brightpath", "Oakridge", "Lumen",
)
COMPANY_KINDS = (
    "Technology", "Manufacturing", "Logistics", "Medical", "Retail", "Energy", "Electronics", "Foods",
    "Software", "Materials", "Automotive", "Trading", "Pharma", "Smart Systems", "Holdings", "Networks",
)
COMPANY_SUFFIXES = ("Co., Ltd.", "Group", "Inc.", "Ltd.", "Corp.", "Co.")


def person_names(rng: np.random.Generator, n: int) -> tuple[pl.Series, pl.Series]:
    """(display names, e-mail local parts)."""
    given = pick_words(rng, GIVEN_NAMES, n)
    family = pick_words(rng, SURNAMES, n)
    names = given + " " + family
    emails = given.str.to_lowercase() + "." + family.str.to_lowercase()
    return names, emails


def company_names(rng: np.random.Generator, n: int) -> pl.Series:
    return (
        pick_words(rng, COMPANY_WORDS, n) + " " + pick_words(rng, COMPANY_KINDS, n) + " "
        + pick_words(rng, COMPANY_SUFFIXES, n)
    )


def labels(values, codes: np.ndarray) -> pl.Series:
    """String labels ``values[codes]`` as a polars String series; null where a code is negative."""
    codes = np.asarray(codes, dtype=np.int64)
    s = pl.Series(list(values), dtype=pl.String).gather(np.maximum(codes, 0))
    if (codes < 0).any():
        s = pl.select(pl.when(pl.lit(pl.Series(codes >= 0))).then(s)).to_series()
    return s
