"""Temperature scaling of a trained classifier: what ``medimg calibrate RUN_DIR`` runs.

:func:`calibrate_run` loads ``RUN_DIR/best.pt``, predicts the run's validation split with
the :class:`~medimg.inference.Predictor` (the data the run was trained with, read from its
``config.resolved.yaml``; raw logits, before any temperature), fits one temperature ``T``
by least validation negative log-likelihood
(:func:`medimg.metrics.classification.temperature.fit_temperature`) and stores it in the
checkpoint's :class:`~medimg.core.spec.InferenceSpec` (``temperature``), so that
``medimg predict`` divides the logits by ``T`` before the softmax (sigmoid).

The fit always starts from the raw logits, so running it again replaces ``T``; it never
multiplies onto the one stored. A binary model's operating threshold is chosen again on
the calibrated validation probabilities by the run's own rule (``evaluation.threshold``
or ``evaluation.target_sensitivity``), as training chose it on the uncalibrated ones. ``T``
is monotone, so without test-time augmentation the validation decisions stay exactly the
same; with flip TTA (a mean of probabilities) a case near the threshold can change, and
the number of validation decisions that changed is reported. The uncalibrated threshold
is kept in the checkpoint's ``calibration`` entry.

``RUN_DIR/calibration/`` receives ``calibration.json`` (T, the validation cases, ece,
brier and nll before and after with bootstrap intervals), ``metrics.csv`` (the same as
rows) and ``reliability_diagram.png`` (before | after).
"""

from __future__ import annotations

import csv
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.special import expit, softmax

from ..core.errors import CheckpointError, DataError
from ..core.spec import ExperimentConfig
from ..inference.checkpoint import inference_spec, load_checkpoint, write_checkpoint
from ..inference.predictor import Predictor
from ..metrics.classification.bootstrap import bootstrap_intervals
from ..metrics.classification.calibration import CALIBRATION_METRICS, reliability_columns
from ..metrics.classification.counts import metric_table
from ..metrics.classification.reliability import ece_note, reliability_figure
from ..metrics.classification.tasks import decide, prepare
from ..metrics.classification.temperature import TEMPERATURE_RANGE, fit_temperature
from .classify import _load, operating_threshold

__all__ = ["CALIBRATION_DIR", "CalibrationResult", "calibrate_run", "classifier_checkpoint"]

#: The run folder's subfolder for the calibration's report.
CALIBRATION_DIR = "calibration"
_CHUNK = 256


@dataclass
class CalibrationResult:
    """What :func:`calibrate_run` did.

    Attributes:
        temperature: the fitted ``T`` (now in the checkpoint).
        previous: the temperature the checkpoint held before (None: uncalibrated).
        n_cases: validation cases fitted on.
        before, after: ``{metric: {"value", "ci_low", "ci_high"}}`` on validation.
        threshold: the binary threshold now stored (None for other tasks).
        changed_decisions: validation cases decided differently after calibration (0
            without flip TTA: T keeps the order of the probabilities).
        checkpoint: the checkpoint updated. paths: the files written, by kind.
        warnings: what a reader must know (a temperature at the end of its search range).
    """

    temperature: float
    previous: float | None
    n_cases: int
    before: dict[str, dict[str, float | None]]
    after: dict[str, dict[str, float | None]]
    threshold: float | None
    checkpoint: Path
    changed_decisions: int = 0
    paths: dict[str, Path] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def format(self) -> str:
        """The one-screen summary the CLI prints."""
        lines = [
            f"temperature {self.temperature:.4f} fitted on {self.n_cases} validation cases"
            + (f" (replaces {self.previous:.4f})" if self.previous is not None else ""),
            f"  {'metric':<8} {'before':>24}  {'after':>24}",
        ]
        for m in self.before:
            lines.append(f"  {m:<8} {_stat(self.before[m]):>24}  {_stat(self.after[m]):>24}")
        if self.threshold is not None:
            lines.append(f"binary threshold chosen again on the calibrated validation probabilities: "
                         f"{self.threshold:.4f}")
        lines.append(f"validation decisions changed by calibration: {self.changed_decisions}")
        lines.extend(f"warning: {w}" for w in self.warnings)
        lines.append(f"stored in {self.checkpoint}")
        lines.extend(f"wrote {k}: {p}" for k, p in self.paths.items())
        return "\n".join(lines)


def _stat(s: dict[str, float | None]) -> str:
    v, lo, hi = s.get("value"), s.get("ci_low"), s.get("ci_high")
    text = "n/a" if v is None else f"{v:.4f}"
    return text + (f" [{lo:.4f}, {hi:.4f}]" if lo is not None and hi is not None else "")


def _validation_logits(predictor: Predictor, images: torch.Tensor) -> np.ndarray:
    """Raw logits ``(P, n, K)`` of the validation images (P: flip-TTA passes)."""
    parts = [predictor.classify_logits(images[i : i + _CHUNK]) for i in range(0, len(images), _CHUNK)]
    return torch.cat(parts, dim=1).numpy().astype(np.float64)


def _probs(logits: np.ndarray, t: float, multilabel: bool) -> np.ndarray:
    """Mean over passes of ``softmax(z / t)`` (sigmoid per label): what the Predictor gives."""
    p = expit(logits / t) if multilabel else softmax(logits / t, axis=2)
    return p.mean(axis=0)


def _scores(y: np.ndarray, probs: np.ndarray, task: str, threshold: float | None, n_boot: int,
            seed: int) -> dict[str, dict[str, float | None]]:
    prep = prepare(y, probs, task)
    y_pred = decide(prep, 0.5 if threshold is None else threshold)
    table, _ = metric_table(prep, y_pred, CALIBRATION_METRICS)
    iv = bootstrap_intervals(prep, y_pred, CALIBRATION_METRICS, n_boot=n_boot, seed=seed)[0] if n_boot else {}

    def num(x: float) -> float | None:
        return float(x) if math.isfinite(x) else None

    return {
        m: {
            "value": num(float(table[(m, None)][0])),
            "ci_low": num(iv[(m, None)][0]) if iv else None,
            "ci_high": num(iv[(m, None)][1]) if iv else None,
        }
        for m in CALIBRATION_METRICS
    }


def _changed(y: np.ndarray, before: np.ndarray, after: np.ndarray, task: str, t_before: float | None,
             t_after: float | None) -> int:
    """Validation cases decided differently after calibration (0 without flip TTA)."""
    a = decide(prepare(y, before, task), 0.5 if t_before is None else t_before)
    b = decide(prepare(y, after, task), 0.5 if t_after is None else t_after)
    return int((a != b).reshape(len(y), -1).any(axis=1).sum())


def _rechosen_threshold(cfg: ExperimentConfig, y: np.ndarray, probs: np.ndarray) -> float:
    """The binary threshold chosen on calibrated validation probabilities, by the rule
    training used (:class:`~medimg.engine.classify.ClassificationTrainer`)."""
    return operating_threshold(cfg.evaluation.threshold, cfg.evaluation.target_sensitivity, y, probs)


def _targets(split: Any, multilabel: bool) -> np.ndarray:
    y = split.targets.numpy()
    return y.astype(np.int64) if multilabel else y.reshape(len(split)).astype(np.int64)


def classifier_checkpoint(run_dir: str | os.PathLike) -> tuple[Path, dict[str, Any], Any]:
    """``(path, checkpoint, spec)`` of ``RUN_DIR/best.pt``, checked to be a classifier.

    Raises:
        CheckpointError: no readable ``best.pt``, or a segmentation model.
    """
    best = Path(run_dir) / "best.pt"
    if not best.is_file():
        raise CheckpointError(
            f"run folder '{run_dir}' has no best.pt",
            hint="give the folder of a classification run that `medimg train` finished (it writes best.pt)",
        )
    ckpt = load_checkpoint(best)
    spec = inference_spec(ckpt, best)
    if spec.task != "classification":
        raise CheckpointError(
            f"'{best}' is a {spec.task} model; temperature scaling is available for classifiers only, for now",
            hint="give the run folder of a classification training (experiment.task: classification)",
        )
    return best, ckpt, spec


def calibrate_run(run_dir: str | os.PathLike, cfg: ExperimentConfig, device: str | torch.device = "auto",
                  *, config_path: str | os.PathLike | None = None, bootstrap: int = 1000,
                  seed: int = 0) -> CalibrationResult:
    """Fit temperature scaling on a run's validation split and store it in ``best.pt``.

    Args:
        run_dir: the training run's folder (``best.pt``, ``config.resolved.yaml``).
        cfg: the run's config (``config.resolved.yaml``, read by the caller).
        device: where to predict. config_path: the config's file (relative data paths).
        bootstrap: resamples for the before/after intervals (0: none). seed: theirs.

    Raises:
        CheckpointError: no ``best.pt``, or it is not a classifier (calibration of
            segmentation models is not available).
        DataError: the run's data has no validation split, or its classes differ from
            the checkpoint's.
    """
    run_dir = Path(run_dir)
    best, ckpt, spec = classifier_checkpoint(run_dir)
    data = _load(cfg, config_path)
    val = data.splits.get("validation")
    if val is None or not len(val):
        raise DataError(
            f"the data of run '{run_dir}' ({data.source}) has no validation split to fit the temperature on",
            hint="calibrate a run whose data has validation cases (an npz with val_images, or a manifest "
            "with split 'validation')",
        )
    if list(data.class_names) != list(spec.label_names or []):
        raise DataError(
            f"the run's data ({data.source}) has classes {data.class_names} but '{best}' predicts "
            f"{spec.label_names}; the data changed since training"
        )
    predictor = Predictor.from_checkpoint(best, device)
    logits = _validation_logits(predictor, val.images)
    y = _targets(val, spec.multilabel)
    task = "multilabel" if spec.multilabel else ("binary" if len(data.class_names) == 2 else "multiclass")
    t = fit_temperature(logits, y, multilabel=spec.multilabel)
    previous = dict(ckpt.get("calibration") or {})
    t_raw = previous.get("uncalibrated_threshold", spec.threshold) if task == "binary" else None
    before_p, after_p = _probs(logits, 1.0, spec.multilabel), _probs(logits, t, spec.multilabel)
    before = _scores(y, before_p, task, t_raw, bootstrap, seed)
    threshold = _rechosen_threshold(cfg, y, after_p) if t_raw is not None else None
    after = _scores(y, after_p, task, threshold, bootstrap, seed)
    changed = _changed(y, before_p, after_p, task, t_raw, threshold)
    record = {"method": "temperature scaling", "temperature": t, "split": "validation", "n_cases": len(val),
              "uncalibrated_threshold": t_raw, "changed_decisions": changed, "before": before, "after": after}
    record["warnings"] = _range_warning(t)
    _store(best, t, threshold, record)
    result = CalibrationResult(t, spec.temperature, len(val), before, after, threshold, best, changed,
                               warnings=record["warnings"])
    _write(run_dir / CALIBRATION_DIR, result, record, y, (before_p, after_p), task, data.class_names)
    return result


def _range_warning(t: float) -> list[str]:
    lo, hi = TEMPERATURE_RANGE
    if not (lo * 1.01 < t < hi / 1.01):
        return [
            f"T = {t:.4g} is at the end of the search range [{lo:g}, {hi:g}]: the validation likelihood keeps "
            "improving past it (e.g. validation cases separated perfectly), so T is not pinned down by the data; "
            "calibrate on a larger validation split"
        ]
    return []


def _store(path: Path, temperature: float, threshold: float | None, record: dict[str, Any]) -> None:
    """Write ``temperature`` (and the threshold chosen again) into the checkpoint, atomically."""
    payload = load_checkpoint(path)
    payload["inference"] = {**payload["inference"], "temperature": float(temperature)}
    if threshold is not None:
        payload["inference"]["threshold"] = float(threshold)
    payload["calibration"] = record
    write_checkpoint(payload, path)


def _write(out: Path, result: CalibrationResult, record: dict[str, Any], y: np.ndarray,
           probs: tuple[np.ndarray, np.ndarray], task: str, classes: list[str]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    path = out / "calibration.json"
    path.write_text(json.dumps({**record, "previous_temperature": result.previous,
                                "stored_threshold": result.threshold, "checkpoint": str(result.checkpoint)},
                               indent=2) + "\n")
    result.paths["calibration_json"] = path
    path = out / "metrics.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["stage", "metric", "value", "ci_low", "ci_high", "n"])
        for stage, scores in (("before", result.before), ("after", result.after)):
            for m, s in scores.items():
                w.writerow([stage, m, *("nan" if s[k] is None else repr(s[k]) for k in ("value", "ci_low", "ci_high")),
                            result.n_cases])
    result.paths["metrics_csv"] = path
    names = [classes[1]] if task == "binary" else list(classes)
    panels = []
    for stage, p, scores, t in (("before", probs[0], result.before, 1.0), ("after", probs[1], result.after,
                                                                             result.temperature)):
        curves = reliability_columns(prepare(y, p, task), names)
        e = scores["ece"]
        note = ece_note(e["value"] if e["value"] is not None else math.nan,
                        (e["ci_low"], e["ci_high"]) if e["ci_low"] is not None else None)  # type: ignore[arg-type]
        title = f"{stage}: T = {t:.3f}; {result.n_cases} validation cases"
        panels.append((title, curves, [note] if task != "multilabel" else []))
    png = reliability_figure(panels, out / "reliability_diagram.png", top_label=task == "multiclass")
    if png is not None:
        result.paths["reliability_png"] = png
