"""The genotype encoder T_theta: F_g SNP genotypes -> F_g x F_e tokens for cross-attention (paper Sect. 3.2).

Each SNP becomes one token: an embedding of the SNP's identity (which SNP) plus an embedding of its
value (0, 1, 2 effect alleles, or 3 = missing call, so missing data needs no imputation), then a
transformer encoder lets SNPs attend to each other. A learned null conditioning replaces the tokens of
rows marked `drop`, which is what classifier-free guidance contrasts with at sampling time.

The value embedding is either one table for every SNP (`shared`: a value moves any SNP's token the same
way, so a readout that pools the tokens sees the panel's total allele count, not which SNP carries
them) or a table per SNP (`per_snp`, as tabular transformers embed categorical features: each SNP's
dose has a direction of its own, so an additive genetic effect is linear in the tokens).
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

from ..errors import G2IError
from ..vocabulary import MISSING_CODE
from .settings import require, section

MISSING = MISSING_CODE
N_VALUES = 4  # 0, 1, 2, missing
VALUE_EMBEDDINGS = ("shared", "per_snp")


def genotype_codes(values) -> torch.Tensor:
    """Effect-allele counts as long codes 0/1/2/3: NaN and -1 (PLINK-style missing) become MISSING (3)."""
    x = values.float() if torch.is_tensor(values) else torch.as_tensor(np.asarray(values, dtype=np.float32))
    x = torch.where(torch.isnan(x) | (x == -1), torch.full_like(x, MISSING), x)
    bad = ~torch.isin(x, torch.tensor([0.0, 1.0, 2.0, float(MISSING)], device=x.device))
    if bad.any():
        raise G2IError(f"genotypes: expected 0, 1, 2 or missing (NaN, -1, 3); found {sorted(set(x[bad].tolist()))[:5]}")
    return x.long()


class GenotypeEncoder(ModelMixin, ConfigMixin):
    """T_theta: B x F_g genotype codes -> B x F_g x F_e tokens (F_g = number of SNPs, F_e = embedding size)."""

    @register_to_config
    def __init__(self, num_snps: int, embed_dim: int = 64, num_layers: int = 2, num_heads: int = 4,
                 ff_dim: int | None = None, dropout: float = 0.1, snp_value_embedding: str = "shared"):
        # snp_value_embedding's default is what models saved before it existed were trained with
        super().__init__()
        if embed_dim % num_heads:
            raise G2IError(f"genotype encoder: embed_dim {embed_dim} is not divisible by num_heads {num_heads}")
        if snp_value_embedding not in VALUE_EMBEDDINGS:
            raise G2IError(f"genotype encoder: snp_value_embedding is '{snp_value_embedding}'; expected one of "
                           f"{', '.join(VALUE_EMBEDDINGS)}")
        self.snp_embedding = nn.Embedding(num_snps, embed_dim)
        self.value_embedding = nn.Embedding(N_VALUES * (num_snps if snp_value_embedding == "per_snp" else 1), embed_dim)
        layer = nn.TransformerEncoderLayer(embed_dim, num_heads, ff_dim or 4 * embed_dim, dropout,
                                           activation="gelu", batch_first=True, norm_first=True)
        # Pre-norm layers leave the residual stream unnormalised, hence the final LayerNorm.
        self.transformer = nn.TransformerEncoder(layer, num_layers, norm=nn.LayerNorm(embed_dim),
                                                 enable_nested_tensor=False)
        self.null_tokens = nn.Parameter(torch.randn(num_snps, embed_dim) * 0.02)
        self.register_buffer("snp_ids", torch.arange(num_snps), persistent=False)

    def forward(self, genotypes: torch.Tensor, drop: torch.Tensor | None = None) -> torch.Tensor:
        """Tokens B x F_g x F_e; rows where the boolean `drop` (B) is true get the null conditioning."""
        codes = genotype_codes(genotypes)  # also for long input: -1 must mean missing, never clamp to 0
        if codes.dim() != 2 or codes.shape[1] != self.config.num_snps:
            raise G2IError(f"genotype encoder: expected B x {self.config.num_snps} genotypes, got {tuple(codes.shape)}")
        values = codes + self.snp_ids[None] * N_VALUES if self.config.snp_value_embedding == "per_snp" else codes
        tokens = self.snp_embedding(self.snp_ids)[None] + self.value_embedding(values)
        tokens = self.transformer(tokens)
        if drop is not None:
            tokens = torch.where(drop.to(tokens.device).bool()[:, None, None], self.null_tokens[None].to(tokens.dtype), tokens)
        return tokens

    def null(self, batch_size: int) -> torch.Tensor:
        """The null conditioning for a whole batch (the unconditional branch of guidance)."""
        return self.null_tokens[None].expand(batch_size, -1, -1)

    @staticmethod
    def pooled(tokens: torch.Tensor) -> torch.Tensor:
        """B x F_e: the mean over SNP tokens, for models that take one genotype vector."""
        return tokens.mean(dim=1)


def build_genotype_encoder(cfg: Mapping[str, Any], num_snps: int) -> GenotypeEncoder:
    """T_theta from `model.genotype_encoder`; F_g (num_snps) comes from the genotype table, not params."""
    enc = section(cfg, "genotype_encoder")
    return GenotypeEncoder(num_snps=int(num_snps), embed_dim=int(require(enc, "embed_dim", "genotype_encoder")),
                           num_layers=int(require(enc, "num_layers", "genotype_encoder")),
                           num_heads=int(require(enc, "num_heads", "genotype_encoder")),
                           ff_dim=require(enc, "ff_dim", "genotype_encoder"),   # null: 4 x embed_dim
                           dropout=float(require(enc, "dropout", "genotype_encoder")),
                           snp_value_embedding=str(require(enc, "snp_value_embedding", "genotype_encoder")))
