"""The notebooks in ``notebooks/`` run top to bottom at reduced size, so they never rot.

Each notebook's cell tagged ``parameters`` is replaced by smaller values; the copy is
executed by nbclient with the ``python3`` kernel (the interpreter running the tests) in a
temporary folder. A cell that raises fails the test.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat", reason="the notebook tests need nbformat (medimg[dev])")
nbclient = pytest.importorskip("nbclient", reason="the notebook tests need nbclient (medimg[dev])")
pytest.importorskip("ipykernel", reason="the notebook tests need ipykernel (medimg[dev])")
pytest.importorskip("matplotlib", reason="the notebooks draw figures (medimg[plots])")

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def run_notebook(name: str, parameters: str, cwd: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    """Execute ``notebooks/NAME`` with its parameters cell replaced; returns the notebook."""
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{name}: expected one cell tagged 'parameters', found {len(tagged)}"
    tagged[0].source = parameters
    env_path = os.environ.get("PYTHONPATH", "")
    root = str(NOTEBOOKS.parent)
    if root not in env_path.split(os.pathsep):  # the kernel imports this checkout's medimg
        monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (root, env_path) if p))
    client = nbclient.NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}
    )
    client.execute()  # raises CellExecutionError on a failing cell
    return nb


def text_of(nb: dict) -> str:
    """Everything the cells printed (stream outputs and plain-text results)."""
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream":
                parts.append(out["text"])
            elif "data" in out:
                parts.append(out["data"].get("text/plain", ""))
    return "\n".join(parts)


def images_of(nb: dict) -> int:
    return sum("image/png" in out.get("data", {}) for c in nb.cells for out in c.get("outputs", []))


def test_notebooks_are_committed_without_outputs():
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert not cell.outputs and cell.execution_count is None, f"{path.name}: strip the outputs"
    assert {p.name for p in NOTEBOOKS.glob("*.ipynb")} >= {"01_quickstart.ipynb", "02_classification.ipynb"}


@pytest.mark.slow
def test_quickstart_notebook_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    nb = run_notebook(
        "01_quickstart.ipynb",
        'WORK_DIR = "work"\nCASES = (3, 1, 2)\nSHAPE = (32, 32, 32)\nMAX_EPOCHS = 2\n'
        'ITERATIONS_PER_EPOCH = 3\nMAX_MINUTES = 2.0\nDEVICE = "cpu"',
        tmp_path,
        monkeypatch,
    )
    text = text_of(nb)
    work = tmp_path / "work"
    assert (work / "run" / "best.pt").exists()
    assert sorted(p.name for p in (work / "predictions").glob("*.nii.gz")) == ["case_004.nii.gz", "case_005.nii.gz"]
    summary = json.loads((work / "eval" / "summary.json").read_text())
    for name in ("ellipsoid", "sphere"):
        value = summary[name]["dice"]["mean"]
        assert math.isfinite(value) and f"Dice {name}: {value:.3f}" in text
    assert (work / "eval" / "dice_boxplot.png").exists()
    assert images_of(nb) >= 2  # the slices and the boxplot


@pytest.mark.slow
def test_classification_notebook_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    nb = run_notebook(
        "02_classification.ipynb",
        'WORK_DIR = "work"\nUSE_PNEUMONIAMNIST = False\nPNEUMONIAMNIST_NPZ = ""\n'
        'CASES = (96, 32, 32)\nMAX_EPOCHS = 3\nBATCH_SIZE = 32\nDEVICE = "cpu"',
        tmp_path,
        monkeypatch,
    )
    text = text_of(nb)
    work = tmp_path / "work"
    assert (work / "eval" / "roc_curve.png").exists()
    assert list((work / "gradcam").glob("test_*_gradcam.png"))
    auc_line = next(line for line in text.splitlines() if line.startswith("auc: "))
    assert float(auc_line.split()[1]) > 0.8, auc_line  # a bright blob vs noise; chance is 0.5
    assert images_of(nb) >= 2  # the ROC curve and the Grad-CAM overlay
