"""Customer-value analyses as functions of the data handle, for the dashboard sections.

Each takes ``crm`` and the notebook's filters (``as_of``, ``segment``; the CLV ones also ``horizon``,
``discount_rate``, ``margin``) and returns what one section shows. The loaded data and the fitted CLV
models are computed once per handle and arguments (:meth:`crmlib.sources.Crm.memo`), so the sections of
one dashboard share them.
"""

from __future__ import annotations

import polars as pl

from ..errors import ConfigError
from .concentration import pareto
from .data import CustomerData, load, order_exclusions
from .retention import retention_matrix, subscription_retention
from .rfm import SEGMENTS, rfm, rfm_grid, rfm_segments
from .value import CustomerValue, customer_value, holdout_validation, p_alive_grid, rising_accounts, watchlist


def data(crm, as_of: str = "", segment: str = "") -> CustomerData:
    """:func:`crmlib.customers.load`, once per handle, as-of day and segment."""
    return crm.memo(("customers.data", as_of or "", segment or ""),
                    lambda: load(crm, as_of=as_of, segment=segment))


def value(crm, as_of: str = "", segment: str = "", horizon: int = 12, discount_rate: float = 0.01,
          margin: float = 0.3) -> CustomerValue:
    """:func:`crmlib.customers.customer_value`, once per handle and arguments."""
    return crm.memo(("customers.value", as_of or "", segment or "", horizon, discount_rate, margin),
                    lambda: customer_value(data(crm, as_of, segment), horizon=horizon,
                                           discount_rate=discount_rate, margin=margin))


def exclusions(crm, as_of: str = "", segment: str = "") -> pl.DataFrame:
    return order_exclusions(data(crm, as_of, segment))


def segments(crm, as_of: str = "", segment: str = "") -> pl.DataFrame:
    return rfm_segments(data(crm, as_of, segment))


def grid(crm, as_of: str = "", segment: str = "") -> pl.DataFrame:
    return rfm_grid(data(crm, as_of, segment))


def parameters(crm, as_of: str = "", segment: str = "", horizon: int = 12, discount_rate: float = 0.01,
               margin: float = 0.3) -> pl.DataFrame:
    return value(crm, as_of, segment, horizon, discount_rate, margin).parameters()


def notes(crm, as_of: str = "", segment: str = "", horizon: int = 12, discount_rate: float = 0.01,
          margin: float = 0.3) -> list[str]:
    return value(crm, as_of, segment, horizon, discount_rate, margin).notes


def clv(crm, as_of: str = "", segment: str = "", horizon: int = 12, discount_rate: float = 0.01,
        margin: float = 0.3) -> pl.DataFrame:
    return value(crm, as_of, segment, horizon, discount_rate, margin).customers


def top(crm, as_of: str = "", segment: str = "", horizon: int = 12, discount_rate: float = 0.01,
        margin: float = 0.3, n: int = 20) -> pl.DataFrame:
    return value(crm, as_of, segment, horizon, discount_rate, margin).top(n)


def p_alive(crm, as_of: str = "", segment: str = "", horizon: int = 12, discount_rate: float = 0.01,
            margin: float = 0.3) -> pl.DataFrame:
    return p_alive_grid(value(crm, as_of, segment, horizon, discount_rate, margin))


def holdout(crm, as_of: str = "", segment: str = "") -> pl.DataFrame:
    return holdout_validation(data(crm, as_of, segment))


def cohorts(crm, as_of: str = "", segment: str = "") -> pl.DataFrame:
    return retention_matrix(data(crm, as_of, segment))


def revenue_retention(crm, as_of: str = "", segment: str = "") -> pl.DataFrame:
    return subscription_retention(data(crm, as_of, segment))


def concentration_curve(crm, as_of: str = "", segment: str = "") -> pl.DataFrame:
    return pareto(data(crm, as_of, segment))


def slipping(crm, as_of: str = "", segment: str = "", horizon: int = 12, discount_rate: float = 0.01,
             margin: float = 0.3) -> pl.DataFrame:
    return watchlist(value(crm, as_of, segment, horizon, discount_rate, margin), data(crm, as_of, segment))


def rising(crm, as_of: str = "", segment: str = "", horizon: int = 12, discount_rate: float = 0.01,
           margin: float = 0.3) -> pl.DataFrame:
    return rising_accounts(value(crm, as_of, segment, horizon, discount_rate, margin), data(crm, as_of, segment))


def segment_customers(crm, point: dict | str, as_of: str = "", segment: str = "", lang: str = "en") -> pl.DataFrame:
    """The customers of one RFM segment (drill-down of the segment treemap), highest spend first.

    ``point``: a segment of :data:`crmlib.customers.SEGMENTS`, or a clicked tile (``{"index": i}``: the
    i-th segment with customers, in :data:`SEGMENTS` order, as the treemap draws them)."""
    scores = rfm(data(crm, as_of, segment)).with_columns(pl.col("segment").cast(pl.String))
    if isinstance(point, dict) and point.get("customdata") in SEGMENTS:
        name = point["customdata"]  # the tile's segment (plot_rfm_segments)
    elif isinstance(point, dict):
        present = [s for s in SEGMENTS if s in set(scores.get_column("segment").to_list())]
        i = point.get("index")
        if not isinstance(i, int) or not 0 <= i < len(present):
            raise ConfigError(f"No RFM segment at position {i!r}; segments: {', '.join(present)}.")
        name = present[i]
    else:
        name = str(point)
        if name not in SEGMENTS:
            raise ConfigError(f"Unknown RFM segment {name!r}; segments: {', '.join(SEGMENTS)}.")
    return scores.filter(pl.col("segment") == name).sort("monetary", descending=True)
