"""Structural similarity (SSIM, Wang et al. 2004) in plain torch: a loss term here, a metric later.

Written out rather than imported so that nothing is downloaded and the same code serves the
autoencoder's loss and the paper's evaluation (Table 1 reports SSIM). Gaussian window, valid
convolution, constants K1 = 0.01, K2 = 0.03 as in the original paper. The core (`local_moments`,
`stability_constants`) is shared with MS-SSIM (g2i.evaluation.image_metrics), which needs the
contrast-structure term alone.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

K1, K2 = 0.01, 0.03


def gaussian_window(size: int, sigma: float, channels: int, device=None, dtype=None) -> torch.Tensor:
    """A `channels x 1 x size x size` separable Gaussian kernel summing to 1 (for a grouped conv)."""
    coords = torch.arange(size, device=device, dtype=dtype or torch.float32) - (size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).expand(channels, 1, size, size).contiguous()


def stability_constants(data_range: float) -> tuple[float, float]:
    """SSIM's C1 = (K1 L)^2 and C2 = (K2 L)^2 for intensities of range L = `data_range`."""
    return (K1 * data_range) ** 2, (K2 * data_range) ** 2


def local_moments(x: torch.Tensor, y: torch.Tensor, window: torch.Tensor
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(mu_x, mu_y, var_x, var_y, cov): Gaussian-weighted local means, variances and covariance of two
    B x C x H x W batches, valid convolution, each channel on its own (`window`: C x 1 x k x k, gaussian_window)."""

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(t, window, groups=window.shape[0])

    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x**2
    var_y = blur(y * y) - mu_y**2
    cov = blur(x * y) - mu_x * mu_y
    return mu_x, mu_y, var_x, var_y, cov


def ssim(x: torch.Tensor, y: torch.Tensor, data_range: float = 2.0, window_size: int = 11,
         sigma: float = 1.5, reduction: str = "mean") -> torch.Tensor:
    """SSIM of two B x C x H x W batches; `data_range` is max - min of the intensities ([-1, 1] -> 2).

    The window shrinks to the image when the image is smaller (tiny test images), keeping it odd.
    reduction: "mean" (a scalar) or "none" (one value per image).
    """
    if x.shape != y.shape or x.dim() != 4:
        raise ValueError(f"ssim expects two B x C x H x W tensors of one shape, got {tuple(x.shape)} and {tuple(y.shape)}")
    size = min(window_size, x.shape[-1], x.shape[-2])
    size -= 1 - size % 2
    window = gaussian_window(size, sigma, x.shape[1], x.device, x.dtype)
    c1, c2 = stability_constants(data_range)
    mu_x, mu_y, var_x, var_y, cov = local_moments(x, y, window)
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    per_image = ssim_map.flatten(1).mean(1)
    return per_image.mean() if reduction == "mean" else per_image
