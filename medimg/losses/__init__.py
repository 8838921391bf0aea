"""Segmentation losses by registered name (MONAI's, with the right defaults)."""

from .registry import LOSSES, create_loss

__all__ = ["LOSSES", "create_loss"]
