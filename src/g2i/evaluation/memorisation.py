"""The memorisation audit: is a generated slice a copy of a training slice, beyond what real scans of different subjects share?"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..imaging.slice_morphometry import as_images
from ..models.ssim import ssim


def _as_tensor(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32))[:, None]


def _nearest_by_ssim(queries: torch.Tensor, train: torch.Tensor, top_k: int | None,
                     batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """For each query, max SSIM over training images and its index.

    With top_k, candidates are the top_k training images by L2 distance (an exact copy has distance 0,
    so it is always a candidate); SSIM is computed for those only: batch_size x top_k pairs at a time
    instead of N x M. With top_k None, SSIM against every training image (exact, M times the cost).
    """
    m = train.shape[0]
    flat_train = train.flatten(1)
    best = np.empty(queries.shape[0], dtype=np.float64)
    where = np.empty(queries.shape[0], dtype=np.int64)
    k = m if top_k is None else min(int(top_k), m)
    for start in range(0, queries.shape[0], batch_size):
        q = queries[start:start + batch_size]
        b = q.shape[0]
        if k == m:
            candidates = torch.arange(m).expand(b, m)
        else:
            dist = torch.cdist(q.flatten(1), flat_train)
            candidates = dist.topk(k, dim=1, largest=False).indices
        # chunk the b x k pairs so that exhaustive search keeps memory at ~batch_size pairs
        pairs_q = torch.arange(b).repeat_interleave(k)
        pairs_t = candidates.reshape(-1)
        flat_scores = torch.empty(b * k)
        for p in range(0, b * k, batch_size * 8):
            sel = slice(p, p + batch_size * 8)
            flat_scores[sel] = ssim(q[pairs_q[sel]], train[pairs_t[sel]], data_range=2.0, reduction="none")
        scores = flat_scores.reshape(b, k)
        top = scores.argmax(1)
        best[start:start + b] = scores[torch.arange(b), top].double().numpy()
        where[start:start + b] = candidates[torch.arange(b), top].numpy()
    return best, where


def _summary(nn_ssim: np.ndarray, nn_index: np.ndarray, threshold: float) -> dict:
    return {
        "nn_ssim": nn_ssim,
        "nn_index": nn_index,
        "mean": float(nn_ssim.mean()),
        "median": float(np.median(nn_ssim)),
        "max": float(nn_ssim.max()),
        "fraction_above_threshold": float((nn_ssim > threshold).mean()),
        "n": int(nn_ssim.size),
    }


def memorisation_audit(generated: Any, train: Any, threshold: float = 0.95, batch_size: int = 32,
                       reference: Any = None, top_k: int | None = 8) -> dict:
    """SSIM of each generated image to its nearest training slice, and the same for held-out real slices.

    Returns nn_ssim (per image), nn_index (into `train`), mean / median / max, fraction_above_threshold
    (nn_ssim > threshold), and with `reference` (held-out real slices, not in `train`) the same under
    'reference' plus `excess_fraction_above_threshold` = generated - reference. The baseline matters:
    registered scans of different subjects already share most of their structure, so a high nn SSIM
    is evidence of copying only where it exceeds what unseen real scans reach.
    Nearest neighbours: top_k candidates by L2 distance, then SSIM (top_k None: exhaustive SSIM).
    """
    gen = as_images(generated, "generated")
    tr = as_images(train, "train")
    if gen.shape[1:] != tr.shape[1:]:
        raise ValueError(f"generated: image size {gen.shape[1:]} differs from train {tr.shape[1:]}")
    if not 0 < threshold <= 1:
        raise ValueError(f"threshold: expected a value in (0, 1], got {threshold}")
    if batch_size < 1:
        raise ValueError(f"batch_size: expected >= 1, got {batch_size}")
    if top_k is not None and top_k < 1:
        raise ValueError(f"top_k: expected >= 1 or None, got {top_k}")
    train_t = _as_tensor(tr)
    with torch.no_grad():
        nn_ssim, nn_index = _nearest_by_ssim(_as_tensor(gen), train_t, top_k, batch_size)
        result = _summary(nn_ssim, nn_index, threshold)
        result.update(threshold=float(threshold), n_train=int(tr.shape[0]), top_k=top_k)
        if reference is not None:
            ref = as_images(reference, "reference")
            if ref.shape[1:] != tr.shape[1:]:
                raise ValueError(f"reference: image size {ref.shape[1:]} differs from train {tr.shape[1:]}")
            ref_ssim, ref_index = _nearest_by_ssim(_as_tensor(ref), train_t, top_k, batch_size)
            result["reference"] = _summary(ref_ssim, ref_index, threshold)
            result["excess_fraction_above_threshold"] = (
                result["fraction_above_threshold"] - result["reference"]["fraction_above_threshold"])
    return result


__all__ = ["memorisation_audit"]
