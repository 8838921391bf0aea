"""The :class:`Image`: a channel-first tensor with a voxel -> RAS+ mm affine."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from .affine import (
    GRID_ATOL_MM,
    affines_close,
    as_affine,
    axcodes_from_affine,
    direction_from_affine,
    origin_from_affine,
    spacing_from_affine,
)

__all__ = ["Image", "KINDS"]

#: The kinds of image; transforms choose interpolation by kind.
KINDS = ("intensity", "label", "probabilities")


class Image:
    """Image data on a physical grid.

    Args:
        data: channel-first array, ``(C, I, J, K)`` for 3D or ``(C, H, W)`` for 2D; a
            numpy array is wrapped without a copy (memory order is kept, so a
            Fortran-ordered NIfTI array stays a strided view).
        affine: 4x4 matrix mapping voxel indices ``(i, j, k, 1)`` to RAS+ world
            coordinates in mm. For 2D data only the first two columns are used.
            Identity if omitted.
        kind: ``"intensity"``, ``"label"`` (integer class indices) or
            ``"probabilities"`` (one channel per class).
        meta: free metadata (source path, DICOM tags, label names...). Copied.

    An ``Image`` is treated as immutable: methods return new images, and inputs are
    never modified in place.
    """

    __slots__ = ("data", "affine", "kind", "meta")

    def __init__(
        self,
        data: torch.Tensor | np.ndarray,
        affine: np.ndarray | None = None,
        kind: str = "intensity",
        meta: Mapping[str, Any] | None = None,
    ) -> None:
        if isinstance(data, np.ndarray):
            if any(s < 0 for s in data.strides):  # torch cannot view negative strides
                data = np.ascontiguousarray(data)
            if data.dtype == np.uint16:
                data = data.astype(np.int32)  # torch has limited uint16 support
            elif data.dtype == np.uint32:
                data = data.astype(np.int64)
            data = torch.from_numpy(data)
        if not isinstance(data, torch.Tensor):
            raise TypeError(f"Image data must be a torch.Tensor or numpy array, got {type(data).__name__}")
        if data.ndim not in (3, 4):
            raise ValueError(
                f"Image data must be channel-first (C, H, W) or (C, I, J, K); got {data.ndim}D "
                f"shape {tuple(data.shape)}. Add a channel axis with data[None]."
            )
        if kind not in KINDS:
            raise ValueError(f"Image kind must be one of {KINDS}, got {kind!r}")
        self.data: torch.Tensor = data
        self.affine: np.ndarray = np.eye(4) if affine is None else as_affine(affine)
        self.kind: str = kind
        self.meta: dict[str, Any] = dict(meta or {})

    # -- geometry ---------------------------------------------------------------------
    @property
    def spatial_ndim(self) -> int:
        """Number of spatial dimensions (2 or 3)."""
        return self.data.ndim - 1

    @property
    def num_channels(self) -> int:
        return int(self.data.shape[0])

    @property
    def spatial_shape(self) -> tuple[int, ...]:
        """Shape without the channel axis, e.g. ``(I, J, K)``."""
        return tuple(int(s) for s in self.data.shape[1:])

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(int(s) for s in self.data.shape)

    @property
    def dtype(self) -> torch.dtype:
        return self.data.dtype

    @property
    def spacing(self) -> tuple[float, ...]:
        """Voxel size in mm along each spatial axis."""
        return spacing_from_affine(self.affine, self.spatial_ndim)

    @property
    def origin(self) -> tuple[float, float, float]:
        """RAS world position (mm) of the centre of voxel (0, 0, 0)."""
        return origin_from_affine(self.affine)

    @property
    def direction(self) -> np.ndarray:
        """3x3 matrix, columns = unit RAS direction of each voxel axis."""
        return direction_from_affine(self.affine)

    @property
    def axcodes(self) -> tuple[str, ...]:
        """Anatomical direction of each voxel axis, e.g. ``('R', 'A', 'S')``."""
        return axcodes_from_affine(self.affine, self.spatial_ndim)

    # -- construction helpers ---------------------------------------------------------
    def new(
        self,
        data: torch.Tensor | np.ndarray | None = None,
        affine: np.ndarray | None = None,
        kind: str | None = None,
        meta: Mapping[str, Any] | None = None,
    ) -> "Image":
        """A new image with some fields replaced (the others shared, meta copied)."""
        return Image(
            self.data if data is None else data,
            self.affine if affine is None else affine,
            self.kind if kind is None else kind,
            self.meta if meta is None else meta,
        )

    def to(self, *args: Any, **kwargs: Any) -> "Image":
        """Like ``Tensor.to``: move or cast the data."""
        return self.new(self.data.to(*args, **kwargs))

    def numpy(self) -> np.ndarray:
        """The data as a numpy array (a view when on CPU)."""
        return self.data.detach().cpu().numpy()

    def clone(self) -> "Image":
        return Image(self.data.clone(), self.affine.copy(), self.kind, copy.deepcopy(self.meta))

    def same_grid(self, other: "Image", atol: float = GRID_ATOL_MM) -> bool:
        """Whether ``other`` has the same spatial shape and affine (within ``atol`` mm,
        by default the project's one grid tolerance :data:`~medimg.core.affine.GRID_ATOL_MM`)."""
        return self.spatial_shape == other.spatial_shape and affines_close(self.affine, other.affine, atol)

    def __repr__(self) -> str:
        sp = ", ".join(f"{s:.3g}" for s in self.spacing)
        return (
            f"Image(kind={self.kind!r}, shape={self.shape}, dtype={str(self.dtype).replace('torch.', '')}, "
            f"spacing=({sp}) mm, axcodes={''.join(self.axcodes)})"
        )
