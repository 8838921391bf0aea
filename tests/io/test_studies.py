"""medimg.io.studies: input channels chosen by name patterns on files and DICOM series."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pydicom")

from medimg.core import Image, make_affine
from medimg.core.errors import ConfigError
from medimg.io import write_image
from medimg.io.studies import StudyCase, find_channel_cases, resolve_channel_patterns
from tests.io.dicom_study import write_dicom_series

KEYS = ["flair.nii.gz", "t1.nii.gz"]


def _study(folder: Path, uid: str, series: list[tuple[str, str | None]]) -> None:
    """``series``: (description, subfolder or None for the study folder itself)."""
    for n, (desc, sub) in enumerate(series, 1):
        write_dicom_series(folder / sub if sub else folder, desc, study_uid=uid, number=n, seed=n)


def test_resolve_channel_patterns_names_and_errors():
    # short names (no .nii.gz), any case, come back as the model's names in model order
    got = resolve_channel_patterns({"T1": "*t1*", "flair": "*FLAIR*"}, KEYS, 2)
    assert got == {"flair.nii.gz": "*FLAIR*", "t1.nii.gz": "*t1*"} and list(got) == KEYS
    assert resolve_channel_patterns(None, KEYS, 2) == {}
    with pytest.raises(ConfigError, match=r"channel 't2' is not a channel of this model; its channels are: 'flair', 't1'") as e:
        resolve_channel_patterns({"t2": "*T2*"}, KEYS, 2)
    assert e.value.hint_for("cli") == "name each channel as above: --channel NAME='PATTERN'"
    with pytest.raises(ConfigError, match="two patterns"):
        resolve_channel_patterns({"flair": "*A*", "flair.nii.gz": "*B*"}, KEYS, 2)
    with pytest.raises(ConfigError, match="empty pattern"):
        resolve_channel_patterns({"flair": " "}, KEYS, 2)
    # an unnamed single-channel model: any one name
    assert resolve_channel_patterns({"ct": "*CT*"}, None, 1) == {"ct": "*CT*"}


def test_tree_of_studies_one_case_per_study_with_candidates_listed(tmp_path):
    root = tmp_path / "studies"
    # nested: patient / study / one folder per series, with extra series the model does not take
    _study(root / "patA" / "visit1", "1.2.826.1.1", [("AX FLAIR", "s1"), ("T1 AX", "s2"), ("ADC", "s3")])
    _study(root / "patA" / "visit2", "1.2.826.1.5", [("FLAIR", "s1"), ("T1", "s2")])
    # all series' files in one folder
    _study(root / "patB" / "2020", "1.2.826.1.2", [("Sag FLAIR", None), ("t1_mprage", None)])
    # a study without a T1
    _study(root / "patC", "1.2.826.1.3", [("FLAIR", "a"), ("DWI", "b")])
    # two series matching '*T1*'
    _study(root / "patD", "1.2.826.1.4", [("FLAIR", "a"), ("T1 pre", "b"), ("T1 post", "c")])
    cases = find_channel_cases(root, KEYS, {"flair.nii.gz": "*flair*", "t1.nii.gz": "*T1*"}, in_channels=2)
    by_id = {c.case_id: c for c in cases}
    assert sorted(by_id) == ["patA_visit1", "patA_visit2", "patB", "patC", "patD"]
    a, b = by_id["patA_visit1"], by_id["patB"]
    assert isinstance(a, StudyCase) and a.ok and [s.description for s in a.series] == ["AX FLAIR", "T1 AX"]
    assert b.ok and [s.description for s in b.series] == ["Sag FLAIR", "t1_mprage"]
    case_id, series = a  # unpacks as (case_id, the series per channel)
    assert case_id == "patA_visit1" and series[1].description == "T1 AX"
    c = by_id["patC"]
    assert not c.ok and c.problem == (
        f"study 'patC' ('{root / 'patC'}'): channel 't1' pattern '*T1*' matches no series; image series there: "
        "#1 'FLAIR' (6 files), #2 'DWI' (6 files); change --channel t1='PATTERN' to match one"
    )
    d = by_id["patD"]
    assert not d.ok and "pattern '*T1*' matches 2 series" in d.problem and "#3 'T1 post' (6 files)" in d.problem


def test_single_channel_study_needs_a_pattern_when_it_holds_several_series(tmp_path):
    study = tmp_path / "study"
    _study(study, "1.2.826.2.1", [("T2 tumour mask", "a"), ("ADC", "b"), ("perfusion", "c")])
    (case,) = find_channel_cases(study, ["img.nii.gz"], None, in_channels=1)
    assert case.case_id == "study" and not case.ok
    assert "holds 3 image series (#1 'T2 tumour mask' (6 files), #2 'ADC' (6 files), #3 'perfusion' (6 files))" in case.problem
    assert case.problem.endswith("pass --channel img='PATTERN' matching the series description")
    (case,) = find_channel_cases(study, ["img.nii.gz"], {"img.nii.gz": "adc"}, in_channels=1)
    assert case.ok and [s.description for s in case.series] == ["ADC"]
    # one series: no pattern needed
    write_dicom_series(tmp_path / "one", "CT", study_uid="1.2.826.2.2", number=1)
    (case,) = find_channel_cases(tmp_path / "one", None, None, in_channels=1)
    assert case.ok and [s.description for s in case.series] == ["CT"]


def test_nifti_case_folders_by_file_name_pattern(tmp_path):
    img = Image(np.zeros((1, 4, 4, 4), np.float32), make_affine((1.0, 1.0, 1.0)))
    for case in ("c1", "c2"):
        for name in ("Flair_norm.nii.gz", "T1c_norm.nii.gz", "brainmask.nii.gz"):
            write_image(img, tmp_path / "in" / case / name)
    write_image(img, tmp_path / "in" / "c2" / "flair_2.nii.gz")  # c2: two FLAIR files
    cases = find_channel_cases(tmp_path / "in", KEYS, {"flair.nii.gz": "flair*", "t1.nii.gz": "*T1C*"}, in_channels=2)
    c1, c2 = cases
    assert c1.ok and [p.name for p in c1.paths] == ["Flair_norm.nii.gz", "T1c_norm.nii.gz"]
    assert not c2.ok and "channel 'flair' pattern 'flair*' matches 2 files" in c2.problem
    assert "change --channel flair='PATTERN'" in c2.problem and "brainmask.nii.gz" in c2.problem
    # a pattern missing for one channel
    (c1, _) = find_channel_cases(tmp_path / "in", KEYS, {"flair.nii.gz": "flair*"}, in_channels=2)
    assert "no pattern for channel 't1'" in c1.problem
    # a single-channel model's flat folder: only the files its pattern matches are cases
    flat = tmp_path / "flat"
    for name in ("a_T1.nii.gz", "b_T1.nii.gz", "a_mask.nii.gz"):
        write_image(img, flat / name)
    assert [c.case_id for c in find_channel_cases(flat, None, {"image": "*t1*"}, in_channels=1)] == ["a_T1", "b_T1"]
