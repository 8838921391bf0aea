"""NIfTI intensity scaling (``scl_slope`` / ``scl_inter``): decoding exactly, re-encoding exactly.

A NIfTI file stores ``value = raw * scl_slope + scl_inter`` (``nifti1.h``). Which float type
holds those values matters: an int32 near 2**30 times a slope is not a float32, and a
float32 decode would be off by up to 32 -- and reading and re-writing the image would then
change the stored integers.

The rule, decoding
    nibabel decodes every scaled image in float64 (``apply_read_scaling``: slope and
    intercept are float64 and the working type is only ever raised from there; larger
    floats only when float64 would overflow). medimg gives the same values: in float32
    where that provably changes nothing -- every step of ``raw * slope + inter`` is exact
    in float32 for *every* value the on-disk integer type can hold, e.g. int16 with slope 1
    and intercept -1024, the common CT case -- and otherwise in float64, computed in
    nibabel's order (cast, multiply, add), so even where float64 itself rounds (int64
    beyond 2**53) the values are nibabel's. The choice depends on the header only, never on
    the voxels, so every file of a series decodes to the same dtype.

The rule, encoding
    Writing back an image read from a scaled file re-stores the original integers with the
    original slope and intercept when reading that file gives exactly the image's values in
    the image's dtype (checked, not assumed); otherwise the values are written as they are.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["header_scaling", "decoded_dtype", "apply_scaling", "encode_scaled", "restore_dtype"]

# Image widens unsigned types torch lacks; writing narrows them back
_WIDENED = {np.dtype(np.uint16): np.dtype(np.int32), np.dtype(np.uint32): np.dtype(np.int64)}


def header_scaling(hdr: Any) -> tuple[float, float] | None:
    """``(slope, inter)`` when scaling is non-trivial (NIfTI-1: slope 0 means none)."""
    slope, inter = float(hdr["scl_slope"]), float(hdr["scl_inter"])
    if not np.isfinite(slope) or slope == 0.0:
        return None
    if not np.isfinite(inter):
        inter = 0.0
    if slope == 1.0 and inter == 0.0:
        return None
    return slope, inter


def _odd_mantissa(x: float) -> tuple[int, int]:
    """``(m, e)`` with ``x == m * 2**e`` and ``m`` odd; ``(0, 0)`` for zero."""
    if x == 0.0:
        return 0, 0
    p, q = float(x).as_integer_ratio()  # q is a power of two
    e = 1 - q.bit_length()
    while p % 2 == 0:
        p //= 2
        e += 1
    return p, e


def _exact_in(ftype: type, disk: np.dtype, slope: float, inter: float) -> bool:
    """Whether ``raw * slope + inter``, computed in ``ftype`` one step at a time (cast,
    multiply, add), is exact for every value of the integer dtype ``disk``.

    Every step is exact when its result is an integer of at most ``nmant + 1`` bits times a
    power of two within the type's exponent range: the raw integers themselves, the
    products ``raw * m_s * 2**e_s``, and the sums over the common exponent ``min(e_s, e_i)``.
    """
    info = np.finfo(ftype)
    limit = 1 << (info.nmant + 1)
    if ftype(slope) != slope or ftype(inter) != inter:
        return False
    ii = np.iinfo(disk)
    r = max(-int(ii.min), int(ii.max))
    ms, es = _odd_mantissa(slope)
    mi, ei = _odd_mantissa(inter)
    e0 = min(es, ei) if mi else es
    n = r * abs(ms) * 2 ** (es - e0) + abs(mi) * 2 ** (ei - e0)
    if r > limit or r * abs(ms) > limit or n > limit:
        return False
    try:
        biggest = math.ldexp(n, e0)
    except OverflowError:
        return False
    return e0 >= info.minexp - info.nmant and biggest <= float(info.max)


def decoded_dtype(disk: np.dtype, slope: float, inter: float) -> np.dtype:
    """The dtype scaled data of on-disk dtype ``disk`` decode to: float32 where that holds
    every possible value exactly (integer data only), else float64 (see the module doc)."""
    if disk.kind in "iu" and _exact_in(np.float32, disk, slope, inter):
        return np.dtype(np.float32)
    return np.dtype(np.float64)


def apply_scaling(raw: np.ndarray, slope: float, inter: float) -> np.ndarray:
    """``raw * slope + inter`` in :func:`decoded_dtype`, memory order kept (a new array)."""
    ft = decoded_dtype(raw.dtype, slope, inter)
    out = raw.astype(ft, order="K")
    if slope != 1.0:  # skipped like nibabel: multiplying by 1 would turn -0.0 into +0.0
        out *= ft.type(slope)
    if inter != 0.0:
        out += ft.type(inter)
    return out


def encode_scaled(arr: np.ndarray, disk: np.dtype, slope: float, inter: float) -> np.ndarray | None:
    """The values in the on-disk dtype ``disk`` that decode (with ``slope``, ``inter``) to
    exactly ``arr`` in ``arr``'s own dtype, or None where no such values exist."""
    if arr.dtype.kind != "f" or disk.kind not in "iuf":
        return None
    ft = arr.dtype.type
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        q = (arr - ft(inter)) / ft(slope)
        if disk.kind in "iu":
            q = np.rint(q)
            info = np.iinfo(disk)
            if not (np.all(np.isfinite(q)) and q.min(initial=0) >= info.min
                    and q.max(initial=0) <= info.max):
                return None
        raw = q.astype(disk, order="K")
    back = apply_scaling(raw, slope, inter)
    if back.dtype != arr.dtype or not np.array_equal(back, arr, equal_nan=disk.kind == "f"):
        return None
    return raw


def restore_dtype(arr: np.ndarray, nmeta: dict[str, Any] | None, requantise: bool = True,
                  ) -> tuple[np.ndarray, tuple[float, float] | None]:
    """The values to write and their scaling: back in the file's dtype where that is exact.

    uint16/uint32 that ``Image`` widened on read are narrowed back; with ``requantise``
    (intensity images) data stored with ``scl_slope``/``scl_inter`` go back to the stored
    values and scaling if :func:`encode_scaled` finds values that decode to ``arr`` bit for
    bit. Anything else is written as it is, without scaling.
    """
    if nmeta is None or nmeta.get("dtype") in (None, "rgb24"):
        return arr, None
    disk = np.dtype(nmeta["dtype"])
    slope, inter = nmeta.get("scl_slope"), nmeta.get("scl_inter")
    if slope is not None and arr.dtype.kind == "f":
        raw = encode_scaled(arr, disk, slope, inter) if requantise else None
        return (arr, None) if raw is None else (raw, (slope, inter))
    wide = _WIDENED.get(disk)  # (np.dtype == None is True: compare only a real dtype)
    if wide is not None and wide == arr.dtype and arr.size:  # Image widened it on read
        info = np.iinfo(disk)
        if arr.min() >= info.min and arr.max() <= info.max:
            return arr.astype(disk, order="K"), None
    return arr, None
