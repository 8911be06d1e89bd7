"""The `slices` step: one normalised axial T1 slice per subject and MNI z, stacked into slices.npy.

Output folder (written to a temporary sibling and renamed when complete):
    slices.npy     float16, N x H x W, values in [-1, 1] (see g2i.imaging.slicing for orientation)
    index.csv      row, PTID, diagnosis, z_mm: what each row of slices.npy is
    summary.json   counts and image size (a DVC metric: deterministic, no timings)

Subjects are processed in parallel (a fork Pool, or a dask.distributed cluster); each worker reads one
volume at a time and rows go straight into a memory-mapped .npy, so memory stays flat in cohort size.
The bytes are the same for any number of workers and for dask: each subject's slices depend on its
file alone and land in a fixed row.
"""

from __future__ import annotations

import json
import multiprocessing
import os
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import pandas as pd
from numpy.lib.format import open_memmap
from tqdm import tqdm

from ..errors import G2IError
from ..imaging.io import load_t1
from ..imaging.slicing import axial_slices
from ..io.atomic import atomic_dir

SUBJECT_COLUMNS = ("PTID", "diagnosis", "t1_path")
SLICES_FILE = "slices.npy"
INDEX_FILE = "index.csv"
SUMMARY_FILE = "summary.json"


BAD_IMAGE_POLICIES = ("exclude", "fail")
EXCLUSIONS_FILE = "exclusions.csv"


def _slice_subject(job: tuple) -> tuple[int, np.ndarray | None, str | None]:
    """Worker: (subject number, its slices as float16, None) or (number, None, why the image is unusable).
    Module-level so pools and dask can pickle it; a bad image never stops the other subjects here."""
    number, path, z_mm, size, lower, upper = job
    try:
        volume, affine = load_t1(path)
        return number, axial_slices(volume, affine, z_mm, size, lower, upper, source=str(path)).astype(np.float16), None
    except G2IError as exc:      # unreadable, 4-D, NaN, empty, outside the field of view: named by load_t1/slicing
        return number, None, str(exc)


def _check_inputs(subjects: pd.DataFrame, z_mm: Sequence[float], size: Sequence[int], lower: float,
                  upper: float) -> None:
    missing = [c for c in SUBJECT_COLUMNS if c not in subjects.columns]
    if missing:
        raise G2IError(f"subjects table: missing columns {missing} (expected {', '.join(SUBJECT_COLUMNS)})")
    if subjects.empty:
        raise G2IError("subjects table: no subjects")
    duplicated = subjects["PTID"][subjects["PTID"].duplicated()].unique()
    if len(duplicated):
        raise G2IError(f"subjects table: PTID listed more than once: {', '.join(map(str, duplicated[:5]))}")
    if not z_mm:
        raise G2IError("slices.z_mm: give at least one MNI z (mm)")
    if len(size) != 2 or any(int(n) < 1 for n in size):
        raise G2IError(f"slices.size: expected [rows, columns] of positive integers, got {list(size)}")
    if not 0.0 <= lower < upper <= 100.0:
        raise G2IError(f"slices percentiles: need 0 <= lower < upper <= 100, got {lower} and {upper}")
    no_path = subjects.loc[subjects["t1_path"].isna(), "PTID"].astype(str).tolist()
    if no_path:
        raise G2IError(f"subjects table: no t1_path for {', '.join(no_path[:5])}")


def _run_local(jobs: list[tuple], n_jobs: int) -> Iterator[tuple]:
    if n_jobs == 1:
        yield from map(_slice_subject, jobs)
        return
    with multiprocessing.get_context("fork").Pool(n_jobs) as pool:
        # Unordered: rows carry their subject number, so arrival order cannot change the output.
        yield from pool.imap_unordered(_slice_subject, jobs, chunksize=1)


def _run_dask(jobs: list[tuple], address: str) -> Iterator[tuple]:
    try:
        from distributed import Client, as_completed
    except ImportError as exc:
        raise G2IError("slices.dask_address is set but dask.distributed is not installed") from exc
    try:
        client = Client(address, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        raise G2IError(f"cannot connect to the dask scheduler at {address} ({exc})") from exc
    try:
        futures = client.map(_slice_subject, jobs, pure=False)
        for future in as_completed(futures, loop=client.loop):
            yield future.result()
            future.release()
    finally:
        client.close()


def build_slices(subjects: pd.DataFrame, z_mm: float | Sequence[float], size: Sequence[int], lower: float,
                 upper: float, out_dir: str | Path, on_bad_image: str, max_excluded_fraction: float, n_jobs: int = 0,
                 dask_address: str | None = None, progress: bool = True) -> dict:
    """Write slices.npy, index.csv, exclusions.csv and summary.json for `subjects` (PTID, diagnosis,
    t1_path) into `out_dir`.

    A subject whose T1 cannot be used (missing, unreadable, 4-D, NaN, empty, outside the field of view) is
    left out with the reason in exclusions.csv (`on_bad_image="exclude"`) and the others go on; more than
    `max_excluded_fraction` of the subjects left out is an error. `on_bad_image="fail"` stops at the first
    such image instead. Rows are subject-major over the kept subjects, in the table's order: kept subject
    i's slice at z_mm[j] is row i * len(z_mm) + j. `n_jobs` 0 means all cores; with `dask_address` the
    subjects run on that dask.distributed cluster instead. An existing `out_dir` is replaced only once the
    new one is complete. Returns the summary.
    """
    if on_bad_image not in BAD_IMAGE_POLICIES:
        raise G2IError(f"slices.on_bad_image: expected one of {BAD_IMAGE_POLICIES}, got {on_bad_image!r}")
    if not 0.0 <= float(max_excluded_fraction) <= 1.0:
        raise G2IError(f"slices.max_excluded_fraction: expected a fraction in [0, 1], got {max_excluded_fraction}")
    z_list = [float(z) for z in np.atleast_1d(z_mm)]
    size = [int(n) for n in size]
    lower, upper = float(lower), float(upper)
    _check_inputs(subjects, z_list, size, lower, upper)
    subjects = subjects.reset_index(drop=True)
    jobs = [(i, str(path), z_list, size, lower, upper) for i, path in enumerate(subjects["t1_path"])]
    n_jobs = min(n_jobs or os.cpu_count() or 1, len(jobs))
    n_z = len(z_list)

    with atomic_dir(out_dir, overwrite=True) as tmp:
        stack = open_memmap(tmp / "all.npy", mode="w+", dtype=np.float16, shape=(len(jobs) * n_z, *size))
        results = _run_dask(jobs, dask_address) if dask_address else _run_local(jobs, n_jobs)
        bad: dict[int, str] = {}
        with tqdm(total=len(jobs), desc="slicing T1 volumes", unit="subject", disable=not progress) as bar:
            for number, slices, reason in results:
                if reason is not None:
                    if on_bad_image == "fail":
                        raise G2IError(reason)
                    bad[number] = reason
                else:
                    stack[number * n_z:(number + 1) * n_z] = slices
                bar.update()
        if len(bad) > max_excluded_fraction * len(jobs):
            listing = "\n  ".join(bad[i] for i in sorted(bad)[:5])
            raise G2IError(f"{len(bad)} of {len(jobs)} T1 images are unusable, more than slices.max_excluded_fraction "
                           f"= {max_excluded_fraction}; the first:\n  {listing}")
        kept = [i for i in range(len(jobs)) if i not in bad]
        rows = np.concatenate([np.arange(i * n_z, (i + 1) * n_z) for i in kept]) if kept else np.zeros(0, int)
        if not kept:
            raise G2IError("no usable T1 image: every subject was excluded (see the reasons above)")
        final = open_memmap(tmp / SLICES_FILE, mode="w+", dtype=np.float16, shape=(len(rows), *size))
        final[:] = stack[rows]
        final.flush()
        del stack, final
        (tmp / "all.npy").unlink()
        kept_subjects = subjects.iloc[kept]
        exclusions = pd.DataFrame({"PTID": subjects["PTID"].iloc[sorted(bad)].to_numpy(),
                                   "t1_path": subjects["t1_path"].iloc[sorted(bad)].to_numpy(),
                                   "reason": [bad[i] for i in sorted(bad)]})
        exclusions.to_csv(tmp / EXCLUSIONS_FILE, index=False)

        index = pd.DataFrame({
            "row": np.arange(len(kept) * n_z),
            "PTID": np.repeat(kept_subjects["PTID"].to_numpy(), n_z),
            "diagnosis": np.repeat(kept_subjects["diagnosis"].to_numpy(), n_z),
            "z_mm": np.tile(z_list, len(kept)),
        })
        index.to_csv(tmp / INDEX_FILE, index=False)
        summary = {
            "n_subjects": len(kept),
            "n_excluded": len(bad),
            "n_slices": len(kept) * n_z,
            "per_class": {str(dx): int(n) for dx, n in kept_subjects["diagnosis"].value_counts().sort_index().items()},
            "z_mm": z_list,
            "image_size": size,
            "dtype": "float16",
            "value_range": [-1.0, 1.0],
        }
        (tmp / SUMMARY_FILE).write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return summary
