"""Prediction: the :class:`Predictor` (sliding window, TTA, inverse to the native grid),
batch prediction over folders, and the plain-data checkpoint format it reads."""

from .batch import BatchReport, find_cases, predict_folder
from .checkpoint import build_model, load_checkpoint, save_checkpoint
from .predictor import INFERENCE_DEFAULTS, Predictor, build_preprocess, resolve_device
from .sliding import gaussian_importance, sliding_window, tile_starts

__all__ = [
    "Predictor",
    "predict_folder",
    "BatchReport",
    "find_cases",
    "save_checkpoint",
    "load_checkpoint",
    "build_model",
    "build_preprocess",
    "resolve_device",
    "INFERENCE_DEFAULTS",
    "sliding_window",
    "gaussian_importance",
    "tile_starts",
]
