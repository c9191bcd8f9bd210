"""Reader for SQL database sources: PostgreSQL and SQLite.

Tables are matched to the canonical model by name (case-insensitively), and so are their columns; a
canonical column the table lacks comes back as nulls, extra columns are ignored, and a canonical table
the database lacks comes back empty (with its columns). Each table is read with one query on its first
``scan()`` and cached; the frame returned is lazy and conformed (:func:`crmlib.schema.conform`).

PostgreSQL
    ``postgresql://user@host:port/database`` (``postgres://`` works too).

    * **Credentials come from the environment**, never from notebook parameters: put the whole URL,
      password included, in ``CRMLIB_DB_URL`` and open the source ``"db"``; or leave the password out of
      the URL and set libpq's ``PGPASSWORD``. Every message shows the URL with its password hidden
      (:func:`crmlib.sources.redact`).
    * **Schema**: tables are looked up in ``public`` unless the URL says ``?schema=crm`` or
      ``CRMLIB_DB_SCHEMA=crm`` is set (the URL wins).
    * ``timestamp with time zone`` columns are read as the wall-clock time in the server's ``TimeZone``
      setting (what psql shows), since canonical datetimes are naive local business time.
    * Other libpq URL parameters (``sslmode``, ``connect_timeout``...) are passed on.
    * The connection and the catalog go through libpq (the ADBC driver), which fails fast with a clear
      message; table data is read with connectorx (NUMERIC arrives as Decimal and is cast to float by
      ``conform``). connectorx does not read ``~/.pgpass``: use ``PGPASSWORD`` or the URL.

SQLite
    ``sqlite:///relative/path.sqlite`` or ``sqlite:////absolute/path.sqlite`` (SQLAlchemy's convention; when
    the relative reading names no existing file, the path is taken as absolute, so
    ``sqlite:///tmp/crm.sqlite`` finds ``/tmp/crm.sqlite``). The file is opened read-only. SQLite columns are
    loosely typed, so values are read with the standard library and parsed by ``conform``: dates and
    timestamps as ISO text (``2024-05-01``, ``2024-05-01 13:45:00.250000``), booleans as 0/1 or text.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import sqlite3
from pathlib import Path
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

import polars as pl

from .. import schema
from ..errors import ConfigError, SourceError

__all__ = ["PgTarget", "SqlReader", "pg_target", "sqlite_path"]

SCHEMA_ENV = "CRMLIB_DB_SCHEMA"
_PW_SCRUB_MIN = 4  # literal passwords shorter than this are not scrubbed from driver messages (too ambiguous)


def _redact(text: str) -> str:
    from . import redact  # late import: crmlib.sources imports this module lazily

    return redact(text)


def quote_ident(name: str) -> str:
    """An SQL identifier in double quotes (PostgreSQL, SQLite, DuckDB)."""
    return '"' + name.replace('"', '""') + '"'


# ---------------------------------------------------------------------------------------------------
# PostgreSQL URLs
# ---------------------------------------------------------------------------------------------------
class PgTarget:
    """A PostgreSQL URL taken apart: what libpq gets, what connectorx gets, the schema, what may be shown."""

    def __init__(self, libpq_url: str, cx_url: str, schema_name: str, display: str, password: str | None):
        self.libpq_url = libpq_url  # for ADBC/libpq: no `schema` parameter; libpq reads PGPASSWORD itself
        self.cx_url = cx_url  # for connectorx: the password filled in from PGPASSWORD when the URL has none
        self.schema = schema_name
        self.display = display  # password hidden
        self._password = password

    def scrub(self, text: str) -> str:
        """Driver messages with any URL password hidden, and the literal password too."""
        out = _redact(str(text))
        if self._password and len(self._password) >= _PW_SCRUB_MIN:
            out = out.replace(self._password, "***").replace(quote(self._password, safe=""), "***")
        return out.strip()

    def __repr__(self) -> str:
        return f"PgTarget({self.display!r}, schema={self.schema!r})"


def pg_target(url: str) -> PgTarget:
    """Split a ``postgresql://`` URL into its libpq and connectorx forms and its schema (see the module doc)."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in {"postgresql", "postgres", "postgresql+psycopg", "postgresql+psycopg2"}:
        raise ConfigError(f"Not a PostgreSQL URL: {_redact(url)!r}. Use postgresql://user@host:port/database.")
    params = parse_qsl(parts.query, keep_blank_values=True)
    schema_name = next((v for k, v in params if k == "schema"), None) or os.environ.get(SCHEMA_ENV) or "public"
    params = [(k, v) for k, v in params if k != "schema"]
    query = urlencode(params)
    libpq_url = urlunsplit(("postgresql", parts.netloc, parts.path, query, ""))

    password = unquote(parts.password) if parts.password is not None else None
    netloc = parts.netloc
    env_pw = os.environ.get("PGPASSWORD")
    if password is None and env_pw:
        host = netloc.rpartition("@")[2]
        user = parts.username or os.environ.get("PGUSER") or getpass.getuser()
        netloc = f"{quote(unquote(user), safe='')}:{quote(env_pw, safe='')}@{host}"
        password = env_pw
    cx_url = urlunsplit(("postgresql", netloc, parts.path, query, ""))
    return PgTarget(libpq_url, cx_url, schema_name, _redact(libpq_url) + _schema_suffix(schema_name), password)


def _schema_suffix(schema_name: str) -> str:
    return "" if schema_name == "public" else f" (schema {schema_name})"


def pg_connect(target: PgTarget, autocommit: bool = False):
    """An ADBC (libpq) DB-API connection, or a :class:`SourceError` that shows no password."""
    import adbc_driver_postgresql.dbapi as pgdb

    try:
        return pgdb.connect(target.libpq_url, autocommit=autocommit)
    except Exception as exc:  # adbc_driver_manager.Error and friends
        raise SourceError(
            f"Cannot connect to PostgreSQL at {target.display}: {target.scrub(exc)}. "
            "Is the server running and reachable from here? Is CRMLIB_DB_URL right (user, host, port, database)? "
            "Give the password in CRMLIB_DB_URL or in PGPASSWORD, never in a notebook parameter."
        ) from None


# ---------------------------------------------------------------------------------------------------
# SQLite paths
# ---------------------------------------------------------------------------------------------------
def sqlite_path(url: str, for_writing: bool = False) -> Path:
    """The file a ``sqlite:///...`` URL names (see the module doc for relative and absolute paths)."""
    text = url.strip()
    if not text.lower().startswith("sqlite://"):
        raise ConfigError(f"Not an SQLite URL: {text!r}. Use sqlite:///path/to/file.sqlite.")
    rest = text[len("sqlite://"):]
    rest = rest.split("?", 1)[0]
    if not rest.startswith("/") or rest in {"/", ""}:
        raise ConfigError(
            f"SQLite URL {text!r} names no file. Use sqlite:///relative/path.sqlite or sqlite:////absolute/path.sqlite."
        )
    sa_path = Path(unquote(rest[1:])).expanduser()  # SQLAlchemy: what follows the third slash
    if sa_path.is_absolute():
        return sa_path
    absolute = Path("/") / sa_path
    probe = (lambda p: p.parent.is_dir()) if for_writing else (lambda p: p.exists())
    if not probe(sa_path.resolve()) and probe(absolute):
        return absolute
    return sa_path.resolve()


# ---------------------------------------------------------------------------------------------------
# The reader
# ---------------------------------------------------------------------------------------------------
class SqlReader:
    """Canonical tables from PostgreSQL (``kind="postgres"``) or SQLite (``kind="sqlite"``).

    ``location`` is the database URL. The constructor connects once to list tables and columns, so a
    wrong URL fails here, with a :class:`SourceError` that never shows the password.
    """

    def __init__(self, kind: str, location: str) -> None:
        if kind not in {"postgres", "sqlite"}:
            raise SourceError(f"SqlReader reads PostgreSQL or SQLite, not {kind!r}.")
        self.kind = kind
        self._frames: dict[str, pl.DataFrame] = {}
        # canonical table -> (actual table name, {canonical column: (actual column, is timestamptz)})
        self._catalog: dict[str, tuple[str, dict[str, tuple[str, bool]]]] = {}
        if kind == "postgres":
            self._pg = pg_target(location)
            self.display = self._pg.display
            self._load_pg_catalog()
        else:
            self._path = sqlite_path(location)
            self.display = str(self._path)
            self._load_sqlite_catalog()

    # -- catalog ----------------------------------------------------------------------------------
    def _match(self, columns: list[tuple[str, str, bool]]) -> None:
        """Keep the canonical tables and columns among (table, column, is_timestamptz) triples.

        Names match case-insensitively (an exact lower-case table name wins over e.g. ``Accounts``).
        """
        by_table: dict[str, dict[str, tuple[str, bool]]] = {}
        for tname, cname, tz in columns:
            by_table.setdefault(tname, {})[cname.lower()] = (cname, tz)
        wanted = {n.lower(): n for n in schema.TABLE_NAMES}
        for actual in sorted(by_table, key=lambda t: (t.lower(), t != t.lower())):
            canonical = wanted.get(actual.lower())
            if canonical is None or canonical in self._catalog:
                continue
            cols = by_table[actual]
            mapping = {c: cols[c.lower()] for c in schema.table(canonical).column_names if c.lower() in cols}
            self._catalog[canonical] = (actual, mapping)

    def _load_pg_catalog(self) -> None:
        con = pg_connect(self._pg, autocommit=True)
        try:
            cur = con.cursor()
            try:
                cur.execute(
                    "SELECT table_name, column_name, data_type = 'timestamp with time zone' "
                    "FROM information_schema.columns WHERE table_schema = $1 ORDER BY table_name, ordinal_position",
                    (self._pg.schema,),
                )
                rows = cur.fetchall()
            finally:
                cur.close()
        except SourceError:
            raise
        except Exception as exc:
            raise SourceError(
                f"Cannot list the tables of PostgreSQL at {self._pg.display}: {self._pg.scrub(exc)}. "
                "Check that the user may read information_schema and the schema exists."
            ) from None
        finally:
            con.close()
        self._match([(t, c, bool(tz)) for t, c, tz in rows])

    def _sqlite_connect(self) -> sqlite3.Connection:
        if not self._path.is_file():
            raise SourceError(
                f"SQLite file {self._path} does not exist. Check the path in the URL: sqlite:///relative/path "
                "or sqlite:////absolute/path (export one with `crmlib data export sqlite:///path`)."
            )
        try:
            return sqlite3.connect(f"{self._path.as_uri()}?mode=ro", uri=True)
        except sqlite3.Error as exc:
            raise SourceError(f"Cannot open SQLite file {self._path}: {exc}.") from None

    def _load_sqlite_catalog(self) -> None:
        con = self._sqlite_connect()
        try:
            names = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")]
            pairs = []
            for name in names:
                for row in con.execute("SELECT name FROM pragma_table_info(?)", (name,)):
                    pairs.append((name, row[0], False))
        except sqlite3.Error as exc:
            raise SourceError(
                f"Cannot read the table list of SQLite file {self._path}: {exc}. Is it an SQLite database?"
            ) from None
        finally:
            con.close()
        self._match(pairs)

    # -- reader protocol --------------------------------------------------------------------------
    def available(self) -> tuple[str, ...]:
        return tuple(t for t in schema.TABLE_NAMES if t in self._catalog)

    def scan(self, name: str) -> pl.LazyFrame:
        schema.table(name)
        if name not in self._catalog:
            return schema.empty_frame(name).lazy()
        if name not in self._frames:
            self._frames[name] = self._read(name)
        return schema.conform(self._frames[name].lazy(), name)

    def close(self) -> None:
        self._frames.clear()

    # -- reading ----------------------------------------------------------------------------------
    def _select(self, name: str) -> str:
        actual, mapping = self._catalog[name]
        if not mapping:
            return ""
        exprs = []
        for canonical, (column, tz) in mapping.items():
            expr = quote_ident(column)
            if tz:  # timestamptz: the wall-clock time in the server's time zone, as psql shows it
                expr = f"({expr} AT TIME ZONE current_setting('TimeZone'))"
            exprs.append(expr if expr == quote_ident(canonical) else f"{expr} AS {quote_ident(canonical)}")
        where = f"{quote_ident(self._pg.schema)}." if self.kind == "postgres" else ""
        return f"SELECT {', '.join(exprs)} FROM {where}{quote_ident(actual)}"

    def _read(self, name: str) -> pl.DataFrame:
        query = self._select(name)
        if not query:  # a table with none of the canonical columns
            return schema.empty_frame(name)
        return self._read_pg(name, query) if self.kind == "postgres" else self._read_sqlite(name, query)

    def _read_pg(self, name: str, query: str) -> pl.DataFrame:
        try:
            return pl.read_database_uri(query, self._pg.cx_url, engine="connectorx")
        except Exception as exc:
            raise SourceError(
                f"Cannot read table {name} from PostgreSQL at {self._pg.display}: {self._pg.scrub(exc)}. "
                "Is the server still running? Does the user have SELECT permission on the table?"
            ) from None

    def _read_sqlite(self, name: str, query: str) -> pl.DataFrame:
        con = self._sqlite_connect()
        try:
            # infer_schema_length=None: SQLite columns can hold mixed types; a mixed column becomes text
            # and conform() parses it.
            return pl.read_database(query, con, infer_schema_length=None)
        except sqlite3.Error as exc:
            raise SourceError(f"Cannot read table {name} from SQLite file {self._path}: {exc}.") from None
        finally:
            with contextlib.suppress(sqlite3.Error):
                con.close()

    def __repr__(self) -> str:
        return f"SqlReader({self.kind!r}, {self.display!r})"
