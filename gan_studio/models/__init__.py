"""Networks: the class-conditional FastGAN generator and discriminator, DiffAugment, EMA."""

from gan_studio.models.discriminator import Discriminator, DiscriminatorOutput
from gan_studio.models.generator import Generator, check_resolution

__all__ = ["Discriminator", "DiscriminatorOutput", "Generator", "check_resolution"]
