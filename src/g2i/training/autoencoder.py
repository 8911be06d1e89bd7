"""Train the KL autoencoder (E, D) with its PatchGAN, then store it with its latent scaling factor.

The Trainer drives one optimizer over both networks, so each loss term is built to reach only its own
network: the decoder's adversarial term runs the discriminator with DETACHED parameters, and the
discriminator's term sees DETACHED reconstructions. Summed, the gradients split cleanly: the
autoencoder gets L1 + SSIM + KL + adversarial, the discriminator only its least-squares GAN loss
(g2i.losses.autoencoder). `train_autoencoder` returns a TrainResult; g2i.commands.train_autoencoder writes
reports/autoencoder and logs the run to MLflow.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable, Mapping

import torch
from torch import nn
from diffusers.models.autoencoders.vae import DiagonalGaussianDistribution

from ..data.dataset import ProcessedPaths, SliceGenotypeDataset
from ..errors import G2IError
from ..io.atomic import atomic_dir
from ..losses.autoencoder import (AutoencoderLossWeights, adversarial_active, autoencoder_loss, discriminator_loss,
                                  generator_adversarial_loss)
from ..models.autoencoder import (autoencode, build_autoencoder, build_discriminator, encoder_means, reconstruct,
                                  set_scaling_factor)
from ..models.ssim import ssim
from .trainer import TrainConfig, Trainer, TrainResult, frozen_call, prepare_checkpoints, settings_fingerprint

DATA_RANGE = 2.0  # slices are scaled to [-1, 1]
N_FIGURE = 6


def load_split(paths: ProcessedPaths, split: str) -> torch.Tensor:
    """All slices x_0 of one split as an N x 1 x H x W float32 tensor (the demo cohort is a few MB)."""
    dataset = SliceGenotypeDataset(paths, split)
    if len(dataset) == 0:
        raise G2IError(f"no slices for split '{split}'")
    return torch.stack([dataset[i]["x_0"] for i in range(len(dataset))])


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


def fingerprint(model: Mapping[str, Any], train_cfg: Mapping[str, Any], train: torch.Tensor) -> str:
    """What a checkpoint was trained with; a checkpoint from other settings or data must not be resumed.

    `model`: params.yaml's `model:`; `train_cfg`: `training.autoencoder` with any max_steps override applied."""
    return settings_fingerprint({"autoencoder": model.get("autoencoder"), "discriminator": model.get("discriminator"),
                                 "autoencoder_loss": model.get("autoencoder_loss"),
                                 "training": train_cfg}, train)


def reconstruction_metrics(x: torch.Tensor, x_hat: torch.Tensor) -> dict[str, float]:
    """Mean per-slice PSNR (dB) and SSIM, data range 2."""
    mse = ((x - x_hat) ** 2).flatten(1).mean(1).clamp_min(1e-12)
    psnr = 10.0 * torch.log10(DATA_RANGE**2 / mse)
    return {"val_psnr": float(psnr.mean()), "val_ssim": float(ssim(x, x_hat, data_range=DATA_RANGE))}


def train_autoencoder(params: Mapping[str, Any], paths: ProcessedPaths, out_dir: str | Path,
                      checkpoint_dir: str | Path, log: Callable[[dict, int], None] | None = None, *,
                      max_steps: int | None = None, progress: bool = True) -> TrainResult:
    """Train, evaluate and save the autoencoder (EMA weights and latent scaling factor) to out_dir.

    `params` is the resolved params.yaml; `checkpoint_dir` this run's checkpoints (a rerun resumes from them;
    emptied when the settings or the data changed); `log(metrics, step)` gets the losses every
    training.autoencoder.log_every steps; `max_steps` overrides training.autoencoder.max_steps.
    The result's metrics: val_psnr, val_ssim, scaling_factor, n_train_slices, n_val_slices; its preview: the
    first N_FIGURE validation slices and their reconstructions, {"input": ..., "reconstruction": ...} (H x W
    arrays, one per slice).
    """
    out_dir, checkpoint_dir = Path(out_dir), Path(checkpoint_dir)
    model_cfg, train_cfg = params["model"], dict(params["training"]["autoencoder"])
    if max_steps is not None:
        train_cfg["max_steps"] = int(max_steps)
    cfg = TrainConfig.from_params(train_cfg)
    # from_config reads the `autoencoder_loss` key of the whole `model:` section
    weights = AutoencoderLossWeights.from_config(model_cfg)
    train, val = load_split(paths, "train"), load_split(paths, "val")

    prepare_checkpoints(checkpoint_dir, fingerprint(model_cfg, train_cfg, train))

    torch.manual_seed(cfg.seed)  # initial weights
    modules = {"vae": build_autoencoder(model_cfg), "disc": build_discriminator(model_cfg)}
    trainer: Trainer | None = None
    trainer = Trainer(modules, make_loss_fn(weights, lambda: trainer.step), len(train),
                      lambda idx: {"x_0": train[idx]}, cfg, checkpoint_dir, log=log, progress=progress)
    final = trainer.fit()   # the last step's losses, also when a rerun finds the checkpoint complete

    vae = trainer.ema_modules()["vae"].eval()
    scaling = set_scaling_factor(vae, encoder_means(vae, train))
    recon = reconstruct(vae, val)
    metrics = {**reconstruction_metrics(val, recon), "scaling_factor": scaling,
               "n_train_slices": len(train), "n_val_slices": len(val)}
    bad = [k for k in ("val_psnr", "val_ssim", "scaling_factor") if not math.isfinite(metrics[k])]
    if bad:
        raise G2IError(f"autoencoder evaluation gave non-finite {bad}; check the training losses")

    with atomic_dir(out_dir, overwrite=True) as tmp:
        vae.save_pretrained(tmp)
    n = min(N_FIGURE, len(val))
    return TrainResult(steps=trainer.step, final=dict(final), parameters=int(sum(p.numel() for p in vae.parameters())),
                       precision=trainer.precision, metrics=metrics,
                       preview={"input": val[:n, 0].numpy(), "reconstruction": recon[:n, 0].numpy()})
