"""A small DICOM header parser for the common case: little-endian Part 10 files.

It keeps only the ~40 tags discovery needs (:data:`~medimg.io.dicom.values._FAST_VR`) as
raw elements and stops at the pixel data, which makes a header ~3x cheaper than
``pydicom.dcmread(stop_before_pixels=True)``. It stays only because it wins:
``benchmarks/io_dicom.py`` runs medimg with and without it beside the strongest plain
pydicom reader (``stop_before_pixels``, ``specific_tags``, ``np.frombuffer``). Every file
it is not sure of (no preamble, big endian, deflate, another character set, functional
groups, Siemens CSA, DICOMDIR records, palette or ICC data, anything unexpected) goes to
pydicom: :func:`_lite_parse` then returns None.
"""

from __future__ import annotations

import struct
from typing import Any

from .records import (
    _DEFLATED,
    _DOUBLE_PIXEL_DATA,
    _EXPLICIT_BE,
    _FLOAT_PIXEL_DATA,
    _IMPLICIT_LE,
    _PIXEL_DATA,
    _FileProblem,
)
from .values import _FAST_VR, _Lite

#: Explicit-VR value representations with a 4-byte length (PS3.5 7.1.2, Table 7.1-1).
_LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"UC", b"UN", b"UR", b"UT", b"SV", b"UV"}
_DEFAULT_CHARSETS = {"", "ISO_IR 100", "ISO_IR 6", "ISO 2022 IR 6"}
#: Tags whose presence sends a file to pydicom: functional groups (enhanced multi-frame),
#: Siemens CSA/mosaic, DICOMDIR records, palette LUT data, ICC profiles.
_LITE_FALLBACK_TAGS = {0x52009229, 0x52009230, 0x0019100A, 0x00041220,
                       0x00281201, 0x00281202, 0x00281203, 0x00281221, 0x00282000}
_LITE_READ = 256 * 1024
_UNDEFINED = 0xFFFFFFFF
_PIXEL_TAGS = (_PIXEL_DATA, _FLOAT_PIXEL_DATA, _DOUBLE_PIXEL_DATA)

#: ``(dataset, pixel_offset, pixel_length, has_pixels)``
LiteResult = tuple[_Lite, "int | None", "int | None", bool]


class _LiteFallback(Exception):
    """The file needs pydicom."""


def _check_fragments(path: str, offset: int, size: int) -> None:
    """Walk the items of encapsulated pixel data (PS3.5 A.4) to the sequence delimiter.

    Raises _FileProblem when the file ends first (a truncated compressed file).
    """
    with open(path, "rb") as fh:
        pos = offset
        while pos + 8 <= size:
            fh.seek(pos)
            group, elem, length = struct.unpack("<HHI", fh.read(8))
            if (group, elem) == (0xFFFE, 0xE0DD):
                return
            if (group, elem) != (0xFFFE, 0xE000) or length == _UNDEFINED:
                raise _FileProblem(f"corrupt encapsulated pixel data at byte {pos}: expected an item tag (FFFE,E000)")
            pos += 8 + length
    raise _FileProblem("truncated compressed pixel data: the file ends before the sequence delimiter (FFFE,E0DD)")


def _read_file_meta(buf: bytes) -> tuple[dict[str, str], int]:
    """The file meta group 0002 (always explicit VR little endian, PS3.10 7.1).

    Returns ``({"TransferSyntaxUID": ..., "MediaStorageSOPClassUID": ...}, position after it)``.
    """
    unpack = struct.unpack_from
    pos, end = 132, len(buf)
    meta: dict[str, str] = {}
    while pos + 8 <= end:
        group, elem = unpack("<HH", buf, pos)
        if group != 0x0002:
            break
        if buf[pos + 4:pos + 6] in _LONG_VRS:
            length, hdr = unpack("<I", buf, pos + 8)[0], 12
        else:
            length, hdr = unpack("<H", buf, pos + 6)[0], 8
        if elem in (0x0010, 0x0002):
            key = "TransferSyntaxUID" if elem == 0x0010 else "MediaStorageSOPClassUID"
            meta[key] = buf[pos + hdr:pos + hdr + length].decode("latin-1").strip(" \x00")
        pos += hdr + length
    return meta, pos


class _Walker:
    """Walks the data set elements of one header buffer (PS3.5 7.1: element encoding)."""

    def __init__(self, buf: bytes, implicit: bool) -> None:
        from pydicom.dataelem import RawDataElement

        self._raw_element = RawDataElement
        self.buf = buf
        self.end = len(buf)
        self.implicit = implicit

    def top_header(self, p: int) -> tuple[int, bytes | None, int, int]:
        """``(tag, vr, length, header size)`` of a top-level element at ``p``."""
        group, el = struct.unpack_from("<HH", self.buf, p)
        tag = (group << 16) | el
        if self.implicit:
            return tag, None, struct.unpack_from("<I", self.buf, p + 4)[0], 8
        vr = self.buf[p + 4:p + 6]
        if vr in _LONG_VRS:
            return tag, vr, struct.unpack_from("<I", self.buf, p + 8)[0], 12
        return tag, vr, struct.unpack_from("<H", self.buf, p + 6)[0], 8

    def nested_header(self, p: int) -> tuple[int, bytes | None, int, int]:
        """Like :meth:`top_header`, where item tags (group FFFE) have no VR in any syntax."""
        group = struct.unpack_from("<H", self.buf, p)[0]
        if group == 0xFFFE and not self.implicit:
            el = struct.unpack_from("<H", self.buf, p + 2)[0]
            return (group << 16) | el, None, struct.unpack_from("<I", self.buf, p + 4)[0], 8
        return self.top_header(p)

    def skip_undefined(self, p: int) -> int:
        """Past the items of an undefined-length sequence (PS3.5 7.5), or the fragments of
        encapsulated data, to after the sequence delimiter (FFFE,E0DD)."""
        while True:
            if p + 8 > self.end:
                raise _LiteFallback
            tag, _, length, hdr = self.nested_header(p)
            p += hdr
            if tag == 0xFFFEE0DD:
                return p
            if tag != 0xFFFEE000:
                raise _LiteFallback
            p = self.skip_dataset(p) if length == _UNDEFINED else p + length

    def skip_dataset(self, p: int) -> int:
        """Past an undefined-length item, to after its item delimiter (FFFE,E00D)."""
        while True:
            if p + 8 > self.end:
                raise _LiteFallback
            tag, _, length, hdr = self.nested_header(p)
            if tag == 0xFFFEE00D:
                return p + hdr
            p += hdr
            p = self.skip_undefined(p) if length == _UNDEFINED else p + length

    def raw(self, tag: int, vr: bytes | None, length: int, value: bytes | None, tell: int) -> Any:
        """A pydicom ``RawDataElement`` (value not converted)."""
        return self._raw_element(tag, vr.decode() if vr else None, length, value, tell, self.implicit, True, True, False)

    def elements(self, pos: int, meta: dict[str, str], path: str, size: int) -> LiteResult | None:
        """Keep the wanted elements from ``pos`` on, up to the pixel data or the end."""
        elems: dict[int, Any] = {}
        buf, end = self.buf, self.end
        while pos + 8 <= end:
            tag, vr, length, hdr = self.top_header(pos)
            if tag in _LITE_FALLBACK_TAGS:
                return None
            if tag in _PIXEL_TAGS:
                elems[tag] = self.raw(tag, vr, length, None, pos + hdr)
                defined = length != _UNDEFINED
                if not defined:
                    _check_fragments(path, pos + hdr, size)
                lite = _Lite(elems, meta, self.implicit)
                return lite, (pos + hdr if defined else None), (length if defined else None), True
            if tag == 0x00080005 and length:
                charset = buf[pos + hdr:pos + hdr + length].decode("latin-1").strip(" \x00")
                if charset not in _DEFAULT_CHARSETS:
                    return None
            if length == _UNDEFINED:
                if tag in _FAST_VR:
                    return None
                pos = self.skip_undefined(pos + hdr)
                continue
            if tag in _FAST_VR:
                if pos + hdr + length > end:
                    raise _LiteFallback
                elems[tag] = self.raw(tag, vr, length, bytes(buf[pos + hdr:pos + hdr + length]), pos + hdr)
            pos += hdr + length
        if end != size or pos != end:
            return None  # header longer than the first block, or trailing garbage: pydicom decides
        return _Lite(elems, meta, self.implicit), None, None, False


def _lite_parse(path: str, size: int) -> LiteResult | None:
    """Parse a Part 10 file's header into raw elements, stopping at the pixel data.

    Returns ``(dataset, pixel_offset, pixel_length, has_pixels)`` or None when the file
    needs pydicom (no preamble, big endian, deflate, non-default character set,
    functional groups, mosaic, anything unexpected). Only the ~40 tags used here are
    kept and nothing is converted.

    Raises:
        _FileProblem: encapsulated pixel data that ends before its delimiter (truncated).
    """
    with open(path, "rb") as fh:
        buf = fh.read(_LITE_READ if size > _LITE_READ else size)
    if len(buf) < 144 or buf[128:132] != b"DICM":
        return None
    meta, pos = _read_file_meta(buf)
    ts = meta.get("TransferSyntaxUID", "")
    if not ts or ts in (_EXPLICIT_BE, _DEFLATED):
        return None
    try:
        return _Walker(buf, ts == _IMPLICIT_LE).elements(pos, meta, path, size)
    except (_LiteFallback, struct.error, UnicodeDecodeError):
        return None
