"""The warehouse is written atomically and upserted transactionally."""

import hashlib
from datetime import date

import polars as pl
import pytest

import crmlib
from crmlib.sources import warehouse


def _fx(n: int, start_rate: float = 7.0) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "date": [date(2024, 1, d) for d in range(1, n + 1)],
            "currency": ["USD"] * n,
            "rate_to_base": [start_rate + i / 100 for i in range(n)],
        }
    )


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_write_then_read_back(tmp_path):
    path = warehouse.write_warehouse(tmp_path / "w.duckdb", {"fx_rates": _fx(3)}, meta={"created_by": "test"})
    with crmlib.open(path) as crm:
        counts = crm.row_counts()
        assert counts["fx_rates"] == 3
        assert counts["opportunities"] == 0  # created empty, with canonical columns
        assert crm.opportunities.collect_schema() == crmlib.schema.table("opportunities").polars_schema
        assert crm.collect("fx_rates").get_column("rate_to_base").to_list() == [7.0, 7.01, 7.02]


def test_failed_write_leaves_previous_file_intact(tmp_path):
    path = warehouse.write_warehouse(tmp_path / "w.duckdb", {"fx_rates": _fx(3)})
    before = _sha(path)
    dup = pl.concat([_fx(2), _fx(2)])  # duplicate primary keys: the insert fails
    with pytest.raises(Exception, match="(?i)duplicate|constraint"):
        warehouse.write_warehouse(path, {"fx_rates": dup})
    assert _sha(path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.duckdb"]


def test_interrupted_write_leaves_previous_file_intact(tmp_path):
    path = warehouse.write_warehouse(tmp_path / "w.duckdb", {"fx_rates": _fx(3)})
    before = _sha(path)

    def interrupt(table):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        warehouse.write_warehouse(path, {"fx_rates": _fx(5)}, progress=interrupt)
    assert _sha(path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.duckdb"]


def test_upsert_replaces_by_key_and_never_duplicates(tmp_path):
    path = warehouse.write_warehouse(tmp_path / "w.duckdb", {"fx_rates": _fx(3)})
    warehouse.upsert(path, {"fx_rates": _fx(5, start_rate=8.0)})  # 3 updated, 2 new
    warehouse.upsert(path, {"fx_rates": _fx(5, start_rate=8.0)})  # the same again: no change
    with crmlib.open(path) as crm:
        rates = crm.collect("fx_rates").sort("date").get_column("rate_to_base").to_list()
    assert rates == [8.0, 8.01, 8.02, 8.03, 8.04]


def test_failed_upsert_rolls_back(tmp_path):
    path = warehouse.write_warehouse(tmp_path / "w.duckdb", {"fx_rates": _fx(3)})
    good = _fx(4, start_rate=9.0)
    with pytest.raises(Exception, match="(?i)null|constraint"):
        # the first table succeeds, the second violates NOT NULL: nothing may remain of either
        warehouse.upsert(
            path,
            {
                "fx_rates": good,
                "targets": pl.DataFrame({"period": [date(2024, 1, 1)], "grain": ["month"], "level": ["company"],
                                         "entity_id": [None], "kpi": ["revenue"], "value": [1.0]}),
            },
        )
    with crmlib.open(path) as crm:
        assert crm.collect("fx_rates").sort("date").get_column("rate_to_base").to_list() == [7.0, 7.01, 7.02]
        assert crm.row_counts()["targets"] == 0


def test_checksums_ignore_row_order_but_see_changes(tmp_path):
    a = warehouse.write_warehouse(tmp_path / "a.duckdb", {"fx_rates": _fx(4)})
    b = warehouse.write_warehouse(tmp_path / "b.duckdb", {"fx_rates": _fx(4).reverse()})
    c = warehouse.write_warehouse(tmp_path / "c.duckdb", {"fx_rates": _fx(4).with_columns(
        pl.when(pl.col("rate_to_base") > 7.02).then(7.5).otherwise(pl.col("rate_to_base")).alias("rate_to_base"))})
    with crmlib.open(a) as ca, crmlib.open(b) as cb, crmlib.open(c) as cc:
        assert ca.checksums() == cb.checksums()
        assert ca.checksums()["fx_rates"] != cc.checksums()["fx_rates"]
        assert ca.fingerprint() == cb.fingerprint() != cc.fingerprint()


def test_duckdb_tables_join_and_take_constant_predicates(tmp_path):
    users = pl.DataFrame({"user_id": ["u1", "u2"], "name": ["A", "B"], "role": ["sales_rep"] * 2,
                          "is_active": [True, True], "team_id": [None, None]})
    path = warehouse.write_warehouse(tmp_path / "w.duckdb", {"users": users, "fx_rates": _fx(3)})
    with crmlib.open(path) as crm:
        # two scans of one DuckDB file in one polars query (run in parallel by polars)
        joined = crm.users.join(crm.users.select("user_id", pl.col("name").alias("n2")), on="user_id").collect()
        assert joined.height == 2
        assert crm.fx_rates.filter(pl.lit(True).fill_null(False)).collect().height == 3
        assert crm.fx_rates.filter(pl.lit(False)).collect().height == 0
