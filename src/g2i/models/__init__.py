"""The model family: KL autoencoder, genotype encoder T_theta, denoiser eps_theta (4 variants), schedulers.

Their losses are in g2i.losses; the GAN baselines' networks in g2i.models.gans."""

import importlib

# Lazy (PEP 562): `from g2i.models.denoiser import VARIANTS` or a GAN stage must not pay for importing
# diffusers (~2.5 s a process, every DVC stage) through this package's __init__.
_HOME = {name: module for module, names in {
    "autoencoder": ("PatchDiscriminator", "autoencode", "build_autoencoder", "build_discriminator", "encode_mean",
                    "encoder_means", "latent_scaling_factor", "load_autoencoder", "reconstruct", "set_scaling_factor"),
    "conditioning": ("diagnosis_onehot",),
    "denoiser": ("VARIANTS", "G2IDenoiser", "build_denoiser"),
    "genotype_encoder": ("MISSING", "GenotypeEncoder", "build_genotype_encoder", "genotype_codes"),
    "scheduler": ("build_ddim_scheduler", "build_scheduler"),
}.items() for name in names}
# Eager: the function shares its module's name, and a lazy lookup would find the submodule once imported.
from .ssim import ssim  # noqa: E402


def __getattr__(name: str):
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_HOME[name]}", __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "G2IDenoiser", "GenotypeEncoder", "MISSING", "PatchDiscriminator", "VARIANTS", "autoencode", "build_autoencoder",
    "build_ddim_scheduler", "build_denoiser", "build_discriminator", "build_genotype_encoder", "build_scheduler",
    "diagnosis_onehot", "encode_mean", "encoder_means", "genotype_codes", "latent_scaling_factor", "load_autoencoder",
    "reconstruct", "set_scaling_factor", "ssim",
]
