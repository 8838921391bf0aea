"""Grad-CAM heat maps of a classification network, computed by MONAI's ``GradCAM``.

MONAI computes the map (gradients of the class score at a layer, averaged per channel,
weighting that layer's activations, then ReLU) and upsamples it linearly to the input's
grid. medimg adds what a user of the map needs around it:

- the layer defaults to ``model.cam_layer`` (every medimg classifier records one), and a
  wrong name is refused with the valid names listed;
- the map is scaled to [0, 1] per case with its maximum at 1 (MONAI's default
  post-processing maps the maximum to 0 and the minimum to 1, which reads as the
  opposite of a heat map, so it is replaced);
- the network is copied before MONAI's hooks are attached (MONAI never removes them and
  turns a hooked layer's ``inplace`` off), so the caller's model is left unchanged;
- a layer whose output a later step changes in place (DenseNet's final ReLU after
  ``features.norm5``) is read through a copy of its output, which full backward hooks
  need;
- each case of a batch is explained on its own, for its own class.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from ...core.errors import ConfigError

__all__ = ["CamResult", "cam_layers", "grad_cam", "grad_cam_scores", "resolve_layer"]


@dataclass(frozen=True)
class CamResult:
    """Grad-CAM of one batch.

    Attributes:
        heatmap: ``(B, *spatial)`` float32 on CPU, on the input's grid, in [0, 1] per case
            (all zeros where the class score has no positive evidence at the layer).
        logits: ``(B, K)`` the network's outputs for the batch.
        target: the class explained for each case.
        layer: the dotted name of the layer read.
    """

    heatmap: torch.Tensor
    logits: torch.Tensor
    target: list[int]
    layer: str


class _CopyOutput(nn.Module):
    """Runs ``layer`` and hands on a copy of its output, so that a later in-place step
    changes the copy, not the tensor MONAI's backward hook wraps."""

    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        self.layer = layer

    def forward(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        out = self.layer(*args, **kwargs)
        return out.clone() if torch.is_tensor(out) else out


def cam_layers(model: nn.Module, depth: int = 2) -> list[str]:
    """Layer names to offer for Grad-CAM: the model's named modules up to ``depth``
    dotted parts (``layer4``, ``layer4.1``; ``features.norm5``), in model order."""
    return [name for name, _ in model.named_modules() if name and name.count(".") < depth]


def resolve_layer(model: nn.Module, layer: str | None) -> str:
    """The layer to read: ``layer``, else ``model.cam_layer``.

    Raises:
        ConfigError: no layer given and the model records none, or no layer of that name.
    """
    name = layer if layer is not None else getattr(model, "cam_layer", None)
    if name is None:
        raise ConfigError(
            "Grad-CAM layer: the model records no layer to read (no cam_layer); "
            f"name one of: {', '.join(cam_layers(model))}",
            hint="pass layer='NAME'",
            cli_hint="give --layer NAME",
        )
    if name not in dict(model.named_modules()) or not name:
        raise ConfigError(
            f"Grad-CAM layer '{name}' is not a layer of the model; valid layers: "
            f"{', '.join(cam_layers(model))}",
            hint="pass layer='NAME' with one of these names (deeper ones: model.named_modules())",
            cli_hint="give --layer with one of these names",
        )
    return str(name)


def _hooked_copy(model: nn.Module, layer: str) -> tuple[nn.Module, str]:
    """A copy of ``model`` in eval mode whose ``layer`` hands on a copy of its output;
    returns it and the name MONAI should hook (the layer inside the wrapper)."""
    net = copy.deepcopy(model).eval()
    parent_name, _, attr = layer.rpartition(".")
    parent = net.get_submodule(parent_name) if parent_name else net
    setattr(parent, attr, _CopyOutput(getattr(parent, attr)))
    for p in net.parameters():
        p.requires_grad_(True)
    return net, f"{layer}.layer"


def _unit_range(cam: torch.Tensor) -> torch.Tensor:
    """Each case's map scaled to [0, 1] (max -> 1); a map without any positive value
    stays all zeros. Replaces MONAI's default, which maps the maximum to 0."""
    flat = cam.detach().float().reshape(cam.shape[0], -1)
    lo = flat.min(dim=1, keepdim=True).values
    span = flat.max(dim=1, keepdim=True).values - lo
    scaled = torch.where(span > 0, (flat - lo) / span.clamp_min(torch.finfo(torch.float32).tiny), 0.0)
    return scaled.reshape(cam.shape)


def _forward_checked(model: nn.Module, x: torch.Tensor, layer: str) -> torch.Tensor:
    """Logits ``(B, K)`` of ``x``, refusing a network whose output keeps spatial axes
    (segmentation) and a layer whose output has none (a pooled or linear layer)."""
    seen: list[tuple[int, ...]] = []
    handle = model.get_submodule(layer).register_forward_hook(
        lambda _m, _i, out: seen.append(tuple(out.shape)) if torch.is_tensor(out) else None
    )
    try:
        with torch.no_grad():
            logits = model(x)
    finally:
        handle.remove()
    if not torch.is_tensor(logits) or logits.ndim != 2:
        shape = tuple(logits.shape) if torch.is_tensor(logits) else type(logits).__name__
        raise ConfigError(
            f"Grad-CAM explains classification models (one score per class), but this model "
            f"outputs {shape} for an input of {tuple(x.shape)} (a segmentation map?)",
            hint="a segmentation model's probability maps (Predictor.predict_probabilities) are its explanation",
            cli_hint="give a classification checkpoint; for a segmentation model use `medimg predict`",
        )
    if seen and len(seen[-1]) != x.ndim:
        raise ConfigError(
            f"Grad-CAM layer '{layer}' outputs {seen[-1]}, without the input's "
            f"{x.ndim - 2} spatial axes; choose a convolutional layer, e.g. "
            f"'{getattr(model, 'cam_layer', None) or cam_layers(model)[0]}'",
            hint="pass layer='NAME'",
            cli_hint="give --layer NAME",
        )
    return logits


def _targets(target_class: int | Sequence[int] | None, logits: torch.Tensor) -> list[int]:
    """The class to explain per case: as given (one for all, or one each), else the
    predicted one (the only output of a one-logit binary model).

    Raises:
        ConfigError: a class index outside the model's outputs, or a count that does not
            match the batch.
    """
    b, k = logits.shape
    if target_class is None:
        return [int(i) for i in logits.argmax(dim=1)]
    wanted = [int(target_class)] * b if isinstance(target_class, int) else [int(t) for t in target_class]
    if len(wanted) != b:
        raise ConfigError(f"Grad-CAM target class: {len(wanted)} classes given for a batch of {b} cases")
    bad = [t for t in wanted if not 0 <= t < k]
    if bad:
        raise ConfigError(
            f"Grad-CAM target class {bad[0]} does not exist: the model has {k} output(s), classes 0..{k - 1}",
            hint="pass target_class=None to explain the predicted class",
            cli_hint="give --target-class between 0 and " + str(k - 1) + ", or leave it out for the predicted class",
        )
    return wanted


def grad_cam_scores(
    model: nn.Module,
    x: torch.Tensor,
    target_class: int | Sequence[int] | None = None,
    layer: str | None = None,
) -> CamResult:
    """Grad-CAM heat maps with the logits and the class explained (see :func:`grad_cam`)."""
    from monai.visualize import GradCAM

    if not torch.is_tensor(x) or x.ndim not in (4, 5):
        shape = tuple(x.shape) if torch.is_tensor(x) else type(x).__name__
        raise ValueError(f"grad_cam: x must be a batch (B, C, H, W) or (B, C, D, H, W), got {shape}")
    name = resolve_layer(model, layer)
    device = next(model.parameters(), torch.empty(0)).device
    x = x.detach().to(device, torch.float32)
    was_training = model.training
    model.eval()
    try:
        logits = _forward_checked(model, x, name)
    finally:
        model.train(was_training)
    targets = _targets(target_class, logits)
    net, hooked = _hooked_copy(model, name)
    cam = GradCAM(nn_module=net, target_layers=hooked, postprocessing=_unit_range)
    maps = []
    with torch.enable_grad():
        for i, t in enumerate(targets):
            xi = x[i : i + 1].clone().requires_grad_(True)
            maps.append(cam(xi, class_idx=t).detach().float().cpu()[0, 0])
    return CamResult(torch.stack(maps), logits.detach().float().cpu(), targets, name)


def grad_cam(
    model: nn.Module,
    x: torch.Tensor,
    target_class: int | Sequence[int] | None = None,
    layer: str | None = None,
) -> torch.Tensor:
    """Grad-CAM heat maps (MONAI's ``GradCAM``) on the input's grid, scaled to [0, 1].

    Args:
        model: a classifier mapping ``(B, C, *spatial)`` to logits ``(B, K)``; it is not
            changed (the hooks go on a copy).
        x: ``(B, C, H, W)`` or ``(B, C, D, H, W)``, as the model takes it (preprocessed).
        target_class: the class to explain: one index for every case, one per case, or
            None for each case's predicted class.
        layer: dotted name of the layer to read (``"layer4"``); default ``model.cam_layer``.

    Returns:
        ``(B, *spatial)`` float32 on CPU; per case, 1 at the map's maximum and 0 at its
        minimum (all zeros when nothing at the layer supports the class).

    Raises:
        ConfigError: a segmentation model, a layer that does not exist or has no spatial
            axes (the valid names are listed), or a class the model does not have.
    """
    return grad_cam_scores(model, x, target_class, layer).heatmap
