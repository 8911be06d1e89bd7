"""Reading T1 volumes: NIfTI (.nii, .nii.gz) and CIVET's MINC (.mnc, MINC1 or MINC2), in canonical RAS.

Every problem with an input file (wrong format, corrupt, not 3-D, NaN, empty) is a G2IError naming it,
so one bad subject in a cohort of hundreds is easy to find.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np

from ..errors import G2IError

T1_SUFFIXES = (".nii", ".nii.gz", ".mnc")


def _suffix(path: Path) -> str:
    name = path.name.lower()
    return next((s for s in sorted(T1_SUFFIXES, key=len, reverse=True) if name.endswith(s)), path.suffix.lower())


def load_t1(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """A T1 volume as float32 in canonical RAS orientation (nibabel.as_closest_canonical), with its affine.

    MINC stores axes as (S, A, R); after reorientation every format comes out as (R, A, S). A trailing
    singleton axis (a 4-D file with one frame) is dropped; more frames are an error.
    """
    path = Path(path)
    suffix = _suffix(path)
    if suffix not in T1_SUFFIXES:
        raise G2IError(f"{path}: unsupported T1 format '{suffix or path.name}' (expected {', '.join(T1_SUFFIXES)})")
    if not path.is_file():
        raise G2IError(f"{path}: T1 image not found")
    try:
        image = nib.load(str(path))
        shape = image.shape
    except Exception as exc:  # nibabel raises many types for a corrupt header
        raise G2IError(f"{path}: cannot read T1 image ({type(exc).__name__}: {exc})") from exc
    if len(shape) < 3 or any(n != 1 for n in shape[3:]):
        raise G2IError(f"{path}: T1 image must be a 3-D volume, got shape {tuple(shape)}")
    try:
        if len(shape) > 3:
            image = nib.squeeze_image(image)
        image = nib.as_closest_canonical(image)
        # The data are read here, so a truncated or corrupt payload fails inside this block.
        volume = np.asanyarray(image.dataobj).astype(np.float32)
        affine = np.asarray(image.affine, dtype=np.float64)
    except Exception as exc:
        raise G2IError(f"{path}: cannot read T1 image ({type(exc).__name__}: {exc})") from exc
    finite = np.isfinite(volume)
    if not finite.all():
        raise G2IError(f"{path}: T1 image has {int(volume.size - finite.sum())} NaN or infinite voxels")
    if not volume.any():
        raise G2IError(f"{path}: T1 image is all zeros")
    if not np.isfinite(affine).all() or abs(np.linalg.det(affine[:3, :3])) < 1e-9:
        raise G2IError(f"{path}: T1 image has a degenerate voxel-to-world affine")
    return volume, affine
