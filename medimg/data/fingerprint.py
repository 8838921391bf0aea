"""Data set fingerprint (``medimg fingerprint``): what a planner needs to know about the data.

:func:`fingerprint` takes a data set the way a config names it and returns plain data
(written as ``fingerprint.json``):

- **Segmentation**, a folder layout ``DATA/<split>/<case_id>/<files>`` (the label map is
  the file named like one, as ``medimg evaluate`` picks it; the images are the other NIfTI
  files that are not named like a mask) or a manifest CSV whose label column names NIfTI
  files (or DICOM SEG ``.seg.dcm`` files, placed on the first image's grid). Per case: shape, spacing, orientation, channels, DICOM modality, intensity
  statistics per channel inside the foreground, voxels and connected components per label
  value (:mod:`medimg.data.fingerprint_case`). The data set: median spacing and shape,
  anisotropy (largest over smallest median spacing), pooled intensity statistics per
  channel (from up to 10 000 foreground voxels per case), class voxel frequencies, and
  warnings for the cases that stand out.
- **A tree of DICOM studies** with channel patterns (``channels``: name ->
  SeriesDescription pattern, as ``medimg predict --channel``): one case per study
  (:mod:`medimg.data.fingerprint_dicom`), geometry from the DICOM series, the DICOM
  Modality per case and for the data set (``modality``, ``modality_source``), the
  chosen series per channel; a study whose pattern matches no series or several is
  skipped with the reason. No labels unless ``labels`` names a folder of
  ``<study id>.nii.gz`` or ``<study id>.seg.dcm`` DICOM SEG files (``labelled``).
- **Classification**, an ``.npz`` (MedMNIST arrays), a manifest whose label column holds
  class names, or class folders ``DATA/<split>/<class>/<file>``: image shape, channels,
  class counts per split, intensity statistics per channel.

Every segmentation case is read once, by two worker processes, with an optional
``progress(done, total)`` callback.

Warnings (``warnings``: one line each, naming the case): a case whose grid, images or
label cannot be read or disagree (**skipped**: left out of the statistics), orientation
other than the most common one, a spacing more than 3x or under 1/3 of the median on an
axis, a 99.5th percentile intensity more than 3 data-set standard deviations (of the
cases' 99.5th percentiles, at least 1 unit) from their median, a single case, no
foreground in a case's label. Problems no plan can work around are **errors** (``errors``):
mixed 2D and 3D images, different channel counts, no foreground in any label; the planner
refuses them.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import DataError
from ..core.spec import DataSection
from ..io.accounting import looks_like_label
from ..io.cases import find_cases
from ..io.layout import PICTURE_SUFFIXES, is_nifti_path, is_seg_path, list_folder
from .fingerprint_case import case_fingerprint, intensity_stats
from .records import load_cases

__all__ = ["fingerprint", "discover", "WORKERS", "SPACING_OUTLIER"]

#: Worker processes reading cases (the project's machines have 2 cores).
WORKERS = 2
#: A case whose spacing on an axis is over this times (or under 1/this) the median stands out.
SPACING_OUTLIER = 3.0
#: Split folder names tried for each split, in order.
_SPLIT_NAMES = {"train": ("train", "training"), "validation": ("validation", "val", "valid"), "test": ("test",)}
_PICTURES = tuple(PICTURE_SUFFIXES)

Progress = Callable[[int, int], None]


def _split_folders(root: Path) -> dict[str, str]:
    names = {p.name for p in list_folder(root)[1]}
    return {split: n for split, options in _SPLIT_NAMES.items() for n in options if n in names}


def _folder_source(root: Path, images: list[str] | None, label: str | None) -> tuple[str, dict[str, Any]]:
    splits = _split_folders(root)
    if "train" not in splits:
        present = [p.name for p in list_folder(root)[1]]
        raise DataError(
            f"data folder {root} has no 'train' split folder; folders present: {present}",
            hint="lay cases out as DATA/train/<case>/<files> (and validation/, test/), or give a manifest CSV or an .npz",
        )
    train = root / splits["train"]
    first = next(iter(list_folder(train)[1]), None)
    if first is None:
        raise DataError(f"split folder {train} holds no case or class folders", hint="check DATA")
    files = list_folder(first)[0]
    if not any(is_nifti_path(p) for p in files) and images is None:
        return "classification", {"root": root, "splits": splits}
    if label is None:
        case = next((c for c in find_cases(train, pick="label") if c.case_id == first.name), None)
        if case is None or not case.ok:
            raise DataError(
                f"cannot tell the label file of case folder {first}: {case.problem if case else 'no NIfTI files'}",
                hint="name it with --label FILE_NAME",
            )
        label = case.paths[0].name
    if images is None:
        images = sorted(p.name for p in files if is_nifti_path(p) and p.name != label and not looks_like_label(p))
        if not images:
            raise DataError(f"case folder {first} holds no image file beside the label {label}",
                            hint="name the channels with --images FILE_NAME (repeatable)")
    return "segmentation", {"root": root, "splits": splits, "images": images, "label": label}


def _manifest_source(path: Path, images: list[str] | None, label: str | None) -> tuple[str, dict[str, Any]]:
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        columns = [c.strip() for c in reader.fieldnames or []]
        row = {(k or "").strip(): (v or "").strip() for k, v in next(reader, {}).items()}
    label = label or ("label" if "label" in columns else None)
    if label is None or label not in columns:
        raise DataError(f"manifest {path}: no label column ('label' or --label); columns: {columns}",
                        hint="name the label column with --label COLUMN")
    reserved = {"case_id", "split", "patient_id", label}
    if images is None:
        images = [c for c in columns if c not in reserved
                  and (is_nifti_path(row.get(c, "")) or row.get(c, "").lower().endswith(_PICTURES + (".dcm",)))]
    if not images:
        raise DataError(f"manifest {path}: no image path column found; columns: {columns}",
                        hint="name the image column(s) with --images COLUMN (repeatable)")
    kind = "segmentation" if is_nifti_path(row.get(label, "")) or is_seg_path(row.get(label, "")) else "classification"
    return kind, {"manifest": path, "images": images, "label": label}


def discover(path: str | Path, images: list[str] | None = None, label: str | None = None) -> tuple[str, dict[str, Any]]:
    """The task (``segmentation`` or ``classification``) and the config ``data`` keys
    (``root``/``manifest``/``npz``, ``images``, ``label``, ``splits``) of a data set.

    Raises:
        DataError: ``path`` is missing or in no layout this module reads (says which).
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"data set not found: {path}", hint="give a data folder, a manifest .csv or an .npz")
    if path.is_file() and path.suffix.lower() == ".npz":
        return "classification", {"npz": path}
    if path.is_file() and path.suffix.lower() == ".csv":
        return _manifest_source(path, images, label)
    if path.is_dir():
        return _folder_source(path, images, label)
    raise DataError(f"{path} is neither a folder, a manifest .csv nor an .npz",
                    hint="give a data folder (DATA/train/<case>/...), a manifest CSV or a MedMNIST .npz")


def _section(data: dict[str, Any]) -> DataSection:
    keys = {k: v for k, v in data.items() if k in ("root", "manifest", "npz", "images", "label")}
    if "splits" in data:
        keys["splits"] = {**{"train": "train", "validation": "validation", "test": "test"}, **data["splits"]}
    keys.setdefault("images", ["image"])
    return DataSection(**keys)


def fingerprint(path: str | Path, images: list[str] | None = None, label: str | None = None,
                progress: Progress | None = None, workers: int = WORKERS, *,
                channels: dict[str, str] | None = None, labels: str | Path | None = None) -> dict[str, Any]:
    """The fingerprint of the data set at ``path`` (see the module docstring).

    ``channels`` (channel name -> SeriesDescription pattern) or a folder of DICOM files
    without split folders make ``path`` a tree of DICOM studies, one case per study
    (:mod:`medimg.data.fingerprint_dicom`); ``labels`` is then the folder of
    ``<study id>.nii.gz`` label maps or ``<study id>.seg.dcm`` DICOM SEGs, if any.
    """
    from .fingerprint_dicom import is_study_tree

    if channels or labels is not None or is_study_tree(Path(path)):
        return _study_fingerprint(Path(path), channels, Path(labels) if labels is not None else None, progress, workers)
    task, data = discover(path, images, label)
    head = {"source": str(path), "task": task,
            "data": {k: (str(v) if isinstance(v, Path) else v) for k, v in data.items()}}
    if task == "classification":
        from .fingerprint_cls import classification_fingerprint

        return {**head, **classification_fingerprint(_section(data), progress)}
    cases = [c for split in load_cases(_section(data)).values() for c in split]
    args = [(c.case_id, c.split, [str(p) for p in c.image_paths], str(c.label_path) if c.label_path else None, i)
            for i, c in enumerate(cases)]
    results = _run_cases(args, progress, workers)
    return {**head, **summarise(results)}


def _study_fingerprint(path: Path, channels: dict[str, str] | None, labels: Path | None,
                       progress: Progress | None, workers: int) -> dict[str, Any]:
    """A tree of DICOM studies: one case per study, channels chosen by pattern."""
    from .fingerprint_dicom import study_inputs

    if not path.is_dir():
        raise DataError(f"DICOM study tree not found: {path} is not a folder",
                        hint="give the folder holding the studies with --channel NAME='PATTERN'")
    data, args, skipped, extra, notes = study_inputs(path, channels, labels)
    if not args and not skipped:
        raise DataError(f"{path} holds no DICOM image series", hint="give the folder holding the studies")
    results = _run_cases(args, progress, workers)
    for r in results:
        r.update(extra.get(r["case_id"], {}))
    results = sorted(results + skipped, key=lambda r: r["case_id"])
    out = {"source": str(path), "task": "segmentation", "data": data, "labelled": labels is not None,
           **summarise(results)}
    out["warnings"] = out.get("warnings", []) + notes
    return out


def _run_cases(args: list[tuple], progress: Progress | None, workers: int) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    if progress:
        progress(0, len(args))
    if workers <= 1 or len(args) <= 1:
        for a in args:
            results.append(case_fingerprint(*a))
            if progress:
                progress(len(results), len(args))
        return results
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for r in pool.map(case_fingerprint, *zip(*args)):
            results.append(r)
            if progress:
                progress(len(results), len(args))
    return results


def _median(values: list[list[float]]) -> list[float]:
    return [float(v) for v in np.median(np.asarray(values, dtype=np.float64), axis=0)]


def _refusals(ok: list[dict[str, Any]]) -> list[str]:
    errors = []
    dims = Counter(len(c["shape"]) for c in ok)
    if len(dims) > 1:
        common = dims.most_common(1)[0][0]
        odd = [f"{c['case_id']} ({len(c['shape'])}D)" for c in ok if len(c["shape"]) != common]
        errors.append(f"mixed dimensionality: most cases are {common}D but {', '.join(odd)} are not")
    chans = Counter(c["channels"] for c in ok)
    if len(chans) > 1:
        common = chans.most_common(1)[0][0]
        odd = [f"{c['case_id']} ({c['channels']} channels)" for c in ok if c["channels"] != common]
        errors.append(f"inconsistent channel counts: most cases have {common} but {', '.join(odd)}")
    if ok and all("label" in c and not c["label"]["components"] for c in ok):
        errors.append("no foreground in any label map: every case's label is all background (0)")
    return errors


def _outliers(ok: list[dict[str, Any]], median_spacing: list[float]) -> list[str]:
    warns = []
    axcodes = Counter(c["axcodes"] for c in ok).most_common(1)[0][0]
    for c in ok:
        if c["axcodes"] != axcodes:
            warns.append(f"case {c['case_id']}: orientation {c['axcodes']}, most cases {axcodes} (warned; plans reorient)")
        ratio = [s / m for s, m in zip(c["ras_spacing"], median_spacing) if m > 0]
        if any(r > SPACING_OUTLIER or r < 1 / SPACING_OUTLIER for r in ratio):
            warns.append(f"case {c['case_id']}: spacing {c['ras_spacing']} (RAS order) is over {SPACING_OUTLIER:g}x off the median "
                         f"{[round(m, 3) for m in median_spacing]} (warned; it is resampled like the others)")
        if "label" in c and not c["label"]["components"]:
            warns.append(f"case {c['case_id']}: its label has no foreground (warned; kept, patches come from anywhere)")
    highs = np.asarray([c["intensity"][0]["p99_5"] for c in ok], dtype=np.float64)
    if len(highs) >= 3:
        med, spread = float(np.median(highs)), max(float(np.std(highs)), 1.0)
        for c, h in zip(ok, highs):
            if abs(h - med) > 3 * spread:
                warns.append(f"case {c['case_id']}: intensity 99.5th percentile {h:.4g} is far from the cases' "
                             f"median {med:.4g} (warned; check its units or scaling)")
    return warns


def summarise(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Data set statistics, warnings and errors from per-case fingerprints."""
    ok = [r for r in results if not r["problem"]]
    warnings = [f"case {r['case_id']} ({r['split']}): {r['problem']} (skipped)" for r in results if r["problem"]]
    cases = [{k: v for k, v in r.items() if not k.startswith("_")} for r in results]
    out: dict[str, Any] = {"num_cases": len(results), "num_usable": len(ok), "cases": cases}
    if not ok:
        out.update(warnings=warnings, errors=["no readable case: every case was skipped"])
        return out
    errors = _refusals(ok)
    if len(ok) == 1:
        warnings.append(f"a single usable case ({ok[0]['case_id']}): statistics and plan rest on it alone (warned)")
    same_dim = [c for c in ok if len(c["shape"]) == len(ok[0]["shape"])]
    median_spacing = _median([c["ras_spacing"] for c in same_dim])
    if not errors:
        warnings += _outliers(ok, median_spacing)
    mods = Counter(c.get("modality") for c in ok if c.get("modality"))
    if len(mods) > 1:
        common = mods.most_common(1)[0][0]
        odd = [f"{c['case_id']} ({c['modality']})" for c in ok if c.get("modality") not in (None, common)]
        warnings.append(f"mixed DICOM modalities: most cases are {common} but {', '.join(odd)} (warned; "
                        "one normalisation is planned for all, from the majority)")
    out.update(_dataset(ok, same_dim, median_spacing))
    out.update(warnings=warnings, errors=errors)
    return out


def _background(ok: list[dict[str, Any]]) -> float | None:
    """The largest constant background value of the cases' first channel, when every
    case has one (None otherwise)."""
    values = [c.get("background") for c in ok]
    return None if any(v is None for v in values) else float(max(values))


def _dataset(ok: list[dict[str, Any]], same_dim: list[dict[str, Any]], median_spacing: list[float]) -> dict[str, Any]:
    n_ch = Counter(c["channels"] for c in ok).most_common(1)[0][0]
    pooled = []
    for ch in range(n_ch):
        samples = [r["_samples"][ch] for r in ok if r["channels"] == n_ch and len(r["_samples"][ch])]
        pooled.append(intensity_stats(np.concatenate(samples)) if samples else intensity_stats(np.empty(0)))
    voxels: Counter[str] = Counter()
    for c in ok:
        voxels.update(c.get("label", {}).get("voxels", {}))
    total = sum(voxels.values()) or 1
    ct = sum(c["ct_like"] for c in ok) > len(ok) / 2
    modalities = sorted({c["modality"] for c in ok if c.get("modality")})
    lo = max(min(median_spacing), 1e-6)
    return {
        "spatial_dims": len(same_dim[0]["shape"]),
        "channels": n_ch,
        "median_spacing": median_spacing,
        "spacings": [c["ras_spacing"] for c in same_dim],
        "median_shape": _median([c["ras_shape"] for c in same_dim]),
        "median_body_shape": _median([c["ras_body_shape"] for c in same_dim]),
        "anisotropy": float(max(median_spacing) / lo),
        "modality": modalities[0] if len(modalities) == 1 else ("CT" if ct else "MR-like"),
        "modality_source": "DICOM Modality tag" if all(c.get("modality") for c in ok) else "intensities",
        "ct_like": bool(ct),
        "axcodes": Counter(c["axcodes"] for c in ok).most_common(1)[0][0],
        "intensity": pooled,
        "class_frequency": {k: voxels[k] / total for k in sorted(voxels, key=int)},
        "label_fraction": float(np.median([c.get("label_fraction", 0.0) for c in ok])),
        "nonzero_fraction": float(np.median([c["nonzero_fraction"] for c in ok])),
        "background": _background(ok),
        "num_train": sum(c["split"] == "train" for c in ok),
        "splits": dict(Counter(c["split"] for c in ok)),
    }
