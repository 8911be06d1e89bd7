"""Image-quality and diversity metrics of the paper's evaluation (section 4.2), numpy in, numpy out.

Images are N x H x W float arrays (one channel) with intensities in [-1, 1], so `data_range` = 2.

- PSNR (dB), per pair: 10 log10(data_range^2 / MSE). HIGHER is better (closer to the real image).
  Identical images give +inf; average with `mean_finite`, which skips infinite values.
- SSIM (Wang et al. 2004), per pair, from `g2i.models.ssim`: 1 = identical. HIGHER is better.
- MS-SSIM (Wang et al. 2003), per pair: SSIM's contrast-structure term at several scales (2x2 average
  pooling between them), luminance only at the coarsest, standard weights. HIGHER is better.
- `pairwise_similarity`: mean SSIM / MS-SSIM over random pairs WITHIN one generated set, a diversity
  score: LOWER means more diverse (a collapsed generator scores near 1).
- Frechet distance (FID when fed Inception-V3 pool3 features): distance between Gaussians fitted to two
  feature sets. LOWER is better; 0 for identical statistics.
- KID (Binkowski et al. 2018): unbiased MMD^2 with a cubic polynomial kernel over random subsets,
  reported as (mean, std). LOWER is better; ~0 (can be slightly negative) for one distribution.

Torch does the convolutions (no grad, float64, in batches of `batch_size` images to bound memory).
"""

from __future__ import annotations

import numpy as np
import scipy.linalg
import torch
import torch.nn.functional as F

from g2i.models.ssim import gaussian_window, local_moments, ssim, stability_constants

# Wang et al. 2003, finest to coarsest.
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
SSIM_WINDOW = 11
SSIM_SIGMA = 1.5


# ----------------------------------------------------------------------------------------- validation

def _as_images(name: str, images: np.ndarray) -> np.ndarray:
    arr = np.asarray(images)
    if arr.ndim != 3:
        raise ValueError(f"{name} must be an N x H x W array of images, got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise ValueError(f"{name} is empty (0 images)")
    if not np.issubdtype(arr.dtype, np.number) or not np.isfinite(arr).all():
        raise ValueError(f"{name} must hold finite numbers")
    return arr


def _as_pair(a: np.ndarray, b: np.ndarray, names: tuple[str, str]) -> tuple[np.ndarray, np.ndarray]:
    a, b = _as_images(names[0], a), _as_images(names[1], b)
    if a.shape != b.shape:
        raise ValueError(f"{names[0]} and {names[1]} must have the same shape, got {a.shape} and {b.shape}")
    return a, b


def _check_positive(name: str, value: float) -> None:
    if not value > 0:
        raise ValueError(f"{name} must be > 0, got {value}")


def _as_features(name: str, features: np.ndarray) -> np.ndarray:
    arr = np.asarray(features, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be an N x D feature array, got shape {arr.shape}")
    if arr.shape[0] < 2:
        raise ValueError(f"{name} needs at least 2 rows (samples), got {arr.shape[0]}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} must hold finite numbers")
    return arr


def _batches(n: int, batch_size: int):
    _check_positive("batch_size", batch_size)
    for start in range(0, n, batch_size):
        yield slice(start, min(start + batch_size, n))


def _torch(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(images, dtype=np.float64))[:, None]


# ----------------------------------------------------------------------------------------- PSNR / SSIM

def psnr(generated: np.ndarray, real: np.ndarray, data_range: float = 2.0, batch_size: int = 256) -> np.ndarray:
    """PSNR in dB per pair (N values); +inf where a pair is identical (see `mean_finite`)."""
    generated, real = _as_pair(generated, real, ("generated", "real"))
    _check_positive("data_range", data_range)
    mse = np.empty(len(generated))
    for sl in _batches(len(generated), batch_size):
        diff = generated[sl].astype(np.float64) - real[sl]
        mse[sl] = (diff * diff).mean(axis=(1, 2))
    with np.errstate(divide="ignore"):  # mse == 0 -> +inf on purpose
        return 10.0 * np.log10(data_range**2 / mse)


def mean_finite(values: np.ndarray) -> float:
    """Mean of the finite entries (how PSNR is averaged); +inf if all are +inf, NaN if none is usable."""
    arr = np.asarray(values, dtype=np.float64).ravel()
    finite = arr[np.isfinite(arr)]
    if finite.size:
        return float(finite.mean())
    return float("inf") if arr.size and np.all(arr == np.inf) else float("nan")


@torch.no_grad()
def ssim_pairs(a: np.ndarray, b: np.ndarray, data_range: float = 2.0, batch_size: int = 64) -> np.ndarray:
    """SSIM per pair (N values) with the project's SSIM (11-px Gaussian window, sigma 1.5)."""
    a, b = _as_pair(a, b, ("a", "b"))
    _check_positive("data_range", data_range)
    out = np.empty(len(a))
    for sl in _batches(len(a), batch_size):
        out[sl] = ssim(_torch(a[sl]), _torch(b[sl]), data_range=data_range, reduction="none").numpy()
    return out


# ----------------------------------------------------------------------------------------- MS-SSIM

def ms_ssim_scales(size: int) -> int:
    """Scales for MS-SSIM on images whose smaller side is `size`: the largest K <= 5 whose coarsest
    image (after K - 1 halvings, rounding down) is still >= the 11-px SSIM window.

    64 -> 3 (64, 32, 16), 256 -> 5 (256 ... 16). Images under 11 px have no valid scale: ValueError.
    """
    if size < SSIM_WINDOW:
        raise ValueError(f"size must be >= {SSIM_WINDOW} px (the SSIM window) for MS-SSIM, got {size}")
    scales = 1
    while scales < len(MS_SSIM_WEIGHTS) and size // 2**scales >= SSIM_WINDOW:
        scales += 1
    return scales


def _ssim_and_cs(x: torch.Tensor, y: torch.Tensor, window: torch.Tensor, data_range: float
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image mean SSIM map and mean contrast-structure map (same constants as g2i.models.ssim).

    MS-SSIM needs cs alone at the finer scales, which the project's `ssim` does not expose.
    """
    c1, c2 = stability_constants(data_range)
    mu_x, mu_y, var_x, var_y, cov = local_moments(x, y, window)
    cs_map = (2 * cov + c2) / (var_x + var_y + c2)
    luminance = (2 * mu_x * mu_y + c1) / (mu_x**2 + mu_y**2 + c1)
    return (luminance * cs_map).flatten(1).mean(1), cs_map.flatten(1).mean(1)


@torch.no_grad()
def ms_ssim_pairs(a: np.ndarray, b: np.ndarray, scales: int | None = None, data_range: float = 2.0,
                  batch_size: int = 64) -> np.ndarray:
    """MS-SSIM per pair (N values) in [0, 1].

    MS = prod_{j < K} relu(cs_j)^w_j * relu(ssim_K)^w_K, where ssim_K = mean(l * cs) at the coarsest
    scale (luminance enters only there; w are the first K standard weights renormalised to sum 1).
    `scales` defaults to `ms_ssim_scales(min(H, W))`; a larger value than that is refused. relu keeps
    a fractional power of a negative cs (anti-correlated patches) from producing NaN.
    """
    a, b = _as_pair(a, b, ("a", "b"))
    _check_positive("data_range", data_range)
    if min(a.shape[1:]) < SSIM_WINDOW:
        raise ValueError(f"a and b must be at least {SSIM_WINDOW} px on each side for MS-SSIM, "
                         f"got {a.shape[1]} x {a.shape[2]}")
    max_scales = ms_ssim_scales(min(a.shape[1:]))
    if scales is None:
        scales = max_scales
    elif not 1 <= scales <= max_scales:
        raise ValueError(f"scales must be in 1..{max_scales} for {a.shape[1]} x {a.shape[2]} images, got {scales}")
    weights = torch.tensor(MS_SSIM_WEIGHTS[:scales], dtype=torch.float64)
    weights = weights / weights.sum()
    window = gaussian_window(SSIM_WINDOW, SSIM_SIGMA, 1, dtype=torch.float64)
    out = np.empty(len(a))
    for sl in _batches(len(a), batch_size):
        x, y = _torch(a[sl]), _torch(b[sl])
        terms = []
        for level in range(scales):
            ssim_val, cs = _ssim_and_cs(x, y, window, data_range)
            if level == scales - 1:
                terms.append(ssim_val)
            else:
                terms.append(cs)
                # 2x2 average pooling; an odd last row/column is dropped (matches ms_ssim_scales' floor).
                x, y = F.avg_pool2d(x, 2), F.avg_pool2d(y, 2)
        stacked = torch.relu(torch.stack(terms, dim=1))
        out[sl] = torch.prod(stacked ** weights, dim=1).numpy()
    return out


# ----------------------------------------------------------------------------------------- diversity

def _random_pairs(n: int, max_pairs: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Distinct unordered pairs (i < j): all of them when there are at most `max_pairs`, else a sample."""
    total = n * (n - 1) // 2
    if total <= max_pairs:
        return np.triu_indices(n, k=1)
    rng = np.random.default_rng(seed)
    # Rejection sampling avoids materialising all n^2/2 pairs for large sets.
    found: set[tuple[int, int]] = set()
    while len(found) < max_pairs:
        i, j = rng.integers(0, n, size=(2, 2 * (max_pairs - len(found))))
        for p, q in zip(np.minimum(i, j), np.maximum(i, j)):
            if p != q:
                found.add((int(p), int(q)))
                if len(found) == max_pairs:
                    break
    pairs = np.array(sorted(found))
    return pairs[:, 0], pairs[:, 1]


def pairwise_similarity(images: np.ndarray, metric: str = "ssim", max_pairs: int = 1000, seed: int = 0,
                        data_range: float = 2.0, batch_size: int = 64) -> float:
    """Mean SSIM or MS-SSIM over random distinct pairs within one generated set (LOWER = more diverse)."""
    images = _as_images("images", images)
    if len(images) < 2:
        raise ValueError(f"images needs at least 2 images to form pairs, got {len(images)}")
    if metric not in ("ssim", "ms_ssim"):
        raise ValueError(f"metric must be 'ssim' or 'ms_ssim', got {metric!r}")
    if max_pairs < 1:
        raise ValueError(f"max_pairs must be >= 1, got {max_pairs}")
    first, second = _random_pairs(len(images), max_pairs, seed)
    fn = ssim_pairs if metric == "ssim" else ms_ssim_pairs
    values = []
    # Index per batch so that at most `batch_size` pairs of images are copied at once.
    for sl in _batches(len(first), batch_size):
        values.append(fn(images[first[sl]], images[second[sl]], data_range=data_range, batch_size=batch_size))
    return float(np.concatenate(values).mean())


# ----------------------------------------------------------------------------------------- feature distances

def frechet_distance(features_a: np.ndarray, features_b: np.ndarray, eps: float = 1e-6) -> float:
    """||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 sqrt(S_a S_b)), as pytorch-fid computes FID.

    A non-finite matrix square root (singular covariances, e.g. fewer samples than dimensions) is
    retried with eps * I added to both covariances; tiny imaginary parts from numerical error are
    dropped, large ones raise. Tiny negative results from rounding are clipped to 0.
    """
    a, b = _as_features("features_a", features_a), _as_features("features_b", features_b)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"features_a and features_b must have the same dimension, got {a.shape[1]} and {b.shape[1]}")
    mu_a, mu_b = a.mean(0), b.mean(0)
    sigma_a, sigma_b = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    covmean = scipy.linalg.sqrtm(sigma_a @ sigma_b)
    if not np.isfinite(covmean).all():
        offset = np.eye(len(sigma_a)) * eps
        covmean = scipy.linalg.sqrtm((sigma_a + offset) @ (sigma_b + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError(f"frechet_distance: matrix square root has a large imaginary part "
                             f"({np.abs(covmean.imag).max():.3g}); the covariances are ill-conditioned")
        covmean = covmean.real
    diff = mu_a - mu_b
    value = diff @ diff + np.trace(sigma_a) + np.trace(sigma_b) - 2 * np.trace(covmean)
    return float(max(value, 0.0))


def _polynomial_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 with k(u, v) = (u.v / D + 1)^3 (diagonal terms left out of the within-set sums)."""
    dim, m = x.shape[1], len(x)
    k_xx = (x @ x.T / dim + 1) ** 3
    k_yy = (y @ y.T / dim + 1) ** 3
    k_xy = (x @ y.T / dim + 1) ** 3
    within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
    return float(within - 2 * k_xy.mean())


def kernel_inception_distance(features_a: np.ndarray, features_b: np.ndarray, subsets: int = 10,
                              subset_size: int = 100, seed: int = 0) -> tuple[float, float]:
    """KID as (mean, std) of the unbiased polynomial-kernel MMD^2 over `subsets` random subsets.

    Each subset draws `subset_size` rows without replacement from each set (capped by the smaller set).
    """
    a, b = _as_features("features_a", features_a), _as_features("features_b", features_b)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"features_a and features_b must have the same dimension, got {a.shape[1]} and {b.shape[1]}")
    if subsets < 1:
        raise ValueError(f"subsets must be >= 1, got {subsets}")
    if subset_size < 2:
        raise ValueError(f"subset_size must be >= 2, got {subset_size}")
    m = min(subset_size, len(a), len(b))
    rng = np.random.default_rng(seed)
    values = np.array([
        _polynomial_mmd2(a[rng.choice(len(a), m, replace=False)], b[rng.choice(len(b), m, replace=False)])
        for _ in range(subsets)
    ])
    return float(values.mean()), float(values.std())
