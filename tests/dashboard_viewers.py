"""Browser viewers of a served dashboard, for the load test (tests/test_serve.py) and bench/bench_dashboards.py.

One Chromium (the system one, see tests/browser.py), one context per viewer, driven through Playwright's
async API so the viewers really run at the same time. Timing happens inside the page (``performance.now()``)
so Playwright's round trips do not count:

* ``load_s``: from navigation start until every expected chart is drawn (``.js-plotly-plot`` with its
  ``.main-svg`` and data), i.e. time to first full render;
* a filter change sets a filter-bar ``<select>`` to another option and dispatches ``change`` (what a
  click does), then waits for the charts' signature (titles and trace data) to change: ``ms`` from the
  change to the first animation frame where the DOM shows an updated chart; then for the dashboard's
  status (``.crmlib-status-text``, :meth:`crmlib.dashboard.Dashboard.update`) to count the update
  finished: ``all_ms``, every section re-drawn. The next change starts only then, so no change is
  timed while the previous one is still drawing.

Every wait is bounded (``timeout_ms``); a viewer that times out reports the error instead of hanging.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time

from browser import ARGS, require_chromium

# A trace's numbers as an array: plotly.py sends numpy arrays as typed-array specs {dtype, bdata (base64)},
# which stay so in the graph div's data (compared as base64, their last bits would count).
NUMBERS = """(v) => (v && typeof v === 'object' && typeof v.bdata === 'string')
    ? Array.from(new ({f8: Float64Array, f4: Float32Array, i4: Int32Array, u4: Uint32Array, i2: Int16Array,
                       u2: Uint16Array, i1: Int8Array, u1: Uint8Array}[v.dtype])(
          Uint8Array.from(atob(v.bdata), c => c.charCodeAt(0)).buffer))
    : v"""


def signature(text: bool = False) -> str:
    """JS: the page's charts as one string (titles and trace data; ``text``: the traces' texts too), numbers
    to 10 significant digits: parallel sums (DuckDB, polars) differ in the last bits between runs."""
    return """() => { const n = (""" + NUMBERS + """);
    return JSON.stringify(Array.from(document.querySelectorAll('.js-plotly-plot')).map(g => [
    (g.layout && g.layout.title && (g.layout.title.text || g.layout.title)) || '',
    (g.data || []).map(t => [t.name, n(t.x), n(t.y), n(t.z), n(t.values), t.labels""" + (", t.text" if text else "") + """])]),
    (k, v) => typeof v === 'number' ? Number(v.toPrecision(10)) : v); }"""


SIGNATURE = signature()
DRAWN = """(n) => { const plots = document.querySelectorAll('.js-plotly-plot');
    return plots.length >= n && Array.from(plots).every(g => g.querySelector('.main-svg') && g.data); }"""
PAGE_ERRORS = """() => {
    const bad = [];
    document.querySelectorAll('.crmlib-section-error').forEach(e => bad.push(e.textContent.slice(0, 200)));
    document.querySelectorAll('.jp-OutputArea-output.jp-mod-error, [data-mime-type="application/vnd.jupyter.stderr"]')
        .forEach(e => bad.push(e.textContent.slice(0, 200)));
    if (document.body.innerText.includes('There was an error when executing cell')) bad.push('cell error');
    return bad; }"""
# Change the <select> inside the filter whose class is crmlib-filter-<name>, time until the charts change.
CHANGE = (
    """async ([name, timeoutMs]) => {
    const sig = () => ("""
    + SIGNATURE
    + """)();
    const select = document.querySelector('.crmlib-filter-' + name + ' select');
    if (!select) return {error: 'no <select> for filter ' + name};
    const options = Array.from(select.options).map(o => o.value);
    const next = options[(options.indexOf(select.value) + 1) % options.length];
    const status = () => document.querySelector('.crmlib-status-text');
    const done = () => { const s = status(); return s ? Number(s.dataset.updates) : NaN; };
    const updates = done();
    // the full signature (every chart's data) costs tens of ms per frame on a day grain: each frame
    // compares the charts' data objects (Plotly.react replaces them) and takes it only when one changed
    const refs = () => Array.from(document.querySelectorAll('.js-plotly-plot')).map(g => g.data);
    let seen = refs();
    const moved = () => { const now = refs(); const m = now.length !== seen.length || now.some((d, i) => d !== seen[i]);
                          seen = now; return m; };
    const before = sig();
    const t0 = performance.now();
    select.value = next;
    select.dispatchEvent(new Event('change', {bubbles: true}));
    while (!(moved() && sig() !== before)) {
        if (performance.now() - t0 > timeoutMs) return {error: 'charts did not change within ' + timeoutMs + ' ms'};
        await new Promise(r => requestAnimationFrame(r));
    }
    const ms = performance.now() - t0;
    // then every section: the dashboard's status counts finished updates (data-busy 0 when idle)
    while (!(done() > updates && status().dataset.busy === '0')) {
        if (Number.isNaN(updates)) return {error: 'no .crmlib-status-text in the filter bar'};
        if (performance.now() - t0 > timeoutMs) return {error: 'the update did not finish within ' + timeoutMs + ' ms'};
        await new Promise(r => requestAnimationFrame(r));
    }
    await new Promise(r => requestAnimationFrame(r));  // the frame that shows the last section
    return {ms: ms, all_ms: performance.now() - t0, value: next};
}"""
)


async def open_dashboard(context, url: str, notebook: str, figures: int, timeout_ms: int) -> tuple:
    """Open ``notebook`` in a new page; returns (page, load seconds, page errors list)."""
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)[:200]))
    console: list[str] = []  # console errors, reported only when the page does not draw (to say why)
    page.on("console", lambda m: console.append(m.text[:200]) if m.type == "error" else None)
    await page.goto(f"{url}voila/render/{notebook}", wait_until="commit", timeout=timeout_ms)
    try:
        await page.wait_for_function(DRAWN, arg=figures, timeout=timeout_ms, polling="raf")
    except Exception as exc:
        raise type(exc)(f"{str(exc).splitlines()[0]} (console errors: {console[-3:]})") from exc
    load_ms = await page.evaluate("() => performance.now()")  # page time origin = navigation start
    return page, load_ms / 1000, errors


async def change_filter(page, name: str, timeout_ms: int) -> dict:
    return await page.evaluate(CHANGE, [name, timeout_ms])


async def _viewer(
    browser,
    url: str,
    notebook: str,
    figures: int,
    filter_name: str,
    changes: int,
    timeout_ms: int,
    login: str | None,
) -> dict:
    context = await browser.new_context(viewport={"width": 1300, "height": 1000})
    result: dict = {"errors": []}
    try:
        if login:
            page = await context.new_page()
            await page.goto(login, timeout=timeout_ms)
            await page.close()
        page, result["load_s"], errors = await open_dashboard(context, url, notebook, figures, timeout_ms)
        result["changes_ms"] = []
        for _ in range(changes):
            change = await change_filter(page, filter_name, timeout_ms)
            if "error" in change:
                result["errors"].append(change["error"])
                break
            result["changes_ms"].append(change["ms"])
            result.setdefault("changes_all_ms", []).append(change["all_ms"])
        result["errors"] += await page.evaluate(PAGE_ERRORS)
        result["errors"] += errors
    except Exception as exc:  # a timeout or a closed page: reported, not raised, so the others finish
        result["errors"].append(f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}")
    finally:
        await context.close()
    return result


async def _run(url, notebook, figures, viewers, filter_name, changes, timeout_ms, login) -> list[dict]:
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=require_chromium(), args=ARGS, headless=True)
        try:
            return await asyncio.gather(
                *[
                    _viewer(browser, url, notebook, figures, filter_name, changes, timeout_ms, login)
                    for _ in range(viewers)
                ]
            )
        finally:
            await browser.close()


def run_viewers(
    url,
    notebook: str,
    figures: int,
    *,
    viewers: int = 1,
    filter_name: str = "grain",
    changes: int = 1,
    timeout_ms: int = 300_000,
) -> list[dict]:
    """``viewers`` concurrent viewers each open ``notebook`` and change ``filter_name`` ``changes`` times."""
    login = url.login if getattr(url, "token", None) else None
    job = _run(url, notebook, figures, viewers, filter_name, changes, timeout_ms, login)
    try:
        asyncio.get_running_loop()
    except RuntimeError:  # the usual case: no event loop in this thread
        return asyncio.run(job)
    # a loop already runs here (Playwright's sync API in the same test session): run ours in a thread
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, job).result()


def returning_viewer(url, notebook: str, figures: int, visits: int, before_visit, timeout_ms: int = 300_000) -> list:
    """One viewer opening ``notebook`` ``visits`` times in the same browser profile (a persistent one, so
    the HTTP and compiled-code caches work as in a real browser); ``before_visit(i)`` runs before each
    visit (e.g. to wait for a preheated kernel). Returns the load seconds of each visit (None on error)."""
    import tempfile

    from playwright.sync_api import sync_playwright

    loads: list = []
    with tempfile.TemporaryDirectory(prefix="crmlib-viewer-") as profile, sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            profile, executable_path=require_chromium(), args=ARGS, headless=True, viewport={"width": 1300, "height": 1000})
        try:
            for i in range(visits):
                before_visit(i)
                page = context.new_page()
                try:
                    page.goto(f"{url}voila/render/{notebook}", wait_until="commit", timeout=timeout_ms)
                    page.wait_for_function(DRAWN, arg=figures, timeout=timeout_ms, polling="raf")
                    loads.append(page.evaluate("() => performance.now()") / 1000)
                except Exception:  # noqa: BLE001 - a timeout is reported as a missing time
                    loads.append(None)
                finally:
                    page.close()
        finally:
            context.close()
    return loads


class PeakRss:
    """Samples ``server.rss()`` (the server's process tree) every ``every`` seconds in a thread."""

    def __init__(self, server, every: float = 0.5):
        self.server, self.every, self.peak, self.samples = server, every, 0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.server.rss())
            self.samples += 1
            self._stop.wait(self.every)

    def __enter__(self) -> PeakRss:
        self.started = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.server.rss())
