"""The synthetic cohort: deterministic, readable by the real tools, with the intended structure."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from g2i.config import load_params, resolve
from g2i.errors import G2IError
from g2i.genetics.panel import APOE_SNPS, load_panel
from g2i.imaging.grid import Grid
from g2i.synthetic.cohort import draw_cohort
from g2i.synthetic.generate import GROUND_TRUTH, MANIFEST, MRI_PATTERN, generate_cohort
from g2i.synthetic.genotypes import PHASE_FILESETS
from g2i.synthetic.spec import DIAGNOSES, CohortSpec

from .conftest import ROOT, tiny_spec


def tree_digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.md5(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


def test_byte_identical_across_runs_and_worker_counts(tmp_path):
    spec_kw = dict(n_subjects=16, voxel_mm=4.0, z_range_mm=[0, 32], n_background_snps=200)
    generate_cohort(tiny_spec(**spec_kw, n_jobs=2), tmp_path / "a", progress=False)
    generate_cohort(tiny_spec(**spec_kw, n_jobs=1), tmp_path / "b", progress=False)
    a, b = tree_digest(tmp_path / "a"), tree_digest(tmp_path / "b")
    assert len(a) > 20
    assert a == b
    # another seed, another cohort (the subject draw decides everything the files hold; no third set of images)
    assert not draw_cohort(tiny_spec(**spec_kw, seed=7))[0].equals(draw_cohort(tiny_spec(**spec_kw))[0])


def test_layout_and_adnimerge_columns(tiny_cohort):
    raw, manifest = tiny_cohort
    merged = pd.read_csv(raw / "ADNIMERGE.csv")
    for column in ("RID", "PTID", "VISCODE", "DX_bl", "AGE", "PTGENDER", "APOE4", "Ventricles_bl", "Hippocampus_bl", "ICV_bl"):
        assert column in merged.columns
    assert merged["PTID"].str.fullmatch(r"\d{3}_S_\d{4}").all()
    baseline = merged[merged["VISCODE"] == "bl"]
    assert baseline["PTID"].is_unique and len(merged) > len(baseline)  # follow-up rows exist
    assert set(baseline["DX_bl"]) <= {"CN", "SMC", "EMCI", "LMCI", "AD"}
    assert set(merged.loc[merged["VISCODE"] != "bl", "VISCODE"]) <= {"m06", "m12", "m24"}
    assert set(merged["DX"].dropna()) <= {"CN", "MCI", "Dementia"}
    # ADNI-1 has no SMC / EMCI
    assert not baseline[baseline["ORIGPROT"] == "ADNI1"]["DX_bl"].isin(["SMC", "EMCI"]).any()
    subjects = manifest["subjects"]
    assert subjects["complete"] == 60
    assert len(baseline) == 60 + subjects["without_mri"] + subjects["without_genotypes"]
    assert json.loads((raw / MANIFEST).read_text())["synthetic"] is True


def test_every_t1_reads_with_nibabel_on_the_icbm152_grid(tiny_cohort):
    raw, manifest = tiny_cohort
    truth = pd.read_csv(raw / GROUND_TRUTH)
    grid = Grid.icbm152(3.0, (-30, 36))
    paths = sorted(raw.glob("mri/*/final/*_t1_final.nii.gz"))
    assert len(paths) == int(truth["has_mri"].sum())
    for path in paths:
        image = nib.load(path)
        assert image.shape == grid.shape
        np.testing.assert_allclose(image.affine, grid.affine)
        assert int(image.header["sform_code"]) == 4  # MNI_152
        data = np.asanyarray(image.dataobj)
        assert data.dtype == np.int16 and data.max() > 500 and (data == 0).mean() > 0.2  # masked brain
    assert MRI_PATTERN.format(ptid=truth["PTID"][0]) in {str(p.relative_to(raw)) for p in paths}


def test_grid_paper_profile_is_civet_1mm():
    grid = Grid.icbm152(1.0)
    assert grid.shape == (181, 217, 181)
    np.testing.assert_allclose(grid.affine[:3, 3], [-90, -126, -72])


@pytest.mark.parametrize("phase", sorted(PHASE_FILESETS))
def test_plink_filesets_read_by_plink2_and_pandas_plink(tiny_cohort, tmp_path, phase):
    from pandas_plink import read_plink1_bin

    raw, manifest = tiny_cohort
    prefix = raw / "genotypes" / PHASE_FILESETS[phase]
    fam = pd.read_csv(prefix.with_suffix(".fam"), sep=r"\s+", header=None)
    bim = pd.read_csv(prefix.with_suffix(".bim"), sep="\t", header=None)
    merged = pd.read_csv(raw / "ADNIMERGE.csv")
    assert set(fam[1]) <= set(merged["PTID"])  # IID = PTID
    assert set(fam[4]) <= {1, 2} and (fam[2] == 0).all() and (fam[3] == 0).all()  # sexes coded, founders

    result = subprocess.run(["plink2", "--bfile", str(prefix), "--freq", "--export", "A", "--out", str(tmp_path / "x")],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(pd.read_csv(tmp_path / "x.afreq", sep="\t")) == len(bim)
    exported = pd.read_csv(tmp_path / "x.raw", sep=r"\s+")
    assert list(exported["IID"]) == list(fam[1])

    genotypes = read_plink1_bin(str(prefix.with_suffix(".bed")), verbose=False)
    values = genotypes.values
    assert values.shape == (len(fam), len(bim))
    plink_counts = exported.iloc[:, 6:].to_numpy(dtype=float)
    np.testing.assert_array_equal(np.isnan(values), np.isnan(plink_counts))
    np.testing.assert_array_equal(np.nan_to_num(values, nan=-1), np.nan_to_num(plink_counts, nan=-1))

    panel = load_panel()
    assert set(panel["rsid"]) <= set(bim[1])
    has_apoe = {s.rsid for s in APOE_SNPS} <= set(bim[1])
    assert has_apoe == (phase == "ADNIGO2")  # the ADNI-1 array lacks rs429358 / rs7412
    effect = bim[1].map(panel.set_index("rsid")["effect_allele"])
    assert (bim[4] == effect).sum() > 0 and (bim[5] == effect).sum() > 0  # effect allele in both columns


@pytest.mark.parametrize("phase", sorted(PHASE_FILESETS))
def test_planted_qc_failures_are_removed_by_plink2(tiny_cohort, tmp_path, phase):
    raw, manifest = tiny_cohort
    prefix = raw / "genotypes" / PHASE_FILESETS[phase]
    out = tmp_path / "qc"
    result = subprocess.run(["plink2", "--bfile", str(prefix), "--mind", "0.05", "--geno", "0.05", "--maf", "0.01",
                             "--hwe", "1e-5", "--make-just-bim", "--make-just-fam", "--out", str(out)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    kept_snps = set(pd.read_csv(out.with_suffix(".bim"), sep="\t", header=None)[1])
    kept_samples = set(pd.read_csv(out.with_suffix(".fam"), sep=r"\s+", header=None)[1])
    planted = manifest["genotypes"][phase]["planted_qc_failures"]
    for category in ("snps_call_rate_below_95pct", "snps_maf_below_1pct", "snps_hwe_p_below_1e-5"):
        assert planted[category], category
        assert not set(planted[category]) & kept_snps, category
    assert planted["samples_call_rate_below_95pct"]
    assert not set(planted["samples_call_rate_below_95pct"]) & kept_samples
    # QC removes what was planted (and rare SNPs the manifest names as natural failures), nothing else
    all_snps = set(pd.read_csv(prefix.with_suffix(".bim"), sep="\t", header=None)[1])
    removed = set().union(*(planted[c] for c in planted if c.startswith("snps_")))
    natural = set(manifest["genotypes"][phase]["natural_qc_failures"]["snps_maf_below_1pct"])
    assert kept_snps == all_snps - removed - natural
    assert len(kept_samples) == manifest["genotypes"][phase]["n_samples"] - len(planted["samples_call_rate_below_95pct"])


def test_diagnosis_proportions_and_e4_enrichment_at_paper_size():
    table, doses = draw_cohort(tiny_spec(n_subjects=911, subjects_without_mri=0, subjects_without_genotypes=0))
    assert table["DX"].value_counts().to_dict() == {"MCI": 438, "CN": 291, "AD": 182}
    e4 = table.groupby("DX")["APOE4"].mean()
    assert e4["AD"] > e4["MCI"] > e4["CN"]
    prs = table.groupby("DX")["prs_z"].mean()
    assert prs["AD"] > prs["CN"]
    assert doses.shape == (911, len(load_panel())) and set(np.unique(doses)) <= {0, 1, 2}
    assert table["PTID"].is_unique


def test_apoe4_carrier_and_homozygote_rates_per_diagnosis_follow_the_config():
    spec = tiny_spec(n_subjects=6000, subjects_without_mri=0, subjects_without_genotypes=0)
    table, _ = draw_cohort(spec)
    for dx in DIAGNOSES:
        e4 = table.loc[table["DX"] == dx, "APOE4"]
        assert abs((e4 >= 1).mean() - spec.apoe4_by_diagnosis["carrier"][dx]) < 0.03, dx
        assert abs((e4 == 2).mean() - spec.apoe4_by_diagnosis["dose2"][dx]) < 0.03, dx
    haplotypes = table[["APGEN1", "APGEN2"]].to_numpy()
    assert (haplotypes[:, 0] <= haplotypes[:, 1]).all() and ((haplotypes == 4).sum(axis=1) == table["APOE4"]).all()
    freq = spec.apoe_haplotype_freq  # non-e4 haplotypes keep the population e2 : e3 ratio
    assert (haplotypes == 2).sum() / (haplotypes != 4).sum() == pytest.approx(freq["e2"] / (freq["e2"] + freq["e3"]), abs=0.01)
    # the polygenic score still drives diagnosis; e4 depends on diagnosis only, not on the liability within it
    prs = table.groupby("DX")["prs_z"].mean()
    assert prs["AD"] > prs["MCI"] > prs["CN"]
    for dx, members in table.groupby("DX"):
        assert abs(members["liability"].corr(members["APOE4"])) < 0.1, dx


ADNI1_APOE4 = {"carrier": {"CN": 0.27, "MCI": 0.53, "AD": 0.66}, "dose2": {"CN": 0.03, "MCI": 0.13, "AD": 0.20}}


@pytest.mark.parametrize("change, message", [
    (lambda r: r["dose2"].update(AD=0.7), r"apoe4_by_diagnosis\.dose2\.AD = 0\.7 exceeds carrier\.AD"),
    (lambda r: r["carrier"].update(MCI=1.2), r"apoe4_by_diagnosis\.carrier\.MCI must be within \[0, 1\]"),
    (lambda r: r["dose2"].update(CN=-0.1), r"apoe4_by_diagnosis\.dose2\.CN must be within \[0, 1\]"),
    (lambda r: r["carrier"].pop("MCI"), r"apoe4_by_diagnosis\.carrier needs a rate for each of CN, MCI, AD"),
    (lambda r: r.pop("dose2"), r"apoe4_by_diagnosis needs exactly 'carrier' and 'dose2'"),
])
def test_bad_apoe4_by_diagnosis_is_named(change, message):
    rates = {k: dict(v) for k, v in ADNI1_APOE4.items()}
    change(rates)
    with pytest.raises(G2IError, match=message):
        tiny_spec(apoe4_by_diagnosis=rates)


def test_missing_apoe4_by_diagnosis_is_named():
    resolved = resolve(load_params(ROOT / "params.yaml"), "demo")
    del resolved["synthesize"]["apoe4_by_diagnosis"]
    with pytest.raises(G2IError, match="synthesize.apoe4_by_diagnosis is missing"):
        CohortSpec.from_params(resolved)
    resolved["synthesize"]["apoe4_by_diagnosis"] = 0.3
    with pytest.raises(G2IError, match="bad value"):
        CohortSpec.from_params(resolved)


def test_ground_truth_effects_follow_diagnosis_and_e4():
    table, _ = draw_cohort(tiny_spec(n_subjects=3000, subjects_without_mri=0, subjects_without_genotypes=0))
    log_v = np.log(table["ventricle_scale_target"])
    assert log_v[table["DX"] == "AD"].mean() > log_v[table["DX"] == "MCI"].mean() > log_v[table["DX"] == "CN"].mean()
    hip = table.groupby("DX")["hippocampus_scale_target"].mean()
    assert hip["AD"] < hip["MCI"] < hip["CN"]
    thin = table.groupby("DX")["cortical_thinning"].mean()
    assert thin["AD"] > thin["MCI"] > thin["CN"]
    # e4 raises ventricle volume within diagnosis (least squares on dx dummies + e4 dose)
    design = np.column_stack([table["DX"] == d for d in ("CN", "MCI", "AD")] + [table["APOE4"]]).astype(float)
    coef = np.linalg.lstsq(design, log_v, rcond=None)[0]
    assert coef[3] > 0.03


def test_ids_stay_unique_and_in_adni_ranges_for_large_cohorts():
    """The 2,450-subject study cohort once ran ADNI-1 RIDs (1-3 apart) past 2000 into GO/2's range: 48 shared
    RIDs and a shared PTID, which the genotypes stage rejects. Large phases now step by 1."""
    from g2i.synthetic.cohort import PHASES, _assign_ids

    for n_adni1 in (10, 1100, 1998, 2700):
        table = pd.DataFrame({"phase": [PHASES[0]] * n_adni1 + [PHASES[1]] * 1400})
        ids = _assign_ids(table, np.random.default_rng(0))
        adni1 = ids["phase"] == PHASES[0]
        assert ids["RID"].is_unique and ids["PTID"].is_unique
        assert ids.loc[~adni1, "RID"].min() > ids.loc[adni1, "RID"].max()
        if n_adni1 <= 1998:   # ADNI's ranges whenever they can hold the cohort
            assert ids.loc[adni1, "RID"].between(2, 1999).all()
            assert ids.loc[~adni1, "RID"].between(2002, 9999).all()
        if n_adni1 == 10:     # small phases keep ADNI's 1-3 spacing
            assert ids.loc[adni1, "RID"].diff().dropna().max() > 1
