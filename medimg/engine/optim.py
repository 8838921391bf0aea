"""``OPTIMIZERS`` and ``SCHEDULERS`` registries (torch's, by config name).

Calling convention (see :mod:`medimg.config.build`): an optimizer factory is called as
``factory(model_params, **spec.params)``, a scheduler factory as
``factory(optimizer, **spec.params)``. Schedulers here step once per *epoch*; their
horizon (``max_epochs``) is filled in by the trainer when the config leaves it out.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from ..core.registry import Registry

__all__ = ["OPTIMIZERS", "SCHEDULERS"]

#: Registry of optimizer factories: ``factory(model_params, **kwargs)``.
OPTIMIZERS: Registry[Any] = Registry("optimizers")
#: Registry of per-epoch LR scheduler factories: ``factory(optimizer, **kwargs)``.
SCHEDULERS: Registry[Any] = Registry("schedulers")


@OPTIMIZERS.register("adamw")
def adamw(params: Iterable[Any], lr: float = 1e-3, weight_decay: float = 1e-2, betas: tuple[float, float] = (0.9, 0.999)) -> torch.optim.Optimizer:
    """AdamW (Loshchilov & Hutter 2019): Adam with decoupled weight decay."""
    return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, betas=tuple(betas))


@OPTIMIZERS.register("adam")
def adam(params: Iterable[Any], lr: float = 1e-3, weight_decay: float = 0.0, betas: tuple[float, float] = (0.9, 0.999)) -> torch.optim.Optimizer:
    """Adam (Kingma & Ba 2015)."""
    return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, betas=tuple(betas))


@OPTIMIZERS.register("sgd")
def sgd(params: Iterable[Any], lr: float = 1e-2, momentum: float = 0.99, weight_decay: float = 3e-5, nesterov: bool = True) -> torch.optim.Optimizer:
    """SGD with Nesterov momentum (nnU-Net's defaults: lr 1e-2, momentum 0.99, wd 3e-5)."""
    return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov and momentum > 0)


@SCHEDULERS.register("cosine")
def cosine(optimizer: torch.optim.Optimizer, max_epochs: int = 100, min_lr: float = 0.0, warmup_epochs: int = 0) -> Any:
    """Cosine decay from the optimizer's lr to ``min_lr`` over ``max_epochs``, after a linear warm-up."""
    import math

    base = [g["lr"] for g in optimizer.param_groups]

    def factor(epoch: int, b: float) -> float:
        if epoch < warmup_epochs:
            return (epoch + 1) / (warmup_epochs + 1)
        t = min(1.0, (epoch - warmup_epochs) / max(1, max_epochs - warmup_epochs))
        return (min_lr + 0.5 * (b - min_lr) * (1 + math.cos(math.pi * t))) / b if b > 0 else 1.0

    return torch.optim.lr_scheduler.LambdaLR(optimizer, [lambda e, b=b: factor(e, b) for b in base])


@SCHEDULERS.register("poly")
def poly(optimizer: torch.optim.Optimizer, max_epochs: int = 100, power: float = 0.9) -> Any:
    """Polynomial decay ``(1 - epoch / max_epochs) ** power`` (nnU-Net's schedule)."""
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda e: max(0.0, 1.0 - e / max(1, max_epochs)) ** power
    )


@SCHEDULERS.register("step")
def step(optimizer: torch.optim.Optimizer, step_size: int = 30, gamma: float = 0.1) -> Any:
    """Multiply the lr by ``gamma`` every ``step_size`` epochs."""
    return torch.optim.lr_scheduler.StepLR(optimizer, step_size=step_size, gamma=gamma)


@SCHEDULERS.register("none")
def none(optimizer: torch.optim.Optimizer) -> Any:
    """Constant learning rate."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda e: 1.0)
