"""Pieces every classification factory shares: the spatial-dims check, the head, the
stem choice and the last step (local weights, Grad-CAM layer name)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ...core.errors import ConfigError
from .weights import load_weights

__all__ = ["DropoutLinear", "check_head", "check_spatial_dims", "finish", "kaiming_conv", "keep_max_pool"]

#: Names of the same architecture for the other number of spatial dimensions.
_OTHER_DIMS = {
    "resnet18": "resnet18_3d", "resnet34": "resnet34_3d", "resnet50": "resnet50_3d",
    "densenet121": "densenet121_3d", "resnet18_3d": "resnet18", "resnet34_3d": "resnet34",
    "resnet50_3d": "resnet50", "densenet121_3d": "densenet121", "resnet10_3d": "resnet18",
    "cnn3d": "resnet18", "efficientnet_b0": "resnet18_3d", "convnext_tiny": "resnet18_3d",
}


class DropoutLinear(nn.Linear):
    """A linear classifier with dropout on its input.

    A subclass rather than ``Sequential(Dropout, Linear)`` so the parameter names stay
    those of the plain ``Linear`` (``fc.weight``): weights saved from the library's own
    model still load by name.

    Args:
        in_features: features per case.
        out_features: logits per case (classes or labels).
        dropout: probability of zeroing an input feature in training.
    """

    def __init__(self, in_features: int, out_features: int, dropout: float = 0.0) -> None:
        super().__init__(in_features, out_features)
        self.dropout = float(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.dropout(x, self.dropout, self.training))

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, dropout={self.dropout}"


def check_spatial_dims(name: str, spatial_dims: int, expected: int) -> None:
    """Refuse a model built for the other number of spatial dimensions.

    Raises:
        ConfigError: ``spatial_dims`` is not ``expected``.
    """
    if spatial_dims == expected:
        return
    other = _OTHER_DIMS.get(name)
    hint = f"for {spatial_dims}D images use e.g. '{other}' (see `medimg list models`)" if other else None
    raise ConfigError(
        f"model '{name}' is a {expected}D network: spatial_dims must be {expected}, got {spatial_dims}",
        hint=hint if spatial_dims in (2, 3) else f"spatial_dims: {expected}",
    )


def check_head(name: str, in_channels: int, out_channels: int, dropout: float) -> None:
    """Refuse channel counts below 1 and a dropout outside [0, 1).

    Raises:
        ConfigError: naming the option and the value found.
    """
    for key, value in (("in_channels", in_channels), ("out_channels", out_channels)):
        if int(value) < 1:
            raise ConfigError(f"model '{name}': {key} must be at least 1, got {value}")
    if not 0.0 <= float(dropout) < 1.0:
        raise ConfigError(f"model '{name}': dropout must be in [0, 1), got {dropout}")


def keep_max_pool(small_input: bool, max_pool: bool | None) -> bool:
    """Whether the stem keeps its max-pool: as asked, else only with the standard stem."""
    return (not small_input) if max_pool is None else bool(max_pool)


def kaiming_conv(conv: nn.Module) -> nn.Module:
    """``conv`` initialised as torchvision and MONAI initialise their CNN convolutions
    (He normal, fan-out, ReLU gain; zero bias). Returns it."""
    nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
    if getattr(conv, "bias", None) is not None:
        nn.init.zeros_(conv.bias)
    return conv


def finish(model: nn.Module, name: str, weights: str | None, cam_layer: str) -> nn.Module:
    """Last step of every factory: load the local ``weights`` file (if any) and record
    the layer Grad-CAM reads (``model.cam_layer``, a dotted module name). Returns it."""
    model.cam_layer = cam_layer
    if weights is not None:
        load_weights(model, weights, model_name=name)
    return model
