"""Business-hours calendars: hand-computed elapsed times (weekends, holidays, extra working days, lunch
breaks, time zones, daylight saving), the inverse, a brute-force property check, and the YAML file."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crmlib.calendars import US_HOUR, Calendar, calendar_from_dict, load_calendar
from crmlib.errors import ConfigError

FIXTURES = Path(__file__).parent / "service_fixtures"
ROOT = Path(__file__).parents[1]
D = dt.datetime
NINE_TO_SIX = Calendar()  # Monday-Friday 09:00-18:00, Asia/Shanghai, no holidays


def bh(cal: Calendar, start: dt.datetime, end: dt.datetime, mode: str = "business") -> float:
    """Hours between two naive timestamps (in the calendar's data time zone), through the polars clock."""
    f = pl.DataFrame({"a": [start], "b": [end]}, schema={"a": pl.Datetime("us"), "b": pl.Datetime("us")})
    got = f.select((cal.clock(pl.col("b"), mode) - cal.clock(pl.col("a"), mode)) / US_HOUR).item()
    # the numpy core gives the same number (local wall clock = data zone here unless a test says otherwise)
    if mode == "business" and cal.zone_of_data == cal.timezone:
        assert cal.business_hours_between(np.datetime64(start), np.datetime64(end)) == pytest.approx(got)
    return got


def back(cal: Calendar, start: dt.datetime, hours: float, mode: str = "business") -> dt.datetime:
    """The instant ``hours`` of the clock after ``start`` (the inverse of the clock)."""
    f = pl.DataFrame({"a": [start]}, schema={"a": pl.Datetime("us")})
    return f.select(cal.unclock(cal.clock(pl.col("a"), mode) + round(hours * US_HOUR), mode)).item()


# --------------------------------------------------------------------------------------------
# Hand-computed business hours (2025-01-06 is a Monday)
# --------------------------------------------------------------------------------------------
def test_same_day():
    # Monday 10:00 -> 15:30: 5.5 h, all inside 09:00-18:00
    assert bh(NINE_TO_SIX, D(2025, 1, 6, 10), D(2025, 1, 6, 15, 30)) == 5.5


def test_over_a_weekend():
    # Friday 16:00 -> Monday 10:30: Friday 16-18 = 2 h, Saturday and Sunday 0, Monday 9-10:30 = 1.5 h -> 3.5 h
    assert bh(NINE_TO_SIX, D(2025, 1, 10, 16), D(2025, 1, 13, 10, 30)) == 3.5
    # in calendar hours: Friday 16:00 -> Monday 10:30 = 2 days 18.5 h = 66.5 h
    assert bh(NINE_TO_SIX, D(2025, 1, 10, 16), D(2025, 1, 13, 10, 30), "calendar") == 66.5


def test_both_ends_outside_hours():
    # Friday 20:00 -> Monday 08:00: no working time at all; Saturday noon -> Sunday noon: none either
    assert bh(NINE_TO_SIX, D(2025, 1, 10, 20), D(2025, 1, 13, 8)) == 0
    assert bh(NINE_TO_SIX, D(2025, 1, 11, 12), D(2025, 1, 12, 12)) == 0
    # Monday 07:00 -> Monday 20:00 is the whole working day, 9 h
    assert bh(NINE_TO_SIX, D(2025, 1, 6, 7), D(2025, 1, 6, 20)) == 9


def test_a_holiday():
    cal = Calendar(holidays=(dt.date(2025, 1, 1),))  # New Year's Day, a Wednesday
    # Tuesday 31 Dec 17:00 -> Thursday 2 Jan 10:00: Tuesday 17-18 = 1 h, Wednesday (holiday) 0, Thursday 9-10 = 1 h
    assert bh(cal, D(2024, 12, 31, 17), D(2025, 1, 2, 10)) == 2
    # without the holiday Wednesday counts 9 h: 11 h
    assert bh(NINE_TO_SIX, D(2024, 12, 31, 17), D(2025, 1, 2, 10)) == 11


def test_golden_week_with_extra_working_days():
    # 2025: National Day holidays 1-8 October; Sunday 28 September and Saturday 11 October are worked.
    cal = calendar_from_dict({"holidays": ["2025-10-01..2025-10-08"], "extra_workdays": ["2025-09-28", "2025-10-11"]})
    # Friday 26 Sep 17:00 -> Thursday 9 Oct 10:00:
    #   Fri 26: 17-18 = 1 h; Sat 27: 0; Sun 28 (worked): 9 h; Mon 29: 9 h; Tue 30: 9 h;
    #   1-8 Oct: holidays (4-5 Oct a weekend anyway) 0; Thu 9: 9-10 = 1 h          -> 29 h
    assert bh(cal, D(2025, 9, 26, 17), D(2025, 10, 9, 10)) == 29
    # Saturday 11 Oct 12:00 -> Monday 13 Oct 10:00: Sat (worked) 12-18 = 6 h, Sun 0, Mon 9-10 = 1 h -> 7 h
    assert bh(cal, D(2025, 10, 11, 12), D(2025, 10, 13, 10)) == 7
    assert cal.is_business_day(["2025-09-27", "2025-09-28", "2025-10-01", "2025-10-09"]).tolist() == [
        False, True, False, True]


def test_lunch_break():
    cal = calendar_from_dict({"hours": ["09:00-12:00", "13:00-18:00"]})  # 8 h a day
    assert cal.hours_per_day == 8
    # Monday 11:00 -> 14:30: 11-12 = 1 h, lunch 0, 13-14:30 = 1.5 h -> 2.5 h
    assert bh(cal, D(2025, 1, 6, 11), D(2025, 1, 6, 14, 30)) == 2.5
    # 12:30 -> 13:30: only 13:00-13:30 counts -> 0.5 h
    assert bh(cal, D(2025, 1, 6, 12, 30), D(2025, 1, 6, 13, 30)) == 0.5
    # Friday 17:00 -> Monday 09:30: 1 h + 0.5 h
    assert bh(cal, D(2025, 1, 10, 17), D(2025, 1, 13, 9, 30)) == 1.5


def test_time_zones():
    # A helpdesk exporting in UTC, a desk working in Shanghai (UTC+8, no daylight saving).
    cal = Calendar(timezone="Asia/Shanghai", data_timezone="UTC")
    # 00:30 UTC = 08:30 in Shanghai (before opening), 02:00 UTC = 10:00: 1 business hour, 1.5 calendar hours
    assert bh(cal, D(2025, 1, 6, 0, 30), D(2025, 1, 6, 2)) == 1.0
    assert bh(cal, D(2025, 1, 6, 0, 30), D(2025, 1, 6, 2), "calendar") == 1.5
    # Friday 09:30 UTC = 17:30 Shanghai -> Monday 01:30 UTC = 09:30 Shanghai: 0.5 h + 0.5 h
    assert bh(cal, D(2025, 1, 10, 9, 30), D(2025, 1, 13, 1, 30)) == 1.0


def test_daylight_saving_time():
    # Berlin moves from CET (UTC+1) to CEST (UTC+2) on Sunday 30 March 2025 at 02:00.
    berlin_utc = Calendar(timezone="Europe/Berlin", data_timezone="UTC")
    # Friday 28 Mar 16:00 UTC = 17:00 CET; Monday 31 Mar 08:00 UTC = 10:00 CEST
    #   business: Friday 17-18 = 1 h, Monday 9-10 = 1 h -> 2 h
    #   calendar: 28 Mar 16:00 -> 31 Mar 08:00 UTC = 2 days 16 h = 64 h
    assert bh(berlin_utc, D(2025, 3, 28, 16), D(2025, 3, 31, 8)) == 2
    assert bh(berlin_utc, D(2025, 3, 28, 16), D(2025, 3, 31, 8), "calendar") == 64
    # the same instants stored as Berlin wall-clock times: 17:00 -> 10:00 looks like 65 h but lasts 64 h
    berlin = Calendar(timezone="Europe/Berlin")
    assert bh(berlin, D(2025, 3, 28, 17), D(2025, 3, 31, 10), "calendar") == 64
    assert bh(berlin, D(2025, 3, 28, 17), D(2025, 3, 31, 10)) == 2


# --------------------------------------------------------------------------------------------
# The inverse: when a clock value is reached
# --------------------------------------------------------------------------------------------
def test_adding_business_hours():
    # Friday 16:00 + 4 h: Friday 16-18 (2 h), Monday 9-11 (2 h) -> Monday 11:00
    assert back(NINE_TO_SIX, D(2025, 1, 10, 16), 4) == D(2025, 1, 13, 11)
    # Monday 09:00 + 9 h is reached at Monday 18:00 (the earliest instant), not Tuesday 09:00
    assert back(NINE_TO_SIX, D(2025, 1, 6, 9), 9) == D(2025, 1, 6, 18)
    # from a Saturday: the clock starts on Monday morning; + 1 h -> Monday 10:00
    assert back(NINE_TO_SIX, D(2025, 1, 11, 15), 1) == D(2025, 1, 13, 10)
    # across the holiday and extra working days of the Golden Week calendar:
    cal = calendar_from_dict({"holidays": ["2025-10-01..2025-10-08"], "extra_workdays": ["2025-09-28", "2025-10-11"]})
    # Saturday 27 Sep 12:00 + 10 h: Sunday 28 (worked) 9 h, Monday 29 9-10 -> Monday 29 Sep 10:00
    assert back(cal, D(2025, 9, 27, 12), 10) == D(2025, 9, 29, 10)
    # Tuesday 30 Sep 17:00 + 2 h: 1 h on Tuesday, then the next working day is Thursday 9 Oct -> 10:00
    assert back(cal, D(2025, 9, 30, 17), 2) == D(2025, 10, 9, 10)
    # Friday 10 Oct 17:00 + 2 h: 1 h Friday, Saturday 11 (worked) 9-10 -> Saturday 11 Oct 10:00
    assert back(cal, D(2025, 10, 10, 17), 2) == D(2025, 10, 11, 10)
    # the UTC data of a Shanghai desk: Friday 09:00 UTC (17:00 local) + 2 h -> Monday 10:00 local = 02:00 UTC
    assert back(Calendar(data_timezone="UTC"), D(2025, 1, 10, 9), 2) == D(2025, 1, 13, 2)
    # calendar hours: plain addition (through UTC): 64 h after Friday 17:00 CET is Monday 10:00 CEST
    assert back(Calendar(timezone="Europe/Berlin"), D(2025, 3, 28, 17), 64, "calendar") == D(2025, 3, 31, 10)


def test_nulls_pass_through():
    f = pl.DataFrame({"a": [D(2025, 1, 6, 10), None]}, schema={"a": pl.Datetime("us")})
    got = f.select(NINE_TO_SIX.clock(pl.col("a")).alias("c")).with_columns(NINE_TO_SIX.unclock(pl.col("c")).alias("u"))
    assert got["c"][1] is None and got["u"][1] is None and got["u"][0] == D(2025, 1, 6, 10)


# --------------------------------------------------------------------------------------------
# Against a brute-force count, minute by minute
# --------------------------------------------------------------------------------------------
GOLDEN = calendar_from_dict({"hours": ["08:30-12:00", "13:30-17:45"], "workdays": ["mon", "tue", "wed", "thu", "sat"],
                             "holidays": ["2025-10-01..2025-10-08"], "extra_workdays": ["2025-09-28", "2025-10-10"]})
MINUTES = st.integers(0, 24 * 60 * 30)  # a month of minutes from 2025-09-20 00:00


def brute_force_hours(cal: Calendar, a: np.datetime64, b: np.datetime64) -> float:
    """Count the working minutes of [a, b) one by one (vectorised over the minutes)."""
    minutes = np.arange(a, b, np.timedelta64(1, "m"))
    days = minutes.astype("datetime64[D]")
    minute_of_day = (minutes - days).astype("timedelta64[m]").astype(np.int64)
    inside = np.zeros(len(minutes), dtype=bool)
    for start, end in cal.hours:
        inside |= (minute_of_day >= start // 60) & (minute_of_day < end // 60)
    return float((inside & cal.is_business_day(days)).sum()) / 60


@settings(max_examples=60, deadline=None)
@given(MINUTES, MINUTES)
def test_closed_form_equals_brute_force(x, y):
    lo, hi = sorted((x, y))
    a = np.datetime64("2025-09-20T00:00") + np.timedelta64(lo, "m")
    b = np.datetime64("2025-09-20T00:00") + np.timedelta64(hi, "m")
    assert GOLDEN.business_hours_between(a, b) == pytest.approx(brute_force_hours(GOLDEN, a, b), abs=1e-9)


@settings(max_examples=60, deadline=None)
@given(MINUTES, st.integers(0, 60 * 200))
def test_inverse_is_the_earliest_instant(x, add):
    t = np.datetime64("2025-09-20T00:00", "us") + np.timedelta64(x, "m")
    c = GOLDEN.business_us(t.astype(np.int64)) + add * 60_000_000
    u = GOLDEN.from_business_us(np.asarray([c]))
    assert GOLDEN.business_us(u)[0] == c  # reached exactly
    assert GOLDEN.business_us(u - 60_000_000)[0] < c  # and not a minute earlier


# --------------------------------------------------------------------------------------------
# The calendar file
# --------------------------------------------------------------------------------------------
def test_the_project_calendar_loads():
    cal = load_calendar(ROOT / "parameters" / "calendar.yaml")
    assert cal.workdays == (0, 1, 2, 3, 4) and cal.hours == ((9 * 3600, 18 * 3600),)
    assert cal.timezone == "Asia/Shanghai" and cal.hours_per_day == 9


def test_missing_default_file_means_the_builtin_calendar(tmp_path, monkeypatch):
    monkeypatch.setenv("CRMLIB_HOME", str(tmp_path))
    assert load_calendar() == Calendar()
    with pytest.raises(ConfigError, match="does not exist"):
        load_calendar(tmp_path / "nope.yaml")


def test_a_wrong_file_lists_every_problem():
    with pytest.raises(ConfigError) as e:
        load_calendar(FIXTURES / "wrong_calendar.yaml")
    text = str(e.value)
    assert "wrong_calendar.yaml" in text
    for fragment in ('unknown key \'holiday\'. Did you mean "holidays"?', "workdays: 'fry' is not a weekday",
                     'hours: \'9-18\' is not a window such as "09:00-18:00"',
                     "extra_workdays: '2025-02-30' is not a date"):
        assert fragment in text, fragment


@pytest.mark.parametrize("data, fragment", [
    ({"timezone": "Asia/Shangai"}, "timezone 'Asia/Shangai' is not a time zone name"),
    ({"hours": ["09:00-12:00", "11:00-18:00"]}, "overlaps or precedes the previous window"),
    ({"hours": ["18:00-09:00"]}, "must start before it ends"),
    ({"extra_workdays": ["2025-01-06"]}, "extra_workdays 2025-01-06 already fall on working days"),
    ({"holidays": ["2025-01-04"], "extra_workdays": ["2025-01-04"]}, "is both a holiday and an extra working day"),
    ({"workdays": []}, "workdays is empty"),
    ({"holidays": ["2025-10-08..2025-10-01"]}, "is not a date YYYY-MM-DD or a range"),
])
def test_each_check_says_what_to_fix(data, fragment):
    with pytest.raises(ConfigError, match="Calendar") as e:
        calendar_from_dict(data, "test")
    assert fragment in str(e.value)
