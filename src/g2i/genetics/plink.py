"""PLINK 1 binary filesets (.bed/.bim/.fam), written the way PLINK itself writes them.

.bed layout (SNP-major): magic bytes 0x6C 0x1B 0x01, then per SNP ceil(n_samples / 4) bytes,
four samples per byte from the low bits up. Two-bit codes relative to the .bim alleles:
00 = homozygous allele 1 (column 5), 01 = missing, 10 = heterozygous, 11 = homozygous allele 2.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

BED_MAGIC = bytes([0x6C, 0x1B, 0x01])
MISSING = -1
BIM_COLUMNS = ["chrom", "snp", "cm", "pos", "a1", "a2"]
FAM_COLUMNS = ["fid", "iid", "father", "mother", "sex", "pheno"]

# count of allele 1 (column 5) -> two-bit code; index 3 is MISSING (-1) via modulo-4 indexing.
_CODE_FOR_A1_COUNT = np.array([0b11, 0b10, 0b00, 0b01], dtype=np.uint8)


def encode_bed_rows(a1_counts: np.ndarray) -> bytes:
    """Pack an (n_snps x n_samples) matrix of allele-1 counts (0/1/2, -1 missing) into .bed rows."""
    counts = np.asarray(a1_counts)
    if counts.ndim != 2:
        raise ValueError("a1_counts must be 2-D: SNPs x samples")
    if not np.isin(counts, (MISSING, 0, 1, 2)).all():
        raise ValueError("a1_counts must hold 0, 1, 2 or -1 (missing)")
    n_snps, n_samples = counts.shape
    codes = _CODE_FOR_A1_COUNT[counts.astype(np.int64) % 4]
    padded = np.full((n_snps, -(-n_samples // 4) * 4), 0b01, dtype=np.uint8)  # pad bits as missing
    padded[:, :n_samples] = codes
    quads = padded.reshape(n_snps, -1, 4)
    packed = quads[..., 0] | (quads[..., 1] << 2) | (quads[..., 2] << 4) | (quads[..., 3] << 6)
    return packed.astype(np.uint8).tobytes()


def write_plink1(prefix: str | Path, bim: pd.DataFrame, fam: pd.DataFrame, a1_counts: np.ndarray) -> None:
    """Write prefix.bed/.bim/.fam. `a1_counts[i, j]` counts bim.a1[i] in sample fam.iid[j]."""
    prefix = Path(prefix)
    if a1_counts.shape != (len(bim), len(fam)):
        raise ValueError(f"genotype matrix {a1_counts.shape} != (bim rows {len(bim)}, fam rows {len(fam)})")
    bim[BIM_COLUMNS].to_csv(prefix.with_suffix(".bim"), sep="\t", header=False, index=False)
    fam[FAM_COLUMNS].to_csv(prefix.with_suffix(".fam"), sep=" ", header=False, index=False)
    with open(prefix.with_suffix(".bed"), "wb") as handle:
        handle.write(BED_MAGIC)
        handle.write(encode_bed_rows(a1_counts))
