"""``LOSSES`` registry: segmentation losses with one calling convention.

Every loss is called as ``loss(logits, label)`` where ``logits`` is ``(B, K, *spatial)``
float (raw network output, K classes including background) and ``label`` is
``(B, 1, *spatial)`` integer class indices; it returns a scalar tensor. The losses are
MONAI's; the factories fix the defaults a multi-class softmax segmentation needs
(softmax over classes, labels one-hot encoded, background left out of the Dice term so
a large background does not swamp small structures, as in nnU-Net and MONAI's tutorials).

Handed the outputs of a deep-supervised network (``(B, N, K, *spatial)`` in training mode,
``model: {name: dynunet, deep_supervision: true}``), every loss here returns the nnU-Net
weighted sum over them (:mod:`medimg.losses.multiscale`); ``deep_supervision`` sets other
weights or wraps a loss that does not do this by itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from ..core.errors import ConfigError
from ..core.registry import Registry
from .multiscale import deep_supervised

__all__ = ["LOSSES", "DeepSupervision", "SegmentationLoss", "create_loss"]

#: Registry of loss factories by config name (``loss: {name: dice_ce}``).
LOSSES: Registry[Any] = Registry("losses")


def _check_label(logits: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
    """Validate shapes and return the label as ``(B, 1, *spatial)`` long."""
    if label.ndim == logits.ndim - 1:
        label = label.unsqueeze(1)
    if label.shape[0] != logits.shape[0] or label.shape[2:] != logits.shape[2:] or label.shape[1] != 1:
        raise ValueError(
            f"loss: label shape {tuple(label.shape)} does not match logits {tuple(logits.shape)}; "
            "expected label (B, 1, *spatial) with the logits' batch and spatial sizes"
        )
    return label.long()


class SegmentationLoss(nn.Module):
    """Base of the segmentation losses: ``forward`` scores one output with :meth:`single`,
    or the outputs of a deep-supervised network with nnU-Net's weights."""

    def forward(self, logits: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        return deep_supervised(self.single, logits, label)

    def single(self, logits: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        """The loss of one output ``(B, K, *spatial)`` against ``label``."""
        raise NotImplementedError


class _Wrapped(SegmentationLoss):
    """Adapts a MONAI loss to ``(logits, label (B,1,...) long) -> scalar``."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def single(self, logits: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        return self.inner(logits.float(), _check_label(logits, label))


class CrossEntropy(SegmentationLoss):
    """Softmax cross-entropy over classes, label ``(B, 1, *spatial)`` class indices."""

    def __init__(self, weight: Sequence[float] | None = None, label_smoothing: float = 0.0) -> None:
        super().__init__()
        w = None if weight is None else torch.as_tensor(list(weight), dtype=torch.float32)
        self.ce = nn.CrossEntropyLoss(weight=w, label_smoothing=label_smoothing)

    def single(self, logits: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        return self.ce(logits.float(), _check_label(logits, label)[:, 0])


class DiceFocal(SegmentationLoss):
    """Dice (foreground classes) + focal (all classes) with separate background choices.

    MONAI's ``DiceFocalLoss`` applies one ``include_background`` to both terms; leaving
    background out of a focal (per-voxel classification) term would stop it from
    learning background at all, so the two are combined here.
    """

    def __init__(
        self,
        include_background: bool = False,
        gamma: float = 2.0,
        lambda_dice: float = 1.0,
        lambda_focal: float = 1.0,
        batch: bool = True,
    ) -> None:
        super().__init__()
        from monai.losses import DiceLoss, FocalLoss

        self.dice = DiceLoss(
            include_background=include_background, to_onehot_y=True, softmax=True, batch=batch
        )
        self.focal = FocalLoss(include_background=True, to_onehot_y=True, gamma=gamma, use_softmax=True)
        self.lambda_dice = lambda_dice
        self.lambda_focal = lambda_focal

    def single(self, logits: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        y = _check_label(logits, label)
        x = logits.float()
        return self.lambda_dice * self.dice(x, y) + self.lambda_focal * self.focal(x, y)


@LOSSES.register("dice_ce")
def dice_ce(
    *,
    include_background: bool = False,
    lambda_dice: float = 1.0,
    lambda_ce: float = 1.0,
    batch: bool = True,
    squared_pred: bool = False,
) -> nn.Module:
    """Soft Dice (foreground classes by default) + cross-entropy (all classes).

    ``batch=True`` pools the Dice numerator and denominator over the whole batch (as
    nnU-Net's batch Dice), which keeps the loss stable on patches without foreground.
    """
    from monai.losses import DiceCELoss

    return _Wrapped(
        DiceCELoss(
            include_background=include_background,
            to_onehot_y=True,
            softmax=True,
            batch=batch,
            squared_pred=squared_pred,
            lambda_dice=lambda_dice,
            lambda_ce=lambda_ce,
        )
    )


@LOSSES.register("dice")
def dice(*, include_background: bool = False, batch: bool = True, squared_pred: bool = False) -> nn.Module:
    """Soft Dice over softmax probabilities (foreground classes by default)."""
    from monai.losses import DiceLoss

    return _Wrapped(
        DiceLoss(
            include_background=include_background,
            to_onehot_y=True,
            softmax=True,
            batch=batch,
            squared_pred=squared_pred,
        )
    )


@LOSSES.register("ce")
def ce(*, weight: Sequence[float] | None = None, label_smoothing: float = 0.0) -> nn.Module:
    """Cross-entropy over all classes; ``weight`` is one weight per class."""
    return CrossEntropy(weight=weight, label_smoothing=label_smoothing)


@LOSSES.register("focal")
def focal(*, gamma: float = 2.0, alpha: float | None = None) -> nn.Module:
    """Focal loss (Lin et al. 2017) over softmax probabilities, all classes."""
    from monai.losses import FocalLoss

    return _Wrapped(
        FocalLoss(include_background=True, to_onehot_y=True, gamma=gamma, alpha=alpha, use_softmax=True)
    )


@LOSSES.register("dice_focal")
def dice_focal(
    *,
    include_background: bool = False,
    gamma: float = 2.0,
    lambda_dice: float = 1.0,
    lambda_focal: float = 1.0,
    batch: bool = True,
) -> nn.Module:
    """Soft Dice (foreground classes by default) + focal loss (all classes)."""
    return DiceFocal(
        include_background=include_background,
        gamma=gamma,
        lambda_dice=lambda_dice,
        lambda_focal=lambda_focal,
        batch=batch,
    )


@LOSSES.register("generalized_dice")
def generalized_dice(*, include_background: bool = False, w_type: str = "square", batch: bool = True) -> nn.Module:
    """Generalised Dice (Sudre et al. 2017): each class weighted by the inverse of its
    squared volume (``w_type``: ``square``, ``simple`` or ``uniform``), so that small
    structures count as much as large ones."""
    from monai.losses import GeneralizedDiceLoss

    return _Wrapped(
        GeneralizedDiceLoss(
            include_background=include_background, to_onehot_y=True, softmax=True, w_type=w_type, batch=batch
        )
    )


@LOSSES.register("tversky")
def tversky(*, alpha: float = 0.3, beta: float = 0.7, include_background: bool = False, batch: bool = True) -> nn.Module:
    """Tversky loss (Salehi et al. 2017): Dice with false positives weighted ``alpha`` and
    false negatives ``beta``; the default 0.3 / 0.7 favours recall of small lesions
    (``alpha = beta = 0.5`` is the Dice loss)."""
    from monai.losses import TverskyLoss

    return _Wrapped(
        TverskyLoss(
            include_background=include_background, to_onehot_y=True, softmax=True, alpha=alpha, beta=beta, batch=batch
        )
    )


class DeepSupervision(nn.Module):
    """``inner`` summed over a deep-supervised network's outputs with the given weights."""

    def __init__(self, inner: nn.Module, weights: Sequence[float] | None = None) -> None:
        super().__init__()
        self.inner = inner
        self.weights = None if weights is None else [float(w) for w in weights]

    def forward(self, logits: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        return deep_supervised(self.inner, logits, label, self.weights)


@LOSSES.register("deep_supervision")
def deep_supervision(*, loss: Mapping[str, Any] | None = None, weights: Sequence[float] | None = None) -> nn.Module:
    """An explicit deep-supervision loss: ``loss`` (a loss spec ``{name, **params}``,
    default ``{name: dice_ce}``) summed over the network's outputs with ``weights`` (one per
    output, full resolution first; default nnU-Net's, :func:`~medimg.losses.multiscale.deep_supervision_weights`).

    The registered segmentation losses weigh the outputs nnU-Net's way by themselves; this
    one sets other weights, or wraps a plugin loss that only knows one output.
    """
    inner_spec = dict(loss) if loss is not None else {"name": "dice_ce"}
    if inner_spec.get("name") == "deep_supervision":
        raise ConfigError("loss 'deep_supervision': loss.loss cannot itself be deep_supervision",
                          hint="give the loss to weigh, e.g. loss: {name: dice_ce}")
    if weights is not None and (not weights or any(w < 0 for w in weights) or sum(weights) <= 0):
        raise ConfigError(f"loss 'deep_supervision': weights must be >= 0 with a positive sum, got {list(weights)}",
                          hint="e.g. weights: [0.57, 0.29, 0.14, 0.0] (full resolution first)")
    return DeepSupervision(LOSSES.build(inner_spec, key="loss.loss"), weights)


def create_loss(name: str, **params: Any) -> nn.Module:
    """Build a registered loss by name: ``LOSSES.build({"name": name, **params})``.

    Raises:
        UnknownComponentError: no loss of that name (with did-you-mean).
        ConfigError: a parameter the factory does not accept, or an invalid value.
    """
    return LOSSES.build({"name": name, **params})
