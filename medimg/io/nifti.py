"""NIfTI-1 / NIfTI-2 (``.nii``, ``.nii.gz``) <-> :class:`~medimg.core.Image`, exact and fast.

Reading parses the header with nibabel's header classes (exact, well tested), then does the
data itself: the whole file is read at once, gzip is inflated in one call by the fastest
library installed (libdeflate, ISA-L, zlib; see :mod:`medimg.io._gzip`), and the voxels are
a view of that buffer. NIfTI stores voxels in Fortran order (x fastest; NIfTI-1 standard,
``nifti1.h``), and that order is kept: the array is a transposed view, never a C-order
copy. Channel-first layout is made by views too: a 3D volume ``(X, Y, Z)`` becomes
``(1, X, Y, Z)``, a 4D ``(X, Y, Z, T)`` becomes ``(T, X, Y, Z)``.

Everything needed to write the file back exactly is kept in ``image.meta["nifti"]``: the
on-disk dimensions and dtype, qform/sform matrices and codes, the raw quaternion
parameters, pixdim, units, intent, scaling, description, slice timing. Writing an image
whose grid is unchanged restores them all, so read -> write -> read gives the same voxels,
dtype and header geometry (codes included). An image on a new grid gets the new affine in
both sform and qform, with the codes it had.

Scaled data (``scl_slope`` / ``scl_inter``) are decoded to exactly nibabel's values, in
float32 where float32 holds every value the header allows and in float64 otherwise; writing
an unchanged image back re-stores the original integers (:mod:`medimg.io._nifti_scaling`).

Coordinate system: the affine is the NIfTI "best" affine (sform if ``sform_code > 0``,
else qform if ``qform_code > 0``, else pixdim scaling), which maps voxel indices to RAS+ mm
(NIfTI-1 standard, ``nifti1.h`` "method 2/3").
"""


from __future__ import annotations

import itertools
import mmap
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

import numpy as np

from ..core.errors import ImageReadError, ImageWriteError
from ..core.image import Image
from ._gzip import GZIP_MAGIC, GzipDataError, gunzip, gunzip_head, write_gzip_members
from ._nifti_header import (
    INTENT_LABEL,
    build_header,
    data_dtype,
    dims,
    header_meta,
    parse_header,
    read_err,
)
from ._nifti_scaling import apply_scaling, header_scaling, restore_dtype
from .layout import NIFTI_SUFFIXES, is_nifti_path

__all__ = ["read_nifti", "write_nifti", "is_nifti_path", "NIFTI_SUFFIXES"]


# ------------------------------------------------------------------------------------------
# reading
# ------------------------------------------------------------------------------------------
class _Layout(NamedTuple):
    """Where the voxels are: the parsed header, on-disk shape and dtype, byte offset and size,
    and a description for messages."""

    hdr: Any
    shape: tuple[int, ...]
    dtype: np.dtype
    offset: int
    nbytes: int
    what: str


def _close(mm: mmap.mmap | None) -> None:
    if mm is not None:
        try:
            mm.close()
        except BufferError:  # a view is still alive (e.g. in a traceback): GC closes it
            pass


def _open(p: Path) -> BinaryIO:
    """The file opened for reading, or one clear error."""
    try:
        return open(p, "rb")
    except FileNotFoundError:
        raise ImageReadError(f"cannot read NIfTI '{p}': file not found",
                             hint="check the path and the working directory") from None
    except IsADirectoryError:
        raise ImageReadError(f"cannot read NIfTI '{p}': it is a directory, expected a "
                             f".nii or .nii.gz file") from None
    except OSError as exc:
        raise ImageReadError(f"cannot read NIfTI '{p}': {exc.strerror or exc}") from exc


def _layout(head: bytes, p: Path, fsize: int, gz: bool) -> _Layout:
    """Parse the header and check that the file can hold the voxels it announces (a corrupt
    header can claim terabytes: refuse before allocating; deflate expands at most 1032:1,
    RFC 1951 block limits)."""
    hdr = parse_header(head, p)
    shape = dims(hdr, p)
    dtype = data_dtype(hdr, p)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    # header + 4-byte extension flag; a smaller vox_offset is invalid but seen in the wild
    offset = max(int(hdr["vox_offset"]), hdr.sizeof_hdr + 4)
    need = offset + nbytes
    dname = "rgb24" if dtype.fields else dtype.newbyteorder("=").name
    what = f"header {offset} bytes + data {nbytes} bytes (shape {shape}, {dname})"
    cap = fsize * 1032 + (1 << 20) if gz else fsize
    if need > cap:
        raise read_err(
            p, (f"the header says {need} bytes ({what}) but the {fsize}-byte gzip file "
                f"can hold at most {cap}") if gz else
               (f"the file is shorter than the header says: expected {need} bytes "
                f"({what}), found {fsize}"),
            hint="the file is truncated (interrupted copy?) or its header is corrupt",
        )
    return _Layout(hdr, shape, dtype, offset, nbytes, what)


def _read_plain(f: BinaryIO, p: Path) -> tuple[_Layout, np.ndarray]:
    """Header and voxel bytes (a new writable buffer) of an uncompressed ``.nii``."""
    lay = _layout(f.read(544), p, os.fstat(f.fileno()).st_size, gz=False)
    raw = np.empty(lay.nbytes, dtype=np.uint8)
    f.seek(lay.offset)
    got = f.readinto(raw)
    if got != lay.nbytes:
        raise read_err(
            p, f"the file is shorter than the header says: expected {lay.offset + lay.nbytes} "
               f"bytes ({lay.what}), found {lay.offset + got}",
            hint="the file is truncated (interrupted copy?) or its header is wrong",
        )
    return lay, raw


def _read_gz(f: BinaryIO, p: Path, backend: str) -> tuple[_Layout, np.ndarray]:
    """Header and voxel bytes of a ``.nii.gz``: the whole compressed stream, inflated in one
    call; mapped rather than read, which saves a copy (the inflater reads the page cache)."""
    try:
        mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    except (ValueError, OSError):  # an empty file, or a file system without mmap
        mm = None
    blob = mm if mm is not None else f.read()
    try:
        try:
            head = gunzip_head(blob, 544)
        except GzipDataError as exc:
            raise read_err(p, str(exc)) from None
        lay = _layout(head, p, os.fstat(f.fileno()).st_size, gz=True)
        need = lay.offset + lay.nbytes
        try:
            buf = gunzip(blob, need, backend)
        except GzipDataError as exc:
            raise read_err(
                p, f"{exc}; expected {need} decompressed bytes: {lay.what}",
                hint="the file is truncated or damaged (interrupted copy or download?); "
                     "re-create or re-download it",
            ) from None
    finally:
        del blob
        _close(mm)
    if len(buf) < need:
        raise read_err(
            p, f"decompressed data are shorter than the header says: expected {need} "
               f"bytes ({lay.what}), found {len(buf)}",
            hint="the file is truncated or its header is wrong",
        )
    return lay, buf[lay.offset:need]


def _channel_first(raw: np.ndarray, dtype: np.dtype, shape: tuple[int, ...]) -> np.ndarray:
    """The voxel bytes as a channel-first view in the file's Fortran order: ``(X, Y, Z)`` ->
    ``(1, X, Y, Z)``, ``(X, Y, Z, T, ...)`` -> ``(T*..., X, Y, Z)``, RGB24 -> 3 channels;
    big-endian data are swapped in place (the buffer is our own)."""
    if raw.ctypes.data % max(dtype.alignment, 1):  # odd vox_offset: realign (rare)
        raw = raw.copy()
    if dtype.fields:  # RGB24: 3 interleaved uint8 -> channel axis first, still a view
        return raw.reshape((3, *shape), order="F")
    vox = raw.view(dtype)
    if not dtype.isnative:
        vox.byteswap(inplace=True)
        vox = vox.view(dtype.newbyteorder("="))
    arr = vox.reshape(shape, order="F")
    if len(shape) <= 3:
        return arr[None]
    return np.moveaxis(arr.reshape((*shape[:3], -1), order="F"), -1, 0)


def read_nifti(
    path: str | os.PathLike,
    *,
    kind: str | None = None,
    backend: str = "auto",
) -> Image:
    """Read a ``.nii`` / ``.nii.gz`` file (NIfTI-1 or NIfTI-2, either byte order).

    Args:
        path: the file.
        kind: ``"intensity"``, ``"label"`` or ``"probabilities"``; by default ``"label"``
            when the header's intent is NIFTI_INTENT_LABEL, else ``"intensity"``.
        backend: gzip inflate library: ``"auto"`` (fastest installed), ``"deflate"``,
            ``"isal"`` or ``"zlib"``.

    Returns:
        An :class:`Image` with data ``(C, X, Y, Z)`` (3D, 4D and 5D files) or ``(1, X, Y)``
        (2D files), in the file's dtype (uint16/uint32 widened by ``Image``). Data with
        non-trivial ``scl_slope``/``scl_inter`` are ``raw * slope + inter`` with exactly
        nibabel's values: float32 where float32 holds every value the header allows (e.g.
        int16 with slope 1 and intercept -1024), else float64 (e.g. int32 data, or a slope
        such as 0.1). Voxels keep the file's Fortran order (a strided view, no copy). A 4D
        file's 4th axis (time / components) becomes the channel axis; 5D and higher
        flatten all non-spatial axes into channels (Fortran order). RGB24 data gives 3
        uint8 channels. ``affine`` maps voxel indices to RAS+ mm. ``meta`` holds
        ``source``, ``format`` (``"nifti1"`` / ``"nifti2"``) and ``nifti`` (the header
        fields needed to write back).

    Raises:
        ImageReadError: missing file, not NIfTI, bad header, truncated or corrupt data.
    """
    p = Path(path)
    with _open(p) as f:
        gz = f.read(2) == GZIP_MAGIC
        f.seek(0)
        lay, raw = _read_gz(f, p, backend) if gz else _read_plain(f, p)
    data = _channel_first(raw, lay.dtype, lay.shape)
    scaling = header_scaling(lay.hdr)
    if scaling is not None and not lay.dtype.fields:
        data = apply_scaling(data, *scaling)
    version = 2 if lay.hdr.sizeof_hdr == 540 else 1
    affine = np.asarray(lay.hdr.get_best_affine(), dtype=np.float64)
    nmeta = header_meta(lay.hdr, lay.shape, lay.dtype, affine, version, scaling)
    if kind is None:
        kind = "label" if nmeta["intent_code"] == INTENT_LABEL else "intensity"
    meta = {"source": str(p), "format": f"nifti{version}", "nifti": nmeta}
    return Image(data, affine, kind=kind, meta=meta)


# ------------------------------------------------------------------------------------------
# writing
# ------------------------------------------------------------------------------------------
def _write_err(path: Path, what: str, hint: str | None = None) -> ImageWriteError:
    return ImageWriteError(f"cannot write NIfTI '{path}': {what}", hint=hint)


def _disk_array(image: Image, nmeta: dict[str, Any] | None, path: Path) -> tuple[np.ndarray, bool]:
    """The voxels as the on-disk array (Fortran dims ``(X, Y[, Z[, T...]])``) and whether
    it is the original layout from ``nmeta``."""
    import torch

    t = image.data.detach()
    if t.dtype in (torch.float16, torch.bfloat16):
        t = t.float()  # NIfTI has no 16-bit float
    elif t.dtype == torch.bool:
        t = t.to(torch.uint8)
    elif t.is_complex():
        raise _write_err(path, f"complex data ({t.dtype}) cannot be written")
    arr = t.cpu().numpy()  # (C, *spatial), a view on CPU
    c, spatial = arr.shape[0], arr.shape[1:]
    chan_last = np.moveaxis(arr, 0, -1)  # (*spatial, C)
    if nmeta is not None:
        shape = tuple(nmeta.get("shape", ()))
        nsp = len(spatial)
        if nmeta.get("dtype") == "rgb24" and shape == spatial and c == 3 and arr.dtype == np.uint8:
            return arr, True  # channel-first uint8 triplets == RGB24 bytes in F order
        if (len(shape) >= nsp and shape[:nsp] == spatial
                and int(np.prod(shape[nsp:], dtype=np.int64)) == c):
            if len(shape) <= nsp:
                return chan_last[..., 0], True
            return chan_last.reshape(shape, order="F"), True
    if c == 1:
        return chan_last[..., 0], False
    if len(spatial) == 2:  # 2D with channels: (X, Y, 1, C) as nifti1.h suggests
        return chan_last[:, :, None, :], False
    return chan_last, False


def _fortran_chunks(arr: np.ndarray) -> Iterator[memoryview]:
    """The array's bytes in Fortran order (NIfTI's: x fastest), little-endian.

    A Fortran-ordered array (e.g. one read from NIfTI) is one zero-copy chunk; any other
    layout (e.g. a C-ordered model output) is transposed one slab of the last axis at a
    time, so writing never holds a second full copy of the volume.
    """
    if arr.dtype.byteorder == ">":
        arr = arr.astype(arr.dtype.newbyteorder("<"))
    if arr.size == 0:
        return
    if arr.flags.f_contiguous:
        yield memoryview(arr.T.reshape(-1).view(np.uint8))
        return
    for k in range(arr.shape[-1]):
        yield memoryview(np.ascontiguousarray(arr[..., k].T).reshape(-1).view(np.uint8))


def _write_file(p: Path, head: bytes, arr: np.ndarray, compresslevel: int | None) -> None:
    """Header and voxels to a temporary name beside ``p``, then renamed onto ``p``."""
    gz = p.name.lower().endswith(".gz")
    tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as f:
            if gz:
                # independent 4 MiB members, compressed and later inflated in parallel
                write_gzip_members(f, itertools.chain([head], _fortran_chunks(arr)), compresslevel)
            else:
                f.write(head)
                for chunk in _fortran_chunks(arr):
                    f.write(chunk)
        os.replace(tmp, p)
    except OSError as exc:
        try:
            tmp.unlink(missing_ok=True)
        except Exception:
            pass
        raise _write_err(p, exc.strerror or str(exc)) from exc


def write_nifti(
    image: Image,
    path: str | os.PathLike,
    *,
    compresslevel: int | None = None,
) -> Path:
    """Write an :class:`Image` to ``.nii`` or ``.nii.gz`` (gzip when the name ends ``.gz``).

    The voxels are written in the image's dtype (bool -> uint8, float16 -> float32), except
    that an image read from NIfTI gets its file dtype back where exact (uint16 widened on
    read; scaled data re-stored as the original values with the original ``scl_slope`` /
    ``scl_inter`` whenever reading the file back gives the image's values bit for bit).
    Channels become the 4th dimension (``(C, X, Y, Z)`` -> ``(X, Y, Z, C)``; one channel ->
    3D). If the image came from NIfTI (``meta["nifti"]``) and its grid is unchanged, the
    header geometry (qform/sform matrices and codes, pixdim) and the other fields are
    restored exactly. Otherwise both sform and qform hold ``image.affine`` (voxel -> RAS+
    mm), with the source's codes or NIFTI_XFORM_SCANNER_ANAT. Label images get intent
    NIFTI_INTENT_LABEL. The file is written to a temporary name and renamed, so a reader
    never sees half a file; missing parent folders are created.

    Args:
        image: the image; data ``(C, X, Y, Z)`` or ``(C, X, Y)``.
        path: target file ending in ``.nii`` or ``.nii.gz``.
        compresslevel: gzip level 0-9; levels 0-3 use ISA-L when it is installed, other
            levels libdeflate when installed (both much faster than zlib at a similar
            size), else zlib. Default: 2 with ISA-L, else 6.
            ``.nii.gz`` files are written
            as independent 4 MiB gzip members, compressed in parallel and indexed so that
            medimg inflates them in parallel (see :mod:`medimg.io._gzip`); every gzip
            reader reads them as usual.

    Returns:
        The path written.

    Raises:
        ImageWriteError: unsupported suffix or dtype, or the file cannot be written.
    """
    p = Path(path)
    if not is_nifti_path(p):
        raise _write_err(p, f"the name must end in .nii or .nii.gz, found '{p.name}'",
                         hint="use e.g. 'case_001.nii.gz'")
    if compresslevel is not None and not 0 <= int(compresslevel) <= 9:
        raise ValueError(f"compresslevel must be a gzip level 0-9, got {compresslevel}")
    nmeta = image.meta.get("nifti") if isinstance(image.meta.get("nifti"), dict) else None
    arr, same_layout = _disk_array(image, nmeta, p)
    rgb = bool(same_layout and nmeta and nmeta.get("dtype") == "rgb24")
    scaling = None
    if not rgb:
        arr, scaling = restore_dtype(arr, nmeta, requantise=image.kind == "intensity")
    hdr = build_header(image, arr, rgb, nmeta, same_layout, scaling)
    _write_file(p, hdr.binaryblock + b"\x00\x00\x00\x00", arr, compresslevel)
    return p
