"""MONAI's DynUNet (the nnU-Net architecture) with nnU-Net's defaults derived from the patch.

``model: {name: dynunet, deep_supervision: true}`` is enough: the engine fills
``roi_size`` with ``inference.roi_size`` (the training patch), and the levels follow
nnU-Net's rules (Isensee et al. 2021): every axis is halved at each level while it stays at
least :data:`MIN_FEATURE_SIZE` voxels, at most :data:`MAX_DOWNSAMPLINGS` times; 3x3(x3)
kernels; 32 feature maps at full resolution, doubled per level up to 320 (3D) or 512 (2D).
(nnU-Net also shapes kernels and strides by the voxel spacing of anisotropic data; give
``kernel_size`` and ``strides`` explicitly for that.)

With ``deep_supervision``, the network in training mode returns one tensor
``(B, 1 + deep_supr_num, K, *spatial)``: the full-resolution logits first, then those of
coarser decoder levels, upsampled to full resolution. Every segmentation loss weighs them
nnU-Net style (:mod:`medimg.losses.multiscale`). In evaluation mode it returns the
full-resolution logits ``(B, K, *spatial)`` alone, so validation, prediction and export
see an ordinary network.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import nn

from ..core.errors import ConfigError
from .registry import MODELS

__all__ = ["MAX_DOWNSAMPLINGS", "MIN_FEATURE_SIZE", "dynunet", "dynunet_levels"]

#: nnU-Net's smallest feature map edge (voxels) at the bottleneck.
MIN_FEATURE_SIZE = 4
#: nnU-Net's largest number of down-samplings per axis.
MAX_DOWNSAMPLINGS = 5
#: Patch assumed when no ``roi_size`` is given (4 down-samplings: inputs divisible by 16).
DEFAULT_ROI = 64


def dynunet_levels(roi_size: Sequence[int]) -> tuple[list[list[int]], list[list[int]]]:
    """Kernel sizes and strides per level for a patch of ``roi_size`` voxels (nnU-Net rules).

    Level 0 keeps the resolution (stride 1); each further level halves every axis that is
    even and stays at least :data:`MIN_FEATURE_SIZE` voxels, until no axis can be halved or
    an axis was halved :data:`MAX_DOWNSAMPLINGS` times. Kernels are 3 on every axis.

    Returns:
        ``(kernel_size, strides)``, one list of per-axis values per level.
    """
    size = [int(s) for s in roi_size]
    strides = [[1] * len(size)]
    halved = [0] * len(size)
    while True:
        step = [2 if s % 2 == 0 and s // 2 >= MIN_FEATURE_SIZE and h < MAX_DOWNSAMPLINGS else 1
                for s, h in zip(size, halved)]
        if all(s == 1 for s in step):
            break
        strides.append(step)
        size = [s // st for s, st in zip(size, step)]
        halved = [h + (st == 2) for h, st in zip(halved, step)]
    return [[3] * len(size) for _ in strides], strides


def _per_axis(values: Sequence[Any], ndim: int) -> list[list[int]]:
    return [[int(v)] * ndim if isinstance(v, int) else [int(x) for x in v] for v in values]


def _check_divisible(roi_size: Sequence[int], strides: list[list[int]]) -> None:
    total = [1] * len(roi_size)
    for level in strides:
        total = [t * s for t, s in zip(total, level)]
    if any(int(r) % t for r, t in zip(roi_size, total)):
        raise ConfigError(
            f"model 'dynunet': inference.roi_size {list(roi_size)} is not divisible by the total "
            f"down-sampling {total} of strides {strides}",
            hint="leave model.strides and model.kernel_size out (derived from the patch) or make "
            "each roi_size value a multiple of its axis's total stride",
        )


def _levels(roi_size: Sequence[int] | None, kernel_size: Sequence[Any] | None, strides: Sequence[Any] | None,
            spatial_dims: int) -> tuple[list[list[int]], list[list[int]]]:
    """Kernel sizes and strides per level: as given, or derived from the patch; checked."""
    if (kernel_size is None) != (strides is None):
        raise ConfigError(
            "model 'dynunet': give both model.kernel_size and model.strides, or neither "
            "(then both are derived from the patch)",
            hint="remove the one you gave, or add the other with one value per level",
        )
    if roi_size is not None and len(roi_size) != spatial_dims:
        raise ConfigError(
            f"model 'dynunet': roi_size has {len(roi_size)} values but spatial_dims is {spatial_dims}",
            hint="leave model.roi_size out (it is inference.roi_size) or give one value per axis",
        )
    if kernel_size is None:
        kernels, steps = dynunet_levels(roi_size or [DEFAULT_ROI] * spatial_dims)
    else:
        kernels, steps = _per_axis(kernel_size, spatial_dims), _per_axis(strides or [], spatial_dims)
        if len(kernels) != len(steps):
            raise ConfigError(
                f"model 'dynunet': kernel_size has {len(kernels)} levels but strides has {len(steps)}",
                hint="give one kernel size and one stride per level",
            )
    if roi_size is not None:
        _check_divisible(roi_size, steps)
    return kernels, steps


@MODELS.register("dynunet")
def dynunet(
    *,
    in_channels: int = 1,
    out_channels: int = 2,
    spatial_dims: int = 3,
    roi_size: Sequence[int] | None = None,
    kernel_size: Sequence[int | Sequence[int]] | None = None,
    strides: Sequence[int | Sequence[int]] | None = None,
    filters: Sequence[int] | None = None,
    deep_supervision: bool = False,
    deep_supr_num: int | None = None,
    res_block: bool = False,
    norm: str = "instance",
    dropout: float | None = None,
) -> nn.Module:
    """MONAI's DynUNet, the nnU-Net U-Net (leaky ReLU, instance norm, transposed convs).

    Args:
        in_channels: input channels (image sequences).
        out_channels: classes, background included.
        spatial_dims: 2 or 3.
        roi_size: the training patch (voxels per axis); from a config, ``inference.roi_size``
            unless given. Kernels and strides are derived from it (:func:`dynunet_levels`);
            without it, from a 64-voxel cube (inputs divisible by 16).
        kernel_size, strides: per level, an int or one value per axis; both or neither.
        filters: feature maps per level (default 32, 64, ... up to 320 in 3D, 512 in 2D).
        deep_supervision: in training mode, also return the logits of coarser decoder
            levels (see the module docstring); every segmentation loss weighs them.
        deep_supr_num: how many coarser outputs (default: all but the coarsest decoder
            level, ``levels - 2``, as nnU-Net).
        res_block: residual blocks instead of plain double convolutions.
        norm: normalisation as MONAI spells it (``instance``: with affine parameters, as
            nnU-Net; ``batch``).
        dropout: dropout probability (None: none).
    """
    from monai.networks.nets import DynUNet

    kernels, steps = _levels(roi_size, kernel_size, strides, spatial_dims)
    if len(steps) < 3 and deep_supervision:
        raise ConfigError(
            f"model 'dynunet': deep_supervision needs at least 3 levels, got {len(steps)} "
            f"(strides {steps})", hint="use a larger inference.roi_size or set model.deep_supervision: false",
        )
    cap = 320 if spatial_dims == 3 else 512
    feats = list(filters) if filters is not None else [min(32 * 2**i, cap) for i in range(len(steps))]
    if len(feats) < len(steps):
        raise ConfigError(
            f"model 'dynunet': filters has {len(feats)} values but the network has {len(steps)} "
            f"levels (strides {steps})", hint=f"give {len(steps)} filters, or leave model.filters out",
        )
    extra = deep_supr_num if deep_supr_num is not None else max(1, len(steps) - 2)
    if deep_supervision and not 1 <= extra <= len(steps) - 2:
        raise ConfigError(
            f"model 'dynunet': deep_supr_num must be between 1 and {len(steps) - 2} for "
            f"{len(steps)} levels, got {extra}", hint="leave model.deep_supr_num out (all but the coarsest)",
        )
    return DynUNet(
        spatial_dims=spatial_dims,
        in_channels=in_channels,
        out_channels=out_channels,
        kernel_size=kernels,
        strides=steps,
        upsample_kernel_size=steps[1:],
        filters=feats[: len(steps)],
        dropout=dropout,
        norm_name=("instance", {"affine": True}) if norm == "instance" else norm,  # nnU-Net's
        deep_supervision=deep_supervision,
        deep_supr_num=extra,
        res_block=res_block,
    )
