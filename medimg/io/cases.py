"""Case discovery: which cases a file or folder holds, one rule for every command.

``predict``, ``evaluate`` and the data layer find cases through :func:`find_cases`, which
lists folders with :mod:`medimg.io.layout` (same hidden-file rule, same NIfTI suffixes),
so one folder shows the same cases to all of them. Accepted layouts:

- **a file**: one case. A NIfTI file's case id is its name without ``.nii(.gz)``; with
  ``dicom=True`` a DICOM file is accepted too (case id = name without extension).
- **a folder of NIfTI files**: one case per file.
- **a folder of case folders** ``ROOT/<case_id>/<files>``: a subfolder is a case folder
  when it holds a NIfTI file (or one of the named ``files``); its files are

  * the named ``files``, in order, when given (each name as is, or with ``.nii.gz`` /
    ``.nii`` added); a case folder lacking one is a case with a *problem*;
  * otherwise one file chosen by ``pick``: ``"only"`` (the only NIfTI file there) or
    ``"label"`` (the label map among images: the only file whose name says so, containing
    ``label``, ``seg``, ``multiclass``, ``truth``, ``annot`` or the word ``gt``; failing
    that the only one containing ``mask``; failing that the only NIfTI file). ``mask``
    ranks lower because folders often hold brain or body masks beside the label map, as
    BraTS's ``brainmask.nii.gz`` beside ``OTMultiClass.nii.gz``. Several candidates are a
    problem listing them, never a guess.
- with ``pictures=True``, **2D pictures** (``.png``, ``.jpg``, ``.bmp``, ``.tif``...): a
  picture file, or each picture file directly in the folder, is one case (id = the name
  without its suffix).
- with ``dicom=True``, **DICOM series folders**: a subfolder without NIfTI files that holds
  DICOM files is one case (its path is the folder); a folder that holds no case in any
  layout but DICOM files is itself one case.
- with ``seg=True``, **DICOM SEG files** named as ``predict --format dicom-seg`` writes them,
  ``<case_id>.seg.dcm`` (:data:`~medimg.io.layout.SEG_SUFFIX`): each such file directly in
  the folder, or the file itself, is one case (id = the name without ``.seg.dcm``).
- with ``column=NAME``, **a manifest**: a CSV file with a ``case_id`` column and the column
  ``NAME`` holding each case's file or DICOM folder, relative to the CSV's folder (or
  absolute); an empty cell or a path that does not exist is a case with a problem.

Files and folders that fit none of these (``labels.json``, notes, plots) are ignored, or,
with ``report_skipped=True`` (prediction), returned as skipped entries with the reason
(:mod:`medimg.io.accounting`): then a label- or mask-named NIfTI file is never a case, and
with ``channels=1`` a 4D file is skipped. Hidden names are never listed. A case id found twice (``c1.nii.gz`` beside the folder ``c1/``) is one case with a
problem naming both. Every case comes back as a :class:`FoundCase`, with its paths or the
problem, so callers report a bad case and go on with the others.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..core.errors import DataError
from .accounting import channel_count, looks_like_label, skipped_entries
from .layout import (
    PICTURE_SUFFIXES,
    is_nifti_path,
    list_folder,
    nifti_case_id,
    seg_case_id,
    walk_files,
)

__all__ = ["FoundCase", "Pick", "add_skipped", "find_cases"]

#: How a case folder's single file is chosen when no file names are given.
Pick = Literal["only", "label"]

_STRONG = ("label", "seg", "multiclass", "truth", "annot")


@dataclass(frozen=True)
class FoundCase:
    """One case found on disk: its id and its files, or why they could not be determined.

    Attributes:
        case_id: the file name without extension, or the case folder's name.
        paths: the case's files (or a DICOM series folder), in the order asked for;
            empty when there is a problem.
        problem: one line saying why the case's files could not be determined, or None.
        source: the file or folder the case was found at.
        skip: for an entry that is not a case (``report_skipped=True``), why it is
            skipped; its ``case_id`` is then its path relative to the input folder.

    It unpacks as ``(case_id, paths or problem)``: ``for case_id, paths in
    find_cases(...)`` gives the list of paths, or, for a case with a problem, the
    :class:`~medimg.core.errors.DataError` to report for it.
    """

    case_id: str
    paths: tuple[Path, ...] = ()
    problem: str | None = None
    source: Path | None = None
    skip: str | None = field(default=None, kw_only=True)

    @property
    def ok(self) -> bool:
        """Whether the case's files were found (no problem, not skipped)."""
        return self.problem is None and self.skip is None

    @property
    def skipped(self) -> bool:
        """Whether this entry is not a case but a file or folder skipped for ``skip``."""
        return self.skip is not None

    def error(self) -> DataError:
        """The problem as an error to raise or report for this case."""
        return DataError(self.problem or f"case '{self.case_id}' has no problem")

    def __iter__(self) -> Iterator[Any]:
        yield self.case_id
        yield list(self.paths) if self.ok else self.error()


def find_cases(
    path: str | os.PathLike,
    *,
    files: Sequence[str] | None = None,
    pick: Pick = "only",
    dicom: bool = False,
    what: str = "input",
    pictures: bool = False,
    report_skipped: bool = False,
    channels: int | None = None,
    skip_labels: bool | None = None,
    seg: bool = False,
    column: str | None = None,
) -> list[FoundCase]:
    """The cases a file or folder holds, in the layouts of the module docstring.

    Args:
        path: a file or a folder.
        files: for case folders, the file names each must hold (e.g. a model's channel
            files ``["flair.nii.gz", "t1c.nii.gz"]``, or one reference label file).
        pick: without ``files``, how a case folder's one file is chosen: ``"only"`` (the
            only NIfTI file) or ``"label"`` (the file named like a label map).
        dicom: also accept DICOM files and DICOM series folders.
        what: how messages call ``path`` (``"prediction input"``, ``"reference"``).
        pictures: also accept 2D pictures (PNG, JPEG, BMP, TIFF), one case per file.
        report_skipped: also return every file and folder under ``path`` that is not a
            case, as a :class:`FoundCase` with ``skip`` set; label- and mask-named NIfTI
            files are then skipped rather than taken as cases.
        channels: the channels a case must hold; with ``report_skipped`` and 1, a
            single-file case whose NIfTI header holds several volumes (4D) is skipped.
        skip_labels: label- and mask-named NIfTI files are not cases (default:
            ``report_skipped``).
        seg: also accept ``<case_id>.seg.dcm`` DICOM SEG files, one case each.
        column: ``path`` may be a manifest CSV; this column holds each case's file.

    Returns:
        The cases (and skipped entries), in sorted order (possibly none).

    Raises:
        DataError: ``path`` does not exist, or is a file that is not NIfTI (nor DICOM
            with ``dicom=True``); a manifest without ``case_id`` or ``column``.
    """
    if pick not in ("only", "label"):
        raise ValueError(f"pick must be 'only' or 'label', got {pick!r}")
    root = Path(path)
    if not root.exists():
        raise DataError(f"{what} not found: '{root}' is not a folder or a file")
    if root.is_file():
        if column is not None and root.suffix.lower() == ".csv":
            return _manifest_cases(root, column, what)
        if pictures and _is_picture(root):
            return [FoundCase(root.stem, (root,), None, root)]
        if seg and seg_case_id(root) is not None:
            return [FoundCase(str(seg_case_id(root)), (root,), None, root)]
        return [_single_file(root, dicom, what)]
    names = list(files) if files else None
    top_files, subfolders = list_folder(root)
    no_labels = report_skipped if skip_labels is None else skip_labels
    images = [p for p in top_files if is_nifti_path(p) and not (no_labels and looks_like_label(p))]
    found = [FoundCase(nifti_case_id(p) or p.name, (p,), None, p) for p in images]
    if pictures:
        found += [FoundCase(p.stem, (p,), None, p) for p in top_files if _is_picture(p)]
    if seg:
        found += [FoundCase(str(seg_case_id(p)), (p,), None, p) for p in top_files if seg_case_id(p) is not None]
    for folder in subfolders:
        case = _case_folder(folder, names, pick, dicom, no_labels)
        if case is not None:
            found.append(case)
    found = _merge_duplicates(found, root)
    if not found and dicom and _holds_dicom(root):
        found = [FoundCase(root.name, (root,), None, root)]
    if report_skipped:
        found = add_skipped(root, found, names, dicom=dicom, pictures=pictures, channels=channels)
    return sorted(found, key=lambda c: c.case_id)


def add_skipped(
    root: Path, found: list[FoundCase], names: list[str] | None, *, dicom: bool, pictures: bool,
    channels: int | None, unmatched: str | None = None,
) -> list[FoundCase]:
    """``found`` with 4D files for a one-channel model (``channels=1``) turned into skips,
    plus a skipped entry for everything under the folder ``root`` that no case accounts
    for (:func:`medimg.io.accounting.skipped_entries`; ``unmatched``: the reason given to
    a NIfTI file that is not a case)."""
    out: list[FoundCase] = []
    for case in found:
        n = channel_count(case.paths[0]) if channels == 1 and len(case.paths) == 1 and is_nifti_path(case.paths[0]) else None
        if n is not None and n > 1:
            why = f"a 4D file with {n} volumes, but the model takes one channel (give one 3D volume per case)"
            out.append(FoundCase(case.case_id, (), None, case.source, skip=why))
        else:
            out.append(case)
    used = {p for c in found for p in c.paths} | {c.source for c in found if not c.ok and c.source is not None}
    skips = skipped_entries(root, used, dicom=dicom, pictures=pictures, names=names, unmatched=unmatched)
    return out + [FoundCase(rel, (), None, root / rel.rstrip("/"), skip=why) for rel, why in skips]


def _manifest_cases(path: Path, column: str, what: str) -> list[FoundCase]:
    """One case per row of a manifest CSV: ``case_id`` and the file in ``column``."""
    import csv

    with path.open(newline="", encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f))
        header = rows[0].keys() if rows else []
    missing = [c for c in ("case_id", column) if c not in header]
    if missing:
        raise DataError(
            f"{what} manifest '{path}' has no column {', '.join(repr(c) for c in missing)} "
            f"(columns: {', '.join(header) or 'none'}); expected case_id and '{column}' holding each case's file"
        )
    found = []
    for n, row in enumerate(rows, start=2):
        cid, cell = (row["case_id"] or "").strip(), (row[column] or "").strip()
        where = f"{what} manifest '{path}', line {n}"
        if not cid:
            raise DataError(f"{where}: empty case_id; give every row a case id")
        file = Path(cell) if Path(cell).is_absolute() else path.parent / cell
        if not cell:
            found.append(FoundCase(cid, (), f"{where}: empty '{column}' cell for case '{cid}'", path))
        elif not file.exists():
            found.append(FoundCase(cid, (), f"{where}: '{file}' (case '{cid}') does not exist; paths are relative "
                                   "to the manifest's folder", path))
        else:
            found.append(FoundCase(cid, (file,), None, file))
    return sorted(_merge_duplicates(found, path), key=lambda c: c.case_id)


def _is_picture(path: Path) -> bool:
    """A 2D picture by its suffix (the ones :func:`medimg.io.read_image` reads with Pillow)."""
    return path.suffix.lower() in PICTURE_SUFFIXES


def _single_file(path: Path, dicom: bool, what: str) -> FoundCase:
    """A file named on its own: one NIfTI (or DICOM) case."""
    cid = nifti_case_id(path)
    if cid is not None:
        return FoundCase(cid, (path,), None, path)
    if dicom and _is_dicom(path):
        return FoundCase(path.stem, (path,), None, path)
    raise DataError(
        f"{what} '{path}' is not a NIfTI file (.nii or .nii.gz)" + (" or a DICOM file" if dicom else "")
    )


def _case_folder(folder: Path, names: list[str] | None, pick: Pick, dicom: bool, no_labels: bool = False) -> FoundCase | None:
    """The case a subfolder holds, or None when it is not a case folder (``no_labels``:
    label- and mask-named files are not candidates for ``pick="only"``)."""
    inner, _ = list_folder(folder)
    nifti = [p for p in inner if is_nifti_path(p)]
    if no_labels and names is None and any(not looks_like_label(p) for p in nifti):
        nifti = [p for p in nifti if not looks_like_label(p)]
    cid = folder.name
    if names is not None:
        resolved = {n: _named_file(folder, n) for n in names}
        if not nifti and not any(resolved.values()):
            return _dicom_case(folder, dicom)
        missing = [n for n, p in resolved.items() if p is None]
        if missing:
            listed = ", ".join(p.name for p in inner) or "none"
            which = ", ".join(f"'{n}'" for n in missing)
            problem = f"no file {which} in case folder '{folder}' (files there: {listed})"
            return FoundCase(cid, (), problem, folder)
        return FoundCase(cid, tuple(resolved[n] for n in names), None, folder)  # type: ignore[misc]
    if not nifti:
        return _dicom_case(folder, dicom)
    chosen = _pick_label(folder, nifti) if pick == "label" else _pick_only(folder, nifti)
    if isinstance(chosen, str):
        return FoundCase(cid, (), chosen, folder)
    return FoundCase(cid, (chosen,), None, folder)


def _named_file(folder: Path, name: str) -> Path | None:
    """``folder/name``, or ``folder/name`` + ``.nii.gz`` / ``.nii``, if it is a file."""
    for cand in (name, f"{name}.nii.gz", f"{name}.nii"):
        p = folder / cand
        if p.is_file():
            return p
    return None


def _dicom_case(folder: Path, dicom: bool) -> FoundCase | None:
    """A DICOM series folder as one case (with ``dicom=True``), else not a case."""
    if dicom and _holds_dicom(folder):
        return FoundCase(folder.name, (folder,), None, folder)
    return None


def _pick_only(folder: Path, nifti: list[Path]) -> Path | str:
    if len(nifti) == 1:
        return nifti[0]
    return (
        f"case folder '{folder}' holds {len(nifti)} NIfTI files "
        f"({', '.join(p.name for p in nifti)}); expected one, or the files to use named"
    )


def _is_label_name(name: str, strong: bool) -> bool:
    low = name.lower()
    if strong:
        tokens = re.split(r"[^a-z0-9]+", low)
        return any(k in low for k in _STRONG) or "gt" in tokens
    return "mask" in low


def _pick_label(folder: Path, nifti: list[Path]) -> Path | str:
    """The label map among a case folder's NIfTI files, or why none could be chosen."""
    for strong in (True, False):
        hits = [p for p in nifti if _is_label_name(p.name, strong)]
        if len(hits) == 1:
            return hits[0]
        if len(hits) > 1:
            return (
                f"case folder '{folder}' holds several candidate label files "
                f"({', '.join(p.name for p in hits)}); name the one to use"
            )
    if len(nifti) == 1:
        return nifti[0]
    return (
        f"case folder '{folder}' holds {len(nifti)} NIfTI files "
        f"({', '.join(p.name for p in nifti)}) and none is named like a label map; name the one to use"
    )


def _merge_duplicates(found: list[FoundCase], root: Path) -> list[FoundCase]:
    """One case per id: an id found twice becomes one case with a problem naming both."""
    by_id: dict[str, FoundCase] = {}
    for case in found:
        first = by_id.get(case.case_id)
        if first is None:
            by_id[case.case_id] = case
            continue
        problem = (
            f"case id '{case.case_id}' appears twice in '{root}' ('{first.source}' and '{case.source}'); "
            "keep one of them"
        )
        by_id[case.case_id] = FoundCase(case.case_id, (), problem, first.source)
    return list(by_id.values())


def _is_dicom(path: Path) -> bool:
    from .dicom import is_dicom_file

    return is_dicom_file(path)


def _holds_dicom(folder: Path) -> bool:
    """Whether any non-NIfTI file under ``folder`` is DICOM (stops at the first one)."""
    return any(not is_nifti_path(p) and _is_dicom(p) for p in walk_files(folder))
