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
from typing import Any

import numpy as np

from ..core.affine import spacing_from_affine
from ..core.errors import ImageReadError, ImageWriteError
from ..core.image import Image
from ._gzip import GZIP_MAGIC, GzipDataError, gunzip, gunzip_head, write_gzip_members
from .layout import NIFTI_SUFFIXES, is_nifti_path

__all__ = ["read_nifti", "write_nifti", "is_nifti_path", "NIFTI_SUFFIXES"]

_INTENT_LABEL = 1002  # NIFTI_INTENT_LABEL (nifti1.h)
_XFORM_SCANNER = 1  # NIFTI_XFORM_SCANNER_ANAT
_NIFTI1_MAGIC = (b"n+1\x00", b"ni1\x00")
_NIFTI2_MAGIC = (b"n+2\x00\r\n\x1a\n", b"ni2\x00\r\n\x1a\n")
# header fields copied verbatim when writing back an image read from NIfTI
_PLAIN_FIELDS = ("intent_code", "intent_name", "descrip", "aux_file", "xyzt_units", "toffset")
# the display window of the source fits its intensities, not a label or probability map
_INTENSITY_FIELDS = ("cal_min", "cal_max")
_GRID_FIELDS = ("dim_info", "slice_code", "slice_start", "slice_end", "slice_duration")


# ------------------------------------------------------------------------------------------
# reading
# ------------------------------------------------------------------------------------------
def _close(mm: mmap.mmap | None) -> None:
    if mm is not None:
        try:
            mm.close()
        except BufferError:  # a view is still alive (e.g. in a traceback): GC closes it
            pass


def _read_err(path: Path, what: str, hint: str | None = None) -> ImageReadError:
    return ImageReadError(f"cannot read NIfTI '{path}': {what}", hint=hint)


def _parse_header(head: bytes, path: Path) -> Any:
    """Validate the first bytes of a file and return a nibabel Nifti1Header / Nifti2Header."""
    import nibabel as nib

    if len(head) < 348:
        raise _read_err(
            path,
            f"the file is too short for a NIfTI header: expected at least 348 bytes, found "
            f"{len(head)}",
            hint="the file is truncated or not NIfTI",
        )
    size_le = int.from_bytes(head[:4], "little")
    size_be = int.from_bytes(head[:4], "big")
    sizeof_hdr = size_le if size_le in (348, 540) else size_be
    # byte order from sizeof_hdr (nibabel's guess looks at dim[0], which may be corrupt)
    endian = "<" if size_le in (348, 540) else ">"
    if sizeof_hdr == 348 and head[344:348] in _NIFTI1_MAGIC:
        klass = nib.Nifti1Header
    elif sizeof_hdr == 540 and len(head) >= 540 and head[4:12] in _NIFTI2_MAGIC:
        klass = nib.Nifti2Header
    elif sizeof_hdr == 348:
        raise _read_err(
            path,
            f"not a NIfTI-1 file: sizeof_hdr is 348 but the magic at byte 344 is "
            f"{head[344:348]!r}, expected b'n+1\\x00' (an Analyze 7.5 .hdr/.img pair?)",
            hint="convert Analyze files with nibabel: nib.save(nib.load(p), 'out.nii.gz')",
        )
    else:
        raise _read_err(
            path,
            f"not a NIfTI file: expected sizeof_hdr 348 (NIfTI-1) or 540 (NIfTI-2) in the "
            f"first 4 bytes, found {size_le} (little-endian) / {size_be} (big-endian)",
            hint="supported: .nii and .nii.gz (NIfTI-1/2) and DICOM files or folders",
        )
    hdr = klass(binaryblock=bytes(head[: klass.sizeof_hdr]), endianness=endian, check=False)
    if head[4 if klass is nib.Nifti2Header else 344 :][:3] in (b"ni1", b"ni2"):
        raise _read_err(
            path,
            "this is the header of a two-file NIfTI pair (magic 'ni1'/'ni2'); its voxels are "
            "in a separate .img file",
            hint="convert the pair to one file: nib.save(nib.load('x.hdr'), 'x.nii.gz')",
        )
    return hdr


def _dims(hdr: Any, path: Path) -> tuple[int, ...]:
    dim = [int(d) for d in hdr["dim"]]
    nd = dim[0]
    if not 2 <= nd <= 7 or any(d < 1 for d in dim[1 : nd + 1]):
        raise _read_err(
            path,
            f"invalid header dimensions dim={dim}: expected dim[0] (the number of "
            f"dimensions) in 2..7 and dim[1..dim[0]] >= 1",
            hint="the header is corrupt, or the image is 1D (not supported)",
        )
    return tuple(dim[1 : nd + 1])


def _data_dtype(hdr: Any, path: Path) -> np.dtype:
    try:
        dt = hdr.get_data_dtype()
    except Exception as exc:  # nibabel raises on unknown datatype codes
        raise _read_err(
            path, f"unknown NIfTI datatype code {int(hdr['datatype'])} ({exc})"
        ) from exc
    if dt.kind == "c":
        raise _read_err(path, f"complex voxel data ({dt}) is not supported")
    return dt


def _scaling(hdr: Any) -> tuple[float, float] | None:
    """``(slope, inter)`` when scaling is non-trivial (NIfTI-1: slope 0 means none)."""
    slope, inter = float(hdr["scl_slope"]), float(hdr["scl_inter"])
    if not np.isfinite(slope) or slope == 0.0:
        return None
    if not np.isfinite(inter):
        inter = 0.0
    if slope == 1.0 and inter == 0.0:
        return None
    return slope, inter


def _apply_scaling(raw: np.ndarray, slope: float, inter: float) -> np.ndarray:
    """``raw * slope + inter`` in float32 (float64 for float64 data), memory order kept."""
    ft = np.float64 if raw.dtype == np.float64 else np.float32
    out = raw.astype(ft, order="K")
    out *= ft(slope)
    out += ft(inter)
    return out


def _header_meta(hdr: Any, shape: tuple[int, ...], disk_dtype: np.dtype, affine: np.ndarray,
                 version: int, scaling: tuple[float, float] | None) -> dict[str, Any]:
    """Plain-data (JSON-able) record of the header fields needed to write back exactly."""
    qform, qcode = hdr.get_qform(coded=True)
    sform, scode = hdr.get_sform(coded=True)

    def s(key: str) -> str:
        v = hdr[key]
        v = v.item() if hasattr(v, "item") else v
        return v.decode("latin-1").rstrip("\x00") if isinstance(v, bytes) else str(v)

    meta: dict[str, Any] = {
        "version": version,
        "shape": list(shape),
        "dtype": "rgb24" if disk_dtype.fields else disk_dtype.newbyteorder("=").name,
        "affine": affine.tolist(),
        "qform_code": int(qcode),
        "sform_code": int(scode),
        "qform": None if qform is None else np.asarray(qform).tolist(),
        "sform": None if sform is None else np.asarray(sform).tolist(),
        "quatern": [float(hdr[k]) for k in ("quatern_b", "quatern_c", "quatern_d",
                                            "qoffset_x", "qoffset_y", "qoffset_z")],
        "srow": [[float(v) for v in hdr[k]] for k in ("srow_x", "srow_y", "srow_z")],
        "pixdim": [float(v) for v in hdr["pixdim"]],
        "scl_slope": None if scaling is None else scaling[0],
        "scl_inter": None if scaling is None else scaling[1],
        "intent_code": int(hdr["intent_code"]),
        "intent_p": [float(hdr[k]) for k in ("intent_p1", "intent_p2", "intent_p3")],
        "intent_name": s("intent_name"),
        "descrip": s("descrip"),
        "aux_file": s("aux_file"),
        "xyzt_units": int(hdr["xyzt_units"]),
        "toffset": float(hdr["toffset"]),
        "cal_min": float(hdr["cal_min"]),
        "cal_max": float(hdr["cal_max"]),
        "dim_info": int(hdr["dim_info"]),
        "slice_code": int(hdr["slice_code"]),
        "slice_start": int(hdr["slice_start"]),
        "slice_end": int(hdr["slice_end"]),
        "slice_duration": float(hdr["slice_duration"]),
    }
    return meta


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
        (2D files), in the file's dtype (uint16/uint32 widened by ``Image``), or float32 when
        the header's ``scl_slope``/``scl_inter`` are non-trivial (float64 for float64 data).
        Voxels keep the file's Fortran order (a strided view, no copy). A 4D file's 4th
        axis (time / components) becomes the channel axis; 5D and higher flatten all
        non-spatial axes into channels (Fortran order). RGB24 data gives 3 uint8 channels.
        ``affine`` maps voxel indices to RAS+ mm. ``meta`` holds ``source``, ``format``
        (``"nifti1"`` / ``"nifti2"``) and ``nifti`` (the header fields needed to write back).

    Raises:
        ImageReadError: missing file, not NIfTI, bad header, truncated or corrupt data.
    """
    p = Path(path)
    try:
        f = open(p, "rb")
    except FileNotFoundError:
        raise ImageReadError(f"cannot read NIfTI '{p}': file not found",
                             hint="check the path and the working directory") from None
    except IsADirectoryError:
        raise ImageReadError(f"cannot read NIfTI '{p}': it is a directory, expected a "
                             f".nii or .nii.gz file") from None
    except OSError as exc:
        raise ImageReadError(f"cannot read NIfTI '{p}': {exc.strerror or exc}") from exc
    with f:
        magic = f.read(2)
        f.seek(0)
        gz = magic == GZIP_MAGIC
        mm = None
        if gz:
            # the whole compressed stream, inflated in one call; mapped rather than read,
            # which saves a 50 MB copy (the inflater reads the page cache directly)
            try:
                mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
            except (ValueError, OSError):  # a file system without mmap
                mm = None
            blob = mm if mm is not None else f.read()
            try:
                head = gunzip_head(blob, 544)
            except GzipDataError as exc:
                _close(mm)
                raise _read_err(p, str(exc)) from None
        else:
            head = f.read(544)
        try:
            hdr = _parse_header(head, p)
            shape = _dims(hdr, p)
            dtype = _data_dtype(hdr, p)
        except ImageReadError:
            _close(mm)
            raise
        version = 2 if hdr.sizeof_hdr == 540 else 1
        nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        vox_offset = int(hdr["vox_offset"])
        min_offset = hdr.sizeof_hdr + 4  # header + 4-byte extension flag
        if vox_offset < min_offset:  # invalid but seen in the wild: data follow the header
            vox_offset = min_offset
        need = vox_offset + nbytes
        what = (f"header {vox_offset} bytes + data {nbytes} bytes "
                f"(shape {shape}, {dtype.newbyteorder('=').name if not dtype.fields else 'rgb24'})")
        # a corrupt header can claim terabytes: check against what the file can hold
        # before allocating (deflate expands at most 1032:1, RFC 1951 block limits)
        fsize = os.fstat(f.fileno()).st_size
        cap = fsize * 1032 + (1 << 20) if gz else fsize
        if need > cap:
            _close(mm)
            raise _read_err(
                p, (f"the header says {need} bytes ({what}) but the {fsize}-byte gzip file "
                    f"can hold at most {cap}") if gz else
                   (f"the file is shorter than the header says: expected {need} bytes "
                    f"({what}), found {fsize}"),
                hint="the file is truncated (interrupted copy?) or its header is corrupt",
            )
        if gz:
            try:
                buf = gunzip(blob, need, backend)
            except GzipDataError as exc:
                del blob
                _close(mm)
                raise _read_err(
                    p, f"{exc}; expected {need} decompressed bytes: {what}",
                    hint="the file is truncated or damaged (interrupted copy or download?); "
                         "re-create or re-download it",
                ) from None
            del blob
            _close(mm)
            if len(buf) < need:
                raise _read_err(
                    p, f"decompressed data are shorter than the header says: expected {need} "
                       f"bytes ({what}), found {len(buf)}",
                    hint="the file is truncated or its header is wrong",
                )
            raw = buf[vox_offset:need]
        else:
            raw = np.empty(nbytes, dtype=np.uint8)
            f.seek(vox_offset)
            got = f.readinto(raw)
            if got != nbytes:
                raise _read_err(
                    p, f"the file is shorter than the header says: expected {need} bytes "
                       f"({what}), found {vox_offset + got}",
                    hint="the file is truncated (interrupted copy?) or its header is wrong",
                )

    if raw.ctypes.data % max(dtype.alignment, 1):  # odd vox_offset: realign (rare)
        raw = raw.copy()
    if dtype.fields:  # RGB24: 3 interleaved uint8 -> channel axis first, still a view
        data = raw.reshape((3, *shape), order="F")
    else:
        vox = raw.view(dtype)
        if not dtype.isnative:  # big-endian file: swap in place in our own buffer
            vox.byteswap(inplace=True)
            vox = vox.view(dtype.newbyteorder("="))
        arr = vox.reshape(shape, order="F")
        if len(shape) <= 3:
            data = arr[None]
        else:
            spatial = shape[:3]
            data = np.moveaxis(arr.reshape((*spatial, -1), order="F"), -1, 0)

    scaling = _scaling(hdr)
    if scaling is not None and not dtype.fields:
        data = _apply_scaling(data, *scaling)

    affine = np.asarray(hdr.get_best_affine(), dtype=np.float64)
    nmeta = _header_meta(hdr, shape, dtype, affine, version, scaling)
    if kind is None:
        kind = "label" if nmeta["intent_code"] == _INTENT_LABEL else "intensity"
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


def _restore_dtype(arr: np.ndarray, nmeta: dict[str, Any] | None, requantise: bool = True,
                   ) -> tuple[np.ndarray, tuple[float, float] | None]:
    """Go back to the file's dtype where that is exact: uint16/uint32 that ``Image``
    widened on read, and (``requantise``, intensity images) integers stored with
    ``scl_slope``/``scl_inter``, kept only if re-applying the scaling gives every value
    back bit for bit."""
    if nmeta is None or nmeta.get("dtype") in (None, "rgb24"):
        return arr, None
    disk = np.dtype(nmeta["dtype"])
    slope, inter = nmeta.get("scl_slope"), nmeta.get("scl_inter")
    if requantise and slope is not None and arr.dtype.kind == "f" and disk.kind in "iu":
        info = np.iinfo(disk)
        with np.errstate(invalid="ignore", over="ignore"):
            q = np.rint((arr - arr.dtype.type(inter)) / arr.dtype.type(slope))
            if np.all(np.isfinite(q)) and q.min(initial=0) >= info.min and q.max(initial=0) <= info.max:
                raw = q.astype(disk)
                if np.array_equal(_apply_scaling(raw, slope, inter).astype(arr.dtype), arr):
                    return raw, (slope, inter)
        return arr, None
    widened = {np.dtype(np.uint16): np.dtype(np.int32), np.dtype(np.uint32): np.dtype(np.int64)}
    wide = widened.get(disk)  # (np.dtype == None is True: compare only a real dtype)
    if wide is not None and wide == arr.dtype and arr.size:  # Image widened it on read: narrow back
        info = np.iinfo(disk)
        if arr.min() >= info.min and arr.max() <= info.max:
            return arr.astype(disk, order="K"), None
    return arr, None


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


def _is_orthogonal(affine: np.ndarray) -> bool:
    m = affine[:3, :3]
    n = np.linalg.norm(m, axis=0)
    if np.any(n == 0):
        return False
    r = m / n
    return bool(np.allclose(r.T @ r, np.eye(3), atol=1e-6))


def _build_header(image: Image, arr: np.ndarray, rgb: bool, nmeta: dict[str, Any] | None,
                  same_layout: bool, scaling: tuple[float, float] | None) -> Any:
    import nibabel as nib

    shape = arr.shape[1:] if rgb else arr.shape
    big = any(d > 32767 for d in shape) or (nmeta or {}).get("version") == 2
    hdr = nib.Nifti2Header() if big else nib.Nifti1Header()
    if rgb:
        hdr.set_data_dtype(np.dtype([("R", "u1"), ("G", "u1"), ("B", "u1")]))
    else:
        try:
            hdr.set_data_dtype(arr.dtype)
        except Exception as exc:
            raise ImageWriteError(f"NIfTI cannot store voxels of dtype {arr.dtype}") from exc
    hdr.set_data_shape(shape)
    affine = image.affine
    nd = len(shape)
    same_grid = (
        nmeta is not None and same_layout
        and np.array_equal(np.asarray(nmeta.get("affine")), affine)
    )
    if same_grid:
        # exact restore: the raw quaternion, srows, pixdim and codes as they were read
        q = nmeta["quatern"]
        for k, v in zip(("quatern_b", "quatern_c", "quatern_d", "qoffset_x", "qoffset_y",
                         "qoffset_z"), q):
            hdr[k] = v
        for k, row in zip(("srow_x", "srow_y", "srow_z"), nmeta["srow"]):
            hdr[k] = row
        hdr["qform_code"] = nmeta["qform_code"]
        hdr["sform_code"] = nmeta["sform_code"]
        pix = np.asarray(nmeta["pixdim"], dtype=np.float64)
        hdr["pixdim"] = pix
        for k in _GRID_FIELDS:
            hdr[k] = nmeta[k]
    else:
        qcode = (nmeta or {}).get("qform_code") or _XFORM_SCANNER
        scode = (nmeta or {}).get("sform_code") or qcode
        hdr.set_sform(affine, code=scode)
        if _is_orthogonal(affine):
            hdr.set_qform(affine, code=qcode)
        else:  # a sheared affine cannot be a quaternion: sform only (nifti1.h method 3)
            hdr.set_qform(None, code=0)
        pix = np.array(hdr["pixdim"], dtype=np.float64)
        pix[1:4] = spacing_from_affine(affine, 3)
        if nmeta is not None:  # keep time/extra spacings (TR) of the source
            pix[4:] = nmeta["pixdim"][4:]
        else:
            pix[4:] = 1.0
        hdr["pixdim"] = pix
    if nmeta is not None:
        for k in _PLAIN_FIELDS + (_INTENSITY_FIELDS if image.kind == "intensity" else ()):
            v = nmeta[k]
            hdr[k] = v.encode("latin-1", "replace") if isinstance(v, str) else v
        for k, v in zip(("intent_p1", "intent_p2", "intent_p3"), nmeta["intent_p"]):
            hdr[k] = v
    else:
        hdr.set_xyzt_units("mm", "sec")
    if image.kind == "label" and int(hdr["intent_code"]) == 0:
        hdr["intent_code"] = _INTENT_LABEL
    elif image.kind != "label" and int(hdr["intent_code"]) == _INTENT_LABEL:
        hdr["intent_code"] = 0
    if scaling is not None:
        hdr["scl_slope"], hdr["scl_inter"] = scaling
    else:
        hdr["scl_slope"], hdr["scl_inter"] = 1.0, 0.0
    hdr["vox_offset"] = hdr.sizeof_hdr + 4  # no extensions (4-byte extender of zeros)
    return hdr


def write_nifti(
    image: Image,
    path: str | os.PathLike,
    *,
    compresslevel: int | None = None,
) -> Path:
    """Write an :class:`Image` to ``.nii`` or ``.nii.gz`` (gzip when the name ends ``.gz``).

    The voxels are written in the image's dtype (bool -> uint8, float16 -> float32), except
    that an image read from NIfTI gets its file dtype back where exact (uint16 widened on
    read; scaled integers re-quantised only if that reproduces every value bit for bit).
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
        compresslevel: gzip level; ISA-L 0-3 (default 2) when installed, else zlib 0-9
            (default 6). ``.nii.gz`` files are written as independent 4 MiB gzip members,
            compressed in parallel and indexed so that medimg inflates them in parallel
            (see :mod:`medimg.io._gzip`); every gzip reader reads them as usual.

    Returns:
        The path written.

    Raises:
        ImageWriteError: unsupported suffix or dtype, or the file cannot be written.
    """
    p = Path(path)
    if not is_nifti_path(p):
        raise _write_err(p, f"the name must end in .nii or .nii.gz, found '{p.name}'",
                         hint="use e.g. 'case_001.nii.gz'")
    nmeta = image.meta.get("nifti") if isinstance(image.meta.get("nifti"), dict) else None
    arr, same_layout = _disk_array(image, nmeta, p)
    rgb = bool(same_layout and nmeta and nmeta.get("dtype") == "rgb24")
    scaling = None
    if not rgb:
        arr, scaling = _restore_dtype(arr, nmeta, requantise=image.kind == "intensity")
    hdr = _build_header(image, arr, rgb, nmeta, same_layout, scaling)
    head = hdr.binaryblock + b"\x00\x00\x00\x00"
    gz = p.name.lower().endswith(".gz")
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
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
            tmp.unlink(missing_ok=True)  # type: ignore[possibly-undefined]
        except Exception:
            pass
        raise _write_err(p, exc.strerror or str(exc)) from exc
    return p
