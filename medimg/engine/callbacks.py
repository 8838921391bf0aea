"""Callbacks: everything :meth:`~medimg.engine.Trainer.fit` does besides training.

The fit loop runs training steps, steps the LR scheduler and validates on schedule. Every
other concern is a callback, called at fixed points of the loop, in list order:

===========================================  =============================================
``on_fit_start(state)``                       once, before the first epoch
``on_step_end(state)``                        after each training step
``on_train_epoch_end(state)``                 after an epoch's steps and the scheduler step;
                                              set ``state.validate_now`` to ask for validation
``on_validation_end(state, metrics)``         after validation (rank 0, validation epochs)
``on_epoch_end(state)``                       after the epoch's row joined ``state.history``
``on_fit_end(state)``                         once, after the last epoch (rank 0 writes)
``on_resume(state)``                          resumed runs: after the callbacks' states were
                                              restored, before the first new epoch
===========================================  =============================================

A callback that has state worth resuming (best metric, patience counter, minutes used)
returns it from ``state_dict()`` as plain data; the trainer stores it in every checkpoint
and gives it back through ``load_state_dict`` when a run is resumed.

A callback ends the run with ``state.request_stop(reason)``: a request made in
``on_step_end`` ends the epoch after that step (the epoch is still validated, checkpointed
and logged); a request made later ends the run after the current epoch. The first reason
asked for is the one reported (``TrainResult.stopped_because``).

The built-in callbacks, in the order the trainer runs them: :class:`BestModelCheckpoint`
(``best.pt`` / ``last.pt``), :class:`EarlyStopping` (``"patience"``), :class:`TimeBudget`
(``"max_minutes"``), :class:`History` (``history.csv``, ``training_curve.png``), then any
callbacks given to ``fit``, then :class:`StopAgreement` (distributed runs: every rank
follows rank 0's decision). Only rank 0 gets the callbacks that write files. With a
scheduler that steps on the validation score (``plateau``), :class:`MetricScheduler` comes
first.
"""

from __future__ import annotations

import csv
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import torch

from .distributed import DistInfo

if TYPE_CHECKING:
    from ..core.spec import ExperimentConfig

__all__ = [
    "CURVE_FILE",
    "HISTORY_FILE",
    "BestModelCheckpoint",
    "Callback",
    "EarlyStopping",
    "FitState",
    "History",
    "MetricScheduler",
    "StopAgreement",
    "TimeBudget",
    "improves",
    "plot_history",
    "write_history",
]

HISTORY_FILE = "history.csv"
CURVE_FILE = "training_curve.png"

Mode = Literal["max", "min"]


@dataclass
class FitState:
    """Where the fit loop stands; the loop owns it, callbacks read it and may ask to stop.

    Attributes:
        max_epochs: the epoch limit of the run.
        iterations_per_epoch: training steps an epoch is meant to have.
        epoch: the current epoch, 1-based (0 before the first).
        step: training steps done in the current epoch.
        row: the current epoch's history row (``epoch``, ``train_loss``, ``lr``, then
            ``val_<metric>`` and ``seconds``); complete from ``on_epoch_end`` on.
        metrics: this epoch's validation metrics (empty when it was not validated).
        history: the rows of the epochs so far (``history.csv``).
        validate_now: whether this epoch will be validated (the loop's schedule; a
            callback may set it in ``on_train_epoch_end``).
        stop_reason: the first stop asked for, or None.
        data_wait: the fraction of this epoch's training time spent waiting for batches
            (the rest is the steps themselves); ``data_wait`` in ``history.csv``.
        loss: the last training step's loss (NaN before the first step).
    """

    max_epochs: int
    iterations_per_epoch: int
    epoch: int = 0
    step: int = 0
    row: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    validate_now: bool = False
    stop_reason: str | None = None
    data_wait: float = 0.0
    loss: float = float("nan")

    def begin_epoch(self, epoch: int) -> None:
        """Reset the per-epoch fields for ``epoch``."""
        self.epoch, self.step, self.data_wait = epoch, 0, 0.0
        self.row, self.metrics, self.validate_now = {}, {}, False

    def request_stop(self, reason: str) -> None:
        """Ask the loop to stop; the first reason asked for is kept."""
        if self.stop_reason is None:
            self.stop_reason = reason

    @property
    def stop_requested(self) -> bool:
        return self.stop_reason is not None


class Callback:
    """Base class: every hook does nothing; override the ones you need."""

    def on_fit_start(self, state: FitState) -> None:
        """Once, before the first epoch."""

    def on_step_end(self, state: FitState) -> None:
        """After each training step (``state.step`` counts them within the epoch)."""

    def on_train_epoch_end(self, state: FitState) -> None:
        """After the epoch's training steps and the LR scheduler step, before validation."""

    def on_validation_end(self, state: FitState, metrics: Mapping[str, float]) -> None:
        """After validation, with its metrics (rank 0, validation epochs only)."""

    def on_epoch_end(self, state: FitState) -> None:
        """After the epoch's row was appended to ``state.history``."""

    def on_fit_end(self, state: FitState) -> None:
        """Once, after the last epoch."""

    def on_resume(self, state: FitState) -> None:
        """A resumed run: after :meth:`on_fit_start` and :meth:`load_state_dict`, before
        the first new epoch (``state.epoch`` is the last completed one); may ask to stop."""

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint keeps of this callback for an exact resume (plain data)."""
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""


def improves(value: float, best: float | None, mode: Mode = "max") -> bool:
    """Whether ``value`` beats ``best`` (None: nothing to beat); ``mode`` ``"min"`` when
    lower is better. NaN never improves on a number."""
    if best is None:
        return True
    return value > best if mode == "max" else value < best


class BestModelCheckpoint(Callback):
    """Selects the best model by a validation metric and writes the checkpoints.

    ``best.pt`` is written whenever the validation value of ``monitor`` improves (without
    validation, ``validates=False``, every epoch is the best: ``best.pt`` holds the latest
    weights); ``last.pt`` is written after every epoch.

    Args:
        save: ``save(name, epoch, metrics, best) -> Path`` writes one checkpoint
            (the trainer's own, which knows the model, optimizer and metadata).
        monitor: the validation metric that picks the best model.
        mode: ``"max"`` when higher is better, ``"min"`` when lower is.
        validates: whether the run has validation cases.

    Attributes:
        best: the best value of ``monitor`` so far (None before any validation).
        best_epoch: the epoch ``best.pt`` holds (None before it is written).
    """

    def __init__(
        self,
        save: Callable[[str, int, Mapping[str, float], float | None], Path],
        monitor: str = "dice",
        mode: Mode = "max",
        validates: bool = True,
    ) -> None:
        self.save = save
        self.monitor = monitor
        self.mode = mode
        self.validates = validates
        self.best: float | None = None
        self.best_epoch: int | None = None

    def on_validation_end(self, state: FitState, metrics: Mapping[str, float]) -> None:
        value = metrics[self.monitor]
        if improves(value, self.best, self.mode):
            self.best, self.best_epoch = value, state.epoch

    def on_epoch_end(self, state: FitState) -> None:
        if not self.validates:
            self.best_epoch = state.epoch  # no validation: the best model is the latest
        if self.best_epoch == state.epoch:
            self.save("best.pt", state.epoch, state.metrics, self.best)
        self.save("last.pt", state.epoch, state.metrics, self.best)

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_epoch": self.best_epoch}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.best, self.best_epoch = state.get("best"), state.get("best_epoch")


class EarlyStopping(Callback):
    """Stops with ``"patience"`` after ``patience`` validations without improvement of
    ``monitor`` (checked at the end of every epoch)."""

    def __init__(self, patience: int, monitor: str = "dice", mode: Mode = "max") -> None:
        self.patience = int(patience)
        self.monitor = monitor
        self.mode = mode
        self.best: float | None = None
        self.since_best = 0

    def on_validation_end(self, state: FitState, metrics: Mapping[str, float]) -> None:
        value = metrics[self.monitor]
        if improves(value, self.best, self.mode):
            self.best, self.since_best = value, 0
        else:
            self.since_best += 1

    def on_epoch_end(self, state: FitState) -> None:
        if self.since_best >= self.patience:
            state.request_stop("patience")

    on_resume = on_epoch_end  # a run that had run out of patience stays stopped

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "since_best": self.since_best}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.best, self.since_best = state.get("best"), int(state.get("since_best", 0))


class TimeBudget(Callback):
    """Stops with ``"max_minutes"`` once ``max_minutes`` of wall time have passed.

    Checked after every training step: the run stops at the first step past the budget
    (that epoch is cut short). Checked again when an epoch's steps are done: past the
    budget, that epoch is validated and the run stops after it, unless it was the last
    epoch anyway (then the reason stays ``"max_epochs"``).

    A resumed run counts the minutes its earlier sessions used (the budget is the run's,
    not the session's); raise ``trainer.max_minutes`` to give a resumed run more time.

    Args:
        max_minutes: the wall-clock budget, from ``on_fit_start``.
        clock: seconds, monotonic (``time.perf_counter``; replaceable for tests).
    """

    def __init__(self, max_minutes: float, clock: Callable[[], float] = time.perf_counter) -> None:
        self.max_minutes = float(max_minutes)
        self.clock = clock
        self.started = clock()
        self.out_of_time = False

    def elapsed_minutes(self) -> float:
        return (self.clock() - self.started) / 60

    def on_fit_start(self, state: FitState) -> None:
        self.started = self.clock()

    def on_step_end(self, state: FitState) -> None:
        last_step = state.epoch >= state.max_epochs and state.step >= state.iterations_per_epoch
        if not last_step and self.elapsed_minutes() >= self.max_minutes:
            state.request_stop("max_minutes")

    def on_train_epoch_end(self, state: FitState) -> None:
        self.out_of_time = self.elapsed_minutes() >= self.max_minutes
        if self.out_of_time:
            state.validate_now = True  # the last epoch's weights get scored

    def on_epoch_end(self, state: FitState) -> None:
        if self.out_of_time and state.epoch < state.max_epochs:
            state.request_stop("max_minutes")

    def minutes_left(self) -> float:
        return self.max_minutes - self.elapsed_minutes()

    def state_dict(self) -> dict[str, Any]:
        return {"elapsed_minutes": self.elapsed_minutes()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """The minutes used before the resume count against the budget."""
        self.started = self.clock() - 60 * float(state.get("elapsed_minutes", 0.0))

    def on_resume(self, state: FitState) -> None:
        if state.epoch < state.max_epochs and self.elapsed_minutes() >= self.max_minutes:
            state.request_stop("max_minutes")


def _to_stderr(text: str) -> None:
    print(text, file=sys.stderr)


class History(Callback):
    """Writes ``history.csv`` after every epoch and ``training_curve.png`` at the end.

    Args:
        run_dir: the run folder.
        monitor: the validation metric drawn beside the training loss.
        log: where a one-line note goes when the plot is skipped.
        title: the curve's title (the experiment's name; default: the run folder's name).
    """

    def __init__(self, run_dir: Path, monitor: str = "dice", log: Callable[[str], None] | None = None,
                 title: str | None = None) -> None:
        self.run_dir = Path(run_dir)
        self.monitor = monitor
        self.log = log or _to_stderr
        self.title = title or self.run_dir.name

    def on_epoch_end(self, state: FitState) -> None:
        write_history(state.history, self.run_dir / HISTORY_FILE)

    def on_fit_end(self, state: FitState) -> None:
        try:
            import matplotlib

            matplotlib.use("Agg", force=False)
        except ImportError:
            self.log(f"{CURVE_FILE} skipped: matplotlib not installed (pip install 'medimg[plots]')")
            return
        plot_history(state.history, self.monitor, self.run_dir / CURVE_FILE, title=self.title)


def training_info(cfg: "ExperimentConfig") -> dict[str, Any]:
    """The checkpoint's ``training`` entry from the config, for segmentation and
    classification alike: experiment name, seed, epochs, and the cross-validation fold
    (absent outside cross-validation)."""
    info = {"experiment": cfg.experiment.name, "seed": cfg.experiment.seed, "max_epochs": cfg.trainer.max_epochs}
    return info if cfg.data.fold is None else {**info, "fold": cfg.data.fold}


def curve_title(training_info: Mapping[str, Any]) -> str | None:
    """The curve's title: the experiment's name (and the fold, in cross-validation)."""
    name, fold = training_info.get("experiment"), training_info.get("fold")
    return None if name is None else f"{name}" + (f" (fold {fold})" if fold is not None else "")


def write_history(history: list[dict[str, Any]], path: Path) -> None:
    """One CSV row per epoch; columns in order of first appearance, ``seconds`` last."""
    fields: list[str] = []
    for row in history:
        fields.extend(k for k in row if k not in fields)
    fields = [f for f in fields if f != "seconds"] + ["seconds"]
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=fields)
        w.writeheader()
        for row in history:
            w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})


def plot_history(history: list[dict[str, Any]], monitor: str, out: Path, title: str = "") -> Path:
    """Train loss (left axis) and validation ``monitor`` (right axis) per epoch, as PNG.

    Drawn on a bare ``Figure`` (no pyplot state: safe beside other threads) with fixed
    margins (no ``tight_layout`` pass: it cost half the drawing time at the end of a run)
    and whole-epoch ticks (no "0.75" epochs; fewer tick labels to lay out on short runs)."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(6, 3.5), dpi=100)
    ax = fig.add_subplot()
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    ax.plot([r["epoch"] for r in history], [r["train_loss"] for r in history], "o-", color="tab:blue", label="train loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("train loss", color="tab:blue")
    key = f"val_{monitor}"
    pts = [(r["epoch"], r[key]) for r in history if key in r]
    if pts:
        ax2 = ax.twinx()
        ax2.plot([p[0] for p in pts], [p[1] for p in pts], "s-", color="tab:orange", label=key)
        ax2.set_ylabel(f"validation {monitor}", color="tab:orange")
        if all(0 <= p[1] <= 1 for p in pts):  # a score in [0, 1] (Dice...): show the whole range
            ax2.set_ylim(0, 1)
    ax.set_title(title)
    fig.subplots_adjust(left=0.13, right=0.87, bottom=0.15, top=0.9)
    fig.savefig(out)
    return out


class MetricScheduler(Callback):
    """Steps a scheduler that follows the validation score (``scheduler: {name: plateau}``).

    After each validation, ``scheduler.step(score)`` with the score of ``monitor``, negated
    when lower is better (``mode="min"``: the scheduler always maximises), and the epoch's
    ``lr`` in ``history.csv`` becomes the next epoch's, as with the per-epoch schedulers.
    Distributed runs validate on rank 0 alone: its learning rates are broadcast to every
    rank at the end of each epoch. The scheduler's own state (best score, bad epochs) is
    saved and resumed with the other schedulers' (``resume.scheduler``).
    """

    def __init__(self, scheduler: Any, monitor: str, mode: Mode = "max", dist: DistInfo | None = None,
                 device: torch.device | None = None) -> None:
        self.scheduler = scheduler
        self.monitor = monitor
        self.mode = mode
        self.dist = dist or DistInfo()
        self.device = device or torch.device("cpu")

    def on_validation_end(self, state: FitState, metrics: Mapping[str, float]) -> None:
        value = float(metrics[self.monitor])
        self.scheduler.step(value if self.mode == "max" else -value)
        if state.row:
            state.row["lr"] = float(self.scheduler.optimizer.param_groups[0]["lr"])

    def on_epoch_end(self, state: FitState) -> None:
        if not self.dist.enabled:
            return
        import torch.distributed as tdist

        groups = self.scheduler.optimizer.param_groups
        lrs = torch.tensor([float(g["lr"]) for g in groups], dtype=torch.float64, device=self.device)
        tdist.broadcast(lrs, 0)
        for g, lr in zip(groups, lrs.tolist()):
            g["lr"] = lr


class StopAgreement(Callback):
    """Distributed runs: every rank follows rank 0's stop decision.

    After every step and every epoch, rank 0's "stop now?" is broadcast; a rank that
    wanted to stop alone carries on, and a rank stopped by rank 0 alone reports
    ``"rank 0"``. Ranks thus run the same steps (DDP's gradient sync needs that). Must be
    the last callback, so it sees every other callback's request. Single process: no-op.
    """

    def __init__(self, dist: DistInfo, device: torch.device) -> None:
        self.dist = dist
        self.device = device

    def _agree(self, state: FitState) -> None:
        if not self.dist.enabled:
            return
        import torch.distributed as tdist

        t = torch.tensor([1.0 if state.stop_requested else 0.0], device=self.device)
        tdist.broadcast(t, 0)
        if t.item() <= 0.5:
            state.stop_reason = None
        else:
            state.request_stop("rank 0")

    def on_step_end(self, state: FitState) -> None:
        self._agree(state)

    def on_epoch_end(self, state: FitState) -> None:
        self._agree(state)

