"""The KL autoencoder (encoder E, decoder D) that moves 1-channel MRI slices to and from latent space.

Three blocks, so 4x spatial downsampling (64 -> 16 demo, 256 -> 64 paper): diffusers' Encoder
downsamples after every block but the last. Its loss (MONAI 2D LDM recipe: L1 + SSIM + KL + adversarial
from the PatchGAN below) is in g2i.losses.autoencoder. Loading a trained one and the batched inference
used after training (encoder means, reconstructions) are here too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import torch
from diffusers import AutoencoderKL
from torch import nn

from ..errors import G2IError
from .settings import check_groups, require, section

DOWNSAMPLING = 4
N_BLOCKS = 3  # 2 ** (N_BLOCKS - 1) == DOWNSAMPLING
EVAL_BATCH = 64  # slices per forward pass in encoder_means / reconstruct


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


def load_autoencoder(path: Path):
    """The trained autoencoder saved in `path` (diffusers format), in eval mode; G2IError when there is none."""
    if not (Path(path) / "config.json").is_file():
        raise G2IError(f"{path}: no trained autoencoder here; run `dvc repro train_autoencoder` first")
    return AutoencoderKL.from_pretrained(str(path)).eval()


@torch.no_grad()
def encoder_means(vae, x: torch.Tensor) -> torch.Tensor:
    """Unscaled posterior means of a stack of slices, EVAL_BATCH at a time (what the scaling factor is fitted to)."""
    return torch.cat([encode_mean(vae, x[i:i + EVAL_BATCH]) for i in range(0, len(x), EVAL_BATCH)])


@torch.no_grad()
def reconstruct(vae, x: torch.Tensor) -> torch.Tensor:
    """Decoded posterior means, clipped to the data range as any displayed or scored image is."""
    out = [vae.decode(encode_mean(vae, x[i:i + EVAL_BATCH])).sample for i in range(0, len(x), EVAL_BATCH)]
    return torch.cat(out).clamp(-1.0, 1.0)


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
