"""Gene-to-image fidelity on axial slices: the APOE e4 effect on the lateral-ventricle area.

The question behind this module: does a generated slice carry the genotype's imaging effect? APOE e4
enlarges the lateral ventricles in the synthetic cohort (params.yaml, synthesize.effects.ventricles),
so we measure the lateral-ventricle area on slices (real or generated; the measure itself is
g2i.imaging.slice_morphometry), validate the measure against the 3D volume of the real scans, and
compare the per-allele effect on log area with what the generative model of the cohort implies. The
memorisation audit (is a generated slice a copy of a training slice?) is g2i.evaluation.memorisation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd
from scipy import stats

from ..imaging.slice_morphometry import as_images, lateral_ventricle_area
from ..vocabulary import DOSES


# ----------------------------------------------------------------------------------------------------
# input checks


def _vector(x: Any, name: str, n: int | None = None) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64) if not isinstance(x, pd.Series) else x.to_numpy(np.float64)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name}: expected a non-empty 1-D array, got shape {arr.shape}")
    if n is not None and arr.size != n:
        raise ValueError(f"{name}: length {arr.size} does not match areas ({n})")
    return arr


def _frame(x: Any, name: str) -> pd.DataFrame:
    if isinstance(x, (str, Path)):
        x = pd.read_csv(x)
    if not isinstance(x, pd.DataFrame) or x.empty:
        raise ValueError(f"{name}: expected a non-empty DataFrame or CSV path")
    return x


# ----------------------------------------------------------------------------------------------------
# 1. validation on the real slices


def _ols(y: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """OLS coefficients, their standard errors and the residual degrees of freedom."""
    n, p = x.shape
    if n <= p:
        raise ValueError(f"need more observations ({n}) than model terms ({p})")
    if np.linalg.matrix_rank(x) < p:
        raise ValueError("design matrix is rank-deficient (a predictor has no variation)")
    beta, *_ = np.linalg.lstsq(x, y, rcond=None)
    resid = y - x @ beta
    dof = n - p
    sigma2 = float(resid @ resid) / dof
    se = np.sqrt(np.clip(np.diag(np.linalg.inv(x.T @ x)) * sigma2, 0.0, None))
    return beta, se, dof


def _slope(y: np.ndarray, x: np.ndarray) -> dict:
    """Slope of y on x with intercept: estimate, SE and 95 % CI."""
    beta, se, dof = _ols(y, np.column_stack([np.ones_like(x), x]))
    half = stats.t.ppf(0.975, dof) * se[1]
    return {"estimate": float(beta[1]), "se": float(se[1]), "ci95": (float(beta[1] - half), float(beta[1] + half))}


def _join(slices: Any, index: Any, ground_truth: Any, z_mm: float | None) -> tuple[np.ndarray, pd.DataFrame]:
    """Slices and the ground-truth rows of their subjects, in one order."""
    arr = as_images(slices, "slices")
    index = _frame(index, "index")
    truth = _frame(ground_truth, "ground_truth")
    for col in ("row", "PTID"):
        if col not in index.columns:
            raise ValueError(f"index: missing column '{col}'")
    for col in ("PTID", "ventricle_volume_ml_image"):
        if col not in truth.columns:
            raise ValueError(f"ground_truth: missing column '{col}'")
    if z_mm is not None and "z_mm" in index.columns:
        index = index[np.isclose(index["z_mm"], z_mm)]
    if index["PTID"].duplicated().any():
        raise ValueError("index: several slices per subject; pass z_mm to pick the plane through the ventricles")
    if (index["row"] < 0).any() or (index["row"] >= arr.shape[0]).any():
        raise ValueError(f"index: 'row' values outside the {arr.shape[0]} slices")
    joined = index.merge(truth.drop(columns=[c for c in ("row",) if c in truth.columns]), on="PTID", how="inner")
    joined = joined[np.isfinite(joined["ventricle_volume_ml_image"])]
    if len(joined) < 3:
        raise ValueError(f"ground_truth: only {len(joined)} subjects match the index (need >= 3)")
    return arr[joined["row"].to_numpy()], joined.reset_index(drop=True)


def validate_ventricle_measure(slices: Any, index: Any, ground_truth: Any, z_mm: float | None = None,
                               threshold: float | None = None) -> dict:
    """The slice measure against the 3D ventricle volume of the same subjects.

    Returns spearman_rho (and p), n, pearson_log_r, and the empirical area exponent: the slope of
    log area on log ventricle_volume_ml_image (and on log ventricle_scale_target, the generative
    multiplier, when that column is there). With APOE4 and a diagnosis column it also returns the e4
    effect measured on these slices (apoe_effect_on_area), the reference a generator should reproduce.
    Pass autoencoder reconstructions as `slices` to calibrate the measure on blurrier images.
    """
    arr, joined = _join(slices, index, ground_truth, z_mm)
    areas = lateral_ventricle_area(arr, threshold)
    volume = joined["ventricle_volume_ml_image"].to_numpy(np.float64)
    ok = np.isfinite(areas) & (areas > 0) & (volume > 0)
    rho = stats.spearmanr(areas[ok], volume[ok])
    result: dict[str, Any] = {
        "n": int(ok.sum()),
        "n_unmeasurable": int((~ok).sum()),
        "spearman_rho": float(rho.statistic),
        "spearman_p": float(rho.pvalue),
        "pearson_log_r": float(np.corrcoef(np.log(areas[ok]), np.log(volume[ok]))[0, 1]),
        "area_mean": float(np.mean(areas[ok])),
    }
    exponent = _slope(np.log(areas[ok]), np.log(volume[ok]))
    result.update(area_exponent=exponent["estimate"], area_exponent_se=exponent["se"],
                  area_exponent_ci95=exponent["ci95"])
    if "ventricle_scale_target" in joined.columns:
        target = joined["ventricle_scale_target"].to_numpy(np.float64)
        by_target = _slope(np.log(areas[ok]), np.log(target[ok]))
        result.update(area_exponent_vs_scale_target=by_target["estimate"],
                      area_exponent_vs_scale_target_se=by_target["se"])
    dx_col = "DX" if "DX" in joined.columns else "diagnosis" if "diagnosis" in joined.columns else None
    if "APOE4" in joined.columns and dx_col is not None:
        e4 = joined["APOE4"].to_numpy(np.float64)
        if np.unique(e4[ok & np.isfinite(e4)]).size > 1:
            result["apoe_effect"] = apoe_effect_on_area(areas[ok], e4[ok], joined[dx_col].to_numpy()[ok])
    return result


# ----------------------------------------------------------------------------------------------------
# 2. e4 effect on measured areas


def apoe_effect_on_area(areas: Any, apoe4: Any, diagnosis: Any) -> dict:
    """Per-allele effect of e4 dose on log area, adjusted for diagnosis (OLS with diagnosis dummies).

    log(area) = a + b * dose + sum_k c_k [diagnosis == k]; returns b (`effect`, log per allele), its
    SE, 95 % t-interval and p, `ratio_per_allele` = exp(b), and `dose_means` / `dose_counts` (mean area
    per dose 0/1/2; NaN where a dose is absent). Rows with a missing dose or a non-positive / NaN area
    (nothing measurable) are dropped and counted in `n_dropped`.
    """
    a = _vector(areas, "areas")
    dose = _vector(apoe4, "apoe4", a.size)
    dx = np.asarray(diagnosis, dtype=object)
    if dx.ndim != 1 or dx.size != a.size:
        raise ValueError(f"diagnosis: expected {a.size} labels, got shape {dx.shape}")
    ok = np.isfinite(a) & (a > 0) & np.isfinite(dose) & pd.notna(dx)
    if not ok.any():
        raise ValueError("areas: no positive, finite area with a known dose and diagnosis")
    a, dose, dx = a[ok], dose[ok], dx[ok]
    if np.unique(dose).size < 2:
        raise ValueError("apoe4: needs at least two distinct doses to estimate an effect")
    levels = sorted({str(v) for v in dx})
    dummies = [(dx.astype(str) == lev).astype(np.float64) for lev in levels[1:]]
    x = np.column_stack([np.ones_like(a), dose, *dummies])
    beta, se, dof = _ols(np.log(a), x)
    half = stats.t.ppf(0.975, dof) * se[1]
    with np.errstate(divide="ignore", invalid="ignore"):
        p = float(2 * stats.t.sf(abs(beta[1] / se[1]), dof)) if se[1] > 0 else (0.0 if beta[1] != 0 else 1.0)
    return {
        "effect": float(beta[1]),
        "se": float(se[1]),
        "ci95": (float(beta[1] - half), float(beta[1] + half)),
        "p_value": p,
        "ratio_per_allele": float(np.exp(beta[1])),
        "n": int(a.size),
        "n_dropped": int((~ok).sum()),
        "dof": int(dof),
        "diagnosis_levels": levels,
        "dose_means": {d: float(a[dose == d].mean()) if (dose == d).any() else float("nan") for d in DOSES},
        "dose_counts": {d: int((dose == d).sum()) for d in DOSES},
    }


# ----------------------------------------------------------------------------------------------------
# 3. what the cohort's generative model implies


def _ventricle_effects(params_effects: Mapping[str, Any]) -> Mapping[str, Any]:
    """Accept synthesize.effects.ventricles, synthesize.effects, synthesize or the whole params."""
    node: Any = params_effects
    for key in ("synthesize", "effects", "ventricles"):
        if isinstance(node, Mapping) and key in node:
            node = node[key]
    if not isinstance(node, Mapping) or "e4_log_per_allele" not in node:
        raise ValueError("params_effects: no ventricles.e4_log_per_allele (pass params['synthesize']['effects'])")
    return node


def ground_truth_apoe_effect(params_effects: Mapping[str, Any], area_exponent: float = 2.0 / 3.0, *,
                             slices: Any = None, index: Any = None, ground_truth: Any = None,
                             z_mm: float | None = None) -> dict:
    """Effect per e4 allele on log slice area implied by the cohort's generative model.

    The model multiplies ventricle volume by exp(e4_log_per_allele * dose). If the ventricles scaled
    isotropically by s, volume ~ s^3 and any cross-section ~ s^2, so area ~ volume^(2/3): the implied
    effect on log area is e4_log_per_allele * 2/3 (`log_area_per_allele`). Real enlargement is not
    isotropic (ventricles widen more than they lengthen) and a thresholded 64 x 64 slice under-counts
    thin ventricles, so with slices / index / ground_truth the exponent is also estimated empirically
    (slope of log area on log 3D volume, and on log ventricle_scale_target, the multiplier the effect
    acts on) and the implied effects under those exponents are returned too.
    """
    v = _ventricle_effects(params_effects)
    e4 = float(v["e4_log_per_allele"])
    if not np.isfinite(area_exponent) or area_exponent <= 0:
        raise ValueError(f"area_exponent: expected a positive number, got {area_exponent}")
    result: dict[str, Any] = {
        "e4_log_per_allele": e4,
        "area_exponent": float(area_exponent),
        "log_area_per_allele": e4 * float(area_exponent),
        "ratio_per_allele": float(np.exp(e4 * area_exponent)),
    }
    given = [x is not None for x in (slices, index, ground_truth)]
    if any(given) and not all(given):
        raise ValueError("slices, index, ground_truth: pass all three to estimate the empirical exponent")
    if all(given):
        check = validate_ventricle_measure(slices, index, ground_truth, z_mm=z_mm)
        result.update(empirical_area_exponent=check["area_exponent"],
                      empirical_area_exponent_se=check["area_exponent_se"],
                      log_area_per_allele_empirical=e4 * check["area_exponent"],
                      n_empirical=check["n"])
        if "area_exponent_vs_scale_target" in check:
            result.update(empirical_area_exponent_vs_scale_target=check["area_exponent_vs_scale_target"],
                          log_area_per_allele_empirical_vs_scale_target=e4 * check["area_exponent_vs_scale_target"])
    return result


PLANTED_FROM_SLICES = "area exponent measured on the cohort's slices against ventricle_scale_target"
PLANTED_FROM_ASSUMED = "assumed area exponent"


def planted_truth(implied: Mapping[str, Any]) -> tuple[dict, str]:
    """The planted e4 effect on log slice area that the dose sweeps are judged against, and its source.

    `implied` is ground_truth_apoe_effect's result. Its `area_exponent` / `log_area_per_allele` use the
    assumed exponent (2/3 by default, isotropic scaling). When it also holds the exponent measured on
    this cohort's slices against the generative multiplier (`empirical_area_exponent_vs_scale_target`,
    present when the ground truth has ventricle_scale_target), that measured conversion is chosen: it is
    what the multiplier the e4 effect acts on does to the slice area. Returns a new dict (`implied` is
    left as it was) equal to `implied` except `area_exponent` and `log_area_per_allele`, which hold the
    chosen values, and the source: PLANTED_FROM_SLICES or PLANTED_FROM_ASSUMED. `ratio_per_allele` is
    passed through unchanged (it stays the assumed exponent's ratio, as evaluate has always reported it).
    """
    chosen = dict(implied)
    if "empirical_area_exponent_vs_scale_target" not in implied:
        return chosen, PLANTED_FROM_ASSUMED
    chosen["area_exponent"] = implied["empirical_area_exponent_vs_scale_target"]
    chosen["log_area_per_allele"] = implied["log_area_per_allele_empirical_vs_scale_target"]
    return chosen, PLANTED_FROM_SLICES


# ----------------------------------------------------------------------------------------------------
# 4. counterfactual generations


def counterfactual_effect(areas_by_dose: Mapping[int, Any]) -> dict:
    """Paired e4 effect from generations with the same noise and label but dose set to 0 / 1 / 2.

    Per sample, the least-squares slope of log area on dose (with doses 0, 1, 2 that is
    (log a2 - log a0) / 2); returns their mean (`effect`, log per allele), SE and 95 % t-interval,
    `ratio_per_allele`, `fraction_monotone` (area strictly increases with dose), and
    `relative_change_0_to_2` = exp(mean log(a2 / a0)) - 1. Samples with a non-positive or NaN area
    at any dose are dropped (`n_dropped`).
    """
    if not isinstance(areas_by_dose, Mapping) or len(areas_by_dose) < 2:
        raise ValueError("areas_by_dose: expected a dict {dose: areas} with at least two doses")
    doses = sorted(int(d) for d in areas_by_dose)
    if any(d not in DOSES for d in doses):
        raise ValueError(f"areas_by_dose: doses must be among {DOSES}, got {doses}")
    first = _vector(areas_by_dose[doses[0]], f"areas_by_dose[{doses[0]}]")
    table = np.stack([first] + [_vector(areas_by_dose[d], f"areas_by_dose[{d}]", first.size) for d in doses[1:]])
    ok = np.isfinite(table).all(0) & (table > 0).all(0)
    if ok.sum() < 1:
        raise ValueError("areas_by_dose: no sample with a positive, finite area at every dose")
    logs = np.log(table[:, ok])
    x = np.asarray(doses, dtype=np.float64) - np.mean(doses)
    slopes = (x @ (logs - logs.mean(0))) / (x @ x)
    n = slopes.size
    mean = float(slopes.mean())
    se = float(slopes.std(ddof=1) / np.sqrt(n)) if n > 1 else float("nan")
    half = float(stats.t.ppf(0.975, n - 1) * se) if n > 1 else float("nan")
    result: dict[str, Any] = {
        "effect": mean,
        "se": se,
        "ci95": (mean - half, mean + half),
        "ratio_per_allele": float(np.exp(mean)),
        "fraction_monotone": float(np.all(np.diff(logs, axis=0) > 0, axis=0).mean()),
        "n": int(n),
        "n_dropped": int((~ok).sum()),
        "doses": doses,
        "mean_area_by_dose": {d: float(table[k, ok].mean()) for k, d in enumerate(doses)},
    }
    if 0 in doses and 2 in doses:
        result["relative_change_0_to_2"] = float(np.exp(np.mean(logs[doses.index(2)] - logs[doses.index(0)])) - 1)
    return result


__all__ = [
    "validate_ventricle_measure", "apoe_effect_on_area", "ground_truth_apoe_effect", "planted_truth",
    "counterfactual_effect",
]
