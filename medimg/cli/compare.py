"""``medimg compare PRED_A PRED_B REF``: is model B better than model A on the same cases?

Two sets of label maps and references (each a folder, a file or a manifest CSV, as for
``medimg evaluate``) are compared as segmentations; two ``predictions.csv`` and a label CSV
as classifications (:mod:`medimg.metrics.compare`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..core.errors import DataError
from .app import EXIT_FAILURE, _check_names, _console, _split_list, app
from .conventions import EmptyOption, SurfaceOption, segmentation_conventions
from .evaluate import _Workers, check_inputs, is_predictions_csv


@app.command()
def compare(
    pred_a: Annotated[Path, typer.Argument(help="Model A: a folder of label maps, or its predictions.csv.")],
    pred_b: Annotated[Path, typer.Argument(help="Model B: same kind as PRED_A.")],
    ref: Annotated[
        Path, typer.Argument(help="References: a folder of label maps, or a label CSV / manifest (case_id, label).")
    ],
    output_dir: Annotated[
        Optional[Path], typer.Option("--output-dir", "-o", help="Write compare.csv and compare.json here.")
    ] = None,
    metrics: Annotated[
        Optional[str],
        typer.Option(help="Segmentation: comma-separated metric names (see `medimg list metrics`; "
                          "default: those of `medimg evaluate`). Classification: auc and accuracy."),
    ] = None,
    bootstrap: Annotated[int, typer.Option(min=0, help="Paired bootstrap resamples for the CIs (0: none).")] = 1000,
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap resampling.")] = 0,
    label_column: Annotated[
        Optional[str], typer.Option(help="Classification: the labels' class column. Segmentation: the manifests' "
                                    "label map column (default: label).")
    ] = None,
    split: Annotated[
        Optional[str], typer.Option(help="Classification: compare only the labels' rows of this split.")
    ] = None,
    empty: EmptyOption = "1",
    surface_distance: SurfaceOption = "monai",
    workers: _Workers = None,
) -> None:
    """Paired comparison of two models on the cases both have: per metric, B - A with a
    paired bootstrap CI and a paired test (Wilcoxon signed-rank; DeLong for AUCs).

    Exit 1 if any case was left out (each is listed with the reason).
    """
    csvs = [p.suffix.lower() == ".csv" for p in (pred_a, pred_b, ref)]
    classification = is_predictions_csv(pred_a) or is_predictions_csv(pred_b)
    if classification and not all(csvs):
        raise DataError(
            f"PRED_A, PRED_B and REF must all be CSV files (classification) or all label maps "
            f"(segmentation); got {', '.join(str(p) for p in (pred_a, pred_b, ref))}",
            hint="give two predictions.csv and a label CSV, or two prediction folders and a reference folder",
        )
    paths = {"PRED_A": pred_a, "PRED_B": pred_b, "REF": ref}
    if classification:
        check_inputs(paths, "check the path", {"--workers": workers}, "segmentation label maps")
        from ..metrics.compare_classification import compare_classification

        report = compare_classification(pred_a, pred_b, ref, output_dir, label_column=label_column, split=split,
                                        bootstrap=bootstrap, seed=seed)
    else:
        check_inputs(paths, "check the path", {"--split": split}, "classification (CSV files)")
        names = _split_list(metrics)
        _check_names("--metrics", names, "metrics")
        from ..metrics.compare import compare_segmentation

        report = compare_segmentation(pred_a, pred_b, ref, output_dir, metrics=names, bootstrap=bootstrap,
                                      seed=seed, label_column=label_column or "label", workers=workers,
                                      **segmentation_conventions(empty, surface_distance))
    _console().print(report.format(), markup=False)
    if output_dir is not None:
        _console().print(f"wrote {output_dir / 'compare.csv'} and {output_dir / 'compare.json'}", markup=False)
    if not report.all_ok:
        _console(stderr=True).print(f"error: {len(report.left_out)} case(s) left out of the comparison (listed "
                                    "above)", style="bold red", markup=False)
        raise typer.Exit(EXIT_FAILURE)
