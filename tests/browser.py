"""Headless Chromium for tests: the system browser through Playwright, never a downloaded one.

``require_chromium()`` skips a test when ``/usr/bin/chromium`` is absent (with the reason), except on CI
(``CI=true``) where that is a failure; ``require_chinese_font()`` does the same for a font with Chinese
characters (a Chinese PDF report needs one; .ci/run installs fonts-wqy-microhei). ``offline_page()`` opens a page that may load ``file:`` and ``data:``
URLs only: every network request is aborted and recorded in ``page.blocked``; page errors are collected
in ``page.errors``.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("CRMLIB_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
MISSING = (f"Chromium not found at {CHROMIUM}; install Debian's chromium package (apt-get install -y chromium) "
           "— CI installs it")
_NETWORK = ("http:", "https:", "ws:", "wss:", "ftp:")


def require_chromium() -> str:
    if Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK):
        return CHROMIUM
    if os.environ.get("CI") == "true":
        pytest.fail(MISSING + " (CI=true: browser tests must run on CI)")
    pytest.skip(MISSING)


def require_chinese_font() -> None:
    from crmlib.reports.export import has_chinese_font

    if has_chinese_font() is not False:
        return
    missing = ("no font with Chinese characters (`fc-list :lang=zh` lists none); install one "
               "(apt-get install -y fonts-wqy-microhei) — CI installs it")
    if os.environ.get("CI") == "true":
        pytest.fail(missing + " (CI=true: Chinese PDF tests must run on CI)")
    pytest.skip(missing)


@contextlib.contextmanager
def offline_page():
    """A Playwright page in the system Chromium with the network blocked."""
    executable = require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, args=ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.blocked, page.errors = [], []

            def route(r):
                if r.request.url.startswith(_NETWORK):
                    page.blocked.append(r.request.url)
                    r.abort()
                else:
                    r.continue_()

            page.route("**/*", route)
            page.on("pageerror", lambda exc: page.errors.append(str(exc)))
            yield page
        finally:
            browser.close()
