"""Calendar arithmetic of the KPI engine: grains, periods, comparison and cumulative windows.

Pure Python on a few dates (periods are few); the only frame built here is the small calendar that
maps each day to the windows containing it (:func:`calendar`).

A *period* is one output row's grain period (``start``..``end``), cut to the requested range and to
the as-of date: it covers ``lo``..``hi`` (``hi`` None when the period starts after the as-of date:
nothing of it has been observed yet). A *window* is a ``(lo, hi)`` pair of dates, inclusive, over which
a measure is aggregated: the covered part of a period, its comparison window, or a cumulative window
ending at its ``hi``. Equal windows are computed once.
"""

from __future__ import annotations

import calendar as _cal
import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

import polars as pl

from ..errors import ConfigError, suggest
from .spec import GRAINS, Window

ALL = "all"  # internal grain: the whole range is one period (contribution shares)
COMPARES = ("previous_period", "previous_year")
ONE_DAY = dt.timedelta(days=1)


# --------------------------------------------------------------------------------------------
# Grains
# --------------------------------------------------------------------------------------------
def check_grain(grain: object) -> str:
    if grain not in GRAINS:
        raise ConfigError(
            f"Unknown grain {grain!r}.{suggest(str(grain), GRAINS)} Use one of: {', '.join(GRAINS)} "
            "(weeks start on Monday)."
        )
    return str(grain)


def add_months(d: dt.date, n: int) -> dt.date:
    """``d`` moved by ``n`` months, the day clamped to the month's length (31 March - 1 = 28/29 February)."""
    m = d.year * 12 + d.month - 1 + n
    year, month = divmod(m, 12)
    month += 1
    return dt.date(year, month, min(d.day, _cal.monthrange(year, month)[1]))


def trunc(d: dt.date, grain: str) -> dt.date:
    """First day of the ``grain`` period holding ``d``."""
    if grain == "day":
        return d
    if grain == "week":
        return d - dt.timedelta(days=d.weekday())
    if grain == "month":
        return d.replace(day=1)
    if grain == "quarter":
        return dt.date(d.year, 3 * ((d.month - 1) // 3) + 1, 1)
    if grain == "year":
        return dt.date(d.year, 1, 1)
    raise ConfigError(f"Unknown grain {grain!r}.")  # pragma: no cover - checked before


def shift(start: dt.date, grain: str, n: int) -> dt.date:
    """A period start moved by ``n`` periods of ``grain``."""
    if grain == "day":
        return start + dt.timedelta(days=n)
    if grain == "week":
        return start + dt.timedelta(weeks=n)
    months = {"month": 1, "quarter": 3, "year": 12}[grain]
    return add_months(start, months * n)


def period_end(start: dt.date, grain: str) -> dt.date:
    return shift(start, grain, 1) - ONE_DAY


def year_earlier(start: dt.date, grain: str) -> dt.date:
    """The start of the same period a year earlier (weeks: 52 weeks earlier, still a Monday)."""
    if grain == "week":
        return start - dt.timedelta(weeks=52)
    return add_months(start, -12)


# --------------------------------------------------------------------------------------------
# Parsing periods
# --------------------------------------------------------------------------------------------
_FORMS = "YYYY-MM-DD, YYYY-MM, YYYY or YYYY-Qn"
_DATE_RE = re.compile(r"^(\d{4})(?:-(\d{1,2})(?:-(\d{1,2}))?|-[Qq]([1-4]))?$")


def parse_date(value: object, *, end: bool, what: str = "period") -> dt.date:
    """A date from a date, datetime or string; partial strings give the first (or, for ``end``, the
    last) day: ``"2025"`` -> 1 January / 31 December, ``"2025-02"``, ``"2025-Q2"``."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    text = str(value).strip() if isinstance(value, str) else None
    m = _DATE_RE.match(text) if text else None
    if m is None:
        raise ConfigError(
            f"The {what} {'end' if end else 'start'} {value!r} is not a date. Write {_FORMS}, "
            "e.g. period=('2025-01-01', '2025-12-31') or period='2025-01:2025-06'."
        )
    year, month, day, quarter = m.groups()
    try:
        y = int(year)
        if quarter:
            first = dt.date(y, 3 * int(quarter) - 2, 1)
            return period_end(first, "quarter") if end else first
        if month is None:
            return dt.date(y, 12, 31) if end else dt.date(y, 1, 1)
        if day is None:
            first = dt.date(y, int(month), 1)
            return period_end(first, "month") if end else first
        return dt.date(y, int(month), int(day))
    except ValueError as exc:
        raise ConfigError(
            f"The {what} {'end' if end else 'start'} {value!r} is not a valid date ({exc}). Write {_FORMS}."
        ) from None


def parse_period(period: object) -> tuple[dt.date, dt.date] | None:
    """``(start, end)`` inclusive from a pair, ``"start:end"`` or one partial date (``"2025"``)."""
    if period is None:
        return None
    if isinstance(period, str):
        parts = re.split(r"\s*(?:\.\.|:|/)\s*", period.strip()) if re.search(r"\.\.|:|/", period) else [period]
        if len(parts) == 1:
            parts = [parts[0], parts[0]]
        period = tuple(parts)
    if isinstance(period, dt.date):
        period = (period, period)
    if not isinstance(period, tuple | list) or len(period) != 2:
        raise ConfigError(
            f"period must be (start, end), e.g. ('2025-01-01', '2025-12-31') or '2025-01:2025-06', not {period!r}."
        )
    start, end = parse_date(period[0], end=False), parse_date(period[1], end=True)
    if end < start:
        raise ConfigError(f"The period ends ({end}) before it starts ({start}). Give (start, end) in that order.")
    return start, end


def parse_as_of(value: object) -> dt.date | None:
    return None if value is None else parse_date(value, end=True, what="as_of date")


# --------------------------------------------------------------------------------------------
# Periods and windows
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Period:
    """One output period: its grain ``start``..``end`` and the part ``lo``..``hi`` observed."""

    start: dt.date
    end: dt.date
    lo: dt.date
    hi: dt.date | None  # None: starts after the as-of date
    range_hi: dt.date  # the covered end ignoring the as-of date

    @property
    def days(self) -> int:
        return (self.hi - self.lo).days + 1 if self.hi is not None else 0

    @property
    def period_days(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def complete(self) -> bool:
        return self.lo == self.start and self.hi == self.end


def periods(start: dt.date, end: dt.date, grain: str, as_of: dt.date) -> list[Period]:
    """The grain periods meeting [start, end], each cut to the range and to ``as_of``."""
    out: list[Period] = []
    if grain == ALL:
        hi = min(end, as_of)
        return [Period(start, end, start, hi if hi >= start else None, end)]
    s = trunc(start, grain)
    while s <= end:
        e = period_end(s, grain)
        lo, range_hi = max(s, start), min(e, end)
        hi = min(range_hi, as_of)
        out.append(Period(s, e, lo, hi if hi >= lo else None, range_hi))
        s = e + ONE_DAY
    return out


def latest(start: dt.date, end: dt.date, grain: str) -> tuple[dt.date, dt.date]:
    """The last grain period of [start, end], cut to it: all that KPI cards show. Evaluating only it gives
    the same values, comparison and targets as evaluating the whole range and keeping its last period
    (each period's comparison window depends on that period alone), for a fraction of the work."""
    return (start, end) if grain == ALL else (max(trunc(end, grain), start), end)


def comparison_window(p: Period, grain: str, compare: str, first: dt.date, last: dt.date) -> tuple[dt.date, dt.date]:
    """The same part of the previous period (or of the same period a year earlier): a partial period
    is compared with as many days from the start of the earlier period (month to date with the same
    days of the previous month); a complete period with the whole earlier period."""
    hi = p.hi if p.hi is not None else p.range_hi
    if grain == ALL:
        if compare == "previous_year":
            return add_months(p.lo, -12), add_months(hi, -12)
        length = (last - first).days + 1
        return p.lo - dt.timedelta(days=length), hi - dt.timedelta(days=length)
    ps = shift(p.start, grain, -1) if compare == "previous_period" else year_earlier(p.start, grain)
    pe = period_end(ps, grain)
    lo = min(ps + (p.lo - p.start), pe)
    whole = hi == p.end
    return lo, pe if whole else max(lo, min(ps + (hi - p.start), pe))


def cumulative_start(hi: dt.date, window: Window) -> dt.date:
    """First day of the cumulative window ending at ``hi``: the start of its ``to_date`` period, or of
    the ``rolling``-th ``grain`` period back (the current one included)."""
    if window.to_date:
        return trunc(hi, window.to_date)
    return shift(trunc(hi, window.grain), window.grain, -(int(window.rolling) - 1))


@dataclass
class Windows:
    """A registry of distinct (lo, hi) windows, numbered from 0."""

    ids: dict[tuple[dt.date, dt.date], int] = field(default_factory=dict)

    def id(self, lo: dt.date, hi: dt.date) -> int:
        return self.ids.setdefault((lo, hi), len(self.ids))

    def bounds(self, wids: Iterable[int]) -> list[tuple[int, dt.date, dt.date]]:
        wanted = set(wids)
        return [(w, lo, hi) for (lo, hi), w in self.ids.items() if w in wanted]

    def frame(self) -> pl.DataFrame:
        items = sorted(self.ids.items(), key=lambda kv: kv[1])
        return pl.DataFrame(
            {"wid": [w for _, w in items], "lo": [k[0] for k, _ in items], "hi": [k[1] for k, _ in items]},
            schema={"wid": pl.Int64, "lo": pl.Date, "hi": pl.Date},
        )


def calendar(bounds: list[tuple[int, dt.date, dt.date]]) -> pl.DataFrame:
    """``_day, wid``: one row per day of each window (a day in several windows has several rows)."""
    frame = pl.DataFrame(
        {"wid": [b[0] for b in bounds], "lo": [b[1] for b in bounds], "hi": [b[2] for b in bounds]},
        schema={"wid": pl.Int64, "lo": pl.Date, "hi": pl.Date},
    )
    return frame.select(pl.date_ranges("lo", "hi").alias("_day"), "wid").explode("_day")


def overlapping(bounds: list[tuple[int, dt.date, dt.date]]) -> bool:
    """Whether some day falls in more than one window (then rows are pre-aggregated by day first)."""
    spans = sorted((lo, hi) for _, lo, hi in bounds)
    return any(b[0] <= a[1] for a, b in zip(spans, spans[1:], strict=False))
