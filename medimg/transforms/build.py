"""Build transforms from plain specs (``{"name": ..., **kwargs}``), as in configs and checkpoints."""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping
from typing import Any

from ..core.errors import TransformError
from .base import TRANSFORMS, Compose, Transform

__all__ = ["build_transform", "build_compose"]


def build_transform(spec: Mapping[str, Any] | Transform) -> Transform:
    """One transform from ``{"name": registered_name, **constructor_kwargs}``.

    Raises:
        UnknownComponentError: no transform of that name (with did-you-mean).
        TransformError: the kwargs do not fit the constructor (names the transform and
            lists its parameters).
    """
    if isinstance(spec, Transform):
        return spec
    if hasattr(spec, "model_dump"):  # a pydantic ComponentSpec
        spec = spec.model_dump()
    spec = dict(spec)
    if "name" not in spec:
        raise TransformError(f"a transform spec needs a 'name', got keys {sorted(spec)}")
    name = spec.pop("name")
    cls = TRANSFORMS.get(name)
    try:
        inspect.signature(cls).bind(**spec)
    except TypeError as exc:
        raise TransformError(
            f"{name}: invalid arguments {sorted(spec)}: {exc}",
            hint=f"{name} takes {inspect.signature(cls)}",
        ) from None
    return cls(**spec)


def build_compose(specs: Iterable[Mapping[str, Any] | Transform]) -> Compose:
    """A :class:`Compose` of :func:`build_transform` of each spec, in order."""
    return Compose([build_transform(s) for s in specs])
