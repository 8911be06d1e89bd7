"""Shared fixtures: tiny synthetic cohorts generated once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

from g2i.config import load_params, repo_root, resolve
from g2i.synthetic.generate import generate_cohort
from g2i.synthetic.spec import CohortSpec

ROOT = repo_root(Path(__file__).parent)

# Coarse grids keep generation to seconds; enough subjects per phase for PLINK's HWE test to bite.
TINY = {"n_subjects": 60, "voxel_mm": 3.0, "z_range_mm": [-30, 36], "n_background_snps": 400}


def tiny_spec(**overrides) -> CohortSpec:
    resolved = resolve(load_params(ROOT / "params.yaml"), "demo")
    return CohortSpec.from_params(resolved, **{**TINY, **overrides})


@pytest.fixture(scope="session")
def tiny_cohort(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("cohort") / "raw"
    manifest = generate_cohort(tiny_spec(), out, progress=False)
    return out, manifest
