"""g2i genotypes: panel SNPs as effect-allele counts 0/1/2, APOE e4 dose and baseline diagnosis."""

from __future__ import annotations

import argparse
from pathlib import Path

from . import add_common_arguments, resolved_params

NAME = "genotypes"
HELP = "encode the panel SNPs and APOE e4 dose, join the baseline diagnosis"
DESCRIPTION = ("Select the panel SNPs by rsID in every QC'd phase, encode each as the count of the panel's "
               "effect allele (aligned by allele letters, strand flips handled), add the APOE e4 dose "
               "(rs429358, else ADNIMERGE APOE4 / APOERES) and the baseline diagnosis, and list every subject "
               "excluded for lacking an image, genotypes, a diagnosis or an e4 dose.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser)
    parser.add_argument("--qc", type=Path, default=Path("data/interim/genotype_qc"), help="QC'd filesets folder")
    parser.add_argument("--out", type=Path, default=Path("data/processed/genotypes.csv"), help="genotype table")
    parser.add_argument("--subjects", type=Path, default=Path("data/processed/subjects.csv"),
                        help="subjects table (PTID, diagnosis, phase, t1_path) for the image stages")
    parser.add_argument("--summary", type=Path, default=Path("reports/data/genotypes.json"), help="summary (DVC metric)")
    parser.add_argument("--exclusions", type=Path, default=Path("reports/data/exclusions.csv"),
                        help="every excluded subject with the reason")


def run(args: argparse.Namespace) -> None:
    from ..config import repo_root
    from ..data.raw import RawInputs
    from ..data.genotype_table import GenotypeInputs, build_genotype_table, write_genotype_outputs

    from ..tracking import log_stage

    params = resolved_params(args)
    root = repo_root()
    raw, knobs = RawInputs.from_params(params["data"], root), params["genotypes"]
    inputs = GenotypeInputs(qc_dir=args.qc, raw_filesets=raw.genotype_filesets, adnimerge=raw.adnimerge,
                            apoeres=raw.apoeres, t1_patterns=list(raw.t1_patterns), diagnosis_map=raw.diagnosis_map,
                            root=raw.root)
    table, subjects, summary, exclusions = build_genotype_table(
        inputs, knobs["ambiguous_snps"], float(knobs["ambiguous_max_maf"]), float(knobs["max_missing_panel_fraction"]),
        duplicate_snps=knobs["duplicate_snps"])
    write_genotype_outputs(table, subjects, summary, exclusions, args.out, args.subjects, args.summary, args.exclusions)
    log_stage(root, "genotypes", params["profile"], summary, knobs, [args.summary, args.exclusions])
    print(f"wrote {args.out}: {summary['n_subjects']} subjects {summary['per_class']}, "
          f"{len(summary['panel_snps_kept'])}/{summary['panel_snps_total']} panel SNPs; "
          f"excluded {len(exclusions)} subjects {summary['exclusions']}")
