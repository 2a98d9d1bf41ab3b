"""GAN Studio: class-conditional few-shot GAN (FastGAN-style) for growing small labeled image datasets."""

__version__ = "0.1.0"
