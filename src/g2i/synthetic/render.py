"""Render one subject's T1 volume: the ICBM152 template, deformed and degraded like a real scan.

Per subject: a smooth random deformation (residual anatomy after registration), ventricle enlargement
and hippocampal shrinkage by flows along each structure's boundary normal (calibrated to volume), cortical thinning (GM intensity pulled toward CSF in
the cortical ribbon), then global gain, a multiplicative bias field, Rician noise, and the brain mask
(CIVET's *_t1_final is masked). Output is int16 with WM near 1000.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from ..imaging.anatomy import Anatomy
from ..imaging.grid import Grid

WM_INTENSITY = 1000.0


@dataclass(frozen=True)
class SubjectEffects:
    ventricle_scale: float  # target volume multiplier of the lateral ventricles vs the template
    hippocampus_scale: float  # target volume multiplier of the hippocampal region
    cortical_thinning: float  # 0 = none; fraction of cortical GM contrast replaced by CSF


@dataclass(frozen=True)
class ImageNuisance:
    deformation_mm: float = 1.5
    bias_field: float = 0.10
    gain_sd: float = 0.08
    noise_sd: float = 0.02  # relative to WM intensity


def smooth_field(rng: np.random.Generator, points_mm: np.ndarray, spacing_mm: float, n_components: int) -> np.ndarray:
    """A smooth random field (unit-scale Gaussian control points every `spacing_mm`, cubic B-spline)."""
    lo = points_mm.reshape(3, -1).min(axis=1) - spacing_mm
    hi = points_mm.reshape(3, -1).max(axis=1) + spacing_mm
    control_shape = tuple(int(np.ceil((h - l) / spacing_mm)) + 1 for l, h in zip(lo, hi))
    index = (points_mm - lo.reshape(3, 1, 1, 1)) / spacing_mm
    fields = []
    for _ in range(n_components):
        control = rng.standard_normal(control_shape).astype(np.float32)
        fields.append(ndi.map_coordinates(control, index.reshape(3, -1), order=3, mode="nearest").reshape(points_mm.shape[1:]))
    return np.stack(fields).astype(np.float32)


def render_subject(
    anatomy: Anatomy,
    grid: Grid,
    effects: SubjectEffects,
    nuisance: ImageNuisance,
    rng: np.random.Generator,
) -> tuple[np.ndarray, dict[str, float]]:
    """Return (int16 volume on `grid`, realised structure volumes in mL measured on the warped masks)."""
    points = grid.world_coords()
    source = points - nuisance.deformation_mm * smooth_field(rng, points, spacing_mm=24.0, n_components=3)
    del points
    for structure, scale in ((anatomy.ventricles, effects.ventricle_scale), (anatomy.hippocampus, effects.hippocampus_scale)):
        source = structure.flow(source, structure.alpha_for_scale(scale))

    t1 = anatomy.sample("t1", source)
    brain = anatomy.sample("brain", source)
    cortex = anatomy.sample("cortex", source)
    voxel_ml = grid.voxel_volume_ml
    realised = {
        "ventricle_volume_ml_image": float(anatomy.sample("ventricles", source).sum() * voxel_ml),
        "hippocampus_volume_ml_image": float(anatomy.sample("hippocampus", source).sum() * voxel_ml),
    }
    levels = anatomy.tissue_levels
    t1 = t1 - effects.cortical_thinning * cortex * (levels["gm"] - levels["csf"])
    scale = WM_INTENSITY / levels["wm"]
    gain = 1.0 + nuisance.gain_sd * rng.standard_normal()
    bias = np.exp(nuisance.bias_field * smooth_field(rng, source, spacing_mm=64.0, n_components=1)[0])
    signal = np.clip(t1, 0, None) * scale * gain * bias
    sigma = nuisance.noise_sd * WM_INTENSITY
    noisy = np.hypot(signal + sigma * rng.standard_normal(signal.shape), sigma * rng.standard_normal(signal.shape))
    volume = np.where(brain >= 0.5, noisy, 0.0)
    return np.clip(np.rint(volume), 0, np.iinfo(np.int16).max).astype(np.int16), realised
