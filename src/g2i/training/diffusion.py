"""The `train` step: T_theta and eps_theta trained jointly on cached latents (paper Eq. 11).

L = E || eps - eps_theta(z_t, t, T_theta(y)) ||^2, with z_t = sqrt(abar_t) z_0 + sqrt(1 - abar_t) eps from
the DDPM schedule (clip_sample off: latents are not images). A share `condition_dropout` of each batch
gets the null condition (zero label, learned null genotype tokens) so classifier-free guidance has an
unconditional branch to contrast with. In variants that see both conditions, a further share
`genotype_dropout` keeps the diagnosis and gets the null genotype: the diagnosis-only branch eps(z_t | dx)
that lets sampling guide the genotype separately from the diagnosis (`sampling.genotype_guidance_scale`).
Both shares come from one uniform draw per sample, so genotype_dropout = 0 trains exactly as before.
Sampling and saving use the EMA weights.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping

import torch
import torch.nn.functional as F

from ..data.dataset import ProcessedPaths, SliceGenotypeDataset
from ..errors import G2IError
from ..io.atomic import atomic_dir, write_json
from ..models.denoiser import build_denoiser
from ..models.genotype_encoder import build_genotype_encoder
from ..models.scheduler import build_scheduler
from ..models.conditioning import diagnosis_onehot
from ..models.denoiser import check_variant
from .trainer import TrainConfig, Trainer, TrainResult, prepare_checkpoints, settings_fingerprint


def diffusion_loss(variant_uses: tuple[bool, bool], noise_scheduler, condition_dropout: float,
                   genotype_dropout: float = 0.0):
    """The loss function handed to the Trainer (uses only the step's generator: exact resume).

    u ~ U(0, 1) per sample: u < condition_dropout drops both conditions; u < condition_dropout +
    genotype_dropout drops the genotype (so the second share keeps its diagnosis).
    """
    uses_label, uses_genotype = variant_uses
    genotype_share = condition_dropout + (genotype_dropout if uses_label and uses_genotype else 0.0)
    T = noise_scheduler.config.num_train_timesteps
    alphas = noise_scheduler.alphas_cumprod

    def loss_fn(modules, batch, generator):
        z_0 = batch["z_0"]
        n = len(z_0)
        noise = torch.randn(z_0.shape, generator=generator).to(z_0.device)
        t = torch.randint(0, T, (n,), generator=generator).to(z_0.device)
        u = torch.rand(n, generator=generator).to(z_0.device)
        drop, drop_genotype = u < condition_dropout, u < genotype_share
        abar = alphas.to(z_0.device)[t].view(-1, 1, 1, 1)
        z_t = abar.sqrt() * z_0 + (1 - abar).sqrt() * noise
        onehot = diagnosis_onehot(batch["label"]) * (~drop)[:, None] if uses_label else None
        tokens = modules["genotype_encoder"](batch["genotype"], drop=drop_genotype) if uses_genotype else None
        eps = modules["denoiser"](z_t, t, onehot, tokens)
        loss = F.mse_loss(eps, noise)
        return loss, {"mse": float(loss.detach())}

    return loss_fn


def diffusion_fingerprint(variant: str, params: Mapping[str, Any], train_cfg: Mapping[str, Any],
                          data: Mapping[str, torch.Tensor]) -> str:
    model = params["model"]
    return settings_fingerprint({"variant": variant, "unet": model.get("unet"),
                                 "genotype_encoder": model.get("genotype_encoder"), "scheduler": model.get("scheduler"),
                                 "training": dict(train_cfg),
                                 "condition_dropout": params["training"].get("condition_dropout"),
                                 **({"genotype_dropout": params["training"]["genotype_dropout"]}
                                    if params["training"].get("genotype_dropout") else {})},
                                torch.cat([data["z_0"].flatten(1), data["genotype"].float(), data["label"][:, None].float()], 1))


def condition_dropouts(training: Mapping[str, Any]) -> tuple[float, float]:
    """(condition_dropout, genotype_dropout) from params.yaml `training`, checked."""
    values = []
    for key in ("condition_dropout", "genotype_dropout"):
        if key not in training:
            raise G2IError(f"params.yaml: training.{key} is missing")
        value = float(training[key])
        if not 0 <= value < 1:
            raise G2IError(f"params.yaml: training.{key} must be within [0, 1), got {value}")
        values.append(value)
    if sum(values) >= 1:
        raise G2IError(f"params.yaml: training.condition_dropout + genotype_dropout must be below 1, got {sum(values)}")
    return values[0], values[1]


def build_pipeline(modules: Mapping[str, torch.nn.Module], vae, noise_scheduler, snps: list[str], z_mm: float):
    """A G2IPipeline from trained modules (EMA weights) and the autoencoder."""
    from ..generation.diffusion import G2IPipeline

    return G2IPipeline(vae=vae, unet=modules["denoiser"].eval(), scheduler=noise_scheduler,
                       genotype_encoder=modules["genotype_encoder"].eval() if "genotype_encoder" in modules else None,
                       snps=snps, z_mm=z_mm)


def train_diffusion(params: Mapping[str, Any], paths: ProcessedPaths, out_dir: Path, checkpoint_dir: Path,
                    log: Callable[[dict, int], None] | None = None, *, variant: str, latents: Path, vae,
                    on_checkpoint=None, max_steps: int | None = None, progress: bool = True) -> TrainResult:
    """Train one variant; save its G2IPipeline (EMA weights, diffusers format) to out_dir.

    `latents`: the cached latents (encode_latents); `vae`: the trained autoencoder (its scaling factor scales
    the cached latents; it is saved in the pipeline). `log(metrics, step)` gets the losses every
    training.diffusion.log_every steps. `on_checkpoint(pipeline, step)`: called with the current EMA pipeline
    at each checkpoint. `max_steps` overrides training.diffusion.max_steps.
    Checkpoints from other settings or data are discarded, never resumed.
    """
    check_variant(variant)
    model_cfg, train_cfg = params["model"], dict(params["training"]["diffusion"])
    if max_steps is not None:
        train_cfg["max_steps"] = int(max_steps)
    cfg = TrainConfig.from_params(train_cfg)
    dataset = SliceGenotypeDataset(paths, "train", images=latents)
    data = dataset.stacked()
    data["z_0"] = data.pop("x_0") * float(vae.config.scaling_factor)
    z_mm = _slice_plane(paths)
    prepare_checkpoints(checkpoint_dir, diffusion_fingerprint(variant, params, train_cfg, data))
    torch.manual_seed(cfg.seed)  # initial weights: the same params give the same model
    denoiser = build_denoiser(variant, model_cfg)
    modules = {"denoiser": denoiser}
    if denoiser.uses_genotype:
        modules["genotype_encoder"] = build_genotype_encoder(model_cfg, num_snps=data["genotype"].shape[1])
    noise_scheduler = build_scheduler(model_cfg)
    dropout, genotype_dropout = condition_dropouts(params["training"])
    loss_fn = diffusion_loss((denoiser.uses_label, denoiser.uses_genotype), noise_scheduler, dropout, genotype_dropout)

    def checkpoint_hook(trainer: Trainer) -> None:
        if on_checkpoint is not None:
            on_checkpoint(build_pipeline(trainer.ema_modules(), vae, noise_scheduler, dataset.snps, z_mm), trainer.step)

    trainer = Trainer(modules, loss_fn, len(dataset), lambda idx: {k: v[idx] for k, v in data.items()}, cfg,
                      checkpoint_dir, log=log, progress=progress, on_checkpoint=checkpoint_hook)
    final = trainer.fit()
    ema = trainer.ema_modules()
    if trainer.accelerator.is_main_process:
        pipe = build_pipeline(ema, vae, noise_scheduler, dataset.snps, z_mm)
        with atomic_dir(out_dir, overwrite=True) as tmp:
            pipe.save_pretrained(str(tmp))
            write_json(tmp / "training.json", {"variant": variant, "snps": dataset.snps, "steps": trainer.step,
                                               "latent_shape": list(data["z_0"].shape[1:])})
    return TrainResult(steps=trainer.step, final=dict(final), parameters=int(sum(p.numel() for p in ema.parameters())),
                       precision=trainer.precision)


def _slice_plane(paths: ProcessedPaths) -> float:
    """The MNI z of the slices (a single plane; the first when several were extracted)."""
    import pandas as pd

    return float(pd.read_csv(paths.slices_dir / "index.csv")["z_mm"].iloc[0])
