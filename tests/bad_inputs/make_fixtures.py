"""Write the bad-input catalogue's files (run it again after changing a case; commit what it writes).

    .venv/bin/python tests/bad_inputs/make_fixtures.py

Every file is small and made here, byte for byte, so that encodings, byte order marks, missing final line
breaks and binary content are exact (an editor would "fix" them). Output is deterministic: the random bytes
are seeded and the workbooks carry a fixed creation date. What each file is meant to trigger is in
CATALOGUE.yaml beside this script. The rows refer to the tiny warehouse of ``tests/helpers_import.py``
(accounts A1-A3, users U1-U2, fx rate for USD only, base currency CNY).
"""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent

OPP_HEADER = "opportunity_id,name,account_id,owner_id,created_at,close_date,stage,amount,currency,type"
GOOD = [
    "O10,Acme expansion,A1,U1,2024-03-01 09:30:00,2024-06-30,proposal,12000,CNY,upsell",
    "O11,Globex pilot,A2,U2,2024-03-05,2024-05-15,qualification,8000,USD,new",
    "O12,Initech renewal,A3,U1,2024-02-10,2024-03-20,closed_won,15000,CNY,renewal",
]


def lines(*rows: str, header: str = OPP_HEADER, end: str = "\n") -> str:
    return "\n".join([header, *rows]) + end


def replace(row: str, index: int, value: str) -> str:
    fields = row.split(",")
    fields[index] = value
    return ",".join(fields)


def text_files() -> dict[str, str]:
    o10, o11, o12 = GOOD
    return {
        # positive: the plain, canonical file
        "good.csv": lines(*GOOD),
        # required column "amount" left out
        "missing_column.csv": lines(
            *(",".join(r.split(",")[:7] + r.split(",")[8:]) for r in GOOD),
            header="opportunity_id,name,account_id,owner_id,created_at,close_date,stage,currency,type",
        ),
        # "amount" misspelt in the header: missing column + unknown column with a suggestion
        "extra_column_typo.csv": lines(*GOOD, header=OPP_HEADER.replace(",amount,", ",ammount,")),
        # an optional column misspelt: imports, with a warning
        "extra_column_warning.csv": lines(
            *(r + f",{fc}" for r, fc in zip(GOOD, ["pipeline", "best_case", "closed"], strict=True)),
            header=OPP_HEADER + ",forcast_category",
        ),
        # text in a numeric column (row 2)
        "wrong_type.csv": lines(o10, replace(o11, 7, "12k"), o12),
        # a date that is not one (row 3)
        "bad_date.csv": lines(o10, o11, replace(o12, 5, "next week")),
        # US dates without a mapping (rows 1-3)
        "us_dates.csv": lines(replace(o10, 5, "06/30/2024"), replace(o11, 5, "05/15/2024"), replace(o12, 5, "03/20/2024")),
        # a negative amount (row 3)
        "negative_amount.csv": lines(o10, o11, replace(o12, 7, "-15000")),
        # O10 twice (rows 1 and 3)
        "duplicate_key.csv": lines(o10, o11, replace(o12, 0, "O10")),
        # an account that does not exist (row 2)
        "orphan_fk.csv": lines(o10, replace(o11, 2, "A99"), o12),
        # a misspelt stage (row 1) and a stage from another CRM (row 3)
        "unknown_stage.csv": lines(replace(o10, 6, "Negotation"), o11, replace(o12, 6, "Won")),
        # an empty required value (row 2)
        "missing_value.csv": lines(o10, replace(o11, 6, ""), o12),
        # close date before the creation date (row 2)
        "close_before_create.csv": lines(o10, replace(o11, 5, "2024-02-01"), o12),
        # EUR without an fx rate (rows 3 and 4); USD has one
        "mixed_currency.csv": lines(
            o10, o11, replace(o12, 8, "EUR"), "O13,Hooli upgrade,A1,U2,2024-03-07,2024-07-01,negotiation,900,EUR,upsell"
        ),
        # a boolean that is not one (row 1)
        "bad_boolean.csv": lines(o10 + ",maybe", o11 + ",no", o12 + ",yes", header=OPP_HEADER + ",is_won"),
        # header only
        "header_only.csv": lines(),
        # a comma inside an unquoted name: line 3 has 11 fields
        "ragged.csv": lines(o10, replace(o11, 1, "Globex, pilot"), o12),
        # cut in the middle of the 4th row (line 5), no final line break
        "truncated.csv": lines(*GOOD, "O13,Umbrella deal,A1,U1,2024-0", end=""),
        # cut inside a quoted value that starts on line 4
        "truncated_quote.csv": lines(o10, o11, 'O12,"Initech renewal, phase 2', end=""),
        # semicolon-delimited (positive)
        "semicolon.csv": lines(*(r.replace(",", ";") for r in GOOD), header=OPP_HEADER.replace(",", ";")),
        # semicolons and decimal commas: an error without a mapping, fine with decimal_comma.yaml
        "decimal_comma.csv": lines(
            *(replace(r, 7, a).replace(",", ";") for r, a in zip(GOOD, ["12000@50", "8.000@00", "15.000@75"], strict=True)),
            header=OPP_HEADER.replace(",", ";"),
        ).replace("@", ","),
        # leads whose statuses the mapping maps to a value that is not canonical
        "unknown_status_mapping.csv": lines(
            "L1,2024-01-05 10:00,email,Open - Not Contacted", "L2,2024-01-06 11:00,webinar,Working - Contacted",
            header="lead_id,created_at,channel,status",
        ),
        # a Salesforce "Opportunities" report export (Details Only), US dates, with the report footer
        "salesforce_export.csv": "\n".join([
            '"Opportunity Owner","Account Name","Opportunity Name","Stage","Fiscal Period","Amount","Amount Currency",'
            '"Probability (%)","Age","Close Date","Created Date","Next Step","Lead Source","Type","Opportunity ID",'
            '"Account ID","Owner ID","Forecast Category"',
            '"Li Lei","Acme","Acme expansion","Id. Decision Makers","Q2-2024","12,000.00","CNY","60","12",'
            '"6/30/2024","3/1/2024","Send quote","Web","Existing Customer - Upgrade","006A000001","A1","U1","Pipeline"',
            '"Han Meimei","Globex","Globex pilot","Negotiation/Review","Q2-2024","8,000.00","USD","90","40",'
            '"5/15/2024","3/5/2024","","Partner","New Customer","006A000002","A2","U2","Commit"',
            '"Li Lei","Initech","Initech renewal","Closed Won","Q1-2024","15,000.00","CNY","100","38",'
            '"3/20/2024","2/10/2024","","","Existing Customer - Replacement","006A000003","A3","U1","Closed"',
            "",
            '"Opportunities by Stage"',
            '"Copyright (c) 2000-2024 salesforce.com, inc. All rights reserved."',
            '"Confidential Information - Do Not Distribute"',
            '"Generated By:  Li Lei  3/31/2024 9:15 AM"',
            "",
        ]),
        # a plain helpdesk event log (ticket, time, state); "Escalated" (rows 3 and 5) is not in the mapping
        "eventlog_unmapped_status.csv": lines(
            "H1,2024-03-04 09:00,New,A1,Email,P2", "H1,2024-03-04 10:00,Working,,,",
            "H1,2024-03-04 11:00,Escalated,,,", "H2,2024-03-05 09:00,New,A2,Phone,P3",
            "H2,2024-03-05 15:00,Escalated,,,", "H2,2024-03-06 10:00,Done,,,",
            header="Ticket,Time,State,Customer,Channel,Priority",
        ),
        # invoice lines (lines mode): "two" is not a quantity (row 2)
        "invoice_lines_bad_quantity.csv": lines(
            "1001,2024-03-01 10:00,A1,3,2.50", "1001,2024-03-01 10:00,A1,two,1.00", "1002,2024-03-02 11:00,A2,1,9.90",
            header="Invoice,Date,Customer,Quantity,Price",
        ),
        # invoice lines: invoice 1002 (rows 3-4) totals 1 x 5.00 - 2 x 4.00 = -3.00 without being a cancellation
        "invoice_lines_negative.csv": lines(
            "1001,2024-03-01 10:00,A1,3,2.50", "1001,2024-03-01 10:00,A1,1,1.00", "1002,2024-03-02 11:00,A2,1,5.00",
            "1002,2024-03-02 11:00,A2,-2,4.00", "C1003,2024-03-03 12:00,A1,-3,2.50",
            header="Invoice,Date,Customer,Quantity,Price",
        ),
        # a HubSpot deals export
        "hubspot_export.csv": "\n".join([
            "Record ID,Deal Name,Deal Stage,Close Date,Deal owner,HubSpot Owner ID,Amount,Associated Company IDs,"
            "Pipeline,Create Date,Deal Type,Currency",
            "9001,Acme expansion,presentationscheduled,2024-06-30 00:00,Li Lei,U1,12000,A1;A3,Sales Pipeline,"
            "2024-03-01 09:30,existingbusiness,CNY",
            "9002,Globex pilot,qualifiedtobuy,2024-05-15 00:00,Han Meimei,U2,8000,A2,Sales Pipeline,2024-03-05 14:00,"
            "newbusiness,USD",
            "9003,Initech renewal,closedlost,2024-03-20 00:00,Li Lei,U1,15000,A3,Sales Pipeline,2024-02-10 08:00,,CNY",
            "",
        ]),
    }


MAPPINGS = {
    "unknown_status_mapping.yaml": """\
# Leads from a Salesforce-like CRM; "open" is not a canonical lead status (new, working, nurturing, ...)
table: leads
values:
  status:
    Open - Not Contacted: open
    Working - Contacted: working
""",
    "bad_mapping.yaml": """\
# "colums" is a typo of "columns"
table: opportunities
colums:
  Opportunity ID: opportunity_id
""",
    "gbk_declared_utf8.yaml": """\
# The user declares UTF-8, but the file was saved by Chinese Excel (GBK)
table: accounts
encoding: utf-8
""",
    "eventlog.yaml": """\
# A plain helpdesk log: the cases are derived from it (the accounts A1, A2 are in the warehouse)
table: case_events
derive: [cases]
columns: {Ticket: case_id, Time: occurred_at, State: status, Customer: account_id}
values:
  status: {Working: open, Done: solved}
  priority: {P1: urgent, P2: high, P3: normal}
defaults: {event_type: status_change}
""",
    "invoice_lines.yaml": """\
# Invoice lines: one order per invoice, amount = quantity x price; "C..." invoices are cancellations
table: orders
columns: {Invoice: order_id, Date: ordered_at, Customer: account_id}
compute: {amount: Quantity * Price}
lines: {sum: [amount]}
prefixes:
  status: {column: Invoice, values: {C: cancelled}, otherwise: completed}
negate: {amount: {status: cancelled}}
ignore: [Quantity, Price]
currency: CNY
""",
    "bad_compute.yaml": """\
# "x" is not an operator: multiplication is *
table: orders
columns: {Invoice: order_id, Date: ordered_at, Customer: account_id}
compute: {amount: Quantity x Price}
lines: {sum: [amount]}
currency: CNY
""",
    "decimal_comma.yaml": """\
# European number format: 1.234,50
table: opportunities
decimal: ","
""",
}

ACC_HEADER = "account_id,name,industry,segment,region,country,owner_id,created_at"
CHINESE = [
    "A10,北京星辰科技有限公司,软件,smb,North,中国,U1,2024-01-08",
    "A11,上海云海贸易有限公司,零售,enterprise,East,中国,U2,2024-02-09",
]


def binary_files() -> dict[str, bytes]:
    rng = random.Random(20240331)
    noise = bytes(rng.randrange(256) for _ in range(2048))
    return {
        # GBK (what Chinese Excel writes as "CSV"): imports, names intact
        "gbk_chinese.csv": lines(*CHINESE, header=ACC_HEADER).replace("\n", "\r\n").encode("gbk"),
        # the same bytes, read with a wrong declared encoding (gbk_declared_utf8.yaml)
        "gbk_declared_utf8.csv": lines(*CHINESE, header=ACC_HEADER).encode("gbk"),
        # UTF-8 with a GBK row pasted in (line 3)
        "mixed_encoding.csv": lines(CHINESE[0], header=ACC_HEADER).encode("utf-8") + (CHINESE[1] + "\n").encode("gbk"),
        # Windows-1252 (Western Excel): detected, names intact
        "cp1252_accents.csv": lines(
            "A12,Müller Maschinenbau GmbH,Industrie,smb,West,Deutschland,U1,2024-01-15",
            "A13,Société Générale Conseil,Conseil,mid_market,South,France,U2,2024-02-20",
            header=ACC_HEADER,
        ).encode("cp1252"),
        # UTF-8 with a byte order mark (Excel's "CSV UTF-8"): the BOM must not stick to the first column name
        "utf8_bom.csv": b"\xef\xbb\xbf" + lines(*GOOD).encode("utf-8"),
        # 0 bytes
        "empty.csv": b"",
        # random bytes named .csv
        "binary.csv": b"\x00\x01\x02" + noise,
        # random bytes named .xlsx
        "corrupt.xlsx": noise,
        # JSON is not supported
        "unsupported.json": b'[{"opportunity_id": "O10"}]\n',
    }


def workbooks() -> None:
    import xlsxwriter

    def book(name: str, rows: list[list], *, gap_before: int | None = None) -> None:
        path = HERE / name
        wb = xlsxwriter.Workbook(str(path))
        wb.set_properties({"created": dt.datetime(2024, 3, 31, 12, 0, 0)})
        ws = wb.add_worksheet("Opportunities")
        date_fmt = wb.add_format({"num_format": "yyyy-mm-dd"})
        ts_fmt = wb.add_format({"num_format": "yyyy-mm-dd hh:mm"})
        ws.write_row(0, 0, OPP_HEADER.split(","))
        r = 1
        for i, row in enumerate(rows):
            if gap_before is not None and i == gap_before:
                r += 1  # an empty row in the sheet
            for c, value in enumerate(row):
                if isinstance(value, dt.datetime):
                    ws.write_datetime(r, c, value, ts_fmt)
                elif isinstance(value, dt.date):
                    ws.write_datetime(r, c, dt.datetime.combine(value, dt.time()), date_fmt)
                else:
                    ws.write(r, c, value)
            r += 1
        wb.close()

    d, day = dt.datetime, dt.date
    rows = [
        ["O10", "Acme expansion", "A1", "U1", d(2024, 3, 1, 9, 30), day(2024, 6, 30), "Proposal", 12000, "CNY", "upsell"],
        ["O11", "Globex pilot", "A2", "U2", d(2024, 3, 5), day(2024, 5, 15), "Qualification", 8000.5, "USD", "new"],
        ["O12", "Initech renewal", "A3", "U1", d(2024, 2, 10), day(2024, 3, 20), "Closed Won", 15000, "CNY", "renewal"],
    ]
    book("good.xlsx", rows)
    bad = [list(r) for r in rows]
    bad[2][7] = -100  # sheet row 4 = data row 3: the blank sheet row before it counts
    book("bad_value.xlsx", bad[:1] + bad[2:], gap_before=1)
    (HERE / "xlsx_as_csv.csv").write_bytes((HERE / "good.xlsx").read_bytes())


def main() -> None:
    for name, text in text_files().items():
        (HERE / name).write_bytes(text.encode("utf-8"))
    for name, text in MAPPINGS.items():
        (HERE / name).write_text(text, encoding="utf-8")
    for name, data in binary_files().items():
        (HERE / name).write_bytes(data)
    workbooks()


if __name__ == "__main__":
    main()
