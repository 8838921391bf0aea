"""The preprocessed-case cache: disk files reused across runs and keyed by the files and the
preprocessing, rebuilt when damaged, and space checked before filling (data.cache)."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

import medimg.data.cache as cache_mod
import medimg.data.loading as loading
from medimg.config.schema import DataSection
from medimg.core.errors import InsufficientMemoryError
from medimg.core.spec import ExperimentConfig
from medimg.data import CaseDataset, load_cases, make_synthetic_segmentation
from medimg.data.synthetic import SYNTHETIC_LABEL_NAMES
from medimg.transforms import build_compose

PRE = [{"name": "orient", "axcodes": "RAS"}, {"name": "resample", "spacing": [1.5, 1.5, 1.5]},
       {"name": "normalize_intensity"}]


@pytest.fixture()
def synth(tmp_path):
    return make_synthetic_segmentation(tmp_path / "data", 2, 0, 0, shape=(16, 16, 12), seed=1)


def _section(root, **kw) -> DataSection:
    return DataSection(root=root, images=["t1.nii.gz", "t2.nii.gz"], label="label.nii.gz",
                       label_names=SYNTHETIC_LABEL_NAMES, **kw)


def _dataset(root, cache_dir, pre=PRE, cache="disk") -> CaseDataset:
    data = _section(root)
    return CaseDataset(load_cases(data)["train"], data, build_compose(pre), cache, cache_dir=cache_dir,
                       preprocess_spec=pre)


def _reads(monkeypatch) -> list:
    """Count the source files read (the loader's one reader)."""
    calls: list = []
    real = loading._read
    monkeypatch.setattr(loading, "_read", lambda path, kind: calls.append(path) or real(path, kind))
    return calls


def _same(a, b) -> None:
    assert a.case_id == b.case_id and a.meta == b.meta and a.targets == b.targets
    assert [r.to_dict() for r in a.history] == [r.to_dict() for r in b.history]
    for name in a.images:
        assert torch.equal(a[name].data, b[name].data) and a[name].data.dtype == b[name].data.dtype
        assert np.array_equal(a[name].affine, b[name].affine) and a[name].kind == b[name].kind
        assert a[name].meta == b[name].meta


def test_second_run_reads_the_disk_cache_not_the_source(synth, tmp_path, monkeypatch):
    first = _dataset(synth, tmp_path / "cache")
    first.warm_cache()
    assert len(list((tmp_path / "cache").glob("*.pt"))) == 2
    reads = _reads(monkeypatch)
    second = _dataset(synth, tmp_path / "cache")
    second.warm_cache()
    for i in range(len(second)):
        _same(second[i], first[i])
    assert reads == []  # every case came from its cache file


def test_a_changed_preprocessing_or_file_misses(synth, tmp_path, monkeypatch):
    _dataset(synth, tmp_path / "cache").warm_cache()
    reads = _reads(monkeypatch)
    other = [*PRE[:1], {"name": "resample", "spacing": [2.0, 2.0, 2.0]}, *PRE[2:]]
    changed = _dataset(synth, tmp_path / "cache", pre=other)
    changed.warm_cache()
    assert len(reads) == 2 * 3  # 2 cases x (2 channels + label), read again
    assert changed[0]["image"].spatial_shape != _dataset(synth, tmp_path / "cache")[0]["image"].spatial_shape
    assert len(list((tmp_path / "cache").glob("*.pt"))) == 4
    reads.clear()
    label = load_cases(_section(synth))["train"][0].label_path
    st = os.stat(label)
    os.utime(label, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))  # the file was rewritten
    _dataset(synth, tmp_path / "cache").warm_cache()
    assert len(reads) == 3  # that case only


def test_a_damaged_cache_file_is_rebuilt(synth, tmp_path, monkeypatch):
    ds = _dataset(synth, tmp_path / "cache")
    reference = ds[0]
    path, _ = ds.cache_file(0)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])  # truncated
    reads = _reads(monkeypatch)
    again = _dataset(synth, tmp_path / "cache")
    _same(again[0], reference)
    assert len(reads) == 3
    reads.clear()
    _same(_dataset(synth, tmp_path / "cache")[0], reference)  # the rebuilt file is good
    assert reads == []


@pytest.mark.parametrize("mode, key", [("disk", "data.cache: disk"), ("memory", "data.cache: memory")])
def test_not_enough_space_stops_before_filling(synth, tmp_path, monkeypatch, mode, key):
    monkeypatch.setattr(cache_mod, "free_bytes", lambda mode, cache_dir=None: 1000)
    ds = _dataset(synth, tmp_path / "cache", cache=mode)
    reads = _reads(monkeypatch)
    with pytest.raises(InsufficientMemoryError, match=f"{key} needs .* for 2 preprocessed case") as info:
        ds.warm_cache()
    assert "data.cache" in info.value.hint
    assert len(reads) == 3  # only the first case was read to size it
    assert len("\n".join([info.value.message]).splitlines()) == 1


def test_memory_and_none_modes(synth, tmp_path, monkeypatch):
    mem = _dataset(synth, tmp_path / "cache", cache="memory")
    mem.warm_cache()
    assert mem[0] is mem[0] and not (tmp_path / "cache").exists()
    none = _dataset(synth, tmp_path / "cache", cache=False)
    none.warm_cache()
    assert none[0] is not none[0] and not (tmp_path / "cache").exists()


def test_config_keys():
    base = {"data": {"root": "d", "images": ["a"]}, "model": {"name": "unet"}}
    assert ExperimentConfig.model_validate(base).data.cache == "memory"
    for given, expected in ((True, "memory"), (False, "none"), ("disk", "disk")):
        cfg = ExperimentConfig.model_validate({**base, "data": {**base["data"], "cache": given, "cache_dir": "c"}})
        assert cfg.data.cache == expected and str(cfg.data.cache_dir) == "c"
    with pytest.raises(Exception, match="cache"):
        ExperimentConfig.model_validate({**base, "data": {**base["data"], "cache": "ssd"}})
