"""Root pytest configuration: applies to tests/ and to the notebooks checked by nbval.

* Jupyter and IPython keep their files in a temporary folder, not in the home folder.
* When notebooks are collected (nbval), they run against a small seeded demo warehouse in a temporary
  folder (``CRMLIB_SOURCE``), so the suite never touches ``data/crm.duckdb``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

_TMP = Path(tempfile.mkdtemp(prefix="crmlib-pytest-"))


def pytest_configure(config):
    for var, sub in (
        ("JUPYTER_CONFIG_DIR", "jupyter-config"),
        ("JUPYTER_DATA_DIR", "jupyter-data"),
        ("JUPYTER_RUNTIME_DIR", "jupyter-runtime"),
        ("IPYTHONDIR", "ipython"),
    ):
        os.environ.setdefault(var, str(_TMP / sub))
    # JUPYTER_DATA_DIR moved: keep the venv's kernelspec visible.
    os.environ.setdefault("JUPYTER_PATH", str(Path(__import__("sys").prefix) / "share" / "jupyter"))


def pytest_collection_finish(session):
    if any(item.nodeid.endswith(".ipynb") or ".ipynb::" in item.nodeid for item in session.items):
        from crmlib.sources.demo import write_demo

        path = _TMP / "notebooks-demo.duckdb"
        if not path.exists():
            write_demo(path, scale=0.05, seed=11, progress=False)
        os.environ["CRMLIB_SOURCE"] = str(path)


def pytest_unconfigure(config):
    shutil.rmtree(_TMP, ignore_errors=True)
