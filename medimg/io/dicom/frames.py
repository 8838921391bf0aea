"""One file -> its 2D frames, each with its plane geometry and the keys that tell volumes apart.

A single-frame file is one frame; an enhanced multi-frame file (functional groups, PS3.3
C.7.6.16) one per frame with its own position; a classic multi-frame file one per frame
along SpacingBetweenSlices; a Siemens mosaic one per tile.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .records import _FileHeader, _FileProblem, _Frame
from .values import _checked_floats, _fast, _first_or_value, _floats, _g, _num


def _first_item(ds: Any, keyword: str) -> Any:
    """The first item of a sequence, or None."""
    seq = ds.get(keyword) if ds is not None else None
    if seq:
        try:
            return seq[0]
        except (IndexError, TypeError):
            return None
    return None


def _fg_value(per_frame: Any, shared: Any, seq_keyword: str, keyword: str) -> Any:
    """Look a value up in a per-frame functional group, then in the shared one (PS3.3 C.7.6.16)."""
    for group in (per_frame, shared):
        item = _first_item(group, seq_keyword)
        if item is not None and keyword in item:
            return item.get(keyword)
    return None


def _image_type_tail(value: Any) -> tuple[str, ...]:
    """The values of ImageType / FrameType that change the contrast (3rd on)."""
    if value is None:
        return ()
    vals = [value] if isinstance(value, str) else list(value)
    # ORIGINAL/DERIVED and PRIMARY/SECONDARY (values 1, 2) do not change the contrast.
    return tuple(str(v).upper() for v in vals[2:] if str(v).upper() not in ("", "NONE", "MOSAIC", "NORM", "DIS2D", "DIS3D", "ND"))


def _file_keys(h: _FileHeader, ds: Any) -> dict[str, Any]:
    """The file-level values that can tell volumes at one position apart."""
    return {
        "acquisition_number": h.acquisition_number,
        "temporal_position": _num(_g(ds, "TemporalPositionIdentifier"), int),
        "trigger_time": _num(_g(ds, "TriggerTime")),
        "echo_number": _num(_first_or_value(_g(ds, "EchoNumbers")), int),
        "echo_time": _num(_g(ds, "EchoTime")),
        "b_value": _num(_g(ds, "DiffusionBValue")),
        "gradient": _floats(_g(ds, "DiffusionGradientOrientation"), 3),
        "instance_number": h.instance_number,
        "acquisition_time": str(_g(ds, "AcquisitionTime", "") or "") or None,
        "content_time": str(_g(ds, "ContentTime", "") or "") or None,
    }


def _frames_from_file(h: _FileHeader, ds: Any) -> list[_Frame]:
    """Split a file into 2D frames with their geometry and volume keys.

    Raises:
        _FileProblem: unreadable geometry values, or frames that do not fit the file.
    """
    file_keys = _file_keys(h, ds)
    contrast = (_image_type_tail(_g(ds, "ImageType")), str(_g(ds, "ComplexImageComponent", "") or ""))
    slope = _num(_g(ds, "RescaleSlope"))
    intercept = _num(_g(ds, "RescaleIntercept"))
    slope = 1.0 if slope is None or slope == 0 else slope
    intercept = 0.0 if intercept is None else intercept
    ipp = _checked_floats(ds, "ImagePositionPatient", 3)
    iop = _checked_floats(ds, "ImageOrientationPatient", 6)
    ps = _checked_floats(ds, "PixelSpacing", 2) or _floats(_g(ds, "ImagerPixelSpacing"), 2)

    per_frame_seq = _g(ds, "PerFrameFunctionalGroupsSequence")
    if per_frame_seq is not None and h.num_frames >= 1:
        return _enhanced_frames(h, ds, per_frame_seq, iop, ps, contrast, file_keys)
    n_mosaic = _num(_fast(ds, 0x0019100A), int)
    image_type = [str(v).upper() for v in (_g(ds, "ImageType") or [])]
    if n_mosaic and n_mosaic > 1 and "MOSAIC" in image_type and h.num_frames == 1:
        return _mosaic_frames(h, ds, n_mosaic, ipp, iop, ps, slope, intercept, contrast, file_keys)
    if h.num_frames > 1:
        # Multi-frame without functional groups (e.g. NM, US, legacy MR): frames share
        # one geometry; only a stack along the normal is assembled when the file gives
        # the spacing (SpacingBetweenSlices), otherwise frames are kept as volumes.
        step = h.spacing_between_slices
        frames = []
        for f in range(h.num_frames):
            f_ipp = None
            if ipp is not None and iop is not None and step:
                n = np.cross(iop[:3], iop[3:])
                f_ipp = np.asarray(ipp) + f * step * n
            keys = dict(file_keys, file=(h.acquisition_number, h.instance_number, h.path), frame_index=f)
            frames.append(_Frame(h, f, f_ipp, iop, ps, h.rows, h.columns, slope, intercept, contrast, keys))
        return frames
    return [_Frame(h, 0, None if ipp is None else np.asarray(ipp), iop, ps, h.rows, h.columns,
                   slope, intercept, contrast, dict(file_keys))]


def _frame_type(pf: Any, shared: Any) -> tuple[Any, str]:
    """FrameType and ComplexImageComponent of a frame's ``*FrameTypeSequence`` (per-frame first)."""
    ftype, cplx = None, ""
    for group in (pf, shared):
        if group is None:
            continue
        for elem in group:
            if elem.keyword.endswith("FrameTypeSequence") and elem.value:
                ftype = elem.value[0].get("FrameType")
                cplx = str(elem.value[0].get("ComplexImageComponent", "") or "")
                break
        if ftype is not None:
            break
    return ftype, cplx


def _enhanced_frames(h: _FileHeader, ds: Any, per_frame_seq: Any, iop: Any, ps: Any,
                     contrast: tuple, file_keys: dict[str, Any]) -> list[_Frame]:
    """Frames of an enhanced multi-frame file: geometry and keys from the functional groups."""
    shared = _first_item(ds, "SharedFunctionalGroupsSequence")
    if len(per_frame_seq) != h.num_frames:
        raise _FileProblem(
            f"PerFrameFunctionalGroupsSequence has {len(per_frame_seq)} items for "
            f"NumberOfFrames={h.num_frames}"
        )
    frames = []
    for f, pf in enumerate(per_frame_seq):
        f_ipp = _floats(_fg_value(pf, shared, "PlanePositionSequence", "ImagePositionPatient"), 3)
        f_iop = _floats(_fg_value(pf, shared, "PlaneOrientationSequence", "ImageOrientationPatient"), 6)
        f_ps = _floats(_fg_value(pf, shared, "PixelMeasuresSequence", "PixelSpacing"), 2)
        f_slope = _num(_fg_value(pf, shared, "PixelValueTransformationSequence", "RescaleSlope"))
        f_inter = _num(_fg_value(pf, shared, "PixelValueTransformationSequence", "RescaleIntercept"))
        ftype, cplx = _frame_type(pf, shared)
        frames.append(
            _Frame(
                header=h, frame=f, ipp=None if f_ipp is None else np.asarray(f_ipp),
                iop=f_iop or iop, pixel_spacing=f_ps or ps, rows=h.rows, columns=h.columns,
                slope=1.0 if not f_slope else f_slope,
                intercept=0.0 if f_inter is None else f_inter,
                contrast=(_image_type_tail(ftype) if ftype is not None else contrast[0], cplx or contrast[1]),
                keys=_enhanced_keys(h, pf, shared, file_keys),
            )
        )
    return frames


def _enhanced_keys(h: _FileHeader, pf: Any, shared: Any, file_keys: dict[str, Any]) -> dict[str, Any]:
    """The volume keys of one enhanced frame (frame content, echo, diffusion, cardiac)."""
    content = _first_item(pf, "FrameContentSequence")
    keys = dict(file_keys)
    keys.update(
        temporal_position=_num(content.get("TemporalPositionIndex"), int) if content else None,
        stack=str(content.get("StackID", "")) if content else None,
        frame_time=str(content.get("FrameAcquisitionDateTime", "") or "") or None if content else None,
        echo_time=_num(_fg_value(pf, shared, "MREchoSequence", "EffectiveEchoTime")),
        b_value=_num(_fg_value(pf, shared, "MRDiffusionSequence", "DiffusionBValue")),
        trigger_time=_num(_fg_value(pf, shared, "CardiacSynchronizationSequence", "NominalCardiacTriggerDelayTime")),
        file=(h.acquisition_number, h.instance_number, h.path),
    )
    diff = _first_item(pf, "MRDiffusionSequence")
    if diff is not None:
        keys["gradient"] = _floats(_fg_value(diff, None, "DiffusionGradientDirectionSequence", "DiffusionGradientOrientation"), 3)
    return keys


def _csa_slice_normal(ds: Any) -> np.ndarray | None:
    """SliceNormalVector of a Siemens CSA image header, or None."""
    try:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from nibabel.nicom import csareader

        csa = csareader.get_csa_header(ds, "image")
        if csa is not None:
            v = csareader.get_slice_normal(csa)
            if v is not None:
                return np.asarray(v, dtype=float)
    except Exception:  # pragma: no cover - CSA is private and sometimes malformed
        return None
    return None


def _mosaic_frames(h: _FileHeader, ds: Any, n: int, ipp: Any, iop: Any, ps: Any, slope: float,
                   intercept: float, contrast: tuple, file_keys: dict[str, Any]) -> list[_Frame]:
    """Siemens mosaic: one file holds ``n`` slices as tiles of one 2D image.

    The tiles form an ``m x m`` grid (``m = ceil(sqrt(n))``). ImagePositionPatient of a
    mosaic refers to the top-left corner of the whole mosaic as if it were one large
    slice; the first tile's true position is shifted by half the difference between the
    mosaic and tile sizes along the row and column directions. Slices are stored in the
    order of the CSA header's SliceNormalVector; their spacing is SpacingBetweenSlices.
    """
    if ipp is None or iop is None or ps is None:
        raise _FileProblem("Siemens mosaic without ImagePositionPatient/ImageOrientationPatient/PixelSpacing")
    m = int(math.ceil(math.sqrt(n)))
    if h.rows % m or h.columns % m:
        raise _FileProblem(f"Siemens mosaic of {n} images but {h.rows}x{h.columns} pixels is not a {m}x{m} grid")
    th, tw = h.rows // m, h.columns // m
    r = np.asarray(iop[:3])
    c = np.asarray(iop[3:])
    normal = np.cross(r, c)
    csa_normal = _csa_slice_normal(ds)
    if csa_normal is not None and np.dot(csa_normal, normal) < 0:
        normal = -normal
    step = h.spacing_between_slices or h.slice_thickness
    if not step:
        raise _FileProblem("Siemens mosaic without SpacingBetweenSlices: the slice spacing is unknown")
    row_spacing, col_spacing = ps
    first = (np.asarray(ipp) + r * col_spacing * (h.columns - tw) / 2.0
             + c * row_spacing * (h.rows - th) / 2.0)
    keys = dict(file_keys, file=(h.acquisition_number, h.instance_number, h.path))
    return [
        _Frame(h, t, first + t * step * normal, iop, ps, th, tw, slope, intercept, contrast, dict(keys), mosaic=n)
        for t in range(n)
    ]
