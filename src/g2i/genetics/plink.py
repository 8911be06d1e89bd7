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
    padded = np.zeros((n_snps, -(-n_samples // 4) * 4), dtype=np.uint8)  # PLINK pads the last byte with zeros
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


def read_bim(path: str | Path) -> pd.DataFrame:
    return pd.read_csv(path, sep=r"\s+", header=None, names=BIM_COLUMNS, dtype={"chrom": str, "snp": str, "a1": str, "a2": str})


def read_fam(path: str | Path) -> pd.DataFrame:
    return pd.read_csv(path, sep=r"\s+", header=None, names=FAM_COLUMNS, dtype={"fid": str, "iid": str})


def check_fileset(prefix: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read a fileset's .bim and .fam and check them against the .bed; errors name the file.

    Catches what PLINK would report less plainly: missing files, a .bed that is not SNP-major PLINK 1,
    a truncated .bed, .bim/.fam line counts that disagree with the .bed size, duplicate sample IDs.
    """
    from ..errors import G2IError

    prefix = Path(prefix)
    paths = {ext: prefix.with_name(prefix.name + ext) for ext in (".bed", ".bim", ".fam")}
    for ext, path in paths.items():
        if not path.is_file():
            raise G2IError(f"{path}: not found (a PLINK 1 fileset needs .bed, .bim and .fam)")
    try:
        bim, fam = read_bim(paths[".bim"]), read_fam(paths[".fam"])
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as exc:
        raise G2IError(f"{prefix}: cannot parse .bim/.fam ({exc})") from exc
    if bim.shape[1] != 6 or bim["pos"].isna().any():
        raise G2IError(f"{paths['.bim']}: expected 6 whitespace-separated columns on every line")
    with open(paths[".bed"], "rb") as handle:
        magic = handle.read(3)
    if magic != BED_MAGIC:
        raise G2IError(f"{paths['.bed']}: not a SNP-major PLINK 1 .bed file (bad magic bytes)")
    expected = len(BED_MAGIC) + len(bim) * -(-len(fam) // 4)
    actual = paths[".bed"].stat().st_size
    if actual != expected:
        problem = "truncated" if actual < expected else "longer than expected"
        raise G2IError(
            f"{paths['.bed']}: {problem}: {actual} bytes, but {len(bim)} SNPs in .bim x {len(fam)} samples in .fam "
            f"need {expected}; the .bed, .bim and .fam do not belong together or the .bed is damaged"
        )
    duplicated = fam["iid"][fam["iid"].duplicated()].unique()
    if len(duplicated):
        raise G2IError(f"{paths['.fam']}: duplicate sample IDs (IID/PTID): {', '.join(duplicated[:10])}")
    return bim, fam
