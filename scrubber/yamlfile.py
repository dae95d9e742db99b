"""Load YAML safely and remember where each key and item stood, for path:line:col errors.

Only PyYAML's safe loader is used (its C build where available): no tag in a rule, table or mapping file can construct objects
or run code. Duplicate keys are errors (PyYAML silently keeps the last one).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from scrubber.errors import ConfigProblem


class MarkedDict(dict[str, Any]):
    """A mapping that knows the (line, col) of each key and of each value, 1-based."""

    key_marks: dict[str, tuple[int, int]]
    value_marks: dict[str, tuple[int, int]]
    mark: tuple[int, int]

    def __init__(self, items: Any = (), like: MarkedDict | None = None):
        super().__init__(items)
        self.key_marks = dict(like.key_marks) if like else {}
        self.value_marks = dict(like.value_marks) if like else {}
        self.mark = like.mark if like else (1, 1)


class MarkedList(list[Any]):
    """A sequence that knows the (line, col) of each item, 1-based."""

    item_marks: list[tuple[int, int]]
    mark: tuple[int, int]


def _pos(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


# libyaml's parser when PyYAML was built with it (10x faster on a rule pack), else pure Python.
# Both are the safe loader: only plain YAML types, no tags that build objects.
_SafeBase = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_SafeBase):  # type: ignore[misc,valid-type]
    problems: list[tuple[tuple[int, int], str]]


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> MarkedDict:
    out = MarkedDict()
    out.mark = _pos(node)
    loader.flatten_mapping(node)
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str):
            key = str(key)
        if key in out:
            loader.problems.append((_pos(key_node), f"duplicate key '{key}'; each key may appear once"))
        out[key] = loader.construct_object(value_node, deep=True)
        out.key_marks[key] = _pos(key_node)
        out.value_marks[key] = _pos(value_node)
    return out


def _construct_sequence(loader: _Loader, node: yaml.SequenceNode) -> MarkedList:
    out = MarkedList(loader.construct_object(child, deep=True) for child in node.value)
    out.item_marks = [_pos(child) for child in node.value]
    out.mark = _pos(node)
    return out


def _construct_timestamp(loader: _Loader, node: yaml.ScalarNode) -> Any:
    """A date as YAML reads it; one that does not exist (2026-02-30) stays the text written, for the
    check that reads it to report where it is (or an example line to hold as an unreadable date)."""
    try:
        return loader.construct_yaml_timestamp(node)
    except ValueError:
        return node.value


def _construct_int(loader: _Loader, node: yaml.ScalarNode) -> Any:
    """An integer, but a number written with a leading zero (a code such as 0100) stays the text
    written: YAML 1.1 reads it as octal (0100 would be 64)."""
    if _LEADING_ZERO.fullmatch(node.value):
        return node.value
    return loader.construct_yaml_int(node)


_LEADING_ZERO = re.compile(r"[-+]?0[0-9_]+")

_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)
_Loader.add_constructor("tag:yaml.org,2002:timestamp", _construct_timestamp)
_Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)


def load(path: Path | str, display: str | None = None) -> tuple[Any, list[ConfigProblem]]:
    """Parse one YAML file; return its data (None on failure) and the problems found."""
    shown = display or str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return None, [ConfigProblem(shown, 1, 1, f"cannot read the file: {exc.__class__.__name__}")]
    loader = _Loader(text)
    loader.problems = []
    try:
        data = loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        reason = exc.problem or "invalid YAML"
        return None, [ConfigProblem(shown, line, col, f"invalid YAML: {reason}; expected valid YAML")]
    except yaml.YAMLError as exc:
        return None, [ConfigProblem(shown, 1, 1, f"invalid YAML: {exc}")]
    finally:
        loader.dispose()
    problems = [ConfigProblem(shown, line, col, msg) for (line, col), msg in loader.problems]
    return data, problems


def key_pos(node: Any, key: str) -> tuple[int, int]:
    """Where a key stands in a MarkedDict, or where the mapping starts."""
    if isinstance(node, MarkedDict):
        return node.key_marks.get(key, node.mark)
    return 1, 1


def value_pos(node: Any, key: str) -> tuple[int, int]:
    """Where a key's value stands in a MarkedDict, or where the mapping starts."""
    if isinstance(node, MarkedDict):
        return node.value_marks.get(key, node.mark)
    return 1, 1


def item_pos(node: Any, index: int) -> tuple[int, int]:
    if isinstance(node, MarkedList) and index < len(node.item_marks):
        return node.item_marks[index]
    return getattr(node, "mark", (1, 1))
