"""The KPI spec: what a KPI *is*, as frozen records. How it is computed is the engine's business.

The catalog (:mod:`crmlib.kpis.catalog`) builds these records from YAML and validates them; nothing
here reads files or data. The closed vocabulary (aggregations, filter operators, KPI types, units,
formats) lives here so the loader, the validation rules, the engine and the docs share one list.

Semantics the engine must follow (the YAML guide ``docs/kpis.md`` says the same in words):

* A measure aggregates one canonical table (``agg`` over ``column``, or over a ``duration`` between
  two date/datetime columns), after its ``filters`` (all must hold). A flow measure is assigned to
  periods by its ``time`` column; rows whose time is null fall in no period. A *snapshot* measure has
  no ``time``: it is evaluated as of the end of each period (or the as-of date of a partial period)
  over the rows alive then, ``start <= as_of`` and not ended (``end <= as_of`` where ``end_if`` holds,
  or wherever ``end`` is set when there is no ``end_if``).
* Filters compare with SQL semantics, except that ``ne`` and ``not_in`` keep nulls (they mean
  "IS DISTINCT FROM": ``status ne cancelled`` keeps orders whose status is unknown).
* A money measure (``money``: sum/mean/median/min/max over a column with ``Column.currency``) is
  converted to the base currency with ``fx_rates`` at the date of the row's time column (for a
  snapshot, at the as-of date), before aggregation. Adding currencies without a rate is an error.
* A derived KPI combines *KPI values per group and period* with ``+ - * /`` and numbers; a division
  by zero gives null, never inf.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..errors import ConfigError
from ..schema import ENUMS
from .expr import evaluate

# --------------------------------------------------------------------------------------------
# The closed vocabulary
# --------------------------------------------------------------------------------------------
AGGS = ("sum", "count", "count_distinct", "mean", "median", "min", "max")
COUNT_AGGS = ("count", "count_distinct")
OPS = ("eq", "ne", "in", "not_in", "gt", "ge", "lt", "le", "is_null", "not_null")
OP_SYMBOLS = {
    "eq": "=",
    "ne": "≠",
    "in": "in",
    "not_in": "not in",
    "gt": ">",
    "ge": ">=",
    "lt": "<",
    "le": "<=",
    "is_null": "is empty",
    "not_null": "is set",
}
KPI_TYPES = ("simple", "ratio", "derived", "cumulative", "conversion", "external")
UNITS = ("currency", "count", "ratio", "days", "hours", "score")
FORMAT_STYLES = ("currency", "integer", "number", "percent", "days", "hours")
# which formats suit which unit (the first is the default)
UNIT_FORMATS: Mapping[str, tuple[str, ...]] = {
    "currency": ("currency", "number"),
    "count": ("integer", "number"),
    "ratio": ("percent", "number"),
    "days": ("days", "number"),
    "hours": ("hours", "number"),
    "score": ("number", "integer"),
}
DEFAULT_DECIMALS: Mapping[str, int] = {
    "currency": 0,
    "integer": 0,
    "number": 2,
    "percent": 1,
    "days": 1,
    "hours": 1,
}
DIRECTIONS = ("higher", "lower")
DURATION_UNITS = ("days", "hours")
CALCULATIONS = ("conversion_rate", "conversions")
GRAINS: tuple[str, ...] = ENUMS["grain"]
LANGS = ("en", "zh")

NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")


def bad_name(name: object) -> str | None:
    """Why ``name`` cannot name a KPI, measure, dimension or area (None when it can)."""
    if not isinstance(name, str) or not NAME_RE.match(name):
        return "is not snake_case (lower-case letters, digits and _, starting with a letter)"
    if keyword.iskeyword(name):
        return "is a Python keyword and could not be used in a derived expression"
    return None


# --------------------------------------------------------------------------------------------
# Problems
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CatalogProblem:
    """One problem in a catalog file: where it is, what is wrong (with the bad value), how to fix it."""

    file: str
    kind: str  # "file", "dimension", "measure" or "kpi"
    name: str | None
    key: str | None
    message: str
    hint: str = ""
    line: int | None = None
    rule: str = ""

    def render(self) -> str:
        loc = f"{self.file}:{self.line}" if self.line else self.file
        what = [f"{self.kind} {self.name}"] if self.name else []
        if self.key:
            what.append(f"key {self.key}")
        where = f" ({', '.join(what)})" if what else ""
        text = f"{loc}{where}: {self.message}"
        return f"{text} {self.hint}".rstrip()


class CatalogError(ConfigError):
    """The KPI catalog has problems; every one of them is listed."""

    def __init__(self, problems: list[CatalogProblem]):
        self.problems = list(problems)
        n = len(self.problems)
        head = f"KPI catalog: {n} problem{'s' if n != 1 else ''} found"
        super().__init__(head + "\n" + "\n".join("  - " + p.render() for p in self.problems))


# --------------------------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Source:
    """Where a definition was read from."""

    file: str = "<memory>"
    line: int | None = None

    def __str__(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file


@dataclass(frozen=True)
class Text:
    """A text in English and Chinese (labels, formulas, descriptions)."""

    en: str
    zh: str

    def get(self, lang: str = "en") -> str:
        if lang not in LANGS:
            raise ConfigError(f"Language {lang!r} is not supported. Use one of: {', '.join(LANGS)}.")
        return self.zh if lang == "zh" else self.en


@dataclass(frozen=True)
class Filter:
    """``column op value``; ``value`` is a tuple for in/not_in and None for is_null/not_null."""

    column: str
    op: str
    value: Any = None

    def __str__(self) -> str:
        if self.op in ("is_null", "not_null"):
            return f"{self.column} {OP_SYMBOLS[self.op]}"
        if self.op in ("in", "not_in"):
            return f"{self.column} {OP_SYMBOLS[self.op]} ({', '.join(_show(v) for v in self.value)})"
        return f"{self.column} {OP_SYMBOLS.get(self.op, self.op)} {_show(self.value)}"


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@dataclass(frozen=True)
class Duration:
    """The time from ``start`` to ``end`` in ``unit``. For days, datetimes are truncated to dates first
    (calendar days, an integer); for hours both columns are datetimes (a float)."""

    start: str
    end: str
    unit: str = "days"

    def __str__(self) -> str:
        return f"{self.unit} from {self.start} to {self.end}"


@dataclass(frozen=True)
class Snapshot:
    """A stock, not a flow: a row is alive from ``start`` until ``end`` (see the module docstring)."""

    start: str
    end: str | None = None
    end_if: tuple[Filter, ...] = ()

    def __str__(self) -> str:
        if not self.end:
            return f"alive from {self.start} on"
        cond = f" when {' and '.join(map(str, self.end_if))}" if self.end_if else " when set"
        return f"alive from {self.start} until {self.end}{cond}"


@dataclass(frozen=True, kw_only=True)
class Measure:
    """An aggregation over one canonical table. ``money`` and ``currency_column`` are set by the catalog
    from the schema (never written in YAML)."""

    name: str
    table: str
    agg: str
    column: str | None = None
    duration: Duration | None = None
    filters: tuple[Filter, ...] = ()
    time: str | None = None
    snapshot: Snapshot | None = None
    description: str = ""
    money: bool = False
    currency_column: str | None = None
    source: Source = field(default_factory=Source)

    @property
    def is_snapshot(self) -> bool:
        return self.snapshot is not None

    @property
    def is_count(self) -> bool:
        return self.agg in COUNT_AGGS

    @property
    def is_additive(self) -> bool:
        """True when values of disjoint groups or periods add up (sum and count of a flow); a distinct
        count, mean, median, min, max or snapshot must be recomputed, never summed."""
        return self.agg in ("sum", "count") and self.snapshot is None

    @property
    def unit(self) -> str | None:
        """currency, count, days or hours; None for other numbers (e.g. the mean of a score)."""
        if self.money:
            return "currency"
        if self.is_count:
            return "count"
        if self.duration:
            return self.duration.unit
        return None

    @property
    def columns(self) -> tuple[str, ...]:
        """Every column of :attr:`table` this measure reads (for projection)."""
        cols: list[str] = []
        if self.column:
            cols.append(self.column)
        if self.duration:
            cols += [self.duration.start, self.duration.end]
        cols += [f.column for f in self.filters]
        if self.time:
            cols.append(self.time)
        if self.snapshot:
            cols.append(self.snapshot.start)
            if self.snapshot.end:
                cols.append(self.snapshot.end)
            cols += [f.column for f in self.snapshot.end_if]
        if self.currency_column:
            cols.append(self.currency_column)
        return tuple(dict.fromkeys(cols))

    def summary(self) -> str:
        """One line in words, e.g. ``sum of opportunities.amount where is_won = true, by close_date``."""
        what = "count of" if self.agg == "count" else f"{self.agg.replace('_', ' ')} of"
        target = self.table if self.agg == "count" else f"{self.table}.{self.column or self.duration}"
        text = f"{what} {target}"
        if self.filters:
            text += " where " + " and ".join(map(str, self.filters))
        text += f", {self.snapshot} (as of period end)" if self.snapshot else f", by {self.time}"
        if self.money:
            text += ", in base currency"
        return text


@dataclass(frozen=True)
class DimensionPath:
    """How a fact table reaches a dimension: its own ``column`` (``via`` None, ``target == table``), or
    ``column`` of ``target`` joined on the fact table's foreign key ``via`` = ``target.<key>``."""

    table: str
    column: str
    via: str | None = None
    target: str | None = None
    target_key: str | None = None

    def __str__(self) -> str:
        return f"{self.target}.{self.column} via {self.via}" if self.via else self.column


@dataclass(frozen=True, kw_only=True)
class Dimension:
    name: str
    label: Text
    description: str = ""
    paths: Mapping[str, DimensionPath]
    enum: str | None = None  # a key of schema.ENUMS when the column(s) have one
    source: Source = field(default_factory=Source)

    @property
    def tables(self) -> tuple[str, ...]:
        return tuple(self.paths)

    @property
    def values(self) -> tuple[str, ...] | None:
        """The allowed values when the dimension is an enum (for filter bars)."""
        return ENUMS[self.enum] if self.enum else None


@dataclass(frozen=True)
class Format:
    style: str
    decimals: int


@dataclass(frozen=True)
class Window:
    """Cumulative window: ``to_date`` of a grain (year-to-date), or the last ``rolling`` ``grain`` s
    ending with the current period (trailing 12 months: ``rolling: 12, grain: month``)."""

    to_date: str | None = None
    rolling: int | None = None
    grain: str | None = None

    def __str__(self) -> str:
        if self.to_date:
            return f"{self.to_date} to date"
        return f"last {self.rolling} {self.grain}{'s' if self.rolling != 1 else ''}"


@dataclass(frozen=True, kw_only=True)
class Kpi:
    """What every KPI has. ``dimensions`` is the resolved list the engine may group and filter by."""

    type: ClassVar[str] = ""
    measure_keys: ClassVar[tuple[str, ...]] = ()  # fields naming measures

    name: str
    label: Text
    description: Text
    area: str
    unit: str
    format: Format
    direction: str
    dimensions: tuple[str, ...] = ()
    formula: Text | None = None
    range: tuple[float, float] | None = None
    source: Source = field(default_factory=Source)

    @property
    def measure_names(self) -> tuple[str, ...]:
        """Measures this KPI reads directly (not through other KPIs)."""
        return tuple(getattr(self, k) for k in self.measure_keys)

    @property
    def kpi_refs(self) -> tuple[str, ...]:
        """KPIs this KPI reads directly (derived KPIs only)."""
        return ()


@dataclass(frozen=True, kw_only=True)
class SimpleKpi(Kpi):
    """The value of one measure."""

    type: ClassVar[str] = "simple"
    measure_keys: ClassVar[tuple[str, ...]] = ("measure",)
    measure: str


@dataclass(frozen=True, kw_only=True)
class RatioKpi(Kpi):
    """numerator / denominator, each aggregated per group and period first (a ratio of sums, never a
    mean of ratios); null when the denominator is 0."""

    type: ClassVar[str] = "ratio"
    measure_keys: ClassVar[tuple[str, ...]] = ("numerator", "denominator")
    numerator: str
    denominator: str


@dataclass(frozen=True, kw_only=True)
class DerivedKpi(Kpi):
    """An arithmetic expression over other KPIs (``revenue / won_deals``)."""

    type: ClassVar[str] = "derived"
    expr: str
    refs: tuple[str, ...] = ()

    @property
    def kpi_refs(self) -> tuple[str, ...]:
        return self.refs

    def evaluate(self, values: Mapping[str, Any], divide: Callable[[Any, Any], Any] | None = None) -> Any:
        """Evaluate :attr:`expr` with ``values[name]`` for each KPI name.

        Values may be numbers, narwhals or polars expressions or series: only ``+ - * /`` and unary minus
        are applied. ``divide(a, b)`` replaces ``a / b`` (the engine passes one that gives null for
        ``b == 0``).
        """
        return evaluate(self.expr, values, divide)


@dataclass(frozen=True, kw_only=True)
class CumulativeKpi(Kpi):
    """The measure aggregated over a window ending at each period's end (revenue year to date)."""

    type: ClassVar[str] = "cumulative"
    measure_keys: ClassVar[tuple[str, ...]] = ("measure",)
    measure: str
    window: Window


@dataclass(frozen=True, kw_only=True)
class ConversionKpi(Kpi):
    """Share of ``base`` entities (distinct ``entity`` values in the period, by the base measure's time)
    with a ``converted`` row for the same entity within ``window_days`` after the base row's time
    (0 <= converted time - base time <= window_days). ``calculation: conversions`` gives the count."""

    type: ClassVar[str] = "conversion"
    measure_keys: ClassVar[tuple[str, ...]] = ("base", "converted")
    base: str
    converted: str
    entity: str
    window_days: int
    calculation: str = "conversion_rate"


@dataclass(frozen=True, kw_only=True)
class ExternalKpi(Kpi):
    """Declared here (name, labels, unit, direction, dimensions: what targets and reports need) but
    computed by Python code: ``provider`` is ``"module:function"``, imported by the engine when the
    KPI is evaluated. ``table`` is the fact table its dimensions resolve on; ``extra_tables`` are the
    other tables it reads."""

    type: ClassVar[str] = "external"
    provider: str
    table: str
    extra_tables: tuple[str, ...] = ()


KPI_CLASSES: Mapping[str, type[Kpi]] = {
    c.type: c for c in (SimpleKpi, RatioKpi, DerivedKpi, CumulativeKpi, ConversionKpi, ExternalKpi)
}
