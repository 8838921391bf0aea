"""Affine algebra: spacing, direction, axis codes, reorientation, LPS <-> RAS.

Conventions (decided once, see docs/architecture.md §3): an affine is a 4x4 float64 matrix that
maps voxel indices ``(i, j, k, 1)`` to RAS+ world coordinates in millimetres, as in NIfTI
and nibabel. DICOM's patient coordinate system is LPS+; :func:`lps_to_ras` converts at the
door (in ``medimg.io``) and nowhere else. A 2D image uses the first two columns.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = [
    "as_affine",
    "spacing_from_affine",
    "direction_from_affine",
    "origin_from_affine",
    "axcodes_from_affine",
    "lps_to_ras",
    "ras_to_lps",
    "orientation_transform",
    "reoriented_affine",
    "scaled_affine",
    "affines_close",
    "GRID_ATOL_MM",
    "make_affine",
]

_WORLD_AXIS = {"R": 0, "L": 0, "A": 1, "P": 1, "S": 2, "I": 2}
_POSITIVE = {"R", "A", "S"}


def as_affine(affine: object) -> np.ndarray:
    """Return ``affine`` as a new 4x4 float64 array, checking its shape and finiteness."""
    arr = np.array(affine, dtype=np.float64, copy=True)
    if arr.shape != (4, 4):
        raise ValueError(f"an affine must be 4x4, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError("an affine must be finite (found NaN or inf)")
    return arr


def make_affine(
    spacing: Sequence[float] = (1.0, 1.0, 1.0),
    origin: Sequence[float] = (0.0, 0.0, 0.0),
    direction: np.ndarray | None = None,
) -> np.ndarray:
    """Build a voxel -> RAS affine from spacing (mm), origin (mm, RAS) and a 3x3 direction.

    ``direction``'s columns are the unit vectors (RAS) of the voxel axes; identity if None.
    A 2-element spacing builds a 2D affine (third axis spacing 1).
    """
    sp = np.ones(3)
    sp[: len(spacing)] = np.asarray(spacing, dtype=np.float64)
    org = np.zeros(3)
    org[: len(origin)] = np.asarray(origin, dtype=np.float64)
    d = np.eye(3) if direction is None else np.asarray(direction, dtype=np.float64)
    out = np.eye(4)
    out[:3, :3] = d * sp[None, :]
    out[:3, 3] = org
    return out


def spacing_from_affine(affine: np.ndarray, ndim: int = 3) -> tuple[float, ...]:
    """Voxel spacing in mm along each voxel axis: the norms of the affine's first ``ndim`` columns."""
    a = np.asarray(affine, dtype=np.float64)
    return tuple(float(v) for v in np.linalg.norm(a[:3, :ndim], axis=0))


def direction_from_affine(affine: np.ndarray) -> np.ndarray:
    """3x3 matrix whose columns are the unit RAS direction of each voxel axis."""
    a = np.asarray(affine, dtype=np.float64)[:3, :3]
    norms = np.linalg.norm(a, axis=0)
    norms[norms == 0] = 1.0
    return a / norms[None, :]


def origin_from_affine(affine: np.ndarray) -> tuple[float, float, float]:
    """World (RAS, mm) position of voxel (0, 0, 0)."""
    a = np.asarray(affine, dtype=np.float64)
    return (float(a[0, 3]), float(a[1, 3]), float(a[2, 3]))


def axcodes_from_affine(affine: np.ndarray, ndim: int = 3) -> tuple[str, ...]:
    """Closest anatomical axis code of each voxel axis, e.g. ``('L', 'P', 'S')``.

    A voxel axis gets the code of the world direction that its index increases towards
    (the dominant component of its affine column): 'R' if towards the patient's right. Assignment is greedy by magnitude so two voxel axes never get the
    same world axis, even for oblique (45 degree) acquisitions.
    """
    d = direction_from_affine(affine)[:, :ndim]
    pairs = sorted(
        ((abs(d[w, v]), v, w) for v in range(ndim) for w in range(3)), reverse=True
    )
    used_v: set[int] = set()
    used_w: set[int] = set()
    codes: list[str] = [""] * ndim
    for _, v, w in pairs:
        if v in used_v or w in used_w:
            continue
        used_v.add(v)
        used_w.add(w)
        codes[v] = [("R", "L"), ("A", "P"), ("S", "I")][w][0 if d[w, v] >= 0 else 1]
    return tuple(codes)


def lps_to_ras(affine: np.ndarray) -> np.ndarray:
    """Convert a voxel -> LPS affine (DICOM) to voxel -> RAS (NIfTI): negate the x and y rows."""
    return np.diag([-1.0, -1.0, 1.0, 1.0]) @ np.asarray(affine, dtype=np.float64)


ras_to_lps = lps_to_ras  # the same sign flip, its own inverse


def orientation_transform(
    affine: np.ndarray, target: str | Sequence[str] = "RAS", ndim: int = 3
) -> tuple[tuple[int, ...], tuple[bool, ...]]:
    """How to permute and flip voxel axes so the image's axcodes become ``target``.

    Returns:
        ``(perm, flips)``: new axis ``i`` is old axis ``perm[i]``, reversed where
        ``flips[i]``. Apply as ``data.permute(perm)`` then flip the axes with ``flips``.

    Raises:
        ValueError: ``target`` is not a valid set of axis codes (e.g. ``"RRS"``).
    """
    tgt = tuple(str(c).upper() for c in target)
    if len(tgt) != ndim or len({_WORLD_AXIS.get(c, -1) for c in tgt}) != ndim or any(
        c not in _WORLD_AXIS for c in tgt
    ):
        raise ValueError(
            f"invalid target axis codes {''.join(tgt)!r}: need {ndim} letters from R/L, A/P, S/I, "
            "each anatomical axis once (e.g. 'RAS', 'LPS')"
        )
    cur = axcodes_from_affine(affine, ndim)
    world_to_old = {_WORLD_AXIS[c]: (i, c in _POSITIVE) for i, c in enumerate(cur)}
    perm: list[int] = []
    flips: list[bool] = []
    for c in tgt:
        old, old_pos = world_to_old[_WORLD_AXIS[c]]
        perm.append(old)
        flips.append(old_pos != (c in _POSITIVE))
    return tuple(perm), tuple(flips)


def reoriented_affine(
    affine: np.ndarray,
    old_shape: Sequence[int],
    perm: Sequence[int],
    flips: Sequence[bool],
) -> np.ndarray:
    """Affine of the data after ``permute(perm)`` then flipping axes ``flips``.

    ``old_shape`` is the spatial shape before the permutation. World positions of every
    voxel are unchanged: ``new_affine @ new_index == affine @ old_index``.
    """
    nd = len(perm)
    m = np.eye(4)
    m[:nd, :nd] = 0.0
    for i, (p, f) in enumerate(zip(perm, flips)):
        m[p, i] = -1.0 if f else 1.0
        if f:
            m[p, 3] = old_shape[p] - 1
    return np.asarray(affine, dtype=np.float64) @ m


def scaled_affine(
    affine: np.ndarray,
    old_shape: Sequence[int],
    new_shape: Sequence[int],
    align_corners: bool = False,
) -> np.ndarray:
    """Affine after resampling the same field of view onto ``new_shape`` voxels.

    With ``align_corners=False`` (the default, same as ``F.interpolate``) the outer voxel
    *edges* stay in place: voxel i of the new grid is centred at old continuous index
    ``(i + 0.5) * old/new - 0.5``. With ``True`` the corner voxel *centres* stay in place.
    """
    nd = len(old_shape)
    m = np.eye(4)
    for d in range(nd):
        if align_corners:
            s = (old_shape[d] - 1) / max(new_shape[d] - 1, 1)
            m[d, d], m[d, 3] = s, 0.0
        else:
            s = old_shape[d] / new_shape[d]
            m[d, d], m[d, 3] = s, 0.5 * s - 0.5
    return np.asarray(affine, dtype=np.float64) @ m


#: The one tolerance (mm, on every affine entry) under which two images count as one voxel
#: grid: channels of a case, a label and its image, a prediction and its reference. 1e-3 mm
#: is far below any voxel size and above the float32 rounding of NIfTI's sform (about
#: 2e-5 mm at 200 mm from the origin), so files of one grid written by any tool agree.
GRID_ATOL_MM = 1e-3


def affines_close(a: np.ndarray, b: np.ndarray, atol: float = GRID_ATOL_MM) -> bool:
    """Whether two affines agree element-wise within ``atol`` (mm for the translation)."""
    return bool(np.allclose(np.asarray(a), np.asarray(b), atol=atol, rtol=0.0))
