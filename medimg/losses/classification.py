"""Classification losses: cross-entropy, binary cross-entropy, focal; one calling convention.

Every loss is called as ``loss(logits, target)`` with ``logits`` of shape ``(B, K)`` (raw
network output, one row per case) and returns a scalar tensor (the mean over cases).
``target`` is either

- class indices, one per case: ``(B,)`` or ``(B, 1)``, integers in ``0 .. K-1``
  (single-label: binary with K = 2, or multi-class); or
- one value per logit: ``(B, K)`` in [0, 1] (multi-label: several labels may be 1 per
  case; or a binary task with a single logit, K = 1, where ``(B,)`` is accepted too).

``ce_cls`` and the softmax form of ``focal_cls`` take class indices (``ce_cls`` also a
``(B, K)`` class-probability target: rows summing to 1, e.g. mixed-up labels);
``bce_cls`` and the sigmoid form of ``focal_cls`` take one value per logit (class indices
given to them are one-hot encoded: one sigmoid per class).

Per-class parameters (``weight``, ``pos_weight``, ``alpha``) are lists with one value per
class or label, checked against K on the first call. Names end in ``_cls``; the
segmentation losses (``ce``, ``focal``, ``dice_ce``...) take per-voxel labels instead.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..core.errors import ConfigError, DataError
from .registry import LOSSES

__all__ = ["ClassificationBCE", "ClassificationCrossEntropy", "ClassificationFocal", "bce_cls", "ce_cls", "focal_cls"]


def _register(name: str):
    """Register a classification loss factory under ``name``, marked ``task = "classification"``."""

    def _add(factory):
        factory.task = "classification"
        return LOSSES.register(name, factory)

    return _add


def _check_logits(loss: str, logits: torch.Tensor, target: torch.Tensor) -> int:
    """K, after checking logits are ``(B, K)`` and the target has their batch size."""
    if logits.ndim != 2:
        raise DataError(
            f"loss '{loss}': logits of shape {tuple(logits.shape)} are not (B, K): a classification "
            "loss takes one row of logits per case",
            hint="for per-voxel labels use a segmentation loss (ce, dice_ce, focal...)",
        )
    if target.ndim == 0 or target.shape[0] != logits.shape[0]:
        raise DataError(
            f"loss '{loss}': target of shape {tuple(target.shape)} does not match logits "
            f"{tuple(logits.shape)}; expected (B,), (B, 1) or (B, {logits.shape[1]})"
        )
    return int(logits.shape[1])


def _is_per_logit(logits: torch.Tensor, target: torch.Tensor) -> bool:
    """Whether ``target`` holds one value per logit (rather than one class index per case)."""
    k = logits.shape[1]
    if k == 1:
        return target.ndim == 1 or tuple(target.shape) == tuple(logits.shape)
    return target.ndim == 2 and target.shape[1] == k


def class_indices(loss: str, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``target`` as ``(B,)`` long class indices, checked to lie in ``0 .. K-1``.

    Raises:
        DataError: not ``(B,)`` / ``(B, 1)``, not whole numbers, or outside the classes.
    """
    k = _check_logits(loss, logits, target)
    if target.ndim == 2 and target.shape[1] == 1:
        target = target[:, 0]
    if target.ndim != 1:
        raise DataError(
            f"loss '{loss}': target of shape {tuple(target.shape)} is not one class index per case "
            f"(B,) or (B, 1) for logits {tuple(logits.shape)}",
            hint="multi-label targets (B, K) need bce_cls or focal_cls",
        )
    if target.is_floating_point() and bool((target != target.round()).any()):
        raise DataError(f"loss '{loss}': class indices must be whole numbers, got {target.tolist()[:8]}")
    target = target.long()
    if bool(((target < 0) | (target >= k)).any()):
        bad = sorted({int(v) for v in target[(target < 0) | (target >= k)].tolist()})
        raise DataError(
            f"loss '{loss}': label value(s) {bad} outside the model's {k} classes (0..{k - 1})",
            hint="make the model's out_channels the number of classes, or fix the labels",
        )
    return target


def per_logit_targets(loss: str, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``target`` as float ``(B, K)`` in [0, 1]; class indices are one-hot encoded.

    Raises:
        DataError: a shape that fits neither form, or values outside [0, 1].
    """
    k = _check_logits(loss, logits, target)
    if not _is_per_logit(logits, target):
        return F.one_hot(class_indices(loss, logits, target), k).to(logits.dtype)
    target = target.reshape(logits.shape).to(logits.dtype)
    if bool(((target < 0) | (target > 1)).any()):
        raise DataError(
            f"loss '{loss}': per-label targets must lie in [0, 1], found values from "
            f"{float(target.min())} to {float(target.max())}"
        )
    return target


def _per_class(loss: str, key: str, values: torch.Tensor | None, k: int, device: torch.device) -> torch.Tensor | None:
    """A per-class parameter on ``device``, checked to have K values (a scalar broadcasts)."""
    if values is None:
        return None
    if values.numel() not in (1, k):
        raise DataError(
            f"loss '{loss}': {key} has {values.numel()} values but the model has {k} outputs",
            hint=f"give {key} one value per class (or label), in class order",
        )
    return values.to(device)


def _as_buffer(values: float | Sequence[float] | None) -> torch.Tensor | None:
    return None if values is None else torch.as_tensor(values, dtype=torch.float32).reshape(-1)


class ClassificationCrossEntropy(nn.Module):
    """Softmax cross-entropy on ``(B, K)`` logits, with class weights and label smoothing.

    Args:
        weight: one weight per class (rarer classes heavier), or None.
        label_smoothing: in [0, 1): the target puts this much mass evenly on all classes.
    """

    def __init__(self, weight: Sequence[float] | None = None, label_smoothing: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= label_smoothing < 1.0:
            raise ConfigError(f"loss 'ce_cls': label_smoothing must be in [0, 1), got {label_smoothing}")
        self.register_buffer("weight", _as_buffer(weight), persistent=False)
        self.label_smoothing = float(label_smoothing)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        k = _check_logits("ce_cls", logits, target)
        if k < 2:
            raise DataError(
                f"loss 'ce_cls': logits {tuple(logits.shape)} have one column; a softmax needs at least 2 classes",
                hint="use bce_cls (or focal_cls) for a single logit, or give the model out_channels: 2",
            )
        weight = _per_class("ce_cls", "weight", self.weight, k, logits.device)
        if weight is not None and weight.numel() == 1:
            weight = weight.expand(k)
        if target.is_floating_point() and target.ndim == 2 and target.shape[1] == k and k > 1:
            if not torch.allclose(target.sum(1), torch.ones((), dtype=target.dtype, device=target.device), atol=1e-3):
                raise DataError(
                    "loss 'ce_cls': a (B, K) target must hold class probabilities (rows summing to 1)",
                    hint="multi-label targets (several labels per case) need bce_cls or focal_cls",
                )
            y = target.to(logits.dtype)
        else:
            y = class_indices("ce_cls", logits, target)
        return F.cross_entropy(logits.float(), y.float() if y.is_floating_point() else y, weight=weight,
                               label_smoothing=self.label_smoothing)


class ClassificationBCE(nn.Module):
    """Sigmoid binary cross-entropy per logit (multi-label, or binary with one logit).

    Args:
        pos_weight: weight of the positive term, one per label (negatives / positives
            balances a rare label), or one value for all; None: 1.
    """

    def __init__(self, pos_weight: float | Sequence[float] | None = None) -> None:
        super().__init__()
        self.register_buffer("pos_weight", _as_buffer(pos_weight), persistent=False)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        y = per_logit_targets("bce_cls", logits, target)
        pos_weight = _per_class("bce_cls", "pos_weight", self.pos_weight, logits.shape[1], logits.device)
        return F.binary_cross_entropy_with_logits(logits.float(), y.float(), pos_weight=pos_weight)


class ClassificationFocal(nn.Module):
    """Focal loss (Lin et al. 2017): cross-entropy scaled by ``(1 - p_t) ** gamma``.

    Softmax over classes for class-index targets; sigmoid per logit for one value per
    logit (multi-label, or binary with one logit), as ``torchvision.ops.sigmoid_focal_loss``.

    Args:
        gamma: focusing exponent; 0 gives the plain (weighted) cross-entropy.
        alpha: softmax: one weight per class (a single value a with K = 2 means
            [1 - a, a]); sigmoid: the weight a of positives (negatives: 1 - a), one
            value or one per label. None: no weighting.
    """

    def __init__(self, gamma: float = 2.0, alpha: float | Sequence[float] | None = None) -> None:
        super().__init__()
        if gamma < 0:
            raise ConfigError(f"loss 'focal_cls': gamma must be >= 0, got {gamma}")
        self.gamma = float(gamma)
        self.register_buffer("alpha", _as_buffer(alpha), persistent=False)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        k = _check_logits("focal_cls", logits, target)
        x = logits.float()
        if _is_per_logit(logits, target):
            return self._sigmoid(x, per_logit_targets("focal_cls", logits, target).float(), k)
        return self._softmax(x, class_indices("focal_cls", logits, target), k)

    def _sigmoid(self, x: torch.Tensor, y: torch.Tensor, k: int) -> torch.Tensor:
        """Mean over cases and labels of the per-logit sigmoid focal term."""
        ce = F.binary_cross_entropy_with_logits(x, y, reduction="none")
        p = torch.sigmoid(x)
        p_t = p * y + (1 - p) * (1 - y)
        loss = ce * (1 - p_t) ** self.gamma
        alpha = _per_class("focal_cls", "alpha", self.alpha, k, x.device)
        if alpha is not None:
            loss = (alpha * y + (1 - alpha) * (1 - y)) * loss
        return loss.mean()

    def _softmax(self, x: torch.Tensor, y: torch.Tensor, k: int) -> torch.Tensor:
        """Mean over cases of ``-alpha_t (1 - p_t) ** gamma log p_t``."""
        log_p_t = F.log_softmax(x, dim=1).gather(1, y[:, None])[:, 0]
        loss = -((1 - log_p_t.exp()) ** self.gamma) * log_p_t
        alpha = self.alpha
        if alpha is not None and alpha.numel() == 1 and k == 2:
            alpha = torch.cat([1 - alpha, alpha])
        elif alpha is not None and alpha.numel() == 1:
            raise DataError(
                f"loss 'focal_cls': a single alpha applies to two classes (binary), the model has {k}",
                hint="give alpha one value per class, in class order",
            )
        alpha = _per_class("focal_cls", "alpha", alpha, k, x.device)
        if alpha is not None:
            loss = alpha[y] * loss
        return loss.mean()


@_register("ce_cls")
def ce_cls(*, weight: list[float] | None = None, label_smoothing: float = 0.0) -> nn.Module:
    """Cross-entropy for classification: softmax over K classes, one class index per case.

    Logits ``(B, K)``; target ``(B,)`` or ``(B, 1)`` class indices (or ``(B, K)`` class
    probabilities); the mean over cases (with ``weight``: the weighted mean, as
    ``torch.nn.functional.cross_entropy``).

    Args:
        weight: one weight per class, in class order (e.g. inverse class frequencies);
            null: all 1.
        label_smoothing: in [0, 1): this much of the target's mass is spread evenly over
            all classes (0.1 is common).
    """
    return ClassificationCrossEntropy(weight=weight, label_smoothing=label_smoothing)


@_register("bce_cls")
def bce_cls(*, pos_weight: float | list[float] | None = None) -> nn.Module:
    """Binary cross-entropy for classification: one sigmoid per logit (multi-label, or
    binary with one logit).

    Logits ``(B, K)``; target ``(B, K)`` in [0, 1] (``(B,)`` when K = 1; class indices
    are one-hot encoded); the mean over cases and labels.

    Args:
        pos_weight: weight of the positive term, one per label in label order (e.g.
            negatives / positives for a rare label), or one value for all; null: 1.
    """
    return ClassificationBCE(pos_weight=pos_weight)


@_register("focal_cls")
def focal_cls(*, gamma: float = 2.0, alpha: float | list[float] | None = None) -> nn.Module:
    """Focal loss for classification (Lin et al. 2017): cross-entropy down-weighting the
    cases already classified well.

    Logits ``(B, K)``. Class-index targets ``(B,)`` / ``(B, 1)``: softmax focal loss,
    ``-alpha_t (1 - p_t)^gamma log p_t``. Targets with one value per logit ``(B, K)``
    (multi-label; binary with K = 1): sigmoid focal loss per logit, as torchvision's.
    The mean over cases (and labels).

    Args:
        gamma: focusing exponent (0: plain cross-entropy; 2 in the paper).
        alpha: class-index targets: one weight per class (one value a with two classes
            means [1 - a, a]); per-logit targets: the weight of positives, negatives
            getting 1 - alpha (0.25 in the paper), one value or one per label; null: none.
    """
    return ClassificationFocal(gamma=gamma, alpha=alpha)
