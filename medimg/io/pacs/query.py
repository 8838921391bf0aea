"""Find studies and series on a PACS (QIDO-RS): :func:`query_studies`, :func:`query_series`.

Each match comes back as a plain ``dict`` keyed by DICOM keyword (``StudyInstanceUID``,
``PatientID``, ``StudyDate``...), values as text (several values joined with ``\\``), so
rows print, sort and go into a CSV as they are.
"""

from __future__ import annotations

from typing import Any

from .client import PacsClient

__all__ = ["SERIES_FIELDS", "STUDY_FIELDS", "query_series", "query_studies"]

#: The attributes of a study row (PS3.18 Table 10.6.1-5 lists what QIDO-RS returns).
STUDY_FIELDS = (
    "StudyInstanceUID", "PatientID", "StudyDate", "AccessionNumber", "ModalitiesInStudy",
    "StudyDescription", "NumberOfStudyRelatedSeries", "NumberOfStudyRelatedInstances",
)
#: The attributes of a series row.
SERIES_FIELDS = (
    "StudyInstanceUID", "SeriesInstanceUID", "Modality", "SeriesNumber", "SeriesDescription",
    "NumberOfSeriesRelatedInstances",
)


def _text(element: dict[str, Any] | None) -> str:
    """A DICOM JSON element (PS3.18 F.2) as text: PN by its alphabetic group."""
    if not element:
        return ""
    values = element.get("Value") or []
    out = []
    for v in values:
        if isinstance(v, dict):
            v = v.get("Alphabetic", "")
        out.append(str(v))
    return "\\".join(out)


def _row(match: dict[str, Any], keys: tuple[str, ...]) -> dict[str, str]:
    from pydicom.datadict import tag_for_keyword

    return {k: _text(match.get(f"{tag_for_keyword(k):08X}")) for k in keys}


def _date_range(date_from: str | None, date_to: str | None) -> str | None:
    """QIDO's range matching ``YYYYMMDD-YYYYMMDD`` (either end open); dashes in dates dropped."""
    if date_from is None and date_to is None:
        return None
    a, b = ((d or "").replace("-", "") for d in (date_from, date_to))
    return f"{a}-{b}"


def query_studies(
    client: PacsClient,
    *,
    patient_id: str | None = None,
    accession: str | None = None,
    modality: str | None = None,
    date_from: str | None = None,
    date_to: str | None = None,
    description: str | None = None,
    study_uid: str | None = None,
    limit: int | None = None,
) -> list[dict[str, str]]:
    """The studies matching every filter given (QIDO-RS ``/studies``).

    Args:
        client: a connection (:func:`~medimg.io.pacs.connect`).
        patient_id, accession, study_uid: exact matches (``*`` and ``?`` are wildcards).
        modality: a modality the study holds (``CT``, ``MR``...).
        date_from, date_to: study date range, ``YYYYMMDD`` or ``YYYY-MM-DD``, inclusive; either
            may be left open.
        description: StudyDescription, with ``*`` wildcards (``*chest*``).
        limit: at most this many studies.

    Returns:
        One dict per study, with the keys of :data:`STUDY_FIELDS`, sorted by date then UID.
    """
    filters = {
        "PatientID": patient_id, "AccessionNumber": accession, "ModalitiesInStudy": modality,
        "StudyDate": _date_range(date_from, date_to), "StudyDescription": description,
        "StudyInstanceUID": study_uid,
    }
    filters = {k: v for k, v in filters.items() if v is not None}
    matches = client.call(
        client.web.search_for_studies, search_filters=filters, fields=list(STUDY_FIELDS),
        limit=limit, what="the study query",
    )
    rows = [_row(m, STUDY_FIELDS) for m in matches]
    return sorted(rows, key=lambda r: (r["StudyDate"], r["StudyInstanceUID"]))


def query_series(
    client: PacsClient,
    study_uid: str,
    *,
    modality: str | None = None,
    description: str | None = None,
) -> list[dict[str, str]]:
    """The series of study ``study_uid`` (QIDO-RS ``/studies/UID/series``), optionally filtered.

    Returns:
        One dict per series, with the keys of :data:`SERIES_FIELDS`, sorted by series number.
        An unknown study gives an empty list (QIDO answers no match, not an error).
    """
    filters = {k: v for k, v in {"Modality": modality, "SeriesDescription": description}.items() if v}
    matches = client.call(
        client.web.search_for_series, study_uid, search_filters=filters, fields=list(SERIES_FIELDS),
        what=f"the series of study {study_uid}",
    )
    rows = [_row(m, SERIES_FIELDS) for m in matches]

    def number(r: dict[str, str]) -> tuple[int, str]:
        try:
            return int(r["SeriesNumber"]), r["SeriesInstanceUID"]
        except ValueError:
            return 1 << 30, r["SeriesInstanceUID"]

    return sorted(rows, key=number)
