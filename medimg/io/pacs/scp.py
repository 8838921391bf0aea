"""A DICOM storage SCP (``pynetdicom``) that spools what it receives to disk: :func:`start_storage_scp`.

Each instance received by C-STORE from an allowed calling AE title is written to
``SPOOL/<StudyInstanceUID>/<SOPInstanceUID>.dcm`` through a temporary name and an atomic
rename, so a file in the spool is always whole (a crash leaves at most a hidden ``.part``
file, never listed). Associations from other AE titles are rejected.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ...core.errors import MissingDependencyError

__all__ = ["start_storage_scp"]

_UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")
#: C-STORE status: "Processing failure" (PS3.4 Table B.2-1).
_FAILURE = 0xC211


def _on_store(spool: Path):
    def handle(event: Any) -> int:
        ds = event.dataset
        ds.file_meta = event.file_meta
        study, sop = str(ds.get("StudyInstanceUID", "")), str(ds.get("SOPInstanceUID", ""))
        if not (_UID.match(study) and _UID.match(sop)):
            return _FAILURE
        folder = spool / study
        for _ in range(3):  # the node may queue the folder (rename it) between two files
            try:
                folder.mkdir(parents=True, exist_ok=True)
                part = folder / f".{sop}.part"
                ds.save_as(part, enforce_file_format=True)
                os.replace(part, folder / f"{sop}.dcm")
                return 0x0000
            except FileNotFoundError:
                continue
        return _FAILURE

    return handle


def start_storage_scp(spool: str | Path, host: str, port: int, ae_title: str,
                      allowed_ae_titles: Sequence[str]) -> Any:
    """Start listening on ``host:port`` as ``ae_title`` in a background thread; returns the
    server (``.shutdown()`` stops it). Only ``allowed_ae_titles`` may associate."""
    try:
        from pynetdicom import AE, AllStoragePresentationContexts, evt
        from pynetdicom.sop_class import Verification
    except ImportError:
        raise MissingDependencyError("the storage node needs the 'pynetdicom' package",
                                     hint="pip install 'medimg[pacs]'") from None
    spool = Path(spool)
    spool.mkdir(parents=True, exist_ok=True)
    ae = AE(ae_title=ae_title)
    ae.supported_contexts = AllStoragePresentationContexts
    ae.add_supported_context(Verification)
    ae.require_calling_aet = list(allowed_ae_titles)
    return ae.start_server((host, port), block=False, evt_handlers=[(evt.EVT_C_STORE, _on_store(spool))])
