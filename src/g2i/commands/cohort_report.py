"""g2i cohort-report: measured ventricle volumes per class and e4 dose, and a CN vs AD preview."""

from __future__ import annotations

import argparse
from pathlib import Path

from . import add_common_arguments, resolved_params

NAME = "cohort-report"
HELP = "preview figure and measured effects of a cohort in data/raw"
DESCRIPTION = ("Measure ventricle volumes from the T1 images, summarise them per diagnosis and APOE e4 dose, "
               "and draw axial slices through the ventricles of a CN and an AD subject.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser)
    parser.add_argument("--raw", type=Path, default=Path("data/raw"), help="cohort folder (default: data/raw)")
    parser.add_argument("--out", type=Path, default=Path("reports/cohort/summary.json"),
                        help="summary JSON (a DVC metric)")
    parser.add_argument("--figure", type=Path, default=Path("reports/cohort/preview.png"), help="preview PNG")


def run(args: argparse.Namespace) -> None:
    from ..reports.cohort import write_cohort_report

    params = resolved_params(args)
    write_cohort_report(args.raw, args.out, preview_z_mm=params["cohort_report"]["preview_z_mm"], figure=args.figure)
    print(f"wrote {args.out}")
