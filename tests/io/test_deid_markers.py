"""Plant, de-identify, look: no marker of Table E.1-1 survives except what an option keeps.

Every attribute of an independent copy of the table (``dicom-anonymizer``'s newest
edition, read by ``tests/io/deid_markers.py``) gets a unique marker value, in a synthetic
data set (fast, every option) and in a real CT file (the Python API and ``medimg deid``).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian

from medimg.io.deid import Deidentifier, deidentify
from medimg.io.deid.profile import RETAIN
from tests.conftest import shared_path
from tests.io.deid_markers import (
    PRIVATE_TAG,
    name_of,
    plant,
    plant_file,
    reference_table,
    survivors,
    vr_of,
)

REF = reference_table()
_BIRTH = {0x00100030, 0x00100032}


def _base() -> Dataset:
    """A small valid CT image data set with a file meta header."""
    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ds.Modality = "CT"
    ds.ImagePositionPatient = [-100.5, 20.25, 33.0]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.PixelSpacing = [0.7, 0.8]
    ds.Rows, ds.Columns = 4, 5
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
    ds.PixelRepresentation, ds.SamplesPerPixel = 1, 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.PixelData = np.arange(20, dtype=np.int16).tobytes()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    return ds


def _planted() -> tuple[Dataset, dict[int, object]]:
    ds = _base()
    planted = plant(ds, REF)
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    return ds, planted


def _names(tags) -> list[str]:
    return sorted(f"({t >> 16:04X},{t & 0xFFFF:04X}) {name_of(t)}" for t in tags)


def _kept_by(option: str, planted: dict[int, object]) -> set[int]:
    """What an option keeps unchanged, by the option's own definition (not medimg's code)."""
    if option == "shift_dates":  # dates move by whole days: times of day stay
        return {t for t in planted if vr_of(t) == "TM" and t not in _BIRTH}
    if option == "keep_uids":  # every U row
        return {t for t in planted if REF.actions[t] == "U" and vr_of(t) == "UI"}
    flag = option.removeprefix("keep_").removesuffix("_identity")
    # values kept; UIDs still replaced (Retain UIDs is its own option); sequences cleaned inside
    return {t for t in RETAIN[flag] if t in planted and vr_of(t) not in ("UI", "SQ")}


def test_reference_is_the_current_table() -> None:
    assert REF.edition >= "2026c" and len(REF.actions) >= 652
    _, planted = _planted()
    assert len(planted) >= 640


def test_no_marker_survives_the_basic_profile() -> None:
    ds, planted = _planted()
    out = Deidentifier(secret=b"k")(ds)
    left = survivors(out, planted)
    assert not left, f"{len(left)} markers survived: {_names(left)[:20]}"
    assert not any(e.tag.is_private for e in out.iterall())
    assert out.PixelData == ds.PixelData and out.ImagePositionPatient == ds.ImagePositionPatient


@pytest.mark.parametrize(
    "option",
    ["shift_dates", "keep_uids", "keep_device_identity", "keep_patient_characteristics",
     "keep_institution_identity"],
)
def test_an_option_keeps_exactly_its_attributes(option: str) -> None:
    ds, planted = _planted()
    out = Deidentifier(secret=b"k", **{option: True})(ds)
    want = _kept_by(option, planted)
    assert want, option
    left = set(survivors(out, planted))
    assert left == want, f"kept but should not: {_names(left - want)[:10]}; lost: {_names(want - left)[:10]}"


def test_keep_private_keeps_private_values_only() -> None:
    ds, planted = _planted()
    out = Deidentifier(secret=b"k", keep_private=True)(ds)
    assert out[PRIVATE_TAG].value == "MKPRIVQ"
    left = survivors(out, planted)
    assert left and all(where == "in (0077,1001)" for where in left.values()), left


def test_markers_nested_in_sequences_at_two_levels() -> None:
    """Every table attribute planted inside an item of a kept sequence, and one level deeper."""
    ds = _base()
    ds.SOPInstanceUID = "1.2.3.4.5"
    outer, inner = Dataset(), Dataset()
    planted = plant(outer, REF)
    ds.ReferencedImageSequence = Sequence([outer])  # X/Z/U*: kept, items cleaned
    inner.PatientName = "MKDEEPQ"
    inner.add_new(0x00770010, "LO", "MEDIMG TEST")
    inner.add_new(PRIVATE_TAG, "LO", "MKDEEPPQ")
    outer.ContentSequence = Sequence([inner])  # D: kept, items cleaned
    planted[0x00100010] = "MKDEEPQ"
    out = Deidentifier(secret=b"k")(ds)
    left = survivors(out, planted)
    assert not left, _names(left)[:20]
    assert len(out.ReferencedImageSequence) == 1 and not any(e.tag.is_private for e in out.iterall())
    blob = repr(out)
    assert "MKDEEP" not in blob


def _real_ct_planted(tmp_path: Path) -> tuple[Path, dict[int, object]]:
    src = shared_path("dicom", "chest_ct", "series", "IMG0001.dcm")
    folder = tmp_path / "in"
    planted = plant_file(src, folder / "planted.dcm", REF)
    return folder, planted


def _one_output(folder: Path) -> Dataset:
    [out] = [p for p in folder.rglob("*") if p.is_file()]
    return pydicom.dcmread(out)


def test_real_ct_python_api(tmp_path: Path) -> None:
    folder, planted = _real_ct_planted(tmp_path)
    report = deidentify(folder, tmp_path / "out", secret=b"k")
    assert report.n_ok == 1, report.summary()
    out = _one_output(tmp_path / "out")
    left = survivors(out, planted)
    assert not left, f"{len(left)} markers survived: {_names(left)[:20]}"
    before = pydicom.dcmread(folder / "planted.dcm")
    assert out.PixelData == before.PixelData and out.ImagePositionPatient == before.ImagePositionPatient


@pytest.mark.parametrize("option", [None, "shift_dates"])
def test_real_ct_cli(tmp_path: Path, option: str | None) -> None:
    from tests.conftest import run_cli

    folder, planted = _real_ct_planted(tmp_path)
    args = ["deid", folder, tmp_path / "out"] + ([f"--{option.replace('_', '-')}"] if option else [])
    res = run_cli(*args)
    assert res.exit_code == 0, res.output
    left = set(survivors(_one_output(tmp_path / "out"), planted))
    want = _kept_by(option, planted) if option else set()
    assert left == want, f"kept but should not: {_names(left - want)[:10]}; lost: {_names(want - left)[:10]}"
    shutil.rmtree(tmp_path / "out")
