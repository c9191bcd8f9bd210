"""Validation rules: small objects run together over the merged catalog, each reporting its problems.

A rule looks at one item (a dimension, a measure or a KPI) or at the whole catalog, and adds
:class:`~crmlib.kpis.spec.CatalogProblem` s through the item's location; it never raises. The shape of
each item (known keys, required keys, closed vocabularies) was already checked by
:mod:`crmlib.kpis.parse`; rules check what needs the schema or other items. Fields that failed to parse
are None and rules skip them, so one mistake is reported once.

This module holds the rule machinery and the dimension and measure rules; the KPI rules are in
:mod:`crmlib.kpis.kpi_rules`. :data:`RULES` lists them all (with their docstrings) once both are imported.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import suggest
from ..schema import ENUMS, TABLE_NAMES, TABLES, Column, Table
from ._read import Item, Loc
from .spec import (
    COUNT_AGGS,
    DimensionPath,
    Filter,
    Kpi,
    Measure,
)

TIME_DTYPES = ("date", "datetime")
NUMBER_DTYPES = ("int", "float")


@dataclass
class Model:
    """The merged catalog before it is frozen: name -> parsed item, per kind."""

    dimensions: dict[str, Item] = field(default_factory=dict)
    measures: dict[str, Item] = field(default_factory=dict)
    kpis: dict[str, Item] = field(default_factory=dict)
    dims_cache: dict[str, tuple[str, ...] | None] = field(
        default_factory=dict
    )  # kpi_rules.effective_dimensions

    def measure(self, name: str | None) -> Measure | None:
        item = self.measures.get(name) if name else None
        return item.record if item else None

    def kpi(self, name: str | None) -> Kpi | None:
        item = self.kpis.get(name) if name else None
        return item.record if item else None


@dataclass(frozen=True)
class Rule:
    name: str
    kind: str  # "dimension", "measure", "kpi" or "catalog"
    doc: str
    check: Callable[..., None]


RULES: list[Rule] = []


def rule(kind: str, name: str):
    def register(fn):
        RULES.append(Rule(name, kind, (fn.__doc__ or "").strip(), fn))
        return fn

    return register


def run_rules(model: Model) -> None:
    """Run every rule; problems go to each item's location."""
    for r in RULES:
        if r.kind == "catalog":
            r.check(model)
            continue
        for item in getattr(
            model, {"dimension": "dimensions", "measure": "measures", "kpi": "kpis"}[r.kind]
        ).values():
            if item.record is not None:
                r.check(item, model)


def report(loc: Loc, rule_name: str, key: str | None, message: str, hint: str = "") -> None:
    loc.add(key, message, hint, rule=rule_name)


def some_names(names) -> str:
    names = list(names)
    shown = ", ".join(names[:12])
    return shown + (f" ... ({len(names)} in all)" if len(names) > 12 else "")


def known_table(loc: Loc, rule_name: str, key: str, name: str | None) -> Table | None:
    if name is None:
        return None
    if name in TABLES:
        return TABLES[name]
    report(
        loc,
        rule_name,
        key,
        f"unknown table {name!r}.{suggest(name, TABLE_NAMES)}",
        f"Use a canonical table: {some_names(TABLE_NAMES)}.",
    )
    return None


def known_column(
    loc: Loc,
    rule_name: str,
    key: str,
    table: Table | None,
    name: str | None,
    dtypes: tuple[str, ...] | None = None,
    what: str = "",
) -> Column | None:
    if table is None or name is None:
        return None
    if name not in table.column_names:
        report(
            loc,
            rule_name,
            key,
            f"table {table.name} has no column {name!r}.{suggest(name, table.column_names)}",
            f"Its columns are: {', '.join(table.column_names)}.",
        )
        return None
    col = table.column(name)
    if dtypes and col.dtype not in dtypes:
        report(
            loc,
            rule_name,
            key,
            f"{table.name}.{name} is {col.dtype}; {what or 'this'} needs {' or '.join(dtypes)}.",
            f"Pick a {' or '.join(dtypes)} column of {table.name}.",
        )
        return None
    return col


# --------------------------------------------------------------------------------------------
# Dimensions
# --------------------------------------------------------------------------------------------
def resolve_path(path: DimensionPath) -> tuple[Column | None, str | None, str]:
    """(column, referenced key, why not) for a dimension path; column None when it does not resolve."""
    fact = TABLES.get(path.table)
    if fact is None:
        return None, None, f"unknown table {path.table!r}.{suggest(path.table, TABLE_NAMES)}"
    if path.via is None:
        if path.column not in fact.column_names:
            return (
                None,
                None,
                f"table {path.table} has no column {path.column!r}.{suggest(path.column, fact.column_names)}",
            )
        return fact.column(path.column), None, ""
    if path.via not in fact.column_names:
        return (
            None,
            None,
            f"table {path.table} has no column {path.via!r}.{suggest(path.via, fact.column_names)}",
        )
    fk = fact.column(path.via)
    if not fk.references:
        return None, None, f"{path.table}.{path.via} is not a foreign key (it references no table)"
    ref_table, ref_col = fk.references.split(".")
    if ref_table != path.target:
        return None, None, f"{path.table}.{path.via} references {fk.references}, not table {path.target!r}"
    target = TABLES[ref_table]
    if path.column not in target.column_names:
        return (
            None,
            None,
            f"table {ref_table} has no column {path.column!r}.{suggest(path.column, target.column_names)}",
        )
    return target.column(path.column), ref_col, ""


@rule("dimension", "dimension-paths")
def check_dimension_paths(item: Item, model: Model) -> None:
    """Every path names a canonical fact table and resolves to a groupable column, directly or through
    one foreign key of the fact table that references the named table."""
    sub = item.loc.child("paths", item.loc.raw.get("paths") if item.loc.raw else None)
    for table, path in item.record.paths.items():
        if path is None:
            continue
        col, _, why = resolve_path(path)
        if col is None:
            fk_hint = ""
            fact = TABLES.get(table)
            if fact is not None and path.via is not None:
                fks = [f"{c}->{t}" for c, t, _ in fact.foreign_keys]
                fk_hint = f" Foreign keys of {table}: {', '.join(fks) or 'none'}."
            report(
                sub,
                "dimension-paths",
                table,
                f"path {str(path)!r}: {why}.",
                'Write "<column>" or "<table>.<column> via <fk column>".' + fk_hint,
            )
        elif col.dtype in ("float", *TIME_DTYPES):
            report(
                sub,
                "dimension-paths",
                table,
                f"path {str(path)!r} leads to a {col.dtype} column.",
                "Group by text, integer or boolean columns; time is handled by the grain.",
            )


@rule("dimension", "dimension-values")
def check_dimension_values(item: Item, model: Model) -> None:
    """All paths of a dimension have the same enum (one set of values to filter by)."""
    enums = {}
    for table, path in item.record.paths.items():
        col = resolve_path(path)[0] if path else None
        if col is not None:
            enums[table] = col.enum
    if len(set(enums.values())) > 1:
        shown = ", ".join(f"{t}: {e or 'free text'}" for t, e in enums.items())
        report(
            item.loc,
            "dimension-values",
            "paths",
            f"the paths lead to columns with different values ({shown}).",
            "Split it into one dimension per kind of value (e.g. channel and case_channel).",
        )


# --------------------------------------------------------------------------------------------
# Measures
# --------------------------------------------------------------------------------------------
@rule("measure", "measure-table")
def check_measure_table(item: Item, model: Model) -> None:
    """The measure's table is a canonical table."""
    known_table(item.loc, "measure-table", "table", item.record.table)


@rule("measure", "measure-agg")
def check_measure_agg(item: Item, model: Model) -> None:
    """count takes no column; the other aggregations need exactly one of column or duration, of a type
    they can aggregate (sum/mean/median: numbers; min/max: numbers or dates)."""
    m: Measure = item.record
    loc, name = item.loc, "measure-agg"
    table = TABLES.get(m.table)
    has_duration = item.extra.get("has_duration")
    if m.agg == "count":
        if m.column or has_duration:
            report(
                loc,
                name,
                "column" if m.column else "duration",
                "agg count counts rows and takes no column or duration.",
                "Remove it; to count rows where a column is set, add a filter {column: x, op: not_null}; "
                "to count distinct values use agg: count_distinct.",
            )
        return
    if m.agg is None:
        return
    if m.column and has_duration:
        report(loc, name, "duration", "the measure has both column and duration.", "Keep one of them.")
        return
    if not m.column and not has_duration:
        report(
            loc,
            name,
            "column",
            f"agg {m.agg} needs a column.",
            "Add column: <a column of the table>, or duration: {start: ..., end: ...}.",
        )
        return
    if has_duration:
        if m.agg == "count_distinct":
            report(
                loc,
                name,
                "duration",
                "count_distinct of a duration makes no sense.",
                "Use mean, median, min, max or sum.",
            )
        return
    dtypes = {
        "sum": NUMBER_DTYPES,
        "mean": NUMBER_DTYPES,
        "median": NUMBER_DTYPES,
        "min": NUMBER_DTYPES + TIME_DTYPES,
        "max": NUMBER_DTYPES + TIME_DTYPES,
        "count_distinct": None,
    }[m.agg]
    known_column(loc, name, "column", table, m.column, dtypes, f"agg {m.agg}")


@rule("measure", "measure-duration")
def check_measure_duration(item: Item, model: Model) -> None:
    """A duration runs between two date/datetime columns of the table; hours need two datetimes."""
    d = item.record.duration
    if d is None:
        return
    table = TABLES.get(item.record.table)
    sub = item.loc.child("duration", item.loc.raw.get("duration"))
    need = ("datetime",) if d.unit == "hours" else TIME_DTYPES
    what = "a duration in hours" if d.unit == "hours" else "a duration"
    known_column(sub, "measure-duration", "start", table, d.start, need, what)
    known_column(sub, "measure-duration", "end", table, d.end, need, what)
    if d.start and d.start == d.end:
        report(
            sub, "measure-duration", "end", f"start and end are both {d.start}.", "Use two different columns."
        )


@rule("measure", "measure-time")
def check_measure_time(item: Item, model: Model) -> None:
    """A flow measure has a date/datetime time column; a snapshot measure has a snapshot instead."""
    m: Measure = item.record
    loc, name = item.loc, "measure-time"
    table = TABLES.get(m.table)
    if m.time and item.extra.get("has_snapshot"):
        report(
            loc,
            name,
            "time",
            "the measure has both time and snapshot.",
            "A flow counts rows by time; a snapshot counts rows alive at each period end. Keep one.",
        )
        return
    if item.extra.get("has_snapshot"):
        s = m.snapshot
        if s is None or table is None:
            return
        sub = loc.child("snapshot", loc.raw.get("snapshot"))
        known_column(sub, name, "start", table, s.start, TIME_DTYPES, "a snapshot start")
        known_column(sub, name, "end", table, s.end, TIME_DTYPES, "a snapshot end")
        for i, f in enumerate(s.end_if, 1):
            if f is not None:
                check_filter(sub, f"end_if[{i}]", f, table)
        return
    if not m.time:
        hint = "Add time: <the date/datetime column the period applies to>"
        if table is not None:
            hint += f"; {table.name} has {', '.join(c.name for c in table.columns if c.dtype in TIME_DTYPES)}"
        report(loc, name, "time", "the measure has no time column.", hint + ". (Or a snapshot: for stocks.)")
        return
    known_column(loc, name, "time", table, m.time, TIME_DTYPES, "the time column")


@rule("measure", "measure-filters")
def check_measure_filters(item: Item, model: Model) -> None:
    """Filters name columns of the measure's table and values that fit the column (type and enum)."""
    table = TABLES.get(item.record.table)
    if table is None:
        return
    for i, f in enumerate(item.record.filters, 1):
        if f is not None:
            check_filter(item.loc, f"filters[{i}]", f, table)


def check_filter(loc: Loc, key: str, f: Filter, table: Table) -> None:
    raw = loc.raw.get(key.split("[")[0]) if loc.raw else None
    idx = int(key.split("[")[1].rstrip("]")) - 1 if "[" in key else 0
    fraw = raw[idx] if isinstance(raw, list) and idx < len(raw) else None
    sub = loc.child(key, fraw)
    col = known_column(sub, "measure-filters", "column", table, f.column)
    if col is None:
        return
    if f.op in ("is_null", "not_null"):
        if f.value is not None:
            report(
                sub,
                "measure-filters",
                "value",
                f"op {f.op} takes no value (got {f.value!r}).",
                "Remove value.",
            )
        return
    if f.op in ("in", "not_in"):
        if not isinstance(f.value, list) or not f.value:
            report(
                sub,
                "measure-filters",
                "value",
                f"op {f.op} needs a non-empty list, not {f.value!r}.",
                "Write value: [a, b].",
            )
            return
        values = f.value
    else:
        if f.value is None:
            report(
                sub,
                "measure-filters",
                "value",
                f"op {f.op} needs a value.",
                "Add value: ...; to keep rows where the column is empty use op: is_null.",
            )
            return
        if isinstance(f.value, list):
            report(
                sub,
                "measure-filters",
                "value",
                f"op {f.op} compares with one value, not a list.",
                "Use op: in for a list of values.",
            )
            return
        values = [f.value]
    if f.op in ("gt", "ge", "lt", "le") and col.dtype not in NUMBER_DTYPES + TIME_DTYPES:
        report(
            sub,
            "measure-filters",
            "op",
            f"op {f.op} cannot compare {col.dtype} column {table.name}.{col.name}.",
            "Use eq, ne, in or not_in.",
        )
        return
    for v in values:
        why = value_problem(v, col)
        if why:
            report(sub, "measure-filters", "value", f"value {v!r} for {table.name}.{col.name}: {why}", "")


def value_problem(value: Any, col: Column) -> str:
    """Why ``value`` cannot be compared with ``col`` ('' when it can)."""
    if col.dtype == "bool":
        return "" if isinstance(value, bool) else "the column is boolean: write true or false."
    if col.dtype == "int":
        return (
            ""
            if isinstance(value, int) and not isinstance(value, bool)
            else "the column holds whole numbers."
        )
    if col.dtype == "float":
        return (
            ""
            if isinstance(value, int | float) and not isinstance(value, bool)
            else "the column holds numbers."
        )
    if col.dtype == "str":
        if not isinstance(value, str):
            return "the column holds text: quote the value."
        if col.enum and value not in ENUMS[col.enum]:
            return f"not an allowed value.{suggest(value, ENUMS[col.enum])} Allowed: {', '.join(ENUMS[col.enum])}."
        return ""
    if to_time(value, col.dtype) is None:
        return f"the column holds {col.dtype}s: write an ISO date like 2025-01-31."
    return ""


def to_time(value: Any, dtype: str) -> dt.date | dt.datetime | None:
    """A filter value as a date (dtype date) or datetime (dtype datetime); None when it is not one."""
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value) if dtype == "datetime" else dt.date.fromisoformat(value)
        except ValueError:
            return None
    if dtype == "date":
        return value if isinstance(value, dt.date) and not isinstance(value, dt.datetime) else None
    if isinstance(value, dt.datetime):
        return value
    return dt.datetime.combine(value, dt.time()) if isinstance(value, dt.date) else None


def measure_is_money(m: Measure) -> bool:
    table = TABLES.get(m.table)
    if table is None or not m.column or m.agg in COUNT_AGGS or m.column not in table.column_names:
        return False
    return table.column(m.column).is_money
