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


def _hidden_tree(src: Path) -> list[Path]:
    """Two DICOM files and a text file to see; hidden files and a hidden folder not to see."""
    good = [_ct(src / "a" / f"img{i}.dcm") for i in range(2)]
    (src / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (src / "a" / "._img0.dcm").write_bytes(good[0].read_bytes())  # AppleDouble twin
    _ct(src / ".hidden" / "img.dcm")
    (src / "notes.txt").write_text("not DICOM")
    return sorted([*good, src / "notes.txt"])


def test_deid_lists_files_with_the_shared_walker(tmp_path: Path) -> None:
    """One walker (medimg.io.layout.walk_files): hidden files and folders are skipped."""
    from medimg.io.layout import walk_files

    src = tmp_path / "in"
    visible = _hidden_tree(src)
    report = deidentify(src, tmp_path / "out")
    seen_by_deid = sorted(src / f.input for f in report.files)
    assert seen_by_deid == visible == sorted(walk_files(src))
    assert report.n_ok == 2 and len(_files(tmp_path / "out")) == 2


def test_deid_and_dicom_discovery_see_the_same_files(tmp_path: Path) -> None:
    from medimg.io.dicom import find_series

    src = tmp_path / "in"
    visible = _hidden_tree(src)
    report = deidentify(src, tmp_path / "out")
    assert len(report.files) == len(visible)
    assert find_series(src).num_files == len(visible)


def test_cli_second_run_refused_in_cli_terms_and_mapping_has_date_offset(tmp_path: Path) -> None:
    import csv

    from typer.testing import CliRunner

    from medimg.cli import app

    def run(*args: object):
        return CliRunner().invoke(app, ["deid", *map(str, args)], env={"COLUMNS": "300", "NO_COLOR": "1"})

    src, out, mapping = tmp_path / "in", tmp_path / "out", tmp_path / "map.csv"
    _ct(src / "a.dcm", patient_id="PID-7")
    _ct(src / "b.dcm", patient_id="PID-7")
    res = run(src, out, "--shift-dates", "--secret", "k", "--mapping", mapping)
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader(mapping.open()))
    [patient] = [r for r in rows if r["kind"] == "PatientID"]
    offset = int(patient["date_offset_days"])
    assert patient["original"] == "PID-7" and -365 <= offset <= -1
    assert len(_files(out)) == 2
    res = run(src, out, "--shift-dates", "--secret", "k")
    assert res.exit_code == 1
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    want = (
        f"error: output folder '{out}' already holds 2 file(s) from an earlier run; choose an empty "
        "folder, or add --overwrite to replace what medimg de-identified there"
    )
    assert lines == [want]
    res = run(src, out, "--secret", "k", "--overwrite")
    assert res.exit_code == 0, res.output
    assert len(_files(out)) == 2
