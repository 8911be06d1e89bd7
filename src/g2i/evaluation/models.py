"""One way to load any trained generator (diffusion pipeline or GAN) as `generate(genotypes, labels, seed)`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

from ..errors import G2IError
from .generated import Generate, pipeline_generator


def load_generator(model_dir: str | Path, params: Mapping[str, Any], progress: bool = True) -> tuple[Generate, dict]:
    """(generate, settings used) for the model saved in `model_dir`; G2IError says how to make it."""
    model_dir = Path(model_dir)
    if (model_dir / "model_index.json").is_file():  # a G2IPipeline (the four diffusion variants)
        from ..training.diffusion import load_variant

        sampling = dict(params["sampling"])
        return pipeline_generator(load_variant(model_dir), sampling, progress), sampling
    info = model_dir / "training.json"
    if info.is_file() and json.loads(info.read_text()).get("family") == "gan":
        from ..training.gan import gan_generator

        return gan_generator(model_dir), {"sampler": "gan (one forward pass)"}
    raise G2IError(f"{model_dir}: no trained model here; run `dvc repro` (or `g2i train --variant "
                   f"{model_dir.name}`) first")
