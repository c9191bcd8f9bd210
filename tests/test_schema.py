"""The canonical model is consistent with itself."""

import polars as pl
import pytest

from crmlib import schema
from crmlib.errors import ConfigError


def test_every_foreign_key_points_to_a_primary_key_column():
    for t in schema.TABLES.values():
        for col, ref_table, ref_col in t.foreign_keys:
            assert ref_table in schema.TABLES, f"{t.name}.{col} -> unknown table {ref_table}"
            assert schema.TABLES[ref_table].primary_key == (ref_col,), f"{t.name}.{col} -> {ref_table}.{ref_col}"


def test_primary_keys_are_required_columns():
    for t in schema.TABLES.values():
        for k in t.primary_key:
            assert not t.column(k).nullable, f"{t.name}.{k}"


def test_enums_money_and_ordered_pairs_are_declared():
    for t in schema.TABLES.values():
        for c in t.columns:
            assert c.dtype in schema.DTYPES
            if c.enum:
                assert c.enum in schema.ENUMS
            if c.currency:
                assert t.column(c.currency).dtype == "str"
        for a, b in t.ordered:
            assert t.column(a).dtype in ("date", "datetime") and t.column(b).dtype in ("date", "datetime")


def test_load_order_respects_foreign_keys_except_known_cycles():
    pos = {n: i for i, n in enumerate(schema.LOAD_ORDER)}
    allowed_back = {("leads", "accounts"), ("leads", "opportunities"), ("teams", "teams"), ("users", "users"),
                    ("accounts", "users"), ("contacts", "leads")}
    for t in schema.TABLES.values():
        for _, ref, _ in t.foreign_keys:
            if (t.name, ref) in allowed_back:
                continue
            assert pos[ref] <= pos[t.name], f"{t.name} loads before {ref}"


def test_stage_order_and_probabilities():
    assert schema.ENUMS["stage"][0] == "prospecting"
    assert schema.OPEN_STAGES == ("prospecting", "qualification", "needs_analysis", "proposal", "negotiation")
    assert schema.DEFAULT_STAGE_PROBABILITY["closed_won"] == 1.0
    assert schema.DEFAULT_STAGE_PROBABILITY["closed_lost"] == 0.0


def test_unknown_table_and_column_suggest_the_right_name():
    with pytest.raises(ConfigError, match='Did you mean "opportunities"'):
        schema.table("oportunities")
    with pytest.raises(ConfigError, match='Did you mean "close_date"'):
        schema.table("opportunities").column("closedate")


def test_conform_parses_strings_and_fills_missing_columns():
    raw = pl.DataFrame({"date": ["2024-03-01", "bad"], "currency": ["USD", "EUR"], "rate_to_base": ["7.1", "x"]})
    out = schema.conform(raw, "fx_rates")
    assert out.schema == schema.table("fx_rates").polars_schema
    assert out.get_column("date").to_list()[1] is None
    assert out.get_column("rate_to_base").to_list() == [7.1, None]
    users = schema.conform(pl.DataFrame({"user_id": ["u1"], "is_active": ["yes"]}), "users")
    assert users.columns == list(schema.table("users").column_names)
    assert users.get_column("is_active").to_list() == [True]
    assert users.get_column("name").to_list() == [None]


def test_create_table_sql_declares_primary_key():
    sql = schema.create_table_sql("targets")
    assert 'PRIMARY KEY ("period", "grain", "level", "entity_id", "kpi")' in sql
    assert '"value" DOUBLE PRECISION NOT NULL' in sql
