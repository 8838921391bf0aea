"""NIfTI scl_slope / scl_inter: exactly nibabel's values, in a dtype that holds them, and
stored values that survive read -> write unchanged.

The test files are made byte by byte (a nibabel header, 4 zero bytes, the raw voxels), so
the stored values are known exactly, whatever a writer would choose to do with them.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from medimg.io import read_image, write_image
from medimg.io._nifti_scaling import apply_scaling, decoded_dtype

AFFINE = np.diag([0.8, 0.8, 2.5, 1.0])


def _raw_file(tmp_path: Path, raw: np.ndarray, slope: float, inter: float, name: str,
              nifti2: bool = False) -> Path:
    """A NIfTI file holding exactly ``raw`` (Fortran order) with this slope and intercept."""
    hdr = nib.Nifti2Header() if nifti2 else nib.Nifti1Header()
    hdr.set_data_dtype(raw.dtype)
    hdr.set_data_shape(raw.shape)
    hdr.set_qform(AFFINE, code=1)
    hdr.set_sform(AFFINE, code=1)
    hdr["scl_slope"], hdr["scl_inter"] = slope, inter
    hdr["vox_offset"] = hdr.sizeof_hdr + 4
    blob = hdr.binaryblock + b"\x00" * 4 + raw.tobytes(order="F")
    p = tmp_path / name
    p.write_bytes(gzip.compress(blob, 1) if name.endswith(".gz") else blob)
    return p


def _file_bytes(p: Path) -> bytes:
    blob = p.read_bytes()
    return gzip.decompress(blob) if p.name.endswith(".gz") else blob


def _near_2_30(dtype, seed=0) -> np.ndarray:
    """Values around 2**30 (and for wider types beyond 2**31) that float32 cannot hold."""
    rng = np.random.default_rng(seed)
    base = {np.int32: 2**30, np.uint32: 3 * 2**30, np.int64: 2**40}[dtype]
    vals = base + rng.integers(-5000, 5000, size=(6, 5, 4))
    vals[0, 0, 0], vals[1, 0, 0] = base + 1, base + 3  # odd: never a float32 near 2**30
    if dtype is not np.uint32:
        vals[2, 0, 0] = -base - 7
    return vals.astype(dtype)


# (dtype, slope, inter): float32 cannot hold the decoded values of any of these
BIG_INTS = [(np.int32, 1.0, 0.5), (np.int32, 2.0, -1024.0), (np.int32, 0.75, 3.0),
            (np.uint32, 1.0, -0.25), (np.int64, 0.5, 1.0)]


@pytest.mark.parametrize("dtype,slope,inter", BIG_INTS)
def test_big_scaled_ints_decode_exactly_as_nibabel(tmp_path, dtype, slope, inter):
    raw = _near_2_30(dtype)
    p = _raw_file(tmp_path, raw, slope, inter, "big.nii")
    ours = read_image(p).numpy()[0]
    theirs = np.asanyarray(nib.load(p).dataobj)
    exact = raw.astype(np.float64) * slope + inter  # exact here: all below 2**53
    assert ours.dtype == np.float64 and theirs.dtype == np.float64
    np.testing.assert_array_equal(ours, theirs)
    np.testing.assert_array_equal(ours, exact)
    # the test can fail: float32 cannot hold these values
    assert np.abs(exact.astype(np.float32).astype(np.float64) - exact).max() >= 0.25


def test_int32_float32_decode_error_was_up_to_32(tmp_path):
    raw = np.array([2**31 - 1, 2**31 - 17, -(2**31) + 9, 2**30 + 1], dtype=np.int32)[:, None, None]
    p = _raw_file(tmp_path, raw, 1.0, 0.5, "edge.nii.gz")
    ours = read_image(p).numpy()[0]
    exact = raw.astype(np.float64) + 0.5
    np.testing.assert_array_equal(ours, exact)
    assert np.abs(exact.astype(np.float32).astype(np.float64) - exact).max() >= 8


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
@pytest.mark.parametrize("dtype,slope,inter", BIG_INTS + [
    (np.int16, float(np.float32(0.1)), 0.0),  # an inexact slope: float64
    (np.int16, 1.0, -1024.0),  # the CT case: float32 holds it
    (np.float32, float(np.float32(1.7)), 3.0),  # float data with scaling
])
def test_read_write_unchanged_keeps_stored_bytes(tmp_path, suffix, dtype, slope, inter):
    if np.dtype(dtype).kind == "f":
        raw = np.random.default_rng(1).normal(0, 300, size=(6, 5, 4)).astype(dtype)
    elif dtype is np.int16:
        raw = np.random.default_rng(1).integers(-32768, 32768, size=(6, 5, 4)).astype(dtype)
    else:
        raw = _near_2_30(dtype)
    src = _raw_file(tmp_path, raw, slope, inter, "src" + suffix)
    img = read_image(src)
    out = write_image(img, tmp_path / ("out" + suffix))
    a, b = _file_bytes(src), _file_bytes(out)
    assert b[352:] == a[352:]  # the stored values, byte for byte
    nb = nib.load(out)
    assert nb.get_data_dtype() == np.dtype(dtype)
    assert (nb.dataobj.slope, nb.dataobj.inter) == (slope, inter)
    back = read_image(out)
    assert back.dtype == img.dtype and torch.equal(back.data, img.data)


def test_decoded_dtype_rule():
    f32, f64 = np.dtype(np.float32), np.dtype(np.float64)
    assert decoded_dtype(np.dtype(np.int16), 1.0, -1024.0) == f32  # CT
    assert decoded_dtype(np.dtype(np.int16), 0.5, -1024.0) == f32
    assert decoded_dtype(np.dtype(np.uint16), 1.0, 0.25) == f32
    assert decoded_dtype(np.dtype(np.int16), float(np.float32(0.1)), 0.0) == f64
    assert decoded_dtype(np.dtype(np.int16), 1.0, float(2**24)) == f64  # sums past 2**24
    assert decoded_dtype(np.dtype(np.int32), 1.0, 0.0) == f64
    assert decoded_dtype(np.dtype(np.float32), 2.0, 0.0) == f64  # float data: as nibabel


@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.int16, np.uint16])
def test_float32_only_where_it_changes_nothing(dtype):
    """Over the whole range of the type: where float32 is chosen, it equals float64."""
    info = np.iinfo(dtype)
    raw = np.arange(info.min, int(info.max) + 1).astype(dtype)
    rng = np.random.default_rng(7)
    slopes = [1.0, 0.5, 2.0, -1.0, 3.0, 0.125, 1024.0, 0.1, 1.5, *rng.normal(0, 10, 6)]
    inters = [0.0, -1024.0, 0.5, 3.25, 2.0**20, 2.0**24, 0.1, *rng.normal(0, 100, 4)]
    chose32 = 0
    for s in slopes:
        for i in inters:
            s32, i32 = float(np.float32(s)), float(np.float32(i))
            got = apply_scaling(raw, s32, i32)
            exact = raw.astype(np.float64) * s32 + i32  # nibabel's values
            np.testing.assert_array_equal(got.astype(np.float64), exact)
            chose32 += got.dtype == np.float32
    assert chose32 >= 10  # the float32 branch was exercised


def test_nifti2_float64_slope(tmp_path):
    raw = np.arange(-60, 60, dtype=np.int16).reshape(5, 4, 6)
    slope = 0.1  # a float64 that no float32 equals: NIfTI-2 stores it as float64
    p = _raw_file(tmp_path, raw, slope, -3.0, "n2.nii", nifti2=True)
    ours = read_image(p)
    assert ours.meta["format"] == "nifti2" and ours.dtype == torch.float64
    np.testing.assert_array_equal(ours.numpy()[0], np.asanyarray(nib.load(p).dataobj))
    out = write_image(ours, tmp_path / "n2b.nii")
    assert out.read_bytes()[544:] == p.read_bytes()[544:]


def test_changed_values_written_as_they_are(tmp_path):
    raw = _near_2_30(np.int32)
    img = read_image(_raw_file(tmp_path, raw, 1.0, 0.5, "c.nii"))
    changed = img.new(img.data + 0.25)  # between two stored values
    out = write_image(changed, tmp_path / "c2.nii")
    assert nib.load(out).get_data_dtype() == np.float64
    assert torch.equal(read_image(out).data, changed.data)
    as32 = img.new(img.data.float())  # float32 values: a float32 file, not the int32 one
    out32 = write_image(as32, tmp_path / "c3.nii")
    assert nib.load(out32).get_data_dtype() == np.float32
    assert torch.equal(read_image(out32).data, as32.data)
