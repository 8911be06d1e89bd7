"""Preview grids while and after training: one generated slice per diagnosis class, conditions taken from
validation subjects (the first of each class), drawn from a diffusion pipeline or a saved GAN."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ..vocabulary import DIAGNOSES, N_CLASSES, codes_with_nan


def class_picks(val) -> list[int]:
    """The first subject of each diagnosis class in `val` (a SliceGenotypeDataset), classes absent skipped."""
    return [int(np.flatnonzero(val.labels == c)[0]) for c in range(N_CLASSES) if (val.labels == c).any()]


def sample_grid(pipe, val, figure: Path, sampling: Mapping[str, Any], title: str = "") -> np.ndarray:
    """One generated slice per diagnosis class (conditions from validation subjects), as a PNG figure."""
    from ..reports.figures import image_row

    picks = class_picks(val)
    labels = [int(val.labels[i]) for i in picks]
    out = pipe(genotypes=codes_with_nan(val.codes[picks]), diagnosis=labels, num_inference_steps=int(sampling["num_inference_steps"]),
               sampler=sampling["sampler"], guidance_scale=float(sampling["guidance_scale"]),
               eta=float(sampling["eta"]), seed=int(sampling["seed"]), output_type="np")
    steps = f"{sampling['sampler'].upper()}-{sampling['num_inference_steps']}"
    image_row(out.images, [DIAGNOSES[c] for c in labels], figure,
              title or f"{pipe.config.variant}: {steps}, EMA weights")
    return out.images


def gan_sample_grid(model_dir: Path, val, figure: Path, batch_pixels: int, title: str) -> np.ndarray:
    """One slice per diagnosis class from a saved GAN (its EMA generator, seed 0), as a PNG figure.

    `batch_pixels`: sample.gan_batch_pixels (see g2i.generation.loader.gan_generator)."""
    from ..reports.figures import image_row
    from .loader import gan_generator

    picks = class_picks(val)
    images = gan_generator(model_dir, int(batch_pixels))(codes_with_nan(val.codes[picks]), val.labels[picks], 0)
    image_row(images, [DIAGNOSES[int(val.labels[i])] for i in picks], figure, title)
    return images
