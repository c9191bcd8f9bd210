"""Report runs: definitions, parallel papermill workers, run records, failure isolation, lock, interrupts,
``--due`` scheduling, secrets, and the HTML/PDF a stakeholder opens (headless Chromium, network blocked).

Small throw-away notebooks (``tiny``) live in a temporary CRMLIB_HOME; the real overview notebook is run
against the session's demo warehouse (scale 0.05).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from crmlib import reports
from crmlib.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]
OVERVIEW = REPO / "notebooks" / "overview.ipynb"
TINY_PARAMS = 'lang: str = "en"  # label language\ninteractive: bool = True\nmarker: str = ""\nfail: bool = False'


@pytest.fixture
def outputs(tmp_path, monkeypatch):
    out = tmp_path / "outputs"
    monkeypatch.setenv("CRMLIB_OUTPUTS", str(out))
    return out


def tiny(home: Path, name: str, *cells: str, title: str = "Tiny report", params: str = TINY_PARAMS) -> Path:
    """Write notebooks/<name>.ipynb: a title, a parameters cell and ``cells`` (default: prints, fails if asked)."""
    cells = cells or ("print('hello from', lang)", "if fail:\n    raise ValueError('planted failure in ' + lang)",
                      "print('after the failure point')")
    nb = new_notebook(cells=[
        new_markdown_cell(f"# {title}\n\nA report for the tests."),
        new_code_cell(params, metadata={"tags": ["parameters"]}),
        *[new_code_cell(c) for c in cells],
    ])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = home / "notebooks" / f"{name}.ipynb"
    nbformat.write(nb, path)
    return path


def definition(home: Path, file: str, text: str) -> Path:
    path = home / "parameters" / file
    path.write_text(text, encoding="utf-8")
    return path


def cli(*args: str, env: dict | None = None, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "crmlib.cli", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, **kw)


def run_folders(outputs: Path) -> list[str]:
    return sorted(p.name for p in outputs.iterdir() if p.is_dir() and p.name[0].isdigit())


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# ---------------------------------------------------------------------------------------------------
# The overview report (the repository's own definitions)
# ---------------------------------------------------------------------------------------------------
def test_overview_report_is_self_contained_html(demo_warehouse, outputs):
    import crmlib

    result = reports.run_reports(["overview", "overview_zh"], source=str(demo_warehouse))
    assert result.status == "ok", [r.error for r in result.reports]
    folder = outputs / result.run_id
    assert sorted(p.name for p in folder.iterdir()) == [
        "overview.html", "overview.ipynb", "overview_zh.html", "overview_zh.ipynb", "run.json"
    ]
    html = (folder / "overview.html").read_text(encoding="utf-8")
    assert "Records per month" in html  # the chart's title
    assert "crmlib.notebook.start" not in html  # input cells are hidden
    assert 'src="https://cdn.plot.ly' not in html and html.count("Plotly.newPlot") >= 1  # plotly embedded, offline
    assert not re.findall(r'<script[^>]+src="https?:', html)  # no script from a CDN (require.js, MathJax)
    assert "<title>Data overview · 数据概览</title>" in html
    zh = (folder / "overview_zh.html").read_text(encoding="utf-8")
    assert "数据表" in zh  # great_tables header
    assert json.dumps("每月记录数")[1:-1] in zh or "每月记录数" in zh  # chart title (plotly JSON escapes it)
    meta = json.loads((folder / "run.json").read_text())
    with crmlib.open(demo_warehouse) as crm:
        assert meta["data_fingerprint"] == crm.fingerprint()
        rows = crm.row_counts()
    assert meta["status"] == "ok" and meta["crmlib_version"] == crmlib.__version__
    assert meta["source"] == str(demo_warehouse) and meta["source_kind"] == "duckdb"
    assert [r["name"] for r in meta["reports"]] == ["overview", "overview_zh"]
    first = meta["reports"][0]
    assert first["parameters"] == {"lang": "en", "interactive": False} and first["title"] == "Data overview · 数据概览"
    assert first["status"] == "ok" and first["duration"] > 0 and first["started"] <= first["ended"]
    assert first["definition"] == "parameters/overview.yaml" and first["notebook_path"] == "notebooks/overview.ipynb"
    assert {"git_commit", "started", "ended", "duration", "jobs"} <= set(meta)
    # the overview table shows the true row count of opportunities
    assert f"{rows['opportunities']:,}" in html
    index = (outputs / "index.html").read_text()
    assert result.run_id in index and "overview_zh.html" in index
    assert (outputs / "latest" / "overview.html").read_bytes() == (folder / "overview.html").read_bytes()


def test_missing_source_fails_before_writing_anything(demo_warehouse, outputs):
    from crmlib.errors import SourceError

    with pytest.raises(SourceError, match="does not exist"):
        reports.run_reports(["overview"], source=str(demo_warehouse.parent / "missing.duckdb"))
    assert not outputs.exists() or list(outputs.iterdir()) == []


def test_unknown_report_name_is_a_clear_error(outputs):
    with pytest.raises(ConfigError, match=re.escape("No run definition named ['overveiw']")) as exc:
        reports.run_reports(["overveiw"])
    assert 'Did you mean "overview"' in str(exc.value)


def test_repository_definitions_are_valid():
    defs = reports.load_definitions(REPO / "parameters")
    assert {"overview", "overview_zh"} <= set(defs)
    for d in defs.values():
        assert d.notebook.is_file() and "pdf" not in d.formats  # `make report` must not need Chromium


# ---------------------------------------------------------------------------------------------------
# Definitions: validated at load, every problem naming its file
# ---------------------------------------------------------------------------------------------------
BAD_DEFINITIONS = [
    ("notebook: notebooks/missing.ipynb\n",
     r"notebook notebooks/missing\.ipynb does not exist.*Notebooks: notebooks/tiny\.ipynb"),
    ("notebook: notebooks/tiny.ipynb\nparameters: {region: north}\n",
     r"parameter 'region' is not declared by notebook notebooks/tiny\.ipynb\. Declared: fail, interactive, lang, marker"),
    ("notebook: notebooks/tiny.ipynb\nparameters: {langg: zh}\n", r"parameter 'langg' is not declared.*Did you mean \"lang\""),
    ("notebook: notebooks/tiny.ipynb\nschedule: '61 * * * *'\n", r"schedule '61 \* \* \* \*' is not a valid cron expression"),
    ("notebook: notebooks/tiny.ipynb\nschedule: '0 6 * *'\n", r"schedule '0 6 \* \*' has 4 fields; a cron expression has five"),
    ("notebook: notebooks/tiny.ipynb\nschedule: '0 0 6 * * *'\n", r"schedule .* has 6 fields"),
    ("notebook: notebooks/tiny.ipynb\nschedule: '@fortnightly'\n", r"schedule '@fortnightly' is not a valid cron"),
    ("notebook: notebooks/tiny.ipynb\nschedule: '0 6 30 2 *'\n", r"schedule '0 6 30 2 \*' never fires"),
    ("notebook: notebooks/tiny.ipynb\nschedule: 600\n", r"schedule 600 is not a cron expression"),
    ("notebook: notebooks/tiny.ipynb\nshedule: '0 6 * * *'\n", r"unknown key 'shedule'\. Did you mean \"schedule\"\?"),
    ("notebook: notebooks/tiny.ipynb\nformats: [html, docx]\n", r"format 'docx' is not supported\. Supported: ipynb, html, pdf"),
    ("notebook: notebooks/tiny.ipynb\nformats: []\n", r"formats must be a non-empty list"),
    ("notebook: notebooks/tiny.ipynb\nparameters: {marker: 'postgresql://u:pw@db/crm'}\n",
     r"parameter 'marker' holds a secret.*CRMLIB_DB_URL"),
    ("notebook: notebooks/tiny.ipynb\nparameters: {lang: 5}\n", r"parameter 'lang' is int 5 but notebook .* declares it str"),
    ("notebook: notebooks/tiny.ipynb\nparameters: {fail: 'yes'}\n", r"parameter 'fail' is str 'yes' .* declares it bool"),
    ("notebook: notebooks/tiny.ipynb\nparameters: {interactive: true}\n", r"parameter 'interactive' is set by the report runner"),
    ("notebook: notebooks/tiny.ipynb\nlang: fr\n", r"lang 'fr' is not supported; use one of: en, zh"),
    ("notebook: notebooks/tiny.ipynb\nlang: zh\nparameters: {lang: en}\n", r"lang 'zh' contradicts parameters\.lang 'en'"),
    ("notebook: notebooks/tiny.ipynb\nname: ../evil\n", r"name '\.\./evil' must be letters, digits"),
    ("notebook: notebooks/tiny.ipynb\nschedule: * * * * *\n", r"not valid YAML \(line 2.*Quote cron expressions"),
    ("notbook: notebooks/tiny.ipynb\nformats: [html]\n", r"no 'notebook' key.*did you mean \"notebook\""),
    ("notebook: notebooks/tiny.py\n", r"notebook notebooks/tiny\.py is not a \.ipynb file"),
]


@pytest.mark.parametrize(("text", "message"), BAD_DEFINITIONS, ids=[m[:40] for _, m in BAD_DEFINITIONS])
def test_bad_definition_is_rejected_with_a_message_naming_the_file(crmlib_home, text, message):
    tiny(crmlib_home, "tiny")
    definition(crmlib_home, "ok.yaml", "notebook: notebooks/tiny.ipynb\n")
    definition(crmlib_home, "bad.yaml", text)
    with pytest.raises(ConfigError) as exc:
        reports.load_definitions()
    text = str(exc.value)
    assert re.search(r"parameters/bad\.yaml: " + message, text), text
    assert "ok.yaml" not in text  # the good file is not blamed


def test_every_problem_of_every_file_at_once(crmlib_home):
    tiny(crmlib_home, "tiny")
    definition(crmlib_home, "a.yaml", "notebook: notebooks/tiny.ipynb\nschedule: 'every day'\nformats: [docx]\n")
    definition(crmlib_home, "b.yaml", "notebook: notebooks/nope.ipynb\n")
    definition(crmlib_home, "c.yaml", "name: a\nnotebook: notebooks/tiny.ipynb\n")  # same name as a.yaml's stem
    definition(crmlib_home, "d.yaml", "name: a\nnotebook: notebooks/tiny.ipynb\n")
    with pytest.raises(ConfigError) as exc:
        reports.load_definitions()
    text = str(exc.value)
    assert text.startswith("4 problems in the run definitions")
    for needle in ("parameters/a.yaml: schedule 'every day'", "parameters/a.yaml: format 'docx'",
                   "parameters/b.yaml: notebook notebooks/nope.ipynb does not exist",
                   "parameters/d.yaml: name 'a' is already used by parameters/c.yaml"):
        assert needle in text, text


def test_definition_keys_and_other_yaml_files(crmlib_home):
    tiny(crmlib_home, "tiny", title="Weekly sales")
    definition(crmlib_home, "weekly.yaml",
               "name: weekly_zh\nnotebook: notebooks/tiny.ipynb\nlang: zh\nschedule: '0 6 * * 1'\n"
               "formats: [html, pdf]\nparameters: {marker: m}\n")
    definition(crmlib_home, "plain.yml", "notebook: notebooks/tiny.ipynb\n")
    definition(crmlib_home, "alerts.yaml", "rules:\n  - kpi: win_rate\n    below: 0.2\n")  # not a run definition
    definition(crmlib_home, "calendar.yaml", "- 2026-01-01\n- 2026-10-01\n")
    defs = reports.load_definitions()
    assert sorted(defs) == ["plain", "weekly_zh"]
    w = defs["weekly_zh"]
    assert w.parameters == {"marker": "m", "lang": "zh"} and w.formats == ("html", "pdf")
    assert w.schedule == "0 6 * * 1" and w.title == "Weekly sales"
    assert w.execution_parameters() == {"marker": "m", "lang": "zh", "interactive": False}
    assert defs["plain"].formats == ("ipynb", "html") and defs["plain"].schedule is None


def test_readme_scheduling_example_is_a_valid_definition(crmlib_home):
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```yaml\n(# parameters/overview_weekly\.yaml\n.*?)```", readme, re.S).group(1)
    shutil.copy(OVERVIEW, crmlib_home / "notebooks" / "overview.ipynb")
    definition(crmlib_home, "overview_weekly.yaml", block)
    d = reports.load_definitions()["overview_weekly"]
    assert d.schedule == "0 7 * * 1" and d.formats == ("ipynb", "html", "pdf") and d.parameters == {"lang": "zh"}


def test_cli_rejects_names_with_all_and_bad_jobs(crmlib_home):
    tiny(crmlib_home, "tiny")
    definition(crmlib_home, "tiny.yaml", "notebook: notebooks/tiny.ipynb\n")
    env = {"CRMLIB_HOME": str(crmlib_home)}
    r = cli("report", "run", "tiny", "--all", env=env)
    assert r.returncode == 1 and "Give report names or --all, not both" in r.stderr
    r = cli("report", "run", "--jobs", "0", env=env)
    assert r.returncode == 2 and "--jobs" in r.stderr
    assert not (crmlib_home / "outputs").exists()


# ---------------------------------------------------------------------------------------------------
# Running: parallel workers, failure isolation, records
# ---------------------------------------------------------------------------------------------------
def test_reports_run_in_parallel_processes(crmlib_home, demo_warehouse):
    for name in ("a", "b", "c"):
        tiny(crmlib_home, name)
        definition(crmlib_home, f"{name}.yaml", f"notebook: notebooks/{name}.ipynb\nformats: [ipynb]\n")
    events: list[dict] = []
    result = reports.run_reports(source=str(demo_warehouse), jobs=2, on_event=events.append)
    assert result.status == "ok" and [r.name for r in result.reports] == ["a", "b", "c"]
    order = [(e["event"], e.get("name")) for e in events if e["event"] in ("spawn", "done")]
    assert order[:2] == [("spawn", "a"), ("spawn", "b")]  # two at a time
    assert order.index(("spawn", "c")) > min(order.index(("done", "a")), order.index(("done", "b")))
    cells = [e for e in events if e["event"] == "cell" and e["name"] == "a"]
    assert [c["done"] for c in cells] == list(range(1, cells[0]["total"] + 1))  # per-cell progress
    assert sorted(p.name for p in result.folder.iterdir()) == ["a.ipynb", "b.ipynb", "c.ipynb", "run.json"]
    meta = json.loads((result.folder / "run.json").read_text())
    assert meta["jobs"] == 2 and [r["files"] for r in meta["reports"]] == [["a.ipynb"], ["b.ipynb"], ["c.ipynb"]]


def test_failing_report_is_isolated_kept_and_fails_the_command(crmlib_home, demo_warehouse):
    tiny(crmlib_home, "good")
    tiny(crmlib_home, "broken")
    definition(crmlib_home, "good.yaml", "notebook: notebooks/good.ipynb\n")
    definition(crmlib_home, "broken.yaml", "notebook: notebooks/broken.ipynb\nparameters: {fail: true, lang: zh}\n")
    r = cli("report", "run", "--source", str(demo_warehouse), env={"CRMLIB_HOME": str(crmlib_home)})
    assert r.returncode == 1, r.stderr
    # plain progress lines (not a terminal), then the summary and the index path last
    assert re.search(r"\[\d/2\] good: ok in [\d.]+ s \(good\.html\)", r.stderr), r.stderr
    assert re.search(r"\[\d/2\] broken: failed in [\d.]+ s - ValueError: planted failure in zh", r.stderr)
    assert r.stderr.strip().splitlines()[-1].endswith(str(crmlib_home / "outputs" / "index.html"))
    outputs = crmlib_home / "outputs"
    (run_id,) = run_folders(outputs)
    folder = outputs / run_id
    assert sorted(p.name for p in folder.iterdir()) == [
        "broken.html", "broken.ipynb", "good.html", "good.ipynb", "run.json"
    ]
    meta = json.loads((folder / "run.json").read_text())
    status = {x["name"]: x for x in meta["reports"]}
    assert meta["status"] == "failed" and status["good"]["status"] == "ok"
    assert status["broken"]["status"] == "failed" and "ValueError: planted failure in zh" in status["broken"]["error"]
    # the executed notebook keeps the failing cell with its error; later cells did not run
    nb = nbformat.read(folder / "broken.ipynb", as_version=4)
    failing = [c for c in nb.cells if c.cell_type == "code" and c.metadata.papermill.get("exception")]
    assert len(failing) == 1 and "raise ValueError" in failing[0].source
    assert failing[0].outputs[0]["output_type"] == "error" and failing[0].outputs[0]["ename"] == "ValueError"
    # its HTML shows the error and the failing cell's code, and no other code
    html = (folder / "broken.html").read_text(encoding="utf-8")
    assert "planted failure in zh" in html and '<span class="k">raise</span>' in html
    assert "after the failure point" not in html and "hello from" in html
    assert "hello from" in (folder / "good.html").read_text(encoding="utf-8")
    index = (outputs / "index.html").read_text(encoding="utf-8")
    assert "status failed" in index and "planted failure in zh" in index
    assert sorted(p.name for p in (outputs / "latest").iterdir()) == ["good.html", "good.ipynb"]


def test_a_failed_report_never_replaces_a_good_one(crmlib_home, demo_warehouse, monkeypatch):
    tiny(crmlib_home, "flaky")
    definition(crmlib_home, "flaky.yaml", "notebook: notebooks/flaky.ipynb\nparameters: {fail: false}\n")
    good = reports.run_reports(source=str(demo_warehouse))
    assert good.status == "ok"
    outputs = crmlib_home / "outputs"
    latest_before = snapshot(outputs / "latest")
    assert set(latest_before) == {"flaky.html", "flaky.ipynb"}

    good_run = snapshot(good.folder)
    definition(crmlib_home, "flaky.yaml", "notebook: notebooks/flaky.ipynb\nparameters: {fail: true}\n")
    bad = reports.run_reports(source=str(demo_warehouse))
    assert bad.status == "failed" and bad.run_id != good.run_id
    assert snapshot(outputs / "latest") == latest_before  # still the good version
    assert snapshot(good.folder) == good_run
    state = reports.read_state(outputs)["reports"]["flaky"]
    assert state["last_status"] == "failed" and state["last_success_run_id"] == good.run_id
    runs = reports.list_runs(outputs)
    assert [r["run_id"] for r in runs] == [bad.run_id, good.run_id]  # newest first
    every_run = (outputs / "index.html").read_text(encoding="utf-8").split("<h2>Every run</h2>")[1]
    assert every_run.index(bad.run_id) < every_run.index(good.run_id)
    # `crmlib report list` prints the same, newest first
    r = cli("report", "list", env={"CRMLIB_HOME": str(crmlib_home)})
    assert r.returncode == 0, r.stderr
    assert r.stdout.index(bad.run_id) < r.stdout.index(good.run_id)
    assert "flaky: failed" in r.stdout and "flaky: ok" in r.stdout and "index.html" in r.stdout


def test_a_report_whose_worker_dies_is_recorded_as_failed(crmlib_home, demo_warehouse):
    tiny(crmlib_home, "good")
    tiny(crmlib_home, "killer", "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)  # the kernel kills its worker")
    definition(crmlib_home, "good.yaml", "notebook: notebooks/good.ipynb\n")
    definition(crmlib_home, "killer.yaml", "notebook: notebooks/killer.ipynb\n")
    result = reports.run_reports(source=str(demo_warehouse))
    status = {r.name: r for r in result.reports}
    assert result.status == "failed" and status["good"].status == "ok"
    assert status["killer"].status == "failed" and status["killer"].files == []
    assert "worker process exited with code -9 before finishing" in status["killer"].error
    assert sorted(p.name for p in result.folder.iterdir()) == ["good.html", "good.ipynb", "run.json"]


# ---------------------------------------------------------------------------------------------------
# Lock
# ---------------------------------------------------------------------------------------------------
HOLD_LOCK = """
import sys
from pathlib import Path
from crmlib.reports import OutputsLock
lock = OutputsLock(Path(sys.argv[1])).acquire()
print("locked", flush=True)
sys.stdin.read()  # hold it until the test closes stdin
"""


def test_a_second_run_stops_with_a_clear_message_while_one_holds_the_lock(crmlib_home, demo_warehouse):
    tiny(crmlib_home, "tiny")
    definition(crmlib_home, "tiny.yaml", "notebook: notebooks/tiny.ipynb\n")
    outputs = crmlib_home / "outputs"
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(outputs)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        r = cli("report", "run", "--source", str(demo_warehouse), env={"CRMLIB_HOME": str(crmlib_home)})
        assert r.returncode == 75, r.stderr
        assert f"Another report run (pid {holder.pid}, started " in r.stderr and "without writing anything" in r.stderr
        assert sorted(p.name for p in outputs.iterdir()) == [".lock"]
        with pytest.raises(reports.LockedError):
            reports.run_reports(source=str(demo_warehouse))
    finally:
        holder.stdin.close()
        holder.wait()


def test_a_stale_lock_of_a_dead_process_is_taken_over(crmlib_home, demo_warehouse):
    tiny(crmlib_home, "tiny")
    definition(crmlib_home, "tiny.yaml", "notebook: notebooks/tiny.ipynb\n")
    outputs = crmlib_home / "outputs"
    outputs.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (outputs / ".lock").write_text(json.dumps({"pid": dead.pid, "started": "2026-01-01T00:00:00+00:00"}))
    (outputs / ".tmp-20260101-000000-abcd").mkdir()  # the killed run's unfinished folder
    r = cli("report", "run", "--source", str(demo_warehouse), env={"CRMLIB_HOME": str(crmlib_home)})
    assert r.returncode == 0, r.stderr
    assert f"took over a stale lock {outputs / '.lock'} left by pid {dead.pid} (no longer running" in r.stderr
    assert "removed .tmp-20260101-000000-abcd" in r.stderr
    assert not (outputs / ".lock").exists() and not list(outputs.glob(".tmp-*"))
    assert len(run_folders(outputs)) == 1


# ---------------------------------------------------------------------------------------------------
# Interrupts: Ctrl-C (SIGINT to the process group) and SIGTERM (to the runner)
# ---------------------------------------------------------------------------------------------------
def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


@pytest.mark.parametrize(("signum", "to_group", "code"), [(signal.SIGTERM, False, 143), (signal.SIGINT, True, 130)],
                         ids=["SIGTERM", "Ctrl-C"])
def test_an_interrupted_run_leaves_nothing_half_written(crmlib_home, demo_warehouse, tmp_path, signum, to_group, code):
    tiny(crmlib_home, "good")
    marker = tmp_path / "kernel.pid"
    tiny(crmlib_home, "slow", "import os, pathlib, time\npathlib.Path(marker).write_text(str(os.getpid()))\n"
                              "while True:\n    time.sleep(0.05)")
    definition(crmlib_home, "good.yaml", "notebook: notebooks/good.ipynb\n")
    definition(crmlib_home, "slow.yaml", f"notebook: notebooks/slow.ipynb\nparameters: {{marker: '{marker}'}}\n")
    first = reports.run_reports(["good"], source=str(demo_warehouse))
    outputs = crmlib_home / "outputs"
    before = snapshot(outputs)

    proc = subprocess.Popen([sys.executable, "-m", "crmlib.cli", "report", "run", "good", "slow", "--source",
                             str(demo_warehouse)], env={**os.environ, "CRMLIB_HOME": str(crmlib_home)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    while proc.poll() is None and not (marker.exists() and marker.read_text()):
        time.sleep(0.05)
    assert proc.poll() is None, proc.communicate()
    kernel = int(marker.read_text())
    assert list(outputs.glob(".tmp-*")) and (outputs / ".lock").exists()  # the run is under way
    if to_group:
        os.killpg(proc.pid, signum)
    else:
        proc.send_signal(signum)
    _, err = proc.communicate()
    assert proc.returncode == code, err
    assert f"interrupted by {signal.Signals(signum).name}" in err and "removed the unfinished run" in err
    assert snapshot(outputs) == before  # no new run, no temporary folder, no lock; latest/ and index unchanged
    assert run_folders(outputs) == [first.run_id]
    assert not _alive(kernel)  # the slow report's kernel was stopped with it


# ---------------------------------------------------------------------------------------------------
# --due: schedules against a fake clock
# ---------------------------------------------------------------------------------------------------
def _at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).astimezone()


def test_is_due_follows_the_cron_schedule_since_the_last_success(crmlib_home):
    tiny(crmlib_home, "tiny")
    definition(crmlib_home, "weekdays.yaml", "notebook: notebooks/tiny.ipynb\nschedule: '0 6 * * 1-5'\n")
    definition(crmlib_home, "manual.yaml", "notebook: notebooks/tiny.ipynb\n")
    defs = reports.load_definitions()
    wd = defs["weekdays"]
    friday = _at("2026-03-06T06:30:00")
    assert reports.is_due(wd, None, friday)  # never ran
    assert not reports.is_due(wd, friday, _at("2026-03-07T12:00:00"))  # Saturday: nothing fired
    assert not reports.is_due(wd, friday, _at("2026-03-09T05:59:59"))
    assert reports.is_due(wd, friday, _at("2026-03-09T06:00:00"))  # Monday 06:00
    assert reports.next_run("0 6 * * 1-5", friday) == _at("2026-03-09T06:00:00")
    assert not reports.is_due(defs["manual"], None, friday)  # unscheduled: never due


def test_due_runs_only_what_fired_since_its_last_success(crmlib_home, demo_warehouse):
    for name in ("daily", "hourly", "manual"):
        tiny(crmlib_home, name)
    definition(crmlib_home, "daily.yaml", "notebook: notebooks/daily.ipynb\nschedule: '0 6 * * *'\nformats: [ipynb]\n")
    definition(crmlib_home, "hourly.yaml", "notebook: notebooks/hourly.ipynb\nschedule: '15 * * * *'\n"
                                           "parameters: {fail: true}\nformats: [ipynb]\n")
    definition(crmlib_home, "manual.yaml", "notebook: notebooks/manual.ipynb\nformats: [ipynb]\n")
    src = str(demo_warehouse)

    def due_at(now: str) -> list[str]:
        result = reports.run_reports(source=src, due=True, now=_at(now))
        return [r.name for r in result.reports]

    assert due_at("2026-03-02T07:00:00") == ["daily", "hourly"]  # never ran; unscheduled "manual" is not due
    assert due_at("2026-03-02T07:10:00") == ["hourly"]  # it failed: still due; daily succeeded at 07:00
    definition(crmlib_home, "hourly.yaml", "notebook: notebooks/hourly.ipynb\nschedule: '15 * * * *'\n"
                                           "formats: [ipynb]\n")  # fixed
    assert due_at("2026-03-02T07:12:00") == ["hourly"]
    nothing = reports.run_reports(source=src, due=True, now=_at("2026-03-02T07:14:59"))
    assert nothing.status == "nothing due" and nothing.run_id is None and nothing.reports == []
    assert due_at("2026-03-02T07:15:00") == ["hourly"]
    assert due_at("2026-03-03T06:00:00") == ["daily", "hourly"]
    state = reports.read_state(crmlib_home / "outputs")["reports"]
    assert state["daily"]["last_success"] == _at("2026-03-03T06:00:00").isoformat(timespec="seconds")
    assert "manual" not in state
    # names and --due together: only those names, and only if due
    assert reports.run_reports(["daily"], source=src, due=True, now=_at("2026-03-03T07:00:00")).run_id is None


def test_due_from_the_command_line_with_nothing_scheduled(crmlib_home):
    tiny(crmlib_home, "tiny")
    definition(crmlib_home, "tiny.yaml", "notebook: notebooks/tiny.ipynb\n")
    r = cli("report", "run", "--due", env={"CRMLIB_HOME": str(crmlib_home)})
    assert r.returncode == 0 and "no report is due" in r.stderr and "nothing due" in r.stderr
    assert not run_folders(crmlib_home / "outputs")


# ---------------------------------------------------------------------------------------------------
# Secrets: a password given by environment never reaches a file or a log
# ---------------------------------------------------------------------------------------------------
PASSWORD = "S3cretPW"


@pytest.mark.postgres
def test_database_password_never_appears_in_outputs_or_logs(postgres_url, demo_warehouse, crmlib_home):
    import crmlib
    from crmlib.sources.export import export

    url = postgres_url.replace("postgresql://crm@", f"postgresql://crm:{PASSWORD}@") + "?schema=reports_secret"
    with crmlib.open(demo_warehouse) as crm:
        export(crm, url, if_exists="replace")
        expected = crm.fingerprint()
    with crmlib.open(url) as pg:  # trust authentication ignores the password: the URL works
        assert pg.fingerprint() == expected
    shutil.copy(OVERVIEW, crmlib_home / "notebooks" / "overview.ipynb")
    definition(crmlib_home, "overview.yaml", "notebook: notebooks/overview.ipynb\n")
    # a careless notebook that prints the environment and raises with the URL in its message
    tiny(crmlib_home, "leaky", "import os\nprint(os.environ['CRMLIB_DB_URL'], os.environ['CRMLIB_SOURCE'])",
         "raise RuntimeError('cannot connect to ' + os.environ['CRMLIB_DB_URL'])")
    definition(crmlib_home, "leaky.yaml", "notebook: notebooks/leaky.ipynb\n")

    r = cli("report", "run", "--source", "db", env={"CRMLIB_HOME": str(crmlib_home), "CRMLIB_DB_URL": url})
    assert r.returncode == 1, r.stderr  # the leaky report fails; overview is fine
    outputs = crmlib_home / "outputs"
    meta = json.loads(next(outputs.glob("*/run.json")).read_text())
    assert {x["name"]: x["status"] for x in meta["reports"]} == {"leaky": "failed", "overview": "ok"}
    assert meta["source_kind"] == "postgres" and meta["source"].startswith("postgresql://crm:***@")
    assert meta["data_fingerprint"] == expected
    assert "cannot connect to postgresql://crm:***@" in meta["reports"][0]["error"]
    files = [p for p in outputs.rglob("*") if p.is_file()]
    assert len(files) >= 8  # run.json, index.html, .state.json, 2 notebooks, 2 HTML, latest/...
    for path in files:
        assert PASSWORD.encode() not in path.read_bytes(), f"password written into {path}"
    assert PASSWORD not in r.stdout + r.stderr
    leaky = (next(outputs.glob("*/leaky.ipynb"))).read_text(encoding="utf-8")
    assert "postgresql://crm:***@" in leaky  # the printed URL is there, masked


def test_secret_values_are_masked_in_every_form(monkeypatch):
    from crmlib.reports.secrets import scrub, secret_values

    monkeypatch.setenv("CRMLIB_DB_URL", "postgresql://u:p%40ss\"w0rd@h:5432/db")
    monkeypatch.delenv("CRMLIB_SOURCE", raising=False)
    monkeypatch.delenv("PGPASSWORD", raising=False)
    secrets = secret_values()
    assert secrets == ('p%40ss"w0rd', 'p@ss"w0rd')
    monkeypatch.setenv("PGPASSWORD", "libpq-secret")
    assert secret_values()[-1] == "libpq-secret"
    text = 'raw p@ss"w0rd json "p@ss\\"w0rd" html p@ss&quot;w0rd url postgresql://x:other@h/db'
    assert scrub(text, secrets) == 'raw *** json "***" html *** url postgresql://x:***@h/db'


# ---------------------------------------------------------------------------------------------------
# What a stakeholder opens: HTML in a browser with no network, and the PDF
# ---------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def overview_with_pdf(tmp_path_factory, demo_warehouse):
    """The overview report with formats html + pdf (no ipynb), in its own CRMLIB_HOME."""
    from browser import require_chromium

    require_chromium()
    home = tmp_path_factory.mktemp("pdf-home")
    for sub in ("parameters", "notebooks"):
        (home / sub).mkdir()
    shutil.copy(OVERVIEW, home / "notebooks" / "overview.ipynb")
    (home / "parameters" / "overview.yaml").write_text(
        "notebook: notebooks/overview.ipynb\nformats: [html, pdf]\n", encoding="utf-8")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CRMLIB_HOME", str(home))
        for var in ("CRMLIB_OUTPUTS", "CRMLIB_SOURCE", "CRMLIB_DB_URL"):
            mp.delenv(var, raising=False)
        result = reports.run_reports(source=str(demo_warehouse))
    assert result.status == "ok", [r.error for r in result.reports]
    return result


@pytest.mark.browser
def test_html_report_draws_every_chart_offline(overview_with_pdf):
    from browser import offline_page

    html = overview_with_pdf.folder / "overview.html"
    assert sorted(p.name for p in overview_with_pdf.folder.iterdir()) == ["overview.html", "overview.pdf", "run.json"]
    # the number of charts: the notebook's chart cells, each one plotly figure in the HTML
    charts = sum("crmlib.charts." in c.source for c in nbformat.read(OVERVIEW, as_version=4).cells)
    assert html.read_text(encoding="utf-8").count('class="plotly-graph-div"') == charts
    with offline_page() as page:
        page.goto(html.as_uri(), wait_until="load")
        drawn = page.evaluate("""() => Array.from(document.querySelectorAll('.js-plotly-plot')).map(p => ({
            svg: p.querySelectorAll('.main-svg').length, traces: p.querySelectorAll('g.trace').length,
            title: (p.querySelector('.gtitle') || {}).textContent}))""")
        assert page.blocked == [] and page.errors == []  # nothing wanted the network; no script failed
        assert page.title() == "Data overview · 数据概览"
        assert page.locator("h1", has_text="Data overview · 数据概览").count() == 1
        assert page.locator("text=crmlib.notebook.start").count() == 0  # no code
    assert len(drawn) == charts >= 1
    assert all(d["svg"] >= 1 and d["traces"] >= 1 for d in drawn), drawn
    assert drawn[0]["title"] == "Records per month"


@pytest.mark.browser
def test_pdf_report_has_the_title_on_its_first_page(overview_with_pdf):
    from pypdf import PdfReader

    pdf = overview_with_pdf.folder / "overview.pdf"
    assert pdf.stat().st_size > 10_000
    reader = PdfReader(pdf)
    first = reader.pages[0].extract_text()
    assert "Data overview" in first
    text = "\n".join(p.extract_text() for p in reader.pages)
    assert "Records per month" in text and "Validation" in text
    assert "crmlib.notebook.start" not in text
    meta = json.loads((overview_with_pdf.folder / "run.json").read_text())
    assert meta["reports"][0]["files"] == ["overview.html", "overview.pdf"] and meta["reports"][0]["pdf"] == "overview.pdf"


def test_chinese_pdf_without_a_chinese_font_is_a_clear_error_before_anything_runs(crmlib_home, monkeypatch):
    """Chromium prints Chinese text in boxes when fontconfig has no Chinese font: the run stops first,
    naming the definitions and the package to install; English PDFs and Chinese HTML need no such font."""
    from crmlib.reports import export

    tiny(crmlib_home, "tiny")
    definition(crmlib_home, "tiny_zh.yaml", "notebook: notebooks/tiny.ipynb\nlang: zh\nformats: [html, pdf]\n")
    definition(crmlib_home, "tiny_en.yaml", "notebook: notebooks/tiny.ipynb\nlang: en\nformats: [pdf]\n")
    definition(crmlib_home, "tiny_zh_html.yaml", "notebook: notebooks/tiny.ipynb\nlang: zh\nformats: [html]\n")
    monkeypatch.setattr(export, "find_chromium", lambda: "/usr/bin/true")  # never started: the check comes first
    monkeypatch.setattr(export, "has_chinese_font", lambda: False)
    with pytest.raises(ConfigError, match=r"the PDF of tiny_zh would show empty boxes.*apt-get install -y "
                                          r"fonts-noto-cjk.*fonts-wqy-microhei"):
        reports.run_reports(["tiny_zh", "tiny_en"])
    assert not (crmlib_home / "outputs").exists()
    with pytest.raises(ConfigError, match="tiny_zh would"):
        reports.run_reports(run_all=True)
    # nothing Chinese to print, or a font to print it with: no error from this check
    export.check_chinese_font([])
    monkeypatch.setattr(export, "has_chinese_font", lambda: None)  # no fontconfig to ask: not checked
    export.check_chinese_font(["tiny_zh"])
    monkeypatch.setattr(export, "has_chinese_font", lambda: True)
    export.check_chinese_font(["tiny_zh"])


def test_the_machine_font_check_asks_fontconfig():
    from crmlib.reports import export

    found = export.has_chinese_font()
    fc = shutil.which("fc-list")
    if fc is None:
        assert found is None
    else:
        listed = subprocess.run([fc, ":lang=zh", "family"], capture_output=True, text=True).stdout.strip()
        assert found is bool(listed)


def test_pdf_without_chromium_is_a_clear_error_before_anything_runs(crmlib_home, monkeypatch):
    from crmlib.reports import export

    tiny(crmlib_home, "tiny")
    definition(crmlib_home, "tiny.yaml", "notebook: notebooks/tiny.ipynb\nformats: [pdf]\n")
    monkeypatch.setenv("CRMLIB_CHROMIUM", str(crmlib_home / "no-chromium"))
    with pytest.raises(ConfigError, match="CRMLIB_CHROMIUM=.* is not an executable file"):
        reports.run_reports()
    monkeypatch.delenv("CRMLIB_CHROMIUM")
    monkeypatch.setenv("PATH", str(crmlib_home))  # no browser anywhere
    monkeypatch.setattr(export, "CHROMIUM_PATHS", ())
    with pytest.raises(ConfigError, match="PDF export needs Chromium and none was found.*never downloads a browser"):
        reports.run_reports()
    assert not (crmlib_home / "outputs").exists()
