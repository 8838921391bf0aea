"""Push files with DIMSE C-STORE (``pynetdicom``): :func:`store_dimse`, for PACS without DICOMweb.

The server's ``host``, ``dicom_port`` and ``called_ae_title`` (and our ``ae_title``) come
from the same server file as the DICOMweb settings (:mod:`medimg.io.pacs.server`). An
association that cannot be opened is retried with back-off (``retries``, ``backoff_s``); one
the PACS rejects (an unknown AE title, say) is not, since it would be rejected again.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ...core.errors import ConfigError, MissingDependencyError, PacsError
from .server import PacsServer
from .transfer import PushReport, input_files

__all__ = ["store_dimse"]

#: C-STORE statuses that mean stored (PS3.4 Table B.2-1: success and the warnings).
_STORED = {0x0000, 0xB000, 0xB006, 0xB007}


def _where(server: PacsServer) -> str:
    return f"{server.host}:{server.dicom_port} (AE {server.called_ae_title}, calling AE {server.ae_title})"


def _associate(server: PacsServer, contexts: set[tuple[str, str]]) -> Any:
    try:
        from pynetdicom import AE
    except ImportError:
        raise MissingDependencyError("C-STORE needs the 'pynetdicom' package",
                                     hint="pip install 'medimg[pacs]'") from None
    from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

    ae = AE(ae_title=server.ae_title)
    ae.acse_timeout = ae.network_timeout = ae.dimse_timeout = server.timeout
    for sop_class in sorted({c for c, _ in contexts})[:128]:
        syntaxes = {ts for c, ts in contexts if c == sop_class} | {ExplicitVRLittleEndian, ImplicitVRLittleEndian}
        ae.add_requested_context(sop_class, sorted(syntaxes))
    wait = server.backoff_s
    for attempt in range(1, server.retries + 1):
        assoc = ae.associate(server.host, server.dicom_port, ae_title=server.called_ae_title)
        if assoc.is_established:
            return assoc
        if assoc.is_rejected:
            raise PacsError(f"the PACS at {_where(server)} rejected the association",
                            hint="check called_ae_title and ae_title in the server file, and that the PACS "
                                 "accepts our AE title")
        if attempt < server.retries:
            time.sleep(wait)
            wait *= 2
    raise PacsError(f"cannot open a DICOM association with the PACS at {_where(server)} "
                    f"after {server.retries} attempt(s)",
                    hint="check that the server runs and host, dicom_port and called_ae_title are right")


def store_dimse(server: PacsServer, paths: Iterable[str | Path]) -> PushReport:
    """Store DICOM files (or every file under folders) on the PACS with C-STORE.

    Raises:
        ConfigError: the server file lacks ``host``, ``dicom_port`` or ``called_ae_title``.
        PacsError: the association cannot be opened or is rejected (nothing was sent).
    """
    import pydicom
    from pydicom.errors import InvalidDicomError

    missing = [k for k in ("host", "dicom_port", "called_ae_title") if getattr(server, k) is None]
    if missing:
        raise ConfigError(f"C-STORE needs {', '.join(missing)} in the server file",
                          hint="add host, dicom_port and called_ae_title (the PACS's DICOM address and AE title)")
    report = PushReport()
    datasets: list[tuple[Path, Any, str, str]] = []
    for path in input_files(paths):
        try:
            ds = pydicom.dcmread(path)
            datasets.append((path, ds, str(ds.SOPClassUID), str(ds.file_meta.TransferSyntaxUID)))
        except (InvalidDicomError, AttributeError, OSError, ValueError) as exc:
            report.failures.append((str(path), f"not a DICOM instance: {' '.join(str(exc).split())[:120]}"))
    if not datasets:
        return report
    assoc = _associate(server, {(c, ts) for _, _, c, ts in datasets})
    try:
        for path, ds, _, _ in datasets:
            status = assoc.send_c_store(ds)
            code = getattr(status, "Status", None)
            if code in _STORED:
                report.n_stored += 1
                report.studies.add(str(ds.StudyInstanceUID))
            else:
                why = "no answer (association lost)" if code is None else f"status 0x{code:04X}"
                report.failures.append((str(path), f"C-STORE refused by the PACS at {_where(server)}: {why}"))
    finally:
        if assoc.is_established:
            assoc.release()
    return report
