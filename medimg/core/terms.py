"""Python values and annotations as a config (YAML) writes them, for messages and help.

``type_text(Sequence[float | None])`` is ``list[float | null]``; ``yaml_value(None)`` is
``null``. Used by ``medimg list`` and by the builder's parameter checks, so a config
writer never reads a Python type name (``Sequence``, ``NoneType``, ``Optional``).
Imports nothing heavy.
"""

from __future__ import annotations

import inspect
import re
from typing import Any

__all__ = ["type_text", "yaml_value"]


def _split_top(text: str, sep: str) -> list[str]:
    """Split ``text`` at ``sep`` outside brackets."""
    parts, depth, cur = [], 0, ""
    for ch in text:
        depth += ch == "["
        depth -= ch == "]"
        if ch == sep and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    return [p.strip() for p in [*parts, cur]]


_LISTS = {"Sequence", "Iterable", "list", "List", "Collection", "MutableSequence", "set", "Set", "frozenset"}
_DICTS = {"Mapping", "dict", "Dict", "MutableMapping"}
_NAMES = {"None": "null", "NoneType": "null", "Any": "any"}


def type_text(annotation: Any) -> str:
    """A parameter's annotation as a config writes its value: ``list[float]``,
    ``str | null``, ``[float, float]`` (a fixed-length list), ``dict[int, int]``."""
    if annotation is inspect.Parameter.empty:
        return ""
    if not isinstance(annotation, str):
        annotation = annotation.__name__ if isinstance(annotation, type) else inspect.formatannotation(annotation)
    text = re.sub(r"\b(?:[A-Za-z_]\w*\.)+([A-Za-z_]\w*)", r"\1", annotation)
    try:
        return _render(text)
    except (IndexError, ValueError):  # something this little parser does not follow
        return text


def _render(text: str) -> str:
    members = _split_top(text, "|")
    if len(members) > 1:
        return " | ".join(dict.fromkeys(_render(m) for m in members))
    text = members[0]
    m = re.fullmatch(r"(\w+)\[(.*)\]", text)
    if not m:
        return _NAMES.get(text, text)
    head, args = m.group(1), _split_top(m.group(2), ",")
    if head == "Optional":
        return f"{_render(args[0])} | null"
    if head == "Union":
        return " | ".join(dict.fromkeys(_render(a) for a in args))
    if head == "Literal":
        return " | ".join(args)
    if head in ("tuple", "Tuple"):
        if len(args) == 2 and args[1] == "...":
            return f"list[{_render(args[0])}]"
        return "[" + ", ".join(_render(a) for a in args) + "]"
    if head in _LISTS:
        return f"list[{_render(args[0])}]"
    if head in _DICTS:
        return f"dict[{', '.join(_render(a) for a in args)}]"
    return f"{head}[{', '.join(_render(a) for a in args)}]"


def yaml_value(value: Any) -> str:
    """``value`` as YAML writes it inline: null, true, [16, 32], {1: 1}, 'a b'."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        plain = re.fullmatch(r"[A-Za-z_][\w.\-/]*", value) and value.lower() not in (
            "null", "true", "false", "yes", "no", "on", "off", "none")
        return value if plain else "'" + value.replace("'", "''") + "'"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(yaml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{yaml_value(k)}: {yaml_value(v)}" for k, v in value.items()) + "}"
    return repr(value)
