"""Reverse diffusion in latent space: DDIM or DDPM with classifier-free guidance, then decoding.

Conditions follow the variant: the diagnosis one-hot (all zeros = the null label) and/or the genotype
tokens of T_theta (learned null tokens for the unconditional branch). Guidance scale w mixes
eps = eps_uncond + w (eps_cond - eps_uncond); w = 1 is plain conditional sampling.
"""

from __future__ import annotations

import torch

from .models.denoiser import diagnosis_onehot


@torch.no_grad()
def sample_latents(denoiser, genotype_encoder, scheduler, labels: torch.Tensor, genotypes: torch.Tensor,
                   latent_shape: tuple[int, ...], num_steps: int, guidance_scale: float = 1.0,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """Scaled latents z_0 for a batch of conditions (labels: B class indices; genotypes: B x F_g codes)."""
    batch = len(labels)
    device = next(denoiser.parameters()).device
    z_t = torch.randn((batch, *latent_shape), generator=generator).to(device)
    onehot = diagnosis_onehot(labels.to(device)) if denoiser.uses_label else None
    null_onehot = torch.zeros_like(onehot) if onehot is not None else None
    tokens = genotype_encoder(genotypes.to(device)) if denoiser.uses_genotype else None
    null_tokens = genotype_encoder.null(batch).to(device) if denoiser.uses_genotype else None
    guided = guidance_scale != 1.0
    scheduler.set_timesteps(num_steps)
    z_t = z_t * scheduler.init_noise_sigma
    for t in scheduler.timesteps:
        steps = torch.full((batch,), int(t), device=device, dtype=torch.long)
        eps = denoiser(z_t, steps, onehot, tokens)
        if guided:
            eps_null = denoiser(z_t, steps, null_onehot, null_tokens)
            eps = eps_null + guidance_scale * (eps - eps_null)
        z_t = scheduler.step(eps, t, z_t, generator=generator).prev_sample
    return z_t


@torch.no_grad()
def decode(vae, z_0: torch.Tensor) -> torch.Tensor:
    """Images in [-1, 1] from scaled latents (divide by the scaling factor before decoding)."""
    return vae.decode(z_0 / vae.config.scaling_factor).sample.clamp(-1, 1)
