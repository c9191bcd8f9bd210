"""Benchmark: every customer service KPI and analysis at scale 10, with time and peak memory.

Three fresh subprocesses on one demo warehouse (each reports its own wall times and peak RSS):

* ``kpis``: all KPIs of the catalog's service area through ``crm.kpis`` (monthly, the whole demo range,
  by team), cold (nothing cached), then the same grouped by team x priority;
* ``sections``: what ``notebooks/service.ipynb`` computes (cards, trends, SLA by priority, time
  distributions, about-to-breach, CSAT/NPS, agent leaderboard), one call each, in notebook order;
* ``peers``: the same numbers computed another way, for ratios: business hours of every case's first
  response by a plain Python loop over rows (a sample, extrapolated) against the vectorised calendar,
  and the median calendar-hours first response per team and month in DuckDB SQL against crmlib
  (checking that both give the same medians).

    .venv/bin/python bench/bench_service.py                      # scale 10, seed 42; writes bench/RESULTS.md
    .venv/bin/python bench/bench_service.py --warehouse data/bench10.duckdb --no-write-results

The section "## Service" of bench/RESULTS.md is replaced; other sections are kept.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "RESULTS.md"
SECTION = "## Service"
PERIOD = ("2023-01-01", "2026-06-30")
SAMPLE = 5_000


def _rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _timed(out: dict, name: str, fn):
    t0 = time.perf_counter()
    value = fn()
    out[name] = time.perf_counter() - t0
    return value


def child_kpis(warehouse: str) -> dict:
    import crmlib
    from crmlib.kpis.catalog import default_catalog

    names = [k.name for k in default_catalog().list("service")]
    t: dict = {}
    with crmlib.open(warehouse) as crm:
        r1 = _timed(t, "by team", lambda: crm.kpis(names, by="team", grain="month", period=PERIOD, targets=True))
        r2 = _timed(t, "by team x priority", lambda: crm.kpis(names, by=["team", "priority"], grain="month",
                                                              period=PERIOD, targets=False))
        rows = {"cases": crm.cases.select("case_id").collect().height,
                "case_events": crm.case_events.select("event_id").collect().height}
    return {"kpis": names, "times": t, "rows_out": [r1.height, r2.height], "rows": rows, "peak_rss_mb": _rss_mb()}


def child_sections(warehouse: str) -> dict:
    import crmlib
    from crmlib import service

    t: dict = {}
    period = ("2025-07-01", "2026-06-30")
    with crmlib.open(warehouse) as crm:
        _timed(t, "case facts (cold)", lambda: service.case_facts(crm, period=period))
        service.clear_cache()
        _timed(t, "KPI cards", lambda: service.kpi_summary(crm, period=period))
        _timed(t, "volume and backlog", lambda: service.trends(crm, period=period))
        _timed(t, "SLA by priority", lambda: service.sla_report(crm, by="priority", period=period))
        _timed(t, "time distributions", lambda: service.time_summary(crm, by="priority", period=period))
        _timed(t, "about to breach", lambda: service.about_to_breach(crm, period=period))
        _timed(t, "CSAT and NPS", lambda: service.satisfaction(crm, period=period))
        _timed(t, "agent leaderboard", lambda: service.leaderboard(crm, period=period))
        _timed(t, "case facts in calendar hours (history cached)",
               lambda: service.case_facts(crm, period=period, hours="calendar"))
    return {"times": t, "peak_rss_mb": _rss_mb()}


def _loop_business_hours(starts, ends) -> list[float]:
    """The peer: business hours Monday-Friday 09:00-18:00 by walking the days of each row in Python."""
    out = []
    for a, b in zip(starts, ends, strict=True):
        total, day = 0.0, a.date()
        while day <= b.date():
            if day.weekday() < 5:
                lo = max(a, dt.datetime.combine(day, dt.time(9)))
                hi = min(b, dt.datetime.combine(day, dt.time(18)))
                total += max((hi - lo).total_seconds(), 0.0) / 3600
            day += dt.timedelta(days=1)
        out.append(total)
    return out


def child_peers(warehouse: str) -> dict:
    import duckdb
    import numpy as np
    import polars as pl

    import crmlib
    from crmlib import service
    from crmlib.calendars import Calendar

    t: dict = {}
    with crmlib.open(warehouse) as crm:
        facts = service.case_facts(crm, period=PERIOD, hours="calendar", calendar=Calendar())
    pairs = facts.filter(pl.col("first_response_at").is_not_null()).select("created_at", "first_response_at")
    cal = Calendar()
    a, b = pairs["created_at"].to_numpy(), pairs["first_response_at"].to_numpy()
    cal.business_hours_between(a[:10], b[:10])  # warm-up: numpy's busday machinery
    vec = _timed(t, "vectorised", lambda: cal.business_hours_between(a, b))
    sample = pairs.head(SAMPLE)
    loop = _timed(t, "loop sample", lambda: _loop_business_hours(sample["created_at"].to_list(),
                                                                 sample["first_response_at"].to_list()))
    t["loop (extrapolated)"] = t["loop sample"] * pairs.height / sample.height
    agree = bool(np.allclose(vec[: sample.height], loop, atol=1e-6))

    # median first response (calendar hours) per team and month: DuckDB SQL against crmlib
    sql = """
        with first as (
            select case_id, min(occurred_at) as at from case_events
            where event_type = 'agent_reply' and coalesce(is_public, true) group by case_id)
        select c.team_id as team, date_trunc('month', f.at)::date as period,
               median(epoch(f.at - c.created_at) / 3600.0) as value
        from cases c join first f using (case_id)
        group by all order by all"""
    con = duckdb.connect(warehouse, read_only=True)
    ref = _timed(t, "DuckDB SQL", lambda: con.sql(sql).pl())
    con.close()
    with crmlib.open(warehouse) as crm:
        service.clear_cache()
        ours = _timed(t, "crmlib", lambda: crm.kpis("first_response_hours", by="team", grain="month", period=PERIOD,
                                                     targets=False))
    joined = ref.join(ours.select("team", "period", pl.col("value").alias("ours")), on=["team", "period"])
    same = bool(joined.height == ref.height and ((joined["value"] - joined["ours"]).abs() < 1e-6).all())
    return {"times": t, "rows": pairs.height, "sample": sample.height, "loop_agrees": agree,
            "sql_agrees": same, "sql_cells": ref.height, "peak_rss_mb": _rss_mb()}


CHILDREN = {"kpis": child_kpis, "sections": child_sections, "peers": child_peers}


def best_child(kind: str, warehouse: Path, repeat: int) -> dict:
    """The fastest of ``repeat`` fresh runs (by the sum of its times)."""
    return min((run_child(kind, warehouse) for _ in range(repeat)), key=lambda r: sum(r["times"].values()))


def run_child(kind: str, warehouse: Path) -> dict:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, __file__, "--child", kind, str(warehouse)], capture_output=True, text=True,
                          cwd=HERE.parent)
    if proc.returncode != 0:
        raise SystemExit(f"bench child {kind} failed:\n{proc.stdout}\n{proc.stderr}")
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    res["process_s"] = time.perf_counter() - start
    return res


def render(scale: float, kpis: dict, sections: dict, peers: dict, command: str, repeat: int) -> str:
    from bench_demo import machine

    pt = peers["times"]
    lines = [
        SECTION, "",
        f"Command: `{command}`  ",
        f"Machine: {machine()}  ",
        f"Demo warehouse at scale {scale:g}, seed 42: {kpis['rows']['cases']:,} cases, "
        f"{kpis['rows']['case_events']:,} case events. Each part in a fresh subprocess, best of {repeat}; peak RSS "
        "is the child's own `getrusage` maximum, `process` includes start-up and imports.", "",
        f"**All {len(kpis['kpis'])} service KPIs** of the catalog ({', '.join(kpis['kpis'])}), monthly over "
        f"{PERIOD[0]}..{PERIOD[1]}, through `crm.kpis`:", "",
        "| request | s | rows out |", "|---|---:|---:|",
    ]
    for (name, secs), n in zip(kpis["times"].items(), kpis["rows_out"], strict=True):
        lines.append(f"| by {name.removeprefix('by ')} | {secs:.2f} | {n:,} |")
    lines += ["", f"Peak RSS {kpis['peak_rss_mb']:,.0f} MB; process {kpis['process_s']:.1f} s.", "",
              "**The service notebook's sections** (`crmlib.service`, period 2025-07-01..2026-06-30): the case facts "
              "alone, cold; then, cache cleared, each section in notebook order (the case histories and facts are "
              "kept per data handle, so the first section, the KPI cards, pays for reading and computing them):", "",
              "| call | s |", "|---|---:|"]
    lines += [f"| {name} | {secs:.2f} |" for name, secs in sections["times"].items()]
    total = sum(v for k, v in sections["times"].items() if not k.startswith("case facts"))
    lines += ["", f"Sections total {total:.2f} s; peak RSS {sections['peak_rss_mb']:,.0f} MB; process "
              f"{sections['process_s']:.1f} s.", "",
              "**Peers** (same run):", "",
              "| what | crmlib s | peer s | ratio | same numbers |", "|---|---:|---:|---:|---|",
              f"| business hours of {peers['rows']:,} first responses: numpy closed form vs a Python loop over "
              f"rows ({peers['sample']:,}-row sample, extrapolated) | {pt['vectorised']:.3f} | "
              f"{pt['loop (extrapolated)']:.2f} | x{pt['loop (extrapolated)'] / pt['vectorised']:,.0f} faster | "
              f"{'yes' if peers['loop_agrees'] else 'NO'} |",
              f"| median first response (calendar h) per team x month ({peers['sql_cells']} cells): `crm.kpis` "
              f"(whole case histories, as of the data's end) vs DuckDB SQL (first reply only) | {pt['crmlib']:.2f} | "
              f"{pt['DuckDB SQL']:.2f} | x{pt['crmlib'] / pt['DuckDB SQL']:.1f} slower | "
              f"{'yes' if peers['sql_agrees'] else 'NO'} |", ""]
    return "\n".join(lines) + "\n"


def write_section(text: str) -> None:
    old = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n\n"
    pattern = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.M | re.S)
    new = pattern.sub(lambda _m: text + "\n", old) if pattern.search(old) else old.rstrip("\n") + "\n\n" + text
    RESULTS.write_text(new)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        print(json.dumps(CHILDREN[sys.argv[2]](sys.argv[3]), default=str))
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=float, default=10.0)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--warehouse", type=Path, help="use (or create) this demo warehouse instead of a temporary one")
    ap.add_argument("--repeat", type=int, default=3, help="fresh runs of each part; the fastest is kept")
    ap.add_argument("--no-write-results", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_service_") as tmp:
        warehouse = args.warehouse or Path(tmp) / "crm.duckdb"
        if not warehouse.exists():
            from crmlib.sources.demo import write_demo

            print(f"writing the demo at scale {args.scale:g} to {warehouse} ...", file=sys.stderr)
            write_demo(warehouse, scale=args.scale, seed=args.seed, progress=False)
        parts = {}
        for kind in CHILDREN:
            parts[kind] = best_child(kind, warehouse, args.repeat)
            print(f"{kind}: {json.dumps(parts[kind]['times'])}", file=sys.stderr)
    command = " ".join([".venv/bin/python", "bench/bench_service.py", *sys.argv[1:]])
    sys.path.insert(0, str(HERE))
    text = render(args.scale, parts["kpis"], parts["sections"], parts["peers"], command, args.repeat)
    print(text)
    if not args.no_write_results:
        write_section(text)


if __name__ == "__main__":
    main()
