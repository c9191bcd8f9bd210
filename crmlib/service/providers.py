"""Service KPIs through the KPI engine (cards, satisfaction) and the providers of the catalog's external
service KPIs: ``provider(crm, by, grain, period, filters)`` -> ``period, <by…>, value``."""

from __future__ import annotations

import polars as pl

from ..calendars import check_mode
from ._common import complete, dims_of, filters_of, grid, in_window, period_col, period_of
from .analytics import prepare, sla_report


def card_kpis(hours: str = "business") -> list[str]:
    """The KPIs of the service cards, with the time KPIs in ``hours``."""
    check_mode(hours)
    times = (["first_response_business_hours", "resolution_business_hours"] if hours == "business"
             else ["first_response_hours", "median_resolution_hours"])
    return ["new_cases", "solved_cases", "open_cases", *times, "sla_compliance", "csat", "nps"]


def kpi_summary(crm, period=None, grain: str = "month", filters=None, hours: str = "business",
                compare: str | None = "previous_period", targets=True) -> pl.DataFrame:
    """The service KPIs (:func:`card_kpis`) from ``crm.kpis``, with comparison and targets: the company's,
    or those of the one team selected (the demo sets monthly ``sla_compliance`` and ``csat`` targets per
    team); a selection by priority or channel has none. Empty when the selection has no case and no
    survey (cards then say so)."""
    from ..kpis.targets import ORG_DIMENSIONS

    flt = filters_of(filters)
    # one team (department...) selected and nothing else: group by it, so that its targets apply
    one = [d for d, v in flt.items() if d in ORG_DIMENSIONS and len(v) == 1 and v[0] is not None]
    by = one if len(flt) == 1 and one else []
    out = crm.kpis(card_kpis(hours), by=by, grain=grain, period=period_of(crm, period), filters=flt or None,
                   compare=compare, targets=targets).drop(*by)
    flows = out.filter(pl.col("kpi").is_in(["new_cases", "solved_cases", "open_cases"]))
    others = out.filter(~pl.col("kpi").is_in(["new_cases", "solved_cases", "open_cases"]))
    if flows["value"].fill_null(0).sum() == 0 and others["value"].is_null().all():
        return out.clear()
    return out


def satisfaction(crm, by=(), grain: str = "month", period=None, filters=None) -> pl.DataFrame:
    """CSAT, NPS and survey response rates per period (and group) from ``crm.kpis``: the engine's tidy
    frame for ``csat, nps, csat_response_rate, nps_response_rate``. Empty when nothing was answered."""
    out = crm.kpis(["csat", "nps", "csat_response_rate", "nps_response_rate"], by=dims_of(by), grain=grain,
                   period=period_of(crm, period), filters=filters_of(filters) or None, targets=False)
    return out.clear() if out["value"].is_null().all() else out


# --------------------------------------------------------------------------------------------
# Providers of the catalog's external KPIs: provider(crm, by, grain, period, filters) -> period, <by…>, value
# --------------------------------------------------------------------------------------------
def _sla_value(metric: str, column: str):
    def provider(crm, by, grain, period, filters):
        r = sla_report(crm, by=by, grain=grain, period=period, filters=filters)
        return r.filter(pl.col("metric") == metric).select("period", *by, pl.col(column).cast(pl.Float64)
                                                            .alias("value"))
    provider.__doc__ = f"KPI provider: ``{column}`` of SLA metric ``{metric}`` (see :func:`sla_report`)."
    return provider


sla_compliance = _sla_value("sla", "compliance")
first_response_sla = _sla_value("first_response", "compliance")
resolution_sla = _sla_value("resolution", "compliance")
sla_breaches = _sla_value("sla", "breached")


def _median_time(value: str, time_col: str, hours: str):
    def provider(crm, by, grain, period, filters):
        facts, w, dims, grain_ = prepare(crm, by, grain, period, filters, hours=hours)
        if w.lo is None:
            return pl.DataFrame(schema={"period": pl.Date, **{d: pl.String for d in dims}, "value": pl.Float64})
        got = (facts.filter(in_window(time_col, w)).group_by(period_col(time_col, grain_), *dims)
               .agg(pl.col(value).median().alias("value")))
        return complete(grid(facts, w, grain_, dims), got, dims, ())
    provider.__doc__ = f"KPI provider: median ``{value}`` ({hours} hours) of the cases by ``{time_col}``."
    return provider


first_response_business_hours = _median_time("first_response_hours", "first_response_at", "business")
first_response_calendar_hours = _median_time("first_response_hours", "first_response_at", "calendar")
resolution_business_hours = _median_time("full_resolution_hours", "solved_at", "business")


def reopen_rate(crm, by, grain, period, filters):
    """KPI provider: cases first solved in the period and reopened since / cases first solved in it."""
    facts, w, dims, grain = prepare(crm, by, grain, period, filters)
    if w.lo is None:
        return pl.DataFrame(schema={"period": pl.Date, **{d: pl.String for d in dims}, "value": pl.Float64})
    got = (facts.filter(in_window("first_solved_at", w)).group_by(period_col("first_solved_at", grain), *dims)
           .agg((pl.col("reopens") > 0).mean().alias("value")))
    return complete(grid(facts, w, grain, dims), got, dims, ())
