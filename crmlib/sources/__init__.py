"""Where data comes from. ``crmlib.open(source)`` returns a :class:`Crm` handle of lazy canonical tables.

A source is one of

* a DuckDB file (``data/crm.duckdb``, ``*.duckdb``, ``*.db``, or ``duckdb:///path``);
* a folder of Parquet or CSV files named after the canonical tables (``opportunities.parquet``, ``cases.csv``);
* ``sqlite:///path/to/file.sqlite``;
* ``postgresql://user@host:port/db`` (a password, if any, should come from the environment:
  pass ``"db"`` to use ``$CRMLIB_DB_URL``);
* ``None``: ``$CRMLIB_SOURCE``, else the embedded warehouse ``data/crm.duckdb``, created from the demo
  simulator on first use.

Database URLs are never printed with their password (:func:`redact`).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from .. import config, schema
from ..errors import ConfigError, SourceError

__all__ = ["Crm", "open", "redact", "resolve"]

# The password runs to the last "@" before the host (people write raw "@" in passwords).
_URL_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^:/@\s]*):(?P<pw>[^/\s]*)@", re.IGNORECASE)


def redact(text: str) -> str:
    """Hide the password of any URL in ``text``: ``postgresql://u:secret@h/db`` -> ``postgresql://u:***@h/db``."""
    return _URL_PASSWORD.sub(lambda m: f"{m['head']}:***@", str(text))


@dataclass(frozen=True)
class Resolved:
    kind: str  # duckdb | files | postgres | sqlite
    location: str  # path or URL (may hold a password: never print it, use .display)

    @property
    def display(self) -> str:
        return redact(self.location)


def resolve(source: str | os.PathLike | None = None) -> Resolved:
    """Work out what kind of source ``source`` names, without opening it."""
    if source is None:
        source = config.default_source()
    text = str(source).strip()
    if text in {"db", "$CRMLIB_DB_URL", "env:CRMLIB_DB_URL"}:
        url = os.environ.get("CRMLIB_DB_URL")
        if not url:
            raise ConfigError(
                "The source is 'db' but CRMLIB_DB_URL is not set. Export CRMLIB_DB_URL=postgresql://user:pw@host/db "
                "(or sqlite:///path) in the environment that runs crmlib."
            )
        text = url.strip()
    low = text.lower()
    if low.startswith(("postgresql://", "postgres://", "postgresql+psycopg://")):
        return Resolved("postgres", text)
    if low.startswith("sqlite://"):
        return Resolved("sqlite", text)
    if low.startswith("duckdb://"):
        return Resolved("duckdb", str(Path(text[len("duckdb://"):]).expanduser().resolve()))
    if "://" in text:
        raise ConfigError(
            f"Unsupported source URL {redact(text)!r}. Use a .duckdb file, a folder of Parquet/CSV files, "
            "sqlite:///path or postgresql://user@host/db."
        )
    path = Path(text).expanduser()
    if path.is_dir():
        return Resolved("files", str(path.resolve()))
    if path.suffix.lower() in {".duckdb", ".db", ".ddb"} or not path.suffix:
        return Resolved("duckdb", str(path.resolve()))
    if path.suffix.lower() in {".sqlite", ".sqlite3"}:
        return Resolved("sqlite", f"sqlite:///{path.resolve()}")
    raise ConfigError(
        f"Cannot tell what kind of source {text!r} is. Give a .duckdb file, a folder of Parquet/CSV files named "
        "after the tables, sqlite:///path or postgresql://user@host/db."
    )


_ONCE_LOCK = threading.Lock()


class _Once:
    """A value of :meth:`Crm.once` being computed, or computed, by one thread."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.value = None
        self.error: BaseException | None = None


def _settle(store: dict, key, entry: _Once, mine: bool, compute):
    """The value of ``store[key]``, ``entry``: computed here when ``mine`` (on failure it is dropped from
    ``store``, so that the next caller tries again, and the error is raised to every waiter), else waited
    for."""
    if mine:
        try:
            entry.value = compute()
        except BaseException as exc:
            entry.error = exc
            with _ONCE_LOCK:
                if store.get(key) is entry:
                    del store[key]
            raise
        finally:
            entry.done.set()
        return entry.value
    entry.done.wait()
    if entry.error is not None:
        raise entry.error
    return entry.value


@dataclass
class Crm:
    """A handle on canonical CRM tables. Tables are polars ``LazyFrame``s with canonical columns and types.

    ``crm.opportunities`` and ``crm.table("opportunities")`` are the same. A table the source lacks comes
    back empty (with its columns); :meth:`info` shows which tables have rows.
    """

    resolved: Resolved
    _reader: object = field(repr=False)
    _cache: dict[str, pl.LazyFrame] = field(default_factory=dict, repr=False)
    _memo: dict = field(default_factory=dict, repr=False)
    _batch: dict | None = field(default=None, repr=False)

    # -- tables ---------------------------------------------------------------------------------
    def table(self, name: str) -> pl.LazyFrame:
        schema.table(name)  # validates the name, with a suggestion
        if name not in self._cache:
            self._cache[name] = self._reader.scan(name)
        return self._cache[name]

    def __getattr__(self, name: str) -> pl.LazyFrame:
        if name in schema.TABLES:
            return self.table(name)
        raise AttributeError(name)

    def collect(self, name: str) -> pl.DataFrame:
        return self.table(name).collect()

    @property
    def source(self) -> str:
        """The source as it may be shown (password hidden)."""
        return self.resolved.display

    def memo(self, key: tuple, compute):
        """``compute()`` once per ``key`` for this handle (the last 16 results are kept): for analyses
        that several dashboard sections or report cells share, such as an attribution run. Sections
        computed at the same time (threads) asking for the same key share one computation."""
        with _ONCE_LOCK:
            entry = self._memo.pop(key, None)
            mine = entry is None
            if mine:
                entry = _Once()
                while len(self._memo) >= 16:
                    self._memo.pop(next(iter(self._memo)))
            self._memo[key] = entry  # most recently used last
        return _settle(self._memo, key, entry, mine, compute)

    @contextlib.contextmanager
    def batch(self):
        """A block of work that reads the data as one moment: inside it :meth:`once` computes each key
        once (a dashboard update re-draws many sections that all look up, say, the data's last day and the
        exchange rates). Outside any batch nothing is kept, so later calls see fresh data."""
        if self._batch is not None:  # nested: the outer batch decides
            yield self
            return
        self._batch = {}
        try:
            yield self
        finally:
            self._batch = None

    def once(self, key: tuple, compute):
        """``compute()``, computed once per ``key`` inside a :meth:`batch` (every time outside one). Threads
        of a batch (a dashboard computes its sections two at a time) asking for a key another thread is
        computing wait for that result instead of computing it again."""
        batch = self._batch
        if batch is None:
            return compute()
        with _ONCE_LOCK:
            entry = batch.get(key)
            mine = entry is None
            if mine:
                entry = batch[key] = _Once()
        return _settle(batch, key, entry, mine, compute)

    def once_frame(self, key: tuple, make) -> pl.LazyFrame:
        """``make()``, a lazy frame; inside a :meth:`batch` collected once per ``key`` and shared by every
        caller of the batch (outside one, the lazy frame itself, so callers' filters still push down)."""
        if self._batch is None:
            return make()
        return self.once(key, lambda: make().collect()).lazy()

    @property
    def kind(self) -> str:
        return self.resolved.kind

    @property
    def available_tables(self) -> tuple[str, ...]:
        """Canonical tables the source actually holds (possibly empty)."""
        return self._reader.available()

    def kpis(self, kpis, by=(), grain="month", period=None, filters=None, compare=None, targets=True,
             backend="auto", catalog=None, as_of=None) -> pl.DataFrame:
        """KPI values by period and dimension, with comparison and targets: see :func:`crmlib.kpis.evaluate`."""
        from ..kpis.engine import evaluate

        return evaluate(self, kpis, by=by, grain=grain, period=period, filters=filters, compare=compare,
                        targets=targets, backend=backend, catalog=catalog, as_of=as_of)

    # -- summaries ------------------------------------------------------------------------------
    def row_counts(self) -> dict[str, int]:
        return {name: self.table(name).select(pl.len()).collect().item() for name in schema.TABLE_NAMES}

    def checksums(self) -> dict[str, str]:
        """An order-independent checksum of every table's content (canonical types).

        Equal checksums mean equal multisets of rows, whatever the source kind; this is how the
        PostgreSQL and Parquet exports are checked against the warehouse.
        """
        out = {}
        for name in schema.TABLE_NAMES:
            lf = self.table(name)
            cols = schema.table(name).column_names
            # Hash every row (canonical order), reduce with two order-independent aggregates.
            h = (
                lf.select(pl.struct(cols).hash(seed=0).alias("h"))
                .select(
                    pl.len().alias("n"),
                    (pl.col("h") % 1_000_000_007).sum().alias("s"),
                    (pl.col("h") // 1_000_000_007 % 998_244_353).sum().alias("t"),
                )
                .collect()
                .row(0)
            )
            out[name] = f"{h[0]}:{h[1] or 0:x}:{h[2] or 0:x}"
        return out

    def fingerprint(self) -> str:
        """A short fingerprint of the whole data set (changes when any row changes)."""
        digest = hashlib.sha256()
        for name, value in sorted(self.checksums().items()):
            digest.update(f"{name}={value};".encode())
        return digest.hexdigest()[:16]

    def info(self) -> pl.DataFrame:
        """One row per canonical table: rows, first and last date of its time column."""
        rows = []
        for name in schema.TABLE_NAMES:
            t = schema.table(name)
            lf = self.table(name)
            if t.time_column:
                first, last, n = (
                    lf.select(
                        pl.col(t.time_column).min().cast(pl.String).alias("first"),
                        pl.col(t.time_column).max().cast(pl.String).alias("last"),
                        pl.len(),
                    )
                    .collect()
                    .row(0)
                )
            else:
                first = last = None
                n = lf.select(pl.len()).collect().item()
            rows.append({"table": name, "rows": n, "time_column": t.time_column, "first": first, "last": last})
        return pl.DataFrame(rows, schema={"table": pl.String, "rows": pl.Int64, "time_column": pl.String,
                                          "first": pl.String, "last": pl.String})

    # -- lifetime -------------------------------------------------------------------------------
    def close(self) -> None:
        self._cache.clear()
        self._reader.close()

    def __enter__(self) -> Crm:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Crm(kind={self.kind!r}, source={self.source!r})"


def _ensure_default_warehouse(resolved: Resolved) -> None:
    """Create the embedded demo warehouse on first use, with a one-line message."""
    if resolved.kind != "duckdb" or Path(resolved.location).exists():
        return
    if Path(resolved.location) != config.default_warehouse().resolve():
        raise SourceError(
            f"DuckDB file {resolved.location} does not exist. Check the path, or create a demo warehouse there with "
            f"`crmlib data demo --out {resolved.location}`."
        )
    from .demo import write_demo

    print(
        f"crmlib: no warehouse at {resolved.location}; creating the demo warehouse (seed 42, scale 1) ...",
        file=sys.stderr,
    )
    write_demo(resolved.location, scale=1, seed=42, progress=False)


def open(source: str | os.PathLike | None = None) -> Crm:  # noqa: A001 - crmlib.open is the public name
    """Open a CRM data source and return a :class:`Crm` handle (see the module doc for accepted sources)."""
    resolved = resolve(source)
    if source is None and not os.environ.get("CRMLIB_SOURCE"):
        _ensure_default_warehouse(resolved)
    if resolved.kind == "duckdb":
        from .readers import DuckDBReader

        reader = DuckDBReader(resolved.location)
    elif resolved.kind == "files":
        from .readers import FolderReader

        reader = FolderReader(resolved.location)
    elif resolved.kind in {"postgres", "sqlite"}:
        from .sql import SqlReader

        reader = SqlReader(resolved.kind, resolved.location)
    else:  # pragma: no cover - resolve() returns only the kinds above
        raise SourceError(f"Unknown source kind {resolved.kind}")
    return Crm(resolved, reader)
