"""Predict studies taken from a PACS and store the DICOM SEG back: :func:`predict_pacs`.

For each study a ``dicomweb://`` address names (:mod:`medimg.io.pacs.uri`):

1. a SEG series in the study whose SeriesDescription carries this checkpoint's tag
   (``medimg <first 16 hex digits of the checkpoint's sha256>``) means it was done: the
   study is skipped (a re-run predicts only what is new);
2. the study is pulled (WADO-RS) into a temporary folder;
3. :func:`~medimg.inference.predict_folder` predicts it with ``output_format="dicom-seg"``
   (series picked by the model's channel patterns; the SEG references the source series);
4. the SEG gets the tag in its SeriesDescription and the full sha256 in its
   ContentDescription, is kept as ``OUTPUT_DIR/<StudyInstanceUID>.seg.dcm`` and, with
   ``push``, stored back in the same study (STOW-RS).

``OUTPUT_DIR/predict_log.csv`` has a row per study: the columns of every predict log
(case_id is the StudyInstanceUID, input the study's address) plus ``seg_series_uid``.
A study that fails (missing, a channel's series missing, the SEG rejected...) is a row with
the reason, and the other studies go on.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..core.errors import MedimgError, exception_reason
from .caseloop import BatchReport
from .runlog import LOG_COLUMNS, RunLog, run_context

__all__ = ["PACS_LOG_COLUMNS", "predict_pacs", "predict_study_seg", "seg_tag"]

#: ``predict_log.csv`` of a PACS run: a predict log's columns plus the stored SEG's series UID.
PACS_LOG_COLUMNS = (*LOG_COLUMNS[:5], "seg_series_uid", *LOG_COLUMNS[5:])


def seg_tag(checkpoint_sha256: str) -> str:
    """The SeriesDescription of a SEG made with the checkpoint whose sha256 is given."""
    return f"medimg {checkpoint_sha256[:16]}"


def _existing_seg(client: Any, study: str, tag: str) -> str | None:
    from ..io.pacs import query_series

    for s in query_series(client, study, modality="SEG"):
        if tag in s["SeriesDescription"]:
            return s["SeriesInstanceUID"]
    return None


def _tag_seg(path: Path, tag: str, sha: str) -> str:
    """Write the checkpoint's tag into the SEG; return its SeriesInstanceUID."""
    import pydicom

    ds = pydicom.dcmread(path)
    ds.SeriesDescription = tag
    ds.ContentDescription = sha[:64]
    ds.save_as(path, enforce_file_format=True)
    return str(ds.SeriesInstanceUID)


def predict_study_seg(predictor: Any, cases: Path, work: Path, study: str, *,
                      channels: Mapping[str, str] | None, tag: str, sha: str) -> tuple[Path, str]:
    """Predict the one study under ``cases`` into a DICOM SEG in ``work``, tagged with the
    checkpoint (SeriesDescription ``tag``, ContentDescription ``sha``): the SEG's path and
    SeriesInstanceUID. What ``predict dicomweb://`` and ``medimg serve`` both do per study.

    Raises:
        MedimgError: the prediction failed, or did not give exactly one SEG.
    """
    from .batch import predict_folder

    report = predict_folder(predictor, cases, work, progress=False, channels=channels or None,
                            output_format="dicom-seg")
    if report.failed:
        raise MedimgError(f"study {study}: {report.failed[0][1]}")
    segs = sorted(work.glob("*.seg.dcm"))
    if len(segs) != 1:
        raise MedimgError(f"expected one SEG for study {study}, the prediction wrote {len(segs)}")
    return segs[0], _tag_seg(segs[0], tag, sha)


def _one_study(client: Any, predictor: Any, study: str, out: Path, *, push: bool,
               channels: Mapping[str, str] | None, tag: str, sha: str) -> str:
    """Pull, predict, tag, keep and (with ``push``) store the SEG of one study; its series UID."""
    from ..io.pacs import pull
    from ..io.pacs import push as push_files

    with tempfile.TemporaryDirectory(prefix="medimg-pacs-") as tmp:
        pull(client, study, Path(tmp) / "in")
        seg, seg_uid = predict_study_seg(predictor, Path(tmp) / "in", Path(tmp) / "out", study,
                                         channels=channels, tag=tag, sha=sha)
        kept = out / f"{study}.seg.dcm"
        shutil.copyfile(seg, kept)
    if push:
        stored = push_files(client, [kept])
        if stored.failures:
            raise MedimgError(
                f"the PACS rejected the SEG of study {study} ({stored.failures[0][1]}); it is kept "
                f"at '{kept}': push it later with `medimg pacs push`"
            )
    return seg_uid


def predict_pacs(
    predictor: Any,
    uri: str,
    output_dir: str | Path,
    *,
    server_file: str | Path | None = None,
    push: bool = False,
    channels: Mapping[str, str] | None = None,
    overwrite: bool = False,
    **server_options: Any,
) -> BatchReport:
    """Predict every study ``uri`` names and write (``push``: store back) a DICOM SEG for each.

    Args:
        predictor: a segmentation :class:`~medimg.inference.Predictor` loaded from a checkpoint
            file (its sha256 tags the SEG, so a re-run skips the studies it already did).
        uri: ``dicomweb://HOST:PORT/PATH?StudyInstanceUID=UID[,UID...]`` or with QIDO filters
            (:func:`medimg.io.pacs.parse_dicomweb_uri`).
        output_dir: receives ``<StudyInstanceUID>.seg.dcm`` and ``predict_log.csv``.
        server_file: YAML server file for the credentials (its ``url`` is replaced by the URI's).
        push: store each SEG in its study on the PACS.
        channels: channel name -> SeriesDescription pattern (as ``predict_folder``).
        overwrite: predict studies that already hold a SEG of this checkpoint again.
        **server_options: other :class:`~medimg.io.pacs.PacsServer` fields (``retries``...).

    Returns:
        A :class:`BatchReport` whose case ids are StudyInstanceUIDs.

    Raises:
        PacsError: the server cannot be reached, refuses the credentials, or the query fails
            (a problem with one study is a failed row instead).
    """
    from ..io.pacs import connect, load_server, parse_dicomweb_uri, query_studies

    source = parse_dicomweb_uri(uri)
    client = connect(load_server(server_file, **{**server_options, "url": source.url}))
    context = run_context(predictor)
    sha = context["checkpoint_sha256"]
    if not sha:
        raise MedimgError("predicting from a PACS needs a predictor loaded from a checkpoint file "
                          "(its sha256 marks the SEGs it stores)")
    tag = seg_tag(sha)
    studies = list(source.study_uids) or [r["StudyInstanceUID"] for r in query_studies(client, **source.filters)]
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    report = BatchReport(output_dir=out)
    log = RunLog(out, context=context, columns=PACS_LOG_COLUMNS)
    report.log_path = log.path
    try:
        for study in studies:
            address = f"{source.url}?StudyInstanceUID={study}"
            done = None if overwrite else _existing_seg(client, study, tag)
            if done is not None:
                why = f"already holds SEG series {done} from this checkpoint; --overwrite to redo"
                report.skipped.append((study, why))
                log.write(study, "skipped", input=address, error=why, seg_series_uid=done)
                continue
            start = time.perf_counter()
            try:
                seg_uid = _one_study(client, predictor, study, out, push=push, channels=channels, tag=tag, sha=sha)
            except MedimgError as exc:
                report.failed.append((study, exc.message))
                log.write(study, "failed", input=address, error=exception_reason(exc))
                continue
            report.seconds[study] = time.perf_counter() - start
            report.ok.append(study)
            log.write(study, "ok", input=address, seconds=report.seconds[study], seg_series_uid=seg_uid)
    finally:
        log.close()
    return report
