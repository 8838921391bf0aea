"""Pixel decoding: frames -> ``(K, rows, columns)`` arrays, modality LUT, resampling.

Uncompressed grey pixels are read straight from the file at the offset the header
parser found (``np.fromfile``); everything else (compressed syntaxes, colour, palette,
big endian) is decoded once per file by pydicom and its codecs.
"""

from __future__ import annotations

import math

import numpy as np

from medimg.core.errors import DicomError, MissingDependencyError, exception_reason

from .records import (
    _DICOM_EXTRA_HINT,
    _DOUBLE_PIXEL_DATA,
    _EXPLICIT_BE,
    _FLOAT_PIXEL_DATA,
    _PIXEL_DATA,
    _FileHeader,
    _Frame,
    _pydicom,
)


def _np_dtype(h: _FileHeader) -> np.dtype:
    """The stored pixel dtype (byte order of the transfer syntax)."""
    if h.pixel_tag == _FLOAT_PIXEL_DATA:
        base = "f4"
    elif h.pixel_tag == _DOUBLE_PIXEL_DATA:
        base = "f8"
    else:
        kind = "i" if h.pixel_representation == 1 else "u"
        base = f"{kind}{h.bits_allocated // 8}"
    order = ">" if h.transfer_syntax == _EXPLICIT_BE else "<"
    return np.dtype(order + base)


def _fast_path(h: _FileHeader) -> bool:
    """Whether the frames of this file are read straight from the file."""
    return (h.pixel_offset is not None and h.samples_per_pixel == 1
            and h.bits_allocated in (8, 16, 32) and h.photometric.startswith("MONOCHROME"))


class _Decoder:
    """Decodes frames, caching the last decoded compressed file (multi-frame, mosaic)."""

    def __init__(self) -> None:
        self._path: str | None = None
        self._arr: np.ndarray | None = None

    def frame(self, fr: _Frame) -> np.ndarray:
        """The frame's pixels as ``(rows, columns)`` or ``(rows, columns, samples)``."""
        h = fr.header
        if fr.mosaic:
            full = self._whole(h)
            m = int(math.ceil(math.sqrt(fr.mosaic)))
            th, tw = fr.rows, fr.columns
            tr, tc = divmod(fr.frame, m)
            return full[tr * th:(tr + 1) * th, tc * tw:(tc + 1) * tw]
        if _fast_path(h):
            dt = _np_dtype(h)
            count = h.rows * h.columns
            assert h.pixel_offset is not None
            arr = np.fromfile(h.path, dtype=dt, count=count, offset=h.pixel_offset + fr.frame * count * dt.itemsize)
            if arr.size != count:
                raise DicomError(f"truncated pixel data in '{h.path}' (frame {fr.frame + 1})")
            return arr.reshape(h.rows, h.columns)
        full = self._whole(h)
        return full[fr.frame] if h.num_frames > 1 else full

    def _whole(self, h: _FileHeader) -> np.ndarray:
        if self._path != h.path:
            self._arr = _decode_with_pydicom(h)
            self._path = h.path
        assert self._arr is not None
        return self._arr


def _decode_with_pydicom(h: _FileHeader) -> np.ndarray:
    """All frames of a file decoded by pydicom (palette colour applied).

    Raises:
        MissingDependencyError: the transfer syntax needs a codec that is not installed.
        DicomError: the pixel data cannot be decoded.
    """
    pydicom = _pydicom()
    ds = pydicom.dcmread(h.path, force=True)
    if "TransferSyntaxUID" not in ds.file_meta:
        ds.file_meta.TransferSyntaxUID = h.transfer_syntax
    try:
        arr = ds.pixel_array
    except Exception as exc:
        from pydicom.uid import UID

        name = UID(h.transfer_syntax).name
        text = str(exc)
        if isinstance(exc, (NotImplementedError, RuntimeError, ImportError)) and (
            "plugin" in text.lower() or "decod" in text.lower() or "missing" in text.lower() or "handler" in text.lower()
        ):
            raise MissingDependencyError(
                f"cannot decode '{h.path}': transfer syntax {name} ({h.transfer_syntax}) needs a codec "
                f"that is not installed ({text.splitlines()[0] if text.strip() else exception_reason(exc)})",
                hint=_DICOM_EXTRA_HINT,
            ) from exc
        raise DicomError(f"cannot decode the pixel data of '{h.path}' ({name}): {exception_reason(exc)}") from exc
    if h.photometric == "PALETTE COLOR":
        from pydicom.pixels import apply_color_lut

        arr = apply_color_lut(arr, ds)
    return arr


# ----------------------------------------------------------------------------------------
# values: bits stored, modality LUT
# ----------------------------------------------------------------------------------------


def _int_dtype_for(lo: float, hi: float) -> np.dtype | None:
    """The smallest signed integer dtype holding ``lo..hi``."""
    for dt in (np.int16, np.int32, np.int64):
        info = np.iinfo(dt)
        if info.min <= lo and hi <= info.max:
            return np.dtype(dt)
    return None


def _rescale_integers(vol: np.ndarray, slopes: np.ndarray, intercepts: np.ndarray, uniform: bool) -> np.ndarray | None:
    """Integral slopes and intercepts on integer data, in the smallest int dtype that holds
    the result (in place where possible); None when no integer dtype does."""
    lo_raw, hi_raw = (int(vol.min()), int(vol.max())) if vol.size else (0, 0)
    cands = [s * v + b for s in slopes for b in intercepts for v in (lo_raw, hi_raw)] if not uniform else [
        slopes[0] * lo_raw + intercepts[0], slopes[0] * hi_raw + intercepts[0]]
    target = _int_dtype_for(min(cands), max(cands))
    if target is None:
        return None
    if vol.dtype == np.uint16 and target == np.int16 and hi_raw <= 32767:
        out = vol.view(np.int16)
    elif vol.dtype == target:
        out = vol
    else:
        out = vol.astype(target)
    if uniform:
        if slopes[0] != 1:
            out *= out.dtype.type(slopes[0])
        out += out.dtype.type(intercepts[0])
    else:
        for k in range(out.shape[0]):
            out[k] *= out.dtype.type(slopes[k])
            out[k] += out.dtype.type(intercepts[k])
    return out


def _apply_rescale(vol: np.ndarray, slopes: np.ndarray, intercepts: np.ndarray) -> np.ndarray:
    """Apply the modality LUT (PS3.3 C.11.1.1.2: out = slope * stored + intercept).

    ``vol`` is ``(K, rows, cols)`` stored values (modified in place when the result fits
    its dtype). Integers stay integers (smallest int dtype holding the range) when every
    slope and intercept is integral; otherwise float32.
    """
    uniform = bool(np.all(slopes == slopes[0]) and np.all(intercepts == intercepts[0]))
    integral = bool(np.all(slopes == np.round(slopes)) and np.all(intercepts == np.round(intercepts)))
    if uniform and slopes[0] == 1 and intercepts[0] == 0:
        if vol.dtype == np.uint16 or vol.dtype == np.uint32:
            hi = int(vol.max()) if vol.size else 0
            half = np.iinfo(vol.dtype).max // 2
            if hi <= half:  # same bits, reinterpret as signed: no copy
                return vol.view(np.int16 if vol.dtype == np.uint16 else np.int32)
        return vol
    if np.issubdtype(vol.dtype, np.integer) and integral:
        out = _rescale_integers(vol, slopes, intercepts, uniform)
        if out is not None:
            return out
    out = vol.astype(np.float32)
    if uniform:
        out *= np.float32(slopes[0])
        out += np.float32(intercepts[0])
    else:
        out *= slopes.astype(np.float32)[:, None, None]
        out += intercepts.astype(np.float32)[:, None, None]
    return out


def _fix_bits(vol: np.ndarray, h: _FileHeader) -> None:
    """Mask or sign-extend when BitsStored < BitsAllocated (PS3.5 8.1.1), in place."""
    if h.pixel_tag != _PIXEL_DATA or not np.issubdtype(vol.dtype, np.integer):
        return
    bs, ba = h.bits_stored, h.bits_allocated
    if not (0 < bs < ba):
        return
    if h.pixel_representation == 0:
        if vol.size and int(vol.max()) >= (1 << bs):
            vol &= vol.dtype.type((1 << bs) - 1)
    else:
        shift = ba - bs
        lo, hi = (int(vol.min()), int(vol.max())) if vol.size else (0, 0)
        if lo < -(1 << (bs - 1)) or hi >= (1 << (bs - 1)):
            vol <<= shift
            vol >>= shift


def _read_volume(frames: list[_Frame], decoder: _Decoder, rescale: bool) -> np.ndarray:
    """Decode the frames of one volume into ``(K, rows, cols[, samples])``, rescaled."""
    h0 = frames[0].header
    first = decoder.frame(frames[0])
    shape = (len(frames),) + first.shape
    dt = first.dtype.newbyteorder("=") if first.dtype.byteorder not in ("=", "|") else first.dtype
    vol = np.empty(shape, dtype=dt)
    vol[0] = first
    for k in range(1, len(frames)):
        arr = decoder.frame(frames[k])
        if arr.shape != first.shape:
            raise DicomError(f"'{frames[k].path}' decodes to {arr.shape}, expected {first.shape} like '{frames[0].path}'")
        vol[k] = arr
    if vol.ndim == 3:
        _fix_bits(vol, h0)
    if rescale and vol.ndim == 3 and h0.photometric.startswith("MONOCHROME"):
        slopes = np.array([f.slope for f in frames], dtype=np.float64)
        inters = np.array([f.intercept for f in frames], dtype=np.float64)
        vol = _apply_rescale(vol, slopes, inters)
    elif vol.dtype in (np.uint16, np.uint32) and vol.ndim == 3:
        vol = _apply_rescale(vol, np.ones(1), np.zeros(1))
    return vol


# ----------------------------------------------------------------------------------------
# resampling (only where the caller asked for it)
# ----------------------------------------------------------------------------------------


def _resample_slices(vol: np.ndarray, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Linear interpolation along axis 0 from positions ``src`` to ``dst`` (mm), float32."""
    out = np.empty((len(dst),) + vol.shape[1:], dtype=np.float32)
    idx = np.clip(np.searchsorted(src, dst, side="right") - 1, 0, len(src) - 2)
    w = (dst - src[idx]) / (src[idx + 1] - src[idx])
    for k, (i, wk) in enumerate(zip(idx, w)):
        out[k] = (1.0 - wk) * vol[i] + wk * vol[i + 1]
    return out


def _resample_tilt(vol: np.ndarray, shift_ij: np.ndarray) -> np.ndarray:
    """Shift slice k in-plane by ``k * shift_ij`` voxels (i = columns, j = rows), linear."""
    from scipy import ndimage

    out = np.empty(vol.shape, dtype=np.float32)
    fill = float(vol.min()) if vol.size else 0.0
    for k in range(vol.shape[0]):
        # vol[k] is (rows=j, cols=i); slice k's origin sits k*s voxels in-plane from slice 0's,
        # so output voxel (i, j) samples source (i - k*s_i, j - k*s_j): ndimage.shift's
        # output[x] = input[x - shift]
        ndimage.shift(vol[k].astype(np.float32), shift=(k * shift_ij[1], k * shift_ij[0]),
                      output=out[k], order=1, mode="constant", cval=fill)
    return out
