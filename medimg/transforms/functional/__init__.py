"""Pure tensor kernels used by the transform classes; usable on their own (CPU or CUDA)."""

from .artefacts import ghosting, motion
from .augment import (
    adjust_contrast,
    bias_field,
    bias_field_terms,
    gamma_transform,
    gaussian_blur,
    gaussian_noise,
    low_resolution,
)
from .deform import deformation_grid, inverse_deformation_grid, upsample_field, warp_grid
from .intensity import adjust_gamma, channel_stats, corner_background, map_values, scale_range, zscore
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
    "corner_background",
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
    "adjust_contrast",
    "bias_field",
    "bias_field_terms",
    "gamma_transform",
    "gaussian_blur",
    "gaussian_noise",
    "low_resolution",
    "deformation_grid",
    "inverse_deformation_grid",
    "upsample_field",
    "warp_grid",
    "ghosting",
    "motion",
]
