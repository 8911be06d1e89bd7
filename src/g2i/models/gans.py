"""The paper's GAN baselines (Sect. 4.2), with the genotype in the place of the text of the originals.

- CGAN (Mirza & Osindero 2014, arXiv:1411.1784), DCGAN-style (Radford et al. 2016): the diagnosis
  label is concatenated to z in the generator and to the image (3 constant maps) in the discriminator.
- StackGAN (Zhang et al., ICCV 2017): conditioning augmentation on the pooled genotype vector, a
  Stage-I generator at low resolution and a Stage-II generator that re-encodes the Stage-I image,
  joins the condition and refines with residual blocks; matching-aware discriminators.
- AttnGAN (Xu et al., CVPR 2018): SNP tokens are the "words", their mean the "sentence"; every
  refinement stage lets each pixel of the hidden map attend over the SNP tokens; per-stage
  discriminators with unconditional and conditional heads; a DAMSM image encoder for the matching loss.

Simplifications, all for CPU-sized demos: ReLU where AttnGAN uses GLU, LeakyReLU on the CA layer (the
originals use ReLU / GLU), a small CNN in place of DAMSM's ImageNet Inception-v3 (no downloads), and the
conditional discriminator heads project the condition with one linear layer.

Image sizes are powers of two; every network derives its depth from the image size, and its widths
from one base width (the width at full resolution) that doubles at every halving of the resolution,
capped by `max_channels`. Generators are diffusers ModelMixin + ConfigMixin, so save_pretrained /
from_pretrained rebuild them from their config; discriminators and the DAMSM image encoder are only
needed during training and are plain modules. Losses live in g2i.losses.gan (the conditioning augmentation's
KL term `ca_kl` among them), training in g2i.training.gan.
"""

from __future__ import annotations

import inspect

import math
from typing import Any, Mapping

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

from ..errors import G2IError
from ..vocabulary import N_CLASSES
from .settings import require, section

BASE = 4  # every generator starts from, and every discriminator ends at, a 4 x 4 map


def halvings(big: int, small: int, where: str) -> int:
    """log2(big / small), checking that both are powers of two with big >= small."""
    if big < small or small < 1 or big & (big - 1) or small & (small - 1):
        raise G2IError(f"{where}: sizes must be powers of two with {big} >= {small}")
    return int(math.log2(big // small))


def width(base: int, top: int, resolution: int, cap: int) -> int:
    """Channels at `resolution`: `base` at `top`, doubling per halving of the resolution, at most `cap`."""
    return int(min(base * max(top // resolution, 1), cap))


def up_block(c_in: int, c_out: int) -> nn.Sequential:
    """x2 nearest upsampling + 3x3 conv + BN + ReLU (the upBlock of StackGAN and AttnGAN; no checkerboard)."""
    return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c_in, c_out, 3, 1, 1, bias=False),
                         nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


def down_block(c_in: int, c_out: int, norm: bool = True, spectral: bool = False) -> nn.Sequential:
    """Strided 4x4 conv (+ BN) + LeakyReLU(0.2), the DCGAN discriminator block."""
    conv = nn.Conv2d(c_in, c_out, 4, 2, 1, bias=not norm)
    layers: list[nn.Module] = [nn.utils.parametrizations.spectral_norm(conv) if spectral else conv]
    if norm:
        layers.append(nn.BatchNorm2d(c_out))
    layers.append(nn.LeakyReLU(0.2, inplace=True))
    return nn.Sequential(*layers)


class ResidualBlock(nn.Module):
    """conv-BN-ReLU-conv-BN with an identity skip (the residual blocks of StackGAN Stage-II / AttnGAN)."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(channels, channels, 3, 1, 1, bias=False), nn.BatchNorm2d(channels),
                                  nn.ReLU(inplace=True), nn.Conv2d(channels, channels, 3, 1, 1, bias=False),
                                  nn.BatchNorm2d(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x + self.body(x))


def to_image(channels: int) -> nn.Sequential:
    """3x3 conv to one channel + tanh: slices live in [-1, 1]."""
    return nn.Sequential(nn.Conv2d(channels, 1, 3, 1, 1), nn.Tanh())


def replicate(vector: torch.Tensor, size: int) -> torch.Tensor:
    """B x C -> B x C x size x size (a condition joined to a feature map)."""
    return vector[:, :, None, None].expand(-1, -1, size, size)


class ConditioningAugmentation(nn.Module):
    """Conditioning augmentation (StackGAN Sect. 3.1): fc -> (mu, log sigma^2), c = mu + sigma * eps.

    The noise eps is an argument, drawn by the caller from its own generator (exact resume).
    """

    def __init__(self, in_dim: int, ca_dim: int):
        super().__init__()
        self.ca_dim = ca_dim
        self.fc = nn.Linear(in_dim, 2 * ca_dim)

    def forward(self, embedding: torch.Tensor, noise: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mu, logvar = F.leaky_relu(self.fc(embedding), 0.2).chunk(2, dim=1)  # the originals use a GLU/ReLU here
        return mu + torch.exp(0.5 * logvar) * noise, mu, logvar


class CGANGenerator(ModelMixin, ConfigMixin):
    """CGAN generator (Mirza & Osindero 2014) in DCGAN form: [z, one-hot label] -> 4 x 4 -> ConvT blocks -> tanh."""

    @register_to_config
    def __init__(self, image_size: int = 64, z_dim: int = 100, channels: int = 64, max_channels: int = 512,
                 num_classes: int = N_CLASSES):
        super().__init__()
        n_up = halvings(image_size, BASE * 2, "CGAN generator")  # the last ConvT makes the image itself
        top = image_size // 2  # the last hidden map, `channels` wide
        widths = [width(channels, top, BASE * 2**i, max_channels) for i in range(n_up + 1)]
        self.project = nn.Sequential(nn.Linear(z_dim + num_classes, widths[0] * BASE * BASE, bias=False),
                                     nn.BatchNorm1d(widths[0] * BASE * BASE), nn.ReLU(inplace=True))
        blocks: list[nn.Module] = []
        for c_in, c_out in zip(widths[:-1], widths[1:]):
            blocks += [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False), nn.BatchNorm2d(c_out),
                       nn.ReLU(inplace=True)]
        blocks += [nn.ConvTranspose2d(widths[-1], 1, 4, 2, 1), nn.Tanh()]
        self.blocks = nn.Sequential(*blocks)

    def forward(self, z: torch.Tensor, onehot: torch.Tensor) -> torch.Tensor:
        h = self.project(torch.cat([z, onehot.to(z.dtype)], dim=1))
        return self.blocks(h.view(len(z), -1, BASE, BASE))


class CGANDiscriminator(nn.Module):
    """CGAN discriminator: [image, label as constant maps] -> strided convs + LeakyReLU -> one logit.

    BatchNorm after every conv but the first (DCGAN), or spectral norm instead (Miyato et al. 2018).
    """

    def __init__(self, image_size: int = 64, channels: int = 64, max_channels: int = 512,
                 num_classes: int = N_CLASSES, spectral_norm: bool = False):
        super().__init__()
        n_down = halvings(image_size, BASE, "CGAN discriminator")
        top = image_size // 2
        widths = [width(channels, top, image_size // 2**(i + 1), max_channels) for i in range(n_down)]
        layers = [down_block(1 + num_classes, widths[0], norm=False, spectral=spectral_norm)]
        layers += [down_block(a, b, norm=not spectral_norm, spectral=spectral_norm)
                   for a, b in zip(widths[:-1], widths[1:])]
        last = nn.Conv2d(widths[-1], 1, BASE)
        layers.append(nn.utils.parametrizations.spectral_norm(last) if spectral_norm else last)
        self.net = nn.Sequential(*layers)

    def forward(self, image: torch.Tensor, onehot: torch.Tensor) -> torch.Tensor:
        maps = replicate(onehot.to(image.dtype), image.shape[-1])
        return self.net(torch.cat([image, maps], dim=1)).flatten()


class ImageEncoder(nn.Module):
    """Image -> 4 x 4 feature map by strided convs (first without BN): the trunk of every discriminator."""

    def __init__(self, image_size: int, channels: int, max_channels: int):
        super().__init__()
        n_down = halvings(image_size, BASE, "discriminator")
        top = max(image_size // 2, BASE)
        widths = [1] + [width(channels, top, image_size // 2**(i + 1), max_channels) for i in range(n_down)]
        layers = [down_block(a, b, norm=i > 0) for i, (a, b) in enumerate(zip(widths[:-1], widths[1:]))]
        if not layers:  # a 4 x 4 image: one unstrided conv still gives features
            layers = [nn.Conv2d(1, channels, 3, 1, 1), nn.LeakyReLU(0.2, inplace=True)]
            widths.append(channels)
        self.net = nn.Sequential(*layers)
        self.out_channels = widths[-1]

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.net(image)


class MatchingDiscriminator(nn.Module):
    """Matching-aware discriminator (StackGAN Sect. 3; Reed et al. 2016), with AttnGAN's optional
    unconditional head.

    forward(image, condition, mismatched=None) -> {"cond": logits of (image, condition),
    "uncond": logits of the image alone (if `unconditional`), "wrong": logits of (image, mismatched)}:
    the image is encoded once and scored against both conditions.
    """

    def __init__(self, image_size: int, condition_dim: int, channels: int = 64, max_channels: int = 512,
                 projected_dim: int = 128, unconditional: bool = False):
        super().__init__()
        self.encoder = ImageEncoder(image_size, channels, max_channels)
        c = self.encoder.out_channels
        self.project = nn.Sequential(nn.Linear(condition_dim, projected_dim), nn.LeakyReLU(0.2, inplace=True))
        self.joint = nn.Sequential(nn.Conv2d(c + projected_dim, c, 3, 1, 1, bias=False), nn.BatchNorm2d(c),
                                   nn.LeakyReLU(0.2, inplace=True), nn.Conv2d(c, 1, BASE))
        self.uncond = nn.Conv2d(c, 1, BASE) if unconditional else None

    def _cond(self, features: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        joined = torch.cat([features, replicate(self.project(condition), features.shape[-1])], dim=1)
        return self.joint(joined).flatten()

    def forward(self, image: torch.Tensor, condition: torch.Tensor,
                mismatched: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        features = self.encoder(image)
        out = {"cond": self._cond(features, condition)}
        if self.uncond is not None:
            out["uncond"] = self.uncond(features).flatten()
        if mismatched is not None:
            out["wrong"] = self._cond(features, mismatched)
        return out


class StackGANGenerator(ModelMixin, ConfigMixin):
    """StackGAN (Zhang et al. 2017) Stage-I + Stage-II generators, each with its own conditioning augmentation.

    Stage-I: [z, c1] -> 4 x 4 -> up blocks -> image at image_size / stage1_factor.
    Stage-II: that image -> down-sampling encoder to image_size / hidden_factor, joined with c2 (replicated),
    residual blocks, up blocks to image_size. `embedding` is the pooled genotype vector (the "text embedding").
    """

    @register_to_config
    def __init__(self, embed_dim: int, image_size: int = 64, z_dim: int = 100, ca_dim: int = 128,
                 stage1_factor: int = 4, hidden_factor: int = 16, stage1_channels: int = 64,
                 stage2_channels: int = 32, max_channels: int = 512, residual_blocks: int = 4):
        super().__init__()
        s1 = image_size // stage1_factor
        hidden = image_size // hidden_factor
        n_up1 = halvings(s1, BASE, "StackGAN Stage-I (image_size / stage1_factor)")
        n_down2 = halvings(s1, hidden, "StackGAN Stage-II (stage1 size / hidden size)")
        n_up2 = halvings(image_size, hidden, "StackGAN Stage-II")
        self.ca1 = ConditioningAugmentation(embed_dim, ca_dim)
        self.ca2 = ConditioningAugmentation(embed_dim, ca_dim)
        w1 = lambda r: width(stage1_channels, s1, r, max_channels)  # noqa: E731
        self.project = nn.Sequential(nn.Linear(z_dim + ca_dim, w1(BASE) * BASE * BASE, bias=False),
                                     nn.BatchNorm1d(w1(BASE) * BASE * BASE), nn.ReLU(inplace=True))
        self.stage1 = nn.Sequential(*[up_block(w1(BASE * 2**i), w1(BASE * 2**(i + 1))) for i in range(n_up1)])
        self.stage1_image = to_image(w1(s1))
        w2 = lambda r: width(stage2_channels, image_size, r, max_channels)  # noqa: E731
        encoder: list[nn.Module] = [nn.Conv2d(1, w2(s1), 3, 1, 1), nn.ReLU(inplace=True)]
        for i in range(n_down2):
            r = s1 // 2**i
            encoder += [nn.Conv2d(w2(r), w2(r // 2), 4, 2, 1, bias=False), nn.BatchNorm2d(w2(r // 2)),
                        nn.ReLU(inplace=True)]
        self.encode = nn.Sequential(*encoder)
        self.joint = nn.Sequential(nn.Conv2d(w2(hidden) + ca_dim, w2(hidden), 3, 1, 1, bias=False),
                                   nn.BatchNorm2d(w2(hidden)), nn.ReLU(inplace=True),
                                   *[ResidualBlock(w2(hidden)) for _ in range(residual_blocks)])
        self.stage2 = nn.Sequential(*[up_block(w2(hidden * 2**i), w2(hidden * 2**(i + 1))) for i in range(n_up2)])
        self.stage2_image = to_image(w2(image_size))

    def stage_one(self, z: torch.Tensor, c1: torch.Tensor) -> torch.Tensor:
        h = self.project(torch.cat([z, c1], dim=1)).view(len(z), -1, BASE, BASE)
        return self.stage1_image(self.stage1(h))

    def stage_two(self, stage1_image: torch.Tensor, c2: torch.Tensor) -> torch.Tensor:
        h = self.encode(stage1_image)
        return self.stage2_image(self.stage2(self.joint(torch.cat([h, replicate(c2, h.shape[-1])], dim=1))))

    def forward(self, embedding: torch.Tensor, z: torch.Tensor, noise1: torch.Tensor, noise2: torch.Tensor,
                detach_stage1: bool = False) -> dict[str, torch.Tensor]:
        """{"stage1", "image", "mu1", "logvar1", "mu2", "logvar2"}. With `detach_stage1`, Stage-II's losses
        do not reach Stage-I: the original trains Stage-II on a fixed, already trained Stage-I."""
        c1, mu1, logvar1 = self.ca1(embedding, noise1)
        c2, mu2, logvar2 = self.ca2(embedding, noise2)
        low = self.stage_one(z, c1)
        image = self.stage_two(low.detach() if detach_stage1 else low, c2)
        return {"stage1": low, "image": image, "mu1": mu1, "logvar1": logvar1, "mu2": mu2, "logvar2": logvar2}


class WordAttention(nn.Module):
    """AttnGAN's attention (Xu et al. 2018, Eq. 2): each sub-region (pixel) of h attends over the words
    (SNP tokens) and gets a word-context vector; softmax over tokens, so a pixel's weights sum to 1."""

    def __init__(self, channels: int, word_dim: int):
        super().__init__()
        self.project = nn.Linear(word_dim, channels, bias=False)  # words into the hidden feature space

    def forward(self, h: torch.Tensor, words: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """h: B x C x H x W, words: B x T x D -> (context B x C x H x W, attention B x T x H x W)."""
        b, c, height, w = h.shape
        keys = self.project(words)  # B x T x C
        scores = torch.einsum("bcn,btc->bnt", h.flatten(2), keys)
        attention = scores.softmax(dim=-1)  # over SNP tokens
        context = torch.einsum("bnt,btc->bcn", attention, keys).view(b, c, height, w)
        return context, attention.transpose(1, 2).reshape(b, -1, height, w)


class AttnGANGenerator(ModelMixin, ConfigMixin):
    """AttnGAN generator (Xu et al. 2018): h0 = F0([z, c]); h_i = F_i(h_{i-1}, F_attn(h_{i-1}, words));
    one image per stage at image_size / 2^(num_stages - 1 - i). c comes from conditioning augmentation on
    the sentence (pooled genotype) vector; words are the genotype encoder's SNP tokens."""

    @register_to_config
    def __init__(self, embed_dim: int, image_size: int = 64, z_dim: int = 100, ca_dim: int = 100,
                 num_stages: int = 3, channels: int = 32, max_channels: int = 512, residual_blocks: int = 2):
        super().__init__()
        if num_stages < 1:
            raise G2IError("AttnGAN: num_stages must be at least 1")
        s0 = image_size // 2**(num_stages - 1)
        n_up0 = halvings(s0, BASE, "AttnGAN first stage (image_size / 2^(num_stages - 1))")
        w0 = lambda r: width(channels, s0, r, max_channels)  # noqa: E731
        self.ca = ConditioningAugmentation(embed_dim, ca_dim)
        self.project = nn.Sequential(nn.Linear(z_dim + ca_dim, w0(BASE) * BASE * BASE, bias=False),
                                     nn.BatchNorm1d(w0(BASE) * BASE * BASE), nn.ReLU(inplace=True))
        self.initial = nn.Sequential(*[up_block(w0(BASE * 2**i), w0(BASE * 2**(i + 1))) for i in range(n_up0)])
        self.attention = nn.ModuleList(WordAttention(channels, embed_dim) for _ in range(num_stages - 1))
        self.refine = nn.ModuleList(  # [h, word context] -> residual blocks -> x2 upsampling
            nn.Sequential(*[ResidualBlock(2 * channels) for _ in range(residual_blocks)],
                          up_block(2 * channels, channels))
            for _ in range(num_stages - 1))
        self.images = nn.ModuleList(to_image(channels) for _ in range(num_stages))

    def forward(self, words: torch.Tensor, sentence: torch.Tensor, z: torch.Tensor,
                noise: torch.Tensor) -> dict[str, Any]:
        """{"images": [per stage, low to high resolution], "attention": [B x T x h x w per refinement],
        "mu", "logvar"}."""
        c, mu, logvar = self.ca(sentence, noise)
        h = self.initial(self.project(torch.cat([z, c], dim=1)).view(len(z), -1, BASE, BASE))
        images, maps = [self.images[0](h)], []
        for attend, refine, head in zip(self.attention, self.refine, self.images[1:]):
            context, attention = attend(h, words)
            h = refine(torch.cat([h, context], dim=1))
            images.append(head(h))
            maps.append(attention)
        return {"images": images, "attention": maps, "mu": mu, "logvar": logvar}


class DAMSMImageEncoder(nn.Module):
    """The image half of AttnGAN's DAMSM (Sect. 2.3), a small CNN in place of Inception-v3:
    image -> region features (B x D x r x r, the "mixed_6e" analogue) and a global feature (B x D)."""

    def __init__(self, image_size: int, embed_dim: int, channels: int = 32, region_size: int = 8,
                 max_channels: int = 256):
        super().__init__()
        n_down = halvings(image_size, region_size, "DAMSM image encoder (image size / region_size)")
        if region_size < 2:
            raise G2IError("DAMSM: region_size must be at least 2")
        widths = [1] + [width(channels, image_size // 2, image_size // 2**(i + 1), max_channels)
                        for i in range(n_down)]
        self.trunk = nn.Sequential(*[down_block(a, b, norm=i > 0)
                                     for i, (a, b) in enumerate(zip(widths[:-1], widths[1:]))])
        c = widths[-1]
        self.regions = nn.Conv2d(c, embed_dim, 1)
        self.global_trunk = nn.Sequential(down_block(c, min(2 * c, max_channels)), nn.AdaptiveAvgPool2d(1),
                                          nn.Flatten())
        self.global_out = nn.Linear(min(2 * c, max_channels), embed_dim)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.trunk(image)
        return self.regions(h), self.global_out(self.global_trunk(h))


# ---- construction from params.yaml (model.gan.<variant>) --------------------------------------------------

GENERATOR_CLASSES = {"cgan": CGANGenerator, "stackgan": StackGANGenerator, "attngan": AttnGANGenerator}

# Keys of model.gan.<variant> that are loss weights or training knobs, not network sizes.
LOSS_KEYS = {"cgan": set(), "stackgan": {"kl_weight"}, "attngan": {"kl_weight", "damsm_weight", "damsm"}}
DISCRIMINATOR_KEYS = {"d_channels", "d_max_channels", "spectral_norm", "projected_dim"}


def gan_config(model_cfg: Mapping[str, Any], variant: str) -> dict[str, Any]:
    """model.gan.<variant> as a plain dict."""
    gans = section(model_cfg, "gan")
    if not isinstance(gans.get(variant), Mapping):
        raise G2IError(f"params.yaml: model.gan.{variant} must be a mapping")
    return dict(gans[variant])


def build_gan(variant: str, model_cfg: Mapping[str, Any], image_size: int,
              embed_dim: int | None = None) -> tuple[nn.Module, dict[str, nn.Module]]:
    """(generator, {discriminator name: module}) for one variant from `model.gan.<variant>`.

    `embed_dim` is the genotype encoder's F_e (StackGAN, AttnGAN).
    """
    cfg = gan_config(model_cfg, variant)
    net = {k: v for k, v in cfg.items() if k not in LOSS_KEYS[variant] | DISCRIMINATOR_KEYS}
    # the generator's config signature holds the defaults a saved model reloads with; a training run states
    # every size in params.yaml, so a deleted key is an error, never the class's default
    stated = (set(inspect.signature(GENERATOR_CLASSES[variant].__init__).parameters)
              - {"self", "image_size", "embed_dim", "num_classes"})   # given by the data and the vocabulary
    missing = sorted(stated - set(net))
    if missing:
        raise G2IError(f"params.yaml: model.gan.{variant}.{missing[0]} is missing")
    where = f"gan.{variant}"
    d_channels = int(require(cfg, "d_channels", where))
    d_cap = int(require(cfg, "d_max_channels", where))
    try:
        if variant == "cgan":
            generator = CGANGenerator(image_size=image_size, **net)
            return generator, {"disc": CGANDiscriminator(image_size, d_channels, d_cap,
                                                         spectral_norm=bool(require(cfg, "spectral_norm", where)))}
        projected = int(require(cfg, "projected_dim", where))
        if variant == "stackgan":
            generator = StackGANGenerator(embed_dim=embed_dim, image_size=image_size, **net)
            s1 = image_size // generator.config.stage1_factor
            return generator, {"disc1": MatchingDiscriminator(s1, embed_dim, d_channels, d_cap, projected),
                               "disc2": MatchingDiscriminator(image_size, embed_dim, d_channels, d_cap, projected)}
        generator = AttnGANGenerator(embed_dim=embed_dim, image_size=image_size, **net)
        n = generator.config.num_stages
        return generator, {f"disc{i}": MatchingDiscriminator(image_size // 2**(n - 1 - i), embed_dim, d_channels,
                                                             d_cap, projected, unconditional=True) for i in range(n)}
    except TypeError as exc:  # an unknown key in model.gan.<variant>
        raise G2IError(f"params.yaml: model.gan.{variant}: {exc}") from exc
