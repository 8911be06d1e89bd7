"""g2i validate-genotypes: a Great Expectations suite on the genotype table, with Data Docs."""

from __future__ import annotations

import argparse
from pathlib import Path

from . import add_common_arguments, resolved_params

NAME = "validate-genotypes"
HELP = "check the genotype table with a Great Expectations suite; write Data Docs"
DESCRIPTION = ("Check the genotype table with the Great Expectations project in gx/ (regenerated from code on "
               "every run): exactly the expected columns, PTID unique and present, diagnoses from "
               "data.diagnosis_map with at least validate_genotypes.min_per_class subjects each, SNP and APOE4 "
               "codes in {0, 1, 2}, at most validate_genotypes.max_missing_fraction missing calls per SNP, no "
               "missing APOE4. On success write Data Docs and a summary (DVC metric); on failure list what "
               "failed, write nothing and exit with status 2.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser)
    parser.add_argument("--table", type=Path, default=Path("data/processed/genotypes.csv"), help="genotype table")
    parser.add_argument("--genotype-summary", type=Path, default=Path("reports/data/genotypes.json"),
                        help="summary of the genotypes stage; its panel_snps_kept are the expected SNP columns")
    parser.add_argument("--docs", type=Path, default=Path("reports/validate_genotypes/data_docs"),
                        help="Data Docs folder (open index.html in a browser)")
    parser.add_argument("--summary", type=Path, default=Path("reports/validate_genotypes/summary.json"),
                        help="summary JSON (a DVC metric)")
    parser.add_argument("--gx-root", type=Path, default=Path("gx"),
                        help="Great Expectations project folder, regenerated from code (default: gx)")


def run(args: argparse.Namespace) -> None:
    from ..config import repo_root
    from ..tracking import log_stage
    from ..validation.genotypes import read_expected_snps, rules_from_params, validate_genotype_table

    params = resolved_params(args)
    rules = rules_from_params(params)
    summary = validate_genotype_table(args.table, read_expected_snps(args.genotype_summary), rules,
                                      gx_root=args.gx_root, docs_dir=args.docs, summary_path=args.summary)
    log_stage(repo_root(), "validate_genotypes", params["profile"], summary, params["validate_genotypes"],
              [args.docs, args.summary])
    print(f"{args.table}: all {summary['expectations_evaluated']} checks passed ({summary['rows']} subjects "
          f"{summary['per_class']}, {summary['snps']} SNPs); wrote {args.docs / 'index.html'} and {args.summary}")
