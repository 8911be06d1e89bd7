"""NIfTI writing that is byte-for-byte reproducible (so `data.dvc` matches a regenerated cohort)."""

from __future__ import annotations

import gzip
from pathlib import Path

import nibabel as nib
import numpy as np

NIFTI_XFORM_MNI_152 = 4


def mni_nifti(volume: np.ndarray, affine: np.ndarray, description: str = "") -> nib.Nifti1Image:
    """A NIfTI-1 image in MNI152 space: sform and qform both set, coded MNI_152, millimetres."""
    image = nib.Nifti1Image(volume, affine)
    header = image.header
    header.set_xyzt_units("mm", "sec")
    header["descrip"] = description[:79].encode()
    image.set_sform(affine, code=NIFTI_XFORM_MNI_152)
    image.set_qform(affine, code=NIFTI_XFORM_MNI_152)
    return image


def write_nifti_gz(image: nib.Nifti1Image, path: str | Path, compresslevel: int = 6) -> None:
    """Write .nii.gz with a fixed gzip header (no timestamp, no file name): same bytes every run.

    Written to a temporary sibling and renamed, so an interrupted write leaves no partial file.
    """
    from .atomic import atomic_file

    payload = image.to_bytes()
    with atomic_file(path, "wb") as raw, gzip.GzipFile(
        filename="", mode="wb", fileobj=raw, compresslevel=compresslevel, mtime=0
    ) as gz:
        gz.write(payload)
