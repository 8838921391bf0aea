"""A small synthetic two-channel segmentation data set (the demo's default).

Each case is a "body" ellipsoid holding two labelled objects: class 1 (an ellipsoid) is
bright in T1 and plain in T2; class 2 (a sphere) is bright in both. The task is built so
that no per-voxel rule solves it, only context does:

- **decoys**: the body also holds up to six unlabelled blobs (together about 0.9 times
  the labelled volume), each looking like one of the two classes: same mean intensity in
  both channels and, before the bias field, the same intensity spread;
- **texture**: what tells them apart is texture only. A labelled object's intensity varies
  from voxel to voxel (white noise), a decoy's varies smoothly (spatially correlated
  noise, standardised per blob) with the same amplitude, so the intensity histograms of
  labelled and decoy voxels nearly coincide and any threshold, or box of thresholds on
  both channels, takes decoys along;
- **bias field**: a smooth random multiplicative field (up to about +-35 %) shifts
  intensities across the volume, so that ranges overlap further; plus white acquisition
  noise everywhere.

The best box of per-channel thresholds per class, chosen on a training split (the
baseline ``medimg demo`` prints), scores a mean test Dice of about 0.5, while the demo's
small CNN, which sees texture and shape, reaches about 0.93-0.95 within a minute of
training on CPU.

Geometry is deliberately not canonical, so that preprocessing and its inversion are
exercised: spacing (1.0, 1.0, 2.0) mm (anisotropic) and voxel axes pointing L, P, S
(the x and y axes flipped with respect to RAS, no obliquity), with a per-case origin.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from scipy import ndimage

from ..core.affine import make_affine
from ..core.image import Image

__all__ = ["make_synthetic_segmentation", "SYNTHETIC_SPACING", "SYNTHETIC_LABEL_NAMES"]

SYNTHETIC_SPACING = (1.0, 1.0, 2.0)
SYNTHETIC_LABEL_NAMES = ["background", "ellipsoid", "sphere"]
_DIRECTION = np.diag([-1.0, -1.0, 1.0])  # voxel axes towards L, P, S

#: decoy blobs per case (alternately class-1-like and class-2-like)
_N_DECOYS = 6
#: intensity added per class above the body's 1.0: (T1, T2)
_CONTRAST = {1: (1.0, 0.0), 2: (1.0, 1.2)}
#: amplitude of the object texture (white for labelled objects, smooth for decoys)
_TEXTURE = 0.7
#: correlation length of the labelled objects' texture, in voxels (Gaussian sigma per axis)
_SMOOTH = (2.0, 2.0, 1.0)
#: white acquisition noise (inside the body; a fifth of it outside)
_NOISE = 0.12
#: bias field: 1 + _BIAS * (a smooth random field in about [-1, 1])
_BIAS = 0.35
#: radii as fractions of the field of view: the ellipsoid's (per axis), the sphere's (of the
#: shortest side)
_ELLIPSOID_RADII = (0.15, 0.2)
_SPHERE_RADIUS = (0.17, 0.21)
#: blobs keep apart: centre distance over summed radii (per axis) at least this
_GAP = 1.25

_Blob = tuple[np.ndarray, np.ndarray]  # centre (mm), radii (mm)


def _voxel_centres(shape: tuple[int, int, int]) -> np.ndarray:
    """``(*shape, 3)`` voxel-centre coordinates in mm (from the volume's corner)."""
    grids = np.meshgrid(*[(np.arange(n) + 0.5) * s for n, s in zip(shape, SYNTHETIC_SPACING)], indexing="ij")
    return np.stack(grids, -1)


def _inside(pts: np.ndarray, blob: _Blob) -> np.ndarray:
    """Boolean mask of the voxels inside an axis-aligned ellipsoid."""
    centre, radii = blob
    return (((pts - centre) / radii) ** 2).sum(-1) <= 1.0


def _place(radii: np.ndarray, ext: np.ndarray, taken: list[_Blob], spread: float,
           rng: np.random.Generator) -> tuple[np.ndarray, bool]:
    """A centre for a blob of ``radii`` that keeps clear of the ``taken`` blobs.

    Draws up to 200 centres within ``spread * ext`` of the middle; returns the first that
    clears every taken blob (by ``_GAP``) and True, else the last drawn and
    False."""
    centre = ext / 2
    for _ in range(200):
        centre = ext / 2 + rng.uniform(-spread, spread, 3) * ext
        if all(np.linalg.norm((centre - c) / (radii + r)) > _GAP for c, r in taken):
            return centre, True
    return centre, False


def _layout(shape: tuple[int, int, int], rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Body, label (0/1/2) and decoy (0 / look-alike class) masks of one case."""
    ext = np.array(shape) * np.array(SYNTHETIC_SPACING)  # field of view, mm
    pts = _voxel_centres(shape)
    body = _inside(pts, (ext / 2, ext * rng.uniform(0.42, 0.48, 3)))
    label = np.zeros(shape, np.uint8)
    ellipsoid = (ext / 2 + rng.uniform(-0.1, 0.1, 3) * ext, ext * rng.uniform(*_ELLIPSOID_RADII, 3))
    sphere_r = np.full(3, float(ext.min() * rng.uniform(*_SPHERE_RADIUS)))
    sphere = (_place(sphere_r, ext, [ellipsoid], 0.25, rng)[0], sphere_r)
    label[_inside(pts, ellipsoid) & body] = 1
    label[_inside(pts, sphere) & body] = 2
    taken = [ellipsoid, sphere]
    decoy = np.zeros(shape, np.uint8)
    for i in range(_N_DECOYS):
        k = 1 + i % 2
        radii = taken[k - 1][1] * rng.uniform(0.8, 1.0)
        centre, ok = _place(radii, ext, taken, 0.35, rng)
        if ok:
            taken.append((centre, radii))
            decoy[_inside(pts, (centre, radii)) & body & (label == 0)] = k
    return body, label, decoy


def _bias_field(shape: tuple[int, int, int], rng: np.random.Generator) -> np.ndarray:
    """Smooth multiplicative field ``1 + _BIAS * f``: a random 3x3x3 grid in [-1, 1],
    cubic-spline upsampled to ``shape``."""
    coarse = rng.uniform(-1.0, 1.0, (3, 3, 3))
    f = ndimage.zoom(coarse, [n / 3 for n in shape], order=3, mode="nearest")
    f = f[: shape[0], : shape[1], : shape[2]]
    if f.shape != tuple(shape):  # zoom rounds the output size
        f = np.pad(f, [(0, n - m) for n, m in zip(shape, f.shape)], mode="edge")
    return 1.0 + _BIAS * f


def _smooth_texture(shape: tuple[int, int, int], where: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Spatially correlated Gaussian noise, standardised (mean 0, variance 1) inside each
    connected blob of ``where``, so that each blob has the mean and spread a white-noise
    blob has (a correlated field's sample over one blob would be off in both)."""
    smooth = ndimage.gaussian_filter(rng.normal(size=shape), sigma=_SMOOTH)
    blobs, n = ndimage.label(where)
    for i in range(1, n + 1):
        inside = blobs == i
        v = smooth[inside]
        smooth[inside] = (v - v.mean()) / max(float(v.std()), 1e-6)
    return smooth


def _case(shape: tuple[int, int, int], rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """T1, T2 (float32) and label (uint8) of one case; see the module docstring."""
    body, label, decoy = _layout(shape, rng)
    smooth = _smooth_texture(shape, decoy > 0, rng)
    white = rng.normal(size=shape)
    texture = _TEXTURE * np.where(label > 0, white, np.where(decoy > 0, smooth, 0.0))
    look = np.maximum(label, decoy)  # decoys look like the class they mimic
    bias = _bias_field(shape, rng)
    channels = []
    for c in range(2):
        x = body.astype(np.float64) + texture
        for k, contrast in _CONTRAST.items():
            x += contrast[c] * (look == k)
        x = x * bias + rng.normal(0, _NOISE, shape) * np.where(body, 1.0, 0.2)
        channels.append(x.astype(np.float32))
    return channels[0], channels[1], label


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
