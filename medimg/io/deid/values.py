"""Replacement values: VR-consistent dummies and zero-length values, and date shifting."""

from __future__ import annotations

import datetime as _dt
import re
from typing import Any

__all__ = ["BYTES_VRS", "NUMERIC_VRS", "base_vr", "dummy_value", "empty_value", "shift_da", "shift_dt"]

DUMMY_TEXT = "ANONYMIZED"
#: a dummy per VR (PS3.5 6.2): valid, non-empty, and obviously not a real value
_DUMMY: dict[str, Any] = {
    "PN": "ANONYMIZED",
    "DA": "19000101",
    "TM": "000000",
    "DT": "19000101000000",
    "AS": "000Y",
    "DS": "0",
    "IS": "0",
    "CS": "ANONYMIZED",
    "AE": "ANONYMIZED",
    "UR": "ANONYMIZED",
    "AT": 0x00000000,
}
NUMERIC_VRS = frozenset({"US", "SS", "UL", "SL", "FL", "FD", "UV", "SV"})
BYTES_VRS = frozenset({"OB", "OW", "OF", "OD", "OL", "OV", "UN"})


def base_vr(vr: str) -> str:
    """The first VR of an ambiguous one (``"US or SS"`` -> ``"US"``)."""
    return vr.split(" or ")[0]


def dummy_value(vr: str) -> Any:
    """A non-zero-length value consistent with ``vr`` (not for UI or SQ)."""
    vr = base_vr(vr)
    if vr in NUMERIC_VRS:
        return 0
    if vr in BYTES_VRS:
        return b"\x00" * 8  # a whole number of 2-, 4- and 8-byte words
    return _DUMMY.get(vr, DUMMY_TEXT)


def empty_value(vr: str) -> Any:
    """The zero-length value pydicom writes for ``vr`` (not for SQ)."""
    vr = base_vr(vr)
    if vr in NUMERIC_VRS or vr == "AT":
        return None
    if vr in BYTES_VRS:
        return b""
    return ""


def shift_da(value: str, days: int) -> str:
    """A DA value (``YYYYMMDD``, ``YYYYMM``, ``YYYY`` or ACR-NEMA ``YYYY.MM.DD``) moved by days.

    Raises:
        ValueError: not a DA value.
    """
    v = value.strip()
    if not v:
        return v
    m = re.fullmatch(r"(\d{4})\.?(\d{2})?\.?(\d{2})?", v)
    if not m:
        raise ValueError("not a DA value")
    y, mo, d = int(m.group(1)), int(m.group(2) or 1), int(m.group(3) or 1)
    new = _dt.date(y, mo, d) + _dt.timedelta(days=days)
    if m.group(3):
        return new.strftime("%Y%m%d")
    if m.group(2):
        return new.strftime("%Y%m")
    return new.strftime("%Y")


def shift_dt(value: str, days: int) -> str:
    """A DT value moved by whole days; its time of day and UTC offset are kept.

    Raises:
        ValueError: not a DT value.
    """
    v = value.strip()
    if not v:
        return v
    m = re.fullmatch(r"(\d{4,8})(\d*(?:\.\d*)?)([+-]\d{4})?", v)
    if not m:
        raise ValueError("not a DT value")
    return shift_da(m.group(1), days) + m.group(2) + (m.group(3) or "")
