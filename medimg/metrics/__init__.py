"""Evaluation metrics a study can cite: per case, per class, with confidence intervals.

Functional, fast, numpy or torch in: :func:`dice_per_class` and :func:`confusion_counts`
(one ``bincount`` over all classes), surface distances in mm (:func:`hausdorff_per_class`,
:func:`assd_per_class`, :func:`nsd_per_class`) with MONAI 1.6.1's definitions. The
:data:`METRICS` registry names them (``dice``, ``jaccard``, ``precision``, ``recall``,
``specificity``, ``hd95``, ``hd``, ``assd``, ``nsd``, ``volume_ml``, ``volume_ref_ml``,
``volume_diff_ml``, and the lesion-wise ``lesion_sensitivity``, ``lesion_precision``,
``lesion_f1``, ``lesion_dice``, ``lesion_hd95``, ``lesion_fp``, ``lesion_fn`` of
:mod:`.lesions`); :func:`compute_case_metrics` scores two label :class:`Image`;
:func:`evaluate_folders` scores folders (or a file pair) and writes ``metrics.csv``,
``summary.json`` (bootstrap confidence intervals) and ``dice_boxplot.png``.

Modules, by what they do: :mod:`.overlap` (confusion counts, Dice, Jaccard),
:mod:`.surface` (surface distances), :mod:`.registry` (the metrics by name),
:mod:`.case` (one case), :mod:`.labels` (class names and label maps of a prediction
folder, and the check that references match them), :mod:`.evaluate` (folders),
:mod:`.report` and :mod:`.plots` (outputs), :mod:`.bootstrap` (confidence intervals),
:mod:`.html_report`, :mod:`.report_page` and :mod:`.overlays` (``report.html`` /
``report.md``, with the worst cases drawn on their scans).
Definitions, units and the empty-mask conventions are in
:mod:`medimg.metrics.segmentation`.

Classification (:mod:`medimg.metrics.classification`): ``auc``, ``accuracy``,
``balanced_accuracy``, ``sensitivity``, ``specificity``, ``ppv``, ``npv``, ``f1`` and the
confusion matrix for binary, multi-class and multi-label tasks, with class-stratified
bootstrap intervals; :func:`classification_metrics` (all by name), :func:`choose_threshold`
(binary operating threshold from validation data) and :func:`evaluate_classification`
(a predictions CSV against a label CSV or manifest).

Paired comparison of two models on the same cases (:mod:`.compare`,
:mod:`.compare_classification`, :mod:`.delong`): :func:`compare_segmentation`,
:func:`compare_classification`, :func:`paired_difference` (paired bootstrap interval and
Wilcoxon signed-rank test) and :func:`delong_test` (two correlated AUCs).

Calibration: the errors ``ece``,
``brier``, ``nll`` and :func:`fit_temperature` (temperature scaling); and
:func:`subgroup_analysis` (every metric per group of patients, with the gaps between
groups and, for binary tasks, equal opportunity and equalised odds).
"""

from .bootstrap import bootstrap_ci, summarize
from .case import DEFAULT_METRICS, case_id_from_path, compute_case_metrics
from .classification import (
    CLASSIFICATION_METRICS,
    ClassificationReport,
    SubgroupReport,
    ThresholdChoice,
    choose_threshold,
    classification_metrics,
    evaluate_classification,
    fit_temperature,
    subgroup_analysis,
)
from .compare import CompareReport, compare_segmentation, paired_difference
from .compare_classification import compare_classification
from .delong import delong_test
from .evaluate import evaluate_folders, find_cases
from .labels import load_label_names
from .lesions import LesionMatch, match_lesions  # registers the lesion_* metrics
from .overlap import (
    ConfusionCounts,
    confusion_counts,
    confusion_matrix,
    dice_per_class,
    jaccard_per_class,
)
from .registry import METRICS, SegmentationMetric, compute_metrics, metric_params_defaults
from .report import CSV_COLUMNS, EvaluationReport, write_metrics_csv
from .surface import (
    assd_per_class,
    hausdorff_per_class,
    nsd_per_class,
    surface_distances,
    surface_points,
)

__all__ = [
    "METRICS",
    "SegmentationMetric",
    "ConfusionCounts",
    "confusion_matrix",
    "confusion_counts",
    "dice_per_class",
    "jaccard_per_class",
    "surface_points",
    "surface_distances",
    "hausdorff_per_class",
    "assd_per_class",
    "nsd_per_class",
    "compute_metrics",
    "metric_params_defaults",
    "bootstrap_ci",
    "summarize",
    "CSV_COLUMNS",
    "DEFAULT_METRICS",
    "EvaluationReport",
    "case_id_from_path",
    "compute_case_metrics",
    "evaluate_folders",
    "find_cases",
    "load_label_names",
    "write_metrics_csv",
    "CLASSIFICATION_METRICS",
    "ClassificationReport",
    "ThresholdChoice",
    "choose_threshold",
    "classification_metrics",
    "evaluate_classification",
    "LesionMatch",
    "match_lesions",
    "CompareReport",
    "compare_segmentation",
    "compare_classification",
    "paired_difference",
    "delong_test",
    "SubgroupReport",
    "fit_temperature",
    "subgroup_analysis",
]
