"""From YAML data to spec records: the *shape* checks (known keys, required keys, value types, closed
vocabularies). Whether names resolve (tables, columns, measures, KPIs, dimensions) is checked by the
rules in :mod:`crmlib.kpis.rules`, once every file is read.

Parsing is lenient: a bad value is reported and left as None so that the other checks still run and
one pass lists every problem. Records holding None never leave the catalog (it raises first).
"""

from __future__ import annotations

import re
from typing import Any

from ._read import (
    FileSpec,
    Item,
    Loc,
    check_keys,
    get_int,
    get_mapping,
    get_override,
    get_str,
    get_str_list,
    get_text,
    kind_of,
)
from ._yaml import LineDict
from .expr import ExprError, expr_names
from .spec import (
    AGGS,
    CALCULATIONS,
    DEFAULT_DECIMALS,
    DIRECTIONS,
    DURATION_UNITS,
    FORMAT_STYLES,
    GRAINS,
    KPI_CLASSES,
    KPI_TYPES,
    OPS,
    UNIT_FORMATS,
    UNITS,
    CatalogProblem,
    Dimension,
    DimensionPath,
    Duration,
    Filter,
    Format,
    Measure,
    Snapshot,
    Window,
    bad_name,
)

FILE_KEYS = ("area", "area_label", "description", "dimensions", "measures", "kpis")
DIMENSION_KEYS = ("label", "description", "paths", "override")
MEASURE_KEYS = (
    "table",
    "agg",
    "column",
    "duration",
    "filters",
    "time",
    "snapshot",
    "description",
    "override",
)
FILTER_KEYS = ("column", "op", "value")
DURATION_KEYS = ("start", "end", "unit")
SNAPSHOT_KEYS = ("start", "end", "end_if")
WINDOW_KEYS = ("to_date", "rolling", "grain")
FORMAT_KEYS = ("style", "decimals")
KPI_COMMON_KEYS = (
    "type",
    "label",
    "description",
    "area",
    "unit",
    "format",
    "direction",
    "dimensions",
    "formula",
    "range",
    "override",
)
KPI_TYPE_KEYS: dict[str, tuple[str, ...]] = {
    "simple": ("measure",),
    "ratio": ("numerator", "denominator"),
    "derived": ("expr",),
    "cumulative": ("measure", "window"),
    "conversion": ("base", "converted", "entity", "window_days", "calculation"),
    "external": ("provider", "table", "extra_tables"),
}
PATH_RE = re.compile(r"^\s*(?P<target>\w+)\.(?P<column>\w+)\s+via\s+(?P<via>\w+)\s*$")
COLUMN_RE = re.compile(r"^\s*(?P<column>\w+)\s*$")
PROVIDER_RE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


# --------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------
def parse_file(file: str, data: Any, problems: list[CatalogProblem]) -> FileSpec | None:
    loc = Loc(file, problems, raw=data)
    spec = FileSpec(file)
    if data is None:
        return spec  # an empty file adds nothing
    if not isinstance(data, dict):
        loc.add(
            None,
            f"the file must hold a mapping (dimensions:, measures:, kpis:), not {kind_of(data)}.",
            "See docs/kpis.md for the layout.",
        )
        return None
    check_keys(loc, data, FILE_KEYS, "a catalog file")
    spec.area = get_str(loc, data, "area")
    if spec.area is not None and (why := bad_name(spec.area)):
        loc.add("area", f"area {spec.area!r} {why}.", "Use a name like sales or field_service.")
    spec.area_label = get_text(loc, data, "area_label", required=False, allow_str=False)
    for section, parse_one, out in (
        ("dimensions", parse_dimension, spec.dimensions),
        ("measures", parse_measure, spec.measures),
        ("kpis", parse_kpi, spec.kpis),
    ):
        items = get_mapping(loc, data, section)
        if not items:
            continue
        kind = section[:-1] if section != "kpis" else "kpi"
        for name, raw in items.items():
            item_loc = Loc(
                file,
                problems,
                kind,
                str(name),
                raw if isinstance(raw, LineDict) else None,
                name_line=items.line_of(name) if isinstance(items, LineDict) else None,
            )
            if why := bad_name(name):
                item_loc.add(
                    None, f"the name {name!r} {why}.", f"Rename the {kind}, e.g. {_snake(str(name))}."
                )
            if not isinstance(raw, dict):
                item_loc.add(
                    None,
                    f"{kind} {name} must be a mapping of keys, not {kind_of(raw)}.",
                    "Indent its keys under the name.",
                )
                out.append(Item(None, item_loc))
                continue
            out.append(parse_one(item_loc, raw, spec))
    return spec


def _snake(name: str) -> str:
    out = re.sub(r"[^a-z0-9]+", "_", re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()).strip("_")
    return out if out and out[0].isalpha() else f"kpi_{out}"


# --------------------------------------------------------------------------------------------
# Dimensions
# --------------------------------------------------------------------------------------------
def parse_dimension(loc: Loc, raw: dict, spec: FileSpec) -> Item:
    check_keys(loc, raw, DIMENSION_KEYS, "a dimension")
    label = get_text(loc, raw, "label", required=True, allow_str=False)
    description = get_str(loc, raw, "description") or ""
    paths: dict[str, DimensionPath | None] = {}
    praw = get_mapping(loc, raw, "paths", required=True)
    if praw is not None:
        sub = loc.child("paths", praw)
        if not praw:
            loc.add("paths", "paths is empty.", "Give at least one fact table: <table>: <column>.")
        for table, text in praw.items():
            if not isinstance(text, str):
                sub.add(
                    str(table),
                    f"the path for {table} must be text, not {kind_of(text)}.",
                    'Write "<column>" or "<table>.<column> via <fk column>".',
                )
                continue
            paths[str(table)] = parse_path(sub, str(table), text)
    record = Dimension(name=loc.name, label=label, description=description, paths=paths, source=loc.source())
    return Item(record, loc, get_override(loc, raw))


def parse_path(loc: Loc, table: str, text: str) -> DimensionPath | None:
    if m := COLUMN_RE.match(text):
        return DimensionPath(table=table, column=m["column"], target=table)
    if m := PATH_RE.match(text):
        return DimensionPath(table=table, column=m["column"], via=m["via"], target=m["target"])
    loc.add(
        table,
        f"path {text!r} is neither a column nor '<table>.<column> via <fk column>'.",
        'Write e.g. "region" or "accounts.region via account_id" (one hop through a foreign key).',
    )
    return None


# --------------------------------------------------------------------------------------------
# Measures
# --------------------------------------------------------------------------------------------
def parse_filters(loc: Loc, raw: dict, key: str) -> tuple[Filter | None, ...]:
    value = raw.get(key)
    if value is None:
        return ()
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        loc.add(
            key,
            f"{key} must be a list of {{column, op, value}}, not {kind_of(value)}.",
            f"Write {key}: [{{column: is_won, op: eq, value: true}}].",
        )
        return ()
    out = []
    for i, f in enumerate(value, 1):
        sub = loc.child(f"{key}[{i}]", f)
        if not isinstance(f, dict):
            sub.add(
                None,
                f"a filter must be a mapping {{column, op, value}}, not {kind_of(f)}.",
                "Write {column: is_won, op: eq, value: true}.",
            )
            out.append(None)
            continue
        check_keys(sub, f, FILTER_KEYS, "a filter")
        column = get_str(sub, f, "column", required=True)
        op = get_str(sub, f, "op", required=True, choices=OPS)
        out.append(Filter(column, op, f.get("value")) if column and op else None)
    return tuple(out)


def parse_measure(loc: Loc, raw: dict, spec: FileSpec) -> Item:
    check_keys(loc, raw, MEASURE_KEYS, "a measure")
    duration = None
    if (draw := get_mapping(loc, raw, "duration")) is not None:
        sub = loc.child("duration", draw)
        check_keys(sub, draw, DURATION_KEYS, "a duration")
        start, end = get_str(sub, draw, "start", required=True), get_str(sub, draw, "end", required=True)
        unit = get_str(sub, draw, "unit", choices=DURATION_UNITS, default="days")
        duration = Duration(start, end, unit) if start and end and unit else None
    snapshot = None
    if (sraw := get_mapping(loc, raw, "snapshot")) is not None:
        sub = loc.child("snapshot", sraw)
        check_keys(sub, sraw, SNAPSHOT_KEYS, "a snapshot")
        start, end = get_str(sub, sraw, "start", required=True), get_str(sub, sraw, "end")
        end_if = parse_filters(sub, sraw, "end_if")
        if end_if and not end:
            sub.add(
                "end_if",
                "end_if is given but end is not.",
                "Add end: <the date/datetime column that ends a row>.",
            )
        snapshot = Snapshot(start, end, end_if) if start else None
    record = Measure(
        name=loc.name,
        table=get_str(loc, raw, "table", required=True, what="the canonical table to aggregate"),
        agg=get_str(loc, raw, "agg", required=True, choices=AGGS),
        column=get_str(loc, raw, "column"),
        duration=duration,
        filters=parse_filters(loc, raw, "filters"),
        time=get_str(loc, raw, "time"),
        snapshot=snapshot,
        description=get_str(loc, raw, "description") or "",
        source=loc.source(),
    )
    return Item(
        record,
        loc,
        get_override(loc, raw),
        extra={"has_duration": "duration" in raw, "has_snapshot": "snapshot" in raw},
    )


# --------------------------------------------------------------------------------------------
# KPIs
# --------------------------------------------------------------------------------------------
def parse_kpi(loc: Loc, raw: dict, spec: FileSpec) -> Item:
    kpi_type = get_str(loc, raw, "type", required=True, choices=KPI_TYPES)
    if kpi_type:
        own = KPI_TYPE_KEYS[kpi_type]
        elsewhere = {
            k: " and ".join(f"{t} KPIs" for t, keys in KPI_TYPE_KEYS.items() if k in keys)
            for keys in KPI_TYPE_KEYS.values()
            for k in keys
            if k not in own
        }
        check_keys(loc, raw, KPI_COMMON_KEYS + own, f"a {kpi_type} KPI", elsewhere)
    else:
        check_keys(loc, raw, KPI_COMMON_KEYS + tuple(k for ks in KPI_TYPE_KEYS.values() for k in ks), "a KPI")

    unit = get_str(loc, raw, "unit", required=True, choices=UNITS)
    area = spec.area
    if raw.get("area") is not None:
        area = get_str(loc, raw, "area")
        if area and (why := bad_name(area)):
            loc.add("area", f"area {area!r} {why}.", "Use a name like sales.")
            area = None
    elif area is None:
        loc.add(
            "area",
            "the KPI has no area.",
            "Add area: <name> to the KPI, or area: <name> at the top of the file.",
        )
    explicit_dims = get_str_list(loc, raw, "dimensions")
    common: dict[str, Any] = dict(
        name=loc.name,
        label=get_text(loc, raw, "label", required=True, allow_str=False),
        description=get_text(loc, raw, "description", required=True, allow_str=True),
        area=area,
        unit=unit,
        format=parse_format(loc, raw, unit),
        direction=get_str(
            loc,
            raw,
            "direction",
            required=True,
            choices=DIRECTIONS,
            what="is a higher or a lower value better?",
        ),
        dimensions=explicit_dims or (),
        formula=get_text(loc, raw, "formula", required=False, allow_str=True),
        range=parse_range(loc, raw),
        source=loc.source(),
    )
    specific: dict[str, Any] = {}
    if kpi_type in ("simple", "cumulative"):
        specific["measure"] = get_str(loc, raw, "measure", required=True, what="the measure this KPI shows")
    if kpi_type == "ratio":
        specific["numerator"] = get_str(loc, raw, "numerator", required=True, what="a measure")
        specific["denominator"] = get_str(loc, raw, "denominator", required=True, what="a measure")
    if kpi_type == "derived":
        expr = get_str(loc, raw, "expr", required=True, what="an expression over other KPIs")
        refs: tuple[str, ...] = ()
        if expr is not None:
            try:
                refs = expr_names(expr)
            except ExprError as exc:
                loc.add("expr", f"expr {expr!r} {exc}.", "Example: expr: revenue / won_deals.")
                expr = None
        specific.update(expr=expr, refs=refs)
    if kpi_type == "cumulative":
        specific["window"] = parse_window(loc, raw)
    if kpi_type == "conversion":
        specific.update(
            base=get_str(loc, raw, "base", required=True, what="the measure counting the starting events"),
            converted=get_str(
                loc, raw, "converted", required=True, what="the measure counting the conversions"
            ),
            entity=get_str(loc, raw, "entity", required=True, what="the column linking both, e.g. lead_id"),
            window_days=get_int(loc, raw, "window_days", required=True, minimum=1),
            calculation=get_str(loc, raw, "calculation", choices=CALCULATIONS, default="conversion_rate"),
        )
    if kpi_type == "external":
        provider = get_str(loc, raw, "provider", required=True, what='"module:function" computing the KPI')
        if provider and not PROVIDER_RE.match(provider):
            loc.add(
                "provider",
                f"provider {provider!r} is not 'package.module:function'.",
                'Write e.g. provider: "crmlib.service:sla_compliance".',
            )
        specific.update(
            provider=provider,
            table=get_str(loc, raw, "table", required=True, what="the fact table its dimensions resolve on"),
            extra_tables=get_str_list(loc, raw, "extra_tables") or (),
        )
        if explicit_dims is None:
            loc.add(
                "dimensions",
                "an external KPI must list its dimensions (its provider decides what it supports).",
                "Add dimensions: [team, priority, ...].",
            )
    record = KPI_CLASSES[kpi_type](**common, **specific) if kpi_type else None
    return Item(record, loc, get_override(loc, raw), extra={"explicit_dimensions": explicit_dims})


def parse_format(loc: Loc, raw: dict, unit: str | None) -> Format | None:
    value = raw.get("format")
    default_style = UNIT_FORMATS[unit][0] if unit else None
    if value is None:
        return Format(default_style, DEFAULT_DECIMALS[default_style]) if default_style else None
    if isinstance(value, str):
        value = {"style": value}
    if not isinstance(value, dict):
        loc.add(
            "format",
            f"format must be a style name or {{style, decimals}}, not {kind_of(value)}.",
            "Write format: percent or format: {style: percent, decimals: 1}.",
        )
        return None
    sub = loc.child("format", value if isinstance(value, LineDict) else None)
    check_keys(sub, value, FORMAT_KEYS, "a format")
    style = get_str(sub, value, "style", required=True, choices=FORMAT_STYLES)
    decimals = get_int(sub, value, "decimals", minimum=0)
    if decimals is not None and decimals > 6:
        sub.add("decimals", f"decimals is {decimals}; at most 6 are shown.", "Use 0 to 6.")
    if style is None:
        return None
    return Format(style, DEFAULT_DECIMALS[style] if decimals is None else decimals)


def parse_range(loc: Loc, raw: dict) -> tuple[float, float] | None:
    value = raw.get("range")
    if value is None:
        return None
    ok = (
        isinstance(value, list)
        and len(value) == 2
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
    )
    if not ok:
        loc.add(
            "range", f"range must be [low, high] (two numbers), not {kind_of(value)}.", "Write range: [0, 1]."
        )
        return None
    if value[0] >= value[1]:
        loc.add("range", f"range {value} is empty: low must be below high.", "Write range: [low, high].")
        return None
    return (float(value[0]), float(value[1]))


def parse_window(loc: Loc, raw: dict) -> Window | None:
    value = get_mapping(loc, raw, "window", required=True)
    if value is None:
        return None
    sub = loc.child("window", value)
    check_keys(sub, value, WINDOW_KEYS, "a window")
    if "to_date" in value and ("rolling" in value or "grain" in value):
        sub.add(
            None,
            "window has both to_date and rolling/grain.",
            "Use either {to_date: year} or {rolling: 12, grain: month}.",
        )
        return None
    if "to_date" in value:
        to_date = get_str(sub, value, "to_date", required=True, choices=GRAINS)
        return Window(to_date=to_date) if to_date else None
    if "rolling" in value or "grain" in value:
        rolling = get_int(sub, value, "rolling", required=True, minimum=1)
        grain = get_str(sub, value, "grain", required=True, choices=GRAINS)
        return Window(rolling=rolling, grain=grain) if rolling and grain else None
    sub.add(None, "window is empty.", "Use {to_date: year} (year to date) or {rolling: 12, grain: month}.")
    return None
