"""crmlib.importer and crmlib.sources.files: mapping files, presets, reading files, the import flow."""

from __future__ import annotations

import datetime as dt
import textwrap

import duckdb
import polars as pl
import pytest
from helpers_import import BAD_INPUTS, make_warehouse, run_cli, sha256, tiny_frames

import crmlib
from crmlib import errors
from crmlib.importer import ImportReport, import_files, list_presets, load_mapping
from crmlib.sources.files import load_file, read_file

HEADER = "opportunity_id,name,account_id,owner_id,created_at,close_date,stage,amount,currency,type"


@pytest.fixture(autouse=True)
def _base_currency(monkeypatch):
    monkeypatch.setenv("CRMLIB_BASE_CURRENCY", "CNY")


@pytest.fixture
def warehouse(tmp_path):
    return make_warehouse(tmp_path / "crm.duckdb")


def write(path, text: str, encoding: str = "utf-8"):
    path.write_bytes(textwrap.dedent(text).lstrip("\n").encode(encoding))
    return path


def rows_by_key(path, table: str) -> dict[str, dict]:
    with crmlib.open(path) as crm:
        frame = crm.collect(table)
    key = crmlib.schema.table(table).primary_key[0]
    return {r[key]: r for r in frame.to_dicts()}


# ------------------------------------------------------------------------------------------------
# presets
# ------------------------------------------------------------------------------------------------
def test_presets_are_shipped():
    assert list_presets() == ("hubspot", "online_retail", "salesforce")


def test_salesforce_preset(warehouse):
    report = import_files([BAD_INPUTS / "salesforce_export.csv"], "opportunities", preset="salesforce", into=warehouse)
    assert report.rows_written == 3
    assert "footer of 4 line(s)" in report.read_as[0]
    got = rows_by_key(warehouse, "opportunities")
    one, two, three = got["006A000001"], got["006A000002"], got["006A000003"]
    # Id. Decision Makers -> proposal; Probability (%) 60 -> 0.6; "Existing Customer - Upgrade" -> upsell
    assert (one["stage"], one["probability"], one["type"], one["forecast_category"]) == (
        "proposal", pytest.approx(0.6), "upsell", "pipeline")
    assert (one["account_id"], one["owner_id"], one["name"]) == ("A1", "U1", "Acme expansion")
    assert (one["close_date"], one["created_at"]) == (dt.date(2024, 6, 30), dt.datetime(2024, 3, 1))
    assert (one["amount"], one["currency"], one["is_closed"], one["is_won"]) == (12000.0, "CNY", False, False)
    assert (two["stage"], two["probability"], two["type"], two["currency"]) == (
        "negotiation", pytest.approx(0.9), "new", "USD")
    assert (three["stage"], three["is_closed"], three["is_won"], three["type"], three["forecast_category"]) == (
        "closed_won", True, True, "renewal", "closed")


def test_hubspot_preset_derives_probability_and_flags(warehouse):
    import_files([BAD_INPUTS / "hubspot_export.csv"], "opportunities", preset="hubspot", into=warehouse)
    got = rows_by_key(warehouse, "opportunities")
    a, b, c = got["9001"], got["9002"], got["9003"]
    # presentationscheduled -> proposal (default probability 0.6); "A1;A3" -> A1; owner from HubSpot Owner ID
    assert (a["stage"], a["probability"], a["account_id"], a["owner_id"], a["type"]) == (
        "proposal", 0.6, "A1", "U1", "upsell")
    assert a["created_at"] == dt.datetime(2024, 3, 1, 9, 30)
    assert (b["stage"], b["probability"], b["type"]) == ("needs_analysis", 0.4, "new")
    # closedlost: closed, not won, probability 0; blank Deal Type -> the preset's default "new"
    assert (c["stage"], c["is_closed"], c["is_won"], c["probability"], c["type"]) == (
        "closed_lost", True, False, 0.0, "new")


def test_a_mapping_laid_over_a_preset(tmp_path, warehouse):
    export = (BAD_INPUTS / "salesforce_export.csv").read_text(encoding="utf-8")
    uk = export.replace('"6/30/2024"', '"30/06/2024"').replace('"5/15/2024"', '"15/05/2024"')
    uk = uk.replace('"3/20/2024"', '"20/03/2024"').replace('"3/1/2024"', '"01/03/2024"')
    uk = uk.replace('"3/5/2024"', '"05/03/2024"').replace('"2/10/2024"', '"10/02/2024"')
    f = write(tmp_path / "uk.csv", uk)
    m = write(tmp_path / "uk.yaml", """
        dates: {created_at: "%d/%m/%Y", close_date: "%d/%m/%Y"}
    """)
    with pytest.raises(errors.ValidationError, match=r"\[bad_date\]"):
        import_files([f], "opportunities", preset="salesforce", into=warehouse)
    import_files([f], "opportunities", preset="salesforce", mapping=m, into=warehouse)
    got = rows_by_key(warehouse, "opportunities")
    assert got["006A000002"]["close_date"] == dt.date(2024, 5, 15)
    assert got["006A000003"]["created_at"] == dt.datetime(2024, 2, 10)


def test_unknown_preset_suggests():
    with pytest.raises(errors.MappingError, match='Did you mean "salesforce"'):
        import_files([BAD_INPUTS / "good.csv"], "opportunities", preset="salesfroce")


# ------------------------------------------------------------------------------------------------
# mapping files
# ------------------------------------------------------------------------------------------------
def test_a_full_mapping_file(tmp_path, warehouse):
    f = write(tmp_path / "deals.csv", """
        Deal #,Title,Client,Rep,Opened,Closes,Phase,Value,Won?,Chance,Region note,Notes
        D1,Alpha,A1;A2,U1,01/03/2024,30/06/2024,Verbal,"1,200.50",,25%,x,hello
        D2,Beta,A3,U2,02/03/2024,31/03/2024,Signed,800,Gewonnen,100%,y,
    """)
    m = write(tmp_path / "deals.yaml", """
        table: opportunities
        columns:
          "Deal #": opportunity_id
          Title: name
          Client: account_id
          Rep: owner_id
          Opened: created_at
          Closes: close_date
          Phase: stage
          Value: amount
          Won?: is_won
          Chance: probability
        ignore: [Notes]
        split: {account_id: ";"}
        values:
          stage: {Verbal: negotiation, Signed: closed_won}
        dates: {created_at: "%d/%m/%Y", close_date: "%d/%m/%Y"}
        currency: usd
        defaults: {type: renewal}
        booleans: {is_won: {true: [Gewonnen], false: [Verloren]}}
    """)
    report = import_files([f], "opportunities", mapping=m, into=warehouse)
    assert report.rows_written == 2
    # "Region note" is neither mapped nor ignored: one warning; "Notes" is ignored silently
    assert [(w.check, w.column) for w in report.warnings] == [("unknown_column", None)]
    assert "'Region note'" in report.warnings[0].message
    got = rows_by_key(warehouse, "opportunities")
    d1, d2 = got["D1"], got["D2"]
    assert (d1["account_id"], d1["stage"], d1["amount"], d1["currency"], d1["type"]) == (
        "A1", "negotiation", 1200.5, "USD", "renewal")
    assert (d1["created_at"], d1["close_date"]) == (dt.datetime(2024, 3, 1), dt.date(2024, 6, 30))
    assert (d1["probability"], d1["is_won"], d1["is_closed"]) == (0.25, False, False)  # "25%"; won derived
    assert (d2["stage"], d2["is_won"], d2["is_closed"], d2["probability"]) == ("closed_won", True, True, 1.0)


def test_yaml_plain_values_stay_text(tmp_path):
    m = write(tmp_path / "m.yaml", """
        table: opportunities
        values:
          type: {Yes: new, 01: renewal, on: upsell}
        defaults: {lost_reason: 007}
    """)
    mapping = load_mapping(m)
    assert mapping.values["type"] == {"Yes": "new", "01": "renewal", "on": "upsell"}
    assert mapping.defaults == {"lost_reason": "007"}


def test_every_mapping_problem_at_once(tmp_path):
    m = write(tmp_path / "m.yaml", """
        table: opportunities
        colums: {}
        columns: {Value: amout}
        values: {stage: {Verbal: negotiaton}}
        dates: {close_date: dd/mm/yyyy}
        currency: dollars
        booleans: {amount: {true: [x]}}
    """)
    with pytest.raises(errors.MappingError) as info:
        load_mapping(m)
    text = str(info.value)
    assert text.startswith(f"mapping {m}: 6 problems found")
    assert "unknown key 'colums'. Did you mean \"columns\"?" in text
    assert "'amout' is not a column of opportunities. Did you mean \"amount\"?" in text
    assert "'negotiaton', which is not a stage value. Did you mean \"negotiation\"?" in text
    assert "dates.close_date must be a strptime format" in text
    assert "currency 'dollars' is not a 3-letter code" in text
    assert "booleans: amount is a float column, not bool" in text


def test_bad_yaml_names_the_line(tmp_path):
    m = write(tmp_path / "m.yaml", "table: opportunities\ncolumns:\n  a: b\n c: d\n")
    with pytest.raises(errors.MappingError, match=r"\[bad_yaml\].*line 4"):
        load_mapping(m)


def test_mapping_for_another_table(tmp_path):
    m = write(tmp_path / "m.yaml", "table: leads\n")
    with pytest.raises(errors.MappingError, match="for table leads but the import is into opportunities"):
        import_files([BAD_INPUTS / "good.csv"], "opportunities", mapping=m)


def test_unknown_table_suggests():
    with pytest.raises(errors.ConfigError, match='Did you mean "opportunities"'):
        import_files([BAD_INPUTS / "good.csv"], "oportunities")


def test_enum_spellings_are_recognised(tmp_path, warehouse):
    f = write(tmp_path / "acc.csv", """
        account_id,name,segment,region,created_at
        A20,Foo,Mid Market,north,2024-01-01
        A21,Bar,SMB,  West ,2024/01/02
    """)
    import_files([f], "accounts", into=warehouse)
    got = rows_by_key(warehouse, "accounts")
    assert (got["A20"]["segment"], got["A20"]["region"]) == ("mid_market", "North")
    assert (got["A21"]["segment"], got["A21"]["region"], got["A21"]["created_at"]) == (
        "smb", "West", dt.datetime(2024, 1, 2))


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["10", "20", "100"], [0.1, 0.2, 1.0]),  # above 1 and no fraction: percentages
        (["0.1", "0.5", "1"], [0.1, 0.5, 1.0]),  # fractions stay
        (["10%", "0.5", "100 %"], [0.1, 0.005, 1.0]),  # a % sign: the column is in percent
    ],
)
def test_probability_percentages(tmp_path, warehouse, values, expected):
    lines = [HEADER + ",probability"] + [
        f"P{i},Deal,A1,U1,2024-03-01,2024-06-30,proposal,10,CNY,new,{v}" for i, v in enumerate(values)]
    f = write(tmp_path / "p.csv", "\n".join(lines) + "\n")
    import_files([f], "opportunities", into=warehouse)
    got = rows_by_key(warehouse, "opportunities")
    assert [got[f"P{i}"]["probability"] for i in range(3)] == [pytest.approx(e) for e in expected]


# ------------------------------------------------------------------------------------------------
# the import flow
# ------------------------------------------------------------------------------------------------
def test_reimport_replaces_changed_rows(tmp_path, warehouse):
    import_files([BAD_INPUTS / "good.csv"], "opportunities", into=warehouse)
    changed = (BAD_INPUTS / "good.csv").read_text().replace(",12000,", ",12500,")
    report = import_files([write(tmp_path / "changed.csv", changed)], "opportunities", into=warehouse)
    assert (report.rows_inserted, report.rows_updated) == (0, 3)
    got = rows_by_key(warehouse, "opportunities")
    assert len(got) == 5  # O1, O2 from the fixture + O10, O11, O12
    assert got["O10"]["amount"] == 12500.0


def test_several_files_are_one_batch(tmp_path, warehouse):
    a = write(tmp_path / "a.csv", f"""
        {HEADER}
        O10,Deal,A1,U1,2024-03-01,2024-06-30,proposal,10,CNY,new
        O11,Deal,A1,U1,2024-03-01,2024-06-30,proposal,-1,CNY,new
    """)
    b = write(tmp_path / "b.csv", """
        opportunity_id,name,account_id,owner_id,created_at,close_date,stage,currency,type
        O12,Deal,A1,U1,2024-03-01,2024-06-30,proposal,CNY,new
        O10,Deal,A9,U1,2024-03-01,2024-06-30,proposal,CNY,new
    """)
    before = sha256(warehouse)
    with pytest.raises(errors.ValidationError) as info:
        import_files([a, b], "opportunities", into=warehouse)
    found = {(p.check, p.column, p.file.split("/")[-1], p.rows) for p in info.value.problems}
    assert found == {
        ("negative_value", "amount", "a.csv", (2,)),
        ("duplicate_key", "opportunity_id", "a.csv", (1,)),  # O10 is in both files
        ("duplicate_key", "opportunity_id", "b.csv", (2,)),
        ("missing_column", "amount", "b.csv", ()),  # reported once, not as empty values
        ("orphan_key", "account_id", "b.csv", (2,)),
    }
    assert sha256(warehouse) == before


def test_all_unreadable_files_are_reported_together(warehouse):
    with pytest.raises(errors.ImportDataError) as info:
        import_files([BAD_INPUTS / "empty.csv", BAD_INPUTS / "good.csv", BAD_INPUTS / "binary.csv"],
                     "opportunities", into=warehouse)
    text = str(info.value)
    assert text.startswith("2 files cannot be read")
    assert "[empty_file]" in text and "[binary_file]" in text


def test_a_new_warehouse_is_created_with_the_rows(tmp_path):
    target = tmp_path / "fresh" / "crm.duckdb"
    report = import_files([BAD_INPUTS / "gbk_chinese.csv"], "accounts", into=target)
    assert report.created and target.exists()
    # owner_id is optional and users is empty: reported, not blocking
    assert [(w.check, w.column, w.severity) for w in report.warnings] == [("orphan_key", "owner_id", "warning")]
    with crmlib.open(target) as crm:
        assert crm.row_counts()["accounts"] == 2
        assert set(crm.available_tables) == set(crmlib.schema.TABLE_NAMES)


def test_opportunities_into_a_new_warehouse_need_their_parents(tmp_path):
    target = tmp_path / "crm.duckdb"
    with pytest.raises(errors.ValidationError) as info:
        import_files([BAD_INPUTS / "good.csv"], "opportunities", into=target)
    orphans = {p.column: p for p in info.value.problems if p.check == "orphan_key"}
    assert set(orphans) == {"account_id", "owner_id"}
    assert "table accounts is empty" in orphans["account_id"].message
    assert orphans["account_id"].hint.startswith("Import accounts first")
    assert not target.exists()


def test_default_into_is_the_configured_warehouse(tmp_path, monkeypatch):
    monkeypatch.setenv("CRMLIB_HOME", str(tmp_path))
    target = make_warehouse(tmp_path / "data" / "crm.duckdb")
    report = import_files([BAD_INPUTS / "good.csv"], "opportunities")
    assert report.warehouse == target
    assert rows_by_key(target, "opportunities")["O11"]["currency"] == "USD"


def test_a_busy_warehouse_is_left_alone(warehouse):
    before = sha256(warehouse)
    holder = duckdb.connect(str(warehouse), read_only=True)  # e.g. a dashboard reading it
    try:
        with pytest.raises(errors.SourceError, match="Nothing was written"):
            import_files([BAD_INPUTS / "good.csv"], "opportunities", into=warehouse)
    finally:
        holder.close()
    assert sha256(warehouse) == before


def test_into_must_be_a_duckdb_file(tmp_path):
    with pytest.raises(errors.ConfigError, match="DuckDB"):
        import_files([BAD_INPUTS / "good.csv"], "opportunities", into=tmp_path / "out.csv")


def test_parquet_is_imported_with_its_types(tmp_path, warehouse):
    frame = tiny_frames()["opportunities"].with_columns(
        pl.Series("opportunity_id", ["O30", "O31"]), pl.Series("stage", ["Negotiation", "closed_lost"]),
        pl.lit(None, pl.Boolean).alias("is_closed"))
    frame.write_parquet(tmp_path / "opps.parquet")
    import_files([tmp_path / "opps.parquet"], "opportunities", into=warehouse)
    got = rows_by_key(warehouse, "opportunities")
    assert (got["O30"]["stage"], got["O30"]["is_closed"]) == ("negotiation", False)
    assert (got["O31"]["is_closed"], got["O31"]["close_date"]) == (True, dt.date(2024, 2, 20))


def test_report_text():
    report = ImportReport(
        table="accounts", files=("a.csv",), rows_read=2, rows_written=2, rows_inserted=1, rows_updated=1,
        warehouse=crmlib.config.default_warehouse(), created=False, read_as=("a.csv (GB18030)",))
    assert str(report).startswith("Imported 2 rows into accounts (1 new, 1 replaced) in ")
    assert str(report).endswith("from a.csv (GB18030).")
    assert report.rows_upserted == 2


# ------------------------------------------------------------------------------------------------
# reading files
# ------------------------------------------------------------------------------------------------
def test_csv_is_read_as_text_and_parquet_as_stored(tmp_path):
    csv = read_file(BAD_INPUTS / "good.csv")
    assert set(csv.dtypes) == {pl.String}
    assert csv.get_column("amount").to_list() == ["12000", "8000", "15000"]
    tiny_frames()["accounts"].write_parquet(tmp_path / "a.parquet")
    assert read_file(tmp_path / "a.parquet").schema["created_at"] == pl.Datetime("us")


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_delimiters_are_sniffed(tmp_path, delimiter):
    text = f'id{delimiter}name{delimiter}note\n1{delimiter}"a{delimiter} b"{delimiter}x\n2{delimiter}c{delimiter}\n'
    data = load_file(write(tmp_path / "f.csv", text))
    assert data.delimiter == delimiter
    assert data.frame.rows() == [("1", f"a{delimiter} b", "x"), ("2", "c", None)]


def test_row_numbers_count_blank_lines_and_multiline_values(tmp_path):
    f = write(tmp_path / "f.csv", 'id,name\n1,"two\nlines"\n\n3,x\n,\n5,y\n')
    data = load_file(f)
    assert data.frame.get_column("id").to_list() == ["1", "3", "5"]
    assert data.rows.to_list() == [1, 3, 5]


def test_validation_rows_follow_the_file(tmp_path, warehouse):
    f = write(tmp_path / "f.csv", f"""
        {HEADER}
        O10,"Deal with
        two lines",A1,U1,2024-03-01,2024-06-30,proposal,10,CNY,new

        O11,Deal,A1,U1,2024-03-01,2024-06-30,proposal,oops,CNY,new
    """)
    with pytest.raises(errors.ValidationError) as info:
        import_files([f], "opportunities", into=warehouse)
    assert [(p.check, p.rows) for p in info.value.problems] == [("wrong_type", (3,))]


def test_headers_are_cleaned(tmp_path):
    frame = read_file(write(tmp_path / "f.csv", " id , name ,\n1,a,\n"))
    assert frame.columns == ["id", "name", "column_3"]
    with pytest.raises(errors.ImportDataError, match=r"\[duplicate_column\].*'id'"):
        read_file(write(tmp_path / "g.csv", "id,name,id\n1,a,2\n"))


def test_utf16_text_from_excel(tmp_path):
    f = tmp_path / "unicode.txt"
    f.write_bytes("account_id\tname\nA1\t北京\n".encode("utf-16"))
    data = load_file(f)
    assert (data.encoding, data.delimiter) == ("utf-16", "\t")
    assert data.frame.rows() == [("A1", "北京")]


@pytest.mark.parametrize(
    ("content", "check"),
    [(b"\n\n  \n", "empty_file"), (b"%PDF-1.4 ...", "binary_file"), (b"a,b\n1,2\n3,4,5,6\n7,8,9\n", "ragged_rows")],
)
def test_structural_problems(tmp_path, content, check):
    f = tmp_path / "f.csv"
    f.write_bytes(content)
    with pytest.raises(errors.ImportDataError, match=rf"^\[{check}\] file .*f\.csv: "):
        read_file(f)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(errors.ImportDataError, match=r"\[file_not_found\]"):
        read_file(tmp_path / "nope.csv")
    with pytest.raises(errors.ImportDataError, match=r"\[unsupported_format\].*folder"):
        read_file(tmp_path)


def test_excel_sheets(tmp_path):
    import xlsxwriter

    path = tmp_path / "book.xlsx"
    wb = xlsxwriter.Workbook(str(path))
    wb.add_worksheet("Notes").write(0, 0, "read me")
    deals = wb.add_worksheet("Deals")
    deals.write_row(0, 0, ["id", "amount"])
    deals.write_row(1, 0, ["D1", 5])
    deals.write_row(3, 0, ["D2", 7.25])
    wb.add_worksheet("Empty")
    wb.close()
    data = load_file(path, sheet="Deals")
    assert data.frame.rows() == [("D1", "5"), ("D2", "7.25")]
    assert data.rows.to_list() == [1, 3]
    with pytest.raises(errors.ImportDataError, match=r"\[sheet_not_found\].*Did you mean \"Deals\""):
        load_file(path, sheet="Deal")
    with pytest.raises(errors.ImportDataError, match=r"\[empty_file\].*sheet 'Empty' is empty"):
        load_file(path, sheet="Empty")
    with pytest.raises(errors.ImportDataError, match=r"\[header_only\]"):
        load_file(path)  # the first sheet has a header and no rows


def test_corrupt_parquet(tmp_path):
    f = tmp_path / "x.parquet"
    f.write_bytes(b"PAR1 not really")
    with pytest.raises(errors.ImportDataError, match=r"\[corrupt_file\]"):
        read_file(f)


# ------------------------------------------------------------------------------------------------
# the CLI's validate command
# ------------------------------------------------------------------------------------------------
def test_cli_validate_clean_and_broken(tmp_path, warehouse):
    ok = run_cli(["data", "validate", "--source", str(warehouse)], tmp_path)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    folder = tmp_path / "export"
    folder.mkdir()
    for name in ("teams", "users", "accounts"):
        tiny_frames()[name].write_parquet(folder / f"{name}.parquet")
    (folder / "opportunities.csv").write_text((BAD_INPUTS / "wrong_type.csv").read_text(), encoding="utf-8")
    bad = run_cli(["data", "validate", "--source", str(folder)], tmp_path)
    output = bad.stdout + bad.stderr
    assert bad.returncode == 1, output
    assert "Traceback" not in output
    assert "[wrong_type]" in output and "column amount" in output and "rows 2" in output


# ------------------------------------------------------------------------------------------------
# invoice lines (compute, lines, prefixes, negate, skip_empty, derive) and .csv.gz, by hand
# ------------------------------------------------------------------------------------------------
LINES = """\
    Invoice,Date,Customer,Quantity,Unit Price,Country
    5001,2024-03-01 10:01,C9,2,2.50,France
    5001,2024-03-01 10:00,C9,1,10.00,France
    5002,2024-03-02 09:00,,4,1.25,United Kingdom
    C5003,2024-03-03 12:00,C9,-2,2.50,France
    5004,2024-03-04 15:30,A1,"1,000",0.10,Germany
    5005,2024-04-01 08:00,C9,3,1.00,Spain
    """
LINES_MAPPING = """\
    table: orders
    derive: [accounts]
    columns: {Invoice: order_id, Date: ordered_at, Customer: account_id}
    compute: {amount: Quantity * `Unit Price`}
    lines: {sum: [amount]}
    prefixes:
      status: {column: Invoice, values: {C: cancelled}, otherwise: completed}
    negate: {amount: {status: cancelled}}
    skip_empty: [account_id]
    ignore: [Quantity, Unit Price]
    currency: CNY
    """


def test_invoice_lines_by_hand(tmp_path, warehouse):
    import gzip

    plain = write(tmp_path / "lines.csv", LINES)
    packed = tmp_path / "lines.csv.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    mapping = write(tmp_path / "lines.yaml", LINES_MAPPING)
    report = import_files(packed, "orders", mapping=mapping, into=warehouse)
    # 6 lines, 5 invoices; 5002 has no customer: 1 line, 1 invoice left out; 4 orders, 1 cancelled
    assert (report.rows_read, report.records_read, report.rows_written) == (6, 5, 4)
    assert report.left_out == (("account_id", 1, 1),)
    assert dict(report.by_status) == {"completed": 3, "cancelled": 1}
    assert report.derived == (("accounts", 1, 1),)  # C9 is new; A1 is already in the warehouse
    text = str(report)
    assert "lines.csv.gz" in text and "read 6 lines of 5 orders" in text
    assert "left out 1 lines (1 orders) without account_id" in text
    got = rows_by_key(warehouse, "orders")
    # 5001: 2 x 2.50 + 1 x 10.00 = 15.00 at the earlier line's 10:00; C5003: -2 x 2.50 stored as 5.00;
    # 5004: "1,000" x 0.10 = 100.00 (thousands separator)
    assert got["5001"]["amount"] == pytest.approx(15.0) and got["5001"]["ordered_at"] == dt.datetime(2024, 3, 1, 10)
    assert (got["C5003"]["amount"], got["C5003"]["status"]) == (pytest.approx(5.0), "cancelled")
    assert got["5004"]["amount"] == pytest.approx(100.0) and got["5004"]["status"] == "completed"
    assert "5002" not in got and got["5005"]["currency"] == "CNY"
    accounts = rows_by_key(warehouse, "accounts")
    # C9: first invoice 2024-03-01 10:00, country of its latest invoice (5005, Spain); A1 kept as it was
    assert (accounts["C9"]["name"], accounts["C9"]["country"], accounts["C9"]["created_at"]) == (
        "C9", "Spain", dt.datetime(2024, 3, 1, 10))
    assert (accounts["A1"]["name"], accounts["A1"]["country"]) == ("Acme", "CN")
    from crmlib.importer import recorded_imports

    assert recorded_imports(warehouse)["orders"]["left_out"] == [{"column": "account_id", "rows": 1, "records": 1}]


def test_a_broken_gzip_file_is_named(tmp_path, warehouse):
    import gzip

    broken = tmp_path / "lines.csv.gz"
    broken.write_bytes(gzip.compress(LINES.encode())[:40])
    before = sha256(warehouse)
    with pytest.raises(errors.ImportDataError, match=r"\[unreadable_file\] file .*lines\.csv\.gz: it is not a complete"):
        import_files(broken, "orders", mapping=write(tmp_path / "m.yaml", LINES_MAPPING), into=warehouse)
    assert sha256(warehouse) == before


@pytest.mark.parametrize("text, row, want", [
    ("Quantity * `Unit Price`", {"Quantity": "3", "Unit Price": "2.5"}, 7.5),
    ("a + b * c", {"a": "1", "b": "2", "c": "3"}, 7.0),
    ("(a + b) * c", {"a": "1", "b": "2", "c": "3"}, 9.0),
    ("a - b - c", {"a": "10", "b": "2", "c": "3"}, 5.0),
    ("a / b / 2", {"a": "12", "b": "3"}, 2.0),
    ("abs(a * -b) + 0.5", {"a": "2", "b": "3"}, 6.5),
    ("-a * 2", {"a": "4"}, -8.0),
])
def test_compute_expressions(text, row, want):
    from crmlib.import_rules import parse_expression

    expression = parse_expression(text)
    frame = pl.DataFrame({k: [v] for k, v in row.items()})
    got = frame.select(expression.to_polars(lambda c: pl.col(c).cast(pl.Float64))).item()
    assert got == pytest.approx(want)
    assert set(expression.columns) == set(row)


@pytest.mark.parametrize("text, fragment", [
    ("Quantity x Price", "unexpected 'x' \\(an operator"),
    ("(a + b", "ends too early"),
    ("a +", "ends too early"),
    ("Unit Price * 2", "unexpected 'Price' .*in backticks"),
    ("a % b", "cannot read '% b'"),
    ("", "empty"),
])
def test_compute_expression_errors(text, fragment):
    from crmlib.import_rules import parse_expression

    with pytest.raises(ValueError, match=fragment):
        parse_expression(text)


def test_new_mapping_keys_are_checked(tmp_path):
    bad = write(tmp_path / "m.yaml", """\
        table: orders
        compute: {amount: Quantity * Price, currency: a * b}
        lines: {sum: [account_id], first: [x]}
        prefixes:
          status: {column: InvoiceNo, values: {C: canceled}}
        negate: {amount: {status: void}}
        skip_empty: [acount_id]
        derive: cases
        """)
    with pytest.raises(errors.MappingError) as e:
        load_mapping(bad)
    text = str(e.value)
    for fragment in ("compute: currency is a str column, not int or float",
                     "lines must look like {sum: [amount]}",
                     "prefixes.status maps 'C' to 'canceled', which is not a order_status value",
                     "negate.amount names 'void', which is not a order_status value",
                     "skip_empty: 'acount_id' is not a column of orders",
                     "derive: cases cannot be derived from orders"):
        assert fragment in text, fragment
