"""KPI cards and value formatting."""

from datetime import date

import polars as pl
import pytest

from crmlib.cards import format_value, kpi_cards


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((1234567, "currency", 0, "en", "CNY"), "CNY 1.23M"),
        ((1234567, "currency", 0, "zh", "CNY"), "CNY 123.46万"),  # 1,234,567 / 10,000 = 123.4567
        ((250_000_000, "integer", 0, "zh"), "2.50亿"),
        ((999, "integer", 0, "en"), "999"),
        ((0.4567, "percent", 1, "en"), "45.7%"),
        ((12.25, "days", 1, "zh"), "12.2 天"),  # Python rounds half to even in format: 12.25 -> 12.2
        ((None, "currency", 0, "en", "CNY"), "–"),
    ],
)
def test_format_value(args, expected):
    assert format_value(*args) == expected


def _frame(**over):
    row = {"kpi": "revenue", "period": date(2025, 3, 1), "value": 80.0, "comparison": 100.0, "delta": -20.0,
           "delta_pct": -0.2, "target": 100.0, "attainment": 0.8, "gap": 20.0, "status": "off_track"}
    row.update(over)
    earlier = {**row, "period": date(2025, 2, 1), "value": 1.0, "status": "on_track"}
    return pl.DataFrame([earlier, row])


def test_cards_show_the_latest_period_with_status_and_change():
    html = kpi_cards(_frame(), "en").html
    assert "data-status='off_track'" in html and "data-status='on_track'" not in html
    assert "CNY 80" in html and "Target CNY 100" in html and "attainment 80%" in html
    assert "▼ 20.0%" in html and "#cf222e" in html  # revenue down is bad: red


def test_cards_say_no_data_for_an_empty_selection():
    assert "No data for this selection" in kpi_cards(_frame(value=None).filter(pl.col("value").is_null()), "en").html
    assert "没有数据" in kpi_cards(_frame().clear(), "zh").html
