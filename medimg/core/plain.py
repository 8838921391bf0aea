"""Plain data: what YAML, JSON and ``torch.load(..., weights_only=True)`` can hold.

:func:`to_plain` is the one conversion used wherever medimg writes structured data next
to results: checkpoints (``medimg.inference.checkpoint``), run folders
(``config.resolved.yaml``, ``environment.json``) and reports.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

__all__ = ["to_plain"]


def to_plain(value: Any) -> Any:
    """Convert specs and config values to plain data, recursively.

    Pydantic models become their ``model_dump()`` (extra keys included), paths become
    strings, tuples and lists become lists, numpy / torch scalars become Python numbers.
    Mapping keys stay ``str`` or ``int`` (a label map ``{4: 1}`` keeps its int keys);
    other keys become strings.

    Returns:
        Only ``dict``, ``list``, ``str``, ``int``, ``float``, ``bool`` and ``None``.

    Raises:
        TypeError: a value with no plain form (an array, a module, an open file...).
    """
    if hasattr(value, "model_dump"):
        return to_plain(value.model_dump(mode="python"))
    if isinstance(value, Mapping):
        return {(k if isinstance(k, (str, int)) else str(k)): to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    if value is None:
        return None
    for kind in (bool, int, float, str):  # exact builtins (numpy's float64 is a float subclass)
        if isinstance(value, kind):
            return kind(value)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if hasattr(value, "item") and getattr(value, "ndim", 0) == 0:  # numpy / torch scalar
        return value.item()
    raise TypeError(f"cannot store {type(value).__name__} value {value!r} as plain data")
