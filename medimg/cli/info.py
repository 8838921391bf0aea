"""``medimg info PATH``: shape, spacing, orientation, dtype and intensities of an image."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from ..core.errors import DicomSeriesError, ImageReadError
from .app import GantryTilt, UnevenSpacing, _console, _fmt_floats, app


#: Series-level metadata shown by ``info`` when present (no patient identifiers).
_SERIES_KEYS = (
    "format", "modality", "series_instance_uid", "series_uid", "series_description",
    "series_number", "study_instance_uid", "manufacturer", "transfer_syntax",
    "transfer_syntax_uid", "num_files", "num_volumes", "num_slices", "num_frames",
    "slice_spacing", "slice_thickness", "gantry_tilt_deg", "rescale_slope", "rescale_intercept",
    "photometric_interpretation", "notes", "warnings",
)


def image_summary(
    path: str | Path,
    series: str | None = None,
    *,
    gantry_tilt: GantryTilt = "error",
    uneven_spacing: UnevenSpacing = "error",
) -> dict[str, Any]:
    """Read ``path`` (NIfTI file or DICOM series) and summarise it as plain data.

    ``series`` picks one series (a key as listed by ``find_series``) of a DICOM folder
    holding several; ``gantry_tilt`` and ``uneven_spacing`` are ``read_dicom``'s.
    """
    import torch

    from ..io import read_image

    if series is not None or gantry_tilt != "error" or uneven_spacing != "error":
        from ..io import read_dicom

        img = read_dicom(path, series_uid=series, gantry_tilt=gantry_tilt, uneven_spacing=uneven_spacing)
    else:
        img = read_image(path)
    data = img.data
    summary: dict[str, Any] = {
        "path": str(path),
        "kind": img.kind,
        "shape": list(img.shape),
        "channels": img.num_channels,
        "spatial_shape": list(img.spatial_shape),
        "dtype": str(img.dtype).replace("torch.", ""),
        "spacing_mm": [float(s) for s in img.spacing],
        "origin_mm": [float(o) for o in img.origin],
        "axcodes": "".join(img.axcodes),
        "direction": [[round(float(v), 6) for v in row] for row in img.direction],
    }
    if data.numel():
        d = data if data.is_floating_point() else data.to(torch.float64)
        finite = torch.isfinite(d)
        vals = d[finite] if not bool(finite.all()) else d
        summary["intensity"] = {
            "min": float(vals.min()) if vals.numel() else None,
            "max": float(vals.max()) if vals.numel() else None,
            "mean": float(vals.double().mean()) if vals.numel() else None,
            "std": float(vals.double().std()) if vals.numel() > 1 else None,
            "non_finite": int((~finite).sum()),
        }
        if img.kind == "label" or not data.is_floating_point():
            uniq = torch.unique(data)
            if uniq.numel() <= 32:
                summary["values"] = [v.item() for v in uniq]
    meta = {str(k).lower(): v for k, v in (img.meta or {}).items()}
    series = {}
    for key in _SERIES_KEYS:
        v = meta.get(key)
        if v is not None and (isinstance(v, (str, int, float, bool)) or (
            isinstance(v, (list, tuple)) and len(v) <= 20
        )):
            series[key] = v if not isinstance(v, tuple) else list(v)
    if series:
        summary["series"] = series
    return summary


def _in_cli_terms(exc: Any, series: str | None) -> Any:
    """The error, its hint naming this command's options (``--series KEY``)."""
    if series is None and exc.choices:
        return exc.reworded(
            "pick one with `medimg info PATH --series KEY` (first column above), "
            "or convert them all with `medimg convert PATH OUT_DIR`"
        )
    # --series KEY matched no series, or several volume groups: the listing shows the keys
    if series is not None and (exc.choices or (exc.series_uid == series and not exc.files)):
        return exc.reworded("pick one of the keys listed above with `medimg info PATH --series KEY`")
    return exc


@app.command()
def info(
    path: Annotated[Path, typer.Argument(help="A NIfTI file or a DICOM file/folder.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    series: Annotated[
        Optional[str],
        typer.Option("--series", help="Key of the DICOM series to show, where PATH holds several (listed by the error)."),
    ] = None,
    gantry_tilt: Annotated[
        GantryTilt,
        typer.Option(help="DICOM: tilted CT: refuse ('error'), keep every voxel with a sheared affine "
                          "('shear') or resample onto an orthogonal grid ('resample')."),
    ] = "error",
    uneven_spacing: Annotated[
        UnevenSpacing,
        typer.Option(help="DICOM: uneven slice gaps: refuse ('error') or resample to the median spacing."),
    ] = "error",
) -> None:
    """Show an image's shape, spacing, orientation, dtype and intensity range."""
    if not path.exists():
        raise ImageReadError(f"'{path}' does not exist", hint="check the path")
    dicom_only = [o for o, used in (("--series", series is not None), ("--gantry-tilt", gantry_tilt != "error"),
                                     ("--uneven-spacing", uneven_spacing != "error")) if used]
    if dicom_only and path.is_file():
        from ..io.layout import is_nifti_path

        if is_nifti_path(path):
            raise typer.BadParameter(f"applies to DICOM input only; '{path}' is a NIfTI file",
                                     param_hint=dicom_only[0])
    try:
        summary = image_summary(path, series, gantry_tilt=gantry_tilt, uneven_spacing=uneven_spacing)
    except DicomSeriesError as exc:
        raise _in_cli_terms(exc, series) from None
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=escape(str(path)), show_header=False, title_justify="left")
    table.add_column("field", style="bold", no_wrap=True)
    table.add_column("value", overflow="fold")
    table.add_row("kind", summary["kind"])
    table.add_row("shape", f"{tuple(summary['shape'])}  (C, spatial...)")
    table.add_row("dtype", summary["dtype"])
    table.add_row("spacing (mm)", _fmt_floats(summary["spacing_mm"]))
    table.add_row("origin (mm, RAS)", _fmt_floats(summary["origin_mm"], 6))
    table.add_row("axcodes", summary["axcodes"])
    if "intensity" in summary:
        it = summary["intensity"]
        fmt = lambda v: "n/a" if v is None else f"{v:.6g}"  # noqa: E731
        table.add_row(
            "intensity", f"min {fmt(it['min'])}  max {fmt(it['max'])}  mean {fmt(it['mean'])}  std {fmt(it['std'])}"
        )
        if it["non_finite"]:
            table.add_row("non-finite voxels", str(it["non_finite"]))
    if "values" in summary:
        table.add_row("values", ", ".join(str(v) for v in summary["values"]))
    for key, value in summary.get("series", {}).items():
        if isinstance(value, list):
            if not value:
                continue
            value = ", ".join(str(v) for v in value)
        table.add_row(key.replace("_", " "), escape(str(value)))
    _console().print(table)
