"""g2i register: log the diffusion pipelines as pyfunc models, register them, promote the best."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from . import add_common_arguments, model_names, resolved_params

NAME = "register"
HELP = "register each trained G2IPipeline in the MLflow model registry and point 'champion' at the best"
DESCRIPTION = ("Log models/<variant>/ as an MLflow pyfunc model (models-from-code, signature, input example, pinned "
               "requirements), register it under register.model_name with its evaluation metrics as tags, and move "
               "the alias 'champion' to it when it beats the current champion on register.metric (the old champion "
               "becomes 'challenger'). A model without a valid evaluation is registered but never promoted. Serve the "
               "champion with `make serve`, or: UVICORN_LOOP=g2i.serving.event_loop:event_loop mlflow models serve "
               "-m models:/<name>@champion --env-manager local -h 127.0.0.1 -p 5001 (the loop gives the server a "
               "request thread for every row of a batch)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser)
    parser.add_argument("--models", nargs="+", default=None,
                        help="diffusion variants under --model-dir (default: params.yaml `variants.diffusion`; "
                             "the GAN baselines are not served)")
    parser.add_argument("--model-dir", type=Path, default=Path("models"))
    parser.add_argument("--evaluation", type=Path, default=Path("reports/evaluate/metrics.json"),
                        help="Table 1 metrics per model (the evaluate stage)")
    parser.add_argument("--generated", type=Path, default=Path("data/generated"),
                        help="the sample stage's sets: <variant>/summary.json gives the guidance it was evaluated at")


def run(args: argparse.Namespace) -> None:
    import os

    # one line per model, not pages: no artifact progress bars or INFO logs while logging and validating each model
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    from ..config import repo_root
    from ..serving.registry import register_variant, served_settings
    from ..tracking import run_tags, start_run
    from ..vocabulary import pipeline_models

    params = resolved_params(args)
    cfg, root = params["register"], repo_root()
    evaluations = json.loads(args.evaluation.read_text()) if args.evaluation.is_file() else {}
    for variant in (model_names(args.models) or pipeline_models(params, ("diffusion",))):
        tags = run_tags(root, params["profile"], variant=variant, stage="register")
        with start_run(root, f"register-{variant}", tags):
            print(register_variant(args.model_dir / variant, variant, evaluations.get(variant), cfg["model_name"],
                                   served_settings(params["serving"], args.generated / variant / "summary.json"),
                                   cfg["metric"], bool(cfg["greater_is_better"]), tags))
