"""Memory (issue 8, item 5): the estimate before a case runs (checked against the measured
peak RSS), outputs accumulated in place, labels inverted a few classes at a time, and a
case that cannot fit failing alone, with the settings that would make it fit."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from medimg.core import Image, make_affine
from medimg.core.errors import InsufficientMemoryError, exception_reason
from medimg.inference import Predictor, predict_folder
from medimg.inference.memory import (
    DEFAULT_ACTIVATION_BYTES,
    GB,
    CaseSize,
    activation_bytes_per_voxel,
    available_bytes,
    check_case_memory,
    estimate_peak_bytes,
)
from medimg.inference.predictor import label_map_of
from medimg.inference.sliding import add_flipped_, softmax_
from medimg.io import write_image
from medimg.models import create_model
from tests.conftest import tiny_unet_checkpoint

REPO = Path(__file__).resolve().parents[2]
PRE = [{"name": "orient", "axcodes": "RAS"}, {"name": "resample", "spacing": [1.5, 1.0, 1.25]}]


def _net(k: int, channels=(4, 8)) -> torch.nn.Module:
    torch.manual_seed(0)
    return create_model("unet", in_channels=1, out_channels=k, channels=list(channels), strides=[2] * (len(channels) - 1)).eval()


def _case(shape=(20, 18, 14)) -> Image:
    g = torch.Generator().manual_seed(1)
    aff = np.diag([-1.0, -0.9, 1.6, 1.0])
    aff[:3, 3] = (10.0, -5.0, 3.0)
    data = torch.rand((1, *shape), generator=g)
    data[:, :4] = 0  # a border that crop_foreground removes and inversion pads back
    data[..., -3:] = 0
    return Image(data, aff)


def test_softmax_and_flip_add_in_place_equal_torch():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(5, 19, 7, 6, generator=g)
    ref = torch.softmax(x, 0)
    out = softmax_(x.clone(), slab=4)
    assert float((out - ref).abs().max()) < 1e-7  # the same op on slabs (vectorised differently)
    assert float((out - x).abs().max()) > 0.1
    for dims in ([1], [2, 3], [1, 2, 3], []):
        total = ref.clone()
        assert torch.equal(add_flipped_(total, x, dims, slab=3), ref + (torch.flip(x, dims) if dims else x))


def test_labels_by_class_chunks_equal_argmax_of_probabilities():
    # 6 classes: inverted in two chunks (4 + 2); orient + resample make inversion real; flip TTA
    pred = Predictor(_net(6), device="cpu", roi_size=[16, 16, 16], overlap=0.5, sw_batch_size=2,
                     tta_flips=[0, 2], preprocess=[*PRE, {"name": "crop_foreground", "threshold": 0.3, "margin": 1}])
    img = _case()
    probs = pred.predict_probabilities(img)
    labels = pred.predict(img)
    assert labels.data.dtype == torch.uint8 and labels.spatial_shape == img.spatial_shape
    assert np.array_equal(labels.affine, img.affine)
    ref = label_map_of(probs).data
    differ = labels.data != ref
    # only exact ties (up to float rounding) may go either way
    top2 = torch.topk(probs.data, 2, dim=0).values
    assert bool(((top2[0] - top2[1])[differ[0]] < 1e-5).all())
    assert int(differ.sum()) <= ref.numel() // 1000
    assert len(torch.unique(labels.data)) > 1  # the comparison can fail
    # with a minimum probability per class: the same rule on both paths, normalised alike
    # (the crop pads the background outside the field of view, where the chunks sum to < 1)
    minimum = {1: 0.3, 4: 0.35, 5: 0.25}
    strict = pred.with_options(postprocess={"min_probability": minimum}).predict(img).data
    ref = label_map_of(probs, minimum).data
    top = probs.data.max(0).values[None]
    near = (top - torch.tensor(list(minimum.values())).view(-1, 1, 1, 1)).abs().min(0).values[None] < 1e-5
    differ = (strict != ref) & ~near
    assert bool(((top2[0] - top2[1])[None][differ] < 1e-5).all())
    for cls, t in minimum.items():
        dropped = (labels.data == cls) & (strict == 0)
        assert int(dropped.sum()) > 0  # each minimum changes something here: the test can fail
        assert bool((top[dropped] < t + 1e-5).all()) and bool((top[(strict == cls)] >= t - 1e-5).all())
    # the in-place TTA sum is the plain one: softmax per flip, flipped back, averaged
    x = pred.prepare(img).sample["image"].data
    with torch.inference_mode():
        got = pred._probabilities_on_preprocessed(x)
        ref = 0
        from medimg.inference import sliding_window

        combos = [(), (0,), (2,), (0, 2)]
        for c in combos:
            dims = [a + 1 for a in c]
            lo = sliding_window(torch.flip(x, dims) if dims else x, pred._forward, [16, 16, 16], overlap=0.5,
                                sw_batch_size=2)
            p = torch.softmax(lo, 0)
            ref = ref + (torch.flip(p, dims) if dims else p)
        ref = ref / len(combos)
    assert float((got - ref).abs().max()) < 1e-6


def test_labels_by_class_chunks_break_exact_ties_towards_the_lower_class_as_argmax():
    # probabilities in eighths (exact in float32, summing to exactly 1): many exact ties,
    # across the class chunks and with the background; the labels must be argmax's
    # (first maximum), voxel for voxel, on the label path and in label_map_of
    from medimg.inference.labelmaps import labels_by_class_chunks as _labels_by_class_chunks

    rng = np.random.default_rng(0)
    counts = rng.multinomial(8, [1 / 6] * 6, size=(12, 10, 9)).transpose(3, 0, 1, 2)
    probs = torch.from_numpy(counts.astype(np.float32) / 8.0)
    ref = torch.argmax(probs, dim=0)
    top2 = torch.topk(probs, 2, dim=0).values
    tied = top2[0] == top2[1]
    last = probs.shape[0] - 1 - torch.argmax(probs.flip(0), dim=0)  # ties broken towards the higher class
    assert int(tied.sum()) > 100 and bool((last != ref).any())  # the comparison can fail
    image = Image(probs, make_affine(spacing=(1.0, 1.0, 1.0)), kind="probabilities")
    labels = _labels_by_class_chunks(image, [], Image(probs[:1], image.affine), "ties")
    assert labels.dtype == torch.uint8 and torch.equal(labels.long(), ref)
    assert torch.equal(label_map_of(image).data[0].long(), ref)


def _size(**kw) -> CaseSize:
    base = dict(source_shape=(256, 256, 160), pre_shape=(205, 205, 213), in_channels=1, num_classes=14,
                roi=(96, 96, 96), sw_batch_size=4, tta=True, activation_bytes=250.0)
    return CaseSize(**{**base, **kw})


def test_estimate_grows_with_what_it_depends_on():
    c = _size()
    est = estimate_peak_bytes(c)
    assert estimate_peak_bytes(replace(c, sw_batch_size=1)) < est
    assert estimate_peak_bytes(replace(c, tta=False)) < est
    assert estimate_peak_bytes(replace(c, num_classes=28)) > est
    assert estimate_peak_bytes(replace(c, roi=(64, 64, 64))) < est
    lean = replace(c, tta=False, sw_batch_size=1)  # the inversion is the peak: all classes at once cost more
    assert estimate_peak_bytes(replace(lean, save_probabilities=True)) > estimate_peak_bytes(lean)
    assert estimate_peak_bytes(replace(c, dtype_bytes=2)) < est
    # the GPU holds the sliding window only
    assert estimate_peak_bytes(c, "cuda") < est
    # one full-size float32 map of 14 classes on the preprocessed grid is ~0.5 GB: several, not dozens
    one_map = 4 * 14 * 205 * 205 * 213
    assert 2 * one_map < est < 8 * one_map


def test_activation_probe_measures_the_network_or_falls_back():
    small, wide = _net(2, (4, 8)), _net(2, (16, 32))
    a_small = activation_bytes_per_voxel(small, 1, [32, 32, 32])
    a_wide = activation_bytes_per_voxel(wide, 1, [32, 32, 32])
    assert 4 * 4 <= a_small < a_wide  # at least the first layer's 4 channels; wider costs more

    class NoMeta(torch.nn.Module):
        def forward(self, x):
            return torch.from_numpy(x.numpy())

    assert activation_bytes_per_voxel(NoMeta(), 1, [8, 8, 8]) == DEFAULT_ACTIVATION_BYTES


def test_available_memory_and_override():
    assert available_bytes(torch.device("cpu"), 2.5) == int(2.5 * GB)
    import psutil

    free = psutil.virtual_memory().available
    assert 0.5 * free < available_bytes(torch.device("cpu")) < 2 * free


def test_cannot_fit_message_gives_estimate_available_and_fixes():
    c = _size()
    with pytest.raises(InsufficientMemoryError) as ei:
        check_case_memory(c, torch.device("cpu"), "ct_007", max_memory_gb=0.5)
    msg = exception_reason(ei.value)
    assert "\n" not in msg
    need = estimate_peak_bytes(c) / GB
    for part in ("ct_007", f"{need:.1f} GB", "0.5 GB", "--max-memory", "--sw-batch-size 1", "--no-tta",
                 "--roi-size 48,48,48", "all of these"):
        assert part in msg, (part, msg)
    assert check_case_memory(c, torch.device("cpu"), "ct_007", max_memory_gb=100) == estimate_peak_bytes(c)


def _checkpoint(path: Path) -> Path:
    return tiny_unet_checkpoint(path, label_names=["background", "a", "b"], preprocess=[{"name": "orient", "axcodes": "RAS"}],
                                inference={"roi_size": [16, 16, 16], "overlap": 0.25, "sw_batch_size": 2})


def _folder(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    g = torch.Generator().manual_seed(0)
    for name, shape in (("a_small", (12, 10, 8)), ("b_big", (96, 96, 80)), ("c_small", (14, 10, 8))):
        write_image(Image(torch.rand((1, *shape), generator=g), make_affine((1.0, 1.0, 2.0))), root / f"{name}.nii.gz")
    return root


def _limit_between(ckpt: Path, folder: Path) -> float:
    pred = Predictor.from_checkpoint(ckpt, "cpu")
    small = pred.check_memory(pred.prepare(folder / "c_small.nii.gz"), max_memory_gb=100)
    big = pred.check_memory(pred.prepare(folder / "b_big.nii.gz"), max_memory_gb=100)
    assert big > 2 * small
    return (small + big) / 2 / GB


def test_case_that_cannot_fit_fails_alone_and_the_batch_goes_on(tmp_path):
    ckpt, folder = _checkpoint(tmp_path / "m.pt"), _folder(tmp_path / "in")
    limit = _limit_between(ckpt, folder)
    report = predict_folder(ckpt, folder, tmp_path / "out", device="cpu", progress=False, max_memory_gb=limit)
    assert sorted(report.ok) == ["a_small", "c_small"]
    assert [c for c, _ in report.failed] == ["b_big"]
    msg = report.failed[0][1]
    assert "needs about" in msg and "--sw-batch-size 1" in msg and "--max-memory" in msg and "\n" not in msg
    assert not (tmp_path / "out" / "b_big.nii.gz").exists()
    with open(tmp_path / "out" / "predict_log.csv", newline="") as fh:
        rows = {r["case_id"]: r for r in csv.DictReader(fh)}
    assert rows["b_big"]["status"] == "failed" and "needs about" in rows["b_big"]["error"]
    assert rows["a_small"]["status"] == "ok"
    # with the memory it needs, the same case runs
    again = predict_folder(ckpt, folder, tmp_path / "out", device="cpu", progress=False, max_memory_gb=100)
    assert again.ok == ["b_big"]


def test_cli_max_memory(tmp_path):
    from medimg.cli import app

    ckpt, folder = _checkpoint(tmp_path / "m.pt"), _folder(tmp_path / "in")
    limit = _limit_between(ckpt, folder)
    env = {"COLUMNS": "200", "NO_COLOR": "1"}
    res = CliRunner().invoke(app, ["predict", str(ckpt), str(folder), str(tmp_path / "out"), "--device", "cpu",
                                   "--max-memory", f"{limit:.6f}"], env=env)
    assert res.exit_code == 1, res.output
    assert "b_big" in res.output and "needs about" in res.output and "Traceback" not in res.output
    assert (tmp_path / "out" / "a_small.nii.gz").is_file() and not (tmp_path / "out" / "b_big.nii.gz").exists()
    help_text = CliRunner().invoke(app, ["predict", "--help"], env=env).output
    assert "--max-memory" in help_text and "--roi-size" in help_text
    # the fix it suggests: a smaller roi on the command line
    res = CliRunner().invoke(app, ["predict", str(ckpt), str(folder), str(tmp_path / "out2"), "--device", "cpu",
                                   "--roi-size", "32", "--overwrite"], env=env)
    assert res.exit_code == 0, res.output
    with open(tmp_path / "out2" / "predict_log.csv", newline="") as fh:
        assert {r["status"] for r in csv.DictReader(fh)} == {"ok"}
    bad = CliRunner().invoke(app, ["predict", str(ckpt), str(folder), str(tmp_path / "out3"), "--roi-size", "32,32"],
                             env=env)
    assert bad.exit_code == 2 and "--roi-size" in bad.output


_MEASURE = textwrap.dedent(
    """
    import json, os, sys
    import numpy as np, torch
    from medimg.core import Image
    from medimg.inference import Predictor
    from medimg.inference.memory import estimate_peak_bytes
    from medimg.models import create_model

    def rss():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def hwm():
        with open("/proc/self/status") as f:
            return next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmHWM:"))

    torch.manual_seed(0)
    net = create_model("unet", in_channels=1, out_channels=8, channels=[4, 8, 16], strides=[2, 2]).eval()
    pred = Predictor(net, device="cpu", roi_size=[48, 48, 48], overlap=0.25, sw_batch_size=2, tta_flips=[],
                     preprocess=[{"name": "orient", "axcodes": "RAS"}, {"name": "resample", "spacing": [1.0, 1.0, 1.5]}])
    aff = np.diag([-0.8, 0.8, 2.0, 1.0])
    pred.predict(Image(torch.rand(1, 40, 40, 30), aff))  # warm-up: libraries, thread pools
    out = []
    for shape in json.loads(sys.argv[1]):
        img = Image(torch.rand(1, *shape), aff)
        prepared = pred.prepare(img)
        est = estimate_peak_bytes(pred.memory_case(prepared))
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        base = rss()
        labels = pred.predict(prepared)
        out.append([est, hwm() - base])
        del labels, prepared, img
    print(json.dumps(out))
    """
)


@pytest.mark.slow  # ~15 s of CPU: three cases up to 224x192x128
@pytest.mark.skipif(not os.access("/proc/self/clear_refs", os.W_OK), reason="needs Linux's resettable peak RSS")
def test_estimate_within_2x_of_measured_peak_rss(tmp_path):
    shapes = [[96, 96, 64], [160, 128, 96], [224, 192, 128]]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-c", _MEASURE, json.dumps(shapes)], capture_output=True, text=True,
                          env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    pairs = json.loads(proc.stdout.strip().splitlines()[-1])
    for shape, (est, measured) in zip(shapes, pairs):
        assert measured > 0
        assert 0.5 < est / measured < 2.0, f"{shape}: estimated {est / 1e6:.0f} MB, measured {measured / 1e6:.0f} MB"
