"""Fidelity checks (g2i.evaluation.fidelity, g2i.imaging.slice_morphometry, g2i.evaluation.memorisation) on synthetic
phantoms, and on slices of the session's generated cohort."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage as ndi

from g2i.evaluation.fidelity import (
    PLANTED_FROM_ASSUMED,
    PLANTED_FROM_SLICES,
    apoe_effect_on_area,
    counterfactual_effect,
    ground_truth_apoe_effect,
    planted_truth,
    validate_ventricle_measure,
)
from g2i.evaluation.memorisation import memorisation_audit
from g2i.imaging.slice_morphometry import lateral_ventricle_area


SUPERSAMPLE = 4  # render at 4x and average: partial volumes at blob edges, as in a resized scan


def _ellipse(shape: tuple[int, int], centre: tuple[float, float], semi: tuple[float, float]) -> np.ndarray:
    rows, cols = np.mgrid[0:shape[0], 0:shape[1]]
    r = (rows + 0.5) / shape[0]
    c = (cols + 0.5) / shape[1]
    return ((r - centre[0]) / semi[0]) ** 2 + ((c - centre[1]) / semi[1]) ** 2 <= 1.0


def phantom(size: int, scale: float, seed: int = 0) -> tuple[np.ndarray, float]:
    """An ellipse 'brain' (tissue ~0.6) on -1 with two dark ventricle ellipses; returns (image, true fraction).

    The ventricles' semi-axes are (0.10, 0.035) of the image times `scale`, centred either side of
    the midline, so their true area fraction is 2 * pi * a * b.
    """
    big = (size * SUPERSAMPLE, size * SUPERSAMPLE)
    image = np.full(big, -1.0)
    brain = _ellipse(big, (0.5, 0.5), (0.44, 0.38))
    rng = np.random.default_rng(seed)
    image[brain] = 0.6 + 0.05 * rng.standard_normal(brain.sum())
    a, b = 0.10 * scale, 0.035 * scale
    for col in (0.5 - 0.045 * scale, 0.5 + 0.045 * scale) if scale > 0 else ():
        image[_ellipse(big, (0.5, col), (a, b))] = -0.5
    image = image.reshape(size, SUPERSAMPLE, size, SUPERSAMPLE).mean(axis=(1, 3))
    return image.astype(np.float32), 2 * np.pi * a * b


SCALES = (0.6, 0.8, 1.0, 1.3, 1.6)


@pytest.mark.parametrize("size", [64, 256])
def test_area_is_monotone_and_close_to_truth(size):
    images, truth = zip(*(phantom(size, s) for s in SCALES))
    areas = lateral_ventricle_area(np.stack(images))
    assert np.all(np.diff(areas) > 0), areas
    np.testing.assert_allclose(areas, truth, rtol=0.2)


@pytest.mark.parametrize("size", [64, 256])
def test_area_survives_blur(size):
    sigma = size / 64  # one pixel of the 64 x 64 demo, i.e. the same blur in anatomical units
    images, truth = zip(*(phantom(size, s) for s in SCALES[2:]))
    blurred = np.stack([ndi.gaussian_filter(x, sigma) for x in images])
    areas = lateral_ventricle_area(blurred)
    assert np.all(np.diff(areas) > 0), areas
    np.testing.assert_allclose(areas, truth, rtol=0.2)


def test_area_ignores_background_and_empty_images():
    no_ventricles = phantom(64, 0.0)[0]
    blank = np.full((64, 64), -1.0, dtype=np.float32)
    areas = lateral_ventricle_area(np.stack([no_ventricles, blank]))
    assert areas[0] == 0.0
    assert np.isnan(areas[1])


def _cohort(n: int = 300, effect: float = 0.05, noise: float = 0.0, seed: int = 1):
    rng = np.random.default_rng(seed)
    dx = rng.choice(["CN", "MCI", "AD"], size=n)
    dose = rng.choice([0, 1, 2], size=n, p=[0.5, 0.35, 0.15])
    shift = pd.Series(dx).map({"CN": 0.0, "MCI": 0.26, "AD": 0.41}).to_numpy()
    areas = 0.03 * np.exp(shift + effect * dose + noise * rng.standard_normal(n))
    return areas, dose, dx


def test_apoe_effect_recovers_planted_effect():
    areas, dose, dx = _cohort(effect=0.05)
    result = apoe_effect_on_area(areas, dose, dx)
    assert result["effect"] == pytest.approx(0.05, abs=1e-9)
    assert result["se"] < 1e-9
    assert set(result["dose_means"]) == {0, 1, 2}
    assert result["dose_means"][2] > result["dose_means"][0]
    assert result["n"] == 300


def test_apoe_effect_is_null_without_effect_and_ci_covers():
    areas, dose, dx = _cohort(effect=0.0)
    assert apoe_effect_on_area(areas, dose, dx)["effect"] == pytest.approx(0.0, abs=1e-9)
    noisy = apoe_effect_on_area(*_cohort(effect=0.08, noise=0.3))
    assert noisy["ci95"][0] < 0.08 < noisy["ci95"][1]
    assert noisy["se"] > 0


def test_counterfactual_effect_on_planted_pairs():
    rng = np.random.default_rng(2)
    a0 = rng.uniform(0.02, 0.06, size=40)
    slope = 0.06
    result = counterfactual_effect({0: a0, 1: a0 * np.exp(slope), 2: a0 * np.exp(2 * slope)})
    assert result["effect"] == pytest.approx(slope)
    assert result["fraction_monotone"] == 1.0
    assert result["relative_change_0_to_2"] == pytest.approx(np.exp(2 * slope) - 1)
    assert result["n"] == 40
    flat = counterfactual_effect({0: a0, 1: a0, 2: a0})
    assert flat["effect"] == pytest.approx(0.0) and flat["fraction_monotone"] == 0.0


def test_ground_truth_effect_default_exponent():
    effects = {"ventricles": {"e4_log_per_allele": 0.08}}
    result = ground_truth_apoe_effect(effects)
    assert result["log_area_per_allele"] == pytest.approx(0.08 * 2 / 3)
    assert ground_truth_apoe_effect(effects, area_exponent=1.0)["log_area_per_allele"] == pytest.approx(0.08)
    nested = ground_truth_apoe_effect({"synthesize": {"effects": effects}})
    assert nested["e4_log_per_allele"] == 0.08


def test_planted_truth_prefers_the_exponent_measured_on_the_slices_and_says_so():
    assumed = ground_truth_apoe_effect({"ventricles": {"e4_log_per_allele": 0.09}})   # exponent 2/3: 0.06
    truth, source = planted_truth(assumed)
    assert source == PLANTED_FROM_ASSUMED and truth == assumed and truth is not assumed
    measured = {**assumed, "empirical_area_exponent_vs_scale_target": 0.5,
                "log_area_per_allele_empirical_vs_scale_target": 0.045}
    before = dict(measured)
    truth, source = planted_truth(measured)
    assert source == PLANTED_FROM_SLICES
    assert (truth["area_exponent"], truth["log_area_per_allele"]) == (0.5, 0.045)
    assert truth["e4_log_per_allele"] == 0.09 and truth["ratio_per_allele"] == assumed["ratio_per_allele"]
    assert set(truth) == set(measured)
    assert measured == before   # the input is not overwritten


def _smooth_images(n: int, size: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    raw = ndi.gaussian_filter(rng.standard_normal((n, size, size)), sigma=(0, 2, 2))
    return np.clip(raw / raw.std() * 0.5, -1, 1).astype(np.float32)


@pytest.mark.parametrize("top_k", [8, None])
def test_memorisation_audit_finds_copies(top_k):
    train = _smooth_images(30, 32, seed=3)
    novel = _smooth_images(3, 32, seed=4)
    generated = np.concatenate([train[[5, 17]], novel])
    result = memorisation_audit(generated, train, threshold=0.95, batch_size=2, top_k=top_k,
                                reference=_smooth_images(4, 32, seed=5))
    np.testing.assert_allclose(result["nn_ssim"][:2], 1.0, atol=1e-5)
    assert list(result["nn_index"][:2]) == [5, 17]
    assert np.all(result["nn_ssim"][2:] < 0.95)
    assert result["fraction_above_threshold"] == pytest.approx(2 / 5)
    assert result["max"] == pytest.approx(1.0, abs=1e-5)
    assert result["reference"]["fraction_above_threshold"] == 0.0
    assert result["excess_fraction_above_threshold"] == pytest.approx(2 / 5)


def test_bad_input_raises_value_error_naming_argument():
    good = np.stack([phantom(64, 1.0)[0]] * 2)
    with pytest.raises(ValueError, match="images"):
        lateral_ventricle_area(good[0])
    with pytest.raises(ValueError, match="images"):
        lateral_ventricle_area(np.empty((0, 64, 64)))
    with pytest.raises(ValueError, match="apoe4"):
        apoe_effect_on_area([0.1, 0.2, 0.3], [0, 1], ["CN", "CN", "AD"])
    with pytest.raises(ValueError, match="diagnosis"):
        apoe_effect_on_area([0.1, 0.2, 0.3], [0, 1, 2], ["CN"])
    with pytest.raises(ValueError, match="areas"):
        apoe_effect_on_area([], [], [])
    with pytest.raises(ValueError, match=r"areas_by_dose\[2\]"):
        counterfactual_effect({0: [0.1, 0.2], 1: [0.1, 0.2], 2: [0.1]})
    with pytest.raises(ValueError, match="areas_by_dose"):
        counterfactual_effect({0: [0.1]})
    with pytest.raises(ValueError, match="generated"):
        memorisation_audit(good[0], good)
    with pytest.raises(ValueError, match="generated"):
        memorisation_audit(good, np.zeros((2, 32, 32)))
    with pytest.raises(ValueError, match="train"):
        memorisation_audit(good, np.zeros((0, 64, 64)))
    with pytest.raises(ValueError, match="params_effects"):
        ground_truth_apoe_effect({"hippocampus": {}})
    with pytest.raises(ValueError, match="index"):
        validate_ventricle_measure(good, pd.DataFrame({"PTID": ["a", "b"]}), pd.DataFrame({"PTID": ["a"]}))


def test_measure_tracks_3d_volume_on_a_generated_cohort(tiny_cohort):
    """The 2D measure on real-pipeline slices (z = 16 mm, 64 x 64) of the session's synthetic cohort tracks the
    planted 3D ventricle volume of the same subjects."""
    from g2i.imaging.io import load_t1
    from g2i.imaging.slicing import axial_slices
    from g2i.synthetic.generate import GROUND_TRUTH, MRI_PATTERN

    raw, _ = tiny_cohort
    truth = pd.read_csv(raw / GROUND_TRUTH)
    ptids = truth.loc[truth["has_mri"], "PTID"].to_numpy()
    slices = np.stack([axial_slices(*load_t1(raw / MRI_PATTERN.format(ptid=p)), [16.0], (64, 64), 1.0, 99.0)[0]
                       for p in ptids])
    index = pd.DataFrame({"row": range(len(ptids)), "PTID": ptids, "z_mm": 16.0})
    result = validate_ventricle_measure(slices, index, truth)
    assert result["n"] >= 30
    assert result["spearman_rho"] > 0.7
    assert result["area_exponent"] > 0
