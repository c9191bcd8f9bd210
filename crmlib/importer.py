"""Import users' files (CSV, Excel, Parquet) into the warehouse: read, map, validate, then upsert.

``import_files(paths, table, mapping=None, preset=None, into=None)`` reads every file
(:mod:`crmlib.sources.files`), applies a mapping (a YAML file and/or a preset), validates the whole batch
(:mod:`crmlib.validate`) against the warehouse it goes into (opened read-only, for foreign keys and fx
rates) and, only when there is no error, writes it: a new warehouse is created atomically with the rows,
an existing one gets an ``INSERT OR REPLACE`` by primary key in one transaction. Re-importing the same
rows replaces them (never duplicates). A failed import leaves the warehouse byte-for-byte as it was, and
creates none when there was none.

Mapping file
============
A YAML document; every key is optional. Unknown keys are rejected (with a suggestion). Plain values are
read as text (``01`` stays ``"01"``, ``Yes`` stays ``"Yes"``); only ``true``/``false``/``null`` are special.

.. code-block:: yaml

    table: opportunities            # the canonical table; must match --table when both are given
    columns:                        # file column -> canonical column (header names are matched ignoring
      Opportunity ID: opportunity_id  #   case and spaces). Several file columns may map to one canonical
      Owner ID: owner_id            #   column: the first one present and non-empty wins, per row.
      Opportunity Owner: owner_id   # Columns named like a canonical column ("Close Date") need no entry.
    ignore: [Fiscal Period, Age]    # file columns to drop silently (others that are not canonical warn)
    values:                         # canonical column -> {file value: canonical value} (matched ignoring
      stage:                        #   case and surrounding spaces); unlisted values pass unchanged, and
        Closed Won: closed_won      #   enum values that only differ in case/spaces ("Closed Won",
        Id. Decision Makers: proposal  #   "Best Case") are recognised without an entry
    dates:                          # canonical column -> strptime format, tried before ISO 8601
      close_date: "%d/%m/%Y"
    currency: USD                   # currency of money columns when the file has none (or a blank)
    defaults:                       # canonical column -> value for a missing column or an empty value
      type: new
    booleans:                       # canonical bool column -> extra words for true and false
      is_won: {true: [Won], false: [Lost, Open]}
    percent: [probability]          # columns given in percent (0..100) -> divided by 100
    split: {account_id: ";"}        # keep the first of several values ("123;456" -> "123")
    decimal: ","                    # decimal comma in numbers ("1.234,50"); default "."
    encoding: gb18030               # force the file encoding (default: detected)
    delimiter: ";"                  # force the CSV delimiter (default: sniffed among , ; tab |)
    sheet: Deals                    # Excel sheet (default: the first)
    description: free text          # for people; ignored

What is derived when absent (a missing column or an empty value):

* ``is_closed`` and ``is_won`` from ``stage`` (``closed_won``/``closed_lost``);
* ``probability`` from :data:`crmlib.schema.DEFAULT_STAGE_PROBABILITY` by stage;
* ``probability`` written as a percentage -- a ``%`` sign, a column listed under ``percent``, or values
  above 1 and none strictly between 0 and 1 (``10, 20, 100``) -- is divided by 100;
* currency codes are upper-cased.

Presets (``preset="salesforce"``, ``"hubspot"``) are mapping files shipped in ``crmlib/presets``; with both a
preset and a mapping, the mapping's entries are laid over the preset's.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import polars as pl
import yaml

from . import config, schema
from .errors import ConfigError, ImportDataError, MappingError, Problem, SourceError, suggest
from .sources import files as files_mod
from .validate import FILE, ROW, Options, Reference, check_columns, check_frame, raise_if_errors

__all__ = ["ImportReport", "Mapping", "import_files", "list_presets", "load_mapping", "load_preset"]

MAPPING_KEYS = (
    "table", "description", "columns", "ignore", "values", "dates", "currency", "defaults", "booleans",
    "percent", "split", "decimal", "encoding", "delimiter", "sheet",
)


# ------------------------------------------------------------------------------------------------
# Mapping files
# ------------------------------------------------------------------------------------------------
class _TextLoader(yaml.SafeLoader):
    """YAML where plain scalars stay text, except true/false/null (no 01 -> 1, no Yes -> True)."""


_TextLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag in ("tag:yaml.org,2002:null", "tag:yaml.org,2002:merge")]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_TextLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


@dataclass(frozen=True)
class Mapping:
    """A parsed mapping file or preset (see the module doc for the format)."""

    source: str = "(none)"
    table: str | None = None
    columns: dict[str, list[str]] = field(default_factory=dict)  # canonical -> file columns, in order
    ignore: tuple[str, ...] = ()
    values: dict[str, dict[str, str]] = field(default_factory=dict)
    dates: dict[str, str] = field(default_factory=dict)
    currency: str | None = None
    defaults: dict[str, str] = field(default_factory=dict)
    booleans: dict[str, dict[str, bool]] = field(default_factory=dict)
    percent: tuple[str, ...] = ()
    split: dict[str, str] = field(default_factory=dict)
    decimal: str = "."
    encoding: str | None = None
    delimiter: str | None = None
    sheet: str | None = None

    def over(self, base: Mapping) -> Mapping:
        """This mapping laid over ``base`` (a preset): dict entries merged, this one's winning."""
        columns = {k: list(v) for k, v in base.columns.items()}
        for target, sources in self.columns.items():
            columns[target] = sources + [s for s in columns.get(target, []) if s not in sources]
        return Mapping(
            source=f"{self.source} over {base.source}",
            table=self.table or base.table,
            columns=columns,
            ignore=tuple(dict.fromkeys(base.ignore + self.ignore)),
            values={k: {**base.values.get(k, {}), **self.values.get(k, {})} for k in {**base.values, **self.values}},
            dates={**base.dates, **self.dates},
            currency=self.currency or base.currency,
            defaults={**base.defaults, **self.defaults},
            booleans={**base.booleans, **self.booleans},
            percent=tuple(dict.fromkeys(base.percent + self.percent)),
            split={**base.split, **self.split},
            decimal=self.decimal if self.decimal != "." else base.decimal,
            encoding=self.encoding or base.encoding,
            delimiter=self.delimiter or base.delimiter,
            sheet=self.sheet or base.sheet,
        )


def list_presets() -> tuple[str, ...]:
    folder = resources.files("crmlib") / "presets"
    return tuple(sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml")))


def load_preset(name: str, table: str | None = None) -> Mapping:
    """A shipped preset (``salesforce``, ``hubspot``) as a :class:`Mapping`."""
    names = list_presets()
    if name not in names:
        raise MappingError(
            f"There is no preset {name!r}.{suggest(name, names)} The presets are: {', '.join(names)}. "
            "Or write a mapping file (see `crmlib.importer` for the format) and pass it with --mapping."
        )
    text = (resources.files("crmlib") / "presets" / f"{name}.yaml").read_text(encoding="utf-8")
    return _parse_mapping(text, f"preset {name}", table)


def load_mapping(path: str | Path, table: str | None = None) -> Mapping:
    """Read and check a mapping file; raises :class:`MappingError` listing every problem."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise MappingError(f"Mapping file {p} does not exist. Check the path given to --mapping.")
    try:
        text = p.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise MappingError(f"Mapping file {p} is not UTF-8 text. Save it as UTF-8.") from None
    return _parse_mapping(text, f"mapping {p}", table)


def _parse_mapping(text: str, source: str, table: str | None) -> Mapping:
    try:
        doc = yaml.load(text, Loader=_TextLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise MappingError(f"[bad_yaml] {source}: not valid YAML{where} ({problem}). "
                           "Check the indentation and quote values holding ':' or '#'.") from None
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise MappingError(f"[bad_mapping] {source}: the file must be a YAML mapping of keys "
                           f"({', '.join(MAPPING_KEYS)}), not a {type(doc).__name__}.")
    errors: list[str] = []

    def bad(check: str, message: str, hint: str = "") -> None:
        stop = "" if message.endswith((".", "?", "!")) else "."
        errors.append(f"[{check}] {source}: {message}{stop}{(' ' + hint) if hint else ''}")

    for key in doc:
        if key not in MAPPING_KEYS:
            bad("unknown_key", f"unknown key {key!r}.{suggest(str(key), MAPPING_KEYS)}",
                f"Allowed keys: {', '.join(MAPPING_KEYS)}.")
    mtable = doc.get("table")
    if mtable is not None and mtable not in schema.TABLES:
        bad("unknown_table", f"table {mtable!r} is not a canonical table.{suggest(str(mtable), schema.TABLE_NAMES)}")
        mtable = None
    if table and mtable and mtable != table:
        bad("wrong_table", f"the mapping is for table {mtable} but the import is into {table}",
            "Use --table " + str(mtable) + " or another mapping file.")
    t = schema.table(table or mtable) if (table or mtable) else None

    def section(key: str, kind: type) -> Any:
        value = doc.get(key)
        if value is None:
            return kind()
        if not isinstance(value, kind):
            bad("bad_mapping", f"{key} must be a {'mapping' if kind is dict else 'list'}, not {value!r}")
            return kind()
        return value

    def canonical(key: str, column: str, dtypes: tuple[str, ...] | None = None) -> schema.Column | None:
        if t is None:
            return None
        if column not in t.column_names:
            bad("unknown_column", f"{key}: {column!r} is not a column of {t.name}.{suggest(str(column), t.column_names)}",
                f"Columns of {t.name}: {', '.join(t.column_names)}.")
            return None
        col = t.column(column)
        if dtypes and col.dtype not in dtypes:
            bad("bad_mapping", f"{key}: {column} is a {col.dtype} column, not {' or '.join(dtypes)}")
            return None
        return col

    def enum_value(what: str, col: schema.Column | None, value: str) -> None:
        if col is not None and col.enum and value not in schema.ENUMS[col.enum]:
            allowed = schema.ENUMS[col.enum]
            bad("unknown_value", f"{what}, which is not a {col.enum} value.{suggest(value, allowed)}",
                f"Allowed: {', '.join(allowed)}.")

    columns: dict[str, list[str]] = {}
    for src, target in section("columns", dict).items():
        if not isinstance(target, str):
            bad("bad_mapping", f"columns: {src!r} must map to one canonical column name, not {target!r}")
            continue
        canonical(f"columns.{src}", target)
        columns.setdefault(target, []).append(str(src))
    values: dict[str, dict[str, str]] = {}
    for column, pairs in section("values", dict).items():
        col = canonical("values", column)
        if not isinstance(pairs, dict):
            bad("bad_mapping", f"values.{column} must map file values to canonical values")
            continue
        for src, target in pairs.items():
            if target is None or isinstance(target, (dict, list)):
                bad("bad_mapping", f"values.{column}.{src} must be one value, not {target!r}")
                continue
            enum_value(f"values.{column} maps {_scalar(src)!r} to {_scalar(target)!r}", col, _scalar(target))
        values[column] = {_scalar(k): _scalar(v) for k, v in pairs.items() if v is not None}
    dates = {}
    for column, fmt in section("dates", dict).items():
        canonical("dates", column, ("date", "datetime"))
        if not isinstance(fmt, str) or "%" not in fmt:
            bad("bad_mapping", f"dates.{column} must be a strptime format such as \"%d/%m/%Y\", not {fmt!r}")
            continue
        dates[column] = fmt
    currency = doc.get("currency")
    if currency is not None and not re.fullmatch(r"[A-Za-z]{3}", str(currency)):
        bad("bad_currency", f"currency {currency!r} is not a 3-letter code", "Use e.g. CNY, USD, EUR.")
        currency = None
    defaults = {}
    for column, value in section("defaults", dict).items():
        col = canonical("defaults", column)
        if value is None or isinstance(value, (dict, list)):
            bad("bad_mapping", f"defaults.{column} must be one value, not {value!r}")
            continue
        enum_value(f"defaults.{column} is {_scalar(value)!r}", col, _scalar(value))
        defaults[column] = _scalar(value)
    booleans: dict[str, dict[str, bool]] = {}
    for column, words in section("booleans", dict).items():
        canonical("booleans", column, ("bool",))
        lookup = {}
        for truth, items in (words or {}).items() if isinstance(words, dict) else ():
            flag = {"true": True, "false": False}.get(str(truth).lower())
            if flag is None:
                bad("bad_mapping", f"booleans.{column} keys must be true and false, not {truth!r}")
                continue
            for item in items if isinstance(items, list) else [items]:
                lookup[_scalar(item)] = flag
        if not isinstance(words, dict):
            bad("bad_mapping", f"booleans.{column} must look like {{true: [Won], false: [Lost]}}")
        booleans[column] = lookup
    percent = []
    for column in section("percent", list):
        canonical("percent", str(column), ("float",))
        percent.append(str(column))
    split = {}
    for column, sep in section("split", dict).items():
        canonical("split", column)
        if not isinstance(sep, str) or not sep:
            bad("bad_mapping", f"split.{column} must be a separator such as \";\"")
            continue
        split[column] = sep
    decimal = str(doc.get("decimal") or ".")
    if decimal not in {".", ","}:
        bad("bad_mapping", f"decimal must be \".\" or \",\", not {decimal!r}")
        decimal = "."
    encoding = doc.get("encoding")
    if encoding is not None:
        try:
            codecs.lookup(str(encoding))
        except LookupError:
            bad("bad_mapping", f"encoding {encoding!r} is unknown", "Use e.g. utf-8, gb18030, gbk, cp1252.")
            encoding = None
    delimiter = doc.get("delimiter")
    if delimiter is not None and (not isinstance(delimiter, str) or len(delimiter) != 1):
        bad("bad_mapping", f"delimiter must be one character such as \";\", not {delimiter!r}")
        delimiter = None
    ignore = tuple(str(x) for x in section("ignore", list))
    if errors:
        raise MappingError(f"{source}: {len(errors)} problem{'s' if len(errors) != 1 else ''} found\n"
                           + "\n".join("  - " + e for e in errors))
    return Mapping(
        source=source, table=mtable, columns=columns, ignore=ignore, values=values, dates=dates,
        currency=str(currency).upper() if currency else None, defaults=defaults, booleans=booleans,
        percent=tuple(percent), split=split, decimal=decimal, encoding=encoding, delimiter=delimiter,
        sheet=None if doc.get("sheet") is None else str(doc.get("sheet")),
    )


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# ------------------------------------------------------------------------------------------------
# Applying a mapping
# ------------------------------------------------------------------------------------------------
def _key(name: str) -> str:
    return re.sub(r"[\s_\-./()%]+", " ", name).strip().casefold()


def _rename(frame: pl.DataFrame, mapping: Mapping, table: schema.Table) -> tuple[pl.DataFrame, dict[str, str]]:
    """File columns -> canonical columns; returns the new frame and hints for missing required columns."""
    ignore = {_key(c) for c in mapping.ignore}
    have = {_key(c): c for c in reversed(frame.columns) if _key(c) not in ignore}
    used: set[str] = set()
    exprs: list[pl.Expr] = []
    hints: dict[str, str] = {}
    produced: set[str] = set()
    for target in table.column_names:
        sources = [have[_key(s)] for s in mapping.columns.get(target, []) if _key(s) in have]
        if _key(target) in have and have[_key(target)] not in sources and have[_key(target)] not in used:
            sources.append(have[_key(target)])  # a column named like the canonical one ("Close Date")
        sources = [s for s in sources if s not in used]
        if not sources:
            wanted = mapping.columns.get(target)
            if wanted:
                near = [n for n in frame.columns if n not in used]
                hints[target] = (f"The {mapping.source} maps {', '.join(map(repr, wanted))} to {target}, but the file "
                                 f"has no such column.{suggest(wanted[0], near)} Rename the file's column or adjust "
                                 "the mapping file.")
            continue
        used.update(sources)
        parts = [pl.col(s).cast(pl.String) if frame.schema[s] != pl.String and len(sources) > 1 else pl.col(s)
                 for s in sources]
        if len(parts) > 1:
            parts = [pl.when(p.str.strip_chars() != "").then(p) for p in parts]
        exprs.append((pl.coalesce(parts) if len(parts) > 1 else parts[0]).alias(target))
        produced.add(target)
    rest = [c for c in frame.columns if c not in used and _key(c) not in ignore and not c.startswith("__")
            and c not in produced]
    return frame.select(*exprs, *[pl.col(c) for c in rest]), hints


def _transform(frame: pl.DataFrame, mapping: Mapping, table: schema.Table) -> tuple[pl.DataFrame, set[str]]:
    """Values, enum spellings, currency, percentages, defaults and derived columns (vectorised, on text)."""
    present = set(frame.columns)

    def text(c: str) -> pl.Expr:
        return pl.col(c) if frame.schema[c] == pl.String else pl.col(c).cast(pl.String)

    steps: list[pl.Expr] = []
    for c, sep in mapping.split.items():
        if c in present:
            steps.append(text(c).str.split(sep).list.first().str.strip_chars().alias(c))
    if steps:
        frame = frame.with_columns(steps)
    steps = []
    for col in table.columns:
        c = col.name
        if c not in present:
            continue
        expr = text(c) if (c in mapping.values or col.enum) else None
        if expr is None:
            continue
        low = expr.str.strip_chars().str.to_lowercase()
        if c in mapping.values:
            lookup = {k.strip().lower(): v for k, v in mapping.values[c].items()}
            expr = pl.coalesce(low.replace_strict(lookup, default=None, return_dtype=pl.String), expr)
            low = expr.str.strip_chars().str.to_lowercase()
        if col.enum:
            spelled = {_enum_key(v): v for v in schema.ENUMS[col.enum]}
            key = low.str.replace_all(r"[\s\-/]+", "_")
            expr = pl.coalesce(key.replace_strict(spelled, default=None, return_dtype=pl.String), expr)
        steps.append(expr.alias(c))
    if steps:
        frame = frame.with_columns(steps)

    if mapping.decimal == ",":  # 1.234,50 -> 1234.50 (values that do not look like numbers stay as they are)
        steps = []
        for col in table.columns:
            if col.name in present and col.dtype in {"int", "float"}:
                raw = text(col.name).str.strip_chars()
                squeezed = raw.str.replace_all(r"[\s\u00a0]", "")
                number = squeezed.str.replace_all(".", "", literal=True).str.replace(",", ".", literal=True)
                looks = squeezed.str.contains(r"^[+-]?[$€£¥￥]?[\d.]*\d(,\d*)?%?$")
                steps.append(pl.when(looks).then(number).otherwise(raw).alias(col.name))
        if steps:
            frame = frame.with_columns(steps)

    steps = []
    for cur in {m.currency for m in table.money_columns}:
        value = text(cur).str.strip_chars().str.to_uppercase() if cur in present else pl.lit(None, pl.String)
        if mapping.currency:
            value = pl.when(value.is_null() | (value == "")).then(pl.lit(mapping.currency)).otherwise(value)
        if cur in present or mapping.currency:
            steps.append(value.alias(cur))
    percent = [c for c in table.column_names if c in present and (c in mapping.percent or c == "probability")]
    for c in percent:
        raw = text(c).str.strip_chars()
        number = raw.str.strip_chars_end("%").str.strip_chars().cast(pl.Float64, strict=False)
        fractions = ((number > 0) & (number < 1)).any()
        is_percent = pl.lit(c in mapping.percent) | raw.str.ends_with("%").any() | ((number.max() > 1) & ~fractions)
        steps.append(pl.when(is_percent & number.is_not_null()).then((number / 100).cast(pl.String))
                     .otherwise(raw).alias(c))
    if steps:
        frame = frame.with_columns(steps)

    derived: set[str] = set()
    steps = []
    names = table.column_names
    if "stage" in present:
        stage = pl.col("stage")
        valid = stage.is_in(list(schema.ENUMS["stage"]))
        rules = {
            "is_closed": stage.is_in(list(schema.CLOSED_STAGES)).cast(pl.String).str.to_lowercase(),
            "is_won": (stage == "closed_won").cast(pl.String).str.to_lowercase(),
            "probability": stage.replace_strict({k: str(v) for k, v in schema.DEFAULT_STAGE_PROBABILITY.items()},
                                                default=None, return_dtype=pl.String),
        }
        for c, rule in rules.items():
            if c not in names:
                continue
            fill = pl.when(valid).then(rule)
            given = pl.when(text(c).str.strip_chars() != "").then(text(c)) if c in present else None
            steps.append((pl.coalesce(given, fill) if given is not None else fill).alias(c))
            if c in table.required_columns:
                derived.add(c)
    if steps:
        frame = frame.with_columns(steps)
    steps = []
    for c, value in mapping.defaults.items():
        if c in frame.columns:
            current = pl.col(c).cast(pl.String)
            steps.append(pl.when(current.is_null() | (current.str.strip_chars() == "")).then(pl.lit(value))
                         .otherwise(current).alias(c))
        else:
            steps.append(pl.lit(value, pl.String).alias(c))
    if steps:
        frame = frame.with_columns(steps)
    return frame, derived


def _enum_key(value: str) -> str:
    return re.sub(r"[\s\-/]+", "_", value.strip().lower())


# ------------------------------------------------------------------------------------------------
# The import
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ImportReport:
    """What an import did."""

    table: str
    files: tuple[str, ...]
    rows_read: int
    rows_written: int
    rows_inserted: int
    rows_updated: int
    warehouse: Path
    created: bool  # the warehouse did not exist and was created
    warnings: tuple[Problem, ...] = ()
    read_as: tuple[str, ...] = ()  # how each file was read: "deals.csv (GB18030, semicolon-delimited)"

    @property
    def rows_upserted(self) -> int:
        return self.rows_written

    def __str__(self) -> str:
        head = (f"Imported {self.rows_written} row{'s' if self.rows_written != 1 else ''} into {self.table} "
                f"({self.rows_inserted} new, {self.rows_updated} replaced) in {self.warehouse}"
                f"{' (created)' if self.created else ''} from {', '.join(self.read_as or self.files)}.")
        if self.warnings:
            head += "\n" + "\n".join("  - " + p.render() for p in self.warnings)
        return head


def import_files(
    paths: Sequence[str | Path] | str | Path,
    table: str,
    mapping: str | Path | None = None,
    preset: str | None = None,
    into: str | Path | None = None,
) -> ImportReport:
    """Import files into canonical ``table`` of the warehouse ``into`` (default: the embedded one).

    Raises :class:`~crmlib.errors.ImportDataError` (a file cannot be read),
    :class:`~crmlib.errors.MappingError` (a mapping or preset is wrong) or
    :class:`~crmlib.errors.ValidationError` (every problem of the data, at once); nothing is written then.
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    paths = list(paths)
    if not paths:
        raise ImportDataError("No file to import. Give one or more CSV, Excel or Parquet files.")
    t = schema.table(table)
    plan = Mapping()
    if preset:
        plan = load_preset(preset, table)
    if mapping:
        own = load_mapping(mapping, table)
        plan = own.over(plan) if preset else own
    if plan.table and plan.table != table:
        raise MappingError(f"The {plan.source} is for table {plan.table}, but the import is into {table}. "
                           f"Use --table {plan.table}, or another mapping.")
    warehouse = Path(into).expanduser() if into is not None else config.default_warehouse()
    _check_target(warehouse)

    # 1. read every file (all read errors at once)
    datas, failures = [], []
    for p in paths:
        try:
            datas.append(files_mod.load_file(p, encoding=plan.encoding, delimiter=plan.delimiter, sheet=plan.sheet))
        except ImportDataError as exc:
            failures.append(str(exc))
    if failures:
        if len(failures) == 1:
            raise ImportDataError(failures[0])
        raise ImportDataError(f"{len(failures)} files cannot be read:\n" + "\n".join("  - " + f for f in failures))

    # 2. map each file, check its columns; then the batch
    problems: list[Problem] = []
    frames = []
    present_by_file: dict[str, set[str]] = {}
    for data in datas:
        name = str(data.path)
        frame, hints = _rename(data.frame, plan, t)
        frame = frame.with_columns(data.rows.alias(ROW), pl.lit(name, pl.String).alias(FILE))
        present_by_file[name] = set(frame.columns)
        frames.append((name, frame, hints))
    batch = pl.concat([f for _, f, _ in frames], how="diagonal_relaxed")
    batch, derived = _transform(batch, plan, t)
    filled = set(plan.defaults) | derived | ({m.currency for m in t.money_columns} if plan.currency else set())
    options = Options(
        date_formats=plan.dates, booleans=plan.booleans, derived=frozenset(derived),  # decimals done in _transform
        absent_in={c: frozenset(f for f, cols in present_by_file.items() if c not in cols)
                   for c in t.column_names if c not in filled},
    )
    for name, frame, hints in frames:
        file_options = Options(column_hints=hints, derived=frozenset(derived))
        problems += check_columns(list(frame.columns) + sorted(filled - set(frame.columns)), table, name,
                                  file_options)

    # 3. validate against the warehouse (read-only), then write
    crm = _open_reference(warehouse)
    try:
        typed, found = check_frame(batch, table, None, Reference(crm), options, columns=False)
        problems += found
        names = ", ".join(d.path.name for d in datas)
        warnings = raise_if_errors(problems, f"import of {names} into {table}")
        updated = 0
        if crm is not None:
            pk = list(t.primary_key)
            existing = crm.table(table).select(pk).collect()
            updated = typed.join(existing, on=pk, how="semi").height
    finally:
        if crm is not None:
            crm.close()
    created = not warehouse.exists()
    _write(warehouse, table, typed, created)
    return ImportReport(
        table=table,
        files=tuple(str(d.path) for d in datas),
        rows_read=sum(d.frame.height for d in datas),
        rows_written=typed.height,
        rows_inserted=typed.height - updated,
        rows_updated=updated,
        warehouse=warehouse,
        created=created,
        warnings=tuple(warnings),
        read_as=tuple(d.describe() for d in datas),
    )


def _check_target(warehouse: Path) -> None:
    if warehouse.is_dir():
        raise ConfigError(f"--into {warehouse} is a folder; give a DuckDB file such as {warehouse / 'crm.duckdb'}.")
    if warehouse.suffix.lower() not in {".duckdb", ".db", ".ddb", ""}:
        raise ConfigError(f"--into {warehouse}: imports go into a DuckDB warehouse (a .duckdb file), not a "
                          f"{warehouse.suffix} file.")


def _open_reference(warehouse: Path):
    if not warehouse.exists():
        return None
    from .sources import open as open_source

    return open_source(f"duckdb://{warehouse}")


def _write(warehouse: Path, table: str, typed: pl.DataFrame, created: bool) -> None:
    import duckdb

    from .sources import warehouse as wh

    try:
        if created:
            wh.write_warehouse(warehouse, {table: typed}, meta={"created_by": "import"})
        else:
            wh.upsert(warehouse, {table: typed})
    except duckdb.Error as exc:
        first = str(exc).splitlines()[0]
        raise SourceError(
            f"Could not write to the warehouse {warehouse}: {first}. Nothing was written. If another program "
            "(a notebook, a dashboard, another import) has it open, close it and run the import again."
        ) from None
