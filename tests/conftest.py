"""Shared fixtures: the real-data folder and small synthetic volumes."""

from __future__ import annotations

import os
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
