"""Training: configuration, checkpoints and the FastGAN training loop."""
