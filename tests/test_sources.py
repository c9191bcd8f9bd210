"""Sources and exports: the same data through every kind of source gives the same tables.

The acceptance check: the demo warehouse exported to PostgreSQL (a real server), a Parquet folder, a CSV
folder, SQLite and a second DuckDB file opens through ``crmlib.open`` with identical row counts and
identical per-table checksums. The same holds for ``edge_frames``, a few rows of awkward values in every
column type of every table.
"""

from __future__ import annotations

import hashlib
import sqlite3
from datetime import date, datetime
from pathlib import Path

import adbc_driver_postgresql.dbapi as pgdb
import polars as pl
import pytest

import crmlib
from crmlib import config, schema
from crmlib.errors import ConfigError, SourceError
from crmlib.sources import Resolved, redact, resolve
from crmlib.sources.export import destination, export
from crmlib.sources.sql import pg_target, sqlite_path
from crmlib.sources.warehouse import write_warehouse

SECRET = "S3cret-Pw_xyz"
DESTS = ["parquet", "csv", "sqlite", "duckdb", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(autouse=True)
def _hermetic_env(monkeypatch):
    """Settings from the shell that runs the tests must not change what these tests open."""
    for var in ("CRMLIB_SOURCE", "CRMLIB_DB_URL", "CRMLIB_DB_SCHEMA", "PGPASSWORD"):
        monkeypatch.delenv(var, raising=False)


def _with_query(url: str, query: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}{query}"


def _dest(kind: str, base: Path, request, pg_schema: str) -> tuple[str, dict]:
    """An export destination of the given kind, and the extra export() arguments it needs."""
    if kind == "parquet":
        return str(base / "parquet_out"), {}
    if kind == "csv":
        return str(base / "csv_out"), {"format": "csv"}
    if kind == "sqlite":
        return f"sqlite:///{base / 'out.sqlite'}", {}
    if kind == "duckdb":
        return str(base / "copy.duckdb"), {}
    if kind == "postgres":
        url = request.getfixturevalue("postgres_url")
        return (url if pg_schema == "public" else _with_query(url, f"schema={pg_schema}")), {}
    raise AssertionError(kind)


def _summary(source) -> tuple[dict[str, int], dict[str, str]]:
    with crmlib.open(source) as crm:
        return crm.row_counts(), crm.checksums()


def _pg_exec(url: str, *statements: str) -> None:
    con = pgdb.connect(pg_target(url).libpq_url, autocommit=True)
    try:
        cur = con.cursor()
        for sql in statements:
            cur.execute(sql)
        cur.close()
    finally:
        con.close()


def _pg_tables(url: str, pg_schema: str) -> set[str]:
    con = pgdb.connect(pg_target(url).libpq_url, autocommit=True)
    try:
        cur = con.cursor()
        cur.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = $1", (pg_schema,))
        names = {r[0] for r in cur.fetchall()}
        cur.close()
        return names
    finally:
        con.close()


# ---------------------------------------------------------------------------------------------------
# The acceptance check
# ---------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def demo_summary(demo_warehouse):
    return _summary(demo_warehouse)


def test_demo_warehouse_holds_the_demo_frames(demo_warehouse, demo_frames):
    with crmlib.open(demo_warehouse) as crm:
        for name, frame in demo_frames.items():
            key = list(schema.table(name).primary_key)
            assert crm.collect(name).sort(key).equals(frame.sort(key)), name


@pytest.mark.parametrize("kind", DESTS)
def test_demo_export_round_trips_with_identical_counts_and_checksums(
    kind, demo_warehouse, demo_summary, tmp_path, request
):
    counts, sums = demo_summary
    assert all(n > 0 for n in counts.values()), counts  # every table takes part in the comparison
    dest, kw = _dest(kind, tmp_path, request, pg_schema="public")
    with crmlib.open(demo_warehouse) as src:
        written = export(src, dest, **kw)
    assert written == counts
    with crmlib.open(dest) as crm:
        assert crm.kind == {"parquet": "files", "csv": "files"}.get(kind, kind)
        assert crm.row_counts() == counts
        assert crm.checksums() == sums
        assert crm.fingerprint() == hashlib.sha256(
            "".join(f"{n}={v};" for n, v in sorted(sums.items())).encode()
        ).hexdigest()[:16]
        for name in schema.TABLE_NAMES:
            assert crm.table(name).collect_schema() == schema.table(name).polars_schema, name


@pytest.mark.parametrize("kind", DESTS)
def test_awkward_values_round_trip_exactly(kind, edge_warehouse, edge_frames, tmp_path, request):
    counts, sums = _summary(edge_warehouse)
    assert counts == {t: f.height for t, f in edge_frames.items()}
    dest, kw = _dest(kind, tmp_path, request, pg_schema="edge_cases")
    with crmlib.open(edge_warehouse) as src:
        assert export(src, dest, **kw) == counts
    with crmlib.open(dest) as crm:
        assert crm.row_counts() == counts
        assert crm.checksums() == sums
        for name, expected in edge_frames.items():
            key = list(schema.table(name).primary_key)
            got = crm.collect(name).sort(key)
            assert got.equals(expected.sort(key)), f"{kind}: {name} differs"


# ---------------------------------------------------------------------------------------------------
# resolve() and redact()
# ---------------------------------------------------------------------------------------------------
def test_resolve_names_every_kind_of_source(tmp_path, monkeypatch):
    folder = tmp_path / "exports"
    folder.mkdir()
    wh = tmp_path / "crm.duckdb"
    assert resolve(wh) == Resolved("duckdb", str(wh.resolve()))
    assert resolve(str(tmp_path / "other.db")) == Resolved("duckdb", str((tmp_path / "other.db").resolve()))
    assert resolve(f"duckdb://{wh}") == Resolved("duckdb", str(wh.resolve()))
    assert resolve(folder) == Resolved("files", str(folder.resolve()))
    assert resolve(tmp_path / "c.sqlite") == Resolved("sqlite", f"sqlite:///{(tmp_path / 'c.sqlite').resolve()}")
    assert resolve("sqlite:///data/c.sqlite") == Resolved("sqlite", "sqlite:///data/c.sqlite")
    url = f"postgresql://crm:{SECRET}@db.example:5433/crm?schema=sales"
    assert resolve(url) == Resolved("postgres", url)
    assert resolve(url).display == "postgresql://crm:***@db.example:5433/crm?schema=sales"
    assert resolve("postgres://u@h/d").kind == "postgres"

    monkeypatch.setenv("CRMLIB_DB_URL", url)
    assert resolve("db") == Resolved("postgres", url)
    monkeypatch.delenv("CRMLIB_DB_URL")
    with pytest.raises(ConfigError, match="CRMLIB_DB_URL is not set"):
        resolve("db")
    with pytest.raises(ConfigError, match="Unsupported source URL") as err:
        resolve(f"mysql://root:{SECRET}@h/db")
    assert SECRET not in str(err.value)
    with pytest.raises(ConfigError, match="Cannot tell what kind of source"):
        resolve(tmp_path / "sheet.xlsx")


def test_resolve_default_is_the_project_warehouse(crmlib_home):
    assert resolve(None) == Resolved("duckdb", str(crmlib_home.resolve() / "data" / "crm.duckdb"))


def test_export_destination_kinds(tmp_path, monkeypatch):
    assert destination(tmp_path / "new_folder") == ("folder", str(tmp_path / "new_folder"))
    assert destination(tmp_path) == ("folder", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    assert destination("postgres_dump") == ("folder", str(tmp_path / "postgres_dump"))
    assert destination(tmp_path / "x.duckdb") == ("duckdb", str(tmp_path / "x.duckdb"))
    assert destination(f"duckdb://{tmp_path}/y.ddb") == ("duckdb", str(tmp_path / "y.ddb"))
    assert destination(tmp_path / "x.sqlite3") == ("sqlite", f"sqlite:///{tmp_path / 'x.sqlite3'}")
    assert destination("sqlite:////abs/x.sqlite") == ("sqlite", "sqlite:////abs/x.sqlite")
    assert destination("postgresql://u@h/d?schema=s") == ("postgres", "postgresql://u@h/d?schema=s")
    monkeypatch.setenv("CRMLIB_DB_URL", "postgresql://u@h/d")
    assert destination("db") == ("postgres", "postgresql://u@h/d")
    with pytest.raises(ConfigError, match="one file per table"):
        destination(tmp_path / "all.parquet")
    with pytest.raises(ConfigError, match="Cannot export to") as err:
        destination(f"mysql://u:{SECRET}@h/d")
    assert SECRET not in str(err.value)


def test_sqlite_urls_follow_sqlalchemy_with_an_absolute_fallback(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "rel").mkdir()
    (tmp_path / "rel" / "a.sqlite").touch()
    assert sqlite_path("sqlite:///rel/a.sqlite") == tmp_path / "rel" / "a.sqlite"
    assert sqlite_path(f"sqlite:///{tmp_path}/rel/a.sqlite") == tmp_path / "rel" / "a.sqlite"  # four slashes
    # three slashes, but the relative reading names nothing: the absolute file is meant
    assert sqlite_path(f"sqlite://{tmp_path}/rel/a.sqlite") == tmp_path / "rel" / "a.sqlite"
    assert sqlite_path("sqlite:///rel/new.sqlite", for_writing=True) == tmp_path / "rel" / "new.sqlite"
    with pytest.raises(ConfigError, match="names no file"):
        sqlite_path("sqlite://")


def test_redact_hides_passwords():
    assert redact(f"postgresql://crm:{SECRET}@db:5432/crm") == "postgresql://crm:***@db:5432/crm"
    assert redact("postgresql://crm@db/crm") == "postgresql://crm@db/crm"
    assert redact("postgresql://crm:p%40ss%3Aw%2Frd@db/crm") == "postgresql://crm:***@db/crm"
    two = f"from postgres://a:{SECRET}@h1/x to postgresql+psycopg://b:other-pw@h2/y"
    assert redact(two) == "from postgres://a:***@h1/x to postgresql+psycopg://b:***@h2/y"
    assert redact("no url here: a:b@c") == "no url here: a:b@c"


def test_pg_target_takes_the_password_from_pgpassword_and_never_shows_it(monkeypatch):
    monkeypatch.setenv("PGPASSWORD", SECRET)
    monkeypatch.delenv("CRMLIB_DB_SCHEMA", raising=False)
    t = pg_target("postgresql://crm@db:5432/crm?sslmode=disable&schema=sales")
    assert t.schema == "sales"
    assert t.libpq_url == "postgresql://crm@db:5432/crm?sslmode=disable"  # libpq reads PGPASSWORD itself
    assert t.cx_url == f"postgresql://crm:{SECRET}@db:5432/crm?sslmode=disable"
    assert SECRET not in t.display and SECRET not in repr(t)
    assert t.scrub(f"driver said {SECRET}") == "driver said ***"
    monkeypatch.setenv("CRMLIB_DB_SCHEMA", "crm_env")
    assert pg_target("postgresql://crm@db/crm").schema == "crm_env"
    assert pg_target("postgresql://crm@db/crm?schema=url_wins").schema == "url_wins"


# ---------------------------------------------------------------------------------------------------
# Connection errors
# ---------------------------------------------------------------------------------------------------
def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the block ends: nothing listens there


def test_connection_error_names_the_url_without_its_password(tmp_path, monkeypatch):
    url = f"postgresql://crm:{SECRET}@127.0.0.1:{_closed_port()}/crm"
    with pytest.raises(SourceError) as err:
        crmlib.open(url)
    msg = str(err.value)
    assert SECRET not in msg
    assert "postgresql://crm:***@127.0.0.1" in msg
    assert "Is the server running" in msg and "CRMLIB_DB_URL" in msg

    monkeypatch.setenv("CRMLIB_DB_URL", url)
    with pytest.raises(SourceError) as err:
        crmlib.open("db")
    assert SECRET not in str(err.value)

    with crmlib.open(_empty_folder_source(tmp_path)) as src, pytest.raises(SourceError) as err:
        export(src, url, tables=["fx_rates"])
    assert SECRET not in str(err.value) and "crm:***@" in str(err.value)


def _empty_folder_source(base: Path) -> Path:
    folder = base / "empty_src"
    folder.mkdir()
    schema.empty_frame("fx_rates").write_parquet(folder / "fx_rates.parquet")
    return folder


@pytest.mark.postgres
def test_server_side_error_shows_no_password(postgres_url):
    url = postgres_url.replace("crm@", f"crm:{SECRET}@").rsplit("/", 1)[0] + "/no_such_db"
    with pytest.raises(SourceError) as err:
        crmlib.open(url)
    msg = str(err.value)
    assert SECRET not in msg
    assert "no_such_db" in msg and "does not exist" in msg


def test_missing_sqlite_file_is_a_source_error(tmp_path):
    with pytest.raises(SourceError, match="does not exist"):
        crmlib.open(f"sqlite:///{tmp_path}/nope.sqlite")
    assert not (tmp_path / "nope.sqlite").exists()  # opened read-only: nothing created


# ---------------------------------------------------------------------------------------------------
# Missing tables, foreign shapes, schemas
# ---------------------------------------------------------------------------------------------------
def _fx(n: int = 3) -> pl.DataFrame:
    return pl.DataFrame({"date": [date(2024, 1, d) for d in range(1, n + 1)], "currency": ["USD"] * n,
                         "rate_to_base": [7.0 + i / 100 for i in range(n)]})


@pytest.mark.parametrize("kind", ["parquet", "csv", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_missing_table_is_an_empty_frame_with_canonical_columns(kind, tmp_path, request):
    src_path = tmp_path / "src"
    src_path.mkdir()
    _fx().write_parquet(src_path / "fx_rates.parquet")
    dest, kw = _dest(kind, tmp_path, request, pg_schema="only_fx")
    with crmlib.open(src_path) as src:
        assert export(src, dest, tables=["fx_rates"], **kw) == {"fx_rates": 3}
    with crmlib.open(dest) as crm:
        assert crm.available_tables == ("fx_rates",)
        opp = crm.collect("opportunities")
        assert opp.height == 0
        assert opp.schema == schema.table("opportunities").polars_schema
        assert crm.row_counts()["fx_rates"] == 3
        assert crm.collect("fx_rates").sort("date").equals(schema.conform(_fx(), "fx_rates"))


def test_sqlite_database_of_another_tool_is_conformed(tmp_path):
    path = tmp_path / "other.sqlite"
    con = sqlite3.connect(path)
    # mixed-case names, a missing column (region), an extra column, loose types, ISO text timestamps
    con.execute('CREATE TABLE "Accounts" ("Account_ID" TEXT, "NAME" TEXT, segment, created_at TIMESTAMP, extra INT)')
    con.executemany(
        'INSERT INTO "Accounts" VALUES (?, ?, ?, ?, ?)',
        [("a1", "Acme", "smb", "2024-03-01 09:30:00", 1), (2, "Beta", None, "2024-03-02T10:00:00.250000", "x")],
    )
    con.execute("CREATE TABLE products (product_id TEXT, name TEXT, family TEXT, list_price NUMERIC, "
                "currency TEXT, is_subscription BOOLEAN)")
    con.executemany("INSERT INTO products VALUES (?, ?, ?, ?, ?, ?)",
                    [("p1", "Basic", "core", 100, "CNY", 1), ("p2", "Pro", "core", "250.5", "CNY", "false")])
    con.commit()
    con.close()
    with crmlib.open(f"sqlite:///{path}") as crm:
        assert crm.available_tables == ("accounts", "products")
        acc = crm.collect("accounts").sort("account_id")
        assert acc.schema == schema.table("accounts").polars_schema
        assert acc["account_id"].to_list() == ["2", "a1"]
        assert acc["name"].to_list() == ["Beta", "Acme"]
        assert acc["segment"].to_list() == [None, "smb"]
        assert acc["region"].to_list() == [None, None]
        assert acc["created_at"].to_list() == [datetime(2024, 3, 2, 10, 0, 0, 250000), datetime(2024, 3, 1, 9, 30)]
        prod = crm.collect("products").sort("product_id")
        assert prod["list_price"].to_list() == [100.0, 250.5]
        assert prod["is_subscription"].to_list() == [True, False]


@pytest.mark.postgres
def test_postgres_database_of_another_tool_is_conformed(postgres_url, monkeypatch):
    _pg_exec(
        postgres_url,
        "CREATE SCHEMA foreign_shape",
        'CREATE TABLE foreign_shape."Orders" ("Order_ID" integer, account_id text, ordered_at timestamp(3), '
        "amount numeric(12, 2), currency char(3), status text, note text)",
        "INSERT INTO foreign_shape.\"Orders\" VALUES (1, 'a1', '2024-05-01 08:00:00.125', 1234.56, 'CNY', "
        "'completed', 'x'), (2, 'a2', '2024-05-02 09:00:00', 0.10, 'USD', NULL, NULL)",
        "CREATE VIEW foreign_shape.surveys AS SELECT 's' || g AS survey_id, 'nps' AS type, "
        "timestamp '2024-01-01' + g * interval '1 hour' AS sent_at, g::smallint AS score "
        "FROM generate_series(0, 9) AS g",
    )
    monkeypatch.setenv("CRMLIB_DB_SCHEMA", "foreign_shape")
    with crmlib.open(postgres_url) as crm:
        assert crm.available_tables == ("surveys", "orders")
        orders = crm.collect("orders").sort("order_id")
        assert orders.schema == schema.table("orders").polars_schema
        assert orders["order_id"].to_list() == ["1", "2"]
        assert orders["ordered_at"].to_list() == [datetime(2024, 5, 1, 8, 0, 0, 125000), datetime(2024, 5, 2, 9)]
        assert orders["amount"].to_list() == [1234.56, 0.1]
        assert orders["status"].to_list() == ["completed", None]
        assert orders["product_id"].to_list() == [None, None]
        surveys = crm.collect("surveys")
        assert surveys["score"].sum() == 45
        assert surveys["sent_at"].max() == datetime(2024, 1, 1, 9)


@pytest.mark.postgres
def test_postgres_schema_from_url_and_password_from_pgpassword(postgres_url, tmp_path, monkeypatch):
    monkeypatch.delenv("CRMLIB_DB_SCHEMA", raising=False)
    monkeypatch.setenv("PGPASSWORD", SECRET)  # trust authentication ignores it; connectorx gets it in its URL
    src_path = tmp_path / "src"
    src_path.mkdir()
    _fx(5).write_parquet(src_path / "fx_rates.parquet")
    url = _with_query(postgres_url, "schema=crm_schema")
    with crmlib.open(src_path) as src:
        export(src, url, tables=["fx_rates"])
    assert "fx_rates" in _pg_tables(postgres_url, "crm_schema")
    with crmlib.open(url) as crm:
        assert crm.row_counts()["fx_rates"] == 5
        assert SECRET not in repr(crm) and SECRET not in crm.source
    monkeypatch.setenv("CRMLIB_DB_SCHEMA", "crm_schema")
    with crmlib.open(postgres_url) as crm:
        assert crm.available_tables == ("fx_rates",)


def test_sql_tables_are_read_once_and_cached(tmp_path):
    path = tmp_path / "c.sqlite"
    with crmlib.open(_empty_folder_source(tmp_path)) as src:
        export(src, f"sqlite:///{path}", tables=["fx_rates"])
    con = sqlite3.connect(path)
    con.execute("INSERT INTO fx_rates VALUES ('2024-01-01', 'USD', 7.1)")
    con.commit()
    with crmlib.open(f"sqlite:///{path}") as crm:
        first = crm.collect("fx_rates")
        con.execute("DELETE FROM fx_rates")
        con.commit()
        assert crm.collect("fx_rates").equals(first)  # the first scan's rows, not a new query
        assert first.height == 1
    con.close()


# ---------------------------------------------------------------------------------------------------
# Export: if_exists, atomicity, refusals
# ---------------------------------------------------------------------------------------------------
def _dup_source(tmp_path: Path) -> Path:
    """A folder source whose first tables are fine and whose fx_rates repeats a primary key."""
    src = tmp_path / "dup_src"
    src.mkdir()
    pl.DataFrame({"team_id": ["t1"], "name": ["Team"], "department": ["Sales"], "function": ["sales"]}).write_csv(
        src / "teams.csv")
    pl.concat([_fx(2), _fx(2)]).write_parquet(src / "fx_rates.parquet")
    return src


@pytest.mark.parametrize("kind", ["sqlite", "duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_failed_database_export_writes_nothing(kind, tmp_path, request):
    dest, kw = _dest(kind, tmp_path, request, pg_schema="dup_keys")
    with crmlib.open(_dup_source(tmp_path)) as src, pytest.raises(SourceError) as err:
        export(src, dest, **kw)
    assert "Nothing was written" in str(err.value) or "rolled back" in str(err.value)
    if kind == "postgres":
        assert _pg_tables(dest.split("?")[0], "dup_keys") == set()
    else:
        assert sorted(p.name for p in tmp_path.iterdir()) == ["dup_src"]  # no file, no leftovers


@pytest.mark.parametrize("kind", ["parquet", "csv", "sqlite", "duckdb",
                                  pytest.param("postgres", marks=pytest.mark.postgres)])
def test_existing_destination_fails_unless_replace(kind, tmp_path, request):
    src_path = tmp_path / "src"
    src_path.mkdir()
    _fx(3).write_parquet(src_path / "fx_rates.parquet")
    dest, kw = _dest(kind, tmp_path, request, pg_schema="replace_me")
    with crmlib.open(src_path) as src:
        export(src, dest, tables=["fx_rates"], **kw)
    _fx(6).write_parquet(src_path / "fx_rates.parquet")
    with crmlib.open(src_path) as src:
        with pytest.raises(SourceError, match="already holds"):
            export(src, dest, tables=["fx_rates"], **kw)
        with crmlib.open(dest) as crm:
            assert crm.row_counts()["fx_rates"] == 3  # untouched
        assert export(src, dest, tables=["fx_rates"], if_exists="replace", **kw) == {"fx_rates": 6}
    with crmlib.open(dest) as crm:
        assert crm.row_counts()["fx_rates"] == 6
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert leftovers == []


def test_interrupted_folder_export_leaves_the_previous_folder(tmp_path):
    src_path = tmp_path / "src"
    src_path.mkdir()
    _fx(3).write_parquet(src_path / "fx_rates.parquet")
    dest = tmp_path / "out"
    with crmlib.open(src_path) as src:
        export(src, dest)
    before = {p.name: p.read_bytes() for p in dest.iterdir()}
    assert len(before) == len(schema.TABLE_NAMES)

    def interrupt(name):
        if name == "opportunities":
            raise KeyboardInterrupt

    with crmlib.open(src_path) as src, pytest.raises(KeyboardInterrupt):
        export(src, dest, if_exists="replace", progress=interrupt)
    assert {p.name: p.read_bytes() for p in dest.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "src"]


def test_replace_refuses_a_folder_holding_other_files(tmp_path):
    dest = tmp_path / "mixed"
    dest.mkdir()
    (dest / "notes.txt").write_text("mine")
    with crmlib.open(_empty_folder_source(tmp_path)) as src, pytest.raises(SourceError, match="not table exports"):
        export(src, dest, if_exists="replace")
    assert [p.name for p in dest.iterdir()] == ["notes.txt"]


def test_export_refusals(tmp_path):
    src_path = _empty_folder_source(tmp_path)
    with crmlib.open(src_path) as src:
        with pytest.raises(ConfigError, match="the source itself"):
            export(src, src_path, if_exists="replace")
        with pytest.raises(ConfigError, match="folder destinations only"):
            export(src, tmp_path / "x.duckdb", format="csv")
        with pytest.raises(ConfigError, match="not supported"):
            export(src, tmp_path / "o", format="xlsx")
        with pytest.raises(ConfigError, match="if_exists"):
            export(src, tmp_path / "o", if_exists="append")
        with pytest.raises(ConfigError, match='Did you mean "opportunities"'):
            export(src, tmp_path / "o", tables=["oportunities"])
    assert not (tmp_path / "o").exists() and not (tmp_path / "x.duckdb").exists()


def test_export_of_a_table_subset_in_load_order(tmp_path):
    src_path = tmp_path / "src"
    write_warehouse(src_path.with_suffix(".duckdb"), {"fx_rates": _fx(4)})
    with crmlib.open(src_path.with_suffix(".duckdb")) as src:
        assert list(export(src, tmp_path / "o", tables="fx_rates, teams")) == ["teams", "fx_rates"]
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["fx_rates.parquet", "teams.parquet"]


# ---------------------------------------------------------------------------------------------------
# The default source
# ---------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_open_without_a_source_creates_the_demo_warehouse_once(crmlib_home, capsys):
    target = crmlib_home / "data" / "crm.duckdb"
    assert config.default_warehouse() == target
    with crmlib.open() as crm:
        counts = crm.row_counts()
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "creating the demo warehouse" in lines[0] and str(target) in lines[0]
    assert target.is_file()
    assert counts["opportunities"] > 0 and counts["accounts"] > 0
    with crmlib.open() as crm:  # the second time it is simply opened
        assert crm.row_counts() == counts
    assert capsys.readouterr().err == ""


@pytest.mark.postgres
def test_postgres_timestamptz_is_read_as_server_local_time(postgres_url):
    _pg_exec(postgres_url, "CREATE DATABASE tz_shanghai", "ALTER DATABASE tz_shanghai SET timezone TO 'Asia/Shanghai'")
    url = postgres_url.rsplit("/", 1)[0] + "/tz_shanghai"
    _pg_exec(
        url,
        "CREATE TABLE cases (case_id text, account_id text, created_at timestamptz, closed_at timestamp)",
        "INSERT INTO cases VALUES ('c1', 'a1', '2024-01-01 00:30:00+00', '2024-01-01 09:00:00')",
    )
    with crmlib.open(url) as crm:
        row = crm.collect("cases").row(0, named=True)
    assert row["created_at"] == datetime(2024, 1, 1, 8, 30)  # 00:30 UTC is 08:30 in Shanghai
    assert row["closed_at"] == datetime(2024, 1, 1, 9, 0)  # a plain timestamp is taken as it is
