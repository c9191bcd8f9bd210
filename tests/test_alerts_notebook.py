"""The alerts notebook under papermill, English and Chinese, on the scale-1 demo (where the planted anomaly
and SLA problem show) and on the small test demo (nbval runs it with its defaults on another small demo)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "alerts.ipynb"


@pytest.fixture(scope="module")
def demo_scale1(tmp_path_factory) -> Path:
    from crmlib.sources import demo

    path = tmp_path_factory.mktemp("alerts-nb") / "crm.duckdb"
    demo.write_demo(path, scale=1, seed=7, progress=False)
    return path


def run(params: dict, tmp_path: Path, warehouse: Path, monkeypatch) -> list[dict]:
    import nbformat
    import papermill

    monkeypatch.setenv("CRMLIB_SOURCE", str(warehouse))
    out = tmp_path / "alerts.ipynb"
    papermill.execute_notebook(
        str(NOTEBOOK),
        str(out),
        parameters={**params, "interactive": False},
        kernel_name="python3",
        progress_bar=False,
        cwd=str(NOTEBOOK.parent),
    )
    nb = nbformat.read(out, as_version=4)
    return [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]


def figures(outputs: list[dict]) -> list[dict]:
    return [
        o["data"]["application/vnd.plotly.v1+json"]
        for o in outputs
        if "application/vnd.plotly.v1+json" in o.get("data", {})
    ]


def test_notebook_is_thin_and_stored_without_outputs():
    nb = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert "parameters" in code[0]["metadata"].get("tags", [])
    for c in code:
        src = "".join(c["source"])
        assert not c.get("outputs") and c.get("execution_count") is None
        assert not re.search(r"^\s*(def|class) |SELECT |\.filter\(|\.group_by\(", src, re.M), src


@pytest.mark.slow
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_notebook_runs_and_shows_the_planted_problems(lang, demo_scale1, tmp_path, monkeypatch):
    from crmlib.sources.demo import TRUTH

    outputs = run({"lang": lang, "as_of": "2024-09-05"}, tmp_path, demo_scale1, monkeypatch)
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = json.dumps([o.get("data", {}) for o in outputs], ensure_ascii=False)
    figs = figures(outputs)
    assert len(figs) == 2  # anomalies over time (with band), anomalies among peers
    # the planted anomalous month is marked on the chart of its region
    month = TRUTH["anomaly"]["month"] + "-01"
    marked = [
        tr for tr in figs[0]["data"] if tr.get("mode") == "markers" and month in map(str, tr.get("x", []))
    ]
    assert marked, "the anomalous month carries an anomaly marker"
    sla = TRUTH["sla"]
    assert f"team={sla['team_id']}, priority={sla['priority']}" in text
    if lang == "zh":
        assert "预警" in text and "商机信号" in text
        assert all(re.search(r"[\u4e00-\u9fff]", f["layout"]["title"]["text"]) for f in figs)
    else:
        assert "Alerts" in text and "Opportunity signals" in text


@pytest.mark.slow
def test_notebook_runs_on_the_small_demo(demo_warehouse, tmp_path, monkeypatch):
    outputs = run({"lang": "en"}, tmp_path, demo_warehouse, monkeypatch)
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert len(figures(outputs)) == 2
