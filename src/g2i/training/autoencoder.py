"""Train the KL autoencoder (E, D) with its PatchGAN, then store it with its latent scaling factor.

The Trainer drives one optimizer over both networks, so each loss term is built to reach only its own
network: the decoder's adversarial term runs the discriminator with DETACHED parameters, and the
discriminator's term sees DETACHED reconstructions. Summed, the gradients split cleanly: the
autoencoder gets L1 + SSIM + KL + adversarial, the discriminator only its least-squares GAN loss.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn
from diffusers.models.autoencoders.vae import DiagonalGaussianDistribution
from torch.func import functional_call

from ..data.dataset import ProcessedPaths, SliceGenotypeDataset
from ..errors import G2IError
from ..io.atomic import atomic_dir, write_json
from ..models.autoencoder import (AutoencoderLossWeights, adversarial_active, autoencode, autoencoder_loss,
                                  build_autoencoder, build_discriminator, discriminator_loss, encode_mean,
                                  generator_adversarial_loss, set_scaling_factor)
from ..models.ssim import ssim
from .trainer import TrainConfig, Trainer, prepare_checkpoints, settings_fingerprint

DATA_RANGE = 2.0  # slices are scaled to [-1, 1]
EVAL_BATCH = 64
N_FIGURE = 6


def load_split(paths: ProcessedPaths, split: str) -> torch.Tensor:
    """All slices x_0 of one split as an N x 1 x H x W float32 tensor (the demo cohort is a few MB)."""
    dataset = SliceGenotypeDataset(paths, split)
    if len(dataset) == 0:
        raise G2IError(f"no slices for split '{split}'")
    return torch.stack([dataset[i]["x_0"] for i in range(len(dataset))])


def frozen_call(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """module(x) with detached parameters: gradients reach x (the decoder), never the module's weights."""
    params = {name: p.detach() for name, p in module.named_parameters()}
    return functional_call(module, {**params, **dict(module.named_buffers())}, (x,))


def float32_posterior(posterior: DiagonalGaussianDistribution) -> DiagonalGaussianDistribution:
    """The same posterior with float32 moments (a no-op when it already is)."""
    if posterior.parameters.dtype == torch.float32:
        return posterior
    return DiagonalGaussianDistribution(posterior.parameters.float())


def make_loss_fn(weights: AutoencoderLossWeights, step_of):
    """The Trainer's loss: generator terms + discriminator term, each touching only its own network.

    `step_of()` returns the current training step (the adversarial terms start after the warm-up).
    """

    def loss_fn(model: nn.ModuleDict, batch: dict, generator: torch.Generator):
        x, step = batch["x_0"], step_of()
        vae, disc = model["vae"], model["disc"]
        # The networks run in the Trainer's precision (bf16 autocast on some CPUs); every loss in float32:
        # SSIM's E[x^2] - E[x]^2 cancels catastrophically in bf16.
        x_hat, posterior = autoencode(vae, x, generator)  # the step's stream: resume stays exact
        with torch.autocast(x.device.type, enabled=False):
            x_hat, posterior = x_hat.float(), float32_posterior(posterior)
            total, parts = autoencoder_loss(x, x_hat, posterior, weights, step)  # reconstruction, SSIM, KL
        if weights.adversarial and adversarial_active(step, weights.adversarial_warmup_steps):
            fake_for_decoder, real, fake = frozen_call(disc, x_hat), disc(x), disc(x_hat.detach())
            with torch.autocast(x.device.type, enabled=False):
                adversarial = generator_adversarial_loss(fake_for_decoder.float())
                d_loss = discriminator_loss(real.float(), fake.float())
            total = total + weights.adversarial * adversarial + d_loss
            parts.update(adversarial=float(adversarial.detach()), discriminator=float(d_loss.detach()))
        return total, parts

    return loss_fn


def fingerprint(params: Mapping[str, Any], train: torch.Tensor) -> str:
    """What a checkpoint was trained with; a checkpoint from other settings or data must not be resumed."""
    model = params["model"]
    return settings_fingerprint({"autoencoder": model.get("autoencoder"), "discriminator": model.get("discriminator"),
                                 "autoencoder_loss": model.get("autoencoder_loss"),
                                 "training": params["training"]["autoencoder"]}, train)


@torch.no_grad()
def encoder_means(vae, x: torch.Tensor) -> torch.Tensor:
    return torch.cat([encode_mean(vae, x[i:i + EVAL_BATCH]) for i in range(0, len(x), EVAL_BATCH)])


@torch.no_grad()
def reconstruct(vae, x: torch.Tensor) -> torch.Tensor:
    """Decoded posterior means, clipped to the data range as any displayed or scored image is."""
    out = [vae.decode(encode_mean(vae, x[i:i + EVAL_BATCH])).sample for i in range(0, len(x), EVAL_BATCH)]
    return torch.cat(out).clamp(-1.0, 1.0)


def reconstruction_metrics(x: torch.Tensor, x_hat: torch.Tensor) -> dict[str, float]:
    """Mean per-slice PSNR (dB) and SSIM, data range 2."""
    mse = ((x - x_hat) ** 2).flatten(1).mean(1).clamp_min(1e-12)
    psnr = 10.0 * torch.log10(DATA_RANGE**2 / mse)
    return {"val_psnr": float(psnr.mean()), "val_ssim": float(ssim(x, x_hat, data_range=DATA_RANGE))}


def reconstruction_figure(x: torch.Tensor, x_hat: torch.Tensor, path: Path) -> None:
    """Top row: validation slices; bottom row: their reconstructions."""
    from ..reports.figures import image_grid

    n = min(N_FIGURE, len(x))
    image_grid({"input": x[:n, 0].numpy(), "reconstruction": x_hat[:n, 0].numpy()}, [""] * n, path,
               "Autoencoder: validation slices (top) and reconstructions from the posterior mean (bottom)")


def train_autoencoder(params: Mapping[str, Any], paths: ProcessedPaths, out_dir: str | Path, run=None,
                      reports_dir: str | Path = "reports/autoencoder", checkpoint_dir: str | Path | None = None,
                      progress: bool = True) -> dict[str, Any]:
    """Train, evaluate and save the autoencoder; return the metrics written to reports_dir/metrics.json and
    the precision it trained in (`precision`: no = float32, or bf16).

    `params` is the resolved params.yaml; `run` an active MLflow run (or None: no tracking).
    Checkpoints default to out_dir/.checkpoints/autoencoder, so a rerun resumes an interrupted run.
    """
    out_dir, reports_dir = Path(out_dir), Path(reports_dir)
    checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir else out_dir / ".checkpoints" / "autoencoder"
    model_cfg = params["model"]
    cfg = TrainConfig.from_params(params["training"]["autoencoder"])
    # from_config reads the `autoencoder_loss` key of the whole `model:` section
    weights = AutoencoderLossWeights.from_config(model_cfg)
    train, val = load_split(paths, "train"), load_split(paths, "val")

    prepare_checkpoints(checkpoint_dir, fingerprint(params, train))

    def log(metrics: dict, step: int) -> None:
        if run is not None:
            import mlflow

            mlflow.log_metrics({f"train/{k}": float(v) for k, v in metrics.items()}, step=step,
                               run_id=run.info.run_id)

    torch.manual_seed(cfg.seed)  # initial weights
    modules = {"vae": build_autoencoder(model_cfg), "disc": build_discriminator(model_cfg)}
    trainer: Trainer | None = None
    trainer = Trainer(modules, make_loss_fn(weights, lambda: trainer.step), len(train),
                      lambda idx: {"x_0": train[idx]}, cfg, checkpoint_dir, log=log, progress=progress)
    final = trainer.fit()   # the last step's losses, also when a rerun finds the checkpoint complete

    vae = trainer.ema_modules()["vae"].eval()
    scaling = set_scaling_factor(vae, encoder_means(vae, train))
    recon = reconstruct(vae, val)
    metrics = {**reconstruction_metrics(val, recon), "scaling_factor": scaling, "steps": trainer.step,
               "n_train_slices": len(train), "n_val_slices": len(val),
               "final": {k: float(v) for k, v in sorted(final.items())}}
    bad = [k for k in ("val_psnr", "val_ssim", "scaling_factor") if not math.isfinite(metrics[k])]
    if bad:
        raise G2IError(f"autoencoder evaluation gave non-finite {bad}; check the training losses")

    model_path = out_dir / "autoencoder"
    with atomic_dir(model_path, overwrite=True) as tmp:
        vae.save_pretrained(tmp)
    reports_dir.mkdir(parents=True, exist_ok=True)
    write_json(reports_dir / "metrics.json", metrics)
    figure = reports_dir / "reconstructions.png"
    reconstruction_figure(val, recon, figure)

    if run is not None:
        import mlflow

        flat = {k: v for k, v in metrics.items() if k != "final"}
        flat.update({f"final/{k}": v for k, v in metrics["final"].items()})
        mlflow.log_metrics({k: float(v) for k, v in flat.items()}, run_id=run.info.run_id)
        mlflow.log_artifact(str(figure), "autoencoder", run_id=run.info.run_id)
        mlflow.log_artifact(str(reports_dir / "metrics.json"), "autoencoder", run_id=run.info.run_id)
        mlflow.log_artifacts(str(model_path), "autoencoder/model", run_id=run.info.run_id)
        mlflow.MlflowClient().set_tag(run.info.run_id, "precision", trainer.precision)
    return {**metrics, "precision": trainer.precision}
