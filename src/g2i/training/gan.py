"""Train the paper's GAN baselines: CGAN, StackGAN, AttnGAN (g2i.models.gans); sampling and the saved
folder are g2i.generation.gan.GANPipeline's.

One Trainer (one AdamW optimizer over a ModuleDict) drives generator and discriminators together, one
simultaneous update per step, so every loss term is built to reach only its own networks, as in
g2i.training.autoencoder: the generator's adversarial terms run the discriminators through `frozen_call`
(detached parameters), and the discriminators' terms see detached fakes and detached conditions.
Summed, the gradients split cleanly. Losses (g2i.losses.gan) are the non-saturating GAN loss (softplus form):
D: softplus(-D(real)) + softplus(D(fake)); G: softplus(-D(fake)).

- CGAN: the condition is the diagnosis label.
- StackGAN: the genotype encoder T_theta (trained with the generator, through the generator's path only;
  the discriminators get its output detached) -> pooled vector -> two conditioning augmentations;
  Stage-II consumes the Stage-I image DETACHED, which stands in for the original's two training phases
  (Stage-II on a fixed Stage-I). Matching-aware D: (real, right) real; (fake, right) and (real, wrong) fake,
  D loss = softplus(-real) + (softplus(fake) + softplus(wrong)) / 2 (StackGAN's code).
- AttnGAN: a DAMSM (image encoder + genotype encoder) is pre-trained first (its own resumable Trainer
  run) on real training slices paired with their genotypes, then frozen; the frozen genotype encoder gives
  G its words and sentence, as the frozen text encoder does in the original. Per stage, D loss =
  (real_uncond + real_cond) / 2 + (fake_uncond + fake_cond + wrong_cond) / 3 (AttnGAN's code); G gets
  uncond + cond at every stage, + damsm_weight * DAMSM(word + sentence) on the final image, + KL.

Every random draw of a step (z, CA noise, the wrong-condition shift) comes from the generator handed to
the loss, never the global RNG, so an interrupted run resumes to the same weights.

params.yaml: network sizes and loss weights in `model.gan.<variant>` (AttnGAN's DAMSM and its pre-training
in `model.gan.attngan.damsm`); TrainConfig fields in `training.gan`, overridden per variant by the nested
mapping `training.gan.<variant>` (Adam betas among them: `training.gan.betas`, [0.5, 0.999] as in DCGAN,
StackGAN and AttnGAN), and `training.gan_cpu_threads` (null: torch's default).
Update schedule: one simultaneous D and G update per step (n_critic = 1), both through the Trainer's single
AdamW, so D and G share the learning rate and its warm-up + cosine schedule (no two-time-scale rule).
GANs need beta1 = 0.5 (measured here: brain outlines and ventricles after 300 AttnGAN steps instead of
noise with PyTorch's 0.9); use `weight_decay: 0` and, as usual for GANs, `grad_clip: 0` (the clip would act on the joint G+D norm).
Sampling uses the EMA generator; its BatchNorm statistics are re-estimated with the EMA weights first.

The trained EMA generator (+ genotype encoder) is saved as a GANPipeline (g2i.generation.gan).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from ..data.dataset import ProcessedPaths, SliceGenotypeDataset
from ..config import from_section
from ..errors import G2IError
from ..generation.gan import GANPipeline, check_gan_variant, gan_forward, noise
from ..losses.gan import ca_kl, d_fake, d_real, damsm_loss, g_loss, matching_d_loss, mismatched
from ..models.conditioning import diagnosis_onehot
from ..models.genotype_encoder import GenotypeEncoder, build_genotype_encoder
from ..models.settings import require
from ..models.gans import DAMSMImageEncoder, build_gan, gan_config
from ..vocabulary import GAN_VARIANTS
from .trainer import Conditioned, TrainConfig, Trainer, TrainResult, frozen_call, prepare_checkpoints

DAMSM_DIR = "damsm"
BN_RECALIBRATION_BATCHES = 16


# ---- loss terms per variant (the losses: g2i.losses.gan) --------------------------------------------------

def resize(x: torch.Tensor, size: int) -> torch.Tensor:
    """Real slices at a stage's resolution (area averaging)."""
    return x if x.shape[-1] == size else F.interpolate(x, size=(size, size), mode="area")


@dataclass(frozen=True)
class DamsmConfig:
    """model.gan.attngan.damsm: the image encoder's size, the gammas, and its pre-training (every key stated in
    params.yaml, no code default)."""

    channels: int
    max_channels: int
    region_size: int
    gamma1: float
    gamma2: float
    gamma3: float
    pretrain_steps: int
    batch_size: int
    learning_rate: float

    @classmethod
    def from_params(cls, cfg: Mapping[str, Any]) -> "DamsmConfig":
        return from_section(cls, cfg, "model.gan.attngan.damsm")


Terms = tuple[torch.Tensor, torch.Tensor, dict[str, float]]


def cgan_terms(model: nn.ModuleDict, batch: dict, generator: torch.Generator) -> Terms:
    """(generator loss, discriminator loss, parts) of CGAN; the label is the condition."""
    x, onehot = batch["x_0"], diagnosis_onehot(batch["label"]).to(batch["x_0"].device)
    gen, disc = model["generator"], model["disc"]
    fake = gen(noise(generator, x.device, len(x), gen.config.z_dim), onehot)
    g_total = g_loss(frozen_call(Conditioned(disc, onehot), fake))
    d_total = d_real(disc(x, onehot)) + d_fake(disc(fake.detach(), onehot))
    return g_total, d_total, {"g_adv": float(g_total.detach())}


def stackgan_terms(kl_weight: float):
    def terms(model: nn.ModuleDict, batch: dict, generator: torch.Generator) -> Terms:
        x = batch["x_0"]
        gen, n, dev = model["generator"], len(x), x.device
        embedding = GenotypeEncoder.pooled(model["genotype_encoder"](batch["genotype"]))
        ca = gen.config.ca_dim
        out = gen(embedding, noise(generator, dev, n, gen.config.z_dim), noise(generator, dev, n, ca),
                  noise(generator, dev, n, ca), detach_stage1=True)
        # D's condition is detached: the encoder must not learn to move conditions to where D is fooled
        condition = embedding.detach()
        wrong = mismatched(condition, generator)
        adversarial = d_total = x.new_zeros(())
        for disc, fake in ((model["disc1"], out["stage1"]), (model["disc2"], out["image"])):
            adversarial = adversarial + g_loss(frozen_call(Conditioned(disc, condition), fake)["cond"])
            real = disc(resize(x, fake.shape[-1]), condition, wrong)
            d_total = d_total + matching_d_loss(real, disc(fake.detach(), condition))
        kl = ca_kl(out["mu1"], out["logvar1"]) + ca_kl(out["mu2"], out["logvar2"])
        return adversarial + kl_weight * kl, d_total, {"g_adv": float(adversarial.detach()), "kl": float(kl.detach())}

    return terms


def frozen_genotype_features(encoder: GenotypeEncoder, genotypes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(words, sentence) from the frozen DAMSM genotype encoder (eval mode: no dropout)."""
    encoder.eval()  # the Trainer puts every module in train mode each step
    with torch.no_grad():
        words = encoder(genotypes)
    return words, GenotypeEncoder.pooled(words)


def attngan_terms(kl_weight: float, damsm_weight: float, damsm: DamsmConfig):
    def terms(model: nn.ModuleDict, batch: dict, generator: torch.Generator) -> Terms:
        x = batch["x_0"]
        gen, n, dev = model["generator"], len(x), x.device
        words, sentence = frozen_genotype_features(model["genotype_encoder"], batch["genotype"])
        out = gen(words, sentence, noise(generator, dev, n, gen.config.z_dim),
                  noise(generator, dev, n, gen.config.ca_dim))
        wrong = mismatched(sentence, generator)
        adversarial = d_total = x.new_zeros(())
        for i, fake in enumerate(out["images"]):
            disc = model[f"disc{i}"]
            scored = frozen_call(Conditioned(disc, sentence), fake)
            adversarial = adversarial + g_loss(scored["uncond"]) + g_loss(scored["cond"])
            real = disc(resize(x, fake.shape[-1]), sentence, wrong)
            d_total = d_total + matching_d_loss(real, disc(fake.detach(), sentence))
        image_encoder = model["damsm_image"].eval()  # frozen (requires_grad False): gradients reach only G
        regions, global_features = image_encoder(out["images"][-1])
        word, sent = damsm_loss(regions, global_features, words, sentence, damsm.gamma1, damsm.gamma2, damsm.gamma3)
        kl = ca_kl(out["mu"], out["logvar"])
        g_total = adversarial + damsm_weight * (word + sent) + kl_weight * kl
        return g_total, d_total, {"g_adv": float(adversarial.detach()), "damsm_w": float(word.detach()),
                                  "damsm_s": float(sent.detach()), "kl": float(kl.detach())}

    return terms


def gan_terms(variant: str, gan_cfg: Mapping[str, Any]):
    """The (generator loss, discriminator loss, parts) function of one variant, from model.gan.<variant>."""
    if variant == "cgan":
        return cgan_terms
    if variant == "stackgan":
        return stackgan_terms(float(require(gan_cfg, "kl_weight", "gan.stackgan")))
    return attngan_terms(float(require(gan_cfg, "kl_weight", "gan.attngan")),
                         float(require(gan_cfg, "damsm_weight", "gan.attngan")),
                         DamsmConfig.from_params(gan_cfg.get("damsm")))


def summed(terms):
    """The Trainer's loss: G + D. Each term reaches only its own networks, so one backward serves both."""

    def loss_fn(model: nn.ModuleDict, batch: dict, generator: torch.Generator):
        g_total, d_total, parts = terms(model, batch, generator)
        return g_total + d_total, {**parts, "g": float(g_total.detach()), "d": float(d_total.detach())}

    return loss_fn


def damsm_pretrain_loss(damsm: DamsmConfig):
    """DAMSM pre-training on real (slice, genotype) pairs: L_w + L_s (AttnGAN Eq. 14 without the GAN)."""

    def loss_fn(model: nn.ModuleDict, batch: dict, generator: torch.Generator):
        words = model["genotype_encoder"](batch["genotype"])
        regions, global_features = model["damsm_image"](batch["x_0"])
        word, sent = damsm_loss(regions, global_features, words, GenotypeEncoder.pooled(words),
                                damsm.gamma1, damsm.gamma2, damsm.gamma3)
        return word + sent, {"word": float(word.detach()), "sentence": float(sent.detach())}

    return loss_fn


# ---- training ---------------------------------------------------------------------------------------------

def train_config(params: Mapping[str, Any], variant: str, max_steps: int | None = None) -> TrainConfig:
    """training.gan with the per-variant overrides of training.gan.<variant> applied."""
    section = dict(params["training"]["gan"])
    overrides = section.pop(variant, None) or {}
    for other in GAN_VARIANTS:
        section.pop(other, None)
    section.update(overrides)
    if max_steps is not None:
        section["max_steps"] = int(max_steps)
    return TrainConfig.from_params(section)


def _image_size(x: torch.Tensor) -> int:
    h, w = x.shape[-2:]
    if h != w or h & (h - 1) or h < 8:
        raise G2IError(f"GAN baselines need square slices whose side is a power of two >= 8; got {h} x {w}")
    return int(h)


def _fingerprint(variant: str, params: Mapping[str, Any], cfg: TrainConfig, data: dict[str, torch.Tensor]) -> str:
    """What a checkpoint was trained with: checkpoints from other settings or data are not resumed."""
    payload = {"variant": variant, "gan": params["model"]["gan"].get(variant),
               "genotype_encoder": params["model"].get("genotype_encoder"), "training": cfg.__dict__,
               "data": hashlib.md5(data["x_0"].numpy().tobytes() + data["genotype"].numpy().tobytes()
                                   + data["label"].numpy().tobytes()).hexdigest()}
    return hashlib.md5(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def _recorder(log, prefix: str = ""):
    """Forward metrics to `log`, their names prefixed (the DAMSM pre-training's: damsm_)."""

    def record(metrics: dict, step: int) -> None:
        if log is not None:
            log({f"{prefix}{k}": v for k, v in metrics.items()}, step)

    return record


def pretrain_damsm(model_cfg: Mapping[str, Any], damsm: DamsmConfig, data: dict[str, torch.Tensor], image_size: int,
                   cfg: TrainConfig, checkpoint_dir: Path, log=None,
                   progress: bool = True) -> tuple[GenotypeEncoder, DAMSMImageEncoder]:
    """Pre-train the DAMSM (its own resumable Trainer run under checkpoint_dir/damsm); return both
    encoders frozen (requires_grad False, eval mode)."""
    torch.manual_seed(cfg.seed + 1)  # initial weights, distinct from the GAN's
    modules = build_damsm(model_cfg, image_size, data["genotype"].shape[1])
    # The DAMSM encoders pre-train with AdamW's usual betas, not the GAN's beta1 0.5 (no adversarial game
    # here), and in float32 on CPU: the values TrainConfig's former defaults gave, so the encoders are unchanged.
    pre_cfg = TrainConfig(max_steps=damsm.pretrain_steps, batch_size=damsm.batch_size,
                          learning_rate=damsm.learning_rate, weight_decay=0.0, betas=(0.9, 0.999),
                          warmup_steps=min(10, damsm.pretrain_steps),
                          grad_clip=cfg.grad_clip, ema_decay=cfg.ema_decay, checkpoint_every=damsm.pretrain_steps,
                          keep_checkpoints=1, log_every=cfg.log_every, seed=cfg.seed + 1,
                          mixed_precision=cfg.mixed_precision, cpu_mixed_precision="no")
    folder = checkpoint_dir / DAMSM_DIR
    folder.mkdir(parents=True, exist_ok=True)
    trainer = Trainer(modules, damsm_pretrain_loss(damsm), len(data["x_0"]),
                      lambda idx: {k: v[idx] for k, v in data.items()}, pre_cfg, folder,
                      log=_recorder(log, "damsm_"), progress=progress)
    trainer.fit()
    trained = trainer.unwrapped
    encoders = trained["genotype_encoder"], trained["damsm_image"]
    for module in encoders:
        module.requires_grad_(False).eval()
    return encoders


def build_genotype_encoder_dim(model_cfg: Mapping[str, Any]) -> int:
    return int(model_cfg["genotype_encoder"]["embed_dim"])


def build_damsm(model_cfg: Mapping[str, Any], image_size: int, num_snps: int) -> dict[str, nn.Module]:
    """AttnGAN's DAMSM: {"genotype_encoder": T_theta (words + pooled sentence), "damsm_image": image encoder}."""
    damsm = DamsmConfig.from_params(gan_config(model_cfg, "attngan").get("damsm"))
    return {"genotype_encoder": build_genotype_encoder(model_cfg, num_snps=num_snps),
            "damsm_image": DAMSMImageEncoder(image_size, build_genotype_encoder_dim(model_cfg), damsm.channels,
                                             damsm.region_size, damsm.max_channels)}


def build_gan_modules(variant: str, model_cfg: Mapping[str, Any], image_size: int,
                      num_snps: int) -> dict[str, nn.Module]:
    """The trainable networks of one variant: generator, discriminator(s) and, for StackGAN and AttnGAN, a
    genotype encoder (AttnGAN's is replaced by the frozen, pre-trained DAMSM one before training) and, for
    AttnGAN, a DAMSM image encoder. Seed the global RNG first: this draws the initial weights."""
    check_gan_variant(variant)
    embed_dim = build_genotype_encoder_dim(model_cfg) if variant != "cgan" else None
    generator_module, discriminators = build_gan(variant, model_cfg, image_size, embed_dim)
    modules = {"generator": generator_module, **discriminators}
    if variant == "stackgan":
        modules["genotype_encoder"] = build_genotype_encoder(model_cfg, num_snps=num_snps)
    if variant == "attngan":  # frozen: the GAN trains with a pre-trained DAMSM (see pretrain_damsm)
        damsm = build_damsm(model_cfg, image_size, num_snps)
        modules.update({name: m.requires_grad_(False) for name, m in damsm.items()})
    return modules


@torch.no_grad()
def recalibrate_batchnorm(variant: str, generator_module: nn.Module, encoder: GenotypeEncoder | None,
                          data: dict[str, torch.Tensor], batch_size: int, seed: int,
                          n_batches: int = BN_RECALIBRATION_BATCHES) -> None:
    """Re-estimate the EMA generator's BatchNorm statistics with its own (EMA) weights.

    The running statistics were gathered under the raw training weights; sampling in eval mode with EMA
    weights needs statistics of the EMA network (cumulative average over `n_batches` training conditions).
    """
    norms = [m for m in generator_module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    saved = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average
    generator_module.train()
    stream = torch.Generator().manual_seed(seed)
    n = len(data["x_0"])
    for _ in range(n_batches):
        idx = torch.randint(n, (max(batch_size, 2),), generator=stream)
        gan_forward(variant, generator_module, encoder, data["label"][idx], data["genotype"][idx], stream)
    for m, momentum in zip(norms, saved):
        m.momentum = momentum
    generator_module.eval()


@contextlib.contextmanager
def cpu_threads(n: int | None) -> Iterator[None]:
    """Limit torch's intra-op threads on CPU for the duration (training.gan_cpu_threads; None: unchanged).

    These networks run small tensors: on a 2-core machine that others also use, a second OpenMP thread
    mostly waits at barriers (measured: CGAN steps of 34 ms with 1 thread, 2.5 s with 2 under load).
    """
    if n is None or torch.cuda.is_available():
        yield
        return
    if int(n) < 1:
        raise G2IError(f"params.yaml: training.gan_cpu_threads must be >= 1 or null, got {n}")
    before = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def train_gan(params: Mapping[str, Any], paths: ProcessedPaths, out_dir: Path, checkpoint_dir: Path,
              log: Callable[[dict, int], None] | None = None, *, variant: str, max_steps: int | None = None,
              progress: bool = True) -> TrainResult:
    """Train one GAN baseline (`variant`: cgan, stackgan, attngan) on the training split; save the EMA
    generator (+ genotype encoder) to out_dir.

    `checkpoint_dir` is this variant's own folder: a rerun resumes from it, and it is emptied when the
    settings or the data changed (AttnGAN keeps its DAMSM pre-training in checkpoint_dir/damsm).
    `log(metrics, step)` gets the losses every training.gan.log_every steps (DAMSM ones prefixed damsm_).
    `max_steps` overrides training.gan(.<variant>).max_steps.
    The result's parameters: of the saved, sampling-time networks.
    """
    check_gan_variant(variant)
    with cpu_threads(params["training"].get("gan_cpu_threads")):
        return _train_gan(variant, params, paths, out_dir, checkpoint_dir, log, max_steps, progress)


def _train_gan(variant: str, params: Mapping[str, Any], paths: ProcessedPaths, out_dir: Path, checkpoint_dir: Path,
               log: Callable[[dict, int], None] | None, max_steps: int | None, progress: bool) -> TrainResult:
    out_dir, checkpoint_dir = Path(out_dir), Path(checkpoint_dir)
    model_cfg = params["model"]
    cfg = train_config(params, variant, max_steps)
    dataset = SliceGenotypeDataset(paths, "train")
    data = dataset.stacked()
    image_size = _image_size(data["x_0"])
    gan_cfg = gan_config(model_cfg, variant)
    prepare_checkpoints(checkpoint_dir, _fingerprint(variant, params, cfg, data))
    record = _recorder(log)

    terms = gan_terms(variant, gan_cfg)  # validates the loss settings before any training
    pretrained: dict[str, nn.Module] = {}
    if variant == "attngan":
        encoder, image_encoder = pretrain_damsm(model_cfg, DamsmConfig.from_params(gan_cfg.get("damsm")), data,
                                                image_size, cfg, checkpoint_dir, log, progress)
        pretrained = {"genotype_encoder": encoder, "damsm_image": image_encoder}
    torch.manual_seed(cfg.seed)  # initial weights
    modules = build_gan_modules(variant, model_cfg, image_size, data["genotype"].shape[1])
    modules.update(pretrained)  # AttnGAN: the frozen, pre-trained DAMSM in place of fresh encoders

    trainer = Trainer(modules, summed(terms), len(data["x_0"]), lambda idx: {k: v[idx] for k, v in data.items()}, cfg,
                      checkpoint_dir, log=record, progress=progress)
    final = trainer.fit()   # the last step's losses, also when a rerun finds the checkpoint complete

    ema = trainer.ema_modules()
    saved = {"generator": ema["generator"]}
    if "genotype_encoder" in ema:
        saved["genotype_encoder"] = ema["genotype_encoder"].eval()
    recalibrate_batchnorm(variant, saved["generator"], saved.get("genotype_encoder"), data, cfg.batch_size, cfg.seed)
    if trainer.accelerator.is_main_process:
        GANPipeline(saved["generator"], saved.get("genotype_encoder"),
                    {"variant": variant, "snps": dataset.snps, "steps": trainer.step,
                     "image_size": image_size}).save_pretrained(out_dir)
    return TrainResult(steps=trainer.step, final=dict(final),
                       parameters=int(sum(p.numel() for m in saved.values() for p in m.parameters())),
                       precision=trainer.precision)
