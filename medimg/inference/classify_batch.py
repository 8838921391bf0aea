"""Batch classification: class probabilities of every case into ``predictions.csv``.

The classification half of :func:`medimg.inference.predict_folder`: ``predictions.csv``
(``case_id``, ``prob_<class>``..., ``predicted`` [, ``threshold``]) is the probability
table, and ``predict_log.csv`` says what happened to each case and each skipped file, as
for segmentation. A shard writes ``predictions.shard-<i>-of-<N>.csv``. A re-run keeps the
rows of the cases already predicted and predicts the others; the table is rewritten
(through a temporary file and a rename) every :data:`TABLE_EVERY` cases and at the end.
"""

from __future__ import annotations

import csv
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..core.errors import DataError
from .caseloop import BatchReport, CaseEntry, entries_of, run_cases
from .classify import write_class_predictions
from .predictor import Predictor
from .runlog import ALREADY_DONE, RunLog, atomic_path, done_cases, run_context, shard_of

__all__ = ["TABLE_EVERY", "classify_cases"]

#: The probability table is rewritten after this many new cases (and at the end).
TABLE_EVERY = 256


def _table_path(out: Path, shard: tuple[int, int] | None) -> Path:
    return out / ("predictions.csv" if shard is None else f"predictions.shard-{shard[0]}-of-{shard[1]}.csv")


def _previous_rows(path: Path, names: list[str], keep: set[str]) -> dict[str, np.ndarray]:
    """The probabilities of the ``keep`` cases in an earlier run's table (none if absent or
    written for other classes)."""
    if not path.is_file():
        return {}
    cols = [f"prob_{n}" for n in names]
    rows: dict[str, np.ndarray] = {}
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh):
            if row.get("case_id") in keep and all(row.get(c) for c in cols):
                rows[row["case_id"]] = np.array([float(row[c]) for c in cols])
    return rows


class _Table:
    """The probability table of a run: earlier rows plus new ones, written atomically."""

    def __init__(self, path: Path, predictor: Predictor, names: list[str], rows: dict[str, np.ndarray]) -> None:
        self.path, self.predictor, self.names, self.rows = path, predictor, names, rows
        self.unsaved = 0

    def add(self, case_id: str, probs: np.ndarray) -> None:
        self.rows[case_id] = np.asarray(probs, dtype=float)
        self.unsaved += 1
        if self.unsaved >= TABLE_EVERY:
            self.save()

    def save(self) -> None:
        ids = list(self.rows)
        probs = np.stack([self.rows[i] for i in ids]) if ids else np.zeros((0, len(self.names)))
        spec = self.predictor.spec
        with atomic_path(self.path) as tmp:
            write_class_predictions(tmp, ids, probs, self.names, spec.threshold, spec.multilabel)
        self.unsaved = 0


def classify_cases(
    predictor: Predictor, source: str | os.PathLike, cases: Sequence[Any] | None, out: Path, progress: bool = True,
    *, overwrite: bool = False, shard: tuple[int, int] | None = None,
) -> BatchReport:
    """Class probabilities of the ``cases`` found under ``source`` (files, folders, DICOM
    series; None: ``source`` is an npz, its images are the cases) into
    ``out/predictions.csv``; every case and skipped file logged in ``out/predict_log.csv``;
    a failed case is logged and the others go on."""
    names = predictor.label_names or [f"class_{i}" for i in range(predictor.num_classes or 2)]
    path = _table_path(out, shard)
    finished = set() if overwrite else done_cases(out)
    table = _Table(path, predictor, names, {} if overwrite else _previous_rows(path, names, finished))
    with RunLog(out, shard, run_context(predictor)) as log:
        report = BatchReport(output_dir=out, log_path=log.path)
        try:
            if cases is None:
                _classify_npz(predictor, Path(source), table, log, report, shard)
            else:
                entries = shard_of(entries_of(cases), shard, key=lambda e: e.case_id)

                def finish(e: CaseEntry, _: Any) -> None:
                    table.add(e.case_id, predictor.predict_proba(e.paths, case_id=e.case_id).numpy())

                run_cases(entries, log, report, lambda e: None, finish,
                          done=lambda e: e.case_id in table.rows, progress=progress)
        finally:
            table.save()
    return report


def _npz_cases(path: Path) -> tuple[list[str], Any]:
    """Case ids and images ``(N, C, *spatial)`` of an npz's ``test_images`` (else of every
    ``<split>_images`` array), ids as in training (``test_0``...)."""


    from ..data.classification import npz_images

    npz = np.load(path, allow_pickle=False)
    keys = ["test_images"] if "test_images" in npz.files else sorted(k for k in npz.files if k.endswith("_images"))
    if not keys:
        raise DataError(f"no '<split>_images' array in {path}; found: {', '.join(sorted(npz.files))}")
    ids: list[str] = []
    images = []
    for key in keys:
        x = npz_images(npz[key], key, path)
        ids += [f"{key[: -len('_images')]}_{i}" for i in range(len(x))]
        images.append(x)
    return ids, torch.cat(images)




def _classify_npz(
    predictor: Predictor, path: Path, table: _Table, log: RunLog, report: BatchReport, shard: tuple[int, int] | None
) -> None:
    """The npz's images (of this shard, not yet in the table) in batches of 256."""
    ids, images = _npz_cases(path)
    index = {cid: i for i, cid in enumerate(ids)}
    mine = shard_of(ids, shard)  # in the npz's order
    for cid in (c for c in mine if c in table.rows):
        log.write(cid, "skipped", input=f"{path}[{index[cid]}]", error=ALREADY_DONE)
        report.skipped.append((cid, ALREADY_DONE))
    todo = [c for c in mine if c not in table.rows]
    for start in range(0, len(todo), 256):
        chunk = todo[start : start + 256]
        t0 = time.perf_counter()
        x = images[torch.tensor([index[c] for c in chunk])]
        probs = predictor.classify_batch(predictor.preprocess_batch(x)).numpy()
        dt = (time.perf_counter() - t0) / len(chunk)
        for cid, p in zip(chunk, probs):
            table.add(cid, p)
            log.write(cid, "ok", input=f"{path}[{index[cid]}]", seconds=dt)
            report.ok.append(cid)
            report.seconds[cid] = dt
