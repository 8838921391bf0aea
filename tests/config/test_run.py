"""Run folders: config.resolved.yaml round trip and environment.json."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from medimg.config import (
    ENVIRONMENT,
    ORIGINAL_CONFIG,
    RESOLVED_CONFIG,
    collect_environment,
    dump_config,
    load_config,
    prepare_run_dir,
    run_dir_for,
)


def test_resolved_config_round_trips(good: Path, tmp_path: Path, monkeypatch):
    cfg = load_config(good, ["scheduler={name: cosine, T_max: 4}", "data.label_map={1: 1, 2: 1}"],
                      check_components=False)
    run = prepare_run_dir(cfg, tmp_path / "run", good)
    resolved = run / RESOLVED_CONFIG
    monkeypatch.chdir("/")  # absolute paths: the file works from anywhere
    again = load_config(resolved, check_components=False)
    assert again == cfg
    text = resolved.read_text()
    assert f"root: {tmp_path / 'data'}" in text  # absolute data path
    assert "batch_size: 2" in text  # defaults written out
    assert "spacing: [1.0, 1.0, 1.0]" in text
    assert dump_config(again) == dump_config(cfg)


def test_run_dir_files_and_environment(good: Path, tmp_path: Path):
    cfg = load_config(good, check_components=False)
    run = prepare_run_dir(cfg, tmp_path / "runs" / "a", good)
    assert run == tmp_path / "runs" / "a" and run.is_dir()
    assert (run / ORIGINAL_CONFIG).read_text() == good.read_text()
    env = json.loads((run / ENVIRONMENT).read_text())
    assert env["python"] == sys.version.split()[0]
    import numpy
    import torch

    assert env["versions"]["torch"] == torch.__version__.split("+")[0] or env["versions"]["torch"] == torch.__version__
    assert env["versions"]["numpy"] == numpy.__version__
    for key in ("medimg", "monai", "pydicom", "nibabel"):
        assert key in env["versions"]
    assert env["torch"]["cuda_available"] == torch.cuda.is_available()
    assert len(env["torch"]["devices"]) == (torch.cuda.device_count() if torch.cuda.is_available() else 0)
    assert env["torch"]["num_threads"] == torch.get_num_threads()
    assert env["cpu_count"] >= 1 and env["usable_cpus"] >= 1
    assert env["config_path"] == str(good) and env["run_dir"] == str(run)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", env["timestamp"])
    git = env["git"]
    repo = Path(__file__).resolve().parents[2]
    if (repo / ".git").exists():
        assert re.fullmatch(r"[0-9a-f]{40}", git["sha"]) and isinstance(git["dirty"], bool)
    else:
        assert git["sha"] is None


def test_output_dir_template_and_reuse(good: Path, tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = load_config(good, ["experiment.output_dir=out/{name}-v1"], check_components=False)
    assert run_dir_for(cfg) == tmp_path / "out" / "brats-v1"
    run = prepare_run_dir(cfg)
    assert run == tmp_path / "out" / "brats-v1"
    assert not (run / ORIGINAL_CONFIG).exists()  # no config file given
    assert prepare_run_dir(cfg) == run  # an existing folder is reused


def test_unwritable_run_dir_is_a_config_error(good: Path, tmp_path: Path):
    import pytest

    from medimg.core import ConfigError

    cfg = load_config(good, check_components=False)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ConfigError, match="cannot create the run folder") as info:
        prepare_run_dir(cfg, blocker / "run")
    assert "--output-dir" in info.value.hint


def test_collect_environment_command_line():
    env = collect_environment(["medimg", "train", "x.yaml"])
    assert env["command"] == ["medimg", "train", "x.yaml"]
    json.dumps(env)  # plain data
