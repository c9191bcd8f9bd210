"""Validation rules for KPIs (see :mod:`crmlib.kpis.rules` for the rule objects and the other rules)."""

from __future__ import annotations

from ..errors import suggest
from ..schema import TABLES
from ._read import Item
from .rules import Model, known_table, measure_is_money, report, resolve_path, rule, some_names
from .spec import (
    COUNT_AGGS,
    UNIT_FORMATS,
    ConversionKpi,
    CumulativeKpi,
    DerivedKpi,
    ExternalKpi,
    Kpi,
    RatioKpi,
    SimpleKpi,
)


# --------------------------------------------------------------------------------------------
# KPIs
# --------------------------------------------------------------------------------------------
@rule("kpi", "kpi-measures")
def check_kpi_measures(item: Item, model: Model) -> None:
    """Measures named by simple, ratio, cumulative and conversion KPIs exist."""
    for key in item.record.measure_keys:
        name = getattr(item.record, key)
        if name is None or name in model.measures:
            continue
        extra = f" ({name} is a KPI: a {key} must be a measure)" if name in model.kpis else ""
        report(
            item.loc,
            "kpi-measures",
            key,
            f"unknown measure {name!r}{extra}.{suggest(name, model.measures)}",
            f"Name a measure declared under measures: ({some_names(model.measures)}).",
        )


@rule("kpi", "kpi-expr")
def check_kpi_expr(item: Item, model: Model) -> None:
    """A derived expression names existing KPIs (not measures, not itself)."""
    k = item.record
    if not isinstance(k, DerivedKpi) or k.expr is None:
        return
    for ref in k.refs:
        if ref == k.name:
            report(
                item.loc, "kpi-expr", "expr", f"expr {k.expr!r} refers to the KPI itself.", "Use other KPIs."
            )
        elif ref not in model.kpis:
            extra = (
                f" ({ref} is a measure; declare a simple KPI over it and use that)"
                if ref in model.measures
                else ""
            )
            report(
                item.loc,
                "kpi-expr",
                "expr",
                f"expr {k.expr!r} uses unknown KPI {ref!r}{extra}.{suggest(ref, model.kpis)}",
                "Use names of KPIs in the catalog (crmlib kpis list).",
            )


@rule("catalog", "kpi-cycles")
def check_cycles(model: Model) -> None:
    """Derived KPIs do not depend on themselves through other KPIs."""
    seen: set[tuple[str, ...]] = set()
    state: dict[str, int] = {}

    def visit(name: str, stack: list[str]) -> None:
        state[name] = 1
        stack.append(name)
        k = model.kpi(name)
        for ref in k.kpi_refs if k else ():
            if ref == name or ref not in model.kpis:
                continue
            if state.get(ref) == 1:
                cycle = stack[stack.index(ref) :]
                i = cycle.index(min(cycle))
                canon = tuple(cycle[i:] + cycle[:i])
                if canon not in seen:
                    seen.add(canon)
                    path = " -> ".join((*canon, canon[0]))
                    report(
                        model.kpis[canon[0]].loc,
                        "kpi-cycles",
                        "expr",
                        f"derived KPIs form a cycle: {path}.",
                        "Break the cycle: one of them must be computed from measures.",
                    )
            elif state.get(ref) is None:
                visit(ref, stack)
        stack.pop()
        state[name] = 2

    for name in model.kpis:
        if state.get(name) is None:
            visit(name, [])


@rule("kpi", "kpi-units")
def check_kpi_units(item: Item, model: Model) -> None:
    """The unit fits the measures: money is currency, counts are counts, durations are days/hours; a
    ratio KPI in unit ratio divides like by like (money by money, counts by counts)."""
    k, loc, name = item.record, item.loc, "kpi-units"
    if k.unit is None:
        return
    if isinstance(k, SimpleKpi | CumulativeKpi) and (m := model.measure(k.measure)):
        money = measure_is_money(m)
        expected = (
            "currency"
            if money
            else "count"
            if m.agg in COUNT_AGGS
            else m.duration.unit
            if m.duration
            else None
        )
        if expected and k.unit != expected:
            why = {
                "currency": "sums money",
                "count": "counts rows",
                "days": "is a duration in days",
                "hours": "is a duration in hours",
            }[expected]
            report(
                loc,
                name,
                "unit",
                f"unit {k.unit} does not fit measure {m.name}, which {why}.",
                f"Use unit: {expected}.",
            )
        elif k.unit == "currency" and not money:
            report(
                loc,
                name,
                "unit",
                f"unit currency but measure {m.name} is not money.",
                "Use a money column (one with a currency), or another unit.",
            )
    if isinstance(k, RatioKpi):
        num, den = model.measure(k.numerator), model.measure(k.denominator)
        if num is None or den is None:
            return
        n_money, d_money = measure_is_money(num), measure_is_money(den)
        kind = {True: "money", False: "not money"}
        if k.unit == "ratio" and n_money != d_money:
            report(
                loc,
                name,
                "unit",
                f"unit ratio divides like by like, but numerator {num.name} is {kind[n_money]} and denominator "
                f"{den.name} is {kind[d_money]}.",
                "Use unit: currency for an amount per item, or measures of one kind.",
            )
        elif k.unit == "currency" and not (n_money and not d_money):
            report(
                loc,
                name,
                "unit",
                f"unit currency needs a money numerator and a non-money denominator; {num.name} is {kind[n_money]}, "
                f"{den.name} is {kind[d_money]}.",
                "Use unit: ratio for money / money.",
            )
        elif k.unit not in ("ratio", "currency") and n_money and not d_money:
            report(
                loc,
                name,
                "unit",
                f"money / count ({num.name} / {den.name}) is an amount, not {k.unit}.",
                "Use unit: currency.",
            )
    if isinstance(k, ConversionKpi) and k.calculation:
        expected = "ratio" if k.calculation == "conversion_rate" else "count"
        if k.unit != expected:
            report(
                loc,
                name,
                "unit",
                f"calculation {k.calculation} gives a {expected}, but unit is {k.unit}.",
                f"Use unit: {expected}.",
            )


@rule("kpi", "kpi-format")
def check_kpi_format(item: Item, model: Model) -> None:
    """The format style suits the unit (percent for ratios, currency for money, ...)."""
    k = item.record
    if k.unit is None or k.format is None:
        return
    allowed = UNIT_FORMATS[k.unit]
    if k.format.style not in allowed:
        report(
            item.loc,
            "kpi-format",
            "format",
            f"format {k.format.style} does not suit unit {k.unit}.",
            f"Use format: {' or '.join(allowed)}.",
        )


@rule("kpi", "kpi-snapshot")
def check_kpi_snapshot(item: Item, model: Model) -> None:
    """Cumulative and conversion KPIs read flow measures (a stock cannot be added up over time)."""
    k = item.record
    if not isinstance(k, CumulativeKpi | ConversionKpi):
        return
    for key in k.measure_keys:
        m = model.measure(getattr(k, key))
        if m is not None and m.snapshot is not None:
            report(
                item.loc,
                "kpi-snapshot",
                key,
                f"measure {m.name} is a snapshot (a stock at period end); "
                f"a {k.type} KPI needs a flow measure with a time column.",
                "Use a measure with time:.",
            )


@rule("kpi", "kpi-conversion")
def check_kpi_conversion(item: Item, model: Model) -> None:
    """A conversion counts entities: both measures count, and the entity column links their tables."""
    k = item.record
    if not isinstance(k, ConversionKpi):
        return
    base, conv = model.measure(k.base), model.measure(k.converted)
    for key, m in (("base", base), ("converted", conv)):
        if m is not None and m.agg not in COUNT_AGGS:
            report(
                item.loc,
                "kpi-conversion",
                key,
                f"measure {m.name} has agg {m.agg}; a conversion counts entities.",
                "Use a count or count_distinct measure.",
            )
    if base is None or conv is None or k.entity is None:
        return
    tb, tc = TABLES.get(base.table), TABLES.get(conv.table)
    if tb is None or tc is None:
        return
    missing = [t.name for t in (tb, tc) if k.entity not in t.column_names]
    if missing:
        common = sorted(set(tb.column_names) & set(tc.column_names))
        report(
            item.loc,
            "kpi-conversion",
            "entity",
            f"entity {k.entity!r} is not a column of {' and '.join(missing)}.{suggest(k.entity, common)}",
            f"Use a column both {tb.name} and {tc.name} have: {', '.join(common)}.",
        )
        return
    cb, cc = tb.column(k.entity), tc.column(k.entity)
    linked = (
        (tb.primary_key == (k.entity,) and cc.references == f"{tb.name}.{k.entity}")
        or (tc.primary_key == (k.entity,) and cb.references == f"{tc.name}.{k.entity}")
        or (cb.references is not None and cb.references == cc.references)
    )
    if not linked:
        report(
            item.loc,
            "kpi-conversion",
            "entity",
            f"{tb.name}.{k.entity} and {tc.name}.{k.entity} are not the same key (no foreign key links them).",
            "Use a column that is the key of one table and a foreign key to it in the other.",
        )


@rule("kpi", "kpi-external")
def check_kpi_external(item: Item, model: Model) -> None:
    """An external KPI names canonical tables."""
    k = item.record
    if not isinstance(k, ExternalKpi):
        return
    known_table(item.loc, "kpi-external", "table", k.table)
    for t in k.extra_tables:
        known_table(item.loc, "kpi-external", "extra_tables", t)


# --------------------------------------------------------------------------------------------
# Dimensions of KPIs
# --------------------------------------------------------------------------------------------
def dimension_tables(k: Kpi, model: Model) -> list[tuple[str, str]] | None:
    """(fact table, why) pairs the KPI's dimensions must resolve on; None when a reference is broken."""
    if isinstance(k, ExternalKpi):
        return [(k.table, "its table")] if k.table in TABLES else None
    keys = ("base",) if isinstance(k, ConversionKpi) else k.measure_keys
    out = []
    for key in keys:
        m = model.measure(getattr(k, key))
        if m is None or m.table not in TABLES:
            return None
        out.append((m.table, f"measure {m.name}"))
    return out


def _groupable(dim_item: Item, table: str) -> bool:
    path = dim_item.record.paths.get(table) if dim_item.record else None
    return path is not None and resolve_path(path)[0] is not None


def effective_dimensions(name: str, model: Model, stack: tuple[str, ...] = ()) -> tuple[str, ...] | None:
    """The dimensions a KPI can be grouped by: its explicit list, or every dimension valid for all the
    tables it reads (derived: valid for all the KPIs it uses). None when that cannot be known."""
    if name in model.dims_cache:
        return model.dims_cache[name]
    item = model.kpis.get(name)
    k = item.record if item else None
    if k is None or name in stack:
        return None
    explicit = item.extra.get("explicit_dimensions")
    if isinstance(k, DerivedKpi):
        parts = [effective_dimensions(r, model, (*stack, name)) for r in k.refs]
        if not k.refs or any(p is None for p in parts):
            result = None
        else:
            result = tuple(d for d in model.dimensions if all(d in p for p in parts))
    else:
        tables = dimension_tables(k, model)
        result = (
            None
            if tables is None
            else tuple(d for d, di in model.dimensions.items() if all(_groupable(di, t) for t, _ in tables))
        )
    if result is not None and explicit is not None:
        result = tuple(d for d in explicit if d in result)
    model.dims_cache[name] = result
    return result


@rule("kpi", "kpi-dimensions")
def check_kpi_dimensions(item: Item, model: Model) -> None:
    """Listed dimensions exist and have a path for every fact table the KPI reads."""
    k = item.record
    explicit = item.extra.get("explicit_dimensions")
    if not explicit:
        return
    for d in explicit:
        if d not in model.dimensions:
            report(
                item.loc,
                "kpi-dimensions",
                "dimensions",
                f"unknown dimension {d!r}.{suggest(d, model.dimensions)}",
                f"Use dimensions from dimensions.yaml: {some_names(model.dimensions)}.",
            )
    if isinstance(k, DerivedKpi):
        for ref in k.refs:
            available = effective_dimensions(ref, model)
            if available is None:
                continue
            for d in explicit:
                if d in model.dimensions and d not in available:
                    report(
                        item.loc,
                        "kpi-dimensions",
                        "dimensions",
                        f"dimension {d!r} is not available for KPI {ref}, which this KPI uses.",
                        f"Drop it; {ref} can be grouped by: {', '.join(available) or 'nothing'}.",
                    )
        return
    tables = dimension_tables(k, model)
    for table, why in tables or ():
        for d in explicit:
            if d in model.dimensions and not _groupable(model.dimensions[d], table):
                report(
                    item.loc,
                    "kpi-dimensions",
                    "dimensions",
                    f"dimension {d!r} has no path for table {table} (read by {why}).",
                    f"Drop it, or add a path for {table} under {d} in a dimensions: section.",
                )
