"""The bad-input catalogue (tests/bad_inputs/CATALOGUE.yaml): every case, through the API and the CLI.

Each error case must raise its own message (check name, file, column, row numbers, sample), leave the
warehouse byte-for-byte unchanged and create none when there was none; the CLI must exit 1 without a
traceback. Positive cases import, and importing them again replaces rows instead of duplicating them.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
import yaml
from helpers_import import BAD_INPUTS, make_warehouse, run_cli, sha256

import crmlib
from crmlib import errors
from crmlib.importer import import_files

CATALOGUE = yaml.safe_load((BAD_INPUTS / "CATALOGUE.yaml").read_text(encoding="utf-8"))["cases"]
ERRORS = sorted(k for k, c in CATALOGUE.items() if c["outcome"] == "error")
POSITIVE = sorted(k for k, c in CATALOGUE.items() if c["outcome"] in {"ok", "warning"})


@pytest.fixture(autouse=True)
def _base_currency(monkeypatch):
    monkeypatch.setenv("CRMLIB_BASE_CURRENCY", "CNY")


@pytest.fixture
def warehouse(tmp_path) -> Path:
    return make_warehouse(tmp_path / "crm.duckdb")


def _kwargs(case: dict) -> dict:
    return {
        "table": case["table"],
        "mapping": BAD_INPUTS / case["mapping"] if case.get("mapping") else None,
        "preset": case.get("preset"),
    }


def _cli_args(case: dict, into: Path) -> list[str]:
    args = ["data", "import", str(BAD_INPUTS / case["file"]), "--table", case["table"], "--into", str(into)]
    if case.get("mapping"):
        args += ["--mapping", str(BAD_INPUTS / case["mapping"])]
    if case.get("preset"):
        args += ["--preset", case["preset"]]
    return args


def test_catalogue_covers_the_folder():
    files = {p.name for p in BAD_INPUTS.iterdir() if p.is_file()} - {"CATALOGUE.yaml", "make_fixtures.py"}
    used = {c["file"] for c in CATALOGUE.values()} | {c["mapping"] for c in CATALOGUE.values() if c.get("mapping")}
    assert files == used, "every fixture is in the catalogue and every catalogued file exists"
    assert len({c["file"] for c in CATALOGUE.values()}) >= 22
    assert len(ERRORS) >= 22


@pytest.mark.parametrize("name", ERRORS)
def test_error_case_says_what_and_where_and_writes_nothing(name, warehouse):
    case = CATALOGUE[name]
    before = sha256(warehouse)
    with pytest.raises(errors.CrmlibError) as info:
        import_files([BAD_INPUTS / case["file"]], into=warehouse, **_kwargs(case))
    err = info.value
    text = str(err)
    assert type(err).__name__ == case["error"], text
    for check in case["checks"]:
        assert f"[{check}]" in text, text
    assert case["fragment"] in text, text
    named = case["mapping"] if case["error"] == "MappingError" else case["file"]
    assert named in text, text
    if isinstance(err, errors.ValidationError):
        main = [p for p in err.problems if p.check == case["checks"][0] and p.column == case.get("column")]
        assert len(main) == 1, text
        problem = main[0]
        assert problem.severity == "error"
        assert Path(problem.file).name == case["file"]
        assert problem.table == case["table"]
        if "rows" in case:
            assert list(problem.rows) == case["rows"]
            assert problem.n_rows == len(case["rows"])
        if "sample" in case:
            assert list(problem.sample) == case["sample"]
        assert problem.hint, "every problem says what to do"
    elif case.get("column"):
        assert f"column {case['column']}" in text
    assert sha256(warehouse) == before, "a failed import leaves the warehouse byte-for-byte unchanged"


@pytest.mark.parametrize("name", ERRORS)
def test_error_case_creates_no_warehouse(name, tmp_path):
    case = CATALOGUE[name]
    target = tmp_path / "new" / "crm.duckdb"
    with pytest.raises(errors.CrmlibError):
        import_files([BAD_INPUTS / case["file"]], into=target, **_kwargs(case))
    assert not target.exists()
    assert not (tmp_path / "new").exists() or not any((tmp_path / "new").iterdir())


@pytest.mark.parametrize("name", POSITIVE)
def test_positive_case_imports_and_reimport_does_not_duplicate(name, warehouse):
    case = CATALOGUE[name]
    expect = case["expect"]
    table = case["table"]
    pk = crmlib.schema.table(table).primary_key[0]
    with crmlib.open(warehouse) as crm:
        rows_before = crm.collect(table).height
    report = import_files([BAD_INPUTS / case["file"]], into=warehouse, **_kwargs(case))
    assert (report.rows_read, report.rows_written, report.rows_inserted, report.rows_updated) == (
        expect["rows"], expect["rows"], expect["rows"], 0)
    if case["outcome"] == "warning":
        hits = [w for w in report.warnings if w.check in case["checks"] and w.column == case["column"]]
        assert hits and case["fragment"] in hits[0].render()
    else:
        assert not [w for w in report.warnings if w.severity == "error"]
    again = import_files([BAD_INPUTS / case["file"]], into=warehouse, **_kwargs(case))
    assert (again.rows_inserted, again.rows_updated) == (0, expect["rows"])
    with crmlib.open(warehouse) as crm:
        frame = crm.collect(table)
    assert frame.height == rows_before + expect["rows"]
    assert frame.get_column(pk).is_duplicated().sum() == 0
    for key, value in expect.get("values", {}).items():
        assert frame.filter(pl.col(pk) == str(key)).get_column("name").to_list() == [value]
    for key, value in expect.get("amounts", {}).items():
        assert frame.filter(pl.col(pk) == str(key)).get_column("amount").to_list() == [pytest.approx(value)]


@pytest.mark.parametrize("name", sorted(CATALOGUE))
def test_cli_import(name, warehouse, tmp_path):
    case = CATALOGUE[name]
    before = sha256(warehouse)
    result = run_cli(_cli_args(case, warehouse), tmp_path)
    output = result.stdout + result.stderr
    assert "Traceback" not in output
    assert "internal error" not in output
    if case["outcome"] == "error":
        assert result.returncode == 1, output
        assert case["fragment"] in output, output
        assert f"[{case['checks'][0]}]" in output, output
        assert sha256(warehouse) == before
    else:
        assert result.returncode == 0, output
        assert "Imported" in output
        if case["outcome"] == "warning":
            assert case["fragment"] in output
