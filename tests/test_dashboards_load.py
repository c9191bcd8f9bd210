"""Issue 7's load test (in the suite; Chromium needed, which CI installs).

10 concurrent viewers of the sales dashboard on loopback, each loading it and changing Grain once; no
errors anywhere; the peak memory of the server's process tree is printed (the figures at demo scale 1 are
in bench/RESULTS.md, "Dashboards"). Bounded: every browser wait has a time-out and each viewer does one
load and one change. A viewer now and then got "widget model not found" (a section never drawn): first
anywidget's 2-second model start-up limit (session 4), then a race in the widget manager's own 2-second
get_model limit (ipywidgets#4026; CI failed on it in session 5 with 2 of 10 viewers). The page `crmlib
serve` renders extends the one and fixes the other (docs/dashboards.md); tests/test_dashboards_browser.py
reproduces the race in the page.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from voila_server import voila_server

pytestmark = [pytest.mark.browser, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from crmlib.sources.demo import write_demo

    path = tmp_path_factory.mktemp("load") / "demo.duckdb"
    write_demo(path, scale=0.05, seed=7, progress=False)
    return None, path


VIEWERS = 10


def test_ten_concurrent_viewers_load_and_filter(tmp_path, server):
    """10 viewers at once, each loads the sales dashboard and changes Grain once; no errors anywhere.

    Bounded: every browser wait has a timeout and each viewer does one load and one change. The peak RSS of
    the server's process tree is measured (printed; the figures at demo scale 1 are in bench/RESULTS.md).
    """
    from browser import require_chromium
    from dashboard_viewers import PeakRss, run_viewers

    require_chromium()
    folder = tmp_path / "nbs"
    folder.mkdir()
    (folder / "sales.ipynb").write_bytes((ROOT / "notebooks" / "sales.ipynb").read_bytes())
    demo_warehouse = server[1]
    with voila_server(source=demo_warehouse, notebooks=folder, pool=1, wait_for_pool=True) as url:
        with PeakRss(url) as rss:
            results = run_viewers(
                url, "sales.ipynb", figures=9, viewers=VIEWERS, changes=1, timeout_ms=300_000
            )
        log = url.log()
    print(
        f"{VIEWERS} viewers: peak RSS of the server tree {rss.peak / 2**20:.0f} MB; "
        f"loads {[round(r.get('load_s', -1), 1) for r in results]} s; "
        f"changes {[round(c) for r in results for c in r.get('changes_ms', [])]} ms"
    )
    assert rss.peak > 0 and rss.samples > 0
    assert [r["errors"] for r in results] == [[]] * VIEWERS
    assert all(len(r["changes_ms"]) == 1 for r in results)
    assert "Traceback" not in log
