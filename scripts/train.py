#!/usr/bin/env python
"""Train from a config: a thin wrapper over ``medimg.load_config`` + ``medimg.train``.

    python scripts/train.py configs/demo.yaml --set trainer.max_epochs=5 --output-dir runs/x
"""

from __future__ import annotations

import argparse

from medimg.config import load_config
from medimg.engine import train


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("config", help="experiment YAML")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key (repeatable)")
    p.add_argument("--output-dir", default=None, help="run folder (default: experiment.output_dir)")
    a = p.parse_args(argv)
    result = train(load_config(a.config, a.overrides), output_dir=a.output_dir, config_path=a.config)
    print(f"best {result.best_metric} at epoch {result.best_epoch}; checkpoints in {result.run_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
