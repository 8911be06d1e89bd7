"""ADNI's clinical tables: baseline diagnosis and APOE e4 dose from ADNIMERGE.csv and APOERES.csv."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import G2IError

REQUIRED_ADNIMERGE = ("RID", "PTID", "VISCODE", "DX_bl")


def read_baseline(path: Path, diagnosis_map: dict[str, str]) -> pd.DataFrame:
    """Baseline rows of ADNIMERGE: RID, PTID, DX_bl, diagnosis (3-way, NaN if DX_bl empty), APOE4."""
    if not path.is_file():
        raise G2IError(f"{path}: not found (ADNIMERGE.csv is needed for the baseline diagnosis)")
    try:
        merged = pd.read_csv(path, low_memory=False, dtype={"PTID": str, "VISCODE": str, "DX_bl": str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise G2IError(f"{path}: cannot parse as CSV ({exc})") from exc
    missing = [c for c in REQUIRED_ADNIMERGE if c not in merged.columns]
    if missing:
        raise G2IError(f"{path}: missing column(s) {', '.join(missing)} (expected ADNIMERGE's baseline columns)")
    baseline = merged[merged["VISCODE"].str.strip().str.lower() == "bl"].copy()
    if baseline.empty:
        raise G2IError(f"{path}: no baseline rows (VISCODE == 'bl')")
    duplicated = baseline["PTID"][baseline["PTID"].duplicated()].unique()
    if len(duplicated):
        raise G2IError(f"{path}: duplicate PTIDs among baseline rows: {', '.join(map(str, duplicated[:10]))}")
    dx = baseline["DX_bl"].str.strip()
    unknown = sorted(set(dx.dropna()) - set(diagnosis_map))
    if unknown:
        raise G2IError(f"{path}: unknown DX_bl value(s) {unknown}; known: {sorted(diagnosis_map)} "
                       "(extend data.diagnosis_map in params.yaml to map them)")
    baseline["diagnosis"] = dx.map(diagnosis_map)
    if "APOE4" not in baseline.columns:
        baseline["APOE4"] = np.nan
    return baseline[["RID", "PTID", "DX_bl", "diagnosis", "APOE4"]].reset_index(drop=True)


def read_apoeres(path: Path | None) -> pd.Series:
    """e4 dose per RID from APOERES.csv (APGEN1/APGEN2), or an empty series when the file is absent."""
    if path is None or not Path(path).is_file():
        return pd.Series(dtype=float)
    table = pd.read_csv(path)
    missing = [c for c in ("RID", "APGEN1", "APGEN2") if c not in table.columns]
    if missing:
        raise G2IError(f"{path}: missing column(s) {', '.join(missing)}")
    dose = (table["APGEN1"] == 4).astype(int) + (table["APGEN2"] == 4).astype(int)
    dose[table[["APGEN1", "APGEN2"]].isna().any(axis=1)] = np.nan
    return pd.Series(dose.to_numpy(), index=table["RID"]).groupby(level=0).first()
