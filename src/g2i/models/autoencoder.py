"""The KL autoencoder (encoder E, decoder D) that moves 1-channel MRI slices to and from latent space.

Three blocks, so 4x spatial downsampling (64 -> 16 demo, 256 -> 64 paper): diffusers' Encoder
downsamples after every block but the last. The loss follows the MONAI 2D LDM recipe without its
perceptual term (LPIPS would need downloaded weights): L1 + optional SSIM + 1e-6 KL + least-squares
adversarial loss from a small PatchGAN, switched on after a warm-up.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL
from torch import nn

from ..config import from_section
from ..errors import G2IError
from .settings import check_groups, require, section
from .ssim import ssim

DOWNSAMPLING = 4
N_BLOCKS = 3  # 2 ** (N_BLOCKS - 1) == DOWNSAMPLING


def build_autoencoder(cfg: Mapping[str, Any]) -> AutoencoderKL:
    """AutoencoderKL from `model.autoencoder` (block_out_channels: 3 widths, latent_channels, ...)."""
    ae = section(cfg, "autoencoder")
    widths = [int(c) for c in require(ae, "block_out_channels", "autoencoder")]
    if len(widths) != N_BLOCKS:
        raise G2IError(f"params.yaml: model.autoencoder.block_out_channels needs {N_BLOCKS} widths "
                       f"(4x downsampling), got {widths}")
    groups = check_groups(widths, int(require(ae, "norm_num_groups", "autoencoder")), "autoencoder")
    return AutoencoderKL(
        in_channels=1, out_channels=1,  # MRI slices are single-channel end to end
        down_block_types=("DownEncoderBlock2D",) * N_BLOCKS,
        up_block_types=("UpDecoderBlock2D",) * N_BLOCKS,
        block_out_channels=tuple(widths),
        layers_per_block=int(require(ae, "layers_per_block", "autoencoder")),
        latent_channels=int(require(ae, "latent_channels", "autoencoder")),
        norm_num_groups=groups,
        sample_size=int(require(ae, "sample_size", "autoencoder")),
        mid_block_add_attention=bool(require(ae, "mid_block_attention", "autoencoder")),
        scaling_factor=1.0,  # replaced by latent_scaling_factor() once the autoencoder is trained
    )


def encode_mean(vae: AutoencoderKL, x: torch.Tensor) -> torch.Tensor:
    """Unscaled latent MEAN of E(x): what to cache for diffusion training (a drawn sample bakes in noise)."""
    return vae.encode(x).latent_dist.mean


def autoencode(vae: AutoencoderKL, x: torch.Tensor, generator: torch.Generator | None = None):
    """(reconstruction, posterior): decode a sample of the posterior, as in autoencoder training."""
    posterior = vae.encode(x).latent_dist
    return vae.decode(posterior.sample(generator=generator)).sample, posterior


def latent_scaling_factor(latents: torch.Tensor) -> float:
    """1 / std of training latents, so that z fed to the U-Net has unit variance (Rombach et al.)."""
    std = float(latents.float().std())
    if not std > 0 or std != std:
        raise G2IError(f"latent scaling factor: latents have standard deviation {std}; is the autoencoder trained?")
    return 1.0 / std


def set_scaling_factor(vae: AutoencoderKL, latents: torch.Tensor) -> float:
    """Store 1 / std(latents) in the autoencoder's config, so it travels with save_pretrained."""
    factor = latent_scaling_factor(latents)
    vae.register_to_config(scaling_factor=factor)
    return factor


class PatchDiscriminator(nn.Module):
    """PatchGAN (Isola et al. 2017): a grid of real/fake logits, one per overlapping image patch."""

    def __init__(self, in_channels: int = 1, channels: int = 32, n_layers: int = 3, norm_num_groups: int = 8):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(in_channels, channels, 4, 2, 1), nn.LeakyReLU(0.2)]
        width = channels
        for i in range(1, n_layers + 1):
            out = channels * min(2**i, 8)
            stride = 2 if i < n_layers else 1  # the last layer widens the receptive field without shrinking
            layers += [nn.Conv2d(width, out, 4, stride, 1, bias=False),
                       nn.GroupNorm(min(norm_num_groups, out), out), nn.LeakyReLU(0.2)]
            width = out
        layers.append(nn.Conv2d(width, 1, 4, 1, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def build_discriminator(cfg: Mapping[str, Any]) -> PatchDiscriminator:
    disc = section(cfg, "discriminator")
    return PatchDiscriminator(1, *(int(require(disc, key, "discriminator"))
                                   for key in ("channels", "n_layers", "norm_num_groups")))


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
