"""Benchmark: demo simulator generation + warehouse write, at several scales.

Each scale runs in a fresh subprocess (so imports, caches and peak memory are its own) that reports
wall time of generate() and of write_warehouse(), rows written, peak RSS (getrusage of the child
itself) and the DuckDB file size. The report gives throughput (rows/s) and the time ratio between
the largest and the smallest scale against the ideal (linear) ratio.

    .venv/bin/python bench/bench_demo.py                # scales 1 and 10, results into bench/RESULTS.md
    .venv/bin/python bench/bench_demo.py --scales 0.1 1 --no-write-results

The section "## Demo generation" of bench/RESULTS.md is replaced; other sections are kept.
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
SECTION = "## Demo generation"


def child(scale: float, seed: int, out: str) -> None:
    import resource

    t0 = time.perf_counter()
    from crmlib.sources import warehouse
    from crmlib.sources.demo import generate

    t_import = time.perf_counter() - t0
    t1 = time.perf_counter()
    frames = generate(scale, seed)
    t_gen = time.perf_counter() - t1
    t2 = time.perf_counter()
    warehouse.write_warehouse(out, frames, meta={"created_by": "bench"})
    t_write = time.perf_counter() - t2
    rows = {name: f.height for name, f in frames.items()}
    print(json.dumps({
        "scale": scale, "seed": seed, "import_s": t_import, "generate_s": t_gen, "write_s": t_write,
        "rows": sum(rows.values()), "tables": rows, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "file_mb": Path(out).stat().st_size / 2**20,
    }))


def run(scale: float, seed: int, tmp: Path) -> dict:
    out = tmp / f"demo_{scale}.duckdb"
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, __file__, "--child", str(scale), str(seed), str(out)],
                          capture_output=True, text=True, check=True, cwd=HERE.parent)
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    res["process_s"] = time.perf_counter() - start
    out.unlink(missing_ok=True)
    return res


def cli_time(scale: float, seed: int, tmp: Path) -> float | None:
    """End-to-end wall time of `crmlib data demo` (the command users run), or None without the CLI."""
    exe = Path(sys.executable).with_name("crmlib")
    if not exe.exists():
        return None
    out = tmp / "cli.duckdb"
    start = time.perf_counter()
    subprocess.run([str(exe), "data", "demo", "--scale", f"{scale:g}", "--seed", str(seed), "--out", str(out)],
                   capture_output=True, text=True, check=True, cwd=HERE.parent)
    took = time.perf_counter() - start
    out.unlink(missing_ok=True)
    return took


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
    import duckdb
    import numpy
    import polars

    return (f"{os.cpu_count()} cores ({cpu}){mem}; Python {platform.python_version()}, polars {polars.__version__}, "
            f"numpy {numpy.__version__}, duckdb {duckdb.__version__}")


def render(results: list[dict], command: str, repeat: int, cli: float | None = None) -> str:
    lines = [
        SECTION,
        "",
        f"Command: `{command}`  ",
        f"Machine: {machine()}  ",
        f"Each scale in a fresh subprocess, best of {repeat} run(s) by generate+write time; peak RSS is the",
        "child's own `getrusage` maximum. Rows = all 19 canonical tables. `process` includes interpreter",
        "start-up and imports.",
        "",
        "| scale | rows | generate s | write s | generate+write s | process s | rows/s (gen+write) | "
        "rows/s (generate) | peak RSS MB | DuckDB MB |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        gw = r["generate_s"] + r["write_s"]
        lines.append(
            f"| {r['scale']:g} | {r['rows']:,} | {r['generate_s']:.2f} | {r['write_s']:.2f} | {gw:.2f} | "
            f"{r['process_s']:.2f} | {r['rows'] / gw:,.0f} | {r['rows'] / r['generate_s']:,.0f} | "
            f"{r['peak_rss_mb']:,.0f} | {r['file_mb']:,.1f} |"
        )
    if len(results) >= 2:
        lo, hi = results[0], results[-1]
        ideal = hi["scale"] / lo["scale"]
        t_ratio = (hi["generate_s"] + hi["write_s"]) / (lo["generate_s"] + lo["write_s"])
        lines += [
            "",
            f"Linearity, scale {hi['scale']:g} vs {lo['scale']:g}: rows x{hi['rows'] / lo['rows']:.2f}, "
            f"generate+write time x{t_ratio:.2f}, generate time x{hi['generate_s'] / lo['generate_s']:.2f}, "
            f"peak RSS x{hi['peak_rss_mb'] / lo['peak_rss_mb']:.2f} (ideal x{ideal:g}; below ideal means fixed "
            "costs dominate the small scale).",
        ]
    if cli is not None:
        lines += ["", f"`crmlib data demo --scale {results[0]['scale']:g}` end to end (new process, imports, "
                  f"generate, write, rename): {cli:.2f} s (best of {repeat})."]
    big = results[-1]["tables"]
    lines += ["", f"Rows per table at scale {results[-1]['scale']:g}: "
              + ", ".join(f"{k} {v:,}" for k, v in sorted(big.items(), key=lambda kv: -kv[1])) + "."]
    return "\n".join(lines) + "\n"


def write_section(text: str) -> None:
    old = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n\n"
    pattern = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.M | re.S)
    new = pattern.sub(lambda _m: text + "\n", old) if pattern.search(old) else old.rstrip("\n") + "\n\n" + text
    RESULTS.write_text(new)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(float(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scales", type=float, nargs="+", default=[1.0, 10.0])
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--repeat", type=int, default=1, help="runs per scale; the fastest is kept")
    ap.add_argument("--no-write-results", action="store_true")
    args = ap.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="bench_demo_") as tmp:
        cli_runs = [cli_time(min(args.scales), args.seed, Path(tmp)) for _ in range(args.repeat)]
        cli = None if None in cli_runs else min(cli_runs)
        for scale in sorted(args.scales):
            runs = [run(scale, args.seed, Path(tmp)) for _ in range(args.repeat)]
            best = min(runs, key=lambda r: r["generate_s"] + r["write_s"])
            results.append(best)
            print(f"scale {scale:g}: {best['rows']:,} rows, generate {best['generate_s']:.2f}s, "
                  f"write {best['write_s']:.2f}s, peak RSS {best['peak_rss_mb']:.0f} MB", file=sys.stderr)
    command = " ".join([".venv/bin/python", "bench/bench_demo.py", *sys.argv[1:]])
    text = render(results, command, args.repeat, cli)
    print(text)
    if not args.no_write_results:
        write_section(text)


if __name__ == "__main__":
    main()
