"""``crmlib serve``: safe by default, checked against a real Voila server on a free loopback port.

* a non-loopback address without a token refuses to start (exit 1, one-line message, no traceback);
* with a token, requests without it are turned away and requests with it are served, and the token
  never appears in what the server prints;
* the landing page lists every notebook in notebooks/ by its title;
* a notebook cell that fails shows Voila's generic line, never the traceback or the exception text;
* load test: 10 concurrent viewers (one Chromium, 10 contexts) each load a dashboard and change a
  filter; every page ends drawn and updated, without page errors. Figures: bench/RESULTS.md.

The server tests start kernels only where a notebook is rendered (``pool=0`` elsewhere).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.request

import nbformat
import pytest
from voila_server import free_port, voila_server

from crmlib import config
from crmlib.errors import ConfigError
from crmlib.serve import check_options, is_loopback, list_dashboards, notebook_info, voila_argv

TOKEN = "t0ken-for-tests-8c1d"
NOTEBOOKS = config.home() / "notebooks"


def get(url: str, *, headers: dict | None = None, follow: bool = False) -> tuple[int, str, dict]:
    """GET without following redirects (unless asked): (status, body, headers)."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener() if follow else urllib.request.build_opener(NoRedirect)
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with opener.open(req, timeout=600) as resp:
            return resp.status, resp.read().decode("utf-8", "replace"), dict(resp.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8", "replace"), dict(exc.headers)


def crmlib_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "crmlib", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=600,
    )


# ------------------------------------------------------------------------------------------------
# refusing to start
# ------------------------------------------------------------------------------------------------
def test_all_addresses_without_token_refuses_to_start():
    env = {k: v for k, v in os.environ.items() if k != "CRMLIB_SERVE_TOKEN"}
    run = subprocess.run(
        [sys.executable, "-m", "crmlib", "serve", "--host", "0.0.0.0", "--port", str(free_port())],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert run.returncode == 1
    assert "Refusing to listen on 0.0.0.0 without a token" in run.stderr
    assert "CRMLIB_SERVE_TOKEN" in run.stderr
    assert "Traceback" not in run.stderr + run.stdout


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.10", "::", "example.com", ""])
def test_non_loopback_needs_token(host):
    with pytest.raises(ConfigError, match="without a token"):
        check_options(host=host, token=None, notebooks=NOTEBOOKS)


def test_loopback_addresses():
    assert (
        is_loopback("127.0.0.1")
        and is_loopback("localhost")
        and is_loopback("::1")
        and is_loopback("127.1.2.3")
    )
    assert not is_loopback("0.0.0.0") and not is_loopback("10.0.0.1") and not is_loopback("")


def test_weak_token_port_in_use_and_missing_notebooks_are_clear_errors(tmp_path, monkeypatch):
    monkeypatch.delenv("CRMLIB_SERVE_TOKEN", raising=False)
    with pytest.raises(ConfigError, match="at least 8 characters"):
        check_options(host="0.0.0.0", token="short", notebooks=NOTEBOOKS)
    with pytest.raises(ConfigError, match="does not exist"):
        check_options(notebooks=tmp_path / "nope")
    with pytest.raises(ConfigError, match=r"No notebooks \(\*\.ipynb\)"):
        check_options(notebooks=tmp_path)
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(ConfigError, match=f"Cannot listen on 127.0.0.1:{port}.*--port"):
            check_options(port=port, notebooks=NOTEBOOKS)
    monkeypatch.setenv("CRMLIB_SERVE_TOKEN", TOKEN)
    assert check_options(host="0.0.0.0", port=free_port(), notebooks=NOTEBOOKS).token == TOKEN


def test_cli_error_for_db_source_without_url(monkeypatch):
    env = {k: v for k, v in os.environ.items() if k != "CRMLIB_DB_URL"}
    run = subprocess.run(
        [sys.executable, "-m", "crmlib", "serve", "--source", "db", "--port", str(free_port())],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert run.returncode == 1
    assert "CRMLIB_DB_URL is not set" in run.stderr and "Traceback" not in run.stderr


def test_voila_settings_are_safe_and_hold_no_token():
    opts = check_options(host="0.0.0.0", port=free_port(), token=TOKEN, pool=2, notebooks=NOTEBOOKS)
    argv = voila_argv(opts)
    assert "--VoilaConfiguration.show_tracebacks=False" in argv
    assert (
        "--VoilaConfiguration.preheat_kernel=True" in argv
        and "--VoilaConfiguration.default_pool_size=2" in argv
    )
    assert "--Voila.port_retries=0" in argv
    assert not any(TOKEN in a for a in argv)
    assert opts.url.endswith("/?token=<token>") and TOKEN not in opts.url
    assert not any(
        "preheat" in a for a in voila_argv(check_options(pool=0, port=free_port(), notebooks=NOTEBOOKS))
    )


# ------------------------------------------------------------------------------------------------
# landing page
# ------------------------------------------------------------------------------------------------
def test_notebook_titles(tmp_path):
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell("x = 1"),
            nbformat.v4.new_markdown_cell(
                "# Pipeline <b>health</b>\n\nWhere the `deals` stall.\nSecond line.\n\nMore."
            ),
        ]
    )
    nbformat.write(nb, tmp_path / "pipe_health.ipynb")
    info = notebook_info(tmp_path / "pipe_health.ipynb", tmp_path)
    assert (info.path, info.title, info.description) == (
        "pipe_health.ipynb",
        "Pipeline <b>health</b>",
        "Where the deals stall. Second line.",
    )
    (tmp_path / "broken.ipynb").write_text("{not json")
    assert notebook_info(tmp_path / "broken.ipynb", tmp_path).title == "Broken"
    (tmp_path / ".ipynb_checkpoints").mkdir()
    (tmp_path / ".ipynb_checkpoints" / "x.ipynb").write_text("{}")
    assert [d.path for d in list_dashboards(tmp_path)] == ["broken.ipynb", "pipe_health.ipynb"]


def test_landing_page_lists_every_dashboard(demo_warehouse):
    present = list_dashboards(NOTEBOOKS)
    assert {"sales.ipynb", "overview.ipynb"} <= {d.path for d in present}
    with voila_server(source=demo_warehouse, pool=0) as url:
        status, body, _ = get(url)
    assert status == 200
    for d in present:
        assert f'href="/voila/render/{d.path}"' in body, d.path
        title = d.title.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        assert f'<span class="crmlib-dashboard-title">{title}</span>' in body, d.title
    assert "https://" not in body  # nothing from the internet


# ------------------------------------------------------------------------------------------------
# token
# ------------------------------------------------------------------------------------------------
def test_token_is_required_and_never_logged(demo_warehouse):
    with voila_server(source=demo_warehouse, pool=0, token=TOKEN) as url:
        for path in ("", "voila/render/sales.ipynb", "voila/tree", "voila/api/contents/"):
            status, body, headers = get(url + path)
            assert status in (302, 401, 403), (path, status)
            if status == 302:
                assert headers["Location"].startswith("/login"), headers["Location"]
            assert "crmlib-dashboard" not in body
        status, body, _ = get(url + "?token=wrong-token-123")
        assert status in (302, 401, 403)
        status, body, _ = get(url + f"?token={TOKEN}")
        assert status == 200 and "crmlib-dashboard-title" in body
        status, body, _ = get(url, headers={"Authorization": f"token {TOKEN}"})
        assert status == 200 and "crmlib-dashboard-title" in body
        log = url.log()
    assert "?token=<token>" in log  # the URL is printed with a placeholder
    assert TOKEN not in log


# ------------------------------------------------------------------------------------------------
# tracebacks off
# ------------------------------------------------------------------------------------------------
def test_failing_cell_shows_no_traceback(tmp_path, demo_warehouse):
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_markdown_cell("# Broken dashboard"),
            nbformat.v4.new_code_cell("print('before the failure')"),
            nbformat.v4.new_code_cell(
                "def secret_helper():\n    raise ValueError('SECRET-DETAIL-42 in /srv/private')\n"
                "secret_helper()"
            ),
        ]
    )
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    folder = tmp_path / "nbs"
    folder.mkdir()
    nbformat.write(nb, folder / "broken.ipynb")
    with voila_server(source=demo_warehouse, notebooks=folder, pool=0) as url:
        status, body, _ = get(url + "voila/render/broken.ipynb")
    assert status == 200
    assert "before the failure" in body  # the page did render the cells before
    assert "There was an error when executing cell" in body
    for leak in ("SECRET-DETAIL-42", "Traceback", "secret_helper", "ValueError"):
        assert leak not in body, leak


def test_page_loads_plotly_js_once_from_the_server_and_nothing_from_a_cdn(tmp_path, demo_warehouse):
    from crmlib.chart_widget import plotly_js

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Empty"), nbformat.v4.new_code_cell("1 + 1")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    folder = tmp_path / "nbs"
    folder.mkdir()
    nbformat.write(nb, folder / "empty.ipynb")
    with voila_server(source=demo_warehouse, notebooks=folder, pool=0) as url:
        status, body, _ = get(url + "voila/render/empty.ipynb")
        js_status, js, _ = get(url + "voila/static/plotly.min.js")
    assert status == 200 and body.count('id="crmlib-plotly-js"') == 1
    assert 'src="/voila/static/plotly.min.js"' in body
    assert "mermaid" not in body and "cdnjs" not in body  # no diagram/maths script from a CDN
    assert not re.findall(r'(?:src|href)="https?://', body)  # nothing at all from another host
    assert js_status == 200 and js.encode("utf-8") == plotly_js()  # the installed plotly package's bundle
    # and no second copy: plotly's own JupyterLab extension (its 4.8 MB chunk of plotly.js) is not loaded,
    # nor the pygments theme extension; the widget extensions the dashboards need are
    config = json.loads(re.search(r'<script id="jupyter-config-data" type="application/json">(.*?)</script>',
                                  body, re.S).group(1))
    loaded = {e["name"] for e in config["federated_extensions"]}
    assert not loaded & {"jupyterlab-plotly", "jupyterlab_pygments"}
    assert {"anywidget", "@jupyter-widgets/jupyterlab-manager"} <= loaded
    # anywidget's 2-second model start-up limit is extended before any of Voila's scripts run
    shim = body.index('id="crmlib-anywidget-timeout"')
    assert "ms === 2000 ? 60000 : ms" in body
    assert shim < min(m.start() for m in re.finditer(r"<script[^>]*src=", body))
    # and so is the widget manager's 2-second get_model limit, by wrapping jupyterlab-manager's container on
    # arrival (what that does in a browser: tests/test_dashboards_browser.py, a model registered late)
    wait = body.index('id="crmlib-widget-model-wait"')
    assert wait < min(m.start() for m in re.finditer(r"<script[^>]*src=", body))


# Every dashboard in the browser and the load test (10 concurrent viewers): tests/test_dashboards_browser.py.
