"""Schema and integrity checks that report every problem at once.

The checks are small rule objects (:data:`RULES`) run together over a frame; each returns findings, and
every finding becomes one :class:`~crmlib.errors.Problem` per file, naming the file, table, column, the
first 5 row numbers (1-based data rows, header not counted), how many rows, the first 3 distinct bad
values and what to do. Everything is vectorised polars: no Python loop over rows.

Checks (``Problem.check``):

=====================  =========  ====================================================================
check                  severity   what
=====================  =========  ====================================================================
``missing_column``     error      a required column is absent (a near-miss column name is suggested)
``unknown_column``     warning    a column that is not canonical; it is ignored (near misses suggested)
``header_only``        error      the frame has no rows
``wrong_type``         error      text in a numeric column, a boolean that is not yes/no/true/false/1/0
``bad_date``           error      a date or datetime that does not parse (the expected format is named)
``missing_value``      error      an empty value in a required column
``unknown_value``      error      a value outside the column's enum (nearest canonical value suggested)
``negative_value``     error      a negative value in a ``non_negative`` column
``out_of_range``       error      a probability above 1 (100 %)
``duplicate_key``      error      a primary key seen twice in the batch (rows already in the warehouse
                                  are not an error: an import replaces them)
``date_order``         error      an end before its start (``Table.ordered``: close date before creation)
``orphan_key``         see below  a foreign key value not found in the referenced table
``bad_currency``       error      a currency that is not a 3-letter code
``missing_fx_rate``    error      money in a currency other than the base currency with no ``fx_rates``
                                  row for that currency (any date)
=====================  =========  ====================================================================

Foreign keys are checked against the batch itself (self references such as ``users.manager_id``) and the
``reference`` source (the warehouse an import goes into). Policy for ``orphan_key``:

* the referenced table has rows: an orphan is an **error** -- except, during an import, a reference to a
  table that comes later in :data:`crmlib.schema.LOAD_ORDER` (``leads.converted_opportunity_id``, the one
  cycle of the model), which is a **warning**: import that table next and run ``crmlib data validate``;
* the referenced table is empty: for a required column (``opportunities.account_id``) every value is an
  orphan and that is an **error** ("import accounts first"); for an optional one (``campaign_id``) it is a
  **warning**, since the link cannot be checked yet.

Without a ``reference`` (:func:`validate_frame` on a lone file), foreign keys to other tables and fx rates
are not checked. :func:`validate_source` checks a whole source, every table against the others.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import polars as pl

from . import config, schema
from .errors import ImportDataError, Problem, ValidationError, suggest

if TYPE_CHECKING:
    from .sources import Crm

__all__ = [
    "RULES",
    "Options",
    "Reference",
    "check_columns",
    "check_frame",
    "raise_if_errors",
    "validate_frame",
    "validate_source",
]

ROW = "__row"
FILE = "__file"
RAW = "__raw__"

TRUE_WORDS = ("true", "t", "yes", "y", "1", "1.0", "是", "真", "对")
FALSE_WORDS = ("false", "f", "no", "n", "0", "0.0", "否", "假", "错")
NULL_WORDS = ("", "null", "none", "nan", "n/a", "na", "#n/a", "-")  # for non-text columns
DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%Y.%m.%d", "%Y年%m月%d日")
DATETIME_FORMATS = (
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
)
# Formats tried on bad dates only, to say which format the file seems to use.
GUESS_FORMATS = (
    "%d/%m/%Y", "%m/%d/%Y", "%d.%m.%Y", "%d-%m-%Y", "%m-%d-%Y", "%d/%m/%y", "%m/%d/%y",
    "%d/%m/%Y %H:%M", "%m/%d/%Y %H:%M", "%d/%m/%Y %H:%M:%S", "%m/%d/%Y %H:%M:%S", "%m/%d/%Y %I:%M %p",
    "%d.%m.%Y %H:%M", "%Y%m%d", "%d %b %Y", "%b %d, %Y", "%d-%b-%Y",
)
SAMPLE = 3
FIRST_ROWS = 5


# ------------------------------------------------------------------------------------------------
# Options and references
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Options:
    """How text values are read, and what the caller already knows (the importer fills these)."""

    date_formats: Mapping[str, str] = field(default_factory=dict)  # column -> strptime format, tried first
    decimal: str = "."  # "," for 1.234,50
    booleans: Mapping[str, Mapping[str, bool]] = field(default_factory=dict)  # column -> {value: bool}
    column_hints: Mapping[str, str] = field(default_factory=dict)  # extra hint for a missing column
    derived: frozenset[str] = frozenset()  # filled by the importer from other columns: no missing_value
    absent_in: Mapping[str, frozenset] = field(default_factory=dict)  # column -> files lacking it
    forward_refs_are_warnings: bool = True  # see the module doc (import: True; whole source: False)


class Reference:
    """What a batch is checked against: keys and fx currencies of a source (``None``: an empty one)."""

    def __init__(self, crm: Crm | None = None) -> None:
        self.crm = crm
        self._keys: dict[tuple[str, str], pl.Series] = {}

    def keys(self, table: str, column: str) -> pl.Series:
        if (table, column) not in self._keys:
            dtype = schema.table(table).column(column).polars_dtype
            if self.crm is None:
                keys = pl.Series(column, [], dtype=dtype)
            else:
                keys = self.crm.table(table).select(pl.col(column).drop_nulls().unique()).collect().to_series()
            self._keys[(table, column)] = keys
        return self._keys[(table, column)]

    def fx_currencies(self) -> pl.Series:
        return self.keys("fx_rates", "currency")


# ------------------------------------------------------------------------------------------------
# The batch the rules look at
# ------------------------------------------------------------------------------------------------
@dataclass
class Batch:
    table: schema.Table
    frame: pl.DataFrame  # typed canonical columns, ROW, FILE, RAW<col> for columns parsed from text
    reference: Reference | None
    options: Options
    parsed: frozenset[str]  # columns that were parsed from text (have a RAW twin)
    absent: frozenset[str] = frozenset()  # columns the input lacks altogether (reported as missing_column)

    def empty(self, column: str) -> pl.Expr:
        """True where the input had no value (not where a value failed to parse)."""
        return (pl.col(RAW + column) if column in self.parsed else pl.col(column)).is_null()

    def shown(self, column: str) -> pl.Expr:
        """The value as the file wrote it (for samples)."""
        return pl.col(RAW + column) if column in self.parsed else pl.col(column)

    def absent_files(self, column: str) -> frozenset:
        return self.options.absent_in.get(column, frozenset())


@dataclass
class Finding:
    """Rows that fail one check on one column; becomes one Problem per file."""

    check: str
    column: str | None
    mask: pl.Expr
    message: str | Callable[[tuple[str, ...]], str]
    hint: str | Callable[[tuple[str, ...]], str]
    values: pl.Expr | None = None
    severity: str = "error"


# ------------------------------------------------------------------------------------------------
# Parsing text into canonical types
# ------------------------------------------------------------------------------------------------
def _text(c: str, *, nulls: bool) -> pl.Expr:
    s = pl.col(c).str.strip_chars()
    empty = s.str.to_lowercase().is_in(list(NULL_WORDS)) if nulls else (s == "")
    return pl.when(empty).then(None).otherwise(s)


def _number(s: pl.Expr, decimal: str) -> pl.Expr:
    t = s.str.replace(r"^[$€£¥￥]", "").str.replace_all(r"[\s\u00a0]", "")
    if decimal == ",":
        t = t.str.replace_all(".", "", literal=True).str.replace(",", ".", literal=True)
    else:
        t = pl.when(t.str.contains(r"^[+-]?\d{1,3}(,\d{3})+(\.\d*)?$")).then(t.str.replace_all(",", "")).otherwise(t)
    return t.cast(pl.Float64, strict=False)


def _date(s: pl.Expr, fmt: str | None, target: str) -> pl.Expr:
    tries: list[pl.Expr] = []
    formats = ([fmt] if fmt else []) + list(DATE_FORMATS) + list(DATETIME_FORMATS)
    for f in dict.fromkeys(formats):
        has_time = any(x in f for x in ("%H", "%I", "%M", "%S"))
        if has_time:
            parsed = s.str.strptime(pl.Datetime("us"), f, strict=False)
            tries.append(parsed.dt.date() if target == "date" else parsed)
        else:
            parsed = s.str.strptime(pl.Date, f, strict=False)
            tries.append(parsed if target == "date" else parsed.cast(pl.Datetime("us")))
    return pl.coalesce(tries)


def _parse(col: schema.Column, have: pl.DataType, options: Options) -> tuple[pl.Expr, pl.Expr | None]:
    """(typed expression, cleaned text expression or None when the input is not text)."""
    c, target = col.name, col.polars_dtype
    if have == target and col.dtype == "str":
        return _text(c, nulls=False), None  # surrounding spaces go; an empty text is no value
    if have == target:
        return pl.col(c), None
    if have != pl.String:
        if col.dtype == "str":
            return pl.col(c).cast(pl.String), None
        if col.dtype in {"int", "float"} and (have.is_numeric() or have == pl.Boolean):
            return pl.col(c).cast(target, strict=False), None
        if col.dtype == "bool" and have.is_numeric():
            return (pl.col(c) != 0), None
        if col.dtype == "date" and isinstance(have, pl.Datetime):
            return pl.col(c).dt.date(), None
        if col.dtype == "datetime" and isinstance(have, pl.Datetime):
            return pl.col(c).dt.replace_time_zone(None).cast(target), None
        if col.dtype == "datetime" and have == pl.Date:
            return pl.col(c).cast(target), None
        text = pl.col(c).cast(pl.String)
    else:
        text = pl.col(c)
    s = _text(c, nulls=col.dtype != "str").alias(c) if have == pl.String else text.str.strip_chars()
    if col.dtype == "str":
        return s, None
    if col.dtype == "float":
        return _number(s, options.decimal), s
    if col.dtype == "int":
        n = _number(s, options.decimal)
        return pl.when(n == n.round(0)).then(n).cast(pl.Int64, strict=False), s
    if col.dtype == "bool":
        low = s.str.to_lowercase()
        extra = options.booleans.get(c, {})
        yes = list(TRUE_WORDS) + [k.lower() for k, v in extra.items() if v]
        no = list(FALSE_WORDS) + [k.lower() for k, v in extra.items() if not v]
        return pl.when(low.is_in(yes)).then(True).when(low.is_in(no)).then(False).otherwise(None), s
    return _date(s, options.date_formats.get(c), col.dtype), s


def _guess_format(values: Iterable[str]) -> list[str]:
    """Formats (of :data:`GUESS_FORMATS`) under which every given value parses."""
    series = pl.Series([v for v in values if v is not None], dtype=pl.String)
    if series.is_empty():
        return []
    fits = []
    for f in GUESS_FORMATS:
        dtype = pl.Datetime("us") if "%H" in f or "%I" in f else pl.Date
        if series.str.strptime(dtype, f, strict=False).null_count() == 0:
            fits.append(f)
    return fits


# ------------------------------------------------------------------------------------------------
# Column-level checks
# ------------------------------------------------------------------------------------------------
def _norm(name: str) -> str:
    return re.sub(r"[\s\-./]+", "_", name.strip().lower())


def _near(name: str, choices: Iterable[str]) -> str | None:
    """The choice closest to ``name`` (compared case- and separator-insensitively), if any."""
    by_norm = {_norm(c): c for c in choices}
    hit = suggest(_norm(name), by_norm)
    if not hit:
        return None
    return by_norm[hit.split('"')[1]]


def check_columns(
    columns: Iterable[str], table: str, file: str | None = None, options: Options | None = None
) -> list[Problem]:
    """Missing required columns (errors) and unknown columns (warnings), with near-miss suggestions."""
    options = options or Options()
    t = schema.table(table)
    have = [c for c in columns if not c.startswith("__")]
    unknown = [c for c in have if c not in t.column_names]
    problems = []
    for col in t.required_columns:
        if col in have or col in options.derived:
            continue
        near = _near(col, unknown)
        message = f"required column {col} is missing"
        if near:
            message += f' (the file has a column "{near}": is that it?)'
        hint = options.column_hints.get(col) or (
            f"Add a column {col} to the file, or map the file's column to it with a mapping file "
            f'(columns: {{"{near or "Your column"}": {col}}}).'
        )
        problems.append(Problem("missing_column", table, message, hint, column=col, file=file))
    absent = [c for c in t.column_names if c not in have]
    plain = []
    for col in unknown:
        near = _near(col, absent)
        if near:
            problems.append(
                Problem(
                    "unknown_column",
                    table,
                    f"{col!r} is not a column of {table} and is ignored (did you mean \"{near}\"?)",
                    f'Rename it to {near}, or map it with a mapping file (columns: {{"{col}": {near}}}).',
                    column=col,
                    file=file,
                    severity="warning",
                )
            )
        else:
            plain.append(col)
    if plain:
        shown = ", ".join(repr(c) for c in plain[:8]) + (f" and {len(plain) - 8} more" if len(plain) > 8 else "")
        problems.append(
            Problem(
                "unknown_column",
                table,
                f"{len(plain)} column(s) are not columns of {table} and are ignored: {shown}",
                "Map them with a mapping file if they hold canonical data (columns: {source: canonical}), or list "
                "them under `ignore:` to silence this.",
                file=file,
                severity="warning",
            )
        )
    return problems


# ------------------------------------------------------------------------------------------------
# Rules
# ------------------------------------------------------------------------------------------------
def _typed_findings(batch: Batch) -> Iterable[Finding]:
    for col in batch.table.columns:
        c = col.name
        if c not in batch.parsed or col.dtype == "str":
            continue
        bad = pl.col(RAW + c).is_not_null() & pl.col(c).is_null()
        if col.dtype in {"date", "datetime"}:
            fmt = batch.options.date_formats.get(c)
            expected = f'"{fmt}" (from the mapping) or ' if fmt else ""
            expected += "ISO 8601 (2024-03-31" + (" or 2024-03-31 14:05:00)" if col.dtype == "datetime" else ")")

            def hint(sample: tuple[str, ...], c=c, expected=expected) -> str:
                fits = _guess_format(sample)
                text = f"Expected {expected}."
                if len(fits) == 1:
                    text += f' These values look like "{fits[0]}": declare it in the mapping file (dates: {{{c}: "{fits[0]}"}}).'
                elif fits:
                    text += (f" These values could be {' or '.join(repr(f) for f in fits[:3])}: declare the right one in "
                             f"the mapping file (dates: {{{c}: \"...\"}}).")
                else:
                    text += f' Correct them, or declare the file\'s format in the mapping file (dates: {{{c}: "%d/%m/%Y"}}).'
                return text

            yield Finding("bad_date", c, bad, f"values that are not valid {col.dtype}s", hint, pl.col(RAW + c))
        elif col.dtype == "bool":
            yield Finding("wrong_type", c, bad, "values that are not booleans",
                          "Use true/false, yes/no or 1/0, or declare the file's words in the mapping file "
                          f"(booleans: {{{c}: {{true: [Won], false: [Lost]}}}}).", pl.col(RAW + c))
        else:
            kind = "whole numbers" if col.dtype == "int" else "numbers"

            def hint(sample: tuple[str, ...], c=c, kind=kind) -> str:
                text = f"{c} must hold {kind}: correct the values or leave them empty."
                if any(re.fullmatch(r"[+-]?\d{1,3}(\.\d{3})*,\d+|[+-]?\d+,\d+", s or "") for s in sample):
                    text += ' They look like decimal commas: add `decimal: ","` to the mapping file.'
                return text

            yield Finding("wrong_type", c, bad, f"values that are not {kind}", hint, pl.col(RAW + c))


def _missing_findings(batch: Batch) -> Iterable[Finding]:
    for col in batch.table.columns:
        if col.nullable or col.name in batch.options.derived or col.name in batch.absent:
            continue
        mask = batch.empty(col.name)
        absent = batch.absent_files(col.name)
        if absent:
            mask = mask & ~pl.col(FILE).is_in(list(absent))
        yield Finding(
            "missing_value", col.name, mask, "required values are empty",
            f"Fill in {col.name} on those rows, or give a default in the mapping file (defaults: {{{col.name}: ...}}).",
        )


def _enum_findings(batch: Batch) -> Iterable[Finding]:
    for col in batch.table.columns:
        if not col.enum:
            continue
        allowed = schema.ENUMS[col.enum]
        mask = pl.col(col.name).is_not_null() & ~pl.col(col.name).is_in(list(allowed))

        def message(sample: tuple[str, ...], col=col, allowed=allowed) -> str:
            bits = []
            for v in sample:
                near = _near(v, allowed)
                bits.append(f"{v!r} (did you mean {near!r}?)" if near else repr(v))
            return f"values that are not {col.enum} values: {', '.join(bits)}"

        def hint(sample: tuple[str, ...], col=col, allowed=allowed) -> str:
            v = sample[0] if sample else "Their value"
            target = _near(v, allowed) or allowed[0]
            return (f"Allowed: {', '.join(allowed)}. Correct the file, or map the values in the mapping file "
                    f'(values: {{{col.name}: {{"{v}": {target}}}}}).')

        yield Finding("unknown_value", col.name, mask, message, hint, pl.col(col.name))


def _range_findings(batch: Batch) -> Iterable[Finding]:
    for col in batch.table.columns:
        if col.non_negative:
            yield Finding(
                "negative_value", col.name, pl.col(col.name) < 0, "negative values",
                f"{col.name} must be zero or more: correct those values, or leave the rows out "
                "(credits and refunds are not imported as negative amounts).",
                batch.shown(col.name),
            )
        if col.name == "probability":
            yield Finding(
                "out_of_range", col.name, pl.col(col.name) > 1, "probabilities above 1 (100 %)",
                "Give probabilities as fractions 0..1 or as percentages 0..100 (with a % sign, or declared in the "
                "mapping file: percent: [probability]).",
                batch.shown(col.name),
            )


def _key_findings(batch: Batch) -> Iterable[Finding]:
    pk = list(batch.table.primary_key)
    complete = pl.all_horizontal([pl.col(k).is_not_null() for k in pk])
    values = pl.col(pk[0]).cast(pl.String) if len(pk) == 1 else pl.concat_str(
        [pl.col(k).cast(pl.String) for k in pk], separator=" | ")
    yield Finding(
        "duplicate_key", pk[0] if len(pk) == 1 else ", ".join(pk),
        complete & pl.struct(pk).is_duplicated(), "the same key appears on several rows",
        f"Each {' + '.join(pk)} must appear once in an import: remove the duplicates (when two files overlap, "
        "import them one after the other: an import replaces the rows it finds by key).",
        values,
    )


def _order_findings(batch: Batch) -> Iterable[Finding]:
    for start, end in batch.table.ordered:
        types = {batch.table.column(start).dtype, batch.table.column(end).dtype}
        a, b = pl.col(start), pl.col(end)
        if "date" in types:
            a, b = a.cast(pl.Date), b.cast(pl.Date)
        yield Finding(
            "date_order", end, b < a, f"{end} is before {start}",
            f"{end} must be on or after {start}: correct the dates (check day/month order and years).",
            pl.concat_str([b.cast(pl.String), pl.lit(" < "), a.cast(pl.String)]),
        )


def _foreign_key_findings(batch: Batch) -> Iterable[Finding]:
    t = batch.table
    order = schema.LOAD_ORDER
    for column, ref_table, ref_column in t.foreign_keys:
        if batch.reference is None and ref_table != t.name:
            continue
        parts = []
        if batch.reference is not None:
            parts.append(batch.reference.keys(ref_table, ref_column))
        if ref_table == t.name:
            parts.append(batch.frame.get_column(ref_column).drop_nulls())
        known = pl.concat([p.rename("key").cast(pl.String) for p in parts]).unique()
        has_rows = known.len() > 0
        required = not t.column(column).nullable
        forward = order.index(ref_table) > order.index(t.name)
        mask = pl.col(column).is_not_null() & ~pl.col(column).is_in(known.implode())
        if has_rows:
            severity = "warning" if forward and batch.options.forward_refs_are_warnings else "error"
            message = f"values not found in {ref_table}.{ref_column}"
            hint = (f"Import the missing {ref_table} first, or correct the values (is the column holding "
                    f"{ref_column}s, not names?)." + (" They are checked again by `crmlib data validate`."
                                                      if severity == "warning" else ""))
        else:
            severity = "error" if required else "warning"
            message = f"values cannot be found: table {ref_table} is empty"
            hint = f"Import {ref_table} first" + ("." if required else f"; until then {column} is not checked.")
        yield Finding("orphan_key", column, mask, message, hint, pl.col(column), severity)


def _currency_findings(batch: Batch) -> Iterable[Finding]:
    t = batch.table
    base = config.base_currency()
    seen = set()
    for money in t.money_columns:
        cur = money.currency
        if cur in seen:
            continue
        seen.add(cur)
        yield Finding(
            "bad_currency", cur, pl.col(cur).is_not_null() & ~pl.col(cur).str.contains(r"^[A-Z]{3}$"),
            "values that are not 3-letter currency codes",
            "Use ISO 4217 codes such as CNY, USD, EUR (a mapping file can map the file's values: "
            f"values: {{{cur}: {{RMB: CNY}}}}).",
            pl.col(cur),
        )
        if batch.reference is None:
            continue
        rates = batch.reference.fx_currencies()
        money_cols = [m.name for m in t.money_columns if m.currency == cur]
        mask = (
            pl.any_horizontal([~batch.empty(m) for m in money_cols])
            & (pl.col(cur) != base)
            & ~pl.col(cur).is_in(rates.implode())
            & pl.col(cur).str.contains(r"^[A-Z]{3}$")
        )

        def hint(sample: tuple[str, ...], base=base) -> str:
            which = ", ".join(sample) or "them"
            return (f"Amounts in {which} cannot be converted to the base currency {base} and would be added to "
                    f"{base} amounts: import fx_rates rows for {which} (date, currency, rate_to_base) first, or set "
                    f"CRMLIB_BASE_CURRENCY if {sample[0] if sample else 'it'} is your base currency.")

        yield Finding("missing_fx_rate", cur, mask, f"currencies other than the base currency {base} without an "
                      "exchange rate", hint, pl.col(cur))


#: The row rules, run together over a batch (each yields :class:`Finding` objects).
RULES: tuple[Callable[[Batch], Iterable[Finding]], ...] = (
    _typed_findings,
    _missing_findings,
    _enum_findings,
    _range_findings,
    _key_findings,
    _order_findings,
    _foreign_key_findings,
    _currency_findings,
)


# ------------------------------------------------------------------------------------------------
# The engine
# ------------------------------------------------------------------------------------------------
def _prepare(df: pl.DataFrame, table: str, file: str | None, options: Options) -> tuple[pl.DataFrame, frozenset]:
    t = schema.table(table)
    if ROW not in df.columns:
        df = df.with_row_index(ROW, offset=1).with_columns(pl.col(ROW).cast(pl.Int64))
    if FILE not in df.columns:
        df = df.with_columns(pl.lit(file, dtype=pl.String).alias(FILE))
    exprs, parsed = [], set()
    for col in t.columns:
        if col.name in df.columns:
            typed, text = _parse(col, df.schema[col.name], options)
            exprs.append(typed.cast(col.polars_dtype).alias(col.name))
            if text is not None:
                exprs.append(text.alias(RAW + col.name))
                parsed.add(col.name)
        else:
            exprs.append(pl.lit(None, col.polars_dtype).alias(col.name))
    frame = df.select(pl.col(ROW), pl.col(FILE).cast(pl.String), *exprs)
    return frame, frozenset(parsed)


def _materialise(batch: Batch, findings: list[Finding]) -> list[Problem]:
    if not findings:
        return []
    frame = batch.frame
    masks = frame.select([f.mask.fill_null(False).alias(f"m{i}") for i, f in enumerate(findings)])
    counts = masks.select(pl.all().sum()).row(0)
    problems = []
    for i, (finding, n) in enumerate(zip(findings, counts, strict=True)):
        if not n:
            continue
        values = (finding.values if finding.values is not None else pl.lit(None, pl.String)).cast(pl.String)
        hits = (
            frame.lazy()
            .with_columns(masks.get_column(f"m{i}").alias("__hit"), values.alias("__value"))
            .filter(pl.col("__hit"))
            .group_by(FILE, maintain_order=True)
            .agg(
                pl.col(ROW).head(FIRST_ROWS).alias("rows"),
                pl.len().alias("n"),
                pl.col("__value").drop_nulls().unique(maintain_order=True).head(SAMPLE).alias("sample"),
            )
            .collect()
        )
        for file, rows, count, sample in hits.iter_rows():
            sample = tuple(sample)
            message = finding.message(sample) if callable(finding.message) else finding.message
            hint = finding.hint(sample) if callable(finding.hint) else finding.hint
            problems.append(
                Problem(finding.check, batch.table.name, message, hint, column=finding.column, rows=tuple(rows),
                        n_rows=count, sample=sample, file=file, severity=finding.severity)
            )
    return problems


def check_frame(
    df: pl.DataFrame,
    table: str,
    file: str | None = None,
    reference: Reference | None = None,
    options: Options | None = None,
    *,
    columns: bool = True,
) -> tuple[pl.DataFrame, list[Problem]]:
    """Parse and check a frame; returns (canonical typed frame, problems).

    ``df`` may carry ``__row`` (1-based row numbers as in the file) and ``__file`` columns (the importer
    sets them; a batch may span several files). ``columns=False`` skips the column-level checks (done per
    file by the caller). The typed frame has the canonical columns only; values that did not parse are null.
    """
    options = options or Options()
    t = schema.table(table)
    problems = check_columns(df.columns, table, file, options) if columns else []
    if df.height == 0:
        problems.append(Problem("header_only", table, "there are no rows", "Give a file with data rows.", file=file))
        return schema.empty_frame(table), problems
    frame, parsed = _prepare(df, table, file, options)
    absent = frozenset(c for c in t.column_names if c not in df.columns)
    batch = Batch(t, frame, reference, options, parsed, absent)
    findings = [f for rule in RULES for f in rule(batch)]
    problems += _materialise(batch, findings)
    return frame.select(t.column_names), problems


def validate_frame(
    df: pl.DataFrame,
    table: str,
    file: str | None = None,
    reference: Crm | None = None,
    *,
    options: Options | None = None,
) -> list[Problem]:
    """Every problem of a frame meant for canonical ``table`` (text or typed columns).

    With ``reference`` (an open source, e.g. the warehouse), foreign keys and fx rates are checked against
    it; keys already in it are not duplicates (an import replaces them).
    """
    ref = Reference(reference) if reference is not None else None
    return check_frame(df, table, file, ref, options)[1]


def validate_source(crm: Crm) -> list[Problem]:
    """Check a whole source: every table (types, required values, enums, keys, dates), foreign keys across
    tables and currencies against its own ``fx_rates``. For a folder of CSV files the files are read as
    text, so values that do not parse are reported; row numbers are data rows of the file or of the table
    as scanned."""
    from .sources.files import load_file

    ref = Reference(crm)
    options = Options(forward_refs_are_warnings=False)
    problems: list[Problem] = []
    for name in schema.LOAD_ORDER:
        file = None
        df = None
        if crm.kind == "files":
            from pathlib import Path

            folder = Path(crm.resolved.location)
            csv_path, parquet_path = folder / f"{name}.csv", folder / f"{name}.parquet"
            if csv_path.exists() and not parquet_path.exists():
                file = str(csv_path)
                try:
                    data = load_file(csv_path)
                    df = data.frame.with_columns(data.rows.alias(ROW))
                except ImportDataError as exc:
                    if "[header_only]" in str(exc):
                        continue
                    problems.append(Problem("unreadable_file", name, str(exc), "", file=file))
                    continue
            elif parquet_path.exists():
                file = str(parquet_path)
        if df is None:
            df = crm.collect(name)
            if df.height == 0:
                continue
        problems += check_frame(df, name, file, ref, options, columns=file is not None)[1]
    return problems


def raise_if_errors(problems: list[Problem], context: str = "validation") -> list[Problem]:
    """Raise :class:`~crmlib.errors.ValidationError` listing every problem when any is an error;
    otherwise return the (warning) problems."""
    if any(p.severity == "error" for p in problems):
        raise ValidationError(problems=list(problems), context=context)
    return list(problems)
