"""The diagnosis condition as networks read it, shared by the denoiser and the GAN baselines.

Its own module, free of diffusers: a GAN stage that imported it from the denoiser paid for diffusers'
import (~5 s a process) without using it."""

from __future__ import annotations

import torch
from torch import nn

from ..vocabulary import N_CLASSES


def diagnosis_onehot(labels: torch.Tensor, num_classes: int = N_CLASSES) -> torch.Tensor:
    """Integer labels (B) -> float one-hot (B x num_classes). An all-zero row is the null label."""
    return nn.functional.one_hot(labels.long(), num_classes).float()
