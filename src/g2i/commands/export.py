"""g2i export: a generated set as PNG or NIfTI files, for a viewer or another tool."""

from __future__ import annotations

import argparse
from pathlib import Path

NAME = "export"
HELP = "write a model's generated set (after `sample`) as PNG or MNI-space NIfTI files with an index table"
DESCRIPTION = ("Read data/generated/<variant>/<set>.npz, written by the sample stage, and write each image as "
               "<array>_<i>.png (8-bit grey) or .nii.gz (one axial plane in MNI ICBM152 space, at the z of the "
               "slices stage) into --out, with index.csv naming each file's subject, diagnosis and, for the dose "
               "sweep, its array (dose_0, dose_1, dose_2, original, panel_shuffled). Nothing is regenerated.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--variant", required=True, help="a model whose sets `sample` wrote (e.g. g2i_l_att, cgan)")
    parser.add_argument("--set", default="test", choices=("test", "augment", "counterfactual"),
                        help="which generated set (default: test, the images per test subject)")
    parser.add_argument("--format", default="png", choices=("png", "nifti"), help="file format (default: png)")
    parser.add_argument("--out", type=Path, required=True, help="folder to write (replaced if it exists)")
    parser.add_argument("--limit", type=int, default=None, help="at most this many items per image array")
    parser.add_argument("--generated", type=Path, default=Path("data/generated"), help="the sample stage's folder")
    parser.add_argument("--slices-index", type=Path, default=Path("data/processed/slices/index.csv"),
                        help="the slices stage's index: the z (mm, MNI) the NIfTI planes sit at")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> None:
    from ..generation.export import export_set
    from ..generation.sets import load_set
    from ..io.tables import read_stage_table

    arrays = load_set(args.generated / args.variant, args.set)
    z_mm = 0.0
    if args.format == "nifti":
        z_mm = float(read_stage_table(args.slices_index, ("z_mm",), "slices")["z_mm"].iloc[0])
    count = export_set(arrays, args.out, args.format, z_mm, limit=args.limit, progress=not args.quiet)
    print(f"{args.variant} {args.set}: {count} {args.format} files -> {args.out}")
