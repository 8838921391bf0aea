"""The package __init__ files are the public API (ARCHITECTURE §6.1): pin their names."""

from __future__ import annotations

import subprocess
import sys

import medimg.core
import medimg.io

CORE_API = {
    "Image", "KINDS", "Sample", "TransformRecord", "Registry",
    "MedimgError", "ConfigError", "UnknownComponentError", "ImageReadError", "ImageWriteError",
    "DicomError", "DicomSeriesError", "GeometryError", "DataError", "TransformError",
    "CheckpointError", "MissingDependencyError",
    "GRID_ATOL_MM", "affines_close", "axcodes_from_affine", "direction_from_affine", "lps_to_ras",
    "make_affine", "orientation_transform", "origin_from_affine", "ras_to_lps",
    "reoriented_affine", "scaled_affine", "spacing_from_affine",
}

IO_API = {
    "read_image", "write_image", "read_nifti", "write_nifti", "SUPPORTED_FORMATS",
    "find_series", "read_dicom", "convert_dicom", "SeriesInfo",
    "read_dicom_seg", "write_dicom_seg", "deidentify",
}


def test_core_all_pinned():
    assert set(medimg.core.__all__) == CORE_API
    assert len(medimg.core.__all__) == len(CORE_API)  # no duplicates
    for name in CORE_API:
        assert getattr(medimg.core, name) is not None


def test_io_all_pinned_and_resolvable():
    assert set(medimg.io.__all__) == IO_API
    assert len(medimg.io.__all__) == len(IO_API)
    for name in IO_API:
        assert getattr(medimg.io, name) is not None, name
    assert set(IO_API) <= set(dir(medimg.io))


def test_io_unknown_attribute():
    try:
        medimg.io.read_imgae  # noqa: B018
    except AttributeError as exc:
        assert "read_imgae" in str(exc)
    else:  # pragma: no cover
        raise AssertionError("expected AttributeError")


def test_importing_io_does_not_import_dicom_stack():
    code = (
        "import sys, medimg.io; "
        "bad = [m for m in ('pydicom', 'highdicom', 'medimg.io.dicom', 'nibabel', 'monai') "
        "if m in sys.modules]; print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", f"imported at 'import medimg.io': {out.stdout.strip()}"
