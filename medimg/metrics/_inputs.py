"""Input checks shared by the metrics: integer label arrays, equal shapes, spacing."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

__all__ = ["to_label_array", "check_same_shape", "check_label_range", "spacing_array"]


def to_label_array(x: np.ndarray | torch.Tensor, name: str) -> np.ndarray:
    """A non-negative integer numpy view/copy of a label map (memory order kept)."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    x = np.asanyarray(x)
    if x.dtype == np.bool_:
        return x.view(np.uint8)
    if np.issubdtype(x.dtype, np.floating):
        if x.size and not np.array_equal(x, np.round(x)):  # also False for NaN / inf
            raise ValueError(
                f"{name} must hold integer class labels; got {x.dtype} values that are not "
                "whole numbers (probabilities or logits?). Take argmax over classes first."
            )
        x = x.astype(np.int64, order="K")
    elif not np.issubdtype(x.dtype, np.integer):
        raise TypeError(f"{name} must be an integer label map, got dtype {x.dtype}")
    if x.size == 0 or x.dtype in (np.uint8, np.uint16):
        return x
    lo = x.min()
    if lo < 0:
        raise ValueError(f"{name} has negative label {int(lo)}; labels must be 0..num_classes-1")
    hi = int(x.max())
    if hi < 256:
        return x.astype(np.uint8, order="K")
    if hi < 65536:
        return x.astype(np.uint16, order="K")
    return x


def check_same_shape(pred: Any, ref: Any) -> None:
    if tuple(pred.shape) != tuple(ref.shape):
        raise ValueError(
            f"pred and ref must have the same shape; got pred {tuple(pred.shape)} and ref "
            f"{tuple(ref.shape)}. Resample the prediction onto the reference grid first."
        )


def check_label_range(lo: int, hi: int, name: str, k: int) -> None:
    if lo < 0 or hi >= k:
        raise ValueError(
            f"{name} has label {hi if hi >= k else lo} outside 0..{k - 1} "
            f"(num_classes={k}); pass the number of classes including background"
        )



def spacing_array(spacing: Sequence[float] | None, nd: int) -> np.ndarray:
    sp = np.ones(nd) if spacing is None else np.asarray(spacing, dtype=np.float64).ravel()
    if sp.shape != (nd,):
        raise ValueError(f"spacing must have {nd} values (mm per axis), got {list(sp)}")
    return sp

