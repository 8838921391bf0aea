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

Files and folders that fit none of these (``labels.json``, notes, plots, hidden names) are
ignored. A case id found twice (``c1.nii.gz`` beside the folder ``c1/``) is one case with a
problem naming both. Every case comes back as a :class:`FoundCase`, with its paths or the
problem, so callers report a bad case and go on with the others.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ..core.errors import DataError
from .layout import PICTURE_SUFFIXES, is_nifti_path, list_folder, nifti_case_id, walk_files

__all__ = ["FoundCase", "find_cases", "Pick"]

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

    It unpacks as ``(case_id, paths or problem)``: ``for case_id, paths in
    find_cases(...)`` gives the list of paths, or, for a case with a problem, the
    :class:`~medimg.core.errors.DataError` to report for it.
    """

    case_id: str
    paths: tuple[Path, ...] = ()
    problem: str | None = None
    source: Path | None = None

    @property
    def ok(self) -> bool:
        """Whether the case's files were found (no problem)."""
        return self.problem is None

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

    Returns:
        The cases, flat files and case folders in sorted order (possibly none).

    Raises:
        DataError: ``path`` does not exist, or is a file that is not NIfTI (nor DICOM
            with ``dicom=True``).
    """
    if pick not in ("only", "label"):
        raise ValueError(f"pick must be 'only' or 'label', got {pick!r}")
    root = Path(path)
    if not root.exists():
        raise DataError(f"{what} not found: '{root}' is not a folder or a file")
    if root.is_file():
        if pictures and _is_picture(root):
            return [FoundCase(root.stem, (root,), None, root)]
        return [_single_file(root, dicom, what)]
    names = list(files) if files else None
    top_files, subfolders = list_folder(root)
    found = [FoundCase(nifti_case_id(p) or p.name, (p,), None, p) for p in top_files if is_nifti_path(p)]
    if pictures:
        found += [FoundCase(p.stem, (p,), None, p) for p in top_files if _is_picture(p)]
    for folder in subfolders:
        case = _case_folder(folder, names, pick, dicom)
        if case is not None:
            found.append(case)
    found = _merge_duplicates(found, root)
    if not found and dicom and _holds_dicom(root):
        found = [FoundCase(root.name, (root,), None, root)]
    return sorted(found, key=lambda c: c.case_id)


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


def _case_folder(folder: Path, names: list[str] | None, pick: Pick, dicom: bool) -> FoundCase | None:
    """The case a subfolder holds, or None when it is not a case folder."""
    inner, _ = list_folder(folder)
    nifti = [p for p in inner if is_nifti_path(p)]
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
