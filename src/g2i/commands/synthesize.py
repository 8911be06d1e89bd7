"""g2i synthesize: write a synthetic cohort in ADNI's formats (SYNTHETIC data)."""

from __future__ import annotations

import argparse
from pathlib import Path

from . import add_common_arguments, resolved_params

NAME = "synthesize"
HELP = "write a synthetic cohort in ADNI's formats (SYNTHETIC data)"
DESCRIPTION = ("Write a synthetic cohort in ADNI's formats: ADNIMERGE.csv, APOERES.csv, PLINK 1 genotypes per "
               "phase, one T1 NIfTI per subject, and a ground-truth table.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser)
    parser.add_argument("--out", type=Path, default=Path("data/raw"), help="output folder (default: data/raw)")
    parser.add_argument("--n-subjects", type=int, default=None, help="override the profile's number of subjects")
    parser.add_argument("--seed", type=int, default=None, help="override the random seed")
    parser.add_argument("--jobs", type=int, default=None, help="worker processes (0 = all cores)")
    parser.add_argument("--force", action="store_true",
                        help="replace an existing output folder once the new one is complete")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> None:
    from ..synthetic.generate import generate_cohort
    from ..synthetic.spec import CohortSpec

    overrides = {"n_subjects": args.n_subjects, "seed": args.seed, "n_jobs": args.jobs}
    spec = CohortSpec.from_params(resolved_params(args), **overrides)
    manifest = generate_cohort(spec, args.out, overwrite=args.force, progress=not args.quiet)
    subjects = manifest["subjects"]
    print(f"wrote {args.out}: {subjects['complete']} subjects {subjects['per_class']}, "
          f"grid {manifest['grid']['shape']} (profile {spec.profile}, SYNTHETIC)")
