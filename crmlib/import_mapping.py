"""Mapping files and presets: parsing and checking (the format is documented in :mod:`crmlib.importer`).

:func:`load_mapping` reads a YAML mapping file, :func:`load_preset` a preset shipped in ``crmlib/presets``;
both return a frozen :class:`Mapping` or raise :class:`~crmlib.errors.MappingError` listing every problem.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from . import import_rules as rules
from . import schema
from .errors import MappingError, suggest

__all__ = [
    "MAPPING_KEYS",
    "Mapping",
    "Prefix",
    "derived_columns",
    "list_presets",
    "load_mapping",
    "load_preset",
]

MAPPING_KEYS = (
    "table",
    "description",
    "columns",
    "ignore",
    "values",
    "dates",
    "currency",
    "defaults",
    "booleans",
    "percent",
    "split",
    "decimal",
    "encoding",
    "delimiter",
    "sheet",
    "compute",
    "prefixes",
    "lines",
    "negate",
    "skip_empty",
    "derive",
)


# ------------------------------------------------------------------------------------------------
# Mapping files
# ------------------------------------------------------------------------------------------------
class _TextLoader(yaml.SafeLoader):
    """YAML where plain scalars stay text, except true/false/null (no 01 -> 1, no Yes -> True)."""


_TextLoader.yaml_implicit_resolvers = {
    first: [
        (tag, rx) for tag, rx in resolvers if tag in ("tag:yaml.org,2002:null", "tag:yaml.org,2002:merge")
    ]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_TextLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


@dataclass(frozen=True)
class Prefix:
    """``prefixes`` rule: the canonical value is chosen by how ``column`` of the file starts."""

    column: str
    values: tuple[tuple[str, str], ...]  # (prefix, canonical value), the longest prefix first
    otherwise: str | None = None


def _derive_order(tables: tuple[str, ...]) -> tuple[str, ...]:
    """Derived tables, children before parents (cases before the accounts they point to)."""
    return tuple(sorted(dict.fromkeys(tables), key=lambda n: -schema.LOAD_ORDER.index(n)))


def derived_columns(table: str, derive: tuple[str, ...]) -> dict[str, str]:
    """Columns a mapping may fill for the derived tables: {column: derived table} (the child's own columns
    and the columns the derivation sets itself excluded)."""
    own = set(schema.table(table).column_names)
    out: dict[str, str] = {}
    for name in derive:
        for c in schema.table(name).column_names:
            if c not in own and c not in out and c not in rules.DERIVED_BY_RULE.get(name, ()):
                out[c] = name
        own |= set(rules.DERIVED_BY_RULE.get(name, ()))
    return out


def _combined(t: schema.Table, derive: tuple[str, ...]) -> schema.Table:
    """``t`` plus the (optional) columns of the tables derived from it, for renaming and value mapping."""
    extra = derived_columns(t.name, derive)
    if not extra:
        return t
    cols = tuple(replace(schema.table(d).column(c), nullable=True, references=None) for c, d in extra.items())
    return replace(t, columns=t.columns + cols)


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
    compute: dict[str, rules.Expression] = field(
        default_factory=dict
    )  # canonical -> expression of file columns
    prefixes: dict[str, Prefix] = field(default_factory=dict)  # canonical -> rule on how a file column starts
    lines: tuple[str, ...] | None = None  # lines mode: the columns summed over a record's lines
    negate: dict[str, tuple[str, str]] = field(
        default_factory=dict
    )  # column -> (column, value) where negated
    skip_empty: tuple[str, ...] = ()  # rows without a value there are left out (and counted), not an error
    derive: tuple[str, ...] = ()  # parent tables derived from the file, child first

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
            values={
                k: {**base.values.get(k, {}), **self.values.get(k, {})}
                for k in {**base.values, **self.values}
            },
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
            compute={**base.compute, **self.compute},
            prefixes={**base.prefixes, **self.prefixes},
            lines=self.lines if self.lines is not None else base.lines,
            negate={**base.negate, **self.negate},
            skip_empty=tuple(dict.fromkeys(base.skip_empty + self.skip_empty)),
            derive=_derive_order(base.derive + self.derive),
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
        raise MappingError(
            f"[bad_yaml] {source}: not valid YAML{where} ({problem}). "
            "Check the indentation and quote values holding ':' or '#'."
        ) from None
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise MappingError(
            f"[bad_mapping] {source}: the file must be a YAML mapping of keys "
            f"({', '.join(MAPPING_KEYS)}), not a {type(doc).__name__}."
        )
    errors: list[str] = []

    def bad(check: str, message: str, hint: str = "") -> None:
        stop = "" if message.endswith((".", "?", "!")) else "."
        errors.append(f"[{check}] {source}: {message}{stop}{(' ' + hint) if hint else ''}")

    for key in doc:
        if key not in MAPPING_KEYS:
            bad(
                "unknown_key",
                f"unknown key {key!r}.{suggest(str(key), MAPPING_KEYS)}",
                f"Allowed keys: {', '.join(MAPPING_KEYS)}.",
            )
    mtable = doc.get("table")
    if mtable is not None and mtable not in schema.TABLES:
        bad(
            "unknown_table",
            f"table {mtable!r} is not a canonical table.{suggest(str(mtable), schema.TABLE_NAMES)}",
        )
        mtable = None
    if table and mtable and mtable != table:
        bad(
            "wrong_table",
            f"the mapping is for table {mtable} but the import is into {table}",
            "Use --table " + str(mtable) + " or another mapping file.",
        )
    t = schema.table(table or mtable) if (table or mtable) else None
    derive = _parse_derive(doc.get("derive"), t, bad)
    if t is not None and derive:
        t = _combined(t, derive)

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
            bad(
                "unknown_column",
                f"{key}: {column!r} is not a column of {t.name}.{suggest(str(column), t.column_names)}",
                f"Columns of {t.name}: {', '.join(t.column_names)}.",
            )
            return None
        col = t.column(column)
        if dtypes and col.dtype not in dtypes:
            bad("bad_mapping", f"{key}: {column} is a {col.dtype} column, not {' or '.join(dtypes)}")
            return None
        return col

    def enum_value(what: str, col: schema.Column | None, value: str) -> None:
        if col is not None and col.enum and value not in schema.ENUMS[col.enum]:
            allowed = schema.ENUMS[col.enum]
            bad(
                "unknown_value",
                f"{what}, which is not a {col.enum} value.{suggest(value, allowed)}",
                f"Allowed: {', '.join(allowed)}.",
            )

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
            bad("bad_mapping", f'dates.{column} must be a strptime format such as "%d/%m/%Y", not {fmt!r}')
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
            bad("bad_mapping", f'split.{column} must be a separator such as ";"')
            continue
        split[column] = sep
    decimal = str(doc.get("decimal") or ".")
    if decimal not in {".", ","}:
        bad("bad_mapping", f'decimal must be "." or ",", not {decimal!r}')
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
        bad("bad_mapping", f'delimiter must be one character such as ";", not {delimiter!r}')
        delimiter = None
    ignore = tuple(str(x) for x in section("ignore", list))
    compute = {}
    for column, text in section("compute", dict).items():
        canonical("compute", column, ("int", "float"))
        try:
            compute[column] = rules.parse_expression(str(text))
        except ValueError as exc:
            bad(
                "bad_mapping",
                f"compute.{column}: {text!r} is not an arithmetic expression of file columns: {exc}",
                "Example: compute: {amount: Quantity * `Unit Price`}.",
            )
    prefixes = {}
    for column, rule in section("prefixes", dict).items():
        col = canonical("prefixes", column)
        if (
            not isinstance(rule, dict)
            or not isinstance(rule.get("column"), str)
            or not isinstance(rule.get("values"), dict)
        ):
            bad(
                "bad_mapping",
                f"prefixes.{column} must look like {{column: InvoiceNo, values: {{C: cancelled}}, "
                "otherwise: completed}",
            )
            continue
        unknown = sorted(set(rule) - {"column", "values", "otherwise"})
        if unknown:
            bad(
                "unknown_key",
                f"prefixes.{column}: unknown key {unknown[0]!r}",
                "Allowed: column, values, otherwise.",
            )
        pairs = [(_scalar(k), _scalar(v)) for k, v in rule["values"].items()]
        otherwise = None if rule.get("otherwise") is None else _scalar(rule["otherwise"])
        for k, v in pairs + ([("otherwise", otherwise)] if otherwise is not None else []):
            enum_value(f"prefixes.{column} maps {k!r} to {v!r}", col, v)
        prefixes[column] = Prefix(rule["column"], tuple(sorted(pairs, key=lambda kv: -len(kv[0]))), otherwise)
    lines = None
    if doc.get("lines") is not None:
        spec = doc.get("lines")
        if not isinstance(spec, dict) or set(spec) - {"sum"} or not isinstance(spec.get("sum", []), list):
            bad("bad_mapping", f"lines must look like {{sum: [amount]}}, not {spec!r}")
        else:
            lines = tuple(str(c) for c in spec.get("sum", []))
            for c in lines:
                canonical("lines.sum", c, ("int", "float"))
    negate = {}
    for column, cond in section("negate", dict).items():
        canonical("negate", column, ("int", "float"))
        if not isinstance(cond, dict) or len(cond) != 1:
            bad("bad_mapping", f"negate.{column} must name one column and value, e.g. {{status: cancelled}}")
            continue
        ((ccol, cval),) = cond.items()
        enum_value(f"negate.{column} names {_scalar(cval)!r}", canonical("negate", str(ccol)), _scalar(cval))
        negate[column] = (str(ccol), _scalar(cval))
    skip_empty = []
    for column in section("skip_empty", list):
        canonical("skip_empty", str(column))
        skip_empty.append(str(column))
    if errors:
        raise MappingError(
            f"{source}: {len(errors)} problem{'s' if len(errors) != 1 else ''} found\n"
            + "\n".join("  - " + e for e in errors)
        )
    return Mapping(
        source=source,
        table=mtable,
        columns=columns,
        ignore=ignore,
        values=values,
        dates=dates,
        currency=str(currency).upper() if currency else None,
        defaults=defaults,
        booleans=booleans,
        percent=tuple(percent),
        split=split,
        decimal=decimal,
        encoding=encoding,
        delimiter=delimiter,
        sheet=None if doc.get("sheet") is None else str(doc.get("sheet")),
        compute=compute,
        prefixes=prefixes,
        lines=lines,
        negate=negate,
        skip_empty=tuple(skip_empty),
        derive=derive,
    )


def _parse_derive(value: Any, t: schema.Table | None, bad) -> tuple[str, ...]:
    if value is None:
        return ()
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list):
        bad(
            "bad_mapping",
            f"derive must be a table or a list of tables such as [cases, accounts], not {value!r}",
        )
        return ()
    out = []
    for name in map(str, names):
        if name not in rules.DERIVABLE:
            bad(
                "bad_mapping",
                f"derive: {name!r} cannot be derived.{suggest(name, list(rules.DERIVABLE))}",
                f"Tables that can be derived: {', '.join(rules.DERIVABLE)}.",
            )
            continue
        out.append(name)
    out = list(_derive_order(tuple(out)))
    if t is not None:
        sources = {t.name}
        for name in out:
            if not sources & set(rules.DERIVABLE[name]):
                bad(
                    "bad_mapping",
                    f"derive: {name} cannot be derived from {t.name}",
                    f"{name} is derived from {' or '.join(rules.DERIVABLE[name])}.",
                )
            sources.add(name)
    return tuple(out)


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
