"""Prediction: the :class:`Predictor` (sliding window, TTA, inverse to the native grid),
batch prediction over folders, the plain-data checkpoint format it reads, and the export
of a checkpoint's network to ONNX or TorchScript (:func:`export_checkpoint`), which a
predictor runs through onnxruntime (:func:`load_predictor` with ``backend="onnxruntime"``).

What a predictor does besides running its network is one :class:`InferenceSpec`
(defined in :mod:`medimg.core.spec`, stored in every checkpoint)."""

from ..core.spec import InferenceSpec
from .batch import BatchReport, find_cases, predict_folder
from .checkpoint import build_model, load_checkpoint, save_checkpoint
from .export import ExportReport, export_checkpoint
from .onnx_backend import load_predictor
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
    "export_checkpoint",
    "ExportReport",
    "load_predictor",
    "resolve_device",
    "sliding_window",
    "gaussian_importance",
    "tile_starts",
]
