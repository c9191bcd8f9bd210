"""Benchmark: `crmlib report run --all`, serial (`--jobs 1`) vs parallel (default: one job per core).

In the same run, on the same demo warehouse (scale 1 by default, seed 42, written once to bench/out/):

1. `crmlib report run --all --jobs 1` and `crmlib report run --all` alternate (`--repeat` pairs, the order
   flipping each time so drift hits both); wall time of the whole command, median over the repeats, and
   the speed-up serial / parallel (goal: >= 1.6x on 2 cores).
2. The per-report overhead of a report run against the same crmlib calls as a plain script: each
   definition's notebook, parameters injected, its code cells concatenated into one script run by
   `python` (a new process each time, as each report's kernel is). The overhead is what the report adds:
   kernel start and shutdown, papermill, rendering outputs, the .ipynb and the HTML export. The per-report
   duration comes from run.json of the serial runs; the phases from the executed notebooks' metadata.

    .venv/bin/python bench/bench_reports.py                   # scale 1, 3 pairs; section into bench/RESULTS.md
    .venv/bin/python bench/bench_reports.py --repeat 1 --no-write-results

The section "## Report runs" of bench/RESULTS.md is replaced; other sections are kept.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "RESULTS.md"
SECTION = "## Report runs"


def crmlib_cmd() -> list[str]:
    exe = Path(sys.executable).with_name("crmlib")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "crmlib.cli"]


def warehouse(scale: float, seed: int) -> Path:
    path = HERE / "out" / f"reports-scale{scale:g}-seed{seed}.duckdb"
    if not path.exists():
        from crmlib.sources.demo import write_demo

        path.parent.mkdir(parents=True, exist_ok=True)
        write_demo(path, scale=scale, seed=seed, progress=False)
    return path


def report_run(source: Path, jobs: int | None, outputs: Path) -> dict:
    cmd = [*crmlib_cmd(), "report", "run", "--all", "--source", str(source)]
    if jobs is not None:
        cmd += ["--jobs", str(jobs)]
    env = {**os.environ, "CRMLIB_OUTPUTS": str(outputs)}
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr}")
    folder = max((p for p in outputs.iterdir() if p.is_dir() and p.name[0].isdigit()), key=lambda p: p.stat().st_mtime)
    meta = json.loads((folder / "run.json").read_text())
    phases = {}
    for r in meta["reports"]:
        nb = folder / f"{r['name']}.ipynb"
        if nb.exists():
            pm = json.loads(nb.read_text())["metadata"]["papermill"]
            phases[r["name"]] = pm["duration"]  # kernel start + cells + kernel stop
    return {"wall": wall, "run": meta["duration"], "jobs": meta["jobs"],
            "reports": {r["name"]: r["duration"] for r in meta["reports"]}, "papermill": phases}


def script_for(definition) -> str:
    """The definition's notebook as a plain script: parameters injected by papermill, code cells in order."""
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook

    nb = load_notebook_node(str(definition.notebook))
    nb = parameterize_notebook(nb, definition.execution_parameters())
    return "\n\n".join(c.source for c in nb.cells if c.cell_type == "code")


def script_run(code: str, cwd: Path, source: Path, tmp: Path) -> float:
    path = tmp / "report_as_script.py"
    path.write_text(code, encoding="utf-8")
    start = time.perf_counter()
    subprocess.run([sys.executable, str(path)], check=True, capture_output=True, cwd=cwd,
                   env={**os.environ, "CRMLIB_SOURCE": str(source)})
    return time.perf_counter() - start


def machine() -> str:
    cpu = "unknown CPU"
    with contextlib.suppress(OSError, StopIteration):
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    import nbconvert
    import papermill
    import polars

    return (f"{os.cpu_count()} cores ({cpu}); Python {platform.python_version()}, papermill {papermill.__version__}, "
            f"nbconvert {nbconvert.__version__}, polars {polars.__version__}")


def walls(runs: list[dict]) -> str:
    return ", ".join(f"{r['wall']:.2f}" for r in runs)


def render(command: str, scale: float, repeat: int, serial: list[dict], parallel: list[dict],
           scripts: dict[str, list[float]], load: tuple[float, float]) -> str:
    s_wall = statistics.median(r["wall"] for r in serial)
    p_wall = statistics.median(r["wall"] for r in parallel)
    names = list(serial[0]["reports"])
    n = len(names)
    per_report = {k: statistics.median(r["reports"][k] for r in serial) for k in names}
    papermill_s = {k: statistics.median(r["papermill"][k] for r in serial if k in r["papermill"]) for k in names}
    script_s = {k: statistics.median(v) for k, v in scripts.items()}
    fixed = statistics.median(r["wall"] - sum(r["reports"].values()) for r in serial)
    lines = [
        SECTION, "",
        f"Command: `{command}`  ",
        f"Machine: {machine()}; load average {load[0]:.2f} before, {load[1]:.2f} after (other work on the machine "
        "shows up as noise)  ",
        f"Demo warehouse at scale {scale:g}; `crmlib report run --all` runs the {n} definitions in parameters/ "
        f"({', '.join(names)}). Median of {repeat} alternating serial/parallel pair(s); wall time of the whole "
        "command (new process, imports, definitions, lock, data fingerprint, reports, run.json, index).", "",
        "| command | jobs | wall s (median) | runs (s) |",
        "|---|---:|---:|---|",
        f"| `crmlib report run --all --jobs 1` | 1 | {s_wall:.2f} | {walls(serial)} |",
        f"| `crmlib report run --all` | {parallel[0]['jobs']} | {p_wall:.2f} | {walls(parallel)} |",
        "",
        f"Speed-up serial / parallel: **{s_wall / p_wall:.2f}x** (goal >= 1.6x on 2 cores; the ideal with "
        f"{n} reports on {parallel[0]['jobs']} cores is {min(n, parallel[0]['jobs'])}x less the fixed part).", "",
        "Per report, serial run (median): the report's duration in run.json (worker start to files written), the "
        "papermill part of it (kernel start, cells, kernel stop) and the same crmlib calls as a plain "
        "`python` script (new process, imports, calls; nothing rendered or written):", "",
        "| report | report s | papermill s | rest s (worker start, .ipynb, HTML) | plain script s | overhead s | "
        "overhead % |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for k in names:
        over = per_report[k] - script_s[k]
        pm = papermill_s.get(k, float("nan"))
        lines.append(f"| {k} | {per_report[k]:.2f} | {pm:.2f} | {per_report[k] - pm:.2f} | {script_s[k]:.2f} | "
                     f"{over:.2f} | {100 * over / script_s[k]:.0f}% |")
    mean_over = statistics.mean(per_report[k] - script_s[k] for k in names)
    lines += [
        "",
        f"Per-report overhead of a report run over the plain script: {mean_over:.2f} s on average; plus "
        f"{fixed:.2f} s per command, once for all reports (CLI start, definitions, lock, run.json, index; "
        "the data fingerprint runs in a thread alongside the reports).",
    ]
    return "\n".join(lines) + "\n"


def write_section(text: str) -> None:
    old = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n\n"
    pattern = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.M | re.S)
    new = pattern.sub(lambda _m: text + "\n", old) if pattern.search(old) else old.rstrip("\n") + "\n\n" + text
    RESULTS.write_text(new)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--repeat", type=int, default=3, help="serial/parallel pairs (median reported)")
    ap.add_argument("--no-write-results", action="store_true")
    args = ap.parse_args()
    os.chdir(ROOT)
    from crmlib.reports import load_definitions

    source = warehouse(args.scale, args.seed)
    defs = load_definitions(ROOT / "parameters")
    load_before = os.getloadavg()[0]
    serial, parallel = [], []
    scripts: dict[str, list[float]] = {name: [] for name in defs}
    with tempfile.TemporaryDirectory(prefix="bench_reports_") as tmp:
        tmp = Path(tmp)
        report_run(source, None, tmp / "warm-up")  # page cache, byte-code caches, kernel spec lookup
        for i in range(args.repeat):
            order = [(1, serial), (None, parallel)] if i % 2 == 0 else [(None, parallel), (1, serial)]
            for jobs, into in order:
                res = report_run(source, jobs, tmp / f"out-{i}-{jobs or 'default'}")
                into.append(res)
                print(f"pair {i + 1}: jobs {res['jobs']}: {res['wall']:.2f} s", file=sys.stderr)
            for name, d in defs.items():
                scripts[name].append(script_run(script_for(d), d.notebook.parent, source, tmp))
    command = " ".join([".venv/bin/python", "bench/bench_reports.py", *sys.argv[1:]])
    text = render(command, args.scale, args.repeat, serial, parallel, scripts, (load_before, os.getloadavg()[0]))
    print(text)
    if not args.no_write_results:
        write_section(text)


if __name__ == "__main__":
    main()
