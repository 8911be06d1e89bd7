"""Training: the resumable loop (trainer.Trainer) and the trainers train_autoencoder / train_diffusion / train_gan."""
