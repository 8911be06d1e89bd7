"""Lateral-ventricle area on 2D axial slices (real or generated), the slice counterpart of morphometry's 3D volume.

Slice layout (src/g2i/imaging/slicing.py): N x H x W, intensities in [-1, 1], background -1, an axial
slice at MNI z = 16 mm, row 0 anterior. Regions are fractions of the image so one code serves 64 x 64
(demo) and 256 x 256 (paper). numpy / scipy / scikit-image only (no torch).
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
from scipy import ndimage as ndi
from skimage import measure

# Regions as (row_from, row_to), (col_from, col_to) fractions of the image. At z = 16 mm the lateral
# ventricles span rows ~0.28-0.72 and columns ~0.25-0.75 even in the largest (AD) brains of the cohort;
# the insula / Sylvian fissure (also dark CSF) lies at columns < 0.22, outside the ROI.
VENTRICLE_ROI = ((0.20, 0.80), (0.22, 0.78))
# Dark components must reach this central core (bodies of the lateral ventricles, the septum) to count:
# sulcal CSF and dark noise elsewhere in the ROI do not. Same rule as ventricle_mask in 3D.
VENTRICLE_CORE = ((0.35, 0.65), (0.40, 0.60))
BACKGROUND_LEVEL = -0.9        # above this is brain: background is -1, generated background ~-1 +- noise
BORDER_BAND = 0.04             # of the image side: the brain's rim (cortex, sulci) never holds ventricles
WHITE_PERCENTILE = 90          # white-matter level of the brain pixels, as in morphometry.ventricle_mask
CSF_OVER_WM = 0.35             # T1 CSF / white-matter intensity (the synthetic anatomy; morphometry's comment)
MIN_COMPONENT = 2.5e-4         # of the image area: smaller dark specks / holes are noise (1 px at 64 x 64)


# ----------------------------------------------------------------------------------------------------
# input checks


def as_images(x: Any, name: str) -> np.ndarray:
    """N x H x W float array (N x 1 x H x W is squeezed); ValueError naming `name` otherwise."""
    torch = sys.modules.get("torch")   # a tensor implies torch is loaded; this module never imports it
    if torch is not None and isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    arr = np.asarray(x)
    if arr.ndim == 4 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 3:
        raise ValueError(f"{name}: expected N x H x W images, got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] < 8 or arr.shape[2] < 8:
        raise ValueError(f"{name}: empty or too small (shape {arr.shape}; need N >= 1 and H, W >= 8)")
    if not np.issubdtype(arr.dtype, np.number):
        raise ValueError(f"{name}: expected numeric intensities, got dtype {arr.dtype}")
    return arr.astype(np.float32, copy=False)


def _box(shape: tuple[int, int], box: tuple[tuple[float, float], tuple[float, float]]) -> np.ndarray:
    (r0, r1), (c0, c1) = box
    h, w = shape
    mask = np.zeros(shape, dtype=bool)
    mask[int(round(r0 * h)):int(round(r1 * h)), int(round(c0 * w)):int(round(c1 * w))] = True
    return mask


# ----------------------------------------------------------------------------------------------------
# ventricle area


def brain_mask(image: np.ndarray) -> np.ndarray:
    """Brain pixels: above the background level, the largest component, holes filled.

    Filling matters: after the percentile normalisation the darkest CSF can itself sit at -1.
    """
    foreground = image > BACKGROUND_LEVEL
    labels = measure.label(foreground, connectivity=1)
    if labels.max() == 0:
        return foreground
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    return ndi.binary_fill_holes(labels == sizes.argmax())


def csf_threshold(image: np.ndarray, brain: np.ndarray) -> float:
    """Half-maximum CSF threshold: half-way between the expected CSF level and the local tissue level.

    Tissue = median of the brain pixels in the ventricle ROI (ventricles are a minority there, so the
    median is the white / deep grey matter around them). CSF = CSF_OVER_WM of the white-matter level
    (90th percentile of the brain): slices map raw intensity ~0 to -1 (slicing.normalise_slice), so a
    raw fraction f of white is -1 + f * (white + 1). The CSF level is predicted rather than measured
    because small or blurred ventricles never reach their plateau. A half-maximum threshold keeps the
    area of a blurred blob (nearly) unbiased: the edge of a blurred step crosses half-way at the step.
    """
    white = float(np.percentile(image[brain], WHITE_PERCENTILE))
    csf = -1.0 + CSF_OVER_WM * (white + 1.0)
    roi = brain & _box(image.shape, VENTRICLE_ROI)
    tissue = float(np.median(image[roi])) if roi.any() else white
    return csf + 0.5 * (tissue - csf)


def ventricle_mask_2d(image: np.ndarray, threshold: float | None = None) -> np.ndarray:
    """Lateral-ventricle pixels of one H x W slice in [-1, 1] (see lateral_ventricle_area)."""
    shape = image.shape
    brain = brain_mask(image)
    if not brain.any():
        return np.zeros(shape, dtype=bool)
    band = BORDER_BAND * min(shape)
    inner = ndi.distance_transform_edt(brain) > band
    thr = csf_threshold(image, brain) if threshold is None else float(threshold)
    dark = (image < thr) & inner & _box(shape, VENTRICLE_ROI)
    # Cleanup without opening: at 64 x 64 the frontal horns are 1-2 px wide and an opening erases them.
    # Instead drop specks and fill pin-holes (noise, choroid plexus) below MIN_COMPONENT of the image.
    min_px = max(1, int(round(MIN_COMPONENT * shape[0] * shape[1])))
    holes = measure.label(ndi.binary_fill_holes(dark) & ~dark, connectivity=1)
    hole_sizes = np.bincount(holes.ravel())
    dark |= (hole_sizes <= min_px)[holes] & (holes > 0)
    labels = measure.label(dark, connectivity=2)
    sizes = np.bincount(labels.ravel())
    keep = np.zeros(sizes.size, dtype=bool)
    keep[np.unique(labels[_box(shape, VENTRICLE_CORE)])] = True
    keep &= sizes > min_px
    keep[0] = False
    return keep[labels]


def lateral_ventricle_area(images: Any, threshold: float | None = None) -> np.ndarray:
    """Per image, the lateral-ventricle area as a fraction of the image area (size-independent).

    Brain = pixels above -0.9 (largest component, holes filled) minus a rim of 4 % of the image side.
    Ventricles = brain pixels in the central ROI (VENTRICLE_ROI) darker than the CSF threshold,
    pin-holes filled and specks dropped, keeping the 8-connected components that reach the central
    core (VENTRICLE_CORE), as morphometry.ventricle_mask does in 3D.

    threshold: None (default) adapts to each image: the half-maximum between the expected CSF level
    (0.35 of white matter) and the median tissue of the ROI (csf_threshold). A float is a fixed
    threshold in [-1, 1] units. Spearman with the 3D ventricle volume on the 116 demo slices
    (z = 16 mm, 64 x 64): this default 0.976; 0.55 of white (morphometry's CSF_FRACTION_OF_WM) 0.970;
    fixed -0.1: 0.961, 0.0: 0.955, -0.3: 0.907; Otsu in the brain 0.907; Otsu in the ROI 0.53 (no
    bimodality when ventricles are small). On phantoms the default is within ~10 % of the true area,
    blurred or not, where 0.55 of white under-reads blurred blobs by 20-50 %.
    Blur: ranks survive (rho 0.968 after a Gaussian blur of 1 px at 64 x 64), but thin ventricles lose
    contrast, so areas of small ventricles fall (median -19 % at 1 px) and log-area contrasts grow
    (area ~ volume^0.83 sharp, ^1.11 at 1 px): compare images of one kind, or calibrate on
    autoencoder reconstructions of real slices (evaluation.fidelity.validate_ventricle_measure).
    An image with no brain gives NaN; a brain with no dark core gives 0.
    """
    arr = as_images(images, "images")
    areas = np.empty(arr.shape[0], dtype=np.float64)
    for i, image in enumerate(arr):
        if not np.isfinite(image).all():
            raise ValueError(f"images: image {i} holds NaN or infinite values")
        if not (image > BACKGROUND_LEVEL).any():
            areas[i] = np.nan
            continue
        areas[i] = ventricle_mask_2d(image, threshold).mean()
    return areas


__all__ = ["lateral_ventricle_area", "ventricle_mask_2d", "brain_mask", "csf_threshold", "as_images"]
