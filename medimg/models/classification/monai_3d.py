"""3D classifiers from MONAI: ResNet-10/18/34/50 and DenseNet-121, for any number of
input channels and classes.

MONAI builds each network (its ``pretrained`` download is never used); medimg chooses
the stem, adds an optional dropout before the classifier, and can start from a local
weights file. Module names are MONAI's (``conv1``, ``layer1``..``layer4``, ``fc``;
``features``, ``class_layers``), so MONAI-format files such as MedicalNet's load by name
(a ``module.`` prefix is removed).

The standard stem is MedicalNet's (Chen et al. 2019): a 7x7x7 stride-2 convolution and
a 3x3x3 stride-2 max-pool, dividing the volume by 4 before the first block and by 32
in all. ``small_input`` keeps the full resolution in the stem (3x3x3, stride 1, no
max-pool), dividing by 8: for 28-64 voxel volumes such as MedMNIST's 28^3.
"""

from __future__ import annotations

from typing import Literal

from torch import nn

from ...core.errors import ConfigError
from ..tasks import register_classifier
from .common import (
    DropoutLinear,
    check_head,
    check_spatial_dims,
    finish,
    kaiming_conv,
    keep_max_pool,
)

__all__ = ["densenet121_3d", "resnet10_3d", "resnet18_3d", "resnet34_3d", "resnet50_3d"]


def _resnet_3d(name: str, depth: int, in_channels: int, out_channels: int, spatial_dims: int,
               small_input: bool, max_pool: bool | None, widen_factor: float, shortcut_type: str,
               bias_downsample: bool, dropout: float, weights: str | None) -> nn.Module:
    """A MONAI ResNet of ``depth`` with the stem and head medimg's options ask for."""
    from monai.networks.nets import resnet

    check_spatial_dims(name, spatial_dims, 3)
    check_head(name, in_channels, out_channels, dropout)
    if widen_factor <= 0:
        raise ConfigError(f"model '{name}': widen_factor must be positive, got {widen_factor}")
    if shortcut_type not in ("A", "B"):
        raise ConfigError(f"model '{name}': shortcut_type must be A or B, got {shortcut_type!r}")
    net = getattr(resnet, f"resnet{depth}")(
        spatial_dims=3,
        n_input_channels=in_channels,
        num_classes=out_channels,
        conv1_t_size=3 if small_input else 7,
        conv1_t_stride=1 if small_input else 2,
        no_max_pool=not keep_max_pool(small_input, max_pool),
        widen_factor=widen_factor,
        shortcut_type=shortcut_type,
        bias_downsample=bias_downsample,
    )
    if dropout > 0:
        net.fc = DropoutLinear(net.fc.in_features, out_channels, dropout)
    return finish(net, name, weights, "layer4")


_RESNET_ARGS = """
    Args:
        in_channels: volume channels (one per sequence or modality).
        out_channels: classes (one logit each), or labels for a multi-label task.
        spatial_dims: must be 3 (for 2D images use the 2D models, e.g. resnet18).
        small_input: a 3x3x3 stride-1 stem convolution without max-pool (unless
            ``max_pool`` is true) instead of the 7x7x7 stride-2 one: for 28-64 voxel
            volumes.
        max_pool: keep the stem's max-pool; default (null): yes with the standard stem,
            no with ``small_input``.
        widen_factor: multiplies every layer's width (0.5: a quarter of the parameters).
        shortcut_type: ``B`` (1x1 convolution on down-sampling shortcuts) or ``A``
            (parameter-free); MedicalNet's weights use ``A`` for ResNet-18/34.
        bias_downsample: bias in the shortcut convolutions; MedicalNet's weights have
            none for ResNet-10/50.
        dropout: dropout probability on the pooled features, before the classifier.
        weights: a local weights file to start from (a state dict; nothing is
            downloaded); tensors whose name or shape differ (the classifier for another
            number of classes, the first convolution for other channels or the small
            stem) are skipped, reported, and keep their random initialisation.
"""


def _resnet_doc(depth: int, blocks: str, min_size: str) -> str:
    return (
        f"ResNet-{depth} for 3D volumes (Hara et al. 2018, {blocks}; MONAI's), any channels and classes.\n\n"
        f"Input ``(B, in_channels, D, H, W)``, output logits ``(B, out_channels)``. {min_size}\n"
        + _RESNET_ARGS
    )


def _make_resnet_3d(depth: int, blocks: str):
    """The registered factory of the 3D ResNet of ``depth``."""
    name = f"resnet{depth}_3d"

    def factory(
        *,
        in_channels: int = 1,
        out_channels: int = 2,
        spatial_dims: int = 3,
        small_input: bool = False,
        max_pool: bool | None = None,
        widen_factor: float = 1.0,
        shortcut_type: Literal["A", "B"] = "B",
        bias_downsample: bool = True,
        dropout: float = 0.0,
        weights: str | None = None,
    ) -> nn.Module:
        return _resnet_3d(name, depth, in_channels, out_channels, spatial_dims, small_input, max_pool,
                          widen_factor, shortcut_type, bias_downsample, dropout, weights)

    factory.__name__ = factory.__qualname__ = name
    factory.__doc__ = _resnet_doc(depth, blocks, "The volume is divided by 32 (by 8 with ``small_input``).")
    return register_classifier(name)(factory)


resnet10_3d = _make_resnet_3d(10, "basic blocks, one per stage")
resnet18_3d = _make_resnet_3d(18, "basic blocks")
resnet34_3d = _make_resnet_3d(34, "basic blocks")
resnet50_3d = _make_resnet_3d(50, "bottleneck blocks")


@register_classifier("densenet121_3d")
def densenet121_3d(
    *,
    in_channels: int = 1,
    out_channels: int = 2,
    spatial_dims: int = 3,
    small_input: bool = False,
    max_pool: bool | None = None,
    dropout: float = 0.0,
    weights: str | None = None,
) -> nn.Module:
    """DenseNet-121 for 3D volumes (Huang et al. 2017; MONAI's), any channels and classes.

    Input ``(B, in_channels, D, H, W)``, output logits ``(B, out_channels)``. The
    standard stem needs every side >= 32 (the volume is divided by 32); ``small_input``
    divides by 8 (16 with ``max_pool``).

    Args:
        in_channels: volume channels (one per sequence or modality).
        out_channels: classes (one logit each), or labels for a multi-label task.
        spatial_dims: must be 3 (for 2D images use densenet121).
        small_input: replace the 7x7x7 stride-2 stem convolution (``features.conv0``) by a
            3x3x3 stride-1 one and drop the stem's max-pool (unless ``max_pool`` is true).
        max_pool: keep the stem's max-pool (``features.pool0``); default (null): yes with
            the standard stem, no with ``small_input``.
        dropout: dropout probability on the pooled features, before the classifier.
        weights: a local weights file to start from (a state dict; nothing is
            downloaded); tensors whose name or shape differ are skipped, reported, and
            keep their random initialisation.
    """
    from monai.networks.nets import DenseNet121

    check_spatial_dims("densenet121_3d", spatial_dims, 3)
    check_head("densenet121_3d", in_channels, out_channels, dropout)
    net = DenseNet121(spatial_dims=3, in_channels=in_channels, out_channels=out_channels)
    if small_input:
        net.features.conv0 = kaiming_conv(nn.Conv3d(in_channels, 64, 3, stride=1, padding=1, bias=False))
    if not keep_max_pool(small_input, max_pool):
        net.features.pool0 = nn.Identity()
    if dropout > 0:
        head = net.class_layers.out
        net.class_layers.out = DropoutLinear(head.in_features, out_channels, dropout)
    return finish(net, "densenet121_3d", weights, "features.norm5")
