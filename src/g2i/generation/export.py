"""Generated slices as files people open: 8-bit PNGs, or single-plane NIfTIs in MNI space for a neuroimaging
viewer; `export_set` writes a whole generated set (data/generated/<model>/<set>.npz) with an index table."""

from __future__ import annotations

from pathlib import Path

import numpy as np

FORMATS = {"png": ".png", "nifti": ".nii.gz"}


def to_uint8(image: np.ndarray) -> np.ndarray:
    """[-1, 1] intensities -> 0..255 grey levels."""
    return np.round((np.clip(image, -1, 1) + 1) * 127.5).astype(np.uint8)


def to_pil(image: np.ndarray):
    from PIL import Image

    return Image.fromarray(to_uint8(image), mode="L")


def save_png(image: np.ndarray, path: str | Path) -> None:
    """One H x W slice in [-1, 1] as an 8-bit grey PNG (written atomically)."""
    from ..io.atomic import atomic_file

    with atomic_file(Path(path), "wb") as handle:
        to_pil(image).save(handle, format="PNG")


def save_nifti(image: np.ndarray, path: str | Path, z_mm: float) -> None:
    """One H x W slice as a single-plane .nii.gz in MNI ICBM152 space (the plane it was sampled from)."""
    from ..imaging.slicing import slice_affine
    from ..io.nifti import mni_nifti, write_nifti_gz

    volume = np.ascontiguousarray(np.asarray(image, dtype=np.float32).T[:, :, None])  # voxel axes x, y, z
    write_nifti_gz(mni_nifti(volume, slice_affine(z_mm, image.shape), "G2I generated slice, [-1, 1]"), path)


def export_set(arrays: dict[str, np.ndarray], out_dir: str | Path, fmt: str, z_mm: float,
               limit: int | None = None, progress: bool = True) -> int:
    """Write every image of a generated set (each N x H x W array: `images`, or a dose sweep's `dose_0` ...)
    as `<array>_<i>.png|.nii.gz` into out_dir, with index.csv: file, array, item and the set's per-item
    columns (row, label, diagnosis, ptid, apoe4). The folder appears complete or not at all. Returns the count."""
    import pandas as pd
    from tqdm.auto import tqdm

    from ..errors import G2IError
    from ..io.atomic import atomic_dir
    from ..vocabulary import DIAGNOSES

    if limit is not None and int(limit) < 1:
        raise G2IError(f"export limit must be at least 1, got {limit}")
    if fmt not in FORMATS:
        raise G2IError(f"export format {fmt!r}: choose one of {', '.join(FORMATS)}")
    stacks = {k: v for k, v in arrays.items() if v.ndim == 3}
    if not stacks:
        raise G2IError("this generated set holds no images (no N x H x W array)")
    n = len(next(iter(stacks.values())))
    columns = {k: v for k, v in arrays.items() if v.ndim == 1 and len(v) == n}
    if "label" in columns:
        columns["diagnosis"] = np.asarray(DIAGNOSES)[columns["label"].astype(int)]
    items = range(n if limit is None else min(n, int(limit)))
    width = len(str(max(n - 1, 0)))
    rows = []
    with atomic_dir(out_dir, overwrite=True) as tmp:
        jobs = [(name, i) for name in stacks for i in items]
        for name, i in tqdm(jobs, desc=f"writing {fmt}", unit="image", disable=not progress):
            file = f"{name}_{i:0{width}d}{FORMATS[fmt]}"
            image = np.asarray(stacks[name][i], dtype=np.float32)
            save_png(image, tmp / file) if fmt == "png" else save_nifti(image, tmp / file, z_mm)
            rows.append({"file": file, "array": name, "item": i, **{k: v[i] for k, v in columns.items()}})
        pd.DataFrame(rows).to_csv(tmp / "index.csv", index=False)
    return len(rows)
