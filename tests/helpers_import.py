"""A tiny hand-made warehouse for import and validation tests (no demo simulator needed).

What it holds (the tests' hand-computed numbers come from here):

* teams T1 (sales, North); users U1, U2 (reps in T1, U2 managed by U1);
* accounts A1, A2, A3; products P1 (CNY); campaigns C1 (CNY);
* opportunities O1 (A1, U1, proposal, 1000 CNY) and O2 (A2, U2, closed_won, 2500 CNY);
* fx_rates: USD 7.10 on 2024-01-01 -- so USD amounts convert, EUR amounts do not.

The base currency of these tests is CNY (``CRMLIB_BASE_CURRENCY``, set by :func:`isolated_env`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import polars as pl

from crmlib.sources import warehouse

ROOT = Path(__file__).resolve().parents[1]
BAD_INPUTS = Path(__file__).resolve().parent / "bad_inputs"


def tiny_frames() -> dict[str, pl.DataFrame]:
    d = dt.datetime
    return {
        "teams": pl.DataFrame(
            {"team_id": ["T1"], "name": ["Team North"], "department": ["Sales"], "function": ["sales"],
             "region": ["North"], "parent_team_id": [None]}
        ),
        "users": pl.DataFrame(
            {"user_id": ["U1", "U2"], "name": ["Li Lei", "Han Meimei"], "email": [None, None],
             "role": ["sales_manager", "sales_rep"], "team_id": ["T1", "T1"], "department": ["Sales", "Sales"],
             "region": ["North", "North"], "manager_id": [None, "U1"], "hired_at": [dt.date(2020, 1, 1)] * 2,
             "is_active": [True, True]}
        ),
        "accounts": pl.DataFrame(
            {"account_id": ["A1", "A2", "A3"], "name": ["Acme", "Globex", "Initech"],
             "industry": ["Retail"] * 3, "segment": ["smb", "mid_market", "enterprise"],
             "region": ["North", "East", "South"], "country": ["CN"] * 3, "owner_id": ["U1", "U2", "U1"],
             "created_at": [d(2023, 1, 5), d(2023, 2, 6), d(2023, 3, 7)]}
        ),
        "products": pl.DataFrame(
            {"product_id": ["P1"], "name": ["Suite"], "family": ["Software"], "list_price": [100.0],
             "currency": ["CNY"], "is_subscription": [True]}
        ),
        "campaigns": pl.DataFrame(
            {"campaign_id": ["C1"], "name": ["Spring"], "channel": ["email"], "start_date": [dt.date(2024, 1, 1)],
             "end_date": [dt.date(2024, 3, 31)], "budget": [5000.0], "currency": ["CNY"], "owner_id": ["U1"]}
        ),
        "opportunities": pl.DataFrame(
            {"opportunity_id": ["O1", "O2"], "name": ["Acme renewal", "Globex deal"], "account_id": ["A1", "A2"],
             "owner_id": ["U1", "U2"], "created_at": [d(2024, 1, 10), d(2024, 1, 15)],
             "close_date": [dt.date(2024, 4, 30), dt.date(2024, 2, 20)], "stage": ["proposal", "closed_won"],
             "is_closed": [False, True], "is_won": [False, True], "amount": [1000.0, 2500.0],
             "currency": ["CNY", "CNY"], "probability": [0.6, 1.0], "forecast_category": ["pipeline", "closed"],
             "type": ["renewal", "new"]}
        ),
        "fx_rates": pl.DataFrame({"date": [dt.date(2024, 1, 1)], "currency": ["USD"], "rate_to_base": [7.10]}),
    }


def make_warehouse(path: str | Path) -> Path:
    """Write the tiny warehouse at ``path`` and return it."""
    return warehouse.write_warehouse(path, tiny_frames(), meta={"created_by": "tests"})


def sha256(path: str | Path) -> str | None:
    p = Path(path)
    return hashlib.sha256(p.read_bytes()).hexdigest() if p.exists() else None


def cli_env(tmp: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"CRMLIB_BASE_CURRENCY": "CNY", "CRMLIB_HOME": str(tmp), "CRMLIB_SOURCE": str(tmp / "crm.duckdb")})
    env.pop("CRMLIB_DB_URL", None)
    return env


def run_cli(args: list[str], tmp: Path) -> subprocess.CompletedProcess:
    """``python -m crmlib ARGS`` in a subprocess (as a user runs it)."""
    exe = Path(sys.executable).with_name("crmlib")
    cmd = [str(exe), *args] if exe.exists() else [sys.executable, "-m", "crmlib", *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=cli_env(tmp), cwd=tmp, timeout=120)
