#!/usr/bin/env python
"""Evaluate predictions against references: a thin wrapper over ``medimg.metrics.evaluate_folders``.

    python scripts/evaluate.py preds/ runs/demo/data/test eval/ --metrics dice hd95
"""

from __future__ import annotations

import argparse

from medimg.metrics import evaluate_folders


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("pred_dir")
    p.add_argument("ref_dir")
    p.add_argument("output_dir")
    p.add_argument("--metrics", nargs="+", default=None)
    p.add_argument("--ref-name", default=None, help="label file name inside reference case folders")
    a = p.parse_args(argv)
    report = evaluate_folders(a.pred_dir, a.ref_dir, a.output_dir, metrics=a.metrics, ref_name=a.ref_name)
    print(report.format())
    return 0 if report.all_ok else 1  # as `medimg evaluate`: a missing or failed case is a failure


if __name__ == "__main__":
    raise SystemExit(main())
