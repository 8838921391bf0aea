"""Benchmarks run end to end with --quick and write the docs/architecture.md §5 JSON schema.

Only the schema and agreement are asserted; timings are never asserted in tests.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# benchmark script -> peers its --quick run must include
BENCHMARKS = {
    "io_nifti.py": {"SimpleITK", "nibabel", "MONAI", "nibabel+deflate", "inflate zlib"},
    "io_dicom.py": {"pydicom_loop", "simpleitk", "monai"},
    "preprocess.py": {"monai"},
    "metrics_seg.py": {"monai"},
    "inference.py": {"monai", "monai_sw4"},
    "predict_folder.py": {"monai", "monai_default"},
    "train_cls.py": {"plain torchvision loop"},
    "augment.py": {"monai", "torchio"},
    "train.py": {"plain MONAI loop", "MONAI loop, channels-last"},
}


def _check_schema(doc: dict, name: str) -> None:
    assert set(doc) >= {"benchmark", "machine", "results", "ratios"}
    assert doc["benchmark"] == name
    m = doc["machine"]
    assert {"python", "platform", "cpu", "cores", "device", "versions"} <= set(m)
    assert isinstance(m["cores"], int) and m["cores"] >= 1
    assert isinstance(m["versions"], dict) and "numpy" in m["versions"]
    assert doc["results"], "no results"
    for r in doc["results"]:
        assert {"case", "tool", "seconds", "peak_mb", "agrees"} <= set(r)
        assert isinstance(r["case"], str) and isinstance(r["tool"], str)
        assert isinstance(r["seconds"], float) and r["seconds"] > 0
        assert r["peak_mb"] is None or isinstance(r["peak_mb"], (int, float))
        assert isinstance(r["agrees"], bool)
    for key, value in doc["ratios"].items():
        assert "/medimg" in key and isinstance(value, (int, float)) and value > 0


@pytest.mark.slow
@pytest.mark.parametrize("script", sorted(BENCHMARKS))
def test_benchmark_quick_json(tmp_path, script):
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / script), "--quick", "--repeats", "1", "--json", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads(out.read_text())
    _check_schema(doc, Path(script).stem)
    tools = {r["tool"] for r in doc["results"]}
    assert "medimg" in tools
    missing = BENCHMARKS[script] - tools
    assert not missing, f"peers missing from the run: {missing}"
    disagree = [(r["case"], r["tool"]) for r in doc["results"] if not r["agrees"]]
    assert not disagree, f"outputs disagree with medimg: {disagree}"
    assert "ratios (PEER/medimg" in proc.stdout  # the printed table
    # every peer of the first case has a plain ratio key
    first = doc["results"][0]["case"]
    for r in doc["results"]:
        if r["case"] == first and r["tool"] != "medimg" and r.get("peer", True):  # floors: no ratio
            assert f"{r['tool']}/medimg" in doc["ratios"]


@pytest.mark.slow
def test_inference_layers_prints_each_layer_and_the_choice():
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "inference.py"), "--layers"],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [line for line in proc.stdout.splitlines() if line.startswith(("Conv3d", "ConvTranspose3d"))]
    assert len(rows) == 18 and all(" *" in row for row in rows)  # one choice per layer
    assert sum("sub_pixel" in row for row in rows) == 3  # the UNet's three transposed convolutions
    assert "untuned" in proc.stdout.splitlines()[-1]
