"""Business-hours calendars: elapsed working time between timestamps, computed in closed form.

A :class:`Calendar` says when the service desk works: working days of the week, one or more daily
windows (``09:00-12:00`` and ``13:00-18:00``), the time zone where those hours apply, public holidays
and extra working days (weekend days worked instead, as China's 调休). It is read from
``parameters/calendar.yaml`` (:func:`load_calendar`; every problem reported at once)::

    name: Service desk
    timezone: Asia/Shanghai        # where the working hours apply
    data_timezone: Asia/Shanghai   # zone of the data's naive timestamps (default: timezone)
    workdays: [mon, tue, wed, thu, fri]
    hours: ["09:00-18:00"]
    holidays: [2025-01-01, 2025-10-01..2025-10-08]
    extra_workdays: [2025-09-28]

Times are measured on a **clock**: a monotone number of microseconds per instant, so that the time
between two instants is a difference of clock values and a sum over intervals is a sum of differences.

* ``mode="business"``: business microseconds since an origin (1900-01-01), in the calendar's local time:
  ``B(t) = nb(day(t)) * L + within(t)``, where ``nb(d)`` counts the business days before ``d``
  (:func:`numpy.busday_count` with the weekmask and holidays, plus the extra working days before ``d``,
  by a binary search), ``L`` is the working time of one day and ``within(t)`` the working time of
  ``t``'s day up to ``t`` (the sum over the windows of ``clip(t, start, end) - start``; 0 on days off).
  No loop over rows: every step is a vectorised numpy call.
* ``mode="calendar"``: microseconds since the epoch of the absolute instant (the data's naive
  timestamps are read in ``data_timezone``, so a daylight-saving change counts its real length).

:meth:`Calendar.unclock` is the inverse (the earliest instant a clock value is reached): due times
and breach instants.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import polars as pl
import yaml

from . import config
from .errors import ConfigError, suggest

__all__ = ["MODES", "Calendar", "load_calendar"]

MODES = ("business", "calendar")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
KEYS = ("name", "description", "timezone", "data_timezone", "workdays", "hours", "holidays", "extra_workdays")
US_HOUR = 3_600_000_000
US_DAY = 24 * US_HOUR
ORIGIN = np.datetime64("1900-01-01", "D")
_ORIGIN_DAY = int(ORIGIN.astype(np.int64))  # days since 1970-01-01 (negative)
_HHMM = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")
_DAY_RANGE = re.compile(r"^\s*(\d{4}-\d{2}-\d{2})\s*\.\.\s*(\d{4}-\d{2}-\d{2})\s*$")


@dataclass(frozen=True)
class Calendar:
    """When the service desk works (see the module docstring). Build it with :func:`load_calendar`
    or directly: ``Calendar(hours=((9 * 3600, 18 * 3600),), holidays=(date(2025, 1, 1),))``.

    ``hours`` are windows in seconds after midnight; ``workdays`` are weekday numbers (Monday = 0).
    """

    name: str = "Business hours"
    timezone: str = "Asia/Shanghai"
    data_timezone: str | None = None
    workdays: tuple[int, ...] = (0, 1, 2, 3, 4)
    hours: tuple[tuple[int, int], ...] = ((9 * 3600, 18 * 3600),)
    holidays: tuple[dt.date, ...] = ()
    extra_workdays: tuple[dt.date, ...] = ()
    source: str = field(default="(built-in default)", compare=False)

    def __post_init__(self) -> None:
        problems = _check(self)
        if problems:
            raise ConfigError(f"Calendar {self.source}: " + "; ".join(problems) + ".")

    # -- derived -----------------------------------------------------------------------------
    @property
    def zone_of_data(self) -> str:
        return self.data_timezone or self.timezone

    @property
    def day_us(self) -> int:
        """Working microseconds of one business day (``L``)."""
        return sum(b - a for a, b in self.hours) * 1_000_000

    @property
    def hours_per_day(self) -> float:
        return self.day_us / US_HOUR

    @cached_property
    def _busdaycal(self) -> np.busdaycalendar:
        mask = [1 if i in self.workdays else 0 for i in range(7)]
        return np.busdaycalendar(weekmask=mask, holidays=np.asarray(self.holidays, dtype="datetime64[D]"))

    @cached_property
    def _extras(self) -> np.ndarray:
        """Extra working days, as sorted day numbers since 1970-01-01."""
        return np.sort(np.asarray(self.extra_workdays, dtype="datetime64[D]").astype(np.int64))

    @cached_property
    def _extra_ranks(self) -> np.ndarray:
        """nb(day) of each extra working day: its position in the sequence of all business days."""
        e = self._extras
        return self._count_regular(e) + np.arange(len(e), dtype=np.int64)

    @cached_property
    def _windows(self) -> tuple[np.ndarray, np.ndarray]:
        starts = np.asarray([a for a, _ in self.hours], dtype=np.int64) * 1_000_000
        ends = np.asarray([b for _, b in self.hours], dtype=np.int64) * 1_000_000
        return starts, ends

    # -- numpy core (local wall-clock microseconds since 1970-01-01) ---------------------------
    def _count_regular(self, day: np.ndarray) -> np.ndarray:
        return np.busday_count(ORIGIN, day.astype("datetime64[D]"), busdaycal=self._busdaycal).astype(np.int64)

    def is_business_day(self, day) -> np.ndarray:
        """Whether each date (``datetime64[D]``, dates or day numbers) is a working day."""
        day = np.asarray(day, dtype="datetime64[D]").astype(np.int64)
        regular = np.is_busday(day.astype("datetime64[D]"), busdaycal=self._busdaycal)
        return regular | np.isin(day, self._extras)

    def business_us(self, local_us: np.ndarray) -> np.ndarray:
        """``B(t)``: business microseconds since 1900-01-01 of local wall-clock instants (int64 us)."""
        t = np.asarray(local_us, dtype=np.int64)
        day = np.floor_divide(t, US_DAY)
        sod = t - day * US_DAY
        nb = self._count_regular(day) + np.searchsorted(self._extras, day, side="left")
        starts, ends = self._windows
        within = np.zeros(t.shape, dtype=np.int64)
        for a, b in zip(starts, ends, strict=True):  # one step per daily window (one or two), not per row
            within += np.clip(sod, a, b) - a
        return nb * self.day_us + np.where(self.is_business_day(day), within, 0)

    def from_business_us(self, x: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`business_us`: the earliest local instant (int64 us) whose clock is ``x``."""
        x = np.asarray(x, dtype=np.int64)
        L = self.day_us
        k, r = np.divmod(x, L)
        at_end = r == 0  # x reached at the end of the previous business day, not the next morning
        k = np.where(at_end, k - 1, k)
        r = np.where(at_end, L, r)
        ranks, extras = self._extra_ranks, self._extras
        # the k-th business day: extra day number i has rank ranks[i]; otherwise the (k - extras before)-th
        # regular one
        pos = np.searchsorted(ranks, k, side="left")
        day = np.busday_offset(ORIGIN, k - pos, roll="forward", busdaycal=self._busdaycal).astype(np.int64)
        if len(ranks):
            at = np.minimum(pos, len(ranks) - 1)
            day = np.where((pos < len(ranks)) & (ranks[at] == k), extras[at], day)
        starts, ends = self._windows
        cum_end = np.cumsum(ends - starts)
        j = np.searchsorted(cum_end, r, side="left")
        sod = starts[j] + r - (cum_end[j] - (ends - starts)[j])
        return day * US_DAY + sod

    def business_hours_between(self, start, end) -> np.ndarray:
        """Business hours from ``start`` to ``end`` (local wall-clock ``datetime64`` arrays or lists)."""
        a = np.asarray(start, dtype="datetime64[us]").astype(np.int64)
        b = np.asarray(end, dtype="datetime64[us]").astype(np.int64)
        return (self.business_us(b) - self.business_us(a)) / US_HOUR

    # -- polars expressions ------------------------------------------------------------------
    def clock(self, expr: pl.Expr, mode: str = "business") -> pl.Expr:
        """Clock value (Int64 microseconds) of a naive datetime expression in ``data_timezone``."""
        check_mode(mode)
        if mode == "calendar":
            return _convert(expr, self.zone_of_data, "UTC").dt.epoch("us")
        local = _convert(expr, self.zone_of_data, self.timezone).dt.epoch("us")
        return local.map_batches(self._business_series, return_dtype=pl.Int64, is_elementwise=True)

    def clock_of(self, instant: dt.datetime, mode: str = "business") -> int:
        """The clock value of one naive instant (in ``data_timezone``)."""
        return pl.select(self.clock(pl.lit(instant, pl.Datetime("us")), mode)).item()

    def unclock(self, expr: pl.Expr, mode: str = "business") -> pl.Expr:
        """The naive datetime (in ``data_timezone``) at which a clock value is first reached."""
        check_mode(mode)
        if mode == "calendar":
            return _convert(pl.from_epoch(expr, time_unit="us"), "UTC", self.zone_of_data)
        local = pl.from_epoch(expr.map_batches(self._unbusiness_series, return_dtype=pl.Int64,
                                               is_elementwise=True), time_unit="us")
        return _convert(local, self.timezone, self.zone_of_data)

    def _business_series(self, s: pl.Series) -> pl.Series:
        valid = s.is_not_null().to_numpy()
        values = s.fill_null(0).to_numpy()
        out = pl.Series(s.name, self.business_us(values), dtype=pl.Int64)
        return out if valid.all() else out.scatter(np.flatnonzero(~valid), None)

    def _unbusiness_series(self, s: pl.Series) -> pl.Series:
        valid = s.is_not_null().to_numpy()
        values = np.where(valid, s.fill_null(0).to_numpy(), self.day_us)
        out = pl.Series(s.name, self.from_business_us(values), dtype=pl.Int64)
        return out if valid.all() else out.scatter(np.flatnonzero(~valid), None)


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ConfigError(f"Unknown hours mode {mode!r}.{suggest(str(mode), MODES)} Use 'business' (the calendar "
                          "of parameters/calendar.yaml) or 'calendar' (every hour counts).")
    return mode


def _convert(expr: pl.Expr, zone_from: str, zone_to: str) -> pl.Expr:
    """Naive wall-clock times in ``zone_from`` -> naive wall-clock times in ``zone_to``."""
    if zone_from == zone_to:
        return expr
    return (expr.dt.replace_time_zone(zone_from, ambiguous="earliest", non_existent="null")
            .dt.convert_time_zone(zone_to).dt.replace_time_zone(None))


# --------------------------------------------------------------------------------------------
# Checking and loading
# --------------------------------------------------------------------------------------------
def _check(c: Calendar) -> list[str]:
    problems = []
    for key in ("timezone", "data_timezone"):
        zone = getattr(c, key)
        if zone is None:
            continue
        try:
            zoneinfo.ZoneInfo(zone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            problems.append(f"{key} {zone!r} is not a time zone name (use e.g. Asia/Shanghai, Europe/Berlin, UTC)")
    if not c.workdays:
        problems.append("workdays is empty: give at least one working day, e.g. [mon, tue, wed, thu, fri]")
    if any(not isinstance(d, int) or not 0 <= d <= 6 for d in c.workdays):
        problems.append(f"workdays must be weekday numbers 0 (Monday) to 6, not {list(c.workdays)}")
    if not c.hours:
        problems.append('hours is empty: give at least one daily window, e.g. ["09:00-18:00"]')
    last = 0
    for a, b in c.hours:
        if not 0 <= a < b <= 86400:
            problems.append(f"hours window {_hhmm(a)}-{_hhmm(b)} must start before it ends, within one day")
        elif a < last:
            problems.append(f"hours window {_hhmm(a)}-{_hhmm(b)} overlaps or precedes the previous window: "
                            "list windows in order without overlap")
        last = max(last, b)
    both = sorted(set(c.holidays) & set(c.extra_workdays))
    if both:
        problems.append(f"{', '.join(map(str, both))} is both a holiday and an extra working day")
    regular = [d for d in c.extra_workdays if d.weekday() in c.workdays]
    if regular:
        problems.append(f"extra_workdays {', '.join(map(str, regular))} already fall on working days: list only "
                        "days off worked instead (e.g. a Saturday)")
    early = [d for d in (*c.holidays, *c.extra_workdays) if d < dt.date(1900, 1, 2)]
    if early:
        problems.append(f"dates before 1900 are not supported: {', '.join(map(str, early))}")
    return problems


def _hhmm(seconds: int) -> str:
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}"


def default_path() -> Path:
    return config.home() / "parameters" / "calendar.yaml"


def load_calendar(path: str | Path | None = None) -> Calendar:
    """The calendar of ``path`` (default ``parameters/calendar.yaml`` of the project; the built-in
    Monday-Friday 09:00-18:00, Asia/Shanghai, no holidays when that file does not exist).

    Raises :class:`ConfigError` listing every problem of the file.
    """
    if isinstance(path, Calendar):
        return path
    p = Path(path).expanduser() if path is not None else default_path()
    if not p.exists():
        if path is None:
            return Calendar()
        raise ConfigError(f"Calendar file {p} does not exist. Give the path of a calendar YAML file "
                          "(see parameters/calendar.yaml).")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"Calendar file {p} is not valid YAML: {str(exc).splitlines()[0]}") from None
    return calendar_from_dict(data, str(p))


def calendar_from_dict(data, source: str = "(dict)") -> Calendar:
    """Build a calendar from the mapping of a calendar file (every problem reported at once)."""
    if not isinstance(data, dict):
        raise ConfigError(f"Calendar {source}: the file must be a mapping of keys ({', '.join(KEYS)}).")
    problems: list[str] = []
    for key in data:
        if key not in KEYS:
            problems.append(f"unknown key {key!r}.{suggest(str(key), KEYS)} Keys: {', '.join(KEYS)}")
    kw: dict = {"source": source}
    for key in ("name", "timezone", "data_timezone"):
        if data.get(key) is not None:
            if not isinstance(data[key], str):
                problems.append(f"{key} must be text, not {data[key]!r}")
            else:
                kw[key] = data[key].strip()
    if "workdays" in data:
        days = data["workdays"]
        if not isinstance(days, list):
            problems.append(f"workdays must be a list such as [mon, tue, wed, thu, fri], not {days!r}")
        else:
            nums = []
            for d in days:
                name = str(d).strip().lower()[:3]
                if name not in WEEKDAYS:
                    problems.append(f"workdays: {d!r} is not a weekday.{suggest(name, WEEKDAYS)} Use "
                                    f"{', '.join(WEEKDAYS)}")
                else:
                    nums.append(WEEKDAYS.index(name))
            kw["workdays"] = tuple(sorted(set(nums)))
    if "hours" in data:
        hours = data["hours"]
        items = [hours] if isinstance(hours, str) else hours
        if not isinstance(items, list):
            problems.append(f'hours must be a window such as "09:00-18:00" or a list of them, not {hours!r}')
        else:
            windows = []
            for w in items:
                m = _HHMM.match(str(w))
                if not m or int(m[2]) > 59 or int(m[4]) > 59:
                    problems.append(f'hours: {w!r} is not a window such as "09:00-18:00" (24-hour clock, HH:MM-HH:MM)')
                    continue
                windows.append((int(m[1]) * 3600 + int(m[2]) * 60, int(m[3]) * 3600 + int(m[4]) * 60))
            kw["hours"] = tuple(windows)
    for key in ("holidays", "extra_workdays"):
        if key in data and data[key] is not None:
            values = data[key]
            if not isinstance(values, list):
                problems.append(f"{key} must be a list of dates (2025-10-01) or ranges (2025-10-01..2025-10-08)")
                continue
            days: list[dt.date] = []
            for v in values:
                got = _days(v)
                if got is None:
                    problems.append(f"{key}: {v!r} is not a date YYYY-MM-DD or a range YYYY-MM-DD..YYYY-MM-DD")
                else:
                    days.extend(got)
            kw[key] = tuple(sorted(set(days)))
    if problems:
        raise ConfigError(f"Calendar {source}: " + "; ".join(problems) + ".")
    return Calendar(**kw)


def _days(value) -> list[dt.date] | None:
    if isinstance(value, dt.datetime):
        return None
    if isinstance(value, dt.date):
        return [value]
    text = str(value)
    m = _DAY_RANGE.match(text)
    try:
        if m:
            lo, hi = dt.date.fromisoformat(m[1]), dt.date.fromisoformat(m[2])
            if hi < lo:
                return None
            return [lo + dt.timedelta(days=i) for i in range((hi - lo).days + 1)]
        return [dt.date.fromisoformat(text.strip())]
    except ValueError:
        return None
