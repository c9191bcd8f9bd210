"""Paths and settings. Environment variables override the defaults.

| variable | default | meaning |
|---|---|---|
| ``CRMLIB_HOME`` | the nearest folder above the working directory holding ``parameters/`` and ``notebooks/`` (else the working directory) | project root |
| ``CRMLIB_SOURCE`` | ``<home>/data/crm.duckdb`` | the data source ``crmlib.open()`` uses (path or database URL) |
| ``CRMLIB_DB_URL`` | unset | a database URL with credentials; used when the source is ``"db"`` or ``"$CRMLIB_DB_URL"`` |
| ``CRMLIB_BASE_CURRENCY`` | ``CNY`` | the currency all money is converted to |
| ``CRMLIB_LANG`` | ``en`` | label language, ``en`` or ``zh`` |
| ``CRMLIB_OUTPUTS`` | ``<home>/outputs`` | where reports are written |
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from .errors import ConfigError

LANGS = ("en", "zh")


def _find_home(start: Path) -> Path:
    for folder in (start, *start.parents):
        if (folder / "parameters").is_dir() and (folder / "notebooks").is_dir():
            return folder
    return start


@lru_cache(maxsize=1)
def _default_home(cwd: str) -> Path:
    return _find_home(Path(cwd).resolve())


def home() -> Path:
    env = os.environ.get("CRMLIB_HOME")
    if env:
        return Path(env).expanduser().resolve()
    return _default_home(os.getcwd())


def data_dir() -> Path:
    return home() / "data"


def default_warehouse() -> Path:
    return data_dir() / "crm.duckdb"


def outputs_dir() -> Path:
    env = os.environ.get("CRMLIB_OUTPUTS")
    return Path(env).expanduser().resolve() if env else home() / "outputs"


def default_source() -> str:
    return os.environ.get("CRMLIB_SOURCE") or str(default_warehouse())


def base_currency() -> str:
    cur = os.environ.get("CRMLIB_BASE_CURRENCY", "CNY").strip().upper()
    if len(cur) != 3 or not cur.isalpha():
        raise ConfigError(
            f"CRMLIB_BASE_CURRENCY={cur!r} is not a 3-letter ISO currency code. Set it to e.g. CNY, USD or EUR."
        )
    return cur


def lang() -> str:
    value = os.environ.get("CRMLIB_LANG", "en").strip().lower()
    if value not in LANGS:
        raise ConfigError(f"CRMLIB_LANG={value!r} is not supported. Use one of: {', '.join(LANGS)}.")
    return value
