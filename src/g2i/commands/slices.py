"""g2i slices: normalised axial T1 slices on the ICBM152 grid, one per subject and MNI z."""

from __future__ import annotations

import argparse
from pathlib import Path

from . import add_common_arguments, resolved_params

NAME = "slices"
HELP = "axial T1 slices on the 1 mm ICBM152 grid, resized and normalised to [-1, 1]"
DESCRIPTION = ("Read each subject's T1 (NIfTI or MINC), sample the 1 mm ICBM152 axial plane at each MNI z of "
               "slices.z_mm, resize it to slices.size and map robust brain intensity percentiles to [-1, 1]. "
               "Writes slices.npy (float16), index.csv and summary.json (a DVC metric) into --out.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser)
    parser.add_argument("--subjects", type=Path, default=Path("data/processed/subjects.csv"),
                        help="subjects table: PTID, diagnosis, t1_path (relative to params data.root, or absolute)")
    parser.add_argument("--out", type=Path, default=Path("data/processed/slices"),
                        help="output folder, replaced once complete (default: data/processed/slices)")
    parser.add_argument("--jobs", type=int, default=None, help="worker processes (0 = all cores; default: params)")
    parser.add_argument("--dask-address", default=None,
                        help="run on this dask.distributed scheduler, e.g. tcp://host:8786 (default: params)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> None:
    import pandas as pd

    from ..config import repo_root
    from ..data.raw import RawInputs
    from ..data.slices import build_slices
    from ..io.tables import read_stage_table
    from ..tracking import log_stage

    params = resolved_params(args)
    knobs = params["slices"]
    subjects = read_stage_table(args.subjects, (), "genotypes", dtype={"PTID": str, "diagnosis": str, "t1_path": str})
    if "t1_path" in subjects.columns and any(not Path(p).is_absolute() for p in subjects["t1_path"].dropna()):
        raw = RawInputs.from_params(params["data"], repo_root())   # relative paths are under data.root
        subjects["t1_path"] = [p if pd.isna(p) else str(raw.path(p)) for p in subjects["t1_path"]]
    summary = build_slices(
        subjects,
        z_mm=knobs["z_mm"],
        size=knobs["size"],
        lower=knobs["lower_percentile"],
        upper=knobs["upper_percentile"],
        out_dir=args.out,
        on_bad_image=knobs["on_bad_image"],
        max_excluded_fraction=float(knobs["max_excluded_fraction"]),
        n_jobs=int(knobs.get("n_jobs", 0) if args.jobs is None else args.jobs),
        dask_address=args.dask_address or knobs.get("dask_address"),
        progress=not args.quiet,
    )
    log_stage(repo_root(), "slices", params["profile"], summary, knobs, [args.out / "exclusions.csv"])
    print(f"wrote {args.out}: {summary['n_slices']} slices of {summary['image_size'][0]} x {summary['image_size'][1]} "
          f"from {summary['n_subjects']} subjects {summary['per_class']}"
          + (f"; {summary['n_excluded']} excluded, reasons in {args.out / 'exclusions.csv'}" if summary["n_excluded"] else ""))
