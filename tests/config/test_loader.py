"""load_config: schema errors with file:line:col, did-you-mean, overrides, paths."""

from __future__ import annotations

from pathlib import Path

import pytest

from medimg.config import ExperimentConfig, apply_overrides, format_key, load_config, parse_override
from medimg.core import ConfigError


def _load(path, overrides=(), **kw) -> ExperimentConfig:
    kw.setdefault("check_components", False)
    return load_config(path, overrides, **kw)


def _problems(path, overrides=(), **kw) -> list[tuple[str, str, str]]:
    with pytest.raises(ConfigError) as info:
        _load(path, overrides, **kw)
    return info.value.problems


def test_good_config_loads_with_defaults_and_absolute_paths(good: Path, tmp_path: Path, monkeypatch):
    monkeypatch.chdir("/")  # relative paths in the file follow the file, not the cwd
    cfg = _load(good)
    assert cfg.experiment.name == "brats"
    assert cfg.data.root == tmp_path / "data"
    assert cfg.data.root.is_absolute()
    assert cfg.preprocess[1].params == {"spacing": [1.0, 1.0, 1.0]}
    assert cfg.trainer.max_epochs == 3 and cfg.trainer.batch_size == 2  # default kept
    assert cfg.inference.roi_size == [96, 96, 96]


def test_the_architecture_example_exact_text(write, registries, tmp_path: Path, monkeypatch):
    (tmp_path / "data").mkdir()
    write(
        """
        data:
          root: data
          images: [flair.nii.gz]
        preprocess:
          - name: orient
          - name: resample
            spacing: [1, 1]
        model:
          name: tiny_net
          in_channels: 1
          num_clases: 4
        """,
        name="brats.yaml",
    )
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as info:
        load_config("brats.yaml")
    assert info.value.message == (
        "invalid config 'brats.yaml' (2 problems):\n"
        "  brats.yaml:7:5   preprocess[1].spacing   expected 3 values (mm for I, J, K), got 2\n"
        "  brats.yaml:11:3  model.num_clases        unknown key; did you mean 'num_classes'?"
    )
    assert [p[1] for p in info.value.problems] == ["preprocess[1].spacing", "model.num_clases"]


def test_unknown_section_and_key_did_you_mean(write, tmp_path):
    (tmp_path / "d").mkdir()
    path = write(
        """
        data:
          root: d
          images: [a.nii.gz]
          label_name: [bg, fg]
        model:
          name: unet
        trainr:
          max_epochs: 3
        """
    )
    problems = _problems(path)
    by_key = {key: (loc, msg) for loc, key, msg in problems}
    assert by_key["data.label_name"][0] == f"{path}:4:3"
    assert by_key["data.label_name"][1].startswith("unknown key; did you mean 'label_names'")
    assert (f"{path}:7:1", "trainr", "unknown key; did you mean 'trainer'?") in problems
    assert len(problems) == 2


def test_unknown_key_without_close_match_lists_allowed(write, tmp_path):
    (tmp_path / "d").mkdir()
    path = write("data: {root: d, images: [a]}\nmodel: {name: unet}\ntrainer: {zzz: 1}\n")
    [(loc, key, msg)] = _problems(path)
    assert key == "trainer.zzz" and loc == f"{path}:3:11"
    assert msg.startswith("unknown key; allowed: ") and "max_epochs" in msg


def test_wrong_type_literal_and_range(write, tmp_path):
    (tmp_path / "d").mkdir()
    path = write(
        """
        experiment:
          task: detection
        data: {root: d, images: [a]}
        model: {name: unet}
        trainer:
          batch_size: two
          max_epochs: 0
        inference:
          overlap: 1.5
        """
    )
    problems = {key: (loc, msg) for loc, key, msg in _problems(path)}
    assert problems["experiment.task"] == (
        f"{path}:2:3",
        "input should be 'segmentation' or 'classification' (got 'detection')",
    )
    assert problems["trainer.batch_size"][0] == f"{path}:6:3"
    assert "valid integer" in problems["trainer.batch_size"][1] and "(got 'two')" in problems["trainer.batch_size"][1]
    assert "greater than or equal to 1" in problems["trainer.max_epochs"][1]
    assert "less than 1" in problems["inference.overlap"][1]
    assert len(problems) == 4


def test_missing_required_located_at_parent(write):
    path = write(
        """
        experiment:
          name: x
        data:
          root: /tmp
        """
    )
    problems = _problems(path)
    assert (f"{path}:3:1", "data.images", "required key is missing") in problems
    assert (f"{path}:1:1", "model", "required key is missing") in problems


def test_model_validator_error_has_section_location(write, tmp_path):
    (tmp_path / "d").mkdir()
    path = write("model: {name: unet}\ndata:\n  images: [a]\n")
    [(loc, key, msg)] = _problems(path)
    assert (loc, key) == (f"{path}:2:1", "data")
    assert msg.startswith("give exactly one of 'manifest'")


def test_problems_are_in_file_order_and_all_reported(write, tmp_path):
    (tmp_path / "d").mkdir()
    path = write(
        """
        trainer:
          max_epochs: many
        data:
          root: d
          images: []
          cache: maybe
        model: {name: unet}
        preprocess:
          - spacing: [1, 1, 1]
        """
    )
    problems = _problems(path)
    lines = [int(loc.split(":")[-2]) for loc, _, _ in problems]
    assert lines == sorted(lines)
    keys = [k for _, k, _ in problems]
    assert keys == ["trainer.max_epochs", "data.images", "data.cache", "preprocess[0].name"]


def test_list_item_paths_and_locations(write, tmp_path):
    (tmp_path / "d").mkdir()
    path = write(
        """
        data: {root: d, images: [a]}
        model: {name: unet}
        augment:
          - name: random_flip
          - {prob: 0.5}
        inference:
          roi_size: [64, -1, 64]
        """
    )
    problems = {key: (loc, msg) for loc, key, msg in _problems(path)}
    assert problems["augment[1].name"] == (f"{path}:5:5", "required key is missing")
    assert problems["inference.roi_size"][0] == f"{path}:7:3"
    assert "positive voxel counts" in problems["inference.roi_size"][1]


def test_duplicate_key_reported(write, tmp_path):
    (tmp_path / "d").mkdir()
    path = write("data: {root: d, images: [a]}\nmodel: {name: unet}\ntrainer:\n  max_epochs: 1\n  max_epochs: 2\n")
    [(loc, key, msg)] = _problems(path)
    assert (loc, key) == (f"{path}:5:3", "trainer.max_epochs")
    assert "duplicate key (first given on line 4)" in msg


def test_label_map_int_keys(write, tmp_path):
    (tmp_path / "d").mkdir()
    path = write("data: {root: d, images: [a], label_map: {1: 1, 2: 1, x: 0}}\nmodel: {name: unet}\n")
    [(loc, key, msg)] = _problems(path)
    assert key == "data.label_map.x" and "valid integer" in msg and loc.startswith(f"{path}:1:")
    path = write("data: {root: d, images: [a], label_map: {1: 1, 4: 1}}\nmodel: {name: unet}\n")
    assert _load(path).data.label_map == {1: 1, 4: 1}


@pytest.mark.parametrize(
    "text, expected",
    [
        ("data:\n  root: [unclosed\nmodel: {}\n", "YAML syntax error"),
        ("data:\n\troot: x\n", "YAML syntax error"),
    ],
)
def test_yaml_syntax_error_has_location(write, text, expected):
    path = write(text)
    with pytest.raises(ConfigError) as info:
        _load(path)
    assert expected in str(info.value)
    loc = info.value.problems[0][0]
    assert loc.startswith(f"{path}:") and loc.count(":") >= 2


def test_empty_not_a_mapping_missing_folder(write, tmp_path):
    with pytest.raises(ConfigError, match="the file is empty"):
        _load(write("# nothing\n"))
    with pytest.raises(ConfigError, match="top level must be a mapping.*found a list"):
        _load(write("- a\n- b\n"))
    with pytest.raises(ConfigError, match="top level must be a mapping.*found a string"):  # YAML's words, not 'str'
        _load(write("just text\n"))
    with pytest.raises(ConfigError, match="file not found") as info:
        _load(tmp_path / "nope.yaml")
    assert "nope.yaml" in str(info.value) and info.value.hint
    with pytest.raises(ConfigError, match="is a folder"):
        _load(tmp_path)
    assert isinstance(info.value, ValueError)  # ConfigError is also a ValueError


def test_missing_data_paths_reported(write):
    path = write("data: {root: not_here, images: [a]}\nmodel: {name: unet}\n")
    [(loc, key, msg)] = _problems(path)
    assert key == "data.root" and msg.startswith("folder not found: ") and msg.endswith("not_here")
    assert loc == f"{path}:1:8"
    assert _load(path, check_paths=False).data.root.name == "not_here"
    path = write("data: {manifest: cases.csv, images: [a]}\nmodel: {name: unet}\n")
    [(loc, key, msg)] = _problems(path)
    assert key == "data.manifest" and "file not found" in msg


# ------------------------------------------------------------------------ overrides
def test_parse_override_forms():
    assert parse_override("trainer.max_epochs=5") == (("trainer", "max_epochs"), 5, "5")
    assert parse_override("preprocess[1].spacing=[1, 1, 2]")[:2] == (("preprocess", 1, "spacing"), [1, 1, 2])
    assert parse_override("preprocess.1.spacing=[1,1]")[0] == ("preprocess", "1", "spacing")
    assert parse_override("scheduler={name: cosine, T_max: 10}")[1] == {"name": "cosine", "T_max": 10}
    assert parse_override("trainer.patience=null")[1] is None
    assert parse_override("trainer.max_minutes=1.5")[1] == 1.5
    assert parse_override("experiment.name=a=b")[1] == "a=b"  # only the first '=' splits
    for bad in ("trainer.max_epochs", "=5", "a..b=1", "a.=1", "a[x]=1"):
        with pytest.raises(ConfigError, match="invalid --set"):
            parse_override(bad)
    with pytest.raises(ConfigError, match="not valid YAML"):
        parse_override("inference.roi_size=[1, 2")


def test_overrides_nested_list_index_and_new_types(good: Path):
    cfg = _load(
        good,
        [
            "trainer.max_epochs=7",
            "preprocess[1].spacing=[2, 2, 3]",
            "augment.0.prob=0.25",
            "inference.roi_size=[64, 64, 32]",
            "scheduler={name: cosine, T_max: 10}",
            "trainer.patience=null",
            "trainer.max_minutes=1.5",
            "data.label_map.4=1",
            "experiment.name=2024",  # a string field: the text is kept, not the int
        ],
    )
    assert cfg.trainer.max_epochs == 7
    assert cfg.preprocess[1].params["spacing"] == [2, 2, 3]
    assert cfg.augment[0].params["prob"] == 0.25
    assert cfg.inference.roi_size == [64, 64, 32]
    assert cfg.scheduler is not None and cfg.scheduler.name == "cosine" and cfg.scheduler.params == {"T_max": 10}
    assert cfg.trainer.patience is None and cfg.trainer.max_minutes == 1.5
    assert cfg.data.label_map == {4: 1}
    assert cfg.experiment.name == "2024"


def test_overrides_do_not_mutate_input():
    data = {"trainer": {"max_epochs": 1}, "preprocess": [{"name": "a"}]}
    out, applied = apply_overrides(data, ["trainer.max_epochs=2", "preprocess[-1].name=b"])
    assert data == {"trainer": {"max_epochs": 1}, "preprocess": [{"name": "a"}]}
    assert out["trainer"]["max_epochs"] == 2 and out["preprocess"][0]["name"] == "b"
    assert applied[1][0] == ("preprocess", 0, "name")  # negative index normalised


def test_override_unknown_key_did_you_mean_located_at_set(good: Path):
    problems = _problems(good, ["trainer.max_epoch=5", "trainr.max_epochs=5"])
    assert ("--set", "trainer.max_epoch", "unknown key; did you mean 'max_epochs'?") in problems
    assert ("--set", "trainr", "unknown key; did you mean 'trainer'?") in problems
    problems = _problems(good, ["trainer.max_epochs=lots"])
    assert problems[0][:2] == ("--set", "trainer.max_epochs")


def test_override_errors_index_and_scalar(good: Path):
    with pytest.raises(ConfigError, match=r"preprocess has 2 entries, so index 5 does not exist"):
        _load(good, ["preprocess[5].spacing=[1, 1, 1]"])
    with pytest.raises(ConfigError, match=r"preprocess is a list; index it with a number"):
        _load(good, ["preprocess.first.spacing=1"])
    with pytest.raises(ConfigError, match=r"trainer.max_epochs is 3, not a section or list"):
        _load(good, ["trainer.max_epochs.value=1"])


def test_set_paths_resolve_against_cwd(good: Path, tmp_path: Path, monkeypatch):
    other = tmp_path / "elsewhere"
    (other / "cases").mkdir(parents=True)
    monkeypatch.chdir(other)
    cfg = _load(good, ["data.root=cases"])
    assert cfg.data.root == other / "cases"
    cfg = _load(good, [f"data.root={tmp_path / 'data'}"])
    assert cfg.data.root == tmp_path / "data"


def test_format_key():
    assert format_key(("preprocess", 1, "spacing")) == "preprocess[1].spacing"
    assert format_key(("data", "label_map", "4")) == "data.label_map.4"
    assert format_key(()) == "(top level)"


def test_per_axis_lengths_checked_without_registries(write, tmp_path):
    (tmp_path / "d").mkdir()
    path = write(
        """
        data: {root: d, images: [a]}
        preprocess:
          - name: resample
            spacing: [1, 1]
        augment:
          - {name: random_crop, roi_size: [32, 32, 32]}
        model: {name: unet, spatial_dims: 2}
        inference: {roi_size: [64, 64]}
        trainer: {batch_size: 0}
        """
    )
    problems = _problems(path)  # check_components=False: no registry is imported
    assert problems == [
        (f"{path}:6:25", "augment[0].roi_size", "expected 2 values (voxels for H, W), got 3"),
        (f"{path}:9:11", "trainer.batch_size", "input should be greater than or equal to 1 (got 0)"),
    ]
