"""The `train` step: T_theta and eps_theta trained jointly on cached latents (paper Eq. 11).

L = E || eps - eps_theta(z_t, t, T_theta(y)) ||^2, with z_t = sqrt(abar_t) z_0 + sqrt(1 - abar_t) eps from
the DDPM schedule (clip_sample off: latents are not images). A share `condition_dropout` of each batch
gets the null condition (zero label, learned null genotype tokens) so classifier-free guidance has an
unconditional branch to contrast with. Sampling and saving use the EMA weights.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
import torch.nn.functional as F

from ..data.dataset import ProcessedPaths, SliceGenotypeDataset
from ..errors import G2IError
from ..io.atomic import atomic_dir, write_json
from ..models import build_denoiser, build_genotype_encoder, build_scheduler
from ..models.denoiser import check_variant, diagnosis_onehot
from .trainer import TrainConfig, Trainer


def _stack(dataset: SliceGenotypeDataset) -> dict[str, torch.Tensor]:
    items = [dataset[i] for i in range(len(dataset))]
    return {key: torch.stack([item[key] for item in items]) for key in items[0]}


def diffusion_loss(variant_uses: tuple[bool, bool], noise_scheduler, condition_dropout: float):
    """The loss function handed to the Trainer (uses only the step's generator: exact resume)."""
    uses_label, uses_genotype = variant_uses
    T = noise_scheduler.config.num_train_timesteps
    alphas = noise_scheduler.alphas_cumprod

    def loss_fn(modules, batch, generator):
        z_0 = batch["z_0"]
        n = len(z_0)
        noise = torch.randn(z_0.shape, generator=generator).to(z_0.device)
        t = torch.randint(0, T, (n,), generator=generator).to(z_0.device)
        drop = (torch.rand(n, generator=generator) < condition_dropout).to(z_0.device)
        abar = alphas.to(z_0.device)[t].view(-1, 1, 1, 1)
        z_t = abar.sqrt() * z_0 + (1 - abar).sqrt() * noise
        onehot = diagnosis_onehot(batch["label"]) * (~drop)[:, None] if uses_label else None
        tokens = modules["genotype_encoder"](batch["genotype"], drop=drop) if uses_genotype else None
        eps = modules["denoiser"](z_t, t, onehot, tokens)
        loss = F.mse_loss(eps, noise)
        return loss, {"mse": float(loss.detach())}

    return loss_fn


def train_diffusion(variant: str, params: Mapping[str, Any], paths: ProcessedPaths, latents: Path,
                    scaling_factor: float, out_dir: Path, checkpoint_dir: Path, log=None,
                    max_steps: int | None = None) -> dict:
    """Train one variant; save denoiser, genotype encoder and scheduler (diffusers format) to out_dir."""
    check_variant(variant)
    model_cfg, train_cfg = params["model"], dict(params["training"]["diffusion"])
    if max_steps is not None:
        train_cfg["max_steps"] = int(max_steps)
    cfg = TrainConfig.from_params(train_cfg)
    dataset = SliceGenotypeDataset(paths, "train", images=latents)
    data = _stack(dataset)
    data["z_0"] = data.pop("x_0") * scaling_factor
    denoiser = build_denoiser(variant, model_cfg)
    modules = {"denoiser": denoiser}
    if denoiser.uses_genotype:
        modules["genotype_encoder"] = build_genotype_encoder(model_cfg, num_snps=data["genotype"].shape[1])
    noise_scheduler = build_scheduler(model_cfg)
    dropout = float(params["training"].get("condition_dropout", 0.1))
    if not 0 <= dropout < 1:
        raise G2IError(f"params.yaml: training.condition_dropout must be within [0, 1), got {dropout}")
    loss_fn = diffusion_loss((denoiser.uses_label, denoiser.uses_genotype), noise_scheduler, dropout)
    trainer = Trainer(modules, loss_fn, len(dataset), lambda idx: {k: v[idx] for k, v in data.items()}, cfg,
                      checkpoint_dir, log=log)
    final = trainer.fit()
    ema = trainer.ema_modules()
    if trainer.accelerator.is_main_process:
        with atomic_dir(out_dir, overwrite=True) as tmp:
            for name, module in ema.items():
                module.save_pretrained(str(tmp / name))
            noise_scheduler.save_pretrained(str(tmp / "scheduler"))
            write_json(tmp / "training.json", {"variant": variant, "snps": dataset.snps, "steps": trainer.step,
                                               "latent_shape": list(data["z_0"].shape[1:])})
    return {"final_loss": final["loss"], "steps": trainer.step,
            "parameters": int(sum(p.numel() for p in ema.parameters()))}


def load_variant(model_dir: Path):
    """(denoiser, genotype encoder or None, scheduler config, training info) saved by train_diffusion."""
    import json

    from diffusers import DDPMScheduler

    from ..models import G2IDenoiser, GenotypeEncoder

    model_dir = Path(model_dir)
    if not (model_dir / "denoiser").is_dir():
        raise G2IError(f"{model_dir}: no trained model here; run `dvc repro` first")
    denoiser = G2IDenoiser.from_pretrained(str(model_dir / "denoiser")).eval()
    encoder = (GenotypeEncoder.from_pretrained(str(model_dir / "genotype_encoder")).eval()
               if (model_dir / "genotype_encoder").is_dir() else None)
    scheduler = DDPMScheduler.from_pretrained(str(model_dir / "scheduler"))
    return denoiser, encoder, scheduler, json.loads((model_dir / "training.json").read_text())


def sample_grid(model_dir: Path, vae, val: SliceGenotypeDataset, steps: int, figure: Path, seed: int = 0,
                sampler: str = "ddpm") -> np.ndarray:
    """One generated slice per diagnosis class (conditions from validation subjects), EMA weights.

    `sampler`: "ddpm" (the full training schedule; `steps` ignored) or "ddim" with `steps` steps. On the
    short demo training, DDIM-50 diverges (latent std ~2.7 instead of ~1) where DDPM-1000 gives brains.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from diffusers import DDIMScheduler

    from ..io.atomic import atomic_file
    from ..sampling import decode, sample_latents

    denoiser, encoder, scheduler, info = load_variant(model_dir)
    picks = [int(np.flatnonzero(val.labels == c)[0]) for c in range(3) if (val.labels == c).any()]
    labels = torch.tensor([int(val.labels[i]) for i in picks])
    genotypes = torch.from_numpy(val.codes[picks])
    if sampler == "ddim":
        reverse = DDIMScheduler.from_config(scheduler.config, clip_sample=False)
    elif sampler == "ddpm":
        reverse, steps = scheduler, scheduler.config.num_train_timesteps
    else:
        raise G2IError(f"unknown sampler '{sampler}': use ddpm or ddim")
    z_0 = sample_latents(denoiser, encoder, reverse, labels, genotypes, tuple(info["latent_shape"]), steps,
                         generator=torch.Generator().manual_seed(seed))
    images = decode(vae, z_0)[:, 0].numpy()
    fig, axes = plt.subplots(1, len(images), figsize=(2.2 * len(images), 2.4), squeeze=False)
    for ax, image, label in zip(axes[0], images, labels):
        ax.imshow(image, cmap="gray", vmin=-1, vmax=1)
        ax.set_title(("CN", "MCI", "AD")[int(label)], fontsize=9)
        ax.axis("off")
    fig.suptitle(f"{info['variant']}: {sampler.upper()} {steps} steps, EMA weights", fontsize=9)
    fig.tight_layout()
    with atomic_file(figure, "wb") as handle:
        fig.savefig(handle, format="png", dpi=100)
    plt.close(fig)
    return images


def remove_checkpoints(checkpoint_dir: Path) -> None:
    """Checkpoints are for resuming an interrupted run; once the model is saved they are not needed."""
    shutil.rmtree(checkpoint_dir, ignore_errors=True)
