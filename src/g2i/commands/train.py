"""g2i train: one diffusion variant (ldm, g2i, g2i_l_noatt, g2i_l_att), tracked in MLflow."""

from __future__ import annotations

import argparse
from pathlib import Path

from . import add_common_arguments, resolved_params

NAME = "train"
HELP = "train a latent diffusion variant (genotype encoder + denoiser) and log it to MLflow"
DESCRIPTION = ("Train T_theta and eps_theta jointly on the cached latents for one variant of the paper: ldm "
               "(label only), g2i (genotype cross-attention), g2i_l_noatt (label + pooled genotype, no attention), "
               "g2i_l_att (label + genotype cross-attention, the paper's model). Saves the EMA weights in "
               "diffusers format under models/<variant>/ and logs params, losses, a sample grid and the model.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser)
    # listed here rather than imported from g2i.models: importing torch would slow every `g2i` command
    parser.add_argument("--variant", required=True, help="ldm, g2i, g2i_l_noatt or g2i_l_att (checked on use)")
    parser.add_argument("--max-steps", type=int, default=0, help="override training.diffusion.max_steps (0: keep)")
    parser.add_argument("--autoencoder", type=Path, default=Path("models/autoencoder"))
    parser.add_argument("--latents", type=Path, default=Path("data/processed/latents/latents.npy"))
    parser.add_argument("--models", type=Path, default=Path("models"), help="models/<variant>/ is written here")
    parser.add_argument("--reports", type=Path, default=Path("reports/train"), help="metrics and sample grid")


def run(args: argparse.Namespace) -> None:
    import mlflow

    from ..config import repo_root
    from ..data.dataset import ProcessedPaths, SliceGenotypeDataset
    from ..io.atomic import write_json
    from ..models.denoiser import check_variant
    from ..tracking import flatten, log_new_params, run_tags, start_run
    from ..training.diffusion import remove_checkpoints, sample_grid, train_diffusion
    from ..training.latents import load_autoencoder

    variant = check_variant(args.variant)
    params = resolved_params(args)
    root = repo_root()
    paths = ProcessedPaths()
    paths.check()
    vae = load_autoencoder(args.autoencoder)
    val = SliceGenotypeDataset(paths, "val")
    sampling = params["sampling"]
    tags = run_tags(root, params["profile"], variant=variant, stage="train")
    with start_run(root, f"train-{variant}", tags):
        flat = dict(flatten({"model": {k: params["model"][k] for k in ("unet", "genotype_encoder", "scheduler")},
                             "training": {"diffusion": params["training"]["diffusion"],
                                          "condition_dropout": params["training"]["condition_dropout"]},
                             "sampling": sampling}))
        flat.update({"variant": variant, "profile": params["profile"]})
        log_new_params(flat)
        model_dir, checkpoints = args.models / variant, args.models / ".checkpoints" / variant
        grids = checkpoints / "grids"

        def log_grid(pipe, step: int) -> None:
            """Samples from the EMA weights at every checkpoint: watch quality grow in the MLflow UI."""
            path = grids / f"step-{step:08d}.png"
            sample_grid(pipe, val, path, sampling, title=f"{variant}, step {step}: {sampling['sampler'].upper()}-"
                                                          f"{sampling['num_inference_steps']}, EMA weights")
            mlflow.log_artifact(str(path), "samples")

        result = train_diffusion(variant, params, paths, args.latents, vae, model_dir, checkpoints,
                                 log=lambda m, step: mlflow.log_metrics({f"train/{k}": v for k, v in m.items()}, step=step),
                                 max_steps=args.max_steps or None, on_checkpoint=log_grid)
        from ..training.diffusion import load_variant

        grid = args.reports / f"{variant}_samples.png"
        sample_grid(load_variant(model_dir), val, grid, sampling)
        metrics = {"final_loss": round(result["final_loss"], 6), "steps": result["steps"],
                   "parameters": result["parameters"]}
        write_json(args.reports / f"{variant}.json", metrics)
        mlflow.log_metrics({"final_loss": result["final_loss"], "parameters": result["parameters"]})
        mlflow.log_artifact(str(grid), "samples")
        mlflow.log_artifacts(str(model_dir), "model")
        remove_checkpoints(checkpoints)
    print(f"{variant}: {result['steps']} steps, final loss {result['final_loss']:.4f}; saved {model_dir}")
