"""The KL autoencoder's loss (g2i.models.autoencoder), after the MONAI 2D LDM recipe without its perceptual
term (LPIPS would need downloaded weights): L1 + optional SSIM + 1e-6 KL + least-squares adversarial loss
from a small PatchGAN, switched on after a warm-up.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from ..config import from_section
from ..models.ssim import ssim


@dataclass(frozen=True)
class AutoencoderLossWeights:
    """Weights of the autoencoder loss terms (`model.autoencoder_loss`; every key stated there, no code default)."""

    l1: float
    ssim: float
    kl: float
    adversarial: float
    adversarial_warmup_steps: int

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> "AutoencoderLossWeights":
        return from_section(cls, cfg.get("autoencoder_loss"), "model.autoencoder_loss")


def l1_loss(x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
    return F.l1_loss(x_hat, x)


def ssim_loss(x: torch.Tensor, x_hat: torch.Tensor, data_range: float = 2.0) -> torch.Tensor:
    """1 - SSIM; slices are scaled to [-1, 1], hence data_range 2."""
    return 1.0 - ssim(x, x_hat, data_range=data_range)


def kl_loss(posterior) -> torch.Tensor:
    """KL(q(z|x) || N(0, I)) summed over latent elements, averaged over the batch."""
    return posterior.kl().mean()


def adversarial_active(step: int, warmup_steps: int) -> bool:
    """The adversarial terms start only after the warm-up, once reconstructions are roughly right."""
    return step >= warmup_steps


def generator_adversarial_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Least-squares GAN (Mao et al. 2017): the decoder wants D(fake) = 1."""
    return torch.mean((fake_logits - 1.0) ** 2)


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Least-squares GAN: D(real) -> 1, D(fake) -> 0 (pass fake logits of detached reconstructions)."""
    return 0.5 * (torch.mean((real_logits - 1.0) ** 2) + torch.mean(fake_logits**2))


def autoencoder_loss(x: torch.Tensor, x_hat: torch.Tensor, posterior, weights: AutoencoderLossWeights, step: int,
                     discriminator: nn.Module | None = None) -> tuple[torch.Tensor, dict[str, float]]:
    """Total generator-side loss and its parts (floats, for logging)."""
    parts = {"l1": l1_loss(x, x_hat), "kl": kl_loss(posterior)}
    total = weights.l1 * parts["l1"] + weights.kl * parts["kl"]
    if weights.ssim:
        parts["ssim"] = ssim_loss(x, x_hat)
        total = total + weights.ssim * parts["ssim"]
    if discriminator is not None and weights.adversarial and adversarial_active(step, weights.adversarial_warmup_steps):
        parts["adversarial"] = generator_adversarial_loss(discriminator(x_hat))
        total = total + weights.adversarial * parts["adversarial"]
    return total, {name: float(value.detach()) for name, value in parts.items()}
