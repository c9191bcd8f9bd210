"""Keep database passwords out of everything a report run writes or prints.

A password reaches a run only through the environment (``CRMLIB_DB_URL``, or a URL in ``CRMLIB_SOURCE`` /
``--source``); definitions that put one in a notebook parameter are rejected at load. Still, a notebook
could print its environment or an error could quote a URL, so every text a run writes goes through
:func:`scrub`: URL passwords are masked (:func:`crmlib.sources.redact`) and the known secret values are
replaced wherever they appear (raw, percent-decoded, JSON- and HTML-escaped).
"""

from __future__ import annotations

import html
import json
import os
import re
from collections.abc import Iterable
from urllib.parse import unquote

from ..sources import redact

MASK = "***"
MIN_SECRET = 4  # shorter values would be masked all over plotly.js; such passwords are not protected
_PASSWORD = re.compile(r"[a-z][a-z0-9+.-]*://[^:/@\s]*:(?P<pw>[^/\s]*)@", re.IGNORECASE)
ENV_VARS = ("CRMLIB_DB_URL", "CRMLIB_SOURCE")  # URLs that may hold a password
ENV_PASSWORDS = ("PGPASSWORD",)  # variables that are a password (libpq reads it when the URL has none)


def secret_values(texts: Iterable[str | None] = ()) -> tuple[str, ...]:
    """The passwords in URLs found in ``texts`` and in the environment (URL variables, ``PGPASSWORD``)."""
    found: list[str] = []
    for text in [*texts, *(os.environ.get(v) for v in ENV_VARS)]:
        for m in _PASSWORD.finditer(text or ""):
            pw = m["pw"]
            for value in (pw, unquote(pw)):
                if len(value) >= MIN_SECRET and value not in found and value != MASK:
                    found.append(value)
    for var in ENV_PASSWORDS:
        value = os.environ.get(var) or ""
        if len(value) >= MIN_SECRET and value not in found:
            found.append(value)
    return tuple(found)


def _forms(secret: str) -> list[str]:
    return list(dict.fromkeys([secret, json.dumps(secret)[1:-1], html.escape(secret), html.escape(secret, False)]))


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with URL passwords and every known secret value masked."""
    text = redact(text)
    return mask(text, secrets)


def mask(text: str, secrets: Iterable[str]) -> str:
    """Replace the exact secret values only (safe on large generated files such as embedded plotly.js)."""
    for secret in secrets:
        for form in _forms(secret):
            if form in text:
                text = text.replace(form, MASK)
    return text


def contains_secret(data: bytes, secrets: Iterable[str]) -> bool:
    return any(form.encode() in data for s in secrets for form in _forms(s))


def scrub_notebook(nb, secrets: Iterable[str]) -> bool:
    """Mask secrets in a notebook's outputs, in place; True when something was masked.

    URL passwords are masked in text outputs, errors and streams; exact secret values everywhere.
    """
    secrets = tuple(secrets)
    changed = False

    def fix(value):
        nonlocal changed
        if isinstance(value, str):
            new = scrub(value, secrets)
        elif isinstance(value, list):
            new = [fix(v) for v in value]
            return new
        else:
            return value
        changed = changed or new != value
        return new

    for cell in nb.cells:
        cell.source = fix(cell.source)
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream":
                out["text"] = fix(out.get("text", ""))
            elif out.get("output_type") == "error":
                out["evalue"] = fix(out.get("evalue", ""))
                out["traceback"] = fix(out.get("traceback", []))
            for mime, value in (out.get("data") or {}).items():
                if isinstance(value, str | list):
                    if mime.startswith("text/plain"):
                        out["data"][mime] = fix(value)
                    else:
                        masked = mask(value, secrets) if isinstance(value, str) else [mask(v, secrets) for v in value]
                        changed = changed or masked != value
                        out["data"][mime] = masked
                elif secrets:  # JSON mime bundles (plotly figures): mask through their serialised form
                    text = json.dumps(value)
                    if any(f in text for s in secrets for f in _forms(s)):
                        out["data"][mime] = json.loads(mask(text, secrets))
                        changed = True
    return changed
