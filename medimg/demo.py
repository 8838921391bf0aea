"""``medimg demo``: the whole path on built-in synthetic data, no download needed.

1. writes a small synthetic two-channel 3D data set with known labels
   (:func:`medimg.data.make_synthetic_segmentation`: LPS, anisotropic, so orientation and
   its inversion are exercised) under ``OUTPUT_DIR/data``;
2. trains from the packaged ``demo.yaml`` (identical to the repository's
   ``configs/demo.yaml``) into ``OUTPUT_DIR/run`` (400 steps: about a minute of CPU, at
   most the config's two minutes);
3. predicts the test split with ``best.pt`` into ``OUTPUT_DIR/predictions``;
4. evaluates into ``OUTPUT_DIR/eval`` (``metrics.csv``, ``summary.json``: the files
   ``medimg evaluate`` writes);
5. scores a no-learning baseline on the same test cases (:func:`threshold_baseline`: for
   each class the best box of per-channel intensity thresholds, chosen on the training
   split), so the summary shows what the training added;
6. returns a :class:`DemoResult` whose ``format()`` is a one-screen summary.

The config ships inside the package (``medimg/configs/demo.yaml``) so that
``pip install medimg && medimg demo`` works outside a checkout.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

__all__ = [
    "run_demo",
    "DemoResult",
    "demo_config_path",
    "threshold_baseline",
    "ThresholdBaseline",
    "DEMO_CASES",
    "DEMO_SHAPE",
]

#: Cases per split (train, validation, test) of the demo's synthetic data set.
DEMO_CASES = (24, 3, 6)
#: Voxels per case (at 1 x 1 x 2 mm).
DEMO_SHAPE = (48, 48, 32)
#: The demo passes when its mean test Dice is above this ...
TARGET_DICE = 0.9
#: ... and at least this much above the threshold baseline's.
TARGET_MARGIN = 0.25


def demo_config_path() -> Path:
    """The packaged ``demo.yaml``."""
    return Path(str(resources.files("medimg") / "configs" / "demo.yaml"))


# ------------------------------------------------------------------------------------------
# the no-learning baseline
# ------------------------------------------------------------------------------------------
@dataclass
class ThresholdBaseline:
    """The best per-voxel threshold rule of each class and its test Dice.

    Attributes:
        boxes: per foreground class, one ``(low, high)`` per channel: the class is
            predicted where ``low <= x < high`` holds in every channel (``x``: the case's
            z-scored intensity; ``-inf`` / ``inf`` for an open side).
        train_dice: per class, the Dice of its box over all training voxels (the maximum
            the search found).
        dice_per_class: per class, the mean over test cases of the box's Dice.
        mean_dice: mean over test cases of the mean foreground-class Dice (the figure
            comparable to :attr:`DemoResult.mean_dice`).
    """

    boxes: dict[str, list[tuple[float, float]]]
    train_dice: dict[str, float]
    dice_per_class: dict[str, float]
    mean_dice: float


def _zscored_voxels(sample: Any) -> tuple[Any, Any]:
    """``(voxels, channels)`` z-scored intensities (per case and channel, as the demo's
    ``normalize_intensity`` does) and the ``(voxels,)`` label values of a sample."""
    import numpy as np

    x = sample["image"].data.numpy().reshape(sample["image"].shape[0], -1).astype(np.float64)
    x = (x - x.mean(1, keepdims=True)) / np.maximum(x.std(1, keepdims=True), 1e-8)
    return x.T, sample["label"].data.numpy().reshape(-1)


def _interval_sums(counts: Any) -> Any:
    """Sum of ``counts`` (one axis per channel, one entry per intensity bin) over every
    box of bins: each axis of length ``n`` becomes one of length ``n (n + 1) / 2``, the
    intervals ``[a, b)`` in :func:`numpy.triu_indices` order."""
    import numpy as np

    for d in range(counts.ndim):
        c = np.cumsum(counts, axis=d)
        c = np.concatenate([np.zeros_like(c.take([0], axis=d)), c], axis=d)
        lo, hi = np.triu_indices(c.shape[d], 1)
        counts = c.take(hi, axis=d) - c.take(lo, axis=d)
    return counts


def best_threshold_box(x: Any, target: Any, bins: int = 48) -> tuple[list[tuple[float, float]], float]:
    """The box ``low_c <= x_c < high_c`` (every channel ``c``) with the highest Dice
    against ``target``, searched exhaustively over ``bins`` quantile bins per channel.

    Args:
        x: ``(voxels, channels)`` intensities.
        target: ``(voxels,)`` boolean reference.
        bins: bins per channel (edges at quantiles of all voxels' and of the target's
            intensities, half each); the search visits about
            ``(bins (bins + 1) / 2) ** channels`` boxes.

    Returns:
        ``[(low, high)]`` per channel (``-inf`` / ``inf`` for an open side) and its Dice.
    """
    import numpy as np

    n_ch = x.shape[1]
    q = np.linspace(0, 1, bins // 2 + 1)
    # half the edges at quantiles of all voxels, half at those of the target's (its minimum
    # and maximum included), so the bins are fine where the target's intensities are even
    # when it is a small fraction of the voxels
    edges = [np.unique(np.concatenate([np.quantile(x[:, c], q[1:-1]), np.quantile(x[target, c], q)]))
             for c in range(n_ch)]
    shape = [len(e) + 1 for e in edges]
    flat = np.ravel_multi_index([np.digitize(x[:, c], edges[c]) for c in range(n_ch)], shape)
    size = int(np.prod(shape))
    every = _interval_sums(np.bincount(flat, minlength=size).reshape(shape).astype(np.float64))
    hits = _interval_sums(np.bincount(flat[target], minlength=size).reshape(shape).astype(np.float64))
    dice = 2.0 * hits / np.maximum(every + float(target.sum()), 1.0)
    best = np.unravel_index(int(np.argmax(dice)), dice.shape)
    box = []
    for c in range(n_ch):
        lo, hi = np.triu_indices(shape[c] + 1, 1)
        a, b = int(lo[best[c]]), int(hi[best[c]])  # bins a .. b-1
        box.append((float(edges[c][a - 1]) if a > 0 else -np.inf, float(edges[c][b - 1]) if b < shape[c] else np.inf))
    return box, float(dice[best])


def _in_box(x: Any, box: list[tuple[float, float]]) -> Any:
    """Voxels of ``x`` (``(voxels, channels)``) inside the box."""
    import numpy as np

    inside = np.ones(x.shape[0], bool)
    for c, (lo, hi) in enumerate(box):
        inside &= (x[:, c] >= lo) & (x[:, c] < hi)
    return inside


def threshold_baseline(data: Any) -> ThresholdBaseline:
    """Score the best no-learning rule on the test split of a data section.

    For each foreground class, :func:`best_threshold_box` picks the box of per-channel
    thresholds (a low and a high bound per channel, either may be open, so a single
    global threshold is one of the candidates) with the highest Dice over all training
    voxels, on per-case z-scored intensities (the demo model's input). Each class's box
    is then scored on each test case on its own (generous to the baseline: overlaps
    between the classes' boxes are not resolved).

    Args:
        data: the data section (``cfg.data``) of a labelled ``train`` and ``test`` split.
    """
    import numpy as np

    from .data import load_cases, load_sample

    cases = load_cases(data)
    train = [_zscored_voxels(load_sample(r, data)) for r in cases["train"]]
    x = np.concatenate([t[0] for t in train])
    y = np.concatenate([t[1] for t in train])
    names = list(data.label_names)[1:]
    boxes, train_dice = {}, {}
    for k, name in enumerate(names, start=1):
        boxes[name], train_dice[name] = best_threshold_box(x, y == k, bins=64 if x.shape[1] <= 2 else 16)
    per_class: dict[str, list[float]] = {n: [] for n in names}
    case_means = []
    for rec in cases["test"]:
        xt, yt = _zscored_voxels(load_sample(rec, data))
        scores = []
        for k, name in enumerate(names, start=1):
            pred, ref = _in_box(xt, boxes[name]), yt == k
            total = int(pred.sum() + ref.sum())
            scores.append(1.0 if total == 0 else 2.0 * int((pred & ref).sum()) / total)
            per_class[name].append(scores[-1])
        case_means.append(sum(scores) / len(scores))
    return ThresholdBaseline(
        boxes=boxes,
        train_dice=train_dice,
        dice_per_class={n: float(np.mean(v)) for n, v in per_class.items()},
        mean_dice=float(np.mean(case_means)) if case_means else float("nan"),
    )


@dataclass
class DemoResult:
    """What the demo produced.

    Attributes:
        output_dir: root of everything below.
        data_dir: the synthetic data set.
        run_dir: training run (checkpoints, history, curve, resolved config).
        predictions_dir: predicted label maps of the test split.
        eval_dir: ``metrics.csv``, ``summary.json``.
        mean_dice: mean over test cases of the mean foreground-class Dice.
        dice_per_class: mean test Dice of each foreground class.
        best_val_dice: best validation Dice during training.
        epochs: epochs trained; seconds: wall time of each stage.
        baseline: the no-learning threshold baseline on the same test cases
            (:func:`threshold_baseline`), None when skipped.
    """

    output_dir: Path
    data_dir: Path
    run_dir: Path
    predictions_dir: Path
    eval_dir: Path
    mean_dice: float
    dice_per_class: dict[str, float]
    best_val_dice: float | None
    epochs: int
    stopped_because: str
    n_test: int
    failed: list[tuple[str, str]] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    baseline: ThresholdBaseline | None = None

    def format(self) -> str:
        """One-screen summary."""
        base = self.baseline
        ok = "PASS" if self.passed else f"below the target: Dice > {TARGET_DICE} and baseline + {TARGET_MARGIN}"
        lines = [
            "medimg demo: synthetic 2-channel 3D segmentation (LPS, 1x1x2 mm)",
            f"  data         {self.data_dir}",
            f"  training     {self.epochs} epochs in {self.seconds.get('train', 0):.0f} s "
            f"(stopped: {self.stopped_because}), best validation Dice "
            + ("n/a" if self.best_val_dice is None else f"{self.best_val_dice:.4f}"),
            f"  checkpoint   {self.run_dir / 'best.pt'}",
            f"  predictions  {self.predictions_dir} ({self.n_test - len(self.failed)}/{self.n_test} cases, "
            f"{self.seconds.get('predict', 0):.1f} s)",
            f"  evaluation   {self.eval_dir / 'metrics.csv'}, {self.eval_dir / 'summary.json'}",
            "  test Dice per class:          " + ", ".join(f"{k} {v:.4f}" for k, v in self.dice_per_class.items()),
        ]
        if base is not None:
            lines += [
                "  threshold baseline per class: "
                + ", ".join(f"{k} {v:.4f}" for k, v in base.dice_per_class.items()),
                "    (no learning: per class the best low/high threshold on each channel, chosen on",
                "    the training split's z-scored intensities, scored on the same test cases)",
            ]
        lines += [
            f"  mean test Dice {self.mean_dice:.4f}"
            + ("" if base is None else f", threshold baseline {base.mean_dice:.4f}") + f"  [{ok}]",
            f"  total {sum(self.seconds.values()):.0f} s",
        ]
        for case, msg in self.failed:
            lines.append(f"  failed {case}: {msg}")
        return "\n".join(lines)

    @property
    def passed(self) -> bool:
        """The demo's promise: mean test Dice above :data:`TARGET_DICE` and at least
        :data:`TARGET_MARGIN` above the threshold baseline (when it was computed)."""
        margin_ok = self.baseline is None or self.mean_dice >= self.baseline.mean_dice + TARGET_MARGIN
        return self.mean_dice > TARGET_DICE and margin_ok


def _train_demo(
    out: Path, data_dir: Path, minutes: float | None, overrides: list[str] | None, progress: bool
) -> tuple[Any, Any]:
    """Load the shipped demo config for ``data_dir`` (with the overrides) and train it into
    ``out/run``; returns ``(config, TrainResult)``."""
    from .config import load_config
    from .engine import train

    # the demo predicts and scores the test split itself (steps 3 and 4): training need not
    sets = [f"data.root={data_dir}", "evaluation.test=false"]
    if minutes is not None:
        sets.append(f"trainer.max_minutes={float(minutes)}")
    sets += list(overrides or [])
    cfg_path = demo_config_path()
    cfg = load_config(cfg_path, sets)
    return cfg, train(cfg, output_dir=out / "run", config_path=cfg_path, progress=progress)


def run_demo(
    output_dir: str | os.PathLike = "runs/demo",
    minutes: float | None = None,
    *,
    cases: tuple[int, int, int] = DEMO_CASES,
    shape: tuple[int, int, int] = DEMO_SHAPE,
    seed: int = 0,
    overrides: list[str] | None = None,
    progress: bool = True,
    baseline: bool = True,
) -> DemoResult:
    """Generate data, train, predict, evaluate and score the baseline; see the module docstring.

    Args:
        output_dir: created if needed; an earlier demo there is replaced (its ``data``,
            ``run``, ``predictions`` and ``eval`` folders are deleted first); a folder
            that holds such folders not written by the demo is refused.
        minutes: training wall-clock budget (default: the config's ``max_minutes``, 2).
        cases: (train, validation, test) case counts.
        shape: voxels per synthetic case.
        seed: data seed (the training seed is the config's).
        overrides: extra ``KEY=VALUE`` config overrides (as ``medimg train --set``).
        progress: progress bars and per-epoch lines.
        baseline: also score the threshold baseline (:func:`threshold_baseline`).
    """
    from .data import make_synthetic_segmentation
    from .inference import predict_folder
    from .metrics import evaluate_folders

    out = _prepare_output(Path(output_dir).absolute())
    seconds: dict[str, float] = {}

    t0 = time.perf_counter()
    data_dir = make_synthetic_segmentation(out / "data", *cases, shape=shape, seed=seed)
    seconds["data"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    cfg, result = _train_demo(out, Path(data_dir), minutes, overrides, progress)
    seconds["train"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    pred_dir = out / "predictions"
    report = predict_folder(result.best_checkpoint, data_dir / "test", pred_dir, device=cfg.trainer.device, progress=progress)
    seconds["predict"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    ev = evaluate_folders(pred_dir, data_dir / "test", out / "eval", metrics=list(cfg.evaluation.metrics),
                          ref_name=cfg.data.label)
    seconds["evaluate"] = time.perf_counter() - t0

    base = None
    if baseline:
        t0 = time.perf_counter()
        base = threshold_baseline(cfg.data)
        seconds["baseline"] = time.perf_counter() - t0

    mean_dice, per_class = _test_dice(ev.rows, cfg.data.label_names[0], cases[2])
    return DemoResult(
        output_dir=out,
        data_dir=Path(data_dir),
        run_dir=result.run_dir,
        predictions_dir=pred_dir,
        eval_dir=out / "eval",
        mean_dice=mean_dice,
        dice_per_class=per_class,
        best_val_dice=result.best_metric,
        epochs=result.epochs_run,
        stopped_because=result.stopped_because,
        n_test=cases[2],
        failed=list(report.failed) + [(k, v) for k, v in ev.failed.items()],
        seconds=seconds,
        baseline=base,
    )


#: marks a folder written by :func:`run_demo`, whose stages' folders it may replace
DEMO_MARKER = ".medimg-demo"
_STAGES = ("data", "run", "predictions", "eval")


def _prepare_output(out: Path) -> Path:
    """Create ``out``, or clear the stage folders of an earlier demo in it.

    An earlier demo's cases, predictions and scores would otherwise mix with the new
    ones (a changed case count leaves case ids in two splits). Only a folder that
    :func:`run_demo` marked is cleared; elsewhere existing stage folders stop the demo.
    """
    import shutil

    from .core.errors import MedimgError

    marked = (out / DEMO_MARKER).is_file()
    present = [n for n in _STAGES if (out / n).exists()]
    if present and not marked:
        raise MedimgError(
            f"--output-dir {out} already holds {', '.join(present)}, not written by medimg demo",
            hint="give an empty or new --output-dir",
        )
    for name in present:
        shutil.rmtree(out / name)
    out.mkdir(parents=True, exist_ok=True)
    (out / DEMO_MARKER).write_text("written by medimg demo; its data, run, predictions and eval are replaced on rerun\n")
    return out


def _test_dice(rows: list[dict[str, Any]], background: str, n_test: int) -> tuple[float, dict[str, float]]:
    """Mean over test cases of the mean foreground-class Dice, and the mean Dice per
    class, from the rows of :func:`~medimg.metrics.evaluate_folders`."""
    per_case: dict[str, list[float]] = {}
    per_class: dict[str, list[float]] = {}
    for row in rows:
        if row["metric"] != "dice" or row["label"] == background or row["label"].startswith("_"):
            continue
        per_case.setdefault(row["case_id"], []).append(float(row["value"]))
        per_class.setdefault(row["label"], []).append(float(row["value"]))
    case_means = [sum(v) / len(v) for v in per_case.values()]
    # a missed or failed case counts as Dice 0: the demo must not look better than it is
    mean_dice = sum(case_means) / n_test if n_test else float("nan")
    return float(mean_dice), {k: sum(v) / len(v) for k, v in per_class.items()}


def _main(argv: list[str] | None = None) -> Any:  # pragma: no cover - python -m medimg.demo
    import argparse

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--output-dir", default="runs/demo")
    p.add_argument("--minutes", type=float, default=None)
    a = p.parse_args(argv)
    res = run_demo(a.output_dir, a.minutes)
    print(res.format())
    return res


if __name__ == "__main__":  # pragma: no cover
    _main()
