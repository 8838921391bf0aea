"""Writing a predicted label map as a DICOM SEG that references its source series (highdicom)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ...core.errors import GeometryError, ImageWriteError, exception_reason, require
from ...core.image import Image
from .geometry import _DIR_ATOL
from .source import _load_source_series, _SourceSeries

__all__ = ["write_dicom_seg"]


def _label_to_frames(label: Image, src: _SourceSeries, where: str) -> np.ndarray:
    """The label's values as source frames ``(slices, rows, cols)`` in source slice order.

    Raises:
        GeometryError: the label's voxel centres are not the source grid's (up to an axis
            permutation and flips).
    """
    m = np.linalg.inv(label.affine) @ src.affine  # source (col, row, slice) -> label index
    lin = m[:3, :3]
    perm = [int(np.argmax(np.abs(lin[:, c]))) for c in range(3)]
    ok = sorted(perm) == [0, 1, 2]
    if ok:
        expected = np.zeros((3, 3))
        for c, r in enumerate(perm):
            expected[r, c] = np.sign(lin[r, c])
        ok = np.allclose(lin, expected, atol=_DIR_ATOL)
    if ok:
        # voxel centres must coincide: translation 0 for + axes, n-1 for flipped axes
        for c, r in enumerate(perm):
            want = 0.0 if lin[r, c] > 0 else src.shape[c] - 1
            if abs(m[r, 3] - want) > 1e-2 or label.spatial_shape[r] != src.shape[c]:
                ok = False
    if not ok:
        raise GeometryError(
            f"{where}: the label is not on the source series' grid (label shape "
            f"{label.spatial_shape}, source shape (cols, rows, slices) {src.shape}; label affine\n"
            f"{np.round(label.affine, 4)}\nsource affine\n{np.round(src.affine, 4)})",
            hint="resample the prediction back to the source grid (inverse preprocessing) before "
            "writing it as DICOM SEG",
        )
    data = label.numpy()[0]
    # reorder label axes so axis c holds source axis c, then flip reversed ones
    arr = np.transpose(data, perm)
    for c, r in enumerate(perm):
        if lin[r, c] < 0:
            arr = np.flip(arr, c)
    # (cols, rows, slices) -> (slices, rows, cols)
    return np.ascontiguousarray(np.transpose(arr, (2, 1, 0)))


def _checked_values(frames: np.ndarray, num_names: int, where: str) -> np.ndarray:
    """The frames as int64 class indices, each in ``0..num_names-1``."""
    if frames.dtype.kind == "f":
        if not np.all(frames == np.round(frames)):
            raise ValueError(f"{where}: label values must be integers (found fractional values)")
    frames = frames.astype(np.int64)
    lo, hi = int(frames.min()), int(frames.max())
    if lo < 0 or hi >= num_names:
        raise ValueError(
            f"{where}: label values must lie in 0..{num_names - 1} (one per label name), "
            f"found {lo}..{hi}",
        )
    return frames


def _check_request(label: Image, label_names: Sequence[str], segmentation_type: str, where: str) -> str:
    """The upper-case segmentation type, after checking the label's shape and the names."""
    if label.spatial_ndim != 3 or label.num_channels != 1:
        raise GeometryError(f"{where}: expected a label image (1, I, J, K), got shape {label.shape}")
    if len(label_names) < 2:
        raise ValueError(f"{where}: label_names needs background plus at least one class, got {list(label_names)}")
    seg_type = segmentation_type.upper()
    if seg_type not in ("BINARY", "LABELMAP"):
        raise ValueError(f"{where}: segmentation_type must be 'BINARY' or 'LABELMAP', got {segmentation_type!r}")
    return seg_type


def _medimg_version() -> str:
    try:
        from importlib.metadata import version

        return version("medimg")
    except Exception:
        return "unknown"


def _segment_descriptions(hd: Any, label_names: Sequence[str], algorithm_name: str, version: str,
                          property_codes: Mapping[str, tuple[Any, Any]] | None) -> list[Any]:
    """One highdicom ``SegmentDescription`` per class ``1..len-1`` (SegmentNumber = label value)."""
    from pydicom.sr.codedict import codes

    algo = hd.AlgorithmIdentificationSequence(
        name=algorithm_name, family=codes.DCM.ArtificialIntelligence, version=version
    )
    descriptions = []
    for n in range(1, len(label_names)):
        name = str(label_names[n])
        cat, typ = (property_codes or {}).get(name, (codes.SCT.Tissue, codes.SCT.Organ))
        descriptions.append(
            hd.seg.SegmentDescription(
                segment_number=n,
                segment_label=name[:64],
                segmented_property_category=cat,
                segmented_property_type=typ,
                algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
                algorithm_identification=algo,
            )
        )
    return descriptions


def write_dicom_seg(
    label: Image,
    path: str | Path,
    *,
    source: str | Path | Sequence[Any],
    label_names: Sequence[str],
    algorithm_name: str = "medimg",
    algorithm_version: str | None = None,
    segmentation_type: Literal["BINARY", "LABELMAP"] = "BINARY",
    series_description: str | None = None,
    series_number: int = 300,
    property_codes: Mapping[str, tuple[Any, Any]] | None = None,
    manufacturer: str = "medimg",
) -> Path:
    """Write a label map predicted on a DICOM series as a DICOM SEG referencing it.

    Args:
        label: ``Image`` ``(1, I, J, K)`` of integer class indices (0 = background) on the
            source series' grid (same voxel centres; any axis order/flips, e.g. the grid
            ``medimg.io.read_dicom`` returns).
        path: output ``.dcm`` file.
        source: the series the label was predicted on: its folder, a list of its files or
            pydicom datasets.
        label_names: class names, index = label value (``label_names[0]`` is background and
            is not written). Every class ``1..len-1`` becomes a segment whose
            SegmentNumber equals the label value (PS3.3 C.8.20.2: segments are numbered
            1, 2, ...), so reading back gives the identical label values.
        algorithm_name: SegmentAlgorithmName / AlgorithmName of every segment.
        algorithm_version: AlgorithmVersion (default: medimg's version).
        segmentation_type: ``"BINARY"`` (Segmentation Storage, 1 bit per segment frame) or
            ``"LABELMAP"`` (Label Map Segmentation Storage, one frame per slice).
        series_description: SeriesDescription of the SEG (default "medimg segmentation").
        series_number: SeriesNumber of the SEG.
        property_codes: optional per-name ``(category, type)`` codes (pydicom ``Code``);
            default SCT "Tissue" / "Organ" (85756007 / 91772007).
        manufacturer: Manufacturer of the SEG (and model name).

    Returns:
        ``path``.

    Raises:
        GeometryError: the label is not on the source grid.
        ValueError: label values outside ``0..len(label_names)-1``.
        MissingDependencyError: highdicom is not installed.
    """
    hd = require("highdicom", "dicom-seg", "writing DICOM SEG")
    out_path = Path(path)
    where = f"DICOM SEG '{out_path.name}'"
    seg_type = _check_request(label, label_names, segmentation_type, where)
    src = _load_source_series(source)
    frames = _checked_values(_label_to_frames(label, src, where), len(label_names), where)
    version = algorithm_version if algorithm_version is not None else _medimg_version()
    try:
        seg = hd.seg.Segmentation(
            source_images=src.datasets,
            pixel_array=frames.astype(np.uint8 if len(label_names) <= 256 else np.uint16),
            segmentation_type=seg_type,
            segment_descriptions=_segment_descriptions(hd, label_names, algorithm_name, version, property_codes),
            series_instance_uid=hd.UID(),
            series_number=series_number,
            sop_instance_uid=hd.UID(),
            instance_number=1,
            manufacturer=manufacturer,
            manufacturer_model_name=manufacturer,
            software_versions=str(version),
            device_serial_number="0",
            series_description=series_description or "medimg segmentation",
            omit_empty_frames=True,
        )
    except Exception as exc:
        raise ImageWriteError(f"{where}: highdicom could not build the SEG ({exception_reason(exc)})") from exc
    out_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        seg.save_as(out_path)
    except OSError as exc:
        raise ImageWriteError(f"cannot write DICOM SEG to {out_path}: {exc}") from exc
    return out_path
