"""Targets (业绩目标): attainment, gap and status; cascade checks; contribution shares.

**Where targets come from.** The ``targets`` table (one row per ``period, grain, level, entity_id, kpi,
value``; ``period`` is the first day of the ``grain`` period, ``level`` is company, department, team or
user, ``entity_id`` is ``company``, a department name, a ``team_id`` or a ``user_id``; values in the
KPI's unit, money in the base currency, ratios as fractions). ``evaluate(..., targets="plan.csv")``
adds the targets of a CSV or YAML file in the same shape (a YAML file holds a list of such mappings,
or ``targets:`` with that list); a file row replaces a table row with the same period, grain, level,
entity and KPI.

**Which targets a result row gets.** The level follows ``by``: ``by=[]`` → company (entity
``company``), ``["department"]`` → department, ``["team"]`` → team, ``["user"]`` → user. Any other
grouping, or a filter that splits an entity (any filter at company level; a filter on a dimension
other than department/team/user, or finer than the level), gets no target: the value would be a part
of what the target is for.

**Grains.** Targets of the asked grain are used as they are. Otherwise the targets of the finest grain
available for that KPI and entity are spread over their days and gathered into the asked periods:
*flow* KPIs (sums and counts) add up (monthly targets → quarter and year; a week gets its days' share
of the month), *rate* KPIs (ratios, averages) take the day-weighted mean, *stock* KPIs (snapshots,
cumulative) the target at the period's last day (see :func:`crmlib.kpis.engine.kpi_kind`). A period
gets a target only when targets cover all its days.

**Attainment and status.** ``attainment`` = value / target; for lower-is-better KPIs target / value
(null when the divisor is 0). ``gap`` = target − value (lower-is-better: value − target): positive is
the distance still to go, negative means the target is beaten. ``status`` compares the run-rate
``projection`` (the value itself once a period is complete) with the target: projected attainment
>= :data:`ON_TRACK` (1.0) ``on_track``, >= :data:`AT_RISK` (0.9) ``at_risk``, else ``off_track``; a
target of 0 on a higher-is-better KPI, or a projection of 0 on a lower-is-better one, is on track.
Null when there is no target or no value.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import narwhals as nw
import polars as pl
import yaml

from ..errors import ConfigError, suggest
from ..schema import ENUMS
from ._assemble import kpi_kind
from ._periods import ALL, GRAINS, parse_date, parse_period, trunc

LEVELS: tuple[str, ...] = ENUMS["target_level"]
ORG_DIMENSIONS = ("department", "team", "user")  # dimension = level name
ON_TRACK = 1.0
AT_RISK = 0.9
TARGET_SCHEMA = pl.Schema(
    {"period": pl.Date, "grain": pl.String, "level": pl.String, "entity_id": pl.String, "kpi": pl.String,
     "value": pl.Float64}
)
_EVERY = {"day": "1d", "week": "1w", "month": "1mo", "quarter": "1q", "year": "1y"}
_RANK = {g: i for i, g in enumerate(GRAINS)}


def target_level(by, filters) -> str | None:
    """The target level of a grouping, or None when targets do not apply (see the module docstring)."""
    if not by:
        return None if filters else "company"
    if len(by) != 1 or by[0] not in ORG_DIMENSIONS:
        return None
    rank = {d: i for i, d in enumerate(ORG_DIMENSIONS)}
    if any(d not in rank or rank[d] > rank[by[0]] for d in filters):
        return None
    return by[0]


def targets_query(bk, kpis, level: str) -> nw.LazyFrame:
    return bk.read("targets", TARGET_SCHEMA.names(), nw.col("kpi").is_in(list(kpis)) & (nw.col("level") == level))


# --------------------------------------------------------------------------------------------
# Target files
# --------------------------------------------------------------------------------------------
def read_targets_file(path: str | Path, catalog=None) -> pl.DataFrame:
    """Targets from a CSV or YAML file, checked: every problem is listed in one :class:`ConfigError`."""
    if catalog is None:
        from .catalog import default_catalog

        catalog = default_catalog()
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"Targets file {path} does not exist.")
    try:
        if path.suffix.lower() == ".csv":
            rows = pl.read_csv(path, infer_schema=False).to_dicts()
        elif path.suffix.lower() in (".yaml", ".yml"):
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
            rows = data.get("targets") if isinstance(data, dict) else data
            if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
                raise ConfigError(
                    f"Targets file {path}: expected a list of mappings (period, grain, level, entity_id, "
                    "kpi, value), or `targets:` holding one."
                )
        else:
            raise ConfigError(f"Targets file {path}: use a .csv, .yaml or .yml file.")
    except (OSError, UnicodeDecodeError, yaml.YAMLError, pl.exceptions.PolarsError) as exc:
        raise ConfigError(f"Targets file {path} cannot be read: {exc}") from None
    problems: list[str] = []
    out = []
    for i, r in enumerate(rows, start=1):
        bad = _check_row(r, catalog)
        if bad:
            problems += [f"row {i}: {b}" for b in bad]
        else:
            out.append(_row(r))
    if problems:
        raise ConfigError(
            f"Targets file {path}: {len(problems)} problem{'s' if len(problems) != 1 else ''}\n  - "
            + "\n  - ".join(problems)
        )
    return pl.DataFrame(out, schema=TARGET_SCHEMA, orient="row")


def _check_row(r: dict, catalog) -> list[str]:
    bad = []
    missing = [c for c in TARGET_SCHEMA.names() if r.get(c) in (None, "")]
    if missing:
        return [f"{', '.join(missing)} missing"]
    grain, level, kpi = str(r["grain"]), str(r["level"]), str(r["kpi"])
    if grain not in GRAINS:
        bad.append(f"grain {grain!r} is not one of {', '.join(GRAINS)}.{suggest(grain, GRAINS)}")
    if level not in LEVELS:
        bad.append(f"level {level!r} is not one of {', '.join(LEVELS)}.{suggest(level, LEVELS)}")
    if kpi not in catalog:
        bad.append(f"unknown KPI {kpi!r}.{suggest(kpi, catalog.kpis)}")
    if level == "company" and str(r["entity_id"]) != "company":
        bad.append(f"a company target has entity_id 'company', not {r['entity_id']!r}")
    try:
        period = parse_date(str(r["period"]), end=False, what="target period")
        if grain in GRAINS and trunc(period, grain) != period:
            bad.append(f"period {period} is not the first day of its {grain} ({trunc(period, grain)})")
    except ConfigError as exc:
        bad.append(str(exc))
    try:
        float(r["value"])
    except (TypeError, ValueError):
        bad.append(f"value {r['value']!r} is not a number")
    return bad


def _row(r: dict) -> tuple:
    return (parse_date(str(r["period"]), end=False), str(r["grain"]), str(r["level"]), str(r["entity_id"]),
            str(r["kpi"]), float(r["value"]))


def with_file_targets(table: pl.DataFrame | None, path, kpis, level: str | None, catalog) -> pl.DataFrame:
    """The table's targets plus a file's (file rows win on the same key)."""
    frame = table if table is not None else pl.DataFrame(schema=TARGET_SCHEMA)
    frame = frame.select(*[pl.col(c).cast(t) for c, t in TARGET_SCHEMA.items()])
    if not isinstance(path, Path):
        return frame
    extra = read_targets_file(path, catalog).filter(pl.col("kpi").is_in(list(kpis)))
    if level is not None:
        extra = extra.filter(pl.col("level") == level)
    key = ["period", "grain", "level", "entity_id", "kpi"]
    return pl.concat([frame.join(extra, on=key, how="anti"), extra])


# --------------------------------------------------------------------------------------------
# Targets of the asked periods
# --------------------------------------------------------------------------------------------
def targets_for(df: pl.DataFrame | None, catalog, grain: str, periods: list[tuple[dt.date, dt.date]]) -> pl.DataFrame:
    """``kpi, period, entity_id, target`` for the asked grain periods (see the module docstring)."""
    empty = pl.DataFrame(schema={"kpi": pl.String, "period": pl.Date, "entity_id": pl.String, "target": pl.Float64})
    if df is None or df.is_empty() or grain == ALL or not periods:
        return empty
    lo, hi = periods[0][0], periods[-1][1]
    df = df.filter(pl.col("grain").is_in(GRAINS)).with_columns(
        pl.col("grain").replace_strict(_RANK, return_dtype=pl.Int64).alias("_r"),
        (pl.col("period").dt.offset_by(pl.col("grain").replace_strict(_EVERY)) - pl.duration(days=1)).alias("_end"),
    ).filter((pl.col("period") <= hi) & (pl.col("_end") >= lo))
    chosen = df.group_by("kpi", "entity_id").agg(
        pl.when((pl.col("grain") == grain).any()).then(pl.lit(_RANK[grain])).otherwise(pl.col("_r").min())
        .cast(pl.Int64).alias("_c")
    )
    df = df.join(chosen, on=["kpi", "entity_id"]).filter(pl.col("_r") == pl.col("_c"))
    exact = df.filter(pl.col("grain") == grain).select("kpi", "period", "entity_id", pl.col("value").alias("target"))
    rest = df.filter(pl.col("grain") != grain)
    if rest.is_empty():
        return exact.unique(["kpi", "period", "entity_id"], keep="last")
    kinds = {k: kpi_kind(catalog, k) for k in rest["kpi"].unique() if k in catalog}
    asked = pl.DataFrame(
        {"_p": [p[0] for p in periods], "_days": [(p[1] - p[0]).days + 1 for p in periods]},
        schema={"_p": pl.Date, "_days": pl.Int64},
    )
    ndays = (pl.col("_end") - pl.col("period")).dt.total_days() + 1
    kind = pl.col("kpi").replace_strict(kinds, default="rate")
    daily = (
        rest.with_columns(
            pl.date_ranges("period", "_end").alias("_day"),
            pl.when(kind == "flow").then(pl.col("value") / ndays).otherwise(pl.col("value")).alias("_v"),
            kind.alias("_kind"),
        )
        .explode("_day")
        .with_columns(pl.col("_day").dt.truncate(_EVERY[grain]).alias("_p"))
        .join(asked, on="_p")
    )
    spread = (
        daily.sort("_day")
        .group_by("kpi", "entity_id", "_p")
        .agg(
            pl.col("_kind").first(),
            pl.col("_v").sum().alias("_sum"),
            pl.col("_v").mean().alias("_mean"),
            pl.col("_v").last().alias("_last"),
            pl.col("_day").n_unique().alias("_n"),
            pl.col("_days").first(),
        )
        .filter(pl.col("_n") == pl.col("_days"))
        .select(
            "kpi",
            pl.col("_p").alias("period"),
            "entity_id",
            pl.when(pl.col("_kind") == "flow").then("_sum").when(pl.col("_kind") == "stock").then("_last")
            .otherwise("_mean").alias("target"),
        )
    )
    return pl.concat([exact, spread]).unique(["kpi", "period", "entity_id"], keep="first")


def attach(out: pl.DataFrame, targets: pl.DataFrame | None, req, level: str | None, periods) -> pl.DataFrame:
    """Add ``target, attainment, gap, status`` to the engine's rows."""
    if level is None or targets is None:
        out = out.with_columns(pl.lit(None, pl.Float64).alias("target"))
    else:
        tf = targets_for(targets, req.catalog, req.grain, periods)
        entity = pl.lit("company") if level == "company" else pl.col(level)
        out = out.with_columns(entity.alias("_entity")).join(
            tf.rename({"entity_id": "_entity"}), on=["kpi", "period", "_entity"], how="left"
        ).drop("_entity")
    directions = {n: req.catalog.get(n).direction for n in req.kpis}
    return out.with_columns(pl.col("kpi").replace_strict(directions).alias("_dir")).with_columns(
        **status_columns(pl.col("value"), pl.col("target"), pl.col("projection"), pl.col("_dir") == "higher")
    ).drop("_dir")


def status_columns(v: pl.Expr, t: pl.Expr, proj: pl.Expr, higher: pl.Expr) -> dict[str, pl.Expr]:
    """attainment, gap and status expressions (see the module docstring)."""
    att = pl.when(higher).then(pl.when(t != 0).then(v / t)).otherwise(pl.when(v != 0).then(t / v))
    basis = pl.when(higher).then(pl.when(t != 0).then(proj / t)).otherwise(pl.when(proj != 0).then(t / proj))
    met = (higher & (t == 0)) | (~higher & (proj == 0))
    status = (
        pl.when(t.is_null() | v.is_null())
        .then(pl.lit(None, pl.String))
        .when(met | (basis >= ON_TRACK))
        .then(pl.lit("on_track"))
        .when(basis >= AT_RISK)
        .then(pl.lit("at_risk"))
        .otherwise(pl.lit("off_track"))
    )
    return {
        "target": t,
        "attainment": att.cast(pl.Float64),
        "gap": pl.when(higher).then(t - v).otherwise(v - t).cast(pl.Float64),
        "status": status,
    }


# --------------------------------------------------------------------------------------------
# Cascade and contribution
# --------------------------------------------------------------------------------------------
def _flow_only(catalog, kpi: str, what: str) -> None:
    kind = kpi_kind(catalog, kpi)
    if kind != "flow":
        raise ConfigError(
            f"{what} adds up values of KPI {kpi}, which is a {kind} ({catalog.get(kpi).type} KPI, "
            f"{catalog.get(kpi).unit}): its parts do not sum to the whole. Use a KPI that sums or counts "
            "(e.g. revenue, won_deals, new_leads)."
        )


def cascade_check(crm, kpi: str, period=None, grain: str | None = None, targets=True, catalog=None,
                  tolerance: float = 1e-6) -> pl.DataFrame:
    """Where children's targets do not add up to their parent's (user → team → department → company).

    A user's parent is ``users.team_id``, a team's ``teams.department``, a department's the company.
    Only levels that have targets for the KPI (and grain, period) are checked. One row per problem:
    ``kpi, grain, period, level, entity_id, target, child_level, children, children_target, difference,
    problem`` with difference = children's sum − parent's target and problem one of ``children do not
    add up``, ``no child targets`` (the parent has a target, none of its children has one),
    ``no parent target``. ``tolerance`` is relative to the parent's target (at least 1 unit × tolerance).
    """
    if catalog is None:
        from .catalog import default_catalog

        catalog = default_catalog()
    catalog.get(kpi)
    _flow_only(catalog, kpi, "cascade_check")
    tf = crm.table("targets").filter(pl.col("kpi") == kpi).collect()
    if isinstance(targets, str | Path):
        tf = with_file_targets(tf, Path(targets), [kpi], None, catalog)
    elif targets is False:
        tf = tf.clear()
    if grain is not None:
        tf = tf.filter(pl.col("grain") == grain)
    rng = parse_period(period)
    if rng is not None:
        tf = tf.filter(pl.col("period").is_between(*rng))
    users = crm.table("users").select("user_id", "team_id").collect()
    teams = crm.table("teams").select("team_id", "department").collect()
    parent_of = {
        "user": users.select(pl.col("user_id").alias("entity_id"), pl.col("team_id").alias("_parent")),
        "team": teams.select(pl.col("team_id").alias("entity_id"), pl.col("department").alias("_parent")),
    }
    frames = []
    for child, parent in (("user", "team"), ("team", "department"), ("department", "company")):
        kids = tf.filter(pl.col("level") == child)
        if kids.is_empty():
            continue
        if child == "department":
            kids = kids.with_columns(pl.lit("company").alias("_parent"))
        else:
            kids = kids.join(parent_of[child], on="entity_id", how="left")
        sums = kids.group_by("grain", "period", "_parent").agg(
            pl.len().cast(pl.Int64).alias("children"), pl.col("value").sum().alias("children_target")
        ).rename({"_parent": "entity_id"})
        checked = kids.select("grain", "period").unique()
        parents = tf.filter(pl.col("level") == parent).join(checked, on=["grain", "period"], how="semi").select(
            "grain", "period", "entity_id", pl.col("value").alias("target")
        )
        both = parents.join(sums, on=["grain", "period", "entity_id"], how="full", coalesce=True, nulls_equal=True)
        both = both.with_columns(
            pl.lit(parent).alias("level"),
            pl.lit(child).alias("child_level"),
            pl.col("children").fill_null(0),
            pl.col("children_target").fill_null(0.0),
        ).with_columns((pl.col("children_target") - pl.col("target")).alias("difference"))
        tol = tolerance * pl.max_horizontal(pl.col("target").abs(), pl.lit(1.0))
        problem = (
            pl.when(pl.col("target").is_null()).then(pl.lit("no parent target"))
            .when(pl.col("children") == 0).then(pl.lit("no child targets"))
            .when(pl.col("difference").abs() > tol).then(pl.lit("children do not add up"))
        )
        frames.append(both.with_columns(problem.alias("problem")).filter(pl.col("problem").is_not_null()))
    cols = {"kpi": pl.String, "grain": pl.String, "period": pl.Date, "level": pl.String, "entity_id": pl.String,
            "target": pl.Float64, "child_level": pl.String, "children": pl.Int64, "children_target": pl.Float64,
            "difference": pl.Float64, "problem": pl.String}
    if not frames:
        return pl.DataFrame(schema=cols)
    out = pl.concat(frames, how="diagonal_relaxed").with_columns(pl.lit(kpi).alias("kpi"))
    rank = {lv: i for i, lv in enumerate(LEVELS)}
    return (
        out.select([pl.col(c).cast(t) for c, t in cols.items()])
        .with_columns(pl.col("level").replace_strict(rank, return_dtype=pl.Int64).alias("_r"))
        .sort("grain", "period", "_r", "entity_id", nulls_last=True)
        .drop("_r")
    )


def contribution(crm, kpi: str, level: str, period, parent_level: str = "company", grain: str | None = None,
                 filters=None, backend: str = "auto", catalog=None, as_of=None) -> pl.DataFrame:
    """Each member's share of its parent's actual: ``kpi, period, parent_level, parent_id, level,
    member_id, value, parent_value, share`` with parent_value the sum of its members' values and
    share = value / parent_value (shares add up to 1 within each parent; null when the parent's value is
    0). ``level``: department, team or user; ``parent_level``: company, department or team, coarser than
    ``level``. ``grain`` None takes the whole period as one (``period`` = its first day)."""
    from . import engine

    for name, value, allowed in (("level", level, ORG_DIMENSIONS), ("parent_level", parent_level, LEVELS[:-1])):
        if value not in allowed:
            raise ConfigError(f"Unknown {name} {value!r}.{suggest(str(value), allowed)} Use one of: {', '.join(allowed)}.")
    if LEVELS.index(parent_level) >= LEVELS.index(level):
        raise ConfigError(f"parent_level {parent_level} must be above level {level} (company > department > team > user).")
    by = [level] if parent_level == "company" else [parent_level, level]
    req = engine.resolve(kpi, by, grain or ALL, period, filters, None, False, catalog, as_of, internal=True)
    _flow_only(req.catalog, kpi, "contribution")
    from .backends import backend_for

    with backend_for(crm, backend) as bk:
        res = engine.run(crm, bk, req)
    parent = pl.lit("company") if parent_level == "company" else pl.col(parent_level)
    res = res.with_columns(parent.alias("parent_id"))
    total = pl.col("value").sum().over("period", "parent_id")
    return res.select(
        "kpi",
        "period",
        pl.lit(parent_level).alias("parent_level"),
        "parent_id",
        pl.lit(level).alias("level"),
        pl.col(level).alias("member_id"),
        "value",
        total.alias("parent_value"),
        pl.when(total != 0).then(pl.col("value") / total).alias("share"),
    ).sort("period", "parent_id", "member_id", nulls_last=True)


__all__ = [
    "AT_RISK",
    "ON_TRACK",
    "attach",
    "cascade_check",
    "contribution",
    "read_targets_file",
    "target_level",
    "targets_for",
]
