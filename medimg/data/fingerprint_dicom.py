"""Fingerprint inputs from a tree of DICOM studies (``medimg fingerprint STUDIES --channel ...``).

A study tree has no split folders and no label maps. Its cases are found the way
``medimg predict`` finds them (:func:`medimg.io.studies.find_channel_cases`): one case per
study, each channel the one image series whose SeriesDescription matches the channel's
pattern (``--channel flair='*FLAIR*'``; a study with a single image series needs no
pattern for one channel). A study whose pattern matches no series or several is listed
as skipped with the reason, and the other studies go on.

Per case the fingerprint records, beside :func:`medimg.data.fingerprint_case.case_fingerprint`'s
entries, the chosen ``series`` per channel (description, number, DICOM Modality, and the
series' own folder when no other series shares it) and ``channel_modalities``.

**Labels** (optional, ``--labels DIR``): ``DIR/<study id>.nii.gz`` (or ``.nii``) per study,
on the grid of the study's first channel, or ``DIR/<study id>.seg.dcm``, a DICOM SEG (as
``medimg predict --format dicom-seg`` writes) placed on that channel's grid
(:func:`medimg.io.dicom_seg.read_seg_on_grid`). A SEG whose frames do not lie on that grid
(made on another series) is not resampled: the study is skipped with the reason, as is a
study with both a ``.nii.gz`` and a ``.seg.dcm``. With labels the class frequencies and
components are fingerprinted and a segmentation can be planned: :func:`write_study_manifest`
writes the manifest CSV the planned config trains from (each channel column names the
series' folder, which ``medimg train`` reads as one DICOM series; the label column names the
label map or the SEG, which training places on the first channel's grid the same way). Without labels the
fingerprint says so (``labelled: false``) and ``medimg plan`` refuses, naming ``--labels``.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

from ..core.errors import DataError
from ..io.layout import list_folder, nifti_case_id, seg_case_id, walk_files
from .records import CaseRecord
from .split import grouped_split

__all__ = ["is_study_tree", "study_inputs", "write_study_manifest", "VALIDATION_FRACTION"]

#: Share of the labelled studies the planned manifest puts in the validation split.
VALIDATION_FRACTION = 0.2


def is_study_tree(path: Path) -> bool:
    """True for a folder holding DICOM files (at any depth) and no ``train`` split folder."""
    from ..io.dicom import is_dicom_file

    if not path.is_dir() or any(p.name in ("train", "training") for p in list_folder(path)[1]):
        return False
    return any(is_dicom_file(p) for p in walk_files(path))


def _series_record(s: Any, study_series: list[Any]) -> dict[str, Any]:
    """What the fingerprint keeps of a chosen series; ``folder`` is None when the series'
    files share their folder with another series (``medimg train`` reads one per folder)."""
    folder = Path(os.path.commonpath([str(Path(f).parent) for f in s.files])) if s.files else None
    others = [o for o in study_series if o is not s]
    shared = folder is None or s.key != s.series_instance_uid or any(
        Path(f).is_relative_to(folder) for o in others for f in o.files)
    return {"description": s.description, "series_number": s.series_number, "modality": s.modality or None,
            "num_files": len(s.files), "folder": None if shared else str(folder)}


def _label_files(labels: Path) -> tuple[dict[str, Path], dict[str, str]]:
    """``<study id>.nii.gz`` / ``.nii`` / ``.seg.dcm`` files of ``labels`` by study id, and
    the ids given twice (with why)."""
    if not labels.is_dir():
        raise DataError(f"--labels {labels}: not a folder",
                        hint="give a folder of <study id>.nii.gz label maps or <study id>.seg.dcm DICOM SEGs")
    found: dict[str, list[Path]] = {}
    for p in list_folder(labels)[0]:
        if cid := nifti_case_id(p) or seg_case_id(p):
            found.setdefault(cid, []).append(p)
    twice = {cid: f"--labels {labels} holds {' and '.join(sorted(p.name for p in ps))} for this study; keep one"
             for cid, ps in found.items() if len(ps) > 1}
    return {cid: ps[0] for cid, ps in found.items() if len(ps) == 1}, twice


def study_inputs(path: Path, channels: dict[str, str] | None, labels: Path | None
                 ) -> tuple[dict[str, Any], list[tuple], list[dict[str, Any]], dict[str, dict[str, Any]], list[str]]:
    """The studies under ``path`` as fingerprint inputs.

    Args:
        path: the study tree.
        channels: channel name -> SeriesDescription pattern, in channel order (None or
            empty: one channel ``image``, for studies holding a single image series).
        labels: folder of ``<study id>.nii.gz`` label maps or ``<study id>.seg.dcm``
            DICOM SEGs, or None.

    Returns:
        ``(data keys, case_fingerprint argument tuples, skipped case entries, extra
        entries per case id, warnings)``.
    """
    from ..io.studies import find_channel_cases

    pats = dict(channels or {})
    names = list(pats) or ["image"]
    found = find_channel_cases(path, names, pats, in_channels=len(names), what="study tree")
    by_id, twice = _label_files(labels) if labels is not None else ({}, {})
    args: list[tuple] = []
    skipped: list[dict[str, Any]] = []
    extra: dict[str, dict[str, Any]] = {}
    for i, case in enumerate(found):
        if not case.ok:
            skipped.append({"case_id": case.case_id, "split": "train", "problem": case.problem or case.skip})
            continue
        series = list(getattr(case, "series", ()))
        items: list[Any] = series or [str(p) for p in case.paths]
        label = by_id.get(case.case_id)
        if labels is not None and label is None:
            problem = twice.get(case.case_id) or (
                f"no label map {case.case_id}.nii.gz (or DICOM SEG {case.case_id}.seg.dcm) in --labels {labels}")
            skipped.append({"case_id": case.case_id, "split": "train", "problem": problem})
            continue
        args.append((case.case_id, "train", items, str(label) if label else None, i))
        extra[case.case_id] = {"label_path": str(label) if label else None}
        if series:
            every = series + list(getattr(case, "unused", ()))
            extra[case.case_id].update(series=[_series_record(s, every) for s in series],
                                       channel_modalities=[s.modality or None for s in series])
    ids = {c.case_id for c in found}
    warnings = [f"label {p.name} in --labels {labels} names no study (ignored); study ids: "
                f"{', '.join(sorted(ids)[:8]) or 'none'}" for cid, p in sorted(by_id.items()) if cid not in ids]
    if labels is None:
        warnings.append("no label maps: a DICOM study tree has none, so class frequencies and components are not "
                        "fingerprinted; give --labels DIR with <study id>.nii.gz (or <study id>.seg.dcm) per study "
                        "to plan a segmentation")
    data = {"studies": str(path), "channels": pats, "images": names, "label": str(labels) if labels else None}
    return data, args, skipped, extra, warnings


def write_study_manifest(fp: dict[str, Any], path: str | os.PathLike) -> list[str]:
    """Write the manifest CSV a planned config trains from: the labelled, usable studies of
    fingerprint ``fp`` (``case_id``, one column per channel naming its series' folder,
    ``label``, ``split``: about :data:`VALIDATION_FRACTION` of them validation, at least one
    when there are two or more), paths
    relative to the manifest's folder. Sets ``fp["data"]`` to the manifest's keys, and the
    listed cases' ``split`` (and ``num_train``, ``splits``) to the manifest's.

    Returns:
        Warnings: studies left out because a chosen series shares its folder.

    Raises:
        DataError: the fingerprint has no labels, or no study can be listed.
    """
    path = Path(path)
    if not fp.get("labelled"):
        raise DataError(f"cannot plan a segmentation of DICOM study tree {fp['source']}: it has no label maps",
                        hint="give --labels DIR holding <study id>.nii.gz or <study id>.seg.dcm per study "
                        "(medimg fingerprint lists the ids)")
    names = fp["data"]["images"]
    base = path.parent.resolve()
    rows, warnings = [], []
    for c in fp["cases"]:
        if c.get("problem"):
            continue
        folders = [s["folder"] for s in c.get("series", [])]
        if len(folders) != len(names) or None in folders:
            warnings.append(f"case {c['case_id']}: a chosen series shares its folder with another series; "
                            "medimg train reads one series per folder (left out of the plan; give each series its own folder)")
            continue
        rel = [os.path.relpath(os.path.abspath(f), base) for f in folders]
        rows.append(CaseRecord(c["case_id"], [Path(r) for r in rel],
                               Path(os.path.relpath(os.path.abspath(c["label_path"]), base)), "train"))
    if not rows:
        raise DataError(f"cannot plan {fp['source']}: no usable labelled study whose series each have their own folder",
                        hint="check the warnings of medimg fingerprint; lay studies out as <study>/<series>/<files>")
    n_val = 0 if len(rows) < 2 else max(1, round(VALIDATION_FRACTION * len(rows)))
    fractions = (1 - n_val / len(rows), n_val / len(rows), 0.0)
    splits = grouped_split(rows, group_key=None, fractions=fractions)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["case_id", *names, "label", "split"])
        for split in ("train", "validation", "test"):
            for r in splits[split]:
                w.writerow([r.case_id, *[p.as_posix() for p in r.image_paths], r.label_path.as_posix(), split])
    split_of = {r.case_id: split for split, recs in splits.items() for r in recs}
    for c in fp["cases"]:
        if c["case_id"] in split_of:
            c["split"] = split_of[c["case_id"]]
    fp["num_train"] = len(splits["train"])
    fp["splits"] = {k: len(v) for k, v in splits.items() if v}
    fp["data"] = {"manifest": str(path), "images": list(names), "label": "label", "studies": fp["data"]["studies"],
                  "channels": fp["data"]["channels"], "labels": fp["data"]["label"]}
    return warnings
