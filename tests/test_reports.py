"""The first report: notebooks/overview.ipynb executed by papermill into outputs/<run-id>/."""

import json
import re

import pytest

from crmlib import reports


@pytest.fixture
def outputs(tmp_path, monkeypatch):
    out = tmp_path / "outputs"
    monkeypatch.setenv("CRMLIB_OUTPUTS", str(out))
    return out


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
    zh = (folder / "overview_zh.html").read_text(encoding="utf-8")
    assert "数据表" in zh  # great_tables header
    assert json.dumps("每月记录数")[1:-1] in zh or "每月记录数" in zh  # chart title (plotly JSON escapes it)
    meta = json.loads((folder / "run.json").read_text())
    with crmlib.open(demo_warehouse) as crm:
        assert meta["data_fingerprint"] == crm.fingerprint()
        rows = crm.row_counts()
    assert meta["status"] == "ok" and meta["crmlib_version"] == crmlib.__version__
    assert [r["name"] for r in meta["reports"]] == ["overview", "overview_zh"]
    # the overview table shows the true row count of opportunities
    assert f"{rows['opportunities']:,}" in html
    index = (outputs / "index.html").read_text()
    assert result.run_id in index and "overview_zh.html" in index


def test_missing_source_fails_before_writing_anything(demo_warehouse, outputs):
    from crmlib.errors import SourceError

    with pytest.raises(SourceError, match="does not exist"):
        reports.run_reports(["overview"], source=str(demo_warehouse.parent / "missing.duckdb"))
    assert not outputs.exists() or list(outputs.iterdir()) == []


def test_unknown_report_name_is_a_clear_error(outputs):
    from crmlib.errors import ConfigError

    with pytest.raises(ConfigError, match=re.escape("No run definition named ['overveiw']")):
        reports.run_reports(["overveiw"])
