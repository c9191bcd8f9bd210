"""The engine's backends: which one runs, the DuckDB backend's two ways of running (SQL text compiled from
the narwhals expressions, or narwhals over DuckDB relations), and the DuckDB reader's predicate pushdown.

The numbers themselves are checked against hand-computed values in test_engine.py (for both backends);
here every comparison is between two ways of computing the same thing, on the hand-made fixture.
"""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from kpi_fixture import hand_frames
from polars.testing import assert_frame_equal

import crmlib
from crmlib.errors import ConfigError
from crmlib.kpis import _sql, engine, evaluate, load_catalog
from crmlib.kpis.backends import backend_for
from crmlib.sources.readers import _pushdown
from crmlib.sources.warehouse import write_warehouse

PERIOD = ("2025-01-01", "2025-03-20")
CALLS = [  # every query shape: flows (overlapping windows too), snapshots, conversions, domains, filters
    dict(
        kpis=[
            "revenue",
            "won_deals",
            "win_rate",
            "avg_deal_size",
            "open_pipeline",
            "revenue_ytd",
            "sales_cycle_days",
            "pipeline_created",
        ],
        by=["team"],
        grain="month",
        compare="previous_year",
    ),
    dict(kpis=["new_leads", "lead_to_opportunity", "mqls"], by=["region"], grain="week", as_of="2025-06-30"),
    dict(
        kpis=["new_cases", "open_cases", "median_resolution_hours", "csat", "nps"], by=["team"], grain="day"
    ),
    dict(kpis=["revenue", "won_deals"], by=["user"], grain="month", filters={"region": ["North", None]}),
    dict(kpis=["revenue", "open_cases"], grain="quarter", compare="previous_period"),
]


@pytest.fixture(autouse=True)
def _defaults(monkeypatch):
    monkeypatch.delenv("CRMLIB_BASE_CURRENCY", raising=False)
    monkeypatch.delenv("CRMLIB_KPI_PATH", raising=False)


@pytest.fixture(scope="module")
def cat():
    return load_catalog(paths=[])


@pytest.fixture(scope="module")
def crm(tmp_path_factory):
    path = write_warehouse(tmp_path_factory.mktemp("hand") / "hand.duckdb", hand_frames())
    with crmlib.open(path) as c:
        yield c


def test_auto_runs_in_duckdb_for_a_duckdb_file_and_in_polars_otherwise(crm, tmp_path):
    with backend_for(crm, "auto") as bk:
        assert bk.name == "duckdb" and bk.in_place and bk.sql
    folder = tmp_path / "parquet"
    folder.mkdir()
    hand_frames()["users"].write_parquet(folder / "users.parquet")
    with crmlib.open(folder) as files, backend_for(files, "auto") as bk:
        assert bk.name == "polars"
    with pytest.raises(ConfigError, match='Did you mean "duckdb"'):
        backend_for(crm, "duckbd")


@pytest.mark.parametrize("call", CALLS, ids=lambda c: "+".join(c["kpis"][:2]) + "-" + c["grain"])
def test_sql_text_and_relations_give_the_same_results(crm, cat, call, monkeypatch):
    """The SQL path (the default) against narwhals over DuckDB relations (used when this narwhals
    version cannot compile the expressions) and against polars."""
    sql = evaluate(crm, period=PERIOD, catalog=cat, backend="duckdb", **call)
    polars = evaluate(crm, period=PERIOD, catalog=cat, backend="polars", **call)
    monkeypatch.setattr(_sql.Compiler, "works", lambda self: False)
    monkeypatch.setattr(_sql, "_COMPILES", None)  # the probe runs once per process: run it again
    with backend_for(crm, "duckdb") as bk:
        assert not bk.sql
    relations = evaluate(crm, period=PERIOD, catalog=cat, backend="duckdb", **call)
    assert sql.height > 0
    assert_frame_equal(sql, relations, rel_tol=1e-9, abs_tol=1e-9)
    assert_frame_equal(sql, polars, rel_tol=1e-9, abs_tol=1e-9)


def test_the_default_backend_gives_the_same_results(crm, cat):
    kw = dict(by=["team"], grain="month", period=PERIOD, catalog=cat)
    auto = evaluate(crm, ["revenue", "csat"], **kw)
    assert_frame_equal(
        auto, evaluate(crm, ["revenue", "csat"], backend="polars", **kw), rel_tol=1e-9, abs_tol=1e-9
    )


@pytest.mark.parametrize(("per_statement", "workers"), [(1, 2), (2, 1), (3, 2)])
def test_small_queries_sent_together_come_back_apart(crm, monkeypatch, per_statement, workers):
    """Queries sent together in one statement: each gets its own rows and column types back, empty ones too
    (however many go to a statement, and however many statements run at once)."""
    monkeypatch.setattr(_sql, "PER_STATEMENT", per_statement)
    monkeypatch.setattr(_sql, "WORKERS", workers)
    with backend_for(crm, "duckdb") as bk:
        a = _sql.Sql("SELECT 1 AS x, 'a' AS s UNION ALL SELECT 2, NULL", ("x", "s"), small=True)
        b = _sql.Sql("SELECT DATE '2025-01-02' AS x", ("x",), small=True)  # same name, another type
        c = _sql.Sql("SELECT 1.5 AS y WHERE false", ("y",), small=True)
        big = [
            _sql.Sql("SELECT 7 AS z", ("z",)),
            _sql.Sql("SELECT 'seven' AS z", ("z",)),
            _sql.Sql("SELECT 8 AS z WHERE false", ("z",)),
        ]
        ra, rb, rc, *rbig = _sql.collect_all(bk, [a, b, c, *big])
    assert ra.sort("x").rows() == [(1, "a"), (2, None)]
    assert rb.rows() == [(dt.date(2025, 1, 2),)] and rb.schema["x"] == pl.Date
    assert rc.height == 0 and rc.columns == ["y"]
    assert [r.rows() for r in rbig] == [[(7,)], [("seven",)], []]
    assert rbig[1].schema["z"] == pl.String


def test_an_error_in_a_statement_run_by_another_thread_is_raised(crm, monkeypatch):
    monkeypatch.setattr(_sql, "PER_STATEMENT", 1)
    with backend_for(crm, "duckdb") as bk:
        good = _sql.Sql("SELECT 1 AS x", ("x",))
        bad = _sql.Sql("SELECT * FROM no_such_table", ("x",))
        with pytest.raises(Exception, match="no_such_table"):
            _sql.collect_all(bk, [good, bad, good, bad])
        assert _sql.collect_all(bk, [good])[0].rows() == [(1,)]  # the backend still works


def test_statements_at_once_give_the_same_results_as_one_at_a_time(crm, cat, monkeypatch):
    engine.PLANS.clear()
    together = [evaluate(crm, period=PERIOD, catalog=cat, **call) for call in CALLS]
    monkeypatch.setattr(_sql, "WORKERS", 1)
    for call, frame in zip(CALLS, together, strict=True):
        assert_frame_equal(evaluate(crm, period=PERIOD, catalog=cat, **call), frame)


# --------------------------------------------------------------------------------------------
# The compiled plans of the SQL backend, reused from one evaluation to the next
# --------------------------------------------------------------------------------------------
def test_a_compiled_plan_is_reused_for_the_same_request_and_file(tmp_path, cat, monkeypatch):
    compiled = []
    build = engine._queries
    monkeypatch.setattr(engine, "_queries", lambda *a: compiled.append(1) or build(*a))
    engine.PLANS.clear()
    path = write_warehouse(tmp_path / "w.duckdb", hand_frames())
    call = dict(CALLS[0], period=PERIOD, catalog=cat)
    with crmlib.open(path) as c:
        first = evaluate(c, **call)
    with crmlib.open(path) as c:  # another handle on the same file: the same plan
        again = evaluate(c, **call)
        assert len(compiled) == 1
        assert_frame_equal(again, first)
        evaluate(c, **dict(call, by=["region"]))  # another request: another plan
        assert len(compiled) == 2
        # the plan holds no data: every call reads the file (the polars backend reads it its own way)
        assert_frame_equal(again, evaluate(c, **dict(call, backend="polars")), rel_tol=1e-9, abs_tol=1e-9)


def test_a_rewritten_file_gets_a_new_plan_and_its_own_values(tmp_path, cat):
    engine.PLANS.clear()
    path = tmp_path / "w.duckdb"
    call = dict(kpis=["revenue", "won_deals", "open_pipeline"], by=["team"], grain="month", period=PERIOD,
                catalog=cat)
    frames = hand_frames()
    write_warehouse(path, frames)
    with crmlib.open(path) as c:
        before = evaluate(c, **call)
    doubled = {**frames, "opportunities": frames["opportunities"].with_columns(pl.col("amount") * 2)}
    path.unlink()
    write_warehouse(path, doubled)
    with crmlib.open(path) as c:
        after = evaluate(c, **call)
        assert_frame_equal(after, evaluate(c, **dict(call, backend="polars")), rel_tol=1e-9, abs_tol=1e-9)
    money = pl.col("kpi") != "won_deals"
    assert_frame_equal(after.filter(money).select(pl.col("value") / 2), before.filter(money).select("value"),
                       rel_tol=1e-9, abs_tol=1e-9)
    assert before.filter(money)["value"].sum() > 0


# --------------------------------------------------------------------------------------------
# The DuckDB reader of the polars backend
# --------------------------------------------------------------------------------------------
def test_reader_pushes_the_date_range_and_keeps_every_other_condition(crm):
    opps = crm.table("opportunities")
    every = opps.collect()
    since = dt.date(2025, 2, 1)
    cond = (pl.col("close_date") >= since) & pl.col("name").str.contains("o") & pl.col("is_won")
    assert_frame_equal(opps.filter(cond).collect(), every.filter(cond), check_row_order=False)

    schema_ = every.schema
    types = {"close_date": "DATE", "name": "VARCHAR", "is_won": "BOOLEAN"}
    sql, rest = _pushdown(cond, schema_, types)
    assert "close_date" in str(sql) and "is_won" in str(sql)  # what DuckDB can apply, it applies
    assert "contains" not in str(sql).lower()  # the string test is left to polars,
    assert rest is not None  # which applies the whole predicate to what arrives
    assert _pushdown(None, schema_, types) == (None, None)
    only_polars = pl.col("name").str.contains("o")
    assert _pushdown(only_polars, schema_, types)[0] is None
