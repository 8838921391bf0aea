"""Planted-marker check of de-identification, against an independent copy of PS3.15 Table E.1-1.

The attribute list comes straight from the ``dicom-anonymizer`` package's newest database
(a maintained transcription of the standard's table), not from medimg, so a row medimg
forgets or gets wrong shows up here. :func:`plant` sets every attribute of that table to a
unique marker value (and, for sequences, one item holding a nested marker and a private
element); :func:`survivors` lists the attributes whose marker is still in the output.

Run as a script to measure a whole ``medimg deid`` run on a real file::

    python -m tests.io.deid_markers FILE.dcm [OPTIONS...]

It plants, calls ``python -m medimg.cli deid IN OUT OPTIONS...`` with the Python running
it, and prints how many markers survived and which.
"""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydicom
from pydicom.datadict import dictionary_description, dictionary_VR
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian

#: action code of each category of the package's databases
CATEGORY_CODES = {
    "D_TAGS": "D", "Z_TAGS": "Z", "X_TAGS": "X", "U_TAGS": "U", "Z_D_TAGS": "Z/D",
    "X_Z_TAGS": "X/Z", "X_D_TAGS": "X/D", "X_Z_D_TAGS": "X/Z/D", "X_Z_U_STAR_TAGS": "X/Z/U*",
}
#: the attribute planted inside every sequence's item: Study Description, a basic-profile
#: X row that no retain option keeps
NESTED_TAG = 0x00081030
PRIVATE_CREATOR_TAG = 0x00770010
PRIVATE_TAG = 0x00771001
#: VR used for attributes newer than pydicom's data dictionary (written explicit VR)
UNKNOWN_VR = "LO"


@dataclass(frozen=True)
class Reference:
    """The independent table: edition name, exact tag -> action, and masked patterns."""

    edition: str
    actions: dict[int, str]
    patterns: tuple[tuple[int, int, int, int, str], ...]


def reference_table() -> Reference:
    """The newest Table E.1-1 database that ``dicom-anonymizer`` ships."""
    from dicomanonymizer import dicom_anonymization_databases as dbs

    edition = max(m.name for m in pkgutil.iter_modules(dbs.__path__) if m.name.startswith("dicomfields_"))
    mod = importlib.import_module(f"{dbs.__name__}.{edition}")
    actions: dict[int, str] = {}
    patterns = []
    for category, code in CATEGORY_CODES.items():
        for entry in getattr(mod, category):
            if len(entry) == 2:
                actions[(entry[0] << 16) | entry[1]] = code
            else:
                patterns.append((*entry, code))
    return Reference(edition.removeprefix("dicomfields_"), actions, tuple(patterns))


def vr_of(tag: int) -> str:
    """The tag's VR from pydicom's dictionary (first of ``"US or SS"``), else UNKNOWN_VR."""
    try:
        return dictionary_VR(tag).split(" or ")[0]
    except KeyError:
        return UNKNOWN_VR


def name_of(tag: int) -> str:
    try:
        return dictionary_description(tag)
    except KeyError:
        return f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


def marker(vr: str, n: int) -> Any:
    """A value valid for ``vr`` that no other planted attribute (and no dummy) shares."""
    import datetime as dt

    day = (dt.date(1990, 1, 1) + dt.timedelta(days=n)).strftime("%Y%m%d")
    text = f"MK{n:04d}Q"
    return {
        "DA": day, "DT": day + "101010", "TM": f"{n // 60 % 24:02d}{n % 60:02d}01",
        "AS": f"{n % 1000:03d}D", "DS": f"{n}.5", "IS": str(100000 + n),
        "US": 20000 + n, "SS": 20000 + n, "UL": 200000 + n, "SL": 200000 + n,
        "UV": 200000 + n, "SV": 200000 + n, "FL": n + 0.5, "FD": n + 0.5,
        "UI": f"1.2.3.4.999.{n}", "AT": 0x77770000 + n,
        "OB": text.encode(), "OW": text.encode(), "OD": text.encode() + b"\0\0",
        "OF": text.encode() + b"\0\0", "OL": text.encode() + b"\0\0", "OV": text.encode() + b"\0\0",
        "UN": text.encode(), "UR": f"http://{text.lower()}.invalid",
    }.get(vr, text)


def plant(ds: Dataset, ref: Reference) -> dict[int, Any]:
    """Set every exact attribute of ``ref`` in ``ds`` to a marker; returns tag -> marker.

    Sequences get one item holding Study Description = ``<marker>N`` and a private element
    (creator + value) = ``<marker>P``; their planted value is the sequence's own marker
    text. Pixel data, geometry and the identifying UIDs of the file stay valid.
    """
    planted: dict[int, Any] = {}
    for n, tag in enumerate(sorted(ref.actions)):
        if tag >> 16 in (0x0000, 0x0002, 0x7FE0) or tag == 0xFFFAFFFA or tag == 0xFFFCFFFC:
            continue  # command set, file meta, pixel data, signatures / trailing padding: not plantable
        vr = vr_of(tag)
        value = marker(vr, n)
        if vr == "SQ":
            value = f"MK{n:04d}Q"
            item = Dataset()
            item.add_new(NESTED_TAG, "LO", value + "N")
            item.add_new(PRIVATE_CREATOR_TAG, "LO", "MEDIMG TEST")
            item.add_new(PRIVATE_TAG, "LO", value + "P")
            ds.add_new(tag, "SQ", Sequence([item]))
        else:
            ds.add_new(tag, vr, value)
        planted[tag] = value
    ds.add_new(PRIVATE_CREATOR_TAG, "LO", "MEDIMG TEST")
    ds.add_new(PRIVATE_TAG, "LO", "MKPRIVQ")
    return planted


def _all_elements(ds: Dataset):
    yield from ds.iterall()
    meta = getattr(ds, "file_meta", None)
    if meta is not None:
        yield from meta.iterall()


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("latin-1")
    if isinstance(value, (list, tuple, pydicom.multival.MultiValue)):
        return "\\".join(_text(v) for v in value)
    return str(value)


def survivors(out: Dataset, planted: dict[int, Any]) -> dict[int, str]:
    """Planted tags whose marker is still in ``out``: tag -> where it was found.

    A marker survives where its attribute (at any depth) still holds it unchanged, or,
    for the text markers ``MKnnnnQ``, where the text appears in any value at any depth
    (nested ``...N`` and private ``...P`` copies included).
    """
    found: dict[int, str] = {}
    texts = {str(v): t for t, v in planted.items() if isinstance(v, str) and v.startswith("MK")}
    for elem in _all_elements(out):
        tag = int(elem.tag)
        if elem.VR == "SQ":
            continue
        if tag in planted and _text(elem.value) == _text(planted[tag]) and elem.VM:
            found.setdefault(tag, "unchanged")
        value = _text(elem.value)
        if "MK" in value:
            for text, t in texts.items():
                if text in value:
                    found.setdefault(t, f"in {elem.tag}")
    return found


def plant_file(src: Path, dst: Path, ref: Reference) -> dict[int, Any]:
    """``src`` with every attribute of ``ref`` planted, written explicit VR to ``dst``."""
    ds = pydicom.dcmread(src)
    if not ds.file_meta.TransferSyntaxUID.is_compressed:
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    planted = plant(ds, ref)
    dst.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(dst, enforce_file_format=True)
    return planted


def main(argv: list[str]) -> int:
    src, options = Path(argv[0]), argv[1:]
    ref = reference_table()
    with tempfile.TemporaryDirectory() as tmp:
        planted = plant_file(src, Path(tmp) / "in" / "planted.dcm", ref)
        proc = subprocess.run(
            [sys.executable, "-m", "medimg.cli", "deid", f"{tmp}/in", f"{tmp}/out", *options],
            capture_output=True, text=True, check=False,
        )
        outs = [p for p in Path(tmp, "out").rglob("*") if p.is_file()]
        if proc.returncode != 0 or len(outs) != 1:
            print(proc.stdout, proc.stderr, sep="\n")
            return 1
        left = survivors(pydicom.dcmread(outs[0]), planted)
    print(
        f"Table E.1-1 edition {ref.edition}: {len(ref.actions)} attributes "
        f"(+{len(ref.patterns)} repeating-group patterns); planted {len(planted)}; "
        f"{len(left)} markers survived `medimg deid {' '.join(options)}`"
    )
    for tag, where in sorted(left.items()):
        print(f"  ({tag >> 16:04X},{tag & 0xFFFF:04X}) {ref.actions[tag]:7s} {name_of(tag)}: {where}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
