"""Channels by name pattern: which file or DICOM series is which input channel of a case.

A model's input channels have names (``InferenceSpec.image_keys``, the config's
``data.images``). A *channel pattern* maps a name to a case-insensitive shell pattern
(:func:`fnmatch.fnmatch`): ``{"flair": "*FLAIR*", "t1": "*T1*"}``. Patterns match

- **file names** in NIfTI case folders (``ROOT/<case_id>/<files>``): each channel is the
  one NIfTI file of the folder whose name matches its pattern; with a single-channel model
  and a flat folder of NIfTI files, only the files matching the pattern are cases;
- **SeriesDescription** of DICOM series in a *study*: the image series (non-image objects
  such as SEG, SR and RT are never candidates) sharing a StudyInstanceUID under INPUT,
  however nested (``ROOT/<patient>/<study>/<series>/<files>`` or all files in one folder).
  A tree of studies gives one case per study, its id the study's folder relative to INPUT
  (``/`` written ``_``): the subfolder of INPUT holding it (INPUT itself when its series lie
  directly in it or in several subfolders), or, where that subfolder holds several studies,
  the deepest folder holding all the study's files (``patient_visit1``); several studies
  in one folder give ids ``<folder>_study<n>``.

A pattern that matches no candidate or several is a case with a *problem* listing the
candidates (name, or description and number of files), and the others go on. A study with
several image series and no pattern is a problem too (a single-channel model never
predicts every series of a study); a study with one image series needs no pattern for a
single-channel model. Without any pattern NIfTI inputs are found as
:func:`medimg.io.cases.find_cases` finds them (channel files named exactly).

Channel names are matched to the model's exactly, or without the NIfTI suffix and
case-insensitively (``flair`` for ``Flair.nii.gz``): :func:`resolve_channel_patterns`.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.errors import ConfigError, DataError
from .cases import FoundCase, _merge_duplicates, add_skipped, find_cases
from .layout import is_nifti_path, list_folder, nifti_case_id, walk_files

__all__ = [
    "StudyCase",
    "channel_label",
    "describe_series",
    "find_channel_case",
    "find_channel_cases",
    "matches",
    "resolve_channel_patterns",
]


@dataclass(frozen=True)
class StudyCase(FoundCase):
    """A case made of DICOM series of one study, one per input channel.

    ``paths`` holds the study's folder; ``series`` the chosen
    :class:`~medimg.io.dicom.SeriesInfo` per channel, in the model's channel order. It
    unpacks as ``(case_id, series or the problem)``, and
    :meth:`medimg.inference.Predictor.load_inputs` reads ``SeriesInfo`` items.
    """

    series: tuple[Any, ...] = ()
    #: The study's other image series, which no channel pattern chose.
    unused: tuple[Any, ...] = ()

    def __iter__(self) -> Iterator[Any]:
        yield self.case_id
        yield list(self.series) if self.ok else self.error()


def channel_label(key: str) -> str:
    """The short name of a channel as users type it: ``Flair.nii.gz`` -> ``Flair``."""
    return nifti_case_id(key) or key


def resolve_channel_patterns(
    patterns: Mapping[str, str] | None, channel_names: Sequence[str] | None, in_channels: int = 1
) -> dict[str, str]:
    """``patterns`` keyed by the model's channel names (in model order).

    Args:
        patterns: channel name -> pattern, names as the model's or their short form
            (:func:`channel_label`); None or empty: no patterns.
        channel_names: the model's channel names (``image_keys``); None for a model
            without names, whose one channel may then be called anything.
        in_channels: the model's input channels.

    Raises:
        ConfigError: a name that is not one of the model's channels (the message lists
            them), an empty pattern, or a name given twice.
    """
    if not patterns:
        return {}
    names = list(channel_names or [])
    if not names and in_channels == 1 and len(patterns) == 1:
        (name, pattern), = patterns.items()
        return {name: _checked_pattern(name, pattern)}
    out: dict[str, str] = {}
    for given, pattern in patterns.items():
        key = _channel_key(given, names)
        if key is None:
            known = ", ".join(f"'{channel_label(n)}'" for n in names) or "none (the model names no channels)"
            raise ConfigError(
                f"channel '{given}' is not a channel of this model; its channels are: {known}",
                hint="name each channel as above: channels={'NAME': 'PATTERN'}",
                cli_hint="name each channel as above: --channel NAME='PATTERN'",
            )
        if key in out:
            raise ConfigError(f"channel '{channel_label(key)}' is given two patterns: '{out[key]}' and '{pattern}'")
        out[key] = _checked_pattern(given, pattern)
    return {k: out[k] for k in names if k in out}


def _channel_key(given: str, names: Sequence[str]) -> str | None:
    if given in names:
        return given
    low = given.lower()
    hits = [n for n in names if n.lower() == low or channel_label(n).lower() == channel_label(given).lower()]
    return hits[0] if len(hits) == 1 else None


def _checked_pattern(name: str, pattern: Any) -> str:
    if not isinstance(pattern, str) or not pattern.strip():
        raise ConfigError(
            f"channel '{name}' has an empty pattern; give a file name or series description pattern such as '*FLAIR*'"
        )
    return pattern.strip()


def matches(pattern: str, text: str) -> bool:
    """Case-insensitive shell-pattern match (``*``, ``?``, ``[...]``)."""
    return fnmatch.fnmatchcase(text.lower(), pattern.lower())


def find_channel_cases(
    path: str | os.PathLike,
    channel_names: Sequence[str] | None,
    patterns: Mapping[str, str] | None,
    *,
    in_channels: int = 1,
    what: str = "prediction input",
    report_skipped: bool = False,
) -> list[FoundCase]:
    """The cases under ``path`` with one input per channel, by the module's rules.

    Args:
        path: a file, a folder of NIfTI files, a folder of case folders, a DICOM study
            folder or a tree of studies.
        channel_names: the model's channel names, in model order (None: unnamed).
        patterns: channel name -> pattern, as returned by :func:`resolve_channel_patterns`.
        in_channels: the model's input channels.
        what: how messages call ``path``.
        report_skipped: also return every file and folder under ``path`` that no case
            accounts for, as skipped entries (:func:`medimg.io.cases.add_skipped`):
            label- and mask-named NIfTI files are then never cases, and a 4D file given
            to a one-channel model is skipped.

    Returns:
        The cases sorted by id; DICOM study cases are :class:`StudyCase` items.

    Raises:
        DataError: ``path`` does not exist.
    """
    root = Path(path)
    names = list(channel_names or [])
    pats = dict(patterns or {})
    multi = in_channels > 1
    if root.is_file():
        return find_cases(root, dicom=not multi, what=what, pictures=True)
    if not root.exists():
        raise DataError(f"{what} not found: '{root}' is not a folder or a file")
    keys = names if multi and not pats else None
    found = find_cases(root, files=keys, pick="only", dicom=False, what=what, pictures=True, skip_labels=report_skipped)
    if pats:
        found = [_with_patterns(c, names, pats, in_channels) for c in found]
        found = [c for c in found if c is not None]
    nifti_folders = {c.source for c in found if c.source is not None and c.source.is_dir()}
    found += _study_cases(root, nifti_folders, names, pats, in_channels)
    found = _merge_duplicates(found, root)
    if report_skipped:
        unmatched = "a NIfTI file no --channel pattern selects" if pats and not multi else None
        found = add_skipped(root, found, keys, dicom=True, pictures=True, channels=in_channels, unmatched=unmatched)
        found += _unused_series(found)
    return sorted(found, key=lambda c: c.case_id)


def find_channel_case(
    folder: str | os.PathLike, channel_names: Sequence[str] | None, patterns: Mapping[str, str], *, in_channels: int = 1
) -> FoundCase:
    """``folder`` as one case: a case folder of NIfTI files, or one DICOM study, its
    channels chosen by ``patterns`` (for ``Predictor.predict(folder)``).

    Raises:
        DataError: ``folder`` holds no DICOM study, or several.
    """
    root = Path(folder)
    names = list(channel_names or [])
    if any(is_nifti_path(p) for p in list_folder(root)[0]):
        case = _with_patterns(FoundCase(root.name, (), None, root), names, dict(patterns), in_channels)
        assert case is not None
        return case
    cases = _study_cases(root, set(), names, dict(patterns), in_channels)
    if len(cases) != 1:
        raise DataError(
            f"'{root}' holds {len(cases)} DICOM studies ({', '.join(c.case_id for c in cases[:5])}), expected one"
            if cases else f"'{root}' holds no NIfTI file and no DICOM series",
            hint="predict a folder of cases with predict_folder (`medimg predict`)",
        )
    return cases[0]


# --------------------------------------------------------------------------------------
# NIfTI files and case folders
# --------------------------------------------------------------------------------------
def _with_patterns(case: FoundCase, names: list[str], pats: dict[str, str], in_channels: int) -> FoundCase | None:
    """A NIfTI case with its channels chosen by pattern (None: a flat file no pattern selects)."""
    src = case.source
    if src is None or src.is_file():
        if in_channels == 1 and case.paths:
            pattern = next(iter(pats.values()))
            return case if matches(pattern, case.paths[0].name) else None
        return case
    files = [p for p in list_folder(src)[0] if is_nifti_path(p)]
    chosen: list[Path] = []
    for key in _channel_order(names, pats, in_channels):
        pattern = pats.get(key)
        if pattern is None:
            return FoundCase(case.case_id, (), _missing_pattern(key, names, pats), src)
        hits = [p for p in files if matches(pattern, p.name)]
        if len(hits) != 1:
            listed = ", ".join(f"'{p.name}'" for p in files) or "none"
            problem = (
                f"case folder '{src}': channel '{channel_label(key)}' pattern '{pattern}' matches "
                f"{_count(hits, 'file', 'files')}; NIfTI files there: {listed}; "
                f"change --channel {channel_label(key)}='PATTERN' to match one"
            )
            return FoundCase(case.case_id, (), problem, src)
        chosen.append(hits[0])
    return FoundCase(case.case_id, tuple(chosen), None, src)


def _channel_order(names: list[str], pats: dict[str, str], in_channels: int) -> list[str]:
    """The channel keys to fill, in model order."""
    if names and len(names) == in_channels:
        return names
    return list(pats)[:in_channels] if in_channels == 1 else (names or list(pats))


def _missing_pattern(key: str, names: list[str], pats: dict[str, str]) -> str:
    given = ", ".join(f"'{channel_label(k)}'" for k in pats) or "none"
    return (
        f"no pattern for channel '{channel_label(key)}' (patterns given for: {given}); "
        f"pass one per channel: {' '.join(f'--channel {channel_label(n)}=PATTERN' for n in names)}"
    )


def _count(items: Sequence[Any], one: str, many: str) -> str:
    """``no file`` / ``1 file`` / ``3 files``."""
    return f"no {one}" if not items else f"{len(items)} {many}" if len(items) > 1 else f"1 {one}"


# --------------------------------------------------------------------------------------
# DICOM studies
# --------------------------------------------------------------------------------------
@dataclass
class _Study:
    uid: str
    folders: list[Path]
    series: list[Any]


def _dicom_units(root: Path, taken: set[Path]) -> list[Path]:
    """Folders scanned one at a time: ``root`` when DICOM files lie directly in it, else each
    subfolder that is not a NIfTI case folder (copies of one study in two subfolders stay
    two cases, since a scan drops repeated SOP instances)."""
    from .dicom import is_dicom_file

    top_files, subfolders = list_folder(root)
    if any(not is_nifti_path(p) and is_dicom_file(p) for p in top_files):
        return [root]
    return [f for f in subfolders if f not in taken and any(not is_nifti_path(p) and is_dicom_file(p) for p in walk_files(f))]


def _studies(root: Path, taken: set[Path]) -> list[_Study]:
    """The studies under ``root``: image series grouped by StudyInstanceUID across the
    scanned folders, a folder's series kept apart from a study already holding them."""
    from .dicom import find_series

    studies: list[_Study] = []
    for unit in _dicom_units(root, taken):
        scan = find_series(unit, validate=True)
        by_uid: dict[str, list[Any]] = {}
        for s in scan.series:
            by_uid.setdefault(s.study_instance_uid, []).append(s)
        for uid, series in by_uid.items():
            uids = {s.series_instance_uid for s in series}
            home = next((st for st in studies if st.uid == uid
                         and not uids & {s.series_instance_uid for s in st.series}), None)
            if home is None:
                studies.append(_Study(uid, [unit], list(series)))
            else:
                home.folders.append(unit)
                home.series.extend(series)
    return studies


def _study_folder(study: _Study, shared: bool) -> Path:
    """The folder a study is found at: the scanned folder(s) holding it, or, where a scanned
    folder holds several studies (``shared``), the deepest folder holding all its files."""
    if len(study.folders) > 1 or not shared:
        return Path(os.path.commonpath([str(p) for p in study.folders]))
    dirs = {str(Path(f).parent) for s in study.series for f in s.files} or {str(p) for p in study.folders}
    return Path(os.path.commonpath(sorted(dirs)))


def _study_ids(root: Path, studies: list[_Study]) -> list[tuple[str, Path]]:
    """``(case_id, folder)`` per study: the folder relative to ``root``, ``/`` -> ``_``."""
    per_unit: dict[Path, int] = {}
    for st in studies:
        for unit in st.folders:
            per_unit[unit] = per_unit.get(unit, 0) + 1
    folders = [_study_folder(st, any(per_unit[u] > 1 for u in st.folders)) for st in studies]
    out = []
    for i, folder in enumerate(folders):
        rel = folder.relative_to(root) if folder != root and folder.is_relative_to(root) else None
        cid = "_".join(rel.parts) if rel is not None else root.name
        same = [j for j, f in enumerate(folders) if f == folder]
        if len(same) > 1:
            cid = f"{cid}_study{same.index(i) + 1}"
        out.append((cid, folder))
    return out


def _study_cases(
    root: Path, taken: set[Path], names: list[str], pats: dict[str, str], in_channels: int
) -> list[FoundCase]:
    studies = _studies(root, taken)
    cases: list[FoundCase] = []
    for st, (cid, folder) in zip(studies, _study_ids(root, studies)):
        chosen = _choose_series(cid, folder, st.series, names, pats, in_channels)
        if isinstance(chosen, str):
            cases.append(StudyCase(cid, (), chosen, folder))
        else:
            unused = tuple(s for s in st.series if all(s is not c for c in chosen))
            cases.append(StudyCase(cid, (folder,), None, folder, tuple(chosen), unused))
    return cases


def _unused_series(cases: Sequence[FoundCase]) -> list[FoundCase]:
    """A skipped entry per image series of a study that no channel pattern chose
    (``<case_id>/series <number> '<description>'``)."""
    out: list[FoundCase] = []
    for case in cases:
        for s in getattr(case, "unused", ()):
            number = "" if s.series_number is None else f"{s.series_number} "
            name = f"{case.case_id}/series {number}'{s.description or ''}'"
            folder = Path(os.path.commonpath([str(f) for f in s.files])) if s.files else case.source
            why = f"an image series of study '{case.case_id}' that no channel pattern selects ({len(s.files)} files)"
            out.append(FoundCase(name, (), None, folder, skip=why))
    return out


def describe_series(series: Sequence[Any]) -> str:
    """``#3 'T1 AX' (24 files), #4 'ADC' (20 files)``: a study's candidates (series number,
    description, files), for messages."""
    return ", ".join(
        ("" if s.series_number is None else f"#{s.series_number} ")
        + f"'{s.description or '(no description)'}' ({len(s.files)} file{'s' if len(s.files) != 1 else ''})"
        for s in series
    ) or "none"


def _choose_series(
    cid: str, folder: Path, series: list[Any], names: list[str], pats: dict[str, str], in_channels: int
) -> list[Any] | str:
    """The series per channel, or the problem (one line) listing the candidates."""
    where = f"study '{cid}' ('{folder}')"
    listed = describe_series(series)
    if not pats:
        if in_channels == 1 and len(series) == 1:
            return list(series)
        label = channel_label(names[0]) if names else "image"
        todo = (" ".join(f"--channel {channel_label(n)}='PATTERN'" for n in names) if in_channels > 1
                else f"--channel {label}='PATTERN'")
        return (
            f"{where} holds {len(series)} image series ({listed}) and no channel pattern says which to use; "
            f"pass {todo} matching the series description"
        )
    chosen = []
    for key in _channel_order(names, pats, in_channels):
        pattern = pats.get(key)
        if pattern is None:
            return f"{where}: " + _missing_pattern(key, names, pats)
        hits = [s for s in series if matches(pattern, s.description or "")]
        if len(hits) != 1:
            return (
                f"{where}: channel '{channel_label(key)}' pattern '{pattern}' matches "
                f"{_count(hits, 'series', 'series')}; image series there: {listed}; change --channel {channel_label(key)}='PATTERN' to match one"
            )
        chosen.append(hits[0])
    return chosen
