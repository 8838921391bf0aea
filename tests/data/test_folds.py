"""Cross-validation folds: grouping, stratification, split files and their errors."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from medimg.core.errors import DataError
from medimg.data import (
    CaseRecord,
    apply_fold,
    apply_fold_classification,
    assign_folds,
    fold_table,
    read_split_file,
    write_split_file,
)
from medimg.data.classification import ClassificationData, ClassificationSplit


def _patients(n_patients: int, seed: int) -> tuple[list[str], list[str], list[str]]:
    """Cases of patients with 1 to 4 cases each, and a class per case (imbalanced)."""
    rng = np.random.default_rng(seed)
    ids, groups, labels = [], [], []
    for p in range(n_patients):
        for j in range(int(rng.integers(1, 5))):
            ids.append(f"p{p}_c{j}")
            groups.append(f"p{p}")
            labels.append(str(rng.choice(["benign", "malignant", "other"], p=[0.6, 0.3, 0.1])))
    return ids, groups, labels


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_patient_never_lands_in_two_folds(seed):
    ids, groups, labels = _patients(40, seed)
    folds = assign_folds(ids, 5, groups, labels, seed=seed)
    per_patient: dict[str, set[int]] = {}
    for g, f in zip(groups, folds):
        per_patient.setdefault(g, set()).add(f)
    assert all(len(s) == 1 for s in per_patient.values())
    sizes = Counter(folds)
    assert sorted(sizes) == [0, 1, 2, 3, 4]
    assert max(sizes.values()) - min(sizes.values()) <= 4  # at most one patient's worth apart


@pytest.mark.parametrize("seed", [0, 7])
def test_stratification_keeps_proportions_within_one_case(seed):
    labels = ["a"] * 23 + ["b"] * 11 + ["c"] * 5
    rng = np.random.default_rng(seed)
    labels = [labels[i] for i in rng.permutation(len(labels))]
    ids = [f"case{i}" for i in range(len(labels))]
    k = 5
    folds = assign_folds(ids, k, strata=labels, seed=seed)
    for cls, total in Counter(labels).items():
        counts = [sum(1 for f, y in zip(folds, labels) if f == fold and y == cls) for fold in range(k)]
        assert set(counts) <= {total // k, -(-total // k)}, (cls, counts)


def test_without_stratification_classes_can_drift():
    """The stratified test above can fail: plain folds of sorted labels do not balance them."""
    labels = ["a"] * 20 + ["b"] * 20
    ids = [f"case{i}" for i in range(40)]
    plain = assign_folds(ids, 4, groups=[f"g{i // 10}" for i in range(40)], seed=0)
    counts = Counter((f, y) for f, y in zip(plain, labels))
    assert max(counts.values()) == 10  # whole groups of one class: a fold holds only "a" or "b"


def test_folds_repeat_with_the_seed_and_change_without_it():
    ids = [f"case{i}" for i in range(30)]
    assert assign_folds(ids, 3, seed=4) == assign_folds(ids, 3, seed=4)
    assert assign_folds(ids, 3, seed=4) != assign_folds(ids, 3, seed=5)


def test_too_many_folds():
    with pytest.raises(DataError, match="cannot make 4 folds of 3 groups") as e:
        assign_folds(["a", "b", "c", "d"], 4, groups=["p1", "p1", "p2", "p3"])
    assert "--folds between 2 and 3" in e.value.hint


def _records(ids, split):
    return [CaseRecord(c, [Path(f"/x/{c}.nii.gz")], Path(f"/x/{c}_seg.nii.gz"), split, {}) for c in ids]


def test_apply_fold_moves_cases_and_keeps_test(tmp_path):
    split_file = write_split_file(tmp_path / "s.csv", ["a", "b", "c", "d"], [0, 1, 0, 1], {"patient_id": ["1", "2", "1", "2"]})
    assert read_split_file(split_file) == {"a": 0, "b": 1, "c": 0, "d": 1}
    splits = {"train": _records(["a", "b", "c"], "train"), "validation": _records(["d"], "validation"),
              "test": _records(["t"], "test")}
    out = apply_fold(splits, split_file, 1)
    assert [r.case_id for r in out["validation"]] == ["b", "d"]
    assert [r.case_id for r in out["train"]] == ["a", "c"]
    assert [r.case_id for r in out["test"]] == ["t"]
    assert {r.split for r in out["validation"]} == {"validation"}


def test_apply_fold_errors(tmp_path):
    splits = {"train": _records(["a", "b", "c"], "train"), "test": _records(["t"], "test")}
    good = write_split_file(tmp_path / "good.csv", ["a", "b", "c"], [0, 1, 2])
    with pytest.raises(DataError, match=r"data.fold is 3 but split file .*good.csv has folds 0..2") as e:
        apply_fold(splits, good, 3)
    assert e.value.cli_hint == "use --fold between 0 and 2"
    ghost = write_split_file(tmp_path / "ghost.csv", ["a", "b", "c", "zz"], [0, 1, 0, 1])
    with pytest.raises(DataError, match=r"ghost.csv names 1 case\(s\) \['zz'\] that the data does not have"):
        apply_fold(splits, ghost, 0)
    test = write_split_file(tmp_path / "test.csv", ["a", "b", "c", "t"], [0, 1, 0, 1])
    with pytest.raises(DataError, match=r"names 1 test case\(s\) \['t'\]"):
        apply_fold(splits, test, 0)
    short = write_split_file(tmp_path / "short.csv", ["a", "b"], [0, 1])
    with pytest.raises(DataError, match=r"gives no fold to 1 training/validation case\(s\).*\['c'\]"):
        apply_fold(splits, short, 0)
    (tmp_path / "cols.csv").write_text("case,split\na,0\n")
    with pytest.raises(DataError, match=r"has no column\(s\) \['case_id', 'fold'\]; columns: \['case', 'split'\]"):
        read_split_file(tmp_path / "cols.csv")
    (tmp_path / "bad.csv").write_text("case_id,fold\na,x\n")
    with pytest.raises(DataError, match="line 2: fold 'x' of case 'a' is not a fold number"):
        read_split_file(tmp_path / "bad.csv")


def test_apply_fold_classification_keeps_images_with_their_ids(tmp_path):
    def split(name, ids, start):
        x = torch.arange(start, start + len(ids), dtype=torch.float32)[:, None, None, None].expand(-1, 1, 2, 2).clone()
        return ClassificationSplit(name, ids, x, torch.arange(len(ids)) % 2)

    data = ClassificationData({"train": split("train", ["train_0", "train_1", "train_2"], 0),
                               "validation": split("validation", ["val_0", "val_1"], 10),
                               "test": split("test", ["test_0"], 20)}, ["n", "y"], False, "toy.npz")
    f = write_split_file(tmp_path / "s.csv", ["train_0", "train_1", "train_2", "val_0", "val_1"], [1, 0, 1, 0, 1])
    out = apply_fold_classification(data, f, 0)
    assert out.splits["validation"].case_ids == ["train_1", "val_0"]
    assert out.splits["validation"].images[:, 0, 0, 0].tolist() == [1.0, 10.0]
    assert out.splits["train"].case_ids == ["train_0", "train_2", "val_1"]
    assert out.splits["train"].images[:, 0, 0, 0].tolist() == [0.0, 2.0, 11.0]
    assert out.splits["test"] is data.splits["test"]


# -- the sources `medimg split` reads ----------------------------------------------------
def test_fold_table_from_a_manifest_leaves_test_out(tmp_path):
    path = tmp_path / "m.csv"
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["case_id", "patient_id", "split"])
        w.writerows([["a", "1", "train"], ["b", "1", "validation"], ["c", "2", "test"]])
    table = fold_table(path)
    assert table.case_ids == ["a", "b"] and table.column("patient_id", "--group-by") == ["1", "1"]
    with pytest.raises(DataError, match="--group-by patient: .*m.csv has no column 'patient'; columns: case_id, patient_id, split"):
        table.column("patient", "--group-by")


def test_fold_table_from_folders_and_npz(tmp_path):
    for split, case in (("train", "c1"), ("train", "c2"), ("validation", "c3"), ("test", "c4")):
        (tmp_path / "seg" / split / case).mkdir(parents=True)
        (tmp_path / "seg" / split / case / "image.nii.gz").write_bytes(b"")
    assert sorted(fold_table(tmp_path / "seg").case_ids) == ["c1", "c2", "c3"]
    for split, cls, name in (("train", "cat", "1.png"), ("train", "dog", "2.png"), ("val", "dog", "3.png")):
        (tmp_path / "cls" / split / cls).mkdir(parents=True, exist_ok=True)
        (tmp_path / "cls" / split / cls / name).write_bytes(b"")
    table = fold_table(tmp_path / "cls")
    assert sorted(zip(table.case_ids, table.columns["label"])) == [("cat/1.png", "cat"), ("dog/2.png", "dog"), ("dog/3.png", "dog")]
    np.savez(tmp_path / "d.npz", train_images=np.zeros((3, 4, 4)), train_labels=np.array([[0], [1], [1]]),
             val_images=np.zeros((2, 4, 4)), val_labels=np.array([[1], [0]]),
             test_images=np.zeros((1, 4, 4)), test_labels=np.array([[0]]))
    table = fold_table(tmp_path / "d.npz")
    assert table.case_ids == ["train_0", "train_1", "train_2", "val_0", "val_1"]
    assert table.columns["label"] == ["0", "1", "1", "1", "0"]


def test_fold_split_file_resolves_against_the_config_folder_and_needs_a_fold(tmp_path):
    from medimg.core.errors import ConfigError
    from medimg.core.spec import DataSection
    from medimg.data.folds import fold_split_file

    assert fold_split_file(DataSection(root="d", images=["image"]), tmp_path) is None
    assert fold_split_file(DataSection(root="d", images=["image"], split_file="s.csv", fold=1), tmp_path) == tmp_path / "s.csv"
    absolute = tmp_path / "elsewhere" / "s.csv"
    assert fold_split_file(DataSection(root="d", images=["image"], split_file=absolute, fold=0), tmp_path / "cfg") == absolute
    with pytest.raises(ConfigError, match=r"data.split_file is set \(s.csv\) but not data.fold"):
        fold_split_file(DataSection(root="d", images=["image"], split_file="s.csv"), tmp_path)
