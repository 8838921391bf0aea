"""Writing .nii.gz at every gzip level, through every compressor (ISA-L, libdeflate, zlib):
standard gzip that any reader reads, indexed for medimg's parallel inflate."""

from __future__ import annotations

import gzip
import io

import nibabel as nib
import numpy as np
import pytest

from medimg.core import Image
from medimg.io import _gzip, read_image, write_image


def _payload() -> bytes:
    rng = np.random.default_rng(5)
    return (rng.integers(0, 30, 300_000, dtype=np.uint8) * 3).tobytes()


@pytest.mark.parametrize("compressor", ["default", "no isal", "zlib only"])
@pytest.mark.parametrize("level", [0, 1, 2, 3, 6, 9])
def test_every_level_and_compressor_writes_standard_indexed_gzip(monkeypatch, compressor, level):
    if compressor != "default":
        monkeypatch.setattr(_gzip, "_isal_zlib", None)
    if compressor == "zlib only":
        monkeypatch.setattr(_gzip, "_libdeflate_compress_api", lambda: None)
    payload = _payload()
    buf = io.BytesIO()
    _gzip.write_gzip_members(buf, [payload[:1000], payload[1000:]], level, member_size=70_000)
    blob = buf.getvalue()
    assert gzip.decompress(blob) == payload  # any gzip reader
    assert len(_gzip._member_index(memoryview(blob), len(payload))) == 5  # 'MG' index
    assert _gzip.gunzip(blob, len(payload)).tobytes() == payload
    if level >= 6:  # a real compression level compresses
        assert len(blob) < 0.7 * len(payload)


def test_libdeflate_used_above_level_3_when_installed():
    if _gzip._libdeflate_compress_api() is None:
        pytest.skip("deflate (libdeflate) not installed")
    _, compress, crc32 = _gzip._member_codec(6)
    data = _payload()
    assert crc32(data) == __import__("zlib").crc32(data)
    assert __import__("zlib").decompress(compress(data), -15) == data
    assert compress is not None and "libdeflate" in compress.__qualname__


def test_empty_input_is_one_valid_member():
    buf = io.BytesIO()
    _gzip.write_gzip_members(buf, [], 6)
    assert gzip.decompress(buf.getvalue()) == b""


@pytest.mark.parametrize("level", [0, 1, 3, 6, 9])
def test_every_gzip_level_writes_a_standard_file(tmp_path, level):
    raw = np.random.default_rng(2).integers(-1000, 1000, size=(20, 18, 16)).astype(np.int16)
    img = Image(np.asfortranarray(raw)[None], np.eye(4))
    out = write_image(img, tmp_path / f"l{level}.nii.gz", compresslevel=level)
    np.testing.assert_array_equal(np.asanyarray(nib.load(out).dataobj), raw)
    np.testing.assert_array_equal(read_image(out).numpy()[0], raw)
    with pytest.raises(ValueError, match="0-9"):
        write_image(img, tmp_path / "bad.nii.gz", compresslevel=10)
    assert not list(tmp_path.glob(".bad*"))  # no temporary file left behind
