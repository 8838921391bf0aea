"""``trainer.ema``: a moving average of the weights, and its batch-norm statistics.

Averaged weights and averaged running statistics do not belong together (the statistics
trail the weights that produced them); as for SWA, the statistics are recomputed with the
averaged weights (``torch.optim.swa_utils.update_bn``) on up to :data:`EMA_BN_BATCHES`
batches of the epoch's data, before validation and saving.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from itertools import islice
from typing import Any

import torch
from torch import nn

__all__ = ["EMA_BN_BATCHES", "ema_model", "refresh_batch_norm"]

#: Training batches over which the averaged model's batch-norm statistics are recomputed.
EMA_BN_BATCHES = 64


def ema_model(model: nn.Module, decay: float | None) -> nn.Module | None:
    """A moving average of ``model``'s weights and buffers (batch-norm statistics too), or None."""
    if not decay:
        return None
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(float(decay)), use_buffers=True)


def refresh_batch_norm(net: nn.Module, batches: Iterable[Mapping[str, Any]], device: torch.device) -> None:
    """Recompute ``net``'s batch-norm statistics on the images of up to :data:`EMA_BN_BATCHES`
    of ``batches`` (nothing to do for a network without batch norm)."""
    if not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in net.modules()):
        return
    from torch.optim.swa_utils import update_bn

    images = (b["image"].to(device) for b in islice(iter(batches), EMA_BN_BATCHES))
    update_bn(images, net, device)
