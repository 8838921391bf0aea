"""Grad-CAM explanations of classification models (MONAI's ``GradCAM``).

:func:`grad_cam` gives heat maps for a batch as the model sees it; :func:`explain_image`
explains one case read from disk: deterministic preprocessing, Grad-CAM, the map sent
back to the input's grid through the recorded preprocessing, and files (a PNG overlay
for 2D; a NIfTI heat map on the input's grid plus a PNG of three slices for 3D).
"""

from .batch import EXPLANATIONS_CSV, ExplainReport, explain_folder
from .cam import CamResult, cam_layers, grad_cam, grad_cam_scores, resolve_layer
from .case import Explanation, explain_image, heatmap_files

__all__ = [
    "CamResult",
    "EXPLANATIONS_CSV",
    "ExplainReport",
    "explain_folder",
    "resolve_layer",
    "Explanation",
    "cam_layers",
    "explain_image",
    "grad_cam",
    "grad_cam_scores",
    "heatmap_files",
]
