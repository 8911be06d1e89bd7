"""The noise predictor eps_theta(z_t, t, conditions) in the paper's four variants, behind one wrapper.

    ldm          diagnosis one-hot broadcast to 3 maps, concatenated to z_t; no genotype (Rombach et al.
                 label-conditioned LDM; self-attention where `attention_levels` says so)
    g2i          genotype tokens T_theta(y) through cross-attention (Eq. 10); no label
    g2i_l_noatt  label concatenated + the pooled genotype vector added to the time embedding; no
                 attention module anywhere, so it really tests "without attention" (not zeroed attention)
    g2i_l_att    the paper's model (Fig. 1): label concatenated AND genotype cross-attention

All take the same forward(z_t, t, diagnosis_onehot, genotype_tokens) and ignore what they do not use,
so one training loop serves all four.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch
from diffusers import UNet2DConditionModel, UNet2DModel
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

from ..errors import G2IError
from ..vocabulary import DIFFUSION_VARIANTS as VARIANTS
from ..vocabulary import N_CLASSES
from .settings import check_groups, require, section

USES_LABEL = {"ldm": True, "g2i": False, "g2i_l_noatt": True, "g2i_l_att": True}
USES_GENOTYPE = {"ldm": False, "g2i": True, "g2i_l_noatt": True, "g2i_l_att": True}
CROSS_ATTENTION = {"g2i", "g2i_l_att"}


def check_variant(variant: str) -> str:
    if variant not in VARIANTS:
        raise G2IError(f"unknown denoiser variant '{variant}'; valid: {', '.join(VARIANTS)}")
    return variant


class G2IDenoiser(ModelMixin, ConfigMixin):
    """eps_theta for one variant; save_pretrained / from_pretrained rebuild the inner U-Net from the config."""

    @register_to_config
    def __init__(self, variant: str, latent_channels: int, genotype_dim: int, block_out_channels: Sequence[int],
                 layers_per_block: int = 1, attention_levels: Sequence[bool] | None = None,
                 attention_head_dim: int = 32, transformer_layers: int = 1, norm_num_groups: int = 32,
                 num_classes: int = N_CLASSES, sample_size: int = 16):
        super().__init__()
        check_variant(variant)
        widths = [int(c) for c in block_out_channels]
        levels = [bool(a) for a in (attention_levels if attention_levels is not None else [i > 0 for i in range(len(widths))])]
        if len(levels) != len(widths):
            raise G2IError(f"denoiser: attention_levels {levels} must have one entry per block width {widths}")
        in_channels = latent_channels + (num_classes if USES_LABEL[variant] else 0)
        common = dict(sample_size=sample_size, in_channels=in_channels, out_channels=latent_channels,
                      block_out_channels=tuple(widths), layers_per_block=layers_per_block,
                      norm_num_groups=norm_num_groups)
        if variant in CROSS_ATTENTION:
            # diffusers reads UNet2DConditionModel's `attention_head_dim` as the number of heads (its
            # documented naming quirk), so convert our channels-per-head into heads per level.
            heads = tuple(max(1, w // attention_head_dim) for w in widths)
            self.unet = UNet2DConditionModel(
                **common,
                down_block_types=tuple("CrossAttnDownBlock2D" if a else "DownBlock2D" for a in levels),
                mid_block_type="UNetMidBlock2DCrossAttn",
                up_block_types=tuple("CrossAttnUpBlock2D" if a else "UpBlock2D" for a in reversed(levels)),
                cross_attention_dim=genotype_dim, attention_head_dim=heads,
                transformer_layers_per_block=transformer_layers)
        elif variant == "ldm":
            self.unet = UNet2DModel(
                **common,
                down_block_types=tuple("AttnDownBlock2D" if a else "DownBlock2D" for a in levels),
                up_block_types=tuple("AttnUpBlock2D" if a else "UpBlock2D" for a in reversed(levels)),
                attention_head_dim=attention_head_dim, add_attention=any(levels))
        else:  # g2i_l_noatt: plain residual blocks everywhere, genotype enters through the time embedding
            time_dim = widths[0] * 4  # UNet2DModel's time embedding width
            self.unet = UNet2DModel(
                **common,
                down_block_types=("DownBlock2D",) * len(widths), up_block_types=("UpBlock2D",) * len(widths),
                add_attention=False, class_embed_type="identity")
            self.genotype_projection = nn.Sequential(nn.Linear(genotype_dim, time_dim), nn.SiLU(),
                                                     nn.Linear(time_dim, time_dim))

    @property
    def uses_label(self) -> bool:
        return USES_LABEL[self.config.variant]

    @property
    def uses_genotype(self) -> bool:
        return USES_GENOTYPE[self.config.variant]

    def forward(self, z_t: torch.Tensor, t: torch.Tensor, diagnosis_onehot: torch.Tensor | None = None,
                genotype_tokens: torch.Tensor | None = None) -> torch.Tensor:
        """eps_theta(z_t, t, conditions): the predicted noise, shaped like z_t."""
        variant = self.config.variant
        x = z_t
        if self.uses_label:
            if diagnosis_onehot is None or diagnosis_onehot.shape != (z_t.shape[0], self.config.num_classes):
                got = None if diagnosis_onehot is None else tuple(diagnosis_onehot.shape)
                raise G2IError(f"denoiser '{variant}': needs diagnosis_onehot of shape B x {self.config.num_classes}, got {got}")
            maps = diagnosis_onehot.to(z_t.dtype)[:, :, None, None].expand(-1, -1, *z_t.shape[-2:])
            x = torch.cat([z_t, maps], dim=1)
        if self.uses_genotype and (genotype_tokens is None or genotype_tokens.dim() != 3):
            got = None if genotype_tokens is None else tuple(genotype_tokens.shape)
            raise G2IError(f"denoiser '{variant}': needs genotype tokens B x F_g x F_e, got {got}")
        if variant == "ldm":
            return self.unet(x, t).sample
        if variant == "g2i_l_noatt":
            pooled = genotype_tokens.mean(dim=1)  # GenotypeEncoder.pooled
            return self.unet(x, t, class_labels=self.genotype_projection(pooled.to(z_t.dtype))).sample
        return self.unet(x, t, encoder_hidden_states=genotype_tokens.to(z_t.dtype)).sample


def build_denoiser(variant: str, cfg: Mapping[str, Any]) -> G2IDenoiser:
    """G2IDenoiser from `model.unet`, with latent channels and F_e from their own sections."""
    check_variant(variant)
    unet = section(cfg, "unet")
    widths = [int(c) for c in require(unet, "block_out_channels", "unet")]
    groups = check_groups(widths, int(require(unet, "norm_num_groups", "unet")), "unet")
    head_dim = int(require(unet, "attention_head_dim", "unet"))
    if any(w % head_dim for w in widths):
        raise G2IError(f"params.yaml: model.unet.attention_head_dim {head_dim} must divide every width {widths}")
    return G2IDenoiser(
        variant=variant,
        latent_channels=int(require(section(cfg, "autoencoder"), "latent_channels", "autoencoder")),
        genotype_dim=int(require(section(cfg, "genotype_encoder"), "embed_dim", "genotype_encoder")),
        block_out_channels=widths, layers_per_block=int(require(unet, "layers_per_block", "unet")),
        attention_levels=require(unet, "attention_levels", "unet"), attention_head_dim=head_dim,
        transformer_layers=int(require(unet, "transformer_layers", "unet")), norm_num_groups=groups,
        num_classes=N_CLASSES, sample_size=int(require(unet, "sample_size", "unet")))
