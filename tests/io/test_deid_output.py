"""De-identification's output folder: a second run never adds a second copy; one file walker."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from medimg.io.deid import OutputNotEmptyError, deidentify


def _ct(path: Path, patient_id: str = "PID-1") -> Path:
    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = "1.2.3.999.2"
    ds.SeriesInstanceUID = "1.2.3.999.2.1"
    ds.FrameOfReferenceUID = "1.2.3.999.2.9"
    ds.PatientID, ds.PatientName, ds.Modality = patient_id, "Doe^Jane", "CT"
    ds.ImagePositionPatient = [0.0, 0.0, float(len(list(path.parent.glob("*"))) if path.parent.exists() else 0)]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.PixelSpacing = [1.0, 1.0]
    ds.Rows, ds.Columns = 2, 2
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
    ds.PixelRepresentation, ds.SamplesPerPixel = 1, 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.PixelData = np.zeros(4, dtype=np.int16).tobytes()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def test_second_run_is_refused_then_overwrite_replaces(tmp_path: Path) -> None:
    src, out = tmp_path / "in", tmp_path / "out"
    for i in range(3):
        _ct(src / f"img{i}.dcm")
    assert deidentify(src, out).n_ok == 3  # random secret: new UIDs, new names each run
    first = _files(out)
    assert len(first) == 3
    with pytest.raises(OutputNotEmptyError) as err:
        deidentify(src, out)
    message = str(err.value)
    assert f"'{out}'" in message and "3 file(s)" in message and "overwrite" in message
    assert "\n" not in message and err.value.folder == out and err.value.n_files == 3
    assert _files(out) == first  # nothing written by the refused run
    (out / ".DS_Store").write_bytes(b"x")  # hidden: neither counted nor deleted
    report = deidentify(src, out, overwrite=True)
    second = _files(out)
    assert report.n_ok == 3 and len(second) == 4 and (out / ".DS_Store").exists()
    assert not set(first) & set(second)  # the first copy is gone, not kept beside the second
    # the same secret gives the same names: still refused without overwrite
    with pytest.raises(OutputNotEmptyError):
        deidentify(src, out, secret=b"k")


def test_overwrite_never_deletes_what_medimg_did_not_write(tmp_path: Path) -> None:
    src, out = tmp_path / "in", tmp_path / "out"
    _ct(src / "img.dcm")
    deidentify(src, out)
    _ct(out / "original.dcm")  # not de-identified
    (out / "notes.txt").write_text("mine")
    before = _files(out)
    with pytest.raises(FileExistsError, match="is not a file de-identified by medimg"):
        deidentify(src, out, overwrite=True)
    assert _files(out) == before


def test_deid_and_dicom_discovery_see_the_same_files(tmp_path: Path) -> None:
    """One walker (medimg.io.layout.walk_files): hidden files and folders are skipped by both."""
    from medimg.io.dicom import find_series
    from medimg.io.layout import walk_files

    src = tmp_path / "in"
    good = [_ct(src / "a" / f"img{i}.dcm") for i in range(2)]
    (src / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (src / "a" / "._img0.dcm").write_bytes(good[0].read_bytes())  # AppleDouble twin
    _ct(src / ".hidden" / "img.dcm")
    (src / "notes.txt").write_text("not DICOM")
    report = deidentify(src, tmp_path / "out")
    seen_by_deid = sorted(src / f.input for f in report.files)
    assert seen_by_deid == sorted([*good, src / "notes.txt"])
    assert seen_by_deid == sorted(walk_files(src))
    scan = find_series(src)
    assert scan.num_files == len(seen_by_deid)
    assert report.n_ok == 2 and len(_files(tmp_path / "out")) == 2
