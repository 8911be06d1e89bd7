"""g2i split: subject-level stratified train / validation / test split."""

from __future__ import annotations

import argparse
from pathlib import Path

from . import add_common_arguments, resolved_params

NAME = "split"
HELP = "subject-level stratified train / val / test split (seeded)"
DESCRIPTION = ("Split subjects, stratified by diagnosis: split.test_per_class per class for testing, "
               "split.val_fraction of the rest for validation, the rest for training. No subject in two splits.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser)
    parser.add_argument("--subjects", type=Path, default=Path("data/processed/subjects.csv"), help="subjects table")
    parser.add_argument("--slices-index", type=Path, default=Path("data/processed/slices/index.csv"),
                        help="the slices stage's index: only subjects with usable slices are split")
    parser.add_argument("--out", type=Path, default=Path("data/processed/split.csv"), help="PTID, diagnosis, split")
    parser.add_argument("--summary", type=Path, default=Path("reports/data/split.json"), help="class counts (DVC metric)")


def run(args: argparse.Namespace) -> None:
    from ..data.split import split_subjects, split_summary
    from ..config import repo_root
    from ..io.atomic import atomic_file, write_json
    from ..io.tables import read_stage_table
    from ..tracking import log_stage

    resolved = resolved_params(args)
    params = resolved["split"]
    subjects = read_stage_table(args.subjects, ("PTID", "diagnosis"), "genotypes")
    sliced = read_stage_table(args.slices_index, ("PTID",), "slices")
    subjects = subjects[subjects["PTID"].isin(set(sliced["PTID"]))]   # T1s the slices stage left out: not split
    split = split_subjects(subjects, int(params["test_per_class"]), float(params["val_fraction"]), int(params["seed"]))
    summary = split_summary(split)
    with atomic_file(args.out) as handle:
        split.to_csv(handle, index=False)
    write_json(args.summary, summary)
    log_stage(repo_root(), "split", resolved["profile"], summary, params, [args.summary])
    print("split: " + ", ".join(f"{name} {counts['total']}" for name, counts in summary.items()))
