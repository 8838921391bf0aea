"""DICOM Segmentation (SEG) objects in and out.

Reading (:func:`read_dicom_seg`) turns a SEG of any of its kinds (PS3.3 A.51 Segmentation
IOD, BINARY and FRACTIONAL; A.51.x Label Map Segmentation, LABELMAP) into a label
:class:`~medimg.core.Image` on its source series' grid, so a SEG can be a training label.
Writing (:func:`write_dicom_seg`) stores a predicted label map as a SEG that references the
series it was predicted on.

Geometry is handled in world coordinates, never by trusting frame order:

* every SEG frame carries its own plane position (PS3.3 C.7.6.16.2.3, Plane Position
  (Patient)) and shares an orientation (C.7.6.16.2.4) and pixel spacing (C.7.6.16.2.1);
  a frame's pixel ``(r, c)`` lies at ``IPP + c * dc * X + r * dr * Y`` (LPS mm), with
  ``X, Y`` the first and second triplets of ImageOrientationPatient and
  ``PixelSpacing = (dr, dc)`` (C.7.6.2.1.1 and 10.7.1.3: row spacing first);
* each frame is mapped into the target grid through the target's voxel -> RAS affine,
  which must be the same lattice up to an axis permutation and flips (checked: a
  :class:`~medimg.core.errors.GeometryError` says how far off it is otherwise).

So a SEG read with its source series lands on exactly the grid that
``medimg.io.read_dicom`` gives that series, whatever axis order that grid uses, and a SEG
written from a label on the source grid puts frame ``k`` on source slice ``k``, including
series with flipped in-plane axes (ImageOrientationPatient ``(-1, 0, 0, 0, -1, 0)``).

Without a source the grid is built from the SEG alone, in DICOM's native voxel order:
``i`` = column, ``j`` = row, ``k`` = slice, slices ordered along the normal
``X x Y`` and spaced by the smallest distance between distinct frame positions; frames
omitted because they were empty (highdicom's default) become zero slices.

Tiled slide-microscopy SEGs (``TILED_SPARSE``/``TILED_FULL``, slide coordinate system) are
read as a 2D image ``(C, rows, columns)`` of the total pixel matrix (needs highdicom).

Reading needs only pydicom (plus highdicom for tiled slide SEGs); writing needs highdicom,
the optional extra ``pip install 'medimg[dicom-seg]'``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..core.affine import lps_to_ras
from ..core.errors import DicomError, GeometryError, ImageWriteError, require
from ..core.image import Image

__all__ = ["read_dicom_seg", "write_dicom_seg", "SEG_SOP_CLASS_UIDS"]

#: Segmentation Storage and Label Map Segmentation Storage (PS3.4 B.5).
SEG_SOP_CLASS_UIDS = {
    "1.2.840.10008.5.1.4.1.1.66.4": "Segmentation Storage",
    "1.2.840.10008.5.1.4.1.1.66.7": "Label Map Segmentation Storage",
}

_POS_ATOL = 1e-2  # mm: DS values are written with ~6 significant digits
_DIR_ATOL = 1e-3  # tolerance on direction cosines / index-space unit vectors


# ------------------------------------------------------------------------------------
# small helpers
# ------------------------------------------------------------------------------------
def _floats(value: Any, n: int, what: str, where: str) -> np.ndarray:
    try:
        arr = np.asarray([float(v) for v in value], dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DicomError(f"{where}: {what} is not numeric (found {value!r})") from exc
    if arr.shape != (n,):
        raise DicomError(f"{where}: {what} must have {n} values, found {arr.size}")
    return arr


def _label_dtype(max_value: int) -> np.dtype:
    if max_value <= np.iinfo(np.uint8).max:
        return np.dtype(np.uint8)
    if max_value <= np.iinfo(np.int16).max:
        return np.dtype(np.int16)
    return np.dtype(np.int32)


@dataclass(frozen=True)
class _PlaneGeometry:
    """Geometry of one 2D frame in LPS mm (PS3.3 C.7.6.2.1.1)."""

    position: np.ndarray  # (3,) LPS of pixel (row 0, col 0) centre
    row_dir: np.ndarray  # X: direction of increasing column index
    col_dir: np.ndarray  # Y: direction of increasing row index
    spacing: tuple[float, float]  # (between rows, between columns) mm

    def native_affine(self, slice_vector: np.ndarray | None = None) -> np.ndarray:
        """voxel (col, row, slice) -> RAS affine of a stack starting at this frame."""
        dr, dc = self.spacing
        normal = np.cross(self.row_dir, self.col_dir)
        a = np.eye(4)
        a[:3, 0] = self.row_dir * dc
        a[:3, 1] = self.col_dir * dr
        a[:3, 2] = normal if slice_vector is None else slice_vector
        a[:3, 3] = self.position
        return lps_to_ras(a)


@dataclass(frozen=True)
class _Placement:
    """Where a ``(rows, cols)`` frame lands in a 3D grid: ``grid[index] = block(frame)``."""

    index: tuple[slice, slice, slice]
    slice_axis: int
    flip_rows: bool
    flip_cols: bool
    transpose: bool  # the grid's in-plane axis order is (column axis, row axis)

    def block(self, frame: np.ndarray) -> np.ndarray:
        """The frame oriented as the grid's 3D block at :attr:`index`."""
        f = frame
        if self.flip_rows:
            f = f[::-1, :]
        if self.flip_cols:
            f = f[:, ::-1]
        if self.transpose:
            f = f.T
        return np.expand_dims(f, self.slice_axis)


def _frame_into_grid(
    target_affine: np.ndarray,
    target_shape: Sequence[int],
    plane: _PlaneGeometry,
    rows: int,
    cols: int,
    where: str,
) -> _Placement:
    """Where a ``(rows, cols)`` frame at ``plane`` lands in a 3D target grid.

    Raises:
        GeometryError: the frame's pixels are not voxels of the grid (other spacing,
            orientation, off-lattice position, or outside it).
    """
    m = np.linalg.inv(target_affine) @ plane.native_affine()  # (col, row, 0) -> target index
    origin = m[:3, 3]

    def unit_axis(v: np.ndarray, name: str) -> tuple[int, int]:
        ax = int(np.argmax(np.abs(v)))
        sign = 1 if v[ax] > 0 else -1
        expected = np.zeros(3)
        expected[ax] = sign
        if not np.allclose(v, expected, atol=_DIR_ATOL):
            raise GeometryError(
                f"{where}: the SEG's {name} axis does not follow one axis of the target grid "
                f"(one {name} step = {np.round(v, 4).tolist()} voxels of the target; expected a "
                "unit step along one axis)",
                hint="the SEG and the image must share pixel spacing and orientation; "
                "pass the SEG's own source series or read it without a source",
            )
        return ax, sign

    ax_c, sgn_c = unit_axis(m[:3, 0], "column")
    ax_r, sgn_r = unit_axis(m[:3, 1], "row")
    if ax_c == ax_r:
        raise GeometryError(f"{where}: SEG rows and columns map to the same target axis {ax_c}")
    ax_s = 3 - ax_c - ax_r
    rounded = np.round(origin)
    # tolerance in voxels: the DS rounding of positions (mm) over the smallest spacing
    tol = _POS_ATOL / max(min(np.linalg.norm(target_affine[:3, :3], axis=0)), 1e-6) + 1e-3
    if not np.allclose(origin, rounded, atol=tol):
        raise GeometryError(
            f"{where}: the SEG frame at LPS {np.round(plane.position, 3).tolist()} mm falls "
            f"between voxels of the target grid (target index {np.round(origin, 3).tolist()})",
            hint="the SEG was not made on this series' grid; read it without a source",
        )
    o = rounded.astype(int)
    idx: list[slice] = [slice(0, 0)] * 3
    for ax, sgn, n in ((ax_c, sgn_c, cols), (ax_r, sgn_r, rows)):
        lo = o[ax] if sgn > 0 else o[ax] - n + 1
        if lo < 0 or lo + n > target_shape[ax]:
            raise GeometryError(
                f"{where}: the SEG frame reaches outside the target grid along axis {ax} "
                f"(voxels {lo}..{lo + n - 1}, grid has 0..{target_shape[ax] - 1})",
                hint="pass the source series the SEG was made on",
            )
        idx[ax] = slice(lo, lo + n)
    if not 0 <= o[ax_s] < target_shape[ax_s]:
        raise GeometryError(
            f"{where}: the SEG frame at LPS {np.round(plane.position, 3).tolist()} mm is outside "
            f"the target grid's slices (slice index {o[ax_s]}, grid has 0..{target_shape[ax_s] - 1})",
            hint="pass the source series the SEG was made on",
        )
    idx[ax_s] = slice(o[ax_s], o[ax_s] + 1)
    return _Placement((idx[0], idx[1], idx[2]), ax_s, sgn_r < 0, sgn_c < 0, ax_c < ax_r)


# ------------------------------------------------------------------------------------
# source series (header-only), until medimg.io.dicom provides it
# ------------------------------------------------------------------------------------
@dataclass
class _SourceSeries:
    """A source series sorted along its normal, with its native grid."""

    datasets: list  # pydicom Datasets (headers), slice order
    affine: np.ndarray  # native voxel (col, row, slice) -> RAS
    shape: tuple[int, int, int]  # (cols, rows, slices)


def _load_source_series(source: Any) -> _SourceSeries:
    """Headers of a single-frame source series, sorted along the slice normal, and its grid.

    A folder or file goes through :func:`medimg.io.dicom.load_series_datasets` (the same
    discovery, grouping and sorting as the volume reader, so SEG frames and image slices
    agree); a list of datasets is sorted here by the projection of ImagePositionPatient on
    the slice normal (PS3.3 C.7.6.2.1.1).
    """
    if isinstance(source, (str, Path)):
        from .dicom import load_series_datasets

        p = Path(source)
        if not p.exists():
            raise DicomError(f"source series not found: {p}")
        datasets = [ds for ds in load_series_datasets(p) if "ImagePositionPatient" in ds]
        where = str(p)
    else:
        datasets = list(source)
        where = "source datasets"
    if not datasets:
        raise DicomError(f"{where}: no DICOM image with ImagePositionPatient found")
    datasets = [_with_sop_class(ds) for ds in datasets]
    series = {str(ds.get("SeriesInstanceUID", "")) for ds in datasets}
    if len(series) > 1:
        raise DicomError(
            f"{where}: holds {len(series)} series; a SEG source must be one series",
            hint="pass the folder (or list of files) of the one series the label was made on",
        )
    ds0 = datasets[0]
    plane = _plane_of(ds0, where)
    normal = np.cross(plane.row_dir, plane.col_dir)
    proj = [float(np.dot(_floats(d.ImagePositionPatient, 3, "ImagePositionPatient", where), normal)) for d in datasets]
    order = np.argsort(proj, kind="stable")
    datasets = [datasets[i] for i in order]
    proj_sorted = np.asarray(proj)[order]
    if len(datasets) > 1 and np.min(np.diff(proj_sorted)) < 1e-3:
        raise DicomError(f"{where}: two source slices share a position", hint="remove duplicate files")
    first = _floats(datasets[0].ImagePositionPatient, 3, "ImagePositionPatient", where)
    if len(datasets) > 1:
        last = _floats(datasets[-1].ImagePositionPatient, 3, "ImagePositionPatient", where)
        step = (last - first) / (len(datasets) - 1)
    else:
        thick = float(ds0.get("SliceThickness", 1.0) or 1.0)
        step = normal * thick
    plane0 = _PlaneGeometry(first, plane.row_dir, plane.col_dir, plane.spacing)
    affine = plane0.native_affine(step)
    return _SourceSeries(datasets, affine, (int(ds0.Columns), int(ds0.Rows), len(datasets)))


def _with_sop_class(ds: Any) -> Any:
    """``ds``, or a shallow copy whose empty SOPClassUID is taken from the file meta.

    Some anonymisers blank SOPClassUID (0008,0016) but keep MediaStorageSOPClassUID
    (0002,0002), which PS3.10 7.1 requires to be the same value; highdicom needs the former.
    """
    if str(ds.get("SOPClassUID", "")):
        return ds
    meta_uid = str(getattr(ds, "file_meta", {}).get("MediaStorageSOPClassUID", "")) if hasattr(ds, "file_meta") else ""
    if not meta_uid:
        return ds
    import pydicom

    out = pydicom.Dataset(ds)
    out.file_meta = ds.file_meta
    out.SOPClassUID = meta_uid
    return out


def _plane_of(ds: Any, where: str) -> _PlaneGeometry:
    iop = _floats(ds.ImageOrientationPatient, 6, "ImageOrientationPatient", where)
    ps = _floats(ds.PixelSpacing, 2, "PixelSpacing", where)
    ipp = _floats(ds.ImagePositionPatient, 3, "ImagePositionPatient", where)
    return _PlaneGeometry(ipp, iop[:3], iop[3:], (float(ps[0]), float(ps[1])))


def _source_grid(source: Image | str | Path | Sequence[Any]) -> tuple[np.ndarray, tuple[int, ...], Image | None]:
    """(affine, spatial shape, Image or None) of the grid a SEG is read onto."""
    if isinstance(source, Image):
        if source.spatial_ndim != 3:
            raise GeometryError(f"the source image must be 3D, got spatial shape {source.spatial_shape}")
        return source.affine, source.spatial_shape, source
    if isinstance(source, (str, Path)):
        try:  # the project's series reader defines the grid a training image is on
            from .dicom import read_dicom  # type: ignore[attr-defined]
        except ImportError:
            read_dicom = None
        if read_dicom is not None:
            img = read_dicom(source)
            return img.affine, img.spatial_shape, img
    s = _load_source_series(source)
    return s.affine, s.shape, None


# ------------------------------------------------------------------------------------
# reading
# ------------------------------------------------------------------------------------
def _segment_info(ds: Any) -> dict[int, dict[str, Any]]:
    out: dict[int, dict[str, Any]] = {}
    for item in ds.get("SegmentSequence", []):
        num = int(item.SegmentNumber)

        def code(seq_name: str) -> dict[str, str] | None:
            seq = item.get(seq_name)
            if not seq:
                return None
            c = seq[0]
            return {
                "value": str(c.get("CodeValue", c.get("LongCodeValue", ""))),
                "scheme": str(c.get("CodingSchemeDesignator", "")),
                "meaning": str(c.get("CodeMeaning", "")),
            }

        algo = item.get("SegmentationAlgorithmIdentificationSequence")
        out[num] = {
            "label": str(item.get("SegmentLabel", f"segment {num}")),
            "category": code("SegmentedPropertyCategoryCodeSequence"),
            "type": code("SegmentedPropertyTypeCodeSequence"),
            "algorithm_type": str(item.get("SegmentAlgorithmType", "")),
            "algorithm_name": str(item.get("SegmentAlgorithmName", ""))
            or (str(algo[0].get("AlgorithmName", "")) if algo else ""),
            "algorithm_version": str(algo[0].get("AlgorithmVersion", "")) if algo else "",
        }
    return out


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


def read_dicom_seg(
    seg_path: str | Path,
    source: Image | str | Path | Sequence[Any] | None = None,
    *,
    combine: str = "labelmap",
    threshold: float | None = 0.5,
) -> Image:
    """Read a DICOM SEG as a label image, on its source series' grid when given one.

    Args:
        seg_path: the SEG file (Segmentation Storage, BINARY or FRACTIONAL, or Label Map
            Segmentation Storage).
        source: the series the SEG was made on: an ``Image`` read by
            ``medimg.io.read_dicom`` (the result then has exactly its shape and affine), a
            folder of that series' files, or a list of its pydicom datasets. ``None``: the
            grid is built from the SEG's own frame positions (see module docstring).
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
    import pydicom

    path = Path(seg_path)
    where = str(path)
    if combine not in ("labelmap", "channels"):
        raise ValueError(f"combine must be 'labelmap' or 'channels', got {combine!r}")
    try:
        ds = pydicom.dcmread(path)
    except FileNotFoundError as exc:
        raise DicomError(f"SEG file not found: {path}") from exc
    except Exception as exc:
        raise DicomError(f"{where}: not a readable DICOM file ({type(exc).__name__}: {exc})") from exc
    sop = str(ds.get("SOPClassUID", ""))
    if sop not in SEG_SOP_CLASS_UIDS:
        raise DicomError(
            f"{where}: not a DICOM SEG (SOPClassUID {sop or 'missing'}; expected one of "
            f"{', '.join(f'{k} ({v})' for k, v in SEG_SOP_CLASS_UIDS.items())})",
            hint="read images with medimg.io.read_dicom",
        )
    seg_type = str(ds.get("SegmentationType", "")).upper()
    if seg_type not in ("BINARY", "FRACTIONAL", "LABELMAP"):
        raise DicomError(f"{where}: unknown SegmentationType {seg_type!r} (expected BINARY, FRACTIONAL or LABELMAP)")
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

    if str(ds.get("DimensionOrganizationType", "")).upper().startswith("TILED") or (
        "TotalPixelMatrixRows" in ds and "PlanePositionSequence" not in _first_frame_groups(ds)
    ):
        return _read_tiled(path, ds, meta, seg_type, seg_numbers, combine, threshold)

    try:
        pixels = ds.pixel_array
    except Exception as exc:
        raise DicomError(f"{where}: cannot decode the SEG's pixel data ({type(exc).__name__}: {exc})") from exc
    n_frames = int(ds.get("NumberOfFrames", 1) or 1)
    pixels = np.asarray(pixels).reshape(n_frames, int(ds.Rows), int(ds.Columns))
    if seg_type == "FRACTIONAL":
        max_val = float(ds.get("MaximumFractionalValue", 255) or 255)
        values = pixels.astype(np.float32) / max_val
    else:
        values = pixels

    # frame geometry and segment of every frame
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
        else:
            sid = _functional(ds, f, "SegmentIdentificationSequence")
            if sid is None:
                raise DicomError(f"{where}: frame {f + 1} has no SegmentIdentificationSequence")
            frame_segments.append(int(sid.ReferencedSegmentNumber))

    if source is not None:
        affine, shape, src_img = _source_grid(source)
        if src_img is not None and src_img.meta.get("frame_of_reference_uid") and meta["frame_of_reference_uid"]:
            if src_img.meta["frame_of_reference_uid"] != meta["frame_of_reference_uid"]:
                raise GeometryError(
                    f"{where}: the SEG's FrameOfReferenceUID {meta['frame_of_reference_uid']} differs "
                    f"from the source image's {src_img.meta['frame_of_reference_uid']}",
                    hint="pass the series the SEG was made on, or read it without a source",
                )
    else:
        affine, shape = _grid_from_planes(planes, int(ds.Rows), int(ds.Columns), where)

    rows, cols = int(ds.Rows), int(ds.Columns)
    channel_of = {n: i for i, n in enumerate(seg_numbers)}
    probabilities = seg_type == "FRACTIONAL" and threshold is None
    if probabilities or combine == "channels":
        dtype = np.float32 if probabilities else np.uint8
        out = np.zeros((max(len(seg_numbers), 1), *shape), dtype=dtype)
    else:
        top = max(seg_numbers, default=1)
        out = np.zeros((1, *shape), dtype=_label_dtype(top))
    for f in range(n_frames):
        placement = _frame_into_grid(affine, shape, planes[f], rows, cols, f"{where} frame {f + 1}")
        index = placement.index
        frame = placement.block(values[f])
        seg = frame_segments[f]
        if probabilities:
            out[(channel_of[seg], *index)] = np.maximum(out[(channel_of[seg], *index)], frame)
            continue
        if seg_type == "FRACTIONAL":
            mask = frame >= threshold
        elif seg_type == "BINARY":
            mask = frame > 0
        else:
            mask = None
        if seg_type == "LABELMAP":
            if combine == "channels":
                for n in np.unique(frame):
                    if n in channel_of:
                        out[(channel_of[int(n)], *index)] |= (frame == n).astype(np.uint8)
            else:
                out[(0, *index)] = np.where(frame > 0, frame, out[(0, *index)]).astype(out.dtype)
            continue
        if seg not in channel_of:
            raise DicomError(f"{where}: frame {f + 1} refers to segment {seg}, which the SegmentSequence does not define")
        if combine == "channels":
            out[(channel_of[seg], *index)] |= mask.astype(np.uint8)
        else:
            region = out[(0, *index)]
            clash = mask & (region > 0) & (region != seg)
            if clash.any():
                other = int(region[clash][0])
                raise DicomError(
                    f"{where}: segments {other} and {seg} overlap ({int(clash.sum())} voxels in "
                    f"frame {f + 1}); they cannot be one label map",
                    hint="read with combine='channels' for one channel per segment",
                )
            out[(0, *index)] = np.where(mask, seg, region).astype(out.dtype)

    meta["combine"] = combine
    kind = "probabilities" if probabilities else "label"
    return Image(out, affine, kind=kind, meta=meta)


def _first_frame_groups(ds: Any) -> Any:
    per = ds.get("PerFrameFunctionalGroupsSequence")
    if per:
        return per[0]
    shared = ds.get("SharedFunctionalGroupsSequence")
    return shared[0] if shared else {}


def _referenced_instances(ds: Any) -> list[str]:
    uids: list[str] = []
    for s in ds.get("ReferencedSeriesSequence", []):
        for inst in s.get("ReferencedInstanceSequence", []):
            uids.append(str(inst.ReferencedSOPInstanceUID))
    return uids


def _grid_from_planes(
    planes: list[_PlaneGeometry], rows: int, cols: int, where: str
) -> tuple[np.ndarray, tuple[int, int, int]]:
    """Native grid (col, row, slice) spanning all frame positions (see module docstring)."""
    p0 = planes[0]
    for p in planes[1:]:
        if not (np.allclose(p.row_dir, p0.row_dir, atol=_DIR_ATOL) and np.allclose(p.col_dir, p0.col_dir, atol=_DIR_ATOL)):
            raise DicomError(f"{where}: frames have different orientations; cannot build one grid", hint="pass the source series")
        if not np.allclose(p.spacing, p0.spacing, atol=1e-4):
            raise DicomError(f"{where}: frames have different pixel spacings; cannot build one grid", hint="pass the source series")
    normal = np.cross(p0.row_dir, p0.col_dir)
    positions = np.stack([p.position for p in planes])
    proj = positions @ normal
    # in-plane offsets must agree: every frame starts at the same (row, col) origin
    distinct: list[float] = []
    for v in np.sort(proj):
        if not distinct or v - distinct[-1] > _POS_ATOL:
            distinct.append(float(v))
    first_i = int(np.argmin(proj))
    origin = positions[first_i]
    for pos, pj in zip(positions, proj):
        inplane = (pos - origin) - normal * (pj - proj[first_i])
        if np.linalg.norm(inplane) > _POS_ATOL:
            raise DicomError(
                f"{where}: frames are shifted in-plane against each other by "
                f"{np.round(inplane, 3).tolist()} mm; cannot build one grid",
                hint="pass the source series",
            )
    if len(distinct) == 1:
        step = 1.0
        n = 1
    else:
        diffs = np.diff(distinct)
        step = float(diffs.min())
        ks = (np.asarray(distinct) - distinct[0]) / step
        if not np.allclose(ks, np.round(ks), atol=_POS_ATOL / step + 1e-3):
            raise DicomError(
                f"{where}: frame positions along the normal ({np.round(distinct, 3).tolist()} mm) are "
                "not on a regular grid",
                hint="pass the source series, whose grid the SEG frames then index",
            )
        n = int(round(ks[-1])) + 1
    plane = _PlaneGeometry(origin, p0.row_dir, p0.col_dir, p0.spacing)
    return plane.native_affine(normal * step), (cols, rows, n)


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
            f"{where}: cannot assemble the tiled SEG's total pixel matrix ({type(exc).__name__}: {exc})"
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


# ------------------------------------------------------------------------------------
# writing
# ------------------------------------------------------------------------------------
def _label_to_frames(label: Image, src: _SourceSeries, where: str) -> np.ndarray:
    """The label's values as source frames ``(slices, rows, cols)`` in source slice order."""
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


def write_dicom_seg(
    label: Image,
    source: str | Path | Sequence[Any],
    path: str | Path,
    label_names: Sequence[str],
    *,
    algorithm_name: str = "medimg",
    algorithm_version: str | None = None,
    segmentation_type: str = "BINARY",
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
        source: the series the label was predicted on: its folder, a list of its files or
            pydicom datasets.
        path: output ``.dcm`` file.
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
    from pydicom.sr.codedict import codes

    out_path = Path(path)
    where = f"write_dicom_seg({out_path.name})"
    if label.spatial_ndim != 3 or label.num_channels != 1:
        raise GeometryError(f"{where}: expected a label image (1, I, J, K), got shape {label.shape}")
    if len(label_names) < 2:
        raise ValueError(f"{where}: label_names needs background plus at least one class, got {list(label_names)}")
    seg_type = segmentation_type.upper()
    if seg_type not in ("BINARY", "LABELMAP"):
        raise ValueError(f"{where}: segmentation_type must be 'BINARY' or 'LABELMAP', got {segmentation_type!r}")
    src = _load_source_series(source)
    frames = _label_to_frames(label, src, where)
    if frames.dtype.kind == "f":
        if not np.all(frames == np.round(frames)):
            raise ValueError(f"{where}: label values must be integers (found fractional values)")
    frames = frames.astype(np.int64)
    lo, hi = int(frames.min()), int(frames.max())
    if lo < 0 or hi >= len(label_names):
        raise ValueError(
            f"{where}: label values must lie in 0..{len(label_names) - 1} (one per label name), "
            f"found {lo}..{hi}",
        )
    version = algorithm_version
    if version is None:
        try:
            from importlib.metadata import version as _v

            version = _v("medimg")
        except Exception:
            version = "unknown"
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
    dtype = np.uint8 if len(label_names) <= 256 else np.uint16
    try:
        seg = hd.seg.Segmentation(
            source_images=src.datasets,
            pixel_array=frames.astype(dtype),
            segmentation_type=seg_type,
            segment_descriptions=descriptions,
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
        raise ImageWriteError(f"{where}: highdicom could not build the SEG ({type(exc).__name__}: {exc})") from exc
    out_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        seg.save_as(out_path)
    except OSError as exc:
        raise ImageWriteError(f"cannot write DICOM SEG to {out_path}: {exc}") from exc
    return out_path
