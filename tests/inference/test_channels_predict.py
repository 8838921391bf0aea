"""predict_folder with channel patterns on DICOM studies, and DICOM SEG output."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

pytest.importorskip("pydicom")

from medimg.core import Image, make_affine
from medimg.core.errors import ConfigError
from medimg.core.spec import InferenceSpec
from medimg.inference import Predictor, predict_folder
from medimg.io import read_image, write_image
from tests.conftest import shared_path, tiny_unet_checkpoint
from tests.io.dicom_study import copy_series_into_study, write_dicom_series

KEYS = ["flair.nii.gz", "t1.nii.gz"]


class Compare(nn.Module):
    """Class 1 where channel 1 > channel 0 (two channels), or where the image > 0 (one)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d = x[:, 1:2] - x[:, 0:1] if x.shape[1] == 2 else x[:, :1]
        return torch.cat([-d, d], dim=1)


def _predictor(in_channels: int, keys=None) -> Predictor:
    spec = InferenceSpec(roi_size=[8, 8, 8], sw_batch_size=2, in_channels=in_channels, image_keys=keys,
                         label_names=["background", "lesion"])
    return Predictor(Compare(), spec, device="cpu")


def test_multichannel_studies_channels_by_series_description(tmp_path):
    root = tmp_path / "studies"
    for i, pat in enumerate(("p1", "p2")):
        uid = f"1.2.826.3.{i}"
        write_dicom_series(root / pat / "flair", "AX FLAIR", study_uid=uid, number=1, seed=10 * i + 1)
        write_dicom_series(root / pat / "t1", "T1 SE", study_uid=uid, number=2, seed=10 * i + 2)
        write_dicom_series(root / pat / "adc", "ADC map", study_uid=uid, number=3, seed=10 * i + 3)
    write_dicom_series(root / "p3" / "flair", "FLAIR", study_uid="1.2.826.3.9", number=1)  # no T1
    out = tmp_path / "out"
    report = predict_folder(_predictor(2, KEYS), root, out, progress=False, channels={"flair": "*flair*", "t1": "t1*"})
    assert sorted(report.ok) == ["p1", "p2"]
    assert [c for c, _ in report.failed] == ["p3"] and "channel 't1' pattern 't1*' matches no series" in report.failed[0][1]
    # the series no pattern selects are accounted for in the log
    assert sorted(report.skipped) == [
        (f"{p}/series 3 'ADC map'", f"an image series of study '{p}' that no channel pattern selects (6 files)")
        for p in ("p1", "p2")]
    for pat in ("p1", "p2"):
        flair, t1 = read_image(root / pat / "flair"), read_image(root / pat / "t1")
        lab = read_image(out / f"{pat}.nii.gz")
        assert np.allclose(lab.affine, flair.affine, atol=1e-5)
        expected = (t1.numpy() > flair.numpy()).astype(np.uint8)
        assert 0 < expected.sum() < expected.size
        np.testing.assert_array_equal(lab.numpy(), expected)
    with pytest.raises(ConfigError, match="channel 't2' is not a channel of this model; its channels are: 'flair', 't1'"):
        predict_folder(_predictor(2, KEYS), root, out, progress=False, channels={"t2": "*T2*"})


def _unet_checkpoint(path, channels=None):
    return tiny_unet_checkpoint(path, inference={"roi_size": [8, 8, 8], "sw_batch_size": 2, "channels": channels})


def test_single_channel_model_predicts_only_the_series_its_pattern_selects(tmp_path):
    study = tmp_path / "study"
    uid = "1.2.826.4.1"
    write_dicom_series(study / "a", "T2 tumour mask", study_uid=uid, number=1, shape=(10, 12, 6))
    write_dicom_series(study / "b", "ADC", study_uid=uid, number=2, shape=(8, 9, 5))
    write_dicom_series(study / "c", "perfusion", study_uid=uid, number=3, shape=(7, 6, 4))
    ckpt = _unet_checkpoint(tmp_path / "m.pt", channels={"img": "adc"})
    # the checkpoint's pattern (inference.channels) picks the ADC series, and only it
    report = predict_folder(ckpt, study, tmp_path / "o1", device="cpu", progress=False)
    assert report.ok == ["study"] and report.all_ok
    assert read_image(tmp_path / "o1" / "study.nii.gz").spatial_shape == read_image(study / "b").spatial_shape
    assert sorted(p.name for p in (tmp_path / "o1").glob("*.nii.gz")) == ["study.nii.gz"]
    # channels= replaces it
    report = predict_folder(ckpt, study, tmp_path / "o2", device="cpu", progress=False, channels={"img": "perf*"})
    assert read_image(tmp_path / "o2" / "study.nii.gz").spatial_shape == read_image(study / "c").spatial_shape
    # no pattern: one failed case listing the series, nothing predicted
    report = predict_folder(_unet_checkpoint(tmp_path / "n.pt"), study, tmp_path / "o3", device="cpu", progress=False)
    assert report.ok == [] and [c for c, _ in report.failed] == ["study"]
    assert "holds 3 image series (#1 'T2 tumour mask' (6 files), #2 'ADC' (5 files)" in report.failed[0][1]
    assert "pass --channel img='PATTERN'" in report.failed[0][1]


def test_dicom_seg_output_matches_the_nifti_prediction(tmp_path):
    pytest.importorskip("highdicom")
    from medimg.io.dicom import find_series
    from medimg.io.dicom_seg import read_dicom_seg

    series = shared_path("dicom", "torchio_ct")
    study = tmp_path / "study"
    for n, desc in enumerate(("CT soft tissue", "CT lung"), 1):
        copy_series_into_study(series, study / f"s{n}", study_uid="1.2.826.5.1", description=desc, number=n)
    write_image(Image(torch.rand(1, 8, 8, 8), make_affine((1.0, 1.0, 1.0))), tmp_path / "nifti" / "n1.nii.gz")
    pred = _predictor(1)
    r1 = predict_folder(pred, study, tmp_path / "nii", progress=False, channels={"image": "*lung"})
    r2 = predict_folder(pred, study, tmp_path / "seg", progress=False, channels={"image": "*lung"}, output_format="dicom-seg")
    assert r1.ok == r2.ok == ["study"]
    nifti = read_image(tmp_path / "nii" / "study.nii.gz")
    assert 0 < nifti.numpy().sum() < nifti.numpy().size  # body and air: both classes present
    seg_path = tmp_path / "seg" / "study.seg.dcm"
    assert sorted(p.name for p in (tmp_path / "seg").iterdir() if p.suffix == ".dcm") == ["study.seg.dcm"]
    back = read_dicom_seg(seg_path, study / "s2")
    assert back.spatial_shape == nifti.spatial_shape and np.allclose(back.affine, nifti.affine, atol=1e-4)
    np.testing.assert_array_equal(back.numpy(), nifti.numpy())
    import pydicom

    ds = pydicom.dcmread(seg_path)
    assert [s.SegmentLabel for s in ds.SegmentSequence] == ["lesion"]
    lung = next(s for s in find_series(study).series if s.description == "CT lung")
    refs = {str(i.ReferencedSOPInstanceUID) for i in ds.ReferencedSeriesSequence[0].ReferencedInstanceSequence}
    assert ds.ReferencedSeriesSequence[0].SeriesInstanceUID == lung.series_instance_uid
    assert refs and refs <= set(lung.sop_instance_uids)
    # a NIfTI case cannot be referenced by a SEG: a failed case, nothing written
    r3 = predict_folder(pred, tmp_path / "nifti", tmp_path / "seg3", progress=False, output_format="dicom-seg")
    why = (f"case 'n1': a DICOM SEG (--format dicom-seg) references a DICOM series, but its input "
           f"'{tmp_path / 'nifti' / 'n1.nii.gz'}' is not DICOM; predict it with --format nifti (the default)")
    assert r3.ok == [] and r3.failed == [("n1", why)]
    assert not list((tmp_path / "seg3").glob("n1*"))
    with pytest.raises(ConfigError, match="output format 'dicomseg2' is not one of: nifti, dicom-seg"):
        predict_folder(pred, tmp_path / "nifti", tmp_path / "x", progress=False, output_format="dicomseg2")
    assert not (tmp_path / "x").exists()


def test_predictor_takes_a_study_folder_with_its_channel_patterns(tmp_path):
    study = tmp_path / "study"
    write_dicom_series(study / "a", "FLAIR", study_uid="1.2.826.6.1", number=1, seed=1)
    write_dicom_series(study / "b", "T1", study_uid="1.2.826.6.1", number=2, seed=2)
    pred = _predictor(2, KEYS).with_options(channels={"flair": "flair", "t1": "t1"})
    label = pred.predict(study)
    flair, t1 = read_image(study / "a"), read_image(study / "b")
    np.testing.assert_array_equal(label.numpy(), (t1.numpy() > flair.numpy()).astype(np.uint8))
    from medimg.core.errors import DataError

    with pytest.raises(DataError, match="channel 't1' pattern 't2' matches no series; image series there: #1 'FLAIR'"):
        pred.with_options(channels={"flair": "flair", "t1": "t2"}).predict(study)


def test_brats_case_folders_by_file_name_pattern(tmp_path):
    """Real BraTS case folders (FLAIR, T1c, brain mask, label): channels chosen by pattern."""
    from medimg.inference import find_cases

    test = shared_path("seg", "brats6", "test")
    keys = ["Flair_subtrMeanDivStd.nii.gz", "T1c_subtrMeanDivStd.nii.gz"]
    cases = find_cases(test, keys, 2, {"Flair_subtrMeanDivStd": "flair*", "T1c_subtrMeanDivStd": "t1c_*"})
    assert [c.case_id for c in cases] == ["brats_2013_pat0001_1", "brats_2013_pat0002_1"]
    assert all(c.ok and [p.name for p in c.paths] == keys for c in cases)
    (bad, _) = find_cases(test, keys, 2, {"Flair_subtrMeanDivStd": "*.nii.gz", "T1c_subtrMeanDivStd": "t1c_*"})
    assert not bad.ok and "pattern '*.nii.gz' matches 4 files" in bad.problem
