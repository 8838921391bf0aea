"""What a predicted label map is written as: ``<case_id>.nii.gz`` or a DICOM SEG.

``output_format="nifti"`` (the default, ``medimg predict --format nifti``) writes
``<case_id>.nii.gz`` on the input's own grid. ``output_format="dicom-seg"``
(``--format dicom-seg``) writes ``<case_id>.seg.dcm``, a DICOM Segmentation object
(:func:`medimg.io.dicom_seg.write_dicom_seg`, highdicom: ``pip install 'medimg[dicom-seg]'``)
that references the case's source series (for a multi-channel case, the series of its first
channel, whose grid the prediction is on) with one segment per class, labelled with the
checkpoint's class names. A case whose input is not DICOM (NIfTI, a picture) cannot be
referenced by a SEG: with ``dicom-seg`` it is a failed case saying so, before anything is
predicted; it is not written as NIfTI in its place, so an output folder holds one format.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..core.errors import ConfigError, DataError, require
from ..core.image import Image

__all__ = ["OUTPUT_FORMATS", "check_output_format", "dicom_source", "output_path", "write_prediction"]

#: The label map formats ``predict`` writes.
OUTPUT_FORMATS: tuple[str, ...] = ("nifti", "dicom-seg")


def check_output_format(output_format: str) -> str:
    """``output_format`` normalised (``"nifti"`` or ``"dicom-seg"``).

    Raises:
        ConfigError: any other value.
        MissingDependencyError: ``dicom-seg`` without highdicom (said before any case runs).
    """
    fmt = str(output_format).strip().lower().replace("_", "-")
    if fmt not in OUTPUT_FORMATS:
        raise ConfigError(
            f"output format '{output_format}' is not one of: {', '.join(OUTPUT_FORMATS)}",
            hint="output_format='nifti' (default) or 'dicom-seg'",
            cli_hint="--format nifti (default) or --format dicom-seg",
        )
    if fmt == "dicom-seg":
        require("highdicom", "dicom-seg", "writing DICOM SEG")
    return fmt


def output_path(out: Path, case_id: str, output_format: str = "nifti") -> Path:
    """Where a case's label map goes: ``out/<case_id>.nii.gz`` or ``out/<case_id>.seg.dcm``."""
    from ..io.layout import SEG_SUFFIX

    return out / (f"{case_id}{SEG_SUFFIX}" if output_format == "dicom-seg" else f"{case_id}.nii.gz")


def _case_parts(case: Any) -> tuple[str, list[Any]]:
    """``(case_id, inputs)`` of a found case or a ``(case_id, paths)`` pair."""
    case_id, inputs = case
    if isinstance(inputs, Exception):
        return case_id, []
    return case_id, list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]


def dicom_source(case: Any) -> Any:
    """The DICOM series a case's SEG references: a ``SeriesInfo`` (a study case's first
    channel), a series folder or a DICOM file.

    Raises:
        DataError: the case's input is not DICOM.
    """
    from ..io.dicom import SeriesInfo, is_dicom_file
    from ..io.layout import walk_files

    case_id, inputs = _case_parts(case)
    first = inputs[0] if inputs else None
    if isinstance(first, SeriesInfo):
        return first
    if isinstance(first, (str, Path)):
        p = Path(first)
        if p.is_dir() and any(is_dicom_file(f) for f in walk_files(p)):
            return p
        if p.is_file() and is_dicom_file(p):
            return p
    what = f"'{first}'" if isinstance(first, (str, Path)) else "an image given in memory"
    raise DataError(
        f"case '{case_id}': a DICOM SEG (--format dicom-seg) references a DICOM series, but its input {what} "
        "is not DICOM; predict it with --format nifti (the default)"
    )


def write_prediction(
    label: Image, case: Any, out: Path, output_format: str, label_names: Sequence[str], source: Any = None
) -> Path:
    """Write one case's label map in ``output_format`` (module docstring); returns the path.

    Args:
        label: the predicted ``(1, *spatial)`` label map on the input's grid.
        case: the found case (``(case_id, inputs)``).
        out: the output folder.
        output_format: ``"nifti"`` or ``"dicom-seg"``.
        label_names: class names, index = label value (the SEG's segment labels).
        source: for ``dicom-seg``, the case's :func:`dicom_source` when already known.

    Raises:
        DataError: ``dicom-seg`` for a case whose input is not DICOM.
        GeometryError, ImageWriteError, MissingDependencyError: from the writers.
    """
    case_id, _ = _case_parts(case)
    path = output_path(out, case_id, output_format)
    if output_format != "dicom-seg":
        from ..io import write_image

        write_image(label, path)
        return path
    from ..io.dicom import SeriesInfo, load_series_datasets
    from ..io.dicom_seg import write_dicom_seg

    src = source if source is not None else dicom_source(case)
    if isinstance(src, SeriesInfo):
        src = load_series_datasets(src)
    return write_dicom_seg(label, path, source=src, label_names=list(label_names),
                           series_description=f"medimg segmentation {case_id}"[:64])
