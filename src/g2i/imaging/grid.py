"""The MNI ICBM152 sampling grid used by CIVET, at 1 mm or coarser, optionally cut to an axial slab."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import G2IError

# CIVET's stereotaxic grid: 181 x 217 x 181 voxels of 1 mm, RAS, first voxel at (-90, -126, -72) mm.
ICBM152_SHAPE_1MM = (181, 217, 181)
ICBM152_ORIGIN_MM = (-90.0, -126.0, -72.0)


@dataclass(frozen=True)
class Grid:
    shape: tuple[int, int, int]
    affine: np.ndarray  # voxel index -> RAS millimetres

    @classmethod
    def icbm152(cls, voxel_mm: float = 1.0, z_range_mm: tuple[float, float] | None = None) -> "Grid":
        """The ICBM152 grid at `voxel_mm`; with `z_range_mm`, only the axial planes inside it."""
        if voxel_mm <= 0:
            raise G2IError(f"voxel size must be positive, got {voxel_mm}")
        extent = [(n - 1) * 1.0 for n in ICBM152_SHAPE_1MM]
        shape = [int(np.floor(e / voxel_mm + 1e-6)) + 1 for e in extent]
        origin = list(ICBM152_ORIGIN_MM)
        if z_range_mm is not None:
            z_lo, z_hi = sorted(float(v) for v in z_range_mm)
            z_planes = origin[2] + voxel_mm * np.arange(shape[2])
            keep = np.flatnonzero((z_planes >= z_lo - 1e-6) & (z_planes <= z_hi + 1e-6))
            if keep.size == 0:
                raise G2IError(f"z range {z_range_mm} mm contains no axial plane of the ICBM152 grid")
            origin[2] = float(z_planes[keep[0]])
            shape[2] = int(keep.size)
        affine = np.diag([voxel_mm, voxel_mm, voxel_mm, 1.0])
        affine[:3, 3] = origin
        return cls(tuple(shape), affine)

    @property
    def voxel_mm(self) -> float:
        return float(self.affine[0, 0])

    @property
    def voxel_volume_ml(self) -> float:
        return float(abs(np.linalg.det(self.affine[:3, :3]))) / 1000.0

    def world_axes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """1-D RAS coordinates (mm) of the grid planes along x, y and z."""
        return tuple(
            (self.affine[a, 3] + self.affine[a, a] * np.arange(n)).astype(np.float32)
            for a, n in enumerate(self.shape)
        )

    def world_coords(self) -> np.ndarray:
        """RAS millimetres of every voxel centre, shape (3, X, Y, Z), float32."""
        return np.stack(np.meshgrid(*self.world_axes(), indexing="ij"))

    def z_index(self, z_mm: float) -> int:
        """Index of the axial plane nearest to MNI z (mm)."""
        k = int(round((z_mm - self.affine[2, 3]) / self.affine[2, 2]))
        if not 0 <= k < self.shape[2]:
            raise G2IError(f"z = {z_mm} mm lies outside this grid")
        return k
