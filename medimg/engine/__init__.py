"""Training: the :class:`Trainer` (a loop plus callbacks), ``train(config)``,
optimizers/schedulers registries, checkpoints (format defined in
:mod:`medimg.inference.checkpoint`), torchrun/DDP, and :func:`calibrate_run` (temperature
scaling of a trained classifier, ``medimg calibrate``) and :func:`model_card` (``MODEL_CARD.md``
from a run folder, ``medimg card``)."""

from ..inference.checkpoint import build_model, load_checkpoint, save_checkpoint
from .calibrate import CalibrationResult, calibrate_run
from .callbacks import (
    BestModelCheckpoint,
    Callback,
    EarlyStopping,
    FitState,
    History,
    StopAgreement,
    TimeBudget,
)
from .card import model_card
from .distributed import DistInfo
from .optim import OPTIMIZERS, SCHEDULERS
from .run import model_params_for, seed_everything, train
from .trainer import Trainer, TrainResult, validation_metrics

__all__ = [
    "train",
    "Trainer",
    "TrainResult",
    "OPTIMIZERS",
    "SCHEDULERS",
    "save_checkpoint",
    "load_checkpoint",
    "build_model",
    "validation_metrics",
    "seed_everything",
    "model_params_for",
    "DistInfo",
    "Callback",
    "FitState",
    "BestModelCheckpoint",
    "EarlyStopping",
    "TimeBudget",
    "History",
    "StopAgreement",
    "CalibrationResult",
    "calibrate_run",
    "model_card",
]
