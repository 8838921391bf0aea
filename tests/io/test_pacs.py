"""medimg.io.pacs against a real, private Orthanc on 127.0.0.1 (tests/conftest.py: ``orthanc``).

No test talks to an address outside 127.0.0.0/8: every URL here is 127.0.0.1.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import numpy as np
import pytest
import yaml

from medimg.core.errors import ConfigError, PacsError
from medimg.io.pacs import connect, load_server, pull, push, query_series, query_studies

CHEST_CT = ("dicom", "chest_ct", "series")
N_SLICES = 24  # a reduced, contiguous part of the shared series: seconds, not minutes


def _password(instance) -> str:
    return yaml.safe_load(instance.server_file.read_text())["password"]


@pytest.fixture(scope="module")
def ct_subset(tmp_path_factory) -> Path:
    """The first N_SLICES slices (by position) of the shared chest CT, linked into a folder."""
    import pydicom

    from tests.conftest import shared_path

    src = shared_path(*CHEST_CT)
    files = sorted(src.iterdir())
    z = {f: float(pydicom.dcmread(f, stop_before_pixels=True).ImagePositionPatient[2]) for f in files}
    chosen = sorted(files, key=z.get)[:N_SLICES]
    out = tmp_path_factory.mktemp("ct_subset")
    for f in chosen:
        (out / f.name).symlink_to(f)
    return out


@pytest.fixture(scope="module")
def pushed(orthanc, ct_subset):
    """The subset stored in Orthanc; ``(client, study_uid)``."""
    client = connect(load_server(orthanc.server_file))
    report = push(client, [ct_subset])
    assert report.n_failed == 0, report.failures
    assert report.n_stored == N_SLICES
    (study,) = report.studies
    return client, study


def test_server_file_keeps_the_password_out_of_sight(tmp_path):
    path = tmp_path / "pacs.yaml"
    path.write_text("url: http://127.0.0.1:9/dicom-web\nusername: u\npassword: s3cret-pw\n")
    server = load_server(path, retries=2)
    assert server.password == "s3cret-pw" and server.retries == 2
    assert "s3cret-pw" not in repr(server) and "s3cret-pw" not in server.describe()
    path.write_text("url: http://127.0.0.1:9/dicom-web\npasword: x\n")
    with pytest.raises(ConfigError, match="unknown key.*pasword"):
        load_server(path)
    with pytest.raises(ConfigError, match="no PACS url"):
        load_server(None)
    os.environ["MEDIMG_TEST_PACS_PW"] = "from-env"
    try:
        assert load_server(None, url="http://127.0.0.1:9/", password_env="MEDIMG_TEST_PACS_PW").password == "from-env"
    finally:
        del os.environ["MEDIMG_TEST_PACS_PW"]


def test_orthanc_is_private(orthanc):
    from medimg.io.pacs.orthanc import orthanc_status

    config = yaml.safe_load((orthanc.state_dir / "orthanc.json").read_text())
    assert config["RemoteAccessAllowed"] is False and config["AuthenticationEnabled"] is True
    assert any("DicomWeb" in p for p in config["Plugins"])
    assert orthanc.url.startswith("http://127.0.0.1:")
    assert orthanc_status(orthanc.state_dir).pid == orthanc.pid
    assert oct(orthanc.server_file.stat().st_mode & 0o777) == "0o600"


def test_query_finds_the_pushed_study(pushed):
    client, study = pushed
    (row,) = query_studies(client, patient_id="123456", modality="CT")
    assert row["StudyInstanceUID"] == study
    assert row["NumberOfStudyRelatedInstances"] == str(N_SLICES)
    assert query_studies(client, patient_id="no-such-patient") == []
    date = row["StudyDate"]
    assert [r["StudyInstanceUID"] for r in query_studies(client, date_from=date, date_to=date)] == [study]
    later = str(int(date[:4]) + 1) + date[4:]
    assert query_studies(client, date_from=later) == []
    (series,) = query_series(client, study)
    assert series["Modality"] == "CT" and series["NumberOfSeriesRelatedInstances"] == str(N_SLICES)


def test_pull_gives_the_voxels_and_geometry_of_the_files(pushed, ct_subset, tmp_path):
    from medimg.io import read_image

    client, study = pushed
    report = pull(client, study, tmp_path / "pulled")
    assert report.n_files == N_SLICES
    (series_dir,) = (tmp_path / "pulled" / study).iterdir()
    a, b = read_image(ct_subset), read_image(series_dir)
    assert a.data.shape == b.data.shape and a.data.shape[-1] == N_SLICES
    assert np.array_equal(a.data.numpy(), b.data.numpy())
    assert np.array_equal(a.affine.numpy() if hasattr(a.affine, "numpy") else a.affine,
                          b.affine.numpy() if hasattr(b.affine, "numpy") else b.affine)


def test_pull_deidentified(pushed, tmp_path):
    import pydicom

    from medimg.io.layout import walk_files

    client, study = pushed
    report = pull(client, study, tmp_path / "deid", deid=True)
    assert report.deid is not None and report.deid.n_failed == 0
    files = list(walk_files(tmp_path / "deid"))
    assert len(files) == N_SLICES
    ds = pydicom.dcmread(files[0])
    assert str(ds.get("PatientName", "")) != "Doe^John" and ds.get("PatientID") != "123456"
    assert ds.StudyInstanceUID != study


def test_unknown_study_is_one_clear_error(pushed, tmp_path):
    client, _ = pushed
    with pytest.raises(PacsError, match=r"study 1\.2\.3\.999 does not exist on the PACS at http://127\.0\.0\.1"):
        pull(client, "1.2.3.999", tmp_path / "x")


def test_wrong_password_names_the_user_not_the_password(orthanc):
    server = load_server(orthanc.server_file, password="wrong-password-123")
    with pytest.raises(PacsError, match=r"refused the credentials \(user 'medimg', HTTP 401\)") as err:
        query_studies(connect(server))
    assert "wrong-password-123" not in str(err.value)
    assert _password(orthanc) not in str(err.value)


def test_unreachable_server_names_host_and_port_after_retries():
    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = load_server(None, url=f"http://127.0.0.1:{port}/dicom-web", retries=2, backoff_s=0.01)
    with pytest.raises(PacsError, match=rf"cannot reach the PACS at 127\.0\.0\.1:{port} .* after 2 attempt"):
        query_studies(connect(server))


def test_push_lists_files_that_are_not_dicom(orthanc, tmp_path):
    (tmp_path / "notes.txt").write_text("not an image")
    report = push(connect(load_server(orthanc.server_file)), [tmp_path])
    assert report.n_stored == 0 and report.n_failed == 1
    assert "not a DICOM instance" in report.failures[0][1]


@pytest.mark.slow
def test_full_chest_ct_round_trip(orthanc, tmp_path):
    """The whole shared series: pushed, pulled, read back identical to the files on disk."""
    from medimg.io import read_image
    from tests.conftest import shared_path

    src = shared_path(*CHEST_CT)
    client = connect(load_server(orthanc.server_file))
    report = push(client, [src])
    assert report.n_failed == 0
    (study,) = report.studies
    pull(client, study, tmp_path)
    (series_dir,) = (tmp_path / study).iterdir()
    a, b = read_image(src), read_image(series_dir)
    assert np.array_equal(a.data.numpy(), b.data.numpy())
    assert np.allclose(np.asarray(a.affine), np.asarray(b.affine), atol=0)


def test_dimse_c_store_then_qido_finds_it(orthanc, tmp_path):
    import uuid

    from medimg.io.pacs import store_dimse
    from tests.io.dicom_study import write_dicom_series

    study_uid = f"1.2.826.0.1.3680043.10.{uuid.uuid4().int % 10**12}"
    write_dicom_series(tmp_path / "s", "DIMSE series", study_uid=study_uid, number=4, shape=(6, 5, 3))
    server = load_server(orthanc.server_file)
    report = store_dimse(server, [tmp_path / "s"])
    assert report.n_failed == 0 and report.n_stored == 3 and report.studies == {study_uid}
    (row,) = query_series(connect(server), study_uid)
    assert row["SeriesDescription"] == "DIMSE series" and row["NumberOfSeriesRelatedInstances"] == "3"


def test_dimse_rejected_association_names_host_port_and_ae(orthanc, tmp_path):
    from medimg.io.pacs import store_dimse
    from tests.io.dicom_study import write_dicom_series

    write_dicom_series(tmp_path / "s", "x", study_uid="1.2.826.0.1.3680043.10.77", number=1, shape=(4, 4, 2))
    server = load_server(orthanc.server_file, called_ae_title="NOT_ORTHANC", retries=1)
    with pytest.raises(PacsError, match=rf"PACS at 127\.0\.0\.1:{orthanc.dicom_port} \(AE NOT_ORTHANC, "
                                        r"calling AE MEDIMG\) rejected the association"):
        store_dimse(server, [tmp_path / "s"])
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = load_server(orthanc.server_file, dicom_port=port, retries=2, backoff_s=0.01)
    with pytest.raises(PacsError, match=rf"cannot open a DICOM association with the PACS at 127\.0\.0\.1:{port} "
                                        r".*after 2 attempt"):
        store_dimse(server, [tmp_path / "s"])


def test_no_log_record_holds_the_password(pushed, orthanc, caplog, tmp_path):
    import logging

    client, study = pushed
    with caplog.at_level(logging.DEBUG):
        query_studies(client, patient_id="123456")
        pull(client, study, tmp_path / "p")
        push(client, [tmp_path / "p"])
    assert caplog.records  # dicomweb-client and urllib3 do log at DEBUG
    assert _password(orthanc) not in caplog.text
