"""How files and cases are found in a folder: the one walker, the one hidden-file rule.

Every command that looks inside a folder (data loading, ``predict``, ``evaluate``,
``convert``, ``deid``, DICOM series discovery) lists files through this module, so the
same folder shows the same files to all of them:

- names starting with ``.`` are hidden (files and folders alike: ``.DS_Store``, ``.git``,
  ``._IM0001`` AppleDouble twins) and never listed;
- folders are walked in sorted order and symbolic links to folders are not followed (a
  link loop cannot hang a scan); linked files are listed;
- a NIfTI file is any name ending in one of :data:`NIFTI_SUFFIXES` (case-insensitive), and
  its case id is the name without that suffix;
- a DICOM SEG file as ``medimg predict --format dicom-seg`` writes it is
  ``<case_id>`` + :data:`SEG_SUFFIX` (``.seg.dcm``, case-insensitive).

This module does no I/O beyond listing names (it never opens a file), so it sits at the
bottom of ``medimg.io``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

__all__ = [
    "NIFTI_SUFFIXES",
    "PICTURE_SUFFIXES",
    "is_hidden",
    "is_nifti_path",
    "nifti_case_id",
    "SEG_SUFFIX",
    "is_seg_path",
    "seg_case_id",
    "walk_files",
    "list_folder",
]

#: File name endings of NIfTI-1/2 images, longest first (so ``.nii.gz`` is stripped whole).
NIFTI_SUFFIXES: tuple[str, ...] = (".nii.gz", ".nii")

#: File name endings (lower case) of the 2D pictures read through Pillow (``medimg.io.raster``).
PICTURE_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


def is_hidden(name: str | os.PathLike) -> bool:
    """Whether a file or folder name is hidden (starts with ``.``): never listed."""
    return Path(name).name.startswith(".")


def is_nifti_path(path: str | os.PathLike) -> bool:
    """Whether the file name ends in ``.nii`` or ``.nii.gz`` (case-insensitive)."""
    return Path(path).name.lower().endswith(NIFTI_SUFFIXES)


def nifti_case_id(path: str | os.PathLike) -> str | None:
    """The case id of a NIfTI file, its name without ``.nii.gz`` / ``.nii``; else None.

    ``"case_007.nii.gz"`` -> ``"case_007"``; ``"notes.txt"`` -> None; ``".nii"`` -> None.
    """
    name = Path(path).name
    low = name.lower()
    for suffix in NIFTI_SUFFIXES:
        if low.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return None


#: File name ending of the DICOM SEG files ``predict`` writes (``<case_id>.seg.dcm``).
SEG_SUFFIX = ".seg.dcm"


def is_seg_path(path: str | os.PathLike) -> bool:
    """Whether the file name ends in ``.seg.dcm`` (case-insensitive), the DICOM SEG naming."""
    return seg_case_id(path) is not None


def seg_case_id(path: str | os.PathLike) -> str | None:
    """The case id of a ``<case_id>.seg.dcm`` file (``"c1.seg.dcm"`` -> ``"c1"``); else None."""
    name = Path(path).name
    if name.lower().endswith(SEG_SUFFIX) and len(name) > len(SEG_SUFFIX):
        return name[: -len(SEG_SUFFIX)]
    return None


def walk_files(root: str | os.PathLike) -> Iterator[Path]:
    """Every non-hidden file under ``root``, depth first, in sorted order.

    ``root`` may itself be a file (then it alone is yielded, hidden or not: the user
    named it). Hidden files and folders are skipped; links to folders are not followed.
    """
    root = Path(root)
    if root.is_file():
        yield root
        return
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not is_hidden(d))
        for name in sorted(filenames):
            if not is_hidden(name):
                yield Path(dirpath) / name


def list_folder(folder: str | os.PathLike) -> tuple[list[Path], list[Path]]:
    """The non-hidden ``(files, subfolders)`` directly inside ``folder``, each sorted."""
    files: list[Path] = []
    dirs: list[Path] = []
    for entry in sorted(Path(folder).iterdir()):
        if is_hidden(entry.name):
            continue
        if entry.is_dir():
            dirs.append(entry)
        elif entry.is_file():
            files.append(entry)
    return files, dirs
