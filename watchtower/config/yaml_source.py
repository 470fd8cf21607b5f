"""YAML with line numbers: parse a file and remember where every key sits, so errors can say file:line.

Shared by the main config loader and the rule files; both phrase problems as `file:line: field: what and fix`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml

Lines = dict[tuple[str, ...], int]


class ConfigError(Exception):
    """A configuration problem, already phrased for a person: where, what, and how to fix it."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


def compose_with_lines(text: str, source: str) -> tuple[Any, Lines]:
    """Parse YAML and remember the 1-based line of every mapping key and sequence item, by its path.

    Paths are tuples of strings: `("rules", "0", "for")`. Raises ConfigError on a syntax error.
    """
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark else source
        raise ConfigError(
            [f"{where}: not valid YAML ({getattr(exc, 'problem', exc)}); fix the syntax there"]
        ) from None
    lines: Lines = {}

    def walk(n: yaml.Node | None, path: tuple[str, ...]) -> None:
        if isinstance(n, yaml.MappingNode):
            for key_node, value_node in n.value:
                key = (*path, str(key_node.value))
                lines[key] = key_node.start_mark.line + 1
                walk(value_node, key)
        elif isinstance(n, yaml.SequenceNode):
            for i, item in enumerate(n.value):
                lines[(*path, str(i))] = item.start_mark.line + 1
                walk(item, (*path, str(i)))

    walk(node, ())
    data = yaml.safe_load(text) if node is not None else {}
    return data, lines


def line_of(loc: tuple[str, ...], lines: Mapping[tuple[str, ...], int]) -> int | None:
    """The line of `loc`, or of its nearest enclosing key (a missing field points at its parent)."""
    return next((lines[loc[:i]] for i in range(len(loc), 0, -1) if loc[:i] in lines), None)
