"""The medimg command line: each command's happy path and its errors, no tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import yaml

from tests.conftest import run_cli as run

REPO = Path(__file__).resolve().parents[2]


def _nifti(path: Path, data: np.ndarray, affine: np.ndarray | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(data, np.diag([2.0, 3.0, 4.0, 1.0]) if affine is None else affine), str(path))
    return path


@pytest.fixture
def good_config(tmp_path: Path) -> Path:
    (tmp_path / "data").mkdir(exist_ok=True)
    path = tmp_path / "exp.yaml"
    path.write_text(
        textwrap.dedent(
            """
            experiment: {name: cli}
            data: {root: data, images: [t1.nii.gz], label: label.nii.gz}
            preprocess:
              - {name: orient, axcodes: RAS}
              - {name: resample, spacing: [1.0, 1.0, 1.0]}
            augment:
              - {name: random_flip, prob: 0.5}
            model: {name: unet, channels: [8, 16], strides: [2]}
            inference: {roi_size: [32, 32, 32]}
            """
        )
    )
    return path


@pytest.fixture
def bad_config(tmp_path: Path) -> Path:
    (tmp_path / "data").mkdir(exist_ok=True)
    path = tmp_path / "bad.yaml"
    path.write_text(
        "data: {root: data, images: [t1.nii.gz]}\n"
        "preprocess:\n  - {name: resample, spacing: [1, 1]}\n"
        "model:\n  name: unet\n  num_res_unit: 2\n"
        "trainer:\n  max_epoch: 3\n"
    )
    return path


def _no_torch_after(argv: list[str], cwd: Path) -> subprocess.CompletedProcess:
    code = (
        "import sys\n"
        f"sys.argv = {['medimg', *argv]!r}\n"
        "from medimg.cli import main\n"
        "try:\n    main()\nexcept SystemExit as e:\n    code = e.code\nelse:\n    code = 0\n"
        "heavy = sorted(m for m in ('torch', 'monai', 'numpy', 'pydicom', 'nibabel') if m in sys.modules)\n"
        "print('HEAVY=' + ','.join(heavy)); print('CODE=' + str(code))\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=120,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)},
    )


def test_help_does_not_import_torch(tmp_path: Path):
    res = _no_torch_after(["--help"], tmp_path)
    assert "HEAVY=\n" in res.stdout and "CODE=0" in res.stdout, res.stdout + res.stderr
    assert "train" in res.stdout and "predict" in res.stdout and "config" in res.stdout


def test_schema_only_validate_does_not_import_torch(good_config: Path):
    res = _no_torch_after(["config", "validate", "--schema-only", str(good_config)], good_config.parent)
    assert "HEAVY=\n" in res.stdout and "CODE=0" in res.stdout, res.stdout + res.stderr
    assert f"ok: {good_config}" in res.stdout


def test_console_script_version():
    exe = Path(sys.executable).with_name("medimg")
    if not exe.exists():
        pytest.fail(f"console script not installed next to {sys.executable} (pip install -e .)")
    res = subprocess.run([str(exe), "--version"], capture_output=True, text=True, timeout=120)
    from medimg import __version__

    assert res.returncode == 0 and res.stdout.strip() == f"medimg {__version__}"


def test_no_command_shows_help():
    res = run()
    assert "Usage" in res.output and "Commands" in res.output


# ------------------------------------------------------------------------- config
def test_config_validate_ok_with_real_registries(good_config: Path):
    res = run("config", "validate", good_config)
    assert res.exit_code == 0, res.output
    assert res.output.strip() == f"ok: {good_config}"


def test_config_validate_reports_every_problem(bad_config: Path, good_config: Path):
    res = run("config", "validate", bad_config, good_config)
    assert res.exit_code == 2
    out = res.output
    assert f"error: invalid config '{bad_config}' (3 problems):" in out
    w = len(f"{bad_config}:3:22")
    assert f"  {bad_config}:3:22  preprocess[0].spacing   expected 3 values (mm for I, J, K), got 2\n" in out
    assert f"  {f'{bad_config}:6:3':<{w}}  model.num_res_unit      unknown key; did you mean 'num_res_units'?" in out
    assert f"  {f'{bad_config}:8:3':<{w}}  trainer.max_epoch       unknown key; did you mean 'max_epochs'?" in out
    assert f"ok: {good_config}" in out  # every file is checked
    assert "1 of 2 configs are invalid" in out
    assert "Traceback" not in out


def test_config_validate_missing_file_and_override(tmp_path: Path, good_config: Path):
    res = run("config", "validate", tmp_path / "none.yaml")
    assert res.exit_code == 2 and "file not found" in res.output and "Traceback" not in res.output
    res = run("config", "validate", good_config, "--set", "trainer.max_epochz=3")
    assert res.exit_code == 2
    assert "--set  trainer.max_epochz   unknown key; did you mean 'max_epochs'?" in res.output
    res = run("config", "validate", good_config, "--set", "trainer.max_epochs")
    assert res.exit_code == 2 and "expected KEY=VALUE" in res.output


def test_config_show_prints_resolved_yaml(good_config: Path):
    res = run("config", "show", good_config, "--set", "trainer.max_epochs=4", "-s", "preprocess[1].spacing=[2, 2, 2]")
    assert res.exit_code == 0, res.output
    data = yaml.safe_load(res.stdout)
    assert data["trainer"]["max_epochs"] == 4
    assert data["preprocess"][1] == {"name": "resample", "spacing": [2, 2, 2]}
    assert data["data"]["root"] == str(good_config.parent / "data")
    assert data["trainer"]["batch_size"] == 2  # defaults filled in


# --------------------------------------------------------------------------- list
def test_list_kinds():
    res = run("list", "transforms")
    assert res.exit_code == 0, res.output
    assert "resample" in res.output and "random_flip" in res.output
    res = run("list", "metrics")
    assert "dice" in res.output and "hd95" in res.output
    res = run("list")
    for kind in ("models", "transforms", "losses", "metrics", "optimizers", "schedulers"):
        assert f"{kind} (" in res.output
    res = run("list", "modles")
    assert res.exit_code == 2
    assert "error: unknown component kind 'modles'" in res.output and "did you mean 'models'?" in res.output


# --------------------------------------------------------------------------- info
def test_info_nifti_json_and_table(tmp_path: Path):
    data = np.arange(4 * 5 * 6, dtype=np.float32).reshape(4, 5, 6)
    path = _nifti(tmp_path / "img.nii.gz", data)
    res = run("info", path, "--json")
    assert res.exit_code == 0, res.output
    info = json.loads(res.stdout)
    assert info["shape"] == [1, 4, 5, 6] and info["spatial_shape"] == [4, 5, 6]
    assert info["spacing_mm"] == [2.0, 3.0, 4.0] and info["axcodes"] == "RAS"
    assert info["dtype"] == "float32"
    assert info["intensity"]["min"] == 0.0 and info["intensity"]["max"] == 119.0
    assert info["intensity"]["mean"] == pytest.approx(59.5)
    res = run("info", path)
    assert res.exit_code == 0 and "RAS" in res.output and "(2, 3, 4)" in res.output
    assert "max 119" in res.output


def test_info_label_values(tmp_path: Path):
    data = np.zeros((4, 4, 4), dtype=np.uint8)
    data[1:3, 1:3, 1:3] = 2
    info = json.loads(run("info", _nifti(tmp_path / "seg.nii.gz", data), "--json").stdout)
    assert info["values"] == [0, 2] and info["dtype"] in ("uint8", "int16", "int32", "int64")


def test_info_errors_without_traceback(tmp_path: Path):
    res = run("info", tmp_path / "missing.nii.gz")
    assert res.exit_code == 1
    assert f"error: '{tmp_path / 'missing.nii.gz'}' does not exist" in res.output
    assert "Traceback" not in res.output
    junk = tmp_path / "junk.nii.gz"
    junk.write_bytes(b"not an image at all")
    res = run("info", junk)
    assert res.exit_code == 1 and res.output.startswith("error: ") and "Traceback" not in res.output


def test_debug_shows_the_exception(tmp_path: Path):
    res = run("--debug", "info", tmp_path / "missing.nii.gz")
    from medimg.core import ImageReadError

    assert isinstance(res.exception, ImageReadError)


def test_unexpected_error_is_one_line(monkeypatch, tmp_path: Path):
    import medimg.cli.info as cli_app

    def boom(path, series=None, **options):
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr(cli_app, "image_summary", boom)
    path = _nifti(tmp_path / "a.nii.gz", np.zeros((2, 2, 2), np.float32))
    res = run("info", path)
    assert res.exit_code == 1
    # one line in CLI terms: the message, never the Python class name (issue 6, item 12)
    assert res.output.splitlines()[0] == "error: boom"
    assert "run with --debug for the traceback" in res.output and "second line" not in res.output

    def missing(path, series=None, **options):
        raise KeyError("PixelData")  # str() of a KeyError is only the key: say what it means

    monkeypatch.setattr(cli_app, "image_summary", missing)
    assert run("info", path).output.splitlines()[0] == "error: missing entry 'PixelData'"


# ---------------------------------------------------------------- train / predict
def test_train_bad_config_exit_2(bad_config: Path):
    res = run("train", bad_config)
    assert res.exit_code == 2 and "(3 problems)" in res.output and "Traceback" not in res.output


def test_predict_errors(tmp_path: Path):
    res = run("predict", tmp_path / "none.pt", tmp_path, tmp_path / "out")
    assert res.exit_code == 1 and f"error: checkpoint '{tmp_path / 'none.pt'}' not found" in res.output
    assert "hint: give the .pt file" in res.output
    ckpt = tmp_path / "x.pt"
    ckpt.write_bytes(b"garbage")
    res = run("predict", ckpt, tmp_path / "nothing", tmp_path / "out")
    assert res.exit_code == 1 and "does not exist" in res.output
    res = run("predict", ckpt, tmp_path, tmp_path / "out")
    assert res.exit_code == 1 and res.output.startswith("error: ") and "Traceback" not in res.output


def test_predict_folder_end_to_end(tmp_path: Path):
    import torch

    from medimg.inference import save_checkpoint
    from medimg.models import create_model

    params = {"in_channels": 1, "out_channels": 2, "spatial_dims": 3, "channels": [4, 8], "strides": [2]}
    torch.manual_seed(0)
    model = create_model("unet", **params)
    ckpt = save_checkpoint(
        tmp_path / "m.pt", model, model_name="unet", model_params=params, label_names=["bg", "fg"],
        preprocess=[{"name": "orient", "axcodes": "RAS"}],
        inference={"roi_size": [16, 16, 16], "overlap": 0.25, "sw_batch_size": 2},
    )
    inp = tmp_path / "in"
    rng = np.random.default_rng(0)
    _nifti(inp / "case1.nii.gz", rng.normal(size=(20, 18, 16)).astype(np.float32))
    (inp / "case2.nii.gz").write_bytes(b"broken file")
    res = run("predict", ckpt, inp, tmp_path / "out", "--device", "cpu", "--overlap", "0.5", "--tta")
    assert res.exit_code == 1, res.output  # one case failed; the other was still predicted
    assert "case1" in res.output and "ok" in res.output and "case2" in res.output and "failed" in res.output
    assert "1 case(s) failed" in res.output
    out = nib.load(str(tmp_path / "out" / "case1.nii.gz"))
    assert out.shape[:3] == (20, 18, 16)
    (inp / "case2.nii.gz").unlink()
    res = run("predict", ckpt, inp, tmp_path / "out2", "--device", "cpu", "--no-tta")
    assert res.exit_code == 0, res.output


# ----------------------------------------------------------------------- evaluate
def test_evaluate_folders(tmp_path: Path):
    ref = np.zeros((8, 8, 8), np.uint8)
    ref[2:6, 2:6, 2:6] = 1
    pred = ref.copy()
    pred[2, 2:6, 2:6] = 0  # 48 of 64 voxels: Dice = 2*48/(48+64)
    _nifti(tmp_path / "ref" / "c1.nii.gz", ref)
    _nifti(tmp_path / "pred" / "c1.nii.gz", pred)
    res = run("evaluate", tmp_path / "pred", tmp_path / "ref", "--metrics", "dice,jaccard",
              "--label-names", "background,cube", "--bootstrap", "0", "-o", tmp_path / "eval")
    assert res.exit_code == 0, res.output
    assert "cube:" in res.output and f"{2 * 48 / 112:.4f}" in res.output
    summary = json.loads((tmp_path / "eval" / "summary.json").read_text())
    assert summary["cube"]["dice"]["mean"] == pytest.approx(2 * 48 / 112)
    res = run("evaluate", tmp_path / "nope", tmp_path / "ref")
    assert res.exit_code == 1 and f"error: prediction folder '{tmp_path / 'nope'}' does not exist" in res.output
    res = run("evaluate", tmp_path / "pred", tmp_path / "ref", "--metrics", "dcie")
    # a misspelt metric is a usage error (exit 2), reported before any case is read
    assert res.exit_code == 2 and "unknown metric 'dcie'" in res.output and "Traceback" not in res.output
    assert "error: invalid value for --metrics: unknown metric 'dcie'; did you mean 'dice'?" in res.output


def test_evaluate_case_folders_with_label_map(tmp_path: Path):
    """BraTS-style references (REF/<case>/<file>) scored as whole tumour via --label-map."""
    ref = np.zeros((8, 8, 8), np.uint8)
    ref[2:6, 2:6, 2:6] = 2
    ref[3:5, 3:5, 3:5] = 4
    _nifti(tmp_path / "ref" / "c1" / "OTMultiClass.nii.gz", ref)
    _nifti(tmp_path / "ref" / "c1" / "brainmask.nii.gz", np.ones_like(ref))
    _nifti(tmp_path / "pred" / "c1.nii.gz", (ref > 0).astype(np.uint8))
    res = run("evaluate", tmp_path / "pred", tmp_path / "ref", "--metrics", "dice", "--bootstrap", "0",
              "--ref-name", "OTMultiClass.nii.gz", "--label-map", "2:1,4:1", "-o", tmp_path / "eval")
    assert res.exit_code == 0, res.output
    summary = json.loads((tmp_path / "eval" / "summary.json").read_text())
    assert summary["label_1"]["dice"]["mean"] == pytest.approx(1.0)
    res = run("evaluate", tmp_path / "pred", tmp_path / "ref", "--label-map", "2=1")
    assert res.exit_code == 2 and "--label-map: cannot read '2=1'" in res.output


def test_evaluate_exit_1_on_missing_or_truncated_cases_and_a_file_pair(tmp_path: Path):
    """Issue 6 §7: 4 of 6 predictions missing, or 2 truncated, exit 1 (README); a file pair works."""
    ref = np.zeros((8, 8, 8), np.uint8)
    ref[2:6, 2:6, 2:6] = 1
    for i in range(6):
        _nifti(tmp_path / "ref" / f"c{i}.nii.gz", ref)
        _nifti(tmp_path / "pred" / f"c{i}.nii.gz", ref)
    (tmp_path / "pred" / "labels.json").write_text('{"0": "background", "1": "cube"}')
    res = run("evaluate", tmp_path / "pred", tmp_path / "ref", "--metrics", "dice", "--bootstrap", "0")
    assert res.exit_code == 0, res.output
    for i in range(2):
        raw = (tmp_path / "pred" / f"c{i}.nii.gz").read_bytes()
        (tmp_path / "pred" / f"c{i}.nii.gz").write_bytes(raw[: len(raw) // 2])
    res = run("evaluate", tmp_path / "pred", tmp_path / "ref", "--metrics", "dice", "--bootstrap", "0")
    assert res.exit_code == 1
    assert "error: 2 case(s) failed; the summary covers the 4 case(s) scored" in res.output
    for i in range(4):
        (tmp_path / "pred" / f"c{i}.nii.gz").unlink()
    res = run("evaluate", tmp_path / "pred", tmp_path / "ref", "--metrics", "dice", "--bootstrap", "0")
    assert res.exit_code == 1 and "missing prediction: c0, c1, c2, c3" in res.output
    assert "error: 4 case(s) without a prediction; the summary covers the 2 case(s) scored" in res.output
    assert "cube:" in res.output and "(n=2)" in res.output  # what was scored is still shown
    res = run("evaluate", tmp_path / "pred" / "c5.nii.gz", tmp_path / "ref" / "c0.nii.gz", "--metrics", "dice",
              "--bootstrap", "0")
    assert res.exit_code == 0, res.output
    assert "cube:" in res.output and "1.0000" in res.output and "1 evaluated" in res.output


def test_evaluate_label_mismatch_names_both_sets_and_the_label_map(tmp_path: Path):
    ref = np.zeros((8, 8, 8), np.uint8)
    ref[2:6, 2:6, 2:6] = 2
    ref[3:5, 3:5, 3:5] = 4
    _nifti(tmp_path / "ref" / "c1.nii.gz", ref)
    _nifti(tmp_path / "pred" / "c1.nii.gz", (ref > 0).astype(np.uint8))
    (tmp_path / "pred" / "labels.json").write_text('{"0": "background", "1": "tumour"}')
    res = run("evaluate", tmp_path / "pred", tmp_path / "ref", "--metrics", "dice", "--bootstrap", "0")
    assert res.exit_code == 1 and "Traceback" not in res.output
    assert "error: the references hold values 2, 4 that are no prediction class" in res.output
    assert "reference values {0, 2, 4} in 1 case(s); prediction classes {0 (background), 1 (tumour)}" in res.output
    assert "hint: pass --label-map 2:1,4:1 to score them as 'tumour'" in res.output
    res = run("evaluate", tmp_path / "pred", tmp_path / "ref", "--metrics", "dice", "--bootstrap", "0",
              "--label-map", "2:1,4:1")
    assert res.exit_code == 0, res.output
    assert "tumour:" in res.output and "1.0000" in res.output


# --------------------------------------------------------------------- convert / deid
def test_convert_and_deid_errors(tmp_path: Path):
    res = run("convert", tmp_path / "none", tmp_path / "out")
    assert res.exit_code == 1 and "does not exist" in res.output
    res = run("convert", tmp_path, tmp_path / "out", "--gantry-tilt", "rotate")
    assert res.exit_code == 2 and "'rotate' is not one of" in res.output
    res = run("deid", tmp_path / "none", tmp_path / "out")
    assert res.exit_code == 1 and "does not exist" in res.output


def test_convert_and_deid_pydicom_ct(tmp_path: Path):
    pydicom_data = pytest.importorskip("pydicom.data")
    src = Path(pydicom_data.get_testdata_file("CT_small.dcm"))
    folder = tmp_path / "dicom"
    folder.mkdir()
    (folder / "ct.dcm").write_bytes(src.read_bytes())
    res = run("convert", folder, tmp_path / "nifti")
    assert res.exit_code == 0, res.output
    assert "converted 1 of 1 series" in res.output
    assert len(list((tmp_path / "nifti").glob("*.nii.gz"))) == 1
    res = run("deid", folder, tmp_path / "anon", "--secret", "k", "--mapping", tmp_path / "map.csv")
    assert res.exit_code == 0, res.output
    assert "de-identified 1 of 1 files" in res.output and (tmp_path / "map.csv").exists()
    import pydicom

    [out] = list((tmp_path / "anon").rglob("*.dcm"))
    assert str(pydicom.dcmread(out).PatientName) != str(pydicom.dcmread(src).PatientName)


@pytest.mark.slow
def test_train_tiny_run_writes_run_folder(tmp_path: Path):
    from medimg.data.synthetic import make_synthetic_segmentation

    make_synthetic_segmentation(tmp_path / "data", n_train=2, n_val=1, n_test=1, shape=(16, 16, 16))
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(
        textwrap.dedent(
            """
            experiment: {name: tiny}
            data:
              root: data
              images: [t1.nii.gz, t2.nii.gz]
              label: label.nii.gz
              label_names: [background, ellipsoid, sphere]
            preprocess: [{name: orient, axcodes: RAS}, {name: normalize_intensity}]
            model: {name: unet, channels: [4, 8], strides: [2]}
            optimizer: {name: adamw, lr: 0.01}
            trainer: {max_epochs: 2, batch_size: 2, device: cpu}
            inference: {roi_size: [16, 16, 16], sw_batch_size: 2}
            """
        )
    )
    res = run("train", cfg, "--set", "trainer.max_epochs=1", "--output-dir", tmp_path / "run")
    assert res.exit_code == 0, res.output
    run_dir = tmp_path / "run"
    assert "trained tiny" in res.output and str(run_dir) in res.output
    from medimg.config import load_config

    resolved = load_config(run_dir / "config.resolved.yaml")
    assert resolved.trainer.max_epochs == 1 and resolved.data.root == tmp_path / "data"
    env = json.loads((run_dir / "environment.json").read_text())
    assert env["versions"]["torch"] and "git" in env
    assert (run_dir / "config.original.yaml").read_text() == cfg.read_text()
    assert list(run_dir.glob("*.pt")) or list(run_dir.rglob("*.pt"))
    # the data has a test split: the best checkpoint is scored on it and its mean Dice printed
    assert (run_dir / "test" / "summary.json").is_file() and "test mean Dice" in res.output


def test_info_dicom_series(shared_data: Path):
    folder = shared_data / "dicom" / "torchio_ct"
    if not folder.is_dir():
        pytest.skip(f"real data not found: {folder}")
    res = run("info", folder, "--json")
    assert res.exit_code == 0, res.output
    info = json.loads(res.stdout)
    assert info["spatial_shape"] == [88, 128, 17] and info["spacing_mm"] == [2.0, 2.0, 2.0]
    assert info["series"]["modality"] == "CT" and info["series"]["num_files"] == 17
    res = run("info", folder)
    assert res.exit_code == 0 and "Implicit VR Little Endian" in res.output and "num files" in res.output
    assert "PatientName" not in res.output and "Doe" not in res.output


def test_info_dicom_folder_with_several_series(tmp_path: Path, shared_data: Path):
    """A folder holding two series: a CLI-usable hint, then `--series KEY` picks one."""
    import shutil

    src = shared_data / "dicom" / "torchio_ct"
    ct = shared_data / "dicom" / "highdicom" / "ct_image.dcm"
    if not src.is_dir() or not ct.is_file():
        pytest.skip("shared DICOM data absent")
    folder = tmp_path / "mixed"
    shutil.copytree(src, folder)
    shutil.copy(ct, folder / "other.dcm")
    res = run("info", folder)
    assert res.exit_code == 1 and "Traceback" not in res.output
    assert "holds 2 DICOM image series" in res.output
    assert "medimg info PATH --series KEY" in res.output
    from medimg.io import find_series

    keys = {s.num_files: s.key for s in find_series(folder)}
    info = json.loads(run("info", folder, "--series", keys[17], "--json").stdout)
    assert info["spatial_shape"] == [88, 128, 17]
    res = run("info", folder, "--series", "nope")
    assert res.exit_code == 1 and "no DICOM series 'nope'" in res.output


def test_module_entry_point_for_torchrun():
    """`torchrun ... -m medimg.cli train CONFIG` (README) needs `python -m medimg.cli`."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "medimg.cli", "--version"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().startswith("medimg ")
