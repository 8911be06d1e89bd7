"""Gene-to-image fidelity on axial slices: ventricle area, the APOE e4 effect, and a memorisation audit.

The question behind this module: does a generated slice carry the genotype's imaging effect? APOE e4
enlarges the lateral ventricles in the synthetic cohort (params.yaml, synthesize.effects.ventricles),
so we measure the lateral-ventricle area on slices (real or generated), validate the measure against
the 3D volume of the real scans, and compare the per-allele effect on log area with what the
generative model of the cohort implies. The memorisation audit checks that generated slices are not
copies of training slices, against the similarity real scans of different subjects already have.

Slice layout (src/g2i/imaging/slicing.py): N x H x W, intensities in [-1, 1], background -1, an axial
slice at MNI z = 16 mm, row 0 anterior. Regions are fractions of the image so one code serves 64 x 64
(demo) and 256 x 256 (paper).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd
import torch
from scipy import ndimage as ndi
from scipy import stats
from skimage import measure

from ..models.ssim import ssim
from ..vocabulary import DOSES

# Regions as (row_from, row_to), (col_from, col_to) fractions of the image. At z = 16 mm the lateral
# ventricles span rows ~0.28-0.72 and columns ~0.25-0.75 even in the largest (AD) brains of the cohort;
# the insula / Sylvian fissure (also dark CSF) lies at columns < 0.22, outside the ROI.
VENTRICLE_ROI = ((0.20, 0.80), (0.22, 0.78))
# Dark components must reach this central core (bodies of the lateral ventricles, the septum) to count:
# sulcal CSF and dark noise elsewhere in the ROI do not. Same rule as ventricle_mask in 3D.
VENTRICLE_CORE = ((0.35, 0.65), (0.40, 0.60))
BACKGROUND_LEVEL = -0.9        # above this is brain: background is -1, generated background ~-1 +- noise
BORDER_BAND = 0.04             # of the image side: the brain's rim (cortex, sulci) never holds ventricles
WHITE_PERCENTILE = 90          # white-matter level of the brain pixels, as in morphometry.ventricle_mask
CSF_OVER_WM = 0.35             # T1 CSF / white-matter intensity (the synthetic anatomy; morphometry's comment)
MIN_COMPONENT = 2.5e-4         # of the image area: smaller dark specks / holes are noise (1 px at 64 x 64)



# ----------------------------------------------------------------------------------------------------
# input checks


def _images(x: Any, name: str) -> np.ndarray:
    """N x H x W float array (N x 1 x H x W is squeezed); ValueError naming `name` otherwise."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    arr = np.asarray(x)
    if arr.ndim == 4 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 3:
        raise ValueError(f"{name}: expected N x H x W images, got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] < 8 or arr.shape[2] < 8:
        raise ValueError(f"{name}: empty or too small (shape {arr.shape}; need N >= 1 and H, W >= 8)")
    if not np.issubdtype(arr.dtype, np.number):
        raise ValueError(f"{name}: expected numeric intensities, got dtype {arr.dtype}")
    return arr.astype(np.float32, copy=False)


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


def _box(shape: tuple[int, int], box: tuple[tuple[float, float], tuple[float, float]]) -> np.ndarray:
    (r0, r1), (c0, c1) = box
    h, w = shape
    mask = np.zeros(shape, dtype=bool)
    mask[int(round(r0 * h)):int(round(r1 * h)), int(round(c0 * w)):int(round(c1 * w))] = True
    return mask


# ----------------------------------------------------------------------------------------------------
# 1. ventricle area


def brain_mask(image: np.ndarray) -> np.ndarray:
    """Brain pixels: above the background level, the largest component, holes filled.

    Filling matters: after the percentile normalisation the darkest CSF can itself sit at -1.
    """
    foreground = image > BACKGROUND_LEVEL
    labels = measure.label(foreground, connectivity=1)
    if labels.max() == 0:
        return foreground
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    return ndi.binary_fill_holes(labels == sizes.argmax())


def csf_threshold(image: np.ndarray, brain: np.ndarray) -> float:
    """Half-maximum CSF threshold: half-way between the expected CSF level and the local tissue level.

    Tissue = median of the brain pixels in the ventricle ROI (ventricles are a minority there, so the
    median is the white / deep grey matter around them). CSF = CSF_OVER_WM of the white-matter level
    (90th percentile of the brain): slices map raw intensity ~0 to -1 (slicing.normalise_slice), so a
    raw fraction f of white is -1 + f * (white + 1). The CSF level is predicted rather than measured
    because small or blurred ventricles never reach their plateau. A half-maximum threshold keeps the
    area of a blurred blob (nearly) unbiased: the edge of a blurred step crosses half-way at the step.
    """
    white = float(np.percentile(image[brain], WHITE_PERCENTILE))
    csf = -1.0 + CSF_OVER_WM * (white + 1.0)
    roi = brain & _box(image.shape, VENTRICLE_ROI)
    tissue = float(np.median(image[roi])) if roi.any() else white
    return csf + 0.5 * (tissue - csf)


def ventricle_mask_2d(image: np.ndarray, threshold: float | None = None) -> np.ndarray:
    """Lateral-ventricle pixels of one H x W slice in [-1, 1] (see lateral_ventricle_area)."""
    shape = image.shape
    brain = brain_mask(image)
    if not brain.any():
        return np.zeros(shape, dtype=bool)
    band = BORDER_BAND * min(shape)
    inner = ndi.distance_transform_edt(brain) > band
    thr = csf_threshold(image, brain) if threshold is None else float(threshold)
    dark = (image < thr) & inner & _box(shape, VENTRICLE_ROI)
    # Cleanup without opening: at 64 x 64 the frontal horns are 1-2 px wide and an opening erases them.
    # Instead drop specks and fill pin-holes (noise, choroid plexus) below MIN_COMPONENT of the image.
    min_px = max(1, int(round(MIN_COMPONENT * shape[0] * shape[1])))
    holes = measure.label(ndi.binary_fill_holes(dark) & ~dark, connectivity=1)
    hole_sizes = np.bincount(holes.ravel())
    dark |= (hole_sizes <= min_px)[holes] & (holes > 0)
    labels = measure.label(dark, connectivity=2)
    sizes = np.bincount(labels.ravel())
    keep = np.zeros(sizes.size, dtype=bool)
    keep[np.unique(labels[_box(shape, VENTRICLE_CORE)])] = True
    keep &= sizes > min_px
    keep[0] = False
    return keep[labels]


def lateral_ventricle_area(images: Any, threshold: float | None = None) -> np.ndarray:
    """Per image, the lateral-ventricle area as a fraction of the image area (size-independent).

    Brain = pixels above -0.9 (largest component, holes filled) minus a rim of 4 % of the image side.
    Ventricles = brain pixels in the central ROI (VENTRICLE_ROI) darker than the CSF threshold,
    pin-holes filled and specks dropped, keeping the 8-connected components that reach the central
    core (VENTRICLE_CORE), as morphometry.ventricle_mask does in 3D.

    threshold: None (default) adapts to each image: the half-maximum between the expected CSF level
    (0.35 of white matter) and the median tissue of the ROI (csf_threshold). A float is a fixed
    threshold in [-1, 1] units. Spearman with the 3D ventricle volume on the 116 demo slices
    (z = 16 mm, 64 x 64): this default 0.976; 0.55 of white (morphometry's CSF_FRACTION_OF_WM) 0.970;
    fixed -0.1: 0.961, 0.0: 0.955, -0.3: 0.907; Otsu in the brain 0.907; Otsu in the ROI 0.53 (no
    bimodality when ventricles are small). On phantoms the default is within ~10 % of the true area,
    blurred or not, where 0.55 of white under-reads blurred blobs by 20-50 %.
    Blur: ranks survive (rho 0.968 after a Gaussian blur of 1 px at 64 x 64), but thin ventricles lose
    contrast, so areas of small ventricles fall (median -19 % at 1 px) and log-area contrasts grow
    (area ~ volume^0.83 sharp, ^1.11 at 1 px): compare images of one kind, or calibrate on
    autoencoder reconstructions of real slices (validate_ventricle_measure).
    An image with no brain gives NaN; a brain with no dark core gives 0.
    """
    arr = _images(images, "images")
    areas = np.empty(arr.shape[0], dtype=np.float64)
    for i, image in enumerate(arr):
        if not np.isfinite(image).all():
            raise ValueError(f"images: image {i} holds NaN or infinite values")
        if not (image > BACKGROUND_LEVEL).any():
            areas[i] = np.nan
            continue
        areas[i] = ventricle_mask_2d(image, threshold).mean()
    return areas


# ----------------------------------------------------------------------------------------------------
# 2. validation on the real slices


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
    arr = _images(slices, "slices")
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
# 3. e4 effect on measured areas


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
# 4. what the cohort's generative model implies


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


# ----------------------------------------------------------------------------------------------------
# 5. counterfactual generations


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


# ----------------------------------------------------------------------------------------------------
# 6. memorisation audit


def _as_tensor(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32))[:, None]


def _nearest_by_ssim(queries: torch.Tensor, train: torch.Tensor, top_k: int | None,
                     batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """For each query, max SSIM over training images and its index.

    With top_k, candidates are the top_k training images by L2 distance (an exact copy has distance 0,
    so it is always a candidate); SSIM is computed for those only: batch_size x top_k pairs at a time
    instead of N x M. With top_k None, SSIM against every training image (exact, M times the cost).
    """
    m = train.shape[0]
    flat_train = train.flatten(1)
    best = np.empty(queries.shape[0], dtype=np.float64)
    where = np.empty(queries.shape[0], dtype=np.int64)
    k = m if top_k is None else min(int(top_k), m)
    for start in range(0, queries.shape[0], batch_size):
        q = queries[start:start + batch_size]
        b = q.shape[0]
        if k == m:
            candidates = torch.arange(m).expand(b, m)
        else:
            dist = torch.cdist(q.flatten(1), flat_train)
            candidates = dist.topk(k, dim=1, largest=False).indices
        # chunk the b x k pairs so that exhaustive search keeps memory at ~batch_size pairs
        pairs_q = torch.arange(b).repeat_interleave(k)
        pairs_t = candidates.reshape(-1)
        flat_scores = torch.empty(b * k)
        for p in range(0, b * k, batch_size * 8):
            sel = slice(p, p + batch_size * 8)
            flat_scores[sel] = ssim(q[pairs_q[sel]], train[pairs_t[sel]], data_range=2.0, reduction="none")
        scores = flat_scores.reshape(b, k)
        top = scores.argmax(1)
        best[start:start + b] = scores[torch.arange(b), top].double().numpy()
        where[start:start + b] = candidates[torch.arange(b), top].numpy()
    return best, where


def _summary(nn_ssim: np.ndarray, nn_index: np.ndarray, threshold: float) -> dict:
    return {
        "nn_ssim": nn_ssim,
        "nn_index": nn_index,
        "mean": float(nn_ssim.mean()),
        "median": float(np.median(nn_ssim)),
        "max": float(nn_ssim.max()),
        "fraction_above_threshold": float((nn_ssim > threshold).mean()),
        "n": int(nn_ssim.size),
    }


def memorisation_audit(generated: Any, train: Any, threshold: float = 0.95, batch_size: int = 32,
                       reference: Any = None, top_k: int | None = 8) -> dict:
    """SSIM of each generated image to its nearest training slice, and the same for held-out real slices.

    Returns nn_ssim (per image), nn_index (into `train`), mean / median / max, fraction_above_threshold
    (nn_ssim > threshold), and with `reference` (held-out real slices, not in `train`) the same under
    'reference' plus `excess_fraction_above_threshold` = generated - reference. The baseline matters:
    registered scans of different subjects already share most of their structure, so a high nn SSIM
    is evidence of copying only where it exceeds what unseen real scans reach.
    Nearest neighbours: top_k candidates by L2 distance, then SSIM (top_k None: exhaustive SSIM).
    """
    gen = _images(generated, "generated")
    tr = _images(train, "train")
    if gen.shape[1:] != tr.shape[1:]:
        raise ValueError(f"generated: image size {gen.shape[1:]} differs from train {tr.shape[1:]}")
    if not 0 < threshold <= 1:
        raise ValueError(f"threshold: expected a value in (0, 1], got {threshold}")
    if batch_size < 1:
        raise ValueError(f"batch_size: expected >= 1, got {batch_size}")
    if top_k is not None and top_k < 1:
        raise ValueError(f"top_k: expected >= 1 or None, got {top_k}")
    train_t = _as_tensor(tr)
    with torch.no_grad():
        nn_ssim, nn_index = _nearest_by_ssim(_as_tensor(gen), train_t, top_k, batch_size)
        result = _summary(nn_ssim, nn_index, threshold)
        result.update(threshold=float(threshold), n_train=int(tr.shape[0]), top_k=top_k)
        if reference is not None:
            ref = _images(reference, "reference")
            if ref.shape[1:] != tr.shape[1:]:
                raise ValueError(f"reference: image size {ref.shape[1:]} differs from train {tr.shape[1:]}")
            ref_ssim, ref_index = _nearest_by_ssim(_as_tensor(ref), train_t, top_k, batch_size)
            result["reference"] = _summary(ref_ssim, ref_index, threshold)
            result["excess_fraction_above_threshold"] = (
                result["fraction_above_threshold"] - result["reference"]["fraction_above_threshold"])
    return result


__all__ = [
    "lateral_ventricle_area", "validate_ventricle_measure", "apoe_effect_on_area", "ground_truth_apoe_effect",
    "counterfactual_effect", "memorisation_audit", "ventricle_mask_2d", "brain_mask",
]
