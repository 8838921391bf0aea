"""``OPTIMIZERS`` and ``SCHEDULERS`` registries (torch's, by config name).

Calling convention (see :mod:`medimg.config.build`): an optimizer factory is called as
``factory(model_params, **spec.params)``, a scheduler factory as
``factory(optimizer, **spec.params)``. Schedulers here step once per *epoch*, except
those marked ``per_step`` (``onecycle``), which step after every training step, and those
marked ``on_metric`` (``plateau``), which step after every validation on the score of
``evaluation.select_by`` (:class:`~medimg.engine.callbacks.MetricScheduler`). The horizon
(``max_epochs``, ``iterations_per_epoch``) is filled in by :func:`build_scheduler` when the
config leaves it out.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from typing import Any

import torch

from ..core.errors import ConfigError
from ..core.registry import Registry
from .callbacks import MetricScheduler

__all__ = ["OPTIMIZERS", "SCHEDULERS", "build_scheduler", "scheduler_callbacks", "steps_on_metric",
           "steps_per_epoch", "steps_per_iteration"]

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


@SCHEDULERS.register("onecycle")
def onecycle(optimizer: torch.optim.Optimizer, max_epochs: int = 100, iterations_per_epoch: int = 1,
             pct_start: float = 0.15, div_factor: float = 25.0, final_div_factor: float = 1e4) -> Any:
    """One-cycle (Smith & Topin 2019), stepped after every training step: the lr rises from
    ``lr / div_factor`` to the optimizer's lr over the first ``pct_start`` of the run, then
    anneals (cosine) to ``lr / (div_factor * final_div_factor)`` at its end."""
    sched = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=[g["lr"] for g in optimizer.param_groups],
        total_steps=max(2, max_epochs * iterations_per_epoch + 1),  # +1: a last partial step never overruns
        pct_start=pct_start, div_factor=div_factor, final_div_factor=final_div_factor,
    )
    sched.per_step = True
    return sched


@SCHEDULERS.register("plateau")
def plateau(optimizer: torch.optim.Optimizer, factor: float = 0.1, patience: int = 10, threshold: float = 1e-4,
            cooldown: int = 0, min_lr: float = 0.0) -> Any:
    """Reduce on plateau: multiply the lr by ``factor`` once the validation score of
    ``evaluation.select_by`` has not improved by more than ``threshold`` (absolute, in the
    score's units) for ``patience`` validations; then wait ``cooldown`` validations; never
    below ``min_lr``. Stepped by the trainer after each validation (a run without validation
    cases keeps its lr). Scores where lower is better (``loss``, ``hd95``) are negated, so
    the scheduler always looks for a higher value."""
    if not 0 < factor < 1:
        raise ConfigError(f"scheduler 'plateau': factor must be between 0 and 1, got {factor}",
                          hint="e.g. scheduler: {name: plateau, factor: 0.5}")
    if patience < 0 or cooldown < 0 or threshold < 0 or min_lr < 0:
        raise ConfigError("scheduler 'plateau': patience, cooldown, threshold and min_lr must be >= 0",
                          hint="e.g. scheduler: {name: plateau, patience: 10}")
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="max", factor=factor, patience=patience, threshold=threshold, threshold_mode="abs",
        cooldown=cooldown, min_lr=min_lr,
    )
    sched.on_metric = True
    return sched


def steps_per_iteration(scheduler: Any) -> bool:
    """Whether ``scheduler`` steps after every training step (else once per epoch)."""
    return bool(getattr(scheduler, "per_step", False))


def steps_on_metric(scheduler: Any) -> bool:
    """Whether ``scheduler`` steps on the validation score (``scheduler.step(score)``)."""
    return bool(getattr(scheduler, "on_metric", False))


def scheduler_callbacks(scheduler: Any, monitor: str, mode: str, dist: Any = None, device: Any = None) -> list[Any]:
    """The callbacks that step ``scheduler`` (None: no scheduler) on the validation score of
    ``monitor`` (``mode`` ``"max"`` or ``"min"``, the direction of ``select_by``): one
    :class:`~medimg.engine.callbacks.MetricScheduler` for ``plateau``, else none."""
    return [MetricScheduler(scheduler, monitor, mode, dist, device)] if steps_on_metric(scheduler) else []


def steps_per_epoch(scheduler: Any) -> bool:
    """Whether ``scheduler`` (None: no scheduler) steps once after every epoch's training."""
    return scheduler is not None and not steps_per_iteration(scheduler) and not steps_on_metric(scheduler)


def build_scheduler(spec: Any, optimizer: torch.optim.Optimizer, max_epochs: int, iterations_per_epoch: int) -> Any:
    """The LR scheduler of a config's ``scheduler`` section (None for none), its horizon
    defaulting to the run's length."""
    if spec is None or spec.name == "none":
        return None
    params = dict(spec.params)
    accepted = inspect.signature(SCHEDULERS.get(spec.name)).parameters
    if "max_epochs" in accepted:
        params.setdefault("max_epochs", max_epochs)
    if "iterations_per_epoch" in accepted:
        params.setdefault("iterations_per_epoch", iterations_per_epoch)
    return SCHEDULERS.build({"name": spec.name, **params}, optimizer, key="scheduler")


@SCHEDULERS.register("none")
def none(optimizer: torch.optim.Optimizer) -> Any:
    """Constant learning rate."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda e: 1.0)
