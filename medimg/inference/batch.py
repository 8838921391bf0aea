"""Batch prediction over files and folders: :func:`predict_folder`.

One bad case is reported and the others go on. Every run writes, into the output folder,
``<case_id>.nii.gz`` label maps (a classifier: ``predictions.csv``, one row of class
probabilities per case), ``labels.json`` (class value -> name, read by ``medimg
evaluate``) and ``predict_log.csv``: one row per case or skipped file, appended as each
finishes (:mod:`medimg.inference.runlog`). Outputs are written under a temporary name and
renamed, so a killed run leaves no half-written file; a re-run skips the cases already
predicted (``overwrite=True`` redoes them). The next case is read and preprocessed, and the
previous one written, while the current one computes (:mod:`medimg.inference.caseloop`). ``shard=(i, N)`` predicts
every N-th case only, so several processes or machines can share one output folder.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from ..core.errors import ConfigError, DataError
from ..io.cases import FoundCase
from ..io.layout import NIFTI_SUFFIXES
from ..io.studies import find_channel_cases, resolve_channel_patterns
from ..metrics.labels import LABEL_MAP_FILE, LABELS_FILE, write_prediction_labels
from .caseloop import BatchReport, CaseEntry, entries_of, run_cases
from .outputs import check_output_format, dicom_source, output_path, write_prediction
from .postprocess import postprocess_labels
from .predictor import Predictor, label_map_of
from .runlog import (
    RunLog,
    atomic_path,
    done_cases,
    resolve_shard,
    run_context,
    shard_of,
    temp_prefix,
)

__all__ = ["NIFTI_SUFFIXES", "BatchReport", "find_cases", "predict_cases", "predict_folder"]


def find_cases(
    path: str | os.PathLike,
    image_keys: list[str] | None = None,
    in_channels: int = 1,
    channels: Mapping[str, str] | None = None,
    report_skipped: bool = False,
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

    With ``report_skipped`` (what :func:`predict_folder` uses), every other file and folder
    comes back too, as a skipped entry with the reason: a text file, a label- or
    mask-named NIfTI file, a 4D file given to a one-channel model, a folder holding no case.

    Args:
        channels: channel name -> pattern (``--channel NAME=PATTERN``); names are the
            model's channel names (``image_keys``, or them without ``.nii.gz``).

    Returns:
        :class:`~medimg.io.cases.FoundCase` items; each case unpacks as ``(case_id, paths
        or the problem to report)``.

    Raises:
        DataError: ``path`` does not exist or holds no case in any of these layouts.
        ConfigError: a channel name that is not one of the model's.
    """
    dicom_ok = True
    keys = list(image_keys or [])
    patterns = resolve_channel_patterns(channels, keys, in_channels)
    found = find_channel_cases(path, keys, patterns, in_channels=in_channels, report_skipped=report_skipped)
    if any(not c.skipped for c in found):
        return found
    layout = f"case folders holding {keys}" if keys else "case folders"
    skipped = [f"{c.case_id} ({c.skip})" for c in found[:5]]
    raise DataError(
        f"no cases found in '{path}': expected NIfTI files (.nii/.nii.gz) or {layout}"
        + (" or DICOM series" if dicom_ok else "")
        + (f"; skipped: {', '.join(skipped)}" + (" ..." if len(found) > 5 else "") if skipped else ""),
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
    *,
    overwrite: bool = False,
    shard: tuple[int, int] | str | None = None,
    save_probabilities: bool = False,
    max_memory_gb: float | None = None,
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
        output_dir: created if needed; receives ``<case_id>.nii.gz``, ``labels.json``,
            ``label_map.json`` and ``predict_log.csv`` (case_id, input, status ``ok`` /
            ``failed`` / ``skipped``, seconds, error, device, precision,
            checkpoint_sha256, medimg_version; one row per case and per skipped file).
        device: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``...; None: the
            predictor's own device, or ``"auto"`` for a checkpoint path.
        progress: show a progress bar with ETA.
        channels: channel name -> pattern on file names / DICOM series descriptions
            (:mod:`medimg.io.studies`), on top of the checkpoint's ``inference.channels``.
        output_format: ``"nifti"`` (``<case_id>.nii.gz``) or ``"dicom-seg"``
            (``<case_id>.seg.dcm`` referencing the source series; a non-DICOM case fails),
            see :mod:`medimg.inference.outputs`.
        overwrite: redo every case; by default a case the folder's log says was predicted,
            and whose output file exists, is skipped (logged ``skipped``).
        shard: ``(i, N)`` or ``"i/N"``: predict only case ``k`` of the sorted list with
            ``k % N == i``, logging to ``predict_log.shard-<i>-of-<N>.csv``; None: all
            cases, or under ``torchrun`` (``RANK``/``WORLD_SIZE``) this rank's shard.
        save_probabilities: segmentation: also write ``<case_id>.probabilities.npz``
            (see :func:`predict_cases`).
        max_memory_gb: GB a case may use (None: what is free); see :func:`predict_cases`.
        **overrides: settings replacing the checkpoint's or the predictor's
            (``roi_size``, ``overlap``, ``sw_batch_size``, ``blend``, ``tta_flips``,
            ``postprocess``, ``amp``).

    Returns:
        A :class:`BatchReport`; failures do not raise, they are listed there and in the log.

    Raises:
        CheckpointError: the checkpoint cannot be loaded.
        DataError: ``source`` holds no case, or ``output_dir`` cannot be written.
        ConfigError: an invalid ``shard``, an unknown output format or channel name
            (before anything is written).
        MissingDependencyError: ``dicom-seg`` without highdicom.
        TypeError: an unknown override.
    """
    if isinstance(checkpoint, Predictor):
        predictor = checkpoint.with_options(device=device, **overrides)
    else:
        predictor = Predictor.from_checkpoint(checkpoint, device or "auto", **overrides)
    shard = resolve_shard(shard)
    fmt = check_output_format(output_format)
    if predictor.spec.task == "classification" and fmt != "nifti":
        raise ConfigError(f"output format '{fmt}' is for segmentation models; a classifier writes predictions.csv",
                          hint="leave output_format at its default", cli_hint="leave out --format")
    out = _writable_folder(Path(output_dir))
    in_ch = predictor.in_channels or 1
    patterns = _patterns(predictor, channels)
    if predictor.spec.task == "classification":
        from .classify_batch import classify_cases

        found = None if str(source).endswith(".npz") else find_cases(
            source, predictor.image_keys, in_ch, patterns, report_skipped=True)
        return classify_cases(predictor, source, found, out, progress, overwrite=overwrite, shard=shard)
    cases = find_cases(source, predictor.image_keys, in_ch, patterns, report_skipped=True)
    return predict_cases(predictor, cases, out, progress, output_format=fmt, overwrite=overwrite, shard=shard,
                         save_probabilities=save_probabilities, max_memory_gb=max_memory_gb)


def _patterns(predictor: Predictor, channels: Mapping[str, str] | None) -> dict[str, str]:
    """The checkpoint's channel patterns with ``channels`` replacing them name by name."""
    keys, in_ch = predictor.image_keys, predictor.in_channels or 1
    stored = resolve_channel_patterns(predictor.spec.channels, keys, in_ch)
    return {**stored, **resolve_channel_patterns(channels, keys, in_ch)}


def _writable_folder(out: Path) -> Path:
    """``out``, created if needed, once a file can be written there."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f"{temp_prefix()}write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise DataError(
            f"output folder '{out}' cannot be written: {exc.strerror or exc}",
            hint="give an OUTPUT_DIR you can write to",
        ) from None
    return out


def write_labels_atomic(out: Path, names: Sequence[str], label_map: Any) -> None:
    """``labels.json`` and ``label_map.json`` (see :func:`write_prediction_labels`), each
    written beside and renamed into ``out``, so concurrent shards never see a partial one."""
    tmp = out / f"{temp_prefix()}labels"
    try:
        write_prediction_labels(tmp, names, label_map)
        for name in (LABELS_FILE, LABEL_MAP_FILE):
            if (tmp / name).exists():
                os.replace(tmp / name, out / name)
            elif (out / name).exists():
                (out / name).unlink()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def predict_cases(
    predictor: Predictor, cases: Sequence[Any], out: Path, progress: bool = True, output_format: str = "nifti", *,
    overwrite: bool = False, shard: tuple[int, int] | None = None, save_probabilities: bool = False,
    max_memory_gb: float | None = None,
) -> BatchReport:
    """The segmentation half of :func:`predict_folder` on cases already found
    (:class:`~medimg.io.cases.FoundCase` items, or ``(case_id, paths or the problem to
    report)`` pairs): each case predicted into ``out/<case_id>.nii.gz`` (``output_format=
    "dicom-seg"``: ``<case_id>.seg.dcm``; post-processed by the spec's ``postprocess``;
    written under a temporary name, then renamed), with
    ``labels.json``, ``label_map.json`` and ``predict_log.csv``; a bad case is reported
    and the others go on. Training scores its test split through it.

    With ``save_probabilities``, each case also gets ``out/<case_id>.probabilities.npz``:
    ``probabilities`` (``(K, *spatial)`` float32 on the input's grid, before
    post-processing), ``affine`` (voxel -> RAS+ mm) and ``label_names``; a NumPy file, so
    ``medimg evaluate`` on the folder never mistakes it for a label map.

    Before its network runs, each case's peak memory is estimated
    (:meth:`Predictor.check_memory`); a case that would not fit ``max_memory_gb`` (None:
    the memory the device reports free) fails with the estimate and the settings that
    would make it fit, and the others go on."""
    out.mkdir(parents=True, exist_ok=True)
    names = predictor.label_names or [f"class_{i}" for i in range(predictor.num_classes or 2)]
    # class names and the training label map travel with the predictions, so `evaluate`
    # scores references in the classes the model was trained on
    write_labels_atomic(out, names, predictor.spec.label_map)
    entries = shard_of(entries_of(cases), shard, key=lambda e: e.case_id)
    finished = set() if overwrite else done_cases(out)

    def outputs(cid: str) -> list[Path]:
        extra = [out / f"{cid}.probabilities.npz"] if save_probabilities else []
        return [output_path(out, cid, output_format), *extra]

    def done(e: CaseEntry) -> bool:
        return e.case_id in finished and all(p.is_file() for p in outputs(e.case_id))

    def prepare(e: CaseEntry) -> tuple[Any, Any]:
        # a SEG's source series is checked before anything is computed
        seg_source = dicom_source((e.case_id, e.paths)) if output_format == "dicom-seg" else None
        return predictor.prepare(e.paths, case_id=e.case_id), seg_source

    def finish(e: CaseEntry, prepared: tuple[Any, Any]) -> Callable[[], None]:
        predictor.check_memory(prepared[0], max_memory_gb, save_probabilities)
        if save_probabilities:
            probs = predictor.predict_probabilities(prepared[0])
            _save_probabilities(probs, outputs(e.case_id)[1], names)
            label = label_map_of(probs, predictor.spec.postprocess.min_probability)
            del probs
        else:  # a few classes at a time back to the input's grid: less memory
            label = predictor.predict(prepared[0])
        label = postprocess_labels(label, predictor.spec.postprocess)
        return lambda: _write_label(label, e, out, output_format, names, prepared[1])  # while the next computes

    with RunLog(out, shard, run_context(predictor)) as log:
        report = BatchReport(output_dir=out, log_path=log.path)
        return run_cases(entries, log, report, prepare, finish, done=done, progress=progress)


def _write_label(label: Any, e: CaseEntry, out: Path, output_format: str, names: Sequence[str], seg_source: Any) -> None:
    """The label map written by :func:`~medimg.inference.outputs.write_prediction` into a
    hidden temporary folder of ``out``, then renamed into ``out`` once complete."""
    tmp = out / f"{temp_prefix()}case"
    tmp.mkdir()
    try:
        written = write_prediction(label, (e.case_id, e.paths), tmp, output_format, names, seg_source)
        os.replace(written, out / written.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _save_probabilities(probs: Any, path: Path, names: Sequence[str]) -> None:
    """``probabilities``, ``affine`` and ``label_names`` into an npz, written atomically."""
    import numpy as np

    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, probabilities=probs.data.numpy().astype(np.float32), affine=np.asarray(probs.affine),
                 label_names=np.array(list(names)))
