"""``medimg evaluate PRED REF``: per-case, per-class metrics with confidence intervals.

Label maps (folders, NIfTI files, DICOM mask series, DICOM SEG files, or a manifest CSV
naming them) are scored as segmentations; a classifier's ``predictions.csv`` (a CSV with
``prob_<class>`` columns) with a label CSV or manifest as a classification.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Callable, Optional

import typer

from ..core.errors import ConfigError, DataError
from .app import EXIT_FAILURE, _check_names, _console, _split_list, app, progress_enabled
from .conventions import EmptyOption, SurfaceOption, segmentation_conventions

_CLASSIFICATION = "classification (two CSV files)"
# Options of a classification, declared once here to keep the command short.
_LabelColumn = Annotated[
    Optional[str],
    typer.Option(help="Classification: the labels' class column. Segmentation: where PRED or REF is a manifest "
                 "CSV, its column holding each case's label map file (default: label)."),
]
_Workers = Annotated[
    Optional[int],
    typer.Option(min=1, help="Segmentation: processes scoring cases in parallel (default: the cores available); "
                 "the results do not depend on it."),
]
_ResampleTo = Annotated[
    Optional[str],
    typer.Option("--resample-to", metavar="reference",
                 help="Segmentation: resample a prediction that is not on its reference's grid onto it "
                 "(nearest neighbour) instead of failing the case."),
]
_Split = Annotated[
    Optional[str], typer.Option(help="Classification: score only the labels' rows of this split, e.g. test.")
]
_Threshold = Annotated[
    Optional[float],
    typer.Option(
        min=0.0, max=1.0,
        help="Classification (binary, multi-label): decide at this threshold instead of the "
        "predictions' predicted and threshold columns.",
    ),
]
_Metadata = Annotated[
    Optional[Path],
    typer.Option(help="A CSV of case_id and one column per patient attribute, for --subgroup."),
]
_Subgroup = Annotated[
    Optional[str],
    typer.Option(
        help="Comma-separated --metadata columns, e.g. sex,site,age_bin: every metric per "
        "group with its CI and n, the largest gap between groups with its CI, and for binary classification "
        "the TPR and FPR gaps (equal opportunity, equalised odds); written to subgroups.csv and summary.json."
    ),
]
_Images = Annotated[
    Optional[Path],
    typer.Option(
        help="Segmentation: the scans (a folder, cases matched by case id like the references); report.html and "
        "report.md then show the --worst-cases lowest-Dice cases drawn on them. Needs --output-dir."
    ),
]
_WorstCases = Annotated[
    int, typer.Option(min=0, help="Segmentation with --images: how many lowest-Dice cases to draw (0: none).")
]
_ImageName = Annotated[
    Optional[str],
    typer.Option(help="Segmentation with --images: the scan's file name inside each case folder (default: detected)."),
]

_PredDir = Annotated[
    Path,
    typer.Argument(
        help="Predicted label maps: a folder (flat or one folder per case; NIfTI files, DICOM mask series "
        "folders or <case_id>.seg.dcm DICOM SEG files), one such file, or a manifest CSV (case_id, label); "
        "or a classifier's predictions.csv (case_id, prob_<class>..., predicted, threshold)."
    ),
]
_RefDir = Annotated[
    Path,
    typer.Argument(
        help="Reference label maps: as PRED_DIR (a DICOM SEG is placed on the grid of the other side, or of "
        "--images); or, for predictions.csv, a label CSV or manifest (case_id, label)."
    ),
]
_Metrics = Annotated[
    Optional[str],
    typer.Option(
        help="Comma-separated metric names (see `medimg list metrics`; classification: auc, accuracy, "
        "balanced_accuracy, sensitivity, specificity, ppv, npv, f1, ece, brier, nll; default: all)."
    ),
]


@app.command()
def evaluate(
    pred_dir: _PredDir,
    ref_dir: _RefDir,
    output_dir: Annotated[
        Optional[Path], typer.Option("--output-dir", "-o", help="Write metrics.csv, summary.json and plots here.")
    ] = None,
    metrics: _Metrics = None,
    label_names: Annotated[
        Optional[str],
        typer.Option(help="Comma-separated class names, background first (default: PRED_DIR's labels.json)."),
    ] = None,
    bootstrap: Annotated[int, typer.Option(min=0, help="Bootstrap resamples for the CIs (0: none).")] = 1000,
    ref_name: Annotated[
        Optional[str],
        typer.Option(help="Label file name inside each reference case folder (default: detected)."),
    ] = None,
    label_map: Annotated[
        Optional[str],
        typer.Option(
            help="Remap reference values before scoring, e.g. '1:1,2:1,4:1' (unlisted -> 0); "
            "default: the training label map recorded in PRED_DIR (label_map.json)."
        ),
    ] = None,
    allow_absent_classes: Annotated[
        bool,
        typer.Option(help="Score prediction classes that occur in no reference instead of stopping."),
    ] = False,
    label_column: _LabelColumn = None,
    split: _Split = None,
    threshold: _Threshold = None,
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap resampling.")] = 0,
    empty: EmptyOption = "1",
    surface_distance: SurfaceOption = "monai",
    metadata: _Metadata = None,
    subgroup: _Subgroup = None,
    images: _Images = None,
    worst_cases: _WorstCases = 3,
    image_name: _ImageName = None,
    workers: _Workers = None,
    resample_to: _ResampleTo = None,
) -> None:
    """Score predictions against references: per case, per class, with confidence intervals.

    Two CSV files (a classifier's predictions, the labels) are scored as a classification. --output-dir
    also gets report.html (self-contained) and report.md. Exit 1 if any case failed or lacks its
    prediction or reference (all are attempted)."""
    if is_predictions_csv(pred_dir):
        seg_only = {"--label-names": label_names, "--ref-name": ref_name, "--label-map": label_map, "--images": images,
                    "--allow-absent-classes": allow_absent_classes or None, "--image-name": image_name,
                    "--workers": workers, "--resample-to": resample_to}
        return _evaluate_classification(pred_dir, ref_dir, output_dir, metrics, bootstrap, label_column, split,
                                        threshold, seed, seg_only, (metadata, _split_list(subgroup)))
    columns = _subgroup_columns(metadata, _split_list(subgroup))
    metric_names = _split_list(metrics)
    _check_names("--metrics", metric_names, "metrics")  # a misspelt name: usage error, before any work
    if images is not None and output_dir is None:
        raise typer.BadParameter("--images draws the worst cases into the report: give --output-dir too",
                                 param_hint="--images")
    check_inputs({f"prediction {_kind(pred_dir)}": pred_dir, f"reference {_kind(ref_dir)}": ref_dir},
                 "give a folder of label maps, one .nii/.nii.gz or .seg.dcm file, or a manifest CSV",
                 {"--split": split, "--threshold": threshold}, _CLASSIFICATION)
    if resample_to not in (None, "reference"):
        raise typer.BadParameter(f"expected 'reference', got {resample_to!r}", param_hint="--resample-to")
    from ..metrics import evaluate_folders

    with _EvaluateProgress(progress_enabled()) as step:
        report = evaluate_folders(
            pred_dir, ref_dir, output_dir, metrics=metric_names, label_names=_split_list(label_names),
            bootstrap=bootstrap, ref_name=ref_name, label_map=_parse_label_map(label_map),
            progress=step, allow_absent_classes=allow_absent_classes, seed=seed,
            images=images, worst_cases=worst_cases, image_name=image_name, label_column=label_column or "label",
            workers=workers, metadata=metadata, subgroups=columns, resample_to=resample_to,
            interface="cli", **segmentation_conventions(empty, surface_distance),
        )
    _console().print(report.format(), markup=False)
    if not report.all_ok:
        for line in report.problems().splitlines():
            _console(stderr=True).print(f"error: {line}", style="bold red", markup=False)
        raise typer.Exit(EXIT_FAILURE)


def is_predictions_csv(path: Path) -> bool:
    """Whether ``path`` is a classifier's predictions CSV (a ``.csv`` file with a
    ``prob_<class>`` column), not a manifest of label map files."""
    if not _is_csv(path) or not path.is_file():
        return False
    import csv

    with path.open(newline="", encoding="utf-8-sig") as f:
        header = next(csv.reader(f), [])
    return any(col.strip().startswith("prob_") for col in header)


def _subgroup_columns(metadata: Optional[Path], columns: Optional[list[str]]) -> Optional[list[str]]:
    """The --subgroup columns, after checking that --metadata and --subgroup come together."""
    if (metadata is None) != (columns is None):
        given, needed = ("--metadata", "--subgroup") if columns is None else ("--subgroup", "--metadata")
        raise typer.BadParameter(f"{given} needs {needed} (the metadata CSV and the columns to group by)",
                                 param_hint=given)
    return columns


def check_inputs(paths: dict[str, Path], hint: str, options: dict[str, Any], what: str) -> None:
    """The input checks of ``medimg evaluate`` and ``medimg compare``, before any work.

    A usage error naming the ``options`` given (not None) that apply to ``what`` only (the
    other kind of input), then a :class:`DataError` for the first of ``paths`` (``{name in
    the message: path}``) that does not exist, with ``hint``.
    """
    _reject_options(options, what)
    for name, p in paths.items():
        if not p.exists():
            raise DataError(f"{name} '{p}' does not exist", hint=hint)


def _kind(p: Path) -> str:
    return "file" if p.suffix else "folder"


def _is_csv(path: Path) -> bool:
    return path.suffix.lower() == ".csv"


def _reject_options(options: dict[str, Any], what: str) -> None:
    """A usage error naming the options given (not None) that do not apply to ``what``."""
    given = [name for name, value in options.items() if value is not None]
    if given:
        raise typer.BadParameter(f"{', '.join(given)} applies to {what} only", param_hint=given[0])


def _evaluate_classification(
    predictions: Path, labels: Path, output_dir: Optional[Path], metrics: Optional[str], bootstrap: int,
    label_column: Optional[str], split: Optional[str], threshold: Optional[float], seed: int,
    segmentation_options: dict[str, Any], subgroups: tuple[Optional[Path], Optional[list[str]]] = (None, None),
) -> None:
    """``medimg evaluate PREDICTIONS.csv LABELS.csv``: a classifier's predictions scored."""
    metadata, columns = subgroups
    columns = _subgroup_columns(metadata, columns)
    from ..core.errors import DataError

    if not (_is_csv(predictions) and _is_csv(labels)):
        other = labels if _is_csv(predictions) else predictions
        raise DataError(
            f"a classification is scored from two CSV files, but '{other}' is not a .csv file",
            hint="give the predictions.csv of `medimg predict` and a label CSV or manifest; "
            "or two label-map folders for a segmentation",
        )
    _reject_options(segmentation_options, "segmentation label maps")
    from ..metrics import evaluate_classification

    report = evaluate_classification(
        predictions, labels, output_dir, label_column=label_column, split=split, threshold=threshold,
        metrics=_split_list(metrics), bootstrap=bootstrap, seed=seed, metadata=metadata, subgroups=columns,
    )
    _console().print(report.format(), markup=False)
    if not report.all_ok:
        for line in report.problems().splitlines():
            _console(stderr=True).print(f"error: {line}", style="bold red", markup=False)
        raise typer.Exit(EXIT_FAILURE)


class _EvaluateProgress:
    """A context giving ``step(done, total, case_id)`` that drives the shared progress bar."""

    def __init__(self, enabled: bool) -> None:
        from ..inference.progress import progress_bar

        self._bar = progress_bar(enabled)
        self._task: Any = None
        self._started = False

    def __enter__(self) -> Callable[[int, int, str], None]:
        self._bar.__enter__()
        return self._step

    def __exit__(self, *exc: object) -> None:
        self._bar.__exit__(*exc)

    def _step(self, done: int, total: int, case_id: str) -> None:
        if not self._started:
            self._task = self._bar.add_task("evaluate", total=total)
            self._started = True
        self._bar.update(self._task, completed=done, description=f"evaluate {case_id}")


def _parse_label_map(text: Optional[str]) -> Optional[dict[int, int]]:
    """'1:1,2:1' -> {1: 1, 2: 1}; a ConfigError naming the option on bad text."""
    if not text:
        return None
    out: dict[int, int] = {}
    for part in text.split(","):
        try:
            old, new = part.split(":")
            out[int(old)] = int(new)
        except ValueError:
            raise ConfigError(
                f"--label-map: cannot read {part.strip()!r}; expected 'old:new' integer pairs "
                "separated by commas, e.g. '1:1,2:1,4:1'"
            ) from None
    return out
