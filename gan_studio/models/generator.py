"""Class-conditional FastGAN generator.

Architecture follows FastGAN (arXiv 2101.04775): a 4x4 transposed-conv stem, GLU up-sampling blocks
(two convs at every other scale), noise injection, and skip-layer excitation from coarse to fine
scales. Class conditioning: the class embedding is concatenated with z at the stem, and [embedding, z]
drives the gain/bias of every batch norm (BigGAN's shared embedding + skip-z), so a single model
samples any class and z keeps a direct say at every scale: without it a conditional generator tends
to learn one image per class first and ignore z (within-class collapse).
"""

from __future__ import annotations

import math

import torch
from huggingface_hub import PyTorchModelHubMixin
from torch import nn

from gan_studio.models.batched import batched, layer_pass, pass_layers
from gan_studio.models.layers import (
    GLU,
    ConditionalBatchNorm2d,
    SkipLayerExcitation,
    UpBlock,
    cast,
    channels_at,
    conv2d,
    conv_transpose2d,
)

MIN_RESOLUTION, MAX_RESOLUTION = 32, 1024


def check_resolution(resolution: int) -> int:
    if resolution not in {2**k for k in range(5, 11)}:
        raise ValueError(
            f"Resolution {resolution} is not supported: use a power of two from {MIN_RESOLUTION} to "
            f"{MAX_RESOLUTION} (32, 64, 128, 256, 512, 1024)."
        )
    return resolution


def sle_pairs(resolution: int) -> list[tuple[int, int]]:
    """(source size, target size) pairs for skip-layer excitation.

    FastGAN gates 64<-4, 128<-8, 256<-16, 512<-32. Below 64 px none of those exist, so the output
    scale is gated from the 4x4 stem instead: small models keep a global shortcut too.
    """
    pairs = [(t // 16, t) for t in (64, 128, 256, 512) if t <= resolution]
    return pairs or [(4, resolution)]


class Generator(
    nn.Module,
    PyTorchModelHubMixin,
    library_name="gan-studio",
    tags=["gan", "fastgan", "class-conditional", "gan-studio"],
):
    """Maps (z, class index) to an RGB image in [-1, 1] of size ``resolution``."""

    def __init__(
        self,
        resolution: int = 64,
        n_classes: int = 1,
        class_names: list[str] | None = None,
        z_dim: int = 128,
        width: int = 64,
        embed_dim: int = 128,
        spectral_norm: bool = True,
    ):
        super().__init__()
        self.resolution = check_resolution(resolution)
        self.n_classes = int(n_classes)
        self.class_names = list(class_names) if class_names else [str(i) for i in range(n_classes)]
        if len(self.class_names) != self.n_classes:
            raise ValueError(f"class_names has {len(self.class_names)} entries but n_classes={n_classes}")
        self.z_dim = z_dim
        sn = spectral_norm

        self.class_embedding = nn.Embedding(self.n_classes, embed_dim)
        stem_ch = channels_at(4, width)
        self.stem = conv_transpose2d(z_dim + embed_dim, stem_ch * 2, 4, 1, 0, bias=False, sn=sn)
        cond_dim = embed_dim + z_dim
        self.stem_norm = ConditionalBatchNorm2d(stem_ch * 2, cond_dim)
        self.stem_act = GLU()

        self.sizes = [2**k for k in range(3, int(math.log2(resolution)) + 1)]
        self.blocks = nn.ModuleDict()
        for size in self.sizes:
            double = int(math.log2(size)) % 2 == 1  # FastGAN: two-conv blocks at 8, 32, 128, 512
            self.blocks[str(size)] = UpBlock(
                channels_at(size // 2, width), channels_at(size, width), size, cond_dim, double, sn
            )
        self.sle = nn.ModuleDict(
            {
                f"{src}_{dst}": SkipLayerExcitation(channels_at(src, width), channels_at(dst, width), sn)
                for src, dst in sle_pairs(resolution)
            }
        )
        self.to_rgb = nn.Sequential(
            conv2d(channels_at(resolution, width), 3, 3, 1, 1, bias=False, sn=sn), nn.Tanh()
        )

    def forward(self, z: torch.Tensor, labels: torch.Tensor, noise_mode: str = "random") -> torch.Tensor:
        if not batched(self.training):
            return self._forward(z, labels, noise_mode)
        with layer_pass(pass_layers(self, "all", lambda: [self])):
            return self._forward(z, labels, noise_mode)

    def _forward(self, z: torch.Tensor, labels: torch.Tensor, noise_mode: str) -> torch.Tensor:
        cond = torch.cat([cast(self.class_embedding(labels), z.dtype), z], dim=1)
        x = self.stem(cond.view(*cond.shape, 1, 1))
        x = self.stem_act(self.stem_norm(x, cond))
        features = {4: x}
        gates = {dst: src for src, dst in sle_pairs(self.resolution)}
        for size in self.sizes:
            x = self.blocks[str(size)](x, cond, noise_mode)
            if size in gates:
                src = gates[size]
                x = self.sle[f"{src}_{size}"](features[src], x)
            features[size] = x
        return self.to_rgb(x)

    def sample_latents(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.randn(n, self.z_dim, generator=generator)
