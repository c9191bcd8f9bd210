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

Beyond renaming (:mod:`crmlib.import_rules`; docs/import.md has worked examples):

.. code-block:: yaml

    compute: {amount: Quantity * `Unit Price`}  # a column computed from file columns: + - * / ( ) abs()
    prefixes:                       # a column set from how a file column starts (longest prefix first)
      status: {column: InvoiceNo, values: {C: cancelled}, otherwise: completed}
    lines: {sum: [amount]}          # the rows are lines of records: grouped by the table's key, these
                                    #   columns summed; dates the earliest line's, other columns the first
                                    #   non-empty value
    negate: {amount: {status: cancelled}}  # amounts written negative on those records, stored positive
    skip_empty: [account_id]        # rows without it are left out, counted in the report (not an error)
    derive: [cases, accounts]       # parent rows built from the file: cases from an event log (created at
                                    #   the first event, status of the last status change, closed at the
                                    #   last solve), accounts from the account ids (created at their first
                                    #   row, name = id); columns of those tables may be mapped and given
                                    #   defaults like the table's own; rows already in the warehouse are kept

A ``case_events`` file without an event id column gets ids ``<case>~<time>~<n>`` (the same file gives the
same ids, so importing it again replaces its rows). A report of what an import left out, grouped or derived
is printed and recorded in the warehouse (:func:`recorded_imports`).

What is derived when absent (a missing column or an empty value):

* ``is_closed`` and ``is_won`` from ``stage`` (``closed_won``/``closed_lost``);
* ``probability`` from :data:`crmlib.schema.DEFAULT_STAGE_PROBABILITY` by stage;
* ``probability`` written as a percentage -- a ``%`` sign, a column listed under ``percent``, or values
  above 1 and none strictly between 0 and 1 (``10, 20, 100``) -- is divided by 100;
* currency codes are upper-cased.

Presets (``preset="salesforce"``, ``"hubspot"``, ``"online_retail"``) are mapping files shipped in
``crmlib/presets``; with both a preset and a mapping, the mapping's entries are laid over the preset's.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import re
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import polars as pl

from . import config, schema
from . import import_rules as rules
from .errors import ConfigError, ImportDataError, MappingError, Problem, SourceError, suggest
from .import_mapping import Mapping, _combined, derived_columns, list_presets, load_mapping, load_preset
from .sources import files as files_mod
from .validate import FILE, ROW, Options, Reference, check_columns, check_frame, raise_if_errors

__all__ = [
    "ImportReport", "Mapping", "import_files", "list_presets", "load_mapping", "load_preset", "recorded_imports",
]


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
    records_read: int | None = None  # lines mode: records (distinct keys) among the lines read
    left_out: tuple[tuple[str, int, int | None], ...] = ()  # (column, rows, records) left out when empty
    by_status: tuple[tuple[str, int], ...] = ()  # rows written per status (tables with a status column)
    derived: tuple[tuple[str, int, int], ...] = ()  # (table, rows written, rows already in the warehouse)

    @property
    def rows_upserted(self) -> int:
        return self.rows_written

    def details(self) -> list[str]:
        """What the import did besides writing rows: lines grouped, rows left out, statuses, derived rows."""
        noun = self.table if self.rows_written != 1 else self.table.rstrip("s")
        out = []
        if self.records_read is not None:
            out.append(f"read {self.rows_read:,} lines of {self.records_read:,} {self.table} (lines grouped by "
                       f"{', '.join(schema.table(self.table).primary_key)})")
        for column, rows, records in self.left_out:
            what = "lines" if self.records_read is not None else "rows"
            extra = f" ({records:,} {self.table})" if records is not None else ""
            out.append(f"left out {rows:,} {what}{extra} without {column} (counted here, not imported)")
        if self.by_status:
            out.append(f"{noun} by status: " + ", ".join(f"{s} {n:,}" for s, n in self.by_status))
        for name, written, kept in self.derived:
            out.append(f"derived {written:,} {name} rows from the file" +
                       (f" ({kept:,} already in the warehouse, kept as they were)" if kept else ""))
        return out

    def summary(self) -> dict:
        """The report as plain data (recorded in the warehouse's ``_crmlib_meta`` as ``import <table>``)."""
        return {
            "table": self.table, "files": [Path(f).name for f in self.files], "rows_read": self.rows_read,
            "records_read": self.records_read, "rows_written": self.rows_written,
            "left_out": [{"column": c, "rows": r, "records": k} for c, r, k in self.left_out],
            "by_status": dict(self.by_status), "derived": {n: w for n, w, _ in self.derived},
        }

    def __str__(self) -> str:
        head = (f"Imported {self.rows_written} row{'s' if self.rows_written != 1 else ''} into {self.table} "
                f"({self.rows_inserted} new, {self.rows_updated} replaced) in {self.warehouse}"
                f"{' (created)' if self.created else ''} from {', '.join(self.read_as or self.files)}.")
        lines = ["  - " + d for d in self.details()] + ["  - " + p.render() for p in self.warnings]
        return head + ("\n" + "\n".join(lines) if lines else "")


class _Reference(Reference):
    """The warehouse's keys plus those of the rows derived in this import."""

    def __init__(self, crm=None) -> None:
        super().__init__(crm)
        self.added: dict[str, pl.DataFrame] = {}

    def stored(self, table: str, column: str) -> pl.Series:
        return super().keys(table, column)

    def keys(self, table: str, column: str) -> pl.Series:
        base = super().keys(table, column)
        if table in self.added and column in self.added[table].columns:
            more = self.added[table].get_column(column).drop_nulls().cast(base.dtype)
            return pl.concat([base, more]).unique()
        return base


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
    wide = _combined(t, plan.derive)  # the table plus the columns of the tables derived from it
    extras = derived_columns(table, plan.derive)

    # 1. read every file (all read errors at once)
    datas, failures = [], []
    for p in paths:
        try:
            datas.append(_load(p, plan))
        except ImportDataError as exc:
            failures.append(str(exc))
    if failures:
        if len(failures) == 1:
            raise ImportDataError(failures[0])
        raise ImportDataError(f"{len(failures)} files cannot be read:\n" + "\n".join("  - " + f for f in failures))

    # 2. compute, map each file, check its columns; then the batch (the files' own frames are let go as
    #    soon as they are mapped: a large export is held once, not three times)
    files = tuple(str(d.path) for d in datas)
    names = ", ".join(d.path.name for d in datas)
    rows_read = sum(d.frame.height for d in datas)
    read_as = tuple(d.describe() for d in datas)
    problems: list[Problem] = []
    mapped, frames = [], []
    present_by_file: dict[str, set[str]] = {}
    while datas:
        data = datas.pop(0)
        name = str(data.path)
        raw = data.frame.with_columns(data.rows.alias(ROW), pl.lit(name, pl.String).alias(FILE))
        del data
        raw, found = _computed(raw, plan, table)
        problems += found
        frame, hints = _rename(raw.drop(ROW, FILE), plan, wide)
        frame = frame.with_columns(raw.get_column(ROW), raw.get_column(FILE))
        del raw
        present_by_file[name] = set(frame.columns)
        frames.append((name, list(frame.columns), hints))
        mapped.append(frame)
    batch = pl.concat(mapped, how="diagonal_relaxed") if len(mapped) > 1 else mapped[0]
    del mapped
    batch, derived = _transform(batch, plan, wide)
    if table == "case_events" and "event_id" not in batch.columns:
        derived.add("event_id")  # a plain log: ids are made from case, time and order (import_rules.event_ids)
    filled = set(plan.defaults) | derived | ({m.currency for m in t.money_columns} if plan.currency else set())
    options = Options(
        date_formats=plan.dates, booleans=plan.booleans, derived=frozenset(derived),  # decimals done in _transform
        absent_in={c: frozenset(f for f, cols in present_by_file.items() if c not in cols)
                   for c in t.column_names if c not in filled},
    )
    for name, columns, hints in frames:
        file_options = Options(column_hints=hints, derived=frozenset(derived))
        cols = [c for c in columns if c not in extras]
        problems += check_columns(cols + sorted(filled - set(columns) - set(extras)), table, name, file_options)

    # 3. rows left out on purpose (skip_empty), counted
    lines_mode = plan.lines is not None
    pk = list(t.primary_key)
    records_read = batch.select(pk).n_unique() if lines_mode and set(pk) <= set(batch.columns) else None
    left_out = []
    for c in plan.skip_empty:
        empty = (pl.col(c).cast(pl.String).str.strip_chars().fill_null("") == "") if c in batch.columns else pl.lit(True)
        gone = batch.filter(empty)
        records = gone.select(pk).n_unique() if records_read is not None and gone.height else (
            0 if records_read is not None else None)
        left_out.append((c, gone.height, records))
        batch = batch.filter(~empty)

    # 4. validate against the warehouse (read-only), derive, then write
    crm = _open_reference(warehouse)
    try:
        ref = _Reference(crm)
        derived_frames: dict[str, pl.DataFrame] = {}
        kept: dict[str, int] = {}
        if not (lines_mode or plan.derive):
            typed, found = check_frame(batch, table, None, ref, options, columns=False)
            problems += _detailed_unknowns(found, batch, plan, wide)
        else:
            typed, found = check_frame(batch, table, None, None, options, columns=False)
            if lines_mode:
                found = [p for p in found if p.check not in ("duplicate_key", "negative_value", "date_order")]
            problems += _detailed_unknowns(found, batch, plan, wide)
            carry = [c for c in extras if c in batch.columns]
            typed = pl.concat([typed, batch.select(ROW, FILE, *carry)], how="horizontal")
            if "event_id" in derived and typed.height:
                typed = typed.with_columns(rules.event_ids(typed))
            if lines_mode:
                typed = rules.aggregate_lines(typed, t, plan.lines)
            typed = rules.negate(typed, plan.negate)
            source = typed
            for name in plan.derive:  # children first: cases, then the accounts they name
                d = _derive(name, source, carry)
                pkd = schema.table(name).primary_key[0]
                stored = ref.stored(name, pkd)
                kept[name] = d.filter(pl.col(pkd).is_in(stored.implode())).height
                derived_frames[name] = d.filter(~pl.col(pkd).is_in(stored.implode()))
                source = d
            for name in reversed(plan.derive):  # parents first
                dt_name = schema.table(name)
                hints = {c: (f"The {name} rows derived from the file need {c}: map a column of the file to it "
                             f"(columns: {{\"Your column\": {c}}}) or give a value for all (defaults: {{{c}: ...}}).")
                         for c in dt_name.required_columns}
                frame = derived_frames[name]
                if frame.height == 0:  # every one already in the warehouse
                    derived_frames[name] = schema.empty_frame(name)
                    continue
                frame = frame.select([c for c in (*dt_name.column_names, ROW, FILE) if c in frame.columns])
                dtyped, found = check_frame(frame, name, None, ref, Options(column_hints=hints), columns=True)
                ruled = rules.DERIVED_BY_RULE[name]  # their values come from rows checked above: not twice
                problems += [replace(p, message=f"(rows derived from the file) {p.message}") for p in found
                             if p.column not in ruled or p.check in ("missing_column", "orphan_key")]
                ref.added[name] = dtyped
                derived_frames[name] = dtyped
            keep = {"orphan_key", "missing_fx_rate"} | (
                {"negative_value", "date_order", "out_of_range"} if lines_mode else set())
            second = typed.select(*t.column_names, ROW, FILE)
            typed, found = check_frame(second, table, None, ref, Options(derived=frozenset(derived)), columns=False)
            problems += [p for p in found if p.check in keep]
        warnings = raise_if_errors(problems, f"import of {names} into {table}")
        updated = 0
        if crm is not None:
            existing = crm.table(table).select(pk).collect()
            updated = typed.join(existing, on=pk, how="semi").height
    finally:
        if crm is not None:
            crm.close()
    created = not warehouse.exists()
    status = next((c.name for c in t.columns if c.name == "status" and c.enum), None)
    by_status = () if status is None else tuple(
        (s or "(empty)", n) for s, n in typed.get_column(status).value_counts(sort=True).iter_rows())
    report = ImportReport(
        table=table,
        files=files,
        rows_read=rows_read,
        rows_written=typed.height,
        rows_inserted=typed.height - updated,
        rows_updated=updated,
        warehouse=warehouse,
        created=created,
        warnings=tuple(warnings),
        read_as=read_as,
        records_read=records_read,
        left_out=tuple(left_out),
        by_status=by_status,
        derived=tuple((n, derived_frames[n].height, kept[n]) for n in plan.derive),
    )
    stamp = {"at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
    meta = {f"import {table}": json.dumps({**report.summary(), **stamp})} if (lines_mode or plan.derive or left_out) else {}
    _write(warehouse, {table: typed, **derived_frames}, created, meta)
    return report


def recorded_imports(source) -> dict[str, dict]:
    """What the last import into each table did, as recorded in a DuckDB warehouse (``{table: summary}``,
    see :meth:`ImportReport.summary`; empty for other sources): e.g. the invoice lines an import left out
    because they had no customer, so that a report can show them."""
    import duckdb

    from .sources import warehouse as wh

    con, own = None, False
    reader = getattr(source, "_reader", None)
    if reader is not None:
        con = getattr(reader, "con", None) if getattr(source, "kind", "") == "duckdb" else None
    elif source is not None and Path(source).expanduser().is_file():
        con, own = duckdb.connect(str(Path(source).expanduser()), read_only=True), True
    if con is None:
        return {}
    try:
        meta = wh.read_meta(con)
    finally:
        if own:
            con.close()
    return {k[len("import "):]: json.loads(v) for k, v in meta.items() if k.startswith("import ")}


def _load(path: str | Path, plan: Mapping) -> files_mod.FileData:
    """Read a file; a ``.gz`` file (``orders.csv.gz``) is decompressed into a temporary folder first."""
    p = Path(path).expanduser()
    if p.suffix.lower() != ".gz" or not p.is_file():
        return files_mod.load_file(p, encoding=plan.encoding, delimiter=plan.delimiter, sheet=plan.sheet)
    with tempfile.TemporaryDirectory(prefix="crmlib-import-") as tmp:
        inner = Path(tmp) / p.stem
        try:
            with gzip.open(p, "rb") as src, open(inner, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
        except (OSError, EOFError) as exc:
            raise ImportDataError(f"[unreadable_file] file {p}: it is not a complete gzip archive ({exc}). "
                                  "Download or copy it again, or give the decompressed file.") from None
        try:
            data = files_mod.load_file(inner, encoding=plan.encoding, delimiter=plan.delimiter, sheet=plan.sheet)
        except ImportDataError as exc:
            raise ImportDataError(str(exc).replace(str(inner), str(p))) from None
    return replace(data, path=p)


def _computed(raw: pl.DataFrame, plan: Mapping, table: str) -> tuple[pl.DataFrame, list[Problem]]:
    """The ``compute`` and ``prefixes`` columns, added to a file's frame under their canonical names."""
    if not plan.compute and not plan.prefixes:
        return raw, []
    have = {_key(c): c for c in reversed(raw.columns)}
    problems: list[Problem] = []
    steps: list[pl.Expr] = []
    name = raw.get_column(FILE)[0] if raw.height else None

    def missing(target: str, col: str, rule: str) -> None:
        problems.append(Problem(
            "missing_column", table, f"{target} is {rule} column {col}, which the file does not have"
            f"{suggest(col, [c for c in raw.columns if not c.startswith('__')])}",
            f"Rename the file's column or correct {rule.split()[0]} in the {plan.source}.", column=col, file=name))

    for target, expression in plan.compute.items():
        cols = {c: have.get(_key(c)) for c in expression.columns}
        absent = [c for c, actual in cols.items() if actual is None]
        for c in absent:
            missing(target, c, "computed from")
        if absent:
            continue
        numeric, found = rules.numeric_operands(raw, cols, target, table)
        problems += found
        operands = {c: numeric.get_column(actual) for c, actual in cols.items()}
        steps.append(expression.to_polars(lambda c, operands=operands: pl.lit(operands[c])).alias(target))
    for target, rule in plan.prefixes.items():
        actual = have.get(_key(rule.column))
        if actual is None:
            missing(target, rule.column, "set by prefixes from")
            continue
        text = pl.col(actual).cast(pl.String).str.strip_chars()
        expr = pl.lit(rule.otherwise, pl.String)
        for prefix, value in reversed(rule.values):  # the longest prefix is tried first
            expr = pl.when(text.str.starts_with(prefix)).then(pl.lit(value)).otherwise(expr)
        steps.append(pl.when(text.is_not_null() & (text != "")).then(expr).alias(target))
    targets = set(plan.compute) | set(plan.prefixes)
    clash = [c for c in raw.columns if _key(c) in {_key(x) for x in targets}]
    return raw.drop(clash).with_columns(steps), problems


def _derive(name: str, source: pl.DataFrame, carry: list[str]) -> pl.DataFrame:
    if name == "cases":
        return rules.derive_cases(source, carry)
    time_column = "created_at" if "created_at" in source.columns else None
    for table_name in rules.DERIVABLE[name]:
        tc = schema.table(table_name).time_column
        if tc in source.columns and set(schema.table(table_name).column_names) <= set(source.columns) | set(carry):
            time_column = tc
            break
    if time_column is None:
        time_column = next(c for c in ("ordered_at", "start_date", "created_at") if c in source.columns)
    return rules.derive_accounts(source, time_column, carry)


def _detailed_unknowns(found: list[Problem], batch: pl.DataFrame, plan: Mapping, wide: schema.Table) -> list[Problem]:
    """For enum columns the mapping maps values of, one ``unknown_value`` problem listing every value that
    is neither mapped nor canonical (with its number of rows), instead of a sample of three."""
    out = []
    for p in found:
        c = p.column
        if p.check != "unknown_value" or c not in plan.values or c not in batch.columns:
            out.append(p)
            continue
        allowed = schema.ENUMS[wide.column(c).enum]
        bad = batch.filter(pl.col(c).is_not_null() & (pl.col(c).cast(pl.String).str.strip_chars() != "")
                           & ~pl.col(c).is_in(list(allowed)))
        by_file = bad.filter(pl.col(FILE) == p.file) if p.file else bad
        counts = by_file.group_by(c, maintain_order=True).agg(pl.len().alias("n"), pl.col(ROW).first().alias("r"))
        listed = ", ".join(f"{v!r} ({n} row{'s' if n != 1 else ''}, first row {r})"
                           for v, n, r in counts.head(20).iter_rows())
        more = f" and {counts.height - 20} more" if counts.height > 20 else ""
        out.append(replace(
            p, sample=(),
            message=f"{counts.height} value{'s are' if counts.height != 1 else ' is'} neither mapped in the "
                    f"{plan.source} nor a {wide.column(c).enum} value: {listed}{more}",
            hint=f"Add them under values: {{{c}: {{...}}}} in the mapping file (allowed: {', '.join(allowed)}).",
        ))
    return out


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


def _write(warehouse: Path, frames: dict[str, pl.DataFrame], created: bool, meta: dict[str, str]) -> None:
    """Write ``frames`` (a new warehouse: atomically; an existing one: one transaction), then ``meta``."""
    import duckdb

    from .sources import warehouse as wh

    meta = meta or {}
    try:
        if created:
            wh.write_warehouse(warehouse, frames, meta={"created_by": "import", **meta})
        else:
            wh.upsert(warehouse, frames)
            if meta:
                con = duckdb.connect(str(warehouse))
                try:
                    for key, value in meta.items():
                        con.execute(f'INSERT OR REPLACE INTO "{wh.META_TABLE}" VALUES (?, ?)', [key, value])
                finally:
                    con.close()
    except duckdb.Error as exc:
        first = str(exc).splitlines()[0]
        raise SourceError(
            f"Could not write to the warehouse {warehouse}: {first}. Nothing was written. If another program "
            "(a notebook, a dashboard, another import) has it open, close it and run the import again."
        ) from None
