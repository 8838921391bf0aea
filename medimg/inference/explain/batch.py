"""Explain every case under a path with a classification checkpoint (``medimg explain``).

The checkpoint gives the network, its preprocessing and class names (its
:class:`~medimg.core.spec.InferenceSpec`); cases are found and their channels read as
for prediction (:func:`medimg.inference.find_cases`, :meth:`Predictor.load_inputs`). A
case that cannot be read or explained is listed and the others go on.
``explanations.csv`` in the output folder has one row per case.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ...core.errors import CheckpointError, ConfigError, exception_reason
from ...models import model_task
from ..batch import find_cases
from ..checkpoint import build_model, inference_spec, load_checkpoint
from ..predictor import Predictor
from ..progress import progress_bar
from .cam import resolve_layer
from .case import explain_image

__all__ = ["EXPLANATIONS_CSV", "ExplainReport", "explain_folder"]

EXPLANATIONS_CSV = "explanations.csv"
_COLUMNS = ["case_id", "status", "explained_class", "probability", "files", "error"]


@dataclass
class ExplainReport:
    """What :func:`explain_folder` did: cases explained, cases that failed (with why)."""

    output_dir: Path
    ok: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    files: dict[str, list[Path]] = field(default_factory=dict)


def _classifier(checkpoint: str | os.PathLike, device: str | torch.device) -> Predictor:
    """The checkpoint's network, preprocessing and names, as a Predictor (its channel
    loading is reused); refuses a segmentation checkpoint."""
    ckpt = load_checkpoint(checkpoint)
    spec = inference_spec(ckpt, checkpoint)
    model = build_model(ckpt)
    name = str(ckpt["model"]["name"])
    task = model_task(name)
    if task == "segmentation" or (task is None and spec.task != "classification"):
        raise CheckpointError(
            f"checkpoint '{checkpoint}' holds a segmentation model ('{name}'); Grad-CAM explains "
            "classification models",
            hint="give a classifier's checkpoint; a segmentation model's probability maps "
            "(Predictor.predict_probabilities) are its explanation",
            cli_hint="give a classification checkpoint (written by `medimg train` with "
            "experiment.task: classification)",
        )
    pred = Predictor(model, spec, device=device)
    pred.checkpoint = {k: v for k, v in ckpt.items() if k not in ("state_dict", "optimizer_state")}
    return pred


def explain_folder(
    checkpoint: str | os.PathLike,
    source: str | os.PathLike,
    output_dir: str | os.PathLike,
    *,
    layer: str | None = None,
    target_class: int | None = None,
    device: str | torch.device = "cpu",
    progress: bool = False,
) -> ExplainReport:
    """Grad-CAM of every case under ``source``, written into ``output_dir``.

    Args:
        checkpoint: a classification checkpoint written by training.
        source: a file, a DICOM series folder, a folder of files or of case folders (the
            layouts prediction takes).
        output_dir: created if needed; per case the files of
            :func:`~medimg.inference.explain.explain_image`, plus ``explanations.csv``.
        layer: the layer to read; default the model's ``cam_layer``.
        target_class: the class to explain; default each case's predicted class.
        device: where the network runs.
        progress: show a progress bar on stderr.

    Raises:
        CheckpointError: the checkpoint cannot be loaded or holds a segmentation model.
        ConfigError: ``layer`` is not a layer of the model (checked before any case), has
            no spatial axes, or ``target_class`` is not a class of the model.
        DataError: ``source`` holds no case.
    """
    pred = _classifier(checkpoint, device)
    resolve_layer(pred.model, layer)
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    in_ch = pred.in_channels or 1
    cases = find_cases(source, pred.image_keys if in_ch > 1 else None, in_ch)
    report = ExplainReport(output_dir=out)
    rows: list[dict[str, Any]] = []
    with progress_bar(progress) as bar:
        task = bar.add_task("explain", total=len(cases))
        for case_id, paths in cases:
            try:
                if isinstance(paths, Exception):
                    raise paths
                expl = explain_image(
                    pred.model, pred.load_inputs(paths), out, preprocess=pred.preprocess,
                    class_names=pred.label_names, target_class=target_class, layer=layer, case_id=case_id,
                )
            except ConfigError:  # an option (--layer, --target-class) wrong for the model: stop
                raise
            except Exception as exc:  # one bad case must not stop the batch
                report.failed.append((case_id, exception_reason(exc)))
                rows.append({"case_id": case_id, "status": "failed", "error": exception_reason(exc)})
            else:
                report.ok.append(case_id)
                report.files[case_id] = expl.files
                rows.append({
                    "case_id": case_id, "status": "ok", "explained_class": expl.class_name,
                    "probability": f"{expl.probability:.6f}", "files": ";".join(p.name for p in expl.files),
                })
            bar.update(task, advance=1, description=f"explain {case_id}")
    with open(out / EXPLANATIONS_CSV, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=_COLUMNS, restval="")
        writer.writeheader()
        writer.writerows(rows)
    return report
