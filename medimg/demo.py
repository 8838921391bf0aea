"""``medimg demo``: the whole path on built-in synthetic data, no download needed.

1. writes a small synthetic two-channel 3D data set with known labels
   (:func:`medimg.data.make_synthetic_segmentation`: LPS, anisotropic, so orientation and
   its inversion are exercised) under ``OUTPUT_DIR/data``;
2. trains from the packaged ``demo.yaml`` (identical to the repository's
   ``configs/demo.yaml``) into ``OUTPUT_DIR/run`` for about two minutes of CPU;
3. predicts the test split with ``best.pt`` into ``OUTPUT_DIR/predictions``;
4. evaluates into ``OUTPUT_DIR/eval`` (``metrics.csv``, ``summary.json``: the files
   ``medimg evaluate`` writes);
5. returns a :class:`DemoResult` whose ``format()`` is a one-screen summary.

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

__all__ = ["run_demo", "DemoResult", "demo_config_path", "DEMO_CASES", "DEMO_SHAPE"]

#: Cases per split (train, validation, test) of the demo's synthetic data set.
DEMO_CASES = (12, 3, 6)
#: Voxels per case (at 1 x 1 x 2 mm).
DEMO_SHAPE = (48, 48, 32)


def demo_config_path() -> Path:
    """The packaged ``demo.yaml``."""
    return Path(str(resources.files("medimg") / "configs" / "demo.yaml"))


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

    def format(self) -> str:
        """One-screen summary."""
        ok = "PASS" if self.mean_dice > 0.9 else "below the 0.9 target"
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
            "  test Dice per class: " + ", ".join(f"{k} {v:.4f}" for k, v in self.dice_per_class.items()),
            f"  mean test Dice {self.mean_dice:.4f}  [{ok}]",
            f"  total {sum(self.seconds.values()):.0f} s",
        ]
        for case, msg in self.failed:
            lines.append(f"  failed {case}: {msg}")
        return "\n".join(lines)


def run_demo(
    output_dir: str | os.PathLike = "runs/demo",
    minutes: float | None = None,
    *,
    cases: tuple[int, int, int] = DEMO_CASES,
    shape: tuple[int, int, int] = DEMO_SHAPE,
    seed: int = 0,
    overrides: list[str] | None = None,
    progress: bool = True,
) -> DemoResult:
    """Generate data, train, predict and evaluate; see the module docstring.

    Args:
        output_dir: created if needed; an existing demo there is overwritten.
        minutes: training wall-clock budget (default: the config's ``max_minutes``, 2).
        cases: (train, validation, test) case counts.
        shape: voxels per synthetic case.
        seed: data seed (the training seed is the config's).
        overrides: extra ``KEY=VALUE`` config overrides (as ``medimg train --set``).
        progress: progress bars and per-epoch lines.
    """
    from .config import load_config
    from .data import make_synthetic_segmentation
    from .engine import train
    from .inference import predict_folder
    from .metrics import evaluate_folders

    out = Path(output_dir).absolute()
    out.mkdir(parents=True, exist_ok=True)
    seconds: dict[str, float] = {}

    t0 = time.perf_counter()
    data_dir = make_synthetic_segmentation(out / "data", *cases, shape=shape, seed=seed)
    seconds["data"] = time.perf_counter() - t0

    sets = [f"data.root={data_dir}"]
    if minutes is not None:
        sets.append(f"trainer.max_minutes={float(minutes)}")
    sets += list(overrides or [])
    cfg_path = demo_config_path()
    cfg = load_config(cfg_path, sets)
    t0 = time.perf_counter()
    result = train(cfg, output_dir=out / "run", config_path=cfg_path, progress=progress)
    seconds["train"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    pred_dir = out / "predictions"
    report = predict_folder(result.best_checkpoint, data_dir / "test", pred_dir, device=cfg.trainer.device, progress=progress)
    seconds["predict"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    ev = evaluate_folders(pred_dir, data_dir / "test", out / "eval", metrics=list(cfg.evaluation.metrics),
                          ref_name=cfg.data.label)
    seconds["evaluate"] = time.perf_counter() - t0

    per_case: dict[str, list[float]] = {}
    per_class: dict[str, list[float]] = {}
    background = cfg.data.label_names[0]
    for row in ev.rows:
        if row["metric"] != "dice" or row["label"] == background or row["label"].startswith("_"):
            continue
        per_case.setdefault(row["case_id"], []).append(float(row["value"]))
        per_class.setdefault(row["label"], []).append(float(row["value"]))
    case_means = [sum(v) / len(v) for v in per_case.values()]
    # a missed or failed case counts as Dice 0: the demo must not look better than it is
    n_test = cases[2]
    mean_dice = sum(case_means) / n_test if n_test else float("nan")
    return DemoResult(
        output_dir=out,
        data_dir=Path(data_dir),
        run_dir=result.run_dir,
        predictions_dir=pred_dir,
        eval_dir=out / "eval",
        mean_dice=float(mean_dice),
        dice_per_class={k: sum(v) / len(v) for k, v in per_class.items()},
        best_val_dice=result.best_metric,
        epochs=result.epochs_run,
        stopped_because=result.stopped_because,
        n_test=n_test,
        failed=list(report.failed) + [(k, v) for k, v in ev.failed.items()],
        seconds=seconds,
    )


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
