"""De-identification: every attribute of an independent copy of Table E.1-1 checked on a synthetic dataset.

The expected action of each attribute comes from the ``dicom-anonymizer`` package's table
(read by ``tests/io/deid_markers.py``), not from medimg's own loader.
"""

from __future__ import annotations

import csv
import datetime as dt
import logging
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian

from medimg.io.deid import Deidentifier, deidentify, load_profile
from medimg.io.deid.profile import RETAIN, SUPPLEMENT
from tests.conftest import shared_path
from tests.io.deid_markers import name_of, reference_table, vr_of

REF = reference_table()
#: the reference's attributes that a file can hold (not command or file meta groups)
ATTRS = {t: a for t, a in REF.actions.items() if t >> 16 not in (0x0000, 0x0002)}
SOP_UID = "1.2.3.999.1.1"
STUDY_UID = "1.2.3.999.2"
PATIENT_ID = "SENTINEL-PID-4711"
PATIENT_NAME = "Sentinel^Patient"
TEXT = "SENTINELVALUE"
DATE = "20010203"


def _sentinel(vr: str, n: int) -> object:
    return {
        "PN": PATIENT_NAME, "DA": DATE, "TM": "040506", "DT": "20010203040506",
        "AS": "042Y", "DS": "1.5", "IS": "7", "UI": f"1.2.3.999.50.{n}", "AE": "SENTINELAE",
        "CS": "SENTINEL", "US": 7, "SS": 7, "UL": 7, "SL": 7, "FL": 1.5, "FD": 1.5,
        "OB": b"\x01\x02", "OW": b"\x01\x02", "UN": b"\x01\x02", "UR": "http://sentinel",
        "AT": 0x00100010,
    }.get(vr, TEXT)


def _make_dataset(patient_id: str = PATIENT_ID, sop_uid: str = SOP_UID, study_uid: str = STUDY_UID) -> Dataset:
    """Every attribute of the reference table set to a sentinel value, plus pixels and geometry."""
    ds = Dataset()
    for n, tag in enumerate(sorted(ATTRS)):
        vr = vr_of(tag)
        if vr == "SQ":
            item = Dataset()
            item.PatientName = "Inner^Sentinel"
            item.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
            item.ReferencedSOPInstanceUID = sop_uid
            item.add_new(0x00110010, "LO", "SENTINEL CREATOR")
            item.add_new(0x00111001, "LO", TEXT)
            ds.add_new(tag, "SQ", Sequence([item]))
        else:
            ds.add_new(tag, vr, _sentinel(vr, n))
    ds.SOPInstanceUID = sop_uid
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = study_uid + ".1"
    ds.FrameOfReferenceUID = study_uid + ".9"
    ds.PatientID = patient_id
    ds.PatientName = PATIENT_NAME
    ds.Modality = "CT"
    # private block
    ds.add_new(0x00090010, "LO", "SENTINEL CREATOR")
    ds.add_new(0x00091001, "LO", TEXT)
    # geometry and pixels: not in the table, must be untouched
    ds.ImagePositionPatient = [-100.5, 20.25, 33.0]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.PixelSpacing = [0.7, 0.8]
    ds.SliceThickness = "2.5"
    ds.Rows, ds.Columns = 4, 5
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
    ds.PixelRepresentation, ds.SamplesPerPixel = 1, 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.PixelData = np.arange(20, dtype=np.int16).tobytes()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = sop_uid
    ds.file_meta.SourceApplicationEntityTitle = "SENTINELAE"
    return ds


def _is_empty(elem) -> bool:
    return elem.value in (None, "", b"") or (elem.VR == "SQ" and len(elem.value) == 0) or elem.VM == 0


def _check_attr(tag: int, action: str, before: Dataset, after: Dataset, deid: Deidentifier) -> None:
    """``after[tag]`` is what ``action`` (the reference table's code) asks for."""
    old = before[tag]
    where = f"({tag >> 16:04X},{tag & 0xFFFF:04X}) {name_of(tag)} ({action})"
    if action == "X":
        assert tag not in after, f"{where}: must be removed"
        return
    assert tag in after, f"{where}: must be present"
    new = after[tag]
    if tag == 0x00100020:
        assert new.value == deid.pseudonym(PATIENT_ID) and PATIENT_ID not in str(new.value), where
    elif action == "U" or (action == "X/Z/U*" and new.VR == "UI"):
        assert str(new.value).startswith("2.25.") and new.value != old.value, where
        assert new.value == deid.new_uid(str(old.value)), where
    elif action == "X/Z/U*":
        assert new.VR == "SQ" and len(new.value) == 1, where
        assert new.value[0].ReferencedSOPInstanceUID == after.SOPInstanceUID, f"{where}: reference broken"
    elif "D" in action:  # D, Z/D, X/D, X/Z/D: dummy
        if new.VR == "SQ":
            inner = new.value[0]
            assert inner.PatientName == "" and 0x00111001 not in inner, f"{where}: items not cleaned"
        else:
            assert not _is_empty(new) and new.value != old.value, f"{where}: dummy expected, got {new.value!r}"
    else:  # Z, X/Z
        assert _is_empty(new), f"{where}: zero length expected, got {new.value!r}"


def test_profile_matches_the_independent_table_attribute_by_attribute() -> None:
    profile = load_profile()
    assert profile.edition == REF.edition and len(REF.actions) >= 652
    for tag, action in REF.actions.items():
        row = profile.lookup(tag)
        assert row is not None and row.action == action, f"{name_of(tag)}: {row} vs {action}"
    for g, e, gmask, emask, action in REF.patterns:  # repeating groups: every group of the range
        for group in (g, g | 0x00FE, g | 0x0010):
            row = profile.lookup((group << 16) | (e if emask else 0x1234))
            assert row is not None and row.action == action
    # medimg's additions never override the table, and its retain lists name table rows
    assert not set(SUPPLEMENT) & set(REF.actions)
    assert all(profile.lookup(t).source == "medimg" for t in SUPPLEMENT)
    for option, tags in RETAIN.items():
        for tag in tags:
            assert tag in REF.actions or tag in SUPPLEMENT, (option, name_of(tag))
            assert option in profile.lookup(tag).options
    assert profile.lookup(0x00280030) is None  # PixelSpacing is not in the table
    assert profile.lookup(0x00091001) is None


def test_every_attribute_default_profile() -> None:
    before = _make_dataset()
    deid = Deidentifier(secret=b"k")
    after = deid(before)
    for tag, action in ATTRS.items():
        _check_attr(tag, action, before, after, deid)
    # the input is not mutated
    assert before.PatientName == PATIENT_NAME and before.SOPInstanceUID == SOP_UID
    # private tags gone, at top level and in sequences
    assert not any(e.tag.is_private for e in after.iterall())
    # sentinel text appears nowhere (string values, at any depth)
    for e in after.iterall():
        if isinstance(e.value, str):
            assert TEXT not in e.value and "Sentinel" not in e.value, e
    assert after.PatientIdentityRemoved == "YES"
    assert [c.CodeValue for c in after.DeidentificationMethodCodeSequence] == ["113100"]
    assert f"Table E.1-1 {REF.edition}" in " ".join(after.DeidentificationMethod)
    assert after.LongitudinalTemporalInformationModified == "REMOVED"
    assert after.file_meta.MediaStorageSOPInstanceUID == after.SOPInstanceUID
    assert "SourceApplicationEntityTitle" not in after.file_meta
    # pixels and geometry bit-identical
    for kw in ("PixelData", "ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing", "SliceThickness", "Rows"):
        assert after[kw].value == before[kw].value, kw


def test_repeating_groups_overlay_and_curve() -> None:
    ds = _make_dataset()
    ds.add_new(0x60023000, "OW", b"\x00\x01")
    ds.add_new(0x60024000, "LT", TEXT)
    ds.add_new(0x50023000, "OW", b"\x00\x01")
    ds.add_new(0x60020010, "US", 4)  # Overlay Rows: not in the table, kept
    out = Deidentifier(secret=b"k")(ds)
    assert 0x60023000 not in out and 0x60024000 not in out and 0x50023000 not in out
    assert out[0x60020010].value == 4


def test_shift_dates_per_patient() -> None:
    deid = Deidentifier(secret=b"k", shift_dates=True)
    a1 = deid(_make_dataset("P1", "1.2.3.999.1.1"))
    a2 = deid(_make_dataset("P1", "1.2.3.999.1.2"))
    b = deid(_make_dataset("P2", "1.2.3.999.1.3"))
    off1, off2 = deid.date_offset("P1"), deid.date_offset("P2")
    assert -365 <= off1 <= -1 and -365 <= off2 <= -1
    assert off1 == Deidentifier(secret=b"k", shift_dates=True).date_offset("P1")  # stable per secret
    want1 = (dt.date(2001, 2, 3) + dt.timedelta(days=off1)).strftime("%Y%m%d")
    want2 = (dt.date(2001, 2, 3) + dt.timedelta(days=off2)).strftime("%Y%m%d")
    shifted = 0
    for tag in ATTRS:
        vr, name = vr_of(tag), name_of(tag)
        if vr not in ("DA", "DT", "TM"):
            continue
        if tag in (0x00100030, 0x00100032):  # birth date/time: basic profile as usual
            assert tag not in a1 or _is_empty(a1[tag])
            continue
        if vr == "TM":
            assert a1[tag].value == "040506", name  # whole-day shifts keep the time
            continue
        shifted += 1
        assert str(a1[tag].value).startswith(want1), name
        assert a1[tag].value == a2[tag].value, name
        assert str(b[tag].value).startswith(want2), name
        if vr == "DT":
            assert str(a1[tag].value) == want1 + "040506"
    assert shifted > 40
    assert a1.LongitudinalTemporalInformationModified == "MODIFIED"
    assert "113107" in [c.CodeValue for c in a1.DeidentificationMethodCodeSequence]


def test_date_shift_formats_and_invalid_values() -> None:
    assert Deidentifier._shift_da("20010301", -1) == "20010228"
    assert Deidentifier._shift_da("2001.03.01", -1) == "20010228"  # ACR-NEMA form
    assert Deidentifier._shift_dt("20010301123000.5+0100", -1) == "20010228123000.5+0100"
    with pytest.raises(ValueError):
        Deidentifier._shift_da("Doe^John", -1)


@pytest.mark.parametrize(
    ("option", "flag"),
    [
        ("keep_device_identity", "device"),
        ("keep_patient_characteristics", "patient_characteristics"),
        ("keep_institution_identity", "institution"),
    ],
)
def test_retain_options_keep_their_rows(option: str, flag: str) -> None:
    before = _make_dataset()
    deid = Deidentifier(secret=b"k", **{option: True})
    after = deid(before)
    tags = [t for t in RETAIN[flag] if t in before]
    assert len(tags) >= 4
    for tag in tags:  # (no repeating-group row carries a retain flag)
        if ATTRS[tag] == "U":
            continue
        if after[tag].VR == "SQ":  # kept, but the table still applies inside its items
            assert len(after[tag].value) == 1 and after[tag].value[0].PatientName == "", name_of(tag)
            continue
        assert after[tag].value == before[tag].value, name_of(tag)
    for tag, action in ATTRS.items():  # others still follow the basic profile
        if tag not in RETAIN[flag]:
            _check_attr(tag, action, before, after, deid)


def test_keep_private_and_keep_uids() -> None:
    before = _make_dataset()
    after = Deidentifier(secret=b"k", keep_private=True, keep_uids=True)(before)
    assert after[0x00091001].value == TEXT and after[0x00090010].value == "SENTINEL CREATOR"
    assert after.SOPInstanceUID == SOP_UID and after.StudyInstanceUID == STUDY_UID
    assert "113110" in [c.CodeValue for c in after.DeidentificationMethodCodeSequence]


def test_uids_consistent_across_study_and_secret() -> None:
    d = Deidentifier(secret=b"s")
    a = d(_make_dataset(sop_uid="1.2.3.999.1.1"))
    b = d(_make_dataset(sop_uid="1.2.3.999.1.2"))
    assert a.StudyInstanceUID == b.StudyInstanceUID and a.FrameOfReferenceUID == b.FrameOfReferenceUID
    assert a.SOPInstanceUID != b.SOPInstanceUID
    assert len(a.SOPInstanceUID) <= 64 and a.SOPInstanceUID.startswith("2.25.")
    assert Deidentifier(secret=b"s").new_uid(STUDY_UID) == a.StudyInstanceUID
    assert Deidentifier(secret=b"other").new_uid(STUDY_UID) != a.StudyInstanceUID
    # a stray non-standard UID in an attribute the table does not list is replaced too
    ds = _make_dataset()
    ds.add_new(0x00081150, "UI", "1.2.840.10008.5.1.4.1.1.2")  # ReferencedSOPClassUID: standard, kept
    ds.add_new(0x0020000E, "UI", "1.2.3.999.2.1")
    out = d(ds)
    assert out[0x00081150].value == "1.2.840.10008.5.1.4.1.1.2"


def _write(ds: Dataset, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


@pytest.mark.filterwarnings("ignore:Invalid value for VR DA")  # the bad file's own setup
def test_folder_report_bad_files_mapping_and_no_identifiers_in_logs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "in"
    good = [_write(_make_dataset(sop_uid=f"1.2.3.999.1.{i}"), src / "a" / f"img{i}.dcm") for i in range(3)]
    # bad inputs: truncated, no meta header, missing pixel data, wrong VR value, not DICOM
    raw = good[0].read_bytes()
    (src / "truncated.dcm").write_bytes(raw[: len(raw) - 30])
    sop_class_at = raw.index(b"\x08\x00\x16\x00UI")  # explicit VR LE header of (0008,0016)
    (src / "truncated_header.dcm").write_bytes(raw[: sop_class_at + 8 + 5])  # cut in its value
    last_pixels = _make_dataset(sop_uid="1.2.3.999.1.93")
    del last_pixels[0xFFFAFFFA], last_pixels[0xFFFCFFFC]  # Pixel Data is the last element
    raw_px = _write(last_pixels, src / "tmp.dcm").read_bytes()
    (src / "tmp.dcm").unlink()
    (src / "truncated_pixels.dcm").write_bytes(raw_px[:-6])
    bare = _make_dataset(sop_uid="1.2.3.999.1.90")
    bare.file_meta = FileMetaDataset()
    bare.save_as(src / "nometa.dcm", enforce_file_format=False, implicit_vr=True, little_endian=True)
    nopix = _make_dataset(sop_uid="1.2.3.999.1.91")
    del nopix.PixelData
    _write(nopix, src / "nopixels.dcm")
    badvr = _make_dataset(sop_uid="1.2.3.999.1.92")
    badvr[0x00080021].value = PATIENT_NAME  # "Series Date" holding a name
    _write(badvr, src / "badvr.dcm")
    (src / "notes.txt").write_text("not dicom")
    out = tmp_path / "out"
    mapping = tmp_path / "secret" / "map.csv"
    caplog.clear()
    capsys.readouterr()
    with caplog.at_level(logging.DEBUG):
        report = deidentify(src, out, mapping_path=mapping, shift_dates=True, secret=b"k")
        print(report.summary())
    by_name = {Path(f.input).name: f for f in report.files}
    assert report.n_ok == 3 and report.n_failed == 7
    assert "truncated file: element (FFFA,FFFA)" in by_name["truncated.dcm"].reason
    assert "truncated file: element (0008,0016) declares 26 bytes" in by_name["truncated_header.dcm"].reason
    assert "truncated file: element (7FE0,0010) declares 40 bytes, only 34" in by_name["truncated_pixels.dcm"].reason
    assert "not a DICOM file" in by_name["nometa.dcm"].reason
    assert "missing pixel data" in by_name["nopixels.dcm"].reason
    assert "(0008,0021)" in by_name["badvr.dcm"].reason
    assert "not a DICOM file" in by_name["notes.txt"].reason
    # named by new UIDs: study/series/sop
    outs = sorted(p for p in out.rglob("*") if p.is_file())
    assert len(outs) == 3 and all(p.name.startswith("2.25.") for p in outs)
    assert len({p.parent for p in outs}) == 1
    # the mapping exists only because it was asked for, and links old to new
    rows = list(csv.DictReader(mapping.open()))
    again = Deidentifier(secret=b"k", shift_dates=True)
    assert {
        "kind": "PatientID", "original": PATIENT_ID, "new": again.pseudonym(PATIENT_ID),
        "date_offset_days": str(again.date_offset(PATIENT_ID)),
    } in rows
    assert all(r["date_offset_days"] == "" for r in rows if r["kind"] == "UID")
    assert any(r["original"] == STUDY_UID for r in rows)
    assert (mapping.stat().st_mode & 0o077) == 0
    # no identifier in logs, summary or printed output
    printed = capsys.readouterr()
    for text in (caplog.text, report.summary(), printed.out, printed.err):
        for secret in (PATIENT_ID, PATIENT_NAME, "Sentinel", STUDY_UID, TEXT):
            assert secret not in text
    for p in outs:
        blob = p.read_bytes()
        assert PATIENT_ID.encode() not in blob and b"Sentinel" not in blob and TEXT.encode() not in blob


def test_no_mapping_unless_asked(tmp_path: Path) -> None:
    src = tmp_path / "in"
    _write(_make_dataset(), src / "x.dcm")
    report = deidentify(src, tmp_path / "out", naming="keep")
    assert report.n_ok == 1 and report.mapping_path is None
    files = sorted(p.name for p in tmp_path.rglob("*") if p.is_file())
    assert files == ["x.dcm", "x.dcm"]  # input and its mirrored output, nothing else
    with pytest.raises(ValueError, match="inside the input folder"):
        deidentify(src, src / "out")
    with pytest.raises(FileNotFoundError):
        deidentify(tmp_path / "missing", tmp_path / "o")


@pytest.mark.slow
def test_real_series_same_volume_and_affine(tmp_path: Path) -> None:
    series = shared_path("dicom", "chest_ct", "series")
    src = tmp_path / "in"
    src.mkdir()
    for f in sorted(series.iterdir())[:10]:
        shutil.copy(f, src / f.name)
    report = deidentify(src, tmp_path / "out", shift_dates=True)
    assert report.n_ok == 10, report.summary()
    for f in report.files:
        a, b = pydicom.dcmread(src / f.input), pydicom.dcmread(f.output)
        assert a.PixelData == b.PixelData
        for kw in ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing", "SliceThickness"):
            assert a[kw].value == b[kw].value
        assert b.file_meta.TransferSyntaxUID == a.file_meta.TransferSyntaxUID
        assert str(b.PatientName) == "" and b.PatientID != a.PatientID
    from medimg.io.dicom import read_dicom

    before, after = read_dicom(src), read_dicom(tmp_path / "out")
    assert before.spatial_shape == after.spatial_shape == (512, 512, 10)
    np.testing.assert_array_equal(before.numpy(), after.numpy())
    np.testing.assert_allclose(before.affine, after.affine)
    assert after.meta["study_instance_uid"].startswith("2.25.")
