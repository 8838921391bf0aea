"""Reading a DICOM SEG -> a label (or probability) :class:`~medimg.core.Image`.

Each frame is placed by its own plane position into the target grid (the source
series' grid, or one built from the SEG's frames), never by trusting frame order.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ...core.errors import DicomError, GeometryError, exception_reason, require
from ...core.image import Image
from .geometry import _floats, _frame_into_grid, _grid_from_planes, _label_dtype, _PlaneGeometry
from .source import _source_grid

__all__ = ["read_dicom_seg", "is_dicom_seg", "SEG_SOP_CLASS_UIDS"]

#: Segmentation Storage and Label Map Segmentation Storage (PS3.4 B.5).
SEG_SOP_CLASS_UIDS = {
    "1.2.840.10008.5.1.4.1.1.66.4": "Segmentation Storage",
    "1.2.840.10008.5.1.4.1.1.66.7": "Label Map Segmentation Storage",
}

Combine = Literal["labelmap", "channels"]


def is_dicom_seg(path: str | Path) -> bool:
    """Whether ``path`` is a DICOM file whose SOPClassUID is a Segmentation (reads one tag)."""
    import pydicom

    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["SOPClassUID"])
    except Exception:  # noqa: BLE001  not DICOM, unreadable: not a SEG
        return False
    return str(ds.get("SOPClassUID", "")) in SEG_SOP_CLASS_UIDS


def read_dicom_seg(
    path: str | Path,
    source: Image | str | Path | Sequence[Any] | None = None,
    *,
    combine: Combine = "labelmap",
    threshold: float | None = 0.5,
) -> Image:
    """Read a DICOM SEG as a label image, on its source series' grid when given one.

    Args:
        path: the SEG file (Segmentation Storage, BINARY or FRACTIONAL, or Label Map
            Segmentation Storage).
        source: the series the SEG was made on: an ``Image`` read by
            ``medimg.io.read_dicom`` (the result then has exactly its shape and affine), a
            folder of that series' files, or a list of its pydicom datasets. ``None``: the
            grid is built from the SEG's own frame positions (native order: ``i`` =
            column, ``j`` = row, ``k`` = slice along the normal).
        combine: ``"labelmap"``: one channel whose voxel values are segment numbers
            (0 = no segment); overlapping segments are an error. ``"channels"``: one
            binary channel per segment, in the order of ``meta["segment_numbers"]``.
        threshold: FRACTIONAL SEGs only: probability at or above which a voxel belongs to
            a segment (default 0.5). ``None`` keeps the probabilities: the result then has
            one float32 channel per segment (``kind="probabilities"``, values in [0, 1]).

    Returns:
        A 3D ``Image`` ``(C, I, J, K)`` with an RAS affine (a tiled slide SEG: 2D
        ``(C, rows, columns)`` of the total pixel matrix, ``meta["coordinate_system"] ==
        "SLIDE"``). ``kind`` is ``"label"`` (``"probabilities"`` with ``threshold=None``).
        ``meta`` holds ``segments`` (number -> label, category/type codes, algorithm),
        ``segment_numbers`` (channel order for ``"channels"``), ``label_names``
        (index = label value; ``"background"`` at 0), ``segmentation_type``,
        ``source_sop_instance_uids``, ``series_instance_uid``, ``frame_of_reference_uid``
        and ``path``.

    Raises:
        DicomError: the file is not a readable SEG, or segments overlap with
            ``combine="labelmap"``.
        GeometryError: a frame does not lie on the source grid.
    """
    if combine not in ("labelmap", "channels"):
        raise ValueError(f"combine must be 'labelmap' or 'channels', got {combine!r}")
    p = Path(path)
    where = str(p)
    ds = _open_seg(p)
    seg_type = str(ds.get("SegmentationType", "")).upper()
    if seg_type not in ("BINARY", "FRACTIONAL", "LABELMAP"):
        raise DicomError(f"{where}: unknown SegmentationType {seg_type!r} (expected BINARY, FRACTIONAL or LABELMAP)")
    meta = _seg_meta(ds, where, seg_type)
    seg_numbers = meta["segment_numbers"]
    if str(ds.get("DimensionOrganizationType", "")).upper().startswith("TILED") or (
        "TotalPixelMatrixRows" in ds and "PlanePositionSequence" not in _first_frame_groups(ds)
    ):
        return _read_tiled(p, ds, meta, seg_type, seg_numbers, combine, threshold)
    values = _frame_values(ds, where, seg_type)
    planes, frame_segments = _frame_planes(ds, where, seg_type, len(values))
    if source is not None:
        affine, shape = _checked_source_grid(source, meta, where)
    else:
        affine, shape = _grid_from_planes(planes, int(ds.Rows), int(ds.Columns), where)
    probabilities = seg_type == "FRACTIONAL" and threshold is None
    if probabilities or combine == "channels":
        out = np.zeros((max(len(seg_numbers), 1), *shape), dtype=np.float32 if probabilities else np.uint8)
    else:
        out = np.zeros((1, *shape), dtype=_label_dtype(max(seg_numbers, default=1)))
    channel_of = {n: i for i, n in enumerate(seg_numbers)}
    for f in range(len(values)):
        placement = _frame_into_grid(affine, shape, planes[f], int(ds.Rows), int(ds.Columns), f"{where} frame {f + 1}")
        frame = placement.block(values[f])
        if probabilities:
            ch = channel_of[frame_segments[f]]
            out[(ch, *placement.index)] = np.maximum(out[(ch, *placement.index)], frame)
        else:
            _paint_frame(out, placement.index, frame, frame_segments[f], seg_type, combine, threshold,
                         channel_of, (where, f + 1))
    meta["combine"] = combine
    return Image(out, affine, kind="probabilities" if probabilities else "label", meta=meta)


def _open_seg(path: Path) -> Any:
    """The SEG's dataset, or a :class:`DicomError` saying why it is not one."""
    import pydicom

    where = str(path)
    try:
        ds = pydicom.dcmread(path)
    except FileNotFoundError as exc:
        raise DicomError(f"SEG file not found: {path}") from exc
    except Exception as exc:
        raise DicomError(f"{where}: not a readable DICOM file ({exception_reason(exc)})") from exc
    sop = str(ds.get("SOPClassUID", ""))
    if sop not in SEG_SOP_CLASS_UIDS:
        raise DicomError(
            f"{where}: not a DICOM SEG (SOPClassUID {sop or 'missing'}; expected one of "
            f"{', '.join(f'{k} ({v})' for k, v in SEG_SOP_CLASS_UIDS.items())})",
            hint="read images with medimg.io.read_dicom",
        )
    return ds


def _seg_meta(ds: Any, where: str, seg_type: str) -> dict[str, Any]:
    """``Image.meta`` of a SEG: segments, their numbers and names, UIDs, referenced instances."""
    segments = _segment_info(ds)
    seg_numbers = sorted(n for n in segments if not (seg_type == "LABELMAP" and n == 0))
    meta: dict[str, Any] = {
        "path": where,
        "segmentation_type": seg_type,
        "segments": segments,
        "segment_numbers": seg_numbers,
        "series_instance_uid": str(ds.get("SeriesInstanceUID", "")),
        "frame_of_reference_uid": str(ds.get("FrameOfReferenceUID", "")),
        "source_sop_instance_uids": _referenced_instances(ds),
        "content_label": str(ds.get("ContentLabel", "")),
    }
    if seg_numbers and seg_numbers == list(range(1, len(seg_numbers) + 1)):
        meta["label_names"] = ["background"] + [segments[n]["label"] for n in seg_numbers]
    return meta


def _frame_values(ds: Any, where: str, seg_type: str) -> np.ndarray:
    """The frames ``(n, rows, cols)``: stored values, or probabilities for FRACTIONAL."""
    try:
        pixels = ds.pixel_array
    except Exception as exc:
        raise DicomError(f"{where}: cannot decode the SEG's pixel data ({exception_reason(exc)})") from exc
    n_frames = int(ds.get("NumberOfFrames", 1) or 1)
    pixels = np.asarray(pixels).reshape(n_frames, int(ds.Rows), int(ds.Columns))
    if seg_type == "FRACTIONAL":
        max_val = float(ds.get("MaximumFractionalValue", 255) or 255)
        return pixels.astype(np.float32) / max_val
    return pixels


def _frame_planes(ds: Any, where: str, seg_type: str, n_frames: int) -> tuple[list[_PlaneGeometry], list[int]]:
    """Each frame's plane (PS3.3 C.7.6.16.2) and segment number (0 for LABELMAP)."""
    planes: list[_PlaneGeometry] = []
    frame_segments: list[int] = []
    for f in range(n_frames):
        pos = _functional(ds, f, "PlanePositionSequence")
        ori = _functional(ds, f, "PlaneOrientationSequence")
        pm = _functional(ds, f, "PixelMeasuresSequence")
        if pos is None or ori is None or pm is None or "ImagePositionPatient" not in pos:
            raise DicomError(
                f"{where}: frame {f + 1} has no plane position/orientation/pixel measures "
                "(PS3.3 C.7.6.16.2); only SEGs in the patient coordinate system can be placed "
                "on a 3D grid",
                hint="projection (e.g. CR/DX) and frame-of-reference-free SEGs are not supported",
            )
        planes.append(
            _PlaneGeometry(
                _floats(pos.ImagePositionPatient, 3, "ImagePositionPatient", where),
                *np.split(_floats(ori.ImageOrientationPatient, 6, "ImageOrientationPatient", where), 2),
                tuple(float(v) for v in _floats(pm.PixelSpacing, 2, "PixelSpacing", where)),  # type: ignore[arg-type]
            )
        )
        if seg_type == "LABELMAP":
            frame_segments.append(0)
            continue
        sid = _functional(ds, f, "SegmentIdentificationSequence")
        if sid is None:
            raise DicomError(f"{where}: frame {f + 1} has no SegmentIdentificationSequence")
        frame_segments.append(int(sid.ReferencedSegmentNumber))
    return planes, frame_segments


def _checked_source_grid(source: Any, meta: dict[str, Any], where: str) -> tuple[np.ndarray, tuple[int, ...]]:
    """The source's grid, after checking its FrameOfReferenceUID against the SEG's."""
    affine, shape, src_img = _source_grid(source)
    if src_img is not None and src_img.meta.get("frame_of_reference_uid") and meta["frame_of_reference_uid"]:
        if src_img.meta["frame_of_reference_uid"] != meta["frame_of_reference_uid"]:
            raise GeometryError(
                f"{where}: the SEG's FrameOfReferenceUID {meta['frame_of_reference_uid']} differs "
                f"from the source image's {src_img.meta['frame_of_reference_uid']}",
                hint="pass the series the SEG was made on, or read it without a source",
            )
    return affine, shape


def _paint_frame(out: np.ndarray, index: tuple, frame: np.ndarray, seg: int, seg_type: str, combine: str,
                 threshold: float | None, channel_of: dict[int, int], frame_of: tuple[str, int]) -> None:
    """Write one placed frame into ``out`` (labels or binary channels), in place.

    ``frame_of`` is ``(SEG path, 1-based frame number)``, for messages.

    Raises:
        DicomError: an undefined segment, or overlapping segments in a label map.
    """
    if seg_type == "LABELMAP":
        if combine == "channels":
            for n in np.unique(frame):
                if n in channel_of:
                    out[(channel_of[int(n)], *index)] |= (frame == n).astype(np.uint8)
        else:
            out[(0, *index)] = np.where(frame > 0, frame, out[(0, *index)]).astype(out.dtype)
        return
    where, frame_no = frame_of
    mask = frame >= threshold if seg_type == "FRACTIONAL" else frame > 0
    if seg not in channel_of:
        raise DicomError(f"{where}: frame {frame_no} refers to segment {seg}, which the SegmentSequence does not define")
    if combine == "channels":
        out[(channel_of[seg], *index)] |= mask.astype(np.uint8)
        return
    region = out[(0, *index)]
    clash = mask & (region > 0) & (region != seg)
    if clash.any():
        other = int(region[clash][0])
        raise DicomError(
            f"{where}: segments {other} and {seg} overlap ({int(clash.sum())} voxels in "
            f"frame {frame_no}); they cannot be one label map",
            hint="read with combine='channels' for one channel per segment",
        )
    out[(0, *index)] = np.where(mask, seg, region).astype(out.dtype)


def _segment_info(ds: Any) -> dict[int, dict[str, Any]]:
    """Segment number -> label, category and type codes, algorithm (PS3.3 C.8.20.2)."""
    out: dict[int, dict[str, Any]] = {}
    for item in ds.get("SegmentSequence", []):
        num = int(item.SegmentNumber)
        algo = item.get("SegmentationAlgorithmIdentificationSequence")
        out[num] = {
            "label": str(item.get("SegmentLabel", f"segment {num}")),
            "category": _code(item, "SegmentedPropertyCategoryCodeSequence"),
            "type": _code(item, "SegmentedPropertyTypeCodeSequence"),
            "algorithm_type": str(item.get("SegmentAlgorithmType", "")),
            "algorithm_name": str(item.get("SegmentAlgorithmName", ""))
            or (str(algo[0].get("AlgorithmName", "")) if algo else ""),
            "algorithm_version": str(algo[0].get("AlgorithmVersion", "")) if algo else "",
        }
    return out


def _code(item: Any, seq_name: str) -> dict[str, str] | None:
    """A coded concept (value, scheme, meaning) of a segment, or None."""
    seq = item.get(seq_name)
    if not seq:
        return None
    c = seq[0]
    return {
        "value": str(c.get("CodeValue", c.get("LongCodeValue", ""))),
        "scheme": str(c.get("CodingSchemeDesignator", "")),
        "meaning": str(c.get("CodeMeaning", "")),
    }


def _functional(ds: Any, frame: int, seq_name: str) -> Any:
    """An item of a functional group macro: per-frame first, then shared (PS3.3 C.7.6.16)."""
    per = ds.get("PerFrameFunctionalGroupsSequence")
    if per is not None and frame < len(per) and seq_name in per[frame]:
        seq = per[frame].get(seq_name)
        if seq:
            return seq[0]
    shared = ds.get("SharedFunctionalGroupsSequence")
    if shared and seq_name in shared[0]:
        seq = shared[0].get(seq_name)
        if seq:
            return seq[0]
    return None


def _first_frame_groups(ds: Any) -> Any:
    """The functional groups of frame 1 (per-frame, else shared)."""
    per = ds.get("PerFrameFunctionalGroupsSequence")
    if per:
        return per[0]
    shared = ds.get("SharedFunctionalGroupsSequence")
    return shared[0] if shared else {}


def _referenced_instances(ds: Any) -> list[str]:
    """SOPInstanceUIDs of the source images the SEG references."""
    uids: list[str] = []
    for s in ds.get("ReferencedSeriesSequence", []):
        for inst in s.get("ReferencedInstanceSequence", []):
            uids.append(str(inst.ReferencedSOPInstanceUID))
    return uids


def _read_tiled(
    path: Path,
    ds: Any,
    meta: dict[str, Any],
    seg_type: str,
    seg_numbers: list[int],
    combine: str,
    threshold: float | None,
) -> Image:
    """A tiled (slide microscopy) SEG as a 2D image of its total pixel matrix."""
    hd = require("highdicom", "dicom-seg", "reading a tiled (slide microscopy) DICOM SEG")
    seg = hd.seg.Segmentation.from_dataset(ds, copy=False)
    where = str(path)
    probabilities = seg_type == "FRACTIONAL" and threshold is None
    try:
        # (rows, cols, segments): one mask (or probability) per segment, for all three types
        per_segment = np.moveaxis(seg.get_total_pixel_matrix(segment_numbers=seg_numbers), -1, 0)
    except Exception as exc:
        raise DicomError(
            f"{where}: cannot assemble the tiled SEG's total pixel matrix ({exception_reason(exc)})"
        ) from exc
    if probabilities:
        arr = per_segment.astype(np.float32)
    else:
        masks = per_segment >= threshold if seg_type == "FRACTIONAL" else per_segment > 0
        if combine == "channels":
            arr = masks.astype(np.uint8)
        else:
            if (masks.sum(0) > 1).any():
                raise DicomError(
                    f"{where}: segments overlap; they cannot be one label map",
                    hint="read with combine='channels' for one channel per segment",
                )
            nums = np.asarray(seg_numbers).reshape(-1, 1, 1)
            top = int(max(seg_numbers, default=1))
            arr = (masks * nums).max(0, keepdims=True).astype(_label_dtype(top))
    pm = _functional(ds, 0, "PixelMeasuresSequence")
    dr, dc = (float(v) for v in pm.PixelSpacing) if pm is not None else (1.0, 1.0)
    affine = np.diag([dr, dc, 1.0, 1.0])  # slide pixels: (row, column) in mm, no patient frame
    meta["coordinate_system"] = "SLIDE"
    meta["combine"] = combine
    kind = "probabilities" if probabilities else "label"
    return Image(np.ascontiguousarray(arr), affine, kind=kind, meta=meta)
