"""PS3.15 Annex E, Table E.1-1 (the Basic Application Level Confidentiality Profile), loaded.

medimg does not carry its own copy of the table's basic-profile column: it is read, on
first use, from the newest edition that the ``dicom-anonymizer`` package ships (a
maintained transcription of the standard's table, a dependency of medimg), so a new
edition of the standard reaches medimg by upgrading that package. What medimg adds here:

* :data:`RETAIN`: the attributes that the E.3 retain options keep (the table's option
  columns, which that package does not carry), for the options medimg implements;
* :data:`SUPPLEMENT`: rows medimg removes although the package's table does not list
  them (attributes that earlier medimg releases removed and that identify a patient or a
  device); they never override a row of the package's table.

Action codes (E.1.1, Table E.1-1a): ``D`` replace with a non-zero-length dummy value
consistent with the VR; ``Z`` zero-length (or a dummy); ``X`` remove; ``U`` replace a UID
consistently within the set of instances; combined codes ``Z/D``, ``X/Z``, ``X/D``,
``X/Z/D`` and ``X/Z/U*`` choose by IOD type (Type 3 may be removed, Type 2 must stay,
maybe empty, Type 1 must hold a value). How medimg carries each out is in
:mod:`medimg.io.deid.transform`.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from dataclasses import dataclass

__all__ = ["RETAIN", "SUPPLEMENT", "Profile", "ProfileRow", "load_profile", "lookup"]

#: action code of each attribute category of the package's databases
_CATEGORY_CODES = {
    "D_TAGS": "D",
    "Z_TAGS": "Z",
    "X_TAGS": "X",
    "U_TAGS": "U",
    "Z_D_TAGS": "Z/D",
    "X_Z_TAGS": "X/Z",
    "X_D_TAGS": "X/D",
    "X_Z_D_TAGS": "X/Z/D",
    "X_Z_U_STAR_TAGS": "X/Z/U*",
}

#: Table E.1-1's retain-option columns: the attributes each E.3 option keeps (K, or C
#: where medimg keeps the value as it is). Keys are the option names of
#: :class:`~medimg.io.deid.transform.Deidentifier`. The Retain UIDs option applies to
#: every ``U`` row and the Retain Longitudinal Temporal Information with Modified Dates
#: option to every DA/DT/TM value, so neither needs a list.
RETAIN: dict[str, frozenset[int]] = {
    "device": frozenset({  # Retain Device Identity (113109)
        0x00080054, 0x00080055, 0x00081000, 0x00081010, 0x00181000, 0x00181002,
        0x00181004, 0x00181005, 0x00181007, 0x00181008, 0x00181200, 0x00181201,
        0x0018700A, 0x00189367, 0x00189371, 0x00189373, 0x00203401, 0x00203404,
        0x00400001, 0x00400010, 0x00400011, 0x00400241, 0x00400242, 0x00400243,
        0x00404025, 0x00404027, 0x00404030,
    }),
    "patient_characteristics": frozenset({  # Retain Patient Characteristics (113108)
        0x00100040, 0x00101010, 0x00101020, 0x00101022, 0x00101030, 0x00102000,
        0x00102110, 0x00102160, 0x001021A0, 0x001021C0, 0x00102203, 0x00380050,
        0x00380500, 0x00400012,
    }),
    "institution": frozenset({  # Retain Institution Identity (113112)
        0x00080080, 0x00080081, 0x00080082, 0x00081040, 0x00081041,
    }),
}

#: Rows removed although the package's table has no row for them: tag -> action.
SUPPLEMENT: dict[int, str] = {
    0x00080051: "X",  # Issuer of Accession Number Sequence
    0x0008010D: "U",  # Context Group Extension Creator UID
    0x00089123: "U",  # Creator-Version UID
    0x00100022: "X",  # Type of Patient ID
    0x00100024: "X",  # Issuer of Patient ID Qualifiers Sequence
    0x00100033: "X",  # Patient's Birth Date in Alternative Calendar
    0x00100034: "X",  # Patient's Death Date in Alternative Calendar
    0x00100035: "X",  # Patient's Alternative Calendar
    0x00101022: "X",  # Patient's Body Mass Index
    0x00203404: "X",  # Modifying Device Manufacturer
}


@dataclass(frozen=True)
class ProfileRow:
    """One row of Table E.1-1 as medimg applies it.

    Attributes:
        tag: the tag as an int ``0xGGGGEEEE`` (for a repeating-group row, its first tag).
        action: the basic-profile action code (``"X"``, ``"Z"``, ``"D"``, ``"U"``,
            ``"Z/D"``, ``"X/Z"``, ``"X/D"``, ``"X/Z/D"``, ``"X/Z/U*"``).
        options: the retain options that keep this attribute (subset of :data:`RETAIN`).
        source: ``"table"`` (the standard's table, from the package) or ``"medimg"``
            (:data:`SUPPLEMENT`).
    """

    tag: int
    action: str
    options: frozenset[str]
    source: str = "table"

    @property
    def name(self) -> str:
        """The attribute's name in pydicom's data dictionary (the tag if it is newer)."""
        from pydicom.datadict import dictionary_description

        try:
            return dictionary_description(self.tag)
        except KeyError:
            return f"({self.tag >> 16:04X},{self.tag & 0xFFFF:04X})"


@dataclass(frozen=True)
class Profile:
    """The loaded table: its edition, exact rows and masked repeating-group rows."""

    edition: str
    package_version: str
    rows: dict[int, ProfileRow]
    #: ``(group, element, group_mask, element_mask, row)``: 50xx curves, 60xx overlays
    patterns: tuple[tuple[int, int, int, int, ProfileRow], ...]

    def lookup(self, tag: int) -> ProfileRow | None:
        """The row for a non-private tag ``0xGGGGEEEE``, or None where the table is silent."""
        row = self.rows.get(tag)
        if row is not None:
            return row
        group, element = tag >> 16, tag & 0xFFFF
        for g, e, gmask, emask, prow in self.patterns:
            if group & gmask == g and element & emask == e:
                return prow
        return None

    def describe(self) -> str:
        """``"Table E.1-1 2026c (dicom-anonymizer 2.1.0)"``, for the output's method text."""
        return f"Table E.1-1 {self.edition} (dicom-anonymizer {self.package_version})"


def _options_of(tag: int) -> frozenset[str]:
    return frozenset(name for name, tags in RETAIN.items() if tag in tags)


def _newest_database() -> tuple[str, object]:
    """The package's newest database module: ``("2026c", module)``."""
    try:
        from dicomanonymizer import dicom_anonymization_databases as dbs
    except ImportError as exc:  # a core dependency: only a broken install gets here
        raise ImportError(
            "de-identification needs the 'dicom-anonymizer' package (PS3.15 Table E.1-1): "
            "pip install 'dicom-anonymizer>=2.1'"
        ) from exc
    names = [m.name for m in pkgutil.iter_modules(dbs.__path__) if m.name.startswith("dicomfields_")]
    if not names:
        raise ImportError("the installed 'dicom-anonymizer' ships no Table E.1-1 database; "
                          "pip install -U 'dicom-anonymizer>=2.1'")
    newest = max(names)
    return newest.removeprefix("dicomfields_"), importlib.import_module(f"{dbs.__name__}.{newest}")


@functools.cache
def load_profile() -> Profile:
    """Table E.1-1 from ``dicom-anonymizer``'s newest edition, plus :data:`SUPPLEMENT`."""
    from importlib.metadata import version

    edition, module = _newest_database()
    rows: dict[int, ProfileRow] = {}
    patterns = []
    for category, code in _CATEGORY_CODES.items():
        for entry in getattr(module, category):
            if len(entry) == 2:
                tag = (entry[0] << 16) | entry[1]
                rows[tag] = ProfileRow(tag, code, _options_of(tag))
            else:  # (group, element, group mask, element mask)
                g, e, gmask, emask = entry
                row = ProfileRow((g << 16) | e, code, frozenset())
                patterns.append((g, e, gmask, emask, row))
    for tag, code in SUPPLEMENT.items():
        rows.setdefault(tag, ProfileRow(tag, code, _options_of(tag), source="medimg"))
    return Profile(edition, version("dicom-anonymizer"), rows, tuple(patterns))


def lookup(tag: int) -> ProfileRow | None:
    """The row of the loaded table for a non-private tag ``0xGGGGEEEE``, or None."""
    return load_profile().lookup(tag)
