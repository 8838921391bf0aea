"""Score a segmentation run's best checkpoint on its test split, into ``RUN_DIR/test``.

The test cases are predicted by :func:`medimg.inference.batch.predict_cases` (the loop of
``medimg predict``) into ``RUN_DIR/test/predictions`` and scored by
:func:`medimg.metrics.evaluate_folders` (what ``medimg evaluate`` runs) against the cases'
label files, gathered by case id in ``RUN_DIR/test/references`` (links, or copies where
links cannot be made), so a manifest's labels anywhere on disk are scored the same way as
a folder of case folders. A case whose prediction fails is scored as an empty prediction
and listed in the summary, never dropped.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch

from ..core.spec import ExperimentConfig
from ..data import CaseRecord
from ..inference.batch import predict_cases
from ..inference.predictor import Predictor
from ..io.layout import NIFTI_SUFFIXES
from ..metrics import evaluate_folders

__all__ = ["TEST_DIR", "evaluate_segmentation_test", "mean_dice"]

#: The run folder's subfolder for the test split's predictions and scores.
TEST_DIR = "test"


def _link_references(records: list[CaseRecord], ref_dir: Path) -> None:
    """``ref_dir/<case_id><suffix>`` for each record's label file (a link, else a copy); a
    DICOM SEG label becomes ``<case_id>.seg.dcm``, which evaluation places on the prediction's grid."""
    from ..io.dicom_seg import is_seg_file

    if ref_dir.exists():
        shutil.rmtree(ref_dir)
    ref_dir.mkdir(parents=True)
    for rec in records:
        src = Path(rec.label_path).absolute()  # type: ignore[arg-type]
        suffix = ".seg.dcm" if is_seg_file(src) else next(
            (s for s in NIFTI_SUFFIXES if src.name.lower().endswith(s)), ".nii.gz")  # a SEG: placed on the prediction
        dst = ref_dir / f"{rec.case_id}{suffix}"
        try:
            os.symlink(src, dst)
        except OSError:
            shutil.copy2(src, dst)


def evaluate_segmentation_test(
    checkpoint: Path, records: list[CaseRecord], out_dir: Path, cfg: ExperimentConfig,
    device: torch.device,
) -> dict[str, Any]:
    """Predict the labelled test ``records`` with ``checkpoint`` and score them.

    Writes ``out_dir/predictions`` (label maps, ``labels.json``, ``label_map.json``,
    ``predict_log.csv``), ``out_dir/references``, ``out_dir/metrics.csv``,
    ``out_dir/summary.json`` and the Dice box plot, with ``evaluation.metrics`` and the
    data's label names and label map (recorded in the checkpoint).

    Returns:
        The summary (``summary.json``'s content); ``_cases.prediction_failed`` lists the
        cases whose prediction failed, with the reason (they are scored as empty).
    """
    predictor = Predictor.from_checkpoint(checkpoint, device)
    pred_dir, ref_dir = out_dir / "predictions", out_dir / "references"
    if pred_dir.exists():
        shutil.rmtree(pred_dir)
    cases = [(r.case_id, list(r.image_paths)) for r in records]
    report = predict_cases(predictor, cases, pred_dir, progress=False)
    _link_references(records, ref_dir)
    evaluate_folders(
        pred_dir, ref_dir, out_dir, metrics=list(cfg.evaluation.metrics),
        seed=cfg.experiment.seed, missing_pred="empty", empty_score=cfg.evaluation.empty_score,
        surface=cfg.evaluation.surface_distance,
    )
    summary_path = out_dir / "summary.json"
    summary = json.loads(summary_path.read_text())
    summary.setdefault("_cases", {})["prediction_failed"] = dict(report.failed)
    summary_path.write_text(json.dumps(summary, indent=2))
    return summary


def mean_dice(summary: dict[str, Any]) -> float | None:
    """The summary's mean Dice over cases (of the per-case mean over foreground classes
    when there are several), or None when Dice was not computed."""
    labels = [k for k in summary if not k.startswith("_")]
    stats = summary.get("_class_mean") if len(labels) > 1 else summary.get(labels[0]) if labels else None
    value = stats.get("dice", {}).get("mean") if isinstance(stats, dict) else None
    return float(value) if isinstance(value, (int, float)) else None
