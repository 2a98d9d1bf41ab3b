"""D's self-supervision (FastGAN): its decoders rebuild the real batch from its own features, which
keeps D learning what real images look like rather than memorising them."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from gan_studio.models.layers import fp32
from gan_studio.training.losses.base import StepContext, Term, TermResult


def reconstruction_loss(kind: str):
    if kind == "mse":
        return F.mse_loss
    if kind == "l1":
        return F.l1_loss
    if kind == "lpips":
        from gan_studio.perceptual import load_lpips

        lpips_model = load_lpips()

        def lpips_loss(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
            if a.shape[-1] < 64:  # the backbones' pooling needs >= 64 px inputs
                a = F.interpolate(a, size=64, mode="bilinear", align_corners=False)
                b = F.interpolate(b, size=64, mode="bilinear", align_corners=False)
            return lpips_model.to(a.device)(a.float(), b.float()).mean()

        return lpips_loss
    raise ValueError(f"Unknown reconstruction loss {kind!r}: use mse, l1 or lpips")


class Reconstruction(Term):
    """Always on (D has its decoders whatever the weight): ``--recon-weight``, ``--recon-loss``."""

    name = "reconstruction"
    stats = ("loss_recon",)

    def __init__(self, weight: float, kind: str):
        super().__init__(weight)
        self.distance = reconstruction_loss(kind)  # LPIPS: loads (and checks for) its backbone now

    @classmethod
    def build(cls, config, setup) -> Reconstruction:
        return cls(config.recon_weight, config.recon_loss)

    def discriminator_loss(self, ctx: StepContext) -> TermResult:
        out = ctx.d_real
        targets = ctx.discriminator.reconstruction_targets(ctx.real_aug, out.part)
        loss = sum(self.distance(fp32(out.reconstructions[k]), fp32(targets[k])) for k in targets)
        return loss, {"loss_recon": loss}
