"""The public names of the DICOM packages (docs/architecture.md §6.1: the package __init__ is the API)."""

from __future__ import annotations

import medimg.io
import medimg.io.convert
import medimg.io.dicom
import medimg.io.dicom_seg

DICOM_API = {
    "SeriesInfo", "DicomScan", "ProgressHook", "find_series", "read_dicom", "read_dicom_volumes",
    "read_series", "read_series_volumes", "load_series_datasets", "is_dicom_file",
}


def test_dicom_package_api_pinned():
    assert set(medimg.io.dicom.__all__) == DICOM_API and len(medimg.io.dicom.__all__) == len(DICOM_API)
    for name in DICOM_API:
        assert getattr(medimg.io.dicom, name) is not None, name
    assert set(medimg.io.dicom_seg.__all__) == {"read_dicom_seg", "write_dicom_seg", "SEG_SOP_CLASS_UIDS", "is_dicom_seg",
                                              "read_seg_on_grid", "is_seg_file"}
    assert set(medimg.io.convert.__all__) == {"ConversionReport", "convert_dicom"}


def test_the_same_objects_from_every_door():
    assert medimg.io.find_series is medimg.io.dicom.find_series
    assert medimg.io.read_dicom is medimg.io.dicom.read_dicom
    assert medimg.io.SeriesInfo is medimg.io.dicom.SeriesInfo
    assert medimg.io.convert_dicom is medimg.io.convert.convert_dicom is medimg.io.dicom.convert_dicom
    assert medimg.io.dicom.ConversionReport is medimg.io.convert.ConversionReport
    assert medimg.io.read_dicom_seg is medimg.io.dicom_seg.read_dicom_seg


def test_read_functions_each_have_one_return_type():
    import typing

    from medimg.core.image import Image

    for name in ("read_dicom", "read_series"):
        assert typing.get_type_hints(getattr(medimg.io.dicom, name))["return"] is Image
    for name in ("read_dicom_volumes", "read_series_volumes"):
        assert typing.get_type_hints(getattr(medimg.io.dicom, name))["return"] == list[Image]
