"""De-identification of DICOM files: PS3.15 Annex E Basic Application Level Confidentiality Profile.

:func:`deidentify` reads every file under an input folder (or one file), applies the Basic
Profile (Table E.1-1, in :mod:`medimg.io._deid_profile`) at every nesting level of
sequences (E.1.1), and writes the results under an output folder. Pixel data, transfer
syntax and geometry (ImagePositionPatient, ImageOrientationPatient, PixelSpacing,
SliceThickness...) are not in the table and are written back byte for byte.

How each action code is carried out (E.1.1, Table E.1-1a):

* ``X`` removed; ``Z`` zero-length; ``D`` a dummy value valid for the VR (sequences: kept,
  their items cleaned recursively); ``U`` a new UID; ``K`` kept.
* Combined codes ``Z/D``, ``X/Z``, ``X/D``, ``X/Z/D``: medimg does not know per IOD whether
  an attribute is Type 1, 2 or 3, so it takes the conformance-safe choice that never
  breaks an IOD: ``D`` where the code allows it, else ``Z``. ``X/Z/U*`` (reference
  sequences): kept, with the UIDs inside replaced consistently (referential integrity)
  and everything else inside cleaned by the table.
* Patient ID (``Z``) receives a pseudonym ``ANON-<hex>`` (a "dummy value consistent with
  the VR", which Z allows) derived by HMAC from the original, so one patient keeps one
  pseudonym across files and runs with the same secret. Patient's Name is emptied.
* UIDs: new UIDs under the ``2.25.`` root (PS3.5 B.2) derived by HMAC-SHA256 of the
  original UID with the run's secret, so the same input UID maps to the same output UID in
  every file (Study, Series, FrameOfReference, SOP Instance and every referenced UID inside
  sequences stay linked), and the file meta MediaStorageSOPInstanceUID follows the new
  SOPInstanceUID. As a safety net every other UID value that is not a standard DICOM UID
  (root ``1.2.840.10008``) is replaced the same way (coding scheme / context UIDs excepted).
* Private attributes (odd groups) are removed unless ``keep_private``.

Options (E.3, each adds its code to DeidentificationMethodCodeSequence):

* ``shift_dates`` - Retain Longitudinal Temporal Information with Modified Dates (113107):
  every DA/DT value in the table (except the patient's birth date/time, which stay as the
  basic profile says) is moved by a per-patient whole number of days derived by HMAC from
  the secret and the original PatientID (the same patient always gets the same shift;
  intervals between that patient's studies are kept). TM values stay (whole-day shift); DT
  keeps its time and UTC offset. LongitudinalTemporalInformationModified = MODIFIED.
* ``keep_device_identity`` (113109), ``keep_patient_characteristics`` (113108),
  ``keep_institution_identity`` (113112), ``keep_uids`` (113110): keep the rows whose
  retain column says so.
* Not implemented: the Clean options (Pixel Data, Descriptors, Structured Content,
  Graphics; they need content inspection); files whose BurnedInAnnotation is YES are
  written but flagged in the report.

Output: ``OUTPUT_DIR/<new StudyInstanceUID>/<new SeriesInstanceUID>/<new SOPInstanceUID>.dcm``
(``naming="uid"``, the default: no name or path component carries an identifier) or the
input's relative paths (``naming="keep"``, for trees whose names are known to be safe).
A mapping CSV (original -> new PatientID and UIDs) is written only where ``mapping_path``
is given. The module's log messages carry counts and new UIDs only, never an original
value or input path; failures are reported per file in the returned :class:`DeidReport`
with reasons that name tags, never values.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as _dt
import hashlib
import hmac
import logging
import os
import re
import secrets
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._deid_profile import ProfileRow, lookup

__all__ = ["deidentify", "deidentify_dataset", "DeidReport", "DeidFileResult", "Deidentifier"]

log = logging.getLogger(__name__)

#: PS3.16 CID 7050 De-identification Method codes (scheme DCM).
METHOD_CODES = {
    "basic": ("113100", "Basic Application Confidentiality Profile"),
    "shift_dates": ("113107", "Retain Longitudinal Temporal Information Modified Dates Option"),
    "patient_characteristics": ("113108", "Retain Patient Characteristics Option"),
    "device": ("113109", "Retain Device Identity Option"),
    "uids": ("113110", "Retain UIDs Option"),
    "institution": ("113112", "Retain Institution Identity Option"),
}

_DICOM_ROOT = "1.2.840.10008."
# UIDs that name coding schemes / mapping resources, not instances: never replaced
_CODING_UID_TAGS = {0x0008010C, 0x00080117, 0x00080118}
_BIRTH_TAGS = {0x00100030, 0x00100032}
_DUMMY_TEXT = "ANONYMIZED"
_DUMMY = {
    "PN": "ANONYMIZED",
    "DA": "19000101",
    "TM": "000000",
    "DT": "19000101000000",
    "AS": "000Y",
    "DS": "0",
    "IS": "0",
    "CS": "ANONYMIZED",
    "AE": "ANONYMIZED",
    "UR": "",
}
_NUMERIC_VRS = {"US", "SS", "UL", "SL", "FL", "FD", "UV", "SV"}
_BYTES_VRS = {"OB", "OW", "OF", "OD", "OL", "OV", "UN"}


# ------------------------------------------------------------------------------------
# report
# ------------------------------------------------------------------------------------
@dataclass
class DeidFileResult:
    """What happened to one input file.

    Attributes:
        input: path relative to the input root (as given by the user, not an identifier
            medimg adds).
        status: ``"ok"`` or ``"failed"``.
        output: written file (None if failed).
        reason: why it failed (names tags, never values).
        notes: warnings for a file that was written (e.g. burned-in annotation).
    """

    input: str
    status: str
    output: Path | None = None
    reason: str | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class DeidReport:
    """Result of :func:`deidentify`: one :class:`DeidFileResult` per input file."""

    input_dir: Path
    output_dir: Path
    files: list[DeidFileResult] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)
    mapping_path: Path | None = None

    @property
    def n_ok(self) -> int:
        return sum(f.status == "ok" for f in self.files)

    @property
    def n_failed(self) -> int:
        return sum(f.status == "failed" for f in self.files)

    @property
    def failed(self) -> list[DeidFileResult]:
        return [f for f in self.files if f.status == "failed"]

    def summary(self) -> str:
        """A one-screen summary: counts, options, each failure with its reason."""
        opts = ", ".join(k for k, v in self.options.items() if v is True) or "none"
        lines = [
            f"de-identified {self.n_ok} of {len(self.files)} files into {self.output_dir} "
            f"(PS3.15 E.1 Basic Profile; options: {opts})",
        ]
        if self.mapping_path is not None:
            lines.append(f"mapping (contains identifiers, keep it safe): {self.mapping_path}")
        for f in self.failed:
            lines.append(f"  failed  {f.input}: {f.reason}")
        noted = [f for f in self.files if f.notes]
        for f in noted:
            lines.append(f"  warning {f.input}: {'; '.join(f.notes)}")
        return "\n".join(lines)


# ------------------------------------------------------------------------------------
# the transformation
# ------------------------------------------------------------------------------------
class Deidentifier:
    """Applies the profile to datasets; holds the run's secret and mapping tables.

    Args:
        secret: key for the HMACs that derive new UIDs, pseudonyms and date shifts. The
            same secret gives the same outputs (so batches of one study de-identified
            separately stay linked); ``None`` draws a random one for this run.
        keep_private: keep private attributes (odd groups) instead of removing them.
        shift_dates: Retain Longitudinal Temporal Information with Modified Dates.
        date_shift_max_days: shifts are drawn in ``[-max, -1]`` days.
        keep_device_identity, keep_patient_characteristics, keep_institution_identity,
        keep_uids: the retain options of E.3 (see module docstring).
    """

    def __init__(
        self,
        *,
        secret: bytes | str | None = None,
        keep_private: bool = False,
        shift_dates: bool = False,
        date_shift_max_days: int = 365,
        keep_device_identity: bool = False,
        keep_patient_characteristics: bool = False,
        keep_institution_identity: bool = False,
        keep_uids: bool = False,
    ) -> None:
        if secret is None:
            secret = secrets.token_bytes(32)
        self._key = secret.encode() if isinstance(secret, str) else bytes(secret)
        if date_shift_max_days < 1:
            raise ValueError(f"date_shift_max_days must be >= 1, got {date_shift_max_days}")
        self.keep_private = keep_private
        self.shift_dates = shift_dates
        self.date_shift_max_days = int(date_shift_max_days)
        self.retained: set[str] = set()
        if keep_device_identity:
            self.retained.add("device")
        if keep_patient_characteristics:
            self.retained.add("patient_characteristics")
        if keep_institution_identity:
            self.retained.add("institution")
        self.keep_uids = keep_uids
        #: original -> new, for the optional mapping file
        self.uid_map: dict[str, str] = {}
        self.patient_map: dict[str, str] = {}

    # -- derived values ---------------------------------------------------------------
    def _digest(self, kind: str, value: str) -> bytes:
        return hmac.new(self._key, f"{kind}\x00{value}".encode(), hashlib.sha256).digest()

    def new_uid(self, uid: str) -> str:
        """The replacement of ``uid``: ``2.25.<128-bit integer>`` (PS3.5 B.2), stable per secret."""
        uid = uid.strip().rstrip("\x00")
        if not uid:
            return uid
        if uid not in self.uid_map:
            self.uid_map[uid] = "2.25." + str(int.from_bytes(self._digest("uid", uid)[:16], "big"))
        return self.uid_map[uid]

    def pseudonym(self, patient_id: str) -> str:
        """The replacement PatientID: ``ANON-`` + 12 hex digits of an HMAC (LO, <= 64 chars)."""
        if patient_id not in self.patient_map:
            self.patient_map[patient_id] = "ANON-" + self._digest("pid", patient_id).hex()[:12].upper()
        return self.patient_map[patient_id]

    def date_offset(self, patient_id: str) -> int:
        """Whole days (negative) that this patient's dates move by."""
        n = int.from_bytes(self._digest("date", patient_id)[:8], "big")
        return -(1 + n % self.date_shift_max_days)

    # -- date arithmetic --------------------------------------------------------------
    @staticmethod
    def _shift_da(value: str, days: int) -> str:
        v = value.strip()
        if not v:
            return v
        m = re.fullmatch(r"(\d{4})\.?(\d{2})?\.?(\d{2})?", v)
        if not m:
            raise ValueError("not a DA value")
        y, mo, d = int(m.group(1)), int(m.group(2) or 1), int(m.group(3) or 1)
        new = _dt.date(y, mo, d) + _dt.timedelta(days=days)
        if m.group(3):
            return new.strftime("%Y%m%d")
        if m.group(2):
            return new.strftime("%Y%m")
        return new.strftime("%Y")

    @classmethod
    def _shift_dt(cls, value: str, days: int) -> str:
        v = value.strip()
        if not v:
            return v
        m = re.fullmatch(r"(\d{4,8})(\d*(?:\.\d*)?)([+-]\d{4})?", v)
        if not m:
            raise ValueError("not a DT value")
        date_part = m.group(1)
        return cls._shift_da(date_part, days) + m.group(2) + (m.group(3) or "")

    # -- the walk ---------------------------------------------------------------------
    def _dummy(self, elem: Any) -> Any:
        vr = elem.VR
        if vr in _NUMERIC_VRS:
            return 0
        if vr in _BYTES_VRS:
            return b""
        if vr == "UI":
            return self.new_uid(str(elem.value)) if elem.value else "2.25.0"
        return _DUMMY.get(vr, _DUMMY_TEXT)

    def _replace_uid_value(self, elem: Any) -> None:
        if elem.VM == 0 or elem.value is None:
            return
        if elem.VM > 1:
            elem.value = [self.new_uid(str(u)) for u in elem.value]
        else:
            elem.value = self.new_uid(str(elem.value))

    def _shift_value(self, elem: Any, days: int) -> None:
        fn = self._shift_da if elem.VR == "DA" else self._shift_dt
        if elem.VM == 0 or elem.value in (None, ""):
            return
        if elem.VM > 1:
            elem.value = [fn(str(v), days) for v in elem.value]
        else:
            elem.value = fn(str(elem.value), days)

    def _apply(self, ds: Any, days: int | None) -> None:
        """Clean ``ds`` in place (a copy the caller owns), recursing into sequences."""
        for elem in list(ds):
            tag = int(elem.tag)
            if elem.tag.is_private:
                if not self.keep_private:
                    del ds[elem.tag]
                    continue
                self._walk_plain(elem, days)
                continue
            row = lookup(tag)
            if row is None:
                self._walk_plain(elem, days)
                continue
            self._act(ds, elem, row, days)

    def _walk_plain(self, elem: Any, days: int | None) -> None:
        """An attribute the table does not list: keep it, but recurse and fix stray UIDs."""
        if elem.VR == "SQ":
            for item in elem.value:
                self._apply(item, days)
        elif elem.VR == "UI" and not self.keep_uids and int(elem.tag) not in _CODING_UID_TAGS:
            values = elem.value if elem.VM > 1 else [elem.value]
            if any(v and not str(v).startswith(_DICOM_ROOT) for v in values):
                elem.value = [
                    v if (not v or str(v).startswith(_DICOM_ROOT)) else self.new_uid(str(v)) for v in values
                ] if elem.VM > 1 else self.new_uid(str(elem.value))

    def _act(self, ds: Any, elem: Any, row: ProfileRow, days: int | None) -> None:
        tag = int(elem.tag)
        if row.options & self.retained:
            self._walk_plain(elem, days)
            return
        action = row.action
        if action == "U":
            if not self.keep_uids:
                self._replace_uid_value(elem)
            return
        if action == "X/Z/U*":
            if elem.VR == "SQ":
                for item in elem.value:
                    self._apply(item, days)
            else:
                self._replace_uid_value(elem)
            return
        if (
            self.shift_dates
            and days is not None
            and elem.VR in ("DA", "DT")
            and tag not in _BIRTH_TAGS
        ):
            try:
                self._shift_value(elem, days)
            except (ValueError, OverflowError) as exc:
                raise ValueError(f"invalid {elem.VR} value in {elem.tag}: cannot shift the date") from exc
            return
        if self.shift_dates and days is not None and elem.VR == "TM" and tag not in _BIRTH_TAGS:
            return  # whole-day shifts leave times of day unchanged
        if tag == 0x00100020:  # Patient ID: a consistent pseudonym (allowed by Z)
            elem.value = self.pseudonym(str(elem.value or ""))
            return
        if action == "X":
            del ds[elem.tag]
            return
        if action == "K":
            return
        if "D" in action:  # D, Z/D, X/D, X/Z/D: a dummy keeps any IOD type valid
            if elem.VR == "SQ":
                for item in elem.value:
                    self._apply(item, days)
            else:
                elem.value = self._dummy(elem)
            return
        # Z, X/Z: zero length
        if elem.VR == "SQ":
            elem.value = []
        elif elem.VR in _NUMERIC_VRS or elem.VR in _BYTES_VRS:
            elem.value = None if elem.VR in _NUMERIC_VRS else b""
        else:
            elem.value = ""

    def method_description(self) -> list[str]:
        parts = ["medimg deid", "PS3.15 E.1 Basic Application Level Confidentiality Profile"]
        if self.shift_dates:
            parts.append("dates shifted per patient")
        for opt in sorted(self.retained):
            parts.append(f"retain {opt.replace('_', ' ')}")
        if self.keep_uids:
            parts.append("retain UIDs")
        if self.keep_private:
            parts.append("private attributes retained (not checked)")
        return parts

    def method_codes(self) -> list[tuple[str, str]]:
        keys = ["basic"]
        if self.shift_dates:
            keys.append("shift_dates")
        keys += sorted(self.retained)
        if self.keep_uids:
            keys.append("uids")
        return [METHOD_CODES[k] for k in keys]

    def __call__(self, ds: Any) -> Any:
        """A de-identified deep copy of ``ds`` (pydicom Dataset); ``ds`` is not changed."""
        import copy

        from pydicom.dataset import Dataset

        out = copy.deepcopy(ds)
        pid = str(ds.get("PatientID", "") or "")
        days = self.date_offset(pid) if self.shift_dates else None
        self._apply(out, days)
        if "PatientID" not in out:
            out.PatientID = self.pseudonym(pid)
        out.PatientIdentityRemoved = "YES"
        out.DeidentificationMethod = self.method_description()
        codes = []
        for value, meaning in self.method_codes():
            item = Dataset()
            item.CodeValue = value
            item.CodingSchemeDesignator = "DCM"
            item.CodeMeaning = meaning
            codes.append(item)
        out.DeidentificationMethodCodeSequence = codes
        out.LongitudinalTemporalInformationModified = "MODIFIED" if self.shift_dates else "REMOVED"
        fm = getattr(out, "file_meta", None)
        if fm is not None:
            if "SOPInstanceUID" in out:
                fm.MediaStorageSOPInstanceUID = out.SOPInstanceUID
            for kw in ("SourceApplicationEntityTitle", "SendingApplicationEntityTitle",
                       "ReceivingApplicationEntityTitle", "SourcePresentationAddress",
                       "SendingPresentationAddress", "ReceivingPresentationAddress"):
                if kw in fm:
                    del fm[kw]
        return out


def deidentify_dataset(ds: Any, **options: Any) -> Any:
    """De-identify one pydicom Dataset (a copy is returned). Options as :class:`Deidentifier`."""
    return Deidentifier(**options)(ds)


# ------------------------------------------------------------------------------------
# files
# ------------------------------------------------------------------------------------
def _iter_files(root: Path) -> list[Path]:
    if root.is_file():
        return [root]
    return sorted(p for p in root.rglob("*") if p.is_file())


def _expected_pixel_bytes(ds: Any) -> int | None:
    try:
        rows, cols = int(ds.Rows), int(ds.Columns)
        frames = int(ds.get("NumberOfFrames", 1) or 1)
        spp = int(ds.get("SamplesPerPixel", 1) or 1)
        bits = int(ds.BitsAllocated)
    except (AttributeError, TypeError, ValueError):
        return None
    n = rows * cols * frames * spp
    return (n * bits + 7) // 8


def _check_readable(ds: Any) -> str | None:
    """A reason why ``ds`` (fully read) is not a complete image file, or None."""
    from pydicom.uid import UID

    # pydicom reads a file cut short without complaint, leaving the last element with
    # fewer value bytes than its header declares: look at the still-raw elements
    # (Dataset._dict holds RawDataElement until first access) before anything converts them
    for raw in getattr(ds, "_dict", {}).values():
        length = getattr(raw, "length", None)
        value = getattr(raw, "value", None)
        if length is not None and length != 0xFFFFFFFF and isinstance(value, bytes) and len(value) < length:
            return (
                f"truncated file: element {raw.tag} declares {length} bytes, "
                f"only {len(value)} present"
            )
    has_image = "Rows" in ds and "Columns" in ds
    if has_image and "PixelData" not in ds and "FloatPixelData" not in ds and "DoubleFloatPixelData" not in ds:
        return "missing pixel data: Rows/Columns present but no (7FE0,0010) Pixel Data"
    if "PixelData" in ds:
        ts = UID(str(ds.file_meta.get("TransferSyntaxUID", "")))
        if ts and not ts.is_compressed:
            want = _expected_pixel_bytes(ds)
            have = len(ds.PixelData)
            if want is not None and have < want:
                return f"truncated pixel data: (7FE0,0010) holds {have} bytes, {want} expected"
    return None


def _reason(exc: BaseException) -> str:
    """A reason for a read/write failure that names no value from the file."""
    from pydicom.errors import InvalidDicomError

    if isinstance(exc, InvalidDicomError):
        return "not a DICOM file: no 'DICM' preamble/file meta header (PS3.10 7.1)"
    if isinstance(exc, EOFError) or "end of file" in str(exc).lower() or "truncat" in str(exc).lower():
        return f"truncated file ({type(exc).__name__})"
    tag = re.search(r"\(([0-9A-Fa-f]{4}),\s*([0-9A-Fa-f]{4})\)", str(exc))
    where = f" in ({tag.group(1).upper()},{tag.group(2).upper()})" if tag else ""
    return f"unreadable or invalid value{where} ({type(exc).__name__})"


def deidentify(
    input: str | Path,
    output_dir: str | Path,
    *,
    mapping_path: str | Path | None = None,
    keep_private: bool = False,
    shift_dates: bool = False,
    secret: bytes | str | None = None,
    date_shift_max_days: int = 365,
    keep_device_identity: bool = False,
    keep_patient_characteristics: bool = False,
    keep_institution_identity: bool = False,
    keep_uids: bool = False,
    naming: str = "uid",
    progress: bool = False,
) -> DeidReport:
    """De-identify every DICOM file under ``input`` into ``output_dir``.

    Args:
        input: a DICOM file or a folder (searched recursively).
        output_dir: where the de-identified files go (created).
        mapping_path: if given, a CSV ``kind,original,new`` of the PatientID pseudonyms and
            UID replacements (it re-identifies: keep it apart from the data). Otherwise no
            mapping is written anywhere.
        keep_private: keep private attributes.
        shift_dates: shift dates per patient instead of removing them (see module docstring).
        secret: HMAC key for UIDs, pseudonyms and date shifts (random per run if None; pass
            one to de-identify batches of the same study consistently).
        date_shift_max_days: shifts are in ``[-max, -1]`` days.
        keep_device_identity, keep_patient_characteristics, keep_institution_identity,
        keep_uids: the E.3 retain options.
        naming: ``"uid"`` (default) ``<study>/<series>/<sop>.dcm`` named by the new UIDs;
            ``"keep"``: the input's relative paths.
        progress: show a progress bar (rich) on stderr.

    Returns:
        A :class:`DeidReport`: per file ``ok`` or ``failed`` with its reason (truncated file,
        missing file meta header, missing pixel data, invalid value...). One bad file never
        stops the others.

    Raises:
        FileNotFoundError: ``input`` does not exist.
        ValueError: bad ``naming`` or an output folder inside the input folder.
    """
    src = Path(input)
    out_root = Path(output_dir)
    if not src.exists():
        raise FileNotFoundError(f"deid input not found: {src}")
    if naming not in ("uid", "keep"):
        raise ValueError(f"naming must be 'uid' or 'keep', got {naming!r}")
    if src.is_dir() and out_root.resolve().is_relative_to(src.resolve()):
        raise ValueError(
            f"the output folder {out_root} is inside the input folder {src}; choose a folder outside it"
        )
    deid = Deidentifier(
        secret=secret,
        keep_private=keep_private,
        shift_dates=shift_dates,
        date_shift_max_days=date_shift_max_days,
        keep_device_identity=keep_device_identity,
        keep_patient_characteristics=keep_patient_characteristics,
        keep_institution_identity=keep_institution_identity,
        keep_uids=keep_uids,
    )
    report = DeidReport(
        input_dir=src,
        output_dir=out_root,
        options={
            "keep_private": keep_private,
            "shift_dates": shift_dates,
            "keep_device_identity": keep_device_identity,
            "keep_patient_characteristics": keep_patient_characteristics,
            "keep_institution_identity": keep_institution_identity,
            "keep_uids": keep_uids,
            "naming": naming,
        },
    )
    files = _iter_files(src)
    base = src if src.is_dir() else src.parent
    log.info("de-identifying %d files", len(files))
    for i, path in enumerate(_progress(files, progress)):
        rel = str(path.relative_to(base))
        try:
            # pydicom's value warnings and log records quote the offending value (often a
            # name or an ID): keep them off the console and out of the logs
            with warnings.catch_warnings(record=True) as caught, _pydicom_log_muted():
                warnings.simplefilter("always")
                target, notes = _deidentify_file(path, rel, out_root, naming, deid, i)
        except Exception as exc:  # one bad file never stops the folder
            reason = exc.reason if isinstance(exc, _BadInput) else _reason(exc)
            report.files.append(DeidFileResult(rel, "failed", reason=reason))
            log.warning("file #%d failed: %s", i + 1, reason)
            continue
        if caught:
            notes.append(f"{len(caught)} pydicom warning(s) about invalid values (values not shown)")
        report.files.append(DeidFileResult(rel, "ok", output=target, notes=notes))
        log.debug("file #%d -> %s", i + 1, target.name)
    if mapping_path is not None:
        report.mapping_path = _write_mapping(Path(mapping_path), deid)
    log.info("de-identified %d files, %d failed", report.n_ok, report.n_failed)
    return report


class _DropAll(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:  # noqa: ARG002
        return False


@contextlib.contextmanager
def _pydicom_log_muted() -> Iterator[None]:
    """Drop the ``pydicom`` logger's records while a file is processed."""
    logger = logging.getLogger("pydicom")
    flt = _DropAll()
    logger.addFilter(flt)
    try:
        yield
    finally:
        logger.removeFilter(flt)


class _BadInput(Exception):
    """A file that reads but is not a complete DICOM image; ``reason`` names no value."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


def _deidentify_file(
    path: Path, rel: str, out_root: Path, naming: str, deid: Deidentifier, i: int
) -> tuple[Path, list[str]]:
    import pydicom

    ds = pydicom.dcmread(path)  # force=False: a missing preamble/meta header is an error
    reason = _check_readable(ds)
    if reason is not None:
        raise _BadInput(reason)
    clean = deid(ds)
    if naming == "uid":
        target = (
            out_root
            / _safe(clean.get("StudyInstanceUID"))
            / _safe(clean.get("SeriesInstanceUID"))
            / (_safe(clean.get("SOPInstanceUID"), f"file{i + 1:06d}") + ".dcm")
        )
    else:
        target = out_root / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    clean.save_as(target, enforce_file_format=True)
    notes = []
    if str(ds.get("BurnedInAnnotation", "")).upper() == "YES":
        notes.append("BurnedInAnnotation is YES: pixel data may show identifiers (not cleaned)")
    return target, notes


def _safe(uid: Any, fallback: str = "unknown") -> str:
    s = str(uid or "").strip()
    return s if re.fullmatch(r"[0-9.]+", s) else fallback


def _progress(items: list[Path], show: bool) -> Iterable[Path]:
    if not show:
        return items
    try:
        from rich.progress import track
    except ImportError:  # pragma: no cover - rich is a core dependency
        return items
    return track(items, description="de-identifying", transient=True)


def _write_mapping(path: Path, deid: Deidentifier) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # identifiers: owner only
    with os.fdopen(fd, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["kind", "original", "new"])
        for orig, new in deid.patient_map.items():
            w.writerow(["PatientID", orig, new])
        for orig, new in deid.uid_map.items():
            w.writerow(["UID", orig, new])
    return path
