"""Marketing analytics: customer journeys, the lead funnel, cost KPIs, attribution, wasted spend.

Which half of the budget is wasted? The answer is built in steps, each a function returning a tidy
polars frame (lazy until the result is small; never a Python loop over rows):

* :func:`journeys` - ordered channel paths per person up to a conversion event, within a lookback
  window, plus non-converting paths, aggregated to the path frame of
  :mod:`crmlib.models.attribution`;
* :func:`funnel` - lead -> MQL -> SQL -> opportunity -> won: counts, step conversion, drop-off, median
  days between steps, by channel, campaign or cohort month;
* :func:`cost_kpis` - spend, cost per lead, cost per MQL and CAC; :func:`budget_vs_actual` per campaign;
* :func:`attribution` - attributed conversions and revenue under several models (per campaign);
* :func:`wasted_spend` - spend, attributed revenue, ROAS and ROI under each model, how much the models
  agree, and a flag on spend whose ROI is below the threshold under every data-driven model;
* :func:`reallocation` - shift a share of budget from the lowest- to the highest-ROAS channels, with
  the expected change under a stated assumption (constant ROAS per channel).

Definitions used throughout:

* **person**: a lead (``touchpoints.lead_id``); touchpoints of a contact count for the lead the contact
  was converted from (``contacts.lead_id``).
* **opportunities of a lead**: ``opportunities.lead_id`` or ``leads.converted_opportunity_id``.
* **revenue** (attributed ``value``): the amount of the person's won opportunities, converted to the
  base currency (:func:`crmlib.config.base_currency`) at the ``fx_rates`` rate of the close date, as the
  data stands (an open deal counts 0).
* **ROAS** = attributed revenue / spend; **ROI** = (attributed revenue - spend) / spend. Spend is
  ``marketing_spend`` in the period by spend date, in the base currency. Both are null without spend.
* **Period**: ``start`` and ``end`` are dates, both inclusive (``None``: unbounded).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import polars as pl

from .errors import ConfigError, suggest
from .models.attribution import DATA_DRIVEN, MODELS, compare_models
from .money import convert
from .sources import Crm

__all__ = [
    "CONVERSION_EVENTS",
    "FUNNEL_STEPS",
    "attribution",
    "budget_vs_actual",
    "cost_kpis",
    "funnel",
    "journeys",
    "reallocation",
    "to_base_currency",
    "wasted_spend",
]

CONVERSION_EVENTS = ("lead_created", "opportunity_created", "closed_won")
FUNNEL_STEPS = ("lead", "mql", "sql", "opportunity", "won")
_DAY_US = 86_400_000_000
_DIMS = {"channel": "channel", "campaign": "campaign_id", "cohort": "cohort"}


# ---------------------------------------------------------------------------------------------------
# Parameters
# ---------------------------------------------------------------------------------------------------
def _day(value, what: str) -> dt.date | None:
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value).strip())
    except ValueError:
        raise ConfigError(f"{what} must be a date YYYY-MM-DD (or empty for no limit), not {value!r}.") from None


def _period(start, end) -> tuple[dt.datetime | None, dt.datetime | None]:
    """[lo, hi) as datetimes: start at 00:00, the day after end at 00:00."""
    s, e = _day(start, "start"), _day(end, "end")
    if s and e and e < s:
        raise ConfigError(f"The period ends ({e}) before it starts ({s}).")
    lo = dt.datetime.combine(s, dt.time()) if s else None
    hi = dt.datetime.combine(e + dt.timedelta(days=1), dt.time()) if e else None
    return lo, hi


def _in(expr: pl.Expr, lo, hi) -> pl.Expr:
    """``lo <= expr < hi`` (a missing bound is no limit); false where ``expr`` is null."""
    conds = [c for c in ((expr >= lo) if lo is not None else None, (expr < hi) if hi is not None else None)
             if c is not None]
    if not conds:
        return expr.is_not_null()
    return pl.all_horizontal(conds).fill_null(False)


def _check_event(event: str) -> str:
    if event not in CONVERSION_EVENTS:
        raise ConfigError(f"Unknown conversion event {event!r}.{suggest(str(event), CONVERSION_EVENTS)} "
                          f"Use one of: {', '.join(CONVERSION_EVENTS)}.")
    return event


def _check_lookback(days) -> int | None:
    if days is None:
        return None
    if isinstance(days, bool) or not isinstance(days, int | float) or days <= 0:
        raise ConfigError(f"lookback_days must be a positive number of days (or None for no limit), not {days!r}.")
    return days


def _by(by) -> list[str]:
    names = [] if by is None else [by] if isinstance(by, str) else list(by)
    for n in names:
        if n not in _DIMS:
            raise ConfigError(f"Cannot group by {n!r}.{suggest(str(n), _DIMS)} Use: {', '.join(_DIMS)}.")
    return names


# ---------------------------------------------------------------------------------------------------
# Money
# ---------------------------------------------------------------------------------------------------
def to_base_currency(frame: pl.DataFrame, fx: pl.DataFrame | pl.LazyFrame, amount: str = "amount",
                     currency: str = "currency", day: str = "date", table: str = "table") -> pl.DataFrame:
    """Add ``<amount>_base`` (see :func:`crmlib.money.convert`, the rule every area shares)."""
    return convert(frame, fx, amount=amount, currency=currency, day=day, table=table)


def _spend(crm: Crm, lo, hi) -> pl.DataFrame:
    """marketing_spend in [lo, hi) with ``amount_base`` (small: one row per campaign and day)."""
    sp = crm.marketing_spend.filter(_in(pl.col("date").cast(pl.Datetime("us")), lo, hi)).collect()
    return to_base_currency(sp, crm.fx_rates, table="marketing_spend")


def _lead_opportunities(crm: Crm) -> pl.LazyFrame:
    """Per lead: first opportunity created, first win (end of its close day), won revenue (base currency)."""
    opp = crm.opportunities
    links = pl.concat([
        opp.select("opportunity_id", "lead_id").filter(pl.col("lead_id").is_not_null()),
        crm.leads.select(pl.col("converted_opportunity_id").alias("opportunity_id"), "lead_id")
        .filter(pl.col("opportunity_id").is_not_null()),
    ]).unique()
    won = to_base_currency(opp.filter(pl.col("is_won")).select("opportunity_id", "close_date", "amount", "currency")
                           .collect(), crm.fx_rates, day="close_date", table="opportunities")
    return (
        links.join(opp.select("opportunity_id", pl.col("created_at").alias("_oc")), on="opportunity_id")
        .join(won.lazy().select("opportunity_id", "close_date", "amount_base"), on="opportunity_id", how="left")
        .group_by("lead_id")
        .agg(pl.col("_oc").min().alias("opportunity_at"), pl.col("close_date").min().alias("won_on"),
             pl.col("amount_base").sum().alias("revenue"))
    )


# ---------------------------------------------------------------------------------------------------
# Journeys
# ---------------------------------------------------------------------------------------------------
def person_journeys(crm: Crm, start=None, end=None, conversion_event: str = "opportunity_created",
                    lookback_days: int | None = 90) -> pl.LazyFrame:
    """One row per person (lead) with a path: ``lead_id, converted, value, path, campaigns, times,
    lead_index, opportunity_index`` (lazy). See :func:`journeys`."""
    event = _check_event(conversion_event)
    lookback = _check_lookback(lookback_days)
    lo, hi = _period(start, end)
    people = crm.leads.select("lead_id", pl.col("created_at").alias("lead_at")).join(
        _lead_opportunities(crm), on="lead_id", how="left")
    end_of_won_day = pl.col("won_on").cast(pl.Datetime("us")) + pl.duration(microseconds=_DAY_US - 1)
    conv_at = {"lead_created": pl.col("lead_at"), "opportunity_created": pl.col("opportunity_at"),
               "closed_won": end_of_won_day}[event]
    people = people.with_columns(conv_at.alias("conv_at"), pl.col("revenue").fill_null(0.0))
    touches = (
        crm.touchpoints.select("touchpoint_id", "occurred_at", "lead_id", "contact_id", "channel", "campaign_id")
        .join(crm.contacts.select("contact_id", pl.col("lead_id").alias("_cl")), on="contact_id", how="left")
        .select("touchpoint_id", "occurred_at", "channel", "campaign_id",
                pl.coalesce("lead_id", "_cl").alias("lead_id"))
        .filter(pl.col("lead_id").is_not_null())
    )
    before_end = touches.filter(_in(pl.col("occurred_at"), None, hi))
    last_touch = before_end.group_by("lead_id").agg(pl.col("occurred_at").max().alias("_last"))
    converted = _in(pl.col("conv_at"), lo, hi)
    open_ = pl.col("conv_at").is_null() | ~_in(pl.col("conv_at"), None, hi)  # not converted by the end
    anchored = (
        people.join(last_touch, on="lead_id", how="left")
        .with_columns(converted.alias("converted"),
                      pl.when(converted).then(pl.col("conv_at")).when(open_).then(pl.col("_last")).alias("anchor"))
        .filter(pl.col("anchor").is_not_null() & (pl.col("converted") | _in(pl.col("_last"), lo, hi)))
    )
    window = pl.col("occurred_at") <= pl.col("anchor")
    if lookback is not None:
        window = window & (pl.col("occurred_at") >= pl.col("anchor") - pl.duration(microseconds=int(lookback * _DAY_US)))
    order = ["occurred_at", "touchpoint_id"]
    before = pl.col("occurred_at").sort_by(order)

    def index_of(moment: str) -> pl.Expr:
        # position of the last touch at or before `moment`, when `moment` is inside the journey
        k = (before <= pl.col(moment).first()).sum().cast(pl.Int64) - 1
        return pl.when(pl.col(moment).first() <= pl.col("anchor").first()).then(
            pl.when(k >= 0).then(k)).cast(pl.Int64)

    days = (pl.col("anchor") - pl.col("occurred_at")).dt.total_microseconds() / _DAY_US
    return (
        touches.join(anchored.select("lead_id", "anchor", "converted", "revenue", "lead_at", "opportunity_at"),
                     on="lead_id")
        .filter(window)
        .group_by("lead_id")
        .agg(
            pl.col("converted").first(),
            pl.when(pl.col("converted").first()).then(pl.col("revenue").first()).otherwise(0.0).alias("value"),
            pl.col("channel").sort_by(order).alias("path"),
            pl.col("campaign_id").sort_by(order).alias("campaigns"),
            days.sort_by(order).round(6).alias("times"),
            index_of("lead_at").alias("lead_index"),
            index_of("opportunity_at").alias("opportunity_index"),
        )
    )


def journeys(crm: Crm, start=None, end=None, conversion_event: str = "opportunity_created",
             lookback_days: int | None = 90, detail: bool = True) -> pl.DataFrame:
    """Customer journeys as the path frame of :mod:`crmlib.models.attribution`.

    A person converts in the period when its ``conversion_event`` happens in it: ``"lead_created"``
    (``leads.created_at``), ``"opportunity_created"`` (its first opportunity's ``created_at``) or
    ``"closed_won"`` (the end of the close day of its first won opportunity). Its path is its touches at
    or before the conversion and at most ``lookback_days`` before it (``None``: no limit). A person that
    has not converted by the end of the period has a non-converting path: its touches in the
    ``lookback_days`` before its last touch up to the end, when that last touch is in the period.
    Persons that converted before the period, and converting persons without a touch in the window,
    have no path.

    Returns ``path, campaigns, conversions, value, nulls`` aggregated over identical paths; with
    ``detail=True`` (default) also ``times`` (days from each touch to the conversion, or to the last
    touch), ``lead_index`` and ``opportunity_index`` (position of the last touch at or before the lead's
    creation / first opportunity's creation, null when that moment is not in the journey) - which the
    time-decay and W-shaped models need, and which make most rows one person.
    """
    keys = ["path", "campaigns", *(["times", "lead_index", "opportunity_index"] if detail else [])]
    return (
        person_journeys(crm, start, end, conversion_event, lookback_days)
        .group_by(keys)
        .agg(pl.col("converted").sum().cast(pl.Float64).alias("conversions"),
             pl.col("value").sum().alias("value"),
             (~pl.col("converted")).sum().cast(pl.Float64).alias("nulls"))
        .collect()
        .sort(["conversions", "nulls"], descending=True)
    )


# ---------------------------------------------------------------------------------------------------
# Funnel and costs
# ---------------------------------------------------------------------------------------------------
def _leads_with_steps(crm: Crm) -> pl.LazyFrame:
    stages = crm.leads.join(_lead_opportunities(crm), on="lead_id", how="left").with_columns(
        pl.col("created_at").dt.truncate("1mo").cast(pl.Date).alias("cohort"),
        pl.col("won_on").cast(pl.Datetime("us")).alias("won_at"))
    won = pl.col("won_at").is_not_null()
    opp = pl.col("opportunity_at").is_not_null() | won
    sql = pl.col("sql_at").is_not_null() | opp
    mql = pl.col("mql_at").is_not_null() | sql
    return stages.with_columns(pl.lit(True).alias("r_lead"), mql.alias("r_mql"), sql.alias("r_sql"),
                               opp.alias("r_opportunity"), won.alias("r_won"))


def funnel(crm: Crm, start=None, end=None, by=None) -> pl.DataFrame:
    """The lead funnel of the leads created in the period (a cohort view).

    Steps :data:`FUNNEL_STEPS`: lead, MQL (``mql_at``), SQL (``sql_at``), opportunity (the lead has one),
    won (one of its opportunities is won). A lead counts at a step when it reached that step or a later
    one, so a lead that skipped MQL still counts as an MQL once it is an SQL; counts never grow down the
    funnel. Returns ``[by…], step, step_index, count, conversion (count / previous step's count),
    from_lead (count / leads), drop_off (previous count - count), median_days`` (median days from the
    previous step, over the leads with both timestamps). ``by``: None, ``"channel"`` (lead source),
    ``"campaign"`` or ``"cohort"`` (month of creation), or a list of them. Rates are null when the
    previous count is 0.
    """
    keys = [_DIMS[b] for b in _by(by)]
    lo, hi = _period(start, end)
    leads = _leads_with_steps(crm).filter(_in(pl.col("created_at"), lo, hi))
    stamps = {"lead": "created_at", "mql": "mql_at", "sql": "sql_at", "opportunity": "opportunity_at",
              "won": "won_at"}
    aggs = []
    for i, step in enumerate(FUNNEL_STEPS):
        aggs.append(pl.col(f"r_{step}").sum().cast(pl.Int64).alias(f"n_{step}"))
        if i:
            prev = stamps[FUNNEL_STEPS[i - 1]]
            gap = (pl.col(stamps[step]) - pl.col(prev)).dt.total_microseconds() / _DAY_US
            aggs.append(gap.median().alias(f"d_{step}"))
    wide = (leads.group_by(keys).agg(aggs) if keys else leads.select(aggs)).collect()
    parts = []
    for i, step in enumerate(FUNNEL_STEPS):
        prev = pl.col(f"n_{FUNNEL_STEPS[i - 1]}") if i else None
        n = pl.col(f"n_{step}")
        parts.append(wide.select(
            *keys, pl.lit(step).alias("step"), pl.lit(i + 1, pl.Int64).alias("step_index"), n.alias("count"),
            (pl.when(prev > 0).then(n / prev) if i else pl.lit(None, pl.Float64)).cast(pl.Float64).alias("conversion"),
            pl.when(pl.col("n_lead") > 0).then(n / pl.col("n_lead")).cast(pl.Float64).alias("from_lead"),
            ((prev - n) if i else pl.lit(0)).cast(pl.Int64).alias("drop_off"),
            (pl.col(f"d_{step}") if i else pl.lit(None)).cast(pl.Float64).alias("median_days"),
        ))
    return pl.concat(parts).sort([*keys, "step_index"], nulls_last=True)


def _new_customers(crm: Crm, lo, hi) -> pl.LazyFrame:
    """Accounts whose first won deal closed in [lo, hi), with the lead source of that deal."""
    first_win = (crm.opportunities.filter(pl.col("is_won"))
                 .sort("close_date", "created_at", "opportunity_id")
                 .group_by("account_id").agg(pl.col("close_date").first(), pl.col("opportunity_id").first(),
                                             pl.col("lead_id").first()))
    leads = crm.leads.select("lead_id", "channel", "campaign_id", "converted_opportunity_id")
    by_conv = leads.select(pl.col("converted_opportunity_id").alias("opportunity_id"),
                           pl.col("channel").alias("_c2"), pl.col("campaign_id").alias("_k2"))
    return (first_win.filter(_in(pl.col("close_date").cast(pl.Datetime("us")), lo, hi))
            .join(leads.select("lead_id", "channel", "campaign_id"), on="lead_id", how="left")
            .join(by_conv.filter(pl.col("opportunity_id").is_not_null()), on="opportunity_id", how="left")
            .select("account_id", pl.coalesce("channel", "_c2").alias("channel"),
                    pl.coalesce("campaign_id", "_k2").alias("campaign_id")))


def cost_kpis(crm: Crm, start=None, end=None, by: str | None = "channel") -> pl.DataFrame:
    """Spend and cost KPIs of the period: ``[channel | campaign_id], spend, leads, mqls, new_customers,
    cost_per_lead, cost_per_mql, cac``.

    * spend: ``marketing_spend`` by spend date, base currency;
    * leads: leads created in the period; mqls: leads that became MQL in the period (by ``mql_at``);
    * new_customers: accounts whose first won deal closed in the period;
    * **CAC = marketing spend / new customers won in the period.** Overall (``by=None``) every new
      customer counts; by channel or campaign, the new customers whose first won deal came from a lead of
      that channel (lead source) or campaign.

    Ratios are null where the denominator is 0. ``by``: None, ``"channel"`` or ``"campaign"``.
    """
    names = _by(by)
    if "cohort" in names or len(names) > 1:
        raise ConfigError("cost_kpis groups by 'channel', 'campaign' or nothing (None).")
    keys = [_DIMS[b] for b in names]
    lo, hi = _period(start, end)
    spend = _spend(crm, lo, hi)
    leads = crm.leads
    counted = pl.collect_all([
        leads.filter(_in(pl.col("created_at"), lo, hi)).group_by(keys).agg(pl.len().alias("leads"))
        if keys else leads.filter(_in(pl.col("created_at"), lo, hi)).select(pl.len().alias("leads")),
        leads.filter(_in(pl.col("mql_at"), lo, hi)).group_by(keys).agg(pl.len().alias("mqls"))
        if keys else leads.filter(_in(pl.col("mql_at"), lo, hi)).select(pl.len().alias("mqls")),
        _new_customers(crm, lo, hi).group_by(keys).agg(pl.len().alias("new_customers"))
        if keys else _new_customers(crm, lo, hi).select(pl.len().alias("new_customers")),
    ])
    s = (spend.group_by(keys).agg(pl.col("amount_base").sum().alias("spend")) if keys
         else spend.select(pl.col("amount_base").sum().alias("spend")))
    if keys:
        frame = pl.concat([f.select(keys) for f in (s, *counted)]).unique()
        for f in (s, *counted):
            frame = frame.join(f, on=keys, how="left", nulls_equal=True)
    else:
        frame = pl.concat([s, *counted], how="horizontal")
    frame = frame.with_columns(pl.col("spend").fill_null(0.0).cast(pl.Float64),
                               *(pl.col(c).fill_null(0).cast(pl.Int64) for c in ("leads", "mqls", "new_customers")))

    def per(den: str) -> pl.Expr:
        return pl.when(pl.col(den) > 0).then(pl.col("spend") / pl.col(den)).cast(pl.Float64)

    out = frame.with_columns(per("leads").alias("cost_per_lead"), per("mqls").alias("cost_per_mql"),
                             per("new_customers").alias("cac"))
    return out.select(*keys, "spend", "leads", "mqls", "new_customers", "cost_per_lead", "cost_per_mql", "cac").sort(
        keys or "spend", nulls_last=True)


def budget_vs_actual(crm: Crm, start=None, end=None) -> pl.DataFrame:
    """Campaigns running in the period: budget, actual spend from the campaign start to ``end``, and pace.

    Returns ``campaign_id, name, channel, start_date, end_date, budget, spend, remaining, spent_share
    (spend / budget), elapsed_share (share of the campaign's days passed by end), pace (spent_share /
    elapsed_share: 1 is on plan)``; money in the base currency (budget at the campaign's start date).
    """
    lo, hi = _period(start, end)
    camp = crm.campaigns.collect()
    if lo is not None:
        camp = camp.filter(pl.col("end_date").is_null() | (pl.col("end_date") >= lo.date()))
    if hi is not None:
        camp = camp.filter(pl.col("start_date") < hi.date())
    camp = to_base_currency(camp, crm.fx_rates, amount="budget", day="start_date", table="campaigns")
    spend = _spend(crm, None, hi).group_by("campaign_id").agg(pl.col("amount_base").sum().alias("spend"))
    as_of = (hi - dt.timedelta(days=1)).date() if hi else pl.col("end_date")
    days = (pl.col("end_date") - pl.col("start_date")).dt.total_days() + 1
    passed = ((pl.min_horizontal(pl.lit(as_of) if hi else as_of, pl.col("end_date")) - pl.col("start_date"))
              .dt.total_days() + 1).clip(lower_bound=0)
    return (
        camp.join(spend, on="campaign_id", how="left")
        .with_columns(pl.col("budget_base").alias("budget"), pl.col("spend").fill_null(0.0))
        .with_columns(
            (pl.col("budget") - pl.col("spend")).alias("remaining"),
            pl.when(pl.col("budget") > 0).then(pl.col("spend") / pl.col("budget")).alias("spent_share"),
            pl.when(days > 0).then(passed / days).clip(upper_bound=1.0).alias("elapsed_share"),
        )
        .with_columns(pl.when(pl.col("elapsed_share") > 0).then(pl.col("spent_share") / pl.col("elapsed_share"))
                      .alias("pace"))
        .select("campaign_id", "name", "channel", "start_date", "end_date", "budget", "spend", "remaining",
                "spent_share", "elapsed_share", "pace")
        .sort("campaign_id")
    )


# ---------------------------------------------------------------------------------------------------
# Attribution, ROI, wasted spend, reallocation
# ---------------------------------------------------------------------------------------------------
def attribution(crm: Crm, start=None, end=None, conversion_event: str = "opportunity_created",
                lookback_days: int | None = 90, half_life_days: float = 7.0,
                models: Sequence[str] | str = MODELS) -> pl.DataFrame:
    """Attributed conversions and revenue per model, channel and campaign, long:
    ``model, channel, campaign, conversions, value``.

    The paths are :func:`journeys` of the period; the data-driven models (Markov, Shapley) are always
    included because :func:`wasted_spend` needs them. ``campaign`` is null for touches outside any
    campaign (organic channels, or between flights).
    """
    models = [m.strip() for m in models.split(",")] if isinstance(models, str) else list(models)
    models = list(dict.fromkeys([*models, *DATA_DRIVEN]))

    def run() -> pl.DataFrame:
        paths = journeys(crm, start, end, conversion_event, lookback_days, detail=True)
        return compare_models(paths, models, half_life_days=half_life_days, by_campaign=True)

    key = ("marketing.attribution", start, end, conversion_event, lookback_days, half_life_days, tuple(models))
    return crm.memo(key, run) if hasattr(crm, "memo") else run()


def waste(crm: Crm, start=None, end=None, conversion_event: str = "opportunity_created",
          lookback_days: int | None = 90, half_life_days: float = 7.0, models: Sequence[str] | str = MODELS,
          level: str = "channel") -> pl.DataFrame:
    """:func:`wasted_spend` of the :func:`attribution` of the period (one call for a dashboard section;
    the attribution is computed once per data handle and arguments)."""
    attributed = attribution(crm, start, end, conversion_event, lookback_days, half_life_days, models)
    return wasted_spend(crm, attributed, start, end, level=level)


def budget_moves(crm: Crm, start=None, end=None, conversion_event: str = "opportunity_created",
                 lookback_days: int | None = 90, half_life_days: float = 7.0,
                 models: Sequence[str] | str = MODELS, share: float = 0.2) -> pl.DataFrame:
    """:func:`reallocation` of :func:`waste` (one call for a dashboard section)."""
    return reallocation(waste(crm, start, end, conversion_event, lookback_days, half_life_days, models), share=share)


def funnel_leads(crm: Crm, point: dict | str, start=None, end=None) -> pl.DataFrame:
    """The leads behind one step of :func:`funnel` (created in the period and reached at least that step),
    newest first. ``point`` is a step of :data:`FUNNEL_STEPS`, or a clicked stage of
    :func:`crmlib.charts_marketing.plot_funnel` (``{"index": i}``, steps in funnel order)."""
    if isinstance(point, dict):
        i = point.get("index")
        if not isinstance(i, int) or not 0 <= i < len(FUNNEL_STEPS):
            raise ConfigError(f"No funnel step at position {i!r}; steps: {', '.join(FUNNEL_STEPS)}.")
        step = FUNNEL_STEPS[i]
    else:
        step = str(point)
        if step not in FUNNEL_STEPS:
            raise ConfigError(f"Unknown funnel step {step!r}.{suggest(step, FUNNEL_STEPS)}")
    lo, hi = _period(start, end)
    return (
        _leads_with_steps(crm).filter(_in(pl.col("created_at"), lo, hi) & pl.col(f"r_{step}"))
        .select("lead_id", "created_at", "channel", "campaign_id", "status", "mql_at", "sql_at", "opportunity_at",
                "won_at")
        .sort("created_at", descending=True)
        .collect()
    )


def wasted_spend(crm: Crm, attributed: pl.DataFrame, start=None, end=None, level: str = "channel",
                 roi_threshold: float = 1.0) -> pl.DataFrame:
    """Spend against attributed revenue under every model, one row per channel (or campaign).

    ``attributed`` is :func:`attribution` output (it must hold the data-driven models). Columns:
    ``channel, [campaign_id], spend``, then ``revenue_<model>`` and ``roi_<model>`` for each model, then
    ``roi_min``, ``roi_max`` (over all models), ``agreement`` (share of models on the majority side of
    ``roi_threshold``: 1 = all agree), ``wasted`` (ROI below ``roi_threshold`` under **every** data-driven
    model) and ``wasted_spend`` (the spend of the wasted rows, else 0). ROI = (revenue - spend) / spend;
    ROI < 1 means the attributed revenue is less than twice the spend. Rows without spend have null ROI
    and are never flagged.
    """
    if level not in ("channel", "campaign"):
        raise ConfigError(f"level must be 'channel' or 'campaign', not {level!r}.")
    models = list(dict.fromkeys(attributed.get_column("model").to_list()))
    missing = [m for m in DATA_DRIVEN if m not in models]
    if missing and attributed.height:
        raise ConfigError(f"wasted_spend needs the data-driven models {', '.join(missing)} in the attribution "
                          "frame: use crmlib.marketing.attribution(...), which always includes them.")
    models = models or list(DATA_DRIVEN)  # no journey in the period: no revenue under any model
    keys = ["channel", "campaign_id"] if level == "campaign" else ["channel"]
    att = attributed.rename({"campaign": "campaign_id"}) if "campaign" in attributed.columns else attributed
    if level == "campaign" and "campaign_id" not in att.columns:
        raise ConfigError("level='campaign' needs attribution by campaign (crmlib.marketing.attribution).")
    lo, hi = _period(start, end)
    spend = _spend(crm, lo, hi).group_by(keys).agg(pl.col("amount_base").sum().alias("spend"))
    revenue = att.group_by(keys).agg(
        *(pl.col("value").filter(pl.col("model") == m).sum().alias(f"revenue_{m}") for m in models))
    frame = (pl.concat([spend.select(keys), revenue.select(keys)]).unique()
             .join(spend, on=keys, how="left", nulls_equal=True).join(revenue, on=keys, how="left", nulls_equal=True)
             .with_columns(pl.col("spend").fill_null(0.0), *(pl.col(f"revenue_{m}").fill_null(0.0) for m in models)))
    roi = {m: pl.when(pl.col("spend") > 0).then((pl.col(f"revenue_{m}") - pl.col("spend")) / pl.col("spend"))
           for m in models}
    frame = frame.with_columns(*(r.alias(f"roi_{m}") for m, r in roi.items()))
    below = [(pl.col(f"roi_{m}") < roi_threshold).cast(pl.Int32) for m in models]
    n_below = pl.sum_horizontal(below)
    share = n_below / len(models)
    wasted = pl.all_horizontal([(pl.col(f"roi_{m}") < roi_threshold).fill_null(False) for m in DATA_DRIVEN])
    return (
        frame.with_columns(
            pl.min_horizontal([pl.col(f"roi_{m}") for m in models]).alias("roi_min"),
            pl.max_horizontal([pl.col(f"roi_{m}") for m in models]).alias("roi_max"),
            pl.when(pl.col("spend") > 0).then(pl.max_horizontal(share, 1 - share)).alias("agreement"),
            wasted.alias("wasted"),
        )
        .with_columns(pl.when(pl.col("wasted")).then(pl.col("spend")).otherwise(0.0).alias("wasted_spend"))
        .sort(["spend", *keys], descending=[True, *([False] * len(keys))], nulls_last=True)
    )


REALLOCATION_ASSUMPTION = (
    "Assumes each channel keeps its average attributed ROAS under {model} at the new budget (constant returns: "
    "revenue change = budget change x ROAS). Real channels saturate, so this is an upper bound on the gain; "
    "test the shift on a part of the budget first."
)


def reallocation(wasted: pl.DataFrame, share: float = 0.2, model: str = "shapley", n_from: int = 2,
                 n_to: int = 2) -> pl.DataFrame:
    """Propose moving ``share`` of the budget of the ``n_from`` lowest-ROAS channels to the ``n_to`` highest.

    Input: :func:`wasted_spend` at channel level. ROAS (= revenue / spend) is the marginal return under
    the stated assumption (``assumption`` column): constant ROAS per channel under ``model`` (default Shapley:
    first-order Markov over-credits channels touched many times per journey, see docs/attribution.md). The freed
    budget goes to the recipients in proportion to their current spend. Returns ``channel, role (donor /
    recipient / unchanged), spend, proposed_spend, spend_change, roas, revenue, expected_revenue,
    revenue_change, model, assumption``; channels without spend are left out. Total spend is unchanged.
    """
    if not (isinstance(share, int | float) and 0 <= share <= 1):
        raise ConfigError(f"share must be a fraction from 0 to 1, not {share!r}.")
    if f"revenue_{model}" not in wasted.columns:
        raise ConfigError(f"The wasted-spend frame has no revenue under {model!r}; choose one of: "
                          + ", ".join(c[len("revenue_"):] for c in wasted.columns if c.startswith("revenue_")) + ".")
    if "campaign_id" in wasted.columns:
        raise ConfigError("reallocation works per channel: pass wasted_spend(..., level='channel').")
    paid = (wasted.filter(pl.col("spend") > 0)
            .select("channel", "spend", pl.col(f"revenue_{model}").alias("revenue"))
            .with_columns((pl.col("revenue") / pl.col("spend")).alias("roas"))
            .sort(["roas", "channel"]))
    k = paid.height
    n_out = min(n_from, k // 2)
    n_in = min(n_to, k - n_out)
    donors = paid.head(n_out).get_column("channel").to_list()
    takers = paid.tail(n_in).get_column("channel").to_list() if n_out else []
    freed = float(paid.filter(pl.col("channel").is_in(donors)).get_column("spend").sum() * share)
    taker_spend = float(paid.filter(pl.col("channel").is_in(takers)).get_column("spend").sum())
    change = (pl.when(pl.col("channel").is_in(donors)).then(-share * pl.col("spend"))
              .when(pl.col("channel").is_in(takers) & (taker_spend > 0))
              .then(freed * pl.col("spend") / (taker_spend or 1.0)).otherwise(0.0))
    role = pl.when(pl.col("channel").is_in(donors)).then(pl.lit("donor")).when(pl.col("channel").is_in(takers)).then(
        pl.lit("recipient")).otherwise(pl.lit("unchanged"))
    return (
        paid.with_columns(change.alias("spend_change"), role.alias("role"))
        .with_columns((pl.col("spend") + pl.col("spend_change")).alias("proposed_spend"),
                      (pl.col("spend_change") * pl.col("roas")).alias("revenue_change"))
        .with_columns((pl.col("revenue") + pl.col("revenue_change")).alias("expected_revenue"),
                      pl.lit(model).alias("model"),
                      pl.lit(REALLOCATION_ASSUMPTION.format(model=model)).alias("assumption"))
        .select("channel", "role", "spend", "proposed_spend", "spend_change", "roas", "revenue", "expected_revenue",
                "revenue_change", "model", "assumption")
        .sort("roas", descending=True)
    )
