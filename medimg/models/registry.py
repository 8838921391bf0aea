"""``MODELS`` registry and :func:`create_model`.

Every factory takes keyword arguments only and must accept ``in_channels``,
``out_channels`` and ``spatial_dims`` so the engine and a checkpoint can build any
registered network the same way. Inputs are channel-first batches ``(B, C, *spatial)``;
outputs are logits ``(B, out_channels, *spatial)`` on the same grid.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from torch import nn

from ..core.errors import ConfigError, require
from ..core.registry import Registry

__all__ = ["MODELS", "create_model", "model_summary", "with_roi_size"]

#: Registry of network factories by config name (``model: {name: unet, ...}``).
MODELS: Registry[Any] = Registry("models")


@MODELS.register("unet")
def unet(
    *,
    in_channels: int = 1,
    out_channels: int = 2,
    spatial_dims: int = 3,
    channels: Sequence[int] = (16, 32, 64, 128),
    strides: Sequence[int] = (2, 2, 2),
    num_res_units: int = 1,
    norm: str = "instance",
    dropout: float = 0.0,
) -> nn.Module:
    """MONAI's residual U-Net (Kerfoot et al. 2018).

    Args:
        in_channels: input channels (image sequences).
        out_channels: classes, background included (logits, one per class).
        spatial_dims: 2 or 3.
        channels: feature maps per level, coarsest last.
        strides: down-sampling factor between consecutive levels; ``len(channels) - 1``.
        num_res_units: residual units per block (0: plain convolutions).
        norm: normalisation layer name as MONAI spells it (``instance``, ``batch``).
        dropout: dropout probability.

    The input's spatial size must be divisible by ``prod(strides)`` (8 by default);
    sliding-window inference with such a ``roi_size`` guarantees it.
    """
    from monai.networks.nets import UNet

    if len(strides) != len(channels) - 1:
        raise ConfigError(
            f"model 'unet': strides must have one value fewer than channels ({len(channels) - 1}), "
            f"got {len(strides)} (channels: {list(channels)}, strides: {list(strides)})",
            hint="e.g. channels: [16, 32, 64, 128] with strides: [2, 2, 2]",
        )
    return UNet(
        spatial_dims=spatial_dims,
        in_channels=in_channels,
        out_channels=out_channels,
        channels=tuple(channels),
        strides=tuple(strides),
        num_res_units=num_res_units,
        norm=norm,
        dropout=dropout,
    )


@MODELS.register("basic_unet")
def basic_unet(
    *,
    in_channels: int = 1,
    out_channels: int = 2,
    spatial_dims: int = 3,
    features: Sequence[int] = (16, 16, 32, 64, 128, 16),
    norm: str = "instance",
    dropout: float = 0.0,
) -> nn.Module:
    """MONAI's BasicUNet: a plain 4-level U-Net (two convs per level, max-pool down).

    ``features`` has six values: the five encoder levels and the last decoder level.
    Input size divisible by 16.
    """
    from monai.networks.nets import BasicUNet

    if len(features) != 6:
        raise ConfigError(
            f"model 'basic_unet': features must have 6 values, got {len(features)} ({list(features)})",
            hint="e.g. features: [16, 16, 32, 64, 128, 16]",
        )
    return BasicUNet(
        spatial_dims=spatial_dims,
        in_channels=in_channels,
        out_channels=out_channels,
        features=tuple(features),
        norm=norm,
        dropout=dropout,
    )


@MODELS.register("segresnet")
def segresnet(
    *,
    in_channels: int = 1,
    out_channels: int = 2,
    spatial_dims: int = 3,
    init_filters: int = 8,
    blocks_down: Sequence[int] = (1, 2, 2, 4),
    blocks_up: Sequence[int] = (1, 1, 1),
    dropout: float | None = None,
) -> nn.Module:
    """MONAI's SegResNet (Myronenko 2018, without the VAE branch).

    Input size divisible by ``2 ** (len(blocks_down) - 1)`` (8 by default).
    """
    from monai.networks.nets import SegResNet

    return SegResNet(
        spatial_dims=spatial_dims,
        in_channels=in_channels,
        out_channels=out_channels,
        init_filters=init_filters,
        blocks_down=tuple(blocks_down),
        blocks_up=tuple(blocks_up),
        dropout_prob=dropout,
    )


@MODELS.register("attention_unet")
def attention_unet(
    *,
    in_channels: int = 1,
    out_channels: int = 2,
    spatial_dims: int = 3,
    channels: Sequence[int] = (16, 32, 64, 128),
    strides: Sequence[int] = (2, 2, 2),
    dropout: float = 0.0,
) -> nn.Module:
    """MONAI's Attention U-Net (Oktay et al. 2018): a U-Net whose skip connections pass
    through attention gates driven by the coarser level.

    ``strides`` has one value fewer than ``channels``; the input size must be divisible by
    ``prod(strides)`` (8 by default).
    """
    from monai.networks.nets import AttentionUnet

    if len(strides) != len(channels) - 1:
        raise ConfigError(
            f"model 'attention_unet': strides must have one value fewer than channels "
            f"({len(channels) - 1}), got {len(strides)} (channels: {list(channels)}, strides: {list(strides)})",
            hint="e.g. channels: [16, 32, 64, 128] with strides: [2, 2, 2]",
        )
    return AttentionUnet(
        spatial_dims=spatial_dims,
        in_channels=in_channels,
        out_channels=out_channels,
        channels=tuple(channels),
        strides=tuple(strides),
        dropout=dropout,
    )


@MODELS.register("swin_unetr")
def swin_unetr(
    *,
    in_channels: int = 1,
    out_channels: int = 2,
    spatial_dims: int = 3,
    feature_size: int = 24,
    depths: Sequence[int] = (2, 2, 2, 2),
    num_heads: Sequence[int] = (3, 6, 12, 24),
    window_size: int = 7,
    norm: str = "instance",
    drop_rate: float = 0.0,
    attn_drop_rate: float = 0.0,
    dropout_path_rate: float = 0.0,
    use_checkpoint: bool = False,
    use_v2: bool = False,
) -> nn.Module:
    """MONAI's SwinUNETR (Hatamizadeh et al. 2022): a Swin transformer encoder with a
    convolutional U-Net decoder.

    Args:
        feature_size: embedding size of the first stage (a multiple of 12).
        depths, num_heads: transformer blocks and attention heads per stage.
        window_size: local attention window (voxels per axis).
        use_checkpoint: gradient checkpointing (less memory, slower steps).
        use_v2: SwinUNETR-v2 (a residual convolution block before each stage).

    Input size divisible by 32. Needs ``einops`` (``pip install 'medimg[swin]'``).
    """
    require("einops", "swin", "model 'swin_unetr'")
    from monai.networks.nets import SwinUNETR

    if feature_size % 12:
        raise ConfigError(
            f"model 'swin_unetr': feature_size must be a multiple of 12, got {feature_size}",
            hint="e.g. feature_size: 24 (default) or 48",
        )
    return SwinUNETR(
        in_channels=in_channels,
        out_channels=out_channels,
        spatial_dims=spatial_dims,
        feature_size=feature_size,
        depths=tuple(depths),
        num_heads=tuple(num_heads),
        window_size=window_size,
        norm_name=norm,
        drop_rate=drop_rate,
        attn_drop_rate=attn_drop_rate,
        dropout_path_rate=dropout_path_rate,
        use_checkpoint=use_checkpoint,
        use_v2=use_v2,
    )


def create_model(name: str, **params: Any) -> nn.Module:
    """Build a registered network by name: ``MODELS.build({"name": name, **params})``.

    Args:
        name: registered name (see ``MODELS.list()``); case-insensitive.
        **params: the factory's keyword arguments (``in_channels``, ``out_channels``,
            ``spatial_dims`` and model-specific ones), checked against its signature.

    Returns:
        The network, in training mode, on the CPU, float32.

    Raises:
        UnknownComponentError: no model of that name (with did-you-mean).
        ConfigError: a parameter the factory does not accept (with did-you-mean), a
            value of the wrong type, or an invalid value.
    """
    return MODELS.build({"name": name, **params})


def with_roi_size(name: str, params: Mapping[str, Any], roi_size: Sequence[int]) -> dict[str, Any]:
    """``params`` with ``roi_size`` (the training patch, voxels per axis) added when the
    factory of model ``name`` takes a ``roi_size`` (``dynunet`` derives its levels from it)
    and ``params`` do not give one; otherwise ``params`` as they are."""
    import inspect

    out = dict(params)
    try:
        accepted = inspect.signature(MODELS.get(name)).parameters
    except (TypeError, ValueError):  # no signature to read: nothing to fill in
        return out
    if "roi_size" in accepted and "roi_size" not in out:
        out["roi_size"] = [int(s) for s in roi_size]
    return out


def model_summary(model: nn.Module) -> dict[str, Any]:
    """Plain-data facts about a network: class name and parameter counts."""
    n_params = sum(p.numel() for p in model.parameters())
    n_train = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"class": type(model).__name__, "parameters": int(n_params), "trainable": int(n_train)}

