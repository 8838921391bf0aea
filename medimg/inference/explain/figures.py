"""PNG figures of a Grad-CAM heat map over its image (needs matplotlib: ``medimg[plots]``).

2D: the image in gray with the heat map over it (transparent where the map is low), a
colour bar and a title naming the class and its probability. Rows are drawn top to
bottom and columns left to right, as a 2D image ``(C, H, W)`` is stored.

3D: three orthogonal slices through the heat map's maximum, each drawn in the usual
radiological views after reorienting the voxel axes to RAS+ (nibabel's
``io_orientation``): axial (patient's right on the viewer's right, anterior up),
coronal and sagittal (superior up), with voxel spacing as the aspect ratio and the
anatomical directions written at the edges.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ...core.errors import MissingDependencyError

__all__ = ["overlay_2d", "slices_3d"]

_CMAP = "jet"


def _figure(width: float, height: float) -> Any:
    """A matplotlib Figure drawn off-screen (no pyplot state)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise MissingDependencyError(
            "writing Grad-CAM figures needs the package 'matplotlib', which is not installed",
            hint="pip install 'medimg[plots]'",
        ) from exc
    fig = Figure(figsize=(width, height), dpi=120)
    FigureCanvasAgg(fig)
    return fig


def _gray_limits(image: np.ndarray) -> tuple[float, float]:
    """Display window of the image: its 0.5th to 99.5th percentile (robust to outliers)."""
    finite = image[np.isfinite(image)]
    if finite.size == 0:
        return 0.0, 1.0
    lo, hi = np.percentile(finite, [0.5, 99.5])
    return float(lo), float(hi if hi > lo else lo + 1.0)


def _alpha(heat: np.ndarray) -> np.ndarray:
    """Opacity per pixel: the map's own value (0 where it is 0), at most 0.5."""
    return np.clip(heat, 0.0, 1.0) * 0.5


def _draw(ax: Any, image: np.ndarray, heat: np.ndarray, window: tuple[float, float], **kw: Any) -> Any:
    """Gray image, heat map over it; returns the heat map's artist (for the colour bar)."""
    ax.imshow(image, cmap="gray", vmin=window[0], vmax=window[1], interpolation="nearest", **kw)
    art = ax.imshow(heat, cmap=_CMAP, vmin=0.0, vmax=1.0, alpha=_alpha(heat), interpolation="bilinear", **kw)
    ax.set_xticks([])
    ax.set_yticks([])
    return art


def overlay_2d(image: np.ndarray, heat: np.ndarray, title: str, path: Path) -> Path:
    """Write the 2D overlay.

    Args:
        image: ``(H, W)`` intensities (one channel of the input).
        heat: ``(H, W)`` heat map in [0, 1] on the same grid.
        title: e.g. ``"pneumonia  p=0.93"``.
        path: the PNG to write.
    """
    h, w = image.shape
    scale = 4.5 / max(h, w)
    fig = _figure(w * scale + 1.6, h * scale + 0.9)
    ax = fig.add_subplot(1, 1, 1)
    art = _draw(ax, image, heat, _gray_limits(image))
    ax.set_title(title, fontsize=10)
    fig.colorbar(art, ax=ax, fraction=0.046, pad=0.04, label="Grad-CAM (0-1)")
    fig.tight_layout()
    fig.savefig(path)
    return path


#: For each view: the fixed RAS axis, the (horizontal, vertical) axes and their edge letters
#: (left, right, bottom, top).
_VIEWS = (
    ("axial", 2, (0, 1), ("L", "R", "P", "A")),
    ("coronal", 1, (0, 2), ("L", "R", "I", "S")),
    ("sagittal", 0, (1, 2), ("P", "A", "I", "S")),
)


def _to_ras(volume: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The volume with voxel axes flipped/permuted to the nearest RAS+ order, and the
    voxel spacing along each of the new axes."""
    import nibabel.orientations as nio

    ornt = nio.io_orientation(affine)
    spacing = np.sqrt((np.asarray(affine)[:3, :3] ** 2).sum(axis=0))
    ras_spacing = np.empty(3)
    ras_spacing[ornt[:, 0].astype(int)] = spacing
    return nio.apply_orientation(volume, ornt), ras_spacing


def _edge_letters(ax: Any, letters: Sequence[str]) -> None:
    """Anatomical directions at the left, right, bottom and top edges of a view."""
    style = {"color": "white", "fontsize": 8, "fontweight": "bold", "transform": ax.transAxes}
    left, right, bottom, top = letters
    ax.text(0.02, 0.5, left, ha="left", va="center", **style)
    ax.text(0.98, 0.5, right, ha="right", va="center", **style)
    ax.text(0.5, 0.02, bottom, ha="center", va="bottom", **style)
    ax.text(0.5, 0.98, top, ha="center", va="top", **style)


def _peak_text(heat: np.ndarray, affine: np.ndarray) -> str:
    """Where the stored heat map peaks: voxel indices and RAS+ millimetres."""
    peak = np.unravel_index(int(np.argmax(heat)), heat.shape)
    world = np.asarray(affine)[:3, :3] @ np.asarray(peak, dtype=float) + np.asarray(affine)[:3, 3]
    return f"maximum at voxel {tuple(int(i) for i in peak)}, RAS ({', '.join(f'{v:.1f}' for v in world)}) mm"


def slices_3d(image: np.ndarray, heat: np.ndarray, affine: np.ndarray, title: str, path: Path) -> Path:
    """Write the three orthogonal slices through the heat map's maximum.

    Args:
        image: ``(I, J, K)`` intensities (one channel of the input).
        heat: ``(I, J, K)`` heat map in [0, 1] on the same grid.
        affine: the grid's voxel -> RAS+ mm affine.
        title: e.g. ``"tumour  p=0.88"``.
        path: the PNG to write.
    """
    vol, spacing = _to_ras(np.asarray(image, dtype=np.float32), affine)
    hot, _ = _to_ras(np.asarray(heat, dtype=np.float32), affine)
    peak = np.unravel_index(int(np.argmax(hot)), hot.shape)
    window = _gray_limits(vol)
    fig = _figure(11.0, 4.4)
    fig.set_layout_engine("constrained")
    axes = fig.subplots(1, 3)
    art = None
    for ax, (name, fixed, (hx, vy), letters) in zip(axes, _VIEWS):
        index = [slice(None)] * 3
        index[fixed] = peak[fixed]
        # rows of the drawn array = the vertical axis, drawn bottom-up (origin="lower")
        img2 = np.moveaxis(vol[tuple(index)], 0, -1) if hx < vy else vol[tuple(index)]
        hot2 = np.moveaxis(hot[tuple(index)], 0, -1) if hx < vy else hot[tuple(index)]
        art = _draw(ax, img2, hot2, window, origin="lower", aspect=spacing[vy] / spacing[hx])
        _edge_letters(ax, letters)
        ax.set_title(f"{name}, slice {peak[fixed] + 1} of {hot.shape[fixed]}", fontsize=9)
    fig.suptitle(f"{title}\n{_peak_text(np.asarray(heat), affine)}", fontsize=10)
    fig.colorbar(art, ax=list(axes), fraction=0.02, pad=0.02, label="Grad-CAM (0-1)")
    fig.savefig(path)
    return path
