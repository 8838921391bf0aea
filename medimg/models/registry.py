"""``MODELS`` registry and :func:`create_model`.

Every factory takes keyword arguments only and must accept ``in_channels``,
``out_channels`` and ``spatial_dims`` so the engine and a checkpoint can build any
registered network the same way. Inputs are channel-first batches ``(B, C, *spatial)``;
outputs are logits ``(B, out_channels, *spatial)`` on the same grid.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import nn

from ..core.errors import ConfigError
from ..core.registry import Registry

__all__ = ["MODELS", "create_model", "model_summary"]

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


def model_summary(model: nn.Module) -> dict[str, Any]:
    """Plain-data facts about a network: class name and parameter counts."""
    n_params = sum(p.numel() for p in model.parameters())
    n_train = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"class": type(model).__name__, "parameters": int(n_params), "trainable": int(n_train)}

