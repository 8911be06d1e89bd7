"""One module per `g2i` subcommand. Each defines NAME, HELP, add_arguments(parser) and run(args).

The `g2i` command (g2i.cli) and the thin scripts in pipelines/ both dispatch here, so a pipeline step
and its console command are one piece of code.
"""

from __future__ import annotations

import argparse
from pathlib import Path

COMMAND_MODULES = (
    "synthesize",
    "cohort_report",
    "genotype_qc",
    "genotypes",
    "validate_genotypes",
    "split",
    "slices",
    "train_autoencoder",
    "encode_latents",
    "train",
    "sample",
    "export",
    "evaluate",
    "probe",
    "classify",
    "compare",
    "register",
    "ui",
    "study",
    "stage_deps",
)


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """--params and --profile, shared by every step that reads params.yaml."""
    parser.add_argument("--params", type=Path, default=None,
                        help="parameter file (default: params.yaml at the project root)")
    parser.add_argument("--profile", default=None,
                        help="profile to use (default: the 'profile' key of params.yaml)")


def resolved_params(args: argparse.Namespace) -> dict:
    from ..config import load_params, resolve

    return resolve(load_params(args.params), args.profile)


def model_params(args: argparse.Namespace) -> dict:
    """resolved_params for the stages that build the autoencoder or the denoiser: the slice size must agree
    across slices, model.autoencoder and model.unet (config.check_sizes)."""
    from ..config import check_sizes

    params = resolved_params(args)
    check_sizes(params)
    return params


def model_names(values: list[str] | None) -> list[str]:
    """Model names from argv; MLproject passes them as one quoted string ("ldm g2i"), so split that too.
    None or only blanks (MLproject's default "") give []: the caller then takes params.yaml `variants`
    (g2i.vocabulary.pipeline_models)."""
    return [name for value in values or [] for name in value.replace(",", " ").split()]
