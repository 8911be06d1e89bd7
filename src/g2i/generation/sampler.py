"""Reverse diffusion in latent space: DDPM or DDIM with classifier-free guidance, then decoding.

Conditions follow the variant: the diagnosis one-hot (all zeros = the null label) and/or the genotype
tokens of T_theta (learned null tokens for the unconditional branch). Guidance scale w mixes
eps = eps_uncond + w (eps_cond - eps_uncond); w = 1 is plain conditional sampling.

Variants that see both conditions can guide them separately (compositional guidance, as in
InstructPix2Pix): eps = eps_null + w_dx (eps_dx - eps_null) + w_g (eps_dx,g - eps_dx), with eps_dx the
diagnosis-only branch (null genotype; trained by `training.genotype_dropout`). w_g = w_dx is the single
scale above. Why: the diagnosis is learned strongly and the genotype weakly, so one scale large enough for
the genotype overshoots the diagnosis (docs/results/study.md). Only the branches a mix needs are run:
w_dx = w_g = 1: one pass; w_dx = 1: eps_dx and eps_dx,g; w_g = w_dx: eps_null and eps_dx,g; else three.

Samplers. "ddpm" is ancestral sampling on a subset of the training timesteps (diffusers' DDPMScheduler
with set_timesteps(n)); "ddim" is DDIM with stochasticity `eta` (0 = deterministic). Measured on the
demo models (800 training steps): DDPM-50 ends at latent std 1.12 (data: 1.00) where DDIM-50 with
eta = 0 drifts to 2.6; the re-injected noise corrects the under-trained model's errors at small t.
Hence DDPM is the default (params.yaml `sampling`).
"""

from __future__ import annotations

from contextlib import nullcontext

import torch

from ..models.conditioning import diagnosis_onehot

SAMPLERS = ("ddpm", "ddim", "dpm++")


def make_sampler(scheduler_config, sampler: str):
    """A fresh reverse scheduler with the training betas (clip_sample / thresholding off: latents are not
    pixels). "dpm++" is DPM-Solver++ (2M, deterministic; diffusers' DPMSolverMultistepScheduler), the
    few-step solver to weigh against DDPM-50 (benchmarks/sampling_benchmark.py)."""
    from diffusers import DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler

    if sampler == "ddpm":
        return DDPMScheduler.from_config(scheduler_config, clip_sample=False)
    if sampler == "ddim":
        return DDIMScheduler.from_config(scheduler_config, clip_sample=False)
    if sampler == "dpm++":
        return DPMSolverMultistepScheduler.from_config(scheduler_config, algorithm_type="dpmsolver++", solver_order=2,
                                                       thresholding=False)
    raise ValueError(f"sampler: unknown '{sampler}'; valid: {', '.join(SAMPLERS)}")


def autocast(device: torch.device):
    """bf16 autocast on GPU; nothing on CPU (CPU autocast is slower for these small convolutions)."""
    return torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else nullcontext()


@torch.no_grad()
def sample_latents(denoiser, genotype_encoder, scheduler, labels: torch.Tensor, genotypes: torch.Tensor,
                   latent_shape: tuple[int, ...], num_steps: int, guidance_scale: float = 1.0,
                   generator: torch.Generator | list[torch.Generator] | None = None, eta: float = 0.0,
                   progress: bool = False, genotype_guidance_scale: float | None = None) -> torch.Tensor:
    """Scaled latents z_0 for a batch of conditions (labels: B class indices; genotypes: B x F_g codes).

    `guidance_scale` w_dx; `genotype_guidance_scale` w_g (None: = w_dx), used only by variants that see
    both the diagnosis and the genotype.

    All randomness (z_T and the noise of every step) comes from `generator` (a CPU generator), so the
    same seed and batch give the same images on any device. A list of B generators gives each row its own
    stream (diffusers' randn_tensor draws row by row), independent of the other rows in the batch.
    """
    from diffusers import DDIMScheduler
    from diffusers.utils.torch_utils import randn_tensor
    from tqdm import tqdm

    batch = len(labels)
    device = next(denoiser.parameters()).device
    z_t = randn_tensor((batch, *latent_shape), generator=generator, device=torch.device("cpu")).to(device)
    onehot = diagnosis_onehot(labels.to(device)) if denoiser.uses_label else None
    null_onehot = torch.zeros_like(onehot) if onehot is not None else None
    tokens = genotype_encoder(genotypes.to(device)) if denoiser.uses_genotype else None
    null_tokens = genotype_encoder.null(batch).to(device) if denoiser.uses_genotype else None
    w_dx = float(guidance_scale)
    w_g = w_dx if genotype_guidance_scale is None or not (denoiser.uses_label and denoiser.uses_genotype) \
        else float(genotype_guidance_scale)
    step_kwargs = {"eta": eta} if isinstance(scheduler, DDIMScheduler) else {}
    scheduler.set_timesteps(num_steps)
    z_t = z_t * scheduler.init_noise_sigma
    for t in tqdm(scheduler.timesteps, desc="sampling", unit="step", leave=False, disable=not progress):
        steps = torch.full((batch,), int(t), device=device, dtype=torch.long)
        with autocast(device):
            eps = guided_eps(lambda o, k: denoiser(z_t, steps, o, k), (onehot, tokens), (onehot, null_tokens),
                             (null_onehot, null_tokens), w_dx, w_g)
        # diffusers draws the step noise on the generator's device (CPU) and moves it: same stream anywhere
        z_t = scheduler.step(eps.float(), t, z_t, generator=generator, **step_kwargs).prev_sample
    return z_t


def guided_eps(eps_of, full, dx_only, null, w_dx: float, w_g: float) -> torch.Tensor:
    """eps_null + w_dx (eps_dx - eps_null) + w_g (eps_full - eps_dx), evaluating only the branches needed.

    `eps_of(onehot, tokens)` runs the denoiser; full / dx_only / null are its (onehot, tokens) arguments.
    """
    eps_full = eps_of(*full)
    if w_dx == 1.0 and w_g == 1.0:
        return eps_full
    if w_g == w_dx:                              # one scale: the usual classifier-free guidance
        eps_null = eps_of(*null)
        return eps_null + w_dx * (eps_full - eps_null)
    eps_dx = eps_of(*dx_only)
    if w_dx == 1.0:
        return eps_dx + w_g * (eps_full - eps_dx)
    eps_null = eps_of(*null)
    return eps_null + w_dx * (eps_dx - eps_null) + w_g * (eps_full - eps_dx)


@torch.no_grad()
def decode(vae, z_0: torch.Tensor) -> torch.Tensor:
    """Images in [-1, 1] from scaled latents (divide by the scaling factor before decoding)."""
    return vae.decode(z_0 / vae.config.scaling_factor).sample.clamp(-1, 1)
