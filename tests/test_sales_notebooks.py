"""notebooks/sales.ipynb and notebooks/performance.ipynb: thin, stored without outputs, and executed by
papermill over a small parameter grid (grains, a team, a region and product, an empty selection, en/zh)
against the demo warehouse (nbval runs them with their defaults)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import nbformat
import pytest
import yaml
from notebook_checks import assert_thin_sections, stored_parameters

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = {name: ROOT / "notebooks" / f"{name}.ipynb" for name in ("sales", "performance")}
PARAMETERS = ("source", "start", "end", "grain", "team", "region", "product", "lang", "interactive")
CJK = re.compile(r"[\u4e00-\u9fff]")
NO_DATA = "No data for this selection."


@pytest.mark.parametrize("name", list(NOTEBOOKS))
def test_notebook_is_thin_and_stored_without_outputs(name):
    nb = nbformat.read(NOTEBOOKS[name], as_version=4)
    code, body = stored_parameters(nb, "", PARAMETERS)
    assert all(isinstance(n, ast.AnnAssign) and isinstance(n.value, ast.Constant) for n in body)  # typed literals
    assert "'" not in code[0].source.split("\n", 1)[1].replace('""', "")  # no quotes in help comments
    assert_thin_sections(nb, code)


@pytest.mark.parametrize("name", list(NOTEBOOKS))
def test_papermill_reads_the_parameters_and_run_definitions_exist(name):
    import papermill

    got = papermill.inspect_notebook(str(NOTEBOOKS[name]))
    assert list(got) == list(PARAMETERS)
    assert all(got[p]["help"] for p in PARAMETERS)
    for suffix, lang in (("", "en"), ("_zh", "zh")):
        spec = yaml.safe_load((ROOT / "parameters" / f"{name}{suffix}.yaml").read_text(encoding="utf-8"))
        assert set(spec) == {"name", "notebook", "parameters", "formats"}
        assert spec["name"] == f"{name}{suffix}" and spec["notebook"] == f"notebooks/{name}.ipynb"
        assert spec["parameters"]["lang"] == lang and spec["formats"] == ["ipynb", "html"]
        assert set(spec["parameters"]) <= set(PARAMETERS)


GRID = [
    ("sales", {"lang": "en", "grain": "month"}),
    ("sales", {"lang": "zh", "grain": "quarter", "team": "T01"}),
    ("sales", {"lang": "en", "grain": "week", "start": "2025-10-01", "end": "2025-12-31", "region": "North",
               "product": "P01"}),  # a narrow selection: a section may have nothing to show
    ("sales", {"lang": "zh", "team": "T99"}),  # a team without deals: every section says so
    ("performance", {"lang": "zh", "grain": "quarter"}),
    ("performance", {"lang": "en", "grain": "year", "team": "Enterprise North"}),
    ("performance", {"lang": "en", "start": "2030-01-01", "end": "2030-12-31"}),  # a period without data
]


def _outputs(nb) -> list[dict]:
    return [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]


def _text(outputs) -> str:
    parts = []
    for o in outputs:
        data = o.get("data", {})
        parts += [str(data.get("text/html", "")), str(data.get("application/vnd.plotly.v1+json", "")),
                  str(o.get("text", ""))]
    return "\n".join(parts)


@pytest.mark.slow
@pytest.mark.parametrize("name, params", GRID, ids=[f"{n}-{'-'.join(str(v) for v in p.values())}" for n, p in GRID])
def test_notebook_runs_under_papermill(name, params, demo_warehouse, tmp_path, monkeypatch):
    import papermill

    monkeypatch.setenv("CRMLIB_SOURCE", str(demo_warehouse))
    out = tmp_path / f"{name}.ipynb"
    papermill.execute_notebook(str(NOTEBOOKS[name]), str(out), parameters={**params, "interactive": False},
                               kernel_name="python3", progress_bar=False, cwd=str(NOTEBOOKS[name].parent))
    nb = nbformat.read(out, as_version=4)
    outputs = _outputs(nb)
    assert not [o for o in outputs if o.get("output_type") == "error" or o.get("name") == "stderr"]
    text = _text(outputs)
    assert "crmlib-section-error" not in text, "a section failed"  # the dashboard hides failures in place
    sections = sum(c.cell_type == "code" for c in nb.cells) - 2
    shown = [c for c in nb.cells[3:] if c.cell_type == "code" and c.get("outputs")]
    assert len(shown) == sections  # every section shows something
    empty = params.get("team") == "T99" or params.get("start") == "2030-01-01"
    # the generic "no data" or a section's own empty state ("no stalled deals for this selection")
    no_data = sum(any(m in _text(c.outputs) for m in (NO_DATA, "当前筛选条件下没有数据", "crmlib-empty")) for c in shown)
    if empty:
        assert no_data >= sections - 1  # the cascade check still reports the plan's targets
    elif "product" in params:
        assert no_data <= 2  # e.g. no stalled deal of that product in that region
    else:
        assert no_data == 0
        assert sum("application/vnd.plotly.v1+json" in o.get("data", {}) for o in outputs) >= 4
    if params["lang"] == "zh":
        titles = ("销售阶段漏斗", "销售指标趋势") if name == "sales" else ("排行榜", "目标完成率")
        assert all(t in text for t in titles) or empty
        assert CJK.search(text)
        assert "Stage funnel" not in text and "Leaderboard" not in text
