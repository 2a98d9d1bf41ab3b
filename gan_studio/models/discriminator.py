"""Class-conditional, self-supervised FastGAN discriminator.

Two branches judge the image: one at full resolution and one at half resolution (FastGAN uses
128 px for its small branch). Each ends in a 5x5 map of patch logits plus a projection term
<embed(y), phi(x)> (Miyato & Koyama 2018), which makes the judgement class-aware. On real images
three small decoders reconstruct the whole image from both branches' 8x8 features and a random
quarter of the image from the 16x16 features; their loss keeps D from memorising the few images.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from huggingface_hub import PyTorchModelHubMixin
from torch import nn

from gan_studio.models.batched import BatchNorm2d, PassLayers, batched, layer_pass, pass_layers
from gan_studio.models.generator import check_resolution
from gan_studio.models.layers import (
    DownBlock,
    DownBlockResidual,
    SimpleDecoder,
    SkipLayerExcitation,
    cast,
    conv2d,
    linear,
)

# Channels (times ndf) of the full-resolution branch at each feature size, per width profile.
# "fastgan" is FastGAN's own discriminator: ~11.5M parameters at 256 px and ndf 64, its small
# branch at half the big branch's width. "compact" halves the channels at 16 px and below, where
# most of the parameters sit but few of the operations, and gives the small branch the big
# branch's widths. It has half the parameters, and the shipped demo model was trained with it.
# Their speeds against the official code: BENCHMARKS.md.
D_WIDTH_PROFILES = {
    "compact": {4: 8, 8: 4, 16: 2, 32: 2, 64: 1, 128: 0.5, 256: 0.25, 512: 0.125, 1024: 0.0625},
    "fastgan": {4: 16, 8: 8, 16: 4, 32: 2, 64: 1, 128: 0.5, 256: 0.25, 512: 0.125, 1024: 0.0625},
}


def d_channels(size: int, width: int, profile: str = "compact") -> int:
    return max(8, int(D_WIDTH_PROFILES[profile][size] * width))


def small_branch_channels(size: int, width: int, profile: str = "compact") -> int:
    """Channels of the half-resolution branch at feature ``size``: FastGAN's are the big branch's
    at twice the size (the same number of down-samplings from the input); compact's are equal."""
    return d_channels(size * 2 if profile == "fastgan" else size, width, profile)


@dataclass
class DiscriminatorOutput:
    logits: torch.Tensor  # [B, n_patches]: big- and small-branch patch logits, concatenated
    reconstructions: dict[str, torch.Tensor] | None = None
    part: int | None = None  # which quarter (0..3) the part decoder redrew
    class_logits: torch.Tensor | None = None  # [B, n_classes] from the auxiliary classifier, if any


def crop_quarter(x: torch.Tensor, part: int) -> torch.Tensor:
    h, w = x.shape[2] // 2, x.shape[3] // 2
    row, col = part // 2, part % 2  # not divmod: torch.compile traces these with part symbolic
    return x[:, :, row * h : (row + 1) * h, col * w : (col + 1) * w]


def group_std(x: torch.Tensor, group_size: int) -> torch.Tensor:
    """A [B, 1, H, W] map of how much each group of ``group_size`` consecutive images differs.

    StyleGAN's minibatch standard deviation, kept per position: the spread of the features over the
    group, averaged over channels. With class-grouped batches every group shares one class, so a
    generator that draws a class in one pose shows a spread no group of real images has. Batches
    that do not split into whole groups get a zero map (D is only trained on batches that do).
    """
    b, _, h, w = x.shape
    if group_size <= 1 or b % group_size:
        return x.new_zeros(b, 1, h, w)
    y = cast(x, torch.float32).view(b // group_size, group_size, *x.shape[1:])
    spread = (y.var(dim=1, unbiased=False) + 1e-8).sqrt().mean(dim=1, keepdim=True)
    return cast(spread.repeat_interleave(group_size, dim=0), x.dtype)


def downscale(x: torch.Tensor, size: int) -> torch.Tensor:
    """Exact area down-scaling for power-of-two factors (cheap, alias-free)."""
    factor = x.shape[-1] // size
    return F.avg_pool2d(x, factor) if factor > 1 else x


class Discriminator(
    nn.Module,
    PyTorchModelHubMixin,
    library_name="gan-studio",
    tags=["gan", "fastgan", "discriminator", "gan-studio"],
):
    def __init__(
        self,
        resolution: int = 64,
        n_classes: int = 1,
        width: int = 64,
        spectral_norm: bool = True,
        aux_classifier: bool = False,
        widths: str = "compact",
        group_size: int = 1,
    ):
        """``group_size`` > 1: both heads also see the within-group spread of their features
        (``group_std``); the training loop then draws batches of ``group_size`` images per class."""
        super().__init__()
        if group_size < 1:
            raise ValueError(f"group_size must be at least 1, got {group_size}.")
        self.group_size = int(group_size)
        extra = 1 if self.group_size > 1 else 0
        self.resolution = check_resolution(resolution)
        if widths not in D_WIDTH_PROFILES:
            raise ValueError(
                f"Unknown discriminator widths {widths!r}: use one of {sorted(D_WIDTH_PROFILES)}."
            )
        self.widths = widths
        self.n_classes = int(n_classes)
        self.aux_classifier = bool(aux_classifier) and self.n_classes > 1
        sn = spectral_norm
        R = resolution

        def big(size: int) -> int:  # channels of the full-resolution branch at feature ``size``
            return d_channels(size, width, widths)

        def small(size: int) -> int:  # channels of the half-resolution branch
            return small_branch_channels(size, width, widths)

        # Big branch. Large images are halved by a strided stem (as FastGAN does at 512/1024 px),
        # small ones keep their full resolution so that 32-64 px models still see fine detail.
        stem_size = R // 2 if R >= 512 else R
        stride = 2 if R >= 512 else 1
        self.stem = nn.Sequential(
            conv2d(3, big(stem_size), 4 if stride == 2 else 3, stride, 1, bias=False, sn=sn),
            nn.LeakyReLU(0.2, inplace=True),
        )
        self.down_sizes = [2**k for k in range(int(math.log2(stem_size)) - 1, 2, -1)]  # ... 16, 8
        self.down = nn.ModuleDict(
            {str(s): DownBlockResidual(big(s * 2), big(s), sn) for s in self.down_sizes}
        )
        # SLE inside D, FastGAN-style: maps 8x larger gate the 8, 16 and 32 px features.
        self.sle_pairs = [(s * 8, s) for s in (8, 16, 32) if s * 8 <= stem_size]
        self.sle = nn.ModuleDict(
            {f"{src}_{dst}": SkipLayerExcitation(big(src), big(dst), sn) for src, dst in self.sle_pairs}
        )
        head_ch = big(4)
        self.head_big = nn.Sequential(
            conv2d(big(8) + extra, head_ch, 1, 1, 0, bias=False, sn=sn),
            BatchNorm2d(head_ch),
            nn.LeakyReLU(0.2, inplace=True),
        )
        self.logits_big = conv2d(head_ch, 1, 4, 1, 0, bias=False, sn=sn)
        self.embed_big = nn.Embedding(self.n_classes, head_ch)

        # Small branch on a half-resolution copy (at most 128 px, at least 16 px).
        self.small_size = max(16, min(128, R // 2))
        small_sizes = [2**k for k in range(int(math.log2(self.small_size)) - 1, 2, -1)]  # S/2 ... 8
        layers: list[nn.Module] = [
            conv2d(3, small(small_sizes[0]), 4, 2, 1, bias=False, sn=sn),
            nn.LeakyReLU(0.2, inplace=True),
        ]
        layers += [DownBlock(small(s * 2), small(s), sn) for s in small_sizes[1:]]
        self.small = nn.Sequential(*layers)
        small_ch = small(8)
        self.logits_small = conv2d(small_ch + extra, 1, 4, 1, 0, bias=False, sn=sn)
        self.embed_small = nn.Embedding(self.n_classes, small_ch)

        # Self-supervised decoders (used on real images only). FastGAN redraws a 256 px image at
        # 128 px: half resolution is enough to force informative features, and decoding at full
        # resolution would cost as much as the rest of D on small models.
        self.rec_size = max(16, min(R // 2, 128))
        self.part_size = max(16, min(R // 2, 128))
        self.decoder_big = SimpleDecoder(big(8), self.rec_size, width, sn)
        self.decoder_part = SimpleDecoder(big(16), self.part_size, width, sn)
        self.decoder_small = SimpleDecoder(small_ch, self.rec_size, width, sn)
        # Auxiliary classifier (AC-GAN, Odena et al. 2017) on both branches' pooled features: D learns
        # it on real images and G must satisfy it on fakes, a direct class signal next to the
        # projection term. It learns slowly on small batches whatever its head: the class cue is
        # the hard part, not spectral norm (benchmarks/class_signal.py,
        # docs/experiments/2026-11-29-class-signal.md).
        self.classifier = linear(head_ch + small_ch, self.n_classes, sn=sn) if self.aux_classifier else None
        for emb in (self.embed_big, self.embed_small):
            nn.init.normal_(emb.weight, std=0.02)

    def forward(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        reconstruct: bool = False,
        part: int | None = None,
    ) -> DiscriminatorOutput:
        if not batched(self.training):
            return self._forward(images, labels, reconstruct, part)
        with layer_pass(self._pass_layers(reconstruct)):
            return self._forward(images, labels, reconstruct, part)

    def _pass_layers(self, reconstruct: bool) -> PassLayers:
        """The layers a forward pass uses: the decoders only when it reconstructs."""

        def parts():
            return [m for name, m in self.named_children() if reconstruct or not name.startswith("decoder_")]

        return pass_layers(self, reconstruct, parts)

    def _forward(
        self, images: torch.Tensor, labels: torch.Tensor, reconstruct: bool, part: int | None
    ) -> DiscriminatorOutput:
        x = self.stem(images)
        features = {x.shape[-1]: x}
        gates = {dst: src for src, dst in self.sle_pairs}
        for size in self.down_sizes:
            x = self.down[str(size)](x)
            if size in gates:
                x = self.sle[f"{gates[size]}_{size}"](features[gates[size]], x)
            features[size] = x
        feat_big = x  # 8x8
        h = self.head_big(self._with_group_std(feat_big))
        logits_big = self.logits_big(h).flatten(1)
        proj_big = (cast(self.embed_big(labels), h.dtype) * h.mean(dim=(2, 3))).sum(1, keepdim=True)

        feat_small = self.small(downscale(images, self.small_size))
        logits_small = self.logits_small(self._with_group_std(feat_small)).flatten(1)
        proj_small = (cast(self.embed_small(labels), feat_small.dtype) * feat_small.mean(dim=(2, 3))).sum(
            1, keepdim=True
        )
        logits = torch.cat([logits_big + proj_big, logits_small + proj_small], dim=1)
        class_logits = None
        if self.classifier is not None:
            pooled = torch.cat([h.mean(dim=(2, 3)), feat_small.mean(dim=(2, 3))], dim=1)
            class_logits = self.classifier(pooled)
        if not reconstruct:
            return DiscriminatorOutput(logits, class_logits=class_logits)

        if part is None:
            part = int(torch.randint(0, 4, ()).item())
        feat16 = features[16]
        recs = {
            "big": self.decoder_big(feat_big),
            "small": self.decoder_small(feat_small),
            "part": self.decoder_part(crop_quarter(feat16, part)),
        }
        return DiscriminatorOutput(logits, recs, part, class_logits)

    def _with_group_std(self, x: torch.Tensor) -> torch.Tensor:
        if self.group_size == 1:
            return x
        return torch.cat([x, group_std(x, self.group_size)], dim=1)

    def reconstruction_targets(self, images: torch.Tensor, part: int) -> dict[str, torch.Tensor]:
        """What each decoder should have drawn, at the decoder's own resolution."""
        whole = downscale(images, self.rec_size)
        quarter = crop_quarter(images, part)
        if quarter.shape[-1] >= self.part_size:
            quarter = downscale(quarter, self.part_size)
        else:
            quarter = F.interpolate(quarter, size=self.part_size, mode="bilinear", align_corners=False)
        return {"big": whole, "small": whole, "part": quarter}
