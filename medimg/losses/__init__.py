"""Segmentation losses by registered name (MONAI's, with the right defaults)."""

from .registry import LOSSES, create_loss

__all__ = ["LOSSES", "create_loss"]

# Classification losses (issue 7): importing the module registers them in LOSSES.
from . import classification  # noqa: F401  (registers the classification components)
from .tasks import loss_task

__all__ += ["loss_task"]
