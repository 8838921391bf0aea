"""Classification data: npz, manifest and class folders; each bad input's one-line error."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from medimg.core import DataError, Image
from medimg.core.spec import DataSection
from medimg.data.classification import load_classification
from medimg.data.cls_loader import (
    ClassificationDataset,
    check_two_classes,
    class_balanced_weights,
    classification_loader,
)
from medimg.io import write_image


def _npz(path: Path, **arrays) -> Path:
    np.savez(path, **arrays)
    return path


def _section(**kw) -> DataSection:
    kw.setdefault("images", ["image"])
    return DataSection(**kw)


def test_npz_2d_channels_last_3d_and_uint8_scaling(tmp_path: Path):
    p = _npz(
        tmp_path / "a.npz",
        train_images=np.full((4, 6, 6, 3), 255, np.uint8),
        train_labels=np.array([[0], [1], [2], [1]]),
        val_images=np.zeros((2, 6, 6, 3), np.uint8),
        val_labels=np.array([[0], [2]]),
    )
    data = load_classification(_section(npz=p), tmp_path)
    assert data.splits["train"].images.shape == (4, 3, 6, 6)
    assert float(data.splits["train"].images.max()) == 1.0
    assert data.class_names == ["0", "1", "2"] and not data.multilabel
    assert data.splits["train"].targets.tolist() == [0, 1, 2, 1]
    assert set(data.splits) == {"train", "validation"}
    p3 = _npz(tmp_path / "b.npz", train_images=np.zeros((2, 5, 6, 7), np.float32), train_labels=np.array([0, 1]))
    assert load_classification(_section(npz=p3), tmp_path).splits["train"].images.shape == (2, 1, 5, 6, 7)


def test_npz_multilabel(tmp_path: Path):
    p = _npz(tmp_path / "m.npz", train_images=np.zeros((3, 4, 4)), train_labels=np.array([[1, 0, 1], [0, 0, 0], [1, 1, 0]]))
    data = load_classification(_section(npz=p, class_names=["a", "b", "c"]), tmp_path)
    assert data.multilabel and data.splits["train"].targets.dtype == torch.float32


def test_npz_without_expected_keys_lists_the_keys_found(tmp_path: Path):
    p = _npz(tmp_path / "x.npz", images=np.zeros((2, 4, 4)), labels=np.zeros(2))
    with pytest.raises(DataError) as info:
        load_classification(_section(npz=p), tmp_path)
    assert str(info.value.message) == (
        f"data.npz: {p} has no train_images, train_labels; expected train_images, train_labels "
        "(and val_*, test_* for validation and test); found: images, labels"
    )


def test_npz_label_outside_declared_classes(tmp_path: Path):
    p = _npz(tmp_path / "x.npz", train_images=np.zeros((3, 4, 4)), train_labels=np.array([0, 1, 2]))
    with pytest.raises(DataError) as info:
        load_classification(_section(npz=p, class_names=["normal", "pneumonia"]), tmp_path)
    assert info.value.message == (
        f"{p}: train_labels: label 2 of case train_2 is not a declared class: data.class_names has "
        "2 classes (normal, pneumonia, indices 0..1)"
    )


def _nifti(path: Path, value: float, shape=(6, 6, 1)) -> Path:
    write_image(Image(torch.full((1, *shape), value)), path)
    return path


def _manifest(tmp_path: Path, rows: list[str], header: str = "case_id,image,label,split") -> Path:
    path = tmp_path / "cases.csv"
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def test_manifest_reads_images_names_and_splits(tmp_path: Path):
    for i in range(4):
        _nifti(tmp_path / f"c{i}.nii.gz", float(i))
    m = _manifest(tmp_path, ["c0,c0.nii.gz,cat,train", "c1,c1.nii.gz,dog,train", "c2,c2.nii.gz,dog,validation", "c3,c3.nii.gz,cat,validation"])
    data = load_classification(_section(manifest=m, label="label"), tmp_path)
    assert data.class_names == ["cat", "dog"]
    tr = data.splits["train"]
    assert tr.case_ids == ["c0", "c1"] and tr.targets.tolist() == [0, 1]
    assert tr.images.shape == (2, 1, 6, 6)  # a 2D slice stored as a 3D file
    assert float(data.splits["validation"].images[1].mean()) == 3.0


def test_manifest_missing_label_column(tmp_path: Path):
    m = _manifest(tmp_path, ["c0,c0.nii.gz,train"], header="case_id,image,split")
    with pytest.raises(DataError) as info:
        load_classification(_section(manifest=m, label="diagnosis"), tmp_path)
    assert info.value.message == f"data.manifest: {m} has no column 'diagnosis' (data.label); columns: case_id, image, split"


def test_manifest_unreadable_image_names_row_and_file(tmp_path: Path):
    _nifti(tmp_path / "c0.nii.gz", 0.0)
    (tmp_path / "bad.nii.gz").write_bytes(b"not an image")
    m = _manifest(tmp_path, ["c0,c0.nii.gz,0,train", "c1,bad.nii.gz,1,train"])
    with pytest.raises(DataError) as info:
        load_classification(_section(manifest=m), tmp_path)
    msg = info.value.message
    assert msg.startswith(f"data.manifest {m} row 3 (case c1): cannot read image {tmp_path / 'bad.nii.gz'}: ")
    assert "\n" not in msg


def test_manifest_label_outside_declared_classes(tmp_path: Path):
    _nifti(tmp_path / "c0.nii.gz", 0.0)
    m = _manifest(tmp_path, ["c0,c0.nii.gz,fox,train"])
    with pytest.raises(DataError) as info:
        load_classification(_section(manifest=m, class_names=["cat", "dog"]), tmp_path)
    assert info.value.message == (
        f"data.manifest {m} row 2 (case c0): label 'fox' in column 'label' is not a declared class; classes: cat, dog"
    )


def test_class_folders(tmp_path: Path):
    for split, cls, i in [("train", "a", 0), ("train", "b", 1), ("validation", "b", 2)]:
        (tmp_path / split / cls).mkdir(parents=True, exist_ok=True)
        _nifti(tmp_path / split / cls / f"x{i}.nii.gz", float(i))
    data = load_classification(_section(root=tmp_path), tmp_path)
    assert data.class_names == ["a", "b"]
    assert data.splits["train"].targets.tolist() == [0, 1]
    assert data.splits["validation"].case_ids == ["b/x2.nii.gz"]


def test_one_class_validation_split_says_auc_is_undefined_and_where(tmp_path: Path):
    p = _npz(tmp_path / "x.npz", train_images=np.zeros((2, 4, 4)), train_labels=np.array([0, 1]),
             val_images=np.zeros((3, 4, 4)), val_labels=np.array([1, 1, 1]))
    data = load_classification(_section(npz=p, class_names=["normal", "pneumonia"]), tmp_path)
    with pytest.raises(DataError) as info:
        check_two_classes(data.splits["validation"], data.class_names, "val", data.source)
    assert info.value.message == (
        f"{p}: the validation split ('val') holds only class 'pneumonia' (3 cases): AUC is undefined on it"
    )


def test_balanced_sampling_draws_classes_evenly():
    targets = torch.tensor([0] * 90 + [1] * 10)
    w = class_balanced_weights(targets)
    assert float(w[:90].sum()) == pytest.approx(float(w[90:].sum()))
    from medimg.data.classification import ClassificationSplit

    split = ClassificationSplit("train", [str(i) for i in range(100)], torch.zeros(100, 1, 2, 2), targets)
    make = classification_loader(ClassificationDataset(split), 50, balanced=True, samples=1000)
    drawn = torch.cat([b["label"] for b in make(0)])
    assert 0.4 < float(drawn.float().mean()) < 0.6  # unbalanced: 0.1
