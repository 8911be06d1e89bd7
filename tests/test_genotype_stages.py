"""genotype_qc, genotypes and split: PLINK 2 QC, effect-allele encoding, APOE e4, exclusions, splits."""

from __future__ import annotations

import subprocess

import numpy as np
import pandas as pd
import pytest

from g2i.data.split import split_subjects
from g2i.errors import G2IError
from g2i.genetics.encoding import align
from g2i.genetics.panel import load_panel
from g2i.synthetic.cohort import draw_cohort

from .conftest import tiny_spec


def test_qc_removes_exactly_the_planted_failures(tiny_cohort, tiny_genotypes):
    _, manifest = tiny_cohort
    work, report, _ = tiny_genotypes
    removed = pd.read_csv(work / "removed.tsv", sep="\t")
    for phase, phase_manifest in manifest["genotypes"].items():
        planted = phase_manifest["planted_qc_failures"]
        got = removed[removed["phase"] == phase]
        expected_snps = set().union(*(planted[k] for k in planted if k.startswith("snps_")))
        expected_snps |= set(phase_manifest["natural_qc_failures"]["snps_maf_below_1pct"])
        assert set(got.loc[got["kind"] == "snp", "id"]) == expected_snps
        assert set(got.loc[got["kind"] == "sample", "id"]) == set(planted["samples_call_rate_below_95pct"])
        assert set(got.loc[got["filter"] == "hwe", "id"]) == set(planted["snps_hwe_p_below_1e-5"])
        steps = report["phases"][phase]["filters"]
        assert [s["filter"] for s in steps] == ["mind", "geno", "maf", "hwe"]
        for before, after in zip(steps, steps[1:]):
            assert before["snps_after"] == after["snps_before"]
        assert steps[-1]["snps_after"] == report["phases"][phase]["output"]["snps"]


def test_encoding_agrees_with_plink2_export_for_every_panel_snp(tiny_genotypes, tmp_path):
    work, _, (table, subjects, summary, _) = tiny_genotypes
    panel = load_panel().set_index("rsid")
    flipped_seen = direct_seen = 0
    for phase in ("ADNI1", "ADNIGO2"):
        prefix = work / "qc" / phase
        kept = summary["panel_snps_kept"]
        (tmp_path / "snps.txt").write_text("\n".join(kept) + "\n")
        result = subprocess.run(["plink2", "--bfile", str(prefix), "--extract", str(tmp_path / "snps.txt"),
                                 "--export", "A", "--out", str(tmp_path / phase)], capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        exported = pd.read_csv(tmp_path / f"{phase}.raw", sep=r"\s+").set_index("IID")
        bim = pd.read_csv(prefix.with_suffix(".bim"), sep="\t", header=None, index_col=1)
        ours = table.set_index("PTID")
        members = [p for p in exported.index if p in ours.index]
        assert members
        for column in exported.columns[5:]:
            rsid, counted = column.rsplit("_", 1)
            effect = panel.at[rsid, "effect_allele"]
            ambiguous = {effect, panel.at[rsid, "other_allele"]} in ({"A", "T"}, {"C", "G"})
            plink = exported.loc[members, column].astype(float)
            mine = ours.loc[members, rsid].astype(float)
            if ambiguous:
                continue  # letters cannot tell the strand; checked against the truth below
            expected = plink if counted == effect else 2 - plink
            np.testing.assert_array_equal(mine.fillna(-1).to_numpy(), expected.fillna(-1).to_numpy(), err_msg=rsid)
            if bim.at[rsid, 4] == effect:
                flipped_seen += 1  # effect allele in column 5: PLINK counts the other one
            else:
                direct_seen += 1
    assert flipped_seen > 0 and direct_seen > 0


def test_encoding_and_e4_equal_the_simulated_truth(tiny_cohort, tiny_genotypes):
    raw, _ = tiny_cohort
    _, _, (table, _, summary, _) = tiny_genotypes
    truth_table, doses = draw_cohort(tiny_spec())
    panel = load_panel()
    truth = pd.DataFrame(doses, columns=panel["rsid"], index=truth_table["PTID"])
    ours = table.set_index("PTID")
    kept = summary["panel_snps_kept"]
    called = ours[kept].notna()
    diff = (ours[kept].where(called).astype(float) - truth.loc[ours.index, kept].where(called)).abs()
    assert diff.max().max() == 0  # every called genotype, ambiguous SNPs included
    assert called.to_numpy().mean() > 0.98
    e4 = truth_table.set_index("PTID").loc[ours.index, "APOE4"]
    assert (ours["APOE4"] == e4).all()
    assert set(summary["apoe4_source"]) == {"rs429358", "ADNIMERGE/APOERES"}  # ADNI-1 has no APOE SNPs
    assert summary["apoe4_snp_agrees_with_clinical"] == 1.0


def test_every_subject_is_kept_or_excluded_with_a_reason(tiny_cohort, tiny_genotypes):
    raw, manifest = tiny_cohort
    _, _, (table, subjects, summary, exclusions) = tiny_genotypes
    counts = exclusions["reason"].value_counts().to_dict()
    assert counts["no T1 image found"] == manifest["subjects"]["without_mri"]
    assert counts["not genotyped"] == manifest["subjects"]["without_genotypes"]
    bad = sum(len(p["planted_qc_failures"]["samples_call_rate_below_95pct"]) for p in manifest["genotypes"].values())
    assert counts["removed by sample QC (call rate)"] == bad
    baseline = pd.read_csv(raw / "ADNIMERGE.csv").query("VISCODE == 'bl'")
    assert len(table) + len(exclusions) == len(baseline)
    assert list(subjects["PTID"]) == list(table["PTID"])
    assert set(table["diagnosis"]) == {"CN", "MCI", "AD"}
    assert all((raw / p).is_file() for p in subjects["t1_path"])


@pytest.mark.parametrize(
    "bim, panel, freq, expected",
    [
        (("C", "T"), ("T", "C"), 0.4, "as_is"),  # effect allele in column 6: PLINK counts it
        (("T", "C"), ("T", "C"), 0.4, "flip"),  # effect allele in column 5
        (("G", "A"), ("T", "C"), 0.4, "as_is"),  # other strand: comp(T) = A sits in column 6
        (("A", "G"), ("T", "C"), 0.4, "flip"),  # other strand, comp(T) = A in column 5
        (("A", "C"), ("T", "C"), 0.4, "drop"),  # letters do not match
    ],
)
def test_align_by_allele_letters(bim, panel, freq, expected):
    decision = align("rsX", bim[0], bim[1], panel[0], panel[1], freq, col6_freq_observed=0.5)
    assert decision.action == expected


def test_align_strand_ambiguous_snps():
    # C/G SNP, effect G at 20 %: column 6 = G observed at 20 % -> same strand, count column 6
    assert align("rsA", "C", "G", "G", "C", 0.2, 0.2).action == "as_is"
    # observed 80 % for column-6 G: the array reports the other strand -> flip
    assert align("rsA", "C", "G", "G", "C", 0.2, 0.8).action == "flip"
    assert align("rsA", "C", "G", "G", "C", 0.45, 0.45).action == "drop"  # too close to 50 %
    assert align("rsA", "C", "G", "G", "C", 0.2, 0.2, ambiguous="drop").action == "drop"


def test_split_is_stratified_disjoint_and_seeded(tiny_genotypes):
    _, _, (_, subjects, _, _) = tiny_genotypes
    split = split_subjects(subjects, test_per_class=3, val_fraction=0.2, seed=1)
    assert split["PTID"].is_unique and set(split["PTID"]) == set(subjects["PTID"])
    test = split[split["split"] == "test"]
    assert test["diagnosis"].value_counts().to_dict() == {"CN": 3, "MCI": 3, "AD": 3}
    again = split_subjects(subjects.sample(frac=1, random_state=0), test_per_class=3, val_fraction=0.2, seed=1)
    pd.testing.assert_frame_equal(split, again)
    assert not split.equals(split_subjects(subjects, test_per_class=3, val_fraction=0.2, seed=2))
    with pytest.raises(G2IError, match="too few"):
        split_subjects(subjects, test_per_class=40, val_fraction=0.2, seed=1)
