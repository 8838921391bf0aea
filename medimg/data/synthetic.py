"""A small synthetic two-channel segmentation data set (the demo's default).

Each case is a noisy "body" ellipsoid holding two objects that only both channels tell
apart: class 1 (an ellipsoid) is bright in T1 and plain in T2; class 2 (a sphere) is
bright in both. A smooth bias field and Gaussian noise keep it from being trivial.

Geometry is deliberately not canonical, so that preprocessing and its inversion are
exercised: spacing (1.0, 1.0, 2.0) mm (anisotropic) and voxel axes pointing L, P, S
(the x and y axes flipped with respect to RAS, no obliquity), with a per-case origin.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..core.affine import make_affine
from ..core.image import Image

__all__ = ["make_synthetic_segmentation", "SYNTHETIC_SPACING", "SYNTHETIC_LABEL_NAMES"]

SYNTHETIC_SPACING = (1.0, 1.0, 2.0)
SYNTHETIC_LABEL_NAMES = ["background", "ellipsoid", "sphere"]
_DIRECTION = np.diag([-1.0, -1.0, 1.0])  # voxel axes towards L, P, S


def _case(shape: tuple[int, int, int], rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    sp = np.array(SYNTHETIC_SPACING)
    ext = np.array(shape) * sp  # field of view, mm
    grids = np.meshgrid(*[(np.arange(n) + 0.5) * s for n, s in zip(shape, sp)], indexing="ij")
    pts = np.stack(grids, -1)  # mm, voxel centres

    def ellipsoid(centre, radii):
        return (((pts - centre) / radii) ** 2).sum(-1) <= 1.0

    body = ellipsoid(ext / 2, ext * rng.uniform(0.42, 0.48, 3))
    label = np.zeros(shape, np.uint8)
    r1 = ext * rng.uniform(0.18, 0.24, 3)
    c1 = ext / 2 + rng.uniform(-0.12, 0.12, 3) * ext
    label[ellipsoid(c1, r1) & body] = 1
    r2 = float(ext.min() * rng.uniform(0.15, 0.19))
    # the sphere sits beside the ellipsoid, inside the body
    for _ in range(50):
        c2 = ext / 2 + rng.uniform(-0.25, 0.25, 3) * ext
        if np.linalg.norm((c2 - c1) / (r1 + r2)) > 1.05:
            break
    label[ellipsoid(c2, np.array([r2] * 3)) & body] = 2

    bias = 1.0 + 0.15 * np.sin(pts[..., 0] / ext[0] * np.pi * rng.uniform(0.5, 1.5) + rng.uniform(0, 6)) \
        * np.cos(pts[..., 1] / ext[1] * np.pi * rng.uniform(0.5, 1.5))
    t1 = np.where(body, 1.0, 0.0) + 1.0 * (label == 1) + 1.0 * (label == 2)
    t2 = np.where(body, 1.0, 0.0) + 0.0 * (label == 1) + 1.2 * (label == 2)
    noise = 0.25
    t1 = t1 * bias + rng.normal(0, noise, shape) * np.where(body, 1.0, 0.2)
    t2 = t2 * bias + rng.normal(0, noise, shape) * np.where(body, 1.0, 0.2)
    return t1.astype(np.float32), t2.astype(np.float32), label


def make_synthetic_segmentation(
    root: str | Path,
    n_train: int = 12,
    n_val: int = 3,
    n_test: int = 3,
    shape: tuple[int, int, int] = (48, 48, 32),
    seed: int = 0,
) -> Path:
    """Write the synthetic data set as a folder layout and return ``root``.

    Layout: ``root/{train,validation,test}/case_NNN/{t1,t2,label}.nii.gz``; read it with
    ``data: {root: ..., images: [t1.nii.gz, t2.nii.gz], label: label.nii.gz,
    label_names: [background, ellipsoid, sphere]}``.

    Args:
        root: output folder (created).
        n_train, n_val, n_test: cases per split.
        shape: voxels per case (I, J, K) at 1 x 1 x 2 mm, axes L, P, S.
        seed: random seed; the same seed writes the same files.
    """
    from ..io import write_image

    root = Path(root)
    rng = np.random.default_rng(seed)
    k = 0
    for split, n in (("train", n_train), ("validation", n_val), ("test", n_test)):
        for _ in range(n):
            t1, t2, label = _case(tuple(int(s) for s in shape), rng)
            origin = (100.0 + rng.uniform(-5, 5), 80.0 + rng.uniform(-5, 5), -30.0 + rng.uniform(-5, 5))
            affine = make_affine(SYNTHETIC_SPACING, origin, _DIRECTION)
            case = root / split / f"case_{k:03d}"
            case.mkdir(parents=True, exist_ok=True)
            write_image(Image(torch.from_numpy(t1[None]), affine, "intensity"), case / "t1.nii.gz")
            write_image(Image(torch.from_numpy(t2[None]), affine, "intensity"), case / "t2.nii.gz")
            write_image(Image(torch.from_numpy(label[None]), affine, "label"), case / "label.nii.gz")
            k += 1
    return root
