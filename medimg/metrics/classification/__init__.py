"""Classification metrics a study can cite: values, stratified bootstrap intervals, figures.

Pure functions on numpy arrays (or tensors), for binary, multi-class and multi-label tasks
(:mod:`.tasks` gives the layouts and the one decision rule, :func:`predict_labels`):
:func:`auc`, :func:`accuracy`, :func:`balanced_accuracy`, :func:`sensitivity`,
:func:`specificity`, :func:`ppv`, :func:`npv`, :func:`f1`, :func:`confusion_matrix`,
:func:`roc_curve`, and the calibration errors :func:`ece`, :func:`brier`, :func:`nll`
(:mod:`.calibration`); :func:`classification_metrics` gives them all by name (what training
validates on), :func:`choose_threshold` picks a binary operating threshold on validation
data. :func:`evaluate_classification` scores a predictions CSV against a label CSV or
manifest and writes ``metrics.csv``, ``summary.json``, ``confusion_matrix.csv``,
``roc_curve.csv``, ``roc_curve.png``, ``confusion_matrix.png`` and ``reliability_diagram.png``, and with
metadata :func:`subgroup_analysis` (every metric per group of patients, the gaps between
groups, equal opportunity and equalised odds) into ``subgroups.csv``; the CSV formats are
in :mod:`medimg.metrics.classification.evaluate`. :func:`fit_temperature` fits
temperature scaling on validation logits (``medimg calibrate``).

Values that do not exist are never made up: the AUC of labels of one class raises an
error naming the split; a ratio with a zero denominator (``ppv`` with nothing predicted
positive) is NaN, and the report says why.

Modules, by what they do: :mod:`.tasks` (inputs, decision rule), :mod:`.counts`
(confusion counts and the metrics made of them), :mod:`.roc` (AUC, ROC, threshold
choice), :mod:`.calibration` and :mod:`.temperature` (calibration), :mod:`.bootstrap`
(intervals), :mod:`.subgroups` (groups of patients), :mod:`.inputs` and :mod:`.decisions`
(the CSV files), :mod:`.evaluate`, :mod:`.report`, :mod:`.writing`, :mod:`.plots`,
:mod:`.reliability` (outputs).
"""

from .calibration import CALIBRATION_METRICS, ECE_BINS, brier, ece, nll
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
from .subgroups import SubgroupReport, subgroup_analysis
from .tasks import TASKS, predict_labels
from .temperature import fit_temperature

__all__ = [
    "CALIBRATION_METRICS",
    "CLASSIFICATION_METRICS",
    "ECE_BINS",
    "METRICS_CSV_COLUMNS",
    "TASKS",
    "ClassificationReport",
    "SubgroupReport",
    "ThresholdChoice",
    "accuracy",
    "auc",
    "balanced_accuracy",
    "brier",
    "choose_threshold",
    "classification_metrics",
    "confusion_matrix",
    "ece",
    "evaluate_classification",
    "f1",
    "fit_temperature",
    "nll",
    "npv",
    "ppv",
    "predict_labels",
    "roc_curve",
    "sensitivity",
    "specificity",
    "subgroup_analysis",
]
