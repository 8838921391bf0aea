"""medimg.io.convert.convert_dicom: every series to .nii.gz plus series.csv."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pydicom")
nib = pytest.importorskip("nibabel")

from tests.conftest import shared_path  # noqa: E402
from test_dicom import SR, assert_same_as_ref, tilted_positions, write_series  # noqa: E402

from medimg.io import read_image  # noqa: E402
from medimg.io.convert import convert_dicom  # noqa: E402
from medimg.io.dicom import find_series, read_dicom  # noqa: E402


def _sr(path: Path) -> None:
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    ds = Dataset()
    ds.SOPClassUID, ds.SOPInstanceUID, ds.SeriesInstanceUID = SR, generate_uid(), generate_uid()
    ds.Modality, ds.StudyInstanceUID, ds.SeriesDescription = "SR", "1.2.3.4", "report"
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = SR
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.save_as(path, enforce_file_format=True)


def test_convert_folder(tmp_path):
    src = tmp_path / "in"
    uid_a, _ = write_series(src / "a", n=4, extra_per_slice=lambda k: {"SeriesNumber": 2, "SeriesDescription": "T1 axial/fast"})
    uid_b, _ = write_series(src / "b", n=3, extra_per_slice=lambda k: {"SeriesNumber": 5})
    uid_t, _ = write_series(src / "tilt", positions=tilted_positions(), extra_per_slice=lambda k: {"SeriesNumber": 7})
    _sr(src / "sr.dcm")
    (src / "readme.txt").write_text("hello")

    report = convert_dicom(src, tmp_path / "out")
    outs = sorted(p.name for p in (tmp_path / "out").glob("*.nii.gz"))
    study = "nodate_st" + hashlib.sha1(b"1.2.3.4").hexdigest()[:6]  # no StudyDate in these files
    assert outs == [f"{study}_se0002_T1_axial_fast.nii.gz", f"{study}_se0005_synthetic_chest.nii.gz"]
    assert len(report.converted) == 2 and len(report.failed) == 1

    rows = list(csv.DictReader(open(tmp_path / "out" / "series.csv")))
    by_uid = {r["uid"]: r for r in rows if r["uid"]}
    assert by_uid[uid_a]["status"] == "ok" and by_uid[uid_a]["shape"] == "4x6x4" and by_uid[uid_a]["files"] == "4"
    assert by_uid[uid_a]["spacing"] == "0.7 0.5 2" and by_uid[uid_a]["orientation"].startswith("1.0000 0.0000")
    assert by_uid[uid_t]["status"] == "error" and "gantry tilt" in by_uid[uid_t]["error"]
    assert [r["status"] for r in rows if r["modality"] == "SR"] == ["non-image"]
    unread = [r for r in rows if r["status"] == "unreadable"]
    assert len(unread) == 1 and unread[0]["files"].endswith("readme.txt")
    text = (tmp_path / "out" / "series.csv").read_text() + " ".join(outs)
    assert "Secret" not in text and "MRN12345" not in text

    # the NIfTI holds exactly what read_dicom gives: same voxels, same RAS affine
    img = read_dicom(src, series_uid=uid_a)
    nii = nib.load(str(tmp_path / "out" / f"{study}_se0002_T1_axial_fast.nii.gz"))
    np.testing.assert_allclose(nii.affine, img.affine, atol=1e-5)
    assert np.array_equal(np.asarray(nii.dataobj), img.numpy()[0])
    # and the front door reads it back the same way
    back = read_image(tmp_path / "out" / f"{study}_se0002_T1_axial_fast.nii.gz")
    assert np.array_equal(back.numpy(), img.numpy())


def test_convert_with_tilt_option_converts_everything(tmp_path):
    write_series(tmp_path / "in", positions=tilted_positions())
    report = convert_dicom(tmp_path / "in", tmp_path / "out", gantry_tilt="shear")
    assert [r["status"] for r in report.rows] == ["ok"]
    assert report.summary().startswith("converted 1 of 1 series")
    nii = nib.load(str(tmp_path / "out" / report.rows[0]["output"]))
    sheared = read_dicom(tmp_path / "in", gantry_tilt="shear")
    np.testing.assert_allclose(nii.affine, sheared.affine, atol=1e-5)  # non-orthogonal sform kept


def test_read_image_takes_a_dicom_folder_and_file(tmp_path):
    write_series(tmp_path / "s", n=3)
    img = read_image(tmp_path / "s")
    assert img.spatial_shape == (4, 6, 3) and img.meta["format"] == "dicom"
    one = read_image(next((tmp_path / "s").iterdir()))
    assert one.spatial_shape == (4, 6, 1)


def test_convert_dcm_qa_enh_matches_dcm2niix(tmp_path):
    src = shared_path("dicom", "dcm_qa_enh", "In")
    ref = shared_path("dicom", "dcm_qa_enh", "Ref")
    report = convert_dicom(src, tmp_path)
    assert len(report.converted) == 3 and not report.failed
    files = {r["description"] + "|" + r["key"][-2:]: tmp_path / r["output"] for r in report.rows}
    siemens = next(v for k, v in files.items() if k.startswith("REST1"))
    nii = nib.load(str(siemens))
    assert nii.shape == (64, 64, 6, 4)
    scan = find_series(src)
    img = read_dicom(src, series_uid=next(s.key for s in scan if s.description.startswith("REST1")))
    assert_same_as_ref(img, ref / "Siemens_REST1_w_SMS_PF7-8_6.nii")
    # written affine within 1e-3 mm of dcm2niix after exact reorientation to RAS
    from test_dicom import to_ras

    _, a = to_ras(np.asarray(nii.dataobj), nii.affine)
    r = nib.load(str(ref / "Siemens_REST1_w_SMS_PF7-8_6.nii"))
    _, b = to_ras(np.asarray(r.dataobj), r.affine)
    np.testing.assert_allclose(a, b, atol=1e-3)


def test_two_studies_of_one_patient_get_distinct_stable_names(tmp_path):
    # one patient (same PatientID, written by write_slice), two studies, same series number
    # and description: converted in two runs into one folder
    write_series(tmp_path / "s1", n=3, study_uid="1.2.3.100", extra_per_slice=lambda k: {"StudyDate": "20240105"})
    write_series(tmp_path / "s2", n=4, study_uid="1.2.3.200", extra_per_slice=lambda k: {"StudyDate": "20240312"})
    out = tmp_path / "out"
    first = convert_dicom(tmp_path / "s1", out)
    second = convert_dicom(tmp_path / "s2", out)
    name1, name2 = first.rows[0]["output"], second.rows[0]["output"]
    assert name1.startswith("20240105_st" + hashlib.sha1(b"1.2.3.100").hexdigest()[:6] + "_se0003")
    assert name2.startswith("20240312_st" + hashlib.sha1(b"1.2.3.200").hexdigest()[:6] + "_se0003")
    assert name1 != name2 and sorted(p.name for p in out.glob("*.nii.gz")) == sorted([name1, name2])
    assert nib.load(str(out / name1)).shape[2] == 3 and nib.load(str(out / name2)).shape[2] == 4
    # the same study converted again gets the same name, and its row replaces the old one
    again = convert_dicom(tmp_path / "s1", out)
    assert again.rows[0]["output"] == name1
    rows = list(csv.DictReader(open(out / "series.csv")))
    assert sorted((r["study_uid"], r["study_date"], r["output"]) for r in rows) == [
        ("1.2.3.100", "20240105", name1), ("1.2.3.200", "20240312", name2)]


def test_series_csv_records_study_and_progress_goes_to_the_hook(tmp_path, capsys):
    write_series(tmp_path / "in" / "a", n=3, study_uid="1.2.3.7", extra_per_slice=lambda k: {"StudyDate": "20230102"})
    write_series(tmp_path / "in" / "b", n=2, study_uid="1.2.3.7", extra_per_slice=lambda k: {"SeriesNumber": 9})
    calls = []
    report = convert_dicom(tmp_path / "in", tmp_path / "out", progress=lambda *a: calls.append(a))
    assert [c for c in calls if c[0] == "scan"][-1] == ("scan", 5, 5)
    assert [c for c in calls if c[0] == "convert"] == [("convert", 1, 2), ("convert", 2, 2)]
    assert capsys.readouterr().out == ""  # the library never prints
    rows = list(csv.DictReader(open(report.csv_path)))
    assert {r["study_uid"] for r in rows} == {"1.2.3.7"}
    assert sorted(r["study_date"] for r in rows) == ["", "20230102"]


def test_convert_split_writes_one_file_per_volume(tmp_path):
    uid, _ = write_series(tmp_path / "in", n=3, prefix="t1", extra_per_slice=lambda k: {"TemporalPositionIdentifier": 1})
    write_series(tmp_path / "in", n=3, prefix="t2", uid=uid, extra_per_slice=lambda k: {"TemporalPositionIdentifier": 2})
    report = convert_dicom(tmp_path / "in", tmp_path / "out", multi_volume="split")
    outputs = report.rows[0]["output"].split(";")
    assert [o.rsplit("_", 1)[1] for o in outputs] == ["v001.nii.gz", "v002.nii.gz"]
    assert [nib.load(str(tmp_path / "out" / o)).shape for o in outputs] == [(4, 6, 3)] * 2
    four_d = convert_dicom(tmp_path / "in", tmp_path / "out4d")
    assert nib.load(str(tmp_path / "out4d" / four_d.rows[0]["output"])).shape == (4, 6, 3, 2)
    with pytest.raises(ValueError, match="multi_volume must be"):
        convert_dicom(tmp_path / "in", tmp_path / "x", multi_volume="stack")


def test_convert_dicom_still_importable_from_medimg_io_dicom():
    import medimg.io
    import medimg.io.dicom

    assert medimg.io.dicom.convert_dicom is convert_dicom is medimg.io.convert_dicom
