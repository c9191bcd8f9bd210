"""Customer value: which customers are worth tracking, and which of them are slipping.

One call opens the data, then one call per analysis::

    data = crmlib.customers.load(crm, as_of="2026-06-30", segment="")   # as_of '' = last order day
    crmlib.customers.rfm(data)                       # RFM scores and segments per customer
    value = crmlib.customers.customer_value(data, horizon=12, discount_rate=0.01, margin=0.3)
    crmlib.customers.watchlist(value, data)          # top-tier customers slipping, with owner

Modules: :mod:`.data` (what counts as an order, money in the base currency, exclusions counted),
:mod:`.summary` (frequency/recency/T/monetary, calibration/holdout), :mod:`.rfm`, :mod:`.value` (BG/NBD +
Gamma-Gamma CLV, P(alive), watchlist, rising accounts), :mod:`.retention` (order cohorts, subscription
churn, GRR, NRR, logo churn), :mod:`.concentration` (Pareto curve, top-x % share, ABC classes). The
models themselves are in :mod:`crmlib.models.clv`.
"""

from . import views
from .concentration import abc_summary, concentration, pareto, top_share
from .data import CustomerData, load, order_exclusions, to_base_currency
from .retention import retention_matrix, subscription_retention
from .rfm import SEGMENTS, rfm, rfm_grid, rfm_segments
from .summary import customer_summary, holdout_check
from .value import CustomerValue, customer_value, holdout_validation, p_alive_grid, rising_accounts, watchlist

__all__ = [
    "SEGMENTS",
    "CustomerData",
    "CustomerValue",
    "abc_summary",
    "concentration",
    "customer_summary",
    "customer_value",
    "holdout_check",
    "holdout_validation",
    "load",
    "order_exclusions",
    "p_alive_grid",
    "pareto",
    "retention_matrix",
    "rfm",
    "rfm_grid",
    "rfm_segments",
    "rising_accounts",
    "subscription_retention",
    "to_base_currency",
    "top_share",
    "views",
    "watchlist",
]
