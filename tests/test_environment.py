"""The environment the Makefile builds: nothing in it that makes every kernel start slowly."""

from __future__ import annotations

import subprocess
import sys


def test_a_kernel_importing_plotlys_renderers_builds_no_lark_parsers():
    """plotly's renderers import nbformat, which imports jsonschema; with rfc3987-syntax installed,
    jsonschema's import builds ~39 Lark parsers (~1.3 s in every dashboard and report kernel). The
    Makefile removes it (jsonschema then skips the "iri" format checks no schema here uses)."""
    code = "import sys, plotly.io as pio; pio.renderers; import jsonschema; print('lark' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False", (
        "rfc3987-syntax is installed in this environment: `python -m pip uninstall rfc3987-syntax` "
        "(the Makefile does it when it builds .venv)"
    )
