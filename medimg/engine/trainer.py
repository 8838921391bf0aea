"""The :class:`Trainer`: patch-based training, whole-volume validation, checkpoints.

It takes built components (network, loss, optimizer, data) so it can be driven from
Python without a config; :func:`medimg.engine.train` builds them from an
:class:`~medimg.config.ExperimentConfig`.

Validation predicts each validation case whole, on its own grid, with the same
:class:`~medimg.inference.Predictor` that ``medimg predict`` uses (preprocessing,
sliding window, inverse to the native grid, argmax), and scores it against the case's
label map: what is measured is what ships.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from ..core.builder import as_spec
from ..core.errors import CheckpointError, ConfigError
from ..core.sample import Sample
from ..core.spec import ComponentSpec, InferenceSpec
from ..inference.checkpoint import checkpoint_payload, inference_spec
from ..inference.predictor import Predictor
from ..inference.progress import progress_bar
from .callbacks import (
    CURVE_FILE,
    HISTORY_FILE,
    BestModelCheckpoint,
    Callback,
    EarlyStopping,
    FitState,
    History,
    StopAgreement,
    TimeBudget,
    curve_title,
)
from .checkpoint_writer import CheckpointWriter
from .distributed import DistInfo
from .ema import ema_model, refresh_batch_norm
from .layout import LayoutTuner
from .failures import is_out_of_memory, non_finite_error, out_of_memory_error
from .optim import scheduler_callbacks, steps_per_epoch, steps_per_iteration
from .resume import rng_state, set_rng_state
from .selection import parse_select_by
from .validation import validation_metrics

__all__ = ["Trainer", "TrainResult", "amp_dtype", "validation_metrics", "HISTORY_FILE", "CURVE_FILE"]


def amp_dtype(amp: bool | str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of ``trainer.amp`` on ``device`` (None: full precision).

    ``True``: CUDA bf16 where supported, else fp16 (with a gradient scaler); off on CPU.
    ``"bf16"``: bf16 on CPU or CUDA. ``"fp16"``: CUDA only.

    Raises:
        ConfigError: ``"fp16"`` on a device other than CUDA.
    """
    if amp is True:
        if device.type != "cuda":
            return None
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if amp == "bf16":
        return torch.bfloat16
    if amp == "fp16":
        if device.type != "cuda":
            raise ConfigError(
                f"trainer.amp is fp16 but training runs on {device.type}: fp16 autocast needs CUDA",
                hint="set trainer.amp to bf16 (CPU autocast) or false",
            )
        return torch.float16
    return None


@dataclass
class TrainResult:
    """What a training run produced.

    Attributes:
        run_dir: the run folder.
        best_checkpoint: ``best.pt`` (best validation ``select_by``; the last epoch's
            weights when there is no validation split).
        last_checkpoint: ``last.pt``.
        best_metric: the best validation value of ``select_by`` (None without validation).
        best_epoch: the epoch (1-based) it was reached at.
        epochs_run: epochs completed.
        seconds: wall time of the training loop.
        stopped_because: ``"max_epochs"``, ``"patience"`` or ``"max_minutes"`` (on the
            other ranks of a distributed run, ``"rank 0"`` when rank 0 alone stopped).
        history: one dict per epoch (the rows of ``history.csv``).
        test_summary: the best checkpoint's scores on the test split (the content of
            ``RUN_DIR/test/summary.json``); None when the test split was not scored.
    """

    run_dir: Path
    best_checkpoint: Path | None
    last_checkpoint: Path | None
    best_metric: float | None
    best_epoch: int | None
    epochs_run: int
    seconds: float
    stopped_because: str
    history: list[dict[str, Any]] = field(default_factory=list)
    test_summary: dict[str, Any] | None = None

    @property
    def epochs(self) -> int:
        return self.epochs_run


class Trainer:
    """Runs epochs of patch-based training with whole-volume validation.

    Args:
        model: the network (already on ``device``; wrapped in DDP here when distributed).
        loss_fn: ``loss(logits (B,K,...), label (B,1,...)) -> scalar``.
        optimizer: a torch optimizer over the model's parameters.
        train_batches: called with the epoch index (0-based), returns an iterable of
            batches ``{"image": (B,C,*roi) float, "label": (B,1,*roi) long}``.
        iterations_per_epoch: batches per epoch (for the progress bar).
        val_samples: whole validation cases (raw grid, with ``"label"``); may be empty.
        spec: what prediction needs (preprocessing, channel and class names, sliding
            window): the validation :class:`Predictor`'s settings, stored in every
            checkpoint.
        model_spec: the network's registered name and the parameters that rebuild it
            (``{"name": ..., **params}``, ``in_channels`` and ``out_channels`` included).
        run_dir: where checkpoints, ``history.csv`` and ``training_curve.png`` go.
        device: training device.
        scheduler: per-epoch LR scheduler or None.
        max_epochs, val_every, patience, max_minutes, grad_clip, accumulate, ema: stopping
            and stepping rules as in :class:`~medimg.config.schema.TrainerSection`.
        metrics: validation metrics (:data:`medimg.metrics.METRICS` names) computed each
            validation; ``select_by``'s metric is added.
        select_by: validation score that picks ``best.pt``: a metric, ``<metric>_<class
            name>`` or ``loss`` (:mod:`medimg.engine.selection`); its direction comes
            from the metrics registry (``hd95`` and ``loss``: lower is better).
        amp: mixed precision (:func:`amp_dtype`): ``True``, ``"bf16"`` (also on CPU) or
            ``"fp16"`` (CUDA, with a GradScaler).
        channels_last: layout of the convolution weights (:mod:`medimg.engine.layout`):
            ``"auto"`` times the first steps in each and keeps the faster.
        dist: distributed info; only rank 0 validates and writes.
        progress: show a progress bar and per-epoch lines.
        log: where per-epoch lines go (default: rich console on stderr).
        data_info: extra plain data for the checkpoint's ``data`` entry (the label file name...).
        training_info: plain data for the checkpoint's ``training`` entry (experiment
            name, seed, fold...); its experiment name titles the training curve.

    Raises:
        ConfigError: ``select_by`` is not a validation score of these classes.
    """

    def __init__(
        self,
        model: nn.Module,
        loss_fn: nn.Module,
        optimizer: torch.optim.Optimizer,
        train_batches: Callable[[int], Iterable[Mapping[str, Any]]],
        iterations_per_epoch: int,
        val_samples: Sequence[Sample],
        spec: InferenceSpec,
        model_spec: ComponentSpec | Mapping[str, Any],
        run_dir: Path,
        device: torch.device,
        *,
        scheduler: Any = None,
        max_epochs: int = 10,
        val_every: int = 1,
        patience: int | None = None,
        max_minutes: float | None = None,
        grad_clip: float | None = None,
        accumulate: int = 1,
        ema: float | None = None,
        metrics: Sequence[str] = ("dice",),
        select_by: str = "dice",
        amp: bool | str = False,
        channels_last: bool | Literal["auto"] = "auto",
        dist: DistInfo | None = None,
        progress: bool = True,
        log: Callable[[str], None] | None = None,
        data_info: Mapping[str, Any] | None = None,
        training_info: Mapping[str, Any] | None = None,
    ) -> None:
        self.dist = dist or DistInfo()
        self.device = device
        self.model = model
        self.net = model
        self.amp = amp
        self.amp_dtype = amp_dtype(amp, device)
        self.layout = LayoutTuner(model, optimizer, channels_last, device, log=self.log,
                                  fixed=self.dist.enabled or torch.are_deterministic_algorithms_enabled(),
                                  context=str(self.amp_dtype))
        if self.dist.enabled:
            from torch.nn.parallel import DistributedDataParallel as DDP

            self.net = DDP(model, device_ids=[device.index] if device.type == "cuda" else None)
        self.loss_fn = loss_fn
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.train_batches = train_batches
        self.iterations_per_epoch = int(iterations_per_epoch)
        self.val_samples = list(val_samples)
        self.spec = spec
        self.keep_low_probability = False  # validation keeps low-probability voxels (postlearn sets it)
        self.model_spec = as_spec(model_spec)
        self.label_names = list(spec.label_names or [])
        self.data_info = dict(data_info or {})
        self.training_info = dict(training_info or {})
        self.run_dir = Path(run_dir)
        self.max_epochs = int(max_epochs)
        self.val_every = int(val_every)
        self.patience = patience
        self.max_minutes = max_minutes
        self.grad_clip = grad_clip
        self.accumulate = max(1, int(accumulate))
        self._accumulated = 0  # batches whose gradients wait for the optimizer step
        self.ema = ema_model(model, ema)
        self._resume: dict[str, Any] | None = None
        self.checkpoints = CheckpointWriter()  # best.pt / last.pt, written in the background
        self.progress = progress and self.dist.is_main
        self._log = log
        self.selection = parse_select_by(select_by, self.label_names, task=spec.task)
        self.select_by = self.selection.key  # as the validation metrics name it
        self.select_mode = self.selection.mode
        self.metrics = list(dict.fromkeys([*(m.lower() for m in metrics), self.selection.metric]))
        self.scaler = torch.amp.GradScaler("cuda") if self.amp_dtype == torch.float16 else None

    #: ``"max"`` when a higher ``select_by`` is better, ``"min"`` when a lower one is
    #: (hd95, loss); read by the best-model and early-stopping callbacks.
    select_mode: Literal["max", "min"] = "max"

    # -- helpers --------------------------------------------------------------------------
    def log(self, text: str) -> None:
        if not self.dist.is_main:
            return
        if self._log is not None:
            self._log(text)
        elif self.progress:
            bar = getattr(self, "_bar", None)
            if bar is not None and getattr(bar, "enabled", False):
                bar.console.print(text, markup=False, highlight=False)  # above the live bar
            else:
                from rich.console import Console

                Console(stderr=True).print(text, markup=False, highlight=False)

    @property
    def eval_model(self) -> nn.Module:
        """The weights validated and saved: the moving average with ``ema``, else the model."""
        return self.ema.module if self.ema is not None else self.model

    def _refresh_ema_batch_norm(self, epoch: int) -> None:
        """The averaged model's batch-norm statistics, recomputed on this epoch's batches."""
        if self.ema is not None and self.dist.is_main:
            refresh_batch_norm(self.ema.module, self.train_batches(epoch - 1), self.device)

    def _predictor(self) -> Predictor:
        # untuned: validation scores (and so the best epoch) repeat bit for bit
        return Predictor(self.eval_model, self.spec, device=self.device, amp=self.amp, tune_layers=False)

    def _validate(self) -> dict[str, float]:
        """Score the current weights on the validation cases (rank 0), label maps kept in ``val_predictions``."""
        self.eval_model.eval()
        self.val_predictions: dict[str, torch.Tensor] = {}
        self.val_uncertain: dict[str, Any] | None = {} if self.keep_low_probability else None
        return validation_metrics(self._predictor(), self.val_samples, self.label_names, self.metrics,
                                  loss_fn=self.loss_fn, predictions=self.val_predictions, uncertain=self.val_uncertain)

    def _save(self, name: str, epoch: int, metrics: Mapping[str, float], best: float | None) -> Path:
        """Hand one checkpoint to :attr:`checkpoints` (copied now, written in the background)."""
        training = {**self.training_info, "epoch": epoch, "metric_name": self.select_by,
                    "metric": metrics.get(self.select_by), "best_metric": best, "validation": dict(metrics)}
        return self.checkpoints.save(self.run_dir / name, (epoch, repr(training)), lambda: checkpoint_payload(
            self.eval_model, model_name=self.model_spec.name, model_params=self.model_spec.params, spec=self.spec,
            data=self.data_info, training=training, optimizer_state=self.optimizer.state_dict(),
            resume=self._resume_state(epoch)), copy=epoch < self.max_epochs and not self._state.stop_requested)

    # -- exact resume ---------------------------------------------------------------------
    def _callback_keys(self) -> list[tuple[str, Callback]]:
        keys: list[tuple[str, Callback]] = []
        for cb in self._callbacks:
            key = type(cb).__name__
            keys.append((key if all(k != key for k, _ in keys) else f"{key}#{len(keys)}", cb))
        return keys

    def _resume_state(self, epoch: int) -> dict[str, Any]:
        """What ``resume_from`` needs besides the weights and optimizer (rank 0, at save)."""
        state = getattr(self, "_state", None)
        return {
            "epoch": epoch,
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "callbacks": {k: cb.state_dict() for k, cb in self._callback_keys()},
            "history": list(state.history) if state is not None else [],
            "rng": rng_state(),
            "layout": self.layout.layout,
            # with ema the saved weights are the average: the raw ones continue training
            "raw_state_dict": self.model.state_dict() if self.ema is not None else None,
            "ema_state": self.ema.state_dict() if self.ema is not None else None,
        }

    def resume_from(self, ckpt: Mapping[str, Any], source: str = "last.pt") -> None:
        """Load a training checkpoint (``best.pt``/``last.pt`` with ``"resume"`` state):
        weights, optimizer, scheduler, scaler and prediction spec now; callbacks, history
        and RNG states when :meth:`fit` starts, which continues after its epoch.

        Raises:
            CheckpointError: its weights or optimizer state do not fit this run's model.
        """
        r = ckpt["resume"]
        try:
            if self.ema is not None and r.get("ema_state") is not None:
                self.model.load_state_dict(r["raw_state_dict"])
                self.ema.load_state_dict(r["ema_state"])
            else:
                self.model.load_state_dict(ckpt["state_dict"])
            if ckpt.get("optimizer_state"):
                self.optimizer.load_state_dict(ckpt["optimizer_state"])
        except (RuntimeError, ValueError, KeyError) as exc:
            raise CheckpointError(
                f"cannot resume from '{source}': its weights or optimizer state do not fit the "
                f"config's model and optimizer ({str(exc).splitlines()[0][:200]})",
                hint="resume with the run's own config, or start a new run",
            ) from None
        if self.scheduler is not None and r.get("scheduler") is not None:
            self.scheduler.load_state_dict(r["scheduler"])
        if self.scaler is not None and r.get("scaler") is not None:
            self.scaler.load_state_dict(r["scaler"])
        self.spec = inference_spec(ckpt, source)  # e.g. the threshold chosen on validation
        self.layout.load(r.get("layout"))
        self._resume = dict(r)

    def _restore(self, state: FitState) -> int:
        """Apply the pending resume state to the loop; the last completed epoch."""
        r = self._resume or {}
        state.epoch = int(r.get("epoch", 0))
        state.history = [dict(row) for row in r.get("history", [])]
        stored = r.get("callbacks") or {}
        for key, cb in self._callback_keys():
            if key in stored:
                cb.load_state_dict(stored[key])
        if r.get("rng") is not None:
            set_rng_state(r["rng"])
        self._emit("on_resume", state)
        self.log(f"resumed after epoch {state.epoch} of {self.max_epochs}")
        return state.epoch

    def _train_step(self, batch: Mapping[str, Any], update: bool = True) -> float:
        """Forward and backward one batch (loss scaled by ``1 / accumulate``); with
        ``update``, the optimizer step over the gradients accumulated so far.

        Raises:
            FloatingPointError: the loss is NaN or infinite (nothing is stepped).
        """
        x = batch["image"].to(self.device, non_blocking=True)
        y = batch["label"].to(self.device, non_blocking=True)
        if self._accumulated == 0:
            self.optimizer.zero_grad(set_to_none=True)
        if self.amp_dtype is not None:
            with torch.autocast(self.device.type, dtype=self.amp_dtype):
                logits = self.net(x)
            loss = self.loss_fn(logits.float(), y)
        else:
            loss = self.loss_fn(self.net(x), y)
        value = float(loss.detach())  # the step's one device sync: logged, and checked before backward
        if not math.isfinite(value):
            raise FloatingPointError(f"training loss became {value}")
        scaled = loss / self.accumulate if self.accumulate > 1 else loss
        (self.scaler.scale(scaled) if self.scaler is not None else scaled).backward()
        self._accumulated += 1
        if update:
            self._optimizer_step()
        return value

    def _optimizer_step(self) -> None:
        """Clip, step the optimizer (through the scaler with fp16), then the per-iteration
        scheduler once per batch accumulated."""
        if self.grad_clip:
            if self.scaler is not None:
                self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        if self.ema is not None:
            self.ema.update_parameters(self.model)
        if self.scheduler is not None and steps_per_iteration(self.scheduler):
            for _ in range(self._accumulated):
                self.scheduler.step()
        self._accumulated = 0

    def _step_failure(self, state: FitState, batch: Mapping[str, Any], exc: Exception) -> Exception | None:
        """The one-line error for a failed step (NaN loss, out of memory), or None."""
        if isinstance(exc, FloatingPointError):
            return non_finite_error(exc, state.epoch, state.step + 1, batch, self.dist.is_main)
        if is_out_of_memory(exc):
            return out_of_memory_error(exc, epoch=state.epoch, step=state.step + 1, batch=batch, net=self.net,
                                       optimizer=self.optimizer, model_params=self.model_spec.params,
                                       device=self.device, amp=bool(self.amp))
        return None

    # -- callbacks ------------------------------------------------------------------------
    def default_callbacks(self) -> list[Callback]:
        """The built-in callbacks of this run, in the order :meth:`fit` calls them: plateau
        step, best model and checkpoints, patience, time budget, history and curve. Only rank 0
        gets the ones that write files. (:meth:`fit` adds :class:`StopAgreement` last.)"""
        callbacks = scheduler_callbacks(self.scheduler, self.select_by, self.select_mode, self.dist, self.device)
        if self.dist.is_main:
            validates = bool(self.val_samples)
            callbacks.append(BestModelCheckpoint(self._save, self.select_by, self.select_mode, validates))
        if self.patience is not None:
            callbacks.append(EarlyStopping(self.patience, self.select_by, self.select_mode))
        if self.max_minutes is not None:
            callbacks.append(TimeBudget(self.max_minutes))
        if self.dist.is_main:
            callbacks.append(History(self.run_dir, self.select_by, self.log, title=curve_title(self.training_info)))
        return callbacks

    def _emit(self, hook: str, state: FitState, *args: Any) -> None:
        """Call ``hook`` on every callback, in order (a callback may lack the hook)."""
        for callback in self._callbacks:
            method = getattr(callback, hook, None)
            if method is not None:
                method(state, *args)

    def _best_model(self) -> BestModelCheckpoint | None:
        return next((c for c in self._callbacks if isinstance(c, BestModelCheckpoint)), None)

    # -- the loop -------------------------------------------------------------------------
    def fit(self, callbacks: Sequence[Callback] = ()) -> TrainResult:
        """Train until ``max_epochs`` or a callback's stop (``patience``, ``max_minutes``).

        Writes (rank 0) ``best.pt``, ``last.pt``, ``history.csv`` and ``training_curve.png``
        through the built-in callbacks (:meth:`default_callbacks`); the checkpoints in the
        background (:attr:`checkpoints`), all on disk before ``fit`` returns or raises.

        Args:
            callbacks: more callbacks (:class:`~medimg.engine.callbacks.Callback`), called
                after the built-in ones, before the distributed stop agreement.
        """
        try:
            result = self._fit(callbacks)
        except BaseException:
            self.checkpoints.close(raise_errors=False)  # the error being raised stays the one reported
            raise
        self.checkpoints.close()  # a failed write is raised here
        return result

    def _fit(self, callbacks: Sequence[Callback]) -> TrainResult:
        """The loop of :meth:`fit`."""
        if self.dist.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
        self._callbacks = [*self.default_callbacks(), *callbacks]
        if self.dist.enabled:
            self._callbacks.append(StopAgreement(self.dist, self.device))
        self._state = state = FitState(self.max_epochs, self.iterations_per_epoch)
        t_start = time.perf_counter()
        self._bar = bar = progress_bar(self.progress)
        with bar:
            total = self.max_epochs * self.iterations_per_epoch
            self._task = bar.add_task("train", total=total) if bar.enabled else None
            self._emit("on_fit_start", state)
            start = self._restore(state) if self._resume is not None else 0
            if self._task is not None and start:
                bar.update(self._task, completed=start * self.iterations_per_epoch)
            self._start_epoch = start
            for epoch in range(start + 1, self.max_epochs + 1):
                if state.stop_requested:  # a resumed run that had stopped (patience, budget)
                    break
                self._run_epoch(state, epoch)
                if state.stop_requested:
                    break
                self._update_eta(state, t_start)
            if self._task is not None:
                done = max(0, state.epoch - 1) * self.iterations_per_epoch + state.step  # a cut epoch counts its steps
                bar.update(self._task, total=done, completed=done)
        seconds = time.perf_counter() - t_start
        self._emit("on_fit_end", state)
        result = self._result(state, seconds)
        self._log_summary(result)
        return result

    def _run_epoch(self, state: FitState, epoch: int) -> None:
        """One epoch: steps, scheduler, validation when due, then the epoch's callbacks."""
        state.begin_epoch(epoch)
        t0 = time.perf_counter()
        losses = self._train_epoch(state)
        self._refresh_ema_batch_norm(epoch)
        if steps_per_epoch(self.scheduler):  # plateau steps on the validation score (scheduler_callbacks)
            self.scheduler.step()
        state.row = {
            "epoch": epoch,
            "train_loss": float(np.mean(losses)) if losses else math.nan,
            "lr": float(self.optimizer.param_groups[0]["lr"]),
            "data_wait": round(state.data_wait, 4),
        }
        state.validate_now = epoch % self.val_every == 0 or epoch == self.max_epochs or state.stop_requested
        self._emit("on_train_epoch_end", state)
        if self.dist.is_main and self.val_samples and state.validate_now:
            state.metrics = self._validate()
            state.row.update({f"val_{k}": v for k, v in state.metrics.items()})
            self._emit("on_validation_end", state, state.metrics)
        state.row["seconds"] = time.perf_counter() - t0
        state.history.append(state.row)
        self._emit("on_epoch_end", state)
        self._log_epoch(state)

    def _train_epoch(self, state: FitState) -> list[float]:
        """The epoch's training steps; stops after the step at which a callback asks to."""
        self.net.train()
        losses: list[float] = []
        batches = iter(self.train_batches(state.epoch - 1))
        waited = 0.0
        t_epoch = time.perf_counter()
        while True:
            t0 = time.perf_counter()
            batch = next(batches, None)
            waited += time.perf_counter() - t0
            if batch is None:
                break
            try:
                losses.append(self.layout.run(self._train_step, batch, update=(state.step + 1) % self.accumulate == 0,
                                              group_start=self._accumulated == 0))
            except (FloatingPointError, RuntimeError) as exc:
                failure = self._step_failure(state, batch, exc)
                if failure is None:
                    raise
                raise failure from None
            state.step, state.loss = state.step + 1, losses[-1]
            state.data_wait = waited / max(time.perf_counter() - t_epoch, 1e-9)
            if self._task is not None:
                text = f"epoch {state.epoch}/{self.max_epochs} loss {np.mean(losses):.4f}"
                self._bar.update(self._task, advance=1, description=text)
            self._emit("on_step_end", state)
            if state.stop_requested:
                break
        if self._accumulated:  # a last, partial accumulation group
            self._optimizer_step()
        return losses

    def _update_eta(self, state: FitState, t_start: float) -> None:
        """With a time budget, re-estimate the bar's total so the ETA is honest."""
        if self._task is None or self.max_minutes is None or state.epoch >= self.max_epochs:
            return
        elapsed = (time.perf_counter() - t_start) / 60
        per_epoch = elapsed / max(1, state.epoch - getattr(self, "_start_epoch", 0))
        fit_in_budget = math.ceil((self.max_minutes - elapsed) / max(per_epoch, 1e-9))
        left = max(1, min(self.max_epochs - state.epoch, fit_in_budget))
        self._bar.update(self._task, total=(state.epoch + left) * self.iterations_per_epoch)

    # -- reporting ------------------------------------------------------------------------
    def _log_epoch(self, state: FitState) -> None:
        metrics, row = state.metrics, state.row
        best = self._best_model()
        val_text = "  ".join(f"val {k} {v:.4f}" for k, v in metrics.items() if k in ("dice", self.select_by))
        mark = "  *best*" if metrics and best is not None and best.best_epoch == state.epoch else ""
        wait = f"  data wait {row['data_wait']:.0%}" if row.get("data_wait") is not None else ""
        self.log(f"epoch {state.epoch:3d}  loss {row['train_loss']:.4f}  {val_text}  {row['seconds']:.1f}s{wait}{mark}")

    def _result(self, state: FitState, seconds: float) -> TrainResult:
        best = self._best_model()
        best_epoch = best.best_epoch if best is not None else None
        return TrainResult(
            run_dir=self.run_dir,
            best_checkpoint=self.run_dir / "best.pt" if best_epoch is not None else None,
            last_checkpoint=self.run_dir / "last.pt",
            best_metric=best.best if best is not None else None,
            best_epoch=best_epoch,
            epochs_run=state.epoch,
            seconds=seconds,
            stopped_because=state.stop_reason or "max_epochs",
            history=state.history,
        )

    def _log_summary(self, result: TrainResult) -> None:
        best = result.best_metric
        best_text = "n/a" if best is None else f"{best:.4f} at epoch {result.best_epoch}"
        self.log(
            f"finished: {result.epochs_run} epoch(s) in {result.seconds / 60:.1f} min "
            f"(stopped: {result.stopped_because}); best validation {self.select_by} {best_text}; "
            f"checkpoints, {HISTORY_FILE} and {CURVE_FILE} in {self.run_dir}"
        )
