"""Sales analytics that are not plain catalog KPIs: pipeline, forecast, coverage, funnel, stalled deals.

Are we on target, is the pipeline big and healthy enough, how do we win? Catalog KPIs (revenue, win
rate, cycle length, velocity, …) come from the KPI engine (:func:`kpi_summary`, :func:`trends`,
:func:`velocity`); what needs the stage history is computed here. Every function takes ``crm`` and the
standard keyword filters and returns a tidy polars DataFrame (lazy queries, collected once small):

* :func:`kpi_summary`, :func:`trends`, :func:`velocity` - catalog KPIs through the engine, with quota;
* :func:`pipeline` (by stage, category or dimension), :func:`forecast` (by category, vs quota),
  :func:`pipeline_coverage`, :func:`forecast_accuracy` - from stage-history snapshots;
* :func:`funnel`, :func:`stalled_deals`, :func:`lost_reasons` - deals that explain results or need action;
* :func:`weighted_pipeline_kpi`, :func:`commit_attainment_kpi`, :func:`pipeline_coverage_kpi` - the
  providers of the catalog's external KPIs ``weighted_pipeline``, ``commit_attainment``,
  ``pipeline_coverage`` (``sales.yaml``).

**Selection.** ``start``, ``end``: the period, dates inclusive (``YYYY-MM-DD``, ``YYYY-MM``, ``YYYY``,
``YYYY-Qn``; empty = the data's first / last day). ``team`` (a team_id or team name), ``region``,
``product`` (a product_id or name): filters, a value or a list, empty = all. A deal belongs to the team
of its owner, the region of its account and its main product (as in ``dimensions.yaml``).
``as_of``: the day at whose end snapshots are taken; default the period end, or the data's last event
day if earlier. Stage history after the as-of day is not used.

**Definitions.**

* *State of a deal on a day*: its last ``opportunity_history`` row changed by the end of that day (a
  deal without history rows is taken from ``opportunities``: open from ``created_at`` at its current
  stage, closed at ``close_date``). A deal is *open* when that row's stage is not closed.
* *Money* is converted to the base currency (``CRMLIB_BASE_CURRENCY``) with the one rule of every area, dense
  ``fx_rates`` (:func:`crmlib.money.dense_rates`: the latest rate on or before the day): won
  amounts at the close date (as the ``revenue`` KPI), snapshot amounts at the snapshot day, funnel
  values at the creation day. A row without a rate raises :class:`~crmlib.errors.CurrencyError`.
* *Weighted* amount = amount × probability of the state (the stage's default probability,
  :data:`crmlib.schema.DEFAULT_STAGE_PROBABILITY`, when the probability is empty).
* *Quota*: the ``revenue`` targets (:mod:`crmlib.kpis.targets`) of the company, or of the one team /
  department / user the filters select, summed over the days of the period (targets of another
  grain are spread over their days); none under a region or product filter.
* *Expected in a period*: an open deal counts in the period of its expected ``close_date``; an overdue
  deal (expected close before the snapshot day) counts in the snapshot's period.

Modules: :mod:`._data` (selection, money, history, states, quota), :mod:`.pipeline` (pipeline, forecast,
coverage, accuracy, engine-backed KPIs, external KPI providers), :mod:`.deals` (funnel, stalled deals,
lost reasons).
"""

from ._data import (
    CATEGORIES,
    DIMENSIONS,
    FUNNEL_STAGES,
    SUMMARY_KPIS,
    TREND_KPIS,
    Selection,
    check_fx,
    history,
    opportunities,
    periods,
    quota,
    select,
    states,
    to_base,
    won_deals,
)
from .deals import funnel, funnel_deals, lost_reasons, stage_p90, stalled_deals
from .pipeline import (
    VELOCITY_PARTS,
    commit_attainment_kpi,
    forecast,
    forecast_accuracy,
    kpi_summary,
    pipeline,
    pipeline_coverage,
    pipeline_coverage_kpi,
    trends,
    velocity,
    weighted_pipeline_kpi,
)

__all__ = [
    "CATEGORIES",
    "DIMENSIONS",
    "FUNNEL_STAGES",
    "SUMMARY_KPIS",
    "TREND_KPIS",
    "VELOCITY_PARTS",
    "Selection",
    "check_fx",
    "commit_attainment_kpi",
    "forecast",
    "forecast_accuracy",
    "funnel",
    "funnel_deals",
    "history",
    "kpi_summary",
    "lost_reasons",
    "opportunities",
    "periods",
    "pipeline",
    "pipeline_coverage",
    "pipeline_coverage_kpi",
    "quota",
    "select",
    "stage_p90",
    "stalled_deals",
    "states",
    "to_base",
    "trends",
    "velocity",
    "weighted_pipeline_kpi",
    "won_deals",
]
