"""Benchmark: a Voila dashboard in the browser — first full render (preheated) and filter-change latency.

For each demo scale, `crmlib serve` runs over a folder holding only the dashboard (so preheating starts
kernels for that notebook alone), with `--pool 1`; the benchmark waits until the preheated kernel has
rendered the notebook (the server logs it), then in the system Chromium:

1. first full render: navigation start to every chart drawn (`.js-plotly-plot` with `.main-svg` and data,
   as many as the dashboard has), timed in the page (`performance.now()`); `--renders` times, each on a
   fresh preheated kernel (the benchmark waits for the pool to refill between them);
   a returning viewer (one persistent browser profile) then opens it 4 times, each on a fresh kernel;
2. filter change: the Grain `<select>` steps to its next option; timed to the first frame where the
   charts' titles/trace data differ (first chart updated) and to the frame after the dashboard's status
   counts the update finished (every section re-drawn); the next change waits for that; `--changes`
   times (median, p95 of each);
3. load test (`--viewers N`, default 10): N viewers at once (one browser, N contexts) each open the
   dashboard and change the filter once; errors, load and change times, and the peak RSS of the server's
   process tree (server + kernels, sampled every 0.5 s).

    .venv/bin/python bench/bench_dashboards.py                       # scales 1 and 10; section into RESULTS.md
    .venv/bin/python bench/bench_dashboards.py --scales 1 --no-write-results
    .venv/bin/python bench/bench_dashboards.py --scales 1 --only load --viewers 10

Warehouses: /tmp/bench<scale>.duckdb (made with `crmlib data demo --scale S --out ...` when missing).
The section "## Dashboards" of bench/RESULTS.md is replaced; other sections are kept.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "RESULTS.md"
SECTION = "## Dashboards"
sys.path.insert(0, str(ROOT / "tests"))

from dashboard_viewers import PeakRss, returning_viewer, run_viewers  # noqa: E402
from voila_server import voila_server  # noqa: E402

NOTEBOOK = "sales.ipynb"
RETURNING_VISITS = 4  # Chromium keeps compiled code of a script from its third load on
FIGURES = 9  # charts the sales dashboard draws


def warehouse(scale: float) -> Path:
    path = Path(f"/tmp/bench{scale:g}.duckdb")
    if not path.exists():
        subprocess.run(
            [sys.executable, "-m", "crmlib", "data", "demo", "--scale", str(scale), "--out", str(path)],
            check=True,
        )
    return path


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    if not values:
        return float("nan")
    k = (len(values) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def wait_rendered(url, count: int, timeout: float = 600) -> None:
    """Wait until the server has logged ``count`` finished preheated renders."""
    from crmlib.serve import RENDERED

    deadline = time.monotonic() + timeout
    while url.log().count(RENDERED) < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"no preheated render #{count} within {timeout:.0f} s")
        time.sleep(0.2)


def bench_scale(scale: float, folder: Path, renders: int, changes: int, viewers: int, only: str) -> dict:
    source = warehouse(scale)
    out: dict = {"scale": scale}
    if only in ("all", "latency"):
        with voila_server(source, folder, pool=1, wait_for_pool=True, ready_timeout=600) as url:
            loads, errors, change_ms, change_all = [], [], [], []
            for i in range(renders):
                wait_rendered(url, i + 1)
                last = i == renders - 1
                (res,) = run_viewers(url, NOTEBOOK, FIGURES, changes=changes if last else 0)
                loads.append(res.get("load_s", float("nan")))
                errors += res["errors"]
                if last:
                    change_ms = res.get("changes_ms", [])
                    change_all = res.get("changes_all_ms", [])
            out.update(loads=loads, change_ms=change_ms, change_all=change_all, errors=errors, rss_one=url.rss())
            # a returning viewer: the same browser profile, visit after visit (HTTP and code caches warm)
            # (visit i takes the preheated kernel rendered after the renders' kernels and the visits' before it)
            out["returning"] = returning_viewer(url, NOTEBOOK, FIGURES, RETURNING_VISITS,
                                                lambda i: wait_rendered(url, renders + i + 1))
    if only in ("all", "load") and viewers:
        with voila_server(source, folder, pool=1, wait_for_pool=True, ready_timeout=600) as url:
            with PeakRss(url) as rss:
                t0 = time.monotonic()
                results = run_viewers(url, NOTEBOOK, FIGURES, viewers=viewers, changes=1)
                wall = time.monotonic() - t0
            out.update(load_results=results, load_wall=wall, load_peak_rss=rss.peak, viewers=viewers)
    return out


def machine(load_before: float) -> str:
    from importlib.metadata import version

    import voila

    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{os.cpu_count()} cores ({cpu}); Python {platform.python_version()}, voila {voila.__version__}, "
        f"playwright {version('playwright')}, Chromium {chromium_version()}; load average "
        f"{load_before:.2f} before, {os.getloadavg()[0]:.2f} after (other engineers' tests share the machine)"
    )


def chromium_version() -> str:
    try:
        out = subprocess.run(
            ["/usr/bin/chromium", "--version"], capture_output=True, text=True, timeout=30
        ).stdout
        return re.search(r"\d+(?:\.\d+)+", out).group(0)
    except (OSError, subprocess.SubprocessError, AttributeError):
        return "?"


def render(command: str, runs: list[dict], load_before: float) -> str:
    lines = [
        SECTION,
        "",
        f"Command: `{command}`  ",
        f"Machine: {machine(load_before)}  ",
        f"Dashboard: notebooks/{NOTEBOOK} ({FIGURES} charts, KPI cards, 2 tables) served by `crmlib serve --pool 1` "
        "from a folder holding only it; system Chromium through Playwright, times taken in the page. "
        "First render = navigation start to every chart drawn, on a preheated kernel whose render had "
        "finished: in a new browser context each time (nothing cached), and for a returning viewer (one "
        "browser profile, 4 visits; Chromium reuses compiled scripts from the third). Filter change = Grain `<select>` to its next option, "
        "timed until the first chart's data or title changes in the DOM (*first chart*) and until the "
        "dashboard's status says the update finished, every section re-drawn (*all sections*); each change "
        "starts after the previous one finished.",
        "",
    ]
    if any("loads" in r for r in runs):
        lines += [
            "| demo scale | first render s, new browser (median, runs) | returning viewer s (visits 1-4) | "
            "filter change, first chart ms: median | p95 | all sections ms: median | p95 | changes | errors |",
            "|---:|---|---|---:|---:|---:|---:|---:|---|",
        ]
        for r in runs:
            if "loads" not in r:
                continue
            loads = ", ".join(f"{x:.2f}" for x in r["loads"])
            ch, every = r["change_ms"], r.get("change_all", [])
            back = ", ".join("–" if x is None else f"{x:.2f}" for x in r.get("returning", []))
            lines.append(
                f"| {r['scale']:g} | {statistics.median(r['loads']):.2f} ({loads}) | {back} | "
                f"{statistics.median(ch) if ch else float('nan'):.0f} | {pct(ch, 0.95):.0f} | "
                f"{statistics.median(every) if every else float('nan'):.0f} | {pct(every, 0.95):.0f} | {len(ch)} | "
                f"{'; '.join(r['errors'][:3]) or 'none'} |"
            )
        lines += ["", "Goals at scale 1: first render < 2 s, filter p95 < 300 ms (first chart updated).", ""]
    for r in runs:
        if "load_results" not in r:
            continue
        res = r["load_results"]
        ok = [x for x in res if not x["errors"]]
        loads = [x["load_s"] for x in res if "load_s" in x]
        changes = [c for x in res for c in x.get("changes_ms", [])]
        errs = [e for x in res for e in x["errors"]]
        lines += [
            f"Load test at scale {r['scale']:g}: {r['viewers']} viewers at once (one browser, "
            f"{r['viewers']} contexts), each opening the dashboard and changing Grain once: "
            f"**{len(ok)}/{len(res)} without error**; load to all charts drawn median "
            f"{statistics.median(loads) if loads else float('nan'):.1f} s, max {max(loads, default=float('nan')):.1f} s; "
            f"filter change median {statistics.median(changes) if changes else float('nan'):.0f} ms, max "
            f"{max(changes, default=float('nan')):.0f} ms; whole test {r['load_wall']:.1f} s; peak RSS of the "
            f"server's process tree (server + {r['viewers']} viewer kernels + pool) "
            f"**{r['load_peak_rss'] / 2**20:,.0f} MB**."
            + (f" Errors: {'; '.join(sorted(set(errs))[:5])}." if errs else ""),
            "",
        ]
    return "\n".join(lines)


def write_section(text: str) -> None:
    old = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n\n"
    pattern = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.M | re.S)
    new = (
        pattern.sub(lambda _m: text + "\n", old)
        if pattern.search(old)
        else old.rstrip("\n") + "\n\n" + text + "\n"
    )
    RESULTS.write_text(new)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scales", type=float, nargs="+", default=[1.0, 10.0])
    ap.add_argument("--renders", type=int, default=3, help="first renders measured per scale")
    ap.add_argument("--changes", type=int, default=20, help="filter changes measured per scale")
    ap.add_argument("--viewers", type=int, default=10, help="concurrent viewers in the load test (0: none)")
    ap.add_argument(
        "--load-scales", type=float, nargs="+", default=[1.0], help="scales the load test runs at"
    )
    ap.add_argument("--only", choices=("all", "latency", "load"), default="all")
    ap.add_argument("--no-write-results", action="store_true")
    args = ap.parse_args()
    os.chdir(ROOT)
    load_before = os.getloadavg()[0]
    runs = []
    with tempfile.TemporaryDirectory(prefix="bench_dash_") as tmp:
        folder = Path(tmp) / "notebooks"
        folder.mkdir()
        shutil.copy(ROOT / "notebooks" / NOTEBOOK, folder / NOTEBOOK)
        for scale in args.scales:
            viewers = args.viewers if scale in args.load_scales else 0
            run = bench_scale(scale, folder, args.renders, args.changes, viewers, args.only)
            runs.append(run)
            print(
                f"scale {scale:g}: " + ", ".join(f"{k}={v}" for k, v in run.items() if k != "load_results"),
                flush=True,
            )
            for res in run.get("load_results", []):
                print("  viewer:", res, flush=True)
    command = "  ".join([".venv/bin/python bench/bench_dashboards.py", *sys.argv[1:]]).replace("  ", " ")
    text = render(command, runs, load_before)
    print(text)
    if not args.no_write_results:
        write_section(text)


if __name__ == "__main__":
    main()
