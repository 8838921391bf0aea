"""Classification data: whole images and their class targets, from three sources.

- a MedMNIST-style ``.npz`` (``data.npz``): ``train_images``, ``train_labels``,
  ``val_images``, ``val_labels``, ``test_images``, ``test_labels``; images 2D ``(N, H, W)``
  or ``(N, H, W, C)`` (C <= 4, channels last), or 3D ``(N, D, H, W)``; labels ``(N,)`` or
  ``(N, 1)`` class indices, or ``(N, K)`` 0/1 (multi-label);
- a manifest CSV (``data.manifest``): one row per case, the image path column(s) named by
  ``data.images`` (any file :func:`medimg.io.read_image` reads; relative to the CSV's
  folder), the label column ``data.label`` (default ``label``: a class name or index) or
  one 0/1 column per class (``data.label_columns``, multi-label), ``split``, and optional
  ``case_id`` and ``patient_id``;
- a folder per class (``data.root``): ``root/<split>/<class name>/<file>``.

Every source gives one :class:`ClassificationData`: per split (``train``,
``validation``, ``test``) a :class:`ClassificationSplit` of images ``(N, C, *spatial)``
float32 with the deterministic preprocessing applied, and targets (``(N,)`` int64 class
indices, or ``(N, K)`` float 0/1 for multi-label). 8-bit images from any source (npz,
PNG/JPEG, 8-bit DICOM or NIfTI) are divided by 255 (:func:`unit_scaled`), and the
:class:`~medimg.inference.Predictor` does the same to a classifier's inputs.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..core.errors import DataError
from ..core.image import Image
from ..core.sample import Sample
from ..core.spec import DataSection
from ..io.layout import list_folder

__all__ = ["NPZ_SPLITS", "ClassificationData", "ClassificationSplit", "load_classification", "npz_images", "unit_scaled"]

#: Split name -> the prefix of its arrays in a MedMNIST-style npz.
NPZ_SPLITS = {"train": "train", "validation": "val", "test": "test"}


@dataclass
class ClassificationSplit:
    """The cases of one split: ids, images ``(N, C, *spatial)`` float32, targets."""

    name: str
    case_ids: list[str]
    images: torch.Tensor
    targets: torch.Tensor
    patient_ids: list[str] | None = None

    def __len__(self) -> int:
        return len(self.case_ids)


@dataclass
class ClassificationData:
    """All splits of a classification data set, and what they hold.

    Attributes:
        splits: ``train`` (required), ``validation`` and ``test`` when present.
        class_names: class names, index = class (model output) order.
        multilabel: targets are ``(N, K)`` 0/1 rather than class indices.
        source: the file or folder it came from (for messages).
        split_names: split -> its name in the source (``val`` for an npz), for messages.
    """

    splits: dict[str, ClassificationSplit]
    class_names: list[str]
    multilabel: bool
    source: str
    split_names: dict[str, str] = field(default_factory=dict)

    @property
    def spatial_dims(self) -> int:
        return self.splits["train"].images.ndim - 2

    @property
    def in_channels(self) -> int:
        return int(self.splits["train"].images.shape[1])


Preprocess = Callable[[Sample], Sample]


def _preprocessed(images: Sequence[torch.Tensor], ids: Sequence[str], preprocess: Preprocess | None, where: str) -> torch.Tensor:
    """Apply the deterministic preprocessing to each ``(C, *spatial)`` image and stack."""
    out = []
    for x, cid in zip(images, ids):
        if preprocess is not None:
            x = preprocess(Sample(images={"image": Image(x)}, case_id=cid))["image"].data
        out.append(x.to(torch.float32))
    shapes = sorted({tuple(x.shape) for x in out})
    if len(shapes) > 1:
        raise DataError(
            f"{where}: images of different shapes {shapes[:3]} cannot be batched",
            hint="add a resize step to preprocess so that every image has one shape, e.g. {name: resize, size: [224, 224]}",
        )
    return torch.stack(out) if out else torch.zeros(0)


# -- npz -------------------------------------------------------------------------------
def unit_scaled(x: torch.Tensor) -> torch.Tensor:
    """A classifier's float32 input: 8-bit data (``uint8``) divided by 255, anything else
    as it is. One rule for every source, in training and prediction alike, so that a model
    trained on an npz predicts the same pictures saved as PNG the same way."""
    return x.float() / 255.0 if x.dtype == torch.uint8 else x.float()


def npz_images(arr: np.ndarray, key: str, path: Path) -> torch.Tensor:
    """``(N, C, *spatial)`` float32 from an npz image array (uint8 scaled to [0, 1])."""
    if arr.ndim == 3:
        x = arr[:, None]
    elif arr.ndim == 4 and arr.shape[-1] <= 4:
        x = np.moveaxis(arr, -1, 1)  # (N, H, W, C) channels last
    elif arr.ndim == 4:
        x = arr[:, None]  # (N, D, H, W)
    elif arr.ndim == 5:
        x = np.moveaxis(arr, -1, 1) if arr.shape[-1] <= 4 else arr
    else:
        raise DataError(
            f"{path}: '{key}' has shape {arr.shape}; expected (N, H, W), (N, H, W, C) or (N, D, H, W)"
        )
    return unit_scaled(torch.from_numpy(np.ascontiguousarray(x)))


def _check_indices(y: np.ndarray, k: int | None, where: str, ids: Sequence[str], names: Sequence[str] | None) -> None:
    """Class indices inside ``0..k-1`` (when ``k`` is known), else a one-line error."""
    if k is None:
        return
    bad = np.flatnonzero((y < 0) | (y >= k))
    if len(bad):
        i = int(bad[0])
        raise DataError(
            f"{where}: label {y[i]} of case {ids[i]} is not a declared class: data.class_names has "
            f"{k} classes ({', '.join(names or [])}, indices 0..{k - 1})",
            hint="add the class to data.class_names or fix the label",
        )


def _npz_split(npz: Any, prefix: str, split: str, path: Path, k: int | None, names: Any) -> tuple[np.ndarray, torch.Tensor, bool]:
    """The images, raw labels and multi-label flag of one split of an npz."""
    images = npz_images(npz[f"{prefix}_images"], f"{prefix}_images", path)
    y = np.asarray(npz[f"{prefix}_labels"])
    if len(y) != len(images):
        raise DataError(
            f"{path}: {prefix}_labels has {len(y)} rows but {prefix}_images {len(images)} images; "
            "give one label row per image"
        )
    multilabel = y.ndim == 2 and y.shape[1] > 1
    if not multilabel:
        y = y.reshape(len(y))
        ids = [f"{prefix}_{i}" for i in range(len(y))]
        _check_indices(y, k, f"{path}: {prefix}_labels", ids, names)
    elif k is not None and y.shape[1] != k:
        raise DataError(
            f"{path}: {prefix}_labels has {y.shape[1]} label columns but data.class_names {k} names; "
            "give one class name per column"
        )
    return y, images, multilabel


def load_npz(data: DataSection, path: Path, preprocess: Preprocess | None = None) -> ClassificationData:
    """The splits of a MedMNIST-style npz (``train`` required; ``val`` and ``test`` optional).

    Raises:
        DataError: the file is missing or not an npz, ``train_images``/``train_labels``
            are missing (the keys found are listed), or a label is not a declared class.
    """
    try:
        npz = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise DataError(f"data.npz: cannot read {path}: {exc}", hint="give a .npz file written by numpy.savez") from None
    keys = sorted(npz.files)
    need = ["train_images", "train_labels"]
    missing = [k for k in need if k not in keys]
    if missing:
        raise DataError(
            f"data.npz: {path} has no {', '.join(missing)}; expected train_images, train_labels "
            f"(and val_*, test_* for validation and test); found: {', '.join(keys) or 'no arrays'}",
            hint="save the arrays under these names (MedMNIST layout)",
        )
    names = list(data.class_names) if data.class_names else None
    k = len(names) if names else None
    splits: dict[str, ClassificationSplit] = {}
    multilabel = False
    for split, prefix in NPZ_SPLITS.items():
        if f"{prefix}_images" not in keys:
            continue
        if f"{prefix}_labels" not in keys:
            raise DataError(f"data.npz: {path} has {prefix}_images but no {prefix}_labels; found: {', '.join(keys)}")
        y, images, multilabel = _npz_split(npz, prefix, split, path, k, names)
        ids = [f"{prefix}_{i}" for i in range(len(y))]
        x = _preprocessed(list(images), ids, preprocess, f"{path} {prefix}") if preprocess else images
        targets = torch.as_tensor(y, dtype=torch.float32 if multilabel else torch.int64)
        splits[split] = ClassificationSplit(split, ids, x, targets)
    if names is None:
        train = splits["train"].targets
        count = train.shape[1] if multilabel else int(max(int(s.targets.max()) for s in splits.values() if len(s)) + 1)
        names = [str(i) for i in range(max(count, 2 if not multilabel else 1))]
    return ClassificationData(splits, names, multilabel, str(path), dict(NPZ_SPLITS))


# -- manifest ---------------------------------------------------------------------------
def _read_case_image(paths: Sequence[Path], where: str) -> torch.Tensor:
    """One case's channels ``(C, *spatial)`` (a trailing spatial axis of 1 dropped: 2D)."""
    from ..io import read_image

    channels = []
    for p in paths:
        try:
            im = read_image(p)
        except Exception as exc:  # any reader failure is this row's problem
            raise DataError(
                f"{where}: cannot read image {p}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}",
                hint="fix the path or the file, or remove the row",
            ) from None
        x = unit_scaled(im.data)
        if x.ndim == 4 and x.shape[-1] == 1:
            x = x[..., 0]
        channels.append(x)
    try:
        return torch.cat(channels, dim=0)
    except RuntimeError:
        raise DataError(
            f"{where}: the channels {[str(p) for p in paths]} have different shapes "
            f"{[tuple(c.shape) for c in channels]}; resample them onto one grid"
        ) from None


def _manifest_rows(path: Path, data: DataSection) -> tuple[list[dict[str, str]], list[str]]:
    """The CSV's rows and the label columns it must have (each checked present)."""
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        columns = list(reader.fieldnames or [])
        rows = list(reader)
    label_cols = list(data.label_columns or [data.label or "label"])
    for col in [*data.images, *label_cols, "split"]:
        if col not in columns:
            key = "data.images" if col in data.images else ("data.label_columns" if data.label_columns else "data.label")
            if col == "split":
                key = "the split column"
            raise DataError(
                f"data.manifest: {path} has no column '{col}' ({key}); columns: {', '.join(columns)}",
                hint=f"add the column or set {key} to one of the columns" if col != "split" else "add a split column (train / validation / test)",
            )
    return rows, label_cols


def _manifest_classes(rows: Sequence[dict[str, str]], col: str, data: DataSection) -> list[str]:
    """Class names: ``data.class_names``, else the label column's values, sorted."""
    if data.class_names:
        return list(data.class_names)
    values = sorted({r[col].strip() for r in rows if r[col].strip()})
    if all(v.lstrip("-").isdigit() for v in values):
        return [str(i) for i in range(max(int(v) for v in values) + 1)] if values else []
    return values


def _label_index(value: str, names: Sequence[str], where: str, col: str) -> int:
    """A manifest label (a class name or index) as a class index."""
    v = value.strip()
    if v in names:
        return list(names).index(v)
    if v.lstrip("-").isdigit() and 0 <= int(v) < len(names):
        return int(v)
    raise DataError(
        f"{where}: label '{v}' in column '{col}' is not a declared class; classes: {', '.join(names)}",
        hint="add it to data.class_names or fix the row",
    )


def load_manifest(data: DataSection, path: Path, preprocess: Preprocess | None = None) -> ClassificationData:
    """The splits of a classification manifest CSV (columns in the module docstring).

    Raises:
        DataError: a missing column, a label that is not a declared class, an unreadable
            image (names the row and the file), images of different shapes.
    """
    rows, label_cols = _manifest_rows(path, data)
    multilabel = data.label_columns is not None
    names = list(data.class_names or label_cols) if multilabel else _manifest_classes(rows, label_cols[0], data)
    wanted = {v: k for k, v in data.splits.items()}
    found: dict[str, dict[str, list[Any]]] = {}
    for n, row in enumerate(rows, start=2):  # row 1 is the header
        split = wanted.get(row["split"].strip())
        if split is None:
            continue
        cid = (row.get("case_id") or "").strip() or Path(row[data.images[0]]).name
        where = f"data.manifest {path} row {n} (case {cid})"
        if multilabel:
            target: Any = [float(_label_index(row[c], ["0", "1"], where, c)) for c in label_cols]
        else:
            target = _label_index(row[label_cols[0]], names, where, label_cols[0])
        image = _read_case_image([path.parent / row[c].strip() for c in data.images], where)
        bucket = found.setdefault(split, {"ids": [], "x": [], "y": [], "patients": []})
        bucket["ids"].append(cid)
        bucket["x"].append(image)
        bucket["y"].append(target)
        bucket["patients"].append((row.get("patient_id") or cid).strip())
    return _assemble(found, names, multilabel, path, preprocess, data)


def _assemble(found: dict[str, dict[str, list[Any]]], names: list[str], multilabel: bool, source: Path,
              preprocess: Preprocess | None, data: DataSection) -> ClassificationData:
    """Stack the per-case lists of each split into a :class:`ClassificationData`."""
    splits = {}
    for split, b in found.items():
        x = _preprocessed(b["x"], b["ids"], preprocess, f"{source} ({split})")
        y = torch.as_tensor(b["y"], dtype=torch.float32 if multilabel else torch.int64)
        splits[split] = ClassificationSplit(split, b["ids"], x, y, b["patients"])
    if "train" not in splits:
        raise DataError(
            f"{source}: no training cases (split '{data.splits['train']}')",
            hint="check data.splits and the split column / folder names",
        )
    return ClassificationData(splits, names, multilabel, str(source), dict(data.splits))


# -- a folder per class -----------------------------------------------------------------
def load_class_folders(data: DataSection, root: Path, preprocess: Preprocess | None = None) -> ClassificationData:
    """The splits of ``root/<split>/<class name>/<file>`` (class names: ``data.class_names``,
    else the class folders of the training split, sorted); a folder inside a class folder
    is one case (a DICOM series).

    Raises:
        DataError: a class folder that is not a declared class, an unreadable image.
    """
    train_dir = root / data.splits["train"]
    if data.class_names:
        names = list(data.class_names)
    else:
        names = [p.name for p in list_folder(train_dir)[1]] if train_dir.is_dir() else []
    found: dict[str, dict[str, list[Any]]] = {}
    for split, folder_name in data.splits.items():
        folder = root / folder_name
        if not folder.is_dir():
            continue
        for class_dir in list_folder(folder)[1]:
            if class_dir.name not in names:
                raise DataError(
                    f"data.root: folder {class_dir} is not a declared class; classes: {', '.join(names)}",
                    hint="add it to data.class_names or move the folder",
                )
            files, series = list_folder(class_dir)  # a subfolder is a DICOM series
            for file in [*files, *series]:
                cid = f"{class_dir.name}/{file.name}"
                image = _read_case_image([file], f"data.root {folder} case {cid}")
                bucket = found.setdefault(split, {"ids": [], "x": [], "y": [], "patients": []})
                bucket["ids"].append(cid)
                bucket["x"].append(image)
                bucket["y"].append(names.index(class_dir.name))
                bucket["patients"].append(cid)
    return _assemble(found, names, False, root, preprocess, data)


def load_classification(data: DataSection, base_dir: Path, preprocess: Preprocess | None = None) -> ClassificationData:
    """The classification data ``data`` names (``npz``, ``manifest`` or ``root``).

    Args:
        data: the config's data section; relative paths are taken from ``base_dir``.
        preprocess: deterministic transforms applied to each image once.
    """
    source = data.npz or data.manifest or data.root
    path = source if Path(source).is_absolute() else base_dir / source  # type: ignore[arg-type]
    key = "npz" if data.npz else ("manifest" if data.manifest else "root")
    if not Path(path).exists():
        raise DataError(f"data.{key}: not found: {path}", hint=f"check data.{key}")
    if data.npz is not None:
        return load_npz(data, Path(path), preprocess)
    if data.manifest is not None:
        return load_manifest(data, Path(path), preprocess)
    return load_class_folders(data, Path(path), preprocess)
