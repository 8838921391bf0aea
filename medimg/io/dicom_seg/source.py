"""The source series of a SEG: its headers in slice order and its grid.

A folder or file goes through :func:`medimg.io.dicom.load_series_datasets` (the same
discovery, grouping and sorting as the volume reader, so SEG frames and image slices
agree); a list of datasets is sorted here by the projection of ImagePositionPatient on the
slice normal (PS3.3 C.7.6.2.1.1).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ...core.errors import DicomError, GeometryError
from ...core.image import Image
from ..dicom import load_series_datasets, read_dicom
from .geometry import _floats, _PlaneGeometry


@dataclass
class _SourceSeries:
    """A source series sorted along its normal, with its native grid."""

    datasets: list  # pydicom Datasets (headers), slice order
    affine: np.ndarray  # native voxel (col, row, slice) -> RAS
    shape: tuple[int, int, int]  # (cols, rows, slices)


def _source_datasets(source: Any) -> tuple[list, str]:
    """``(headers with ImagePositionPatient, where)`` of a folder, file or list of datasets."""
    if isinstance(source, (str, Path)):
        p = Path(source)
        if not p.exists():
            raise DicomError(f"source series not found: {p}")
        return [ds for ds in load_series_datasets(p) if "ImagePositionPatient" in ds], str(p)
    return list(source), "source datasets"


def _load_source_series(source: Any) -> _SourceSeries:
    """Headers of a single-frame source series, sorted along the slice normal, and its grid.

    Raises:
        DicomError: no usable image, several series, or two slices at one position.
    """
    datasets, where = _source_datasets(source)
    if not datasets:
        raise DicomError(f"{where}: no DICOM image with ImagePositionPatient found")
    datasets = [_with_type2_patient_study(_with_sop_class(ds)) for ds in datasets]
    series = {str(ds.get("SeriesInstanceUID", "")) for ds in datasets}
    if len(series) > 1:
        raise DicomError(
            f"{where}: holds {len(series)} series; a SEG source must be one series",
            hint="pass the folder (or list of files) of the one series the label was made on",
        )
    ds0 = datasets[0]
    plane = _plane_of(ds0, where)
    normal = np.cross(plane.row_dir, plane.col_dir)
    proj = [float(np.dot(_floats(d.ImagePositionPatient, 3, "ImagePositionPatient", where), normal)) for d in datasets]
    order = np.argsort(proj, kind="stable")
    datasets = [datasets[i] for i in order]
    proj_sorted = np.asarray(proj)[order]
    if len(datasets) > 1 and np.min(np.diff(proj_sorted)) < 1e-3:
        raise DicomError(f"{where}: two source slices share a position", hint="remove duplicate files")
    first = _floats(datasets[0].ImagePositionPatient, 3, "ImagePositionPatient", where)
    if len(datasets) > 1:
        last = _floats(datasets[-1].ImagePositionPatient, 3, "ImagePositionPatient", where)
        step = (last - first) / (len(datasets) - 1)
    else:
        thick = float(ds0.get("SliceThickness", 1.0) or 1.0)
        step = normal * thick
    plane0 = _PlaneGeometry(first, plane.row_dir, plane.col_dir, plane.spacing)
    affine = plane0.native_affine(step)
    return _SourceSeries(datasets, affine, (int(ds0.Columns), int(ds0.Rows), len(datasets)))


def _with_sop_class(ds: Any) -> Any:
    """``ds``, or a shallow copy whose empty SOPClassUID is taken from the file meta.

    Some anonymisers blank SOPClassUID (0008,0016) but keep MediaStorageSOPClassUID
    (0002,0002), which PS3.10 7.1 requires to be the same value; highdicom needs the former.
    """
    if str(ds.get("SOPClassUID", "")):
        return ds
    meta_uid = str(getattr(ds, "file_meta", {}).get("MediaStorageSOPClassUID", "")) if hasattr(ds, "file_meta") else ""
    if not meta_uid:
        return ds
    import pydicom

    out = pydicom.Dataset(ds)
    out.file_meta = ds.file_meta
    out.SOPClassUID = meta_uid
    return out


#: Type 2 attributes of the Patient and General Study modules (PS3.3 C.7.1.1, C.7.2.1): they
#: must be present, possibly empty; a SEG copies them from its source.
_TYPE2_PATIENT_STUDY = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate",
                        "StudyTime", "StudyID", "AccessionNumber", "ReferringPhysicianName")


def _with_type2_patient_study(ds: Any) -> Any:
    """``ds``, or a shallow copy with the type 2 patient and study attributes it lacks present
    and empty (anonymised or hand-made files often drop them; highdicom needs them)."""
    missing = [k for k in _TYPE2_PATIENT_STUDY if k not in ds]
    if not missing:
        return ds
    import pydicom

    out = pydicom.Dataset(ds)
    if hasattr(ds, "file_meta"):
        out.file_meta = ds.file_meta
    for key in missing:
        setattr(out, key, "")
    return out


def _plane_of(ds: Any, where: str) -> _PlaneGeometry:
    """The plane of an image header (IPP, IOP, PixelSpacing)."""
    iop = _floats(ds.ImageOrientationPatient, 6, "ImageOrientationPatient", where)
    ps = _floats(ds.PixelSpacing, 2, "PixelSpacing", where)
    ipp = _floats(ds.ImagePositionPatient, 3, "ImagePositionPatient", where)
    return _PlaneGeometry(ipp, iop[:3], iop[3:], (float(ps[0]), float(ps[1])))


def _source_grid(source: Image | str | Path | Sequence[Any]) -> tuple[np.ndarray, tuple[int, ...], Image | None]:
    """(affine, spatial shape, Image or None) of the grid a SEG is read onto.

    A folder or file is read by :func:`medimg.io.dicom.read_dicom`, which defines the grid
    a training image is on; a list of datasets gives its native grid.
    """
    if isinstance(source, Image):
        if source.spatial_ndim != 3:
            raise GeometryError(f"the source image must be 3D, got spatial shape {source.spatial_shape}")
        return source.affine, source.spatial_shape, source
    if isinstance(source, (str, Path)):
        img = read_dicom(source)
        return img.affine, img.spatial_shape, img
    s = _load_source_series(source)
    return s.affine, s.shape, None
