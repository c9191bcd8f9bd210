"""Benchmark: the sales notebook's whole computation, and two of its history analytics against DuckDB SQL.

1. **The notebook.** Every code cell of ``notebooks/sales.ipynb`` (the parameters cell, then the setup
   cell that opens the data, then each section's one ``dash.show(...)`` call), run as a plain script in
   a fresh subprocess with the report's parameters (``interactive=False``), each section's result
   rendered the way the report stores it (plotly JSON, great_tables HTML, card HTML). Nothing else:
   no kernel, no papermill, no HTML export (``bench/bench_reports.py`` measures those). Per process:
   the first pass after the imports is *cold* (OS page cache warm), then ``--repeat`` more passes, the
   best of which is *warm*; peak RSS is the child's own ``getrusage`` maximum. Several scales give
   the growth of time and memory with the data (ideal: linear).
2. **The peer.** The stage funnel's "reached at least" counts (:func:`crmlib.sales.funnel`) and the open
   pipeline by stage at the as-of day (:func:`crmlib.sales.pipeline`), each against one hand-written
   DuckDB SQL query over the same file (``QUALIFY`` for the state at the day, the latest rate per
   currency); results must agree (counts exactly, amounts within 1e-9 relative). crmlib does more in
   the same call (values at the creation day's rate and median days per stage for the funnel; deals
   without history rows), so the ratio is an upper bound of its overhead.

    .venv/bin/python bench/bench_sales.py                      # scales 1 and 10; section into bench/RESULTS.md
    .venv/bin/python bench/bench_sales.py --scales 10 --repeat 1 --no-write-results

Warehouses are written once per scale to ``bench/out/sales-scale<s>-seed<seed>.duckdb`` (git-ignored).
The section "## Sales notebook" of bench/RESULTS.md is replaced; other sections are kept.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "RESULTS.md"
SECTION = "## Sales notebook"
NOTEBOOK = ROOT / "notebooks" / "sales.ipynb"
PARAMS = {"start": "2025-01-01", "end": "2025-12-31", "grain": "month", "lang": "en", "interactive": False}


# ---------------------------------------------------------------------------------------------------
# Children
# ---------------------------------------------------------------------------------------------------
def _cells() -> list[str]:
    nb = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]


def _render(obj) -> int:
    """Serialise a section's result as the report stores it; returns the size in characters."""
    if hasattr(obj, "to_json"):
        return len(obj.to_json())
    if hasattr(obj, "as_raw_html"):
        return len(obj.as_raw_html())
    if hasattr(obj, "_repr_html_"):
        return len(obj._repr_html_())
    return 0


def _label(src: str) -> str:
    m = re.search(r"dash\.show\(crmlib\.(\w+)\.(\w+)", src)
    return f"{m.group(1)}.{m.group(2)}" if m else "setup (open the data)"


def notebook_pass(cells: list[str], params: dict) -> dict[str, float]:
    ns: dict = {}
    exec(compile(cells[0], "<parameters>", "exec"), ns)
    ns.update(params)
    times: dict[str, float] = {}
    for i, src in enumerate(cells[1:], start=1):
        tree = ast.parse(src)
        last = tree.body[-1] if tree.body and isinstance(tree.body[-1], ast.Expr) else None
        head = ast.Module(body=tree.body[:-1] if last else tree.body, type_ignores=[])
        t0 = time.perf_counter()
        exec(compile(head, f"<cell {i}>", "exec"), ns)
        if last is not None:
            obj = eval(compile(ast.Expression(last.value), f"<cell {i}>", "eval"), ns)
            _render(obj)
            if "crmlib-section-error" in (getattr(obj, "html", "") or ""):
                raise RuntimeError(f"section failed: {src}\n{obj.html}")
        key = _label(src)
        times[key if key not in times else f"{key} #{i}"] = time.perf_counter() - t0
    ns["crm"].close()
    return times


def child_notebook(data: str, repeat: int) -> None:
    import resource

    t0 = time.perf_counter()
    import crmlib  # noqa: F401 - the imports a report pays once
    import crmlib.charts_sales  # noqa: F401
    import crmlib.dashboard  # noqa: F401
    import crmlib.performance  # noqa: F401
    import crmlib.sales  # noqa: F401
    import crmlib.tables_sales  # noqa: F401

    imports = time.perf_counter() - t0
    cells = _cells()
    params = {**PARAMS, "source": data}
    cold = notebook_pass(cells, params)
    rss_cold = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    warm = [notebook_pass(cells, params) for _ in range(repeat)]
    import duckdb

    con = duckdb.connect(data, read_only=True)
    rows = {t: con.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0]
            for t in ("opportunities", "opportunity_history", "activities", "targets")}
    con.close()
    print(json.dumps({"imports_s": imports, "cold": cold, "warm": warm, "rss_cold_mb": rss_cold,
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "rows": rows}))


STAGES = ("prospecting", "qualification", "needs_analysis", "proposal", "negotiation", "closed_won")
OPEN = STAGES[:-1]
PROB = {"prospecting": 0.1, "qualification": 0.2, "needs_analysis": 0.4, "proposal": 0.6, "negotiation": 0.8}


def _sql_funnel(start: str, end: str) -> str:
    steps = " ".join(f"WHEN '{s}' THEN {i}" for i, s in enumerate(STAGES))
    return f"""
    WITH cohort AS (
      SELECT opportunity_id FROM opportunities
      WHERE created_at >= DATE '{start}' AND created_at < DATE '{end}' + INTERVAL 1 DAY),
    reach AS (
      SELECT c.opportunity_id, coalesce(max(CASE h.stage {steps} END), 0) AS reach
      FROM cohort c LEFT JOIN opportunity_history h
        ON h.opportunity_id = c.opportunity_id AND h.changed_at < DATE '{end}' + INTERVAL 1 DAY
      GROUP BY c.opportunity_id)
    SELECT s.step, count(*) FILTER (WHERE r.reach >= s.step) AS deals
    FROM reach r CROSS JOIN range(6) s(step) GROUP BY s.step ORDER BY s.step"""


def _sql_pipeline(as_of: str, base: str = "CNY") -> str:
    prob = " ".join(f"WHEN '{s}' THEN {p}" for s, p in PROB.items())
    stages = ", ".join(f"'{s}'" for s in OPEN)
    return f"""
    WITH state AS (
      SELECT opportunity_id, stage, amount, currency, probability FROM opportunity_history
      WHERE changed_at < DATE '{as_of}' + INTERVAL 1 DAY
      QUALIFY row_number() OVER (PARTITION BY opportunity_id ORDER BY changed_at DESC) = 1),
    rate AS (
      SELECT currency, rate_to_base FROM fx_rates WHERE date <= DATE '{as_of}'
      QUALIFY row_number() OVER (PARTITION BY currency ORDER BY date DESC) = 1)
    SELECT s.stage, count(*) AS deals,
      sum(s.amount * CASE WHEN s.currency = '{base}' THEN 1 ELSE r.rate_to_base END) AS amount,
      sum(s.amount * CASE WHEN s.currency = '{base}' THEN 1 ELSE r.rate_to_base END
          * coalesce(s.probability, CASE s.stage {prob} END)) AS weighted
    FROM state s LEFT JOIN rate r ON r.currency = s.currency
    WHERE s.stage IN ({stages}) GROUP BY s.stage"""


def child_peer(data: str, repeat: int) -> None:
    import duckdb
    import polars as pl

    import crmlib
    from crmlib import sales

    start, end = PARAMS["start"], PARAMS["end"]
    crm = crmlib.open(data)
    con = duckdb.connect(data, read_only=True)

    def best(fn) -> tuple[float, object]:
        out, times = None, []
        for _ in range(repeat + 1):  # the first is the warm-up
            t0 = time.perf_counter()
            out = fn()
            times.append(time.perf_counter() - t0)
        return min(times[1:] or times), out

    t_cf, f = best(lambda: sales.funnel(crm, start=start, end=end))
    t_sf, sf = best(lambda: con.sql(_sql_funnel(start, end)).pl())
    t_cp, p = best(lambda: sales.pipeline(crm, start=start, end=end))
    t_sp, sp = best(lambda: con.sql(_sql_pipeline(end)).pl())
    assert f.get_column("deals").to_list() == sf.get_column("deals").to_list(), (f, sf)
    both = p.join(sp, on="stage", how="left", suffix="_sql")
    assert both.select((pl.col("deals") == pl.col("deals_sql").fill_null(0)).all()).item(), both
    for c in ("amount", "weighted"):
        diff = both.select(((pl.col(c) - pl.col(f"{c}_sql").fill_null(0.0)).abs()
                            / pl.col(c).abs().clip(lower_bound=1.0)).max()).item()
        assert diff < 1e-9, (c, both)
    print(json.dumps({"funnel": {"crmlib": t_cf, "sql": t_sf, "deals": f.get_column("deals").to_list()},
                      "pipeline": {"crmlib": t_cp, "sql": t_sp, "open_deals": int(p.get_column("deals").sum()),
                                   "amount": float(p.get_column("amount").sum())}}))


# ---------------------------------------------------------------------------------------------------
# Parent
# ---------------------------------------------------------------------------------------------------
def warehouse(scale: float, seed: int) -> tuple[Path, float | None]:
    path = HERE / "out" / f"sales-scale{scale:g}-seed{seed}.duckdb"
    if path.exists():
        return path, None
    from crmlib.sources.demo import write_demo

    t0 = time.perf_counter()
    write_demo(path, scale=scale, seed=seed, progress=False)
    return path, time.perf_counter() - t0


def spawn(mode: str, data: Path, repeat: int) -> dict:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, __file__, mode, str(data), str(repeat)], capture_output=True, text=True,
                          cwd=ROOT)
    if proc.returncode != 0:
        raise SystemExit(f"{mode} failed:\n{proc.stderr[-4000:]}")
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    res["process_s"] = time.perf_counter() - t0
    return res


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import duckdb
    import polars

    load = ""
    if hasattr(os, "getloadavg"):
        load = f"; load average {os.getloadavg()[0]:.2f}"
    return (f"{os.cpu_count()} cores ({cpu}); Python {platform.python_version()}, polars {polars.__version__}, "
            f"duckdb {duckdb.__version__}{load}")


def render(runs: dict[float, dict], peers: dict[float, dict], command: str, repeat: int, load_before: str) -> str:
    scales = sorted(runs)
    lines = [
        SECTION, "",
        f"Command: `{command}`  ",
        f"Machine: {machine()} (before: {load_before})  ",
        f"Every code cell of notebooks/sales.ipynb with {json.dumps({k: v for k, v in PARAMS.items()})}, as a plain "
        "script in a fresh process per scale, each section's result rendered as the report stores it. Cold = "
        f"first pass after the imports; warm = best of {repeat} more passes in the same process (each pass opens "
        "the data again, as a report does). Peak RSS = the process's own maximum (`getrusage`), after the first "
        "pass and after all; the resident size between passes stays flat (no leak), the maximum grows with "
        "the allocator's transient peaks.", "",
        "| scale | opportunities | history rows | activities | imports s | cold s | warm s | "
        "peak RSS 1st pass MB | peak RSS all passes MB |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in scales:
        r = runs[s]
        warm = min(sum(p.values()) for p in r["warm"]) if r["warm"] else None
        lines.append(f"| {s:g} | {r['rows']['opportunities']:,} | {r['rows']['opportunity_history']:,} | "
                     f"{r['rows']['activities']:,} | {r['imports_s']:.2f} | {sum(r['cold'].values()):.2f} | "
                     f"{'–' if warm is None else f'{warm:.2f}'} | {r['rss_cold_mb']:,.0f} | {r['peak_rss_mb']:,.0f} |")
    big = runs[scales[-1]]
    sections = list(big["cold"])
    lines += ["", f"Per section at scale {scales[-1]:g} (seconds; warm = best pass):", "",
              "| section | " + " | ".join(f"scale {s:g} warm" for s in scales) + f" | scale {scales[-1]:g} cold |",
              "|---|" + "---:|" * (len(scales) + 1)]
    for sec in sections:
        cells = []
        for s in scales:
            w = [p.get(sec) for p in runs[s]["warm"] if p.get(sec) is not None] or [runs[s]["cold"].get(sec)]
            cells.append(f"{min(w):.2f}" if w and w[0] is not None else "–")
        lines.append(f"| `{sec}` | " + " | ".join(cells) + f" | {big['cold'][sec]:.2f} |")
    if len(scales) >= 2:
        lo, hi = runs[scales[0]], runs[scales[-1]]

        def total(r):
            return min(sum(p.values()) for p in r["warm"]) if r["warm"] else sum(r["cold"].values())

        lines += ["", f"Growth, scale {scales[-1]:g} vs {scales[0]:g} (data x{scales[-1] / scales[0]:g}): warm time "
                  f"x{total(hi) / total(lo):.2f}, peak RSS of the first pass "
                  f"x{hi['rss_cold_mb'] / lo['rss_cold_mb']:.2f} (fixed costs dominate the small scale)."]
    if peers:
        lines += ["", "Peer: hand-written DuckDB SQL over the same file, results checked equal (best of "
                  f"{repeat} after a warm-up, in one process per scale):", "",
                  "| scale | analytic | crmlib s | DuckDB SQL s | crmlib / SQL |", "|---:|---|---:|---:|---:|"]
        for s in sorted(peers):
            p = peers[s]
            for name, what in (("funnel", "funnel (counts, values, median days) vs counts"),
                               ("pipeline", "open pipeline by stage at the as-of day")):
                lines.append(f"| {s:g} | {what} | {p[name]['crmlib']:.3f} | {p[name]['sql']:.3f} | "
                             f"{p[name]['crmlib'] / p[name]['sql']:.1f}x |")
    return "\n".join(lines) + "\n"


def write_section(text: str) -> None:
    old = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n\n"
    pattern = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.M | re.S)
    new = pattern.sub(lambda _m: text + "\n", old) if pattern.search(old) else old.rstrip("\n") + "\n\n" + text
    RESULTS.write_text(new)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] in ("--child-notebook", "--child-peer"):
        fn = child_notebook if sys.argv[1] == "--child-notebook" else child_peer
        fn(sys.argv[2], int(sys.argv[3]))
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scales", type=float, nargs="+", default=[1.0, 10.0])
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--repeat", type=int, default=3, help="warm passes per process; the fastest is kept")
    ap.add_argument("--no-peer", action="store_true")
    ap.add_argument("--no-write-results", action="store_true")
    args = ap.parse_args()
    load_before = f"load average {os.getloadavg()[0]:.2f}" if hasattr(os, "getloadavg") else "load unknown"
    runs, peers = {}, {}
    for scale in sorted(args.scales):
        data, made = warehouse(scale, args.seed)
        if made is not None:
            print(f"scale {scale:g}: wrote {data} in {made:.1f} s", file=sys.stderr)
        runs[scale] = spawn("--child-notebook", data, args.repeat)
        print(f"scale {scale:g}: notebook cold {sum(runs[scale]['cold'].values()):.2f} s, "
              f"peak RSS {runs[scale]['peak_rss_mb']:.0f} MB", file=sys.stderr)
        if not args.no_peer:
            peers[scale] = spawn("--child-peer", data, args.repeat)
    command = " ".join([".venv/bin/python", "bench/bench_sales.py", *sys.argv[1:]])
    text = render(runs, peers, command, args.repeat, load_before)
    print(text)
    if not args.no_write_results:
        write_section(text)


if __name__ == "__main__":
    main()
