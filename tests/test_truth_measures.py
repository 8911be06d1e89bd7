"""Measures against the planted truth (g2i.evaluation.truth) on tiny inputs with known answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from g2i.evaluation.fidelity import apoe_effect_on_area
from g2i.evaluation.truth import (
    conditional_mean_r,
    conditional_r_ceiling,
    expected_age,
    expected_log_volume,
    label_effect_ratio,
    label_effects,
    measurement_noise,
    slope_on_images,
    slope_ratio,
)
from g2i.synthetic.cohort import AGE_BY_DX, REFERENCE_AGE

# params.yaml synthesize.effects.ventricles (copied so that the tests do not move with the config)
VENTRICLES = {
    "scale_cn": 1.75,
    "log_shift": {"CN": 0.0, "MCI": 0.26, "AD": 0.41},
    "e4_log_per_allele": 0.08,
    "prs_log_per_sd": 0.04,
    "age_log_per_year": 0.02,
    "log_sd": 0.4,
}
Z = stats.norm.ppf(0.975)


def _cohort(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "DX": rng.choice(["CN", "MCI", "AD"], size=n),
        "APOE4": rng.choice([0, 1, 2], size=n, p=[0.55, 0.35, 0.10]),
        "prs_z": rng.standard_normal(n),
    })


# ----------------------------------------------------------------------------------------------------
# label effects


def _labelled_areas(seed: int = 1, n: int = 200) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    dx = np.repeat(["CN", "MCI", "AD"], n)
    shift = np.repeat([0.0, 0.2, 0.4], n)
    sd = np.repeat([0.2, 0.3, 0.15], n)   # unequal spreads: the Welch case
    return np.exp(-3.0 + shift + sd * rng.standard_normal(3 * n)), dx


def test_label_effects_recover_planted_differences():
    areas, dx = _labelled_areas()
    res = label_effects(areas, dx)
    for contrast, planted in (("AD-CN", 0.4), ("MCI-CN", 0.2)):
        lo, hi = res[contrast]["ci95"]
        assert lo < planted < hi, (contrast, res[contrast])
        assert hi - lo < 0.15
    # the Welch statistic, as scipy computes it
    logs = np.log(areas)
    welch = stats.ttest_ind(logs[dx == "AD"], logs[dx == "CN"], equal_var=False)
    assert res["AD-CN"]["effect"] / res["AD-CN"]["se"] == pytest.approx(welch.statistic)
    assert res["AD-CN"]["dof"] == pytest.approx(welch.df)
    assert res["n_by_dx"] == {"CN": 200, "MCI": 200, "AD": 200}


def test_label_effects_integer_labels_and_dropped_areas():
    areas, dx = _labelled_areas(n=30)
    codes = np.array([{"CN": 0, "MCI": 1, "AD": 2}[d] for d in dx])
    by_name, by_code = label_effects(areas, dx), label_effects(areas, codes)
    assert by_code["AD-CN"] == by_name["AD-CN"]
    spoiled = areas.copy()
    spoiled[[0, 35, 70]] = [0.0, np.nan, -1.0]
    res = label_effects(spoiled, dx)
    assert res["n_dropped"] == 3
    assert res["n"] == 87


# ----------------------------------------------------------------------------------------------------
# Fieller ratios


def test_fieller_ratio_of_equal_effects_is_one_and_bounded():
    effect = {"effect": 0.3, "se": 0.05}
    res = slope_ratio(effect, effect)
    assert res["ratio"] == pytest.approx(1.0)
    assert res["bounded"] is True
    lo, hi = res["ci95"]
    assert lo < 1.0 < hi
    # the bounds solve (a - rho b)^2 = z^2 (sa^2 + rho^2 sb^2)
    for rho in (lo, hi):
        assert (0.3 - rho * 0.3) ** 2 == pytest.approx(Z**2 * (0.05**2 + rho**2 * 0.05**2))
    # Fieller is asymmetric: the upper side is longer than the lower
    assert hi - 1.0 > 1.0 - lo


def test_fieller_ratio_unbounded_when_denominator_may_be_zero():
    res = slope_ratio({"effect": 0.3, "se": 0.05}, {"effect": 0.01, "se": 0.2})
    assert res["bounded"] is False
    assert res["ci95"] == (None, None)
    assert res["ratio"] == pytest.approx(30.0)


def test_fieller_close_to_delta_method_for_precise_estimates():
    res = slope_ratio({"effect": 0.5, "se": 0.001}, {"effect": 0.25, "se": 0.001})
    delta_se = 2.0 * np.sqrt((0.001 / 0.5) ** 2 + (0.001 / 0.25) ** 2)
    assert res["ci95"][0] == pytest.approx(2.0 - Z * delta_se, rel=1e-3)
    assert res["ci95"][1] == pytest.approx(2.0 + Z * delta_se, rel=1e-3)


def test_label_effect_ratio_per_contrast():
    real = {"AD-CN": {"effect": 0.4, "se": 0.03}, "MCI-CN": {"effect": 0.2, "se": 0.03}}
    generated = {"AD-CN": {"effect": 0.46, "se": 0.03}, "MCI-CN": {"effect": 0.3, "se": 0.03}}
    res = label_effect_ratio(generated, real)
    assert res["AD-CN"]["ratio"] == pytest.approx(1.15)
    assert res["AD-CN"]["within_25pct"] is True
    assert res["MCI-CN"]["ratio"] == pytest.approx(1.5)
    assert res["MCI-CN"]["within_25pct"] is False
    assert res["MCI-CN"]["bounded"] is True
    # a label_effects result goes straight in
    areas, dx = _labelled_areas(n=50)
    same = label_effects(areas, dx)
    assert label_effect_ratio(same, same)["AD-CN"]["ratio"] == pytest.approx(1.0)


# ----------------------------------------------------------------------------------------------------
# expected log volume


def test_expected_age_is_the_clipped_normal_mean(monkeypatch):
    rng = np.random.default_rng(0)
    for dx, (mu, sd) in AGE_BY_DX.items():
        draws = np.clip(rng.normal(mu, sd, 400_000), 55, 91)
        assert expected_age(dx) == pytest.approx(draws.mean(), abs=0.05)
    # an age distribution piled against the lower bound, where clip, truncation and no bound differ
    monkeypatch.setitem(AGE_BY_DX, "CN", (57.0, 10.0))
    draws = np.clip(rng.normal(57.0, 10.0, 400_000), 55, 91)
    truncated = stats.truncnorm.mean((55 - 57.0) / 10.0, (91 - 57.0) / 10.0, loc=57.0, scale=10.0)
    assert expected_age("CN") == pytest.approx(draws.mean(), abs=0.05)
    assert abs(expected_age("CN") - truncated) > 1.0


def test_expected_log_volume_matches_hand_computation():
    rows = pd.DataFrame({"DX": ["CN", "MCI", "AD"], "APOE4": [0, 1, 2], "prs_z": [0.0, -1.0, 0.5]})
    got = expected_log_volume(rows, VENTRICLES)
    age = {d: expected_age(d) - REFERENCE_AGE for d in ("CN", "MCI", "AD")}
    want = [
        np.log(1.75) + 0.0 + 0.0 + 0.0 + 0.02 * age["CN"],
        np.log(1.75) + 0.26 + 0.08 - 0.04 + 0.02 * age["MCI"],
        np.log(1.75) + 0.41 + 0.16 + 0.02 + 0.02 * age["AD"],
    ]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
    # the whole synthesize.effects dict works as well
    nested = {"effects": {"ventricles": VENTRICLES, "hippocampus": {}}}
    np.testing.assert_allclose(expected_log_volume(rows, nested), want, atol=1e-12)
    # integer diagnosis codes too
    coded = rows.assign(DX=[0, 1, 2])
    np.testing.assert_allclose(expected_log_volume(coded, VENTRICLES), want, atol=1e-12)


# ----------------------------------------------------------------------------------------------------
# conditional-mean fidelity


def test_conditional_mean_r_noiseless_is_one_and_noise_is_zero():
    truth = _cohort(300)
    expected = expected_log_volume(truth, VENTRICLES)
    perfect = [np.full(4, e) for e in expected]
    res = conditional_mean_r(perfect, expected)
    assert res["r"] == pytest.approx(1.0, abs=1e-9)
    assert res["n"] == 300 and res["k"] == 4.0 and res["n_dropped"] == 0

    rng = np.random.default_rng(3)
    noise = rng.standard_normal((300, 4))
    res = conditional_mean_r(noise, expected)
    lo, hi = res["ci95"]
    assert abs(res["r"]) < 0.15
    assert lo < 0 < hi


def test_conditional_mean_r_ignores_non_finite_and_drops_empty_subjects():
    truth = _cohort(20)
    expected = expected_log_volume(truth, VENTRICLES)
    logs = [np.array([e, e + 0.1, -np.inf, np.nan]) for e in expected]
    logs[5] = np.array([np.nan, -np.inf])
    res = conditional_mean_r(logs, expected)
    assert res["n"] == 19 and res["n_dropped"] == 1
    assert res["k"] == 2.0
    assert res["r"] == pytest.approx(1.0)


def test_ceiling_increases_with_k_and_is_deterministic():
    truth = _cohort(150)
    r1 = conditional_r_ceiling(truth, VENTRICLES, k=1, area_exponent=0.8, measurement_sd=0.1, n_sim=60, seed=4)
    r16 = conditional_r_ceiling(truth, VENTRICLES, k=16, area_exponent=0.8, measurement_sd=0.1, n_sim=60, seed=4)
    assert r16["r"] > r1["r"] + 0.2
    assert r1["ci95"][0] <= r1["r"] <= r1["ci95"][1]
    assert r16["n_sim"] == 60 and r16["n"] == 150 and r16["k"] == 16.0
    again = conditional_r_ceiling(truth, VENTRICLES, k=1, area_exponent=0.8, measurement_sd=0.1, n_sim=60, seed=4)
    assert again == r1


def test_ceiling_is_one_without_noise_and_matches_theory_with_it():
    truth = _cohort(400)
    quiet = {**VENTRICLES, "log_sd": 0.0, "age_log_per_year": 0.0}
    res = conditional_r_ceiling(truth, quiet, k=1, area_exponent=0.7, measurement_sd=0.0, n_sim=5)
    assert res["r"] == pytest.approx(1.0, abs=1e-9)
    # residual noise only: r = sd(E) / sqrt(var(E) + (log_sd^2 + (msd / a)^2) / k)
    noisy = {**VENTRICLES, "age_log_per_year": 0.0}
    expected = expected_log_volume(truth, noisy)
    k, a, msd = 4, 0.7, 0.14
    theory = expected.std() / np.sqrt(expected.var() + (0.4**2 + (msd / a) ** 2) / k)
    res = conditional_r_ceiling(truth, noisy, k=k, area_exponent=a, measurement_sd=msd, n_sim=100)
    assert res["r"] == pytest.approx(theory, abs=0.02)


def test_ceiling_with_per_subject_counts():
    truth = _cohort(40)
    counts = np.array([0, 0] + [3] * 38)
    res = conditional_r_ceiling(truth, VENTRICLES, k=counts, area_exponent=0.8, measurement_sd=0.1, n_sim=10)
    assert res["n"] == 38 and res["k"] == 3.0


def test_measurement_noise_recovers_exponent_and_sd():
    rng = np.random.default_rng(5)
    log_v = np.log(1.75) + 0.4 * rng.standard_normal(400)
    log_a = -3.2 + 0.8 * log_v + 0.1 * rng.standard_normal(400)
    log_a[:3] = [np.nan, -np.inf, np.inf]
    res = measurement_noise(log_a, log_v)
    lo, hi = res["ci95"]
    assert lo < 0.8 < hi
    assert res["area_exponent"] == pytest.approx(0.8, abs=0.05)
    assert res["measurement_sd"] == pytest.approx(0.1, rel=0.12)
    assert res["n"] == 397 and res["n_dropped"] == 3


def test_slope_on_images_is_apoe_effect_in_report_shape():
    rng = np.random.default_rng(6)
    n = 300
    dx = rng.choice([0, 1, 2], size=n)
    e4 = rng.choice([0, 1, 2], size=n)
    areas = np.exp(-3.0 + 0.1 * dx + 0.06 * e4 + 0.05 * rng.standard_normal(n))
    res = slope_on_images(areas, e4, dx)
    lo, hi = res["ci95"]
    assert lo < 0.06 < hi
    names = np.array(["CN", "MCI", "AD"])[dx]
    assert res["slope"] == pytest.approx(apoe_effect_on_area(areas, e4, names)["effect"])
    assert slope_ratio(res, res)["ratio"] == pytest.approx(1.0)


# ----------------------------------------------------------------------------------------------------
# bad input


def _bad_calls():
    truth = _cohort(10)
    good = {"effect": 0.1, "se": 0.01}
    areas = np.exp(np.random.default_rng(0).standard_normal(9))
    dx = ["CN", "MCI", "AD"] * 3
    return [
        ("diagnosis", lambda: label_effects(areas, dx[:5])),
        ("diagnosis", lambda: label_effects(areas, ["CN", "MCI", "XX"] * 3)),
        ("diagnosis", lambda: label_effects(areas[:6], ["CN", "CN", "CN", "MCI", "MCI", "AD"])),
        ("areas", lambda: label_effects(np.ones((3, 3)), dx)),
        ("numerator", lambda: slope_ratio({"effect": 0.1}, good)),
        ("denominator", lambda: slope_ratio(good, {"effect": np.nan, "se": 0.1})),
        ("denominator", lambda: slope_ratio(good, {"effect": 0.1, "se": -1.0})),
        ("real", lambda: label_effect_ratio({"AD-CN": good, "MCI-CN": good}, {"AD-CN": good})),
        ("generated", lambda: label_effect_ratio({"AD-CN": good, "MCI-CN": {"se": 1}},
                                                 {"AD-CN": good, "MCI-CN": good})),
        ("truth_rows", lambda: expected_log_volume(truth.drop(columns="prs_z"), VENTRICLES)),
        ("truth_rows", lambda: expected_log_volume(truth.assign(DX="SMC"), VENTRICLES)),
        ("truth_rows", lambda: expected_log_volume(pd.DataFrame(), VENTRICLES)),
        ("ventricle_effects", lambda: expected_log_volume(truth, {"hippocampus": {}})),
        ("ventricle_effects", lambda: expected_log_volume(truth, {k: v for k, v in VENTRICLES.items()
                                                                  if k != "scale_cn"})),
        ("log_areas_per_subject", lambda: conditional_mean_r([np.zeros(2)] * 9, np.arange(10.0))),
        ("log_areas_per_subject", lambda: conditional_mean_r([[np.nan]] * 10, np.arange(10.0))),
        ("expected", lambda: conditional_mean_r([[1.0]] * 10, np.full(10, np.nan))),
        ("k", lambda: conditional_r_ceiling(truth, VENTRICLES, k=-1, area_exponent=1, measurement_sd=0)),
        ("k", lambda: conditional_r_ceiling(truth, VENTRICLES, k=[1, 2], area_exponent=1, measurement_sd=0)),
        ("area_exponent", lambda: conditional_r_ceiling(truth, VENTRICLES, k=2, area_exponent=0, measurement_sd=0)),
        ("measurement_sd", lambda: conditional_r_ceiling(truth, VENTRICLES, k=2, area_exponent=1,
                                                         measurement_sd=-0.1)),
        ("n_sim", lambda: conditional_r_ceiling(truth, VENTRICLES, k=2, area_exponent=1, measurement_sd=0,
                                                n_sim=0)),
        ("log_volume", lambda: measurement_noise(np.zeros(5), np.zeros(4))),
        ("log_volume", lambda: measurement_noise(np.arange(5.0), np.ones(5))),
        ("diagnosis", lambda: slope_on_images(areas, [0, 1, 2] * 3, ["CN", "MCI", "??"] * 3)),
    ]


@pytest.mark.parametrize("case", range(len(_bad_calls())))
def test_bad_input_raises_value_error_naming_the_argument(case):
    name, call = _bad_calls()[case]
    with pytest.raises(ValueError, match=rf"^{name}\b"):
        call()
