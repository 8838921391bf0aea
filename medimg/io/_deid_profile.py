"""DICOM PS3.15 Annex E, Table E.1-1: the Basic Application Level Confidentiality Profile.

Written out by hand from the standard's table (pydicom does not ship it). Each row:
``tag  action  options  name`` where

* ``tag`` is ``gggg,eeee`` (``x`` digits are wildcards for repeating groups: 50xx curves,
  60xx overlays);
* ``action`` is the Basic Profile column (E.1.1, Table E.1-1a):
  ``D`` replace with a non-zero-length dummy value consistent with the VR;
  ``Z`` replace with a zero-length value (or a VR-consistent dummy);
  ``X`` remove; ``K`` keep; ``C`` clean; ``U`` replace the UID with a non-zero-length UID
  that is consistent within the set of instances;
  combined codes ``Z/D``, ``X/Z``, ``X/D``, ``X/Z/D``, ``X/Z/U*`` choose per IOD type
  (Type 3 may be removed, Type 2 must stay, maybe empty, Type 1 must hold a value);
* ``options`` lists the retain options whose column says K (or C) for the row:
  ``d`` Retain Device Identity (113109), ``p`` Retain Patient Characteristics (113108),
  ``i`` Retain Institution Identity (113112), ``-`` none. The Retain UIDs option (113110)
  applies to every ``U`` row, and the Retain Longitudinal Temporal Information with
  Modified Dates option (113107) to every DA/DT/TM row except the patient's birth date
  and time, so neither needs a flag.

Coverage: every attribute of Table E.1-1 in the Patient, Clinical Trial, General Study,
Patient Study, General Series, Frame of Reference, General Equipment, Enhanced General
Equipment, General Image / Acquisition, SOP Common (UIDs, dates), Request / Procedure
Step, Visit / Admission, Specimen, SR observer and Digital Signature modules, plus
curves/overlays and the RT Structure Set and Results/Interpretation attributes listed
listed above (350 rows). Attributes of the standard's table that are not in this list
(chiefly RT plan/treatment-record text, a few waveform, ophthalmic and MPPS-only
attributes) fall under two safety nets in :mod:`medimg.io.deid`: every UID that is not a
registered DICOM UID is replaced like a ``U`` row, and every private attribute is removed
unless kept by option.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ProfileRow", "BASIC_PROFILE", "profile_rows", "lookup"]

_TABLE = """
0008,0012 X/D     -  Instance Creation Date
0008,0013 X/Z/D   -  Instance Creation Time
0008,0014 U       -  Instance Creator UID
0008,0015 X       -  Instance Coercion DateTime
0008,0018 U       -  SOP Instance UID
0008,0020 Z       -  Study Date
0008,0021 X/D     -  Series Date
0008,0022 X/Z     -  Acquisition Date
0008,0023 Z/D     -  Content Date
0008,0024 X       -  Overlay Date
0008,0025 X       -  Curve Date
0008,002A X/D     -  Acquisition DateTime
0008,0030 Z       -  Study Time
0008,0031 X/D     -  Series Time
0008,0032 X/Z     -  Acquisition Time
0008,0033 Z/D     -  Content Time
0008,0034 X       -  Overlay Time
0008,0035 X       -  Curve Time
0008,0050 Z       -  Accession Number
0008,0051 X       -  Issuer of Accession Number Sequence
0008,0054 X       d  Retrieve AE Title
0008,0055 X       d  Station AE Title
0008,0058 U       -  Failed SOP Instance UID List
0008,0080 X/Z/D   i  Institution Name
0008,0081 X       i  Institution Address
0008,0082 X/Z/D   i  Institution Code Sequence
0008,0090 Z       -  Referring Physician's Name
0008,0092 X       -  Referring Physician's Address
0008,0094 X       -  Referring Physician's Telephone Numbers
0008,0096 X       -  Referring Physician Identification Sequence
0008,009C Z       -  Consulting Physician's Name
0008,009D X       -  Consulting Physician Identification Sequence
0008,0201 X       -  Timezone Offset From UTC
0008,010D U       -  Context Group Extension Creator UID
0008,0106 X       -  Context Group Version
0008,1000 X       d  Network ID
0008,1010 X/Z/D   d  Station Name
0008,1030 X       -  Study Description
0008,103E X       -  Series Description
0008,1040 X       i  Institutional Department Name
0008,1041 X       i  Institutional Department Type Code Sequence
0008,1048 X       -  Physician(s) of Record
0008,1049 X       -  Physician(s) of Record Identification Sequence
0008,1050 X       -  Performing Physician's Name
0008,1052 X       -  Performing Physician Identification Sequence
0008,1060 X       -  Name of Physician(s) Reading Study
0008,1062 X       -  Physician(s) Reading Study Identification Sequence
0008,1070 X/Z/D   -  Operators' Name
0008,1072 X/D     -  Operator Identification Sequence
0008,1080 X       -  Admitting Diagnoses Description
0008,1084 X       -  Admitting Diagnoses Code Sequence
0008,1110 X/Z     -  Referenced Study Sequence
0008,1111 X/Z/D   -  Referenced Performed Procedure Step Sequence
0008,1120 X       -  Referenced Patient Sequence
0008,1140 X/Z/U*  -  Referenced Image Sequence
0008,1155 U       -  Referenced SOP Instance UID
0008,1195 U       -  Transaction UID
0008,2111 X       -  Derivation Description
0008,2112 X/Z/U*  -  Source Image Sequence
0008,3010 U       -  Irradiation Event UID
0008,4000 X       -  Identifying Comments
0008,9123 U       -  Creator-Version UID
0010,0010 Z       -  Patient's Name
0010,0020 Z       -  Patient ID
0010,0021 X       -  Issuer of Patient ID
0010,0022 X       -  Type of Patient ID
0010,0024 X       -  Issuer of Patient ID Qualifiers Sequence
0010,0030 Z       -  Patient's Birth Date
0010,0032 X       -  Patient's Birth Time
0010,0033 X       -  Patient's Birth Date in Alternative Calendar
0010,0034 X       -  Patient's Death Date in Alternative Calendar
0010,0035 X       -  Patient's Alternative Calendar
0010,0040 Z       p  Patient's Sex
0010,0050 X       -  Patient's Insurance Plan Code Sequence
0010,0101 X       -  Patient's Primary Language Code Sequence
0010,0102 X       -  Patient's Primary Language Modifier Code Sequence
0010,1000 X       -  Other Patient IDs
0010,1001 X       -  Other Patient Names
0010,1002 X       -  Other Patient IDs Sequence
0010,1005 X       -  Patient's Birth Name
0010,1010 X       p  Patient's Age
0010,1020 X       p  Patient's Size
0010,1022 X       p  Patient's Body Mass Index
0010,1030 X       p  Patient's Weight
0010,1040 X       -  Patient's Address
0010,1050 X       -  Insurance Plan Identification
0010,1060 X       -  Patient's Mother's Birth Name
0010,1080 X       -  Military Rank
0010,1081 X       -  Branch of Service
0010,1090 X       -  Medical Record Locator
0010,1100 X       -  Referenced Patient Photo Sequence
0010,2000 X       p  Medical Alerts
0010,2110 X       p  Allergies
0010,2150 X       -  Country of Residence
0010,2152 X       -  Region of Residence
0010,2154 X       -  Patient's Telephone Numbers
0010,2155 X       -  Patient's Telecom Information
0010,2160 X       p  Ethnic Group
0010,2180 X       -  Occupation
0010,21A0 X       p  Smoking Status
0010,21B0 X       -  Additional Patient History
0010,21C0 X       p  Pregnancy Status
0010,21D0 X       -  Last Menstrual Date
0010,21F0 X       -  Patient's Religious Preference
0010,2203 X/Z     p  Patient's Sex Neutered
0010,2297 X       -  Responsible Person
0010,2299 X       -  Responsible Organization
0010,4000 X       -  Patient Comments
0012,0010 D       -  Clinical Trial Sponsor Name
0012,0020 D       -  Clinical Trial Protocol ID
0012,0021 Z       -  Clinical Trial Protocol Name
0012,0030 Z       -  Clinical Trial Site ID
0012,0031 Z       -  Clinical Trial Site Name
0012,0040 D       -  Clinical Trial Subject ID
0012,0042 D       -  Clinical Trial Subject Reading ID
0012,0050 Z       -  Clinical Trial Time Point ID
0012,0051 X       -  Clinical Trial Time Point Description
0012,0060 Z       -  Clinical Trial Coordinating Center Name
0012,0071 X       -  Clinical Trial Series ID
0012,0072 X       -  Clinical Trial Series Description
0012,0081 D       -  Clinical Trial Protocol Ethics Committee Name
0012,0082 X       -  Clinical Trial Protocol Ethics Committee Approval Number
0018,0010 Z/D     -  Contrast/Bolus Agent
0018,1000 X/Z/D   d  Device Serial Number
0018,1002 U       d  Device UID
0018,1004 X       d  Plate ID
0018,1005 X       d  Generator ID
0018,1007 X       d  Cassette ID
0018,1008 X       d  Gantry ID
0018,1012 X       -  Date of Secondary Capture
0018,1014 X       -  Time of Secondary Capture
0018,1030 X/D     -  Protocol Name
0018,1200 X       d  Date of Last Calibration
0018,1201 X       d  Time of Last Calibration
0018,1400 X/D     -  Acquisition Device Processing Description
0018,4000 X       -  Acquisition Comments
0018,700A X/D     d  Detector ID
0018,9074 X/D     -  Frame Acquisition DateTime
0018,9151 X/D     -  Frame Reference DateTime
0018,9185 X       -  Respiratory Motion Compensation Technique Description
0018,9367 X       d  X-Ray Source ID
0018,9371 X       d  X-Ray Detector ID
0018,9373 X       d  X-Ray Detector Label
0018,9424 X       -  Acquisition Protocol Description
0018,9516 X/D     -  Start Acquisition DateTime
0018,9517 X/D     -  End Acquisition DateTime
0018,A002 X/D     -  Contribution DateTime
0018,A003 X       -  Contribution Description
0020,000D U       -  Study Instance UID
0020,000E U       -  Series Instance UID
0020,0010 Z       -  Study ID
0020,0052 U       -  Frame of Reference UID
0020,0200 U       -  Synchronization Frame of Reference UID
0020,3401 X       d  Modifying Device ID
0020,3404 X       d  Modifying Device Manufacturer
0020,3406 X       -  Modified Image Description
0020,4000 X       -  Image Comments
0020,9158 X       -  Frame Comments
0020,9161 U       -  Concatenation UID
0020,9164 U       -  Dimension Organization UID
0028,1199 U       -  Palette Color Lookup Table UID
0028,1214 U       -  Large Palette Color Lookup Table UID
0028,4000 X       -  Image Presentation Comments
0032,0012 X       -  Study ID Issuer
0032,0032 X       -  Study Verified Date
0032,0033 X       -  Study Verified Time
0032,0034 X       -  Study Read Date
0032,0035 X       -  Study Read Time
0032,1000 X       -  Scheduled Study Start Date
0032,1001 X       -  Scheduled Study Start Time
0032,1010 X       -  Scheduled Study Stop Date
0032,1011 X       -  Scheduled Study Stop Time
0032,1020 X       -  Scheduled Study Location
0032,1021 X       -  Scheduled Study Location AE Title
0032,1030 X       -  Reason for Study
0032,1032 X       -  Requesting Physician
0032,1033 X       -  Requesting Service
0032,1040 X       -  Study Arrival Date
0032,1041 X       -  Study Arrival Time
0032,1050 X       -  Study Completion Date
0032,1051 X       -  Study Completion Time
0032,1060 X/Z     -  Requested Procedure Description
0032,1070 X       -  Requested Contrast Agent
0032,4000 X       -  Study Comments
0038,0004 X       -  Referenced Patient Alias Sequence
0038,0010 X       -  Admission ID
0038,0011 X       -  Issuer of Admission ID
0038,0014 X       -  Issuer of Admission ID Sequence
0038,001E X       -  Scheduled Patient Institution Residence
0038,0020 X       -  Admitting Date
0038,0021 X       -  Admitting Time
0038,0040 X       -  Discharge Diagnosis Description
0038,0050 X       p  Special Needs
0038,0060 X       -  Service Episode ID
0038,0061 X       -  Issuer of Service Episode ID
0038,0062 X       -  Service Episode Description
0038,0064 X       -  Issuer of Service Episode ID Sequence
0038,0300 X       -  Current Patient Location
0038,0400 X       -  Patient's Institution Residence
0038,0500 X       p  Patient State
0038,4000 X       -  Visit Comments
0040,0001 X       d  Scheduled Station AE Title
0040,0002 X       -  Scheduled Procedure Step Start Date
0040,0003 X       -  Scheduled Procedure Step Start Time
0040,0004 X       -  Scheduled Procedure Step End Date
0040,0005 X       -  Scheduled Procedure Step End Time
0040,0006 X       -  Scheduled Performing Physician's Name
0040,0007 X       -  Scheduled Procedure Step Description
0040,000B X       -  Scheduled Performing Physician Identification Sequence
0040,0010 X       d  Scheduled Station Name
0040,0011 X       d  Scheduled Procedure Step Location
0040,0012 X       p  Pre-Medication
0040,0241 X       d  Performed Station AE Title
0040,0242 X       d  Performed Station Name
0040,0243 X       d  Performed Location
0040,0244 X       -  Performed Procedure Step Start Date
0040,0245 X       -  Performed Procedure Step Start Time
0040,0250 X       -  Performed Procedure Step End Date
0040,0251 X       -  Performed Procedure Step End Time
0040,0253 X       -  Performed Procedure Step ID
0040,0254 X       -  Performed Procedure Step Description
0040,0275 X       -  Request Attributes Sequence
0040,0280 X       -  Comments on the Performed Procedure Step
0040,0310 X       -  Comments on Radiation Dose
0040,050A X       -  Specimen Accession Number
0040,0512 D       -  Container Identifier
0040,0513 Z       -  Issuer of the Container Identifier Sequence
0040,0551 D       -  Specimen Identifier
0040,0554 U       -  Specimen UID
0040,0555 X/Z     -  Acquisition Context Sequence
0040,0562 Z       -  Issuer of the Specimen Identifier Sequence
0040,0600 X       -  Specimen Short Description
0040,0602 X       -  Specimen Detailed Description
0040,06FA X       -  Slide Identifier
0040,1001 X       -  Requested Procedure ID
0040,1004 X       -  Patient Transport Arrangements
0040,1005 X       -  Requested Procedure Location
0040,1010 X       -  Names of Intended Recipients of Results
0040,1011 X       -  Intended Recipients of Results Identification Sequence
0040,1101 D       -  Person Identification Code Sequence
0040,1102 X       -  Person's Address
0040,1103 X       -  Person's Telephone Numbers
0040,1104 X       -  Person's Telecom Information
0040,1400 X       -  Requested Procedure Comments
0040,2001 X       -  Reason for the Imaging Service Request
0040,2008 X       -  Order Entered By
0040,2009 X       -  Order Enterer's Location
0040,2010 X       -  Order Callback Phone Number
0040,2011 X       -  Order Callback Telecom Information
0040,2016 Z       -  Placer Order Number / Imaging Service Request
0040,2017 Z       -  Filler Order Number / Imaging Service Request
0040,2400 X       -  Imaging Service Request Comments
0040,3001 X       -  Confidentiality Constraint on Patient Data Description
0040,4005 X       -  Scheduled Procedure Step Start DateTime
0040,4010 X       -  Scheduled Procedure Step Modification DateTime
0040,4011 X       -  Expected Completion DateTime
0040,4025 X       d  Scheduled Station Name Code Sequence
0040,4027 X       d  Scheduled Station Geographic Location Code Sequence
0040,4030 X       d  Performed Station Geographic Location Code Sequence
0040,4034 X       -  Scheduled Human Performers Sequence
0040,4035 X       -  Actual Human Performers Sequence
0040,4036 X       -  Human Performer's Organization
0040,4037 X       -  Human Performer's Name
0040,4050 X       -  Performed Procedure Step Start DateTime
0040,4051 X       -  Performed Procedure Step End DateTime
0040,4052 X       -  Procedure Step Cancellation DateTime
0040,A027 X       -  Verifying Organization
0040,A030 D       -  Verification DateTime
0040,A032 X/D     -  Observation DateTime
0040,A073 D       -  Verifying Observer Sequence
0040,A075 D       -  Verifying Observer Name
0040,A078 X       -  Author Observer Sequence
0040,A07A X       -  Participant Sequence
0040,A07C X       -  Custodial Organization Sequence
0040,A088 Z       -  Verifying Observer Identification Code Sequence
0040,A120 D       -  DateTime
0040,A121 D       -  Date
0040,A122 D       -  Time
0040,A123 D       -  Person Name
0040,A124 U       -  UID
0040,A13A D       -  Referenced DateTime
0040,A171 U       -  Observation UID
0040,A172 U       -  Referenced Observation UID (Trial)
0040,A192 X       -  Observation Date (Trial)
0040,A193 X       -  Observation Time (Trial)
0040,A307 X       -  Current Observer (Trial)
0040,A352 X       -  Verbal Source (Trial)
0040,A353 X       -  Address (Trial)
0040,A354 X       -  Telephone Number (Trial)
0040,A358 X       -  Verbal Source Identifier Code Sequence (Trial)
0040,A402 U       -  Observation Subject UID (Trial)
0040,A730 X       -  Content Sequence
0040,DB0C U       -  Template Extension Organization UID
0040,DB0D U       -  Template Extension Creator UID
0050,001B X       -  Container Component ID
0062,0021 U       -  Tracking UID
0070,0001 D       -  Graphic Annotation Sequence
0070,0084 Z       -  Content Creator's Name
0070,0086 X       -  Content Creator's Identification Code Sequence
0070,031A U       -  Fiducial UID
0070,1101 U       -  Presentation Display Collection UID
0070,1102 U       -  Presentation Sequence Collection UID
0088,0140 U       -  Storage Media File-set UID
0088,0200 X       -  Icon Image Sequence
0088,0904 X       -  Topic Title
0088,0906 X       -  Topic Subject
0088,0910 X       -  Topic Author
0088,0912 X       -  Topic Keywords
0400,0100 X       -  Digital Signature UID
0400,0402 X       -  Referenced Digital Signature Sequence
0400,0403 X       -  Referenced SOP Instance MAC Sequence
0400,0404 X       -  MAC
0400,0550 X       -  Modified Attributes Sequence
0400,0561 X       -  Original Attributes Sequence
3006,0002 D       -  Structure Set Label
3006,0004 X       -  Structure Set Name
3006,0006 X       -  Structure Set Description
3006,0008 Z       -  Structure Set Date
3006,0009 Z       -  Structure Set Time
3006,0024 U       -  Referenced Frame of Reference UID
3006,0026 Z       -  ROI Name
3006,0028 X       -  ROI Description
3006,0038 X       -  ROI Generation Description
3006,0085 X       -  ROI Observation Label
3006,0088 X       -  ROI Observation Description
3006,00A6 Z       -  ROI Interpreter
3006,00C2 U       -  Related Frame of Reference UID
300A,0013 U       -  Dose Reference UID
300E,0008 X/Z     -  Reviewer Name
4000,0010 X       -  Arbitrary
4000,4000 X       -  Text Comments
4008,0042 X       -  Results ID Issuer
4008,0102 X       -  Interpretation Recorder
4008,010A X       -  Interpretation Transcriber
4008,010B X       -  Interpretation Text
4008,010C X       -  Interpretation Author
4008,0111 X       -  Interpretation Approver Sequence
4008,0114 X       -  Physician Approving Interpretation
4008,0115 X       -  Interpretation Diagnosis Description
4008,0118 X       -  Results Distribution List Sequence
4008,0119 X       -  Distribution Name
4008,011A X       -  Distribution Address
4008,0202 X       -  Interpretation ID Issuer
4008,0300 X       -  Impressions
4008,4000 X       -  Results Comments
50xx,xxxx X       -  Curve Data
60xx,3000 X       -  Overlay Data
60xx,4000 X       -  Overlay Comments
FFFA,FFFA X       -  Digital Signatures Sequence
FFFC,FFFC X       -  Data Set Trailing Padding
"""


@dataclass(frozen=True)
class ProfileRow:
    """One row of Table E.1-1.

    Attributes:
        tag: ``"gggg,eeee"`` as in the standard (``x`` = any hex digit).
        action: the Basic Profile action code (``"X"``, ``"Z"``, ``"D"``, ``"U"``,
            ``"Z/D"``, ``"X/Z"``, ``"X/D"``, ``"X/Z/D"``, ``"X/Z/U*"``).
        options: retain options that keep this attribute: subset of ``{"device",
            "patient_characteristics", "institution"}``.
        name: the attribute's name in the standard.
    """

    tag: str
    action: str
    options: frozenset[str]
    name: str

    @property
    def is_pattern(self) -> bool:
        return "x" in self.tag.lower()

    def matches(self, group: int, element: int) -> bool:
        """Whether tag ``(group, element)`` is this row (wildcards allowed)."""
        want = self.tag.replace(",", "").upper()
        have = f"{group:04X}{element:04X}"
        return all(w == "X" or w == h for w, h in zip(want, have))


_OPTION_FLAGS = {"d": "device", "p": "patient_characteristics", "i": "institution"}
_ACTIONS = {"X", "Z", "D", "U", "K", "C", "Z/D", "X/Z", "X/D", "X/Z/D", "X/Z/U*"}


def _parse() -> tuple[ProfileRow, ...]:
    rows = []
    for line in _TABLE.strip().splitlines():
        tag, action, flags, name = line.split(None, 3)
        if action not in _ACTIONS:  # pragma: no cover - guards the table above
            raise ValueError(f"bad action {action!r} for {tag} in the de-identification table")
        opts = frozenset(_OPTION_FLAGS[c] for c in flags if c != "-")
        rows.append(ProfileRow(tag.upper().replace("X", "x"), action, opts, name.strip()))
    return tuple(rows)


#: All rows, in table order.
BASIC_PROFILE: tuple[ProfileRow, ...] = _parse()

_EXACT: dict[int, ProfileRow] = {
    int(r.tag.replace(",", ""), 16): r for r in BASIC_PROFILE if not r.is_pattern
}
_PATTERNS: tuple[ProfileRow, ...] = tuple(r for r in BASIC_PROFILE if r.is_pattern)


def profile_rows() -> tuple[ProfileRow, ...]:
    """All rows of the table (for documentation and tests)."""
    return BASIC_PROFILE


def lookup(tag: int) -> ProfileRow | None:
    """The row for a (non-private) tag as an int ``0xGGGGEEEE``, or None if not listed."""
    row = _EXACT.get(tag)
    if row is not None:
        return row
    group, element = tag >> 16, tag & 0xFFFF
    for r in _PATTERNS:
        if r.matches(group, element):
            return r
    return None
