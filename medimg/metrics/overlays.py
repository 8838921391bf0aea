"""Overlays of the worst cases: where a segmentation went wrong, drawn on the scan.

:func:`worst_case_overlays` takes the ``n`` cases of an :class:`~.report.EvaluationReport`
with the lowest Dice (the mean over classes of each case's Dice) and, for each, finds its
scan in an images folder (matched by case id with the same rules as the references:
``DIR/<case_id>.nii.gz``, ``DIR/<case_id>/<file>`` or DICOM series folders), then draws
one PNG (matplotlib) of two panels on the same slice:

- the scan with the reference (solid) and prediction (dashed) contours of every class,
  one colour per class, and each class's Dice in the legend;
- the scan with the voxels in error: false positives (predicted foreground on reference
  background) in red, false negatives (reference foreground the prediction missed) in
  blue, foreground given the wrong class in purple.

The slice is the **axial** slice with the most voxels in error (prediction != reference).
Axial is found from the affine: the volume is first reoriented to RAS (nibabel's
``io_orientation``), so the slice is perpendicular to the superior axis whatever the
file's voxel order; it is shown in the radiological convention (patient's right on the
viewer's left, anterior up) with the voxel spacing as aspect ratio. A 2D image is its
own slice. A case whose scan is missing, unreadable or on another grid than its reference
gets no picture but an :attr:`Overlay.problem` the report lists.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import exception_reason
from ..core.image import Image
from .case import label_arrays
from .report import EvaluationReport, natural_key

__all__ = ["DEFAULT_WORST_CASES", "Overlay", "worst_case_overlays", "worst_cases"]

#: How many of the lowest-Dice cases get an overlay unless told.
DEFAULT_WORST_CASES = 3


@dataclass
class Overlay:
    """One worst case: its Dice, and its picture or why there is none.

    Attributes:
        case_id: the case.
        dice: the case's mean Dice over classes.
        per_class: ``{class name: Dice}``.
        path: the PNG written, or None.
        slice_index: the axial slice shown (RAS order, 0 = most inferior), None for 2D.
        n_slices: axial slices in the volume (1 for 2D).
        error_voxels: voxels where prediction and reference differ on that slice.
        problem: why no picture was drawn (missing scan, other grid...), else None.
    """

    case_id: str
    dice: float
    per_class: dict[str, float] = field(default_factory=dict)
    path: Path | None = None
    slice_index: int | None = None
    n_slices: int = 1
    error_voxels: int = 0
    problem: str | None = None


def worst_cases(report: EvaluationReport, n: int = DEFAULT_WORST_CASES) -> list[tuple[str, float, dict[str, float]]]:
    """The ``n`` scored cases with the lowest mean Dice: ``(case_id, dice, {class: dice})``.

    Cases whose Dice is NaN for every class are left out; ties are broken by case id.
    """
    per: dict[str, dict[str, float]] = {}
    for r in report.rows:
        if r["metric"] == "dice":
            per.setdefault(r["case_id"], {})[r["label"]] = float(r["value"])
    scored = []
    for cid, vals in per.items():
        finite = [v for v in vals.values() if math.isfinite(v)]
        if finite:
            scored.append((float(np.mean(finite)), natural_key(cid), cid, vals))
    scored.sort(key=lambda t: (t[0], t[1]))
    return [(cid, d, vals) for d, _, cid, vals in scored[: max(0, n)]]


def find_scans(images: Path, image_name: str | None) -> dict[str, Any]:
    from ..io.cases import find_cases

    found = find_cases(images, files=[image_name] if image_name else None, pick="only", dicom=True,
                       pictures=True, skip_labels=True, what="images")
    return {c.case_id: c for c in found}


def worst_case_overlays(
    report: EvaluationReport,
    images: str | Path,
    out_dir: str | Path,
    n: int = DEFAULT_WORST_CASES,
    *,
    image_name: str | None = None,
    reader: Callable[..., Image] | None = None,
) -> list[Overlay]:
    """Draw the ``n`` lowest-Dice cases of ``report`` on their scans (module docstring).

    Args:
        report: an evaluation with the ``dice`` metric (its ``files`` say where each
            case's prediction and reference are; its settings hold the label map).
        images: the scans: a folder, matched to the cases by case id (or, for an
            evaluation of one pair, one scan file).
        out_dir: the PNGs go to ``out_dir/overlays/worst_<rank>_<case_id>.png``.
        n: how many cases.
        image_name: in one-folder-per-case layouts, the scan's file name (default: the
            only NIfTI file of the folder that is not named like a label map).
        reader: ``reader(path, kind=...)`` -> Image; default :func:`medimg.io.read_image`.

    Returns:
        One :class:`Overlay` per case, worst first (empty without matplotlib).

    Raises:
        DataError: ``images`` does not exist.
    """
    try:
        import matplotlib  # noqa: F401
    except ImportError:  # optional: pip install 'medimg[plots]'
        return []
    scans = find_scans(Path(images), image_name)
    if Path(images).is_file() and len(report.cases) == 1 and len(scans) == 1:  # one pair, one scan: whatever the names
        scans = {report.cases[0]: next(iter(scans.values()))}
    lmap = {int(k): int(v) for k, v in report.summary.get("_settings", {}).get("label_map", {}).items()} or None
    folder = Path(out_dir) / "overlays"
    for old in folder.glob("worst_*.png"):  # an earlier run's pictures would mislead
        old.unlink()
    out = []
    for rank, (cid, dice, per_class) in enumerate(worst_cases(report, n), start=1):
        ov = Overlay(cid, dice, per_class)
        try:
            found = scans.get(cid)
            if found is None:
                raise LookupError(f"no scan for case '{cid}' in '{images}'; name it like the reference "
                                  f"('{cid}.nii.gz' or a folder '{cid}/')")
            if not found.ok:
                raise found.error()
            pred, ref, scan = _read_case(report, cid, found.paths[0], reader)
            p, r = label_arrays(pred, ref, lmap)
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"worst_{rank}_{re.sub(r'[^A-Za-z0-9._-]+', '_', cid)}.png"
            _draw(ov, scan, p, r, report.label_names, path)
        except Exception as exc:  # noqa: BLE001  a picture that cannot be drawn must not stop the report
            ov.problem = exception_reason(exc) if not isinstance(exc, LookupError) else str(exc)
        out.append(ov)
    return out


def _read_case(report: EvaluationReport, cid: str, scan_path: Path,
               reader: Callable[..., Image] | None) -> tuple[Image, Image, Image]:
    """The prediction (empty for a missed case), reference and scan, the scan checked to
    lie on the reference's grid. Without a ``reader``, read as evaluation read them (DICOM
    SEGs placed on their source grid: :mod:`.scoring`)."""
    pred_path, ref_path = report.files[cid]
    if reader is None:
        from ..io import read_image
        from .scoring import CaseJob, read_pair

        pred, ref = read_pair(CaseJob(cid, pred_path, ref_path, scan_path))
        return pred, ref, _checked_scan(read_image(scan_path), ref, scan_path, ref_path)
    ref = reader(ref_path, kind="label")
    ref.meta.setdefault("path", str(ref_path))
    if pred_path is None:
        import torch

        pred = Image(torch.zeros((1, *ref.spatial_shape), dtype=torch.uint8), ref.affine, kind="label")
    else:
        pred = reader(pred_path, kind="label")
        pred.meta.setdefault("path", str(pred_path))
    return pred, ref, _checked_scan(reader(scan_path), ref, scan_path, ref_path)


def _checked_scan(scan: Image, ref: Image, scan_path: Path, ref_path: Path) -> Image:
    """``scan``, checked to lie on the reference's grid."""
    if not scan.same_grid(ref):
        sp = ", ".join(f"{s:.3g}" for s in scan.spacing)
        rsp = ", ".join(f"{s:.3g}" for s in ref.spacing)
        raise ValueError(
            f"scan '{scan_path}' (shape {scan.spatial_shape}, spacing ({sp}) mm) is not on the grid of the "
            f"reference '{ref_path}' (shape {ref.spatial_shape}, spacing ({rsp}) mm); give the scans the "
            "references were drawn on"
        )
    return scan


def _axial(scan: np.ndarray, p: np.ndarray, r: np.ndarray, affine: np.ndarray,
           spacing: tuple[float, ...]) -> tuple[list[np.ndarray], tuple[float, float], int | None, int]:
    """The three 2D arrays (x: patient right->left index, y: posterior->anterior) of the
    axial slice with the most errors, their (x, y) spacing, the slice index and count."""
    if p.ndim == 2:
        return [scan, p, r], (float(spacing[1]), float(spacing[0])), None, 1
    from nibabel.orientations import apply_orientation, io_orientation

    ornt = io_orientation(affine)
    arrays = [apply_orientation(a, ornt) for a in (scan, p, r)]
    sp = [0.0, 0.0, 0.0]
    for i, (axis, _) in enumerate(ornt):
        sp[int(axis)] = float(spacing[i])
    sc, pp, rr = arrays
    err = (pp != rr).sum(axis=(0, 1))
    k = int(err.argmax()) if err.any() else int(((pp > 0) | (rr > 0)).sum(axis=(0, 1)).argmax())
    return [sc[:, :, k].T, pp[:, :, k].T, rr[:, :, k].T], (sp[0], sp[1]), k, int(sc.shape[2])


def _draw(ov: Overlay, scan_img: Image, p: np.ndarray, r: np.ndarray, names: Mapping[int, str], path: Path) -> None:
    """Fill ``ov`` and write its two-panel PNG."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    scan = scan_img.numpy()[0].astype(np.float32)
    (s2, p2, r2), (sx, sy), k, nk = _axial(scan, p, r, scan_img.affine, scan_img.spacing)
    ov.slice_index, ov.n_slices, ov.error_voxels = k, nk, int((p2 != r2).sum())
    lo, hi = np.percentile(s2, [1, 99]) if s2.size else (0.0, 1.0)
    fig = Figure(figsize=(10.0, 5.4), dpi=110)
    FigureCanvasAgg(fig)
    axes = [fig.add_subplot(1, 2, i) for i in (1, 2)]
    for ax in axes:
        ax.imshow(s2, cmap="gray", vmin=lo, vmax=hi if hi > lo else lo + 1, origin="lower",
                  aspect=sy / sx, interpolation="nearest")
    handles = []
    for i, (c, name) in enumerate(sorted(names.items())):
        color = f"C{i % 10}"
        for mask, style in ((r2 == c, "solid"), (p2 == c, "dashed")):
            if mask.any() and not mask.all():
                axes[0].contour(mask.astype(np.float32), levels=[0.5], colors=[color], linewidths=1.4,
                                linestyles=style)
        d = ov.per_class.get(name, math.nan)
        handles.append(Line2D([], [], color=color, lw=2, label=f"{name}: Dice {d:.3f}"))
    handles += [Line2D([], [], color="white", lw=1.4, ls="solid", label="reference (solid)"),
                Line2D([], [], color="white", lw=1.4, ls="dashed", label="prediction (dashed)")]
    leg = axes[0].legend(handles=handles, loc="upper right", fontsize=7, framealpha=0.6, facecolor="black",
                         labelcolor="white")
    leg.get_frame().set_edgecolor("none")
    fp, fn = (p2 > 0) & (r2 == 0), (r2 > 0) & (p2 == 0)
    wrong = (p2 > 0) & (r2 > 0) & (p2 != r2)
    rgba = np.zeros((*p2.shape, 4), np.float32)
    rgba[fp] = (1.0, 0.15, 0.15, 0.75)
    rgba[fn] = (0.2, 0.45, 1.0, 0.75)
    rgba[wrong] = (0.8, 0.2, 1.0, 0.75)
    axes[1].imshow(rgba, origin="lower", aspect=sy / sx, interpolation="nearest")
    axes[1].legend(handles=[Line2D([], [], color=(1, .15, .15), lw=6, label=f"false positive ({int(fp.sum())})"),
                            Line2D([], [], color=(.2, .45, 1), lw=6, label=f"false negative ({int(fn.sum())})"),
                            Line2D([], [], color=(.8, .2, 1), lw=6, label=f"wrong class ({int(wrong.sum())})")],
                   loc="upper right", fontsize=7, framealpha=0.6)
    where = "2D image" if k is None else f"axial slice {k + 1} of {nk} (most errors)"
    axes[0].set_title("reference and prediction", fontsize=9)
    axes[1].set_title("voxels in error", fontsize=9)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
        if k is not None:  # radiological convention: the patient's right on the viewer's left
            ax.invert_xaxis()
            ax.text(0.01, 0.5, "R", transform=ax.transAxes, color="yellow", fontsize=9, va="center")
            ax.text(0.97, 0.5, "L", transform=ax.transAxes, color="yellow", fontsize=9, va="center")
    fig.suptitle(f"{ov.case_id}: mean Dice {ov.dice:.3f}; {where}; {ov.error_voxels} voxels differ", fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    ov.path = path
