"""Losses: the autoencoder's (`autoencoder`: L1, SSIM, KL, least-squares adversarial) and the GAN baselines'
(`gan`: non-saturating, matching-aware, DAMSM, conditioning-augmentation KL); the networks are in g2i.models.
Import from the submodule (`from g2i.losses.gan import g_loss`): a DVC stage's code deps then stay the module
it really uses."""
