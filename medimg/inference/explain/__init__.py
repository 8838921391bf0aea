"""Grad-CAM explanations of classification models (MONAI's ``GradCAM``).

:func:`grad_cam` gives heat maps for a batch as the model sees it; :func:`explain_image`
explains one case read from disk: deterministic preprocessing, Grad-CAM, the map sent
back to the input's grid through the recorded preprocessing, and files (a PNG overlay
for 2D; a NIfTI heat map on the input's grid plus a PNG of three slices for 3D).
"""

from .cam import CamResult, cam_layers, grad_cam, grad_cam_scores
from .case import Explanation, explain_image, heatmap_files

__all__ = [
    "CamResult",
    "Explanation",
    "cam_layers",
    "explain_image",
    "grad_cam",
    "grad_cam_scores",
    "heatmap_files",
]
