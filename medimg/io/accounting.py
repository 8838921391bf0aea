"""Everything under a prediction input accounted for: the files and folders that are not
cases, as skipped :class:`~medimg.io.cases.FoundCase` entries with the reason.

:func:`medimg.io.cases.find_cases` with ``report_skipped=True`` calls
:func:`skipped_entries` after finding the cases. An entry's id is its path relative to
the input folder (``notes.txt``, ``p1/seg.nii.gz``, ``empty/``), so it never collides with
a case id; its ``skip`` holds the reason. Hidden names (``.x``) are never listed, as
everywhere in medimg.
"""

from __future__ import annotations

import re
from pathlib import Path

from .layout import PICTURE_SUFFIXES, is_nifti_path, list_folder

__all__ = ["channel_count", "looks_like_label", "skipped_entries"]

_LABEL_TOKENS = {
    "label", "labels", "seg", "segmentation", "mask", "gt", "truth", "groundtruth",
    "annot", "annotation", "annotations", "multiclass",
}


def looks_like_label(path: str | Path) -> bool:
    """Whether a file name says it is a label map or mask (``case1_seg.nii.gz``,
    ``brainmask.nii.gz``, ``OTMultiClass.nii.gz``, ``gt.nii``), by whole name tokens."""
    name = Path(path).name.lower()
    tokens = [t for t in re.split(r"[^a-z0-9]+", name) if t]
    return any(t in _LABEL_TOKENS or t.endswith(("mask", "multiclass")) for t in tokens)


def channel_count(path: Path) -> int | None:
    """Volumes in a NIfTI file by its header (``x, y, z, c`` -> c; 3D -> 1); None when the
    header cannot be read (reading the case will then report why)."""
    try:
        import nibabel as nib

        shape = nib.load(str(path)).shape
    except Exception:  # noqa: BLE001 - the case's own read reports the problem
        return None
    extra = 1
    for s in shape[3:]:
        extra *= int(s)
    return extra


def _rel(path: Path, root: Path) -> str:
    try:
        rel = path.relative_to(root).as_posix()
    except ValueError:
        rel = path.name
    return rel + ("/" if path.is_dir() else "")


def _what_file(path: Path, dicom: bool, pictures: bool) -> str:
    readable = "NIfTI" + (", DICOM" if dicom else "") + (" or picture" if pictures else "")
    if path.suffix.lower() in PICTURE_SUFFIXES and not pictures:
        return "a picture, which this model does not take"
    return f"not an image this model reads ({readable})"


def skipped_entries(
    root: Path, used: set[Path], *, dicom: bool, pictures: bool, names: list[str] | None, unmatched: str | None = None
) -> list[tuple[str, str]]:
    """``(entry id, reason)`` for each file directly in ``root`` and in its subfolders, and
    each subfolder, that no case in ``used`` (case files and case folders) accounts for.

    A DICOM series or study folder in ``used`` accounts for everything under it.
    """
    if root in used:  # the folder itself is one (DICOM) case
        return []
    out: list[tuple[str, str]] = []
    from .dicom import is_dicom_file  # lazy: pydicom is heavy

    files, folders = list_folder(root)
    for f in files:
        if f in used:
            continue
        if is_nifti_path(f) and looks_like_label(f):
            out.append((_rel(f, root), "named like a label map or mask, not an image to predict"))
        elif is_nifti_path(f):
            out.append((_rel(f, root), unmatched or "a NIfTI file that is not a case here"))
        elif dicom and is_dicom_file(f):
            out.append((_rel(f, root), "a DICOM file beside other cases; put each series in its own folder"))
        else:
            out.append((_rel(f, root), _what_file(f, dicom, pictures)))
    for folder in folders:
        if folder in used:
            continue
        if any(folder in u.parents and u.parent != folder for u in used):
            continue  # DICOM studies deeper inside: their own folders account for it
        inner, sub = list_folder(folder)
        chosen = [p for p in inner if p in used]
        if not chosen:
            want = f"the model's channel files ({', '.join(names)})" if names else "one NIfTI file"
            what = "an empty folder" if not inner and not sub else (
                f"a folder holding neither {want}" + (" nor a DICOM series" if dicom else "")
            )
            out.append((_rel(folder, root), what))
            continue
        case = folder.name
        for f in inner:
            if f in used:
                continue
            if is_nifti_path(f) and looks_like_label(f):
                why = f"named like a label map or mask, not an input of case '{case}'"
            elif names:
                why = f"not one of the model's channel files ({', '.join(names)}) of case '{case}'"
            else:
                why = f"not the image of case '{case}'"
            out.append((_rel(f, root), why))
        for s in sub:
            out.append((_rel(s, root), f"a folder inside case folder '{case}' (a case's files sit directly in it)"))
    return out


