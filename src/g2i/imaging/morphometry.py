"""Measure structures in T1 images on the MNI grid (for cohort checks and, later, generated slices)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from .anatomy import VENTRICLE_BOX

# Core of the lateral ventricles (MNI mm): CSF components reaching into it count as ventricles.
VENTRICLE_CORE = ((-20, 20), (-30, 10), (5, 25))
CSF_FRACTION_OF_WM = 0.55  # CSF ~0.35 and GM ~0.76 of WM intensity in T1: threshold between them


def _box(shape, affine, box) -> np.ndarray:
    axes = [affine[a, 3] + affine[a, a] * np.arange(n) for a, n in enumerate(shape)]
    masks = [(ax >= lo) & (ax <= hi) for ax, (lo, hi) in zip(axes, box)]
    return masks[0][:, None, None] & masks[1][None, :, None] & masks[2][None, None, :]


def ventricle_mask(volume: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """Lateral-ventricle voxels of a skull-stripped T1 on an axis-aligned MNI grid (RAS).

    Dark (CSF-like) voxels inside the brain and the ventricle box, kept when their connected
    component reaches the ventricles' core; sulcal CSF is excluded by both rules.
    """
    if not np.allclose(affine[:3, :3], np.diag(np.diag(affine[:3, :3]))) or (np.diag(affine)[:3] <= 0).any():
        raise ValueError("ventricle_mask needs an axis-aligned RAS affine (reorient to canonical first)")
    brain = volume > 0
    if not brain.any():
        raise ValueError("image is empty (no voxel above zero)")
    white = np.percentile(volume[brain], 90)
    csf = brain & (volume < CSF_FRACTION_OF_WM * white) & _box(volume.shape, affine, VENTRICLE_BOX)
    csf = ndi.binary_fill_holes(csf) & brain  # an isolated bright voxel in CSF is noise, not tissue
    labels, n = ndi.label(csf)
    if n == 0:
        return np.zeros_like(brain)
    core = _box(volume.shape, affine, VENTRICLE_CORE)
    keep = np.unique(labels[core & (labels > 0)])
    return np.isin(labels, keep[keep > 0])


def ventricle_volume_ml(volume: np.ndarray, affine: np.ndarray) -> float:
    """Lateral-ventricle volume in mL measured from the image (see ventricle_mask)."""
    voxel_ml = abs(np.linalg.det(affine[:3, :3])) / 1000.0
    return float(ventricle_mask(volume, affine).sum() * voxel_ml)
