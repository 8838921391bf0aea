"""Headless Chromium for tests that look at a report the way a person's browser would.

:func:`ensure_chromium` finds ``chromium`` on the PATH or, when missing, installs the
Debian package with ``apt-get install -y chromium`` (as root, where apt-get exists: the
project's own setup, run by the test that needs it). :func:`images_loaded` opens an HTML
file from disk (``file://``, no server) with ``--dump-dom`` after adding a small script
that records, once the page has loaded, how many ``<img>`` elements there are and how
many decoded (``naturalWidth > 0``).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

NAMES = ("chromium", "chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
         "--disable-dev-shm-usage", "--virtual-time-budget=10000"]


def _find() -> str | None:
    return next((p for p in map(shutil.which, NAMES) if p), None)


def ensure_chromium() -> tuple[str | None, str]:
    """``(executable, "")``, or ``(None, why it is not available)``."""
    exe = _find()
    if exe is not None:
        return exe, ""
    if shutil.which("apt-get") is None:
        return None, "chromium is not installed and this machine has no apt-get to install it"
    if os.geteuid() != 0:
        return None, "chromium is not installed; installing it needs root: sudo apt-get install -y chromium"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    cmd = ["apt-get", "install", "-y", "--no-install-recommends", "chromium"]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode != 0:  # the package lists may be missing or stale
        subprocess.run(["apt-get", "update"], capture_output=True, text=True, env=env)
        done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    exe = _find()
    if exe is None:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        return None, f"apt-get install -y chromium failed: {tail[0]}"
    return exe, ""


_PROBE = """<script>
window.addEventListener('load', function () {
  var imgs = Array.from(document.images);
  var ok = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
  document.body.setAttribute('data-images', imgs.length + '/' + ok);
});
</script>"""


def images_loaded(chromium: str, html: Path, work: Path) -> tuple[int, int, str]:
    """``(images, images decoded, dumped DOM)`` of ``html`` opened from disk in headless
    Chromium. The probe goes into a copy in ``work``, so the report itself stays script-free."""
    work.mkdir(parents=True, exist_ok=True)
    probe = work / html.name
    probe.write_text(html.read_text(encoding="utf-8").replace("</body>", _PROBE + "</body>"), encoding="utf-8")
    dom = subprocess.run([chromium, *FLAGS, f"--user-data-dir={work / 'profile'}", "--dump-dom", probe.as_uri()],
                         capture_output=True, text=True, timeout=120).stdout
    m = re.search(r'data-images="(\d+)/(\d+)"', dom)
    if m is None:
        raise AssertionError(f"the page did not finish loading in chromium; DOM starts: {dom[:300]!r}")
    return int(m.group(1)), int(m.group(2)), dom


def screenshot(chromium: str, html: Path, png: Path, size: str = "1100,1600") -> Path:
    """A PNG of ``html`` as Chromium draws it (``--screenshot``)."""
    subprocess.run([chromium, *FLAGS, f"--user-data-dir={png.parent / 'profile-shot'}", f"--window-size={size}",
                    f"--screenshot={png}", html.as_uri()], capture_output=True, text=True, timeout=120)
    return png
