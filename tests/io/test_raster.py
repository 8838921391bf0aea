"""2D pictures through ``read_image``: PNG, JPEG, BMP, TIFF -> ``(C, H, W)``, dtype kept,
identity affine; palette and alpha converted explicitly; bad files named in words."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image as PILImage

from medimg.core import ImageReadError, Sample
from medimg.io import read_image
from medimg.transforms import build_compose


def _gradient(h: int = 6, w: int = 9) -> np.ndarray:
    return (np.arange(h)[:, None] * 20 + np.arange(w)[None, :]).astype(np.uint8)


def test_grayscale_png_is_one_channel_rows_then_columns(tmp_path: Path):
    a = _gradient()
    PILImage.fromarray(a, mode="L").save(tmp_path / "g.PNG")  # suffix in any case
    img = read_image(tmp_path / "g.PNG")
    assert img.shape == (1, 6, 9) and img.dtype == torch.uint8 and img.kind == "intensity"
    assert np.array_equal(img.numpy()[0], a)  # row 0 = the top row
    assert np.array_equal(img.affine, np.eye(4)) and img.spacing == (1.0, 1.0)
    assert img.meta["format"] == "PNG" and img.meta["mode"] == "L" and img.meta["source"].endswith("g.PNG")


def test_16_bit_png_keeps_every_value(tmp_path: Path):
    a = (np.arange(30).reshape(5, 6) * 2000 + 7).astype(np.uint16)  # up to 58007 > int16
    PILImage.fromarray(a).save(tmp_path / "d.png")
    img = read_image(tmp_path / "d.png")
    assert img.dtype == torch.int32 and img.meta["bits"] == 16
    assert np.array_equal(img.numpy()[0], a.astype(np.int32))


def test_rgb_rgba_and_palette(tmp_path: Path):
    rgb = np.stack([_gradient(), 255 - _gradient(), np.full((6, 9), 7, np.uint8)], axis=-1)
    PILImage.fromarray(rgb, mode="RGB").save(tmp_path / "c.png")
    img = read_image(tmp_path / "c.png")
    assert img.shape == (3, 6, 9) and np.array_equal(img.numpy(), np.moveaxis(rgb, -1, 0))
    rgba = np.concatenate([rgb, np.full((6, 9, 1), 128, np.uint8)], axis=-1)
    PILImage.fromarray(rgba, mode="RGBA").save(tmp_path / "a.png")
    img = read_image(tmp_path / "a.png")
    assert img.shape == (3, 6, 9) and img.meta["dropped_alpha"] is True
    assert np.array_equal(img.numpy(), np.moveaxis(rgb, -1, 0))
    gray_palette = PILImage.fromarray(_gradient(), mode="L").convert("P")
    gray_palette.save(tmp_path / "p.png")
    img = read_image(tmp_path / "p.png")
    assert img.shape == (1, 6, 9) and img.meta["converted_from"] == "P"
    assert np.array_equal(img.numpy()[0], _gradient())
    PILImage.fromarray(rgb, mode="RGB").quantize(16).save(tmp_path / "q.png")
    img = read_image(tmp_path / "q.png")
    assert img.shape == (3, 6, 9) and img.meta["converted_from"] == "P"


@pytest.mark.parametrize("suffix", [".jpg", ".JPEG", ".bmp", ".tif"])
def test_jpeg_bmp_tiff(tmp_path: Path, suffix: str):
    a = np.full((8, 10), 100, np.uint8)
    a[2:6, 3:8] = 200
    PILImage.fromarray(a, mode="L").save(tmp_path / f"x{suffix}", **({"quality": 95} if "jp" in suffix.lower() else {}))
    img = read_image(tmp_path / f"x{suffix}", dtype="float32")
    assert img.shape == (1, 8, 10) and img.dtype == torch.float32
    tol = 10 if "jp" in suffix.lower() else 0  # JPEG is lossy
    assert np.abs(img.numpy()[0] - a).max() <= tol


def test_truncated_and_non_picture_files_say_what_was_found(tmp_path: Path):
    PILImage.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8)).save(tmp_path / "ok.png")
    data = (tmp_path / "ok.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError) as info:
        read_image(tmp_path / "cut.png")
    msg = str(info.value).splitlines()[0]
    assert f"'{tmp_path / 'cut.png'}'" in msg and "truncated or corrupt" in msg and "Error" not in msg
    (tmp_path / "text.png").write_text("hello world")
    with pytest.raises(ImageReadError) as info:
        read_image(tmp_path / "text.png")
    msg = str(info.value).splitlines()[0]
    assert "expected a PNG file, found content starting with bytes 68 65 6c 6c" in msg and "text.png" in msg
    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(ImageReadError, match="expected a JPEG file, found an empty file"):
        read_image(tmp_path / "empty.jpg")


def test_multi_frame_tiff_is_refused(tmp_path: Path):
    frames = [PILImage.fromarray(np.full((4, 4), v, np.uint8)) for v in (1, 2, 3)]
    frames[0].save(tmp_path / "stack.tif", save_all=True, append_images=frames[1:])
    with pytest.raises(ImageReadError, match="expected one 2D picture, found 3 frames"):
        read_image(tmp_path / "stack.tif")


def test_medimg_info_reads_a_picture(tmp_path: Path):
    import json

    from typer.testing import CliRunner

    from medimg.cli import app

    PILImage.fromarray(_gradient()).save(tmp_path / "g.png")
    res = CliRunner().invoke(app, ["info", str(tmp_path / "g.png"), "--json"], env={"NO_COLOR": "1"})
    assert res.exit_code == 0, res.output
    info = json.loads(res.stdout)
    assert info["shape"] == [1, 6, 9] and info["dtype"] == "uint8" and info["axcodes"] == "RA"
    assert info["spacing_mm"] == [1.0, 1.0] and info["intensity"]["max"] == 108.0
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"0" * 40)
    res = CliRunner().invoke(app, ["info", str(tmp_path / "bad.png")], env={"NO_COLOR": "1", "COLUMNS": "300"})
    assert res.exit_code != 0 and "Traceback" not in res.output
    first = res.output.splitlines()[0]
    assert first.startswith(f"error: cannot read image '{tmp_path / 'bad.png'}': the PNG data is truncated or corrupt (")
    assert "Error" not in first


def test_transforms_work_on_a_picture(tmp_path: Path):
    a = np.zeros((8, 12), np.uint8)
    a[1, 2] = 255  # one bright pixel near the top-left corner
    PILImage.fromarray(a).save(tmp_path / "dot.png")
    img = read_image(tmp_path / "dot.png", dtype="float32")
    sample = Sample(images={"image": img}, case_id="dot")
    pre = build_compose([
        {"name": "orient", "axcodes": "RA"},  # the identity affine: nothing moves
        {"name": "resample", "spacing": [0.5, 0.5]},
        {"name": "normalize_intensity"},
    ])
    out = pre(sample)["image"]
    assert out.spatial_shape == (16, 24) and out.spacing == pytest.approx((0.5, 0.5))
    assert abs(float(out.data.mean())) < 1e-5 and abs(float(out.data.std()) - 1.0) < 0.05
    peak = np.unravel_index(int(out.data[0].argmax()), (16, 24))
    assert peak in [(2, 4), (2, 5), (3, 4), (3, 5)]  # still near the top-left
    flipped = build_compose([{"name": "orient", "axcodes": "LA"}])(sample)["image"]
    assert flipped.data[0, 6, 2] == 255  # rows reversed: row 1 -> row 6
    aug = build_compose([
        {"name": "random_flip", "axes": [1], "prob": 1.0},
        {"name": "random_affine", "degrees": 10, "scale": [0.9, 1.1], "prob": 1.0},
    ])
    out = aug(sample, torch.Generator().manual_seed(0))["image"]
    # columns reversed, then a small rotation: the dot is now near the right edge
    assert out.spatial_shape == (8, 12) and float(out.data[0, :, 6:].sum()) > float(out.data[0, :, :6].sum())


def test_one_list_of_picture_suffixes():
    from medimg.io.layout import PICTURE_SUFFIXES
    from medimg.io.raster import RASTER_SUFFIXES

    assert set(RASTER_SUFFIXES) == set(PICTURE_SUFFIXES)


def test_cases_finds_pictures_only_when_asked(tmp_path: Path):
    from medimg.io.cases import find_cases

    for name in ("b.png", "a.JPG", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    assert [c.case_id for c in find_cases(tmp_path, pictures=True)] == ["a", "b"]
    assert find_cases(tmp_path) == []
    assert [c.case_id for c in find_cases(tmp_path / "b.png", pictures=True)] == ["b"]
