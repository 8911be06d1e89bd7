"""Training examples: (slice x_0, diagnosis, genotype codes) joined from the processed tables.

Reads data/processed/slices/{slices.npy,index.csv} (memory-mapped, so the cohort never has to fit in
memory), genotypes.csv and split.csv. Genotype codes are 0/1/2 with 3 for a missing call, the
vocabulary of the genotype encoder T_theta.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from ..errors import G2IError
from ..vocabulary import DIAGNOSES, codes_from_nan

META_COLUMNS = ("PTID", "diagnosis", "APOE4")


@dataclass(frozen=True)
class ProcessedPaths:
    slices_dir: Path = Path("data/processed/slices")
    genotypes: Path = Path("data/processed/genotypes.csv")
    split: Path = Path("data/processed/split.csv")

    def check(self) -> None:
        missing = [str(p) for p in (self.slices_dir / "slices.npy", self.slices_dir / "index.csv", self.genotypes,
                                    self.split) if not Path(p).is_file()]
        if missing:
            raise G2IError(f"processed data missing: {', '.join(missing)}; run `dvc repro` (or `make demo`) first")


def genotype_codes(table: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
    """SNP columns (panel SNPs, then APOE4 as one more token) as int64 codes with 3 = missing."""
    snps = [c for c in table.columns if c not in META_COLUMNS] + ["APOE4"]
    codes = table[snps].to_numpy(dtype=float)
    if np.nanmax(codes) > 2 or np.nanmin(codes) < 0:
        raise G2IError("genotype table holds codes outside 0/1/2")
    return codes_from_nan(codes), snps


class SliceGenotypeDataset(Dataset):
    """One item per slice of a subject in `split`: x_0 (C x H x W float32), label index, SNP codes."""

    def __init__(self, paths: ProcessedPaths, split: str, images: Path | None = None):
        """`images`: an array aligned with the slices' rows to read instead (e.g. cached latents)."""
        paths.check()
        images = Path(images) if images is not None else paths.slices_dir / "slices.npy"
        if not images.is_file():
            raise G2IError(f"{images}: not found; run `dvc repro` (or `make demo`) first")
        self.images = np.load(images, mmap_mode="r")
        index = pd.read_csv(paths.slices_dir / "index.csv")
        genotypes = pd.read_csv(paths.genotypes)
        members = pd.read_csv(paths.split)
        keep = set(members.loc[members["split"] == split, "PTID"])
        if not keep:
            raise G2IError(f"{paths.split}: no subject in split '{split}'")
        self.index = index[index["PTID"].isin(keep)].reset_index(drop=True)
        codes, self.snps = genotype_codes(genotypes)
        row_of = {ptid: i for i, ptid in enumerate(genotypes["PTID"])}
        absent = sorted(set(self.index["PTID"]) - set(row_of))
        if absent:
            raise G2IError(f"{paths.genotypes}: no genotypes for {len(absent)} subject(s) with slices, e.g. {absent[0]}")
        self.codes = codes[[row_of[p] for p in self.index["PTID"]]]
        self.labels = self.index["diagnosis"].map({d: i for i, d in enumerate(DIAGNOSES)}).to_numpy()

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        image = torch.from_numpy(np.array(self.images[self.index.at[i, "row"]], dtype=np.float32))  # a writable copy
        if image.dim() == 2:
            image = image[None]  # slices are H x W; latents already C x h x w
        return {"x_0": image, "label": torch.tensor(self.labels[i]), "genotype": torch.from_numpy(self.codes[i])}

    def array(self) -> np.ndarray:
        """All slices of a split as N x H x W float32 (latents: N x C x h x w), in index order, in memory."""
        return np.stack([np.asarray(self.images[r], dtype=np.float32) for r in self.index["row"]])

    def stacked(self) -> dict[str, torch.Tensor]:
        """Every item at once, as tensors with a leading item axis (the training sets fit in memory)."""
        items = [self[i] for i in range(len(self))]
        return {key: torch.stack([item[key] for item in items]) for key in items[0]}
