"""The `encode_latents` step: cache the autoencoder's posterior MEAN for every slice.

A cached sample would bake one draw of encoder noise into the data and put a floor under the diffusion
loss; the mean is the deterministic code. Latents are stored unscaled, aligned with the slices' rows;
the diffusion step multiplies them by the autoencoder's `scaling_factor`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from numpy.lib.format import open_memmap

from ..errors import G2IError
from ..io.atomic import atomic_dir, write_json

LATENTS_FILE = "latents.npy"


@torch.no_grad()
def encode_latents(autoencoder_dir: Path, slices_file: Path, out_dir: Path, summary_path: Path,
                   batch_size: int = 64) -> dict:
    from ..models.autoencoder import encode_mean, load_autoencoder

    if not Path(slices_file).is_file():
        raise G2IError(f"{slices_file}: not found; run `dvc repro` first")
    vae = load_autoencoder(autoencoder_dir)
    slices = np.load(slices_file, mmap_mode="r")
    with atomic_dir(out_dir, overwrite=True) as tmp:
        first = encode_mean(vae, torch.from_numpy(np.asarray(slices[:1], dtype=np.float32))[:, None])
        latents = open_memmap(tmp / LATENTS_FILE, mode="w+", dtype=np.float32, shape=(len(slices), *first.shape[1:]))
        for start in range(0, len(slices), batch_size):
            batch = torch.from_numpy(np.asarray(slices[start:start + batch_size], dtype=np.float32))[:, None]
            latents[start:start + len(batch)] = encode_mean(vae, batch).numpy()
        latents.flush()
        summary = {"n": int(len(slices)), "shape": list(first.shape[1:]),
                   "scaling_factor": float(vae.config.scaling_factor),
                   "scaled_std": round(float(np.std(latents) * vae.config.scaling_factor), 4)}
        del latents
    write_json(summary_path, summary)
    return summary
