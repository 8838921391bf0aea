"""Prediction: the :class:`Predictor` (sliding window, TTA, inverse to the native grid),
batch prediction over folders, and the plain-data checkpoint format it reads.

What a predictor does besides running its network is one :class:`InferenceSpec`
(defined in :mod:`medimg.core.spec`, stored in every checkpoint)."""

from ..core.spec import InferenceSpec
from .batch import BatchReport, find_cases, predict_folder
from .checkpoint import build_model, load_checkpoint, save_checkpoint
from .predictor import Predictor, resolve_device
from .sliding import gaussian_importance, sliding_window, tile_starts

__all__ = [
    "Predictor",
    "InferenceSpec",
    "predict_folder",
    "BatchReport",
    "find_cases",
    "save_checkpoint",
    "load_checkpoint",
    "build_model",
    "resolve_device",
    "sliding_window",
    "gaussian_importance",
    "tile_starts",
]
