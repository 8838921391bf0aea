"""A private Orthanc PACS on the loopback interface, for tests and trials of ``medimg pacs``.

:func:`start_orthanc` writes a configuration into a state folder (storage in a ``storage``
sub-folder, free loopback ports, the DICOMweb plugin enabled, an AE title, a generated user
and password, ``RemoteAccessAllowed: false``), starts the ``Orthanc`` program of the Debian
packages ``orthanc`` and ``orthanc-dicomweb`` and waits until its REST API answers.
:func:`stop_orthanc` asks it to stop (SIGTERM, then SIGKILL after a grace period).
The state folder also receives ``pacs.yaml``, the server file ``medimg pacs --server``
reads (mode 0600: it holds the password; it is never printed).

From the shell: ``scripts/orthanc.sh start|stop|status [STATE_DIR]`` (a thin wrapper around
``python -m medimg.io.pacs.orthanc``).

Orthanc's HTTP server cannot be bound to one address; ``RemoteAccessAllowed: false`` makes
it refuse every request that does not come from the local host. Its DICOM (DIMSE) listener
is enabled on a free port with ``DicomCheckCalledAet`` so a C-STORE must name its AE title.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from ...core.errors import MedimgError

__all__ = [
    "ORTHANC_PACKAGES",
    "OrthancInstance",
    "find_orthanc",
    "orthanc_status",
    "start_orthanc",
    "stop_orthanc",
]

#: The Debian packages that provide the server and its DICOMweb plugin.
ORTHANC_PACKAGES = ("orthanc", "orthanc-dicomweb")
#: Where Debian's ``orthanc-dicomweb`` puts its plugin (the first that exists is used).
_PLUGIN_CANDIDATES = (
    "/usr/share/orthanc/plugins/libOrthancDicomWeb.so",
    "/usr/lib/orthanc/libOrthancDicomWeb.so",
)
AE_TITLE = "ORTHANC"
USERNAME = "medimg"
_PID_FILE = "orthanc.pid"
_LOG_FILE = "orthanc.log"


@dataclass(frozen=True)
class OrthancInstance:
    """A running private Orthanc: its state folder, process id, ports and server file."""

    state_dir: Path
    pid: int
    http_port: int
    dicom_port: int
    ae_title: str
    server_file: Path

    @property
    def url(self) -> str:
        """The DICOMweb root, ``http://127.0.0.1:PORT/dicom-web``."""
        return f"http://127.0.0.1:{self.http_port}/dicom-web"


def find_orthanc() -> tuple[str, str] | None:
    """``(Orthanc program, DICOMweb plugin)`` paths, or ``None`` where either is missing."""
    program = shutil.which("Orthanc") or next(
        (p for p in ("/usr/sbin/Orthanc", "/usr/bin/Orthanc") if os.access(p, os.X_OK)), None
    )
    plugin = next((p for p in _PLUGIN_CANDIDATES if Path(p).is_file()), None)
    if program is None or plugin is None:
        return None
    return program, plugin


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _write_config(state_dir: Path, plugin: str, http_port: int, dicom_port: int, password: str) -> Path:
    storage = state_dir / "storage"
    storage.mkdir(parents=True, exist_ok=True)
    config = {
        "Name": "medimg-private-orthanc",
        "StorageDirectory": str(storage),
        "IndexDirectory": str(storage),
        "StorageCompression": False,
        "HttpPort": http_port,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": True,
        "RegisteredUsers": {USERNAME: password},
        "DicomServerEnabled": True,
        "DicomAet": AE_TITLE,
        "DicomPort": dicom_port,
        "DicomCheckCalledAet": True,
        "DicomAlwaysAllowStore": True,
        "DicomAlwaysAllowEcho": True,
        "DicomModalities": {},
        "OrthancPeers": {},
        "HttpTimeout": 30,
        "Plugins": [plugin],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": False, "Host": "127.0.0.1"},
    }
    path = state_dir / "orthanc.json"
    path.write_text(json.dumps(config, indent=2))
    path.chmod(0o600)
    return path


def _write_server_file(state_dir: Path, http_port: int, dicom_port: int, password: str) -> Path:
    import yaml

    path = state_dir / "pacs.yaml"
    server = {
        "url": f"http://127.0.0.1:{http_port}/dicom-web",
        "username": USERNAME,
        "password": password,
        "host": "127.0.0.1",
        "dicom_port": dicom_port,
        "called_ae_title": AE_TITLE,
        "ae_title": "MEDIMG",
    }
    path.write_text(yaml.safe_dump(server, sort_keys=False))
    path.chmod(0o600)
    return path


def _answers(http_port: int, password: str, timeout: float = 2.0) -> bool:
    import requests

    try:
        r = requests.get(f"http://127.0.0.1:{http_port}/system", auth=(USERNAME, password), timeout=timeout)
    except requests.RequestException:
        return False
    return r.status_code == 200


def _log_tail(state_dir: Path, lines: int = 5) -> str:
    try:
        text = (state_dir / _LOG_FILE).read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return " | ".join(text[-lines:])


def start_orthanc(state_dir: str | Path, *, wait_s: float = 60.0) -> OrthancInstance:
    """Start a private Orthanc whose state lives in ``state_dir`` and wait until it answers.

    Args:
        state_dir: a folder for the configuration, storage, log, pid file and ``pacs.yaml``
            (created; an Orthanc already running from it is an error).
        wait_s: how long to wait for the REST API to answer, in seconds.

    Raises:
        MedimgError: Orthanc is not installed, already runs from ``state_dir``, exits early or
            does not answer within ``wait_s`` (the message quotes the end of its log).
    """
    found = find_orthanc()
    if found is None:
        raise MedimgError(
            "Orthanc or its DICOMweb plugin is not installed",
            hint=f"install the Debian packages: apt-get install -y {' '.join(ORTHANC_PACKAGES)}",
        )
    program, plugin = found
    state_dir = Path(state_dir).resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    if orthanc_status(state_dir) is not None:
        raise MedimgError(f"an Orthanc already runs from '{state_dir}'", hint="stop it first (orthanc.sh stop)")
    http_port, dicom_port = _free_port(), _free_port()
    while dicom_port == http_port:
        dicom_port = _free_port()
    password = secrets.token_urlsafe(18)
    config = _write_config(state_dir, plugin, http_port, dicom_port, password)
    server_file = _write_server_file(state_dir, http_port, dicom_port, password)
    with open(state_dir / _LOG_FILE, "ab") as log:
        proc = subprocess.Popen(
            [program, str(config)],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )
    (state_dir / _PID_FILE).write_text(f"{proc.pid} {http_port} {dicom_port}\n")
    deadline = time.monotonic() + wait_s
    while not _answers(http_port, password):
        if proc.poll() is not None or time.monotonic() > deadline:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            (state_dir / _PID_FILE).unlink(missing_ok=True)
            raise MedimgError(
                f"Orthanc from '{state_dir}' did not answer on 127.0.0.1:{http_port} "
                f"(exit code {proc.returncode}); its log ends: {_log_tail(state_dir)}"
            )
        time.sleep(0.2)
    return OrthancInstance(state_dir, proc.pid, http_port, dicom_port, AE_TITLE, server_file)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie child of this process is not running
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state != "Z"


def orthanc_status(state_dir: str | Path) -> OrthancInstance | None:
    """The Orthanc running from ``state_dir``, or ``None`` (no pid file, or its process is gone)."""
    state_dir = Path(state_dir).resolve()
    try:
        pid, http_port, dicom_port = (int(v) for v in (state_dir / _PID_FILE).read_text().split())
    except (OSError, ValueError):
        return None
    if not _pid_alive(pid):
        return None
    return OrthancInstance(state_dir, pid, http_port, dicom_port, AE_TITLE, state_dir / "pacs.yaml")


def stop_orthanc(state_dir: str | Path, *, grace_s: float = 20.0) -> bool:
    """Stop the Orthanc running from ``state_dir``; ``True`` if one was running.

    SIGTERM lets Orthanc close its database cleanly; SIGKILL follows after ``grace_s``.
    """
    instance = orthanc_status(state_dir)
    if instance is None:
        (Path(state_dir) / _PID_FILE).unlink(missing_ok=True)
        return False
    os.kill(instance.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while _pid_alive(instance.pid) and time.monotonic() < deadline:
        _reap(instance.pid)
        time.sleep(0.1)
    if _pid_alive(instance.pid):
        os.kill(instance.pid, signal.SIGKILL)
    _reap(instance.pid)
    (instance.state_dir / _PID_FILE).unlink(missing_ok=True)
    return True


def _reap(pid: int) -> None:
    """Collect ``pid``'s exit status where it is this process's child (no zombie)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _main(argv: list[str]) -> int:
    usage = "usage: orthanc.sh start|stop|status [STATE_DIR]  (default STATE_DIR: .orthanc)"
    if not argv or argv[0] not in ("start", "stop", "status"):
        print(usage, file=sys.stderr)
        return 2
    state_dir = Path(argv[1] if len(argv) > 1 else ".orthanc")
    try:
        if argv[0] == "start":
            inst = start_orthanc(state_dir)
            print(f"Orthanc running (pid {inst.pid}): DICOMweb {inst.url}, DICOM 127.0.0.1:{inst.dicom_port} "
                  f"AE {inst.ae_title}; server file for `medimg pacs --server`: {inst.server_file}")
        elif argv[0] == "stop":
            print("Orthanc stopped" if stop_orthanc(state_dir) else f"no Orthanc running from '{state_dir}'")
        else:
            inst = orthanc_status(state_dir)
            if inst is None:
                print(f"no Orthanc running from '{state_dir}'")
                return 1
            print(f"Orthanc running (pid {inst.pid}): DICOMweb {inst.url}, server file {inst.server_file}")
    except MedimgError as exc:
        print(f"error: {exc.message}" + (f"\nhint: {exc.hint}" if exc.hint else ""), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
