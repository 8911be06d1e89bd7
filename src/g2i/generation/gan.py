"""GANPipeline: a trained GAN baseline (CGAN, StackGAN, AttnGAN) behind the same door as G2IPipeline.

    pipe = GANPipeline.from_pretrained("models/attngan")
    images = pipe(genotypes=codes, diagnosis=[0, 2], seed=0)    # B x H x W float32 in [-1, 1]
    pipe.save_pretrained("elsewhere/attngan")

Saved folder (written atomically): generator/ (diffusers save_pretrained: config.json + safetensors of the
EMA generator), genotype_encoder/ (StackGAN, AttnGAN; same format), training.json {variant, snps, steps,
image_size}. CGAN is conditioned on the diagnosis; StackGAN and AttnGAN on the genotype codes (through their
genotype encoder); both are passed so that callers treat every baseline alike. Training
(g2i.training.gan) builds the networks and hands them over here to be saved.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from ..errors import G2IError
from ..models.conditioning import diagnosis_onehot
from ..models.gans import GENERATOR_CLASSES
from ..models.genotype_encoder import GenotypeEncoder
from ..vocabulary import GAN_VARIANTS, codes_from_nan

INFO_FILE = "training.json"


def check_gan_variant(variant: str) -> str:
    if variant not in GAN_VARIANTS:
        raise G2IError(f"unknown GAN variant '{variant}'; valid: {', '.join(GAN_VARIANTS)}")
    return variant


def noise(generator: torch.Generator, device, *shape: int) -> torch.Tensor:
    """Standard normal draws from `generator` (on CPU, so a seed gives the same draws on any device)."""
    return torch.randn(shape, generator=generator).to(device)


def gan_forward(variant: str, gen: nn.Module, encoder: GenotypeEncoder | None, labels: torch.Tensor,
                genotypes: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """The final-resolution images for these conditions; z and CA noise from `generator`. Training uses it
    too, to re-estimate the EMA generator's BatchNorm statistics (in train mode)."""
    device = next(gen.parameters()).device
    n = len(labels) if variant == "cgan" else len(genotypes)
    z = noise(generator, device, n, gen.config.z_dim)
    if variant == "cgan":
        return gen(z, diagnosis_onehot(labels.to(device)))
    encoder.eval()  # no dropout when sampling (nor while re-estimating the generator's BatchNorm)
    embedding = encoder(genotypes.to(device))
    sentence = GenotypeEncoder.pooled(embedding)
    if variant == "stackgan":
        ca = gen.config.ca_dim
        return gen(sentence, z, noise(generator, device, n, ca), noise(generator, device, n, ca))["image"]
    return gen(embedding, sentence, z, noise(generator, device, n, gen.config.ca_dim))["images"][-1]


class GANPipeline:
    """A trained baseline ready to sample: the EMA generator, its genotype encoder (None for CGAN) and
    `info` (training.json: variant, snps, steps, image_size)."""

    def __init__(self, generator: nn.Module, genotype_encoder: GenotypeEncoder | None, info: dict[str, Any]):
        self.variant = check_gan_variant(info.get("variant", ""))
        if (genotype_encoder is None) != (self.variant == "cgan"):
            raise G2IError(f"{self.variant}: " + ("CGAN has no genotype encoder" if self.variant == "cgan"
                                                    else "a genotype encoder is required"))
        self.generator, self.genotype_encoder, self.info = generator, genotype_encoder, dict(info)

    @property
    def image_size(self) -> int:
        return int(self.info["image_size"])

    @classmethod
    def from_pretrained(cls, path: str | Path) -> "GANPipeline":
        """Rebuild a pipeline saved by save_pretrained (eval mode)."""
        path = Path(path)
        info_path = path / INFO_FILE
        if not info_path.is_file() or not (path / "generator").is_dir():
            raise G2IError(f"{path}: no trained GAN here; run `dvc repro` first")
        info = json.loads(info_path.read_text())
        variant = check_gan_variant(info.get("variant", ""))
        generator = GENERATOR_CLASSES[variant].from_pretrained(str(path / "generator")).eval()
        encoder = (GenotypeEncoder.from_pretrained(str(path / "genotype_encoder")).eval()
                   if variant != "cgan" else None)
        return cls(generator, encoder, info)

    def save_pretrained(self, path: str | Path) -> None:
        """Write the folder atomically (an existing one is replaced)."""
        from ..io.atomic import atomic_dir, write_json

        with atomic_dir(Path(path), overwrite=True) as tmp:
            self.generator.save_pretrained(str(tmp / "generator"))
            if self.genotype_encoder is not None:
                self.genotype_encoder.save_pretrained(str(tmp / "genotype_encoder"))
            write_json(tmp / INFO_FILE, self.info)

    @torch.no_grad()
    def generate(self, labels: torch.Tensor, genotypes: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """B x 1 x H x W slices in [-1, 1] (eval mode, EMA weights); `generator` draws z and the CA noise, so
        consecutive calls with one generator continue its stream. `labels`: B diagnosis indices 0/1/2 (CGAN);
        `genotypes`: B x F_g codes (StackGAN, AttnGAN)."""
        labels, genotypes = torch.as_tensor(labels), torch.as_tensor(genotypes)
        if self.variant != "cgan" and genotypes.dim() != 2:
            raise G2IError(f"{self.variant}: genotypes must be B x F_g codes, got shape {tuple(genotypes.shape)}")
        if self.variant == "cgan" and labels.dim() != 1:
            raise G2IError(f"cgan: labels must be B diagnosis indices, got shape {tuple(labels.shape)}")
        self.generator.eval()
        images = gan_forward(self.variant, self.generator, self.genotype_encoder, labels, genotypes, generator)
        return images.clamp(-1.0, 1.0).float().cpu()

    def __call__(self, genotypes: np.ndarray | Sequence, diagnosis: Sequence[int] | np.ndarray, seed: int = 0,
                 batch_pixels: int | None = None) -> np.ndarray:
        """B x H x W float32 images in [-1, 1] for B conditions: `genotypes` B x F_g with NaN for a missing
        call, `diagnosis` B class indices. One CPU generator seeded by `seed` draws every batch's noise in
        turn; `batch_pixels` bounds one forward pass's output pixels (None: one pass)."""
        labels = torch.as_tensor(np.asarray(diagnosis, dtype=np.int64))
        if len(labels) == 0:
            return np.zeros((0, self.image_size, self.image_size), dtype=np.float32)
        codes = torch.from_numpy(codes_from_nan(np.asarray(genotypes)))
        generator = torch.Generator().manual_seed(int(seed))
        step = len(labels) if batch_pixels is None else max(1, int(batch_pixels) // self.image_size ** 2)
        parts = [self.generate(labels[i:i + step], codes[i:i + step], generator)[:, 0].numpy()
                 for i in range(0, len(labels), step)]
        return np.concatenate(parts).astype(np.float32)
