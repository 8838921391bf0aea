#!/usr/bin/env python
"""PACS round trip: pull + predict + push of the shared chest CT vs predicting the same files locally.

A private Orthanc (``medimg.io.pacs.orthanc``: loopback ports, DICOMweb plugin) holds the
shared chest CT (``../shared/data/dicom/chest_ct``; ``--quick``: its first 24 slices). The
same small random-weight single-channel UNet predicts a DICOM SEG two ways:

- ``medimg`` (local): :func:`medimg.inference.predict_folder` on the files in a folder,
  ``output_format="dicom-seg"``;
- ``medimg_pacs``: :func:`medimg.inference.pacs.predict_pacs` on
  ``dicomweb://127.0.0.1:PORT/dicom-web?StudyInstanceUID=...`` with ``push=True``: pull the
  study (WADO-RS), predict, store the SEG back (STOW-RS).

``medimg_pacs/medimg`` in the JSON's ratios is the PACS path's wall time over the local
one: 1.25 would mean the PACS adds 25 %. ``agrees``: the SEG's pixel data equal the local
run's. Needs the Debian packages ``orthanc`` and ``orthanc-dicomweb`` (``scripts/orthanc.sh``).

    python benchmarks/pacs.py [--quick] [--json PATH] [--repeats N]
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import REPO, Tool, parse_args, report, run_case  # noqa: E402

CT = REPO.parent / "shared" / "data" / "dicom" / "chest_ct" / "series"
QUICK_SLICES = 24


def _series(dest: Path, quick: bool) -> Path:
    """The CT's files (``--quick``: the first slices by position), linked into ``dest``."""
    import pydicom

    files = sorted(CT.iterdir())
    if quick:
        z = {f: float(pydicom.dcmread(f, stop_before_pixels=True).ImagePositionPatient[2]) for f in files}
        files = sorted(files, key=z.get)[:QUICK_SLICES]
    dest.mkdir(parents=True)
    for f in files:
        (dest / f.name).symlink_to(f)
    return dest


def _checkpoint(path: Path) -> Path:
    from medimg.inference import save_checkpoint
    from medimg.models import create_model

    params = {"in_channels": 1, "out_channels": 2, "spatial_dims": 3, "channels": [8, 16], "strides": [2]}
    torch.manual_seed(0)
    return save_checkpoint(path, create_model("unet", **params), model_name="unet", model_params=params,
                           label_names=["background", "lesion"], preprocess=[],
                           inference={"roi_size": [96, 96, 16], "sw_batch_size": 4}, data={"images": ["ct"]})


def _seg_pixels(folder: Path) -> np.ndarray:
    import pydicom

    (seg,) = folder.glob("*.seg.dcm")
    return pydicom.dcmread(seg).pixel_array


def main(argv: list[str] | None = None) -> int:
    args = parse_args(__doc__.splitlines()[0], argv)
    from medimg.inference import Predictor, predict_folder
    from medimg.inference.pacs import predict_pacs
    from medimg.io.pacs import connect, load_server, push
    from medimg.io.pacs.orthanc import find_orthanc, start_orthanc, stop_orthanc

    if find_orthanc() is None:
        print("Orthanc is not installed: apt-get install -y orthanc orthanc-dicomweb", file=sys.stderr)
        return 2
    if not CT.is_dir():
        print(f"shared chest CT not found at {CT}", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="medimg-bench-pacs-"))
    try:
        orthanc = start_orthanc(work / "orthanc")
        series = _series(work / "ct", args.quick)
        stored = push(connect(load_server(orthanc.server_file)), [series])
        (study,) = stored.studies
        predictor = Predictor.from_checkpoint(_checkpoint(work / "model.pt"), device="cpu")
        uri = f"dicomweb://127.0.0.1:{orthanc.http_port}/dicom-web?StudyInstanceUID={study}"

        def local() -> Path:
            out = work / "local"
            shutil.rmtree(out, ignore_errors=True)
            predict_folder(predictor, series, out, progress=False, output_format="dicom-seg")
            return out

        def pacs() -> Path:
            out = work / "pacs"
            shutil.rmtree(out, ignore_errors=True)
            r = predict_pacs(predictor, uri, out, server_file=orthanc.server_file, push=True, overwrite=True)
            assert r.ok == [study], r.failed
            return out

        reference = _seg_pixels(local())
        n = stored.n_stored
        case = f"chest CT {n} slices 512x512, UNet 8-16 roi 96x96x16, {torch.get_num_threads()} threads"
        results = run_case(case, [
            Tool("medimg", local, None, peer=False, note="predict_folder on the files, dicom-seg"),
            Tool("medimg_pacs", pacs, lambda out: np.array_equal(_seg_pixels(out), reference),
                 note="predict_pacs: pull (WADO-RS) + predict + push the SEG (STOW-RS), loopback Orthanc"),
        ], args.repeats, memory=False)
        report("pacs", "PACS round trip vs local prediction", results, args.json, packages=("dicomweb-client",))
        return 0 if all(r.agrees for r in results) else 1
    finally:
        stop_orthanc(work / "orthanc")
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
