"""The slices stage: T1 reading (NIfTI, MINC1, MINC2), ICBM152 axial slicing, the stacked output."""

from __future__ import annotations

import gzip
import json
import re
import subprocess
import sys
from pathlib import Path

import h5py
import nibabel as nib
import numpy as np
from scipy import ndimage
import pandas as pd
import pytest
from scipy.io import netcdf_file

from g2i.data.slices import build_slices
from g2i.errors import G2IError
from g2i.imaging.grid import Grid
from g2i.imaging.io import load_t1
from g2i.imaging.slicing import PLANE_SHAPE, axial_slices, sample_axial_plane
from g2i.synthetic.generate import GROUND_TRUTH, MRI_PATTERN

from .conftest import ROOT

SIZE = (32, 24)
Z_MM = [16.0, 0.0]
KNOBS = {"z_mm": Z_MM, "size": SIZE, "lower": 1.0, "upper": 99.0, "on_bad_image": "fail", "max_excluded_fraction": 0.0}
MINC_AXES = ("zspace", "yspace", "xspace")  # CIVET's on-disk order: (S, A, R)


@pytest.fixture(scope="module")
def subjects(tiny_cohort) -> pd.DataFrame:
    """Two subjects per diagnosis from the tiny cohort: PTID, diagnosis, t1_path."""
    raw, _ = tiny_cohort
    truth = pd.read_csv(raw / GROUND_TRUTH)
    picked = truth[truth["has_mri"]].groupby("DX").head(2)
    return pd.DataFrame({"PTID": picked["PTID"], "diagnosis": picked["DX"],
                         "t1_path": [str(raw / MRI_PATTERN.format(ptid=p)) for p in picked["PTID"]]}).reset_index(drop=True)


@pytest.fixture(scope="module")
def reference(subjects) -> tuple[np.ndarray, np.ndarray]:
    """One subject's volume (RAS, 3 mm grid) and affine."""
    return load_t1(subjects["t1_path"][0])


def slices_of(path) -> np.ndarray:
    volume, affine = load_t1(path)
    return axial_slices(volume, affine, Z_MM, SIZE, 1.0, 99.0, source=str(path))


def write_nifti(path: Path, volume: np.ndarray, affine: np.ndarray) -> Path:
    nib.save(nib.Nifti1Image(volume, affine), str(path))
    return path


def write_minc1(path: Path, volume: np.ndarray, affine: np.ndarray) -> Path:
    """MINC1 (netCDF) as CIVET writes it: int16 in (S, A, R) order, regular dimension variables."""
    data = np.ascontiguousarray(volume.transpose(2, 1, 0)).astype(np.int16)
    mnc = netcdf_file(str(path), "w")
    for name, n in zip(MINC_AXES, data.shape):
        mnc.createDimension(name, n)
    for name, axis in zip(MINC_AXES, (2, 1, 0)):
        var = mnc.createVariable(name, "d", ())
        var.spacing = b"regular__"
        var.step = float(affine[axis, axis])
        var.start = float(affine[axis, 3])
        var.direction_cosines = np.eye(3)[axis]
        var.units = b"mm"
    image = mnc.createVariable("image", "h", MINC_AXES)
    image.signtype = b"signed__"
    image.valid_range = np.array([-32768.0, 32767.0])
    image[:] = data
    for name, value in (("image-min", -32768.0), ("image-max", 32767.0)):  # identity scaling: exact values
        mnc.createVariable(name, "d", ()).data[()] = value
    mnc.close()
    return path


def write_minc2(path: Path, volume: np.ndarray, affine: np.ndarray) -> Path:
    """MINC2 (HDF5): uint16 with per-slice image-min / image-max scaling, the layout nibabel's reader expects."""
    data = volume.transpose(2, 1, 0).astype(np.float64)
    lo = data.min(axis=(1, 2))
    hi = np.maximum(data.max(axis=(1, 2)), lo + 1.0)
    stored = np.round((data - lo[:, None, None]) / (hi - lo)[:, None, None] * 65535).astype(np.uint16)
    with h5py.File(path, "w") as mnc:
        root = mnc.create_group("minc-2.0")
        dimensions = root.create_group("dimensions")
        for name, axis in zip(MINC_AXES, (2, 1, 0)):
            dim = dimensions.create_dataset(name, data=0)
            dim.attrs.update({"step": float(affine[axis, axis]), "start": float(affine[axis, 3]),
                              "direction_cosines": np.eye(3)[axis], "spacing": np.bytes_(b"regular__"),
                              "length": data.shape[MINC_AXES.index(name)]})
        group = root.create_group("image").create_group("0")
        image = group.create_dataset("image", data=stored)
        image.attrs.update({"dimorder": np.bytes_(",".join(MINC_AXES).encode()), "valid_range": [0.0, 65535.0]})
        for name, values in (("image-min", lo), ("image-max", hi)):
            group.create_dataset(name, data=values).attrs["dimorder"] = np.bytes_(b"zspace")
    return path


def one_subject(path: Path) -> pd.DataFrame:
    return pd.DataFrame({"PTID": ["000_S_0000"], "diagnosis": ["CN"], "t1_path": [str(path)]})


def test_build_slices_writes_stack_index_and_summary(subjects, tmp_path):
    summary = build_slices(subjects, out_dir=tmp_path / "slices", n_jobs=1, progress=False, **KNOBS)
    stack = np.load(tmp_path / "slices" / "slices.npy")
    n = len(subjects) * len(Z_MM)
    assert stack.dtype == np.float16 and stack.shape == (n, *SIZE)
    assert stack.min() == -1.0 and stack.max() == 1.0
    assert (stack[:, 0, :] == -1).all() and (stack[:, :, 0] == -1).all()  # background at the borders
    index = pd.read_csv(tmp_path / "slices" / "index.csv")
    assert list(index.columns) == ["row", "PTID", "diagnosis", "z_mm"]
    assert index["row"].tolist() == list(range(n))
    assert index["PTID"].tolist() == np.repeat(subjects["PTID"], 2).tolist()
    assert index["z_mm"].tolist() == Z_MM * len(subjects)
    assert summary == json.loads((tmp_path / "slices" / "summary.json").read_text())
    assert summary["n_subjects"] == 6 and summary["n_slices"] == 12 and summary["image_size"] == list(SIZE)
    assert summary["per_class"] == {"AD": 2, "CN": 2, "MCI": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["slices"]  # no temporary folder left
    assert np.array_equal(stack[2:4], slices_of(subjects["t1_path"][1]).astype(np.float16))


def test_plane_convention_rows_anterior_first_columns_left_to_right():
    # Trilinear interpolation reproduces a linear function exactly, so the plane reads back world x and y.
    grid = Grid.icbm152(3.0)
    x, y, z = grid.world_coords()
    for values, expected in ((x, np.arange(-90.0, 91.0)[None, :]), (y, np.arange(90.0, -127.0, -1.0)[:, None])):
        plane = sample_axial_plane(values + 200.0, grid.affine, 16.0)
        assert plane.shape == PLANE_SHAPE == (217, 181)
        np.testing.assert_allclose(plane, np.broadcast_to(expected + 200.0, PLANE_SHAPE), atol=1e-3)
    plane = sample_axial_plane(z + 200.0, grid.affine, 16.0)
    np.testing.assert_allclose(plane, 216.0, atol=1e-3)


def test_nifti_minc1_minc2_give_the_same_slice(reference, tmp_path):
    volume, affine = reference
    expected = axial_slices(volume, affine, Z_MM, SIZE, 1.0, 99.0)
    assert np.array_equal(slices_of(write_nifti(tmp_path / "t1.nii", volume, affine)), expected)
    minc1 = write_minc1(tmp_path / "t1_minc1.mnc", volume, affine)
    minc2 = write_minc2(tmp_path / "t1_minc2.mnc", volume, affine)
    assert isinstance(nib.load(str(minc1)), nib.Minc1Image) and isinstance(nib.load(str(minc2)), nib.Minc2Image)
    assert nib.aff2axcodes(nib.load(str(minc1)).affine) == ("S", "A", "R")
    assert np.array_equal(slices_of(minc1), expected)
    np.testing.assert_allclose(slices_of(minc2), expected, atol=2e-3)  # uint16 quantisation only


def test_reoriented_nifti_gives_the_same_slice(reference, tmp_path):
    volume, affine = reference
    expected = axial_slices(volume, affine, Z_MM, SIZE, 1.0, 99.0)
    flip_x = np.diag([-1.0, 1.0, 1.0, 1.0])
    flip_x[0, 3] = volume.shape[0] - 1
    las = write_nifti(tmp_path / "las.nii.gz", volume[::-1].copy(), affine @ flip_x)
    assert nib.aff2axcodes(nib.load(str(las)).affine) == ("L", "A", "S")
    sar = write_nifti(tmp_path / "sar.nii.gz", volume.transpose(2, 1, 0).copy(), affine[:, [2, 1, 0, 3]])
    one_frame = write_nifti(tmp_path / "frame.nii.gz", volume[..., None], affine)
    for path in (las, sar, one_frame):
        assert np.array_equal(slices_of(path), expected), path.name


def test_slices_from_another_grid_are_resampled_onto_the_1mm_plane(reference, tmp_path):
    # The same anatomy on a grid shifted by half a voxel still gives nearly the same slice.
    volume, affine = reference
    shifted = affine.copy()
    shifted[:3, 3] += 0.3
    expected = axial_slices(volume, affine, Z_MM, SIZE, 1.0, 99.0)
    moved = axial_slices(volume, shifted, Z_MM, SIZE, 1.0, 99.0)
    assert moved.shape == expected.shape and not np.array_equal(moved, expected)
    assert np.corrcoef(moved.ravel(), expected.ravel())[0, 1] > 0.95


def _truncated(tmp_path, volume, affine):
    whole = write_nifti(tmp_path / "whole.nii.gz", volume, affine).read_bytes()
    path = tmp_path / "truncated.nii.gz"
    path.write_bytes(whole[: len(whole) // 2])
    return path, "cannot read"


def _four_d(tmp_path, volume, affine):
    return write_nifti(tmp_path / "four_d.nii.gz", np.stack([volume, volume], axis=-1), affine), "3-D"


def _nan(tmp_path, volume, affine):
    bad = volume.copy()
    bad[10, 10, 5] = np.nan
    return write_nifti(tmp_path / "nan.nii.gz", bad, affine), "NaN"


def _zeros(tmp_path, volume, affine):
    return write_nifti(tmp_path / "zeros.nii.gz", np.zeros_like(volume), affine), "all zeros"


def _outside(tmp_path, volume, affine):
    slab = affine.copy()
    slab[2, 3] += 60.0  # the same slab moved up: z = 16 mm is no longer inside it
    return write_nifti(tmp_path / "high_slab.nii.gz", volume, slab), "cannot be placed on the ICBM152 grid"


def _extension(tmp_path, volume, affine):
    path = tmp_path / "t1.img"
    path.write_bytes(b"\0" * 352)
    return path, "unsupported"


def _not_minc(tmp_path, volume, affine):
    path = tmp_path / "t1.mnc"
    path.write_bytes(b"not a MINC file at all")
    return path, "cannot read"


def _not_mni(tmp_path, volume, affine):
    moved = affine.copy()
    moved[0, 3] += 35.0  # native-space-like: the head 35 mm right of where ICBM152 has the brain
    return write_nifti(tmp_path / "native.nii.gz", volume, moved), "does not look like MNI space"


@pytest.mark.parametrize("make_bad", [_truncated, _four_d, _nan, _zeros, _outside, _extension, _not_minc, _not_mni])
def test_bad_inputs_are_named(make_bad, reference, tmp_path):
    path, problem = make_bad(tmp_path, *reference)
    with pytest.raises(G2IError, match=re.escape(str(path)) + ".*" + re.escape(problem)):
        build_slices(one_subject(path), out_dir=tmp_path / "slices", n_jobs=1, progress=False, **KNOBS)
    assert not (tmp_path / "slices").exists()


def test_unusable_images_exclude_their_subject_with_the_reason_and_the_rest_go_on(subjects, reference, tmp_path):
    bad = []
    for k, make_bad in enumerate((_truncated, _four_d, _nan, _outside)):
        (tmp_path / f"bad{k}").mkdir()
        bad.append(make_bad(tmp_path / f"bad{k}", *reference))
    bad.append((tmp_path / "absent_t1_final.nii.gz", "not found"))
    table = pd.concat([subjects] + [one_subject(path).assign(PTID=f"999_S_{k:04d}") for k, (path, _) in enumerate(bad)],
                      ignore_index=True).sample(frac=1.0, random_state=0).reset_index(drop=True)   # bad ones interleaved
    knobs = {**KNOBS, "on_bad_image": "exclude", "max_excluded_fraction": 0.5}
    summary = build_slices(table, out_dir=tmp_path / "mixed", n_jobs=2, progress=False, **knobs)
    assert summary["n_subjects"] == 6 and summary["n_excluded"] == 5 and summary["per_class"] == {"AD": 2, "CN": 2, "MCI": 2}
    exclusions = pd.read_csv(tmp_path / "mixed" / "exclusions.csv")
    for path, problem in bad:
        reason = exclusions.loc[exclusions["t1_path"] == str(path), "reason"].item()
        assert str(path) in reason and problem in reason
    # the kept subjects' rows are exactly what they give alone, in the table's order
    good = table[~table["PTID"].str.startswith("999_")].reset_index(drop=True)
    build_slices(good, out_dir=tmp_path / "good", n_jobs=1, progress=False, **KNOBS)
    for name in ("slices.npy", "index.csv"):
        assert (tmp_path / "mixed" / name).read_bytes() == (tmp_path / "good" / name).read_bytes(), name
    assert pd.read_csv(tmp_path / "good" / "exclusions.csv").empty
    with pytest.raises(G2IError, match=r"5 of 11 T1 images are unusable, more than slices.max_excluded_fraction = 0.4"):
        build_slices(table, out_dir=tmp_path / "strict", n_jobs=1, progress=False, **{**knobs, "max_excluded_fraction": 0.4})
    assert not (tmp_path / "strict").exists()


def test_serial_parallel_and_dask_are_identical(subjects, tmp_path):
    from distributed import LocalCluster

    build_slices(subjects, out_dir=tmp_path / "serial", n_jobs=1, progress=False, **KNOBS)
    build_slices(subjects, out_dir=tmp_path / "pool", n_jobs=3, progress=False, **KNOBS)
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None,
                      local_directory=str(tmp_path / "dask-scratch")) as cluster:
        build_slices(subjects, out_dir=tmp_path / "dask", dask_address=cluster.scheduler_address, progress=False,
                     **KNOBS)
    for name in ("slices.npy", "index.csv", "summary.json"):
        serial = (tmp_path / "serial" / name).read_bytes()
        assert (tmp_path / "pool" / name).read_bytes() == serial, name
        assert (tmp_path / "dask" / name).read_bytes() == serial, name


def test_pipeline_script_names_a_corrupt_image_and_writes_nothing(subjects, tmp_path):
    corrupt = tmp_path / "mri" / "corrupt_t1_final.nii.gz"
    corrupt.parent.mkdir()
    corrupt.write_bytes(gzip.compress(b"\0" * 100))
    table = pd.concat([subjects, one_subject(corrupt)], ignore_index=True)
    table.to_csv(tmp_path / "subjects.csv", index=False)
    result = subprocess.run([sys.executable, str(ROOT / "pipelines" / "slices.py"), "--subjects",
                             str(tmp_path / "subjects.csv"), "--out", str(tmp_path / "slices"), "--jobs", "2",
                             "--quiet"], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 2, result.stderr
    assert str(corrupt) in result.stderr and "cannot read" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mri", "subjects.csv"]


def _brain(slice_: np.ndarray) -> np.ndarray:
    return slice_ > -1.0


def test_background_noise_or_offset_is_background_not_brain(reference, tmp_path):
    """A background that decodes to a small positive value, or holds scanner noise, must not be normalised
    as brain: the slice comes out as the clean one's (before: every pixel > 0 counted as brain)."""
    volume, affine = reference
    clean = axial_slices(volume, affine, Z_MM, SIZE, 1.0, 99.0)
    rng = np.random.default_rng(0)
    for name, dirty in (("offset", np.where(volume > 0, volume, 0.5)),
                        ("noise", np.where(volume > 0, volume, rng.uniform(0.0, 3.0, volume.shape)))):
        got = axial_slices(dirty.astype(np.float32), affine, Z_MM, SIZE, 1.0, 99.0)
        assert (got[~_brain(clean)] == -1).mean() > 0.99, name                       # background stays -1
        inside = _brain(clean) & _brain(got)
        assert np.abs(got[inside] - clean[inside]).mean() < 0.02, name               # same intensity mapping


def test_a_bright_scalp_outside_the_brain_does_not_compress_the_brain_contrast(reference):
    volume, affine = reference
    clean = axial_slices(volume, affine, Z_MM, SIZE, 1.0, 99.0)
    # a bright ring 78-84 mm from the centre, in every axial plane: a scalp left on an image not skull-stripped
    ijk = np.indices(volume.shape).reshape(3, -1)
    xyz = (affine[:3, :3] @ ijk + affine[:3, 3:4]).reshape(3, *volume.shape)
    radius = np.hypot(xyz[0] / 78.0, (xyz[1] + 17.0) / 105.0)
    scalp = np.where((radius > 1.0) & (radius < 1.08), 3.0 * float(volume.max()), 0.0).astype(np.float32)
    got = axial_slices(np.maximum(volume, scalp), affine, Z_MM, SIZE, 1.0, 99.0)
    # the brain less its outer 2 pixels: at 32 x 24 the resize blurs the scalp into the edge of the brain
    brain = np.stack([ndimage.binary_erosion(b, iterations=2) for b in _brain(clean)])
    assert np.abs(got[brain] - clean[brain]).mean() < 0.05


def test_csf_keeps_its_level_between_background_and_white(reference):
    """Raw ~0 maps to -1 (the head's 1st percentile) and white to +1, so CSF sits near -1 + 0.35 (white + 1),
    where the 2D ventricle measure looks for it; it must not be pushed to -1 (both ends from inside the brain
    did that, and halved the measure's sensitivity)."""
    from g2i.imaging.slice_morphometry import CSF_OVER_WM, WHITE_PERCENTILE, brain_mask

    volume, affine = reference
    plane = axial_slices(volume, affine, [16.0], (64, 64), 1.0, 99.0)[0]
    brain = brain_mask(plane)
    white = float(np.percentile(plane[brain], WHITE_PERCENTILE))
    expected_csf = -1.0 + CSF_OVER_WM * (white + 1.0)
    darkest_core = float(np.percentile(plane[ndimage.binary_erosion(brain, iterations=4)], 2))
    assert darkest_core > -0.95 and abs(darkest_core - expected_csf) < 0.35
