"""g2i train: one model of the paper, tracked in MLflow: a diffusion variant or a GAN baseline."""

from __future__ import annotations

import argparse
from pathlib import Path

from . import add_common_arguments, model_params, resolved_params

NAME = "train"
HELP = "train a latent diffusion variant or a GAN baseline and log it to MLflow"
DESCRIPTION = ("Train T_theta and eps_theta jointly on the cached latents for one variant of the paper: ldm "
               "(label only), g2i (genotype cross-attention), g2i_l_noatt (label + pooled genotype, no attention), "
               "g2i_l_att (label + genotype cross-attention, the paper's model). Saves the EMA weights in "
               "diffusers format under models/<variant>/ and logs params, losses, sample grids and the model. The GAN "
               "baselines cgan, stackgan and attngan train on the slices through the same entry point.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser)
    # listed here rather than imported from g2i.models: importing torch would slow every `g2i` command
    parser.add_argument("--variant", required=True,
                        help="diffusion: ldm, g2i, g2i_l_noatt, g2i_l_att; GAN baselines: cgan, stackgan, attngan")
    parser.add_argument("--max-steps", type=int, default=0, help="override the params' max_steps (0: keep)")
    parser.add_argument("--autoencoder", type=Path, default=Path("models/autoencoder"))
    parser.add_argument("--latents", type=Path, default=Path("data/processed/latents/latents.npy"))
    parser.add_argument("--models", type=Path, default=Path("models"), help="models/<variant>/ is written here")
    parser.add_argument("--reports", type=Path, default=Path("reports/train"), help="metrics and sample grid")


def run(args: argparse.Namespace) -> None:
    from ..config import load_params
    from ..vocabulary import variants, variants_yaml
    from ..errors import G2IError
    from ..vocabulary import DIFFUSION_VARIANTS, GAN_VARIANTS

    if args.variant in DIFFUSION_VARIANTS + GAN_VARIANTS:
        params = resolved_params(args)
        kind = "gan" if args.variant in GAN_VARIANTS else "diffusion"
        if args.variant not in variants(params)[kind]:
            # dvc.yaml's foreach reads the top-level `variants`, which a profile cannot change (DVC does not
            # resolve profiles): without this, `dvc exp run -S profile=study` would train models the study drops
            top = load_params(args.params).get("variants", {})
            raise G2IError(f"params.yaml: profile '{params['profile']}' does not run {args.variant} (its variants.{kind}: "
                           f"{variants(params)[kind]}); the top-level `variants` line, which dvc.yaml's foreach reads, "
                           f"lists {top.get(kind)}. Set that line to the profile's (`make study` does this in its clone), "
                           f"e.g. dvc exp run -S profile={params['profile']} -S 'variants={variants_yaml(variants(params))}'")
    if args.variant in DIFFUSION_VARIANTS:
        run_diffusion(args)
    elif args.variant in GAN_VARIANTS:
        run_gan(args)
    else:
        raise G2IError(f"unknown variant '{args.variant}'; valid: {', '.join(DIFFUSION_VARIANTS + GAN_VARIANTS)}")


def _context(args: argparse.Namespace, stage: str = "train"):
    from ..config import repo_root
    from ..data.dataset import ProcessedPaths, SliceGenotypeDataset
    from ..tracking import run_tags

    params = model_params(args)
    root = repo_root()
    paths = ProcessedPaths()
    paths.check()
    return params, root, paths, SliceGenotypeDataset(paths, "val"), run_tags(root, params["profile"],
                                                                             variant=args.variant, stage=stage)


def _finish(args: argparse.Namespace, result, grid: Path, model_dir: Path, checkpoints: Path) -> None:
    """Metrics file for DVC, final metrics, grid and model for MLflow (`result`: the trainer's TrainResult);
    checkpoints removed."""
    import mlflow

    from ..io.atomic import write_json
    from ..training.trainer import remove_checkpoints

    metrics = {"final_loss": round(result.final_loss, 6), "steps": result.steps, "parameters": result.parameters}
    write_json(args.reports / f"{args.variant}.json", metrics)
    mlflow.log_metrics({"final_loss": result.final_loss, "parameters": result.parameters})
    mlflow.log_artifact(str(grid), "samples")
    mlflow.log_artifacts(str(model_dir), "model")
    remove_checkpoints(checkpoints)
    print(f"{args.variant}: {result.steps} steps, final loss {result.final_loss:.4f}; saved {model_dir}")


def run_diffusion(args: argparse.Namespace) -> None:
    import mlflow

    from ..tracking import flatten, log_new_params, start_run, training_logger
    from ..generation.diffusion import load_variant
    from ..generation.preview import sample_grid
    from ..models.autoencoder import load_autoencoder
    from ..training.diffusion import train_diffusion

    variant = args.variant
    params, root, paths, val, tags = _context(args)
    vae = load_autoencoder(args.autoencoder)
    sampling = params["sampling"]
    with start_run(root, f"train-{variant}", tags, system_metrics=True) as run:
        flat = dict(flatten({"model": {k: params["model"][k] for k in ("unet", "genotype_encoder", "scheduler")},
                             "training": {"diffusion": params["training"]["diffusion"],
                                          "condition_dropout": params["training"]["condition_dropout"],
                                          "genotype_dropout": params["training"]["genotype_dropout"]},
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

        result = train_diffusion(params, paths, model_dir, checkpoints,
                                 training_logger(run.info.run_id),
                                 variant=variant, latents=args.latents, vae=vae, on_checkpoint=log_grid,
                                 max_steps=args.max_steps or None)
        grid = args.reports / f"{variant}_samples.png"
        sample_grid(load_variant(model_dir), val, grid, sampling)
        _finish(args, result, grid, model_dir, checkpoints)


def run_gan(args: argparse.Namespace) -> None:
    """A GAN baseline of the paper (CGAN, StackGAN, AttnGAN) through the same entry point and tracking."""
    from ..generation.preview import gan_sample_grid
    from ..tracking import flatten, log_new_params, start_run, training_logger
    from ..training.gan import train_config, train_gan

    variant = args.variant
    params, root, paths, val, tags = _context(args)
    with start_run(root, f"train-{variant}", tags, system_metrics=True) as run:
        cfg = train_config(params, variant, args.max_steps or None)
        flat = dict(flatten({"model": {"gan": {variant: params["model"]["gan"][variant]}},
                             "training": {"gan": {k: getattr(cfg, k) for k in cfg.__dataclass_fields__}}}))
        flat.update({"variant": variant, "profile": params["profile"]})
        log_new_params(flat)
        model_dir, checkpoints = args.models / variant, args.models / ".checkpoints" / variant
        result = train_gan(params, paths, model_dir, checkpoints,
                           training_logger(run.info.run_id),
                           variant=variant, max_steps=args.max_steps or None)
        grid = args.reports / f"{variant}_samples.png"
        gan_sample_grid(model_dir, val, grid, params["sample"]["gan_batch_pixels"], f"{variant}: EMA generator")
        _finish(args, result, grid, model_dir, checkpoints)
