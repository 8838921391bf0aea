"""Which task a registered loss serves: ``segmentation`` or ``classification``.

A loss factory states its task in an attribute, ``factory.task``; the classification
losses set it when they register. The segmentation losses registered before tasks
existed are named in :data:`SEGMENTATION_LOSSES` until they carry the attribute
themselves. A plugin loss without the attribute has no known task (``None``).
"""

from __future__ import annotations

from .registry import LOSSES

__all__ = ["SEGMENTATION_LOSSES", "loss_task"]

#: Built-in segmentation losses without a ``task`` attribute of their own.
SEGMENTATION_LOSSES: frozenset[str] = frozenset(
    {"ce", "dice", "dice_ce", "focal", "dice_focal", "generalized_dice", "tversky", "deep_supervision"}
)


def loss_task(name: str) -> str | None:
    """The task of the registered loss ``name``: ``"segmentation"``, ``"classification"``
    or None when the loss does not say (a plugin without a ``task`` attribute).

    Raises:
        UnknownComponentError: no loss of that name (with did-you-mean).
    """
    task = getattr(LOSSES.get(name), "task", None)
    if task is None and str(name).lower() in SEGMENTATION_LOSSES:
        return "segmentation"
    return task
