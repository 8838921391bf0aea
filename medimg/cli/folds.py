"""``medimg split`` (write a cross-validation split file) and ``medimg cv`` (train every fold)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Optional

import typer

from .app import SetOption, _console, _fmt_metric, _summary_table, app


@app.command()
def split(
    source: Annotated[Path, typer.Argument(metavar="MANIFEST_OR_ROOT", help=(
        "A manifest CSV, a data folder (root/<split>/<case_id>/ or root/<split>/<class>/<file>) or a "
        "classification .npz."))],
    output: Annotated[Path, typer.Option("--output", "-o", help="The split file to write (CSV: case_id, fold, ...).")],
    folds: Annotated[int, typer.Option("--folds", min=2, help="Number of folds.")] = 5,
    group_by: Annotated[Optional[str], typer.Option("--group-by", metavar="COLUMN", help=(
        "Manifest column of the group (e.g. patient_id): a group's cases share one fold."))] = None,
    stratify: Annotated[Optional[str], typer.Option("--stratify", metavar="COLUMN", help=(
        "Column whose values keep their proportions in every fold (e.g. label; for a folder per "
        "class or an npz, label is the class)."))] = None,
    seed: Annotated[int, typer.Option(help="Shuffle seed.")] = 0,
    id_column: Annotated[str, typer.Option("--id-column", metavar="COLUMN", help=(
        "Manifest column naming the cases; a column other than case_id holds image paths whose "
        "file names are the ids."))] = "case_id",
    test_split: Annotated[str, typer.Option("--test-split", metavar="NAME", help=(
        "Split value (manifest split column or folder name) of the test cases, which stay out of the folds."))] = "test",
    layout: Annotated[Literal["auto", "cases", "classes"], typer.Option(help="Folder layout: auto, cases (root/<split>/<case_id>/) or "
                                        "classes (root/<split>/<class>/<file>).")] = "auto",
) -> None:
    """Assign the training and validation cases to folds; write a split file for
    data.split_file (train with --fold K, or every fold with `medimg cv`).

    A group (--group-by) never spans two folds; --stratify keeps each value's share within
    one case per fold (without grouping). Test cases are left out: they stay test."""
    from ..data.fold_sources import fold_table
    from ..data.folds import assign_folds, write_split_file

    table = fold_table(source, id_column=id_column, test_split=test_split, layout=layout)
    groups = table.column(group_by, "--group-by") if group_by else None
    strata = table.column(stratify, "--stratify") if stratify else None
    assigned = assign_folds(table.case_ids, folds, groups, strata, seed)
    extra = {k: v for k, v in ((group_by, groups), (stratify, strata)) if k and v is not None}
    write_split_file(output, table.case_ids, assigned, extra)
    rows = [("cases", str(len(table.case_ids))), ("split file", str(output))]
    for k in range(folds):
        idx = [i for i, f in enumerate(assigned) if f == k]
        text = f"{len(idx)} cases"
        if strata is not None:
            counts: dict[str, int] = {}
            for i in idx:
                counts[strata[i]] = counts.get(strata[i], 0) + 1
            text += " (" + ", ".join(f"{v}: {counts[v]}" for v in sorted(counts)) + ")"
        if groups is not None:
            text += f", {len({groups[i] for i in idx})} groups"
        rows.append((f"fold {k}", text))
    _console().print(_summary_table(f"{folds} folds of {source}", rows))


@app.command()
def cv(
    config: Annotated[Path, typer.Argument(help="The experiment's YAML config, with data.split_file set.")],
    overrides: SetOption = None,
    output_dir: Annotated[
        Optional[Path],
        typer.Option("--output-dir", "-o", help="Cross-validation folder (default: experiment.output_dir); "
                     "fold K runs in OUTPUT_DIR/fold_K."),
    ] = None,
    folds: Annotated[Optional[str], typer.Option("--folds", metavar="K,K,...", help=(
        "Run only these folds (comma-separated; default: all)."))] = None,
) -> None:
    """Train every fold of data.split_file (fold K validates, the others train, test stays
    test) and write cv_summary.csv/json: each fold's best validation score and their mean
    with a 95% t-based confidence interval."""
    from ..config import load_config
    from ..core.errors import ConfigError

    cfg = load_config(config, overrides or ())
    if cfg.data.split_file is None:
        raise ConfigError(f"{config}: data.split_file is not set, so there are no folds to run",
                          hint="write a split file with `medimg split MANIFEST_OR_ROOT --folds 5 -o splits.csv` "
                          "and set data.split_file (or --set data.split_file=splits.csv)")
    chosen = None
    if folds:
        try:
            chosen = [int(x) for x in folds.split(",") if x.strip()]
        except ValueError:
            raise ConfigError(f"--folds '{folds}' is not a comma-separated list of fold numbers",
                              hint="write e.g. --folds 0,2") from None
    from ..engine import cross_validate
    from .app import progress_enabled

    result = cross_validate(cfg, output_dir=output_dir, config_path=config, folds=chosen, progress=progress_enabled())
    rows = [(f"fold {f.fold}", f"{_fmt_metric(f.best_metric)} (epoch {f.best_epoch})") for f in result.folds]
    p = result.pooled
    rows.append(("mean", f"{_fmt_metric(p['mean'])}, 95% CI {_fmt_metric(p['ci_low'])} to "
                 f"{_fmt_metric(p['ci_high'])} ({p['ci_method']})"))
    rows.append(("summary", str(result.run_dir / "cv_summary.csv")))
    _console().print(_summary_table(f"cross-validation of {cfg.experiment.name}: best validation {result.metric}", rows))
