"""Generator parameters: read from params.yaml (`synthesize` section, overlaid by the profile), checked."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import G2IError
from ..imaging.grid import Grid
from .render import ImageNuisance

DIAGNOSES = ("CN", "MCI", "AD")
MIN_SUBJECTS_PER_CLASS = 3


@dataclass(frozen=True)
class CohortSpec:
    profile: str
    seed: int
    n_subjects: int
    class_proportions: dict[str, float]
    voxel_mm: float
    z_range_mm: tuple[float, float] | None
    n_background_snps: int
    adni1_fraction: float
    apoe_haplotype_freq: dict[str, float]
    e4_log_odds_per_allele: float
    effects: dict[str, Any]
    nuisance: ImageNuisance
    qc_failures: dict[str, int]
    subjects_without_mri: int
    subjects_without_genotypes: int
    followup_fraction: float
    n_jobs: int = 0
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def grid(self) -> Grid:
        return Grid.icbm152(self.voxel_mm, self.z_range_mm)

    def class_counts(self) -> dict[str, int]:
        """Subjects per diagnosis, by largest remainder so they add up to n_subjects exactly."""
        total = sum(self.class_proportions.values())
        exact = {dx: self.n_subjects * self.class_proportions[dx] / total for dx in DIAGNOSES}
        counts = {dx: int(v) for dx, v in exact.items()}
        for dx in sorted(DIAGNOSES, key=lambda d: exact[d] - counts[d], reverse=True)[: self.n_subjects - sum(counts.values())]:
            counts[dx] += 1
        return counts

    @classmethod
    def from_params(cls, resolved: dict[str, Any], **overrides: Any) -> "CohortSpec":
        """Build and validate the spec from resolved params (see g2i.config.resolve)."""
        try:
            section = dict(resolved["synthesize"])
        except KeyError as exc:
            raise G2IError("params.yaml: missing the 'synthesize' section") from exc
        section.update({k: v for k, v in overrides.items() if v is not None})
        try:
            z_range = section.get("z_range_mm")
            spec = cls(
                profile=resolved.get("profile", "demo"),
                seed=int(section["seed"]),
                n_subjects=int(section["n_subjects"]),
                class_proportions={dx: float(section["class_proportions"][dx]) for dx in DIAGNOSES},
                voxel_mm=float(section["voxel_mm"]),
                z_range_mm=tuple(float(z) for z in z_range) if z_range else None,
                n_background_snps=int(section["n_background_snps"]),
                adni1_fraction=float(section["adni1_fraction"]),
                apoe_haplotype_freq={k: float(v) for k, v in section["apoe_haplotype_freq"].items()},
                e4_log_odds_per_allele=float(section["e4_log_odds_per_allele"]),
                effects=section["effects"],
                nuisance=ImageNuisance(**section["image"]),
                qc_failures={k: int(v) for k, v in section["qc_failures"].items()},
                subjects_without_mri=int(section["subjects_without_mri"]),
                subjects_without_genotypes=int(section["subjects_without_genotypes"]),
                followup_fraction=float(section["followup_fraction"]),
                n_jobs=int(section.get("n_jobs", 0)),
            )
        except KeyError as exc:
            raise G2IError(f"params.yaml: synthesize.{exc.args[0]} is missing") from exc
        except (TypeError, ValueError) as exc:
            raise G2IError(f"params.yaml: bad value in the 'synthesize' section ({exc})") from exc
        spec.validate()
        return spec

    def validate(self) -> None:
        problems = []
        if any(p <= 0 for p in self.class_proportions.values()):
            problems.append("class_proportions must all be positive")
        else:
            counts = self.class_counts()
            small = {dx: n for dx, n in counts.items() if n < MIN_SUBJECTS_PER_CLASS}
            if small:
                problems.append(
                    f"n_subjects={self.n_subjects} gives {small} subjects in some classes; "
                    f"every class needs at least {MIN_SUBJECTS_PER_CLASS} (raise n_subjects)"
                )
        if self.voxel_mm <= 0 or self.voxel_mm > 4:
            problems.append(f"voxel_mm must be in (0, 4], got {self.voxel_mm}")
        if not 0 <= self.adni1_fraction <= 1:
            problems.append(f"adni1_fraction must be within [0, 1], got {self.adni1_fraction}")
        freq = self.apoe_haplotype_freq
        if set(freq) != {"e2", "e3", "e4"} or abs(sum(freq.values()) - 1) > 1e-6 or min(freq.values()) < 0:
            problems.append("apoe_haplotype_freq needs e2, e3, e4 frequencies summing to 1")
        if self.n_background_snps < 0 or any(v < 0 for v in self.qc_failures.values()):
            problems.append("SNP and QC-failure counts must not be negative")
        if self.n_jobs < 0:
            problems.append("n_jobs must be 0 (all cores) or positive")
        if problems:
            raise G2IError("invalid synthetic-cohort parameters:\n  - " + "\n  - ".join(problems))
