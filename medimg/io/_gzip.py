"""Fast whole-buffer gzip inflate and deflate for image files (RFC 1952).

Reading a ``.nii.gz`` is bounded by inflate, which is serial, so the library that does it
sets the speed. In order of preference:

1. ``deflate`` (libdeflate): inflates a whole buffer at once into an output of known size,
   the fastest here, and hands back a writable ``bytearray`` (no copy for numpy/torch).
2. ``isal`` (Intel ISA-L): nearly as fast; its output is ``bytes`` (read-only), so one copy.
3. stdlib ``zlib``: always there, ~1.6x slower.

libdeflate decompresses only the first gzip member; a file may hold several members
(RFC 1952 §2.2, e.g. written by ``pigz`` or concatenated), so every fast result is checked
against the size the caller expects and anything unexpected goes through the streaming
path, which handles any number of members and gives precise errors for truncated or
corrupt data.
"""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np

__all__ = [
    "GZIP_MAGIC",
    "GzipDataError",
    "available_backends",
    "gunzip",
    "gunzip_head",
    "gzip_compressobj",
]

GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 1 << 16


class GzipDataError(Exception):
    """The gzip stream is truncated or corrupt. ``truncated`` tells which."""

    def __init__(self, message: str, *, truncated: bool) -> None:
        super().__init__(message)
        self.truncated = truncated


def _try_import(name: str) -> Any:
    try:
        import importlib

        return importlib.import_module(name)
    except ImportError:
        return None


_deflate = _try_import("deflate")
_isal_zlib = _try_import("isal.isal_zlib")


def available_backends() -> list[str]:
    """Inflate backends importable here, fastest first (``"zlib"`` is always last)."""
    out = []
    if _deflate is not None:
        out.append("deflate")
    if _isal_zlib is not None:
        out.append("isal")
    out.append("zlib")
    return out


def gunzip_head(data: Any, nbytes: int) -> bytes:
    """The first ``nbytes`` decompressed bytes of a gzip stream (fewer if it is shorter).

    Only as much input as needed is inflated, so this costs microseconds.

    Raises:
        GzipDataError: the stream is corrupt.
    """
    mv = memoryview(data)
    d = zlib.decompressobj(31)
    out = b""
    pos = 0
    try:
        while len(out) < nbytes and pos < len(mv) and not d.eof:
            out += d.decompress(mv[pos : pos + _CHUNK], nbytes - len(out))
            pos += _CHUNK
            # unconsumed_tail holds input kept back by max_length; feed it first
            while d.unconsumed_tail and len(out) < nbytes:
                out += d.decompress(d.unconsumed_tail, nbytes - len(out))
    except zlib.error as exc:
        raise GzipDataError(f"corrupt gzip data ({exc})", truncated=False) from exc
    return out


def _stream(data: memoryview, module: Any) -> bytes:
    """Inflate every member of a gzip stream with a zlib-compatible ``module``."""
    parts: list[bytes] = []
    pos = 0
    n = len(data)
    members = 0
    while pos < n:
        if bytes(data[pos : pos + 2]) != GZIP_MAGIC:
            if members and not any(data[pos:]):  # zero padding after the last member
                break
            raise GzipDataError(
                f"not a gzip member at byte {pos} (expected 1f 8b, found "
                f"{bytes(data[pos : pos + 2]).hex(' ') or 'end of file'})",
                truncated=False,
            )
        d = module.decompressobj(31)
        try:
            parts.append(d.decompress(data[pos:]))
            parts.append(d.flush())
        except Exception as exc:  # zlib.error / isal IsalError
            raise GzipDataError(f"corrupt gzip data in member {members + 1} ({exc})", truncated=False) from exc
        if not d.eof:
            raise GzipDataError(
                f"compressed data end early: gzip member {members + 1} has no end-of-stream "
                f"marker after {n} compressed bytes (the file is truncated)",
                truncated=True,
            )
        members += 1
        pos = n - len(d.unused_data)
    return b"".join(parts) if len(parts) != 1 else parts[0]


def gunzip(data: Any, expected_size: int | None = None, backend: str = "auto") -> np.ndarray:
    """Inflate a whole gzip stream (any number of members) into a writable uint8 array.

    Args:
        data: the compressed bytes (bytes, bytearray, memoryview or mmap).
        expected_size: the decompressed size the caller expects, if known (e.g. from the
            NIfTI header). It lets libdeflate write straight into a buffer of the right
            size; a stream of another size still decompresses correctly, more slowly.
        backend: ``"auto"`` (fastest available), ``"deflate"``, ``"isal"`` or ``"zlib"``.

    Returns:
        1D writable ``uint8`` array of all decompressed bytes.

    Raises:
        GzipDataError: truncated or corrupt stream.
        ValueError: unknown or unavailable backend.
    """
    backends = available_backends()
    if backend == "auto":
        backend = backends[0]
    elif backend not in backends:
        raise ValueError(f"gzip backend {backend!r} is not available here (available: {backends})")
    mv = memoryview(data).cast("B")
    if len(mv) < 18 or bytes(mv[:2]) != GZIP_MAGIC:
        raise GzipDataError(
            f"not gzip data (expected magic 1f 8b and at least 18 bytes, found "
            f"{bytes(mv[:2]).hex(' ') or 'nothing'} and {len(mv)} bytes)",
            truncated=len(mv) < 18 and bytes(mv[:2]) == GZIP_MAGIC,
        )
    if backend == "deflate":
        # Only with a known size: libdeflate stops after the first member, so its output is
        # trusted only when it is exactly as long as the caller needs.
        if expected_size:
            try:
                out = _deflate.gzip_decompress(mv, expected_size)
            except _deflate.DeflateError:
                out = None  # truncated, corrupt or longer: the stream path says which
            if out is not None and len(out) == expected_size:
                return np.frombuffer(out, dtype=np.uint8)
        backend = "isal" if _isal_zlib is not None else "zlib"
    module = _isal_zlib if backend == "isal" else zlib
    raw = _stream(mv, module)
    # bytes are read-only; torch would warn on a read-only array, and the reader may
    # byte-swap or scale in place, so take a writable copy (one memcpy, ~5% of inflate).
    return np.frombuffer(bytearray(raw), dtype=np.uint8)


def gzip_compressobj(level: int | None = None) -> Any:
    """A gzip-format compress object (``.compress(buf)``, ``.flush()``).

    ISA-L (levels 0-3, default 1) when installed: several times faster than zlib at a
    similar ratio, which matters when many predictions are written; else zlib (default 6).
    """
    if _isal_zlib is not None:
        lvl = 1 if level is None else int(level)
        if not 0 <= lvl <= 3:
            raise ValueError(f"ISA-L gzip level must be 0-3, got {lvl}")
        return _isal_zlib.compressobj(lvl, zlib.DEFLATED, 31)
    lvl = 6 if level is None else int(level)
    return zlib.compressobj(lvl, zlib.DEFLATED, 31)
