"""Read one case from disk into a :class:`~medimg.core.Sample`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..core.affine import GRID_ATOL_MM
from ..core.errors import DataError, GeometryError
from ..core.image import Image
from ..core.sample import Sample
from ..core.spec import DataSection
from .records import CaseRecord

__all__ = ["load_sample", "check_same_grid", "GRID_ATOL_MM"]



def _fmt_affine(a: np.ndarray) -> str:
    return np.array2string(np.asarray(a)[:3], precision=4, suppress_small=True).replace("\n", "")


def check_same_grid(case_id: str, ref: Image, ref_path: Path, other: Image, other_path: Path) -> None:
    """Raise :class:`GeometryError` unless ``other`` is on ``ref``'s grid (shape, affine 1e-3 mm)."""
    if ref.same_grid(other):
        return
    raise GeometryError(
        f"case '{case_id}': '{other_path}' is not on the grid of '{ref_path}': "
        f"shape {list(other.spatial_shape)} vs {list(ref.spatial_shape)}, "
        f"affine {_fmt_affine(other.affine)} vs {_fmt_affine(ref.affine)} "
        f"(largest difference {np.abs(other.affine - ref.affine).max():.4g} mm)",
        hint="all channels and the label of a case must share one voxel grid; resample / "
        "co-register them before training",
    )


def _read(path: Path, kind: str) -> Image:
    from ..io import read_image

    return read_image(path, kind=kind)


def _read_label(record: CaseRecord, ref: Image, ref_path: Path) -> Image:
    """The case's label on ``ref``'s grid: a label map checked against it, or a DICOM SEG
    placed on it (never resampled; a SEG made on another series is a one-line error)."""
    from ..io.dicom_seg import is_seg_file, read_seg_on_grid

    path = Path(record.label_path)  # type: ignore[arg-type]
    if is_seg_file(path):
        return read_seg_on_grid(
            path, ref, f"its first image '{ref_path}'", who=f"case '{record.case_id}' (label column): ",
            remedy="give as the case's label a SEG made on the series of its first image, "
            "or a label map on that image's grid")
    lab = _read(path, "label")
    check_same_grid(record.case_id, ref, ref_path, lab, path)
    return lab


def load_sample(record: CaseRecord, data: DataSection) -> Sample:
    """Load a case: channels stacked into ``images["image"]``, label into ``images["label"]``.

    Args:
        record: the case's files.
        data: the experiment's data section (``label_names``, ``label_map``).

    Returns:
        A :class:`Sample` with ``"image"`` (kind intensity, float32, ``(C, I, J, K)``, one
        channel per file of ``record.image_paths``; a file with several channels adds them
        all) and, if labelled, ``"label"`` (kind label, ``(1, I, J, K)``, uint8 for up to
        256 classes else int64, values in ``range(len(label_names))`` after
        ``label_map``). ``meta`` holds ``source_affine`` (4x4 nested list),
        ``source_shape``, ``image_paths``, ``label_path``, ``split`` and the record's meta.

    A DICOM SEG label (``<case_id>.seg.dcm``, or any SEG file) is placed on the grid of
    the first image, the series it was made on
    (:func:`medimg.io.dicom_seg.read_seg_on_grid`), never resampled.

    Raises:
        GeometryError: a channel or the label is on another grid, or a SEG label's frames
            do not lie on the first image's grid (names both files).
        DataError: label values that are not integers or not in range.
    """
    paths = list(record.image_paths)
    if not paths:
        raise DataError(f"case '{record.case_id}' has no image files")
    images = [_read(p, "intensity") for p in paths]
    ref, ref_path = images[0], paths[0]
    for im, p in zip(images[1:], paths[1:]):
        check_same_grid(record.case_id, ref, ref_path, im, p)
    datas = [im.data if im.data.dtype == torch.float32 else im.data.to(torch.float32) for im in images]
    stacked = datas[0] if len(datas) == 1 else torch.cat(datas, dim=0)
    image = Image(stacked, ref.affine, "intensity", {"source_paths": [str(p) for p in paths]})
    out = {"image": image}
    if record.label_path is not None:
        lab = _read_label(record, ref, ref_path)
        out["label"] = _label_image(record, lab, data, ref.affine)
    meta = {
        **record.meta,
        "source_affine": ref.affine.tolist(),
        "source_shape": list(ref.spatial_shape),
        "image_paths": [str(p) for p in paths],
        "label_path": None if record.label_path is None else str(record.label_path),
        "split": record.split,
    }
    return Sample(out, case_id=record.case_id, meta=meta)


def _label_image(record: CaseRecord, lab: Image, data_cfg: DataSection, ref_affine: np.ndarray) -> Image:
    x = lab.data
    if x.shape[0] != 1:
        raise DataError(
            f"case '{record.case_id}': label '{record.label_path}' has {x.shape[0]} channels; expected one label map",
        )
    if x.is_floating_point():
        r = torch.round(x)
        if not torch.equal(r, x):
            bad = x[r != x][:5].tolist()
            raise DataError(
                f"case '{record.case_id}': label '{record.label_path}' holds non-integer values, e.g. {bad}",
                hint="a label map holds class indices; was an image given as the label?",
            )
        x = r.to(torch.int32)  # int32: no 8-byte copy of a large volume
    names = list(data_cfg.label_names)
    if data_cfg.label_map:
        from ..transforms.functional import map_values

        x = map_values(x, {int(k): int(v) for k, v in data_cfg.label_map.items()})
    # min/max first: torch.unique sorts the whole volume, needed only to name bad values
    if x.numel() and (int(x.min()) < 0 or int(x.max()) >= len(names)):
        values = torch.unique(x)
        bad = [int(v) for v in values.tolist() if not 0 <= v < len(names)]
        raise DataError(
            f"case '{record.case_id}': label '{record.label_path}' has values {bad} outside "
            f"0..{len(names) - 1} (label_names: {names}); values present: {values.tolist()}",
            hint="add the classes to data.label_names, or remap them with data.label_map",
        )
    dtype = torch.uint8 if len(names) <= 256 else torch.int64
    # the image's affine: equal within GRID_ATOL_MM, and exactly one grid downstream
    return Image(x.to(dtype), ref_affine, "label", {"source_path": str(record.label_path)})
