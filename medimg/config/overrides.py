"""``--set KEY=VALUE`` overrides: parse them and apply them to a config's data.

The value is parsed as YAML (``5`` -> int, ``[1, 2]`` -> list, ``null`` -> None,
``{name: x}`` -> dict). Whether the keys exist in the schema is checked afterwards, by
validation, which reports unknown ones with a did-you-mean.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from ..core.builder import KeyPath, format_key
from .problems import override_error, short

__all__ = ["parse_override", "apply_overrides"]

_TOKEN = re.compile(r"\[(-?\d+)\]|([^.\[\]]+)")


def parse_override(text: str) -> tuple[KeyPath, Any, str]:
    """Parse ``a.b[1].c=value`` into ``(("a", "b", 1, "c"), value, "value")``.

    The value is parsed as YAML (``5`` -> int, ``[1, 2]`` -> list, ``null`` -> None,
    ``{name: x}`` -> dict); the raw text is returned too. ``a.b.1.c`` is the same key
    as ``a.b[1].c`` when ``b`` is a list.

    Raises:
        ConfigError: no ``=``, an empty or malformed key, or a value that is not YAML.
    """
    if "=" not in text:
        raise override_error(text, "expected KEY=VALUE, e.g. --set trainer.max_epochs=5")
    key, raw = text.split("=", 1)
    key = key.strip()
    path: list[Any] = []
    pos = 0
    for m in _TOKEN.finditer(key):
        between = key[pos : m.start()]
        if between not in ("", "."):
            raise override_error(text, f"cannot parse the key '{key}'")
        pos = m.end()
        path.append(int(m.group(1)) if m.group(1) is not None else m.group(2).strip())
    if not path or key[pos:] not in ("",) or key.endswith("."):
        raise override_error(text, f"cannot parse the key '{key}'")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as exc:
        raise override_error(
            text, f"the value '{raw}' is not valid YAML ({getattr(exc, 'problem', exc)})",
        ) from None
    return tuple(path), value, raw


def _as_index(token: Any) -> int | None:
    if isinstance(token, int) and not isinstance(token, bool):
        return token
    if isinstance(token, str) and re.fullmatch(r"-?\d+", token):
        return int(token)
    return None


def _dict_key(mapping: Mapping[Any, Any], token: Any) -> Any:
    """The existing key of ``mapping`` that ``token`` names (``"4"`` may mean ``4``)."""
    if token in mapping:
        return token
    for k in mapping:
        if str(k) == str(token):
            return k
    if isinstance(token, str):
        try:
            parsed = yaml.safe_load(token)
        except yaml.YAMLError:
            return token
        if isinstance(parsed, int) and not isinstance(parsed, bool):
            return parsed
    return token


def _step(cur: Any, token: Any, last: bool, value: Any, real: list[Any], text: str) -> Any:
    """Descend one key of an override into ``cur`` (setting ``value`` at the last one).

    Appends the real key (an existing dict key, or a non-negative list index) to ``real``
    and returns the container to descend into next.
    """
    where = format_key(real) if real else "the top level"
    if isinstance(cur, dict):
        key = _dict_key(cur, token)
        real.append(key)
        if last:
            cur[key] = value
        elif cur.get(key) is None:
            cur[key] = {}
        return None if last else cur[key]
    if isinstance(cur, list):
        idx = _as_index(token)
        if idx is None:
            raise override_error(text, f"{where} is a list; index it with a number, e.g. {where}[0]")
        if not -len(cur) <= idx < len(cur):
            raise override_error(
                text,
                f"{where} has {len(cur)} entries, so index {idx} does not exist; "
                f"replace the whole list instead: --set '{where}=[...]'",
            )
        idx %= len(cur)
        real.append(idx)
        if last:
            cur[idx] = value
        return None if last else cur[idx]
    raise override_error(text, f"{where} is {short(cur)}, not a section or list, so it has no key '{token}'")


def apply_overrides(
    data: Mapping[str, Any], overrides: Sequence[str]
) -> tuple[dict[str, Any], list[tuple[KeyPath, Any, str]]]:
    """Return a copy of ``data`` with every ``--set KEY=VALUE`` applied, in order.

    Missing mappings along the way are created (``--set scheduler.name=cosine`` works
    when the file has no scheduler); list items must exist (use ``--set key=[...]`` to
    replace a whole list). Whether the keys exist in the schema is checked afterwards
    by validation, which reports unknown ones with a did-you-mean.

    Returns:
        The new data and the applied ``(key path, value, raw text)`` triples, with list
        indices normalised to non-negative ints.

    Raises:
        ConfigError: an override that cannot be parsed, or that indexes past a list or
            into a value.
    """
    out: dict[str, Any] = copy.deepcopy(dict(data))
    applied: list[tuple[KeyPath, Any, str]] = []
    for text in overrides:
        path, value, raw = parse_override(text)
        cur: Any = out
        real: list[Any] = []
        for depth, token in enumerate(path):
            cur = _step(cur, token, depth == len(path) - 1, value, real, text)
        applied.append((tuple(real), value, raw))
    return out, applied
