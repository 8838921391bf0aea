"""Transforms from specs (``{"name": ..., **kwargs}``): the one way preprocessing is built.

:func:`build_transforms` builds training preprocessing, augmentation and the
:class:`~medimg.inference.Predictor`'s preprocessing alike, so what is replayed at
prediction is exactly what was trained on. Each spec goes through the registry's
signature-checked builder (:meth:`medimg.core.Registry.build`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..core.builder import as_spec, check_spec, format_key
from ..core.errors import TransformError
from ..core.spec import ComponentSpec
from .base import TRANSFORMS, Compose, Transform

__all__ = ["build_transforms", "build_transform", "build_compose"]

SpecLike = ComponentSpec | Mapping[str, Any]


def build_transforms(
    specs: Sequence[SpecLike], key: str = "transforms", *, deterministic: bool = False
) -> Compose:
    """A :class:`Compose` of the transforms ``specs`` name, in order.

    Args:
        specs: transform specs (a config's ``preprocess`` or ``augment``, or a
            checkpoint's preprocessing).
        key: where the list sits in a config (``"preprocess"``), for messages
            (``preprocess[1].spacing``).
        deterministic: refuse random transforms (preprocessing is replayed and inverted
            at prediction time).

    Raises:
        TransformError: ``deterministic`` and a spec names a random transform.
        ConfigError: an unknown name or parameter, a value of the wrong type, or a
            constructor rejecting its arguments; the message names ``key[i]``.
    """
    specs = [as_spec(s) for s in specs]
    if deterministic:
        for i, spec in enumerate(specs):
            if spec.name in TRANSFORMS and getattr(TRANSFORMS.get(spec.name), "random", False):
                raise TransformError(
                    f"{key}[{i}] '{spec.name}' is a random transform; {key} is replayed at "
                    "prediction time and must be deterministic",
                    hint="move it to the 'augment' list",
                )
    return Compose(TRANSFORMS.build(spec, key=f"{key}[{i}]") for i, spec in enumerate(specs))


def build_transform(spec: SpecLike | Transform) -> Transform:
    """One transform from ``{"name": registered_name, **constructor_kwargs}`` (or a ready one).

    Raises:
        UnknownComponentError: no transform of that name (with did-you-mean).
        TransformError: the kwargs do not fit the constructor (names the transform and
            what is wrong with each kwarg).
    """
    if isinstance(spec, Transform):
        return spec
    spec = as_spec(spec)
    TRANSFORMS.get(spec.name)  # unknown name: did-you-mean
    problems = check_spec(TRANSFORMS, spec)
    if problems:
        detail = "; ".join(f"'{format_key(k)}': {m}" if k else m for k, m in problems)
        raise TransformError(
            f"{spec.name}: invalid arguments {sorted(spec.params)}: {detail}",
            hint=f"see `medimg list transforms {spec.name}` for its parameters",
        )
    return TRANSFORMS.build(spec)


def build_compose(specs: Iterable[SpecLike | Transform]) -> Compose:
    """A :class:`Compose` of :func:`build_transform` of each spec, in order."""
    return Compose([build_transform(s) for s in specs])
