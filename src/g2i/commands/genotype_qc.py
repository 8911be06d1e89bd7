"""g2i genotype-qc: PLINK 2 quality control per phase, with counts before and after each filter."""

from __future__ import annotations

import argparse
from pathlib import Path

from . import add_common_arguments, resolved_params

NAME = "genotype-qc"
HELP = "PLINK 2 QC of each phase's genotypes (missingness, MAF, HWE)"
DESCRIPTION = ("Run PLINK 2 on every fileset in params data.genotype_filesets with the paper's filters "
               "(sample and SNP missing rate, MAF, HWE exact test), one filter at a time, and report the "
               "counts before and after each filter per phase.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser)
    parser.add_argument("--out", type=Path, default=Path("data/interim/genotype_qc"),
                        help="folder for the QC'd filesets <phase>.{bed,bim,fam}")
    parser.add_argument("--report", type=Path, default=Path("reports/data/genotype_qc.json"), help="QC counts (DVC metric)")
    parser.add_argument("--removed", type=Path, default=Path("reports/data/genotype_qc_removed.tsv"),
                        help="every removed SNP and sample, with the filter that removed it")
    parser.add_argument("--table", type=Path, default=Path("reports/data/genotype_qc.md"), help="QC report as Markdown")


def run(args: argparse.Namespace) -> None:
    from ..config import repo_root
    from ..data.raw import RawInputs
    from ..genetics.qc import QcThresholds, format_qc_table, run_genotype_qc
    from ..io.atomic import atomic_file
    from ..tracking import log_stage

    params = resolved_params(args)
    root = repo_root()
    filesets = RawInputs.from_params(params["data"], root).genotype_filesets
    report = run_genotype_qc(filesets, args.out, args.report, args.removed, QcThresholds.from_params(params["genotype_qc"]))
    with atomic_file(args.table) as handle:
        handle.write("# Genotype QC (PLINK 2)\n\n" + format_qc_table(report))
    log_stage(root, "genotype_qc", params["profile"], report, params["genotype_qc"], [args.table, args.removed])
    for phase, r in report["phases"].items():
        print(f"{phase}: {r['input']['snps']:,} -> {r['output']['snps']:,} SNPs, "
              f"{r['input']['samples']:,} -> {r['output']['samples']:,} samples")
