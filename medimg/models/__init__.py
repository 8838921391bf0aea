"""Network registry and factories.

Networks come from MONAI (docs/architecture.md §3: write only what the well-kept libraries do not
already do well); medimg adds a registry with did-you-mean lookups, sensible defaults for
3D segmentation, and a uniform ``create_model(name, **params)`` signature that a
checkpoint can replay from plain data.
"""

from .registry import MODELS, create_model, model_summary

__all__ = ["MODELS", "create_model", "model_summary"]

# Classification networks (issue 7) and the nnU-Net-style DynUNet: importing these modules
# registers them in MODELS.
from . import classification, dynunet  # noqa: F401  (registers their components)
from .classification import WeightsReport, load_weights
from .tasks import TASKS, model_task

__all__ += ["TASKS", "WeightsReport", "load_weights", "model_task"]
