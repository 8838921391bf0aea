"""SEG frame geometry in world coordinates: planes, where a frame lands in a grid, a SEG's own grid.

A frame's pixel ``(r, c)`` lies at ``IPP + c * dc * X + r * dr * Y`` (LPS mm), with ``X, Y``
the first and second triplets of ImageOrientationPatient and ``PixelSpacing = (dr, dc)``
(PS3.3 C.7.6.2.1.1 and 10.7.1.3: row spacing first).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...core.affine import lps_to_ras
from ...core.errors import DicomError, GeometryError

_POS_ATOL = 1e-2  # mm: DS values are written with ~6 significant digits
_DIR_ATOL = 1e-3  # tolerance on direction cosines / index-space unit vectors


def _floats(value: Any, n: int, what: str, where: str) -> np.ndarray:
    """``n`` floats of an attribute, or a :class:`DicomError` naming it and the file."""
    try:
        arr = np.asarray([float(v) for v in value], dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DicomError(f"{where}: {what} is not numeric (found {value!r})") from exc
    if arr.shape != (n,):
        raise DicomError(f"{where}: {what} must have {n} values, found {arr.size}")
    return arr


def _label_dtype(max_value: int) -> np.dtype:
    """The smallest dtype (uint8, int16, int32) holding label values up to ``max_value``."""
    if max_value <= np.iinfo(np.uint8).max:
        return np.dtype(np.uint8)
    if max_value <= np.iinfo(np.int16).max:
        return np.dtype(np.int16)
    return np.dtype(np.int32)


@dataclass(frozen=True)
class _PlaneGeometry:
    """Geometry of one 2D frame in LPS mm (PS3.3 C.7.6.2.1.1)."""

    position: np.ndarray  # (3,) LPS of pixel (row 0, col 0) centre
    row_dir: np.ndarray  # X: direction of increasing column index
    col_dir: np.ndarray  # Y: direction of increasing row index
    spacing: tuple[float, float]  # (between rows, between columns) mm

    def native_affine(self, slice_vector: np.ndarray | None = None) -> np.ndarray:
        """voxel (col, row, slice) -> RAS affine of a stack starting at this frame."""
        dr, dc = self.spacing
        normal = np.cross(self.row_dir, self.col_dir)
        a = np.eye(4)
        a[:3, 0] = self.row_dir * dc
        a[:3, 1] = self.col_dir * dr
        a[:3, 2] = normal if slice_vector is None else slice_vector
        a[:3, 3] = self.position
        return lps_to_ras(a)


@dataclass(frozen=True)
class _Placement:
    """Where a ``(rows, cols)`` frame lands in a 3D grid: ``grid[index] = block(frame)``."""

    index: tuple[slice, slice, slice]
    slice_axis: int
    flip_rows: bool
    flip_cols: bool
    transpose: bool  # the grid's in-plane axis order is (column axis, row axis)

    def block(self, frame: np.ndarray) -> np.ndarray:
        """The frame oriented as the grid's 3D block at :attr:`index`."""
        f = frame
        if self.flip_rows:
            f = f[::-1, :]
        if self.flip_cols:
            f = f[:, ::-1]
        if self.transpose:
            f = f.T
        return np.expand_dims(f, self.slice_axis)


def _unit_axis(v: np.ndarray, name: str, where: str) -> tuple[int, int]:
    """``(axis, sign)`` of the target axis one SEG ``name`` step follows (a unit step)."""
    ax = int(np.argmax(np.abs(v)))
    sign = 1 if v[ax] > 0 else -1
    expected = np.zeros(3)
    expected[ax] = sign
    if not np.allclose(v, expected, atol=_DIR_ATOL):
        raise GeometryError(
            f"{where}: the SEG's {name} axis does not follow one axis of the target grid "
            f"(one {name} step = {np.round(v, 4).tolist()} voxels of the target; expected a "
            "unit step along one axis)",
            hint="the SEG and the image must share pixel spacing and orientation; "
            "pass the SEG's own source series or read it without a source",
        )
    return ax, sign


def _frame_into_grid(
    target_affine: np.ndarray,
    target_shape: Sequence[int],
    plane: _PlaneGeometry,
    rows: int,
    cols: int,
    where: str,
) -> _Placement:
    """Where a ``(rows, cols)`` frame at ``plane`` lands in a 3D target grid.

    Raises:
        GeometryError: the frame's pixels are not voxels of the grid (other spacing,
            orientation, off-lattice position, or outside it).
    """
    m = np.linalg.inv(target_affine) @ plane.native_affine()  # (col, row, 0) -> target index
    origin = m[:3, 3]
    ax_c, sgn_c = _unit_axis(m[:3, 0], "column", where)
    ax_r, sgn_r = _unit_axis(m[:3, 1], "row", where)
    if ax_c == ax_r:
        raise GeometryError(f"{where}: SEG rows and columns map to the same target axis {ax_c}")
    ax_s = 3 - ax_c - ax_r
    rounded = np.round(origin)
    # tolerance in voxels: the DS rounding of positions (mm) over the smallest spacing
    tol = _POS_ATOL / max(min(np.linalg.norm(target_affine[:3, :3], axis=0)), 1e-6) + 1e-3
    if not np.allclose(origin, rounded, atol=tol):
        raise GeometryError(
            f"{where}: the SEG frame at LPS {np.round(plane.position, 3).tolist()} mm falls "
            f"between voxels of the target grid (target index {np.round(origin, 3).tolist()})",
            hint="the SEG was not made on this series' grid; read it without a source",
        )
    o = rounded.astype(int)
    idx: list[slice] = [slice(0, 0)] * 3
    for ax, sgn, n in ((ax_c, sgn_c, cols), (ax_r, sgn_r, rows)):
        lo = o[ax] if sgn > 0 else o[ax] - n + 1
        if lo < 0 or lo + n > target_shape[ax]:
            raise GeometryError(
                f"{where}: the SEG frame reaches outside the target grid along axis {ax} "
                f"(voxels {lo}..{lo + n - 1}, grid has 0..{target_shape[ax] - 1})",
                hint="pass the source series the SEG was made on",
            )
        idx[ax] = slice(lo, lo + n)
    if not 0 <= o[ax_s] < target_shape[ax_s]:
        raise GeometryError(
            f"{where}: the SEG frame at LPS {np.round(plane.position, 3).tolist()} mm is outside "
            f"the target grid's slices (slice index {o[ax_s]}, grid has 0..{target_shape[ax_s] - 1})",
            hint="pass the source series the SEG was made on",
        )
    idx[ax_s] = slice(o[ax_s], o[ax_s] + 1)
    return _Placement((idx[0], idx[1], idx[2]), ax_s, sgn_r < 0, sgn_c < 0, ax_c < ax_r)


def _grid_from_planes(
    planes: list[_PlaneGeometry], rows: int, cols: int, where: str
) -> tuple[np.ndarray, tuple[int, int, int]]:
    """Native grid (col, row, slice) spanning all frame positions.

    ``i`` = column, ``j`` = row, ``k`` = slice, slices ordered along the normal ``X x Y``
    and spaced by the smallest distance between distinct frame positions (frames omitted
    because they were empty become zero slices).
    """
    p0 = planes[0]
    for p in planes[1:]:
        if not (np.allclose(p.row_dir, p0.row_dir, atol=_DIR_ATOL) and np.allclose(p.col_dir, p0.col_dir, atol=_DIR_ATOL)):
            raise DicomError(f"{where}: frames have different orientations; cannot build one grid", hint="pass the source series")
        if not np.allclose(p.spacing, p0.spacing, atol=1e-4):
            raise DicomError(f"{where}: frames have different pixel spacings; cannot build one grid", hint="pass the source series")
    normal = np.cross(p0.row_dir, p0.col_dir)
    positions = np.stack([p.position for p in planes])
    proj = positions @ normal
    distinct: list[float] = []
    for v in np.sort(proj):
        if not distinct or v - distinct[-1] > _POS_ATOL:
            distinct.append(float(v))
    origin = positions[int(np.argmin(proj))]
    _check_same_inplane_origin(positions, proj, normal, origin, where)
    step, n = _regular_steps(distinct, where)
    plane = _PlaneGeometry(origin, p0.row_dir, p0.col_dir, p0.spacing)
    return plane.native_affine(normal * step), (cols, rows, n)


def _check_same_inplane_origin(positions: np.ndarray, proj: np.ndarray, normal: np.ndarray,
                               origin: np.ndarray, where: str) -> None:
    """Every frame starts at the same (row, col) origin: offsets only along the normal."""
    first = float(proj.min())
    for pos, pj in zip(positions, proj):
        inplane = (pos - origin) - normal * (pj - first)
        if np.linalg.norm(inplane) > _POS_ATOL:
            raise DicomError(
                f"{where}: frames are shifted in-plane against each other by "
                f"{np.round(inplane, 3).tolist()} mm; cannot build one grid",
                hint="pass the source series",
            )


def _regular_steps(distinct: list[float], where: str) -> tuple[float, int]:
    """``(step mm, number of slices)`` of a regular grid through the distinct positions."""
    if len(distinct) == 1:
        return 1.0, 1
    step = float(np.diff(distinct).min())
    ks = (np.asarray(distinct) - distinct[0]) / step
    if not np.allclose(ks, np.round(ks), atol=_POS_ATOL / step + 1e-3):
        raise DicomError(
            f"{where}: frame positions along the normal ({np.round(distinct, 3).tolist()} mm) are "
            "not on a regular grid",
            hint="pass the source series, whose grid the SEG frames then index",
        )
    return step, int(round(ks[-1])) + 1
