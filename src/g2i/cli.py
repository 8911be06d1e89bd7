"""The `g2i` command line: one subcommand per pipeline step, each with --help.

Errors a user can fix (bad parameters, bad files) are printed in plain words with exit status 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable, Sequence

from .errors import G2IError


def _synthesize(args: argparse.Namespace) -> None:
    from .config import load_params, resolve
    from .synthetic.generate import generate_cohort
    from .synthetic.spec import CohortSpec

    resolved = resolve(load_params(args.params), args.profile)
    overrides = {"n_subjects": args.n_subjects, "seed": args.seed, "n_jobs": args.jobs}
    spec = CohortSpec.from_params(resolved, **overrides)
    manifest = generate_cohort(spec, args.out, overwrite=args.force, progress=not args.quiet)
    subjects = manifest["subjects"]
    print(f"wrote {args.out}: {subjects['complete']} subjects {subjects['per_class']}, "
          f"grid {manifest['grid']['shape']} (profile {spec.profile}, SYNTHETIC)")


def _cohort_report(args: argparse.Namespace) -> None:
    from .config import load_params, resolve
    from .reports.cohort import write_cohort_report

    resolved = resolve(load_params(args.params), args.profile)
    write_cohort_report(args.raw, args.out, preview_z_mm=resolved["cohort_report"]["preview_z_mm"],
                        figure=args.figure)
    print(f"wrote {args.out}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="g2i", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    syn = sub.add_parser("synthesize", help="write a synthetic cohort in ADNI's formats (SYNTHETIC data)",
                         description="Write a synthetic cohort in ADNI's formats: ADNIMERGE.csv, APOERES.csv, PLINK 1 "
                                     "genotypes per phase, one T1 NIfTI per subject, and a ground-truth table.")
    syn.add_argument("--params", type=Path, default=None, help="parameter file (default: params.yaml at the project root)")
    syn.add_argument("--profile", default=None, help="profile to use (default: the 'profile' key of params.yaml)")
    syn.add_argument("--out", type=Path, default=Path("data/raw"), help="output folder (default: data/raw)")
    syn.add_argument("--n-subjects", type=int, default=None, help="override the profile's number of subjects")
    syn.add_argument("--seed", type=int, default=None, help="override the random seed")
    syn.add_argument("--jobs", type=int, default=None, help="worker processes (0 = all cores)")
    syn.add_argument("--force", action="store_true", help="replace an existing output folder once the new one is complete")
    syn.add_argument("--quiet", action="store_true", help="no progress bar")
    syn.set_defaults(func=_synthesize)

    rep = sub.add_parser("cohort-report", help="preview figure and measured effects of a cohort in data/raw",
                         description="Measure ventricle volumes from the T1 images, summarise them per diagnosis and "
                                     "APOE e4 dose, and draw axial slices through the ventricles of a CN and an AD subject.")
    rep.add_argument("--params", type=Path, default=None, help="parameter file (default: params.yaml at the project root)")
    rep.add_argument("--profile", default=None, help="profile to use (default: the 'profile' key of params.yaml)")
    rep.add_argument("--raw", type=Path, default=Path("data/raw"), help="cohort folder (default: data/raw)")
    rep.add_argument("--out", type=Path, default=Path("reports/cohort/summary.json"), help="summary JSON (DVC metrics)")
    rep.add_argument("--figure", type=Path, default=Path("reports/cohort/preview.png"), help="preview PNG")
    rep.set_defaults(func=_cohort_report)
    return parser


def _run(argv: Sequence[str] | None, prefix: Sequence[str] = ()) -> int:
    args = build_parser().parse_args([*prefix, *(sys.argv[1:] if argv is None else argv)])
    try:
        args.func(args)
    except G2IError as exc:
        print(f"g2i {args.command}: error: {exc}", file=sys.stderr)
        return 2
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return _run(argv)


def synthesize_main(argv: Sequence[str] | None = None) -> int:
    """`g2i-synthesize`: the same as `g2i synthesize`."""
    return _run(argv, prefix=("synthesize",))


if __name__ == "__main__":
    raise SystemExit(main())
