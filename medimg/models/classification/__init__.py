"""Classification networks, registered in ``MODELS`` with ``task = "classification"``.

2D from torchvision (:mod:`.torchvision_2d`), 3D from MONAI (:mod:`.monai_3d`) and a
compact 3D CNN (:mod:`.compact_3d`). Every factory takes ``in_channels``,
``out_channels`` (classes, or labels for a multi-label task) and ``spatial_dims``
(checked), returns logits ``(B, out_channels)``, can start from a local weights file
(:func:`load_weights`) and sets ``model.cam_layer``, the dotted name of the layer
Grad-CAM reads.
"""

from . import compact_3d, monai_3d, torchvision_2d
from .weights import WeightsReport, load_weights, read_state_dict

__all__ = ["WeightsReport", "compact_3d", "load_weights", "monai_3d", "read_state_dict", "torchvision_2d"]
