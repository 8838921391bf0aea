"""NIfTI headers: parsing and validating one that was read, recording it as plain data, and
building one to write (restoring the recorded fields where the grid is unchanged).

The header classes are nibabel's (exact, well tested); the checks here turn a bad file into
one clear message. Field meanings follow the NIfTI-1 standard (``nifti1.h``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..core.affine import spacing_from_affine
from ..core.errors import ImageReadError, ImageWriteError
from ..core.image import Image

__all__ = ["INTENT_LABEL", "read_err", "parse_header", "dims", "data_dtype", "header_meta",
           "build_header"]

INTENT_LABEL = 1002  # NIFTI_INTENT_LABEL (nifti1.h)
_XFORM_SCANNER = 1  # NIFTI_XFORM_SCANNER_ANAT
_NIFTI1_MAGIC = (b"n+1\x00", b"ni1\x00")
_NIFTI2_MAGIC = (b"n+2\x00\r\n\x1a\n", b"ni2\x00\r\n\x1a\n")
# header fields copied verbatim when writing back an image read from NIfTI
_PLAIN_FIELDS = ("intent_code", "intent_name", "descrip", "aux_file", "xyzt_units", "toffset")
# the display window of the source fits its intensities, not a label or probability map
_INTENSITY_FIELDS = ("cal_min", "cal_max")
_GRID_FIELDS = ("dim_info", "slice_code", "slice_start", "slice_end", "slice_duration")
_QUATERN = ("quatern_b", "quatern_c", "quatern_d", "qoffset_x", "qoffset_y", "qoffset_z")
_SROWS = ("srow_x", "srow_y", "srow_z")


def read_err(path: Path, what: str, hint: str | None = None) -> ImageReadError:
    """The one-line read error: ``cannot read NIfTI '<path>': <what>``."""
    return ImageReadError(f"cannot read NIfTI '{path}': {what}", hint=hint)


# ------------------------------------------------------------------------------------------
# reading
# ------------------------------------------------------------------------------------------
def parse_header(head: bytes, path: Path) -> Any:
    """Validate the first bytes of a file and return a nibabel Nifti1Header / Nifti2Header."""
    import nibabel as nib

    if len(head) < 348:
        raise read_err(
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
        raise read_err(
            path,
            f"not a NIfTI-1 file: sizeof_hdr is 348 but the magic at byte 344 is "
            f"{head[344:348]!r}, expected b'n+1\\x00' (an Analyze 7.5 .hdr/.img pair?)",
            hint="convert the Analyze .hdr/.img pair to one .nii.gz file first (e.g. by loading and "
            "saving it with nibabel, or with 3D Slicer)",
        )
    else:
        raise read_err(
            path,
            f"not a NIfTI file: expected sizeof_hdr 348 (NIfTI-1) or 540 (NIfTI-2) in the "
            f"first 4 bytes, found {size_le} (little-endian) / {size_be} (big-endian)",
            hint="supported: .nii and .nii.gz (NIfTI-1/2) and DICOM files or folders",
        )
    hdr = klass(binaryblock=bytes(head[: klass.sizeof_hdr]), endianness=endian, check=False)
    if head[4 if klass is nib.Nifti2Header else 344 :][:3] in (b"ni1", b"ni2"):
        raise read_err(
            path,
            "this is the header of a two-file NIfTI pair (magic 'ni1'/'ni2'); its voxels are "
            "in a separate .img file",
            hint="convert the .hdr/.img pair to one .nii.gz file first (e.g. by loading and saving "
            "it with nibabel, or with 3D Slicer)",
        )
    return hdr


def dims(hdr: Any, path: Path) -> tuple[int, ...]:
    """The on-disk dimensions ``dim[1..dim[0]]``, checked."""
    dim = [int(d) for d in hdr["dim"]]
    nd = dim[0]
    if not 2 <= nd <= 7 or any(d < 1 for d in dim[1 : nd + 1]):
        raise read_err(
            path,
            f"invalid header dimensions dim={dim}: expected dim[0] (the number of "
            f"dimensions) in 2..7 and dim[1..dim[0]] >= 1",
            hint="the header is corrupt, or the image is 1D (not supported)",
        )
    return tuple(dim[1 : nd + 1])


def data_dtype(hdr: Any, path: Path) -> np.dtype:
    """The on-disk voxel dtype (file byte order); complex data are refused."""
    try:
        dt = hdr.get_data_dtype()
    except Exception as exc:  # nibabel raises on unknown datatype codes
        raise read_err(
            path, f"unknown NIfTI datatype code {int(hdr['datatype'])} ({exc})"
        ) from exc
    if dt.kind == "c":
        raise read_err(path, f"complex voxel data ({dt}) is not supported")
    return dt


def header_meta(hdr: Any, shape: tuple[int, ...], disk_dtype: np.dtype, affine: np.ndarray,
                version: int, scaling: tuple[float, float] | None) -> dict[str, Any]:
    """Plain-data (JSON-able) record of the header fields needed to write back exactly."""
    qform, qcode = hdr.get_qform(coded=True)
    sform, scode = hdr.get_sform(coded=True)

    def s(key: str) -> str:
        v = hdr[key]
        v = v.item() if hasattr(v, "item") else v
        return v.decode("latin-1").rstrip("\x00") if isinstance(v, bytes) else str(v)

    return {
        "version": version,
        "shape": list(shape),
        "dtype": "rgb24" if disk_dtype.fields else disk_dtype.newbyteorder("=").name,
        "affine": affine.tolist(),
        "qform_code": int(qcode),
        "sform_code": int(scode),
        "qform": None if qform is None else np.asarray(qform).tolist(),
        "sform": None if sform is None else np.asarray(sform).tolist(),
        "quatern": [float(hdr[k]) for k in _QUATERN],
        "srow": [[float(v) for v in hdr[k]] for k in _SROWS],
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


# ------------------------------------------------------------------------------------------
# writing
# ------------------------------------------------------------------------------------------
def _is_orthogonal(affine: np.ndarray) -> bool:
    m = affine[:3, :3]
    n = np.linalg.norm(m, axis=0)
    if np.any(n == 0):
        return False
    r = m / n
    return bool(np.allclose(r.T @ r, np.eye(3), atol=1e-6))


def _restore_geometry(hdr: Any, nmeta: dict[str, Any]) -> None:
    """The raw quaternion, srows, pixdim, codes and slice fields exactly as they were read."""
    for k, v in zip(_QUATERN, nmeta["quatern"]):
        hdr[k] = v
    for k, row in zip(_SROWS, nmeta["srow"]):
        hdr[k] = row
    hdr["qform_code"] = nmeta["qform_code"]
    hdr["sform_code"] = nmeta["sform_code"]
    hdr["pixdim"] = np.asarray(nmeta["pixdim"], dtype=np.float64)
    for k in _GRID_FIELDS:
        hdr[k] = nmeta[k]


def _new_geometry(hdr: Any, affine: np.ndarray, nmeta: dict[str, Any] | None) -> None:
    """``affine`` in both sform and qform (sform only if sheared), with the source's codes
    or NIFTI_XFORM_SCANNER_ANAT, and pixdim from the affine."""
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


def _copy_fields(hdr: Any, image: Image, nmeta: dict[str, Any] | None) -> None:
    """Intent, description, units and (intensity images) display window of the source;
    label images get NIFTI_INTENT_LABEL, other images never keep it."""
    if nmeta is not None:
        for k in _PLAIN_FIELDS + (_INTENSITY_FIELDS if image.kind == "intensity" else ()):
            v = nmeta[k]
            hdr[k] = v.encode("latin-1", "replace") if isinstance(v, str) else v
        for k, v in zip(("intent_p1", "intent_p2", "intent_p3"), nmeta["intent_p"]):
            hdr[k] = v
    else:
        hdr.set_xyzt_units("mm", "sec")
    if image.kind == "label" and int(hdr["intent_code"]) == 0:
        hdr["intent_code"] = INTENT_LABEL
    elif image.kind != "label" and int(hdr["intent_code"]) == INTENT_LABEL:
        hdr["intent_code"] = 0


def build_header(image: Image, arr: np.ndarray, rgb: bool, nmeta: dict[str, Any] | None,
                 same_layout: bool, scaling: tuple[float, float] | None) -> Any:
    """The header for writing ``arr`` (the on-disk array) of ``image``: NIfTI-2 where a
    dimension needs it or the source was NIfTI-2, else NIfTI-1; no extensions."""
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
    same_grid = (nmeta is not None and same_layout
                 and np.array_equal(np.asarray(nmeta.get("affine")), image.affine))
    if same_grid:
        _restore_geometry(hdr, nmeta)
    else:
        _new_geometry(hdr, image.affine, nmeta)
    _copy_fields(hdr, image, nmeta)
    hdr["scl_slope"], hdr["scl_inter"] = (1.0, 0.0) if scaling is None else scaling
    hdr["vox_offset"] = hdr.sizeof_hdr + 4  # no extensions (4-byte extender of zeros)
    return hdr
