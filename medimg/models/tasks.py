"""Which task a registered model serves: ``segmentation`` or ``classification``.

A factory states its task in an attribute, ``factory.task``; the classification
factories set it when they register (:func:`register_classifier`). The segmentation
factories registered before tasks existed are named in :data:`SEGMENTATION_MODELS`
until they carry the attribute themselves. A plugin model states its task the same
way; one that does not has no known task (``None``), and nothing is checked for it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from .registry import MODELS

__all__ = ["SEGMENTATION_MODELS", "TASKS", "model_task", "register_classifier"]

#: The tasks a model can serve (``experiment.task`` in a config).
TASKS: tuple[str, ...] = ("segmentation", "classification")

#: Built-in segmentation factories without a ``task`` attribute of their own.
SEGMENTATION_MODELS: frozenset[str] = frozenset(
    {"unet", "basic_unet", "segresnet", "dynunet", "attention_unet", "swin_unetr"}
)

F = TypeVar("F", bound=Callable[..., Any])


def model_task(name: str) -> str | None:
    """The task of the registered model ``name``: ``"segmentation"``, ``"classification"``
    or None when the model does not say (a plugin without a ``task`` attribute).

    Raises:
        UnknownComponentError: no model of that name (with did-you-mean).
    """
    factory = MODELS.get(name)
    task = getattr(factory, "task", None)
    if task is None and str(name).lower() in SEGMENTATION_MODELS:
        return "segmentation"
    return task


def register_classifier(name: str) -> Callable[[F], F]:
    """Decorator: register a classification factory in ``MODELS`` under ``name`` and
    mark it ``task = "classification"``."""

    def _add(factory: F) -> F:
        factory.task = "classification"  # type: ignore[attr-defined]
        MODELS.register(name, factory)
        return factory

    return _add
