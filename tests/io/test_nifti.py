"""NIfTI reading/writing: exact round trips, memory layout, scaling, errors, real data."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from medimg.core import Image, ImageReadError, ImageWriteError
from medimg.io import read_image, read_nifti, write_image
from medimg.io._gzip import available_backends, gunzip, gunzip_head, GzipDataError
from tests.conftest import shared_path

def _rotation(axis, angle):
    axis = np.asarray(axis, dtype=np.float64) / np.linalg.norm(axis)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * k @ k


#: an oblique, orthogonal grid (LPS-like flips, 0.68 x 0.68 x 2.5 mm)
OBLIQUE = np.eye(4)
OBLIQUE[:3, :3] = _rotation([0.3, -0.2, 1.0], 0.4) @ np.diag([-0.68, -0.68, 2.5])
OBLIQUE[:3, 3] = [120.5, -33.25, 77.0]
#: a sheared grid (e.g. a gantry-tilted CT): only an sform can hold it
SHEARED = OBLIQUE.copy()
SHEARED[:3, 2] += [0.0, 0.4, 0.0]


def _rng_data(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind == "f":
        return rng.normal(0, 100, size=shape).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(info.min, int(info.max) + 1, size=shape, dtype=dtype)


def _nib_save(tmp_path: Path, arr, affine, name="x.nii.gz", qcode=1, scode=1, **hdr_fields):
    img = nib.Nifti1Image(arr, affine)
    img.set_qform(affine, code=qcode)
    img.set_sform(affine, code=scode)
    for k, v in hdr_fields.items():
        img.header[k] = v
    p = tmp_path / name
    nib.save(img, str(p))
    return p


# ------------------------------------------------------------------------------------------
# round trips
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
@pytest.mark.parametrize("dtype", [np.int16, np.uint8, np.float32, np.uint16, np.int32, np.float64])
def test_roundtrip_3d_bit_identical(tmp_path, suffix, dtype):
    arr = _rng_data((7, 6, 5), dtype)
    p = _nib_save(tmp_path, arr, OBLIQUE, name="a" + suffix, qcode=1, scode=2)
    img = read_image(p)
    assert img.shape == (1, 7, 6, 5)
    np.testing.assert_array_equal(img.numpy()[0], arr)
    np.testing.assert_allclose(img.affine, nib.load(p).affine, atol=1e-6, rtol=0)

    out = write_image(img, tmp_path / ("b" + suffix))
    back = read_image(out)
    assert back.dtype == img.dtype
    assert torch.equal(back.data, img.data)
    np.testing.assert_allclose(back.affine, img.affine, atol=1e-6, rtol=0)
    # the file itself keeps the dtype, codes and matrices
    nb = nib.load(out)
    assert nb.get_data_dtype() == np.dtype(dtype)
    assert nb.header.get_qform(coded=True)[1] == 1
    assert nb.header.get_sform(coded=True)[1] == 2
    np.testing.assert_array_equal(np.asanyarray(nb.dataobj), arr)
    src = nib.load(p).header
    for key in ("quatern_b", "quatern_c", "quatern_d", "qoffset_x", "srow_x", "srow_y", "srow_z", "pixdim"):
        np.testing.assert_array_equal(nb.header[key], src[key], err_msg=key)


def test_roundtrip_2d(tmp_path):
    arr = _rng_data((9, 4), np.int16)
    p = _nib_save(tmp_path, arr, np.diag([0.5, 0.25, 1.0, 1.0]), name="two.nii.gz")
    img = read_image(p)
    assert img.shape == (1, 9, 4) and img.spatial_ndim == 2
    assert img.spacing == (0.5, 0.25)
    back = read_image(write_image(img, tmp_path / "two_b.nii.gz"))
    assert torch.equal(back.data, img.data)
    assert nib.load(tmp_path / "two_b.nii.gz").shape == (9, 4)


def test_roundtrip_4d_time_becomes_channels(tmp_path):
    arr = _rng_data((5, 4, 3, 6), np.float32)
    p = _nib_save(tmp_path, arr, OBLIQUE, name="t.nii.gz")
    img = read_image(p)
    assert img.shape == (6, 5, 4, 3)
    np.testing.assert_array_equal(img.numpy(), np.moveaxis(arr, -1, 0))
    # a transposed view of the Fortran-ordered file buffer, not a copy
    assert img.numpy().strides == (5 * 4 * 3 * 4, 4, 5 * 4, 5 * 4 * 4)
    back_p = write_image(img, tmp_path / "t2.nii.gz")
    assert nib.load(back_p).shape == (5, 4, 3, 6)
    back = read_image(back_p)
    assert torch.equal(back.data, img.data)


def test_5d_vector_image(tmp_path):
    arr = _rng_data((4, 3, 2, 1, 3), np.float32)
    p = _nib_save(tmp_path, arr, np.eye(4), name="vec.nii.gz", intent_code=1007)
    img = read_image(p)
    assert img.shape == (3, 4, 3, 2)
    np.testing.assert_array_equal(img.numpy()[2], arr[..., 0, 2])
    out = write_image(img, tmp_path / "vec2.nii.gz")
    nb = nib.load(out)
    assert nb.shape == (4, 3, 2, 1, 3) and int(nb.header["intent_code"]) == 1007
    np.testing.assert_array_equal(np.asanyarray(nb.dataobj), arr)


def test_uint16_widened_on_read_restored_on_write(tmp_path):
    arr = np.array([[[0, 65535], [1234, 40000]]], dtype=np.uint16)
    p = _nib_save(tmp_path, arr, np.eye(4), name="u16.nii")
    img = read_image(p)
    assert img.dtype == torch.int32 and img.meta["nifti"]["dtype"] == "uint16"
    out = write_image(img, tmp_path / "u16b.nii")
    assert nib.load(out).get_data_dtype() == np.uint16
    np.testing.assert_array_equal(read_image(out).numpy()[0], arr.astype(np.int32))


def test_fortran_view_not_copy(tmp_path):
    arr = _rng_data((8, 7, 6), np.int16)
    for name in ("f.nii", "f.nii.gz"):
        p = _nib_save(tmp_path, arr, np.eye(4), name=name)
        a = read_image(p).numpy()
        assert a.shape == (1, 8, 7, 6)
        # x fastest in memory, as on disk: strides of a Fortran-ordered (8, 7, 6) int16 view
        assert a.strides[1:] == (2, 16, 112)
        assert a[0].flags["F_CONTIGUOUS"] and not a[0].flags["C_CONTIGUOUS"]
        assert a.flags["WRITEABLE"]


def test_scaling_applied_as_float32_and_requantised_on_write(tmp_path):
    raw = np.arange(24, dtype=np.int16).reshape(2, 3, 4) - 5
    img = nib.Nifti1Image(raw, np.eye(4))
    img.header.set_slope_inter(0.5, -1024.0)
    p = tmp_path / "s.nii.gz"
    nib.save(img, str(p))
    ours = read_image(p)
    assert ours.dtype == torch.float32
    np.testing.assert_array_equal(ours.numpy()[0], raw.astype(np.float32) * 0.5 - 1024.0)
    np.testing.assert_allclose(ours.numpy()[0], nib.load(p).get_fdata(), rtol=0, atol=1e-6)
    out = write_image(ours, tmp_path / "s2.nii.gz")
    nb = nib.load(out)
    assert nb.get_data_dtype() == np.int16  # the ints came back exactly, with the scaling
    assert (nb.dataobj.slope, nb.dataobj.inter) == (0.5, -1024.0)
    assert torch.equal(read_image(out).data, ours.data)
    # values that the int grid cannot hold are written as float32 instead
    changed = ours.new(ours.data + 0.1)
    out2 = write_image(changed, tmp_path / "s3.nii.gz")
    assert nib.load(out2).get_data_dtype() == np.float32
    assert torch.equal(read_image(out2).data, changed.data)


def test_trivial_scaling_keeps_ints(tmp_path):
    raw = _rng_data((3, 3, 3), np.int16)
    img = nib.Nifti1Image(raw, np.eye(4))
    img.header.set_slope_inter(1.0, 0.0)
    nib.save(img, str(tmp_path / "t.nii"))
    assert read_image(tmp_path / "t.nii").dtype == torch.int16


def test_big_endian_file(tmp_path):
    arr = _rng_data((5, 4, 3), np.int16)
    img = nib.Nifti1Image(arr.astype(">i2"), OBLIQUE)
    img.set_data_dtype(np.dtype(">i2"))
    hdr = img.header.as_byteswapped(">")
    be = nib.Nifti1Image(arr.astype(">i2"), OBLIQUE, header=hdr)
    p = tmp_path / "be.nii.gz"
    nib.save(be, str(p))
    assert nib.load(p).header.endianness == ">"
    ours = read_image(p)
    assert ours.dtype == torch.int16
    np.testing.assert_array_equal(ours.numpy()[0], arr)
    np.testing.assert_allclose(ours.affine, nib.load(p).affine, atol=1e-6, rtol=0)


def test_nifti2(tmp_path):
    arr = _rng_data((4, 5, 6), np.float32)
    p = tmp_path / "n2.nii.gz"
    nib.save(nib.Nifti2Image(arr, OBLIQUE), str(p))
    img = read_image(p)
    assert img.meta["format"] == "nifti2"
    np.testing.assert_array_equal(img.numpy()[0], arr)
    out = write_image(img, tmp_path / "n2b.nii.gz")
    assert isinstance(nib.load(out), nib.Nifti2Image)
    assert torch.equal(read_image(out).data, img.data)


def test_rgb24(tmp_path):
    rgb = np.zeros((4, 3, 2), dtype=[("R", "u1"), ("G", "u1"), ("B", "u1")])
    rgb["R"], rgb["G"], rgb["B"] = 10, 20, np.arange(24).reshape(4, 3, 2)
    p = tmp_path / "rgb.nii"
    nib.save(nib.Nifti1Image(rgb, np.eye(4)), str(p))
    img = read_image(p)
    assert img.shape == (3, 4, 3, 2) and img.dtype == torch.uint8
    np.testing.assert_array_equal(img.numpy()[2], np.arange(24).reshape(4, 3, 2))
    out = write_image(img, tmp_path / "rgb2.nii")
    np.testing.assert_array_equal(np.asanyarray(nib.load(out).dataobj), rgb)


def test_qform_only_and_sform_only(tmp_path):
    arr = _rng_data((4, 4, 4), np.int16)
    for qc, sc in ((1, 0), (0, 3), (4, 1)):
        p = _nib_save(tmp_path, arr, OBLIQUE if sc else np.diag([-0.8, 0.8, 3.0, 1]), name=f"q{qc}{sc}.nii.gz", qcode=qc, scode=sc)
        img = read_image(p)
        out = write_image(img, tmp_path / f"q{qc}{sc}b.nii.gz")
        h = nib.load(out).header
        assert (int(h["qform_code"]), int(h["sform_code"])) == (qc, sc)
        np.testing.assert_allclose(read_image(out).affine, img.affine, atol=1e-6, rtol=0)


def test_new_grid_writes_new_affine_with_source_codes(tmp_path):
    arr = _rng_data((6, 6, 6), np.int16)
    p = _nib_save(tmp_path, arr, OBLIQUE, name="g.nii.gz", qcode=1, scode=2)
    img = read_image(p)
    new_aff = img.affine.copy()
    new_aff[:3, :3] *= 2.0
    small = img.new(img.data[:, ::2, ::2, ::2].contiguous(), affine=new_aff)
    out = write_image(small, tmp_path / "g_small.nii.gz")
    h = nib.load(out).header
    assert (int(h["qform_code"]), int(h["sform_code"])) == (1, 2)
    np.testing.assert_allclose(nib.load(out).affine, new_aff, atol=1e-6, rtol=0)
    np.testing.assert_allclose(h.get_qform(), new_aff, atol=1e-4, rtol=0)  # quaternion: float32
    np.testing.assert_allclose(h.get_zooms(), [1.36, 1.36, 5.0], atol=1e-5)


def test_sheared_affine_sform_only(tmp_path):
    img = Image(torch.arange(27, dtype=torch.int16).reshape(1, 3, 3, 3), SHEARED)
    out = write_image(img, tmp_path / "shear.nii.gz")
    h = nib.load(out).header
    assert (int(h["qform_code"]), int(h["sform_code"])) == (0, 1)
    back = read_image(out)
    np.testing.assert_allclose(back.affine, SHEARED, atol=1e-6, rtol=0)
    assert back.meta["nifti"]["qform_code"] == 0


def test_fresh_image_label_and_bool(tmp_path):
    data = torch.zeros(1, 5, 4, 3, dtype=torch.bool)
    data[0, 1:3, 1:3, 1] = True
    aff = np.diag([-1.5, -1.5, 2.0, 1.0])
    out = write_image(Image(data, aff, kind="label"), tmp_path / "lab.nii.gz")
    nb = nib.load(out)
    assert nb.get_data_dtype() == np.uint8
    assert int(nb.header["intent_code"]) == 1002
    assert nb.header.get_xyzt_units() == ("mm", "sec")
    assert (int(nb.header["qform_code"]), int(nb.header["sform_code"])) == (1, 1)
    img = read_image(out)
    assert img.kind == "label"  # from the intent
    np.testing.assert_array_equal(img.numpy()[0], data.numpy()[0].astype(np.uint8))
    np.testing.assert_allclose(img.affine, aff)
    assert read_image(out, kind="intensity").kind == "intensity"


def test_multichannel_c_order_tensor(tmp_path):
    data = torch.randn(3, 5, 4, 2)  # C-contiguous, the usual model output layout
    out = write_image(Image(data, OBLIQUE, kind="probabilities"), tmp_path / "p.nii.gz")
    nb = nib.load(out)
    assert nb.shape == (5, 4, 2, 3)
    np.testing.assert_array_equal(np.asanyarray(nb.dataobj), np.moveaxis(data.numpy(), 0, -1))
    assert torch.equal(read_image(out).data, data)


def test_float16_written_as_float32(tmp_path):
    data = torch.randn(1, 3, 3, 3).half()
    out = write_image(Image(data), tmp_path / "h.nii")
    assert nib.load(out).get_data_dtype() == np.float32
    assert torch.equal(read_image(out).data, data.float())


def test_dtype_argument(tmp_path):
    p = _nib_save(tmp_path, _rng_data((3, 3, 3), np.int16), np.eye(4))
    assert read_image(p, dtype=torch.float32).dtype == torch.float32
    assert read_image(p, dtype="float64").dtype == torch.float64
    with pytest.raises(ValueError, match="dtype"):
        read_image(p, dtype="not-a-dtype")


def test_meta_is_plain_data(tmp_path):
    p = _nib_save(tmp_path, _rng_data((3, 3, 3), np.int16), OBLIQUE, descrip=b"hello")
    meta = read_image(p).meta
    json.dumps(meta)  # checkpoints and caches store meta as plain data
    assert meta["source"] == str(p) and meta["nifti"]["descrip"] == "hello"


# ------------------------------------------------------------------------------------------
# gzip edge cases and backends
# ------------------------------------------------------------------------------------------
def test_multi_member_gzip(tmp_path):
    arr = _rng_data((16, 16, 16), np.int16)
    plain = _nib_save(tmp_path, arr, OBLIQUE, name="m.nii")
    blob = plain.read_bytes()
    cut = len(blob) // 3
    p = tmp_path / "m.nii.gz"
    p.write_bytes(gzip.compress(blob[:cut]) + gzip.compress(blob[cut:]))  # like pigz / cat
    np.testing.assert_array_equal(read_image(p).numpy()[0], arr)


@pytest.mark.parametrize("backend", available_backends())
def test_every_backend_agrees(tmp_path, backend):
    arr = _rng_data((10, 9, 8), np.float32)
    p = _nib_save(tmp_path, arr, OBLIQUE)
    img = read_nifti(p, backend=backend)
    np.testing.assert_array_equal(img.numpy()[0], arr)
    assert img.numpy().flags["WRITEABLE"]


@pytest.mark.skipif("deflate" not in available_backends(), reason="deflate (libdeflate) not installed")
def test_deflate_without_c_api_falls_back_to_wheel_call(tmp_path, monkeypatch):
    from medimg.io import _gzip

    payload = bytes(range(256)) * 500
    two = gzip.compress(payload[:1000]) + gzip.compress(payload[1000:])
    assert _gzip._libdeflate() is not None  # the wheel exports libdeflate's C API here
    assert gunzip(two, len(payload), "deflate").tobytes() == payload  # members on the fast path
    monkeypatch.setattr(_gzip, "_libdeflate", lambda: None)
    assert gunzip(gzip.compress(payload), len(payload), "deflate").tobytes() == payload
    assert gunzip(two, len(payload), "deflate").tobytes() == payload  # via the stream path


def test_gunzip_unit():
    payload = bytes(range(256)) * 1000
    blob = gzip.compress(payload)
    for backend in available_backends():
        assert gunzip(blob, len(payload), backend).tobytes() == payload
        assert gunzip(blob, None, backend).tobytes() == payload
        assert gunzip(blob, len(payload) - 7, backend).tobytes() == payload  # wrong size hint
    assert gunzip_head(blob, 300) == payload[:300]
    with pytest.raises(GzipDataError) as ei:
        gunzip(blob[:-40], len(payload))
    assert ei.value.truncated
    with pytest.raises(ValueError, match="not available"):
        gunzip(blob, None, "nope")


# ------------------------------------------------------------------------------------------
# errors
# ------------------------------------------------------------------------------------------
def test_missing_file(tmp_path):
    with pytest.raises(ImageReadError, match="not found") as ei:
        read_image(tmp_path / "nope.nii.gz")
    assert "nope.nii.gz" in str(ei.value)
    assert isinstance(ei.value, OSError)
    with pytest.raises(ImageReadError, match="file not found"):
        read_nifti(tmp_path / "nope.nii")


def test_truncated_gz(tmp_path):
    p = _nib_save(tmp_path, _rng_data((20, 20, 20), np.int16), np.eye(4))
    bad = tmp_path / "trunc.nii.gz"
    bad.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    with pytest.raises(ImageReadError) as ei:
        read_image(bad)
    msg = str(ei.value)
    assert "trunc.nii.gz" in msg and "truncated" in msg and "expected 16352 decompressed bytes" in msg


def test_truncated_nii(tmp_path):
    p = _nib_save(tmp_path, _rng_data((20, 20, 20), np.int16), np.eye(4), name="a.nii")
    bad = tmp_path / "short.nii"
    bad.write_bytes(p.read_bytes()[:5000])
    with pytest.raises(ImageReadError) as ei:
        read_image(bad)
    msg = str(ei.value)
    assert "short.nii" in msg and "expected 16352 bytes" in msg and "found 5000" in msg


def test_not_nifti(tmp_path):
    bad = tmp_path / "fake.nii"
    bad.write_bytes(b"hello world" * 100)
    with pytest.raises(ImageReadError, match=r"fake\.nii.*not a NIfTI file: expected sizeof_hdr 348"):
        read_image(bad)
    gz = tmp_path / "fake.nii.gz"
    gz.write_bytes(gzip.compress(b"\x00" * 10))
    with pytest.raises(ImageReadError, match="too short for a NIfTI header"):
        read_image(gz)


def test_unsupported_format(tmp_path):
    bad = tmp_path / "vol.mha"
    bad.write_bytes(b"ObjectType = Image\n")
    with pytest.raises(ImageReadError) as ei:
        read_image(bad)
    msg = str(ei.value)
    assert "vol.mha" in msg and "MetaImage" in msg and ".nii.gz" in msg and "DICOM" in msg
    assert ei.value.hint.startswith("convert it to NIfTI (.nii.gz) first") and "sitk." not in ei.value.hint


def test_bad_dims(tmp_path):
    p = _nib_save(tmp_path, _rng_data((3, 3, 3), np.int16), np.eye(4), name="d.nii")
    blob = bytearray(p.read_bytes())
    blob[40:42] = (9).to_bytes(2, "little")  # dim[0] = 9
    bad = tmp_path / "dims.nii"
    bad.write_bytes(bytes(blob))
    with pytest.raises(ImageReadError, match=r"dims\.nii.*invalid header dimensions dim=\[9, 3, 3, 3"):
        read_image(bad)
    blob[40:42] = (3).to_bytes(2, "little")
    blob[44:46] = (0).to_bytes(2, "little", signed=True)  # dim[2] = 0
    bad.write_bytes(bytes(blob))
    with pytest.raises(ImageReadError, match=r"dim\[1..dim\[0\]\] >= 1"):
        read_image(bad)


def test_absurd_dims_rejected_before_allocating(tmp_path):
    p = _nib_save(tmp_path, _rng_data((3, 3, 3), np.int16), np.eye(4), name="d.nii.gz")
    blob = bytearray(gzip.decompress(p.read_bytes()))
    for i in range(1, 4):  # dim[1..3] = 30000: 54 TB of int16
        blob[40 + 2 * i : 42 + 2 * i] = (30000).to_bytes(2, "little")
    bad = tmp_path / "huge.nii.gz"
    bad.write_bytes(gzip.compress(bytes(blob)))
    with pytest.raises(ImageReadError, match=r"huge\.nii\.gz.*header says 54000000000352 bytes.*can hold at most"):
        read_image(bad)
    plain = tmp_path / "huge.nii"
    plain.write_bytes(bytes(blob))
    with pytest.raises(ImageReadError, match=r"shorter than the header says: expected 54000000000352"):
        read_image(plain)


def test_sniffs_nifti_without_suffix(tmp_path):
    arr = _rng_data((3, 4, 5), np.int16)
    p = _nib_save(tmp_path, arr, np.eye(4))
    odd = tmp_path / "download.bin"
    odd.write_bytes(p.read_bytes())
    np.testing.assert_array_equal(read_image(odd).numpy()[0], arr)


def test_write_errors(tmp_path):
    img = Image(torch.zeros(1, 2, 2, 2))
    with pytest.raises(ImageWriteError, match=r"unsupported suffix '\.mha'.*\.nii\.gz") as err:
        write_image(img, tmp_path / "x.mha")
    assert err.value.hint_for("cli") == "name the file e.g. 'pred.nii.gz'"
    with pytest.raises(ImageWriteError, match="complex"):
        write_image(Image(torch.zeros(1, 2, 2, 2, dtype=torch.complex64)), tmp_path / "c.nii")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ImageWriteError, match="cannot write NIfTI"):
        write_image(img, blocker / "sub" / "x.nii.gz")


def test_write_is_atomic_and_creates_parents(tmp_path):
    out = write_image(Image(torch.ones(1, 2, 2, 2)), tmp_path / "a" / "b" / "x.nii.gz")
    assert out.exists() and [q.name for q in out.parent.iterdir()] == ["x.nii.gz"]


# ------------------------------------------------------------------------------------------
# real data
# ------------------------------------------------------------------------------------------
def _compare_with_nibabel(p: Path) -> Image:
    ours = read_image(p)
    ref = nib.load(p)
    ref_arr = np.asanyarray(ref.dataobj)
    assert ours.numpy().dtype == ref_arr.dtype
    np.testing.assert_array_equal(ours.numpy()[0], ref_arr)
    np.testing.assert_array_equal(ours.affine, ref.affine)
    return ours


@pytest.mark.slow
def test_real_brats_flair(tmp_path):
    folder = shared_path("seg", "brats6", "train")
    files = sorted(folder.glob("*/Flair_subtrMeanDivStd.nii.gz"))
    assert files, f"no Flair files under {folder}"
    img = _compare_with_nibabel(files[0])
    assert img.spatial_shape == (240, 240, 155)
    back = read_image(write_image(img, tmp_path / "flair.nii.gz"))
    assert torch.equal(back.data, img.data)
    np.testing.assert_array_equal(back.affine, img.affine)


def test_real_spleen_label(tmp_path):
    p = shared_path("metrics", "spleen1_label_gt.nii.gz")
    img = _compare_with_nibabel(p)
    assert img.spatial_shape == (512, 512, 65)
    assert img.spacing == pytest.approx((0.684, 0.684, 5.0), abs=1e-3)
    back = read_image(write_image(img, tmp_path / "spleen.nii.gz"))
    assert torch.equal(back.data, img.data)
    np.testing.assert_array_equal(back.affine, img.affine)


def test_label_from_scaled_ct_meta_gets_no_ct_window_or_scaling(tmp_path):
    raw = (np.arange(64, dtype=np.int16).reshape(4, 4, 4) * 10) - 300
    ct = nib.Nifti1Image(raw, OBLIQUE)
    ct.header.set_slope_inter(1.0, -1024.0)
    ct.header["cal_min"], ct.header["cal_max"] = -1000.0, 2000.0
    nib.save(ct, str(tmp_path / "ct.nii.gz"))
    img = read_image(tmp_path / "ct.nii.gz")
    label = img.new((img.data > 0).to(torch.uint8), kind="label")  # meta copied from the CT
    out = write_image(label, tmp_path / "label.nii.gz")
    h = nib.load(out).header
    assert nib.load(out).get_data_dtype() == np.uint8
    assert (float(h["cal_min"]), float(h["cal_max"])) == (0.0, 0.0)
    assert int(h["intent_code"]) == 1002
    assert nib.load(out).dataobj.slope == 1.0 and nib.load(out).dataobj.inter == 0.0
    np.testing.assert_array_equal(nib.load(out).affine, img.affine)
    assert (int(h["qform_code"]), int(h["sform_code"])) == (0, 2)  # nibabel's defaults, kept
    # the intensity image keeps its window
    h2 = nib.load(write_image(img, tmp_path / "ct2.nii.gz")).header
    assert (float(h2["cal_min"]), float(h2["cal_max"])) == (-1000.0, 2000.0)


def test_read_image_dispatches_dicom_folder_and_file():
    folder = shared_path("dicom", "torchio_ct")
    img = read_image(folder)
    assert img.spatial_ndim == 3 and img.spatial_shape[2] == 17
    one = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in ("", ".dcm"))
    single = read_image(one[0])
    assert single.spatial_shape[:2] == img.spatial_shape[:2]


def test_written_gz_is_indexed_multi_member_and_standard(tmp_path, monkeypatch):
    from medimg.io import _gzip

    monkeypatch.setattr(_gzip, "MEMBER_SIZE", 1000)  # many members on a small volume
    arr = _rng_data((20, 20, 10), np.int16)
    img = Image(np.asfortranarray(arr)[None], OBLIQUE)
    out = tmp_path / "members.nii.gz"
    with open(out, "wb") as f:  # member size is read at call time: pass it explicitly
        _gzip.write_gzip_members(f, [b"abc", np.arange(5000, dtype=np.uint8)], member_size=1000)
    blob = out.read_bytes()
    payload = b"abc" + np.arange(5000, dtype=np.uint8).tobytes()
    assert gzip.decompress(blob) == payload  # any gzip reader sees one stream
    index = _gzip._member_index(memoryview(blob), len(payload))
    assert index is not None and len(index) == 6
    assert [i[3] for i in index] == [1000] * 5 + [3]
    assert _gzip._member_index(memoryview(blob), len(payload) + 1) is None  # must add up
    assert gunzip(blob, len(payload)).tobytes() == payload

    p = write_image(img, tmp_path / "img.nii.gz")
    blob = p.read_bytes()
    index = _gzip._member_index(memoryview(blob), 352 + arr.nbytes)
    assert index is not None  # written with the 'MG' index
    np.testing.assert_array_equal(np.asanyarray(nib.load(p).dataobj), arr)
    np.testing.assert_array_equal(read_image(p).numpy()[0], arr)


def test_parallel_members_agree_and_bad_index_falls_back(tmp_path):
    from medimg.io import _gzip

    payload = np.random.default_rng(3).integers(0, 40, 300_000, dtype=np.uint8).tobytes()
    buf = __import__("io").BytesIO()
    _gzip.write_gzip_members(buf, [payload], member_size=50_000)
    blob = bytearray(buf.getvalue())
    index = _gzip._member_index(memoryview(blob), len(payload))
    assert len(index) == 6
    if "deflate" in available_backends():
        lib = _gzip._libdeflate()
        par = _gzip._libdeflate_parallel(lib, memoryview(blob), len(payload), index)
        assert par is not None and par.tobytes() == payload
    # a wrong size in the second member's 'MG' field: not an index any more, still read
    pos = index[1][0]
    blob[pos + 16 : pos + 20] = (index[1][1] + 3).to_bytes(4, "little")
    assert _gzip._member_index(memoryview(blob), len(payload)) is None
    # the 'MG' field is only an index; the gzip stream is intact, so it reads sequentially
    assert gunzip(bytes(blob), len(payload)).tobytes() == payload
    # corrupt deflate data inside one member: the parallel path refuses, errors surface
    blob2 = bytearray(buf.getvalue())
    blob2[index[2][0] + 40] ^= 0xFF
    with pytest.raises(GzipDataError):
        gunzip(bytes(blob2), len(payload))


def test_gz_read_ignores_uncompressed_twin(tmp_path):
    # ITK's nifticlib, given X.nii.gz, reads the voxels of an X.nii beside it; medimg reads
    # exactly the file it is given (the benchmark keeps the two apart for ITK's sake).
    a = _rng_data((6, 5, 4), np.int16, seed=1)
    gz = _nib_save(tmp_path, a, OBLIQUE, name="x.nii.gz")
    _nib_save(tmp_path, a + 1, OBLIQUE, name="x.nii")
    np.testing.assert_array_equal(read_image(gz).numpy()[0], a)
    np.testing.assert_array_equal(read_image(tmp_path / "x.nii").numpy()[0], a + 1)
