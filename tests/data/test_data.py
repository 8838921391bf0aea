"""Data layer: manifests, folder layouts, loading checks, datasets, splits, synthetic set."""

from __future__ import annotations

import pickle
import shutil

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from medimg.config.schema import DataSection
from medimg.core import DataError, GeometryError, Image, make_affine
from medimg.data import (
    CaseDataset,
    CaseRecord,
    PatchDataset,
    collate,
    grouped_split,
    load_cases,
    load_sample,
    make_synthetic_segmentation,
)
from medimg.data.synthetic import SYNTHETIC_LABEL_NAMES
from medimg.io import write_image
from medimg.transforms import build_compose, invert_history

IMAGES = ["t1.nii.gz", "t2.nii.gz"]


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    return make_synthetic_segmentation(tmp_path_factory.mktemp("syn") / "data", 3, 1, 1, shape=(24, 24, 16), seed=1)


def section(root, **kw) -> DataSection:
    return DataSection(root=root, images=IMAGES, label="label.nii.gz", label_names=SYNTHETIC_LABEL_NAMES, **kw)


def test_folder_layout_and_sample(synth):
    cases = load_cases(section(synth))
    assert [len(cases[s]) for s in ("train", "validation", "test")] == [3, 1, 1]
    rec = cases["train"][0]
    assert rec.case_id == "case_000" and rec.split == "train" and rec.image_paths[1].name == "t2.nii.gz"
    s = load_sample(rec, section(synth))
    assert s["image"].shape == (2, 24, 24, 16) and s["image"].dtype == torch.float32
    assert s["image"].kind == "intensity" and s["label"].kind == "label"
    assert s["label"].dtype == torch.uint8 and set(s["label"].data.unique().tolist()) == {0, 1, 2}
    assert s["image"].axcodes == ("L", "P", "S") and np.allclose(s["image"].spacing, (1, 1, 2))
    assert s.meta["source_shape"] == [24, 24, 16] and np.allclose(s.meta["source_affine"], s["image"].affine)
    # label map applied (unlisted -> 0)
    s2 = load_sample(rec, section(synth, label_map={2: 1}))
    assert set(s2["label"].data.unique().tolist()) == {0, 1}


def test_synthetic_is_seeded(tmp_path):
    a = make_synthetic_segmentation(tmp_path / "a", 1, 0, 0, shape=(16, 16, 8), seed=3)
    b = make_synthetic_segmentation(tmp_path / "b", 1, 0, 0, shape=(16, 16, 8), seed=3)
    for name in ("t1.nii.gz", "label.nii.gz"):
        assert (a / "train/case_000" / name).read_bytes() == (b / "train/case_000" / name).read_bytes()


def write_manifest(path, rows, header="case_id,t1,t2,seg,split,patient_id"):
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def manifest_section(path, **kw) -> DataSection:
    return DataSection(manifest=path, images=["t1", "t2"], label="seg", label_names=SYNTHETIC_LABEL_NAMES,
                       splits={"train": "tr", "validation": "val", "test": "ts"}, **kw)


def test_manifest_happy_path_and_errors(synth, tmp_path):
    d = tmp_path / "m"
    shutil.copytree(synth / "train", d / "cases")
    rows = [f"case_00{i},cases/case_00{i}/t1.nii.gz,cases/case_00{i}/t2.nii.gz,cases/case_00{i}/label.nii.gz,{s},p{i // 2}"
            for i, s in zip(range(3), ["tr", "tr", "val"])]
    m = write_manifest(d / "manifest.csv", rows)
    cases = load_cases(manifest_section(m))
    assert [c.case_id for c in cases["train"]] == ["case_000", "case_001"]
    assert cases["validation"][0].meta == {"patient_id": "p1"} and cases["test"] == []
    assert cases["train"][0].image_paths[0] == d / "cases/case_000/t1.nii.gz"
    # relative manifest path against base_dir
    assert len(load_cases(manifest_section("m/manifest.csv"), base_dir=tmp_path)["train"]) == 2

    bad = write_manifest(d / "b1.csv", rows, header="case_id,t1,t2,label,split,patient_id")
    with pytest.raises(DataError, match=r"lacks column\(s\) \['seg'\]; columns present: \['case_id', 't1', 't2', 'label'"):
        load_cases(manifest_section(bad))
    dup = write_manifest(d / "b2.csv", [rows[0], rows[1], rows[0]])
    with pytest.raises(DataError, match="line 4: duplicate case_id 'case_000' \\(first on line 2\\)"):
        load_cases(manifest_section(dup))
    unk = write_manifest(d / "b3.csv", [rows[0].replace(",tr,", ",training,")])
    with pytest.raises(DataError, match="line 2: case 'case_000' has unknown split 'training'; expected one of \\['tr', 'ts', 'val'\\]"):
        load_cases(manifest_section(unk))
    miss = write_manifest(d / "b4.csv", [rows[0].replace("cases/case_000/t2", "cases/nope/t2")])
    with pytest.raises(DataError, match="case 'case_000' column 't2': file not found: .*nope/t2.nii.gz"):
        load_cases(manifest_section(miss))
    with pytest.raises(DataError, match="manifest file not found"):
        load_cases(manifest_section(d / "absent.csv"))
    nolab = write_manifest(d / "b5.csv", [rows[0].replace("cases/case_000/label.nii.gz", "")])
    with pytest.raises(DataError, match="in split 'train' has no label"):
        load_cases(manifest_section(nolab))
    empty = write_manifest(d / "b6.csv", [])
    with pytest.raises(DataError, match="holds no cases"):
        load_cases(manifest_section(empty))


def test_folder_errors(synth, tmp_path):
    root = tmp_path / "r"
    shutil.copytree(synth, root)
    (root / "train/case_001/t2.nii.gz").unlink()
    with pytest.raises(DataError, match=r"case 'case_001' \(train\): image file not found: .*t2.nii.gz; files present: \['label.nii.gz', 't1.nii.gz'\]"):
        load_cases(section(root))
    shutil.rmtree(root / "train")
    (root / "train").mkdir()
    with pytest.raises(DataError, match="split folder .*train holds no case folders"):
        load_cases(section(root))
    shutil.copytree(synth / "test/case_004", root / "train/case_004")
    with pytest.raises(DataError, match="duplicate case_id 'case_004'"):
        load_cases(section(root))
    with pytest.raises(DataError, match="has none of the split folders"):
        load_cases(section(root, splits={"train": "tr"}))
    # an unlabelled test case is fine
    (root / "test/case_004/label.nii.gz").unlink()
    shutil.rmtree(root / "train")
    assert load_cases(section(root))["test"][0].label_path is None


def test_geometry_and_label_value_errors(synth, tmp_path):
    case = tmp_path / "c"
    shutil.copytree(synth / "train/case_000", case)
    rec = CaseRecord("c", [case / "t1.nii.gz", case / "t2.nii.gz"], case / "label.nii.gz", "train")
    good = load_sample(rec, section(synth))
    write_image(Image(torch.zeros(1, 24, 24, 15), good["image"].affine), case / "t2.nii.gz")
    with pytest.raises(GeometryError, match=r"case 'c': '.*t2.nii.gz' is not on the grid of '.*t1.nii.gz': shape \[24, 24, 15\] vs \[24, 24, 16\]"):
        load_sample(rec, section(synth))
    shifted = good["image"].affine.copy()
    shifted[0, 3] += 0.01
    write_image(Image(torch.zeros(1, 24, 24, 16), good["image"].affine), case / "t2.nii.gz")
    write_image(Image(good["label"].data, shifted, "label"), case / "label.nii.gz")
    with pytest.raises(GeometryError, match="label.nii.gz' is not on the grid .*largest difference 0.01 mm"):
        load_sample(rec, section(synth))
    lab = good["label"].data.clone()
    lab[0, 0, 0, 0] = 7
    write_image(Image(lab, good["image"].affine, "label"), case / "label.nii.gz")
    with pytest.raises(DataError, match=r"case 'c': label .* has values \[7\] outside 0..2 \(label_names: \['background', 'ellipsoid', 'sphere'\]\)"):
        load_sample(rec, section(synth))


def test_case_and_patch_datasets(synth):
    data = section(synth)
    recs = load_cases(data)["train"]
    pre = build_compose([{"name": "orient", "axcodes": "RAS"}, {"name": "resample", "spacing": [1.5, 1.5, 1.5]},
                         {"name": "normalize_intensity"}])
    cases = CaseDataset(recs, data, pre)
    s = cases[0]
    assert s is cases[0]  # cached
    assert s["image"].axcodes == ("R", "A", "S") and s["image"].spatial_shape == (16, 16, 21)
    back = invert_history(s["label"], s.history)
    assert back.spatial_shape == tuple(s.meta["source_shape"])
    assert np.allclose(back.affine, s.meta["source_affine"])
    aug = build_compose([{"name": "random_crop", "roi_size": [16, 16, 16], "pos_fraction": 1.0},
                         {"name": "random_flip", "prob": 0.5}])
    patches = PatchDataset(cases, aug, samples_per_epoch=6, seed=0)
    item = patches[0]
    assert item["image"].shape == (2, 16, 16, 16) and item["image"].dtype == torch.float32
    assert item["label"].shape == (1, 16, 16, 16) and item["label"].dtype == torch.int64
    assert (item["label"] > 0).any()
    # each case visited equally often per epoch; epochs differ; seeds reproduce
    assert sorted(patches.case_index(i) for i in range(6)) == [0, 0, 1, 1, 2, 2]
    a = [patches[i]["image"] for i in range(6)]
    patches.set_epoch(1)
    b = [patches[i]["image"] for i in range(6)]
    patches.set_epoch(0)
    assert all(torch.equal(x, patches[i]["image"]) for i, x in enumerate(a))
    assert not all(torch.equal(x, y) for x, y in zip(a, b))
    # DataLoader with workers: picklable, same batches as in-process
    pickle.dumps(patches)
    w = list(DataLoader(patches, batch_size=3, num_workers=2, collate_fn=collate))
    z = list(DataLoader(patches, batch_size=3, num_workers=0, collate_fn=collate))
    assert w[0]["image"].shape == (3, 2, 16, 16, 16) and len(w[0]["case_id"]) == 3
    assert all(torch.equal(x["image"], y["image"]) and torch.equal(x["label"], y["label"]) for x, y in zip(w, z))
    with pytest.raises(DataError, match="cannot batch 'image' of different shapes: a \\(1, 2\\), b \\(1, 3\\)"):
        collate([{"image": torch.zeros(1, 2), "case_id": "a"}, {"image": torch.zeros(1, 3), "case_id": "b"}])


def test_grouped_split():
    recs = [CaseRecord(f"c{i}", [], None, "train", {"patient_id": f"p{i // 3}"}) for i in range(60)]
    out = grouped_split(recs, fractions=(0.6, 0.2, 0.2), seed=0)
    assert sum(len(v) for v in out.values()) == 60
    groups = {s: {r.meta["patient_id"] for r in v} for s, v in out.items()}
    assert not (groups["train"] & groups["validation"]) and not (groups["train"] & groups["test"])
    assert not (groups["validation"] & groups["test"])
    assert abs(len(out["train"]) - 36) <= 3 and all(r.split == "validation" for r in out["validation"])
    assert grouped_split(recs, seed=0) == grouped_split(recs, seed=0)
    assert [r.case_id for r in grouped_split(recs, seed=1)["test"]] != [r.case_id for r in grouped_split(recs, seed=0)["test"]]
    with pytest.raises(DataError, match="case 'x' has no 'patient_id' in its meta") as err:
        grouped_split([CaseRecord("x", [], None, "train", {})])
    assert err.value.hint.startswith("add a 'patient_id' column to the manifest (data.manifest)")
    with pytest.raises(DataError, match="must be 3 non-negative shares summing to 1"):
        grouped_split(recs, fractions=(0.5, 0.5, 0.5))


def test_float_label_must_be_integral(synth, tmp_path):
    case = tmp_path / "f"
    shutil.copytree(synth / "train/case_000", case)
    rec = CaseRecord("f", [case / "t1.nii.gz"], case / "label.nii.gz", "train")
    aff = load_sample(rec, section(synth))["image"].affine
    lab = torch.zeros(1, 24, 24, 16)
    lab[0, 1, 1, 1] = 0.5
    write_image(Image(lab, aff, "intensity"), case / "label.nii.gz")
    with pytest.raises(DataError, match=r"case 'f': label .* holds non-integer values, e.g. \[0.5\]"):
        load_sample(rec, section(synth))


def test_public_api_pinned():
    import medimg.data as D

    assert set(D.__all__) == {
        "CaseRecord", "SPLITS", "load_cases", "load_sample", "check_same_grid", "CaseDataset",
        "PatchDataset", "collate", "sample_to_dict", "seeded_generator", "grouped_split",
        "make_synthetic_segmentation", "assign_folds", "apply_fold", "apply_fold_classification",
        "read_split_file", "write_split_file", "fold_table", "FoldTable",
    }
    assert all(hasattr(D, n) for n in D.__all__)
