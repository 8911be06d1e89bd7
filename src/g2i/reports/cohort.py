"""Cohort report: ventricle volumes measured from the T1 images, and a preview of CN vs AD slices."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from ..data.raw import RawInputs
from ..errors import G2IError
from ..imaging.io import load_t1
from ..imaging.morphometry import ventricle_volume_ml
from ..io.atomic import write_json
from ..io.tables import read_stage_table


def measure_cohort(subjects: Path, genotypes: Path, raw: RawInputs) -> pd.DataFrame:
    """The subjects the genotypes stage kept (its subjects.csv: the same data section, T1 patterns, MINC or
    NIfTI): PTID, DX, APOE4 (the coded e4 dose, NaN when not called), T1 path, measured ventricle volume (mL)."""
    kept = read_stage_table(subjects, ("PTID", "diagnosis", "t1_path"), "genotypes", dtype={"PTID": str})
    dose = read_stage_table(genotypes, ("PTID",), "genotypes", dtype={"PTID": str}).set_index("PTID")
    apoe4 = dose["APOE4"] if "APOE4" in dose.columns else pd.Series(np.nan, index=dose.index)
    rows = []
    for row in kept.itertuples():
        if pd.isna(row.t1_path):
            continue
        path = raw.path(row.t1_path)
        volume, affine = load_t1(path)
        rows.append({"PTID": row.PTID, "DX": row.diagnosis, "APOE4": float(apoe4.get(row.PTID, np.nan)),
                     "path": str(path), "ventricle_ml_measured": ventricle_volume_ml(volume, affine)})
    if not rows:
        raise G2IError(f"{subjects}: no subject with a T1 image (params.yaml data.t1_patterns under {raw.root})")
    return pd.DataFrame(rows)


def summarise(measured: pd.DataFrame, truth: pd.DataFrame | None) -> dict:
    by_dx = measured.groupby("DX")["ventricle_ml_measured"]
    summary = {
        "n_subjects_with_t1": int(len(measured)),
        "per_class": {dx: {"n": int(g.size), "ventricle_ml_mean": round(float(g.mean()), 3),
                           "ventricle_ml_sd": round(float(g.std(ddof=1)), 3) if g.size > 1 else None}
                      for dx, g in by_dx},
        "ventricle_ml_mean_by_apoe4": {str(int(k)): round(float(v), 3)
                                        for k, v in measured.groupby("APOE4")["ventricle_ml_measured"].mean().items()},
        "apoe4_not_called": int(measured["APOE4"].isna().sum()),
    }
    if {"CN", "AD"} <= set(summary["per_class"]):
        summary["ventricle_ratio_ad_over_cn"] = round(
            summary["per_class"]["AD"]["ventricle_ml_mean"] / summary["per_class"]["CN"]["ventricle_ml_mean"], 4)
    if truth is None:
        summary["ground_truth"] = "none (real data): no synthetic ground truth to check the measure against"
    else:
        joined = measured.merge(truth[["PTID", "ventricle_volume_ml_image"]], on="PTID")
        rho = stats.spearmanr(joined["ventricle_ml_measured"], joined["ventricle_volume_ml_image"]).statistic
        summary["spearman_measured_vs_ground_truth"] = round(float(rho), 4)
    return summary


def preview_figure(measured: pd.DataFrame, figure: Path, z_mm: float) -> None:
    """Axial slices at MNI z through the lateral ventricles: the median CN and the median AD subject."""
    from .figures import pyplot, save_figure

    plt = pyplot()

    panels = []
    for dx in ("CN", "AD"):
        group = measured[measured["DX"] == dx]
        if group.empty:
            continue
        pick = group.iloc[(group["ventricle_ml_measured"] - group["ventricle_ml_measured"].median()).abs().argmin()]
        volume, affine = load_t1(Path(pick["path"]))
        k = int(round((z_mm - affine[2, 3]) / affine[2, 2]))
        if not 0 <= k < volume.shape[2]:
            raise G2IError(f"{pick['path']}: z = {z_mm} mm is outside the image")
        panels.append((volume[:, :, k], affine, pick))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 4.8), squeeze=False)
    for ax, (plane, affine, pick) in zip(axes[0], panels):
        x0, dx_mm, y0, dy_mm = affine[0, 3], affine[0, 0], affine[1, 3], affine[1, 1]
        extent = (x0 - dx_mm / 2, x0 + dx_mm * (plane.shape[0] - 0.5), y0 - dy_mm / 2, y0 + dy_mm * (plane.shape[1] - 0.5))
        ax.imshow(plane.T, origin="lower", cmap="gray", extent=extent, vmin=0, vmax=np.percentile(plane[plane > 0], 99.5))
        e4 = "not called" if pd.isna(pick["APOE4"]) else f"{int(pick['APOE4'])}"
        ax.set_title(f"{pick['DX']}  {pick['PTID']}\nAPOE e4 = {e4}, ventricles {pick['ventricle_ml_measured']:.0f} mL",
                     fontsize=10)
        ax.set_xlabel("x (mm, R)")
        ax.set_ylabel("y (mm, A)")
    fig.suptitle(f"Axial T1 at MNI z = {z_mm:g} mm (median subject of each class)", fontsize=11)
    fig.tight_layout()
    save_figure(fig, figure, dpi=110)


def write_cohort_report(subjects: str | Path, genotypes: str | Path, raw: RawInputs, out: str | Path,
                        preview_z_mm: float, figure: str | Path | None) -> dict:
    measured = measure_cohort(Path(subjects), Path(genotypes), raw)
    truth_path = raw.ground_truth     # synthetic cohorts only
    truth = pd.read_csv(truth_path, dtype={"PTID": str}) if truth_path.is_file() else None
    summary = summarise(measured, truth)
    if figure:
        preview_figure(measured, Path(figure), preview_z_mm)
    write_json(out, summary)
    return summary
