"""g2i cohort-report: measured ventricle volumes per class and e4 dose, and a CN vs AD preview."""

from __future__ import annotations

import argparse
from pathlib import Path

from . import add_common_arguments, resolved_params

NAME = "cohort-report"
HELP = "preview figure and measured ventricle volumes of the subjects the genotypes stage kept"
DESCRIPTION = ("For the subjects in the genotypes stage's subjects.csv (found with params.yaml data.t1_patterns "
               "under data.root; MINC or NIfTI), measure ventricle volumes from the T1 images, summarise them per "
               "diagnosis and APOE e4 dose (genotypes.csv; blank = not called), compare them with the synthetic "
               "ground truth when there is one, and draw axial slices of the median CN and AD subject.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser)
    parser.add_argument("--subjects", type=Path, default=Path("data/processed/subjects.csv"),
                        help="the genotypes stage's subjects table (PTID, diagnosis, t1_path)")
    parser.add_argument("--genotypes", type=Path, default=Path("data/processed/genotypes.csv"),
                        help="the genotypes stage's table (its APOE4 column is the e4 dose)")
    parser.add_argument("--out", type=Path, default=Path("reports/cohort/summary.json"),
                        help="summary JSON (a DVC metric)")
    parser.add_argument("--figure", type=Path, default=Path("reports/cohort/preview.png"), help="preview PNG")


def run(args: argparse.Namespace) -> None:
    from ..config import repo_root
    from ..data.raw import RawInputs
    from ..reports.cohort import write_cohort_report
    from ..tracking import log_stage

    params = resolved_params(args)
    root = repo_root()
    raw = RawInputs.from_params(params["data"], root)
    summary = write_cohort_report(args.subjects, args.genotypes, raw, args.out,
                                  preview_z_mm=params["cohort_report"]["preview_z_mm"], figure=args.figure)
    log_stage(root, "cohort_report", params["profile"], summary, params["cohort_report"],
              [args.figure] if args.figure else [])
    print(f"wrote {args.out}")
