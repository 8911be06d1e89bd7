"""ADNIMERGE.csv and APOERES.csv for the synthetic cohort, with ADNI's column names and codes."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .cohort import REFERENCE_AGE

ADNIMERGE_COLUMNS = [
    "RID", "COLPROT", "ORIGPROT", "PTID", "SITE", "VISCODE", "EXAMDATE", "DX_bl", "AGE", "PTGENDER",
    "PTEDUCAT", "PTETHCAT", "PTRACCAT", "PTMARRY", "APOE4", "CDRSB", "MMSE", "Ventricles", "Hippocampus",
    "WholeBrain", "ICV", "DX", "EXAMDATE_bl", "CDRSB_bl", "MMSE_bl", "Ventricles_bl", "Hippocampus_bl",
    "WholeBrain_bl", "ICV_bl", "Years_bl", "Month_bl", "Month", "M",
]
VISITS_MONTHS = {"m06": 6, "m12": 12, "m24": 24}
FOLLOWUP_DX = {"CN": "CN", "MCI": "MCI", "AD": "Dementia"}
# FreeSurfer-like mean hippocampal volume of a cognitively normal elder (mm^3), for the clinical table.
HIPPOCAMPUS_CN_MM3 = 7300.0
ICV_REFERENCE_MM3 = 1.5e6  # images are in MNI space: native volume = MNI volume x ICV / reference
# Annual relative change of ventricles (+) and hippocampus (-) per diagnosis.
VENTRICLE_GROWTH = {"CN": 0.03, "MCI": 0.05, "AD": 0.08}
HIPPOCAMPUS_LOSS = {"CN": 0.01, "MCI": 0.025, "AD": 0.04}
MMSE = {"CN": (29.0, 1.1), "MCI": (27.5, 1.8), "AD": (23.3, 2.0)}
CDRSB = {"CN": (0.05, 0.2), "MCI": (1.5, 0.9), "AD": (4.4, 1.6)}
CONVERSION_PER_YEAR = {"CN": ("MCI", 0.04), "MCI": ("AD", 0.15)}


def _choice(rng, options: dict[str, float], n: int) -> np.ndarray:
    p = np.array(list(options.values()))
    return rng.choice(np.array(list(options), dtype=object), size=n, p=p / p.sum())


def baseline_rows(table: pd.DataFrame, hippocampus_template_ml: float, rng: np.random.Generator) -> pd.DataFrame:
    """One baseline ('bl') row per subject with ADNI's demographic, cognitive and volume columns."""
    n = len(table)
    male = table["PTGENDER"].to_numpy() == "Male"
    icv = np.where(male, rng.normal(1.60e6, 1.3e5, n), rng.normal(1.42e6, 1.2e5, n)).round()
    head = icv / ICV_REFERENCE_MM3
    dx = table["DX"].to_numpy()
    go2 = table["phase"].to_numpy() == "ADNIGO2"
    origprot = np.where(go2, np.where((table["DX_bl"] == "EMCI") & (rng.random(n) < 0.3), "ADNIGO", "ADNI2"), "ADNI1")
    start = np.where(go2, np.datetime64("2010-09-01"), np.datetime64("2005-09-01"))
    examdate = start + rng.integers(0, 800, n).astype("timedelta64[D]")
    age_offset = table["AGE"].to_numpy() - REFERENCE_AGE
    frame = pd.DataFrame({
        "RID": table["RID"], "COLPROT": origprot, "ORIGPROT": origprot, "PTID": table["PTID"],
        "SITE": table["SITE"], "VISCODE": "bl", "EXAMDATE": examdate.astype(str), "DX_bl": table["DX_bl"],
        "AGE": table["AGE"], "PTGENDER": table["PTGENDER"],
        "PTEDUCAT": rng.normal(16, 2.8, n).clip(6, 20).round().astype(int),
        "PTETHCAT": _choice(rng, {"Not Hisp/Latino": 0.96, "Hisp/Latino": 0.03, "Unknown": 0.01}, n),
        "PTRACCAT": _choice(rng, {"White": 0.92, "Black": 0.04, "Asian": 0.02, "More than one": 0.02}, n),
        "PTMARRY": _choice(rng, {"Married": 0.75, "Widowed": 0.12, "Divorced": 0.09, "Never married": 0.04}, n),
        "APOE4": table["APOE4"].astype(float),
        "CDRSB": np.array([rng.normal(*CDRSB[d]) for d in dx]).clip(0, 18).__mul__(2).round() / 2,
        "MMSE": np.array([rng.normal(*MMSE[d]) for d in dx]).clip(0, 30).round(),
        "Ventricles": (table["ventricle_volume_ml"].to_numpy() * 1000 * head * rng.normal(1, 0.03, n)).round(),
        "Hippocampus": (table["hippocampus_volume_ml"].to_numpy() / hippocampus_template_ml * HIPPOCAMPUS_CN_MM3
                        * head * rng.normal(1, 0.03, n)).round(),
        "WholeBrain": ((1.05e6 - 2.5e5 * table["cortical_thinning"].to_numpy() - 3000 * age_offset)
                       * head * rng.normal(1, 0.02, n)).round(),
        "ICV": icv,
        "DX": [FOLLOWUP_DX[d] for d in dx],
    })
    frame["EXAMDATE_bl"] = frame["EXAMDATE"]
    for column in ("CDRSB", "MMSE", "Ventricles", "Hippocampus", "WholeBrain", "ICV"):
        frame[f"{column}_bl"] = frame[column]
    frame["Years_bl"], frame["Month_bl"], frame["Month"], frame["M"] = 0.0, 0.0, 0, 0
    return frame


def followup_rows(baseline: pd.DataFrame, table: pd.DataFrame, fraction: float, rng: np.random.Generator) -> pd.DataFrame:
    """Follow-up visits (m06, m12, m24) for a fraction of subjects, with progression and conversions."""
    rows = []
    for i in np.flatnonzero(rng.random(len(baseline)) < fraction):
        base, dx = baseline.iloc[i], table["DX"].iloc[i]
        n_visits = int(rng.integers(1, len(VISITS_MONTHS) + 1))
        for viscode, months in list(VISITS_MONTHS.items())[:n_visits]:
            years = months / 12 + rng.normal(0, 0.03)
            if dx in CONVERSION_PER_YEAR and rng.random() < CONVERSION_PER_YEAR[dx][1] * years:
                dx = CONVERSION_PER_YEAR[dx][0]
            row = base.copy()
            row["VISCODE"], row["Years_bl"], row["Month_bl"] = viscode, round(years, 4), round(years * 12, 4)
            row["Month"] = row["M"] = months
            row["EXAMDATE"] = str(np.datetime64(base["EXAMDATE_bl"]) + np.timedelta64(int(years * 365.25), "D"))
            row["DX"] = FOLLOWUP_DX[dx]
            row["MMSE"] = float(np.clip(round(base["MMSE_bl"] - {"CN": 0.1, "MCI": 0.8, "AD": 2.5}[dx] * years
                                              + rng.normal(0, 1)), 0, 30))
            imaged = rng.random() > 0.1  # about one visit in ten has no usable MRI volumes
            row["Ventricles"] = round(base["Ventricles_bl"] * (1 + VENTRICLE_GROWTH[dx] * years)) if imaged else np.nan
            row["Hippocampus"] = round(base["Hippocampus_bl"] * (1 - HIPPOCAMPUS_LOSS[dx] * years)) if imaged else np.nan
            row["WholeBrain"] = round(base["WholeBrain_bl"] * (1 - 0.005 * years)) if imaged else np.nan
            rows.append(row)
    return pd.DataFrame(rows, columns=baseline.columns)


def adnimerge_table(table: pd.DataFrame, hippocampus_template_ml: float, followup_fraction: float,
                    rng: np.random.Generator) -> pd.DataFrame:
    baseline = baseline_rows(table, hippocampus_template_ml, rng)
    followup = followup_rows(baseline, table, followup_fraction, rng)
    merged = pd.concat([baseline, followup], ignore_index=True)
    merged["_visit"] = merged["M"].astype(int)
    merged = merged.sort_values(["RID", "_visit"], kind="stable").drop(columns="_visit")
    return merged[ADNIMERGE_COLUMNS]


def apoeres_table(table: pd.DataFrame) -> pd.DataFrame:
    """APOERES.csv: the APOE genotype from the screening visit (APGEN1 <= APGEN2)."""
    phase = np.where(table["phase"] == "ADNIGO2", "ADNI2", "ADNI1")
    return pd.DataFrame({"Phase": phase, "RID": table["RID"], "VISCODE": "sc",
                         "APGEN1": table["APGEN1"], "APGEN2": table["APGEN2"]})
