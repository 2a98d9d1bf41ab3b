"""MSGAN's mode-seeking term (Mao et al. 2019, ``--mode-seeking``): penalise a generator whose images
move less than its latents, the within-class collapse a class-conditional GAN on few images is
prone to."""

from __future__ import annotations

import torch

from gan_studio.models.layers import fp32
from gan_studio.training.losses.base import StepContext, Term, TermResult
from gan_studio.training.losses.image_features import shape_map


class ModeSeeking(Term):
    name = "mode_seeking"
    stats = ("loss_ms",)
    uses_raw_fakes = True  # compares the fakes as G drew them, before any augmentation

    def __init__(self, weight: float, space: str, grouped: bool):
        super().__init__(weight)
        self.space = space  # "pixels" or "shape" (``shape_map``: blind to colour and lighting)
        self.grouped = grouped

    @classmethod
    def check(cls, config) -> None:
        if config.mode_seeking_space not in ("pixels", "shape"):
            raise ValueError(
                f"--mode-seeking-space must be 'pixels' or 'shape', got {config.mode_seeking_space!r}."
            )
        k = config.class_group_size
        if k > 1 and config.mode_seeking > 0 and k % 2:
            raise ValueError(
                f"--mode-seeking pairs two fakes of one class: use an even --class-groups (got {k})."
            )

    @classmethod
    def build(cls, config, setup) -> ModeSeeking | None:
        if config.mode_seeking > 0 and config.batch // 2:
            return cls(config.mode_seeking, config.mode_seeking_space, config.class_group_size > 1)
        return None

    def fake_labels(self, labels: torch.Tensor) -> torch.Tensor:
        """Pairs of fakes share a class, so that the term compares two latents of one class: the
        second half repeats the first half's classes. The reals keep their own labels: relabelling
        them would teach D's class terms wrong answers. With class groups, neighbours (2i, 2i+1)
        already share a class and are the pairs."""
        if self.grouped:
            return labels
        half = len(labels) // 2
        paired = labels.clone()
        paired[half : 2 * half] = labels[:half]
        return paired

    def generator_loss(self, ctx: StepContext) -> TermResult:
        fake, z = ctx.fake, ctx.z
        half = len(fake) // 2
        view = shape_map(fake) if self.space == "shape" else fp32(fake)
        first, second = (
            (slice(0, None, 2), slice(1, None, 2))
            if self.grouped
            else (slice(0, half), slice(half, 2 * half))
        )
        image_gap = (view[first] - view[second]).abs().mean(dim=(1, 2, 3))
        latent_gap = (z[first] - z[second]).abs().mean(dim=1)
        loss = 1.0 / ((image_gap / latent_gap).mean() + 1e-5)
        return loss, {"loss_ms": loss}
