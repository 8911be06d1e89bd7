"""The model family: KL autoencoder, genotype encoder T_theta, denoiser eps_theta (4 variants), schedulers."""

from .autoencoder import (AutoencoderLossWeights, PatchDiscriminator, autoencode, autoencoder_loss,
                          build_autoencoder, build_discriminator, discriminator_loss, encode_mean,
                          generator_adversarial_loss, kl_loss, l1_loss, latent_scaling_factor,
                          set_scaling_factor, ssim_loss)
from .denoiser import VARIANTS, G2IDenoiser, build_denoiser, diagnosis_onehot
from .genotype_encoder import MISSING, GenotypeEncoder, build_genotype_encoder, genotype_codes
from .scheduler import build_ddim_scheduler, build_scheduler
from .ssim import ssim

__all__ = [
    "AutoencoderLossWeights", "G2IDenoiser", "GenotypeEncoder", "MISSING", "PatchDiscriminator", "VARIANTS",
    "autoencode", "autoencoder_loss", "build_autoencoder", "build_ddim_scheduler", "build_denoiser",
    "build_discriminator", "build_genotype_encoder", "build_scheduler", "diagnosis_onehot", "discriminator_loss",
    "encode_mean", "generator_adversarial_loss", "genotype_codes", "kl_loss", "l1_loss", "latent_scaling_factor",
    "set_scaling_factor", "ssim", "ssim_loss",
]
