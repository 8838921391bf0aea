"""Invertible, replayable transforms on :class:`~medimg.core.Sample` (see base.py)."""

from .base import TRANSFORMS, Compose, Transform, invert_history, invert_image

__all__ = ["TRANSFORMS", "Compose", "Transform", "invert_history", "invert_image"]
