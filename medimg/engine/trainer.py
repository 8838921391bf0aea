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

import csv
import math
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..core.builder import as_spec
from ..core.errors import ConfigError
from ..core.sample import Sample
from ..core.spec import ComponentSpec, InferenceSpec
from ..inference.checkpoint import save_checkpoint
from ..inference.predictor import Predictor
from ..inference.progress import progress_bar
from ..metrics import METRICS
from .distributed import DistInfo
from .selection import LOSS, parse_select_by

__all__ = ["Trainer", "TrainResult", "validation_metrics", "HISTORY_FILE", "CURVE_FILE"]

HISTORY_FILE = "history.csv"
CURVE_FILE = "training_curve.png"


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
        stopped_because: ``"max_epochs"``, ``"patience"`` or ``"max_minutes"``.
        history: one dict per epoch (the rows of ``history.csv``).
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

    @property
    def epochs(self) -> int:
        return self.epochs_run


def _nanmean(values: np.ndarray, axis: int | None = None) -> np.ndarray | float:
    """Mean leaving NaN out (inf stays: a class missed entirely is the worst value)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices give NaN, quietly
        return np.nanmean(values, axis=axis)


def validation_metrics(
    predictor: Predictor,
    samples: Sequence[Sample],
    label_names: Sequence[str] | None = None,
    metrics: Sequence[str] = ("dice", "jaccard"),
    *,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
) -> dict[str, float]:
    """Predict each sample whole and score it against its ``"label"`` on the native grid.

    Each metric comes from :data:`medimg.metrics.METRICS`, computed with the label's voxel
    spacing (distances in mm, volumes in ml).

    Args:
        predictor: the predictor (the same code path as ``medimg predict``).
        samples: whole cases with ``"image"`` and ``"label"`` on their own grid.
        label_names: class names, background first (default: the predictor's).
        metrics: registered metric names, and ``"loss"`` for ``loss_fn`` on the predicted
            probabilities (their log as logits: a softmax loss sees the same probabilities).
        loss_fn: the training loss, ``loss(logits (B,K,...), label (B,1,...))``.

    Returns:
        For each metric ``m``: ``m`` (mean over foreground classes of each class's mean
        over cases) and ``m_<class name>`` per foreground class; ``loss`` (mean over
        cases) when asked. NaN values (e.g. ``hd95`` where a class is absent from both
        prediction and reference) are left out of the means; a class absent from both
        scores Dice 1 (nothing to find, nothing found).

    Raises:
        ConfigError: ``"loss"`` asked for without ``loss_fn``.
    """
    names = [m.lower() for m in dict.fromkeys(metrics)]
    want_loss = LOSS in names
    names = [m for m in names if m != LOSS]
    if want_loss and loss_fn is None:
        raise ConfigError("the validation loss needs the training loss function (loss_fn)")
    labels = list(label_names or predictor.label_names or [])
    if not labels:
        labels = [f"class_{i}" for i in range(predictor.num_classes or 2)]
    k = len(labels)
    per_case: dict[str, list[np.ndarray]] = {m: [] for m in names}
    losses: list[float] = []
    for s in samples:
        probs = predictor.predict_probabilities(s, case_id=s.case_id).data
        pred = probs.argmax(0)
        ref_image = s["label"]
        ref = ref_image.data[0]
        for m in names:
            per_case[m].append(METRICS.get(m)(pred, ref, k, spacing=ref_image.spacing)[1:])
        if want_loss:
            logits = torch.log(probs.clamp_min(1e-8))[None]
            with torch.no_grad():
                losses.append(float(loss_fn(logits, ref[None, None].long())))  # type: ignore[misc]
    out: dict[str, float] = {}
    for m in names:
        per_class = _nanmean(np.stack(per_case[m]), axis=0) if per_case[m] else np.full(k - 1, np.nan)
        out[m] = float(_nanmean(per_class)) if len(per_class) else math.nan
        for name, v in zip(labels[1:], per_class):
            out[f"{m}_{name}"] = float(v)
    if want_loss:
        out[LOSS] = float(np.mean(losses)) if losses else math.nan
    return out


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
        max_epochs, val_every, patience, max_minutes, grad_clip: stopping and stepping
            rules as in :class:`~medimg.config.schema.TrainerSection`.
        metrics: validation metrics (:data:`medimg.metrics.METRICS` names) computed each
            validation; ``select_by``'s metric is added.
        select_by: validation score that picks ``best.pt``: a metric, ``<metric>_<class
            name>`` or ``loss`` (:mod:`medimg.engine.selection`); its direction comes
            from the metrics registry (``hd95`` and ``loss``: lower is better).
        amp: mixed precision on CUDA (bf16 where supported, else fp16 with a GradScaler).
        dist: distributed info; only rank 0 validates and writes.
        progress: show a progress bar and per-epoch lines.
        log: where per-epoch lines go (default: rich console on stderr).
        data_info: extra plain data for the checkpoint's ``data`` entry (e.g. the label
            file name).
        training_info: plain data for the checkpoint's ``training`` entry (experiment
            name, seed...).

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
        metrics: Sequence[str] = ("dice",),
        select_by: str = "dice",
        amp: bool = False,
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
        self.progress = progress and self.dist.is_main
        self._log = log
        self.selection = parse_select_by(select_by, self.label_names)
        self.select_by = self.selection.key  # as the validation metrics name it
        #: ``"max"`` when a higher ``select_by`` is better, ``"min"`` when a lower one is.
        self.select_mode = self.selection.mode
        self.metrics = list(dict.fromkeys([*(m.lower() for m in metrics), self.selection.metric]))
        self.amp = amp
        self.amp_dtype: torch.dtype | None = None
        if amp and device.type == "cuda":
            self.amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        self.scaler = torch.amp.GradScaler("cuda") if self.amp_dtype == torch.float16 else None

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

    def _predictor(self) -> Predictor:
        return Predictor(self.model, self.spec, device=self.device, amp=self.amp)

    def _improves(self, value: float, best: float | None) -> bool:
        """Whether ``value`` beats ``best`` in ``select_by``'s direction (NaN never does)."""
        if best is None:
            return True
        return value > best if self.select_mode == "max" else value < best

    def _save(self, name: str, epoch: int, metrics: Mapping[str, float], best: float | None) -> Path:
        training = dict(self.training_info)
        training.update(
            {
                "epoch": epoch,
                "metric_name": self.select_by,
                "metric": metrics.get(self.select_by),
                "best_metric": best,
                "validation": dict(metrics),
            }
        )
        return save_checkpoint(
            self.run_dir / name,
            self.model,
            model_name=self.model_spec.name,
            model_params=self.model_spec.params,
            spec=self.spec,
            data=self.data_info,
            training=training,
            optimizer_state=self.optimizer.state_dict() if name == "last.pt" else None,
        )

    def _train_step(self, batch: Mapping[str, Any]) -> float:
        x = batch["image"].to(self.device, non_blocking=True)
        y = batch["label"].to(self.device, non_blocking=True)
        self.optimizer.zero_grad(set_to_none=True)
        if self.amp_dtype is not None:
            with torch.autocast("cuda", dtype=self.amp_dtype):
                logits = self.net(x)
            loss = self.loss_fn(logits.float(), y)
        else:
            loss = self.loss_fn(self.net(x), y)
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"training loss became {float(loss)}; lower the learning rate or enable grad_clip"
            )
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            if self.grad_clip:
                self.scaler.unscale_(self.optimizer)
                nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            loss.backward()
            if self.grad_clip:
                nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
            self.optimizer.step()
        return float(loss.detach())

    def _agree(self, flag: bool) -> bool:
        """Rank 0's decision, shared with every rank (single process: unchanged)."""
        if not self.dist.enabled:
            return flag
        import torch.distributed as dist

        t = torch.tensor([1.0 if flag else 0.0], device=self.device)
        dist.broadcast(t, 0)
        return bool(t.item() > 0.5)

    # -- the loop -------------------------------------------------------------------------
    def fit(self) -> TrainResult:
        """Train until ``max_epochs``, ``patience`` or ``max_minutes``; write checkpoints."""
        if self.dist.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
        history: list[dict[str, Any]] = []
        best: float | None = None
        best_epoch: int | None = None
        since_best = 0
        stopped = "max_epochs"
        t_start = time.perf_counter()
        epoch = 0
        bar = progress_bar(self.progress)
        self._bar = bar
        with bar:
            task = bar.add_task("train", total=self.max_epochs * self.iterations_per_epoch) if bar.enabled else None
            for epoch in range(1, self.max_epochs + 1):
                t0 = time.perf_counter()
                self.net.train()
                losses: list[float] = []
                for batch in self.train_batches(epoch - 1):
                    losses.append(self._train_step(batch))
                    if task is not None:
                        bar.update(task, advance=1, description=f"epoch {epoch}/{self.max_epochs} loss {np.mean(losses):.4f}")
                if self.scheduler is not None:
                    self.scheduler.step()
                row: dict[str, Any] = {
                    "epoch": epoch,
                    "train_loss": float(np.mean(losses)) if losses else math.nan,
                    "lr": float(self.optimizer.param_groups[0]["lr"]),
                }
                metrics: dict[str, float] = {}
                improved = False
                out_of_time = (
                    self.max_minutes is not None and (time.perf_counter() - t_start) / 60 >= self.max_minutes
                )
                due = epoch % self.val_every == 0 or epoch == self.max_epochs or out_of_time
                if self.dist.is_main and self.val_samples and due:
                    self.model.eval()
                    metrics = validation_metrics(
                        self._predictor(), self.val_samples, self.label_names, self.metrics, loss_fn=self.loss_fn
                    )
                    value = metrics[self.select_by]
                    if self._improves(value, best):
                        best, best_epoch, improved, since_best = value, epoch, True, 0
                    else:
                        since_best += 1
                    row.update({f"val_{k}": v for k, v in metrics.items()})
                elif self.dist.is_main and not self.val_samples:
                    improved, best_epoch = True, epoch  # no validation: best = latest
                row["seconds"] = time.perf_counter() - t0
                history.append(row)
                elapsed_min = (time.perf_counter() - t_start) / 60
                if self.dist.is_main:
                    if improved:
                        self._save("best.pt", epoch, metrics, best)
                    self._save("last.pt", epoch, metrics, best)
                    self._write_history(history)
                    val_text = "  ".join(f"val {k} {v:.4f}" for k, v in metrics.items() if k in ("dice", self.select_by))
                    mark = "  *best*" if improved and metrics else ""
                    self.log(f"epoch {epoch:3d}  loss {row['train_loss']:.4f}  {val_text}  {row['seconds']:.1f}s{mark}")
                stop = False
                if self.patience is not None and since_best >= self.patience:
                    stop, stopped = True, "patience"
                elif out_of_time and epoch < self.max_epochs:
                    stop, stopped = True, "max_minutes"
                if self._agree(stop):
                    if self.dist.enabled and not stop:
                        stopped = "rank 0"
                    break
                if task is not None and self.max_minutes is not None and epoch < self.max_epochs:
                    # re-estimate the total from the time budget so the ETA is honest
                    per_epoch = elapsed_min / epoch
                    left = max(1, min(self.max_epochs - epoch, math.ceil((self.max_minutes - elapsed_min) / max(per_epoch, 1e-9))))
                    bar.update(task, total=(epoch + left) * self.iterations_per_epoch)
            if task is not None:
                bar.update(task, total=epoch * self.iterations_per_epoch, completed=epoch * self.iterations_per_epoch)
        seconds = time.perf_counter() - t_start
        if self.dist.is_main:
            self._plot(history)
            best_text = "n/a" if best is None else f"{best:.4f} at epoch {best_epoch}"
            self.log(
                f"finished: {epoch} epoch(s) in {seconds / 60:.1f} min (stopped: {stopped}); "
                f"best validation {self.select_by} {best_text}; checkpoints, {HISTORY_FILE} and "
                f"{CURVE_FILE} in {self.run_dir}"
            )
        return TrainResult(
            run_dir=self.run_dir,
            best_checkpoint=self.run_dir / "best.pt" if best_epoch is not None else None,
            last_checkpoint=self.run_dir / "last.pt",
            best_metric=best,
            best_epoch=best_epoch,
            epochs_run=epoch,
            seconds=seconds,
            stopped_because=stopped,
            history=history,
        )

    # -- outputs --------------------------------------------------------------------------
    def _write_history(self, history: list[dict[str, Any]]) -> None:
        fields: list[str] = []
        for row in history:
            for k in row:
                if k not in fields:
                    fields.append(k)
        # keep "seconds" last for readability
        fields = [f for f in fields if f != "seconds"] + ["seconds"]
        with open(self.run_dir / HISTORY_FILE, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=fields)
            w.writeheader()
            for row in history:
                w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})

    def _plot(self, history: list[dict[str, Any]]) -> Path | None:
        """``training_curve.png``: train loss and validation metric per epoch (needs matplotlib)."""
        try:
            import matplotlib

            matplotlib.use("Agg", force=False)
            import matplotlib.pyplot as plt
        except ImportError:
            self.log("training_curve.png skipped: matplotlib not installed (pip install 'medimg[plots]')")
            return None
        epochs = [r["epoch"] for r in history]
        fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
        ax.plot(epochs, [r["train_loss"] for r in history], "o-", color="tab:blue", label="train loss")
        ax.set_xlabel("epoch")
        ax.set_ylabel("train loss", color="tab:blue")
        key = f"val_{self.select_by}"
        pts = [(r["epoch"], r[key]) for r in history if key in r]
        if pts:
            ax2 = ax.twinx()
            ax2.plot([p[0] for p in pts], [p[1] for p in pts], "s-", color="tab:orange", label=key)
            ax2.set_ylabel(f"validation {self.select_by}", color="tab:orange")
            if all(0 <= p[1] <= 1 for p in pts):  # a ratio (Dice...); not mm (hd95) or a loss
                ax2.set_ylim(0, 1)
        ax.set_title(self.run_dir.name)
        fig.tight_layout()
        out = self.run_dir / CURVE_FILE
        fig.savefig(out)
        plt.close(fig)
        return out
