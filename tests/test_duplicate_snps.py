"""Real arrays carry duplicate probes and `.` IDs: duplicated panel rsIDs are merged when the copies agree
and refused (or dropped, by option) when they disagree; QC counts every variant, whatever its ID."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from g2i.data.genotype_table import read_col6_counts
from g2i.errors import G2IError
from g2i.genetics.plink import read_bim, write_plink1
from g2i.genetics.qc import QcThresholds, run_genotype_qc

N = 40


def fileset(tmp_path, snps: list[tuple[str, str, str]], counts: np.ndarray, name: str = "x"):
    """snps: (ID, A1, A2) per row; counts: A1 counts, rows x samples (-1 missing)."""
    bim = pd.DataFrame({"chrom": "19", "snp": [s[0] for s in snps], "cm": 0,
                        "pos": np.arange(len(snps)) * 1000 + 45_000_000, "a1": [s[1] for s in snps],
                        "a2": [s[2] for s in snps]})
    fam = pd.DataFrame({"fid": [f"S{i}" for i in range(N)], "iid": [f"S{i}" for i in range(N)], "father": 0,
                        "mother": 0, "sex": 1, "pheno": -9})
    write_plink1(tmp_path / name, bim, fam, counts.astype(np.int8))
    return tmp_path / name


@pytest.fixture
def doses():
    rng = np.random.default_rng(1)
    return rng.integers(0, 3, size=N)


def test_agreeing_copies_are_merged_each_filling_the_others_missing_calls(tmp_path, doses):
    first, second = doses.copy(), 2 - doses          # the second probe reports A1/A2 the other way round
    first[:5], second[5:10] = -1, -1                  # each copy misses calls the other has
    prefix = fileset(tmp_path, [("rs429358", "C", "T"), ("rs1", "A", "G"), ("rs429358", "T", "C")],
                     np.stack([first, doses, second]))
    col6, report = read_col6_counts(prefix, ["rs429358", "rs1"], "error")
    single, _ = read_col6_counts(fileset(tmp_path, [("rs429358", "C", "T")], doses[None], "y"), ["rs429358"], "error")
    np.testing.assert_array_equal(col6["rs429358"].to_numpy(), single["rs429358"].to_numpy())   # no call lost
    assert report == {"rs429358": {"copies": 2, "calls_compared": N - 10, "calls_disagreeing": 0,
                                   "alleles_differ": False, "action": "merged"}}


def test_disagreeing_copies_are_an_error_naming_the_file_or_dropped_by_option(tmp_path, doses):
    other = doses.copy()
    other[:13] = (other[:13] + 1) % 3                 # a third of the calls differ
    prefix = fileset(tmp_path, [("rs429358", "C", "T"), ("rs429358", "C", "T"), ("rs1", "A", "G")],
                     np.stack([doses, other, doses]))
    with pytest.raises(G2IError, match=r"x\.bim: panel SNP rs429358 appears 2 times and the copies disagree on 13 of 40"):
        read_col6_counts(prefix, ["rs429358", "rs1"], "error")
    col6, report = read_col6_counts(prefix, ["rs429358", "rs1"], "drop")
    assert list(col6.columns) == ["rs1"] and report["rs429358"]["action"] == "dropped"
    with pytest.raises(G2IError, match="duplicate_snps"):
        read_col6_counts(prefix, ["rs1"], "first")


def test_qc_counts_every_variant_with_dot_and_duplicate_ids(tmp_path, doses):
    rng = np.random.default_rng(2)
    common = [rng.binomial(2, 0.4, size=N) for _ in range(6)]   # in Hardy-Weinberg equilibrium
    rare = np.zeros(N, dtype=int)                               # monomorphic: the MAF filter removes it
    snps = [(".", "A", "G"), (".", "C", "T"), ("rs5", "A", "G"), ("rs5", "A", "C"), (".", "G", "T"),
            ("rs6", "A", "G"), ("rs7", "A", "G")]
    prefix = fileset(tmp_path, snps, np.stack([*common[:4], rare, common[4], common[5]]))
    report = run_genotype_qc({"P": prefix}, tmp_path / "qc", tmp_path / "qc.json", tmp_path / "removed.tsv",
                             QcThresholds())
    phase = report["phases"]["P"]
    kept = read_bim(tmp_path / "qc" / "P.bim")
    removed = pd.read_csv(tmp_path / "removed.tsv", sep="\t")
    removed = removed.loc[removed["kind"] == "snp", "id"].tolist()
    assert phase["input"]["snps"] == 7 and phase["output"]["snps"] == len(kept)
    assert len(kept) + len(removed) == 7 and ".@19:45004000:G:T" in removed   # the '.' SNP, named by position
    assert all(step["snps_before"] - step["snps_after"] >= 0 for step in phase["filters"])
    # shared rsIDs across phases: real IDs only, duplicates once
    assert report["snps_in_all_phases_after_qc"] == len(set(kept["snp"]) - {"."})
