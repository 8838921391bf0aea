"""medimg: medical image diagnosis toolkit.

The top-level namespace is lazy (PEP 562): ``import medimg`` and ``medimg --help`` do not
import torch. Touching e.g. ``medimg.Image`` imports what it needs.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "Image": "medimg.core",
    "Sample": "medimg.core",
    "TransformRecord": "medimg.core",
    "Registry": "medimg.core",
    "MedimgError": "medimg.core",
    "read_image": "medimg.io",
    "write_image": "medimg.io",
    "find_series": "medimg.io",
    "load_config": "medimg.config",
    "train": "medimg.engine",
    "Predictor": "medimg.inference",
    "predict_folder": "medimg.inference",
    "evaluate_folders": "medimg.metrics",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'medimg' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
