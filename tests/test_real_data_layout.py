"""A real download's shape under `dvc repro`: the raw data outside the repository (params.yaml data.root),
T1s as a CIVET MINC tree, no synthetic ground truth; DVC watches exactly the raw files each stage reads."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from g2i.genetics.plink import read_bim, read_fam, write_plink1
from g2i.imaging.io import load_t1

from .conftest import ROOT
from .test_pipeline_e2e import TINY_DEMO, run, set_params, stages_run
from .test_slices import write_minc1

DATA_STAGES = ["split", "slices", "cohort_report"]   # targets: these and everything upstream (the data stages)


GO2 = "genotypes/ADNI_GO_2_Forward_Bin"


def civet_copy(raw: Path, dest: Path) -> None:
    """The synthetic cohort as a real download: T1s re-written as CIVET .mnc, the ground truth left behind,
    ADNIMERGE's visits shuffled with blank fields, and the GO/2 array with a duplicate probe of rs429358
    (alleles listed the other way round) and a SNP whose ID is `.`."""
    from pandas_plink import read_plink1_bin

    shutil.copytree(raw, dest, ignore=shutil.ignore_patterns("synthetic", "*.nii.gz"))
    for nifti in sorted(raw.glob("mri/*/final/*_t1_final.nii.gz")):
        volume, affine = load_t1(nifti)
        target = dest / nifti.relative_to(raw).with_name(nifti.name.replace(".nii.gz", ".mnc"))
        target.parent.mkdir(parents=True, exist_ok=True)
        write_minc1(target, np.asarray(volume, dtype=np.float32), affine)
    merged = pd.read_csv(dest / "ADNIMERGE.csv", dtype=str).sample(frac=1.0, random_state=0)  # visits in any order
    merged.loc[merged.index[::3], ["MMSE", "AGE", "PTEDUCAT"]] = np.nan
    merged.loc[merged.index[::7], "APOE4"] = np.nan
    merged.to_csv(dest / "ADNIMERGE.csv", index=False)
    bim, fam = read_bim(dest / f"{GO2}.bim"), read_fam(dest / f"{GO2}.fam")
    col6 = read_plink1_bin(str(dest / f"{GO2}.bed"), verbose=False).values.T       # SNPs x samples, column-6 counts
    a1 = np.where(np.isnan(col6), -1, 2 - col6).astype(np.int8)
    apoe = int(np.flatnonzero(bim["snp"] == "rs429358")[0])
    probe = bim.iloc[[apoe]].assign(a1=bim.at[apoe, "a2"], a2=bim.at[apoe, "a1"], pos=bim.at[apoe, "pos"] + 1)
    dot = bim.iloc[[0]].assign(snp=".", pos=bim.at[0, "pos"] + 1)
    swapped = np.where(a1[apoe] < 0, -1, 2 - a1[apoe])[None]
    # each extra row next to its source: PLINK wants a chromosome's variants contiguous
    order = sorted(range(len(bim) + 2), key=lambda i: ({len(bim): apoe + 0.5, len(bim) + 1: 0.5}.get(i, i)))
    write_plink1(dest / GO2, pd.concat([bim, probe, dot], ignore_index=True).iloc[order].reset_index(drop=True), fam,
                 np.concatenate([a1, swapped, a1[[0]]])[order].astype(np.int8))


def readme_root_command(adni: Path) -> str:
    """The line of the README's "Real ADNI data in five lines" that points params.yaml at the download, as written
    there (with this test's folder for /data/adni): the fixture below runs it."""
    block = (ROOT / "README.md").read_text().split("## Real ADNI data in five lines", 1)[1].split("```bash", 1)[1]
    line = next(line for line in block.split("```", 1)[0].splitlines() if "params.yaml" in line and "root" in line)
    return line.split(" #", 1)[0].strip().replace("/data/adni", str(adni))


@pytest.fixture(scope="module")
def project(tiny_cohort, tmp_path_factory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("download")
    repo, adni = base / "repo", base / "adni"          # the data is a sibling of the project, not inside it
    repo.mkdir()
    for item in ("dvc.yaml", "params.yaml", ".dvcignore"):
        shutil.copy(ROOT / item, repo / item)
    for folder in ("pipelines", "src", "gx"):
        shutil.copytree(ROOT / folder, repo / folder, ignore=shutil.ignore_patterns("__pycache__", "uncommitted"))
    civet_copy(tiny_cohort[0], adni)
    set_params(repo, lambda p: p["profiles"]["demo"].update(TINY_DEMO))
    edit = subprocess.run(["bash", "-c", readme_root_command(adni)], cwd=repo, capture_output=True, text=True)
    assert edit.returncode == 0, edit.stderr
    assert yaml.safe_load((repo / "params.yaml").read_text())["data"]["root"] == str(adni)
    assert run(repo, "git", "init", "-q").returncode == 0
    assert run(repo, "dvc", "init", "-q").returncode == 0
    return repo, adni


def changed(repo: Path) -> set[str]:
    status = run(repo, "dvc", "status", "--json", "--with-deps", *DATA_STAGES)
    assert status.returncode == 0, status.stderr
    return set(json.loads(status.stdout))


def test_the_data_stages_run_on_a_minc_tree_outside_the_repository(project):
    repo, adni = project
    result = run(repo, "dvc", "repro", *DATA_STAGES)
    assert result.returncode == 0, result.stdout + result.stderr
    assert stages_run(result) == {"genotype_qc", "genotypes", "validate_genotypes", "slices", "split", "cohort_report"}
    assert not (repo / "data/raw").exists()
    subjects = pd.read_csv(repo / "data/processed/subjects.csv")
    assert len(subjects) > 0 and subjects["t1_path"].str.endswith(".mnc").all()
    summary = json.loads((repo / "reports/cohort/summary.json").read_text())
    assert sum(c["n"] for c in summary["per_class"].values()) == len(subjects)
    assert "real data" in summary["ground_truth"]
    genotypes = json.loads((repo / "reports/data/genotypes.json").read_text())
    assert genotypes["duplicate_panel_snps"]["ADNIGO2"]["rs429358"]["action"] == "merged"
    assert genotypes["duplicate_panel_snps"]["ADNIGO2"]["rs429358"]["calls_disagreeing"] == 0
    qc = json.loads((repo / "reports/data/genotype_qc.json").read_text())["phases"]["ADNIGO2"]
    removed = pd.read_csv(repo / "reports/data/genotype_qc_removed.tsv", sep="\t")
    removed = removed[(removed["phase"] == "ADNIGO2") & (removed["kind"] == "snp")]
    assert qc["input"]["snps"] == len(read_bim(adni / f"{GO2}.bim"))
    assert qc["output"]["snps"] == len(read_bim(repo / "data/interim/genotype_qc/ADNIGO2.bim"))
    assert qc["input"]["snps"] - qc["output"]["snps"] == len(removed)
    # each data stage logged one MLflow run, tagged like the training runs, with its numbers
    with sqlite3.connect(repo / "mlflow.db") as db:
        runs = dict(db.execute("SELECT r.name, r.run_uuid FROM runs r JOIN tags t ON t.run_uuid = r.run_uuid "
                               "WHERE t.key = 'g2i.stage' AND t.value = r.name"))
        metric = lambda run, key: db.execute("SELECT value FROM latest_metrics WHERE run_uuid = ? AND key = ?",
                                             (run, key)).fetchone()
        assert set(runs) == {"genotype_qc", "genotypes", "validate_genotypes", "slices", "split", "cohort_report"}
        assert metric(runs["genotype_qc"], "phases/ADNIGO2/input/snps") == (qc["input"]["snps"],)
        assert metric(runs["slices"], "n_subjects") == (len(subjects),)
        docs = db.execute("SELECT artifact_uri FROM runs WHERE run_uuid = ?", (runs["validate_genotypes"],)).fetchone()[0]
    assert (Path(docs.removeprefix("file://")) / "data_docs" / "index.html").is_file()
    assert changed(repo) == set()


@pytest.mark.parametrize("edit, readers", [
    ("ADNIMERGE.csv", {"genotypes", "cohort_report"}),
    ("genotypes/ADNI_GO_2_Forward_Bin.bim", {"genotype_qc", "genotypes", "cohort_report"}),
    ("mri", {"genotypes", "slices", "cohort_report"}),
])
def test_editing_a_raw_file_marks_exactly_the_stages_that_read_it(project, edit, readers):
    repo, adni = project
    path = adni / edit if edit != "mri" else sorted(adni.glob("mri/*/final/*.mnc"))[0]
    original = path.read_bytes()
    if path.suffix == ".csv":       # a corrected baseline diagnosis, as an ADNIMERGE update brings
        table = pd.read_csv(path, dtype=str)
        row = table.index[table["VISCODE"] == "bl"][0]
        table.loc[row, "DX_bl"] = "AD" if table.loc[row, "DX_bl"] != "AD" else "CN"
        table.to_csv(path, index=False)
    else:
        path.write_bytes(original + b"\n" if path.suffix == ".bim" else original[:-2] + b"\x01\x02")
    try:
        assert changed(repo) == readers
    finally:
        path.write_bytes(original)
    assert changed(repo) == set()
