"""Tag values from a header: decode the few value representations discovery needs, fast.

Both header sources go through :func:`_g`: a pydicom ``Dataset`` (raw elements, values
not yet converted) and the hand-written parser's :class:`_Lite` (raw elements only).
"""

from __future__ import annotations

import functools
import hashlib
import math
from typing import Any

import numpy as np

from .records import _FileProblem

#: Value representation of the tags read by the fast getter (implicit VR files carry none).
#: The hand-written header parser keeps exactly these tags.
_FAST_VR = {
    0x00080016: "UI", 0x00080018: "UI", 0x0020000D: "UI", 0x0020000E: "UI", 0x00200052: "UI",
    0x00080060: "CS", 0x00080070: "LO", 0x0008103E: "LO", 0x00100020: "LO", 0x00100010: "PN",
    0x00280004: "CS", 0x00080032: "TM", 0x00080033: "TM", 0x00080008: "CS",
    0x00200011: "IS", 0x00200013: "IS", 0x00200012: "IS", 0x00280008: "IS", 0x00200100: "IS",
    0x00180086: "IS",
    0x00200032: "DS", 0x00200037: "DS", 0x00280030: "DS", 0x00181164: "DS", 0x00281052: "DS",
    0x00281053: "DS", 0x00180050: "DS", 0x00180088: "DS", 0x00181120: "DS", 0x00180081: "DS",
    0x00181060: "DS",
    0x00280010: "US", 0x00280011: "US", 0x00280002: "US", 0x00280100: "US", 0x00280101: "US",
    0x00280103: "US", 0x00280006: "US", 0x0019100A: "US",
    0x00189087: "FD", 0x00189089: "FD", 0x00089208: "CS", 0x00080021: "DA", 0x00080031: "TM",
    0x00080020: "DA",
}
_STRING_VRS = {"UI", "CS", "LO", "SH", "PN", "TM", "DA", "DT", "LT", "ST", "AE", "UT"}
_TEXT_VRS = {"LO", "SH", "PN", "LT", "ST", "UT", "UC"}


class _Lite:
    """Just enough of a pydicom ``Dataset`` for :func:`_fast`: raw elements by tag.

    Made by the hand-written parser only for files in the default character set, so its
    text values decode as latin-1 (never through pydicom: ``__getitem__`` has no values).
    """

    def __init__(self, elems: dict[int, Any], file_meta: dict[str, str], implicit: bool) -> None:
        self._dict = elems
        self.file_meta = file_meta
        self.is_implicit_VR = implicit
        self.is_little_endian = True

    def __contains__(self, key: Any) -> bool:
        tag = key if isinstance(key, int) else _tag_of(key)
        return tag in self._dict

    def __getitem__(self, tag: int) -> Any:
        raise KeyError(tag)  # _fast's pydicom fallback: not available, value unreadable


def _fast(ds: Any, tag: int) -> Any:
    """A tag's value, decoding the raw bytes of the few VRs used here directly.

    pydicom converts raw elements through its generic hook chain (~20-50 us each); this
    reader needs ~40 tags per file, so decoding them here halves header time. Anything
    unusual (already converted, unknown VR, odd bytes) goes through pydicom.
    """
    # Dataset._dict is pydicom's tag -> element mapping (private, stable since 1.x);
    # reading it directly avoids Tag() conversion per lookup. get_item is the fallback.
    store = getattr(ds, "_dict", None)
    elem = store.get(tag) if isinstance(store, dict) else ds.get_item(tag, keep_deferred=True)
    if elem is None:
        return None
    if not getattr(elem, "is_raw", False):
        return elem.value
    vr = elem.VR or _FAST_VR.get(tag)
    data = elem.value
    if data is None or vr is None:
        return ds[tag].value
    try:
        if vr in _STRING_VRS or vr in ("IS", "DS"):
            if vr in _TEXT_VRS and not isinstance(ds, _Lite) and max(data, default=0) >= 0x80:
                return ds[tag].value  # non-ASCII text: pydicom applies SpecificCharacterSet
            return _decode_text(data.decode("latin-1").strip(" \x00"), vr)
        order = "<" if elem.is_little_endian else ">"
        if vr == "US" and len(data) == 2:
            return int.from_bytes(data, "little" if elem.is_little_endian else "big")
        if vr in ("US", "SS", "UL", "SL", "FD", "FL"):
            code = {"US": "H", "SS": "h", "UL": "I", "SL": "i", "FD": "d", "FL": "f"}[vr]
            vals = np.frombuffer(data, dtype=order + code).tolist()
            return vals[0] if len(vals) == 1 else (vals or None)
    except (ValueError, UnicodeDecodeError):
        pass
    return ds[tag].value


def _decode_text(text: str, vr: str) -> Any:
    """A string value: numbers for IS/DS (a list when multi-valued), else the text."""
    if vr in ("IS", "DS"):
        parts = [p.strip() for p in text.split("\\")] if text else []
        if not parts:
            return None
        nums = [float(p) if vr == "DS" else int(float(p)) for p in parts]
        return nums[0] if len(nums) == 1 else nums
    if "\\" in text and vr in ("CS", "LO", "SH"):
        return text.split("\\")
    return text


@functools.lru_cache(maxsize=None)
def _tag_of(keyword: str) -> int:
    """The tag number of a DICOM keyword (``"Rows"`` -> ``0x00280010``)."""
    from pydicom.datadict import tag_for_keyword

    tag = tag_for_keyword(keyword)
    if tag is None:  # pragma: no cover - programming error
        raise KeyError(keyword)
    return int(tag)


def _g(ds: Any, keyword: str, default: Any = None) -> Any:
    """``ds.get(keyword, default)`` through :func:`_fast`."""
    value = _fast(ds, _tag_of(keyword))
    return default if value is None else value


def _num(value: Any, cast: Any = float) -> Any:
    """``cast(value)``, or None for a missing or unreadable value."""
    if value is None or value == "":
        return None
    try:
        return cast(value)
    except (TypeError, ValueError):
        return None


def _floats(value: Any, n: int) -> tuple[float, ...] | None:
    """``n`` finite floats, or None."""
    if value is None:
        return None
    try:
        vals = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        return None
    if len(vals) != n or not all(math.isfinite(v) for v in vals):
        return None
    return vals


def _checked_floats(ds: Any, keyword: str, n: int) -> tuple[float, ...] | None:
    """A geometry attribute as ``n`` floats; present but unreadable is a file problem."""
    raw = _g(ds, keyword)
    if raw is None or raw == "" or raw == []:
        return None
    vals = _floats(raw, n)
    if vals is None:
        shown = raw if not isinstance(raw, bytes) else raw[:40]
        raise _FileProblem(f"invalid {keyword} value {shown!r}: expected {n} numbers (wrong VR or corrupt value)")
    return vals


def _first_or_value(v: Any) -> Any:
    """The first value of a multi-valued attribute, or the value itself."""
    if v is None or isinstance(v, (str, bytes, int, float)):
        return v
    try:
        return v[0]
    except (TypeError, IndexError):
        return v


def _short_hash(text: str) -> str:
    """12 hex digits of SHA-1: a stable key that does not keep the text."""
    return hashlib.sha1(text.encode("utf-8", "replace")).hexdigest()[:12]
