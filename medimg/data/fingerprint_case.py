"""One case's fingerprint: grid, orientation, intensities per channel, label classes.

:func:`case_fingerprint` reads a segmentation case once (its image files and its label
map) and returns plain data for ``fingerprint.json`` plus a small random sample of
foreground intensities per channel, which :mod:`medimg.data.fingerprint` pools into the
data set's statistics. It is a top-level function so a process pool can run it.

Rules (the numbers are module constants):

- **CT-like**: where the first channel's DICOM Modality tag is known, it decides (``CT``
  or not); otherwise the first channel's 0.5th percentile below ``-500`` (air in
  Hounsfield units; MR and z-scored images never go there) says CT.
- **Foreground** for intensity statistics: CT-like cases: the body, first channel
  ``> -500`` HU; otherwise the labelled voxels (label ``> 0``), or the nonzero voxels
  when the label map is empty.
- **Statistics** per channel inside the foreground: percentiles 0.5, 50, 99.5, mean, std,
  min and max.
- **Background**: the value all corner voxels share, per channel (a constant background,
  0 for skull-stripped MR, the minimum for MR z-scored after stripping), or None.
- **Body box**: the bounding box of the body (CT) or of the voxels that differ from the
  background (others; nonzero when there is no constant background), the region
  ``crop_foreground`` keeps.
- **RAS order**: ``ras_shape``, ``ras_spacing``, ``ras_body_shape`` list the grid's axes as
  they are after reorienting to RAS; the data set's medians are taken over these.
- **Label**: voxels per raw label value and connected components per foreground value
  (face connectivity, ``scipy.ndimage.label``). A DICOM SEG label is placed on the first
  channel's grid; one whose frames do not lie on it makes the case's ``problem``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import GeometryError, exception_reason

__all__ = ["case_fingerprint", "CT_AIR_HU", "SAMPLE_VOXELS", "intensity_stats"]

#: Intensities below this (HU) are air: a first channel reaching it is CT.
CT_AIR_HU = -500.0
#: Foreground voxels per case and channel kept for the data set's pooled statistics.
SAMPLE_VOXELS = 10_000


def intensity_stats(values: np.ndarray) -> dict[str, float]:
    """Percentiles 0.5/50/99.5, mean, std, min, max of ``values`` (NaN for none)."""
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size == 0:
        return {k: float("nan") for k in ("p0_5", "p50", "p99_5", "mean", "std", "min", "max")}
    p = np.percentile(v, [0.5, 50.0, 99.5])
    return {
        "p0_5": float(p[0]), "p50": float(p[1]), "p99_5": float(p[2]),
        "mean": float(v.mean()), "std": float(v.std()), "min": float(v.min()), "max": float(v.max()),
    }


def _read_one(item: Any) -> Any:
    """A channel as an Image: a path (``read_image``) or a DICOM ``SeriesInfo``
    chosen by a channel pattern (``read_series``)."""
    from ..io import read_image
    from ..io.dicom import SeriesInfo, read_series

    if isinstance(item, SeriesInfo):
        return read_series(item)
    return read_image(item, dtype="float32")


def _name(item: Any) -> str:
    """How messages name a channel: its file name, or its series description and number."""
    if hasattr(item, "series_instance_uid"):
        return f"series #{item.series_number} '{item.description}'"
    return Path(item).name


def _read(paths: list[Any]) -> tuple[np.ndarray, Any, str | None]:
    """The channels of ``paths`` (files, folders or DICOM ``SeriesInfo`` items) stacked
    ``(C, *spatial)`` as float32, the first image, and its DICOM modality (None for other
    files). Raises ValueError for disagreeing grids."""
    images = [_read_one(p) for p in paths]
    first = images[0]
    for p, im in zip(paths[1:], images[1:]):
        if not first.same_grid(im):
            raise ValueError(
                f"channel {_name(p)} has grid {list(im.spatial_shape)} at spacing "
                f"{_round(im.spacing)}, channel {_name(paths[0])} {list(first.spatial_shape)} at {_round(first.spacing)}"
            )
    data = np.concatenate([im.numpy().astype(np.float32, copy=False) for im in images], axis=0)
    modality = first.meta.get("modality") or None
    return data, first, (str(modality) if modality else None)


def _round(values: Any) -> list[float]:
    return [round(float(v), 3) for v in values]


def _ras(out: dict[str, Any], affine: np.ndarray, body: list[int]) -> None:
    """``ras_shape``, ``ras_spacing``, ``ras_body_shape``: the case's grid with its axes in
    RAS order (as after ``orient: RAS``), so that cases stored in different orientations
    are compared axis by axis; 2D images keep their order."""
    out["body_shape"] = body
    if len(out["shape"]) != 3:
        out.update(ras_shape=out["shape"], ras_spacing=out["spacing"], ras_body_shape=body)
        return
    import nibabel as nib

    axis = [int(a) for a in nib.orientations.io_orientation(np.asarray(affine, dtype=np.float64))[:, 0]]
    for key, values in (("ras_shape", out["shape"]), ("ras_spacing", out["spacing"]), ("ras_body_shape", body)):
        ordered = [0] * 3
        for i, v in enumerate(values):
            ordered[axis[i]] = v
        out[key] = ordered


def _background(data: np.ndarray) -> np.ndarray | None:
    """Per channel, the value every corner voxel shares (a constant background), or None
    when the corners of some channel differ: the rule ``corner_background`` applies in
    ``crop_foreground`` and ``normalize_intensity``."""
    import torch

    from ..transforms.functional import corner_background

    nd = data.ndim - 1  # the corners alone (any dtype or byte order) form a 2^nd cube with the same corners
    corners = np.asarray(data[(slice(None), *np.ix_(*[[0, -1]] * nd))], dtype=np.float64)
    values = corner_background(torch.from_numpy(corners))
    return None if any(v is None for v in values) else np.asarray(values, dtype=np.float64)


def _box_shape(mask: np.ndarray) -> list[int]:
    """The extent of the bounding box of ``mask`` per axis (the whole grid if empty)."""
    idx = np.nonzero(mask)
    if not idx[0].size:
        return [int(n) for n in mask.shape]
    return [int(i.max() - i.min() + 1) for i in idx]


def _label_stats(lab: np.ndarray) -> dict[str, Any]:
    from scipy import ndimage

    values, counts = np.unique(lab, return_counts=True)
    classes = {str(int(v)): int(c) for v, c in zip(values, counts)}
    components = {}
    for v in values:
        if v > 0:
            components[str(int(v))] = int(ndimage.label(lab == v)[1])
    return {"voxels": classes, "components": components}


def _read_label(label_path: str, first: Any, first_item: Any) -> Any:
    """The label map, or a DICOM SEG placed on the first channel's grid (the series it was
    made on; :func:`medimg.io.dicom_seg.read_seg_on_grid`)."""
    from ..io import read_image
    from ..io.dicom_seg import is_seg_file, read_seg_on_grid

    if is_seg_file(label_path):
        return read_seg_on_grid(label_path, first, f"the first channel ({_name(first_item)})", who="label ",
                                remedy="it is not resampled: give a SEG made on that series, or a label map on its grid")
    return read_image(label_path, kind="label")


def case_fingerprint(case_id: str, split: str, image_paths: list[Any], label_path: str | None,
                     seed: int = 0) -> dict[str, Any]:
    """The fingerprint of one case; ``problem`` says why it cannot be used (then the
    other entries may be missing). Never raises for a bad case. ``image_paths``: one file
    or folder per channel, or DICOM ``SeriesInfo`` items (a study's channels)."""
    out: dict[str, Any] = {"case_id": case_id, "split": split, "problem": None}
    try:
        data, first, modality = _read([p if hasattr(p, "series_instance_uid") else Path(p) for p in image_paths])
    except Exception as exc:  # noqa: BLE001 - reported per case, the others go on
        out["problem"] = f"cannot read its images: {exc}"
        return out
    out.update(
        shape=[int(s) for s in data.shape[1:]], channels=int(data.shape[0]),
        spacing=_round(first.spacing), axcodes="".join(first.axcodes), modality=modality,
    )
    lab = None
    if label_path is not None:
        try:
            label = _read_label(label_path, first, image_paths[0])
        except GeometryError as exc:  # a SEG made on another series: reported, never resampled
            out["problem"] = exception_reason(exc)
            return out
        except Exception as exc:  # noqa: BLE001
            out["problem"] = f"cannot read its label {Path(label_path).name}: {exc}"
            return out
        if not first.same_grid(label):
            out["problem"] = (
                f"image and label grids disagree: image {out['shape']} at spacing {out['spacing']} "
                f"({out['axcodes']}), label {list(label.spatial_shape)} at {_round(label.spacing)} "
                f"({''.join(label.axcodes)})"
            )
            return out
        lab = np.rint(label.numpy()[0]).astype(np.int64)
        out["label"] = _label_stats(lab)
    first_channel = data[0]
    ct = modality == "CT" if modality else float(np.percentile(first_channel, 0.5)) < CT_AIR_HU
    out["ct_like"] = bool(ct)
    if ct:
        mask, where = first_channel > CT_AIR_HU, "body (> -500 HU)"
    elif lab is not None and (lab > 0).any():
        mask, where = lab > 0, "label > 0"
    else:
        mask, where = np.any(data != 0, axis=0), "nonzero voxels"
    out["foreground"] = where
    background = _background(data)
    if ct:
        body = first_channel > CT_AIR_HU
    else:
        ref = np.zeros(data.shape[0]) if background is None else background
        body = np.any(data != ref.reshape((-1,) + (1,) * (data.ndim - 1)), axis=0)
    out["background"] = None if background is None else float(background[0])
    _ras(out, first.affine, _box_shape(body))
    out["nonzero_fraction"] = float(body.mean())
    out["foreground_fraction"] = float(mask.mean())
    if lab is not None:
        out["label_fraction"] = float((lab > 0).mean())
    rng = np.random.default_rng(seed)
    out["intensity"], samples = [], []
    for c in range(data.shape[0]):
        values = data[c][mask]
        out["intensity"].append(intensity_stats(values))
        take = values if values.size <= SAMPLE_VOXELS else rng.choice(values, SAMPLE_VOXELS, replace=False)
        samples.append(take.astype(np.float32))
    out["_samples"] = samples
    return out
