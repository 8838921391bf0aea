#!/usr/bin/env python
"""Predict label maps: a thin wrapper over ``medimg.inference.predict_folder``.

    python scripts/predict.py runs/demo/run/best.pt runs/demo/data/test preds/
"""

from __future__ import annotations

import argparse

from medimg.inference import predict_folder


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("checkpoint")
    p.add_argument("input", help="a NIfTI file, a folder of them, or a folder of case folders")
    p.add_argument("output_dir")
    p.add_argument("--device", default="auto")
    p.add_argument("--overlap", type=float, default=None)
    p.add_argument("--sw-batch-size", type=int, default=None)
    p.add_argument("--overwrite", action="store_true", help="redo the cases already predicted")
    p.add_argument("--shard", default=None, help="i/N: predict every N-th case only")
    a = p.parse_args(argv)
    report = predict_folder(a.checkpoint, a.input, a.output_dir, device=a.device,
                            overwrite=a.overwrite, shard=a.shard, overlap=a.overlap, sw_batch_size=a.sw_batch_size)
    print(f"{len(report.ok)} predicted, {len(report.failed)} failed, {len(report.skipped)} skipped -> {report.log_path}")
    for case, msg in report.failed:
        print(f"  failed {case}: {msg}")
    return 1 if report.failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
