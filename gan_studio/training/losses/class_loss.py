"""AC-GAN's auxiliary classifier (``--class-loss``): D's head learns the classes on real images, and
G must make fakes that head assigns to their class."""

from __future__ import annotations

import torch.nn.functional as F

from gan_studio.models.layers import fp32
from gan_studio.training.losses.base import StepContext, Term, TermResult


class ClassLoss(Term):
    name = "class_loss"
    stats = ("loss_cls_real", "loss_cls_fake", "acc_cls_real")

    @classmethod
    def build(cls, config, setup) -> ClassLoss | None:
        # D is built with its classifier exactly when this weight is positive.
        return cls(config.class_loss) if config.class_loss > 0 else None

    def discriminator_loss(self, ctx: StepContext) -> TermResult:
        class_logits = fp32(ctx.d_real.class_logits)
        loss = F.cross_entropy(class_logits, ctx.labels)
        accuracy = (class_logits.argmax(1) == ctx.labels).float().mean()
        return loss, {"loss_cls_real": loss, "acc_cls_real": accuracy}

    def generator_loss(self, ctx: StepContext) -> TermResult:
        loss = F.cross_entropy(fp32(ctx.d_fake.class_logits), ctx.fake_labels)
        return loss, {"loss_cls_fake": loss}
