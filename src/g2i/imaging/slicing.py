"""Axial slices on the 1 mm MNI ICBM152 grid, resized and normalised for the image model.

Convention of every slice (the 1 mm CIVET grid's axial plane, shown in neurological view):
    shape 217 x 181; row i is MNI y = 90 - i mm (row 0 anterior, row 216 posterior at y = -126);
    column j is MNI x = -90 + j mm (column 0 is the subject's left, column 180 the right).
So `plt.imshow(slice)` shows the brain from above, nose up, left on the left.
"""

from __future__ import annotations

import functools
from typing import Sequence

import numpy as np
from scipy import ndimage
from skimage.transform import resize

from ..errors import G2IError
from .grid import ICBM152_ORIGIN_MM, ICBM152_SHAPE_1MM

PLANE_SHAPE = (ICBM152_SHAPE_1MM[1], ICBM152_SHAPE_1MM[0])  # (rows = y, columns = x): 217 x 181
PLANE_X_MM = ICBM152_ORIGIN_MM[0] + np.arange(ICBM152_SHAPE_1MM[0], dtype=np.float64)          # -90 .. 90
PLANE_Y_MM = ICBM152_ORIGIN_MM[1] + np.arange(ICBM152_SHAPE_1MM[1], dtype=np.float64)[::-1]    # 90 .. -126

# Where the brain lies in an axial plane of ICBM152 space (the template's brain mask, rounded outwards).
# The field-of-view check counts this box only, so a tight brain crop still passes and a slab that
# misses the plane does not.
BRAIN_BOX_X_MM = (-72.0, 72.0)
BRAIN_BOX_Y_MM = (-108.0, 74.0)
MIN_BRAIN_BOX_INSIDE = 0.5
# The ICBM152 brain's in-plane centre (x, y) in mm, and how far an image's head may sit from it and still
# be taken for MNI space: registered images sit within a few mm; native scanner space is usually off by
# centimetres, or rotated.
ICBM152_BRAIN_CENTRE_XY_MM = (0.0, -17.0)
MAX_CENTRE_OFFSET_MM = 20.0
# Pixels within this many millimetres of the plane's edge are far outside any head in MNI space: they
# tell the background level (0 in a masked image, scanner noise or a decoding offset otherwise).
EDGE_MM = 4.0
BACKGROUND_MADS = 5.0
# The intensity percentiles count the ICBM152 brain mask less its outer 3 mm (registration error), so the
# scalp and skull of an image that is not skull-stripped do not count.
TEMPLATE_MARGIN_MM = 3


def plane_world_coords(z_mm: float) -> np.ndarray:
    """RAS millimetres of the 1 mm plane's pixel centres, shape (3, 217, 181), in the slice convention."""
    y, x = np.meshgrid(PLANE_Y_MM, PLANE_X_MM, indexing="ij")
    return np.stack([x, y, np.full_like(x, float(z_mm))])


def sample_axial_plane(volume: np.ndarray, affine: np.ndarray, z_mm: float, source: str = "image") -> np.ndarray:
    """The 1 mm ICBM152 axial plane at MNI z, trilinearly interpolated from `volume` (any voxel grid).

    Only the plane's 217 x 181 points are interpolated; the volume itself is never resampled. Points
    outside the volume read 0 (background). Raises G2IError when less than half of the plane's brain
    box lies inside the volume: the image does not cover that plane.
    """
    world = plane_world_coords(z_mm).reshape(3, -1)
    to_voxel = np.linalg.inv(affine)
    voxel = to_voxel[:3, :3] @ world + to_voxel[:3, 3:4]
    extent = np.asarray(volume.shape[:3], dtype=np.float64)[:, None] - 1.0
    tolerance = 1e-3  # grid planes that coincide with the volume's edge count as inside
    inside = np.all((voxel >= -tolerance) & (voxel <= extent + tolerance), axis=0)
    x, y = world[0], world[1]
    in_box = (x >= BRAIN_BOX_X_MM[0]) & (x <= BRAIN_BOX_X_MM[1]) & (y >= BRAIN_BOX_Y_MM[0]) & (y <= BRAIN_BOX_Y_MM[1])
    covered = float(inside[in_box].mean())
    if covered < MIN_BRAIN_BOX_INSIDE:
        raise G2IError(f"{source}: axial plane z = {z_mm:g} mm cannot be placed on the ICBM152 grid: only "
                       f"{covered:.0%} of the plane's brain box lies inside the image's field of view")
    # Snap coordinates within the tolerance onto the edge: 'constant' mode would read them as background.
    clipped = np.clip(voxel, 0.0, extent)
    voxel = np.where(np.abs(voxel - clipped) <= tolerance, clipped, voxel)
    plane = ndimage.map_coordinates(volume, voxel, order=1, mode="constant", cval=0.0, output=np.float32)
    plane = plane.reshape(PLANE_SHAPE)
    check_mni_placement(plane, background_level(plane), source, z_mm)
    return plane


def background_level(plane: np.ndarray) -> float:
    """Intensity at or below which a pixel is background: median + 5 MADs of the plane's outer rim (EDGE_MM),
    which lies outside any head in MNI space. 0 for a masked image (background exactly 0), above the noise
    for one whose background is scanner noise or decodes to a small positive value."""
    edge = int(EDGE_MM)
    rim = np.concatenate([plane[:edge].ravel(), plane[-edge:].ravel(), plane[:, :edge].ravel(), plane[:, -edge:].ravel()])
    median = float(np.median(rim))
    return max(0.0, median + BACKGROUND_MADS * 1.4826 * float(np.median(np.abs(rim - median))))


def foreground(plane: np.ndarray, level: float) -> np.ndarray:
    """The head: the largest connected region above the background level, its holes filled."""
    above = ndimage.binary_opening(plane > level)
    labels, n = ndimage.label(above)
    if n == 0:
        return above
    largest = labels == (1 + int(np.argmax(ndimage.sum(above, labels, range(1, n + 1)))))
    return ndimage.binary_fill_holes(largest)


def check_mni_placement(plane: np.ndarray, level: float, source: str, z_mm: float) -> None:
    """A plausibility check that the image is in MNI space: the head's centre in this plane lies within
    MAX_CENTRE_OFFSET_MM of the ICBM152 brain's. Raises G2IError naming the file otherwise."""
    head = foreground(plane, level)
    if head.sum() < 0.05 * head.size:      # too little head in this plane to judge (e.g. a tight crop)
        return
    rows, cols = np.nonzero(head)
    x, y = float(PLANE_X_MM[cols].mean()), float(PLANE_Y_MM[rows].mean())
    offset = float(np.hypot(x - ICBM152_BRAIN_CENTRE_XY_MM[0], y - ICBM152_BRAIN_CENTRE_XY_MM[1]))
    if offset > MAX_CENTRE_OFFSET_MM:
        raise G2IError(f"{source}: does not look like MNI space: at z = {z_mm:g} mm the head is centred at "
                       f"x = {x:.0f}, y = {y:.0f} mm, {offset:.0f} mm from the ICBM152 brain's centre (limit "
                       f"{MAX_CENTRE_OFFSET_MM:g} mm); register the T1 to ICBM152 (CIVET's t1_final is)")


@functools.lru_cache(maxsize=16)
def template_brain(z_mm: float) -> np.ndarray:
    """The ICBM152 2009a brain mask (nilearn ships it: no download) on the 1 mm plane at MNI z, 217 x 181."""
    from nilearn.datasets import load_mni152_brain_mask   # imported here: nilearn is slow to import

    image = load_mni152_brain_mask(resolution=1)
    to_voxel = np.linalg.inv(image.affine)
    voxel = to_voxel[:3, :3] @ plane_world_coords(z_mm).reshape(3, -1) + to_voxel[:3, 3:4]
    mask = ndimage.map_coordinates(image.get_fdata(dtype=np.float32), voxel, order=1, mode="constant", cval=0.0)
    return (mask > 0.5).reshape(PLANE_SHAPE)


def normalise_slice(plane: np.ndarray, z_mm: float, size: Sequence[int], lower_percentile: float,
                    upper_percentile: float, source: str = "image") -> np.ndarray:
    """Resize a plane to `size` (rows, columns) and map its intensities to [-1, 1].

    Resizing is bilinear with anti-aliasing (skimage.transform.resize), so the aspect ratio follows
    `size` (the paper stretches 217 x 181 to 256 x 256). Normalisation: the background is what does not
    exceed the level of the plane's outer rim (`background_level`: 0 for a masked image, above the noise
    otherwise) and becomes -1. The `lower_percentile` of the head (everything above that level) maps to -1
    and the `upper_percentile` of the brain region to +1, linearly, values beyond clipped; the brain region is
    the ICBM152 2009a brain mask on this plane (`template_brain`, shipped by nilearn) less
    TEMPLATE_MARGIN_MM, above that level, so a skull and scalp left on an image that is not skull-stripped
    do not set the white level. Robust percentiles rather than min / max keep one
    hot voxel from compressing the contrast of the whole slice.
    """
    size = tuple(int(n) for n in size)
    level = background_level(plane)
    region = ndimage.binary_erosion(template_brain(float(z_mm)), iterations=TEMPLATE_MARGIN_MM)
    resized = resize(plane.astype(np.float32), size, order=1, anti_aliasing=True, preserve_range=True,
                     mode="constant", cval=0.0).astype(np.float32)
    brain = resized > level
    if not brain.any():
        raise G2IError(f"{source}: the axial slice is empty (no voxel above the background level {level:g})")
    inside = resize(region.astype(np.float32), size, order=0, anti_aliasing=False) > 0.5
    inside &= brain
    # The two ends come from different regions. The top (white matter) from the template brain, so a scalp
    # does not set it; the bottom from the whole head above the background, so that raw ~0 maps to -1 and
    # CSF keeps its place between -1 and white (the 2D ventricle measure predicts the CSF level as a
    # fraction of white above -1: with both ends taken inside the brain, CSF sat at -1 and the measured
    # log area per log volume fell from 0.83 to 0.43 on the demo slices).
    lo = np.percentile(resized[brain], lower_percentile)
    hi = np.percentile(resized[inside if inside.any() else brain], upper_percentile)
    if not hi > lo:
        raise G2IError(f"{source}: the axial slice has no intensity contrast inside the brain "
                       f"(percentiles {lower_percentile:g} and {upper_percentile:g} are both {lo:g})")
    scaled = (resized - np.float32(lo)) * np.float32(2.0 / (hi - lo)) - np.float32(1.0)
    out = np.clip(scaled, -1.0, 1.0).astype(np.float32)
    out[~brain] = -1.0
    return out


def axial_slices(volume: np.ndarray, affine: np.ndarray, z_mm: Sequence[float], size: Sequence[int],
                 lower_percentile: float, upper_percentile: float, source: str = "image") -> np.ndarray:
    """Normalised slices at each MNI z, shape (len(z_mm), rows, columns), float32 in [-1, 1]."""
    return np.stack([
        normalise_slice(sample_axial_plane(volume, affine, z, source), z, size, lower_percentile, upper_percentile,
                        source)
        for z in z_mm
    ])


def slice_affine(z_mm: float, size: Sequence[int]) -> np.ndarray:
    """The 4 x 4 voxel -> MNI affine of a slice of `size` (rows, columns), stored as a NIfTI volume
    `slice.T[:, :, None]` (voxel axes i = column = x, j = row = y). It inverts `normalise_slice`'s resize:
    skimage maps output pixel k of n to input coordinate (k + 0.5) * N / n - 0.5 on the 1 mm plane.
    """
    rows, cols = (int(n) for n in size)
    sx, sy = PLANE_SHAPE[1] / cols, PLANE_SHAPE[0] / rows
    x0, y0 = PLANE_X_MM[0], PLANE_Y_MM[0]
    return np.array([[sx, 0.0, 0.0, x0 + 0.5 * sx - 0.5],
                     [0.0, -sy, 0.0, y0 - 0.5 * sy + 0.5],
                     [0.0, 0.0, 1.0, float(z_mm)],
                     [0.0, 0.0, 0.0, 1.0]])
