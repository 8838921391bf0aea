"""Score a predictions CSV against a label CSV or manifest: every metric, with intervals.

:func:`evaluate_classification` is what ``medimg evaluate PREDICTIONS.csv LABELS.csv``
runs. The two files:

**Predictions** (what ``medimg predict`` writes for a classifier), one row per case::

    case_id,prob_normal,prob_pneumonia,predicted,threshold
    p001,0.91,0.09,normal,0.42
    p002,0.12,0.88,pneumonia,0.42

* ``case_id``: the case, as in the labels;
* ``prob_<class>``: the probability of each class, one column per class, in the model's
  class order (two columns for a binary task: the second is the positive class;
  multi-label: one independent probability per label);
* ``predicted`` (optional): the class predicted; multi-label: the labels predicted
  present, joined by ``;`` (empty for none). Where present it is what is scored;
  without it the prediction is made from the probabilities;
* ``threshold`` (optional, binary and multi-label): the operating threshold the model
  predicted at (positive when ``prob >= threshold``); multi-label may give
  ``threshold_<label>`` per label. Without it 0.5 is used, and the report says so.

**Labels**, a CSV or a data manifest, one row per case::

    case_id,label              case_id,image,label,split      case_id,effusion,nodule
    p001,normal                p001,img/p001.png,normal,test  c1,1,0
    p002,pneumonia                                            c2,0,0

* ``case_id`` and ``label``: each case's class, by name (a class of the ``prob_``
  columns), or by index ``0..K-1`` in their order when no value is a class name;
  another column may be named (``label_column``);
* multi-label: no ``label`` column, but one 0/1 column per label, named as the labels;
* other columns (``image``, ``patient_id``...) are ignored; ``split`` keeps one split.

Cases are matched by ``case_id``. One present in one file only is listed in the report
(``missing_prediction``, ``missing_label``) and makes it not ok; it is never dropped
silently. The metrics (:mod:`.counts`, :mod:`.roc`) come with class-stratified percentile
bootstrap intervals (:mod:`.bootstrap`).

Outputs, in ``output_dir``: ``metrics.csv`` (``metric, class, value, ci_low, ci_high,
n``; class ``overall`` is the task's value: the positive class for binary tasks, the
macro average over classes otherwise), ``summary.json``, ``confusion_matrix.csv``,
``roc_curve.csv`` (``class, threshold, false_positive_rate, sensitivity, specificity,
accuracy, predicted_positive``: every operating point of each ROC curve, one-vs-rest for
multi-class and multi-label tasks; the first row of a class, at ``inf``, calls nothing
positive), ``roc_curve.png``, ``confusion_matrix.png`` and ``reliability_diagram.png`` (the
figures need ``medimg[plots]``); with subgroups, ``subgroups.csv`` (:mod:`.subgroups`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ...core.errors import DataError
from .bootstrap import bootstrap_intervals
from .calibration import CALIBRATION_METRICS
from .counts import check_metric_names, metric_table, one_vs_rest_counts, undefined_reason
from .decisions import decisions
from .inputs import CASE_ID, LabelsTable, PredictionsTable, read_labels, read_predictions
from .report import ClassificationReport
from .roc import check_auc_defined
from .subgroups import SubgroupReport, metadata_groups, subgroup_analysis
from .tasks import Prepared, prepare
from .writing import write_report

__all__ = ["evaluate_classification"]


def evaluate_classification(
    predictions_csv: str | Path,
    labels_csv: str | Path,
    output_dir: str | Path | None = None,
    *,
    label_column: str | None = None,
    split: str | None = None,
    threshold: float | None = None,
    metrics: Any = None,
    bootstrap: int = 1000,
    ci: float = 0.95,
    seed: int = 0,
    metadata: str | Path | None = None,
    subgroups: Any = None,
) -> ClassificationReport:
    """Score a predictions CSV against labels (formats in the module docstring).

    Args:
        predictions_csv: ``case_id``, ``prob_<class>``... [, ``predicted``, ``threshold``].
        labels_csv: a label CSV or manifest with ``case_id`` and the label column(s).
        output_dir: where the files go (None: nothing is written).
        label_column: the labels' column (default ``label``; multi-label: one per class).
        split: score only the labels' rows of this ``split`` (e.g. ``"test"``).
        threshold: decide binary / multi-label cases at this threshold instead of the
            predictions' ``predicted`` and ``threshold`` columns.
        metrics: names among :data:`~.counts.CLASSIFICATION_METRICS` (default: all).
        bootstrap: resamples for the intervals (0: none). ci: their coverage. seed: theirs.
        metadata: a CSV with ``case_id`` and one column per attribute (``sex``,
            ``site``...), for ``subgroups``.
        subgroups: column names of ``metadata``: every metric per group of each, with
            the gaps between groups (:mod:`.subgroups`), into ``subgroups.csv`` and
            ``summary.json``. A missing file or column, a column of one value, or scored
            cases absent from the metadata are listed in ``report.subgroups.problems``
            (and make ``all_ok`` false), not raised: the rest is still scored.

    Returns:
        the :class:`~.report.ClassificationReport`; check ``all_ok``.

    Raises:
        DataError: a file or column is missing or malformed, a label is not a declared
            class, no case id is in both files, or the AUC is asked for on labels of
            one class (leave ``auc`` out of ``metrics`` to score such data).
    """
    names = check_metric_names(metrics)
    preds = read_predictions(predictions_csv)
    labels = read_labels(
        labels_csv, preds.classes, label_column=label_column, split=split, source=preds.path.name
    )
    task = (
        "multilabel"
        if labels.multilabel
        else ("binary" if len(preds.classes) == 2 else "multiclass")
    )
    rows, missing_label, missing_prediction = _match(preds, labels)
    prep = _prepared(preds, labels, rows, task)
    y_pred, threshold_info, notes, warnings = decisions(preds, rows, prep, threshold)
    if "auc" in names:
        _check_auc(prep, preds.classes, split, labels.path)
    report = _score(prep, y_pred, names, preds.classes, bootstrap=bootstrap, ci=ci, seed=seed)
    report.cases = [preds.case_ids[i] for i in rows]
    report.threshold = threshold_info
    report.missing_prediction, report.missing_label = missing_prediction, missing_label
    report.notes = ([labels.note] if labels.note else []) + notes
    report.warnings = warnings + _split_advice(labels, preds, missing_prediction, split)
    report.settings = {
        "predictions": str(preds.path), "labels": str(labels.path), "label_columns": labels.columns,
        "split": split, "bootstrap": int(bootstrap), "ci": ci, "seed": seed,
        "resampling": "cases, stratified by class" + (" combination" if task == "multilabel" else ""),
    }
    if subgroups:
        report.subgroups = _subgroups(prep, y_pred, report.cases, metadata, subgroups, names, bootstrap, ci, seed)
    if output_dir is not None:
        truth, scores = prep.one_vs_rest()
        write_report(report, output_dir, {"truth": truth, "scores": scores, "prep": prep})
    return report


def _subgroups(prep: Prepared, y_pred: np.ndarray, cases: list[str], metadata: Any, columns: Any,
               names: tuple[str, ...], bootstrap: int, ci: float, seed: int) -> SubgroupReport:
    """The subgroup analysis of the scored cases that the metadata has."""
    columns = [columns] if isinstance(columns, str) else list(columns)
    if metadata is None:
        return SubgroupReport(prep.task, problems=["subgroups need a metadata file (case_id + one column per attribute)"])
    groups, rows, problems = metadata_groups(metadata, columns, cases)
    if not rows or not groups:
        return SubgroupReport(prep.task, problems=problems)
    sub = Prepared(prep.task, prep.y[rows], prep.scores[rows], prep.num_classes)
    report = subgroup_analysis(sub.y, sub.scores, groups, task=prep.task, y_pred=y_pred[rows], metrics=names,
                               bootstrap=bootstrap, ci=ci, seed=seed)
    report.problems = problems + report.problems
    return report


def _match(preds: PredictionsTable, labels: LabelsTable) -> tuple[list[int], list[str], list[str]]:
    """``(rows of the predictions in both files, missing_label, missing_prediction)``."""
    rows = [i for i, cid in enumerate(preds.case_ids) if cid in labels.y]
    have = set(preds.case_ids)
    missing_label = [cid for cid in preds.case_ids if cid not in labels.y]
    missing_prediction = [cid for cid in labels.y if cid not in have]
    if not rows:
        raise DataError(
            f"no {CASE_ID} of '{preds.path}' is in '{labels.path}' (e.g. '{preds.case_ids[0]}' "
            f"vs '{next(iter(labels.y))}')",
            hint="both files must name the cases with the same case_id values",
        )
    return rows, missing_label, missing_prediction


def _prepared(preds: PredictionsTable, labels: LabelsTable, rows: list[int], task: str) -> Prepared:
    ids = [preds.case_ids[i] for i in rows]
    y = (
        np.stack([np.asarray(labels.y[c]) for c in ids])
        if task == "multilabel"
        else np.array([labels.y[c] for c in ids])
    )
    return prepare(y, preds.probs[rows], task)


def _check_auc(prep: Prepared, classes: list[str], split: str | None, path: Path) -> None:
    truth = prep.one_vs_rest()[0]
    names = [classes[1]] if prep.task == "binary" else classes
    try:
        check_auc_defined(truth, prep, split, names, data=f"the cases of '{path.name}'")
    except DataError as exc:
        raise exc.reworded(
            f"give {'that split' if split else 'the data'} cases of both kinds, or leave auc out, "
            "e.g. --metrics accuracy,balanced_accuracy,sensitivity,specificity,ppv,npv,f1"
        ) from None


def _score(
    prep: Prepared,
    y_pred: np.ndarray,
    names: tuple[str, ...],
    classes: list[str],
    *,
    bootstrap: int,
    ci: float,
    seed: int,
) -> ClassificationReport:
    """Values, intervals, n and reasons for undefined values, by (metric, class name)."""
    table, m = metric_table(prep, y_pred, names)
    tp, fp, fn, tn = (x[0] for x in one_vs_rest_counts(prep, m))
    col_names = [classes[1]] if prep.task == "binary" else classes

    def name_of(c: int | None) -> str | None:
        return None if c is None else classes[c]

    values = {(metric, name_of(c)): float(v[0]) for (metric, c), v in table.items()}
    n = {(metric, name_of(c)): _n_of(metric, c, tp, fp, fn, tn, prep.n) for (metric, c) in table}
    undefined = _undefined(table, col_names, tp, fp, fn, tn, prep.task)
    intervals: dict[Any, tuple[float, float]] = {}
    confusion_ci = None
    if bootstrap:
        iv, lo, hi = bootstrap_intervals(prep, y_pred, names, n_boot=bootstrap, ci=ci, seed=seed)
        intervals = {
            (metric, name_of(c)): (
                iv[(metric, c)]
                if np.isfinite(values[(metric, name_of(c))])
                else (float("nan"), float("nan"))
            )
            for (metric, c) in table
        }
        confusion_ci = (lo, hi)
    return ClassificationReport(
        prep.task, list(classes), [], values, intervals, n, undefined, m[0], confusion_ci
    )


def _n_of(
    metric: str,
    c: int | None,
    tp: np.ndarray,
    fp: np.ndarray,
    fn: np.ndarray,
    tn: np.ndarray,
    total: int,
) -> int:
    """The cases a value is a fraction of (module docstring of :mod:`.report`)."""
    if c is None and tp.shape[0] > 1 or metric in ("auc", "accuracy", "balanced_accuracy", "f1", *CALIBRATION_METRICS):
        return total
    k = 0 if c is None else c
    den = {"sensitivity": tp + fn, "specificity": tn + fp, "ppv": tp + fp, "npv": tn + fn}[metric]
    return int(den[k])


def _undefined(
    table: dict[Any, np.ndarray],
    col_names: list[str],
    tp: np.ndarray,
    fp: np.ndarray,
    fn: np.ndarray,
    tn: np.ndarray,
    task: str,
) -> dict[Any, str]:
    """Why each NaN value has none: a class's counts, or the classes behind a macro mean."""
    out: dict[Any, str] = {}
    for (metric, c), v in table.items():
        if np.isfinite(v[0]):
            continue
        if c is not None or task == "binary":
            k = 0 if c is None else c
            out[(metric, None if c is None else col_names[k])] = undefined_reason(
                metric, int(tp[k]), int(fp[k]), int(fn[k]), int(tn[k]), f"'{col_names[k]}'"
            )
        else:
            if metric == "balanced_accuracy":  # multi-class: the mean sensitivity
                bad = [col_names[k] for k in range(len(col_names)) if tp[k] + fn[k] == 0]
            else:
                bad = [
                    col_names[k]
                    for k in range(len(col_names))
                    if not np.isfinite(table[(metric, k)][0])
                ]
            out[(metric, None)] = (
                f"the mean over classes needs every class's value; {', '.join(bad)} has none"
            )
    return out


def _split_advice(
    labels: LabelsTable, preds: PredictionsTable, missing_prediction: list[str], split: str | None
) -> list[str]:
    """Where the labels are a manifest whose split the predictions cover exactly, say so."""
    if split is not None or not missing_prediction or not labels.splits:
        return []
    covered = {labels.splits.get(c, "") for c in preds.case_ids if c in labels.splits}
    if len(covered) != 1:
        return []
    only = covered.pop()
    if any(labels.splits.get(c) == only for c in missing_prediction):
        return []
    return [
        (
            f"the predictions cover exactly the '{only}' split of {labels.path.name}: "
            f"choose split '{only}' to score it alone"
        )
    ]
