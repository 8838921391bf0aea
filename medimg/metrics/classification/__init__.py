"""Classification metrics a study can cite: values, stratified bootstrap intervals, figures.

Pure functions on numpy arrays (or tensors), for binary, multi-class and multi-label tasks
(:mod:`.tasks` gives the layouts and the one decision rule, :func:`predict_labels`):
:func:`auc`, :func:`accuracy`, :func:`balanced_accuracy`, :func:`sensitivity`,
:func:`specificity`, :func:`ppv`, :func:`npv`, :func:`f1`, :func:`confusion_matrix`,
:func:`roc_curve`; :func:`classification_metrics` gives them all by name (what training
validates on), :func:`choose_threshold` picks a binary operating threshold on validation
data. :func:`evaluate_classification` scores a predictions CSV against a label CSV or
manifest and writes ``metrics.csv``, ``summary.json``, ``confusion_matrix.csv``,
``roc_curve.png`` and ``confusion_matrix.png``; the CSV formats are in
:mod:`medimg.metrics.classification.evaluate`.

Values that do not exist are never made up: the AUC of labels of one class raises an
error naming the split; a ratio with a zero denominator (``ppv`` with nothing predicted
positive) is NaN, and the report says why.

Modules, by what they do: :mod:`.tasks` (inputs, decision rule), :mod:`.counts`
(confusion counts and the metrics made of them), :mod:`.roc` (AUC, ROC, threshold
choice), :mod:`.bootstrap` (intervals), :mod:`.inputs` and :mod:`.decisions` (the CSV
files), :mod:`.evaluate`, :mod:`.report`, :mod:`.writing`, :mod:`.plots` (outputs).
"""

from .counts import (
    CLASSIFICATION_METRICS,
    accuracy,
    balanced_accuracy,
    classification_metrics,
    confusion_matrix,
    f1,
    npv,
    ppv,
    sensitivity,
    specificity,
)
from .evaluate import evaluate_classification
from .report import METRICS_CSV_COLUMNS, ClassificationReport
from .roc import ThresholdChoice, auc, choose_threshold, roc_curve
from .tasks import TASKS, predict_labels

__all__ = [
    "CLASSIFICATION_METRICS",
    "METRICS_CSV_COLUMNS",
    "TASKS",
    "ClassificationReport",
    "ThresholdChoice",
    "accuracy",
    "auc",
    "balanced_accuracy",
    "choose_threshold",
    "classification_metrics",
    "confusion_matrix",
    "evaluate_classification",
    "f1",
    "npv",
    "ppv",
    "predict_labels",
    "roc_curve",
    "sensitivity",
    "specificity",
]
