"""Inception-V3 (Szegedy et al. 2016) pool3 features for FID, in plain torch, from a local weights file.

Why not torchvision / pytorch-fid: torchvision is not installable here and both download weights on
first use. This module builds the network itself, with torchvision's module names
(`Conv2d_1a_3x3.conv.weight`, `Mixed_5b.branch1x1.bn.running_mean`, ..., `fc.weight`), so either of
these state dicts loads with `load_state_dict`:

- torchvision's `inception_v3_google-*.pth` (1000 classes, with `AuxLogits.*`);
- pytorch-fid's `pt_inception-2015-12-05-*.pth` (1008 classes, no AuxLogits): the TF graph FID was
  defined with. Its blocks differ slightly from torchvision's, and `fid_variant=True` reproduces them:
  the average-pool branches of Mixed_5b-5d, 6b-6e and 7b exclude the padding from the average
  (count_include_pad=False) and Mixed_7c's pool branch is a 3x3 max-pool. `load_inception` turns the
  variant on when `fc` has 1008 outputs. Only the FID variant with pytorch-fid's file gives FID values
  comparable with published ones; torchvision's weights give a related but different number.

Input scaling: both weight sets expect the first convolution to see pixels in [-1, 1]. torchvision's
public API takes ImageNet mean/std-normalised inputs and maps them back to [-1, 1] inside
(`transform_input=True`, exactly (x - 0.5) / 0.5 for x in [0, 1]); pytorch-fid maps [0, 1] to [-1, 1].
Our images are already in [-1, 1], so `InceptionV3` takes [-1, 1] directly for both variants and
there is no `transform_input` step (it would cancel with the ImageNet normalisation anyway).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

FEATURE_DIM = 2048
INPUT_SIZE = 299
FID_CLASSES = 1008  # pytorch-fid's TF-converted graph has 1008 logits; torchvision's has 1000
ACCEPTED_FILES = ("pytorch-fid's pt_inception-2015-12-05-*.pth (the FID network) or "
                  "torchvision's inception_v3_google-*.pth (a state dict for models.inception_v3)")


class BasicConv2d(nn.Module):
    """Conv (no bias) -> BatchNorm (eps 1e-3, as in the TF original) -> ReLU."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


def _pool_branch(x: torch.Tensor, mode: str) -> torch.Tensor:
    """The 3x3 stride-1 pooling ahead of each block's `branch_pool` 1x1 conv.

    "avg": torchvision (padding counted in the average); "avg_fid": TF / pytorch-fid (padding not
    counted, which changes border values); "max": the TF graph's last block (Mixed_7c).
    """
    if mode == "max":
        return F.max_pool2d(x, 3, stride=1, padding=1)
    return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=(mode == "avg"))


class InceptionA(nn.Module):
    """35 x 35 block: 1x1, 5x5, double 3x3 and pool branches (Mixed_5b-5d)."""

    def __init__(self, in_channels: int, pool_features: int, pool: str = "avg") -> None:
        super().__init__()
        self.pool = pool
        self.branch1x1 = BasicConv2d(in_channels, 64, 1)
        self.branch5x5_1 = BasicConv2d(in_channels, 48, 1)
        self.branch5x5_2 = BasicConv2d(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, padding=1)
        self.branch_pool = BasicConv2d(in_channels, pool_features, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([
            self.branch1x1(x),
            self.branch5x5_2(self.branch5x5_1(x)),
            self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
            self.branch_pool(_pool_branch(x, self.pool)),
        ], 1)


class InceptionB(nn.Module):
    """Grid reduction 35 -> 17 (Mixed_6a)."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch3x3 = BasicConv2d(in_channels, 384, 3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([
            self.branch3x3(x),
            self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
            F.max_pool2d(x, 3, stride=2),
        ], 1)


class InceptionC(nn.Module):
    """17 x 17 block with factorised 7x7 convolutions (Mixed_6b-6e)."""

    def __init__(self, in_channels: int, channels_7x7: int, pool: str = "avg") -> None:
        super().__init__()
        self.pool = pool
        c7 = channels_7x7
        row, col = dict(kernel_size=(1, 7), padding=(0, 3)), dict(kernel_size=(7, 1), padding=(3, 0))
        self.branch1x1 = BasicConv2d(in_channels, 192, 1)
        self.branch7x7_1 = BasicConv2d(in_channels, c7, 1)
        self.branch7x7_2 = BasicConv2d(c7, c7, **row)
        self.branch7x7_3 = BasicConv2d(c7, 192, **col)
        self.branch7x7dbl_1 = BasicConv2d(in_channels, c7, 1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, **col)
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, **row)
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, **col)
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, **row)
        self.branch_pool = BasicConv2d(in_channels, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        d7 = self.branch7x7dbl_1(x)
        for layer in (self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4, self.branch7x7dbl_5):
            d7 = layer(d7)
        return torch.cat([self.branch1x1(x), b7, d7, self.branch_pool(_pool_branch(x, self.pool))], 1)


class InceptionD(nn.Module):
    """Grid reduction 17 -> 8 (Mixed_7a)."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch3x3_1 = BasicConv2d(in_channels, 192, 1)
        self.branch3x3_2 = BasicConv2d(192, 320, 3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(in_channels, 192, 1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b7 = x
        for layer in (self.branch7x7x3_1, self.branch7x7x3_2, self.branch7x7x3_3, self.branch7x7x3_4):
            b7 = layer(b7)
        return torch.cat([self.branch3x3_2(self.branch3x3_1(x)), b7, F.max_pool2d(x, 3, stride=2)], 1)


class InceptionE(nn.Module):
    """8 x 8 block with expanded 1x3 / 3x1 filter banks (Mixed_7b, 7c)."""

    def __init__(self, in_channels: int, pool: str = "avg") -> None:
        super().__init__()
        self.pool = pool
        self.branch1x1 = BasicConv2d(in_channels, 320, 1)
        self.branch3x3_1 = BasicConv2d(in_channels, 384, 1)
        self.branch3x3_2a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 448, 1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(in_channels, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3_1(x)
        d3 = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        return torch.cat([
            self.branch1x1(x),
            self.branch3x3_2a(b3), self.branch3x3_2b(b3),
            self.branch3x3dbl_3a(d3), self.branch3x3dbl_3b(d3),
            self.branch_pool(_pool_branch(x, self.pool)),
        ], 1)


class InceptionAux(nn.Module):
    """The auxiliary classifier: only present so torchvision's file loads; never run here."""

    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        self.conv0 = BasicConv2d(in_channels, 128, 1)
        self.conv1 = BasicConv2d(128, 768, 5)
        self.fc = nn.Linear(768, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(self.conv0(F.avg_pool2d(x, 5, stride=3)))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class InceptionV3(nn.Module):
    """Inception-V3 with torchvision's parameter names; input N x 3 x 299 x 299 in [-1, 1].

    `pool3(x)` gives the 2048-d features FID uses; `forward(x)` the class logits.
    fid_variant: pytorch-fid's pooling in Mixed_5/6/7 (see the module docstring).
    """

    def __init__(self, num_classes: int = 1000, aux_logits: bool = True, fid_variant: bool = False) -> None:
        super().__init__()
        self.fid_variant = fid_variant
        avg = "avg_fid" if fid_variant else "avg"
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, 3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, 1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, 3)
        self.Mixed_5b = InceptionA(192, 32, avg)
        self.Mixed_5c = InceptionA(256, 64, avg)
        self.Mixed_5d = InceptionA(288, 64, avg)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, 128, avg)
        self.Mixed_6c = InceptionC(768, 160, avg)
        self.Mixed_6d = InceptionC(768, 160, avg)
        self.Mixed_6e = InceptionC(768, 192, avg)
        self.AuxLogits = InceptionAux(768, num_classes) if aux_logits else None
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280, avg)
        self.Mixed_7c = InceptionE(2048, "max" if fid_variant else "avg")
        self.fc = nn.Linear(FEATURE_DIM, num_classes)

    def pool3(self, x: torch.Tensor) -> torch.Tensor:
        """N x 3 x H x W in [-1, 1] -> N x 2048 (global average pool after Mixed_7c)."""
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, 3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, 3, stride=2)
        for block in (self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a, self.Mixed_6b, self.Mixed_6c,
                      self.Mixed_6d, self.Mixed_6e, self.Mixed_7a, self.Mixed_7b, self.Mixed_7c):
            x = block(x)
        return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool3(x))


def _missing_weights_message(weights_path) -> str:
    where = "no path was given" if weights_path is None else f"{weights_path} does not exist"
    return (f"FID needs an Inception-V3 weights file, and {where}. Accepted files: {ACCEPTED_FILES}. "
            "Nothing is downloaded: fetch one of these files yourself and pass its path.")


def _read_state_dict(path: Path) -> Mapping[str, torch.Tensor]:
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a corrupt or non-torch file: say which one
        raise ValueError(f"{path}: could not be read as a torch weights file ({exc})") from exc
    if isinstance(loaded, Mapping) and isinstance(loaded.get("state_dict"), Mapping):
        loaded = loaded["state_dict"]
    if not isinstance(loaded, Mapping):
        raise ValueError(f"{path}: expected an Inception-V3 state dict, found a {type(loaded).__name__}")
    return loaded


def load_inception(weights_path: str | Path | None, fid_variant: bool | None = None) -> InceptionV3:
    """InceptionV3 in eval mode (no grad) with weights from `weights_path`.

    fid_variant None: on when the file's `fc` has 1008 outputs (pytorch-fid's FID network).
    FileNotFoundError when there is no file; ValueError when the file is not an Inception-V3 state dict.
    """
    if weights_path is None or not Path(weights_path).is_file():
        raise FileNotFoundError(_missing_weights_message(weights_path))
    path = Path(weights_path)
    state = _read_state_dict(path)
    fc = state.get("fc.weight")
    num_classes = int(fc.shape[0]) if isinstance(fc, torch.Tensor) and fc.dim() == 2 else 1000
    if fid_variant is None:
        fid_variant = num_classes == FID_CLASSES
    aux = any(key.startswith("AuxLogits.") for key in state)
    model = InceptionV3(num_classes=num_classes, aux_logits=aux, fid_variant=fid_variant)
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shape mismatches
        raise ValueError(f"{path}: weights do not fit Inception-V3 ({exc})") from exc
    # Old checkpoints predate BatchNorm's num_batches_tracked counter, which inference never reads.
    missing = [k for k in result.missing_keys if not k.endswith("num_batches_tracked")]
    if missing or result.unexpected_keys:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing keys, e.g. {', '.join(missing[:5])}")
        if result.unexpected_keys:
            parts.append(f"{len(result.unexpected_keys)} unexpected keys, e.g. "
                         f"{', '.join(result.unexpected_keys[:5])}")
        raise ValueError(f"{path}: not an Inception-V3 state dict in torchvision's layout; {'; '.join(parts)}. "
                         f"Accepted files: {ACCEPTED_FILES}")
    return model.eval().requires_grad_(False)


@torch.no_grad()
def inception_features(images: np.ndarray, model: InceptionV3, batch_size: int = 32) -> np.ndarray:
    """N x 2048 pool3 features of N x H x W images in [-1, 1].

    Each batch is replicated to 3 channels and resized bilinearly (align_corners=False, as pytorch-fid)
    to 299 x 299; values stay in [-1, 1], the range both weight sets expect (module docstring).
    """
    arr = np.asarray(images)
    if arr.ndim != 3 or arr.shape[0] == 0:
        raise ValueError(f"images must be a non-empty N x H x W array, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError("images must hold finite numbers")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if model.training:  # batch statistics would replace the learned ones
        raise ValueError("model must be in eval mode (load_inception returns it so)")
    param = next(model.parameters())
    out = np.empty((len(arr), FEATURE_DIM), dtype=np.float64)
    for start in range(0, len(arr), batch_size):
        x = torch.as_tensor(arr[start:start + batch_size], dtype=param.dtype, device=param.device)
        x = x[:, None].expand(-1, 3, -1, -1)
        if x.shape[-2:] != (INPUT_SIZE, INPUT_SIZE):
            x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False)
        out[start:start + len(x)] = model.pool3(x).double().cpu().numpy()
    return out
