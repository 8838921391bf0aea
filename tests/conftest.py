"""Shared fixtures: the real-data folder and small synthetic volumes."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
#: ../shared/data beside the checkout (override with MEDIMG_SHARED_DATA, optional).
SHARED_DATA = Path(os.environ.get("MEDIMG_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The project's real data sets; tests using it skip with a reason where it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA} (see README: data layout)")
    return SHARED_DATA


def shared_path(*parts: str) -> Path:
    """A path inside the shared data, skipping the test if it does not exist."""
    p = SHARED_DATA.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"real data file not found: {p}")
    return p


#: The environment of a command-line test: wide lines (messages unwrapped), no colour codes.
CLI_ENV = {"COLUMNS": "200", "NO_COLOR": "1"}


def run_cli(*args: object, env: dict[str, str] | None = None):
    """``medimg ARGS...`` in-process (Typer's CliRunner), arguments as strings; the result's
    ``exit_code`` and ``output``. ``env`` is added to :data:`CLI_ENV`."""
    from typer.testing import CliRunner

    from medimg.cli import app

    return CliRunner().invoke(app, [str(a) for a in args], env={**CLI_ENV, **(env or {})})


def tiny_unet_checkpoint(
    path: Path,
    *,
    in_channels: int = 1,
    label_names: Sequence[str] = ("background", "lesion"),
    preprocess: Sequence[dict] = (),
    inference: dict | None = None,
    data: dict | None = None,
) -> Path:
    """A seeded 3D UNet (channels 4, 8) saved as a segmentation checkpoint: one output per
    label name; ``inference`` default ``roi_size`` 8^3 with 2 tiles a batch, ``data`` default
    one image ``img.nii.gz``."""
    import torch

    from medimg.inference import save_checkpoint
    from medimg.models import create_model

    params = {"in_channels": in_channels, "out_channels": len(label_names), "spatial_dims": 3,
              "channels": [4, 8], "strides": [2]}
    torch.manual_seed(0)
    return save_checkpoint(
        path, create_model("unet", **params), model_name="unet", model_params=params,
        label_names=list(label_names), preprocess=list(preprocess),
        inference=inference or {"roi_size": [8, 8, 8], "sw_batch_size": 2},
        data=data or {"images": ["img.nii.gz"]},
    )


@pytest.fixture(scope="session")
def chromium() -> str:
    """The headless Chromium executable (Debian package ``chromium``) for tests that open a
    report in a browser: installed with apt-get when missing and the tests run as root,
    otherwise those tests skip with the reason."""
    from tests.browser import ensure_chromium

    exe, why = ensure_chromium()
    if exe is None:
        pytest.skip(why)
    return exe


def _install_orthanc() -> str | None:
    """Install the Debian packages orthanc and orthanc-dicomweb where missing and allowed
    (root and apt-get); ``None`` when Orthanc is there, else why it is not."""
    import shutil
    import subprocess

    from medimg.io.pacs.orthanc import ORTHANC_PACKAGES, find_orthanc

    if find_orthanc() is not None:
        return None
    if not hasattr(os, "geteuid") or os.geteuid() != 0 or shutil.which("apt-get") is None:
        return (f"Orthanc not installed and this machine cannot install it (needs root and apt-get): "
                f"apt-get install -y {' '.join(ORTHANC_PACKAGES)}")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    install = ["apt-get", "install", "-y", "--no-install-recommends", *ORTHANC_PACKAGES]
    for cmd in (install, ["apt-get", "update"], install):
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
        if cmd is install and done.returncode == 0:
            break
    if find_orthanc() is None:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        return f"installing Orthanc with apt-get failed: {tail[0]}"
    return None


@pytest.fixture(scope="module")
def orthanc(tmp_path_factory):
    """A private Orthanc (DICOMweb, loopback ports, generated password) for a test module;
    the packages are installed first where missing and allowed, else the test skips."""
    pytest.importorskip("dicomweb_client", reason="needs the pacs extra: pip install 'medimg[pacs]'")
    reason = _install_orthanc()
    if reason is not None:
        pytest.skip(reason)
    from medimg.io.pacs.orthanc import start_orthanc, stop_orthanc

    state = tmp_path_factory.mktemp("orthanc")
    instance = start_orthanc(state)
    try:
        yield instance
    finally:
        stop_orthanc(state)
