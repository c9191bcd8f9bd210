"""Benchmark: the KPI engine against idiomatic pandas and hand-written DuckDB SQL, with results checked.

A suite of KPIs of every shape the engine has (money sums converted at the day's exchange rate,
counts, ratios, derived divisions, a mean and a median duration, a cumulative year-to-date sum, two
period-end snapshots and a 90-day conversion cohort), by month x team over one year, from the same
DuckDB demo warehouse, computed four ways in the same run:

* ``crmlib``        ``crmlib.open(path).kpis(KPIS, by=["team"], grain="month", period=PERIOD, targets=False,
                    backend="auto")``: the engine's default backend, which for a DuckDB file is
                    ``"duckdb"`` (the queries run inside DuckDB, as SQL the engine writes);
* ``crmlib-polars`` the same call with ``backend="polars"`` (the tables are read into polars; an extra row);
* ``pandas``        idiomatic pandas over the tables read with ``con.table(t).select(cols).df()``
                    (read time and compute time reported apart; merges/maps, groupby, merge_asof);
* ``duckdb-sql``    one hand-written DuckDB SQL query over the file (ASOF JOIN for the rates).

The outputs (kpi, month, team, value) must agree: the same rows, including the empty groups (every
team of the KPI's table x every month; 0 for sums and counts, null for means, medians and ratios
with a zero denominator), and equal values (floats within 1e-9 relative, 1e-12 absolute).

Each contender runs in fresh subprocesses of its own (``--procs``, default 3): in each, after the
imports, the first call is the *cold* time (imports done, OS page cache warm) and the warm-up; then
``--repeat`` (default 3) more calls, whose best is the *warm* time; peak RSS is the child's own
``getrusage`` maximum (after the first call, and at the end). Cold, warm and memory are the best
(time) and the largest (RSS) over the subprocesses.

    .venv/bin/python bench/bench_kpis.py                         # results into bench/RESULTS.md
    .venv/bin/python bench/bench_kpis.py --no-write-results --procs 1
    .venv/bin/python bench/bench_kpis.py --profile               # where crmlib's time goes (both backends)
    .venv/bin/python bench/bench_kpis.py --data /tmp/bench1.duckdb --scale 1 --no-write-results

The warehouse is ``--data`` (default /tmp/bench10.duckdb), made with
``crmlib data demo --scale 10 --out /tmp/bench10.duckdb`` when missing. pandas is not a crmlib
dependency: install it for the benchmark with ``.venv/bin/pip install pandas``. The section
"## KPI engine" of bench/RESULTS.md is replaced; other sections are kept.

Scope: the pandas and SQL versions implement the engine's semantics for complete periods that end
before the data's as-of date (their last event), which is the case here (the demo data ends in
mid-2026); they check it and stop otherwise.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "RESULTS.md"
SECTION = "## KPI engine"
DEFAULT_DATA = "/tmp/bench10.duckdb"
SCALE = 10

PERIOD = ("2025-01-01", "2025-12-31")
BASE = os.environ.get("CRMLIB_BASE_CURRENCY", "CNY")  # crmlib.config.base_currency()'s rule
KPIS = [
    # opportunities (team = users.team_id via owner_id)
    "revenue",  # sum of won amount by close date, converted at the close day's rate
    "won_deals",  # count
    "lost_deals",  # count, two filters
    "win_rate",  # ratio won / closed
    "avg_deal_size",  # derived revenue / won_deals
    "new_opportunities",  # count by created_at (datetime)
    "pipeline_created",  # money sum by created_at
    "sales_cycle_days",  # mean duration in days
    "revenue_ytd",  # cumulative, year to date
    "open_pipeline",  # snapshot at period end, money at the period end's rate
    # leads (team via owner_id)
    "new_leads",
    "mqls",  # count by mql_at
    "lead_to_opportunity",  # conversion cohort, 90 days
    # cases (team_id)
    "new_cases",
    "solved_cases",  # status in (solved, closed) by closed_at
    "open_cases",  # snapshot count
    "median_resolution_hours",  # median duration in hours
    # surveys (team = cases.team_id via case_id)
    "csat",  # ratio
    "nps",  # derived from two ratios
]
CONTENDERS = ("crmlib", "crmlib-polars", "pandas", "duckdb-sql")
REL_TOL, ABS_TOL = 1e-9, 1e-12


# ============================================================================================
# 1. crmlib
# ============================================================================================
def crmlib_run(path: str, backend: str) -> tuple[list, dict]:
    import crmlib

    t0 = time.perf_counter()
    with crmlib.open(path) as crm:
        df = crm.kpis(KPIS, by=["team"], grain="month", period=PERIOD, targets=False, backend=backend)
    took = time.perf_counter() - t0
    if not df["complete"].all():
        raise SystemExit("crmlib reports incomplete periods: the pandas/SQL versions assume complete ones.")
    rows = [(k, p.isoformat(), t, v) for k, p, t, v in df.select("kpi", "period", "team", "value").iter_rows()]
    return rows, {"total_s": took}


# ============================================================================================
# 2. pandas
# ============================================================================================
PANDAS_COLUMNS = {
    "users": ["user_id", "team_id"],
    "opportunities": ["owner_id", "created_at", "close_date", "is_closed", "is_won", "amount", "currency", "lead_id"],
    "leads": ["lead_id", "owner_id", "created_at", "mql_at"],
    "cases": ["case_id", "team_id", "created_at", "closed_at", "status"],
    "surveys": ["case_id", "type", "score", "sent_at", "responded_at"],
    "fx_rates": ["date", "currency", "rate_to_base"],
}
NO_TEAM = "\x00no team"  # groups of rows without a team (pandas index levels and NaN do not mix well)


def pandas_read(path: str) -> dict:
    import duckdb

    con = duckdb.connect(path, read_only=True)
    try:
        return {t: con.table(t).select(*cols).df() for t, cols in PANDAS_COLUMNS.items()}
    finally:
        con.close()


def pandas_kpis(t: dict) -> list:
    import pandas as pd

    start, end = pd.Timestamp(PERIOD[0]), pd.Timestamp(PERIOD[1])
    after = end + pd.Timedelta(days=1)
    months = pd.period_range(start, end, freq="M")
    fx = (t["fx_rates"].loc[lambda f: f.currency != BASE]
          .rename(columns={"date": "fx_date"}).sort_values("fx_date"))
    team_of_user = t["users"].set_index("user_id")["team_id"]
    team_of_case = t["cases"].set_index("case_id")["team_id"]
    out = []

    def emit(name, values: pd.Series, teams, fill=None):
        """values indexed by (month, team) -> one row per month x team of the KPI's table."""
        grid = pd.MultiIndex.from_product([months, sorted(teams)], names=["month", "team"])
        v = values.reindex(grid)
        out.append((name, v.fillna(fill) if fill is not None else v))

    def in_period(s: pd.Series) -> pd.Series:
        return (s >= start) & (s < after)

    def at_rate(df: pd.DataFrame, day: str) -> pd.Series:
        """The latest fx rate on or before ``day`` of each row's currency (the base currency: 1)."""
        m = pd.merge_asof(df[[day, "currency"]].reset_index().sort_values(day), fx, left_on=day,
                          right_on="fx_date", by="currency", direction="backward").set_index("index")
        rate = m["rate_to_base"].where(m["currency"] != BASE, 1.0).reindex(df.index)
        if rate.isna().any():
            raise ValueError(f"no exchange rate for {df.loc[rate.isna(), 'currency'].unique()}")
        return rate

    def rates_at(day: pd.Timestamp) -> pd.Series:
        return fx.loc[fx.fx_date <= day].groupby("currency")["rate_to_base"].last()

    # ---- as-of date: the last event of the KPIs' tables (conversion cohorts mature by it)
    o, le, ca, su = t["opportunities"], t["leads"], t["cases"], t["surveys"]
    answered = su.type.isin(["csat", "nps"]) & su.score.notna()
    as_of = max(o.created_at.max(), o.close_date[o.is_closed | o.is_won].max(), le.created_at.max(),
                le.mql_at.max(), ca.created_at.max(), ca.closed_at.max(), su.sent_at.max(),
                su.responded_at[answered].max()).normalize()
    if as_of < end:
        raise SystemExit(f"the data ends on {as_of.date()}, inside the period: out of this benchmark's scope")

    # ---- opportunities
    o = o.assign(team=o.owner_id.map(team_of_user).fillna(NO_TEAM), created_day=o.created_at.dt.normalize())
    opp_teams = o.team.unique()
    won, closed = o.is_won.eq(True), o.is_closed.eq(True)
    c = o.loc[in_period(o.close_date) & (won | closed)]
    cw, cc = c.is_won.eq(True), c.is_closed.eq(True)
    c = c.assign(
        month=c.close_date.dt.to_period("M"),
        revenue=(c.amount * at_rate(c, "close_date")).where(cw),
        won=cw.astype("int64"),
        lost=(cc & c.is_won.eq(False)).astype("int64"),
        closed=cc.astype("int64"),
        cycle=(c.close_date - c.created_day).dt.days.where(cw),
    )
    by_close = c.groupby(["month", "team"]).agg(
        revenue=("revenue", "sum"), won=("won", "sum"), lost=("lost", "sum"), closed=("closed", "sum"),
        cycle=("cycle", "mean"),
    )
    grid = pd.MultiIndex.from_product([months, sorted(opp_teams)], names=["month", "team"])
    g = by_close.reindex(grid)
    revenue, won_n = g.revenue.fillna(0.0), g.won.fillna(0)
    emit("revenue", revenue, opp_teams)
    emit("won_deals", won_n, opp_teams)
    emit("lost_deals", g.lost, opp_teams, 0)
    emit("win_rate", won_n / g.closed.where(g.closed > 0), opp_teams)
    emit("avg_deal_size", revenue / won_n.where(won_n > 0), opp_teams)
    emit("sales_cycle_days", g.cycle, opp_teams)
    year = revenue.index.get_level_values("month").year
    emit("revenue_ytd", revenue.groupby([revenue.index.get_level_values("team"), year]).cumsum(), opp_teams)

    n = o.loc[in_period(o.created_at)]
    n = n.assign(month=n.created_at.dt.to_period("M"), amount=n.amount * at_rate(n, "created_day"))
    by_created = n.groupby(["month", "team"]).agg(created=("amount", "size"), amount=("amount", "sum"))
    emit("new_opportunities", by_created.created, opp_teams, 0)
    emit("pipeline_created", by_created.amount, opp_teams, 0.0)

    snaps = {}
    for m in months:  # open at the period end: created by then, not closed by then
        e = m.end_time.normalize()
        alive = o.loc[(o.created_day <= e) & ~(o.is_closed & (o.close_date <= e))]
        rate = alive.currency.map(rates_at(e)).where(alive.currency != BASE, 1.0)
        snaps[m] = (alive.amount * rate).groupby(alive.team).sum()
    emit("open_pipeline", pd.concat(snaps, names=["month", "team"]), opp_teams, 0.0)

    # ---- leads
    le = le.assign(team=le.owner_id.map(team_of_user).fillna(NO_TEAM))
    lead_teams = le.team.unique()
    new = le.loc[in_period(le.created_at)]
    emit("new_leads", new.groupby([new.created_at.dt.to_period("M"), "team"]).size(), lead_teams, 0)
    mql = le.loc[le.mql_at.notna() & in_period(le.mql_at)]
    emit("mqls", mql.groupby([mql.mql_at.dt.to_period("M"), "team"]).size(), lead_teams, 0)

    cohort = new.loc[new.lead_id.notna(), ["lead_id", "created_at", "team"]]
    cohort = cohort.assign(month=cohort.created_at.dt.to_period("M"))
    opps = o.loc[o.lead_id.notna() & (o.created_at >= start), ["lead_id", "created_at"]]
    j = cohort.merge(opps, on="lead_id", how="left", suffixes=("", "_opp"))
    gap = j.created_at_opp - j.created_at
    j["ok"] = (gap >= pd.Timedelta(0)) & (gap <= pd.Timedelta(days=90))
    per_lead = j.groupby(["month", "team", "lead_id"]).ok.max()
    conv = per_lead.groupby(["month", "team"]).agg(["size", "sum"])
    mature = pd.Series([m.end_time.normalize() + pd.Timedelta(days=90) <= as_of for m in months], index=months)
    grid = pd.MultiIndex.from_product([months, sorted(lead_teams)], names=["month", "team"])
    conv = conv.reindex(grid)
    rate = (conv["sum"] / conv["size"]).where(mature.reindex(grid.get_level_values("month")).to_numpy())
    emit("lead_to_opportunity", rate, lead_teams)

    # ---- cases
    ca = ca.assign(team=ca.team_id.fillna(NO_TEAM))
    case_teams = ca.team.unique()
    new = ca.loc[in_period(ca.created_at)]
    emit("new_cases", new.groupby([new.created_at.dt.to_period("M"), "team"]).size(), case_teams, 0)
    sol = ca.loc[ca.closed_at.notna() & in_period(ca.closed_at)]
    sol = sol.assign(month=sol.closed_at.dt.to_period("M"),
                     solved=sol.status.isin(["solved", "closed"]).astype("int64"),
                     hours=(sol.closed_at - sol.created_at) / pd.Timedelta(hours=1))
    by_solved = sol.groupby(["month", "team"]).agg(solved=("solved", "sum"), hours=("hours", "median"))
    emit("solved_cases", by_solved.solved, case_teams, 0)
    emit("median_resolution_hours", by_solved.hours, case_teams)
    created_day, closed_day = ca.created_at.dt.normalize(), ca.closed_at.dt.normalize()
    snaps = {}
    for m in months:
        e = m.end_time.normalize()
        alive = ca.loc[(created_day <= e) & ~(closed_day <= e)]  # NaT <= e is False: still open
        snaps[m] = alive.groupby("team").size()
    emit("open_cases", pd.concat(snaps, names=["month", "team"]), case_teams, 0)

    # ---- surveys (team of their case)
    su = su.assign(team=su.case_id.map(team_of_case).fillna(NO_TEAM))
    survey_teams = su.team.unique()
    r = su.loc[su.responded_at.notna() & in_period(su.responded_at)]
    score = r.score
    r = r.assign(
        month=r.responded_at.dt.to_period("M"),
        csat_n=(r.type.eq("csat") & score.notna()).astype("int64"),
        csat_ok=(r.type.eq("csat") & score.ge(4).fillna(False)).astype("int64"),
        nps_n=(r.type.eq("nps") & score.notna()).astype("int64"),
        promoters=(r.type.eq("nps") & score.ge(9).fillna(False)).astype("int64"),
        detractors=(r.type.eq("nps") & score.le(6).fillna(False)).astype("int64"),
    )
    s = r.groupby(["month", "team"])[["csat_n", "csat_ok", "nps_n", "promoters", "detractors"]].sum()
    grid = pd.MultiIndex.from_product([months, sorted(survey_teams)], names=["month", "team"])
    s = s.reindex(grid, fill_value=0)
    emit("csat", s.csat_ok / s.csat_n.where(s.csat_n > 0), survey_teams)
    nps_n = s.nps_n.where(s.nps_n > 0)
    emit("nps", (s.promoters / nps_n - s.detractors / nps_n) * 100, survey_teams)

    rows = []
    for name, v in out:
        for (m, team), x in v.items():
            rows.append((name, m.start_time.date().isoformat(), None if team == NO_TEAM else team,
                         None if pd.isna(x) else float(x)))
    return rows


def pandas_run(path: str) -> tuple[list, dict]:
    t0 = time.perf_counter()
    tables = pandas_read(path)
    t1 = time.perf_counter()
    rows = pandas_kpis(tables)
    t2 = time.perf_counter()
    return rows, {"read_s": t1 - t0, "compute_s": t2 - t1, "total_s": t2 - t0}


# ============================================================================================
# 3. hand-written DuckDB SQL
# ============================================================================================
AS_OF_SQL = """
SELECT greatest(  -- the last event date of the KPIs' tables: conversion cohorts mature by it
    (SELECT max(greatest(CAST(created_at AS DATE), CASE WHEN is_closed OR is_won THEN close_date END))
     FROM opportunities),
    (SELECT CAST(max(greatest(created_at, mql_at)) AS DATE) FROM leads),
    (SELECT CAST(max(greatest(created_at, closed_at)) AS DATE) FROM cases),
    (SELECT CAST(max(greatest(sent_at, CASE WHEN type IN ('csat', 'nps') AND score IS NOT NULL
                                            THEN responded_at END)) AS DATE) FROM surveys)
)
"""
SQL = """
WITH
months AS (
    SELECT CAST(m AS DATE) AS month, CAST(m + INTERVAL 1 MONTH - INTERVAL 1 DAY AS DATE) AS month_end
    FROM range(CAST($lo AS TIMESTAMP), CAST($hi AS TIMESTAMP) + INTERVAL 1 DAY, INTERVAL 1 MONTH) AS r(m)
),
fx AS (SELECT currency, date, rate_to_base FROM fx_rates WHERE currency <> $base),
-- ---------------------------------------------------------------- opportunities
opp AS (
    SELECT o.*, u.team_id AS team
    FROM opportunities o LEFT JOIN users u ON u.user_id = o.owner_id
),
opp_grid AS (SELECT * FROM months CROSS JOIN (SELECT DISTINCT team FROM opp)),
by_close AS (
    SELECT CAST(date_trunc('month', o.close_date) AS DATE) AS month, o.team,
           sum(o.amount * CASE WHEN o.currency = $base THEN 1.0 ELSE coalesce(fx.rate_to_base, error('no fx rate')) END)
               FILTER (WHERE o.is_won) AS revenue,
           count(*) FILTER (WHERE o.is_won) AS won,
           count(*) FILTER (WHERE o.is_closed AND NOT o.is_won) AS lost,
           count(*) FILTER (WHERE o.is_closed) AS closed,
           avg(o.close_date - CAST(o.created_at AS DATE)) FILTER (WHERE o.is_won) AS cycle_days
    FROM opp o ASOF LEFT JOIN fx ON fx.currency = o.currency AND fx.date <= o.close_date
    WHERE o.close_date BETWEEN $lo AND $hi AND (o.is_won OR o.is_closed)
    GROUP BY ALL
),
by_created AS (
    SELECT CAST(date_trunc('month', o.created_at) AS DATE) AS month, o.team, count(*) AS created,
           sum(o.amount * CASE WHEN o.currency = $base THEN 1.0 ELSE coalesce(fx.rate_to_base, error('no fx rate')) END)
               AS created_amount
    FROM opp o ASOF LEFT JOIN fx ON fx.currency = o.currency AND fx.date <= CAST(o.created_at AS DATE)
    WHERE o.created_at >= CAST($lo AS TIMESTAMP) AND o.created_at < CAST($hi AS TIMESTAMP) + INTERVAL 1 DAY
    GROUP BY ALL
),
end_rates AS (  -- the rate of each currency at each period end
    SELECT e.month, e.currency, fx.rate_to_base
    FROM (SELECT * FROM months CROSS JOIN (SELECT DISTINCT currency FROM fx)) e
    ASOF LEFT JOIN fx ON fx.currency = e.currency AND fx.date <= e.month_end
),
open_at_end AS (
    SELECT m.month, o.team,
           sum(o.amount * CASE WHEN o.currency = $base THEN 1.0 ELSE coalesce(r.rate_to_base, error('no fx rate')) END)
               AS open_amount
    FROM opp o
    JOIN months m ON CAST(o.created_at AS DATE) <= m.month_end AND NOT (o.is_closed AND o.close_date <= m.month_end)
    LEFT JOIN end_rates r ON r.month = m.month AND r.currency = o.currency
    WHERE o.created_at < CAST($hi AS TIMESTAMP) + INTERVAL 1 DAY AND NOT (o.is_closed AND o.close_date < $lo)
    GROUP BY ALL
),
sales AS (
    SELECT g.month, g.team,
           coalesce(c.revenue, 0) AS revenue, coalesce(c.won, 0) AS won, coalesce(c.lost, 0) AS lost,
           coalesce(c.closed, 0) AS closed, c.cycle_days,
           coalesce(n.created, 0) AS created, coalesce(n.created_amount, 0) AS created_amount,
           coalesce(p.open_amount, 0) AS open_amount
    FROM opp_grid g
    LEFT JOIN by_close c ON c.month = g.month AND c.team IS NOT DISTINCT FROM g.team
    LEFT JOIN by_created n ON n.month = g.month AND n.team IS NOT DISTINCT FROM g.team
    LEFT JOIN open_at_end p ON p.month = g.month AND p.team IS NOT DISTINCT FROM g.team
),
-- ---------------------------------------------------------------- leads
lead AS (
    SELECT l.lead_id, l.created_at, l.mql_at, u.team_id AS team
    FROM leads l LEFT JOIN users u ON u.user_id = l.owner_id
),
lead_grid AS (SELECT * FROM months CROSS JOIN (SELECT DISTINCT team FROM lead)),
lead_new AS (
    SELECT CAST(date_trunc('month', created_at) AS DATE) AS month, team, count(*) AS n
    FROM lead WHERE created_at >= CAST($lo AS TIMESTAMP) AND created_at < CAST($hi AS TIMESTAMP) + INTERVAL 1 DAY
    GROUP BY ALL
),
lead_mql AS (
    SELECT CAST(date_trunc('month', mql_at) AS DATE) AS month, team, count(*) AS n
    FROM lead WHERE mql_at >= CAST($lo AS TIMESTAMP) AND mql_at < CAST($hi AS TIMESTAMP) + INTERVAL 1 DAY
    GROUP BY ALL
),
lead_conv AS (  -- leads of the period with an opportunity created 0..90 days after them
    SELECT CAST(date_trunc('month', l.created_at) AS DATE) AS month, l.team,
           count(DISTINCT l.lead_id) AS base,
           count(DISTINCT l.lead_id) FILTER (WHERE o.lead_id IS NOT NULL) AS converted
    FROM lead l
    LEFT JOIN opportunities o
        ON o.lead_id = l.lead_id AND o.created_at BETWEEN l.created_at AND l.created_at + INTERVAL 90 DAY
    WHERE l.created_at >= CAST($lo AS TIMESTAMP) AND l.created_at < CAST($hi AS TIMESTAMP) + INTERVAL 1 DAY
      AND l.lead_id IS NOT NULL
    GROUP BY ALL
),
marketing AS (
    SELECT g.month, g.team, coalesce(n.n, 0) AS new_leads, coalesce(q.n, 0) AS mqls,
           CASE WHEN g.month_end + INTERVAL 90 DAY <= $as_of
                THEN c.converted / nullif(c.base, 0) END AS lead_to_opportunity
    FROM lead_grid g
    LEFT JOIN lead_new n ON n.month = g.month AND n.team IS NOT DISTINCT FROM g.team
    LEFT JOIN lead_mql q ON q.month = g.month AND q.team IS NOT DISTINCT FROM g.team
    LEFT JOIN lead_conv c ON c.month = g.month AND c.team IS NOT DISTINCT FROM g.team
),
-- ---------------------------------------------------------------- cases
case_grid AS (SELECT * FROM months CROSS JOIN (SELECT DISTINCT team_id AS team FROM cases)),
case_new AS (
    SELECT CAST(date_trunc('month', created_at) AS DATE) AS month, team_id AS team, count(*) AS n
    FROM cases WHERE created_at >= CAST($lo AS TIMESTAMP) AND created_at < CAST($hi AS TIMESTAMP) + INTERVAL 1 DAY
    GROUP BY ALL
),
case_closed AS (
    SELECT CAST(date_trunc('month', closed_at) AS DATE) AS month, team_id AS team,
           count(*) FILTER (WHERE status IN ('solved', 'closed')) AS solved,
           median((epoch_us(closed_at) - epoch_us(created_at)) / 3600e6) AS median_hours
    FROM cases WHERE closed_at >= CAST($lo AS TIMESTAMP) AND closed_at < CAST($hi AS TIMESTAMP) + INTERVAL 1 DAY
    GROUP BY ALL
),
case_open AS (
    SELECT m.month, c.team_id AS team, count(*) AS n
    FROM cases c
    JOIN months m ON CAST(c.created_at AS DATE) <= m.month_end
                 AND (c.closed_at IS NULL OR CAST(c.closed_at AS DATE) > m.month_end)
    WHERE c.created_at < CAST($hi AS TIMESTAMP) + INTERVAL 1 DAY
      AND (c.closed_at IS NULL OR c.closed_at >= CAST($lo AS TIMESTAMP))
    GROUP BY ALL
),
service AS (
    SELECT g.month, g.team, coalesce(n.n, 0) AS new_cases, coalesce(c.solved, 0) AS solved_cases,
           coalesce(o.n, 0) AS open_cases, c.median_hours
    FROM case_grid g
    LEFT JOIN case_new n ON n.month = g.month AND n.team IS NOT DISTINCT FROM g.team
    LEFT JOIN case_closed c ON c.month = g.month AND c.team IS NOT DISTINCT FROM g.team
    LEFT JOIN case_open o ON o.month = g.month AND o.team IS NOT DISTINCT FROM g.team
),
-- ---------------------------------------------------------------- surveys (team of their case)
surv AS (
    SELECT s.type, s.score, s.responded_at, c.team_id AS team
    FROM surveys s LEFT JOIN cases c ON c.case_id = s.case_id
),
surv_grid AS (SELECT * FROM months CROSS JOIN (SELECT DISTINCT team FROM surv)),
surv_m AS (
    SELECT CAST(date_trunc('month', responded_at) AS DATE) AS month, team,
           count(*) FILTER (WHERE type = 'csat' AND score IS NOT NULL) AS csat_n,
           count(*) FILTER (WHERE type = 'csat' AND score >= 4) AS csat_ok,
           count(*) FILTER (WHERE type = 'nps' AND score IS NOT NULL) AS nps_n,
           count(*) FILTER (WHERE type = 'nps' AND score >= 9) AS promoters,
           count(*) FILTER (WHERE type = 'nps' AND score <= 6) AS detractors
    FROM surv
    WHERE responded_at >= CAST($lo AS TIMESTAMP) AND responded_at < CAST($hi AS TIMESTAMP) + INTERVAL 1 DAY
    GROUP BY ALL
),
satisfaction AS (
    SELECT g.month, g.team,
           s.csat_ok / nullif(s.csat_n, 0) AS csat,
           (s.promoters / nullif(s.nps_n, 0) - s.detractors / nullif(s.nps_n, 0)) * 100 AS nps
    FROM surv_grid g LEFT JOIN surv_m s ON s.month = g.month AND s.team IS NOT DISTINCT FROM g.team
)
SELECT 'revenue' AS kpi, month, team, CAST(revenue AS DOUBLE) AS value FROM sales
UNION ALL SELECT 'won_deals', month, team, won FROM sales
UNION ALL SELECT 'lost_deals', month, team, lost FROM sales
UNION ALL SELECT 'win_rate', month, team, won / nullif(closed, 0) FROM sales
UNION ALL SELECT 'avg_deal_size', month, team, revenue / nullif(won, 0) FROM sales
UNION ALL SELECT 'new_opportunities', month, team, created FROM sales
UNION ALL SELECT 'pipeline_created', month, team, created_amount FROM sales
UNION ALL SELECT 'sales_cycle_days', month, team, cycle_days FROM sales
UNION ALL SELECT 'revenue_ytd', month, team, sum(revenue) OVER (PARTITION BY team, year(month) ORDER BY month) FROM sales
UNION ALL SELECT 'open_pipeline', month, team, open_amount FROM sales
UNION ALL SELECT 'new_leads', month, team, new_leads FROM marketing
UNION ALL SELECT 'mqls', month, team, mqls FROM marketing
UNION ALL SELECT 'lead_to_opportunity', month, team, lead_to_opportunity FROM marketing
UNION ALL SELECT 'new_cases', month, team, new_cases FROM service
UNION ALL SELECT 'solved_cases', month, team, solved_cases FROM service
UNION ALL SELECT 'open_cases', month, team, open_cases FROM service
UNION ALL SELECT 'median_resolution_hours', month, team, median_hours FROM service
UNION ALL SELECT 'csat', month, team, csat FROM satisfaction
UNION ALL SELECT 'nps', month, team, nps FROM satisfaction
"""


def sql_run(path: str) -> tuple[list, dict]:
    import duckdb

    t0 = time.perf_counter()
    con = duckdb.connect(path, read_only=True)
    try:
        (as_of,) = con.execute(AS_OF_SQL).fetchone()
        lo, hi = dt.date.fromisoformat(PERIOD[0]), dt.date.fromisoformat(PERIOD[1])
        if as_of < hi:
            raise SystemExit(f"the data ends on {as_of}, inside the period: out of this benchmark's scope")
        rows = con.execute(SQL, {"lo": lo, "hi": hi, "base": BASE, "as_of": as_of}).fetchall()
    finally:
        con.close()
    took = time.perf_counter() - t0
    return [(k, m.isoformat(), t, v) for k, m, t, v in rows], {"total_s": took}


# ============================================================================================
# Child: one contender in a fresh process
# ============================================================================================
def child(name: str, path: str, repeat: int, out: str) -> None:
    import resource

    def rss() -> float:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    t0 = time.perf_counter()
    if name.startswith("crmlib"):
        import crmlib  # noqa: F401

        backend = "polars" if name == "crmlib-polars" else "auto"

        def call():
            return crmlib_run(path, backend)
    elif name == "pandas":
        try:
            import duckdb  # noqa: F401
            import pandas  # noqa: F401
        except ImportError:
            raise SystemExit("pandas is missing: install it for this benchmark with `.venv/bin/pip install pandas` "
                             "(it is not a crmlib dependency)") from None

        def call():
            return pandas_run(path)
    else:
        import duckdb  # noqa: F401

        def call():
            return sql_run(path)
    import_s = time.perf_counter() - t0
    rss_imports = rss()

    def timed():  # and the CPU time of the process (all threads): less sensitive to a busy machine
        c0 = time.process_time()
        rows, times = call()
        return rows, {**times, "cpu_s": time.process_time() - c0}

    rows, cold = timed()
    rss_first = rss()
    warm = [timed()[1] for _ in range(repeat)]
    Path(out).write_text(json.dumps([[k, p, t, None if v is None or math.isnan(v) else v] for k, p, t, v in rows]))
    print(json.dumps({"contender": name, "import_s": import_s, "cold": cold, "warm": warm,
                      "rss_imports_mb": rss_imports, "rss_first_mb": rss_first, "rss_end_mb": rss()}))


def run_child(name: str, path: str, repeat: int, out: Path) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--child", name, path, str(repeat), str(out)],
                          capture_output=True, text=True, cwd=HERE.parent)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"contender {name} failed (exit {proc.returncode})")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ============================================================================================
# Checking the results
# ============================================================================================
def compare(ref: list, other: list) -> list[str]:
    """Differences between two result sets keyed by (kpi, month, team); empty when they agree."""
    a = {(k, p, t): v for k, p, t, v in ref}
    b = {(k, p, t): v for k, p, t, v in other}
    problems = []
    if len(a) != len(ref) or len(b) != len(other):
        problems.append(f"duplicate rows: {len(ref) - len(a)} / {len(other) - len(b)}")
    for key in sorted(a.keys() - b.keys(), key=str):
        problems.append(f"missing row {key} (value {a[key]})")
    for key in sorted(b.keys() - a.keys(), key=str):
        problems.append(f"extra row {key} (value {b[key]})")
    for key in sorted(a.keys() & b.keys(), key=str):
        x, y = a[key], b[key]
        if x is None or y is None:
            if (x is None) != (y is None):
                problems.append(f"{key}: {x} vs {y}")
        elif not math.isclose(x, y, rel_tol=REL_TOL, abs_tol=ABS_TOL):
            problems.append(f"{key}: {x!r} vs {y!r} (rel. diff {abs(x - y) / max(abs(x), abs(y)):.2e})")
    return problems


# ============================================================================================
# Report
# ============================================================================================
def version(pkg: str) -> str:
    try:
        return metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return "missing"


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
        mem = f", {kb / 2**20:.0f} GiB RAM"
    except (OSError, AttributeError):
        pass
    pkgs = ", ".join(f"{p} {version(p)}" for p in ("polars", "narwhals", "duckdb", "pandas", "numpy", "pyarrow"))
    return f"{os.cpu_count()} cores ({cpu}){mem}; Python {platform.python_version()}, {pkgs}"


def summarise(runs: list[dict]) -> dict:
    """Best times over processes (cold: first call of each process; warm: the later calls)."""
    keys = runs[0]["cold"].keys()
    return {
        "cold": {k: min(r["cold"][k] for r in runs) for k in keys},
        "warm": {k: min(w[k] for r in runs for w in r["warm"]) for k in keys},
        "warm_median_s": statistics.median(w["total_s"] for r in runs for w in r["warm"]),
        "import_s": min(r["import_s"] for r in runs),
        "rss_imports_mb": max(r["rss_imports_mb"] for r in runs),
        "rss_first_mb": max(r["rss_first_mb"] for r in runs),
        "rss_end_mb": max(r["rss_end_mb"] for r in runs),
    }


def goal(value: float, target: float, higher: bool) -> str:
    ok = value >= target if higher else value <= target
    if ok:
        return "met"
    return f"**missed** (by x{target / value:.2f})" if higher else f"**missed** (by x{value / target:.2f})"


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def _busy(load: str) -> bool:
    try:
        return float(load.split()[0]) > (os.cpu_count() or 1)
    except (ValueError, IndexError):
        return False


def render(res: dict[str, dict], checks: dict[str, list[str]], nrows: int, command: str, procs: int,
           repeat: int, data: str, scale: float, counts: dict[str, int], load: tuple[str, str] = ("", "")) -> str:
    lines = [
        SECTION,
        "",
        f"Command: `{command}`  ",
        f"Machine: {machine()}; load average (1, 5, 15 min) {load[0]} before the run, {load[1]} after  ",
        f"Data: demo warehouse scale {scale:g}, seed 42 (`crmlib data demo --scale {scale:g} --out {data}`); "
        f"period {PERIOD[0]}..{PERIOD[1]}, grain month, by team; base currency {BASE}.  ",
        f"KPIs ({len(KPIS)}): {', '.join(KPIS)}.  ",
        *([f"The machine was busy (load above its {os.cpu_count()} cores, other jobs running): wall times are "
           "noisy, the CPU-time column is steadier.  "] if _busy(load[0]) else []),
        f"Each contender in {procs} fresh subprocess(es): *cold* = the first call of a process (imports done, "
        f"file in the OS page cache), *warm* = best of {repeat} later calls in the same process; best over the "
        "processes. Peak RSS = the child's `getrusage` maximum after its first call (largest over the "
        "processes); `imports` = RSS after the imports only. *warm CPU* = the least CPU time (all threads) of "
        "a warm call, less sensitive than wall time to other load on the machine. crmlib's time is read + "
        "compute (it reads lazily inside the call, opening the file included); pandas reads only the columns "
        "it uses (`con.table(t).select(cols).df()`); the SQL time includes connecting and fetching. "
        "`crmlib` = the engine's default backend (`backend=\"auto\"`: for a DuckDB file the queries run "
        "inside DuckDB, as SQL the engine compiles from its narwhals expressions; a warm call reuses the SQL "
        "text the first call compiled, never data: it opens and reads the file again); `crmlib-polars` = "
        "`backend=\"polars\"` (the tables are read into polars).",
        "",
        "| contender | cold s | warm s | warm read s | warm compute s | warm median s | warm CPU s | peak RSS MB | "
        f"peak RSS after {repeat + 1} calls MB | RSS after imports MB | import s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name in CONTENDERS:
        if name not in res:
            continue
        r = res[name]
        rd = f"{r['warm']['read_s']:.3f}" if "read_s" in r["warm"] else "-"
        cp = f"{r['warm']['compute_s']:.3f}" if "compute_s" in r["warm"] else "-"
        lines.append(
            f"| {name} | {r['cold']['total_s']:.3f} | {r['warm']['total_s']:.3f} | {rd} | {cp} | "
            f"{r['warm_median_s']:.3f} | {r['warm']['cpu_s']:.3f} | "
            f"{r['rss_first_mb']:,.0f} | {r['rss_end_mb']:,.0f} | {r['rss_imports_mb']:,.0f} | {r['import_s']:.2f} |"
        )
    lines += ["", f"Results: {nrows:,} rows (kpi x month x team) per contender; rows per KPI: "
              + ", ".join(f"{k} {n}" for k, n in counts.items()) + "."]
    for name, probs in checks.items():
        lines.append(f"- {name} vs crmlib: " + ("identical (floats within 1e-9 relative)" if not probs
                                                 else f"**{len(probs)} differences**, e.g. {probs[0]}"))
    if {"crmlib", "pandas", "duckdb-sql"} <= res.keys():
        c, p, s = res["crmlib"], res["pandas"], res["duckdb-sql"]
        lines += ["", "| ratio | warm | cold | warm CPU | goal | status (warm) |", "|---|---:|---:|---:|---|---|"]

        def row(label, num, den, target, higher, key_num="total_s", key_den="total_s"):
            w = num["warm"][key_num] / den["warm"][key_den]
            k = num["cold"][key_num] / den["cold"][key_den]
            cpu = f"x{num['warm']['cpu_s'] / den['warm']['cpu_s']:.2f}" if key_num == key_den == "total_s" else "-"
            lines.append(f"| {label} | x{w:.2f} | x{k:.2f} | {cpu} | {'>=' if higher else '<='} {target:g} | "
                         f"{goal(w, target, higher)} |")

        row("pandas compute / crmlib", p, c, 5, True, "compute_s")
        row("pandas read+compute / crmlib", p, c, 5, True)
        row("crmlib / DuckDB SQL", c, s, 1.5, False)
        if "crmlib-polars" in res:
            d = res["crmlib-polars"]
            row("pandas read+compute / crmlib-polars", p, d, 5, True)
            row("crmlib-polars / DuckDB SQL", d, s, 1.5, False)
        # context, not a goal: the hand-written SQL against pandas bounds what a DuckDB-run engine can reach
        w, k = p["warm"]["total_s"] / s["warm"]["total_s"], p["cold"]["total_s"] / s["cold"]["total_s"]
        lines.append(f"| (context) pandas read+compute / DuckDB SQL | x{w:.2f} | x{k:.2f} | "
                     f"x{p['warm']['cpu_s'] / s['warm']['cpu_s']:.2f} | - | - |")
        mem = c["rss_first_mb"] / s["rss_first_mb"]
        lines.append(f"| crmlib peak RSS / DuckDB SQL peak RSS | x{mem:.2f} | | | <= 1.5 | {goal(mem, 1.5, False)} |")
        if "crmlib-polars" in res:
            mem = res["crmlib-polars"]["rss_first_mb"] / s["rss_first_mb"]
            lines.append(f"| crmlib-polars peak RSS / DuckDB SQL peak RSS | x{mem:.2f} | | | <= 1.5 | "
                         f"{goal(mem, 1.5, False)} |")
    return "\n".join(lines) + "\n"


def write_section(text: str) -> None:
    old = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n\n"
    pattern = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.M | re.S)
    new = pattern.sub(lambda _m: text + "\n", old) if pattern.search(old) else old.rstrip("\n") + "\n\n" + text
    RESULTS.write_text(new)


def profile(path: str, top: int) -> None:
    """cProfile of one warm crmlib call per backend, then the call's time without some of its parts."""
    import cProfile
    import pstats

    import crmlib

    for backend in ("duckdb", "polars"):
        crmlib_run(path, backend)  # warm-up
        prof = cProfile.Profile()
        prof.enable()
        crmlib_run(path, backend)
        prof.disable()
        print(f"==================== backend {backend}")
        stats = pstats.Stats(prof, stream=sys.stdout)
        stats.sort_stats("cumulative").print_stats(top)
        stats.sort_stats("tottime").print_stats(top)

    def best(f, n=9):
        f()
        wall, cpu = [], []
        for _ in range(n):
            t, c = time.perf_counter(), time.process_time()
            f()
            wall.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
        return f"wall {min(wall):.3f} s, CPU {min(cpu):.3f} s"

    kw = {"by": ["team"], "grain": "month", "period": PERIOD, "targets": False}
    crm = crmlib.open(path)
    import duckdb

    with duckdb.connect(path, read_only=True) as con:
        as_of = con.execute(AS_OF_SQL).fetchone()[0].isoformat()  # the engine's default as-of date
    # tables read once into memory (a private cache of the handle: a diagnostic, not an API)
    mem = crmlib.open(path)
    for t in ("opportunities", "leads", "cases", "surveys", "users", "fx_rates", "targets"):
        mem._cache[t] = mem.table(t).collect().lazy()
    print("Parts of a warm call (best of 9; CPU = all threads):")
    print("  DuckDB SQL (the peer)             ", best(lambda: sql_run(path)))
    for backend in ("duckdb", "polars"):
        kw["backend"] = backend
        print(f"  {backend}: full call, opening the file ", best(lambda b=backend: crmlib_run(path, b)))
        print(f"  {backend}: open handle reused        ", best(lambda: crm.kpis(KPIS, **kw)))
        print(f"  {backend}: as_of={as_of} given (no stats pass)", best(lambda: crm.kpis(KPIS, as_of=as_of, **kw)))
    kw["backend"] = "polars"
    print("  polars: tables already in memory  ", best(lambda: mem.kpis(KPIS, **kw)))
    print("  polars: in memory and as_of given ", best(lambda: mem.kpis(KPIS, as_of=as_of, **kw)))


def ensure_data(path: str, scale: float) -> None:
    if Path(path).exists():
        return
    exe = Path(sys.executable).with_name("crmlib")
    print(f"making the demo warehouse {path} (scale {scale:g}) ...", file=sys.stderr)
    subprocess.run([str(exe), "data", "demo", "--scale", f"{scale:g}", "--out", path], check=True, cwd=HERE.parent)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5])
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=DEFAULT_DATA, help="DuckDB demo warehouse (made when missing)")
    ap.add_argument("--scale", type=float, default=SCALE, help="demo scale of --data (to make it, and for the report)")
    ap.add_argument("--procs", type=int, default=3, help="fresh subprocesses per contender")
    ap.add_argument("--repeat", type=int, default=3, help="warm calls per subprocess (after the first)")
    ap.add_argument("--contenders", nargs="+", default=list(CONTENDERS), choices=CONTENDERS)
    ap.add_argument("--no-write-results", action="store_true")
    ap.add_argument("--profile", action="store_true", help="profile crmlib instead of benchmarking")
    args = ap.parse_args()
    ensure_data(args.data, args.scale)
    if args.profile:
        profile(args.data, 30)
        return
    load_before = loadavg()
    res: dict[str, dict] = {}
    outputs: dict[str, list] = {}
    with tempfile.TemporaryDirectory(prefix="bench_kpis_") as tmp:
        for i in range(args.procs):  # interleaved, so that no contender profits from a quieter moment
            for name in args.contenders:
                out = Path(tmp) / f"{name}_{i}.json"
                r = run_child(name, args.data, args.repeat, out)
                res.setdefault(name, []).append(r)
                outputs[name] = [tuple(x) for x in json.loads(out.read_text())]
                print(f"{name} #{i + 1}: cold {r['cold']['total_s']:.3f}s, warm "
                      f"{min(w['total_s'] for w in r['warm']):.3f}s, peak RSS {r['rss_first_mb']:.0f} MB",
                      file=sys.stderr)
    summary = {name: summarise(runs) for name, runs in res.items()}
    ref_name = "crmlib" if "crmlib" in outputs else next(iter(outputs))
    ref = outputs[ref_name]
    checks = {name: compare(ref, rows) for name, rows in outputs.items() if name != ref_name}
    for name, probs in checks.items():
        if probs:
            print(f"\n{name} differs from {ref_name} in {len(probs)} places:", file=sys.stderr)
            for p in probs[:30]:
                print("  " + p, file=sys.stderr)
    counts: dict[str, int] = {}
    for k, *_ in ref:
        counts[k] = counts.get(k, 0) + 1
    command = " ".join([".venv/bin/python", "bench/bench_kpis.py", *sys.argv[1:]])
    text = render(summary, checks, len(ref), command, args.procs, args.repeat, args.data, args.scale, counts,
                  (load_before, loadavg()))
    print(text)
    if not args.no_write_results:
        write_section(text)
    if any(checks.values()):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
