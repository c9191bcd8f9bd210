"""Performance management: attainment at every level, leaderboards, contribution, activity.

Targets are cascaded company → department → team → rep (:mod:`crmlib.kpis.targets`); these functions
put actuals next to them and rank people fairly. Same selection as :mod:`crmlib.sales` (``start``,
``end``, ``team``, ``region``, ``product``); tidy polars frames out.

* :func:`attainment` - value, target, attainment, gap and status of every member of a level
  (department, team or user) for any catalog KPI, over the whole period or per grain period.
* :func:`leaderboard` - rank, attainment and the trend against the previous period of the same length.
* :func:`contribution`, :func:`contribution_tree` - each member's share of its parent
  (:func:`crmlib.kpis.targets.contribution`): reps in teams, teams in departments, departments in the company.
* :func:`activity` - calls, e-mails, meetings… per rep (or team), and per won deal.
* :func:`cascade` - where children's targets do not add up to their parent's.

**Whole-period targets.** A member's target for a period is its targets spread over the period's days
and summed (flow KPIs such as revenue), averaged (rates) or taken at the last day (stocks); a member
gets a target only when its targets cover every day of the period (:func:`crmlib.sales.quota`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import polars as pl

from . import sales
from .errors import ConfigError, suggest
from .kpis.catalog import default_catalog
from .kpis.targets import cascade_check, status_columns
from .kpis.targets import contribution as _contribution

__all__ = [
    "LEVELS",
    "activity",
    "attainment",
    "cascade",
    "contribution",
    "contribution_tree",
    "kpi_summary",
    "leaderboard",
    "previous_period",
]

LEVELS = ("department", "team", "user")
SUMMARY_KPIS = ("revenue", "won_deals", "win_rate", "avg_deal_size", "calls", "meetings")
ACTIVITY_TYPES = ("call", "email", "meeting", "demo", "task")
_PLURAL = {"call": "calls", "email": "emails", "meeting": "meetings", "demo": "demos", "task": "tasks"}


def _level(level: str, allowed: Sequence[str] = LEVELS) -> str:
    if level not in allowed:
        raise ConfigError(f"Unknown level {level!r}.{suggest(str(level), allowed)} Use one of: {', '.join(allowed)}.")
    return level


def _names(crm, level: str) -> pl.LazyFrame:
    """``member_id, name[, team_id]`` of a level's members (departments are their own names)."""
    if level == "user":
        return crm.table("users").select(pl.col("user_id").alias("member_id"), "name", "team_id")
    if level == "team":
        return crm.table("teams").select(pl.col("team_id").alias("member_id"), "name")
    return crm.table("users").select(pl.col("department").alias("member_id")).unique().with_columns(
        pl.col("member_id").alias("name"))


def previous_period(start: dt.date, end: dt.date) -> tuple[dt.date, dt.date]:
    """The period of the same length just before ``start..end``: whole months move by their number of
    months (2025-04-01..2025-06-30 → 2025-01-01..2025-03-31), other periods by their number of days."""
    from .kpis._periods import add_months, period_end

    whole_months = start.day == 1 and end == period_end(end.replace(day=1), "month")
    if whole_months:
        n = (end.year - start.year) * 12 + end.month - start.month + 1
        lo = add_months(start, -n)
        return lo, start - dt.timedelta(days=1)
    days = (end - start).days + 1
    return start - dt.timedelta(days=days), start - dt.timedelta(days=1)


def kpi_summary(crm, start=None, end=None, grain: str = "month", team=None, region=None, product=None,
                kpis: Sequence[str] = SUMMARY_KPIS, compare: str | None = "previous_period") -> pl.DataFrame:
    """Engine rows for the performance KPI cards (targets of the company, or of the team selected).

    KPIs whose data has no path to a filter given are left out rather than shown unfiltered: calls and
    meetings under a product filter (an activity has no product; :func:`activity` counts the activities
    on the product's deals instead)."""
    from .kpis.catalog import default_catalog

    given = {d for d, v in (("team", team), ("region", region), ("product", product)) if v not in (None, "", (), [])}
    catalog = default_catalog()
    kpis = [k for k in kpis if given <= set(catalog.get(k).dimensions)]
    return sales.kpi_summary(crm, start, end, grain, team, region, product, kpis=kpis, compare=compare)


# ---------------------------------------------------------------------------------------------------
# Attainment and leaderboards
# ---------------------------------------------------------------------------------------------------
def _whole_period(crm, sel: sales.Selection, kpi: str, level: str) -> pl.DataFrame:
    """``member_id, value, projection`` of a KPI over the whole selection (the engine's single period)."""
    from .kpis import engine
    from .kpis._periods import ALL
    from .kpis.backends import backend_for

    req = engine.resolve(kpi, [level], ALL, (sel.start, sel.end), dict(sel.filters) or None, None, False,
                         internal=True)
    with backend_for(crm, "polars") as bk:
        res = engine.run(crm, bk, req)
    return res.select(pl.col(level).alias("member_id"), "value", "projection")


def attainment(crm, kpi: str = "revenue", level: str = "team", start=None, end=None, grain: str | None = None,
               team=None, region=None, product=None) -> pl.DataFrame:
    """Value, target and attainment of each member of ``level``.

    ``grain`` None: one row per member over the whole period: ``member_id, name, [team_id], kpi, value,
    target, attainment, gap, status``; with a grain, the same per ``period`` (the engine's rows). Targets
    and status follow :mod:`crmlib.kpis.targets` (attainment = value / target, target / value when lower
    is better; status from the run-rate projection). Members are those with data for the KPI, best
    attainment first (by value when there are no targets)."""
    _level(level)
    kind = default_catalog().get(kpi)
    sel = sales.select(crm, start, end, team, region, product)
    names = _names(crm, level).collect()
    if grain:
        by, flt = [level], dict(sel.filters)
        rows = crm.kpis(kpi, by=by, grain=grain, period=(sel.start, sel.end), filters=flt or None, targets=True)
        rows = rows.rename({level: "member_id"}).join(names, on="member_id", how="left")
        return rows.select("period", "member_id", "name", *(["team_id"] if level == "user" else []), "kpi", "value",
                           "target", "attainment", "gap", "status").sort("period", "member_id", nulls_last=True)
    vals = _whole_period(crm, sel, kpi, level)
    q = sales.quota(crm, sel, None, level, kpi).rename({level: "member_id"}).drop("period")
    higher = pl.lit(kind.direction == "higher")
    out = vals.join(q, on="member_id", how="left", nulls_equal=True).with_columns(
        **status_columns(pl.col("value"), pl.col("target"), pl.col("projection"), higher))
    out = out.join(names, on="member_id", how="left").with_columns(pl.lit(kpi).alias("kpi"))
    cols = ["member_id", "name", *(["team_id"] if level == "user" else []), "kpi", "value", "target",
            "attainment", "gap", "status"]
    return _ranked(out, kind.direction).select(cols)


_LEVEL_COLUMN = {"user": "owner_id", "team": "team_id", "department": "department"}


def member_deals(crm, point: dict | str, level: str = "team", start=None, end=None, team=None, region=None,
                 product=None) -> pl.DataFrame:
    """The won deals behind one member's revenue bar: deals of the member (a user, team or department,
    ``level``) won in the period, with the amount in the base currency at the close date (the ``revenue``
    KPI's rule), largest first. ``point`` is a member id, or a clicked bar of
    :func:`crmlib.charts_sales.plot_leaderboard` / ``plot_attainment`` (its ``customdata`` holds the id)."""
    _level(level, tuple(_LEVEL_COLUMN))
    if isinstance(point, dict):
        custom = point.get("customdata")
        member = custom[-1] if isinstance(custom, (list, tuple)) and custom else None
        if member is None:
            raise ConfigError("The clicked bar does not name a member; click a bar of the attainment chart.")
    else:
        member = str(point)
    sel = sales.select(crm, start, end, team, region, product)
    lo, hi = sel.start, sel.end
    deals = sales.won_deals(crm, sel).filter(
        (pl.col(_LEVEL_COLUMN[level]) == member) & pl.col("close_date").is_between(lo, hi))
    return deals.select("opportunity_id", "name", "account", "owner", "team_id", "close_date",
                        pl.col("amount_base").alias("amount")).sort("amount", descending=True).collect()


def _ranked(frame: pl.DataFrame, direction: str) -> pl.DataFrame:
    """Sorted best first: by attainment when any member has a target, else by value (direction-aware)."""
    by_att = frame.get_column("attainment").is_not_null().any()
    key = "attainment" if by_att else "value"
    desc = True if by_att else direction == "higher"
    return frame.sort([key, "value", "member_id"], descending=[desc, direction == "higher", False], nulls_last=True)


def leaderboard(crm, kpi: str = "revenue", level: str = "user", start=None, end=None, team=None, region=None,
                product=None) -> pl.DataFrame:
    """Ranked members with their trend against the previous period of the same length
    (:func:`previous_period`).

    ``rank, member_id, name, [team_id], kpi, value, target, attainment, gap, status, ranked_by,
    previous_value, previous_attainment, previous_rank, rank_change, delta, delta_pct``. Ranked by
    attainment when targets exist (``ranked_by`` says which), else by value (lower first for
    lower-is-better KPIs); members without a value come last; ties share the better rank. ``delta`` is
    the change of the ranking measure (attainment points, or value) against the previous period,
    ``delta_pct`` the relative change of the value; ``rank_change`` > 0 means moving up."""
    _level(level)
    sel = sales.select(crm, start, end, team, region, product)
    prev_lo, prev_hi = previous_period(sel.start, sel.end)
    cur = attainment(crm, kpi, level, sel.start, sel.end, None, team, region, product)
    prev = attainment(crm, kpi, level, prev_lo, prev_hi, None, team, region, product)
    direction = default_catalog().get(kpi).direction
    by_att = cur.get_column("attainment").is_not_null().any()
    key = "attainment" if by_att else "value"

    def rank(frame: pl.DataFrame) -> pl.Expr:
        desc = True if by_att else direction == "higher"
        return pl.col(key).rank("min", descending=desc).cast(pl.Int64)

    cur = cur.with_columns(rank(cur).alias("rank"), pl.lit(key).alias("ranked_by"))
    prev = prev.with_columns(rank(prev).alias("previous_rank")).select(
        "member_id", pl.col("value").alias("previous_value"), pl.col("attainment").alias("previous_attainment"),
        "previous_rank")
    out = cur.join(prev, on="member_id", how="left", nulls_equal=True)
    prev_key = pl.col("previous_attainment") if by_att else pl.col("previous_value")
    out = out.with_columns(
        (pl.col("previous_rank") - pl.col("rank")).alias("rank_change"),
        (pl.col(key) - prev_key).alias("delta"),
        pl.when(pl.col("previous_value") != 0)
        .then((pl.col("value") - pl.col("previous_value")) / pl.col("previous_value").abs()).alias("delta_pct"),
    )
    cols = ["rank", "member_id", "name", *(["team_id"] if level == "user" else []), "kpi", "value", "target",
            "attainment", "gap", "status", "ranked_by", "previous_value", "previous_attainment", "previous_rank",
            "rank_change", "delta", "delta_pct"]
    return out.sort(["rank", "value", "member_id"], descending=[False, direction == "higher", False],
                    nulls_last=True).select(cols)


# ---------------------------------------------------------------------------------------------------
# Contribution
# ---------------------------------------------------------------------------------------------------
def contribution(crm, kpi: str = "revenue", level: str = "user", parent_level: str = "team", start=None, end=None,
                 team=None, region=None, product=None) -> pl.DataFrame:
    """Each member's share of its parent's actual over the period (:func:`crmlib.kpis.targets.contribution`),
    with names: ``parent_level, parent_id, parent_name, level, member_id, name, value, parent_value, share,
    share_of_total`` (share of the whole selection). Largest share first within each parent."""
    sel = sales.select(crm, start, end, team, region, product)
    got = _contribution(crm, kpi, level, (sel.start, sel.end), parent_level=parent_level,
                        filters=dict(sel.filters) or None)
    names = _names(crm, level).select("member_id", "name").collect()
    pnames = (pl.DataFrame({"parent_id": ["company"], "parent_name": ["company"]}) if parent_level == "company"
              else _names(crm, parent_level).select(pl.col("member_id").alias("parent_id"),
                                                    pl.col("name").alias("parent_name")).collect())
    total = pl.col("value").sum()
    return (
        got.join(names, on="member_id", how="left").join(pnames, on="parent_id", how="left")
        .with_columns(pl.when(total != 0).then(pl.col("value") / total).alias("share_of_total"))
        .select("parent_level", "parent_id", "parent_name", "level", "member_id", "name", "value", "parent_value",
                "share", "share_of_total")
        .sort(["parent_id", "value", "member_id"], descending=[False, True, False], nulls_last=True)
    )


def contribution_tree(crm, kpi: str = "revenue", start=None, end=None, team=None, region=None,
                      product=None) -> pl.DataFrame:
    """The company → department → team → rep tree of a flow KPI over the period, for a treemap:
    ``id, parent, level, label, value, share`` (share of the parent; the company row has share 1).
    Reps come from :func:`contribution` (reps in teams); a team's department is ``teams.department``.
    Members with a value of 0 are left out (they take no area). Rows come in a stable order (level, then
    value, largest first, then id), so the same selection always draws the same treemap."""
    reps = contribution(crm, kpi, "user", "team", start, end, team, region, product)
    depts = crm.table("teams").select(pl.col("team_id").alias("parent_id"), "department").collect()
    reps = reps.join(depts, on="parent_id", how="left").with_columns(
        pl.col("department").fill_null("—"), pl.col("parent_id").fill_null("—"))
    schema = {"id": pl.String, "parent": pl.String, "level": pl.String, "label": pl.String, "value": pl.Float64}
    if reps.is_empty() or (reps.get_column("value").sum() or 0) == 0:
        return pl.DataFrame(schema={**schema, "share": pl.Float64})
    reps = reps.filter(pl.col("value") != 0)
    dep_id = pl.lit("department:") + pl.col("department")
    team_id = pl.lit("team:") + pl.col("parent_id")
    parts = [
        pl.DataFrame({"id": ["company"], "parent": [""], "level": ["company"], "label": ["company"],
                      "value": [reps.get_column("value").sum()]}, schema=schema),
        reps.group_by("department").agg(pl.col("value").sum()).select(
            dep_id.alias("id"), pl.lit("company").alias("parent"), pl.lit("department").alias("level"),
            pl.col("department").alias("label"), "value"),
        reps.group_by("department", "parent_id", "parent_name").agg(pl.col("value").sum()).select(
            team_id.alias("id"), dep_id.alias("parent"), pl.lit("team").alias("level"),
            pl.coalesce(pl.col("parent_name"), pl.col("parent_id")).alias("label"), "value"),
        reps.select((pl.lit("user:") + pl.col("member_id")).alias("id"), team_id.alias("parent"),
                    pl.lit("user").alias("level"), pl.coalesce(pl.col("name"), pl.col("member_id")).alias("label"),
                    "value"),
    ]
    tree = pl.concat([p.select([pl.col(c).cast(t) for c, t in schema.items()]) for p in parts])
    parent_value = tree.select(pl.col("id").alias("parent"), pl.col("value").alias("_pv"))
    levels = {"company": 0, "department": 1, "team": 2, "user": 3}
    return tree.join(parent_value, on="parent", how="left").with_columns(
        pl.when(pl.col("_pv").is_null()).then(1.0).when(pl.col("_pv") != 0).then(pl.col("value") / pl.col("_pv"))
        .alias("share")).drop("_pv").sort(pl.col("level").replace_strict(levels), pl.col("value").round(6), "id",
                                          descending=[False, True, False])


# ---------------------------------------------------------------------------------------------------
# Activity
# ---------------------------------------------------------------------------------------------------
def activity(crm, start=None, end=None, team=None, region=None, product=None, by: str | None = "user") -> pl.DataFrame:
    """Activities logged in the period per rep (``by="user"``), team (``"team"``) or for the whole
    selection (None): ``[member_id, name,] reps, calls, emails, meetings, demos, tasks, activities,
    won_deals, activities_on_won_deals, activities_per_won_deal, calls_per_won_deal,
    emails_per_won_deal, meetings_per_won_deal``.

    Activities count by ``occurred_at`` in the period and belong to their owner (team: the owner's team;
    region: the account's; product: the product of the activity's opportunity, so a product filter keeps
    only deal activities). ``reps`` = owners with at least one activity. Per won deal: the activities
    logged on the deals won in the period (by anyone, at any time up to the as-of day) / those deals;
    the deals belong to their owner. Most activities first."""
    if by is not None:
        _level(by, ("user", "team"))
    sel = sales.select(crm, start, end, team, region, product)
    col = {"user": "owner_id", "team": "team_id", None: None}[by]
    users = crm.table("users").select(pl.col("user_id").alias("owner_id"), "team_id", "department")
    accounts = crm.table("accounts").select("account_id", "region")
    opp_product = crm.table("opportunities").select("opportunity_id", "product_id")
    lo = dt.datetime.combine(sel.start, dt.time())
    hi = min(dt.datetime.combine(sel.end + dt.timedelta(days=1), dt.time()), sel.as_of_end)
    acts = (crm.table("activities").select("activity_id", "type", "occurred_at", "owner_id", "account_id",
                                           "opportunity_id")
            .join(users, on="owner_id", how="left").join(accounts, on="account_id", how="left")
            .join(opp_product, on="opportunity_id", how="left"))
    conds = [pl.col(sales.DIMENSIONS[d]).is_in(list(v)) for d, v in sel.filters.items()]
    if conds:
        acts = acts.filter(pl.all_horizontal(conds))
    keys = [col] if col else []
    in_period = acts.filter((pl.col("occurred_at") >= lo) & (pl.col("occurred_at") < hi))
    counts = in_period.group_by(*keys).agg(
        pl.col("owner_id").n_unique().alias("reps"),
        *[(pl.col("type") == t).sum().alias(_PLURAL[t]) for t in ACTIVITY_TYPES],
        pl.len().alias("activities"),
    )
    won = sales.won_deals(crm, sel).filter(pl.col("close_date") >= sel.start).select("opportunity_id", *keys)
    on_won = crm.table("activities").filter(pl.col("occurred_at") < sel.as_of_end).join(
        won, on="opportunity_id", how="inner")
    won_n = won.group_by(*keys).agg(pl.len().alias("won_deals"))
    on_won_n = on_won.group_by(*keys).agg(
        pl.len().alias("activities_on_won_deals"),
        *[(pl.col("type") == t).sum().alias(f"_{t}") for t in ("call", "email", "meeting")])
    counts, won_n, on_won_n = pl.collect_all([counts, won_n, on_won_n])
    if keys:
        out = counts.join(won_n, on=keys, how="full", coalesce=True, nulls_equal=True).join(
            on_won_n, on=keys, how="left", nulls_equal=True)
    else:
        out = pl.concat([counts, won_n, on_won_n], how="horizontal") if counts.height else counts
    ints = ["reps", *_PLURAL.values(), "activities", "won_deals", "activities_on_won_deals"]
    out = out.with_columns([pl.col(c).fill_null(0).cast(pl.Int64) for c in ints if c in out.columns])
    per = pl.col("won_deals")
    out = out.with_columns(
        pl.when(per > 0).then(pl.col("activities_on_won_deals") / per).alias("activities_per_won_deal"),
        *[pl.when(per > 0).then(pl.col(f"_{t}").fill_null(0) / per).alias(f"{_PLURAL[t]}_per_won_deal")
          for t in ("call", "email", "meeting")],
    )
    cols = [*ints, "activities_per_won_deal", "calls_per_won_deal", "emails_per_won_deal", "meetings_per_won_deal"]
    if not keys:
        return out.select(cols)
    names = _names(crm, by).select("member_id", "name").collect()
    out = out.rename({col: "member_id"}).join(names, on="member_id", how="left")
    return out.select("member_id", "name", *cols).sort(["activities", "member_id"], descending=[True, False],
                                                         nulls_last=True)


def cascade(crm, kpi: str = "revenue", start=None, end=None) -> pl.DataFrame:
    """Whether children's targets add up to their parent's in the period, per parent level
    (:func:`crmlib.kpis.targets.cascade_check`): ``level, child_level, checked, problems, worst_entity,
    worst_period, worst_difference``. ``checked`` counts the parent's targets (entity × period) of the
    period; ``problems`` those whose children do not add up (or have no targets); ``worst_*`` the
    largest difference (children's sum − parent's target). Levels without targets are left out."""
    from .kpis.targets import LEVELS as TARGET_LEVELS

    sel = sales.select(crm, start, end)
    problems = cascade_check(crm, kpi, period=(sel.start, sel.end))
    parents = TARGET_LEVELS[:-1]
    child = dict(zip(parents, TARGET_LEVELS[1:], strict=True))
    checked = (crm.table("targets").filter((pl.col("kpi") == kpi) & pl.col("level").is_in(list(parents))
                                           & pl.col("period").is_between(sel.start, sel.end))
               .group_by("level").agg(pl.len().cast(pl.Int64).alias("checked")).collect())
    worst = (problems.with_columns(pl.col("difference").abs().fill_null(float("inf")).alias("_abs"))
             .sort("_abs", descending=True).group_by("level", maintain_order=True)
             .agg(pl.len().cast(pl.Int64).alias("problems"), pl.col("entity_id").first().alias("worst_entity"),
                  pl.col("period").first().alias("worst_period"),
                  pl.col("difference").first().alias("worst_difference")))
    rank = {lv: i for i, lv in enumerate(TARGET_LEVELS)}
    return (checked.join(worst, on="level", how="full", coalesce=True)
            .with_columns(pl.col("level").replace_strict(child, default=None).alias("child_level"),
                          pl.col("checked").fill_null(0), pl.col("problems").fill_null(0),
                          pl.col("level").replace_strict(rank, return_dtype=pl.Int64).alias("_r"))
            .sort("_r").select("level", "child_level", "checked", "problems", "worst_entity", "worst_period",
                               "worst_difference"))
