"""The cache of deterministically preprocessed cases: in memory, or on disk across runs.

``data.cache: disk`` keeps one file per case in ``data.cache_dir``, named by the case id and
its **key**: the SHA-256 of

* every source file of the case (images, then label) as *(absolute path, size in bytes,
  modification time in ns)*. The files are not read to hash them: a cache that had to read
  each volume to know whether it may skip reading it would save little. A file rewritten
  in place with the same size within the file system's timestamp resolution would go
  unnoticed; ``touch`` it, or delete the cache folder;
* the preprocessing spec (the config's ``preprocess`` list, every parameter), the label
  names and label map (they change the label voxels), the case's split and metadata;
* medimg's version and this cache's format number (a new release never reads an older
  release's files).

So a changed file or config never reuses a stale case: it misses, and its new file is
written beside the old one (delete the folder to reclaim the space; nothing else is stored
there). Each file is a ``torch.save`` dict of plain data and tensors (loaded with
``weights_only=True`` and memory-mapped, so DataLoader workers share the page cache):
the sample's images (data, affine, kind, meta), targets, history and meta. Files are
written under a hidden temporary name and renamed, so concurrent writers (DataLoader
workers, DDP ranks) and a killed run never leave a partial file; a file that cannot be
read back (damaged, truncated, another format) is rebuilt from the source.

Before a cache is filled, the space it needs is estimated as the first case's preprocessed
size times the number of cases (``disk``: the cases not cached yet) and checked against the
RAM available (``memory``) or the free space of ``cache_dir`` (``disk``), with a
:data:`HEADROOM` margin, so a run that cannot fit stops before it preprocesses anything
else, naming the config key and the fix.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..core.errors import DataError, InsufficientMemoryError
from ..core.image import Image
from ..core.plain import to_plain
from ..core.sample import Sample, TransformRecord
from .records import CaseRecord

__all__ = [
    "CACHE_FORMAT",
    "HEADROOM",
    "cache_file",
    "cache_key",
    "check_space",
    "default_cache_dir",
    "free_bytes",
    "read_cached",
    "sample_nbytes",
    "write_cached",
]

#: Bumped whenever the file layout changes (part of every key).
CACHE_FORMAT = 1
#: The estimate must fit in this fraction of the free RAM or disk space.
HEADROOM = 0.9
_FORMAT_NAME = "medimg-case-cache"


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/medimg/cases``, else ``~/.cache/medimg/cases``."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "medimg" / "cases"


def _file_id(path: Path) -> list[Any]:
    st = os.stat(path)
    return [str(Path(path).absolute()), int(st.st_size), int(st.st_mtime_ns)]


def cache_key(record: CaseRecord, preprocess_spec: Any, label_names: Sequence[str],
              label_map: Mapping[int, int] | None) -> str:
    """The hex SHA-256 naming ``record``'s preprocessed file (module docstring).

    Raises:
        DataError: a source file of the case is missing.
    """
    from .. import __version__

    paths = [*record.image_paths, *([record.label_path] if record.label_path is not None else [])]
    try:
        files = [_file_id(Path(p)) for p in paths]
    except FileNotFoundError as exc:
        raise DataError(f"case '{record.case_id}': file not found: {exc.filename}",
                        hint="check data.root / data.manifest") from None
    spec = {
        "format": CACHE_FORMAT,
        "medimg": __version__,
        "case_id": record.case_id,
        "split": record.split,
        "meta": to_plain(record.meta),
        "files": files,
        "preprocess": to_plain(preprocess_spec),
        "label_names": list(label_names),
        "label_map": sorted((int(k), int(v)) for k, v in (label_map or {}).items()),
    }
    text = json.dumps(spec, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def cache_file(cache_dir: Path, case_id: str, key: str) -> Path:
    """``<cache_dir>/<case id, file-name safe>-<key[:32]>.pt``."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", case_id).lstrip(".")[:80] or "case"
    return Path(cache_dir) / f"{safe}-{key[:32]}.pt"


# -- one file per case ---------------------------------------------------------------------
def _storable(value: Any, where: str) -> Any:
    """``value`` with numpy scalars as Python numbers; tuples kept (``weights_only`` loads them).

    Raises:
        TypeError: a value ``torch.load(weights_only=True)`` could not read back (names ``where``).
    """
    if torch.is_tensor(value) or value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Mapping):
        return {k: _storable(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_storable(v, f"{where}[{i}]") for i, v in enumerate(value))
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"{where} is a {type(value).__name__}")


def _to_file(sample: Sample, key: str) -> dict[str, Any]:
    images = {
        name: {"data": im.data, "affine": torch.from_numpy(np.asarray(im.affine, dtype=np.float64)),
               "kind": im.kind, "meta": _storable(dict(im.meta), f"images.{name}.meta")}
        for name, im in sample.images.items()
    }
    return {
        "format": _FORMAT_NAME, "version": CACHE_FORMAT, "key": key, "case_id": sample.case_id, "images": images,
        "targets": _storable(dict(sample.targets), "targets"),
        "history": [_storable(r.to_dict(), f"history[{i}]") for i, r in enumerate(sample.history)],
        "meta": _storable(dict(sample.meta), "meta"),
    }


def write_cached(path: Path, sample: Sample, key: str) -> None:
    """Store ``sample`` at ``path`` (hidden temporary name, then rename).

    Raises:
        DataError: the sample holds a value the cache cannot store (names it).
    """
    try:
        payload = _to_file(sample, key)
    except TypeError as exc:
        raise DataError(
            f"case '{sample.case_id}': the disk cache cannot store its preprocessed sample ({exc})",
            hint="set data.cache to memory (or none) for this preprocessing",
        ) from None
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}-{path.name}")
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def read_cached(path: Path, key: str) -> Sample | None:
    """The sample stored at ``path`` under ``key``; None when there is none, or it cannot be
    read back (damaged, truncated, another format or key): the caller rebuilds it."""
    if not path.is_file():
        return None
    try:
        d = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        if not isinstance(d, dict) or d.get("format") != _FORMAT_NAME or d.get("key") != key:
            return None
        images = {name: Image(im["data"], im["affine"].numpy(), im["kind"], im["meta"]) for name, im in d["images"].items()}
        history = [TransformRecord.from_dict(r) for r in d["history"]]
        return Sample(images, case_id=d["case_id"], targets=dict(d["targets"]), history=history, meta=dict(d["meta"]))
    except Exception:  # torch raises RuntimeError, UnpicklingError, EOFError... on a damaged file
        return None


# -- space ---------------------------------------------------------------------------------
def sample_nbytes(sample: Sample) -> int:
    """Bytes of the sample's image tensors (what a cached case costs, to within its metadata)."""
    return sum(im.data.numel() * im.data.element_size() for im in sample.images.values())


def free_bytes(mode: str, cache_dir: Path | None = None) -> int | None:
    """RAM available (``memory``) or free space of ``cache_dir``'s disk (``disk``); None
    where it cannot be told."""
    try:
        if mode == "memory":
            import psutil

            return int(psutil.virtual_memory().available)
        probe = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        while not probe.exists() and probe != probe.parent:
            probe = probe.parent  # the folder may not exist yet: its nearest existing parent
        return int(shutil.disk_usage(probe).free)
    except (OSError, ImportError):
        return None


def _gb(n: float) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e8 else f"{n / 1e6:.1f} MB"


def check_space(mode: str, per_case: int, n_cases: int, cache_dir: Path | None = None) -> None:
    """Refuse to fill a cache that would not fit (module docstring).

    Raises:
        InsufficientMemoryError: ``per_case * n_cases`` bytes exceed :data:`HEADROOM` of the
            free RAM (``memory``) or of the free space of ``cache_dir`` (``disk``).
    """
    need = per_case * n_cases
    free = free_bytes(mode, cache_dir)
    if free is None or need <= HEADROOM * free:
        return
    what = f"{n_cases} preprocessed case(s) x ~{_gb(per_case)} (the first case's size)"
    if mode == "memory":
        raise InsufficientMemoryError(
            f"data.cache: memory needs ~{_gb(need)} of RAM for {what}; {_gb(free)} is available",
            hint="set data.cache: disk (with data.cache_dir on a disk with room) or data.cache: none",
        )
    raise InsufficientMemoryError(
        f"data.cache: disk needs ~{_gb(need)} in data.cache_dir '{cache_dir}' for {what}; {_gb(free)} is free there",
        hint="point data.cache_dir at a disk with room, free space there, or set data.cache: none",
    )
