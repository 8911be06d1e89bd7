"""g2i train-autoencoder: the KL autoencoder + PatchGAN on the train slices, tracked in MLflow."""

from __future__ import annotations

import argparse
from pathlib import Path

from . import add_common_arguments, model_params

NAME = "train-autoencoder"
HELP = "train the KL autoencoder on the train slices (MLflow-tracked, resumable)"
DESCRIPTION = ("Train the autoencoder (model.autoencoder, model.discriminator, model.autoencoder_loss) with "
               "training.autoencoder; store the EMA weights and the latent scaling factor in OUT/autoencoder, "
               "validation PSNR / SSIM and a reconstruction figure in --reports. An interrupted run resumes "
               "from OUT/.checkpoints/autoencoder.")



def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser)
    parser.add_argument("--max-steps", type=int, default=0, help="override training.autoencoder.max_steps (0: keep)")
    parser.add_argument("--out", type=Path, default=Path("models"), help="model folder (writes OUT/autoencoder)")
    parser.add_argument("--reports", type=Path, default=Path("reports/autoencoder"),
                        help="metrics.json (DVC metric) and reconstructions.png")
    parser.add_argument("--slices-dir", type=Path, default=Path("data/processed/slices"), help="slices.npy, index.csv")
    parser.add_argument("--genotypes", type=Path, default=Path("data/processed/genotypes.csv"), help="genotype table")
    parser.add_argument("--split", type=Path, default=Path("data/processed/split.csv"), help="subject split")


def tracked_params(params: dict) -> dict[str, str]:
    """model.autoencoder*, model.discriminator and training.autoencoder, flattened for MLflow."""
    from ..tracking import flatten

    model = {k: v for k, v in params["model"].items() if k.startswith("autoencoder") or k == "discriminator"}
    return dict(flatten({"model": model, "training": {"autoencoder": params["training"]["autoencoder"]}}))


def report(result, reports_dir: Path) -> dict:
    """reports_dir/metrics.json (the DVC metric) and reconstructions.png from a TrainResult; return the metrics."""
    from ..io.atomic import write_json
    from ..reports.figures import image_grid

    extra = result.metrics
    metrics = {"val_psnr": extra["val_psnr"], "val_ssim": extra["val_ssim"], "scaling_factor": extra["scaling_factor"],
               "steps": result.steps, "n_train_slices": extra["n_train_slices"], "n_val_slices": extra["n_val_slices"],
               "final": {k: float(v) for k, v in sorted(result.final.items())}}
    reports_dir.mkdir(parents=True, exist_ok=True)
    write_json(reports_dir / "metrics.json", metrics)
    image_grid(result.preview, [""] * len(result.preview["input"]), reports_dir / "reconstructions.png",
               "Autoencoder: validation slices (top) and reconstructions from the posterior mean (bottom)")
    return metrics


def log_run(run_id: str, metrics: dict, reports_dir: Path, model_path: Path, precision: str) -> None:
    """The trained autoencoder's metrics, report files, model and precision in the MLflow run."""
    import mlflow

    flat = {k: v for k, v in metrics.items() if k != "final"}
    flat.update({f"final/{k}": v for k, v in metrics["final"].items()})
    mlflow.log_metrics({k: float(v) for k, v in flat.items()}, run_id=run_id)
    mlflow.log_artifact(str(reports_dir / "reconstructions.png"), "autoencoder", run_id=run_id)
    mlflow.log_artifact(str(reports_dir / "metrics.json"), "autoencoder", run_id=run_id)
    mlflow.log_artifacts(str(model_path), "autoencoder/model", run_id=run_id)
    mlflow.MlflowClient().set_tag(run_id, "precision", precision)


def run(args: argparse.Namespace) -> None:
    from ..config import repo_root
    from ..data.dataset import ProcessedPaths
    from ..errors import G2IError
    from ..tracking import log_new_params, run_tags, start_run, training_logger
    from ..training.autoencoder import train_autoencoder

    params = model_params(args)
    if args.max_steps:
        if args.max_steps < 0:
            raise G2IError(f"--max-steps must be positive, got {args.max_steps}")
        params["training"]["autoencoder"]["max_steps"] = args.max_steps  # as MLflow's params show it
    paths = ProcessedPaths(args.slices_dir, args.genotypes, args.split)
    paths.check()  # fail before an MLflow run is opened
    root = repo_root()
    with start_run(root, "train-autoencoder", run_tags(root, params["profile"], stage="train_autoencoder"),
                   system_metrics=True) as active:
        log_new_params(tracked_params(params))
        run_id = active.info.run_id

        model_path = args.out / "autoencoder"
        result = train_autoencoder(params, paths, model_path, args.out / ".checkpoints" / "autoencoder",
                                   training_logger(run_id),
                                   max_steps=args.max_steps or None)
        metrics = report(result, args.reports)
        log_run(run_id, metrics, args.reports, model_path, result.precision)
    precision = "float32" if result.precision == "no" else f"{result.precision} autocast"
    print(f"train-autoencoder: {metrics['steps']} steps ({precision}), val PSNR {metrics['val_psnr']:.2f} dB, "
          f"SSIM {metrics['val_ssim']:.3f}, scaling factor {metrics['scaling_factor']:.4f} "
          f"-> {args.out / 'autoencoder'}")
