"""The command line: short errors, exit codes, no tracebacks for user mistakes."""

import subprocess
import sys

import pytest

from crmlib.sources import warehouse


def run(*args, env=None):
    return subprocess.run([sys.executable, "-m", "crmlib", *args], capture_output=True, text=True, env=env,
                          timeout=300)


def test_version_and_help():
    r = run("version")
    assert r.returncode == 0 and r.stdout.startswith("crmlib ")
    r = run("--help")
    assert r.returncode == 0 and "data" in r.stdout and "report" in r.stdout


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("data", "info", "--source", "/nonexistent/crm.duckdb"), "does not exist"),
        (("data", "info", "--source", "mysql://u:hunter2@h/db"), "Unsupported source URL"),
        (("data", "info", "--source", "notes.txt"), "Cannot tell what kind of source"),
    ],
)
def test_user_mistakes_give_one_message_and_exit_1(args, fragment):
    r = run(*args)
    assert r.returncode == 1
    assert fragment in r.stderr
    assert "Traceback" not in r.stderr + r.stdout
    assert "hunter2" not in r.stderr + r.stdout


def test_db_source_without_env_says_what_to_set(monkeypatch):
    import os

    env = {k: v for k, v in os.environ.items() if k != "CRMLIB_DB_URL"}
    r = run("data", "info", "--source", "db", env=env)
    assert r.returncode == 1 and "CRMLIB_DB_URL is not set" in r.stderr


def test_usage_errors_exit_2():
    r = run("data", "info", "--bogus")
    assert r.returncode == 2 and "No such option" in r.stderr


def test_debug_shows_the_traceback():
    r = run("--debug", "data", "info", "--source", "/nonexistent/crm.duckdb")
    assert r.returncode != 0 and "Traceback" in r.stderr


def test_info_lists_every_table_with_rows(tmp_path):
    from datetime import date

    import polars as pl

    path = warehouse.write_warehouse(
        tmp_path / "w.duckdb",
        {"fx_rates": pl.DataFrame({"date": [date(2024, 1, 1), date(2024, 2, 1)], "currency": ["USD", "USD"],
                                   "rate_to_base": [7.1, 7.2]})},
    )
    r = run("data", "info", "--source", str(path))
    assert r.returncode == 0, r.stderr
    line = next(ln for ln in r.stdout.splitlines() if "fx_rates" in ln)
    assert "2024-01-01" in line and "2024-02-01" in line and " 2 " in line
    assert "fingerprint:" in r.stdout


def test_kpis_list_in_chinese_shows_every_kpi_with_a_chinese_label():
    import re

    from crmlib.kpis.catalog import default_catalog

    r = run("kpis", "list", "--lang", "zh")
    assert r.returncode == 0, r.stderr
    rows = {ln.split("│")[2].strip(): ln.split("│")[3].strip() for ln in r.stdout.splitlines() if ln.count("│") > 5}
    names = {k.name for k in default_catalog().list()}
    assert set(rows) == names and len(names) >= 20
    for name, label in rows.items():
        assert re.search(r"[\u4e00-\u9fff]", label), f"{name} has no Chinese label: {label!r}"


def test_kpis_show_and_unknown_name():
    r = run("kpis", "show", "win_rate")
    assert r.returncode == 0 and "won deals / (won deals + lost deals)" in r.stdout
    r = run("kpis", "show", "win_rat")
    assert r.returncode == 1 and 'Did you mean "win_rate"' in r.stderr and "Traceback" not in r.stderr


def test_kpis_eval_csv_and_json_carry_the_engine_result(demo_warehouse):
    import io
    import json

    import polars as pl

    import crmlib

    args = ("kpis", "eval", "won_deals", "--by", "team", "--grain", "quarter", "--period", "2025-01-01:2025-06-30",
            "--source", str(demo_warehouse))
    r = run(*args, "--format", "csv")
    assert r.returncode == 0, r.stderr
    got = pl.read_csv(io.StringIO(r.stdout))
    with crmlib.open(demo_warehouse) as crm:
        want = crm.kpis("won_deals", by="team", grain="quarter", period=("2025-01-01", "2025-06-30"))
        # won deals per team and quarter, counted directly from the opportunities table
        direct = (crm.opportunities.filter(pl.col("is_won") & pl.col("close_date").is_between(
            pl.date(2025, 1, 1), pl.date(2025, 6, 30)))
            .join(crm.users.select("user_id", "team_id"), left_on="owner_id", right_on="user_id")
            .group_by("team_id").agg(pl.len()).collect())
    assert got.height == want.height and got["value"].sum() == want["value"].sum() == direct["len"].sum()
    assert set(got.columns) >= {"kpi", "period", "team", "value", "target", "attainment", "status"}
    r = run(*args, "--format", "json")
    assert r.returncode == 0 and len(json.loads(r.stdout)) == want.height
    r = run("kpis", "eval", "won_deals", "--format", "xml", "--source", str(demo_warehouse))
    assert r.returncode == 1 and "table, csv or json" in r.stderr
