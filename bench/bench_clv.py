"""Benchmark: customer summary and BG/NBD fit, crmlib vs lifetimes 0.11.3, in the same run.

1. **Customer summary** (frequency, recency, T, monetary) from 5,000,000 order lines:
   ``crmlib.customers.customer_summary(orders, as_of, "W")`` (polars, lazy) vs lifetimes'
   ``summary_data_from_transaction_data(..., freq="D", freq_multiplier=7)`` (pandas): the same definitions
   (purchase days, weeks = days / 7, monetary = mean value of the repeat purchase days).
2. **BG/NBD fit** on 100,000 customers (the first 100,000 of that summary by id):
   ``crmlib.models.BetaGeoModel().fit`` vs lifetimes' ``BetaGeoFitter().fit``, both with their defaults.

The orders are simulated from BG/NBD (CDNOW's parameters, r=0.243, alpha=4.414, a=0.793, b=2.426, per week)
and Gamma-Gamma spend, births spread over the first year of a two-year window, seeded. Each step runs in
a fresh subprocess that loads its input first (not timed), then resets the kernel's peak-RSS mark
(``/proc/self/clear_refs``) and times the step alone: ``peak MB`` is the process's peak resident memory
during the step, ``+MB`` that peak minus the resident memory before the step. Best of ``--repeat`` runs by
time. Results are checked to be identical (frequency equal; recency, T, monetary within 1e-9; fitted
parameters within 1e-3 relative).

lifetimes is not a crmlib dependency; install it into the venv for this benchmark only::

    .venv/bin/pip install lifetimes==0.11.3      # pulls pandas, autograd, dill
    .venv/bin/python bench/bench_clv.py          # writes the "## Customer value (CLV)" section of RESULTS.md
    .venv/bin/python bench/bench_clv.py --lines 200000 --customers 20000 --repeat 1 --no-write-results

Goals (issue 10): the summary at least 10x faster than lifetimes', the fit no slower.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "RESULTS.md"
SECTION = "## Customer value (CLV)"
AS_OF = "2024-12-31"
START = "2023-01-01"
PARAMS = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426, "p": 6.25, "q": 3.74, "v": 15.44}


# ---------------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------------
def simulate_orders(lines: int, seed: int):
    """Exactly ``lines`` canonical order rows from a BG/NBD + Gamma-Gamma population (polars DataFrame)."""
    import numpy as np
    import polars as pl

    rng = np.random.default_rng(seed)
    days = 731  # 2023-01-01 .. 2024-12-31 (AS_OF), one leap year
    n = int(lines / 2.4) + 1000
    birth = rng.uniform(0, 365, n)
    T = (days - birth) / 7.0
    lam = rng.gamma(PARAMS["r"], 1 / PARAMS["alpha"], n)
    p = rng.beta(PARAMS["a"], PARAMS["b"], n)
    m = rng.poisson(lam * T)
    x = np.minimum(m, rng.geometric(p))
    cust = np.repeat(np.arange(n), m)
    u = rng.random(len(cust))
    order = np.lexsort((u, cust))
    cust, u = cust[order], u[order]
    rank = np.arange(len(cust)) - np.repeat(np.cumsum(m) - m, m)
    keep = rank < x[cust]
    rep_cust = cust[keep]
    rep_t = birth[rep_cust] + 7 * T[rep_cust] * u[keep]
    who = np.concatenate([np.arange(n), rep_cust])
    t = np.minimum(np.concatenate([birth, rep_t]), days - 1e-6)
    o = np.lexsort((t, who))[:lines]
    who, t = who[o], t[o]
    nu = rng.gamma(PARAMS["q"], 1 / PARAMS["v"], n)
    amount = np.round(rng.gamma(PARAMS["p"], 1 / nu[who]), 2)
    if len(who) < lines:
        raise SystemExit(f"simulated only {len(who):,} lines; raise n")
    base = np.datetime64(START, "us")
    ordered_at = base + np.round(t * 86_400_000_000).astype("timedelta64[us]")
    return pl.DataFrame({
        "order_id": pl.int_range(0, lines, eager=True).cast(pl.String),
        "account_id": pl.Series(who).cast(pl.String).str.zfill(8),
        "ordered_at": ordered_at,
        "amount": amount,
        "currency": pl.repeat("CNY", lines, eager=True),
        "status": pl.repeat("completed", lines, eager=True),
    })


# ---------------------------------------------------------------------------------------------------
# Children: load input, reset the peak-RSS mark, time one step, save its output
# ---------------------------------------------------------------------------------------------------
def _rss() -> tuple[float, float]:
    """(current RSS, peak RSS) of this process in MB."""
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(("VmRSS", "VmHWM")):
                out[line.split(":")[0]] = int(line.split()[1]) / 1024
    return out["VmRSS"], out["VmHWM"]


def _reset_peak() -> None:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def child(task: str, inp: str, out: str) -> None:
    import warnings

    warnings.simplefilter("ignore")
    if task == "summary-crmlib":
        import polars as pl

        from crmlib.customers import customer_summary

        orders = pl.read_parquet(inp)
        n_in = orders.height
        before, _ = _rss()
        _reset_peak()
        c0, t0 = time.process_time(), time.perf_counter()
        s = customer_summary(orders.lazy(), AS_OF, "W", base_currency="CNY")
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
        _, peak = _rss()
        s.select("account_id", "frequency", "recency", "T", "monetary").write_parquet(out)
        n = s.height
    elif task == "summary-lifetimes":
        import pandas as pd
        from lifetimes.utils import summary_data_from_transaction_data

        orders = pd.read_parquet(inp, columns=["account_id", "ordered_at", "amount"])
        n_in = len(orders)
        before, _ = _rss()
        _reset_peak()
        c0, t0 = time.process_time(), time.perf_counter()
        s = summary_data_from_transaction_data(orders, "account_id", "ordered_at", monetary_value_col="amount",
                                               observation_period_end=AS_OF, freq="D", freq_multiplier=7)
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
        _, peak = _rss()
        s = s.rename(columns={"monetary_value": "monetary"}).reset_index()
        s.to_parquet(out)
        n = len(s)
    elif task in ("fit-crmlib", "fit-lifetimes"):
        import numpy as np
        import polars as pl

        d = pl.read_parquet(inp)
        f, r, T = (d.get_column(c).to_numpy().astype(float) for c in ("frequency", "recency", "T"))
        if task == "fit-crmlib":
            from crmlib.models import BetaGeoModel

            before, _ = _rss()
            _reset_peak()
            c0, t0 = time.process_time(), time.perf_counter()
            m = BetaGeoModel().fit(f, r, T)
            elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
            _, peak = _rss()
            params = m.params_
        else:
            from lifetimes import BetaGeoFitter

            before, _ = _rss()
            _reset_peak()
            c0, t0 = time.process_time(), time.perf_counter()
            m = BetaGeoFitter().fit(f, r, T)
            elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
            _, peak = _rss()
            params = {k: float(v) for k, v in m.params_.items()}
        Path(out).write_text(json.dumps(params))
        n = n_in = len(np.asarray(f))
    else:
        raise SystemExit(f"unknown task {task}")
    print(json.dumps({"task": task, "seconds": elapsed, "cpu_seconds": cpu, "rss_before_mb": before, "peak_mb": peak,
                      "rows_in": n_in, "rows_out": n, "load": os.getloadavg()[0]}))


def run_child(task: str, inp: Path, out: Path) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--child", task, str(inp), str(out)], capture_output=True,
                          text=True, cwd=HERE.parent)
    if proc.returncode != 0:
        raise SystemExit(f"{task} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def best(task: str, inp: Path, out: Path, repeat: int) -> dict:
    runs = [run_child(task, inp, out) for _ in range(repeat)]
    res = min(runs, key=lambda r: r["seconds"])
    res["all_seconds"] = [r["seconds"] for r in runs]
    return res


# ---------------------------------------------------------------------------------------------------
# Parent
# ---------------------------------------------------------------------------------------------------
def compare_summaries(a: Path, b: Path) -> str:
    import numpy as np
    import polars as pl

    x = pl.read_parquet(a).sort("account_id")
    y = pl.read_parquet(b).sort("account_id")
    if x.height != y.height or x.get_column("account_id").to_list() != y.get_column("account_id").to_list():
        return f"DIFFERENT customers ({x.height:,} vs {y.height:,})"
    if not (x.get_column("frequency").cast(pl.Float64).to_numpy() == y.get_column("frequency").to_numpy()).all():
        return "DIFFERENT frequency"
    for c in ("recency", "T", "monetary"):
        if not np.allclose(x.get_column(c).to_numpy(), y.get_column(c).to_numpy(), rtol=1e-9, atol=1e-9):
            return f"DIFFERENT {c}"
    return f"identical ({x.height:,} customers: frequency equal, recency/T/monetary within 1e-9)"


def compare_params(a: Path, b: Path) -> tuple[str, dict, dict]:
    p, q = json.loads(a.read_text()), json.loads(b.read_text())
    worst = max(abs(p[k] - q[k]) / abs(q[k]) for k in p)
    verdict = "identical" if worst < 1e-3 else "DIFFERENT"
    return f"{verdict} (largest relative difference {worst:.1e})", p, q


def versions() -> str:
    import importlib.metadata as md

    parts = [f"Python {platform.python_version()}"]
    for pkg in ("polars", "numpy", "scipy", "pandas", "autograd", "lifetimes"):
        try:
            parts.append(f"{pkg} {md.version(pkg)}")
        except md.PackageNotFoundError:
            parts.append(f"{pkg} missing")
    return ", ".join(parts)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores ({cpu}), {mem:.0f} GiB RAM"


def write_section(text: str) -> None:
    old = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    parts = re.split(r"(?m)^(?=## )", old)
    kept = [p for p in parts if not p.startswith(SECTION)]
    body = "".join(kept).rstrip() + "\n\n" + text.rstrip() + "\n"
    RESULTS.write_text(body)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lines", type=int, default=5_000_000, help="order lines for the summary (default 5,000,000)")
    ap.add_argument("--customers", type=int, default=100_000, help="customers for the BG/NBD fit (default 100,000)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per step, best kept (default 3)")
    ap.add_argument("--seed", type=int, default=2024)
    ap.add_argument("--no-write-results", action="store_true", help="print only, do not update bench/RESULTS.md")
    ap.add_argument("--child", nargs=3, metavar=("TASK", "IN", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(*args.child)
        return
    try:
        import lifetimes  # noqa: F401
    except ImportError:
        raise SystemExit("lifetimes is not installed: .venv/bin/pip install lifetimes==0.11.3 (bench only; it is not "
                         "a crmlib dependency)") from None

    import polars as pl

    with tempfile.TemporaryDirectory(prefix="bench-clv-") as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        orders = simulate_orders(args.lines, args.seed)
        orders.write_parquet(tmp / "orders.parquet")
        n_orders, n_customers = orders.height, orders.get_column("account_id").n_unique()
        del orders
        print(f"simulated {n_orders:,} order lines of {n_customers:,} customers in {time.perf_counter() - t0:.1f} s",
              file=sys.stderr)
        ours = best("summary-crmlib", tmp / "orders.parquet", tmp / "s_crmlib.parquet", args.repeat)
        print(f"crmlib summary    {ours['seconds']:.2f} s", file=sys.stderr)
        theirs = best("summary-lifetimes", tmp / "orders.parquet", tmp / "s_lifetimes.parquet", args.repeat)
        print(f"lifetimes summary {theirs['seconds']:.2f} s", file=sys.stderr)
        same_summary = compare_summaries(tmp / "s_crmlib.parquet", tmp / "s_lifetimes.parquet")

        fit_in = tmp / "fit.parquet"
        s = pl.read_parquet(tmp / "s_crmlib.parquet").sort("account_id").head(args.customers)
        s.write_parquet(fit_in)
        patterns = s.select("frequency", "recency", "T").unique().height
        fit_ours = best("fit-crmlib", fit_in, tmp / "p_crmlib.json", args.repeat)
        print(f"crmlib fit        {fit_ours['seconds']:.2f} s", file=sys.stderr)
        fit_theirs = best("fit-lifetimes", fit_in, tmp / "p_lifetimes.json", args.repeat)
        print(f"lifetimes fit     {fit_theirs['seconds']:.2f} s", file=sys.stderr)
        same_fit, p_ours, p_theirs = compare_params(tmp / "p_crmlib.json", tmp / "p_lifetimes.json")

    def row(name, r):
        return (f"| {name} | {r['rows_in']:,} | {r['rows_out']:,} | {r['seconds']:.2f} | {r['cpu_seconds']:.2f} | "
                f"{r['peak_mb']:,.0f} | {r['peak_mb'] - r['rss_before_mb']:+,.0f} |")

    s_ratio = theirs["seconds"] / ours["seconds"]
    f_ratio = fit_theirs["seconds"] / fit_ours["seconds"]
    s_cpu = theirs["cpu_seconds"] / ours["cpu_seconds"]
    f_cpu = fit_theirs["cpu_seconds"] / fit_ours["cpu_seconds"]
    loads = ", ".join(f"{r['load']:.1f}" for r in (ours, theirs, fit_ours, fit_theirs))
    busy = ""
    if max(r["load"] for r in (ours, theirs, fit_ours, fit_theirs)) > (os.cpu_count() or 1):
        busy = (f"- The machine was busy with other jobs (load above its {os.cpu_count()} cores): polars' threads wait for "
                "cores (wall time above CPU time) while lifetimes runs on one, so the wall-time ratio understates the "
                "CPU-time ratio. Re-run on an idle machine for the headline number.\n")
    cmd = ".venv/bin/python bench/bench_clv.py" + (
        "" if (args.lines, args.customers, args.repeat, args.seed) == (5_000_000, 100_000, 3, 2024)
        else f" --lines {args.lines} --customers {args.customers} --repeat {args.repeat} --seed {args.seed}")
    text = f"""{SECTION}

Command: `{cmd}` (needs `.venv/bin/pip install lifetimes==0.11.3`, bench only)
Machine: {machine()}; {versions()}
Input: {n_orders:,} simulated order lines (BG/NBD + Gamma-Gamma, seed {args.seed}) of {n_customers:,} customers,
as of {AS_OF}. Each step in a fresh subprocess after loading its input; best of {args.repeat} by time;
`seconds` = wall time, `CPU s` = CPU time of the process (all threads), `peak MB` = process peak RSS during
the step, `+MB` = that peak minus RSS before the step. 1-minute load average during the runs: {loads}.

| step | rows in | rows out | seconds | CPU s | peak MB | +MB |
|---|---:|---:|---:|---:|---:|---:|
{row("summary: crmlib `customer_summary` (polars)", ours)}
{row("summary: lifetimes `summary_data_from_transaction_data`", theirs)}
{row("BG/NBD fit: crmlib `BetaGeoModel`", fit_ours)}
{row("BG/NBD fit: lifetimes `BetaGeoFitter`", fit_theirs)}

- Summary: crmlib **{s_ratio:.1f}x faster** than lifetimes in wall time (goal >= 10x: {"met" if s_ratio >= 10 else
  "NOT met"}), {s_cpu:.1f}x less CPU time;
  results {same_summary}.
- Fit on the first {args.customers:,} customers ({patterns:,} distinct (frequency, recency, T) patterns, which crmlib
  fits as weights): crmlib **{f_ratio:.1f}x faster** in wall time (goal: no slower: {"met" if f_ratio >= 1 else
  "NOT met"}), {f_cpu:.1f}x less CPU time;
  parameters {same_fit}: crmlib {", ".join(f"{k}={v:.4f}" for k, v in p_ours.items())}; lifetimes
  {", ".join(f"{k}={v:.4f}" for k, v in p_theirs.items())} (truth r=0.243, alpha=4.414, a=0.793, b=2.426).
{busy}- All runs (s): summary crmlib {", ".join(f"{x:.2f}" for x in ours["all_seconds"])}; lifetimes
  {", ".join(f"{x:.2f}" for x in theirs["all_seconds"])}; fit crmlib {", ".join(f"{x:.2f}" for x in fit_ours["all_seconds"])};
  lifetimes {", ".join(f"{x:.2f}" for x in fit_theirs["all_seconds"])}.
"""
    print(text)
    if not args.no_write_results:
        write_section(text)
        print(f"updated {RESULTS}", file=sys.stderr)


if __name__ == "__main__":
    main()
