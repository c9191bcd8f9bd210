"""UCI "Online Retail" (../shared/data/uci_online_retail, see its SOURCE.md) through the import path (issue 10):
`crmlib data import online_retail.csv.gz --table orders --preset online_retail`, then the customers notebook
on the imported warehouse, in English and Chinese.

The expected figures come from SOURCE.md (published: 541,909 lines, 25,900 invoices, 9,288 cancellation
lines, 4,372 customers, 135,080 lines without CustomerID) and from polars straight from the file in this
test, independently of the importer. Invoice 536365 (the file's first 7 lines) by hand: 6 x 2.55 + 6 x 3.39
+ 8 x 2.75 + 6 x 3.39 + 6 x 3.39 + 2 x 7.65 + 6 x 4.25 = 139.12.

Without ../shared/data the tests skip with the path in the message, except on CI (``CI=true``) where
they fail.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import sys
from pathlib import Path

import duckdb
import nbformat
import polars as pl
import pytest
from models.shared_data import shared_file

from crmlib.importer import recorded_imports

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "customers.ipynb"
CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture(scope="module")
def lines() -> pl.DataFrame:
    """The invoice lines, read by polars directly (not through crmlib)."""
    path = shared_file("uci_online_retail/online_retail.csv.gz")
    return pl.read_csv(
        path,
        schema_overrides={
            "InvoiceNo": pl.String,
            "StockCode": pl.String,
            "CustomerID": pl.String,
            "InvoiceDate": pl.String,
        },
    )


@pytest.fixture(scope="module")
def expected(lines) -> dict:
    """Figures computed here from the lines, the way SOURCE.md describes the data."""
    known = lines.filter(pl.col("CustomerID").is_not_null())
    invoices = (
        known.group_by("InvoiceNo")
        .agg(
            (pl.col("Quantity") * pl.col("UnitPrice")).sum().alias("total"),
            pl.col("InvoiceDate").min().alias("first"),
            pl.col("CustomerID").first().alias("customer"),
        )
        .with_columns(pl.col("InvoiceNo").str.starts_with("C").alias("cancel"))
    )
    latest = (
        known.sort("InvoiceDate", maintain_order=True)
        .group_by("CustomerID")
        .agg(pl.col("Country").last(), pl.col("InvoiceDate").min().alias("first"))
    )
    return {
        "lines": lines.height,
        "invoices": lines["InvoiceNo"].n_unique(),
        "cancel_lines": lines.filter(pl.col("InvoiceNo").str.starts_with("C")).height,
        "customers": known["CustomerID"].n_unique(),
        "no_customer_lines": lines["CustomerID"].null_count(),
        "no_customer_invoices": lines.filter(pl.col("CustomerID").is_null())["InvoiceNo"].n_unique(),
        "orders": invoices.height,
        "cancelled": int(invoices["cancel"].sum()),
        "invoices_frame": invoices,
        "accounts_frame": latest,
    }


@pytest.fixture(scope="module")
def imported(tmp_path_factory) -> tuple[Path, str]:
    """`crmlib data import` of the file into a new warehouse (amounts in GBP: the base currency is GBP)."""
    path = shared_file("uci_online_retail/online_retail.csv.gz")
    into = tmp_path_factory.mktemp("uci") / "crm.duckdb"
    exe = Path(sys.executable).with_name("crmlib")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "crmlib"]
    env = {**os.environ, "CRMLIB_BASE_CURRENCY": "GBP"}
    env.pop("CRMLIB_DB_URL", None)
    done = subprocess.run(
        [
            *cmd,
            "data",
            "import",
            str(path),
            "--table",
            "orders",
            "--preset",
            "online_retail",
            "--into",
            str(into),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return into, done.stdout + done.stderr


def _table(path: Path, name: str) -> pl.DataFrame:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.sql(f'select * from "{name}"').pl()
    finally:
        con.close()


def test_the_independent_figures_match_source_md(expected):
    assert (expected["lines"], expected["invoices"], expected["cancel_lines"]) == (541_909, 25_900, 9_288)
    assert (expected["customers"], expected["no_customer_lines"]) == (4_372, 135_080)


def test_the_import_prints_what_it_did(imported, expected):
    _, output = imported
    n = expected
    assert f"read {n['lines']:,} lines of {n['invoices']:,} orders" in output
    assert (
        f"left out {n['no_customer_lines']:,} lines ({n['no_customer_invoices']:,} orders) without account_id"
    ) in output
    assert f"completed {n['orders'] - n['cancelled']:,}, cancelled {n['cancelled']:,}" in output
    assert f"derived {n['customers']:,} accounts rows" in output
    assert f"Imported {n['orders']} rows into orders" in output
    # what was left out stays recorded in the warehouse
    got = recorded_imports(imported[0])["orders"]
    assert got["left_out"] == [
        {"column": "account_id", "rows": n["no_customer_lines"], "records": n["no_customer_invoices"]}
    ]
    assert got["records_read"] == n["invoices"] and got["by_status"]["cancelled"] == n["cancelled"]


def test_invoices_become_orders(imported, expected):
    orders = _table(imported[0], "orders")
    inv = expected["invoices_frame"]
    assert orders.height == inv.height and orders["order_id"].n_unique() == inv.height
    assert (orders["status"] == "cancelled").sum() == expected["cancelled"]
    assert orders.filter(pl.col("order_id").str.starts_with("C"))["status"].unique().to_list() == [
        "cancelled"
    ]
    assert set(orders["currency"]) == {"GBP"} and orders["amount"].min() >= 0
    first = orders.filter(pl.col("order_id") == "536365").row(0, named=True)
    assert first["amount"] == pytest.approx(139.12, abs=1e-9)
    assert (first["account_id"], first["ordered_at"]) == ("17850", dt.datetime(2010, 12, 1, 8, 26))
    both = orders.join(inv, left_on="order_id", right_on="InvoiceNo")
    assert both.height == inv.height
    # cancellations are stored as the positive amount cancelled; the earliest line's time is the order's
    diff = both.select(
        (pl.col("amount") - pl.when(pl.col("cancel")).then(-pl.col("total")).otherwise(pl.col("total")))
        .abs()
        .max()
    ).item()
    assert diff < 1e-6
    assert both.select(
        (pl.col("ordered_at").dt.strftime("%Y-%m-%d %H:%M:%S") == pl.col("first")).all()
    ).item()
    assert (both["account_id"] == both["customer"]).all()


def test_customers_become_accounts(imported, expected):
    accounts = _table(imported[0], "accounts")
    want = expected["accounts_frame"]
    assert accounts.height == expected["customers"] == 4_372
    both = accounts.join(want, left_on="account_id", right_on="CustomerID")
    assert both.height == want.height
    assert (both["country"] == both["Country"]).all()  # the country of the latest invoice (8 customers moved)
    assert (both["created_at"].dt.strftime("%Y-%m-%d %H:%M:%S") == both["first"]).all()
    assert (accounts["name"] == accounts["account_id"]).all()


@pytest.mark.slow
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_customers_notebook_runs_on_the_import(imported, expected, lang, tmp_path, monkeypatch):
    import papermill

    monkeypatch.setenv("CRMLIB_BASE_CURRENCY", "GBP")
    out = tmp_path / f"customers_{lang}.ipynb"
    papermill.execute_notebook(
        str(NOTEBOOK),
        str(out),
        parameters={"source": str(imported[0]), "lang": lang, "interactive": False},
        kernel_name="python3",
        progress_bar=False,
        cwd=str(NOTEBOOK.parent),
    )
    nb = nbformat.read(out, as_version=4)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error" or o.get("name") == "stderr"]
    text = "\n".join(str(o.get("data", {}).get("text/html", "")) + str(o.get("text", "")) for o in outputs)
    assert "crmlib-section-error" not in text, "a section failed"
    # the order exclusions table counts the cancellation invoices (computed here from the file)
    plain = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", re.sub(r"<style.*?</style>", " ", text, flags=re.S)))
    used, cancelled = expected["orders"] - expected["cancelled"], expected["cancelled"]
    assert f"{used:,}" in plain and f"{cancelled:,}" in plain
    if lang == "zh":
        assert CJK.search(plain) and "Orders used and left out" not in plain
    else:
        assert "Orders used and left out" in plain
