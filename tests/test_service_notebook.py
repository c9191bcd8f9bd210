"""The service notebook under papermill for a parameter grid: business and calendar hours, one team, an
empty selection, a period without data, English and Chinese (nbval runs it with its defaults)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "service.ipynb"
NO_DATA = {"en": "No data for this selection", "zh": "当前筛选条件下没有数据"}


def run(params: dict, tmp_path: Path, warehouse: Path, monkeypatch) -> list[dict]:
    import nbformat
    import papermill

    monkeypatch.setenv("CRMLIB_SOURCE", str(warehouse))
    out = tmp_path / "service.ipynb"
    papermill.execute_notebook(str(NOTEBOOK), str(out), parameters={**params, "interactive": False},
                               kernel_name="python3", progress_bar=False, cwd=str(NOTEBOOK.parent))
    nb = nbformat.read(out, as_version=4)
    return [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]


def text_of(outputs: list[dict]) -> str:
    return json.dumps([o.get("data", {}) for o in outputs], ensure_ascii=False)


def figure_titles(outputs: list[dict]) -> list[str]:
    return [o["data"]["application/vnd.plotly.v1+json"]["layout"]["title"]["text"] for o in outputs
            if "application/vnd.plotly.v1+json" in o.get("data", {})]


def trace_counts(outputs: list[dict]) -> list[int]:
    return [len(o["data"]["application/vnd.plotly.v1+json"]["data"]) for o in outputs
            if "application/vnd.plotly.v1+json" in o.get("data", {})]


@pytest.mark.slow
@pytest.mark.parametrize("params", [
    {"lang": "zh", "calendar": "calendar", "team": "T11"},  # monthly: the demo's team targets apply
    {"lang": "en", "priority": "high", "channel": "chat", "grain": "week", "start": "2026-04-01"},
    {"lang": "en", "team": "nobody"},  # an empty selection
    {"lang": "zh", "start": "2030-01-01", "end": "2030-12-31", "grain": "quarter"},  # a period without data
], ids=["zh-calendar-team", "en-business-week", "en-empty-selection", "zh-no-data"])
def test_notebook_parameter_grid(params, demo_warehouse, tmp_path, monkeypatch):
    outputs = run(params, tmp_path, demo_warehouse, monkeypatch)
    assert not [o for o in outputs if o.get("output_type") == "error" or o.get("name") == "stderr"]
    titles = figure_titles(outputs)
    assert len(titles) == 4  # volume and backlog, SLA heatmap, time distributions, satisfaction
    text = text_of(outputs)
    lang = params["lang"]
    if lang == "zh":
        assert all(re.search(r"[\u4e00-\u9fff]", t) for t in titles), titles
        assert "即将违反 SLA 的工单" in text and "客服排行榜" in text
    else:
        assert "Tickets about to breach their SLA" in text and "Agent leaderboard" in text
    empty = params.get("team") == "nobody" or params.get("start", "").startswith("2030")
    if empty:
        assert text.count(NO_DATA[lang]) >= 7, "every section says there is no data"
    else:  # cards, and the volume, SLA and time charts have data (the worklist may well be empty)
        assert "crmlib-cards" in text
        assert all(n > 0 for n in trace_counts(outputs)[:3])
    if params.get("team") == "T11":  # the demo's per-team monthly targets show on the cards
        assert re.search(r"目标 \d+(\.\d)?%", text) and "data-kpi='sla_compliance'" in text
