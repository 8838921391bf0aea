"""``medimg predict CHECKPOINT dicomweb://... OUT --push`` against a private Orthanc on 127.0.0.1.

A tiny random-weight single-channel UNet; a small synthetic MR study. No test talks to an
address outside 127.0.0.0/8.
"""

from __future__ import annotations

import csv
import uuid

import numpy as np
import pytest

pytest.importorskip("highdicom")

from medimg.inference import predict_folder
from medimg.inference.pacs import seg_tag
from medimg.io import read_image
from medimg.io.pacs import connect, load_server, parse_dicomweb_uri, pull, push, query_series
from tests.conftest import run_cli, tiny_unet_checkpoint
from tests.io.dicom_study import write_dicom_series


def run(*args):
    return run_cli(*args, env={"COLUMNS": "250"})


@pytest.fixture(scope="module")
def setup(orthanc, tmp_path_factory):
    root = tmp_path_factory.mktemp("pacs_predict")
    study_uid = f"1.2.826.0.1.3680043.10.{uuid.uuid4().int % 10**12}"  # room for '.9' (FrameOfReferenceUID)
    series = root / "study" / "t1"
    write_dicom_series(series, "T1 axial", study_uid=study_uid, number=1, shape=(10, 12, 6), seed=3)
    client = connect(load_server(orthanc.server_file))
    assert push(client, [series]).n_stored == 6
    ckpt = tiny_unet_checkpoint(root / "model.pt")
    return client, orthanc, study_uid, series, ckpt, root


def _log(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_parse_dicomweb_uri():
    src = parse_dicomweb_uri("dicomweb://127.0.0.1:8042/dicom-web?StudyInstanceUID=1.2,1.3")
    assert src.url == "http://127.0.0.1:8042/dicom-web" and src.study_uids == ("1.2", "1.3")
    src = parse_dicomweb_uri("dicomwebs://127.0.0.1/dw?PatientID=p7&StudyDate=20200101-20201231")
    assert src.url == "https://127.0.0.1/dw"
    assert src.filters == {"patient_id": "p7", "date_from": "20200101", "date_to": "20201231"}
    from medimg.core.errors import ConfigError

    with pytest.raises(ConfigError, match="names no study"):
        parse_dicomweb_uri("dicomweb://127.0.0.1:8042/dicom-web")
    with pytest.raises(ConfigError, match="unknown query key 'Patient'"):
        parse_dicomweb_uri("dicomweb://127.0.0.1:8042/dicom-web?Patient=x")


def test_predict_push_stores_a_seg_of_the_source_series(setup, tmp_path):
    from medimg.io.dicom_seg import read_dicom_seg

    client, orthanc, study_uid, series, ckpt, _ = setup
    uri = f"dicomweb://127.0.0.1:{orthanc.http_port}/dicom-web?StudyInstanceUID={study_uid}"
    out = tmp_path / "out"
    result = run("predict", ckpt, uri, out, "--push", "--server", orthanc.server_file, "--device", "cpu")
    assert result.exit_code == 0, result.output
    (row,) = _log(out / "predict_log.csv")
    assert row["case_id"] == study_uid and row["status"] == "ok" and row["checkpoint_sha256"]
    seg_uid = row["seg_series_uid"]
    # Orthanc lists the SEG in the same study, tagged with the checkpoint
    (seg_row,) = query_series(client, study_uid, modality="SEG")
    assert seg_row["SeriesInstanceUID"] == seg_uid
    assert seg_row["SeriesDescription"] == seg_tag(row["checkpoint_sha256"])
    # it references the source series, and its labels equal the NIfTI prediction
    pulled = pull(client, study_uid, tmp_path / "back", series_uids=[seg_uid])
    assert pulled.n_files == 1
    (seg_file,) = (tmp_path / "back" / study_uid / seg_uid).iterdir()
    import pydicom

    seg = pydicom.dcmread(seg_file)
    source_uid = pydicom.dcmread(next(series.iterdir()), stop_before_pixels=True).SeriesInstanceUID
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == source_uid
    assert seg.ContentDescription == row["checkpoint_sha256"]
    predict_folder(ckpt, series, tmp_path / "nii", device="cpu", progress=False)
    (nii,) = (tmp_path / "nii").glob("*.nii.gz")
    expected = read_image(nii).numpy()
    assert 0 < expected.sum() < expected.size  # the random model marks some voxels, not all
    labels = read_dicom_seg(seg_file, source=series).numpy()
    np.testing.assert_array_equal(labels, expected)

    # a re-run skips the study: it already holds a SEG from this checkpoint
    result = run("predict", ckpt, uri, out, "--push", "--server", orthanc.server_file, "--device", "cpu")
    assert result.exit_code == 0, result.output
    rows = _log(out / "predict_log.csv")
    assert rows[-1]["status"] == "skipped" and rows[-1]["seg_series_uid"] == seg_uid
    assert "already holds SEG series" in rows[-1]["error"]
    assert len(query_series(client, study_uid, modality="SEG")) == 1


def test_unknown_study_fails_alone(setup, tmp_path):
    _, orthanc, study_uid, _, ckpt, _ = setup
    uri = f"dicomweb://127.0.0.1:{orthanc.http_port}/dicom-web?StudyInstanceUID=1.2.3.404,{study_uid}"
    out = tmp_path / "out"
    result = run("predict", ckpt, uri, out, "--server", orthanc.server_file, "--device", "cpu", "--overwrite")
    assert result.exit_code == 1
    rows = {r["case_id"]: r for r in _log(out / "predict_log.csv")}
    assert rows["1.2.3.404"]["status"] == "failed"
    assert "study 1.2.3.404 does not exist on the PACS" in rows["1.2.3.404"]["error"]
    assert rows[study_uid]["status"] == "ok"  # the other study goes on (not pushed: no --push)
    assert (out / f"{study_uid}.seg.dcm").is_file()


def test_push_without_a_dicomweb_input_is_a_usage_error(setup, tmp_path):
    _, _, _, series, ckpt, _ = setup
    result = run("predict", ckpt, series, tmp_path / "o", "--push")
    assert result.exit_code == 2 and "dicomweb://" in result.output
