"""Where the raw inputs live: params.yaml `data`, each path relative to `data.root` (or absolute).

`data.root` is also what dvc.yaml tracks (`${data.root}`), so DVC watches exactly the files the stages
read, inside the repository (data/raw, versioned by data.dvc) or anywhere else (a real ADNI download).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from ..errors import G2IError

GROUND_TRUTH = "synthetic/ground_truth.csv"   # under the root of a synthetic cohort only: the planted truth


@dataclass(frozen=True)
class RawInputs:
    root: Path
    adnimerge: Path
    apoeres: Path | None
    genotype_filesets: dict[str, Path]   # phase -> PLINK 1 prefix
    t1_patterns: tuple[str, ...]         # relative to root (mri_dir/pattern), {PTID} replaced; first match wins
    diagnosis_map: dict[str, str]        # ADNIMERGE DX_bl -> 3-way label

    @classmethod
    def from_params(cls, data: Mapping[str, Any], project_root: Path) -> "RawInputs":
        if "root" not in data:
            raise G2IError("params.yaml: data.root is missing (the folder holding the raw inputs, e.g. data/raw)")
        root = Path(project_root) / str(data["root"])
        if not root.is_dir():
            raise G2IError(f"{root}: the raw data folder (params.yaml data.root) does not exist; generate the synthetic "
                           "cohort (`make cohort`) or point data.root at your ADNI download")
        return cls(root=root, adnimerge=root / data["adnimerge"],
                   apoeres=root / data["apoeres"] if data.get("apoeres") else None,
                   genotype_filesets={phase: root / data["genotypes_dir"] / prefix
                                      for phase, prefix in data["genotype_filesets"].items()},
                   t1_patterns=tuple(f"{data['mri_dir']}/{p}" for p in data["t1_patterns"]),
                   diagnosis_map=dict(data["diagnosis_map"]))

    @property
    def ground_truth(self) -> Path:
        """The synthetic cohort's planted truth (absent from a real download)."""
        return self.root / GROUND_TRUTH

    def path(self, relative: str | Path) -> Path:
        """A path as written in the stage outputs (relative to root, or absolute) on this machine."""
        return Path(relative) if Path(relative).is_absolute() else self.root / relative
