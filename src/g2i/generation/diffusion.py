"""G2IPipeline: genotype + diagnosis -> brain slice, as a diffusers DiffusionPipeline.

Holds the KL autoencoder (`vae`), the denoiser eps_theta (`unet`), the training noise schedule
(`scheduler`) and, for the variants that read genotypes, T_theta (`genotype_encoder`). Saved with
`save_pretrained` (model_index.json + one folder per component, each with its config beside its
weights) and rebuilt with `G2IPipeline.from_pretrained(path)`; the SNP order, image size and slice
plane travel in model_index.json, so a saved pipeline is all a user needs to generate.

    pipe = G2IPipeline.from_pretrained("models/pipelines/g2i_l_att")
    out = pipe(genotypes=table, diagnosis=["AD", "CN"], num_inference_steps=50, seed=0)
    out.images   # B x H x W float32 in [-1, 1] (the slices' normalised intensity space)
    out.pil      # B PIL images (8-bit grey)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from diffusers import DiffusionPipeline
from diffusers.utils import BaseOutput

from .export import to_pil
from .sampler import SAMPLERS, decode, make_sampler, sample_latents
from ..vocabulary import DIAGNOSES, MISSING_CODE, codes_from_nan


@dataclass
class G2IPipelineOutput(BaseOutput):
    images: np.ndarray   # B x H x W float32 in [-1, 1]
    pil: list            # PIL.Image.Image, mode "L"


class G2IPipeline(DiffusionPipeline):
    """Generates axial T1 slices conditioned on genotype codes and / or a diagnosis (per variant)."""

    _optional_components = ["genotype_encoder"]  # ldm has none; diffusers saves only declared components

    def __init__(self, vae, unet, scheduler, genotype_encoder=None, snps: Sequence[str] = (),
                 z_mm: float = 16.0, variant: str | None = None):
        super().__init__()
        self.register_modules(vae=vae, unet=unet, scheduler=scheduler, genotype_encoder=genotype_encoder)
        self.register_to_config(snps=list(snps), z_mm=float(z_mm), variant=variant or unet.config.variant)

    # ---- persistence ----------------------------------------------------------------------------------

    @classmethod
    def from_pretrained(cls, path: str | Path, **_: Any) -> "G2IPipeline":  # local folders only: no hub
        from diffusers import AutoencoderKL, DDPMScheduler

        from ..errors import G2IError
        from ..models.denoiser import G2IDenoiser
        from ..models.genotype_encoder import GenotypeEncoder

        path = Path(path)
        index = path / "model_index.json"
        if not index.is_file():
            raise G2IError(f"{path}: not a saved G2IPipeline (no model_index.json); run `dvc repro` first")
        config = json.loads(index.read_text())
        encoder = path / "genotype_encoder"
        return cls(vae=AutoencoderKL.from_pretrained(str(path / "vae")).eval(),
                   unet=G2IDenoiser.from_pretrained(str(path / "unet")).eval(),
                   scheduler=DDPMScheduler.from_pretrained(str(path / "scheduler")),
                   genotype_encoder=GenotypeEncoder.from_pretrained(str(encoder)).eval() if encoder.is_dir() else None,
                   snps=config["snps"], z_mm=config["z_mm"], variant=config["variant"])

    # ---- inputs -----------------------------------------------------------------------------------------

    @property
    def uses_genotype(self) -> bool:
        return self.unet.uses_genotype

    @property
    def uses_label(self) -> bool:
        return self.unet.uses_label

    @property
    def image_size(self) -> int:
        return int(self.vae.config.sample_size)

    def genotype_codes(self, genotypes) -> torch.Tensor:
        """B x F_g int64 codes in the pipeline's SNP order (NaN = missing); ValueError names the problem.

        `genotypes`: a table with one column per SNP (extra columns ignored) or a B x F_g array whose
        columns follow `self.config.snps`.
        """
        import pandas as pd

        snps = self.config.snps
        if isinstance(genotypes, pd.DataFrame):
            missing = [s for s in snps if s not in genotypes.columns]
            if missing:
                raise ValueError(f"genotypes: {len(missing)} SNP column(s) missing, e.g. {missing[:5]}")
            values = genotypes[snps].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
            bad_text = genotypes[snps].notna().to_numpy() & np.isnan(values)
            if bad_text.any():
                raise ValueError("genotypes: non-numeric codes; use 0, 1, 2 (effect-allele counts) or empty")
        else:
            values = np.asarray(genotypes, dtype=float)
            if values.ndim == 1:
                values = values[None]
            if values.ndim != 2 or values.shape[1] != len(snps):
                raise ValueError(f"genotypes: expected B x {len(snps)} codes (one per SNP: {', '.join(snps[:3])}, ...), "
                                 f"got shape {values.shape}")
        known = values[~np.isnan(values)]
        if known.size and not np.isin(known, (0, 1, 2)).all():
            bad = sorted(set(known[~np.isin(known, (0, 1, 2))].tolist()))[:5]
            raise ValueError(f"genotypes: codes must be 0, 1 or 2 (effect-allele counts); got {bad}")
        return torch.from_numpy(codes_from_nan(values))

    @staticmethod
    def diagnosis_labels(diagnosis, batch: int | None) -> torch.Tensor:
        """Class indices from names (CN/MCI/AD) or indices (0/1/2); one value is repeated to the batch."""
        values = [diagnosis] if isinstance(diagnosis, (str, int, np.integer)) else list(diagnosis)
        if len(values) == 1 and batch:
            values = values * batch
        labels = []
        for value in values:
            if isinstance(value, str) and value.strip().upper() in DIAGNOSES:
                labels.append(DIAGNOSES.index(value.strip().upper()))
            elif isinstance(value, (int, np.integer)) and not isinstance(value, bool) and 0 <= value < len(DIAGNOSES):
                labels.append(int(value))
            else:
                raise ValueError(f"diagnosis: unknown '{value}'; valid: {', '.join(DIAGNOSES)} (or 0, 1, 2)")
        return torch.tensor(labels, dtype=torch.long)

    # ---- generation -------------------------------------------------------------------------------------

    @torch.no_grad()
    def __call__(self, genotypes=None, diagnosis=None, num_inference_steps: int = 50, sampler: str = "ddpm",
                 guidance_scale: float = 1.0, eta: float = 0.0, seed: int | Sequence[int] | None = None,
                 generator: torch.Generator | list[torch.Generator] | None = None, batch_size: int = 64,
                 progress: bool = False,
                 output_type: str = "both", genotype_guidance_scale: float | None = None) -> G2IPipelineOutput:
        """Generate one slice per row of conditions.

        genotypes: table or B x F_g codes (needed by g2i, g2i_l_noatt, g2i_l_att; ignored by ldm);
        diagnosis: B names/indices or one for all (needed by ldm, g2i_l_noatt, g2i_l_att; ignored by g2i).
        Randomness comes from `generator`, else from a CPU generator seeded with `seed` (default 0): the
        same seed and inputs give the same images. Per-row randomness: `seed` as one integer per row (or
        `generator` as one generator per row) gives each row its own noise stream, so a row's image does
        not depend on the rows batched with it (what the served model needs to coalesce requests). `guidance_scale` w (the diagnosis' scale w_dx when
        `genotype_guidance_scale` w_g is given; that one acts only in variants that see both conditions:
        eps_null + w_dx (eps_dx - eps_null) + w_g (eps_dx,g - eps_dx), see g2i.generation.sampler).
        """
        from tqdm import tqdm

        if not isinstance(num_inference_steps, (int, np.integer)) or num_inference_steps <= 0:
            raise ValueError(f"num_inference_steps: must be a positive integer, got {num_inference_steps!r}")
        limit = int(self.scheduler.config.num_train_timesteps)
        if num_inference_steps > limit:
            raise ValueError(f"num_inference_steps: at most {limit} (the training schedule), got {num_inference_steps}")
        if sampler not in SAMPLERS:
            raise ValueError(f"sampler: unknown '{sampler}'; valid: {', '.join(SAMPLERS)}")
        if not np.isfinite(guidance_scale) or guidance_scale < 0:
            raise ValueError(f"guidance_scale: must be a finite number >= 0, got {guidance_scale}")
        if genotype_guidance_scale is not None and (not np.isfinite(genotype_guidance_scale) or genotype_guidance_scale < 0):
            raise ValueError(f"genotype_guidance_scale: must be a finite number >= 0 (or None), got {genotype_guidance_scale}")
        if batch_size <= 0:
            raise ValueError(f"batch_size: must be positive, got {batch_size}")
        if output_type not in ("np", "pil", "both"):
            raise ValueError(f"output_type: 'np', 'pil' or 'both', got {output_type!r}")

        codes = self.genotype_codes(genotypes) if genotypes is not None else None
        if codes is None and self.uses_genotype:
            raise ValueError(f"genotypes: variant '{self.config.variant}' is conditioned on genotypes; none given")
        batch = len(codes) if codes is not None else None
        labels = self.diagnosis_labels(diagnosis, batch) if diagnosis is not None else None
        if labels is None and self.uses_label:
            raise ValueError(f"diagnosis: variant '{self.config.variant}' is conditioned on the diagnosis; none given")
        if batch is None:
            batch = len(labels)
        if labels is None:
            labels = torch.zeros(batch, dtype=torch.long)
        if codes is None:
            codes = torch.full((batch, len(self.config.snps)), MISSING_CODE, dtype=torch.long)
        if len(labels) != batch:
            raise ValueError(f"diagnosis: {len(labels)} values for {batch} genotype rows")
        if batch == 0:
            raise ValueError("genotypes/diagnosis: no rows to generate")

        generator = self._generators(generator, seed, batch)
        latent_shape = (int(self.vae.config.latent_channels), *(int(s) for s in self._latent_hw()))
        reverse = make_sampler(self.scheduler.config, sampler)
        images = []
        chunks = range(0, batch, batch_size)
        for start in tqdm(chunks, desc=f"generating ({sampler.upper()}-{num_inference_steps})", unit="batch",
                          disable=not progress or len(chunks) == 1):
            part = slice(start, start + batch_size)
            z_0 = sample_latents(self.unet, self.genotype_encoder, reverse, labels[part], codes[part], latent_shape,
                                 int(num_inference_steps), float(guidance_scale),
                                 generator[part] if isinstance(generator, list) else generator, float(eta),
                                 progress=progress and len(chunks) == 1,
                                 genotype_guidance_scale=None if genotype_guidance_scale is None
                                 else float(genotype_guidance_scale))
            images.append(decode(self.vae, z_0).float().cpu()[:, 0].numpy())
        array = np.concatenate(images).astype(np.float32)
        pil = [to_pil(image) for image in array] if output_type in ("pil", "both") else []
        return G2IPipelineOutput(images=array if output_type in ("np", "both") else None, pil=pil)

    @staticmethod
    def _generators(generator, seed, batch: int):
        """One CPU generator for the batch, or one per row (a list) when `seed` / `generator` is per row."""
        if generator is not None:
            if isinstance(generator, (list, tuple)) and len(generator) != batch:
                raise ValueError(f"generator: {len(generator)} generators for {batch} rows")
            return list(generator) if isinstance(generator, (list, tuple)) else generator
        if seed is None or isinstance(seed, (int, np.integer)):
            return torch.Generator().manual_seed(int(seed or 0))
        seeds = list(seed)
        if len(seeds) != batch:
            raise ValueError(f"seed: {len(seeds)} seeds for {batch} rows (give one seed, or one per row)")
        return [torch.Generator().manual_seed(int(s)) for s in seeds]

    def _latent_hw(self) -> tuple[int, int]:
        factor = 2 ** (len(self.vae.config.block_out_channels) - 1)
        return (self.image_size // factor, self.image_size // factor)


def load_variant(model_dir: str | Path) -> G2IPipeline:
    """The saved G2IPipeline of one diffusion variant (G2IError with the fix when it is not there)."""
    from ..errors import G2IError

    model_dir = Path(model_dir)
    if not (model_dir / "model_index.json").is_file():
        raise G2IError(f"{model_dir}: no trained model here; run `dvc repro` first")
    return G2IPipeline.from_pretrained(model_dir)
