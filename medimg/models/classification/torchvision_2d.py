"""2D classifiers from torchvision: ResNet-18/34/50, DenseNet-121, EfficientNet-B0,
ConvNeXt-Tiny, for any number of input channels and classes.

torchvision builds each network (``weights=None``: nothing is ever downloaded); medimg
swaps the first convolution for ``in_channels`` inputs, optionally puts a small-image
stem in place of the ImageNet one, and can start from a local weights file. Module names
are torchvision's, so torchvision's own weight files load by name (all but the layers
whose shape differs, which are reported).

The ImageNet stems divide the image by 4 before the first block and by 32 in all; on
28-64 px images (MedMNIST) that leaves one or two pixels to learn from. ``small_input``
keeps the full resolution in the stem (a 3x3 stride-1 convolution), so the network
divides by 8 (ResNet, DenseNet, ConvNeXt) or 16 (EfficientNet) instead.
"""

from __future__ import annotations

from torch import nn

from ..tasks import register_classifier
from .common import (
    DropoutLinear,
    check_head,
    check_spatial_dims,
    finish,
    kaiming_conv,
    keep_max_pool,
)

__all__ = ["convnext_tiny", "densenet121", "efficientnet_b0", "resnet18", "resnet34", "resnet50"]


def _resnet(name: str, in_channels: int, out_channels: int, spatial_dims: int, small_input: bool,
            max_pool: bool | None, dropout: float, weights: str | None) -> nn.Module:
    """A torchvision ResNet with the stem and head medimg's options ask for."""
    import torchvision.models as tvm

    check_spatial_dims(name, spatial_dims, 2)
    check_head(name, in_channels, out_channels, dropout)
    net = getattr(tvm, name)(weights=None, num_classes=out_channels)
    if small_input:
        net.conv1 = kaiming_conv(nn.Conv2d(in_channels, 64, kernel_size=3, stride=1, padding=1, bias=False))
    elif in_channels != 3:
        net.conv1 = kaiming_conv(nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False))
    if not keep_max_pool(small_input, max_pool):
        net.maxpool = nn.Identity()
    if dropout > 0:
        net.fc = DropoutLinear(net.fc.in_features, out_channels, dropout)
    return finish(net, name, weights, "layer4")


@register_classifier("resnet18")
def resnet18(
    *,
    in_channels: int = 1,
    out_channels: int = 2,
    spatial_dims: int = 2,
    small_input: bool = False,
    max_pool: bool | None = None,
    dropout: float = 0.0,
    weights: str | None = None,
) -> nn.Module:
    """ResNet-18 for 2D images (He et al. 2016; torchvision's), any channels and classes.

    Input ``(B, in_channels, H, W)``, output logits ``(B, out_channels)``. With the
    standard stem it needs H, W >= 32 (the image is divided by 32); with
    ``small_input`` by 8 (16 with ``max_pool``), which suits 28-64 px images.

    Args:
        in_channels: image channels (1 for grey, 3 for RGB, one per sequence).
        out_channels: classes (one logit each), or labels for a multi-label task.
        spatial_dims: must be 2 (for 3D images use resnet18_3d).
        small_input: replace the 7x7 stride-2 stem convolution by a 3x3 stride-1 one and
            drop the stem's max-pool (unless ``max_pool`` is true): for 28-64 px images.
        max_pool: keep the stem's 3x3 stride-2 max-pool; default (null): yes with the
            standard stem, no with ``small_input``.
        dropout: dropout probability on the pooled features, before the classifier.
        weights: a local weights file to start from (a state dict; nothing is
            downloaded); tensors whose name or shape differ (the classifier for another
            number of classes, the first convolution for other channels or the small
            stem) are skipped, reported, and keep their random initialisation.
    """
    return _resnet("resnet18", in_channels, out_channels, spatial_dims, small_input, max_pool, dropout, weights)


@register_classifier("resnet34")
def resnet34(
    *,
    in_channels: int = 1,
    out_channels: int = 2,
    spatial_dims: int = 2,
    small_input: bool = False,
    max_pool: bool | None = None,
    dropout: float = 0.0,
    weights: str | None = None,
) -> nn.Module:
    """ResNet-34 for 2D images (He et al. 2016; torchvision's), any channels and classes.

    Input ``(B, in_channels, H, W)``, output logits ``(B, out_channels)``; sizes as for
    resnet18.

    Args:
        in_channels: image channels (1 for grey, 3 for RGB, one per sequence).
        out_channels: classes (one logit each), or labels for a multi-label task.
        spatial_dims: must be 2 (for 3D images use resnet34_3d).
        small_input: replace the 7x7 stride-2 stem convolution by a 3x3 stride-1 one and
            drop the stem's max-pool (unless ``max_pool`` is true): for 28-64 px images.
        max_pool: keep the stem's 3x3 stride-2 max-pool; default (null): yes with the
            standard stem, no with ``small_input``.
        dropout: dropout probability on the pooled features, before the classifier.
        weights: a local weights file to start from (a state dict; nothing is
            downloaded); tensors whose name or shape differ are skipped, reported, and
            keep their random initialisation.
    """
    return _resnet("resnet34", in_channels, out_channels, spatial_dims, small_input, max_pool, dropout, weights)


@register_classifier("resnet50")
def resnet50(
    *,
    in_channels: int = 1,
    out_channels: int = 2,
    spatial_dims: int = 2,
    small_input: bool = False,
    max_pool: bool | None = None,
    dropout: float = 0.0,
    weights: str | None = None,
) -> nn.Module:
    """ResNet-50 for 2D images (He et al. 2016, bottleneck blocks; torchvision's), any
    channels and classes.

    Input ``(B, in_channels, H, W)``, output logits ``(B, out_channels)``; sizes as for
    resnet18.

    Args:
        in_channels: image channels (1 for grey, 3 for RGB, one per sequence).
        out_channels: classes (one logit each), or labels for a multi-label task.
        spatial_dims: must be 2 (for 3D images use resnet50_3d).
        small_input: replace the 7x7 stride-2 stem convolution by a 3x3 stride-1 one and
            drop the stem's max-pool (unless ``max_pool`` is true): for 28-64 px images.
        max_pool: keep the stem's 3x3 stride-2 max-pool; default (null): yes with the
            standard stem, no with ``small_input``.
        dropout: dropout probability on the pooled features, before the classifier.
        weights: a local weights file to start from (a state dict; nothing is
            downloaded); tensors whose name or shape differ are skipped, reported, and
            keep their random initialisation.
    """
    return _resnet("resnet50", in_channels, out_channels, spatial_dims, small_input, max_pool, dropout, weights)


@register_classifier("densenet121")
def densenet121(
    *,
    in_channels: int = 1,
    out_channels: int = 2,
    spatial_dims: int = 2,
    small_input: bool = False,
    max_pool: bool | None = None,
    dropout: float = 0.0,
    weights: str | None = None,
) -> nn.Module:
    """DenseNet-121 for 2D images (Huang et al. 2017; torchvision's), any channels and
    classes.

    Input ``(B, in_channels, H, W)``, output logits ``(B, out_channels)``. The standard
    stem needs H, W >= 32 (the image is divided by 32); ``small_input`` divides by 8
    (16 with ``max_pool``).

    Args:
        in_channels: image channels (1 for grey, 3 for RGB, one per sequence).
        out_channels: classes (one logit each), or labels for a multi-label task.
        spatial_dims: must be 2 (for 3D images use densenet121_3d).
        small_input: replace the 7x7 stride-2 stem convolution (``features.conv0``) by a
            3x3 stride-1 one and drop the stem's max-pool (unless ``max_pool`` is true).
        max_pool: keep the stem's max-pool (``features.pool0``); default (null): yes with
            the standard stem, no with ``small_input``.
        dropout: dropout probability on the pooled features, before the classifier.
        weights: a local weights file to start from (a state dict; nothing is
            downloaded); tensors whose name or shape differ are skipped, reported, and
            keep their random initialisation.
    """
    import torchvision.models as tvm

    check_spatial_dims("densenet121", spatial_dims, 2)
    check_head("densenet121", in_channels, out_channels, dropout)
    net = tvm.densenet121(weights=None, num_classes=out_channels)
    if small_input:
        net.features.conv0 = kaiming_conv(nn.Conv2d(in_channels, 64, 3, stride=1, padding=1, bias=False))
    elif in_channels != 3:
        net.features.conv0 = kaiming_conv(nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False))
    if not keep_max_pool(small_input, max_pool):
        net.features.pool0 = nn.Identity()
    if dropout > 0:
        net.classifier = DropoutLinear(net.classifier.in_features, out_channels, dropout)
    return finish(net, "densenet121", weights, "features.norm5")


@register_classifier("efficientnet_b0")
def efficientnet_b0(
    *,
    in_channels: int = 1,
    out_channels: int = 2,
    spatial_dims: int = 2,
    small_input: bool = False,
    dropout: float = 0.2,
    stochastic_depth: float = 0.2,
    weights: str | None = None,
) -> nn.Module:
    """EfficientNet-B0 for 2D images (Tan & Le 2019; torchvision's), any channels and
    classes.

    Input ``(B, in_channels, H, W)``, output logits ``(B, out_channels)``. The image is
    divided by 32 (by 16 with ``small_input``).

    Args:
        in_channels: image channels (1 for grey, 3 for RGB, one per sequence).
        out_channels: classes (one logit each), or labels for a multi-label task.
        spatial_dims: must be 2 (EfficientNet has no 3D version here: use a 3D ResNet).
        small_input: give the stem convolution (``features.0.0``, 3x3) stride 1 instead
            of 2; the network has no stem max-pool.
        dropout: dropout probability before the classifier (torchvision's default 0.2).
        stochastic_depth: probability of skipping a residual block in training, growing
            linearly to this value with depth (torchvision's default 0.2).
        weights: a local weights file to start from (a state dict; nothing is
            downloaded); tensors whose name or shape differ are skipped, reported, and
            keep their random initialisation.
    """
    import torchvision.models as tvm

    check_spatial_dims("efficientnet_b0", spatial_dims, 2)
    check_head("efficientnet_b0", in_channels, out_channels, dropout)
    net = tvm.efficientnet_b0(weights=None, num_classes=out_channels, dropout=dropout,
                              stochastic_depth_prob=stochastic_depth)
    if small_input or in_channels != 3:
        stem = net.features[0][0]
        net.features[0][0] = kaiming_conv(nn.Conv2d(in_channels, stem.out_channels, 3, stride=1 if small_input else 2,
                                                    padding=1, bias=False))
    return finish(net, "efficientnet_b0", weights, "features.8")


@register_classifier("convnext_tiny")
def convnext_tiny(
    *,
    in_channels: int = 1,
    out_channels: int = 2,
    spatial_dims: int = 2,
    small_input: bool = False,
    dropout: float = 0.0,
    stochastic_depth: float = 0.1,
    weights: str | None = None,
) -> nn.Module:
    """ConvNeXt-Tiny for 2D images (Liu et al. 2022; torchvision's), any channels and
    classes.

    Input ``(B, in_channels, H, W)``, output logits ``(B, out_channels)``. The standard
    stem needs H, W >= 32 (the image is divided by 32); ``small_input`` divides by 8.

    Args:
        in_channels: image channels (1 for grey, 3 for RGB, one per sequence).
        out_channels: classes (one logit each), or labels for a multi-label task.
        spatial_dims: must be 2 (ConvNeXt has no 3D version here: use a 3D ResNet).
        small_input: replace the 4x4 stride-4 patchify stem (``features.0.0``) by a 3x3
            stride-1 convolution (four times the compute per pixel of the first stage).
        dropout: dropout probability on the normalised pooled features, before the
            classifier.
        stochastic_depth: probability of skipping a residual block in training, growing
            linearly to this value with depth (torchvision's default 0.1).
        weights: a local weights file to start from (a state dict; nothing is
            downloaded); tensors whose name or shape differ are skipped, reported, and
            keep their random initialisation.
    """
    import torchvision.models as tvm

    check_spatial_dims("convnext_tiny", spatial_dims, 2)
    check_head("convnext_tiny", in_channels, out_channels, dropout)
    net = tvm.convnext_tiny(weights=None, num_classes=out_channels, stochastic_depth_prob=stochastic_depth)
    if small_input or in_channels != 3:
        stem = net.features[0][0]
        conv = (nn.Conv2d(in_channels, stem.out_channels, 3, stride=1, padding=1) if small_input
                else nn.Conv2d(in_channels, stem.out_channels, 4, stride=4))
        nn.init.trunc_normal_(conv.weight, std=0.02)  # ConvNeXt's own initialisation
        nn.init.zeros_(conv.bias)
        net.features[0][0] = conv
    if dropout > 0:
        head = net.classifier[2]
        net.classifier[2] = DropoutLinear(head.in_features, out_channels, dropout)
        nn.init.trunc_normal_(net.classifier[2].weight, std=0.02)
        nn.init.zeros_(net.classifier[2].bias)
    return finish(net, "convnext_tiny", weights, "features.7")
