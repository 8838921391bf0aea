"""Pure tensor kernels used by the transform classes; usable on their own (CPU or CUDA)."""

from .intensity import adjust_gamma, channel_stats, map_values, scale_range, zscore
from .spatial import (
    crop,
    fill_missing_background,
    flip,
    foreground_bbox,
    memory_order,
    pad,
    reorient,
    resample_to_shape,
    warp_affine,
    warp_affine_batch,
)

__all__ = [
    "adjust_gamma",
    "channel_stats",
    "map_values",
    "scale_range",
    "zscore",
    "crop",
    "fill_missing_background",
    "flip",
    "foreground_bbox",
    "memory_order",
    "pad",
    "reorient",
    "resample_to_shape",
    "warp_affine",
    "warp_affine_batch",
]
