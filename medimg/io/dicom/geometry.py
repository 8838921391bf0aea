"""Geometry planning: a series' frames -> sorted volumes on one grid, or a precise error.

:func:`_plan_geometry` runs named steps, each of which may stop with a
:class:`~medimg.core.errors.DicomSeriesError` naming the series, the files and the problem:

1. :func:`_slice_axes`: row and column cosines, slice normal and pixel spacing
   (PS3.3 C.7.6.2.1.1), checked to be two orthogonal unit vectors;
2. :func:`_group_positions`: frames sorted by the projection of ImagePositionPatient on
   the normal, equal positions (within 0.01 mm) grouped;
3. :func:`_split_volumes`: several images per position become volumes, told apart by the
   first tag that differs between all of them (temporal position, trigger time, ...);
4. :func:`_check_orientation`: every slice has the first one's orientation;
5. :func:`_stack_geometry`: slice origins on one straight line, gantry tilt (error, shear
   or in-plane resampling), even spacing (error or resampling) -> the slice step;
6. the LPS affine of the output grid.

Nothing here reads pixel data; discovery runs it on every series to fill ``status``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from medimg.core.errors import DicomSeriesError

from .records import _POSITION_TOL_MM, SeriesInfo, _FileHeader, _Frame

_GANTRY_TILT = ("error", "shear", "resample")
_UNEVEN_SPACING = ("error", "resample")


@dataclass
class _Options:
    """How geometry problems are handled (see ``read_dicom``)."""

    gantry_tilt: str = "error"  # error | shear | resample
    uneven_spacing: str = "error"  # error | resample
    min_slices: int = 1

    def __post_init__(self) -> None:
        if self.gantry_tilt not in _GANTRY_TILT:
            raise ValueError(f"gantry_tilt must be 'error', 'shear' or 'resample', got {self.gantry_tilt!r}")
        if self.uneven_spacing not in _UNEVEN_SPACING:
            raise ValueError(f"uneven_spacing must be 'error' or 'resample', got {self.uneven_spacing!r}")


@dataclass
class _Plan:
    """The output grid of a series and where each source frame goes."""

    order: list[list[_Frame]]  # [volume][slice]
    affine_lps: np.ndarray  # of the output grid
    shape: tuple[int, int, int]
    spacing: tuple[float, float, float]
    positions: np.ndarray  # (K,) projections of the source slices on the normal (mm)
    resample_positions: np.ndarray | None = None  # target positions for uneven spacing
    tilt_shift: np.ndarray | None = None  # (2,) in-plane shift per slice (voxels i, j) for tilt resampling
    tilt_deg: float = 0.0
    volume_labels: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class _Axes:
    """In-plane directions (unit vectors, LPS) and spacings (mm) of a series."""

    r: np.ndarray  # row cosine: the direction in which the column index i increases
    c: np.ndarray  # column cosine: the direction in which the row index j increases
    normal: np.ndarray  # r x c
    row_spacing: float  # between adjacent rows, along c
    col_spacing: float  # between adjacent columns, along r


@dataclass
class _Stack:
    """How the sorted slices of volume 0 become the output k axis."""

    step: np.ndarray  # (3,) LPS mm from one output slice to the next
    num_slices: int
    resample_positions: np.ndarray | None = None
    tilt_shift: np.ndarray | None = None
    tilt_deg: float = 0.0
    notes: list[str] = field(default_factory=list)


_VOLUME_KEYS = (
    "temporal_position", "trigger_time", "acquisition_number", "echo_number", "echo_time",
    "diffusion", "stack", "file", "frame_index", "frame_time", "acquisition_time", "content_time",
)


# ----------------------------------------------------------------------------------------
# errors
# ----------------------------------------------------------------------------------------


def _fmt_files(frames: Iterable[_Frame], limit: int = 6) -> str:
    """The paths of ``frames`` for a message (frame numbers of multi-frame files), at most ``limit``."""
    per_path: dict[str, list[int]] = {}
    for f in frames:
        per_path.setdefault(f.path, []).append(f.frame + 1)
    names = []
    for path, fr in per_path.items():
        if not (fr[0] != 1 or len(fr) > 1):
            names.append(path)
        elif len(fr) <= 3:
            names.append(f"{path} [frame {', '.join(str(x) for x in fr)}]")
        else:
            names.append(f"{path} [{len(fr)} frames]")
    more = f" (+{len(names) - limit} more)" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def _series_error(info: SeriesInfo, problem: str, frames: Iterable[_Frame] = (), hint: str | None = None,
                  cli_hint: str | None = None) -> DicomSeriesError:
    """A :class:`DicomSeriesError` naming the series, the problem and the files concerned.

    ``hint`` says how to fix it in Python terms, ``cli_hint`` in command-line terms.
    """
    frames = list(frames)
    where = f"DICOM series {info.key} ('{info.description}', {info.num_files} files)"
    files = _fmt_files(frames) if frames else ""
    msg = f"{where}: {problem}" + (f"; files: {files}" if files else "")
    return DicomSeriesError(msg, series_uid=info.series_instance_uid,
                            files=sorted({f.path for f in frames}) or list(info.files), hint=hint, cli_hint=cli_hint)


# ----------------------------------------------------------------------------------------
# the plan and its steps
# ----------------------------------------------------------------------------------------


def _plan_geometry(info: SeriesInfo, opt: _Options) -> _Plan:
    """Plan the output grid of a series: sort, split volumes, validate (steps in the module doc).

    Args:
        info: a series from discovery (its frames carry the geometry).
        opt: how gantry tilt, uneven spacing and short stacks are handled.

    Returns:
        The plan: frames per volume in slice order, LPS affine, shape ``(I, J, K)``,
        spacing and any resampling to do.

    Raises:
        DicomSeriesError: the frames do not form a regular volume (and ``opt`` does not
            allow a repair).
    """
    frames = info._frames
    if not frames:
        raise _series_error(info, "no image frames")
    f0 = frames[0]
    if f0.iop is None or f0.ipp is None or any(f.ipp is None for f in frames):
        if len(frames) == 1:
            return _plan_2d(f0)
        missing = [f for f in frames if f.ipp is None or f.iop is None]
        raise _series_error(
            info, "ImagePositionPatient/ImageOrientationPatient missing: the slices cannot be placed in space",
            missing, hint="read the files one at a time (read_dicom(file)) to get 2D images",
            cli_hint="run `medimg info FILE` on one file at a time to see each as a 2D image")
    axes = _slice_axes(info, f0, frames)
    positions, clusters = _group_positions(frames, axes.normal)
    vols, labels = _split_volumes(info, clusters, positions)
    ref = vols[0]
    _check_orientation(info, f0, ref)
    if len(ref) < opt.min_slices:
        raise _series_error(info, f"too few slices: {len(ref)} (at least {opt.min_slices} required)", ref)
    stack = _stack_geometry(info, ref, positions, axes, opt)
    aff = np.eye(4)
    aff[:3, 0] = axes.r * axes.col_spacing
    aff[:3, 1] = axes.c * axes.row_spacing
    aff[:3, 2] = stack.step
    aff[:3, 3] = ref[0].ipp
    return _Plan(order=vols, affine_lps=aff, shape=(int(f0.columns), int(f0.rows), int(stack.num_slices)),
                 spacing=(float(axes.col_spacing), float(axes.row_spacing), float(np.linalg.norm(stack.step))),
                 positions=positions, resample_positions=stack.resample_positions,
                 tilt_shift=stack.tilt_shift, tilt_deg=stack.tilt_deg, volume_labels=labels, notes=stack.notes)


def _slice_axes(info: SeriesInfo, f0: _Frame, frames: list[_Frame]) -> _Axes:
    """Step 1: the in-plane axes of the first frame (PS3.3 C.7.6.2.1.1).

    PixelSpacing is ``[between rows, between columns]``: the row spacing runs along the
    column cosine ``c``, the column spacing along the row cosine ``r``.
    """
    if f0.pixel_spacing is None:
        raise _series_error(info, "PixelSpacing (0028,0030) missing", frames[:1])
    r = np.asarray(f0.iop[:3], dtype=float)
    c = np.asarray(f0.iop[3:], dtype=float)
    if abs(np.linalg.norm(r) - 1) > 1e-2 or abs(np.linalg.norm(c) - 1) > 1e-2 or abs(np.dot(r, c)) > 1e-2:
        raise _series_error(info, f"ImageOrientationPatient {list(f0.iop)} is not two orthogonal unit vectors", frames[:1])
    r /= np.linalg.norm(r)
    c /= np.linalg.norm(c)
    normal = np.cross(r, c)
    normal /= np.linalg.norm(normal)
    row_spacing, col_spacing = f0.pixel_spacing
    return _Axes(r, c, normal, float(row_spacing), float(col_spacing))


def _group_positions(frames: list[_Frame], normal: np.ndarray) -> tuple[np.ndarray, list[list[_Frame]]]:
    """Step 2: ``(positions, clusters)``: distinct positions along the normal (mm, ascending)
    and the frames at each, sorted by that projection of ImagePositionPatient."""
    d = np.stack([f.ipp for f in frames]) @ normal
    order = np.argsort(d, kind="stable")
    d_sorted = d[order]
    cluster_start = np.concatenate([[True], np.diff(d_sorted) > _POSITION_TOL_MM])
    cluster_id = np.cumsum(cluster_start) - 1
    clusters: list[list[_Frame]] = [[] for _ in range(int(cluster_id[-1]) + 1)]
    for idx, cid in zip(order, cluster_id):
        clusters[cid].append(frames[idx])
    return d_sorted[cluster_start], clusters


def _split_volumes(info: SeriesInfo, clusters: list[list[_Frame]],
                   positions: np.ndarray) -> tuple[list[list[_Frame]], list[str]]:
    """Step 3: ``(volumes, labels)``: one list of frames per volume, in slice order."""
    counts = np.array([len(cl) for cl in clusters])
    if counts.max() <= 1:
        return [[cl[0] for cl in clusters]], []
    if counts.min() != counts.max():
        bad = [i for i in range(len(clusters)) if counts[i] != np.median(counts)]
        example = clusters[bad[0]]
        raise _series_error(
            info,
            f"duplicate or missing slices: slice positions hold between {counts.min()} and "
            f"{counts.max()} images each (expected the same number at every position); "
            f"position {positions[bad[0]]:.3f} mm along the normal has {len(example)}",
            example, hint="remove duplicate files, or check that the series is complete")
    nvol = int(counts[0])
    key = _choose_volume_key(clusters)
    if key is None:
        raise _series_error(
            info,
            f"duplicate positions: {nvol} images at each of {len(clusters)} positions and no tag "
            "(temporal position, trigger time, acquisition number, echo, b-value) tells them apart",
            clusters[0], hint="remove duplicate copies of the files, or pass the files of one volume",
            cli_hint="remove duplicate copies of the files, or put the files of one volume in a folder of their own")
    vols: list[list[_Frame]] = [[] for _ in range(nvol)]
    for cl in clusters:
        for v, fr in enumerate(sorted(cl, key=lambda f: _sortable(_key_value(f, key)))):
            vols[v].append(fr)
    labels = [f"{key}={_key_value(v[0], key) if key != 'file' else os.path.basename(v[0].path)}" for v in vols]
    return vols, labels


def _check_orientation(info: SeriesInfo, f0: _Frame, ref: list[_Frame]) -> None:
    """Step 4: every slice has the first one's orientation (groups were split on rounded
    values; this checks them exactly)."""
    iops = np.array([f.iop for f in ref], dtype=float)
    off = np.abs(iops - iops[0]).max(axis=1)
    if off.max() > 1e-3:
        raise _series_error(info, "mixed orientations inside the series", [f0, ref[int(off.argmax())]])


def _stack_geometry(info: SeriesInfo, ref: list[_Frame], positions: np.ndarray, axes: _Axes,
                    opt: _Options) -> _Stack:
    """Step 5: the slice step of the output grid, from the first to the last slice origin.

    The spacing comes from the positions, never from SliceThickness (PS3.3 C.7.6.2.1.1).
    """
    k = len(ref)
    if k == 1:
        return _Stack(step=axes.normal * _single_slice_step(ref[0].header), num_slices=1)
    ipp_sorted = np.stack([f.ipp for f in ref])
    total = ipp_sorted[-1] - ipp_sorted[0]
    along = float(total @ axes.normal)
    inplane = total - along * axes.normal
    _check_straight_line(info, ref, ipp_sorted, positions, total, along)
    tilt_deg = _gantry_tilt(info, ref, inplane, along, opt)
    notes: list[str] = []
    resample_positions, note = _even_spacing(info, ref, positions, along, opt)
    if resample_positions is not None:
        k = len(resample_positions)
        notes.append(note or "")
    stack = _Stack(step=total / (k - 1), num_slices=k, resample_positions=resample_positions,
                   tilt_deg=tilt_deg or 0.0, notes=notes)
    if tilt_deg is not None and opt.gantry_tilt == "resample":
        # in-plane shift per slice, in voxels along i (row cosine) and j (column cosine)
        per_slice = inplane / (k - 1)
        stack.tilt_shift = np.array([per_slice @ axes.r / axes.col_spacing, per_slice @ axes.c / axes.row_spacing])
        stack.step = axes.normal * along / (k - 1)
        notes.append(f"gantry tilt {tilt_deg:.2f} deg resampled onto an orthogonal grid")
    elif tilt_deg is not None:
        notes.append(f"gantry tilt {tilt_deg:.2f} deg kept as a sheared affine")
    return stack


def _check_straight_line(info: SeriesInfo, ref: list[_Frame], ipp_sorted: np.ndarray, positions: np.ndarray,
                         total: np.ndarray, along: float) -> None:
    """All slice origins lie on the line from the first to the last (PS3.3 C.7.6.2.1.1)."""
    k = len(ref)
    frac = (positions - positions[0]) / along
    expected = ipp_sorted[0] + frac[:, None] * total[None, :]
    resid = np.linalg.norm(ipp_sorted - expected, axis=1)
    if resid.max() > max(0.05, 0.01 * abs(along) / (k - 1)):
        worst = int(resid.argmax())
        raise _series_error(
            info,
            f"slice positions are not on a straight line (slice {worst} is {resid.max():.3f} mm off "
            "the line from the first to the last slice): the series is not one regular stack",
            [ref[0], ref[worst], ref[-1]])


def _gantry_tilt(info: SeriesInfo, ref: list[_Frame], inplane: np.ndarray, along: float,
                 opt: _Options) -> float | None:
    """The tilt in degrees when slice origins move in-plane (a tilted gantry), else None.

    Raises where ``opt.gantry_tilt`` is ``"error"``.
    """
    k = len(ref)
    if not np.linalg.norm(inplane) > max(0.01, 1e-4 * abs(along)):
        return None
    tilt_deg = float(np.degrees(np.arctan2(np.linalg.norm(inplane), abs(along))))
    if opt.gantry_tilt == "error":
        tag = f" (GantryDetectorTilt {ref[0].header.gantry_tilt} deg)" if ref[0].header.gantry_tilt else ""
        raise _series_error(
            info,
            f"gantry tilt: slice positions move {np.linalg.norm(inplane) / (k - 1):.3f} mm in-plane per "
            f"slice, {tilt_deg:.2f} degrees off the slice normal{tag}",
            [ref[0], ref[-1]],
            hint="pass gantry_tilt='shear' (exact sheared affine, no resampling) or "
                 "gantry_tilt='resample' (orthogonal grid, linear interpolation in-plane)",
            cli_hint="add --gantry-tilt shear (exact sheared affine, no resampling) or --gantry-tilt "
                     "resample (orthogonal grid, linear interpolation in-plane) to `medimg info` or `medimg convert`")
    return tilt_deg


def _spacing_problem(steps: np.ndarray, med: float) -> tuple[str, np.ndarray]:
    """Words for uneven steps between slices, and the indices of gaps of whole missing slices."""
    i_min, i_max = int(steps.argmin()), int(steps.argmax())
    ratio = steps / med
    gaps = np.where((np.abs(ratio - np.round(ratio)) < 0.05) & (np.round(ratio) >= 2))[0]
    if steps.min() <= 0:
        return "duplicate slice positions", gaps
    if len(gaps):
        missing = int(np.sum(np.round(ratio[gaps]) - 1))
        return (f"missing slices: {missing} slice(s) missing (gap of {steps[gaps[0]]:.3f} mm "
                f"where the spacing is {med:.3f} mm, between slices {gaps[0]} and {gaps[0] + 1})"), gaps
    return (f"non-uniform slice spacing: steps between {steps.min():.4f} mm (slices "
            f"{i_min}-{i_min + 1}) and {steps.max():.4f} mm (slices {i_max}-{i_max + 1})"), gaps


def _even_spacing(info: SeriesInfo, ref: list[_Frame], positions: np.ndarray, along: float,
                  opt: _Options) -> tuple[np.ndarray | None, str | None]:
    """``(None, None)`` for evenly spaced slices; else the uniform target positions (mm along
    the normal, at the median step) and a note, where ``opt.uneven_spacing`` is
    ``"resample"``. Raises otherwise."""
    steps = np.diff(positions)
    med = float(np.median(steps))
    if not float(np.max(np.abs(steps - med))) > max(0.01, 0.01 * med):
        return None, None
    problem, gaps = _spacing_problem(steps, med)
    if opt.uneven_spacing == "error":
        i_min, i_max = int(steps.argmin()), int(steps.argmax())
        fr_list = [ref[i_min], ref[i_min + 1], ref[i_max], ref[i_max + 1]] if not len(gaps) else [ref[gaps[0]], ref[gaps[0] + 1]]
        raise _series_error(info, problem, fr_list,
                            hint="pass uneven_spacing='resample' to interpolate onto a uniform "
                                 f"grid at the median spacing ({med:.3f} mm)",
                            cli_hint="add --uneven-spacing resample to `medimg info` or `medimg convert` to "
                                     f"interpolate onto a uniform grid at the median spacing ({med:.3f} mm)")
    if steps.min() <= 0:
        raise _series_error(info, problem, ref)
    n_new = int(round((positions[-1] - positions[0]) / med)) + 1
    note = f"resampled along the slice axis to a uniform {along / (n_new - 1):.4f} mm: {problem}"
    return np.linspace(positions[0], positions[-1], n_new), note


def _single_slice_step(h: _FileHeader) -> float:
    """The k step of a one-slice volume (mm).

    One slice has no second position; the k column then only scales a unit index that no
    voxel centre uses. SpacingBetweenSlices, else SliceThickness, else 1 mm.
    """
    return float(h.spacing_between_slices or h.slice_thickness or 1.0)


def _plan_2d(f: _Frame) -> _Plan:
    """A single slice without patient geometry (DX, CR, SC, US): pixel grid only."""
    ps = f.pixel_spacing or (1.0, 1.0)
    aff = np.diag([ps[1], ps[0], 1.0, 1.0])
    return _Plan(order=[[f]], affine_lps=aff, shape=(f.columns, f.rows, 1), spacing=(ps[1], ps[0], 1.0),
                 positions=np.zeros(1), notes=["no ImagePositionPatient/ImageOrientationPatient: pixel-grid affine"])


# ----------------------------------------------------------------------------------------
# volume keys
# ----------------------------------------------------------------------------------------


def _key_value(fr: _Frame, key: str) -> Any:
    """A frame's value of one volume key (``"diffusion"``: ``(b-value, gradient)``)."""
    if key == "diffusion":
        b = fr.keys.get("b_value")
        g = fr.keys.get("gradient")
        if b is None and g is None:
            return None
        return (b if b is not None else -1.0, tuple(g) if g is not None else ())
    return fr.keys.get(key)


def _sortable(v: Any) -> tuple:
    """A sort key that puts missing values last."""
    if v is None:
        return (1, "")
    return (0, v)


def _choose_volume_key(clusters: list[list[_Frame]]) -> str | None:
    """The first tag whose values differ between all images at each position."""
    for key in _VOLUME_KEYS:
        ok = True
        for cl in clusters:
            vals = [_key_value(f, key) for f in cl]
            if any(v is None for v in vals) or len(set(vals)) != len(vals):
                ok = False
                break
        if ok:
            return key
    return None
