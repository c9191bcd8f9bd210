"""The KPI catalog: the package's YAML files plus the user's, merged, validated and frozen.

>>> from crmlib.kpis import default_catalog
>>> cat = default_catalog()
>>> cat.get("win_rate").label.get("zh")
'赢率'

User files come from ``CRMLIB_KPI_PATH`` (files or folders separated by ``os.pathsep``) or the
``paths`` argument of :func:`load_catalog`. They may add dimensions, measures and KPIs; redefining a
name is an error unless the new definition says ``override: true``. All problems of all files are
reported at once in one :class:`~crmlib.kpis.spec.CatalogError`.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from ..errors import ConfigError, suggest
from ..schema import TABLES
from . import describe as _words
from ._read import FileSpec, Item
from ._yaml import load_yaml, yaml_error_line
from .kpi_rules import effective_dimensions  # importing it registers the KPI rules
from .parse import parse_file
from .rules import Model, measure_is_money, resolve_path, run_rules, to_time
from .spec import (
    CatalogError,
    CatalogProblem,
    Dimension,
    ExternalKpi,
    Filter,
    Kpi,
    Measure,
    Text,
)

PACKAGE_DIR = Path(__file__).parent
# Package files in the order their areas are listed; other *.yaml files of the package follow by name.
PACKAGE_FILES = ("dimensions.yaml", "sales.yaml", "marketing.yaml", "service.yaml", "customers.yaml")
ENV_VAR = "CRMLIB_KPI_PATH"

PathsArg = str | os.PathLike | Iterable[str | os.PathLike] | None


# --------------------------------------------------------------------------------------------
# The frozen catalog
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Catalog:
    """Validated KPIs, measures and dimensions, in declaration order (package files first)."""

    kpis: Mapping[str, Kpi]
    measures: Mapping[str, Measure]
    dimensions: Mapping[str, Dimension]
    files: tuple[str, ...] = ()
    area_labels: Mapping[str, Text] = dataclasses.field(default_factory=dict)

    # --- lookup ---------------------------------------------------------------------------
    def get(self, name: str) -> Kpi:
        """The KPI called ``name``; a :class:`ConfigError` with the nearest name when there is none."""
        try:
            return self.kpis[name]
        except (KeyError, TypeError):
            pass
        extra = f" ({name} is a measure; KPIs are built on measures)" if name in self.measures else ""
        raise ConfigError(
            f"Unknown KPI {name!r}{extra}.{suggest(str(name), self.kpis)} "
            f"`crmlib kpis list` shows the {len(self.kpis)} KPIs of the catalog."
        )

    def measure(self, name: str) -> Measure:
        if name not in self.measures:
            raise ConfigError(f"Unknown measure {name!r}.{suggest(str(name), self.measures)}")
        return self.measures[name]

    def dimension(self, name: str) -> Dimension:
        if name not in self.dimensions:
            raise ConfigError(
                f"Unknown dimension {name!r}.{suggest(str(name), self.dimensions)} "
                f"Dimensions: {', '.join(self.dimensions)}."
            )
        return self.dimensions[name]

    def __contains__(self, name: object) -> bool:
        return name in self.kpis

    def __iter__(self):
        return iter(self.kpis.values())

    def __len__(self) -> int:
        return len(self.kpis)

    @property
    def areas(self) -> tuple[str, ...]:
        """Areas in order of first appearance."""
        return tuple(dict.fromkeys(k.area for k in self.kpis.values()))

    def area_label(self, area: str, lang: str = "en") -> str:
        label = self.area_labels.get(area)
        return label.get(lang) if label else area

    def list(self, area: str | None = None) -> tuple[Kpi, ...]:
        """KPIs of one area (all when None), in catalog order."""
        if area is not None and area not in self.areas:
            raise ConfigError(
                f"Unknown area {area!r}.{suggest(area, self.areas)} Areas: {', '.join(self.areas)}."
            )
        return tuple(k for k in self.kpis.values() if area is None or k.area == area)

    # --- resolution ---------------------------------------------------------------------------
    def dependencies(self, name: str) -> tuple[str, ...]:
        """Every KPI ``name`` needs, dependencies first, ending with ``name`` itself."""
        order: list[str] = []

        def visit(n: str) -> None:
            for ref in self.get(n).kpi_refs:
                visit(ref)
            if n not in order:
                order.append(n)

        visit(name)
        return tuple(order)

    def measures_for(self, name: str) -> tuple[Measure, ...]:
        """The measures a KPI reads, through derived KPIs too, without duplicates."""
        names = [m for dep in self.dependencies(name) for m in self.get(dep).measure_names]
        return tuple(self.measures[m] for m in dict.fromkeys(names))

    def tables_for(self, name: str) -> tuple[str, ...]:
        """The canonical tables a KPI reads (fx_rates when money is converted; dimension tables not included)."""
        tables: list[str] = []
        for dep in self.dependencies(name):
            k = self.get(dep)
            if isinstance(k, ExternalKpi):
                tables += [k.table, *k.extra_tables]
        tables += [m.table for m in self.measures_for(name)]
        if any(m.money for m in self.measures_for(name)):
            tables.append("fx_rates")
        return tuple(dict.fromkeys(tables))

    def dimension_tables_for(self, name: str, dimension: str) -> tuple[str, ...]:
        """Tables joined to group KPI ``name`` by ``dimension`` (beyond its fact tables)."""
        dim = self.dimension(dimension)
        return tuple(
            dict.fromkeys(
                p.target for t in self.tables_for(name) if (p := dim.paths.get(t)) is not None and p.via
            )
        )

    def time_columns(self, name: str) -> tuple[str, ...]:
        """``table.column`` of every measure's period (``table.start (snapshot)`` for snapshots)."""
        return tuple(
            dict.fromkeys(
                f"{m.table}.{m.time}"
                if m.time
                else f"{m.table}.{m.snapshot.start}..{m.snapshot.end or ''} (snapshot)"
                for m in self.measures_for(name)
            )
        )

    # --- words (crmlib.kpis.describe) ---------------------------------------------------------
    def formula(self, name: str, lang: str | None = None) -> str:
        """The formula in words: the declared one, else one built from the spec."""
        return _words.formula(self, name, lang)

    def describe(self, name: str, lang: str | None = None) -> dict[str, Any]:
        """Everything a reader needs about a KPI, in ``lang`` (default: ``CRMLIB_LANG``): label,
        description, formula, type, unit, format, direction, source tables, time columns, measures,
        dimensions, and per type the KPIs used, window or provider. For ``crmlib kpis show``."""
        return _words.describe(self, name, lang)

    def describe_text(self, name: str, lang: str | None = None) -> str:
        """:meth:`describe` as a few lines of text."""
        return _words.describe_text(self, name, lang)


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------
_LISTINGS: dict[Path, tuple[int, tuple[Path, ...]]] = {}


def _yaml_files(folder: Path) -> tuple[Path, ...]:
    """The folder's *.yaml/*.yml files, sorted; listed again only when the folder changes (a file added,
    removed or renamed changes its modification time): :func:`default_catalog` asks on every call."""
    stamp = folder.stat().st_mtime_ns
    kept = _LISTINGS.get(folder)
    if kept is None or kept[0] != stamp:
        kept = (stamp, tuple(sorted(q for q in folder.iterdir() if q.suffix in (".yaml", ".yml") and q.is_file())))
        _LISTINGS[folder] = kept
    return kept[1]


def package_files() -> tuple[Path, ...]:
    names = {p.name for p in _yaml_files(PACKAGE_DIR) if p.suffix == ".yaml"}
    others = sorted(n for n in names if n not in PACKAGE_FILES)
    return tuple(PACKAGE_DIR / n for n in (*PACKAGE_FILES, *others) if n in names)


def user_files(paths: PathsArg, problems: list[CatalogProblem]) -> tuple[Path, ...]:
    """The files named by ``paths`` (or ``CRMLIB_KPI_PATH``): files as given, folders' *.yaml/*.yml by name."""
    if paths is None:
        paths = os.environ.get(ENV_VAR, "")
    if isinstance(paths, str | os.PathLike):
        entries = (
            [e for e in str(paths).split(os.pathsep) if e.strip()] if isinstance(paths, str) else [paths]
        )
    else:
        entries = list(paths)
    out: list[Path] = []
    for entry in entries:
        p = Path(entry).expanduser()
        if p.is_dir():
            out += _yaml_files(p)
        elif p.is_file():
            out.append(p)
        else:
            problems.append(
                CatalogProblem(
                    str(p),
                    "file",
                    None,
                    None,
                    "no such file or folder.",
                    f"Fix {ENV_VAR} or the paths given to load_catalog().",
                )
            )
    return tuple(dict.fromkeys(out))


def read_file(path: Path, problems: list[CatalogProblem]) -> FileSpec | None:
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(
            CatalogProblem(file, "file", None, None, f"cannot be read ({exc}).", "Save it as UTF-8 text.")
        )
        return None
    try:
        data, duplicates = load_yaml(text)
    except yaml.YAMLError as exc:
        reason = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        problems.append(
            CatalogProblem(
                file,
                "file",
                None,
                None,
                f"is not valid YAML: {reason}.",
                "Check the indentation and quoting on that line.",
                yaml_error_line(exc),
            )
        )
        return None
    for d in duplicates:
        problems.append(
            CatalogProblem(
                file,
                "file",
                None,
                str(d.key),
                f"key {d.key!r} appears twice in one mapping (lines {d.first_line} and {d.line}); only the last would count.",
                "Remove or rename one of them.",
                d.line,
                "duplicate-key",
            )
        )
    return parse_file(file, data, problems)


def merge(files: list[FileSpec]) -> Model:
    """Merge files in order; a later definition of a name needs ``override: true``."""
    model = Model()
    for section, kind in (("dimensions", "dimension"), ("measures", "measure"), ("kpis", "KPI")):
        merged: dict[str, Item] = getattr(model, section)
        for fs in files:
            for item in getattr(fs, section):
                name = item.loc.name
                prev = merged.get(name)
                if prev is not None and item.override:
                    merged[name] = item
                elif prev is not None:
                    where = f"{prev.loc.file}:{prev.loc.line()}" if prev.loc.line() else prev.loc.file
                    item.loc.add(
                        None,
                        f"{kind} {name} is already defined in {where}.",
                        "Give it another name, or add override: true to replace that definition.",
                        rule="duplicate-name",
                    )
                else:
                    if item.override:
                        item.loc.add(
                            "override",
                            f"override: true, but no earlier {kind} is called {name}.{suggest(name, merged)}",
                            "Remove override: or fix the name.",
                            rule="duplicate-name",
                        )
                    merged[name] = item
    return model


def _normal_filter(f: Filter, table: str) -> Filter:
    col = TABLES[table].column(f.column)
    if col.dtype not in ("date", "datetime") or f.value is None:
        return Filter(f.column, f.op, tuple(f.value) if isinstance(f.value, list) else f.value)
    if isinstance(f.value, list):
        return Filter(f.column, f.op, tuple(to_time(v, col.dtype) for v in f.value))
    return Filter(f.column, f.op, to_time(f.value, col.dtype))


def freeze(model: Model, files: tuple[str, ...], area_labels: dict[str, Text]) -> Catalog:
    """Fill in what the schema tells (money, enums, join keys, resolved dimensions) and freeze."""
    dims = {}
    for name, item in model.dimensions.items():
        d: Dimension = item.record
        paths = {}
        enum = None
        for table, p in d.paths.items():
            col, key, _ = resolve_path(p)
            paths[table] = dataclasses.replace(p, target_key=key)
            enum = enum or col.enum
        dims[name] = dataclasses.replace(d, paths=MappingProxyType(paths), enum=enum)
    measures = {}
    for name, item in model.measures.items():
        m: Measure = item.record
        money = measure_is_money(m)
        snapshot = m.snapshot and dataclasses.replace(
            m.snapshot, end_if=tuple(_normal_filter(f, m.table) for f in m.snapshot.end_if)
        )
        measures[name] = dataclasses.replace(
            m,
            money=money,
            currency_column=TABLES[m.table].column(m.column).currency if money else None,
            filters=tuple(_normal_filter(f, m.table) for f in m.filters),
            snapshot=snapshot,
        )
    kpis = {
        name: dataclasses.replace(item.record, dimensions=effective_dimensions(name, model))
        for name, item in model.kpis.items()
    }
    return Catalog(
        MappingProxyType(kpis),
        MappingProxyType(measures),
        MappingProxyType(dims),
        files,
        MappingProxyType(area_labels),
    )


def load_catalog(paths: PathsArg = None, *, package: bool = True) -> Catalog:
    """Read, merge and validate the package catalog and the user's files.

    ``paths``: files or folders (a list, or one string with ``os.pathsep`` between entries); when None,
    ``CRMLIB_KPI_PATH``. ``package=False`` reads only the user's files. Raises :class:`CatalogError`
    listing every problem.
    """
    problems: list[CatalogProblem] = []
    files = [*(package_files() if package else ()), *user_files(paths, problems)]
    specs = [s for f in files if (s := read_file(f, problems)) is not None]
    area_labels: dict[str, Text] = {}
    for s in specs:
        if s.area and s.area_label:
            area_labels.setdefault(s.area, s.area_label)
    model = merge(specs)
    run_rules(model)
    if problems:
        raise CatalogError(_sorted(problems, specs))
    return freeze(model, tuple(str(f) for f in files), area_labels)


def _sorted(problems: list[CatalogProblem], specs: list[FileSpec]) -> list[CatalogProblem]:
    order = {s.file: i for i, s in enumerate(specs)}
    return sorted(problems, key=lambda p: (order.get(p.file, -1), p.line or 0))


@lru_cache(maxsize=4)
def _cached(env: str, stamps: tuple[tuple[str, float], ...]) -> Catalog:
    return load_catalog(env)


def default_catalog() -> Catalog:
    """The catalog of the package and ``CRMLIB_KPI_PATH``, cached until the variable or a file changes."""
    env = os.environ.get(ENV_VAR, "")
    ignored: list[CatalogProblem] = []  # load_catalog reports missing files itself
    stamps = tuple((str(p), p.stat().st_mtime) for p in (*package_files(), *user_files(env, ignored)))
    return _cached(env, stamps)


def problems_of(paths: PathsArg = None, *, package: bool = True) -> list[CatalogProblem]:
    """The problems :func:`load_catalog` would raise (empty when the catalog is valid)."""
    try:
        load_catalog(paths, package=package)
    except CatalogError as exc:
        return exc.problems
    return []


__all__ = ["Catalog", "default_catalog", "load_catalog", "problems_of"]
