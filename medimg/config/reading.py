"""Read a YAML config keeping the ``file:line:col`` of every key.

Nothing here evaluates code from a config: YAML is read with ``yaml.safe_load``
semantics.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import ConstructorError, SafeConstructor

from ..core.builder import KeyPath, format_key
from .problems import Problem, single_problem

__all__ = ["Positions", "read_yaml"]


class Positions:
    """``KeyPath -> "file:line:col"`` of every key (and list item) of a YAML document.

    Lookups fall back to the nearest ancestor, so a missing key is located at its
    parent section. Keys are compared by their string form (pydantic reports dict keys
    as it received them; YAML may have parsed them as ints).
    """

    def __init__(self, source: str) -> None:
        self.source = source
        self._at: dict[tuple[str, ...], str] = {}

    @staticmethod
    def _norm(path: Sequence[Any]) -> tuple[str, ...]:
        return tuple(str(p) for p in path)

    def set(self, path: Sequence[Any], location: str) -> None:
        self._at[self._norm(path)] = location

    def mark(self, path: Sequence[Any], mark: yaml.Mark) -> None:
        self.set(path, f"{self.source}:{mark.line + 1}:{mark.column + 1}")

    def replace_subtree(self, path: Sequence[Any], location: str) -> None:
        """Forget every position under ``path`` (an override replaced it)."""
        norm = self._norm(path)
        for key in [k for k in self._at if k[: len(norm)] == norm]:
            del self._at[key]
        self._at[norm] = location

    def has(self, path: Sequence[Any]) -> bool:
        return self._norm(path) in self._at

    def locate(self, path: Sequence[Any]) -> str:
        norm = self._norm(path)
        for n in range(len(norm), -1, -1):
            if norm[:n] in self._at:
                return self._at[norm[:n]]
        return f"{self.source}:1:1"


def walk_nodes(
    node: yaml.Node,
    path: KeyPath,
    positions: Positions,
    constructor: SafeConstructor,
    problems: list[Problem],
) -> None:
    """Record the position of every key below ``node``; report duplicate keys."""
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, yaml.Mark] = {}
        for key_node, value_node in node.value:
            try:
                key = constructor.construct_object(key_node, deep=True)
            except ConstructorError:
                key = getattr(key_node, "value", "?")
            if not isinstance(key, (str, int, float, bool)) or key is None:
                key = str(getattr(key_node, "value", key))
            sub = (*path, key)
            if str(key) in seen and key != "<<":
                first = seen[str(key)]
                problems.append(
                    (
                        f"{positions.source}:{key_node.start_mark.line + 1}:"
                        f"{key_node.start_mark.column + 1}",
                        format_key(sub),
                        f"duplicate key (first given on line {first.line + 1}); "
                        "YAML keeps only the last one, so remove one of them",
                    )
                )
            seen[str(key)] = key_node.start_mark
            positions.mark(sub, key_node.start_mark)
            walk_nodes(value_node, sub, positions, constructor, problems)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            sub = (*path, i)
            positions.mark(sub, item.start_mark)
            walk_nodes(item, sub, positions, constructor, problems)


def read_yaml(path: Path, source: str) -> tuple[Any, Positions, list[Problem]]:
    """Parse ``path`` into plain data plus the position of every key."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise single_problem(source, "", "file not found", hint="check the path of the config file") from None
    except IsADirectoryError:
        raise single_problem(source, "", "is a folder, not a YAML file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise single_problem(source, "", f"cannot be read: {exc}") from None

    positions = Positions(source)
    try:
        data = yaml.safe_load(text)
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        loc = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        what = " ".join(str(p) for p in (exc.context, exc.problem) if p)
        raise single_problem(
            source, loc, f"YAML syntax error: {what}", hint="check indentation, colons and quotes"
        ) from None
    except yaml.YAMLError as exc:
        raise single_problem(source, "", f"YAML syntax error: {exc}") from None

    problems: list[Problem] = []
    if node is not None:
        walk_nodes(node, (), positions, SafeConstructor(), problems)
    return data, positions, problems

