"""``cnn3d``: a compact 3D CNN for small volumes (MedMNIST's 28^3), quick on a CPU."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import nn

from ...core.errors import ConfigError
from ..tasks import register_classifier
from .common import DropoutLinear, check_head, check_spatial_dims, finish, kaiming_conv

__all__ = ["CompactCNN3d", "cnn3d"]


_NORMS = ("batch", "instance", "group")


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm3d(channels)
    if kind == "instance":
        return nn.InstanceNorm3d(channels, affine=True)
    return nn.GroupNorm(min(8, channels), channels)


class CompactCNN3d(nn.Module):
    """Blocks of (3x3x3 convolution, normalisation, ReLU), a 2x max-pool between blocks,
    global average pooling, dropout and a linear classifier.

    Args:
        in_channels: volume channels.
        out_channels: logits per case.
        channels: output channels of each block; one max-pool between consecutive blocks.
        convs_per_block: convolutions in each block.
        dropout: dropout probability before the classifier.
        norm: ``batch``, ``instance`` or ``group`` normalisation.
    """

    def __init__(self, in_channels: int, out_channels: int, channels: Sequence[int], convs_per_block: int,
                 dropout: float, norm: str) -> None:
        super().__init__()
        blocks: list[nn.Module] = []
        width = in_channels
        for i, c in enumerate(channels):
            layers: list[nn.Module] = [nn.MaxPool3d(2)] if i else []
            for _ in range(convs_per_block):
                layers += [kaiming_conv(nn.Conv3d(width, c, 3, padding=1, bias=False)), _norm(norm, c),
                           nn.ReLU(inplace=True)]
                width = c
            blocks.append(nn.Sequential(*layers))
        self.features = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.fc = DropoutLinear(width, out_channels, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, D, H, W)`` -> logits ``(B, out_channels)``."""
        return self.fc(torch.flatten(self.pool(self.features(x)), 1))


@register_classifier("cnn3d")
def cnn3d(
    *,
    in_channels: int = 1,
    out_channels: int = 2,
    spatial_dims: int = 3,
    channels: Sequence[int] = (16, 32, 64, 128),
    convs_per_block: int = 2,
    dropout: float = 0.3,
    norm: Literal["batch", "instance", "group"] = "batch",
    weights: str | None = None,
) -> nn.Module:
    """A compact 3D CNN: conv-norm-ReLU blocks, global average pooling, dropout, linear.

    Input ``(B, in_channels, D, H, W)``, output logits ``(B, out_channels)``. Each block
    but the first starts with a 2x max-pool, so 28^3 volumes reach the last of the
    four default blocks at 3^3; every side must be at least ``2 ** (len(channels) - 1)``.
    About 0.9 M parameters with the defaults.

    Args:
        in_channels: volume channels (one per sequence or modality).
        out_channels: classes (one logit each), or labels for a multi-label task.
        spatial_dims: must be 3 (for 2D images use a 2D model, e.g. resnet18).
        channels: output channels of each block, first to last.
        convs_per_block: 3x3x3 convolutions (each with normalisation and ReLU) per block.
        dropout: dropout probability on the pooled features, before the classifier.
        norm: normalisation after each convolution: ``batch``, ``instance`` or ``group``
            (groups of up to 8; for batches of one or two cases).
        weights: a local weights file to start from (a state dict; nothing is
            downloaded); tensors whose name or shape differ are skipped, reported, and
            keep their random initialisation.
    """
    check_spatial_dims("cnn3d", spatial_dims, 3)
    check_head("cnn3d", in_channels, out_channels, dropout)
    if not channels or any(int(c) < 1 for c in channels):
        raise ConfigError(f"model 'cnn3d': channels must be one or more positive widths, got {list(channels)}",
                          hint="e.g. channels: [16, 32, 64, 128]")
    if norm not in _NORMS:
        raise ConfigError(f"model 'cnn3d': norm must be one of {', '.join(_NORMS)}, got {norm!r}")
    if convs_per_block < 1:
        raise ConfigError(f"model 'cnn3d': convs_per_block must be at least 1, got {convs_per_block}")
    net = CompactCNN3d(in_channels, out_channels, [int(c) for c in channels], convs_per_block, dropout, norm)
    return finish(net, "cnn3d", weights, f"features.{len(channels) - 1}")
