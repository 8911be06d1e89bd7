"""Generator parameters: read from params.yaml (`synthesize` section, overlaid by the profile), checked."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import G2IError
from ..imaging.grid import Grid
from ..vocabulary import DIAGNOSES
from .render import ImageNuisance

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
    apoe4_by_diagnosis: dict[str, dict[str, float]]  # {"carrier" | "dose2": {diagnosis: rate}}
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
                apoe4_by_diagnosis={str(k): {str(dx): float(v) for dx, v in dict(rates).items()}
                                    for k, rates in dict(section["apoe4_by_diagnosis"]).items()},
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
        elif freq["e2"] + freq["e3"] <= 0:
            problems.append("apoe_haplotype_freq: e2 + e3 must be positive (non-e4 haplotypes are drawn in their ratio)")
        problems += _apoe4_problems(self.apoe4_by_diagnosis)
        if self.n_background_snps < 0 or any(v < 0 for v in self.qc_failures.values()):
            problems.append("SNP and QC-failure counts must not be negative")
        if self.n_jobs < 0:
            problems.append("n_jobs must be 0 (all cores) or positive")
        if problems:
            raise G2IError("invalid synthetic-cohort parameters:\n  - " + "\n  - ".join(problems))


def _apoe4_problems(by_dx: dict[str, dict[str, float]]) -> list[str]:
    """apoe4_by_diagnosis must give carrier and e4/e4 rates in [0, 1] for every diagnosis, dose2 <= carrier."""
    key = "apoe4_by_diagnosis"
    if set(by_dx) != {"carrier", "dose2"}:
        return [f"{key} needs exactly 'carrier' and 'dose2' rates per diagnosis, got {sorted(by_dx)}"]
    problems = []
    for kind, rates in by_dx.items():
        if set(rates) != set(DIAGNOSES):
            problems.append(f"{key}.{kind} needs a rate for each of {', '.join(DIAGNOSES)} and no other, "
                            f"got {sorted(rates)}")
        problems += [f"{key}.{kind}.{dx} must be within [0, 1], got {v}" for dx, v in rates.items() if not 0 <= v <= 1]
    carrier, dose2 = by_dx["carrier"], by_dx["dose2"]
    problems += [f"{key}.dose2.{dx} = {dose2[dx]} exceeds carrier.{dx} = {carrier[dx]} (e4/e4 subjects are carriers)"
                 for dx in DIAGNOSES if dx in carrier and dx in dose2 and dose2[dx] > carrier[dx]]
    return problems
