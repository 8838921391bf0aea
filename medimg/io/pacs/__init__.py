"""Talk to a PACS: find studies, pull them into folders, push files back (DICOMweb).

Built on ``dicomweb-client`` (``pip install 'medimg[pacs]'``)::

    server = load_server("pacs.yaml")            # url, username, password... (server.py)
    client = connect(server)
    studies = query_studies(client, patient_id="123456", modality="CT")
    pull(client, studies[0]["StudyInstanceUID"], "in/", deid=True)
    push(client, ["out/seg.dcm"])

The modules, by verb: :mod:`~medimg.io.pacs.server` (where the PACS is, credentials),
:mod:`~medimg.io.pacs.client` (connection, retries with back-off, one-line errors),
:mod:`~medimg.io.pacs.query` (QIDO-RS), :mod:`~medimg.io.pacs.transfer` (WADO-RS pull,
STOW-RS push), :mod:`~medimg.io.pacs.dimse` (C-STORE push with pynetdicom), :mod:`~medimg.io.pacs.uri` (``dicomweb://`` addresses), :mod:`~medimg.io.pacs.orthanc` (a private Orthanc on loopback for tests and
trials). Credentials are never printed or logged: messages name the URL and the user only.
"""

from __future__ import annotations

from .client import PacsClient, connect
from .dimse import store_dimse
from .query import SERIES_FIELDS, STUDY_FIELDS, query_series, query_studies
from .server import PacsServer, load_server
from .transfer import PullReport, PushReport, pull, push
from .uri import DicomwebSource, is_dicomweb_uri, parse_dicomweb_uri

__all__ = [
    "DicomwebSource",
    "PacsClient",
    "PacsServer",
    "PullReport",
    "PushReport",
    "SERIES_FIELDS",
    "STUDY_FIELDS",
    "connect",
    "is_dicomweb_uri",
    "load_server",
    "parse_dicomweb_uri",
    "pull",
    "push",
    "query_series",
    "query_studies",
    "store_dimse",
]
