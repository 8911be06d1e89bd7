"""Encode panel SNPs as counts of the panel's effect allele (0/1/2), aligned by allele letters.

A PLINK .bim row names two alleles in an arbitrary order (column 5 and column 6) and possibly on the
other strand. For each panel SNP (effect allele E, other allele O):
- {col5, col6} == {E, O}: count E directly (the order only decides whether to flip 0 <-> 2);
- {col5, col6} == {comp(E), comp(O)}: the array reports the other strand; count comp(E);
- strand-ambiguous SNPs (A/T, C/G) read the same on both strands, so letters cannot settle the strand.
  With `ambiguous="infer_from_frequency"` the strand is taken from the allele frequency (the one that
  matches the panel's effect-allele frequency), and SNPs whose minor allele frequency exceeds
  `ambiguous_max_maf` (too close to 50 % to tell) are dropped; with `ambiguous="drop"` all are dropped;
- anything else (other letters, a monomorphic '0' allele) is dropped and reported.
PLINK's .bed codes count the column-6 allele (as `plink2 --export A` and pandas-plink do).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .panel import is_strand_ambiguous

COMPLEMENT = {"A": "T", "T": "A", "C": "G", "G": "C"}
AMBIGUOUS_POLICIES = ("infer_from_frequency", "drop")


@dataclass(frozen=True)
class Alignment:
    rsid: str
    action: str  # "as_is" (count column-6 allele), "flip" (2 - that), "drop"
    reason: str


def align(rsid: str, col5: str, col6: str, effect: str, other: str, effect_freq: float,
          col6_freq_observed: float, ambiguous: str = "infer_from_frequency", ambiguous_max_maf: float = 0.4) -> Alignment:
    """Decide how the column-6 allele count maps to the effect-allele count for one SNP."""
    col5, col6, effect, other = (a.upper() for a in (col5, col6, effect, other))
    bim_pair = {col5, col6}
    if is_strand_ambiguous(effect, other):
        if bim_pair != {effect, other}:
            return Alignment(rsid, "drop", f"alleles {col5}/{col6} do not match the panel's {effect}/{other}")
        if ambiguous == "drop":
            return Alignment(rsid, "drop", "strand-ambiguous (A/T or C/G); policy 'drop'")
        maf = min(effect_freq, 1 - effect_freq)
        if maf > ambiguous_max_maf:
            return Alignment(rsid, "drop", f"strand-ambiguous with panel MAF {maf:.2f} > {ambiguous_max_maf}: strand cannot be told")
        # Same strand: the effect allele's observed frequency should be near the panel's.
        effect_observed = col6_freq_observed if col6 == effect else 1 - col6_freq_observed
        same_strand = abs(effect_observed - effect_freq) <= abs((1 - effect_observed) - effect_freq)
        counts_effect = (col6 == effect) == same_strand
        return Alignment(rsid, "as_is" if counts_effect else "flip",
                         "strand-ambiguous; strand inferred from allele frequency" + ("" if same_strand else " (flipped strand)"))
    if bim_pair == {effect, other}:
        return Alignment(rsid, "as_is" if col6 == effect else "flip", "alleles match")
    if bim_pair == {COMPLEMENT.get(effect), COMPLEMENT.get(other)}:
        return Alignment(rsid, "as_is" if col6 == COMPLEMENT[effect] else "flip", "alleles match on the other strand")
    return Alignment(rsid, "drop", f"alleles {col5}/{col6} do not match the panel's {effect}/{other}")


def effect_allele_counts(col6_counts: pd.DataFrame, bim: pd.DataFrame, panel: pd.DataFrame, ambiguous: str,
                         ambiguous_max_maf: float) -> tuple[pd.DataFrame, list[Alignment]]:
    """Panel SNPs of one fileset as effect-allele counts (samples x rsIDs; NaN = missing call).

    `col6_counts` holds PLINK's column-6 allele counts for the panel SNPs present (samples x rsIDs).
    """
    if ambiguous not in AMBIGUOUS_POLICIES:
        raise ValueError(f"ambiguous must be one of {AMBIGUOUS_POLICIES}, got {ambiguous!r}")
    rows = bim.set_index("snp")
    out, decisions = {}, []
    for snp in panel.itertuples():
        if snp.rsid not in col6_counts.columns:
            continue
        counts = col6_counts[snp.rsid]
        observed = float(np.nanmean(counts) / 2) if counts.notna().any() else np.nan
        decision = align(snp.rsid, rows.at[snp.rsid, "a1"], rows.at[snp.rsid, "a2"], snp.effect_allele,
                         snp.other_allele, snp.effect_allele_freq, observed, ambiguous, ambiguous_max_maf)
        decisions.append(decision)
        if decision.action == "as_is":
            out[snp.rsid] = counts
        elif decision.action == "flip":
            out[snp.rsid] = 2 - counts
    return pd.DataFrame(out, index=col6_counts.index), decisions
