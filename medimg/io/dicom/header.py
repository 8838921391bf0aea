"""Header parsing: one file -> a :class:`_FileHeader` (or the reason it cannot be used).

The hand-written parser (:mod:`.lite`) reads the common little-endian file; everything
else goes to pydicom, first up to the pixel data, then (when the pixel data is not simply
the last element) the whole file with deferred values. The byte offset of uncompressed
pixel data is kept, so pixels are later read straight from the file.
"""

from __future__ import annotations

import os
from typing import Any

from ...core.errors import exception_reason
from .lite import _lite_parse
from .records import (
    _DOUBLE_PIXEL_DATA,
    _EXPLICIT_BE,
    _EXPLICIT_LE,
    _FLOAT_PIXEL_DATA,
    _IMPLICIT_LE,
    _MEDIA_STORAGE_DIRECTORY,
    _PIXEL_DATA,
    _UNCOMPRESSED,
    _FileHeader,
    _FileProblem,
    _pydicom,
)
from .values import _g, _Lite, _num, _short_hash

__all__ = ["is_dicom_file"]

#: ``(header, dataset, None)`` or ``(None, None, reason)``
HeaderResult = tuple["_FileHeader | None", Any, "str | None"]


def is_dicom_file(path: str | os.PathLike) -> bool:
    """Cheap check: a Part 10 file (``DICM`` at byte 128) or a bare data set starting with group 0008."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(132)
    except OSError:
        return False
    if len(head) >= 132 and head[128:132] == b"DICM":
        return True
    return _looks_like_bare_dataset(head)


def _looks_like_bare_dataset(head: bytes) -> bool:
    # A data set without preamble/meta (PS3.10 7.1 is then violated, but such files
    # exist): it starts with a little-endian (0008,xxxx) or (0002,xxxx) element tag.
    if len(head) < 8:
        return False
    little = head[0:2] in (b"\x08\x00", b"\x02\x00") and head[3] == 0
    big = head[0:2] in (b"\x00\x08", b"\x00\x02") and head[2] == 0
    return little or big


def _read_header(path: str) -> HeaderResult:
    """Parse one file's header. Returns ``(header, dataset, None)`` or ``(None, None, reason)``."""
    _pydicom()  # a missing pydicom is an install problem, not a file problem
    notes: list[str] = []
    try:
        size = os.path.getsize(path)
        if size == 0:
            return None, None, "empty file"
        parsed = _lite_parse(path, size)
        if parsed is not None:
            lite, offset, _, has_pixels = parsed
            try:
                return _header_from_dataset(path, lite, size, notes, pixel_offset=offset,
                                            has_pixels=has_pixels), lite, None
            except _FileProblem as exc:
                return None, None, str(exc)
            except Exception:
                pass  # odd values: let pydicom read the file
        found = _read_with_pydicom(path, size, notes)
    except _FileProblem as exc:
        return None, None, str(exc)
    except (OSError, EOFError) as exc:
        return None, None, f"cannot read the file: {exception_reason(exc)}"
    except Exception as exc:  # pydicom raises many kinds on corrupt input
        return None, None, f"corrupt or truncated DICOM: {exception_reason(exc)}"
    if isinstance(found, tuple):
        return found
    try:
        return _header_from_dataset(path, found, size, notes), found, None
    except _FileProblem as exc:
        return None, None, str(exc)
    except Exception as exc:
        return None, None, f"invalid DICOM values: {exception_reason(exc)}"


def _read_with_pydicom(path: str, size: int, notes: list[str]) -> Any:
    """pydicom's reading of a file: a header result when done early, else the dataset.

    Fast path: parse up to the pixel data, then find the pixel data at the end of the file
    (where it is in almost every single-frame file) by checking its element header;
    otherwise parse the whole file with deferred values.
    """
    pydicom = _pydicom()
    from pydicom.errors import InvalidDicomError

    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        hint = _pixel_data_at_end(path, ds, size)
        if hint is not None:
            try:
                return _header_from_dataset(path, ds, size, notes, pixel_offset=hint), ds, None
            except _FileProblem as exc:
                return None, None, str(exc)
        return pydicom.dcmread(path, defer_size=512)
    except InvalidDicomError:
        with open(path, "rb") as fh:
            head = fh.read(132)
        if not _looks_like_bare_dataset(head):
            return None, None, "not a DICOM file (no 'DICM' marker at byte 128)"
        ds = pydicom.dcmread(path, defer_size=512, force=True)
        notes.append("no DICOM file meta header (read as a bare data set)")
        return ds


def _pixel_data_at_end(path: str, ds: Any, size: int) -> int | None:
    """Offset of native (uncompressed) PixelData when it is the file's last element, else None.

    The element header just before ``size - length`` must read (7FE0,0010) with that
    exact length (PS3.5 7.1.2 explicit VR: tag, VR, 2 reserved bytes, 4-byte length;
    7.1.3 implicit VR: tag, 4-byte length), so a match cannot happen by accident.
    """
    meta = getattr(ds, "file_meta", None)
    ts = str(meta.get("TransferSyntaxUID", "")) if meta is not None else ""
    if ts not in _UNCOMPRESSED:
        return None
    try:
        rows = int(_g(ds, "Rows") or 0)
        cols = int(_g(ds, "Columns") or 0)
        frames = int(_num(_g(ds, "NumberOfFrames"), int) or 1)
        spp = int(_g(ds, "SamplesPerPixel") or 1)
        bits = int(_g(ds, "BitsAllocated") or 0)
    except (TypeError, ValueError):
        return None
    if bits not in (8, 16, 32) or rows <= 0 or cols <= 0:
        return None
    length = rows * cols * frames * spp * bits // 8
    length += length & 1  # values are padded to an even length
    offset = size - length
    if offset < 12:
        return None
    with open(path, "rb") as fh:
        fh.seek(offset - 12)
        head = fh.read(12)
    if ts == _EXPLICIT_BE:
        ok = head[0:4] == b"\x7f\xe0\x00\x10" and head[4:6] in (b"OW", b"OB") and \
            int.from_bytes(head[8:12], "big") == length
    elif ts == _EXPLICIT_LE:
        ok = head[0:4] == b"\xe0\x7f\x10\x00" and head[4:6] in (b"OW", b"OB") and \
            int.from_bytes(head[8:12], "little") == length
    else:
        ok = head[4:8] == b"\xe0\x7f\x10\x00" and int.from_bytes(head[8:12], "little") == length
    return offset if ok else None


def _transfer_syntax(ds: Any) -> str:
    """The file's TransferSyntaxUID, or the one its data set was read with (no file meta)."""
    meta = getattr(ds, "file_meta", None)
    ts = str(meta.get("TransferSyntaxUID", "") if meta is not None else "") or _IMPLICIT_LE
    if not hasattr(ds, "file_meta") or "TransferSyntaxUID" not in (meta or {}):
        ts = _IMPLICIT_LE if ds.is_implicit_VR in (True, None) else (
            _EXPLICIT_LE if ds.is_little_endian in (True, None) else _EXPLICIT_BE)
    return ts


def _series_uid(ds: Any, notes: list[str]) -> str:
    """SeriesInstanceUID, or a stable stand-in where an anonymiser blanked it."""
    series_uid = str(_g(ds, "SeriesInstanceUID", "") or "").strip()
    if series_uid:
        return series_uid
    # Anonymisers sometimes blank the UID; group by what else identifies a series.
    ident = "|".join(str(ds.get(k, "") or "") for k in (
        "StudyInstanceUID", "SeriesNumber", "Modality", "SeriesDescription", "FrameOfReferenceUID",
        "SeriesDate", "SeriesTime"))
    series_uid = f"noSeriesUID-{_short_hash(ident)}"
    notes.append(f"empty SeriesInstanceUID (0020,000E): grouped as '{series_uid}' by study, "
                 "series number, modality, description and frame of reference")
    return series_uid


def _truncation_check(offset: int, expected: int, size: int) -> None:
    if offset + expected > size:
        raise _FileProblem(
            f"truncated pixel data: expected {expected} bytes at offset {offset}, "
            f"the file ends {size - offset} bytes after it")


def _pixel_offset(ds: Any, pixel_tag: int | None, offset: int | None, size: int, ts: str,
                  dims: tuple[int, int, int, int, int]) -> int | None:
    """Byte offset of uncompressed pixel data read with :func:`np.fromfile`, or None.

    ``dims`` is ``(rows, columns, frames, samples per pixel, bits allocated)``.
    Raises _FileProblem where the file is shorter than its pixel data.
    """
    rows, cols, nframes, spp, bits_alloc = dims
    expected = rows * cols * nframes * spp * bits_alloc // 8
    if isinstance(ds, _Lite) and offset is not None:
        _truncation_check(offset, expected, size)
        if ts not in _UNCOMPRESSED or bits_alloc not in (8, 16, 32, 64):
            offset = None
    if pixel_tag is not None and offset is None and not isinstance(ds, _Lite):
        # keep_deferred: the raw element (offset, length) without reading the pixels
        elem = ds.get_item(pixel_tag, keep_deferred=True)
        undefined = bool(getattr(elem, "is_undefined_length", False)) or getattr(elem, "length", 0) == 0xFFFFFFFF
        tell = getattr(elem, "value_tell", None)
        if tell is None:
            tell = getattr(elem, "file_tell", None)
        if ts in _UNCOMPRESSED and not undefined and tell is not None and bits_alloc in (8, 16, 32, 64):
            _truncation_check(tell, expected, size)
            offset = int(tell)
    return offset


def _header_from_dataset(path: str, ds: Any, size: int, notes: list[str],
                         pixel_offset: int | None = None, has_pixels: bool | None = None) -> _FileHeader:
    """The :class:`_FileHeader` of a parsed data set (pydicom's or the lite parser's).

    Raises:
        _FileProblem: a DICOMDIR, no usable content, an unknown image size or truncated pixels.
    """
    meta = getattr(ds, "file_meta", None)
    ts = _transfer_syntax(ds)
    sop_class = str(_g(ds, "SOPClassUID", "") or (meta.get("MediaStorageSOPClassUID", "") if meta else ""))
    if sop_class == _MEDIA_STORAGE_DIRECTORY or 0x00041220 in ds:
        raise _FileProblem("DICOMDIR (media directory): ignored, the files themselves are read")
    if "SOPClassUID" not in ds and "Modality" not in ds and "SeriesInstanceUID" not in ds:
        raise _FileProblem("no usable DICOM content (no SOPClassUID, Modality or SeriesInstanceUID): "
                           "truncated or corrupt file")
    series_uid = _series_uid(ds, notes)
    pixel_tag = _PIXEL_DATA if pixel_offset is not None else None
    for tag in (_PIXEL_DATA, _FLOAT_PIXEL_DATA, _DOUBLE_PIXEL_DATA):
        if pixel_tag is None and tag in ds:
            pixel_tag = tag
            break
    rows = int(_num(_g(ds, "Rows"), int) or 0)
    cols = int(_num(_g(ds, "Columns"), int) or 0)
    nframes = int(_num(_g(ds, "NumberOfFrames"), int) or 1)
    spp = int(_num(_g(ds, "SamplesPerPixel"), int) or 1)
    bits_alloc = int(_num(_g(ds, "BitsAllocated"), int) or 0)
    if pixel_tag is not None and (rows <= 0 or cols <= 0):
        raise _FileProblem(f"pixel data but Rows={rows}, Columns={cols}: the image size is unknown")
    offset = _pixel_offset(ds, pixel_tag, pixel_offset, size, ts, (rows, cols, nframes, spp, bits_alloc))
    patient = str(_g(ds, "PatientID", "") or "") + "|" + str(_g(ds, "PatientName", "") or "")
    return _FileHeader(
        path=path,
        transfer_syntax=ts,
        sop_class_uid=sop_class,
        sop_instance_uid=str(_g(ds, "SOPInstanceUID", "") or _short_hash(path)),
        series_uid=series_uid,
        study_uid=str(_g(ds, "StudyInstanceUID", "") or ""),
        frame_of_reference_uid=str(_g(ds, "FrameOfReferenceUID", "") or ""),
        modality=str(_g(ds, "Modality", "") or ""),
        manufacturer=str(_g(ds, "Manufacturer", "") or ""),
        description=str(_g(ds, "SeriesDescription", "") or ""),
        series_number=_num(_g(ds, "SeriesNumber"), int),
        patient_key=_short_hash(patient),
        study_key=str(_g(ds, "StudyInstanceUID", "") or ""),
        photometric=str(_g(ds, "PhotometricInterpretation", "") or ""),
        samples_per_pixel=spp,
        planar_configuration=int(_num(_g(ds, "PlanarConfiguration"), int) or 0),
        bits_allocated=bits_alloc,
        bits_stored=int(_num(_g(ds, "BitsStored"), int) or bits_alloc),
        pixel_representation=int(_num(_g(ds, "PixelRepresentation"), int) or 0),
        num_frames=nframes,
        rows=rows,
        columns=cols,
        pixel_offset=offset,
        pixel_tag=pixel_tag,
        has_pixels=pixel_tag is not None,
        instance_number=_num(_g(ds, "InstanceNumber"), int),
        acquisition_number=_num(_g(ds, "AcquisitionNumber"), int),
        slice_thickness=_num(_g(ds, "SliceThickness")),
        spacing_between_slices=_num(_g(ds, "SpacingBetweenSlices")),
        gantry_tilt=_num(_g(ds, "GantryDetectorTilt")),
        study_date=str(_g(ds, "StudyDate", "") or "").strip(),
        notes=notes,
    )
