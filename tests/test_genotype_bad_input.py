"""Bad genotype and clinical inputs: exit status 2, a message naming the file and the problem, no outputs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from .conftest import ROOT

BED = "data/raw/genotypes/ADNI_GO_2_Forward_Bin.bed"
FAM = "data/raw/genotypes/ADNI_GO_2_Forward_Bin.fam"


@pytest.fixture
def project(tiny_cohort, tmp_path):
    """A throw-away project: params.yaml and a copy of the tiny cohort's raw inputs (images linked)."""
    raw, _ = tiny_cohort
    shutil.copy(ROOT / "params.yaml", tmp_path / "params.yaml")
    dest = tmp_path / "data" / "raw"
    dest.mkdir(parents=True)
    for item in ("ADNIMERGE.csv", "APOERES.csv", "genotypes"):
        (shutil.copytree if (raw / item).is_dir() else shutil.copy)(raw / item, dest / item)
    (dest / "mri").symlink_to(raw / "mri")
    return tmp_path


@pytest.fixture
def step(stage_in_process):
    """step(project, "genotype_qc"): the stage with its dvc.yaml defaults, in the project, in this process."""
    return lambda project, name, env=None: stage_in_process(name.replace("_", "-"), cwd=project, env=env)


def step_process(project: Path, name: str) -> subprocess.CompletedProcess:
    """The stage's own script in a process of its own, as DVC runs it: its real exit status."""
    return subprocess.run([sys.executable, str(ROOT / "pipelines" / f"{name}.py")], cwd=project, capture_output=True,
                          text=True)


def outputs(project: Path) -> list[str]:
    found = []
    for folder in ("data/interim", "data/processed", "reports"):
        found += [str(p.relative_to(project)) for p in (project / folder).rglob("*") if p.is_file()]
    return found


def test_clean_inputs_pass_both_stages(project, step):
    assert step(project, "genotype_qc").returncode == 0
    result = step(project, "genotypes")
    assert result.returncode == 0, result.stderr
    assert (project / "data/processed/genotypes.csv").is_file()


def test_truncated_bed(project):
    bed = project / BED
    bed.write_bytes(bed.read_bytes()[:-50])
    result = step_process(project, "genotype_qc")
    assert result.returncode == 2
    assert "ADNI_GO_2_Forward_Bin.bed: truncated" in result.stderr
    assert outputs(project) == []


@pytest.mark.parametrize("suffix, extra", [(".bim", 1), (".fam", 4)])
def test_bim_fam_counts_disagree_with_bed(project, step, suffix, extra):
    path = project / BED.replace(".bed", suffix)
    lines = path.read_text().splitlines()
    added = [lines[-1].replace(lines[-1].split()[1], f"999_S_{9990 + i}") for i in range(extra)]
    path.write_text("\n".join(lines + added) + "\n")
    result = step(project, "genotype_qc")
    assert result.returncode == 2
    assert "ADNI_GO_2_Forward_Bin.bed" in result.stderr and "do not belong together" in result.stderr
    assert outputs(project) == []


def test_duplicate_ptids_in_fam(project, step):
    fam = project / FAM
    lines = fam.read_text().splitlines()
    lines[1] = lines[1].replace(lines[1].split()[1], lines[0].split()[1])
    fam.write_text("\n".join(lines) + "\n")
    result = step(project, "genotype_qc")
    assert result.returncode == 2
    assert "ADNI_GO_2_Forward_Bin.fam: duplicate sample IDs" in result.stderr
    assert outputs(project) == []


@pytest.mark.parametrize("corruption, message", [
    ("drop_dx_bl", "ADNIMERGE.csv: missing column(s) DX_bl"),
    ("unknown_dx", "ADNIMERGE.csv: unknown DX_bl value(s) ['Dementia?']"),
    ("duplicate_ptid", "ADNIMERGE.csv: duplicate PTIDs among baseline rows"),
])
def test_bad_adnimerge(project, step, corruption, message):
    assert step(project, "genotype_qc").returncode == 0
    path = project / "data/raw/ADNIMERGE.csv"
    table = pd.read_csv(path)
    if corruption == "drop_dx_bl":
        table = table.drop(columns="DX_bl")
    elif corruption == "unknown_dx":
        table.loc[table.index[0], "DX_bl"] = "Dementia?"
    else:
        table = pd.concat([table, table[table["VISCODE"] == "bl"].head(1)])
    table.to_csv(path, index=False)
    result = step(project, "genotypes")
    assert result.returncode == 2
    assert message in result.stderr
    assert not (project / "data/processed").exists() and not (project / "reports/data/genotypes.json").exists()


def test_plink2_missing(project, step, tmp_path_factory):
    empty_bin = tmp_path_factory.mktemp("bin")
    path = f"{empty_bin}{os.pathsep}{Path(sys.executable).parent}"
    result = step(project, "genotype_qc", env={"PATH": path})
    assert result.returncode == 2
    assert "plink2 not found" in result.stderr and "apt-get install plink2" in result.stderr
    assert outputs(project) == []


def test_unwritable_output(project, step):
    (project / "data/interim").write_text("a file where a folder should be")
    result = step(project, "genotype_qc")
    assert result.returncode == 2
    assert "data/interim" in result.stderr and "cannot create output folder" in result.stderr
