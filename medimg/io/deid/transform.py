"""The de-identification of one data set: Table E.1-1 applied at every nesting level.

How each action code is carried out (PS3.15 E.1.1, Table E.1-1a):

* ``X`` removed; ``Z`` zero-length; ``D`` a dummy value valid for the VR; ``U`` a new
  UID. A sequence whose code allows ``D`` is kept with its items cleaned by the table
  (recursively); one that must be ``Z`` or ``X`` is emptied or removed.
* Combined codes ``Z/D``, ``X/Z``, ``X/D``, ``X/Z/D``: medimg does not know per IOD whether
  an attribute is Type 1, 2 or 3, so it takes the choice that never breaks an IOD: ``D``
  where the code allows it, else ``Z``. ``X/Z/U*`` (reference sequences): kept, with the
  UIDs inside replaced consistently and everything else inside cleaned by the table; a
  UI value is replaced, any other value emptied.
* Patient ID (``Z``) receives a pseudonym ``ANON-<hex>`` (a "dummy value consistent with
  the VR", which Z allows) derived by HMAC from the original, so one patient keeps one
  pseudonym across files and runs with the same secret. Patient's Name is emptied.
* UIDs: new UIDs under the ``2.25.`` root (PS3.5 B.2) derived by HMAC-SHA256 of the
  original UID with the run's secret, so the same input UID maps to the same output UID in
  every file (Study, Series, Frame of Reference, SOP Instance and every referenced UID
  inside sequences stay linked); the file meta MediaStorageSOPInstanceUID follows the new
  SOPInstanceUID. As a safety net every other UID value that is not a standard DICOM UID
  (root ``1.2.840.10008``) is replaced the same way (coding scheme / context UIDs excepted).
* Private attributes (odd groups) are removed at every depth unless ``keep_private``.

Options (PS3.15 E.3; each adds its code to DeidentificationMethodCodeSequence):

* ``shift_dates`` - Retain Longitudinal Temporal Information with Modified Dates (113107):
  every DA/DT value of a table row (except the patient's birth date/time, which follow the
  basic profile) moves by a per-patient whole number of days derived by HMAC from the
  secret and the original PatientID (one patient, one shift; intervals between that
  patient's studies are kept). TM values stay (a whole-day shift keeps times of day); DT
  keeps its time and UTC offset. LongitudinalTemporalInformationModified = MODIFIED.
* ``keep_device_identity`` (113109), ``keep_patient_characteristics`` (113108),
  ``keep_institution_identity`` (113112): keep the attributes of
  :data:`~medimg.io.deid.profile.RETAIN`; ``keep_uids`` (113110) keeps every ``U`` row.
* Not implemented: the Clean options (Pixel Data, Descriptors, Structured Content,
  Graphics; they need content inspection).
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import secrets
from typing import Any

from .profile import Profile, ProfileRow, load_profile
from .values import BYTES_VRS, base_vr, dummy_value, empty_value, shift_da, shift_dt

__all__ = ["METHOD_CODES", "Deidentifier", "deidentify_dataset"]

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
#: UIDs that name coding schemes / mapping resources, not instances: never replaced
_CODING_UID_TAGS = frozenset({0x0008010C, 0x00080117, 0x00080118})
_BIRTH_TAGS = frozenset({0x00100030, 0x00100032})
_PATIENT_ID = 0x00100020
_FILE_META_ADDRESSES = (
    "SourceApplicationEntityTitle", "SendingApplicationEntityTitle",
    "ReceivingApplicationEntityTitle", "SourcePresentationAddress",
    "SendingPresentationAddress", "ReceivingPresentationAddress",
)


class Deidentifier:
    """Applies the profile to data sets; holds the run's secret and mapping tables.

    Args:
        secret: key for the HMACs that derive new UIDs, pseudonyms and date shifts. The
            same secret gives the same outputs (so batches of one study de-identified
            separately stay linked); ``None`` draws a random one for this run.
        keep_private: keep private attributes (odd groups) instead of removing them.
        shift_dates: Retain Longitudinal Temporal Information with Modified Dates.
        date_shift_max_days: shifts are drawn in ``[-max, -1]`` days.
        keep_device_identity, keep_patient_characteristics, keep_institution_identity,
        keep_uids: the retain options of E.3 (see the module docstring).
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
        self.profile: Profile = load_profile()
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

    # kept as static methods of the class for callers of earlier releases
    _shift_da = staticmethod(shift_da)
    _shift_dt = staticmethod(shift_dt)

    # -- the walk ---------------------------------------------------------------------
    def _replace_uid_value(self, elem: Any) -> None:
        if elem.VM == 0 or elem.value is None:
            return
        if elem.VM > 1:
            elem.value = [self.new_uid(str(u)) for u in elem.value]
        else:
            elem.value = self.new_uid(str(elem.value))

    def _shift_value(self, elem: Any, days: int) -> None:
        fn = shift_da if elem.VR == "DA" else shift_dt
        if elem.VM == 0 or elem.value in (None, ""):
            return
        try:
            if elem.VM > 1:
                elem.value = [fn(str(v), days) for v in elem.value]
            else:
                elem.value = fn(str(elem.value), days)
        except (ValueError, OverflowError) as exc:
            raise ValueError(f"invalid {elem.VR} value in {elem.tag}: cannot shift the date") from exc

    def _apply(self, ds: Any, days: int | None) -> None:
        """Clean ``ds`` in place (a copy the caller owns), recursing into sequences."""
        for elem in list(ds):
            if elem.tag.is_private:
                if not self.keep_private:
                    del ds[elem.tag]
                else:
                    self._walk_plain(elem, days)
                continue
            row = self.profile.lookup(int(elem.tag))
            if row is None or row.options & self.retained:
                self._walk_plain(elem, days)
            else:
                self._act(ds, elem, row, days)

    def _clean_items(self, elem: Any, days: int | None) -> None:
        for item in elem.value:
            self._apply(item, days)

    def _walk_plain(self, elem: Any, days: int | None) -> None:
        """An attribute kept as it is: recurse into its items and fix stray UIDs."""
        if elem.VR == "SQ":
            self._clean_items(elem, days)
        elif elem.VR == "UI" and not self.keep_uids and int(elem.tag) not in _CODING_UID_TAGS:
            values = list(elem.value) if elem.VM > 1 else [elem.value]
            new = [v if (not v or str(v).startswith(_DICOM_ROOT)) else self.new_uid(str(v)) for v in values]
            if new != values:
                elem.value = new if elem.VM > 1 else new[0]

    def _keeps_temporal(self, elem: Any, days: int | None) -> bool:
        """Under ``shift_dates``: shift a DA/DT value, keep a TM value (True: done)."""
        if not self.shift_dates or days is None or int(elem.tag) in _BIRTH_TAGS:
            return False
        vr = base_vr(elem.VR)
        if vr in ("DA", "DT"):
            self._shift_value(elem, days)
            return True
        return vr == "TM"  # whole-day shifts leave times of day unchanged

    def _act(self, ds: Any, elem: Any, row: ProfileRow, days: int | None) -> None:
        """Carry out ``row``'s action on ``elem`` (an attribute of ``ds``)."""
        action, vr = row.action, base_vr(elem.VR)
        if action == "U" or (action == "X/Z/U*" and vr == "UI"):
            if not self.keep_uids:
                self._replace_uid_value(elem)
            return
        if self._keeps_temporal(elem, days):
            return
        if int(elem.tag) == _PATIENT_ID:  # a consistent pseudonym (allowed by Z)
            elem.value = self.pseudonym(str(elem.value or ""))
        elif action == "X":
            del ds[elem.tag]
        elif action == "K":
            self._walk_plain(elem, days)
        elif vr == "SQ" and ("D" in action or action == "X/Z/U*"):
            self._clean_items(elem, days)  # kept (IOD-safe), its items cleaned by the table
        elif vr == "SQ":  # Z, X/Z
            elem.value = []
        elif "D" in action:  # D, Z/D, X/D, X/Z/D: a dummy keeps any IOD type valid
            elem.value = self.new_uid(str(elem.value)) if vr == "UI" and elem.value else (
                "2.25.0" if vr == "UI" else dummy_value(vr)
            )
        else:  # Z, X/Z, and X/Z/U* on a value that is not a UID
            elem.value = empty_value(vr)
        if vr in BYTES_VRS and elem.VR != vr:  # an ambiguous 'OB or OW' settles on one VR
            elem.VR = vr

    # -- the method description -------------------------------------------------------
    def method_description(self) -> list[str]:
        """DeidentificationMethod values: what was done, with the table's edition."""
        parts = [
            "medimg deid",
            "PS3.15 E.1 Basic Application Level Confidentiality Profile",
            self.profile.describe(),
        ]
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
        """The CID 7050 codes of the profile and the options in use."""
        keys = ["basic"]
        if self.shift_dates:
            keys.append("shift_dates")
        keys += sorted(self.retained)
        if self.keep_uids:
            keys.append("uids")
        return [METHOD_CODES[k] for k in keys]

    def _record_method(self, out: Any) -> None:
        """Write the PS3.15 E.1.1 attributes that say how ``out`` was de-identified."""
        from pydicom.dataset import Dataset

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

    def __call__(self, ds: Any) -> Any:
        """A de-identified deep copy of ``ds`` (pydicom Dataset); ``ds`` is not changed."""
        out = copy.deepcopy(ds)
        pid = str(ds.get("PatientID", "") or "")
        days = self.date_offset(pid) if self.shift_dates else None
        self._apply(out, days)
        if "PatientID" not in out:
            out.PatientID = self.pseudonym(pid)
        self._record_method(out)
        fm = getattr(out, "file_meta", None)
        if fm is not None:
            if "SOPInstanceUID" in out:
                fm.MediaStorageSOPInstanceUID = out.SOPInstanceUID
            for kw in _FILE_META_ADDRESSES:
                if kw in fm:
                    del fm[kw]
        return out


def deidentify_dataset(ds: Any, **options: Any) -> Any:
    """De-identify one pydicom Dataset (a copy is returned). Options as :class:`Deidentifier`."""
    return Deidentifier(**options)(ds)
