"""The front door: load any trained generator (G2IPipeline or GANPipeline), dispatching on what its folder
holds, as one `generate(genotypes, labels, seed)` function (the shape `sample` and the benchmarks use)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

from ..errors import G2IError
from .sets import Generate, pipeline_generator


def load_generator(model_dir: str | Path, params: Mapping[str, Any], progress: bool = True) -> tuple[Generate, dict]:
    """(generate, settings used) for the model saved in `model_dir`; G2IError says how to make it."""
    model_dir = Path(model_dir)
    if (model_dir / "model_index.json").is_file():  # a G2IPipeline (the four diffusion variants)
        from .diffusion import load_variant

        sampling = dict(params["sampling"])
        return pipeline_generator(load_variant(model_dir), sampling, progress), sampling
    info = model_dir / "training.json"
    if info.is_file():
        from ..vocabulary import GAN_VARIANTS

        if json.loads(info.read_text()).get("variant") in GAN_VARIANTS:
            return gan_generator(model_dir, int(params["sample"]["gan_batch_pixels"])), {"sampler": "gan", "passes": 1}
    raise G2IError(f"{model_dir}: no trained model here; run `dvc repro` (or `g2i train --variant "
                   f"{model_dir.name}`) first")


def guided_generators(model_dir: str | Path, params: Mapping[str, Any]):
    """(w_dx, w_g) -> `generate` of one diffusion pipeline at those guidance scales (the weights load once)."""
    from .diffusion import load_variant

    pipe = load_variant(Path(model_dir))
    return lambda w, w_g: pipeline_generator(pipe, {**params["sampling"], **guidance_settings(w, w_g)}, progress=False)


def guidance_settings(w: float, w_g: float) -> dict:
    """The `sampling` keys for guidance (w_dx, w_g); w_g = w_dx is the single scale (no genotype key)."""
    return {"guidance_scale": float(w), "genotype_guidance_scale": None if float(w_g) == float(w) else float(w_g)}


def gan_generator(model_dir: Path, batch_pixels: int) -> Generate:
    """`generate` for a GAN baseline: one forward pass per batch of at most `batch_pixels` output pixels
    (`sample.gan_batch_pixels`: 256 images at 64 x 64, 16 at 256 x 256, so memory does not grow with the image
    size); z from a CPU generator seeded by `seed`."""
    from .gan import GANPipeline

    pipe = GANPipeline.from_pretrained(model_dir)
    return lambda genotypes, labels, seed: pipe(genotypes, labels, seed, batch_pixels=batch_pixels)
