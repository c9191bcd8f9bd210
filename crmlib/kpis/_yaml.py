"""Read a catalog YAML file keeping line numbers and catching duplicate keys (PyYAML keeps the last one
silently, which would hide a KPI defined twice in one file)."""

from __future__ import annotations

from dataclasses import dataclass

import yaml


class LineDict(dict):
    """A mapping from YAML that knows its own line and the line of each key (1-based)."""

    line: int = 0
    lines: dict

    def line_of(self, key: str) -> int:
        return self.lines.get(key, self.line)


@dataclass(frozen=True)
class Duplicate:
    key: object
    line: int
    first_line: int


class _Loader(yaml.SafeLoader):
    def __init__(self, stream):
        super().__init__(stream)
        self.duplicates: list[Duplicate] = []


class _FastLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    """The same loader on libyaml's parser when PyYAML has it (parsing the package catalog: ~120 ms
    in Python, ~15 ms in C; the same data, lines and duplicates). Its error messages are worded
    differently: on an error, the file is parsed again with :class:`_Loader` for the usual message."""

    def __init__(self, stream):
        super().__init__(stream)
        self.duplicates: list[Duplicate] = []


def _construct_mapping(loader: _Loader, node: yaml.MappingNode, deep: bool = False) -> LineDict:
    loader.flatten_mapping(node)
    out = LineDict()
    out.line = node.start_mark.line + 1
    out.lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str | int | float | bool) and key is not None:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping",
                node.start_mark,
                "found a key that is not text",
                key_node.start_mark,
            )
        line = key_node.start_mark.line + 1
        if key in out:
            loader.duplicates.append(Duplicate(key, line, out.lines[key]))
        out[key] = loader.construct_object(value_node, deep=True)
        out.lines[key] = line
    return out


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_FastLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_yaml(text: str) -> tuple[object, list[Duplicate]]:
    """Parse ``text``; return the data and the duplicate keys found. Raises ``yaml.YAMLError``."""
    try:
        return _load(_FastLoader, text)
    except yaml.YAMLError:
        return _load(_Loader, text)  # raises it again, worded as ever


def _load(cls, text: str) -> tuple[object, list[Duplicate]]:
    loader = cls(text)
    try:
        data = loader.get_single_data()
    finally:
        loader.dispose()
    return data, loader.duplicates


def yaml_error_line(exc: yaml.YAMLError) -> int | None:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    return mark.line + 1 if mark is not None else None
