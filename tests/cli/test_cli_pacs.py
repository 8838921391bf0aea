"""``medimg pacs query|pull|push`` against a private Orthanc on 127.0.0.1; one-line errors.

No test talks to an address outside 127.0.0.0/8.
"""

from __future__ import annotations

import socket
import uuid

import pytest
import yaml

from medimg.io.layout import walk_files
from tests.conftest import run_cli
from tests.io.dicom_study import write_dicom_series


def run(*args, env=None):
    return run_cli(*args, env={"COLUMNS": "250", **(env or {})})


@pytest.fixture(scope="module")
def study(orthanc, tmp_path_factory):
    """A small synthetic MR series pushed with the CLI; returns ``(server file, study UID, password)``."""
    study_uid = f"1.2.826.0.1.3680043.10.{uuid.uuid4().int % 10**12}"  # room for '.9' (FrameOfReferenceUID)
    folder = tmp_path_factory.mktemp("series")
    write_dicom_series(folder, "T1 axial", study_uid=study_uid, number=3)
    result = run("pacs", "push", folder, "--server", orthanc.server_file)
    assert result.exit_code == 0, result.output
    assert "stored 6 instance(s) of 1 study(ies); 0 failed" in result.output
    password = yaml.safe_load(orthanc.server_file.read_text())["password"]
    return orthanc.server_file, study_uid, password


def test_query_lists_studies_and_series_without_the_password(study, tmp_path):
    server, study_uid, password = study
    result = run("pacs", "query", "--server", server, "--patient-id", "anon", "--csv", tmp_path / "q.csv")
    assert result.exit_code == 0, result.output
    assert study_uid in result.output and password not in result.output
    assert study_uid in (tmp_path / "q.csv").read_text()
    result = run("pacs", "query", "--server", server, "--study", study_uid)
    assert result.exit_code == 0, result.output
    assert "T1 axial" in result.output and "1 series in study" in result.output


def test_pull_and_pull_deidentified(study, tmp_path):
    server, study_uid, _ = study
    result = run("pacs", "pull", study_uid, tmp_path / "raw", "--server", server)
    assert result.exit_code == 0, result.output
    assert len(list(walk_files(tmp_path / "raw" / study_uid))) == 6
    result = run("pacs", "pull", study_uid, tmp_path / "deid", "--server", server, "--deid", "--deid-secret", "k")
    assert result.exit_code == 0, result.output
    assert "de-identified (0 failed)" in result.output
    assert not (tmp_path / "deid" / study_uid).exists()  # new UIDs, so new folder names
    assert len(list(walk_files(tmp_path / "deid"))) == 6


def _error_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("error:")]


def test_unknown_study_is_one_line(study, tmp_path):
    server, _, _ = study
    result = run("pacs", "pull", "1.2.3.4.999", tmp_path / "x", "--server", server)
    assert result.exit_code == 1
    (line,) = _error_lines(result.output)
    assert "study 1.2.3.4.999 does not exist on the PACS at http://127.0.0.1" in line


def test_wrong_password_is_one_line_without_it(study):
    server, _, password = study
    result = run("pacs", "query", "--server", server, "--password-env", "WRONG_PW", env={"WRONG_PW": "nope-123"})
    assert result.exit_code == 1
    (line,) = _error_lines(result.output)
    assert "refused the credentials (user 'medimg', HTTP 401)" in line
    assert "nope-123" not in result.output and password not in result.output


def test_unreachable_server_is_one_line():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = run("pacs", "query", "--url", f"http://127.0.0.1:{port}/dicom-web", "--retries", "1")
    assert result.exit_code == 1
    (line,) = _error_lines(result.output)
    assert f"cannot reach the PACS at 127.0.0.1:{port}" in line and "1 attempt(s)" in line


def test_missing_url_is_a_usage_error():
    result = run("pacs", "query")
    assert result.exit_code == 2
    assert "gives no PACS url" in result.output and "--url or --server FILE" in result.output


def test_push_dimse(orthanc, tmp_path):
    uid = f"1.2.826.0.1.3680043.10.{uuid.uuid4().int % 10**12}"
    write_dicom_series(tmp_path / "s", "by C-STORE", study_uid=uid, number=5, shape=(4, 4, 2))
    result = run("pacs", "push", tmp_path / "s", "--server", orthanc.server_file, "--dimse")
    assert result.exit_code == 0, result.output
    assert "stored 2 instance(s) of 1 study(ies); 0 failed" in result.output
    result = run("pacs", "query", "--server", orthanc.server_file, "--study", uid)
    assert "by C-STORE" in result.output
