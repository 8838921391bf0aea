"""``medimg train CONFIG``: train a model from a YAML config."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from .app import SetOption, _console, _fmt_metric, _summary_table, app


@app.command()
def train(
    config: Annotated[Path, typer.Argument(help="The experiment's YAML config.")],
    overrides: SetOption = None,
    output_dir: Annotated[
        Optional[Path],
        typer.Option("--output-dir", "-o", help="Run folder (default: experiment.output_dir)."),
    ] = None,
    resume: Annotated[
        Optional[Path],
        typer.Option("--resume", metavar="RUN_DIR", help="Continue the run in RUN_DIR from its last.pt, "
                     "after its last completed epoch (CONFIG must match RUN_DIR/config.resolved.yaml)."),
    ] = None,
    fold: Annotated[
        Optional[int],
        typer.Option("--fold", min=0, metavar="K", help="Validate on fold K of data.split_file (written by "
                     "`medimg split`) and train on the other folds; the test split stays test."),
    ] = None,
    allow_config_change: Annotated[
        bool,
        typer.Option("--allow-config-change", help="With --resume: continue even where CONFIG differs "
                     "from the run's config.resolved.yaml in keys that can change the result."),
    ] = False,
) -> None:
    """Train a model from a config; writes checkpoints, config.resolved.yaml and environment.json.

    A run that died (or ran out of trainer.max_minutes) continues with --resume RUN_DIR."""
    from ..config import load_config

    if fold is not None:
        _check_split_file(config, overrides, fold)
        overrides = [*(overrides or ()), f"data.fold={fold}"]
    cfg = load_config(config, overrides or ())
    from ..engine import train as run_training

    if allow_config_change and resume is None:
        from ..core.errors import ConfigError

        raise ConfigError("--allow-config-change only applies to a resumed run", hint="add --resume RUN_DIR, or leave it out")
    result = run_training(cfg, output_dir=output_dir, config_path=config, resume=resume,
                          allow_config_change=allow_config_change)
    rows = [
        ("run folder", str(getattr(result, "run_dir", ""))),
        ("best checkpoint", str(getattr(result, "best_checkpoint", None))),
        ("last checkpoint", str(getattr(result, "last_checkpoint", None))),
        (f"best {cfg.evaluation.select_by}", _fmt_metric(getattr(result, "best_metric", None))),
    ]
    for extra in ("best_epoch", "epochs_run", "stopped_because"):
        if getattr(result, extra, None) is not None:
            rows.append((extra.replace("_", " "), str(getattr(result, extra))))
    if getattr(result, "seconds", None) is not None:
        rows.append(("training time", f"{float(result.seconds):.1f} s"))
    rows += _test_rows(getattr(result, "test_summary", None), getattr(result, "run_dir", None))
    _console().print(_summary_table(f"trained {cfg.experiment.name}", rows))


def _check_split_file(config: Path, overrides: list[str] | None, fold: int) -> None:
    """--fold needs data.split_file: say so in command-line terms before anything else."""
    from ..config import load_config

    cfg = load_config(config, overrides or ())
    if cfg.data.split_file is None:
        from ..core.errors import ConfigError

        raise ConfigError(f"--fold {fold} needs data.split_file, which {config} does not set",
                          hint="write one with `medimg split MANIFEST_OR_ROOT --folds 5 -o splits.csv`, then "
                          "set data.split_file in the config or add --set data.split_file=splits.csv")


def _test_rows(summary: dict | None, run_dir: Path | None) -> list[tuple[str, str]]:
    """The summary table's test lines: the mean Dice (segmentation) or the AUC and
    accuracy (classification) of the best checkpoint on the test split."""
    if not summary:
        return []
    from ..engine.testsplit import TEST_DIR, mean_dice

    metrics = summary.get("metrics", summary)
    rows = []
    if isinstance(metrics, dict) and ("auc" in metrics or "accuracy" in metrics):
        for name in ("auc", "accuracy"):
            value = metrics.get(name)
            if value is None:
                continue
            rows.append((f"test {name}", _fmt_metric(value.get("value") if isinstance(value, dict) else value)))
    else:
        rows.append(("test mean Dice", _fmt_metric(mean_dice(summary))))
        failed = summary.get("_cases", {}).get("prediction_failed") or {}
        if failed:
            rows.append(("test cases failed", ", ".join(failed)))
    if run_dir is not None:
        rows.append(("test scores", str(Path(run_dir) / TEST_DIR)))
    return rows
