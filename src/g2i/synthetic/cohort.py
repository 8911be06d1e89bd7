"""Who is in the synthetic cohort: genotypes, diagnosis from a genetic liability model, APOE, effects.

Diagnosis follows a liability-threshold model: liability = panel polygenic score (sum of log odds
ratios x centred effect-allele dose) + logistic noise. Subjects are ranked by liability and the top
fraction becomes AD, the next MCI, the rest CN, so class counts match the configured proportions
exactly (the paper's 291 / 438 / 182 by default).
APOE is then drawn given diagnosis, because ADNI enrols e4-enriched clinical samples: a population
e4 effect in the liability would give ~11 / 24 / 46 % carriers in CN / MCI / AD, ADNI-1 has ~27 / 53 /
66 % (Petersen et al. 2010; see resources/apoe_by_diagnosis.md). e4 dose per subject comes from the
configured carrier and e4/e4 rates of its diagnosis; the other haplotypes are e2 or e3 in the
population ratio.
Anatomy then follows diagnosis, e4 dose, polygenic score and age with the configured effect sizes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..genetics.panel import load_panel
from .spec import DIAGNOSES, CohortSpec

# ADNI acquisition sites (three-digit codes as they appear in PTIDs).
ADNI_SITES = (2, 3, 5, 6, 7, 9, 11, 12, 13, 14, 16, 18, 19, 20, 21, 22, 23, 24, 27, 29, 31, 32, 33, 35, 36,
              37, 41, 51, 52, 53, 57, 62, 67, 68, 70, 72, 73, 82, 94, 98, 99, 100, 109, 114, 116, 123, 126,
              127, 128, 130, 131, 133, 135, 136, 137, 141, 153, 941)
PHASES = ("ADNI1", "ADNIGO2")
AGE_BY_DX = {"CN": (75.5, 5.5), "MCI": (73.5, 7.5), "AD": (75.0, 7.8)}
REFERENCE_AGE = 74.0


def stream(seed: int, *key: int) -> np.random.Generator:
    """An independent, reproducible random stream per purpose (and per subject for images)."""
    return np.random.default_rng(np.random.SeedSequence([seed, *key]))


def draw_apoe(rng: np.random.Generator, dx: np.ndarray, by_dx: dict[str, dict[str, float]],
              freq: dict[str, float]) -> np.ndarray:
    """Two APOE haplotypes per subject as numbers 2/3/4 (like APOERES APGEN1/APGEN2), sorted.

    e4 dose given diagnosis: P(2) = dose2, P(1) = carrier - dose2, P(0) = 1 - carrier (ascertainment,
    not a population model); non-e4 haplotypes are e2 or e3 in the population ratio e2 : e3.
    """
    carrier, dose2 = (np.array([by_dx[k][d] for d in dx]) for k in ("carrier", "dose2"))
    u = rng.random(len(dx))
    e4 = (u < carrier).astype(int) + (u < dose2)  # one uniform: dose2 <= carrier keeps the doses nested
    other = np.where(rng.random((len(dx), 2)) < freq["e2"] / (freq["e2"] + freq["e3"]), 2, 3)
    return np.sort(np.where(np.arange(2) < e4[:, None], 4, other), axis=1)


def polygenic_score(doses: np.ndarray, panel: pd.DataFrame) -> tuple[np.ndarray, float]:
    """Sum of log(OR) x (effect-allele dose - 2p); returns the score and its population SD."""
    log_or = np.log(panel["odds_ratio"].to_numpy())
    p = panel["effect_allele_freq"].to_numpy()
    score = (doses - 2 * p) @ log_or
    sd = float(np.sqrt((log_or**2 * 2 * p * (1 - p)).sum()))
    return score, sd


def assign_diagnosis(liability: np.ndarray, counts: dict[str, int]) -> np.ndarray:
    """Rank by liability: the highest `counts['AD']` are AD, the next MCI, the rest CN."""
    order = np.argsort(liability, kind="stable")
    dx = np.empty(len(liability), dtype=object)
    dx[order[: counts["CN"]]] = "CN"
    dx[order[counts["CN"] : counts["CN"] + counts["MCI"]]] = "MCI"
    dx[order[counts["CN"] + counts["MCI"] :]] = "AD"
    return dx


def anatomical_effects(table: pd.DataFrame, effects: dict, rng: np.random.Generator) -> pd.DataFrame:
    """Target structure scales and cortical thinning per subject (the generator's ground truth)."""
    n = len(table)
    dx, e4, prs_z = table["DX"].to_numpy(), table["APOE4"].to_numpy(), table["prs_z"].to_numpy()
    age = table["AGE"].to_numpy() - REFERENCE_AGE
    v = effects["ventricles"]
    log_v = (
        np.log(v["scale_cn"])
        + np.array([v["log_shift"][d] for d in dx])
        + v["e4_log_per_allele"] * e4
        + v["prs_log_per_sd"] * prs_z
        + v["age_log_per_year"] * age
        + v["log_sd"] * rng.standard_normal(n)
    )
    h = effects["hippocampus"]
    hip = (
        np.array([h["ratio"][d] for d in dx])
        * (1 + np.array([h["e4_per_allele"][d] for d in dx]) * e4)
        * (1 + h["prs_per_sd"] * prs_z)
        * (1 + h["age_per_year"] * age)
        * np.exp(h["sd"] * rng.standard_normal(n))
    )
    c = effects["cortical_thinning"]
    thin = np.clip(np.array([c["mean"][d] for d in dx]) + c["per_year"] * age + c["sd"] * rng.standard_normal(n), 0, 0.6)
    return pd.DataFrame(
        {"ventricle_scale_target": np.exp(log_v), "hippocampus_scale_target": hip, "cortical_thinning": thin},
        index=table.index,
    )


def draw_cohort(spec: CohortSpec) -> tuple[pd.DataFrame, np.ndarray]:
    """The subject table and the panel effect-allele doses (row i of doses = row i of the table).

    `n_subjects` subjects have MRI, genotypes and a diagnosis; on top, a few subjects appear in the
    clinical table with no MRI or no genotypes, as in real ADNI downloads (columns has_mri, has_genotypes).
    """
    rng = stream(spec.seed, 0)
    panel = load_panel()
    n_main = spec.n_subjects
    n = n_main + spec.subjects_without_mri + spec.subjects_without_genotypes
    doses = rng.binomial(2, panel["effect_allele_freq"].to_numpy(), size=(n, len(panel))).astype(np.int8)
    prs, prs_sd = polygenic_score(doses, panel)
    liability = prs + rng.logistic(size=n)
    proportions = np.array([spec.class_proportions[d] for d in DIAGNOSES])
    dx = np.concatenate([
        assign_diagnosis(liability[:n_main], spec.class_counts()),
        rng.choice(np.array(DIAGNOSES, dtype=object), size=n - n_main, p=proportions / proportions.sum()),
    ])
    apoe = draw_apoe(rng, dx, spec.apoe4_by_diagnosis, spec.apoe_haplotype_freq)
    e4 = (apoe == 4).sum(axis=1)
    has_mri = np.arange(n) < n_main + spec.subjects_without_genotypes
    has_genotypes = (np.arange(n) < n_main) | (np.arange(n) >= n_main + spec.subjects_without_genotypes)

    n_adni1 = int(round(n * spec.adni1_fraction))
    phase = np.array([PHASES[0]] * n_adni1 + [PHASES[1]] * (n - n_adni1), dtype=object)
    rng.shuffle(phase)
    sex = np.where(rng.random(n) < 0.55, "Male", "Female")
    age = np.array([rng.normal(*AGE_BY_DX[d]) for d in dx]).clip(55, 91).round(1)

    table = pd.DataFrame(
        {
            "phase": phase,
            "DX": dx,
            "APOE4": e4,
            "APGEN1": apoe[:, 0],
            "APGEN2": apoe[:, 1],
            "prs": prs,
            "prs_z": prs / prs_sd,
            "liability": liability,
            "AGE": age,
            "PTGENDER": sex,
            "has_mri": has_mri,
            "has_genotypes": has_genotypes,
        }
    )
    table["DX_bl"] = _adni_baseline_dx(table, rng)
    table = pd.concat([table, anatomical_effects(table, spec.effects, rng)], axis=1)
    table = _assign_ids(table, rng)
    doses = doses[table.index.to_numpy()]
    return table.reset_index(drop=True), doses


def _adni_baseline_dx(table: pd.DataFrame, rng: np.random.Generator) -> np.ndarray:
    """ADNI's finer baseline labels: ADNI-1 has CN / LMCI / AD; ADNI-GO/2 adds SMC and EMCI."""
    dx_bl = table["DX"].map({"CN": "CN", "MCI": "LMCI", "AD": "AD"}).to_numpy(dtype=object)
    go2 = table["phase"].to_numpy() == PHASES[1]
    smc = go2 & (table["DX"].to_numpy() == "CN") & (rng.random(len(table)) < 0.15)
    dx_bl[smc] = "SMC"
    mci_go2 = go2 & (table["DX"].to_numpy() == "MCI")
    if mci_go2.any():
        cut = np.median(table.loc[mci_go2, "liability"])
        dx_bl[mci_go2 & (table["liability"].to_numpy() < cut)] = "EMCI"
    return dx_bl


def _assign_ids(table: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """RIDs in ADNI's ranges per phase (ADNI-1 below 2000, GO/2 from 2002) and PTIDs SSS_S_RRRR, unique.
    RIDs step by 1-3 like ADNI's; an ADNI-1 too large for its range at that spacing steps by 1 instead (the
    2,450-subject study cohort's ADNI-1 RIDs once ran past 2000 into GO/2's, and two subjects shared a PTID),
    and one larger still (cohorts drawn only for statistics) pushes GO/2's range up after it."""
    rid = np.zeros(len(table), dtype=int)
    start, stop = 2, 2000
    for phase in PHASES:
        members = np.flatnonzero(table["phase"].to_numpy() == phase)
        gaps = rng.integers(1, 4, size=len(members))
        if len(members) and phase == PHASES[0] and start + gaps[1:].sum() >= stop:
            gaps = np.ones_like(gaps)
        rid[members] = start + np.cumsum(gaps) - gaps[0]
        start = max(2002, int(rid[members].max(initial=0)) + 2)
    site = rng.choice(ADNI_SITES, size=len(table))
    table.insert(0, "RID", rid)
    table.insert(1, "PTID", [f"{s:03d}_S_{r:04d}" for s, r in zip(site, rid)])
    table.insert(2, "SITE", site)
    return table.sort_values("RID", kind="stable")
