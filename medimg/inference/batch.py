"""Batch prediction over files and folders: :func:`predict_folder`.

One bad case is reported and the others go on; every run writes, into the output folder,
``<case_id>.nii.gz`` label maps, ``labels.json`` (class value -> name, read by
``medimg evaluate``) and ``predictions.csv`` (case_id, status, error, seconds).
"""

from __future__ import annotations

import csv
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..core.errors import ConfigError, DataError, exception_reason
from ..io.cases import FoundCase
from ..io.layout import NIFTI_SUFFIXES
from ..io.studies import find_channel_cases, resolve_channel_patterns
from ..metrics.labels import write_prediction_labels
from .outputs import check_output_format, dicom_source, write_prediction
from .predictor import Predictor
from .progress import progress_bar

__all__ = ["BatchReport", "find_cases", "predict_folder", "NIFTI_SUFFIXES"]


@dataclass
class BatchReport:
    """Outcome of :func:`predict_folder`.

    Attributes:
        output_dir: where the label maps went.
        ok: case ids predicted and written.
        failed: ``(case_id, message)`` for each case that could not be predicted.
        seconds: wall time per case id.
    """

    output_dir: Path
    ok: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def all_ok(self) -> bool:
        return not self.failed


def find_cases(
    path: str | os.PathLike,
    image_keys: list[str] | None = None,
    in_channels: int = 1,
    channels: Mapping[str, str] | None = None,
) -> list[FoundCase]:
    """The cases to predict under ``path``, by :func:`medimg.io.cases.find_cases`'s rules.

    Accepted layouts:

    - a NIfTI file: one case, id = file name without ``.nii(.gz)``;
    - a folder of NIfTI files: one case per file (single-channel models, or files that
      hold all channels as a 4D volume);
    - a folder of case folders, each holding the channel files named as the model's
      ``data.images`` (e.g. ``brats6/test/<case>/Flair_....nii.gz``): one case per folder.
      A case folder missing a channel is reported as a failed case;
    - DICOM (:mod:`medimg.io.studies`): a DICOM file (single-channel models), or a study
      folder or a tree of studies, one case per study (StudyInstanceUID), its series
      chosen per channel by ``channels`` patterns on SeriesDescription. A study with one
      image series needs no pattern for a single-channel model; several series and no
      pattern, or a pattern matching none or several, is one failed case listing them.
    - with ``channels``, the files of case folders are chosen by pattern on their names
      (a single-channel model's flat folder keeps the files the pattern matches).
    - a 2D picture (PNG, JPEG, BMP, TIFF), or a folder of them: one case per file, id = the
      name without its suffix.

    Args:
        channels: channel name -> pattern (``--channel NAME=PATTERN``); names are the
            model's channel names (``image_keys``, or them without ``.nii.gz``).

    Returns:
        :class:`~medimg.io.cases.FoundCase` items; each unpacks as ``(case_id, paths or
        the problem to report)``.

    Raises:
        DataError: ``path`` does not exist or holds no case in any of these layouts.
        ConfigError: a channel name that is not one of the model's.
    """
    dicom_ok = True
    keys = list(image_keys or [])
    patterns = resolve_channel_patterns(channels, keys, in_channels)
    cases = find_channel_cases(path, keys, patterns, in_channels=in_channels)
    if cases:
        return cases
    layout = f"case folders holding {keys}" if keys else "case folders"
    raise DataError(
        f"no cases found in '{path}': expected NIfTI files (.nii/.nii.gz) or {layout}"
        + (" or DICOM series" if dicom_ok else ""),
        hint=f"the model takes {in_channels} channel(s)"
        + (f" named {keys}" if keys else "")
        + "; give a split folder such as data/test",
    )


def predict_folder(
    checkpoint: str | os.PathLike | Predictor,
    source: str | os.PathLike,
    output_dir: str | os.PathLike,
    device: str | torch.device | None = None,
    progress: bool = True,
    channels: Mapping[str, str] | None = None,
    output_format: str = "nifti",
    **overrides: Any,
) -> BatchReport:
    """Predict every case under ``source`` and write label maps on each input's own grid
    (a classification checkpoint: one ``predictions.csv`` row of class probabilities per
    case, see :func:`medimg.inference.classify.write_class_predictions`).

    Args:
        checkpoint: a medimg checkpoint path, or a ready :class:`Predictor` (never
            changed: overrides apply to a copy made with :meth:`Predictor.with_options`).
        source: a NIfTI file, a folder of NIfTI files, or a folder of case folders
            (see :func:`find_cases`).
        output_dir: created if needed; receives ``<case_id>.nii.gz``, ``labels.json``
            and ``predictions.csv``.
        device: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``...; None: the
            predictor's own device, or ``"auto"`` for a checkpoint path.
        progress: show a progress bar with ETA.
        channels: channel name -> pattern on file names / DICOM series descriptions
            (:mod:`medimg.io.studies`), on top of the checkpoint's ``inference.channels``.
        output_format: ``"nifti"`` (``<case_id>.nii.gz``) or ``"dicom-seg"``
            (``<case_id>.seg.dcm`` referencing the source series; a non-DICOM case fails),
            see :mod:`medimg.inference.outputs`.
        **overrides: settings replacing the checkpoint's or the predictor's
            (``roi_size``, ``overlap``, ``sw_batch_size``, ``blend``, ``tta_flips``, ``amp``).

    Returns:
        A :class:`BatchReport`; failures do not raise, they are listed there and in
        ``predictions.csv``.

    Raises:
        CheckpointError: the checkpoint cannot be loaded.
        DataError: ``source`` holds no case.
        TypeError: an unknown override.
        ConfigError: an unknown output format or channel name (before anything is written).
        MissingDependencyError: ``dicom-seg`` without highdicom.
    """

    if isinstance(checkpoint, Predictor):
        predictor = checkpoint.with_options(device=device, **overrides)
    else:
        predictor = Predictor.from_checkpoint(checkpoint, device or "auto", **overrides)
    fmt = check_output_format(output_format)
    if predictor.spec.task == "classification" and fmt != "nifti":
        raise ConfigError(f"output format '{fmt}' is for segmentation models; a classifier writes predictions.csv",
                          hint="leave output_format at its default", cli_hint="leave out --format")
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    if predictor.spec.task == "classification":
        return _classify_cases(predictor, source, out, progress)
    cases = find_cases(source, predictor.image_keys, predictor.in_channels or 1, _patterns(predictor, channels))
    return predict_cases(predictor, cases, out, progress, output_format=fmt)


def _patterns(predictor: Predictor, channels: Mapping[str, str] | None) -> dict[str, str]:
    """The checkpoint's channel patterns with ``channels`` replacing them name by name."""
    keys, in_ch = predictor.image_keys, predictor.in_channels or 1
    stored = resolve_channel_patterns(predictor.spec.channels, keys, in_ch)
    return {**stored, **resolve_channel_patterns(channels, keys, in_ch)}


def predict_cases(
    predictor: Predictor, cases: Sequence[tuple[str, Any]], out: Path, progress: bool = True,
    output_format: str = "nifti",
) -> BatchReport:
    """The segmentation half of :func:`predict_folder` on cases already found: each
    ``(case_id, paths or the problem to report)`` predicted into ``out/<case_id>.nii.gz``
    (``output_format="dicom-seg"``: ``<case_id>.seg.dcm``), with ``labels.json``,
    ``label_map.json`` and ``predictions.csv``; a bad case is reported and the others go
    on. Training scores its test split through it."""
    out.mkdir(parents=True, exist_ok=True)
    names = predictor.label_names or [f"class_{i}" for i in range(predictor.num_classes or 2)]
    # class names and the training label map travel with the predictions, so `evaluate`
    # scores references in the classes the model was trained on
    write_prediction_labels(out, names, predictor.spec.label_map)

    report = BatchReport(output_dir=out)
    rows: list[dict[str, Any]] = []
    with progress_bar(progress) as bar:
        task = bar.add_task("predict", total=len(cases))
        for case in cases:
            case_id, paths = case
            t0 = time.perf_counter()
            try:
                if isinstance(paths, Exception):
                    raise paths
                seg_source = dicom_source(case) if output_format == "dicom-seg" else None
                label = predictor.predict(paths, case_id=case_id)
                write_prediction(label, case, out, output_format, names, seg_source)
            except Exception as exc:  # one bad case must not stop the batch
                msg = exception_reason(exc)
                report.failed.append((case_id, msg))
                rows.append({"case_id": case_id, "status": "failed", "error": msg, "seconds": ""})
            else:
                dt = time.perf_counter() - t0
                report.ok.append(case_id)
                report.seconds[case_id] = dt
                rows.append({"case_id": case_id, "status": "ok", "error": "", "seconds": f"{dt:.3f}"})
            bar.update(task, advance=1, description=f"predict {case_id}")
    with open(out / "predictions.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["case_id", "status", "error", "seconds"])
        w.writeheader()
        w.writerows(rows)
    return report


def _npz_cases(path: Path) -> tuple[list[str], Any]:
    """Case ids and images ``(N, C, *spatial)`` of an npz's ``test_images`` (else of every
    ``<split>_images`` array), ids as in training (``test_0``...)."""
    import numpy as np

    from ..data.classification import npz_images

    npz = np.load(path, allow_pickle=False)
    keys = ["test_images"] if "test_images" in npz.files else sorted(k for k in npz.files if k.endswith("_images"))
    if not keys:
        raise DataError(f"no '<split>_images' array in {path}; found: {', '.join(sorted(npz.files))}")
    ids: list[str] = []
    images = []
    for key in keys:
        x = npz_images(npz[key], key, path)
        ids += [f"{key[: -len('_images')]}_{i}" for i in range(len(x))]
        images.append(x)
    return ids, torch.cat(images)


def _classify_cases(predictor: Predictor, source: str | os.PathLike, out: Path, progress: bool) -> BatchReport:
    """Class probabilities of every case under ``source`` (files, folders, DICOM series, or
    an npz) into ``out/predictions.csv``; a failed case goes to ``out/failures.csv`` and
    the others go on."""
    import numpy as np

    from .classify import write_class_predictions

    report = BatchReport(output_dir=out)
    names = predictor.label_names or [f"class_{i}" for i in range(predictor.num_classes or 2)]
    ids: list[str] = []
    rows: list[Any] = []
    if str(source).endswith(".npz"):
        t0 = time.perf_counter()
        ids, images = _npz_cases(Path(source))
        for i in range(0, len(images), 256):
            rows += list(predictor.classify_batch(predictor.preprocess_batch(images[i : i + 256])).numpy())
        report.ok = list(ids)
        report.seconds = dict.fromkeys(ids, (time.perf_counter() - t0) / max(len(ids), 1))
    else:
        cases = find_cases(source, predictor.image_keys, predictor.in_channels or 1, _patterns(predictor, None))
        with progress_bar(progress) as bar:
            task = bar.add_task("predict", total=len(cases))
            for case_id, paths in cases:
                t0 = time.perf_counter()
                try:
                    if isinstance(paths, Exception):
                        raise paths
                    rows.append(predictor.predict_proba(paths, case_id=case_id).numpy())
                except Exception as exc:  # one bad case must not stop the batch
                    report.failed.append((case_id, exception_reason(exc)))
                else:
                    ids.append(case_id)
                    report.ok.append(case_id)
                    report.seconds[case_id] = time.perf_counter() - t0
                bar.update(task, advance=1, description=f"predict {case_id}")
    probs = np.stack(rows) if rows else np.zeros((0, len(names)))
    write_class_predictions(out / "predictions.csv", ids, probs, names, predictor.spec.threshold, predictor.spec.multilabel)
    if report.failed:
        with open(out / "failures.csv", "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["case_id", "error"])
            w.writerows(report.failed)
    return report
