"""The CLI speaks in CLI terms (issue 6, item 12): usage errors, hints, exit codes, `medimg list`."""

from __future__ import annotations

import shutil
import typing
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from medimg.cli.app import (
    EXIT_CONFIG,
    EXIT_FAILURE,
    EXIT_USAGE,
    DeidNaming,
    GantryTilt,
    MultiVolume,
    UnevenSpacing,
)
from medimg.cli.listing import first_sentence, type_text, yaml_value
from tests.conftest import run_cli as run

REPO = Path(__file__).resolve().parents[2]
BOX = set("┏┃━│┡╇┗└╭╮╰╯")


def _nifti(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(np.zeros((4, 4, 4), np.float32), np.eye(4)), str(path))
    return path


# ------------------------------------------------------------------------ exit codes
def test_exit_codes():
    assert (EXIT_FAILURE, EXIT_USAGE) == (1, 2)
    assert EXIT_CONFIG == EXIT_USAGE  # an invalid config is fixed like a bad command line


@pytest.mark.parametrize(
    "args, command, says",
    [
        (["predict", "--bogus"], "predict", "no such option: --bogus"),
        (["evaluate", "a"], "evaluate", "missing argument 'REF_DIR'"),
        (["evaluate", "a", "b", "--bootstrap", "many"], "evaluate", "invalid value for '--bootstrap'"),
        (["demo", "--minutes", "0"], "demo", "invalid value for '--minutes'"),
        (["info", ".", "--gantry-tilt", "rotate"], "info", "'rotate' is not one of 'error', 'shear', 'resample'"),
        (["predict", "m.pt", ".", "out", "--device", "gpu0"], "predict", "'gpu0' is not a device"),
        (["list", "models", "unet", "extra"], "list", "got unexpected extra argument"),
    ],
)
def test_usage_errors_share_one_exit_code_and_a_plain_message(args, command, says):
    res = run(*args)
    assert res.exit_code == EXIT_USAGE, res.output
    lines = res.output.splitlines()
    assert lines[0].startswith(f"usage: medimg {command} ")
    assert lines[1].startswith("error: ") and says in lines[1], res.output
    assert lines[2] == f"hint: see `medimg {command} --help`"
    assert not BOX & set(res.output) and "Traceback" not in res.output
    assert "Value error" not in res.output  # pydantic's wording of a bad choice


@pytest.mark.parametrize("args", [[], ["config"]])
def test_a_group_alone_shows_its_help_and_no_error(args):
    res = run(*args)
    assert res.exit_code == EXIT_USAGE
    assert "Usage" in res.output and "Commands" in res.output and "error:" not in res.output


def test_usage_line_names_arguments_in_capitals():
    res = run("predict", "--bogus")
    assert res.output.splitlines()[0] == "usage: medimg predict [OPTIONS] {CHECKPOINT} {INPUT} {OUTPUT_DIR}"
    res = run("config", "validate")  # several files: one name, repeated
    assert res.output.splitlines()[:2] == ["usage: medimg config validate [OPTIONS] {CONFIG}...",
                                           "error: missing argument 'CONFIG'"]


def test_help_lists_the_exit_codes():
    res = run("--help")
    assert res.exit_code == 0
    text = " ".join(res.output.split())
    assert "Exit codes: 0 success; 1 an input cannot be read" in text
    assert "2 usage or config error" in text and "130 interrupted" in text


def test_info_dicom_options_refused_for_nifti(tmp_path: Path):
    res = run("info", _nifti(tmp_path / "a.nii.gz"), "--series", "1.2.3")
    assert res.exit_code == EXIT_USAGE
    assert "error: invalid value for --series: applies to DICOM input only" in res.output


# ----------------------------------------------------------------------------- hints
def test_cli_hint_replaces_the_python_worded_hint(monkeypatch, tmp_path: Path):
    import medimg.cli.info as info_cli
    from medimg.core.errors import DicomSeriesError

    def fail(path, series=None, **options):
        raise DicomSeriesError("tilted", hint="pass gantry_tilt='shear'", cli_hint="add --gantry-tilt shear")

    monkeypatch.setattr(info_cli, "image_summary", fail)
    res = run("info", tmp_path)
    assert res.exit_code == EXIT_FAILURE
    assert res.output.splitlines() == ["error: tilted", "hint: add --gantry-tilt shear"]


def test_hint_without_cli_wording_is_kept(monkeypatch, tmp_path: Path):
    import medimg.cli.info as info_cli
    from medimg.core.errors import DicomError

    def fail(path, series=None, **options):
        raise DicomError("unreadable", hint="check the folder")

    monkeypatch.setattr(info_cli, "image_summary", fail)
    assert run("info", tmp_path).output.splitlines() == ["error: unreadable", "hint: check the folder"]


def test_medimg_error_hint_for():
    from medimg.core.errors import ConfigError, MedimgError

    err = MedimgError("m", hint="python words", cli_hint="cli words")
    assert (err.hint_for("python"), err.hint_for("cli")) == ("python words", "cli words")
    assert MedimgError("m", hint="h").hint_for("cli") == "h"
    assert ConfigError("m", hint="h").reworded("--x").hint_for("cli") == "--x"
    assert str(err) == "m\n  hint: python words"  # the Python API's text is unchanged


# ------------------------------------------------------------------------ demo config
@pytest.mark.parametrize("config", ["configs/demo.yaml", "medimg/configs/demo.yaml"])
def test_demo_config_validates_or_says_to_run_the_demo(config: str, tmp_path: Path):
    res = run("config", "validate", REPO / config)
    if res.exit_code == 0:  # the demo has been run: its data is there
        assert res.output.strip() == f"ok: {REPO / config}"
        return
    assert res.exit_code == EXIT_CONFIG
    assert "data.root" in res.output and "folder not found" in res.output
    assert "hint: this is the demo config, whose data `medimg demo` generates: run `medimg demo --output-dir" in res.output


def test_demo_config_copy_without_data_says_to_run_the_demo(tmp_path: Path, monkeypatch):
    (tmp_path / "cfg").mkdir()
    shutil.copy(REPO / "configs" / "demo.yaml", tmp_path / "cfg" / "demo.yaml")
    monkeypatch.chdir(tmp_path)
    res = run("config", "validate", "cfg/demo.yaml")
    assert res.exit_code == EXIT_CONFIG
    assert "run `medimg demo --output-dir runs/demo` first (it writes runs/demo/data)" in res.output
    (tmp_path / "runs" / "demo" / "data").mkdir(parents=True)  # what `medimg demo` writes
    res = run("config", "validate", "cfg/demo.yaml")
    assert res.exit_code == 0, res.output


def test_other_configs_get_no_demo_hint(tmp_path: Path):
    cfg = tmp_path / "exp.yaml"
    cfg.write_text("data: {root: nowhere, images: [t1.nii.gz]}\nmodel: {name: unet}\n")
    res = run("config", "validate", "--schema-only", cfg)
    assert res.exit_code == EXIT_CONFIG and "folder not found" in res.output
    assert "medimg demo" not in res.output


# ------------------------------------------------------------------------- the choices
@pytest.mark.parametrize(
    "alias, function, parameter",
    [
        (GantryTilt, "read_dicom", "gantry_tilt"),
        (UnevenSpacing, "read_dicom", "uneven_spacing"),
        (MultiVolume, "convert_dicom", "multi_volume"),
        (GantryTilt, "convert_dicom", "gantry_tilt"),
        (DeidNaming, "deidentify", "naming"),
    ],
)
def test_cli_choices_are_the_library_literals(alias, function, parameter):
    import medimg.io

    hint = typing.get_type_hints(getattr(medimg.io, function))[parameter]
    if typing.get_origin(hint) is not typing.Literal:
        pytest.xfail(f"{function}({parameter}=...) is typed {hint}, not a Literal, in the library")
    assert typing.get_args(alias) == typing.get_args(hint)


# ---------------------------------------------------------------------------- list
def test_list_is_plain_text_with_whole_sentences_and_parameters():
    res = run("list", "transforms")
    assert res.exit_code == 0, res.output
    out = res.output
    assert not BOX & set(out)
    # whole first sentences, also where they run over a line or into the next paragraph
    assert ("spatial_pad: Pad each axis to at least size voxels, centred (extra voxel after); "
            "0 or background probability 1 outside.") in " ".join(out.split())
    assert "additive Gaussian noise with a random std." in " ".join(out.split())
    assert "orient: Permute and flip voxel axes so they point along axcodes (e.g. RAS).\n" in out
    # parameters with types and defaults, as a config writes them
    assert "    spacing: list[float | null]  (required)\n" in out
    assert "    prob: float = 0.5\n" in out and "    axes: list[int] = [0, 1, 2]\n" in out
    assert "random_crop (random: augment only): " in out


def test_list_skips_the_arguments_the_trainer_passes():
    out = run("list", "optimizers").output
    assert "    betas: [float, float] = [0.9, 0.999]\n" in out and "params" not in out.replace("PARAMETER", "")
    out = run("list", "schedulers").output
    assert "    max_epochs: int = 100\n" in out and "optimizer:" not in out.split("\n", 2)[2]
    assert "none: Constant learning rate.\n    (no parameters)\n" in out


def test_list_metrics_show_their_parameters():
    out = run("list", "metrics").output
    assert "nsd: Normalised surface Dice at tolerance_mm (default 2 mm).\n    tolerance_mm: float = 2.0\n" in out
    assert "hd95 (mm): " in out


def test_list_one_component_describes_each_parameter():
    res = run("list", "transforms", "resample")
    assert res.exit_code == 0, res.output
    assert res.output.splitlines()[:4] == [
        "resample: Resample to a target voxel spacing (mm), keeping the field of view.",
        "parameters:",
        "    spacing: list[float | null]  (required)",
        "        target spacing in mm per spatial axis (I, J, K); null or 0 keeps that axis as it is.",
    ]
    assert "  preprocess:\n    - {name: resample, spacing: <list[float | null]>}" in res.output
    res = run("list", "models", "unte")
    assert res.exit_code == EXIT_USAGE
    assert "error: unknown model 'unte'" in res.output and "did you mean 'unet'?" in res.output


@pytest.mark.parametrize(
    "doc, sentence",
    [
        ("Adam (Kingma & Ba 2015).", "Adam (Kingma & Ba 2015)."),
        ("Orient along ``axcodes`` (e.g. RAS). More.", "Orient along axcodes (e.g. RAS)."),
        ("MONAI's U-Net (Kerfoot et al. 2018).\n\nArgs:\n    x: y.", "MONAI's U-Net (Kerfoot et al. 2018)."),
        ("Pad to ``size``; 0 or\nbackground 1 outside. Inverse: crop.", "Pad to size; 0 or background 1 outside."),
        ("Changes, each with a probability:\n\nscale; gamma. Applied in order.", "Changes, each with a probability: scale; gamma."),
        ("predicted volume, ml", "Predicted volume, ml."),
        ("Keep ``None`` axes (see :func:`~medimg.core.affine.scaled_affine`).", "Keep null axes (see scaled_affine)."),
        ("", ""),
    ],
)
def test_first_sentence(doc: str, sentence: str):
    assert first_sentence(doc) == sentence


@pytest.mark.parametrize(
    "annotation, text",
    [
        ("Sequence[int]", "list[int]"),
        ("int | Sequence[int]", "int | list[int]"),
        ("Sequence[float | None]", "list[float | null]"),
        ("Optional[collections.abc.Sequence[str]]", "list[str] | null"),
        ("tuple[float, float]", "[float, float]"),
        ("tuple[int, ...]", "list[int]"),
        ("Mapping[Any, int]", "dict[any, int]"),
        ("Literal['a', 'b']", "'a' | 'b'"),
        (int, "int"),
        (typing.Optional[float], "float | null"),
    ],
)
def test_type_text(annotation, text: str):
    assert type_text(annotation) == text


def test_yaml_value():
    assert [yaml_value(v) for v in (None, True, 3, 0.5, "RAS", "", "yes", (1, 2), {1: "a b"})] == [
        "null", "true", "3", "0.5", "RAS", "''", "'yes'", "[1, 2]", "{1: 'a b'}"
    ]


def test_predict_device_checked_against_the_machine(monkeypatch):
    import torch
    import typer

    from medimg.cli.predict import _check_device, _check_device_available

    assert _check_device(" CUDA:1 ") == "cuda:1" and _check_device("auto") == "auto"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    _check_device_available("cuda")
    _check_device_available("cuda:1")
    with pytest.raises(typer.BadParameter, match=r"'cuda:2': this machine has 2 CUDA GPU\(s\) \(cuda:0..cuda:1\)"):
        _check_device_available("cuda:2")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(typer.BadParameter, match="this machine has no CUDA GPU; use --device auto or cpu"):
        _check_device_available("cuda")


def test_check_names_is_a_usage_error_with_close_matches():
    import typer

    from medimg.cli.app import _check_names

    _check_names("--metrics", ["dice", "HD95"], "metrics")
    with pytest.raises(typer.BadParameter, match=r"unknown metric 'dcie'; did you mean 'dice'\? see `medimg list metrics`"):
        _check_names("--metrics", ["dice", "dcie"], "metrics")
