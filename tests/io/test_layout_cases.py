"""medimg.io.layout (one listing rule) and medimg.io.cases (one case discovery)."""

from __future__ import annotations

from pathlib import Path

import pytest

from medimg.core import DataError
from medimg.io.cases import FoundCase, find_cases
from medimg.io.layout import is_nifti_path, list_folder, nifti_case_id, walk_files


def _touch(path: Path, data: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_layout_listing_rules(tmp_path):
    _touch(tmp_path / "b.nii.gz")
    _touch(tmp_path / "a.NII")
    _touch(tmp_path / ".DS_Store")
    _touch(tmp_path / ".hidden" / "x.nii.gz")
    _touch(tmp_path / "sub" / "c.nii")
    files, dirs = list_folder(tmp_path)
    assert [p.name for p in files] == ["a.NII", "b.nii.gz"]
    assert [p.name for p in dirs] == ["sub"]
    assert [p.relative_to(tmp_path).as_posix() for p in walk_files(tmp_path)] == ["a.NII", "b.nii.gz", "sub/c.nii"]
    assert nifti_case_id("case_007.nii.gz") == "case_007" and nifti_case_id(".nii") is None
    assert is_nifti_path("X.Nii.Gz") and not is_nifti_path("notes.txt")


def test_flat_files_and_case_folders_in_one_folder(tmp_path):
    _touch(tmp_path / "c1.nii.gz")
    _touch(tmp_path / "c10.nii")
    _touch(tmp_path / "labels.json")
    _touch(tmp_path / "._c1.nii.gz")  # AppleDouble twin: hidden, never a case
    _touch(tmp_path / "c2" / "img.nii.gz")
    _touch(tmp_path / "docs" / "readme.txt")  # no NIfTI: not a case folder
    cases = find_cases(tmp_path)
    assert [c.case_id for c in cases] == ["c1", "c10", "c2"]
    assert all(isinstance(c, FoundCase) and c.ok for c in cases)
    assert cases[2].paths == (tmp_path / "c2" / "img.nii.gz",)
    cid, paths = cases[0]  # unpacks as (case_id, paths or problem)
    assert cid == "c1" and paths == [tmp_path / "c1.nii.gz"]


def test_one_case_id_twice_is_one_case_with_a_problem(tmp_path):
    _touch(tmp_path / "c1.nii.gz")
    _touch(tmp_path / "c1" / "seg.nii.gz")
    (case,) = find_cases(tmp_path)
    assert not case.ok and case.paths == ()
    assert "case id 'c1' appears twice" in case.problem and "c1.nii.gz" in case.problem
    cid, err = case
    assert cid == "c1" and isinstance(err, DataError) and "appears twice" in str(err)


def test_named_files_in_case_folders(tmp_path):
    for cid in ("p1", "p2"):
        _touch(tmp_path / cid / "flair.nii.gz")
        if cid == "p1":
            _touch(tmp_path / cid / "t1c.nii")
    _touch(tmp_path / "stray" / "other.nii.gz")
    cases = {c.case_id: c for c in find_cases(tmp_path, files=["flair.nii.gz", "t1c"])}
    assert cases["p1"].paths == (tmp_path / "p1" / "flair.nii.gz", tmp_path / "p1" / "t1c.nii")
    assert cases["p2"].problem == (
        f"no file 't1c' in case folder '{tmp_path / 'p2'}' (files there: flair.nii.gz)")
    assert "no file 'flair.nii.gz', 't1c'" in cases["stray"].problem  # holds NIfTI, none of the names


def test_pick_the_label_map_or_the_only_file(tmp_path):
    case = tmp_path / "pat1"
    for name in ("Flair.nii.gz", "brainmask.nii.gz", "OTMultiClass.nii.gz"):
        _touch(case / name)
    (label,) = find_cases(tmp_path, pick="label")
    assert label.paths == (case / "OTMultiClass.nii.gz",)
    (only,) = find_cases(tmp_path, pick="only")
    assert not only.ok and "holds 3 NIfTI files (Flair.nii.gz, OTMultiClass.nii.gz, brainmask.nii.gz)" in only.problem
    _touch(case / "seg_v2.nii.gz")
    (two,) = find_cases(tmp_path, pick="label")
    assert "several candidate label files (OTMultiClass.nii.gz, seg_v2.nii.gz)" in two.problem
    with pytest.raises(ValueError, match="pick must be"):
        find_cases(tmp_path, pick="first")


def test_a_file_is_one_case_and_bad_paths_are_errors(tmp_path):
    f = _touch(tmp_path / "case_7.nii")
    assert [(c.case_id, c.paths) for c in find_cases(f)] == [("case_7", (f,))]
    with pytest.raises(DataError, match=r"reference not found: '.*nope' is not a folder or a file"):
        find_cases(tmp_path / "nope", what="reference")
    with pytest.raises(DataError, match=r"'.*notes.txt' is not a NIfTI file \(.nii or .nii.gz\)$"):
        find_cases(_touch(tmp_path / "notes.txt"))
    (tmp_path / "empty").mkdir()
    assert find_cases(tmp_path / "empty") == []  # the caller decides whether none is an error


def test_dicom_series_folders(tmp_path, shared_data):
    import shutil

    series = shared_data / "dicom" / "torchio_ct"
    if not series.is_dir():
        pytest.skip(f"shared DICOM series absent: {series}")
    shutil.copytree(series, tmp_path / "s1")
    _touch(tmp_path / "a.nii.gz")
    cases = find_cases(tmp_path, dicom=True)
    assert [(c.case_id, c.paths) for c in cases] == [("a", (tmp_path / "a.nii.gz",)), ("s1", (tmp_path / "s1",))]
    assert [c.case_id for c in find_cases(tmp_path)] == ["a"]  # DICOM only when asked for
    assert [(c.case_id, c.paths) for c in find_cases(tmp_path / "s1", dicom=True)] == [("s1", (tmp_path / "s1",))]
