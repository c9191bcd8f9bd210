"""Fixtures for the model tests: the CDNOW summaries from ../shared/data (see shared_data.py)."""

from __future__ import annotations

import pytest
from shared_data import shared_file


@pytest.fixture(scope="module")
def cdnow_summary():
    """cdnow_customers_summary.csv: ID, frequency, recency, T (weeks), 2,357 customers."""
    import polars as pl

    return pl.read_csv(shared_file("cdnow/cdnow_customers_summary.csv"))


@pytest.fixture(scope="module")
def cdnow_with_transactions():
    """cdnow_customers_summary_with_transactions.csv: ID, x, t_x, T, zbar (946 customers with x > 0)."""
    import polars as pl

    return pl.read_csv(shared_file("cdnow/cdnow_customers_summary_with_transactions.csv"))
