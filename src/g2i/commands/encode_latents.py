"""g2i encode-latents: cache the autoencoder's posterior mean for every slice."""

from __future__ import annotations

import argparse
from pathlib import Path

from . import add_common_arguments

NAME = "encode-latents"
HELP = "cache the autoencoder's latent mean of every slice"
DESCRIPTION = "Encode every slice with the trained autoencoder and store the posterior MEAN (unscaled)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser)
    parser.add_argument("--autoencoder", type=Path, default=Path("models/autoencoder"), help="trained autoencoder")
    parser.add_argument("--slices", type=Path, default=Path("data/processed/slices/slices.npy"), help="slices array")
    parser.add_argument("--out", type=Path, default=Path("data/processed/latents"), help="output folder")
    parser.add_argument("--summary", type=Path, default=Path("reports/train/latents.json"), help="summary (DVC metric)")


def run(args: argparse.Namespace) -> None:
    from ..training.latents import encode_latents

    summary = encode_latents(args.autoencoder, args.slices, args.out, args.summary)
    print(f"wrote {args.out}: {summary['n']} latents of shape {summary['shape']}, "
          f"scaling factor {summary['scaling_factor']:.4f}")
