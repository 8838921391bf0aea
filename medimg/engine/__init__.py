"""Training: the :class:`Trainer` (a loop plus callbacks), ``train(config)``,
optimizers/schedulers registries, checkpoints (format defined in
:mod:`medimg.inference.checkpoint`), torchrun/DDP, and :func:`calibrate_run` (temperature
scaling of a trained classifier, ``medimg calibrate``), :func:`cross_validate` (every fold
of a split file, ``medimg cv``), TensorBoard tracking (:class:`TensorBoardLogger`) and
:func:`model_card` (``MODEL_CARD.md`` from a run folder, ``medimg card``)."""

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
from .cv import CVResult, FoldResult, cross_validate
from .distributed import DistInfo
from .optim import OPTIMIZERS, SCHEDULERS
from .run import model_params_for, seed_everything, train
from .tracking import TensorBoardLogger
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
    "cross_validate",
    "CVResult",
    "FoldResult",
    "TensorBoardLogger",
    "model_card",
]
