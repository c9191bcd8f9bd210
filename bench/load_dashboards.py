"""Issue 7's load test, on demand: `.venv/bin/pytest bench/load_dashboards.py -s` (Chromium needed).

10 concurrent viewers of the sales dashboard on loopback, each loading it and changing Grain once; no
errors anywhere; the peak memory of the server's process tree is printed. Not in the suite because it is
not reliable yet: of three runs on 2026-11-27 (session 3) one passed; in the others one viewer of ten hit
"widget model not found" (a chart never drawn), or, at a machine load of 20, anywidget's 2-second start-up
limit ("[anywidget] Failed to initialize model"). docs/dashboards.md and docs/NOTES.md say what is known.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the test helpers
from voila_server import voila_server  # noqa: E402

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
