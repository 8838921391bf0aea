"""Reading and scoring the cases of an evaluation, one by one or in a pool of processes.

A case's prediction and reference are each a NIfTI file, a DICOM mask series (a folder of
DICOM slices holding a label map) or a DICOM SEG file, read by :func:`medimg.io.read_image`.

**DICOM SEG placement.** A SEG holds frames, not a grid: it is placed on the grid of its
source series (:func:`medimg.io.dicom_seg.read_seg_on_grid`). Here that grid is the case's
scan when ``--images`` gives one, else the other side's image (the reference for a
predicted SEG, the prediction for a reference SEG). Two SEGs without scans cannot be
placed and the case fails saying to give ``--images``. A SEG whose frames do not lie on
that grid (it was made on another series, or the reference was resampled) is an error
naming both files and grids; it is *not* resampled, because moving a label map onto
another grid changes the very volumes and surfaces being scored: resample the reference
onto the series the SEG was made on (or write the prediction as NIfTI) instead.

**Workers.** :func:`score_all` scores cases in ``workers`` processes (forked on Linux,
spawned elsewhere; one thread each); the results come back in case order, equal to a serial run's, and a case
that fails is returned with its reason like any other.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..core.errors import DataError, MedimgError, exception_reason
from ..core.image import Image
from .case import label_arrays, resample_labels_onto, score_arrays
from .labels import present_labels

__all__ = ["CaseJob", "CaseResult", "default_workers", "score_all"]


def default_workers() -> int:
    """The cores this process may use (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover  (macOS, Windows)
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class CaseJob:
    """What scoring one case needs; plain data, so it travels to a worker process."""

    case_id: str
    pred: Path | None  # None: a missed case, scored as an empty prediction
    ref: Path
    scan: Path | None = None  # the case's scan (--images), the grid SEGs are placed on
    problem: str | None = None  # the case could not be found on one side


@dataclass
class CaseResult:
    """One case scored: its classes' values, or why it failed."""

    case_id: str
    pred_values: list[int] | None = None
    ref_values: list[int] | None = None
    values: dict[int, dict[str, float]] | None = None
    error: str | None = None
    files: tuple[Path | None, Path] | None = None


@dataclass(frozen=True)
class _Settings:
    label_map: Mapping[int, int] | None
    names: Mapping[int, str]
    metrics: Sequence[str]
    params: Mapping[str, Mapping[str, Any]]
    empty_score: float
    surface: str
    resample_to: str | None = None
    interface: str = "python"  # the terms a failed case's hint is given in: "python" or "cli"


def _is_seg(path: Path | None) -> bool:
    from ..io.dicom_seg import is_seg_file

    return is_seg_file(path)


def _read(path: Path, source: Any = None, reader: Callable[[Path], Image] | None = None) -> Image:
    if reader is not None:
        img = reader(path)
    else:
        from ..io import read_image

        img = read_image(path, kind="label", source=source)
    img.meta.setdefault("path", str(path))
    return img


def _read_seg(path: Path, grid: Image, grid_what: str, case_id: str) -> Image:
    """A SEG placed on ``grid``, with an error in evaluation terms when it does not fit."""
    from ..io.dicom_seg import read_seg_on_grid

    return read_seg_on_grid(path, grid, grid_what, who=f"case '{case_id}': ",
                            remedy="give references on the grid of the series the SEG was made on, "
                            "or --images with that series")


def read_pair(job: CaseJob, reader: Callable[[Path], Image] | None = None) -> tuple[Image, Image]:
    """The prediction (an empty one for a missed case) and the reference of one case,
    SEGs placed on their source grid (module docstring)."""
    if job.problem is not None:
        raise DataError(job.problem)
    pred_seg, ref_seg = _is_seg(job.pred), _is_seg(job.ref)
    scan = _read(job.scan) if (pred_seg or ref_seg) and job.scan is not None and reader is None else None
    scan_what = f"the scan '{job.scan}'"
    if ref_seg and reader is None:
        if scan is None and (job.pred is None or pred_seg):
            raise DataError(
                f"case '{job.case_id}': the reference '{job.ref}' is a DICOM SEG"
                + (" and so is the prediction" if job.pred is not None else "")
                + "; a SEG is placed on its source series' grid: give the scans with --images"
            )
        if scan is None:
            pred = _read(job.pred)  # type: ignore[arg-type]
            return pred, _read_seg(job.ref, pred, f"the prediction '{job.pred}'", job.case_id)
        ref = _read_seg(job.ref, scan, scan_what, job.case_id)
    else:
        ref = _read(job.ref, reader=reader)
    if job.pred is None:
        empty = torch.zeros((1, *ref.spatial_shape), dtype=torch.uint8)
        return Image(empty, ref.affine, kind="label", meta={"path": f"<missing prediction for {job.case_id}>"}), ref
    if pred_seg and reader is None:
        grid, what = (scan, scan_what) if scan is not None else (ref, f"the reference '{job.ref}'")
        return _read_seg(job.pred, grid, what, job.case_id), ref
    return _read(job.pred, reader=reader), ref


def _score_one(job: CaseJob, s: _Settings, reader: Callable[[Path], Image] | None = None) -> CaseResult:
    """Read and score one case; any failure is returned, not raised."""
    out = CaseResult(job.case_id)
    try:
        pred, ref = read_pair(job, reader)
        if s.resample_to == "reference" and not pred.same_grid(ref):
            pred = resample_labels_onto(pred, ref)
        p, r = label_arrays(pred, ref, s.label_map)
        out.pred_values, out.ref_values = present_labels(p), present_labels(r)
        classes = sorted((set(out.pred_values) | set(out.ref_values) | set(s.names)) - {0})
        out.values = score_arrays(p, r, pred.spacing, s.names, s.metrics, metric_params=s.params, classes=classes,
                                  empty_score=s.empty_score, surface=s.surface)
        out.files = (job.pred, job.ref)
    except Exception as exc:  # noqa: BLE001  one bad case must not stop a study's evaluation
        out.error = exception_reason(exc)
        hint = exc.hint_for(s.interface) if isinstance(exc, MedimgError) else None
        if hint:
            out.error += f"; {hint}"  # what to do, in the caller's terms
    return out


def _init_worker() -> None:
    torch.set_num_threads(1)


def _score_job(args: tuple[CaseJob, _Settings]) -> CaseResult:
    return _score_one(*args)


def score_all(
    jobs: Sequence[CaseJob],
    *,
    label_map: Mapping[int, int] | None,
    names: Mapping[int, str],
    metrics: Sequence[str],
    params: Mapping[str, Mapping[str, Any]],
    empty_score: float,
    surface: str,
    workers: int | None = None,
    reader: Callable[[Path], Image] | None = None,
    resample_to: str | None = None,
    interface: str = "python",
) -> Iterator[CaseResult]:
    """Score every job, yielding results in the order of ``jobs`` (as each is ready).

    Args:
        workers: processes (None: :func:`default_workers`; 1: in this process). A custom
            ``reader`` (which may not survive pickling) runs in this process.
        resample_to: ``"reference"``: a prediction on another grid than its reference is
            resampled onto it, nearest neighbour (:func:`~.case.resample_labels_onto`);
            None: such a case fails, naming both grids and the fix.
        interface: ``"cli"`` words that fix in command-line options.
    """
    settings = _Settings(label_map, dict(names), list(metrics), params, empty_score, surface, resample_to, interface)
    n = default_workers() if workers is None else max(1, int(workers))
    n = min(n, len(jobs))
    if n <= 1 or reader is not None:
        for job in jobs:
            yield _score_one(job, settings, reader)
        return
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    # fork on Linux, as torch's DataLoader does (spawn would re-run an unguarded script's
    # top level in every worker); the children set one thread and never print
    ctx = mp.get_context("fork" if sys.platform.startswith("linux") else "spawn")
    with ProcessPoolExecutor(max_workers=n, mp_context=ctx, initializer=_init_worker) as pool:
        futures = [pool.submit(_score_job, (job, settings)) for job in jobs]
        for job, fut in zip(jobs, futures):
            try:
                yield fut.result()
            except BrokenProcessPool as exc:
                yield CaseResult(job.case_id, error=f"the worker process scoring it died ({exception_reason(exc)}); "
                                 "rerun with --workers 1 to see why")
