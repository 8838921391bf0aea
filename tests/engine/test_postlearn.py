"""Post-processing learned on validation: the rule per class, best.pt, postprocess.json, predict."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from medimg.config.schema import ExperimentConfig
from medimg.core import Image, make_affine
from medimg.core.spec import PostprocessSpec
from medimg.engine import load_checkpoint, train
from medimg.engine.postlearn import (
    POSTPROCESS_FILE,
    candidate_rules,
    learn_postprocess,
    learn_run_postprocess,
    store_postprocess,
)
from medimg.inference import Predictor, predict_folder
from medimg.inference.postprocess import postprocess_labels
from medimg.io import read_image
from medimg.metrics import dice_per_class

VOXEL_ML = 0.008  # 2 mm voxels
NAMES = ["background", "organ", "lesions", "spots"]


def _case(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(prediction, reference) on a 40x40x20 grid of 2 mm voxels.

    organ (1): one 10^3 cube, predicted right plus a stray 5x5x6 blob (150 voxels, 1.2 mL:
    only keep_largest removes it). lesions (2): two true 4^3 blobs (0.512 mL each), predicted
    exactly (keep_largest or a 1 mL minimum would delete true lesions). spots (3): two true
    blobs of 6^3 and 4^3 voxels, predicted exactly, plus a 2-voxel false spot (0.016 mL, under
    every minimum size; keep_largest would cost the true 4^3 blob).
    """
    ref = np.zeros((40, 40, 20), np.uint8)
    o = seed  # move things a little per case
    ref[2 + o:12 + o, 2:12, 2:12] = 1
    ref[20:24, 2 + o:6 + o, 2:6] = 2
    ref[30:34, 2:6, 2:6] = 2
    ref[2:8, 25:31, 12 + o:18 + o] = 3
    ref[30:34, 30:34, 12:16] = 3
    pred = ref.copy()
    pred[25:30, 14:19, 10:16] = 1  # the stray organ blob
    pred[15, 35, 2:4] = 3  # the false spot
    return pred, ref


def _cases():
    return [(f"case_{i}", *_case(i), VOXEL_ML) for i in range(3)]


def _dice(cases, spec: PostprocessSpec | None, cls: int) -> float:
    affine = make_affine((2.0, 2.0, 2.0))
    scores = []
    for _, pred, ref, _ in cases:
        image = postprocess_labels(Image(torch.from_numpy(pred)[None], affine, kind="label"), spec)
        scores.append(dice_per_class(image.numpy()[0], ref, len(NAMES))[cls])
    return float(np.mean(scores))


def test_candidate_rules_go_from_least_to_most_removal():
    names = [name for name, _ in candidate_rules(2)]
    assert names == ["none", "min_size_ml=0.1", "min_size_ml=0.5", "min_size_ml=1", "keep_largest"]
    assert candidate_rules(2)[-1][1].keep_largest == [2] and candidate_rules(2)[1][1].min_size_ml == {2: 0.1}


def test_learning_picks_the_rule_that_raises_each_class_s_dice():
    cases = _cases()
    spec, record = learn_postprocess(cases, NAMES)
    assert spec.keep_largest == [1]  # organ: the stray blob is bigger than every minimum size
    assert spec.min_size_ml == {3: 0.1}  # spots: the smallest minimum removes the false spot (ties: less removal)
    organ, lesions, spots = (record["classes"][n] for n in NAMES[1:])
    assert organ["chosen"] == "keep_largest" and spots["chosen"] == "min_size_ml=0.1"
    assert lesions["chosen"] == "none" and 2 not in spec.classes  # would hurt: nothing chosen
    assert organ["dice_before"] == pytest.approx(2000 / 2150) and organ["dice_after"] == pytest.approx(1.0)
    assert organ["tried"]["min_size_ml=1"] == pytest.approx(organ["dice_before"])  # 1.2 mL blob survives 1 mL
    assert lesions["tried"]["keep_largest"] < lesions["dice_before"] == pytest.approx(1.0)
    assert lesions["tried"]["min_size_ml=1"] == pytest.approx(0.0)  # both true lesions are under 1 mL
    assert spots["tried"]["keep_largest"] < spots["dice_before"] < spots["dice_after"] == pytest.approx(1.0)
    assert record["mean_dice_after"] > record["mean_dice_before"]
    # what the learner measures is what postprocess_labels (prediction) does
    for cls, name in enumerate(NAMES[1:], start=1):
        assert record["classes"][name]["dice_before"] == pytest.approx(_dice(cases, None, cls))
        assert record["classes"][name]["dice_after"] == pytest.approx(_dice(cases, spec, cls))


def test_nothing_is_chosen_where_predictions_are_already_clean():
    cases = [(cid, ref.copy(), ref, ml) for cid, _, ref, ml in _cases()]
    spec, record = learn_postprocess(cases, NAMES)
    assert spec.classes == [] and all(c["chosen"] == "none" for c in record["classes"].values())
    assert record["mean_dice_after"] == record["mean_dice_before"] == pytest.approx(1.0)


def test_a_class_absent_from_every_case_keeps_none():
    cases = [(cid, pred, ref, ml) for cid, pred, ref, ml in _cases()]
    spec, record = learn_postprocess(cases, [*NAMES, "absent"])
    assert record["classes"]["absent"]["chosen"] == "none" and 4 not in spec.classes
    assert record["classes"]["absent"]["dice_before"] == 1.0  # nothing to find, nothing found


def test_mismatched_grids_are_named():
    pred, ref = _case(0)
    with pytest.raises(ValueError, match="validation case 'a': prediction grid .* differs from its label's"):
        learn_postprocess([("a", pred[:-1], ref, VOXEL_ML)], NAMES)


# -- a run: best.pt, postprocess.json, predict ---------------------------------------------
@pytest.fixture(scope="module")
def data(tmp_path_factory):
    from medimg.data import make_synthetic_segmentation

    return make_synthetic_segmentation(tmp_path_factory.mktemp("syn"), 3, 2, 1, shape=(24, 24, 16), seed=3)


def _cfg(root, **sections) -> ExperimentConfig:
    cfg = {
        "experiment": {"name": "pp", "seed": 1},
        "data": {"root": str(root), "images": ["t1.nii.gz", "t2.nii.gz"], "label": "label.nii.gz",
                 "label_names": ["background", "ellipsoid", "sphere"]},
        "preprocess": [{"name": "orient", "axcodes": "RAS"}, {"name": "normalize_intensity"}],
        "augment": [{"name": "random_crop", "roi_size": [16, 16, 16], "pos_fraction": 0.5}],
        "model": {"name": "unet", "channels": [4, 8], "strides": [2], "num_res_units": 0},
        "optimizer": {"name": "adamw", "lr": 0.01},
        "trainer": {"max_epochs": 2, "iterations_per_epoch": 2, "batch_size": 2, "device": "cpu"},
        "inference": {"roi_size": [16, 16, 16], "overlap": 0.25, "sw_batch_size": 2},
    }
    for key, value in sections.items():
        cfg[key] = {**cfg.get(key, {}), **value}
    return ExperimentConfig.model_validate(cfg)


@pytest.fixture(scope="module")
def run(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "run"
    return out, train(_cfg(data), output_dir=out, progress=False)


def test_a_run_learns_into_best_pt_and_postprocess_json(run):
    out, result = run
    record = json.loads((out / POSTPROCESS_FILE).read_text())
    assert record["learned"] is True and record["reason"] is None and record["checkpoint"] == "best.pt"
    assert len(record["validation_cases"]) == 2
    assert record["predictions"] == "validation of the best epoch"  # not predicted twice
    assert set(record["classes"]) == {"ellipsoid", "sphere"}
    assert set(record["classes"]["sphere"]["tried"]) == set(record["candidates"])
    # the Dice before is validation's at the best epoch (same predictions, same score)
    assert record["mean_dice_before"] == pytest.approx(result.best_metric)
    assert record["mean_dice_after"] >= record["mean_dice_before"]
    stored = load_checkpoint(out / "best.pt")["inference"]["postprocess"]
    assert PostprocessSpec.model_validate(stored) == PostprocessSpec.model_validate(record["postprocess"])
    assert Predictor.from_checkpoint(out / "best.pt", "cpu").spec.postprocess == PostprocessSpec.model_validate(stored)
    # last.pt (what a resume continues from) is left as training wrote it
    assert load_checkpoint(out / "last.pt")["inference"]["postprocess"] == {"keep_largest": [], "min_size_ml": {}, "min_probability": {}}


def test_predicting_again_with_best_pt_gives_the_same_decision(run, data, tmp_path):
    out, result = run
    from medimg.data import load_cases, load_sample

    cfg = _cfg(data)
    ckpt = tmp_path / "best.pt"
    shutil.copy2(out / "best.pt", ckpt)
    samples = [load_sample(r, cfg.data) for r in load_cases(cfg.data, data)["validation"]]
    logs: list[str] = []
    again = learn_run_postprocess(cfg, tmp_path, ckpt, samples, None, torch.device("cpu"), logs.append)
    first = json.loads((out / POSTPROCESS_FILE).read_text())
    assert again["predictions"] == "predicted again with best.pt"
    for name, c in first["classes"].items():
        assert again["classes"][name]["chosen"] == c["chosen"]
        assert again["classes"][name]["tried"] == pytest.approx(c["tried"], abs=1e-6)
    assert again["postprocess"] == first["postprocess"] and "post-processing learned on 2" in logs[0]


def test_predict_applies_the_stored_rule_and_no_postprocess_leaves_it_out(run, data, tmp_path):
    from typer.testing import CliRunner

    from medimg.cli import app

    out, _ = run
    ckpt = tmp_path / "best.pt"
    shutil.copy2(out / "best.pt", ckpt)
    store_postprocess(ckpt, PostprocessSpec(keep_largest=[1, 2], min_size_ml={2: 0.05}))
    predictor = Predictor.from_checkpoint(ckpt, "cpu")
    assert predictor.spec.postprocess.keep_largest == [1, 2]
    case = sorted((data / "test").iterdir())[0]
    cli = CliRunner()
    for name, extra in (("post", []), ("raw", ["--no-postprocess"])):
        res = cli.invoke(app, ["predict", str(ckpt), str(data / "test"), str(tmp_path / name), "--device", "cpu", *extra])
        assert res.exit_code == 0, res.output
    raw, post = (read_image(tmp_path / n / f"{case.name}.nii.gz") for n in ("raw", "post"))
    expected = postprocess_labels(raw, predictor.spec.postprocess)
    assert np.array_equal(post.numpy(), expected.numpy())
    # the Python API applies it as well
    predict_folder(predictor, data / "test", tmp_path / "api", progress=False)
    assert np.array_equal(read_image(tmp_path / "api" / f"{case.name}.nii.gz").numpy(), post.numpy())


def test_store_refuses_a_class_the_model_lacks(run, tmp_path):
    from medimg.core.errors import CheckpointError

    ckpt = tmp_path / "best.pt"
    shutil.copy2(run[0] / "best.pt", ckpt)
    with pytest.raises(CheckpointError, match="postprocess"):
        store_postprocess(ckpt, PostprocessSpec(keep_largest=[5]))
    assert load_checkpoint(ckpt)["inference"]["postprocess"]["keep_largest"] != [5]


def test_a_given_postprocess_is_kept_and_learning_can_be_switched_off(data, tmp_path):
    given = {"keep_largest": [2], "min_size_ml": {1: 0.3}}
    res = train(_cfg(data, inference={"postprocess": given}, trainer={"max_epochs": 1}),
                output_dir=tmp_path / "given", progress=False)
    stored = load_checkpoint(res.best_checkpoint)["inference"]["postprocess"]
    assert stored["keep_largest"] == [2] and stored["min_size_ml"] == {1: 0.3}
    record = json.loads((tmp_path / "given" / POSTPROCESS_FILE).read_text())
    assert record["learned"] is False and "inference.postprocess" in record["reason"]

    off = train(_cfg(data, evaluation={"learn_postprocess": False}, trainer={"max_epochs": 1}),
                output_dir=tmp_path / "off", progress=False)
    assert not (tmp_path / "off" / POSTPROCESS_FILE).exists()
    assert load_checkpoint(off.best_checkpoint)["inference"]["postprocess"] == {"keep_largest": [], "min_size_ml": {}, "min_probability": {}}


def test_one_validation_case_is_not_enough(data, tmp_path):
    from medimg.data import load_cases, load_sample

    cfg = _cfg(data)
    sample = load_sample(load_cases(cfg.data, data)["validation"][0], cfg.data)
    logs: list[str] = []
    record = learn_run_postprocess(cfg, tmp_path, tmp_path / "best.pt", [sample], None, torch.device("cpu"), logs.append)
    assert record["learned"] is False and "1 validation case(s); learning needs at least 2" in record["reason"]
    assert logs == ["post-processing not learned: 1 validation case(s); learning needs at least 2"]
    assert json.loads((tmp_path / POSTPROCESS_FILE).read_text())["learned"] is False


def test_the_model_card_names_the_post_processing(run, tmp_path):
    from medimg.engine.card import model_card_text

    out, _ = run
    folder = tmp_path / "run"
    shutil.copytree(out, folder)
    store_postprocess(folder / "best.pt", PostprocessSpec(keep_largest=[2], min_size_ml={1: 0.5}))
    text = model_card_text(folder)
    assert "| post-processing | largest component of sphere; ellipsoid components under 0.5 mL removed " \
           "(chosen on validation Dice, postprocess.json) |" in text


def test_the_test_split_is_scored_with_the_learned_rule(data, tmp_path, monkeypatch):
    import medimg.engine.postlearn as postlearn
    from medimg.inference.postprocess import label_components

    chosen = PostprocessSpec(keep_largest=[1, 2])
    monkeypatch.setattr(postlearn, "learn_postprocess", lambda cases, names, **_: (chosen, {"classes": {}}))
    res = train(_cfg(data, trainer={"max_epochs": 1}), output_dir=tmp_path / "run", progress=False)
    assert load_checkpoint(res.best_checkpoint)["inference"]["postprocess"]["keep_largest"] == [1, 2]
    assert res.test_summary is not None
    for path in (tmp_path / "run" / "test" / "predictions").glob("*.nii.gz"):
        labels = read_image(path).numpy()[0]
        for cls in (1, 2):
            assert len(label_components(labels == cls)[1]) <= 1, (path.name, cls)


# -- a minimum probability per class -------------------------------------------------------
def _rimmed_case(seed: int, rim_is_true: bool):
    """(case, low-probability voxels, probabilities): class 1 is a 10^3 cube predicted with a
    one-voxel rim of probability 0.65 around it; the rim is background in the reference
    (over-segmentation) unless ``rim_is_true``."""
    from scipy import ndimage

    from medimg.inference.postprocess import low_probability_voxels

    ref = np.zeros((30, 30, 20), np.uint8)
    ref[5 + seed:15 + seed, 5:15, 5:15] = 1
    pred = ndimage.binary_dilation(ref).astype(np.uint8)
    rim = (pred == 1) & (ref == 0)
    top = np.where(pred == 1, 0.97, 0.99).astype(np.float32)
    top[rim] = 0.65
    if rim_is_true:
        ref = pred.copy()
    low = low_probability_voxels(torch.from_numpy(pred), torch.from_numpy(top), 0.9)
    return (f"case_{seed}", pred, ref, VOXEL_ML), low, top


@pytest.mark.parametrize("rim_is_true", [False, True])
def test_a_minimum_probability_is_learned_only_where_it_raises_dice(rim_is_true):
    made = [_rimmed_case(i, rim_is_true) for i in range(2)]
    cases = [c for c, _, _ in made]
    low = {c[0]: lp for c, lp, _ in made}
    spec, record = learn_postprocess(cases, ["background", "organ"], low_probability=low)
    organ = record["classes"]["organ"]
    assert "min_probability=0.6" in organ["tried"] and "min_probability=0.9+keep_largest" in organ["tried"]
    if rim_is_true:  # the rim is right: removing it would cost Dice
        assert spec.min_probability == {} and organ["chosen"] == "none"
        return
    # 0.6 keeps the rim (0.65 >= 0.6); 0.7 is the least minimum that removes it exactly
    assert organ["tried"]["min_probability=0.6"] == pytest.approx(organ["tried"]["none"])
    assert organ["chosen"] == "min_probability=0.7" and spec.min_probability == {1: 0.7}
    assert organ["dice_after"] == pytest.approx(1.0) and organ["dice_before"] < 0.9
    # what the learner measured is what prediction does: label_map_of with the learned minimum
    from medimg.inference.predictor import label_map_of

    for (cid, pred, ref, _), _, top in made:
        probs = torch.from_numpy(np.stack([1 - top * (pred == 1), np.where(pred == 1, top, 1 - top)]))
        labels = label_map_of(Image(probs, make_affine((2.0, 2.0, 2.0)), kind="probabilities"), spec.min_probability)
        assert np.array_equal(labels.numpy()[0], ref)


def test_without_probabilities_no_minimum_is_tried():
    spec, record = learn_postprocess(_cases(), NAMES)
    assert not any("min_probability" in name for name in record["candidates"]) and spec.min_probability == {}


def test_predict_applies_a_minimum_probability_where_probabilities_become_labels(run, data, tmp_path):
    out, _ = run
    ckpt = tmp_path / "best.pt"
    shutil.copy2(out / "best.pt", ckpt)
    store_postprocess(ckpt, PostprocessSpec(min_probability={1: 0.8, 2: 0.7}))
    predictor = Predictor.from_checkpoint(ckpt, "cpu")
    case = sorted((data / "test").iterdir())[0]
    probs = predictor.predict_probabilities([case / "t1.nii.gz", case / "t2.nii.gz"]).data
    top, expected = torch.max(probs, 0)
    expected[(expected == 1) & (top < 0.8)] = 0
    expected[(expected == 2) & (top < 0.7)] = 0
    assert int(((torch.argmax(probs, 0) > 0) & (expected == 0)).sum()) > 0  # the rule changes something here
    labels = predictor.predict([case / "t1.nii.gz", case / "t2.nii.gz"]).data[0]
    assert int((labels != expected).sum()) == 0
    # predict_folder, with and without the probabilities saved, writes the same labels
    for name, save in (("a", False), ("b", True)):
        predict_folder(predictor, data / "test", tmp_path / name, progress=False, save_probabilities=save)
        assert np.array_equal(read_image(tmp_path / name / f"{case.name}.nii.gz").numpy()[0], expected.numpy())
