"""Real adult brain anatomy from the MNI ICBM152 2009a template that nilearn ships (no download).

The template gives a T1 image and GM / WM / brain-mask probability maps at 1 mm. G2I derives:
- CSF: brain mask minus GM minus WM (a residual, as nilearn ships no CSF map);
- lateral ventricles: the largest connected CSF component in a box around the ventricles;
- hippocampal region: GM inside a box around each hippocampus (an approximation: no atlas ships offline);
- cortical ribbon: GM within a few millimetres of the brain surface (where cortical thinning acts).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage as ndi

# Boxes in MNI millimetres (x, y, z ranges); x is mirrored for the two hemispheres.
VENTRICLE_BOX = ((-30, 30), (-50, 35), (-10, 35))
HIPPOCAMPUS_BOX = ((22, 36), (-38, -12), (-22, -6))
CORTEX_DEPTH_MM = 6.0
# Flow times (mm of boundary motion) at which structure volumes are calibrated; 0 must be included.
VENTRICLE_FLOW_MM = (-3.0, -1.5, 0.0, 1.5, 3.0, 4.5, 6.0, 8.0, 10.0, 13.0, 16.0)
HIPPOCAMPUS_FLOW_MM = (-4.0, -3.0, -2.0, -1.0, 0.0, 1.0, 2.0)
MAP_NAMES = ("t1", "brain", "ventricles", "hippocampus", "cortex")


@dataclass
class Structure:
    """A structure that the synthetic cohort grows or shrinks, with the flow field that does it.

    `velocity` is the gradient of the Gaussian-smoothed structure mask, scaled to unit maximum speed and
    cropped around the structure. Flowing points along it for time `alpha` (mm) moves the structure's
    boundary by up to `alpha` mm: alpha > 0 enlarges it, alpha < 0 shrinks it. Integrating the flow in
    small steps keeps the deformation smooth and invertible (no folds), unlike a one-shot displacement.
    """

    name: str
    mask: np.ndarray  # cropped 1 mm mask
    velocity: np.ndarray  # (3, *mask.shape), mm per unit alpha
    affine: np.ndarray  # crop voxel -> MNI mm
    template_volume_ml: float
    calibration: tuple[np.ndarray, np.ndarray] | None = None  # (alphas, volume scales), increasing

    def _to_index(self, points_mm: np.ndarray) -> np.ndarray:
        inverse = np.linalg.inv(self.affine)
        return inverse[:3, :3] @ points_mm + inverse[:3, 3:4]

    def flow(self, points_mm: np.ndarray, alpha: float, steps: int = 8) -> np.ndarray:
        """Backward map: where each output point samples the template after the structure is resized."""
        flat = points_mm.reshape(3, -1).astype(np.float32, copy=True)
        if alpha == 0:
            return flat.reshape(points_mm.shape)
        lo, hi = self.affine[:3, 3], self.affine[:3, 3] + np.array(self.mask.shape) - 1
        # Only points near the structure move: the field is zero outside its crop.
        near = np.all((flat >= lo[:, None] - abs(alpha)) & (flat <= hi[:, None] + abs(alpha)), axis=0)
        moving = flat[:, near]
        dt = float(alpha) / steps
        for _ in range(steps):
            index = self._to_index(moving)
            step = np.stack([ndi.map_coordinates(v, index, order=1, mode="constant", cval=0.0) for v in self.velocity])
            moving = moving + dt * step  # backward map: sample from further inside to enlarge
        flat[:, near] = moving
        return flat.reshape(points_mm.shape)

    def volume_after(self, alpha: float, spacing_mm: float = 1.0) -> float:
        """Volume (mL) of the mask after flowing by alpha, measured on a grid of `spacing_mm`."""
        lo = self.affine[:3, 3]
        axes = [lo[a] + np.arange(0, self.mask.shape[a], spacing_mm) for a in range(3)]
        points = np.stack(np.meshgrid(*axes, indexing="ij")).astype(np.float32)
        source = self.flow(points, alpha)
        values = ndi.map_coordinates(self.mask, self._to_index(source.reshape(3, -1)), order=1, cval=0.0)
        return float(values.sum()) * spacing_mm**3 / 1000.0

    def calibrate(self, alphas: np.ndarray) -> None:
        volumes = np.array([self.volume_after(a, spacing_mm=2.0) for a in alphas])
        scales = volumes / volumes[list(alphas).index(0.0)]
        if np.any(np.diff(scales) <= 0):
            raise RuntimeError(f"{self.name}: volume is not monotone in the flow time; check the mask")
        self.calibration = (np.asarray(alphas, dtype=float), scales)

    @property
    def scale_range(self) -> tuple[float, float]:
        return float(self.calibration[1][0]), float(self.calibration[1][-1])

    def alpha_for_scale(self, volume_scale: float) -> float:
        """Flow time that multiplies the structure's volume by `volume_scale` (clipped to the range)."""
        alphas, scales = self.calibration
        return float(np.interp(volume_scale, scales, alphas))


def _make_structure(name: str, mask: np.ndarray, affine: np.ndarray, smoothing_mm: float, margin: int) -> Structure:
    where = np.argwhere(mask > 0.5)
    lo = np.maximum(where.min(axis=0) - margin, 0)
    hi = np.minimum(where.max(axis=0) + margin + 1, mask.shape)
    crop = mask[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]].astype(np.float32)
    smooth = ndi.gaussian_filter(crop, smoothing_mm)
    velocity = np.stack(np.gradient(smooth)).astype(np.float32)
    velocity /= np.sqrt((velocity**2).sum(axis=0)).max()
    crop_affine = affine.copy()
    crop_affine[:3, 3] = affine[:3, :3] @ lo + affine[:3, 3]
    return Structure(name, crop, velocity, crop_affine, float(mask.sum()) / 1000.0)


@dataclass
class Anatomy:
    maps: dict[str, np.ndarray]  # 1 mm template maps, float32
    affine: np.ndarray  # template voxel -> MNI mm
    ventricles: Structure
    hippocampus: Structure
    tissue_levels: dict[str, float] = field(default_factory=dict)  # template T1 in CSF / GM / WM

    def sample(self, name: str, points_mm: np.ndarray, order: int = 1) -> np.ndarray:
        """Values of map `name` at MNI points (3, ...), trilinear, zero outside the template."""
        inverse = np.linalg.inv(self.affine)
        flat = points_mm.reshape(3, -1)
        index = inverse[:3, :3] @ flat + inverse[:3, 3:4]
        values = ndi.map_coordinates(self.maps[name], index, order=order, mode="constant", cval=0.0)
        return values.reshape(points_mm.shape[1:]).astype(np.float32)


def _mm_coords(shape: tuple[int, ...], affine: np.ndarray) -> list[np.ndarray]:
    return [affine[a, 3] + affine[a, a] * np.arange(n) for a, n in enumerate(shape)]


def _box_mask(shape, affine, box, mirror_x=False) -> np.ndarray:
    x, y, z = _mm_coords(shape, affine)
    xs = np.abs(x) if mirror_x else x
    in_x = (xs >= box[0][0]) & (xs <= box[0][1])
    in_y = (y >= box[1][0]) & (y <= box[1][1])
    in_z = (z >= box[2][0]) & (z <= box[2][1])
    return in_x[:, None, None] & in_y[None, :, None] & in_z[None, None, :]


def load_anatomy(smoothing_mm: float = 0.0) -> Anatomy:
    """Load the template and derive the structures; `smoothing_mm` pre-blurs maps for coarser grids."""
    from nilearn import datasets  # imported here: nilearn is slow to import and only this needs it

    t1_img = datasets.load_mni152_template(resolution=1)
    affine = t1_img.affine.copy()
    t1 = t1_img.get_fdata(dtype=np.float32)
    gm = datasets.load_mni152_gm_template(resolution=1).get_fdata(dtype=np.float32)
    wm = datasets.load_mni152_wm_template(resolution=1).get_fdata(dtype=np.float32)
    brain = datasets.load_mni152_brain_mask(resolution=1).get_fdata(dtype=np.float32)
    csf = np.clip(brain - gm - wm, 0.0, 1.0)

    labels, _ = ndi.label((csf > 0.5) & _box_mask(csf.shape, affine, VENTRICLE_BOX))
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    ventricles = (labels == sizes.argmax()).astype(np.float32)
    hippocampus = ((gm > 0.5) & _box_mask(gm.shape, affine, HIPPOCAMPUS_BOX, mirror_x=True)).astype(np.float32)
    depth = ndi.distance_transform_edt(brain > 0.5)
    cortex = (gm * (depth <= CORTEX_DEPTH_MM)).astype(np.float32)

    ventricle_structure = _make_structure("lateral ventricles", ventricles, affine, smoothing_mm=3.0, margin=16)
    ventricle_structure.calibrate(np.array(VENTRICLE_FLOW_MM))
    hippocampus_structure = _make_structure("hippocampal region", hippocampus, affine, smoothing_mm=2.0, margin=10)
    hippocampus_structure.calibrate(np.array(HIPPOCAMPUS_FLOW_MM))

    levels = {
        "csf": float(np.median(t1[csf > 0.8])),
        "gm": float(np.median(t1[gm > 0.8])),
        "wm": float(np.median(t1[wm > 0.8])),
    }
    maps = {"t1": t1, "brain": brain, "ventricles": ventricles, "hippocampus": hippocampus, "cortex": cortex}
    if smoothing_mm > 0:
        maps = {k: ndi.gaussian_filter(v, smoothing_mm).astype(np.float32) for k, v in maps.items()}
    return Anatomy(
        maps=maps,
        affine=affine,
        ventricles=ventricle_structure,
        hippocampus=hippocampus_structure,
        tissue_levels=levels,
    )
