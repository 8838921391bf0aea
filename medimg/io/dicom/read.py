"""Reading: a series -> :class:`~medimg.core.Image` (or one image per volume).

Two functions per entry point, each with one return type:

* :func:`read_dicom` / :func:`read_series` -> one ``Image``; several volumes at the same
  positions (time points, echoes, b-values, phases) are its channels ``(V, I, J, K)``;
* :func:`read_dicom_volumes` / :func:`read_series_volumes` -> ``list[Image]``, one image
  per volume (a one-element list for a single-volume series), each with its own
  ``volume_index``, ``volume_label``, ``sop_instance_uids`` and ``source_frames``.

``read_dicom*`` take a folder or file (discovery included); ``read_series*`` a
:class:`SeriesInfo` from :func:`find_series`.
"""

from __future__ import annotations

import os
from typing import Any, Literal

import numpy as np

from medimg.core.affine import lps_to_ras
from medimg.core.errors import DicomError, DicomSeriesError
from medimg.core.image import Image

from .discover import find_series
from .geometry import _Options, _Plan, _plan_geometry, _series_error
from .pixels import _Decoder, _read_volume, _resample_slices, _resample_tilt
from .records import DicomScan, SeriesInfo, _pydicom

__all__ = ["read_dicom", "read_dicom_volumes", "read_series", "read_series_volumes", "load_series_datasets"]

GantryTilt = Literal["error", "shear", "resample"]
UnevenSpacing = Literal["error", "resample"]


def read_dicom(
    path: str | os.PathLike,
    *,
    series_uid: str | None = None,
    gantry_tilt: GantryTilt = "error",
    uneven_spacing: UnevenSpacing = "error",
    rescale: bool = True,
    min_slices: int = 1,
) -> Image:
    """Read one DICOM series (folder or file) into an :class:`Image`.

    Args:
        path: a folder (searched recursively) or one DICOM file (read alone: a
            multi-frame or mosaic file is a volume, a single-frame file a one-slice one).
        series_uid: which series, by SeriesInstanceUID or ``SeriesInfo.key``; needed
            when the folder holds several.
        gantry_tilt: tilted slice stacks: ``"error"`` (default) raises; ``"shear"``
            keeps every voxel where the scanner put it with a non-orthogonal affine
            (k column = step between slice positions); ``"resample"`` shifts each slice
            in-plane (linear) onto an orthogonal grid.
        uneven_spacing: missing slices or uneven steps: ``"error"`` (default) or
            ``"resample"`` (linear along the slice axis onto the median spacing).
        rescale: apply RescaleSlope/Intercept (modality LUT, e.g. HU for CT).
        min_slices: fewer slices than this is an error.

    Returns:
        ``Image`` with data ``(C, I, J, K)``: I = columns (along the row cosine),
        J = rows (along the column cosine), K = slices (along the normal); affine
        voxel -> RAS mm. Several volumes at the same positions are the channels (in the
        order of ``meta["volume_labels"]``); :func:`read_dicom_volumes` returns them as
        separate images instead.

    Raises:
        DicomSeriesError: several series and no choice, or a geometry problem (names
            the series, the files and the problem).
        DicomError: nothing readable under ``path``.
        MissingDependencyError: a compressed transfer syntax without its codec.
        ValueError: an option outside its choices.
    """
    opt = _Options(gantry_tilt=gantry_tilt, uneven_spacing=uneven_spacing, min_slices=min_slices)
    return _as_channels(*_assemble(_find_one(path, series_uid), opt, rescale))


def read_dicom_volumes(
    path: str | os.PathLike,
    *,
    series_uid: str | None = None,
    gantry_tilt: GantryTilt = "error",
    uneven_spacing: UnevenSpacing = "error",
    rescale: bool = True,
    min_slices: int = 1,
) -> list[Image]:
    """Read one DICOM series as one :class:`Image` per volume (options as :func:`read_dicom`).

    Returns:
        A list with one ``(C, I, J, K)`` image per volume (time point, echo, b-value...),
        in the order of ``meta["volume_labels"]``; a single-volume series gives a
        one-element list. With several volumes each image's ``meta`` has
        ``volume_index``, ``volume_label`` and that volume's ``sop_instance_uids`` and
        ``source_frames``.
    """
    opt = _Options(gantry_tilt=gantry_tilt, uneven_spacing=uneven_spacing, min_slices=min_slices)
    return _as_volumes(*_assemble(_find_one(path, series_uid), opt, rescale))


def read_series(
    info: SeriesInfo,
    *,
    gantry_tilt: GantryTilt = "error",
    uneven_spacing: UnevenSpacing = "error",
    rescale: bool = True,
    min_slices: int = 1,
) -> Image:
    """Assemble a series found by :func:`find_series` into one :class:`Image` (see :func:`read_dicom`)."""
    opt = _Options(gantry_tilt=gantry_tilt, uneven_spacing=uneven_spacing, min_slices=min_slices)
    return _as_channels(*_assemble(info, opt, rescale))


def read_series_volumes(
    info: SeriesInfo,
    *,
    gantry_tilt: GantryTilt = "error",
    uneven_spacing: UnevenSpacing = "error",
    rescale: bool = True,
    min_slices: int = 1,
) -> list[Image]:
    """Assemble a series found by :func:`find_series` as one image per volume (see :func:`read_dicom_volumes`)."""
    opt = _Options(gantry_tilt=gantry_tilt, uneven_spacing=uneven_spacing, min_slices=min_slices)
    return _as_volumes(*_assemble(info, opt, rescale))


# ----------------------------------------------------------------------------------------
# steps
# ----------------------------------------------------------------------------------------


def _find_one(path: str | os.PathLike, series_uid: str | None) -> SeriesInfo:
    """Discovery under ``path``, then the one series asked for (or the only one)."""
    return _select_series(find_series(path, validate=False), str(path), series_uid)


def _select_series(scan: DicomScan, path: str, series_uid: str | None) -> SeriesInfo:
    """The series ``series_uid`` of a scan, or its only image series.

    Raises:
        DicomSeriesError: no such series, an ambiguous UID, a non-image series, or several
            series and no choice (``choices`` lists their keys).
        DicomError: no image series at all.
    """
    if series_uid is not None:
        return _series_by_uid(scan, path, series_uid)
    if not scan.series:
        reasons = "; ".join(f"{os.path.basename(p)}: {r}" for p, r in scan.unreadable[:5])
        extra = f" ({len(scan.non_image)} non-image series: {', '.join(s.modality for s in scan.non_image)})" if scan.non_image else ""
        raise DicomError(
            f"no readable DICOM image series under '{path}' ({scan.num_files} files looked at{extra})"
            + (f"; unreadable files: {reasons}" + (" ..." if len(scan.unreadable) > 5 else "") if reasons else ""),
            hint="check that the folder holds DICOM image files; the reasons files were skipped are listed above")
    if len(scan.series) > 1:
        listing = "\n".join("  " + s.summary() for s in scan.series)
        raise DicomSeriesError(
            f"'{path}' holds {len(scan.series)} DICOM image series; choose one:\n{listing}",
            files=[], choices=[s.key for s in scan.series],
            hint="pass series_uid=KEY (first column above), or convert them all with convert_dicom",
            cli_hint="point to a folder that holds only the series you want (`medimg info PATH --series KEY` "
                     "shows one), or convert them all with `medimg convert`")
    return scan.series[0]


def _series_by_uid(scan: DicomScan, path: str, series_uid: str) -> SeriesInfo:
    """The one image series whose key or SeriesInstanceUID is ``series_uid``."""
    hits = scan.get(series_uid)
    if not hits:
        listing = "\n".join("  " + s.summary() for s in scan.series) or "  (none)"
        raise DicomSeriesError(
            f"no DICOM series {series_uid!r} under '{path}'; the series found are:\n{listing}",
            series_uid=series_uid, choices=[s.key for s in scan.series],
            hint="pass one of the keys above as series_uid", cli_hint="pick one of the keys above with --series KEY")
    if len(hits) > 1:
        listing = "\n".join("  " + s.summary() for s in hits)
        raise DicomSeriesError(
            f"SeriesInstanceUID {series_uid} under '{path}' splits into {len(hits)} volume groups:\n{listing}",
            series_uid=series_uid, choices=[s.key for s in hits],
            hint="pass one of the keys 'UID#n' above as series_uid",
            cli_hint="pick one of the keys 'UID#n' above with --series KEY")
    if not hits[0].is_image:
        raise DicomSeriesError(
            f"DICOM series {series_uid} under '{path}' is {hits[0].error}", series_uid=series_uid,
            files=hits[0].files,
            hint="DICOM SEG objects are read with medimg.io.read_dicom_seg",
            cli_hint="pick an image series with --series KEY")
    return hits[0]


def _assemble(info: SeriesInfo, opt: _Options, rescale: bool) -> tuple[list[np.ndarray], _Plan, np.ndarray, dict[str, Any]]:
    """``(volumes, plan, RAS affine, meta)``: each volume ``(K, rows, cols[, samples])``."""
    if not info.is_image:
        raise _series_error(info, f"not an image series: {info.error}")
    plan = _plan_geometry(info, opt)
    decoder = _Decoder()
    volumes = []
    for frames in plan.order:
        vol = _read_volume(frames, decoder, rescale)
        if plan.resample_positions is not None:
            vol = _resample_slices(vol.astype(np.float32), plan.positions, plan.resample_positions)
        if plan.tilt_shift is not None:
            vol = _resample_tilt(vol, plan.tilt_shift)
        volumes.append(vol)
    return volumes, plan, lps_to_ras(plan.affine_lps), _meta(info, plan, rescale)


def _to_channels(vol: np.ndarray) -> np.ndarray:
    """``(K, rows, cols)`` -> ``(1, I=cols, J=rows, K)`` as a view; colour ``(K, rows, cols, S)`` -> ``(S, I, J, K)``."""
    if vol.ndim == 3:
        return vol.transpose(2, 1, 0)[None]
    return vol.transpose(3, 2, 1, 0)


def _as_channels(volumes: list[np.ndarray], plan: _Plan, affine: np.ndarray, meta: dict[str, Any]) -> Image:
    """One image: the volumes as channels, in one common dtype."""
    if len(volumes) == 1:
        return Image(_to_channels(volumes[0]), affine, meta=meta)
    chans = [_to_channels(v) for v in volumes]
    dtypes = {c.dtype for c in chans}
    if len(dtypes) > 1:
        common = np.result_type(*dtypes)
        chans = [c.astype(common) for c in chans]
    return Image(np.concatenate(chans, axis=0), affine, meta=meta)


def _as_volumes(volumes: list[np.ndarray], plan: _Plan, affine: np.ndarray, meta: dict[str, Any]) -> list[Image]:
    """One image per volume, each with its own volume index, label and source frames."""
    out = []
    for v, vol in enumerate(volumes):
        m = dict(meta)
        if len(volumes) > 1:
            m["volume_index"] = v
            m["volume_label"] = plan.volume_labels[v] if plan.volume_labels else str(v)
            m["sop_instance_uids"] = [f.header.sop_instance_uid for f in plan.order[v]]
            m["source_frames"] = [[f.header.sop_instance_uid, f.frame + 1] for f in plan.order[v]]
        out.append(Image(_to_channels(vol), affine, meta=m))
    return out


def _meta(info: SeriesInfo, plan: _Plan, rescale: bool) -> dict[str, Any]:
    """``Image.meta`` of a read series (no patient name, id or birth date)."""
    from pydicom.uid import UID

    ref = plan.order[0]
    h0 = ref[0].header
    files = _files_in_order(plan)
    return {
        "source": info.files[0] if len(info.files) == 1 else os.path.commonpath(info.files),
        "format": "dicom",
        "series_key": info.key,
        "series_instance_uid": info.series_instance_uid,
        "study_instance_uid": info.study_instance_uid,
        "frame_of_reference_uid": info.frame_of_reference_uid,
        "sop_class_uid": info.sop_class_uid,
        "series_description": info.description,
        "series_number": info.series_number,
        "modality": info.modality,
        "manufacturer": info.manufacturer,
        "transfer_syntax": [UID(t).name or t for t in info.transfer_syntaxes],
        "num_files": len(files),
        "num_volumes": len(plan.order),
        "volume_labels": list(plan.volume_labels),
        "files": [f.path for f in ref] if len(plan.order) == 1 else files,
        "sop_instance_uids": [f.header.sop_instance_uid for f in ref],
        "source_frames": [[f.header.sop_instance_uid, f.frame + 1] for f in ref],
        "slice_positions_mm": [float(p) for p in plan.positions],
        "slice_thickness": h0.slice_thickness,
        "rescaled": bool(rescale),
        "rescale_slope": ref[0].slope,
        "rescale_intercept": ref[0].intercept,
        "photometric_interpretation": h0.photometric,
        "gantry_tilt_deg": plan.tilt_deg,
        "notes": list(plan.notes),
    }


def _files_in_order(plan: _Plan) -> list[str]:
    """Unique file paths of a plan, volume 0 first, each in slice order."""
    files: dict[str, None] = {}
    for vol in plan.order:
        for f in vol:
            files.setdefault(f.path, None)
    return list(files)


def load_series_datasets(source: SeriesInfo | str | os.PathLike, series_uid: str | None = None) -> list[Any]:
    """The headers (no pixel data) of a series' files, in slice order.

    Args:
        source: a :class:`SeriesInfo` from :func:`find_series`, or a folder/file.
        series_uid: which series when ``source`` is a folder holding several.

    Returns:
        ``pydicom.Dataset`` per file, in the order of ``SeriesInfo.files`` after sorting
        along the slice normal (volume 0 first): what highdicom takes as source images.
    """
    pydicom = _pydicom()
    info = source if isinstance(source, SeriesInfo) else _find_one(source, series_uid)
    plan = _plan_geometry(info, _Options(gantry_tilt="shear", uneven_spacing="resample"))
    return [pydicom.dcmread(p, stop_before_pixels=True, force=True) for p in _files_in_order(plan)]
