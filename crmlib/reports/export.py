"""Executed notebook -> stakeholder HTML (no code, renders offline) -> PDF through the system Chromium.

The HTML uses nbconvert's ``lab`` template without the scripts it would fetch from a CDN (require.js,
MathJax, Mermaid, the widget renderer): plotly.js is embedded once by the notebook's renderer
(``plotly_mimetype+notebook``), so the file opens and draws its charts with no network. A failed report
shows the input of the failing cell next to its error; every other input stays hidden.

PDF: headless Chromium prints the HTML file (``--print-to-pdf``). crmlib never downloads a browser; it uses
``$CRMLIB_CHROMIUM``, else ``/usr/bin/chromium`` or a ``chromium``/``google-chrome`` on ``PATH``. A Chinese
report needs a font with Chinese characters (:func:`check_chinese_font`), or its PDF shows empty boxes.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from ..errors import ConfigError, CrmlibError

CHROMIUM_ARGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-extensions",
    "--disable-dev-shm-usage", "--hide-scrollbars", "--no-pdf-header-footer",
    # charts are drawn at the window's width: make it the printable width of A4/Letter, so none is cut
    "--window-size=700,1000",
    # reports are self-contained: no name resolves, so nothing is fetched from the network
    "--host-resolver-rules=MAP * ~NOTFOUND",
)
CHROMIUM_PATHS = ("/usr/bin/chromium",)
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
PDF_TIMEOUT = 300  # seconds for one print: a hung browser fails the report, not the whole run

_TEMPLATE = """{%- extends 'lab/index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
{%- block extra_css -%}
<style>
  @media print {
    .jp-OutputArea-output, table { break-inside: avoid; }
    h1, h2, h3, h4, .jp-MarkdownCell:has(h1, h2, h3, h4) { break-after: avoid; }
    .modebar-container { display: none !important; }
  }
</style>
{%- endblock extra_css -%}
"""


_CDN_MATHJAX = re.compile(r'<script src="https://cdnjs\.cloudflare\.com/ajax/libs/mathjax/[^"]*"></script>')


class PdfError(CrmlibError):
    """Chromium could not print a report."""


def find_chromium() -> str:
    """The Chromium binary to print PDFs with; a clear error when there is none."""
    env = os.environ.get("CRMLIB_CHROMIUM")
    if env:
        if Path(env).is_file() and os.access(env, os.X_OK):
            return env
        raise ConfigError(f"CRMLIB_CHROMIUM={env!r} is not an executable file. Point it at chromium or unset it.")
    candidates = [*CHROMIUM_PATHS, *(shutil.which(n) for n in CHROMIUM_NAMES)]
    for c in candidates:
        if c and Path(c).is_file() and os.access(c, os.X_OK):
            return c
    raise ConfigError(
        "PDF export needs Chromium and none was found (/usr/bin/chromium, or chromium/google-chrome on PATH). "
        "Install it (Debian/Ubuntu: apt-get install -y chromium) or set CRMLIB_CHROMIUM=/path/to/chromium; "
        "crmlib never downloads a browser. Or drop 'pdf' from the definition's formats."
    )


def has_chinese_font() -> bool | None:
    """Whether fontconfig, where Chromium finds its fonts on Linux, lists a font covering Chinese
    (``fc-list :lang=zh``); None when there is no ``fc-list`` to ask (another system: not checked)."""
    fc = shutil.which("fc-list")
    if fc is None:
        return None
    try:
        out = subprocess.run([fc, ":lang=zh", "family"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return bool(out.strip())


def check_chinese_font(names: list[str]) -> None:
    """A clear error, before anything runs, when Chinese reports are to be printed to PDF on a machine
    without a Chinese font: Chromium would print every Chinese character as an empty box."""
    if names and has_chinese_font() is False:
        raise ConfigError(
            f"Chinese PDF reports need a font with Chinese characters and this machine has none (`fc-list "
            f":lang=zh` lists nothing): the PDF of {', '.join(names)} would show empty boxes. Install one "
            "(Debian/Ubuntu: apt-get install -y fonts-noto-cjk, or the smaller fonts-wqy-microhei), or drop "
            "'pdf' from the formats of those definitions."
        )


def export_html(nb, html: Path, title: str, failed: bool = False) -> None:
    """Write ``nb`` as a stakeholder HTML file: outputs only (failed: plus the failing cell's input)."""
    import copy

    from jinja2 import DictLoader
    from nbconvert import HTMLExporter

    nb = copy.deepcopy(nb)
    nb.metadata["title"] = title
    for cell in nb.cells:  # plotly's notebook renderer adds a MathJax <script> from a CDN to every figure
        for out in cell.get("outputs", []):
            data = out.get("data") or {}
            if isinstance(data.get("text/html"), str | list):
                text = "".join(data["text/html"])
                data["text/html"] = _CDN_MATHJAX.sub("", text)
    if failed:
        for cell in nb.cells:
            meta = cell.metadata.get("papermill", {})
            if cell.cell_type == "code" and not meta.get("exception"):
                cell.metadata.setdefault("transient", {})["remove_source"] = True
    exporter = HTMLExporter(
        template_name="lab",
        template_file="crmlib_report.html.j2",
        extra_loaders=[DictLoader({"crmlib_report.html.j2": _TEMPLATE})],
        exclude_input=not failed,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
        anchor_link_text="",
    )
    body, _ = exporter.from_notebook_node(nb)
    tmp = html.with_name(html.name + ".part")
    tmp.write_text(body, encoding="utf-8")
    os.replace(tmp, html)


def export_pdf(html: Path, pdf: Path, chromium: str | None = None) -> None:
    """Print ``html`` to ``pdf`` with headless Chromium (A4/Letter by the browser's locale, no header/footer)."""
    chromium = chromium or find_chromium()
    tmp = pdf.with_name(pdf.name + ".part")
    with tempfile.TemporaryDirectory(prefix="crmlib-chromium-") as profile:
        cmd = [chromium, *CHROMIUM_ARGS, f"--user-data-dir={profile}", f"--crash-dumps-dir={profile}",
               f"--print-to-pdf={tmp}", html.resolve().as_uri()]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=PDF_TIMEOUT,
                                  env={**os.environ, "HOME": profile})
        except subprocess.TimeoutExpired:
            tmp.unlink(missing_ok=True)
            raise PdfError(f"Chromium did not print {html.name} within {PDF_TIMEOUT} s") from None
        except OSError as exc:
            raise PdfError(f"cannot start Chromium ({chromium}): {exc}") from None
    if proc.returncode != 0 or not tmp.exists() or tmp.stat().st_size == 0:
        tmp.unlink(missing_ok=True)
        tail = "\n".join((proc.stderr or "").strip().splitlines()[-5:])
        raise PdfError(f"Chromium failed to print {html.name} (exit {proc.returncode}): {tail}")
    os.replace(tmp, pdf)
