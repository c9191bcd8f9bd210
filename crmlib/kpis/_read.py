"""Reading YAML values: where a value is (file, item, key, line) and typed getters that report a
problem, instead of raising, when a value is missing or of the wrong kind."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..errors import suggest
from ._yaml import LineDict
from .spec import LANGS, CatalogProblem, Source, Text


# --------------------------------------------------------------------------------------------
# Location and problem reporting
# --------------------------------------------------------------------------------------------
@dataclass
class Loc:
    """Where we are: a file, an item (kind + name), a YAML mapping and a key prefix for nested keys."""

    file: str
    problems: list[CatalogProblem]
    kind: str = "file"
    name: str | None = None
    raw: Any = None
    prefix: str = ""
    name_line: int | None = None  # the line of the item's name (where "the KPI" is)
    near_misses: set = field(default_factory=set)  # allowed keys an unknown key was a typo of

    def line(self, key: str | None = None) -> int | None:
        if key is None and self.name_line:
            return self.name_line
        if isinstance(self.raw, LineDict):
            return self.raw.line_of(key) if key is not None else self.raw.line
        return None

    def key(self, key: str | None) -> str | None:
        if key is None:
            return self.prefix or None
        return f"{self.prefix}.{key}" if self.prefix else key

    def add(self, key: str | None, message: str, hint: str = "", rule: str = "shape") -> None:
        self.problems.append(
            CatalogProblem(
                self.file, self.kind, self.name, self.key(key), message, hint, self.line(key), rule
            )
        )

    def child(self, prefix: str, raw: Any) -> Loc:
        if isinstance(raw, LineDict):
            line_raw = raw
        else:  # a list or scalar has no key lines: point at the key that holds it
            line_raw = LineDict()
            line_raw.lines, line_raw.line = {}, self.line(prefix.split("[")[0]) or 0
        return Loc(self.file, self.problems, self.kind, self.name, line_raw, self.key(prefix) or "")

    def source(self) -> Source:
        return Source(self.file, self.line())


@dataclass
class Item:
    """A parsed definition and where it came from (kept for the rules' messages)."""

    record: Any
    loc: Loc
    override: bool = False
    extra: dict = field(default_factory=dict)  # parse-time facts the rules need (e.g. explicit dimensions)


@dataclass
class FileSpec:
    file: str
    area: str | None = None
    area_label: Text | None = None
    dimensions: list[Item] = field(default_factory=list)
    measures: list[Item] = field(default_factory=list)
    kpis: list[Item] = field(default_factory=list)


def kind_of(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return f"{'true' if value else 'false'} (a boolean)"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, int | float):
        return f"{value!r} (a number)"
    return f"{value!r}"


def check_keys(
    loc: Loc, raw: dict, allowed: Iterable[str], what: str, elsewhere: dict[str, str] | None = None
) -> None:
    allowed = tuple(allowed)
    for key in raw:
        if key in allowed:
            continue
        if not isinstance(key, str):
            loc.add(
                None, f"{what} has a key {key!r} that is not text.", f"Allowed keys: {', '.join(allowed)}."
            )
            continue
        if elsewhere and key in elsewhere:
            loc.add(
                key,
                f"unknown key {key!r}: it belongs to {elsewhere[key]}, not to {what}.",
                f"Remove it, or change the type. Allowed keys here: {', '.join(allowed)}.",
            )
            continue
        close = suggest(key, [k for k in allowed if k not in raw])
        if close:
            loc.near_misses.add(close.split('"')[1])
        loc.add(
            key,
            f"unknown key {key!r} in {what}.{close or suggest(key, allowed)}",
            f"Allowed keys: {', '.join(allowed)}.",
        )


def get_str(
    loc: Loc,
    raw: dict,
    key: str,
    *,
    required: bool = False,
    choices: tuple[str, ...] | None = None,
    what: str = "",
    default: str | None = None,
) -> str | None:
    if key not in raw or raw[key] is None:
        if required and key not in loc.near_misses:
            loc.add(
                key,
                f"{key} is missing{(' (' + what + ')') if what else ''}.",
                f"Add {key}: <value>" + (f" (one of {', '.join(choices)})." if choices else "."),
            )
        return default
    value = raw[key]
    if not isinstance(value, str):
        loc.add(
            key,
            f"{key} must be text, not {kind_of(value)}.",
            "Quote it in the YAML file." if isinstance(value, bool | int | float) else "",
        )
        return None
    if choices is not None and value not in choices:
        loc.add(
            key,
            f"{key} {value!r} is not allowed.{suggest(value, choices)}",
            f"Use one of: {', '.join(choices)}.",
        )
        return None
    return value


def get_text(loc: Loc, raw: dict, key: str, *, required: bool, allow_str: bool) -> Text | None:
    if key not in raw or raw[key] is None:
        if required and key not in loc.near_misses:
            form = f"{key}: {{en: ..., zh: ...}}"
            loc.add(key, f"{key} is missing.", f"Add {form} (English and Chinese).")
        return None
    value = raw[key]
    if allow_str and isinstance(value, str):
        if not value.strip():
            loc.add(key, f"{key} is empty.", "Write it, or remove the key.")
            return None
        return Text(value.strip(), value.strip())
    if not isinstance(value, dict):
        loc.add(
            key,
            f"{key} must be a mapping {{en: ..., zh: ...}}{' or a text' if allow_str else ''}, "
            f"not {kind_of(value)}.",
            f"Write {key}: {{en: ..., zh: ...}}.",
        )
        return None
    sub = loc.child(key, value)
    check_keys(sub, value, LANGS, key)
    texts = {}
    for lang in LANGS:
        text = value.get(lang)
        if text is None or (isinstance(text, str) and not text.strip()):
            name = {"en": "English", "zh": "Chinese"}[lang]
            sub.add(
                lang,
                f"{key} has no {name} text ({lang}).",
                f"Add {lang}: ... under {key}; both en and zh are required.",
            )
        elif not isinstance(text, str):
            sub.add(lang, f"{key}.{lang} must be text, not {kind_of(text)}.", "Quote it.")
        else:
            texts[lang] = text.strip()
    return Text(**texts) if len(texts) == len(LANGS) else None


def get_int(
    loc: Loc, raw: dict, key: str, *, required: bool = False, minimum: int | None = None
) -> int | None:
    if key not in raw or raw[key] is None:
        if required and key not in loc.near_misses:
            loc.add(key, f"{key} is missing.", f"Add {key}: <a whole number>.")
        return None
    value = raw[key]
    if isinstance(value, bool) or not isinstance(value, int):
        loc.add(key, f"{key} must be a whole number, not {kind_of(value)}.", f"Write e.g. {key}: 90.")
        return None
    if minimum is not None and value < minimum:
        loc.add(key, f"{key} is {value}; it must be at least {minimum}.", f"Use a number >= {minimum}.")
        return None
    return value


def get_str_list(loc: Loc, raw: dict, key: str) -> tuple[str, ...] | None:
    if key not in raw or raw[key] is None:
        return None
    value = raw[key]
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        loc.add(key, f"{key} must be a list of names, not {kind_of(value)}.", f"Write {key}: [a, b].")
        return None
    dup = sorted({v for v in value if value.count(v) > 1})
    if dup:
        loc.add(key, f"{key} lists {', '.join(dup)} more than once.", "List each name once.")
    return tuple(dict.fromkeys(value))


def get_override(loc: Loc, raw: dict) -> bool:
    value = raw.get("override", False)
    if not isinstance(value, bool):
        loc.add("override", f"override must be true or false, not {kind_of(value)}.", "Write override: true.")
        return False
    return value


def get_mapping(loc: Loc, raw: dict, key: str, *, required: bool = False) -> dict | None:
    if key not in raw or raw[key] is None:
        if required and key not in loc.near_misses:
            loc.add(key, f"{key} is missing.", f"Add {key}: with its keys.")
        return None
    value = raw[key]
    if not isinstance(value, dict):
        loc.add(
            key, f"{key} must be a mapping, not {kind_of(value)}.", f"Write {key}: followed by indented keys."
        )
        return None
    return value
