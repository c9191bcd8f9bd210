"""crmlib.validate: every rule, reference checks, whole-source validation, speed."""

from __future__ import annotations

import time

import polars as pl
import pytest
from helpers_import import make_warehouse, tiny_frames

import crmlib
from crmlib import errors, schema
from crmlib.validate import Options, raise_if_errors, validate_frame, validate_source

OPP_COLUMNS = ["opportunity_id", "name", "account_id", "owner_id", "created_at", "close_date", "stage",
               "is_closed", "is_won", "amount", "currency", "type"]


@pytest.fixture(autouse=True)
def _base_currency(monkeypatch):
    monkeypatch.setenv("CRMLIB_BASE_CURRENCY", "CNY")


@pytest.fixture
def crm(tmp_path):
    with crmlib.open(make_warehouse(tmp_path / "crm.duckdb")) as handle:
        yield handle


def opp_rows(*rows: tuple) -> pl.DataFrame:
    return pl.DataFrame([dict(zip(OPP_COLUMNS, r, strict=True)) for r in rows],
                        schema=dict.fromkeys(OPP_COLUMNS, pl.String))


GOOD = ("O10", "Deal", "A1", "U1", "2024-03-01 09:30:00", "2024-06-30", "proposal", "false", "false", "100", "CNY", "new")


def row(**changes) -> tuple:
    values = dict(zip(OPP_COLUMNS, GOOD, strict=True))
    values.update(changes)
    return tuple(values[c] for c in OPP_COLUMNS)


def by_check(problems, check, column=None):
    return [p for p in problems if p.check == check and (column is None or p.column == column)]


def test_a_clean_frame_has_no_problems(crm):
    assert validate_frame(opp_rows(GOOD), "opportunities", "f.csv", crm) == []


def test_typed_frames_are_accepted(crm):
    typed = tiny_frames()["opportunities"]
    assert validate_frame(typed, "opportunities", reference=crm) == []


def test_wrong_types_name_rows_and_raw_values():
    df = opp_rows(GOOD, row(opportunity_id="O11", amount="12k", is_won="maybe"),
                  row(opportunity_id="O12", amount=" 1,200.50 "), row(opportunity_id="O13", amount="abc"))
    problems = validate_frame(df, "opportunities", "f.csv")
    amount = by_check(problems, "wrong_type", "amount")[0]
    assert (amount.rows, amount.n_rows, amount.sample) == ((2, 4), 2, ("12k", "abc"))
    assert amount.file == "f.csv" and amount.table == "opportunities"
    won = by_check(problems, "wrong_type", "is_won")[0]
    assert (won.rows, won.sample) == ((2,), ("maybe",))


def test_first_five_rows_and_first_three_distinct_samples():
    bad = [row(opportunity_id=f"O{i}", amount=f"x{i % 4}") for i in range(8)]
    problem = by_check(validate_frame(opp_rows(*bad), "opportunities"), "wrong_type", "amount")[0]
    assert problem.rows == (1, 2, 3, 4, 5)
    assert problem.n_rows == 8
    assert problem.sample == ("x0", "x1", "x2")
    assert "(first 5 of 8)" in problem.render()


def test_dates_use_the_declared_format_first():
    df = opp_rows(row(close_date="30/06/2024"), row(opportunity_id="O11", close_date="2024-07-01"))
    assert by_check(validate_frame(df, "opportunities"), "bad_date")
    ok = validate_frame(df, "opportunities", options=Options(date_formats={"close_date": "%d/%m/%Y"}))
    assert not by_check(ok, "bad_date")


def test_bad_date_names_the_expected_format_and_guesses_ambiguity():
    df = opp_rows(row(close_date="03/04/2024"), row(opportunity_id="O11", close_date="05/06/2024"))
    problem = by_check(validate_frame(df, "opportunities"), "bad_date")[0]
    assert "Expected ISO 8601" in problem.hint
    assert "'%d/%m/%Y' or '%m/%d/%Y'" in problem.hint  # both parse: the user must say which


def test_missing_values_are_not_reported_twice_for_bad_values():
    df = opp_rows(row(stage=""), row(opportunity_id="O11", amount="12k"))
    problems = validate_frame(df, "opportunities")
    assert [(p.check, p.column, p.rows) for p in problems] == [
        ("wrong_type", "amount", (2,)), ("missing_value", "stage", (1,))]


def test_enum_values_with_suggestions():
    df = opp_rows(row(stage="negotation"), row(opportunity_id="O11", type="Renewal"))
    problems = validate_frame(df, "opportunities")
    stage = by_check(problems, "unknown_value", "stage")[0]
    assert "'negotation' (did you mean 'negotiation'?)" in stage.message
    assert 'values: {stage: {"negotation": negotiation}}' in stage.hint
    kind = by_check(problems, "unknown_value", "type")[0]
    assert kind.rows == (2,) and "'renewal'" in kind.message


def test_negative_values_and_probability_range():
    df = opp_rows(row(amount="-5"))
    assert by_check(validate_frame(df, "opportunities"), "negative_value", "amount")[0].sample == ("-5",)
    with_p = opp_rows(GOOD).with_columns(pl.lit("1.5").alias("probability"))
    assert by_check(validate_frame(with_p, "opportunities"), "out_of_range", "probability")[0].rows == (1,)


def test_duplicate_keys_within_the_batch_only(crm):
    # O1 is already in the warehouse: not a duplicate (an import replaces it); O10 twice is.
    df = opp_rows(row(opportunity_id="O1"), GOOD, row(opportunity_id="O12"), GOOD)
    dupes = by_check(validate_frame(df, "opportunities", reference=crm), "duplicate_key")
    assert len(dupes) == 1
    assert (dupes[0].rows, dupes[0].sample) == ((2, 4), ("O10",))


def test_composite_primary_key_sample():
    spend = pl.DataFrame({"date": ["2024-01-01", "2024-01-01"], "campaign_id": ["C1", "C1"],
                          "channel": ["email", "email"], "amount": ["1", "2"], "currency": ["CNY", "CNY"]})
    problem = by_check(validate_frame(spend, "marketing_spend"), "duplicate_key")[0]
    assert problem.sample == ("2024-01-01 | C1",)


def test_close_date_on_the_creation_day_is_fine_but_before_is_not():
    df = opp_rows(row(created_at="2024-03-01 15:00", close_date="2024-03-01"),
                  row(opportunity_id="O11", created_at="2024-03-01 15:00", close_date="2024-02-29"))
    problem = by_check(validate_frame(df, "opportunities"), "date_order")[0]
    assert problem.rows == (2,) and problem.column == "close_date"
    assert problem.sample == ("2024-02-29 < 2024-03-01",)


def test_foreign_keys_without_reference_are_not_checked():
    df = opp_rows(row(account_id="A99"))
    assert not by_check(validate_frame(df, "opportunities"), "orphan_key")


def test_foreign_keys_against_the_reference(crm):
    df = opp_rows(row(account_id="A99"), row(opportunity_id="O11", owner_id="U9"), row(opportunity_id="O12"))
    problems = validate_frame(df, "opportunities", reference=crm)
    account = by_check(problems, "orphan_key", "account_id")[0]
    owner = by_check(problems, "orphan_key", "owner_id")[0]
    assert (account.rows, account.sample, account.severity) == ((1,), ("A99",), "error")
    assert (owner.rows, owner.sample) == ((2,), ("U9",))


def test_self_references_use_the_batch(crm):
    users = pl.DataFrame({"user_id": ["U7", "U8", "U9"], "name": ["a", "b", "c"], "role": ["sales_rep"] * 3,
                          "is_active": ["yes"] * 3, "manager_id": ["U1", "U7", "U6"]})
    problem = by_check(validate_frame(users, "users", reference=crm), "orphan_key", "manager_id")
    assert [(p.rows, p.sample) for p in problem] == [((3,), ("U6",))]


def test_empty_referenced_tables_required_is_error_optional_is_warning(tmp_path):
    from crmlib.sources import warehouse

    path = warehouse.create_empty(tmp_path / "empty.duckdb")
    df = opp_rows(GOOD).with_columns(pl.lit("C9").alias("campaign_id"))
    with crmlib.open(path) as empty:
        problems = validate_frame(df, "opportunities", reference=empty)
    severities = {p.column: p.severity for p in by_check(problems, "orphan_key")}
    assert severities == {"account_id": "error", "owner_id": "error", "campaign_id": "warning"}
    assert "table accounts is empty" in by_check(problems, "orphan_key", "account_id")[0].message


def test_forward_reference_is_a_warning_in_an_import(crm):
    leads = pl.DataFrame({"lead_id": ["L1"], "created_at": ["2024-01-01"], "channel": ["email"],
                          "status": ["converted"], "converted_opportunity_id": ["O404"]})
    problem = by_check(validate_frame(leads, "leads", reference=crm), "orphan_key", "converted_opportunity_id")[0]
    assert problem.severity == "warning"


def test_currencies_need_an_fx_rate_unless_base(crm):
    df = opp_rows(GOOD, row(opportunity_id="O11", currency="USD"), row(opportunity_id="O12", currency="EUR"),
                  row(opportunity_id="O13", currency="eu"))
    problems = validate_frame(df, "opportunities", reference=crm)
    fx = by_check(problems, "missing_fx_rate")[0]
    assert (fx.rows, fx.sample, fx.column) == ((3,), ("EUR",), "currency")
    assert "base currency CNY" in fx.message
    assert by_check(problems, "bad_currency")[0].rows == (4,)


def test_base_currency_setting_changes_what_needs_a_rate(crm, monkeypatch):
    monkeypatch.setenv("CRMLIB_BASE_CURRENCY", "EUR")
    df = opp_rows(row(currency="EUR"), row(opportunity_id="O11", currency="CNY"))
    fx = by_check(validate_frame(df, "opportunities", reference=crm), "missing_fx_rate")[0]
    assert fx.sample == ("CNY",) and fx.rows == (2,)


def test_columns_missing_and_unknown_with_suggestions():
    df = opp_rows(GOOD).rename({"amount": "ammount"}).with_columns(pl.lit("x").alias("notes"))
    problems = validate_frame(df, "opportunities", "f.csv")
    missing = by_check(problems, "missing_column", "amount")[0]
    assert '"ammount"' in missing.message and missing.severity == "error"
    typo = by_check(problems, "unknown_column", "ammount")[0]
    assert typo.severity == "warning" and '"amount"' in typo.message
    other = [p for p in by_check(problems, "unknown_column") if p.column is None][0]
    assert "'notes'" in other.message and other.severity == "warning"
    assert not by_check(problems, "missing_value", "amount"), "a missing column is reported once"


def test_an_empty_frame_is_an_error():
    problems = validate_frame(opp_rows(), "opportunities", "f.csv")
    assert [p.check for p in problems] == ["header_only"]


def test_raise_if_errors_lists_everything_and_passes_warnings():
    warning = errors.Problem("unknown_column", "accounts", "m", "h", severity="warning")
    error = errors.Problem("missing_value", "accounts", "m2", "h2", column="name", rows=(1,), n_rows=1)
    assert raise_if_errors([warning], "ctx") == [warning]
    with pytest.raises(errors.ValidationError) as info:
        raise_if_errors([warning, error], "ctx")
    assert info.value.problems == [warning, error]
    assert str(info.value).startswith("ctx: 1 error, 1 warning\n")


def test_validate_source_of_a_clean_warehouse(crm):
    assert validate_source(crm) == []


def test_validate_source_of_a_folder_reads_text_and_crosses_tables(tmp_path):
    folder = tmp_path / "export"
    folder.mkdir()
    frames = tiny_frames()
    for name in ("teams", "users", "accounts", "fx_rates"):
        frames[name].write_parquet(folder / f"{name}.parquet")
    (folder / "opportunities.csv").write_text(
        ",".join(OPP_COLUMNS) + "\n"
        + ",".join(GOOD) + "\n"
        + ",".join(row(opportunity_id="O11", account_id="A99", amount="12k", currency="EUR")) + "\n",
        encoding="utf-8",
    )
    with crmlib.open(folder) as source:
        problems = validate_source(source)
    found = {(p.check, p.column, p.rows) for p in problems}
    assert ("wrong_type", "amount", (2,)) in found
    assert ("orphan_key", "account_id", (2,)) in found
    assert ("missing_fx_rate", "currency", (2,)) in found
    assert all(p.file.endswith("opportunities.csv") for p in problems)


def test_validate_source_of_the_demo_is_clean(demo_warehouse):
    with crmlib.open(demo_warehouse) as demo:
        problems = validate_source(demo)
    assert [p for p in problems if p.severity == "error"] == []


def test_12000_rows_of_text_in_well_under_a_second(crm):
    n = 12_000
    i = pl.int_range(0, n, eager=True)
    df = pl.DataFrame({
        "opportunity_id": ("O" + i.cast(pl.String)),
        "name": pl.repeat("Deal", n, eager=True),
        "account_id": pl.Series(["A1", "A2", "A3"] * (n // 3)),
        "owner_id": pl.Series(["U1", "U2"] * (n // 2)),
        "created_at": pl.repeat("2024-03-01 09:30:00", n, eager=True),
        "close_date": pl.repeat("2024-06-30", n, eager=True),
        "stage": pl.Series(list(schema.ENUMS["stage"]) * (n // 7) + ["proposal"] * (n % 7)),
        "is_closed": pl.repeat("false", n, eager=True),
        "is_won": pl.repeat("false", n, eager=True),
        "amount": (i * 10).cast(pl.String),
        "currency": pl.Series(["CNY", "USD"] * (n // 2)),
        "probability": pl.repeat("0.5", n, eager=True),
        "type": pl.repeat("new", n, eager=True),
    })
    validate_frame(df.head(10), "opportunities", reference=crm)  # warm up
    start = time.perf_counter()
    problems = validate_frame(df, "opportunities", "big.csv", reference=crm)
    elapsed = time.perf_counter() - start
    assert problems == []
    assert elapsed < 0.6, f"validation of 12,000 rows took {elapsed:.2f} s"


def test_dates_and_datetimes_from_typed_columns():
    df = tiny_frames()["opportunities"].with_columns(
        pl.col("created_at").dt.date().alias("created_at"),  # a date where a datetime is expected
        pl.datetime(2024, 4, 30, 12).alias("close_date"),  # a datetime where a date is expected
    )
    assert validate_frame(df, "opportunities") == []
