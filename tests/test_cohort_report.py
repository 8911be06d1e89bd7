"""The cohort_report stage: summary metrics and the CN vs AD preview figure, for the subjects the
genotypes stage kept, wherever params.yaml `data.root` points, NIfTI or CIVET MINC, blank APOE4 allowed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from g2i.imaging.io import load_t1

from .conftest import ROOT
from .test_slices import write_minc1


def _stage_inputs(tiny_genotypes, tmp_path: Path, raw: Path) -> tuple[Path, Path, Path]:
    """subjects.csv and genotypes.csv as the genotypes stage writes them, and a params file with data.root = raw."""
    _, _, (table, subjects, _, _) = tiny_genotypes
    subjects_csv, genotypes_csv = tmp_path / "subjects.csv", tmp_path / "genotypes.csv"
    subjects.to_csv(subjects_csv, index=False)
    table.to_csv(genotypes_csv, index=False)
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["data"]["root"] = str(raw)          # outside the project, absolute
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    return subjects_csv, genotypes_csv, tmp_path / "params.yaml"


def _report(params: Path, subjects: Path, genotypes: Path, out: Path, figure: Path | None = None, in_process=None):
    """The stage's script in a process of its own; in this one with `in_process` (the stage_in_process fixture)."""
    args = ["--params", str(params), "--subjects", str(subjects), "--genotypes", str(genotypes), "--out", str(out)]
    args += ["--figure", str(figure)] if figure else []
    if in_process:
        return in_process("cohort-report", *args, cwd=ROOT)
    return subprocess.run([sys.executable, str(ROOT / "pipelines" / "cohort_report.py"), *args], capture_output=True,
                          text=True, cwd=ROOT)


def test_cohort_report_stage_writes_metrics_and_preview(tiny_cohort, tiny_genotypes, tmp_path, stage_in_process):
    raw, _ = tiny_cohort
    subjects, genotypes, params = _stage_inputs(tiny_genotypes, tmp_path, raw)
    out, figure = tmp_path / "summary.json", tmp_path / "preview.png"
    result = _report(params, subjects, genotypes, out, figure, in_process=stage_in_process)
    assert result.returncode == 0, result.stderr
    summary = json.loads(out.read_text())
    assert summary["ventricle_ratio_ad_over_cn"] > 1.0
    assert summary["spearman_measured_vs_ground_truth"] > 0.9
    # the per-class counts are those of the subjects the genotypes stage kept, not of every image in the tree
    kept = pd.read_csv(subjects)
    assert {dx: c["n"] for dx, c in summary["per_class"].items()} == kept["diagnosis"].value_counts().to_dict()
    with Image.open(figure) as image:
        assert image.format == "PNG" and image.size[0] > 400


def test_a_civet_minc_tree_with_blank_apoe4_and_no_ground_truth(tiny_cohort, tiny_genotypes, tmp_path,
                                                                 stage_in_process):
    """Real-data shapes: T1s as CIVET .mnc files, APOE4 not called for the median subjects, no ground truth."""
    raw, _ = tiny_cohort
    subjects, genotypes, params = _stage_inputs(tiny_genotypes, tmp_path, tmp_path / "adni")
    kept = pd.read_csv(subjects, dtype={"PTID": str})
    minc_paths = []
    for row in kept.itertuples():
        volume, affine = load_t1(raw / row.t1_path)
        path = Path(f"mri/{row.PTID}/final/ADNI_{row.PTID}_t1_final.mnc")
        (tmp_path / "adni" / path).parent.mkdir(parents=True, exist_ok=True)
        write_minc1(tmp_path / "adni" / path, np.asarray(volume, dtype=np.float32), affine)
        minc_paths.append(str(path))
    kept.assign(t1_path=minc_paths).to_csv(subjects, index=False)
    assert isinstance(nib.load(str(tmp_path / "adni" / minc_paths[0])), nib.Minc1Image)
    table = pd.read_csv(genotypes, dtype={"PTID": str})
    table["APOE4"] = np.nan                    # blank for everyone, the median CN and AD subjects included
    table.to_csv(genotypes, index=False)
    out, figure = tmp_path / "summary.json", tmp_path / "preview.png"
    result = _report(params, subjects, genotypes, out, figure, in_process=stage_in_process)
    assert result.returncode == 0, result.stderr
    summary = json.loads(out.read_text())
    assert summary["apoe4_not_called"] == len(kept) and summary["ventricle_ml_mean_by_apoe4"] == {}
    assert "real data" in summary["ground_truth"] and "spearman_measured_vs_ground_truth" not in summary
    assert summary["ventricle_ratio_ad_over_cn"] > 1.0 and figure.is_file()


@pytest.mark.parametrize("missing", ["subjects", "root"])
def test_cohort_report_names_missing_input(tiny_cohort, tiny_genotypes, tmp_path, missing):
    raw, _ = tiny_cohort
    subjects, genotypes, params = _stage_inputs(tiny_genotypes, tmp_path, raw if missing == "subjects"
                                                else tmp_path / "nowhere")
    if missing == "subjects":
        subjects.unlink()
    result = _report(params, subjects, genotypes, tmp_path / "s.json")
    assert result.returncode == 2
    assert (f"{subjects}: not found" if missing == "subjects" else "nowhere: the raw data folder") in result.stderr
    assert not (tmp_path / "s.json").exists()
