"""The AD candidate-gene SNP panel shipped with G2I, and the two SNPs that define APOE e4."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

import pandas as pd

PANEL_RESOURCE = "alzgene_panel.tsv"


@dataclass(frozen=True)
class ApoeSnp:
    rsid: str
    chrom: int
    bp_hg19: int
    allele_e3: str  # allele carried by the e3 haplotype
    allele_other: str  # the other allele: e4 at rs429358, e2 at rs7412


# e4 = rs429358-C with rs7412-C; e2 = rs429358-T with rs7412-T; e3 = rs429358-T with rs7412-C.
# The paper's "rs429368" is a typo for rs429358.
APOE_SNPS = (
    ApoeSnp("rs429358", 19, 45411941, allele_e3="T", allele_other="C"),
    ApoeSnp("rs7412", 19, 45412079, allele_e3="C", allele_other="T"),
)
APOE_HAPLOTYPE_ALLELES = {  # haplotype -> (rs429358 allele, rs7412 allele)
    "e2": ("T", "T"),
    "e3": ("T", "C"),
    "e4": ("C", "C"),
}


def load_panel() -> pd.DataFrame:
    """The shipped panel: rsid, gene, effect/other allele, effect-allele frequency, OR, source."""
    with resources.files("g2i.resources").joinpath(PANEL_RESOURCE).open() as handle:
        panel = pd.read_csv(handle, sep="\t", comment="#", dtype={"chrom": int, "bp_hg19": int})
    return panel.reset_index(drop=True)


def is_strand_ambiguous(allele_a: str, allele_b: str) -> bool:
    """A/T and C/G SNPs read the same on both strands, so allele letters cannot align them."""
    return {allele_a.upper(), allele_b.upper()} in ({"A", "T"}, {"C", "G"})
