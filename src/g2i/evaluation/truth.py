"""Generated slices against the planted truth of the synthetic cohort.

The synthetic cohort plants a known model for the lateral-ventricle volume (g2i.synthetic.cohort,
params.yaml synthesize.effects.ventricles):

    log V = log(scale_cn) + log_shift[DX] + e4_log_per_allele * APOE4 + prs_log_per_sd * prs_z
            + age_log_per_year * (AGE - REFERENCE_AGE) + log_sd * N(0, 1)

so for generated images we can ask how much of that model they reproduce. Each measure answers one
question:

* Identifiability ceiling (slope_on_images, slope_ratio): the within-diagnosis e4 slope of log
  ventricle area measured on REAL slices is the most any generator trained on those slices can be
  expected to show; a generated slope is judged as a ratio to it (Fieller interval), not against
  the planted 3D effect, which the slice measure only partly sees.
* Label effect (label_effects, label_effect_ratio): do generated AD / MCI slices differ from CN
  slices by as much as real ones do? Mean log-area differences with Welch intervals, and the
  generated / real ratio with a Fieller interval and a within-25 % verdict; label_effect_error folds
  both contrasts into one error for images (sample's choice of the guidance scale).
* Conditional-mean fidelity (expected_log_volume, conditional_mean_r) with its ceiling
  (conditional_r_ceiling, measurement_noise): does the mean of a subject's generated areas track
  what the planted model expects for that subject's genotype and diagnosis? Pearson r against the
  planted E[log V | genotype, diagnosis], and the r a perfect generator would reach with the same
  subjects and the same number of images, given the residual anatomy the conditioning cannot
  explain and the noise of the area measure itself (calibrated on real slices by measurement_noise).

All functions are numpy / scipy only (label_effect_error measures its images with
g2i.imaging.slice_morphometry, which adds scikit-image); results are plain dicts of floats, ints and tuples (JSON-ready
except for the arrays documented as such). Bad input raises ValueError naming the argument.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from ..imaging import slice_morphometry
from ..synthetic.cohort import AGE_BY_DX, REFERENCE_AGE
from ..vocabulary import DIAGNOSES
from .fidelity import _frame, _ols, _vector, _ventricle_effects, apoe_effect_on_area

CONTRASTS = ("AD-CN", "MCI-CN")
# The cohort draws AGE ~ N(AGE_BY_DX[dx]) and CLIPS it to this range (draw_cohort), so the
# distribution has point masses at the ends: E[AGE | DX] below is the clipped-normal mean, not the
# truncated-normal one (they differ by < 0.01 year for the configured means and SDs anyway).
AGE_RANGE = (55.0, 91.0)
Z95 = float(stats.norm.ppf(0.975))
VENTRICLE_KEYS = ("scale_cn", "log_shift", "e4_log_per_allele", "prs_log_per_sd", "age_log_per_year", "log_sd")


# ----------------------------------------------------------------------------------------------------
# input checks


def _diagnosis(x: Any, name: str, n: int) -> np.ndarray:
    """Labels 'CN' / 'MCI' / 'AD' or 0 / 1 / 2 -> object array of those strings, None where missing."""
    raw = x.to_numpy(dtype=object) if isinstance(x, pd.Series) else np.asarray(x, dtype=object)
    if raw.ndim != 1 or raw.size != n:
        raise ValueError(f"{name}: expected {n} labels, got shape {raw.shape}")
    out = np.empty(n, dtype=object)
    for i, v in enumerate(raw):
        if v is None or (isinstance(v, (float, np.floating)) and np.isnan(v)):
            out[i] = None
        elif isinstance(v, str) and v in DIAGNOSES:
            out[i] = v
        elif isinstance(v, (int, np.integer, float, np.floating)) and not isinstance(v, bool) \
                and float(v) in (0.0, 1.0, 2.0):
            out[i] = DIAGNOSES[int(v)]
        else:
            raise ValueError(f"{name}: label {v!r} at position {i} is not one of {DIAGNOSES} or 0 / 1 / 2")
    return out


def _effect(x: Any, name: str) -> tuple[float, float]:
    """(effect, se) from a dict shaped like apoe_effect_on_area / label_effects entries."""
    if not isinstance(x, Mapping) or "effect" not in x or "se" not in x:
        raise ValueError(f"{name}: expected a dict with 'effect' and 'se'")
    try:
        effect, se = float(x["effect"]), float(x["se"])
    except (TypeError, ValueError):
        raise ValueError(f"{name}: 'effect' and 'se' must be numbers") from None
    if not np.isfinite(effect) or not np.isfinite(se) or se < 0:
        raise ValueError(f"{name}: needs a finite effect and a finite, non-negative se (got {effect}, {se})")
    return effect, se


def _effects(ventricle_effects: Any) -> Mapping[str, Any]:
    try:
        v = _ventricle_effects(ventricle_effects)
    except ValueError:
        raise ValueError("ventricle_effects: no ventricles.e4_log_per_allele "
                         "(pass params['synthesize']['effects'] or its 'ventricles' entry)") from None
    missing = [k for k in VENTRICLE_KEYS if k not in v]
    if missing:
        raise ValueError(f"ventricle_effects: missing {missing}")
    if float(v["scale_cn"]) <= 0:
        raise ValueError(f"ventricle_effects: scale_cn must be positive, got {v['scale_cn']}")
    if not all(d in v["log_shift"] for d in DIAGNOSES):
        raise ValueError(f"ventricle_effects: log_shift needs entries for {DIAGNOSES}")
    return v


def _truth(truth_rows: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """DX labels, e4 dose and prs_z of the ground-truth rows, checked."""
    df = _frame(truth_rows, "truth_rows")
    for col in ("DX", "APOE4", "prs_z"):
        if col not in df.columns:
            raise ValueError(f"truth_rows: missing column '{col}'")
    dx = _diagnosis(df["DX"], "truth_rows", len(df))
    if any(d is None for d in dx):
        raise ValueError("truth_rows: DX is missing for some rows")
    e4 = df["APOE4"].to_numpy(np.float64)
    prs = df["prs_z"].to_numpy(np.float64)
    if not (np.isfinite(e4).all() and np.isfinite(prs).all()):
        raise ValueError("truth_rows: APOE4 and prs_z must be finite for every row")
    return dx, e4, prs


def _ci95_t(estimate: float, se: float, dof: float) -> tuple[float, float]:
    half = float(stats.t.ppf(0.975, dof) * se) if se > 0 else 0.0
    return (estimate - half, estimate + half)


# ----------------------------------------------------------------------------------------------------
# label effect


def label_effects(areas: Any, diagnosis: Any) -> dict:
    """Mean log-area differences AD - CN and MCI - CN, each with SE and a 95 % Welch t-interval.

    Log scale because the planted model is multiplicative (log_shift[DX] is a log difference, and the
    area measure scales as a power of the volume). Welch rather than pooled: generated classes can
    have very different spreads (a collapsed class has almost none). Areas that are NaN or <= 0 (no
    brain / no ventricle found) have no log and are dropped, as are rows with no diagnosis
    (`n_dropped`). Each group needs >= 2 measurable areas.

    Returns {"AD-CN": {effect, se, ci95, dof, n}, "MCI-CN": {...}, mean_log_area: {dx: float},
    n_by_dx: {dx: int}, n, n_dropped}; `n` of a contrast is the size of its two groups together.
    """
    a = _vector(areas, "areas")
    dx = _diagnosis(diagnosis, "diagnosis", a.size)
    ok = np.isfinite(a) & (a > 0) & np.array([d is not None for d in dx])
    logs = np.log(a[ok])
    dx = dx[ok]
    groups = {d: logs[dx == d] for d in DIAGNOSES}
    for d, g in groups.items():
        if g.size < 2:
            raise ValueError(f"diagnosis: {d} has {g.size} measurable areas (need >= 2 per class)")
    result: dict[str, Any] = {}
    cn = groups["CN"]
    for contrast in CONTRASTS:
        g = groups[contrast.split("-")[0]]
        va, vc = g.var(ddof=1) / g.size, cn.var(ddof=1) / cn.size
        se = float(np.sqrt(va + vc))
        # Welch-Satterthwaite degrees of freedom; both variances 0 -> an exact difference
        dof = float((va + vc) ** 2 / (va**2 / (g.size - 1) + vc**2 / (cn.size - 1))) if se > 0 else float("inf")
        effect = float(g.mean() - cn.mean())
        result[contrast] = {"effect": effect, "se": se, "ci95": _ci95_t(effect, se, dof), "dof": dof,
                            "n": int(g.size + cn.size)}
    result["mean_log_area"] = {d: float(g.mean()) for d, g in groups.items()}
    result["n_by_dx"] = {d: int(g.size) for d, g in groups.items()}
    result["n"] = int(ok.sum())
    result["n_dropped"] = int((~ok).sum())
    return result


# ----------------------------------------------------------------------------------------------------
# ratios with Fieller intervals


def _fieller(a: float, sa: float, b: float, sb: float, q: float = Z95) -> dict:
    """Ratio a / b of independent estimates with Fieller's 95 % interval.

    The interval is {rho : (a - rho b)^2 <= q^2 (sa^2 + rho^2 sb^2)}, a quadratic in rho. It is a
    finite interval only when the denominator is significantly non-zero (|b| / sb > q); otherwise
    the set is unbounded (two rays, or the whole line) and the bounds are None with bounded False.
    q is the normal quantile 1.96: the estimates come from tens to hundreds of images, and a t
    quantile would need a dof for the ratio that independent Welch / OLS estimates do not share.
    """
    ratio = a / b if b != 0 else None
    va, vb = sa * sa, sb * sb
    denom = b * b - q * q * vb
    if denom <= 0:
        return {"ratio": ratio, "ci95": (None, None), "bounded": False}
    # a^2 vb + b^2 va - q^2 va vb = a^2 vb + va * denom >= 0 when bounded
    half = q * np.sqrt(a * a * vb + va * denom)
    lo, hi = (a * b - half) / denom, (a * b + half) / denom
    return {"ratio": ratio, "ci95": (float(lo), float(hi)), "bounded": True}


def slope_ratio(numerator: Mapping[str, Any], denominator: Mapping[str, Any]) -> dict:
    """numerator["effect"] / denominator["effect"] with a Fieller 95 % interval (independent estimates).

    For slope results shaped like fidelity.apoe_effect_on_area or counterfactual_effect ("effect",
    "se"), e.g. the e4 slope on generated slices over the slope on real slices (the identifiability
    ceiling). Returns {ratio, ci95, bounded}: ci95 = (None, None) and bounded False when the
    denominator's own interval includes 0 (the ratio can then be anything); ratio None if the
    denominator is exactly 0.
    """
    a, sa = _effect(numerator, "numerator")
    b, sb = _effect(denominator, "denominator")
    return _fieller(a, sa, b, sb)


def label_effect_ratio(generated: Mapping[str, Any], real: Mapping[str, Any]) -> dict:
    """Generated / real label effect for AD-CN and MCI-CN, with Fieller 95 % intervals.

    generated, real: label_effects results (or any dict with "AD-CN" and "MCI-CN" entries holding
    "effect" and "se"). Per contrast returns {ratio, ci95, bounded, within_25pct}; within_25pct is
    |ratio - 1| <= 0.25 on the point estimate (False when the ratio is undefined). See slope_ratio
    for unbounded intervals.
    """
    for name, x in (("generated", generated), ("real", real)):
        if not isinstance(x, Mapping) or any(c not in x for c in CONTRASTS):
            raise ValueError(f"{name}: expected a label_effects result with {CONTRASTS} entries")
    result: dict[str, Any] = {}
    for contrast in CONTRASTS:
        a, sa = _effect(generated[contrast], f"generated[{contrast!r}]")
        b, sb = _effect(real[contrast], f"real[{contrast!r}]")
        r = _fieller(a, sa, b, sb)
        r["within_25pct"] = bool(r["ratio"] is not None and abs(r["ratio"] - 1.0) <= 0.25)
        result[contrast] = r
    return result


def label_effect_error(real_areas: np.ndarray, real_labels: np.ndarray) -> Callable[[np.ndarray, np.ndarray], float]:
    """images, labels -> mean |generated / real - 1| of the AD-CN and MCI-CN log-area differences, against
    the real slices given (the training slices: what the model learned from); inf when not measurable."""
    real = label_effects(real_areas, real_labels)

    def error(images: np.ndarray, labels: np.ndarray) -> float:
        try:
            generated = label_effects(slice_morphometry.lateral_ventricle_area(images), labels)
        except ValueError:
            return float("inf")
        return float(np.mean([abs(generated[c]["effect"] / real[c]["effect"] - 1.0) for c in CONTRASTS]))

    return error


# ----------------------------------------------------------------------------------------------------
# conditional-mean fidelity


def expected_age(dx: str) -> float:
    """E[AGE | DX] of the cohort: the mean of N(AGE_BY_DX[dx]) clipped to AGE_RANGE.

    E[clip(X, lo, hi)] = lo P(X < lo) + hi P(X > hi) + E[X; lo <= X <= hi]. Rounding to 0.1 year
    (draw_cohort) is ignored: it shifts the mean by far less than a day.
    """
    if dx not in AGE_BY_DX:
        raise ValueError(f"dx: expected one of {tuple(AGE_BY_DX)}, got {dx!r}")
    mu, sd = AGE_BY_DX[dx]
    lo, hi = (AGE_RANGE[0] - mu) / sd, (AGE_RANGE[1] - mu) / sd
    inside = mu * (stats.norm.cdf(hi) - stats.norm.cdf(lo)) + sd * (stats.norm.pdf(lo) - stats.norm.pdf(hi))
    return float(AGE_RANGE[0] * stats.norm.cdf(lo) + AGE_RANGE[1] * stats.norm.sf(hi) + inside)


def _mean_log_volume(dx: np.ndarray, e4: np.ndarray, prs: np.ndarray, v: Mapping[str, Any]) -> np.ndarray:
    shift = np.array([float(v["log_shift"][d]) for d in dx])
    return (np.log(float(v["scale_cn"])) + shift + float(v["e4_log_per_allele"]) * e4
            + float(v["prs_log_per_sd"]) * prs)


def expected_log_volume(truth_rows: Any, ventricle_effects: Mapping[str, Any]) -> np.ndarray:
    """Planted E[log ventricle volume multiplier | genotype, diagnosis], one value per row.

    A generator is given the genotype (APOE4, the polygenic score) and the diagnosis, not the age
    nor the subject's residual anatomy, so both are marginalised: age enters at E[AGE | DX]
    (expected_age) and the N(0, log_sd) residual at its mean 0:
        log(scale_cn) + log_shift[DX] + e4_log_per_allele * APOE4 + prs_log_per_sd * prs_z
        + age_log_per_year * (E[AGE | DX] - REFERENCE_AGE)
    On the scale of log ventricle_scale_target (add log of the template volume for mL).

    truth_rows: DataFrame (or CSV path) with DX, APOE4, prs_z (ground_truth.csv rows).
    ventricle_effects: synthesize.effects.ventricles, or synthesize.effects / synthesize / params.
    Returns a float array aligned with truth_rows.
    """
    v = _effects(ventricle_effects)
    dx, e4, prs = _truth(truth_rows)
    age = np.array([expected_age(d) for d in dx]) - REFERENCE_AGE
    return _mean_log_volume(dx, e4, prs, v) + float(v["age_log_per_year"]) * age


def _fisher_ci(r: float, n: int) -> tuple[float, float]:
    half = Z95 / np.sqrt(n - 3)
    with np.errstate(divide="ignore"):
        z = np.arctanh(np.clip(r, -1.0, 1.0))
    return (float(np.tanh(z - half)), float(np.tanh(z + half)))


def conditional_mean_r(log_areas_per_subject: Sequence[Any], expected: Any) -> dict:
    """Pearson r between each subject's mean generated log area and its planted expectation.

    As in Pinaya et al.'s conditioning check: a generator conditioned on a subject's genotype and
    diagnosis should produce images whose average tracks E[log V | genotype, diagnosis]. Per subject
    the mean of its generated log areas, ignoring non-finite entries (log of a 0 / NaN area);
    subjects left with none are dropped (`n_dropped`). Averaging k images removes sampling noise
    but not the anatomy the conditioning cannot explain, so compare r with conditional_r_ceiling
    (same subjects, same k), not with 1.

    log_areas_per_subject: one 1-D array per subject (ragged allowed; an n x k array works too).
    expected: expected_log_volume of the same subjects, same order.
    Returns {r, ci95 (Fisher z), n, k (mean images per kept subject), n_dropped}.
    """
    if isinstance(log_areas_per_subject, (str, bytes)) or not hasattr(log_areas_per_subject, "__len__"):
        raise ValueError("log_areas_per_subject: expected a sequence of per-subject arrays")
    exp = _vector(expected, "expected")
    if len(log_areas_per_subject) != exp.size:
        raise ValueError(f"log_areas_per_subject: {len(log_areas_per_subject)} subjects but expected has {exp.size}")
    if not np.isfinite(exp).all():
        raise ValueError("expected: holds NaN or infinite values")
    means = np.full(exp.size, np.nan)
    counts = np.zeros(exp.size, dtype=int)
    for i, x in enumerate(log_areas_per_subject):
        arr = np.atleast_1d(np.asarray(x, dtype=np.float64))
        if arr.ndim != 1:
            raise ValueError(f"log_areas_per_subject: subject {i} is not a 1-D array (shape {arr.shape})")
        finite = arr[np.isfinite(arr)]
        counts[i] = finite.size
        if finite.size:
            means[i] = finite.mean()
    ok = counts > 0
    n = int(ok.sum())
    if n < 4:
        raise ValueError(f"log_areas_per_subject: {n} subjects with a finite log area (need >= 4 for a CI)")
    if np.ptp(means[ok]) == 0:
        raise ValueError("log_areas_per_subject: subject means have no variation (r undefined)")
    if np.ptp(exp[ok]) == 0:
        raise ValueError("expected: no variation across the kept subjects (r undefined)")
    r = float(np.corrcoef(means[ok], exp[ok])[0, 1])
    return {"r": r, "ci95": _fisher_ci(r, n), "n": n, "k": float(counts[ok].mean()), "n_dropped": int((~ok).sum())}


def conditional_r_ceiling(truth_rows: Any, ventricle_effects: Mapping[str, Any], k: Any, area_exponent: float,
                          measurement_sd: float, n_sim: int = 200, seed: int = 0) -> dict:
    """The conditional_mean_r a PERFECT generator would reach with the same subjects and k.

    A perfect generator samples the planted model given (DX, APOE4, prs_z): per image, age as the
    cohort draws it (N(AGE_BY_DX[DX]) clipped to AGE_RANGE, rounded to 0.1) and the residual
    log_sd * N(0, 1), so log V varies around its expectation even with ideal conditioning. The area
    measure adds its own noise: log area = area_exponent * log V + N(0, measurement_sd) (constants
    do not change r). Averaging k such log areas per subject and correlating with
    expected_log_volume gives one r; repeated n_sim times.

    k: images per subject, an int or one count per subject (0 = subject not used, e.g. the counts
    of finite log areas fed to conditional_mean_r). area_exponent, measurement_sd: from
    measurement_noise on real slices. Returns {r (mean over simulations), ci95 (2.5 / 97.5
    percentiles), n_sim, n, k (mean over used subjects)}. Deterministic for a seed.
    """
    v = _effects(ventricle_effects)
    dx, e4, prs = _truth(truth_rows)
    n_rows = dx.size
    k_arr = np.asarray(k)
    if k_arr.ndim == 0:
        k_arr = np.full(n_rows, k_arr.item())
    if k_arr.ndim != 1 or k_arr.size != n_rows:
        raise ValueError(f"k: expected an int or {n_rows} per-subject counts, got shape {k_arr.shape}")
    if not np.issubdtype(k_arr.dtype, np.number) or not np.all(np.isfinite(k_arr)) \
            or np.any(k_arr != np.round(k_arr)) or np.any(k_arr < 0):
        raise ValueError("k: counts must be non-negative integers")
    k_arr = k_arr.astype(int)
    used = k_arr > 0
    if used.sum() < 4:
        raise ValueError(f"k: only {int(used.sum())} subjects with k >= 1 (need >= 4)")
    if not np.isfinite(area_exponent) or area_exponent <= 0:
        raise ValueError(f"area_exponent: expected a positive number, got {area_exponent}")
    if not np.isfinite(measurement_sd) or measurement_sd < 0:
        raise ValueError(f"measurement_sd: expected a finite number >= 0, got {measurement_sd}")
    if int(n_sim) != n_sim or n_sim < 1:
        raise ValueError(f"n_sim: expected an integer >= 1, got {n_sim}")

    dx, e4, prs, k_arr = dx[used], e4[used], prs[used], k_arr[used]
    expected = expected_log_volume(pd.DataFrame({"DX": dx, "APOE4": e4, "prs_z": prs}), v)
    if np.ptp(expected) == 0:
        raise ValueError("truth_rows: the expected log volume does not vary across the subjects (r undefined)")
    base = _mean_log_volume(dx, e4, prs, v)
    mu = np.array([AGE_BY_DX[d][0] for d in dx])[:, None]
    sd = np.array([AGE_BY_DX[d][1] for d in dx])[:, None]
    kmax = int(k_arr.max())
    # ragged k: draw n x kmax and average the first k_i of each row
    mask = np.arange(kmax)[None, :] < k_arr[:, None]
    age_b, log_sd = float(v["age_log_per_year"]), float(v["log_sd"])
    rng = np.random.default_rng(seed)
    rs = np.empty(int(n_sim))
    for s in range(int(n_sim)):
        age = np.round(np.clip(mu + sd * rng.standard_normal((dx.size, kmax)), *AGE_RANGE), 1)
        log_v = base[:, None] + age_b * (age - REFERENCE_AGE) + log_sd * rng.standard_normal((dx.size, kmax))
        log_a = area_exponent * log_v + measurement_sd * rng.standard_normal((dx.size, kmax))
        means = (log_a * mask).sum(1) / k_arr
        rs[s] = np.corrcoef(means, expected)[0, 1]
    return {"r": float(rs.mean()), "ci95": (float(np.percentile(rs, 2.5)), float(np.percentile(rs, 97.5))),
            "n_sim": int(n_sim), "n": int(dx.size), "k": float(k_arr.mean())}


def measurement_noise(log_areas: Any, log_volume: Any) -> dict:
    """Calibrate the area measure: OLS of log slice area on the true log volume (real slices).

    log area = c + area_exponent * log V + e, e ~ N(0, measurement_sd): the exponent and residual
    SD feed conditional_r_ceiling. Which log V to pass decides what counts as measurement noise:
    log ventricle_volume_ml_image (the realised 3D volume) isolates the slice measure's own noise;
    log ventricle_scale_target (the planted multiplier the ceiling simulates) also folds in the
    rendering's anatomical variation (deformation), which a perfect generator reproduces too, so it
    gives the ceiling that matches the simulation. Pairs with a non-finite value are dropped.
    Returns {area_exponent, se, ci95, intercept, measurement_sd, dof, n, n_dropped}.
    """
    y = _vector(log_areas, "log_areas")
    x = _vector(log_volume, "log_volume")
    if x.size != y.size:
        raise ValueError(f"log_volume: length {x.size} does not match log_areas ({y.size})")
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 3:
        raise ValueError(f"log_areas: {int(ok.sum())} finite pairs (need >= 3)")
    if np.ptp(x[ok]) == 0:
        raise ValueError("log_volume: no variation (the exponent is not identifiable)")
    design = np.column_stack([np.ones(int(ok.sum())), x[ok]])
    beta, se, dof = _ols(y[ok], design)
    resid = y[ok] - design @ beta
    slope, slope_se = float(beta[1]), float(se[1])
    return {
        "area_exponent": slope,
        "se": slope_se,
        "ci95": _ci95_t(slope, slope_se, dof),
        "intercept": float(beta[0]),
        "measurement_sd": float(np.sqrt(resid @ resid / dof)),
        "dof": int(dof),
        "n": int(ok.sum()),
        "n_dropped": int((~ok).sum()),
    }


# ----------------------------------------------------------------------------------------------------
# identifiability ceiling


def slope_on_images(areas: Any, apoe4: Any, diagnosis: Any) -> dict:
    """Within-diagnosis e4 slope of log area (fidelity.apoe_effect_on_area) in the report's shape.

    On real slices this is the identifiability ceiling: the e4 effect the slices themselves carry,
    which is all a generator trained on them can learn. Diagnosis may be 'CN' / 'MCI' / 'AD' or
    0 / 1 / 2. Returns {slope, effect (= slope, so the dict goes straight into slope_ratio), se,
    ci95, n, n_dropped}.
    """
    a = _vector(areas, "areas")
    dx = _diagnosis(diagnosis, "diagnosis", a.size)
    fit = apoe_effect_on_area(a, apoe4, dx)
    return {"slope": fit["effect"], "effect": fit["effect"], "se": fit["se"], "ci95": fit["ci95"],
            "n": fit["n"], "n_dropped": fit["n_dropped"]}


__all__ = [
    "label_effects", "label_effect_ratio", "label_effect_error", "slope_ratio", "expected_age", "expected_log_volume",
    "conditional_mean_r", "conditional_r_ceiling", "measurement_noise", "slope_on_images",
]
