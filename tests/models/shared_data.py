"""Where the published data sets are: ../shared/data next to the repository (see its SOURCE.md files).

``shared_file(path)`` skips the calling test with a message when the file is missing, except on CI
(``CI=true``), where that is a failure: the published-result tests must run there.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def shared_file(relative: str) -> Path:
    path = SHARED / relative
    if not path.exists():
        msg = (f"{path} is missing: the published-result tests need ../shared/data next to the repository "
               "(see that folder's SOURCE.md files)")
        if os.environ.get("CI") == "true":
            pytest.fail(msg + " (CI=true: these tests must run on CI)")
        pytest.skip(msg)
    return path
