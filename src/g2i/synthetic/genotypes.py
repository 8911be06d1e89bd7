"""Synthetic genotype arrays, one PLINK 1 fileset per ADNI phase, with QC failures planted on purpose.

Per phase (file names as ADNI distributes them): the panel SNPs; rs429358 / rs7412 only on the
ADNI-GO/2 array (the ADNI-1 Human610-Quad lacks them, as in reality); a background of other SNPs,
partly shared between the arrays; SNPs that must fail QC (call rate < 95 %, MAF < 1 %, HWE exact
p < 1e-5) and samples with a call rate < 95 %. Allele order in the .bim is mixed: usually the minor
allele in column 5 (PLINK's habit), sometimes not, so the effect allele sits in either column.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..genetics.panel import APOE_HAPLOTYPE_ALLELES, APOE_SNPS, load_panel
from ..genetics.plink import MISSING, write_plink1
from .cohort import PHASES, stream

PHASE_FILESETS = {"ADNI1": "ADNI_cluster_01_forward_757LONI", "ADNIGO2": "ADNI_GO_2_Forward_Bin"}
# Chromosome lengths (hg19, Mb) to spread background SNPs realistically.
CHROM_MB = (249, 243, 198, 191, 181, 171, 159, 146, 141, 136, 135, 134, 115, 107, 103, 90, 81, 78, 59, 63, 48, 51)
ALLELE_PAIRS = (("A", "G"), ("G", "A"), ("C", "T"), ("T", "C"), ("A", "C"), ("C", "A"), ("G", "T"), ("T", "G"),
                ("A", "T"), ("C", "G"))
ARRAY_SHARE = 0.9  # fraction of the background catalogue carried by each phase's array
BASELINE_MISSING_MAX = 0.005
BAD_SAMPLE_MISSING = 0.12


def background_catalogue(seed: int, n_snps: int, taken: set[str]) -> pd.DataFrame:
    """Background SNPs: rsIDs, positions, alleles (a = counted allele) and its frequency."""
    rng = stream(seed, 1, 0)
    ids: list[str] = []
    while len(ids) < n_snps:
        candidate = f"rs{int(rng.integers(1_000_000, 200_000_000))}"
        if candidate not in taken:
            taken.add(candidate)
            ids.append(candidate)
    weights = np.array(CHROM_MB, dtype=float)
    chrom = rng.choice(np.arange(1, 23), size=n_snps, p=weights / weights.sum())
    pos = (rng.random(n_snps) * weights[chrom - 1] * 1e6).astype(int) + 10_000
    pairs = np.array(ALLELE_PAIRS)[rng.integers(0, len(ALLELE_PAIRS), size=n_snps)]
    return pd.DataFrame({"snp": ids, "chrom": chrom, "pos": pos, "allele": pairs[:, 0], "other": pairs[:, 1],
                         "freq": rng.uniform(0.08, 0.5, size=n_snps)})


def _hwe_doses(rng: np.random.Generator, freq: np.ndarray, n_samples: int) -> np.ndarray:
    return rng.binomial(2, freq[:, None], size=(len(freq), n_samples)).astype(np.int8)


def write_phase_filesets(spec, table: pd.DataFrame, panel_doses: np.ndarray, out_dir: Path) -> dict:
    """Write one fileset per phase into out_dir; return the manifest entry of planted QC failures."""
    panel = load_panel()
    taken = set(panel["rsid"]) | {s.rsid for s in APOE_SNPS}
    catalogue = background_catalogue(spec.seed, spec.n_background_snps, taken)
    manifest: dict = {}
    for phase_index, phase in enumerate(PHASES):
        members = np.flatnonzero((table["phase"].to_numpy() == phase) & table["has_genotypes"].to_numpy())
        if members.size == 0:
            continue
        rng = stream(spec.seed, 1, phase_index + 1)
        subjects = table.iloc[members]
        n = len(members)
        blocks = []  # (snp rows: chrom, snp, pos, allele, other; doses of `allele`)

        # Panel SNPs: doses of the effect allele, drawn with the subjects.
        blocks.append((pd.DataFrame({"chrom": panel["chrom"], "snp": panel["rsid"], "pos": panel["bp_hg19"],
                                     "allele": panel["effect_allele"], "other": panel["other_allele"]}),
                       panel_doses[members].T.copy()))
        if phase == "ADNIGO2":  # APOE SNPs: doses of the non-e3 allele from the haplotypes
            haplo = subjects[["APGEN1", "APGEN2"]].to_numpy()
            rows, doses = [], []
            for k, snp in enumerate(APOE_SNPS):
                rows.append({"chrom": snp.chrom, "snp": snp.rsid, "pos": snp.bp_hg19,
                             "allele": snp.allele_other, "other": snp.allele_e3})
                alleles = np.vectorize(lambda h: APOE_HAPLOTYPE_ALLELES[f"e{h}"][k])(haplo)
                doses.append((alleles == snp.allele_other).sum(axis=1))
            blocks.append((pd.DataFrame(rows), np.array(doses, dtype=np.int8)))

        on_array = catalogue[rng.random(len(catalogue)) < ARRAY_SHARE].reset_index(drop=True)
        blocks.append((on_array[["chrom", "snp", "pos", "allele", "other"]],
                       _hwe_doses(rng, on_array["freq"].to_numpy(), n)))

        # SNPs planted to fail QC, each failing exactly one filter.
        planted = {}
        qc = spec.qc_failures
        bad = background_catalogue(spec.seed * 7 + phase_index, qc["high_missing_snps"] + qc["rare_snps"] + qc["hwe_snps"], taken)
        n_miss, n_rare = qc["high_missing_snps"], qc["rare_snps"]
        miss_rows, rare_rows, hwe_rows = bad.iloc[:n_miss], bad.iloc[n_miss:n_miss + n_rare], bad.iloc[n_miss + n_rare:]
        miss_doses = _hwe_doses(rng, miss_rows["freq"].to_numpy(), n)
        rare_doses = np.zeros((len(rare_rows), n), dtype=np.int8)
        if 2 * n > 100:  # one carrier keeps MAF = 1/(2n) < 1 % while the SNP is still polymorphic
            rare_doses[:, 0] = 1
        hwe_doses = np.where(rng.random((len(hwe_rows), n)) < 0.5, 0, 2).astype(np.int8)  # no heterozygotes
        for rows, doses in ((miss_rows, miss_doses), (rare_rows, rare_doses), (hwe_rows, hwe_doses)):
            blocks.append((rows[["chrom", "snp", "pos", "allele", "other"]], doses))
        planted["snps_call_rate_below_95pct"] = sorted(miss_rows["snp"])
        planted["snps_maf_below_1pct"] = sorted(rare_rows["snp"])
        planted["snps_hwe_p_below_1e-5"] = sorted(hwe_rows["snp"])

        snps = pd.concat([b[0] for b in blocks], ignore_index=True)
        doses = np.concatenate([b[1] for b in blocks]).astype(np.int8)

        # Missing calls: a little everywhere, a lot in the planted samples and SNPs.
        n_ordinary = len(doses) - len(bad)
        missing = np.zeros(doses.shape, dtype=bool)
        missing[:n_ordinary] = rng.random((n_ordinary, n)) < rng.uniform(0, BASELINE_MISSING_MAX, size=(n_ordinary, 1))
        bad_samples = rng.choice(n, size=min(qc["high_missing_samples"], n), replace=False)
        missing[:n_ordinary, bad_samples] |= rng.random((n_ordinary, len(bad_samples))) < BAD_SAMPLE_MISSING
        good_samples = np.setdiff1d(np.arange(n), bad_samples)
        # Ordinary SNPs keep their call rate >= 96 % among the samples that pass sample QC, so that only
        # the planted SNPs fail the call-rate filter.
        cap = int(0.04 * len(good_samples))
        for row in np.flatnonzero(missing[:n_ordinary][:, good_samples].sum(axis=1) > cap):
            hit = good_samples[missing[row, good_samples]]
            missing[row, hit[cap:]] = False
        for row in range(n_ordinary, n_ordinary + n_miss):
            # 10-25 % missing among samples that survive sample QC, so the SNP fails whatever runs first
            k = max(int(np.ceil(rng.uniform(0.10, 0.25) * len(good_samples))), int(0.05 * len(good_samples)) + 1)
            missing[row, rng.choice(good_samples, size=min(k, len(good_samples)), replace=False)] = True
        planted["samples_call_rate_below_95pct"] = sorted(subjects["PTID"].iloc[bad_samples])
        # Rare panel SNPs (e.g. rs8093731, 1 %) may fail MAF < 1 % by chance in a small cohort: that is real
        # biology, not a planted failure, so list them separately with the reason.
        called = ~missing[:n_ordinary][:, good_samples]
        kept_doses = np.where(called, doses[:n_ordinary][:, good_samples], 0)
        freq = kept_doses.sum(axis=1) / np.maximum(2 * called.sum(axis=1), 1)
        natural_rare = np.flatnonzero(np.minimum(freq, 1 - freq) < 0.01)

        # Column 5 holds the minor allele (PLINK's habit) for 75 % of SNPs, the other order otherwise.
        allele_freq = doses.mean(axis=1) / 2
        counted_is_minor = allele_freq <= 0.5
        a1_is_counted = np.where(rng.random(len(snps)) < 0.75, counted_is_minor, ~counted_is_minor)
        a1 = np.where(a1_is_counted, snps["allele"], snps["other"])
        a2 = np.where(a1_is_counted, snps["other"], snps["allele"])
        a1_counts = np.where(a1_is_counted[:, None], doses, 2 - doses).astype(np.int8)
        a1_counts[missing] = MISSING

        order = np.lexsort((snps["pos"].to_numpy(), snps["chrom"].to_numpy()))
        bim = pd.DataFrame({"chrom": snps["chrom"].to_numpy()[order], "snp": snps["snp"].to_numpy()[order], "cm": 0,
                            "pos": snps["pos"].to_numpy()[order], "a1": a1[order], "a2": a2[order]})
        fam = pd.DataFrame({"fid": subjects["PTID"].to_numpy(), "iid": subjects["PTID"].to_numpy(), "father": 0,
                            "mother": 0, "sex": np.where(subjects["PTGENDER"] == "Male", 1, 2), "pheno": -9})
        write_plink1(out_dir / PHASE_FILESETS[phase], bim, fam, a1_counts[order])
        effect_allele = bim["snp"].map(panel.set_index("rsid")["effect_allele"])
        manifest[phase] = {
            "fileset": PHASE_FILESETS[phase],
            "n_samples": int(n),
            "n_snps": int(len(bim)),
            "panel_snps_with_effect_allele_in_column_5": int((bim["a1"] == effect_allele).sum()),
            "panel_snps_with_effect_allele_in_column_6": int((bim["a2"] == effect_allele).sum()),
            "planted_qc_failures": {k: v for k, v in planted.items()},
            "planted_qc_failure_counts": {k: len(v) for k, v in planted.items()},
            "natural_qc_failures": {"snps_maf_below_1pct": sorted(snps["snp"].iloc[natural_rare])},
        }
    return manifest
