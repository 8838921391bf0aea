"""``dicomweb://HOST:PORT/PATH?StudyInstanceUID=...``: a PACS and the studies to take from it.

The scheme ``dicomweb`` means HTTP, ``dicomwebs`` HTTPS; ``HOST:PORT/PATH`` is the DICOMweb
root. The query names the studies: ``StudyInstanceUID`` (one, or several separated by
commas), or QIDO-RS filters: ``PatientID``, ``AccessionNumber``, ``ModalitiesInStudy``,
``StudyDate`` (``YYYYMMDD`` or a range ``YYYYMMDD-YYYYMMDD``), ``StudyDescription``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from ...core.errors import ConfigError

__all__ = ["DicomwebSource", "is_dicomweb_uri", "parse_dicomweb_uri"]

_SCHEMES = {"dicomweb": "http", "dicomwebs": "https"}
_FILTERS = {
    "PatientID": "patient_id", "AccessionNumber": "accession", "ModalitiesInStudy": "modality",
    "StudyDescription": "description",
}


@dataclass(frozen=True)
class DicomwebSource:
    """A parsed ``dicomweb://`` URI: the DICOMweb root URL, study UIDs or study filters."""

    url: str
    study_uids: tuple[str, ...] = ()
    filters: dict[str, str] = field(default_factory=dict)  #: query_studies keyword -> value


def is_dicomweb_uri(text: str) -> bool:
    """Whether ``text`` starts with ``dicomweb://`` or ``dicomwebs://``."""
    return text.lower().startswith(("dicomweb://", "dicomwebs://"))


def parse_dicomweb_uri(uri: str) -> DicomwebSource:
    """Split ``uri`` into the server URL and what selects the studies.

    Raises:
        ConfigError: not a ``dicomweb(s)://`` URI, no host, an unknown query key, or no
            query at all (every study of a PACS is never predicted by accident).
    """
    parts = urlsplit(uri)
    scheme = _SCHEMES.get(parts.scheme.lower())
    if scheme is None or not parts.hostname:
        raise ConfigError(f"{uri!r} is not a dicomweb://HOST:PORT/PATH?StudyInstanceUID=... address")
    if parts.username or parts.password:
        raise ConfigError("the dicomweb:// address must not hold credentials",
                          hint="put username and password in the server file (--server pacs.yaml)")
    url = urlunsplit((scheme, parts.netloc, parts.path.rstrip("/") or "", "", ""))
    uids: list[str] = []
    filters: dict[str, str] = {}
    for key, value in parse_qsl(parts.query, keep_blank_values=False):
        if key == "StudyInstanceUID":
            uids.extend(u.strip() for u in value.split(",") if u.strip())
        elif key in _FILTERS:
            filters[_FILTERS[key]] = value
        elif key == "StudyDate":
            start, dash, end = value.partition("-")
            filters["date_from"] = start
            filters["date_to"] = end if dash else start
        else:
            known = ", ".join(["StudyInstanceUID", "StudyDate", *_FILTERS])
            raise ConfigError(f"{uri!r}: unknown query key {key!r}; use {known}")
    if not uids and not filters:
        raise ConfigError(f"{uri!r} names no study",
                          hint="add ?StudyInstanceUID=UID (or a filter such as ?PatientID=ID)")
    return DicomwebSource(url, tuple(uids), filters)
