"""Building blocks shared by the FastGAN generator and discriminator.

FastGAN (Liu et al. 2021) builds both networks from a handful of blocks: spectrally normalised
convolutions, GLU up-sampling blocks with noise injection, residual down-sampling blocks and the
skip-layer excitation (SLE) gate. Class conditioning is added here with conditional batch norm
(per-class gain and bias, as in BigGAN) so that one model can sample every class.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from gan_studio.models.batched import BatchNorm2d, spectral_norm

# FastGAN's channel multipliers per feature-map size (times ngf / ndf).
CHANNEL_MULTIPLIERS = {4: 16, 8: 8, 16: 4, 32: 2, 64: 2, 128: 1, 256: 0.5, 512: 0.25, 1024: 0.125}


def channels_at(size: int, width: int, minimum: int = 8) -> int:
    """Channel count FastGAN uses at feature-map ``size`` for base width ``width``."""
    return max(minimum, int(CHANNEL_MULTIPLIERS[size] * width))


def cast(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``x.to(dtype)``, without an operator when it has that dtype already (fp32 training)."""
    return x if x.dtype == dtype else x.to(dtype)


def fp32(x: torch.Tensor) -> torch.Tensor:
    """``x.float()``, without an operator when ``x`` is float32 already."""
    return cast(x, torch.float32)


def conv2d(*args, sn: bool = True, **kwargs) -> nn.Module:
    layer = nn.Conv2d(*args, **kwargs)
    return spectral_norm(layer) if sn else layer


def linear(*args, sn: bool = True, **kwargs) -> nn.Module:
    layer = nn.Linear(*args, **kwargs)
    return spectral_norm(layer) if sn else layer


def conv_transpose2d(*args, sn: bool = True, **kwargs) -> nn.Module:
    layer = nn.ConvTranspose2d(*args, **kwargs)
    return spectral_norm(layer) if sn else layer


# Nearest 2x up-sampling followed by a 3x3 convolution equals one stride-2 transposed convolution
# with a 4x4 kernel: each output pixel only ever sees a 2x2 input neighbourhood. Folding the 3x3
# kernel with this matrix (rows: 4x4 taps, columns: 3x3 taps) gives that kernel, so the layer does
# 16 instead of 36 multiply-adds per input pixel and never stores the 4x larger up-sampled map.
_UPSAMPLE_FOLD = torch.tensor([[0.0, 0.0, 1.0], [0.0, 1.0, 1.0], [1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
# Below this input size the transposed convolution is slower than up-sample + conv on CPUs.
_FOLD_MIN_SIZE = 8


class UpsampleConv(nn.Module):
    """``conv3x3(nearest_upsample_2x(x))``, computed as an exact stride-2 transposed convolution.

    The learned (and spectrally normalised) parameter stays an ordinary 3x3 kernel, so the layer is
    the same function as FastGAN's up-sampling conv; only the arithmetic is cheaper (about 2x on a
    CPU in forward + backward, measured in docs/experiments/2026-11-28-cpu-training-step.md).
    """

    def __init__(self, in_ch: int, out_ch: int, sn: bool):
        super().__init__()
        self.conv = conv2d(in_ch, out_ch, 3, 1, 1, bias=False, sn=sn)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.conv.weight
        if x.shape[-1] < _FOLD_MIN_SIZE or x.shape[-2] < _FOLD_MIN_SIZE:
            return F.conv2d(F.interpolate(x, scale_factor=2.0, mode="nearest"), weight, padding=1)
        fold = _upsample_fold(weight.device, weight.dtype)
        kernel = torch.einsum("ak,oikl,bl->ioab", fold, weight, fold)
        return F.conv_transpose2d(x, cast(kernel, x.dtype), stride=2, padding=1)


_FOLDS: dict[tuple[torch.device, torch.dtype], torch.Tensor] = {}


def _upsample_fold(device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """``_UPSAMPLE_FOLD`` on ``device`` in ``dtype``, made once."""
    if torch.compiler.is_compiling():  # a constant of the compiled graph (no guard on the dict)
        return _UPSAMPLE_FOLD.to(device=device, dtype=dtype)
    key = (device, dtype)
    if key not in _FOLDS:
        _FOLDS[key] = _UPSAMPLE_FOLD.to(device=device, dtype=dtype)
    return _FOLDS[key]


class GLU(nn.Module):
    """Gated linear unit over channels: half the channels gate the other half."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.glu(x, dim=1)  # one fused kernel instead of chunk + sigmoid + mul


class NoiseInjection(nn.Module):
    """Adds per-pixel Gaussian noise scaled by a learned weight (starts at zero, as in FastGAN).

    In ``"const"`` mode a fixed noise map is used, so that an image depends only on (z, class):
    sampling is then reproducible image by image, whatever the batch it is generated in.
    """

    def __init__(self, size: int):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))
        gen = torch.Generator().manual_seed(size)
        self.register_buffer("noise_const", torch.randn(1, 1, size, size, generator=gen))

    def forward(self, x: torch.Tensor, noise_mode: str = "random") -> torch.Tensor:
        if noise_mode == "none":
            return x
        if noise_mode == "const":
            noise = cast(self.noise_const, x.dtype)
        else:
            b, _, h, w = x.shape
            noise = torch.randn(b, 1, h, w, device=x.device, dtype=x.dtype)
        return torch.addcmul(x, noise, cast(self.weight, x.dtype))


class ConditionalBatchNorm2d(nn.Module):
    """Batch norm whose gain and bias are predicted from the class embedding (BigGAN-style)."""

    def __init__(self, channels: int, embed_dim: int):
        super().__init__()
        self.norm = BatchNorm2d(channels, affine=False)
        self.gain = nn.Linear(embed_dim, channels)
        self.bias = nn.Linear(embed_dim, channels)
        for linear in (self.gain, self.bias):
            nn.init.zeros_(linear.weight)
            nn.init.zeros_(linear.bias)

    def forward(self, x: torch.Tensor, class_embedding: torch.Tensor) -> torch.Tensor:
        shape = (*class_embedding.shape[:1], -1, 1, 1)  # [B, C, 1, 1]: one view instead of two unsqueezes
        gain = cast((1.0 + self.gain(class_embedding)).view(shape), x.dtype)
        bias = cast(self.bias(class_embedding).view(shape), x.dtype)
        return torch.addcmul(bias, self.norm(x), gain)  # one pass over the map instead of two


class UpBlock(nn.Module):
    """Nearest up-sampling + 3x3 conv (one ``UpsampleConv``), noise, conditional BN, GLU; ``double`` adds a second conv
    (FastGAN's UpBlockComp, used at every other resolution)."""

    def __init__(self, in_ch: int, out_ch: int, out_size: int, embed_dim: int, double: bool, sn: bool):
        super().__init__()
        self.double = double
        self.conv1 = UpsampleConv(in_ch, out_ch * 2, sn)
        self.noise1 = NoiseInjection(out_size)
        self.norm1 = ConditionalBatchNorm2d(out_ch * 2, embed_dim)
        self.glu = GLU()
        if double:
            self.conv2 = conv2d(out_ch, out_ch * 2, 3, 1, 1, bias=False, sn=sn)
            self.noise2 = NoiseInjection(out_size)
            self.norm2 = ConditionalBatchNorm2d(out_ch * 2, embed_dim)

    def forward(self, x: torch.Tensor, emb: torch.Tensor, noise_mode: str) -> torch.Tensor:
        x = self.glu(self.norm1(self.noise1(self.conv1(x), noise_mode), emb))
        if self.double:
            x = self.glu(self.norm2(self.noise2(self.conv2(x), noise_mode), emb))
        return x


class SkipLayerExcitation(nn.Module):
    """SLE: a low-resolution feature map gates the channels of a high-resolution one.

    It gives the gradient a short path to early layers and lets coarse structure (pose, layout)
    steer fine-scale texture, which is what makes FastGAN train stably on a few hundred images.
    """

    def __init__(self, small_ch: int, big_ch: int, sn: bool):
        super().__init__()
        self.gate = nn.Sequential(
            nn.AdaptiveAvgPool2d(4),
            conv2d(small_ch, big_ch, 4, 1, 0, bias=False, sn=sn),
            nn.SiLU(),  # FastGAN's Swish
            conv2d(big_ch, big_ch, 1, 1, 0, bias=False, sn=sn),
            nn.Sigmoid(),
        )

    def forward(self, small: torch.Tensor, big: torch.Tensor) -> torch.Tensor:
        return big * self.gate(small)


class DownBlock(nn.Module):
    """Strided 4x4 conv, BN, LeakyReLU: halves the resolution."""

    def __init__(self, in_ch: int, out_ch: int, sn: bool):
        super().__init__()
        self.main = nn.Sequential(
            conv2d(in_ch, out_ch, 4, 2, 1, bias=False, sn=sn),
            BatchNorm2d(out_ch),
            nn.LeakyReLU(0.2, inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x)


class DownBlockResidual(nn.Module):
    """FastGAN's DownBlockComp: a two-conv path averaged with a pooled 1x1 shortcut."""

    def __init__(self, in_ch: int, out_ch: int, sn: bool):
        super().__init__()
        self.main = nn.Sequential(
            conv2d(in_ch, out_ch, 4, 2, 1, bias=False, sn=sn),
            BatchNorm2d(out_ch),
            nn.LeakyReLU(0.2, inplace=True),
            conv2d(out_ch, out_ch, 3, 1, 1, bias=False, sn=sn),
            BatchNorm2d(out_ch),
            nn.LeakyReLU(0.2, inplace=True),
        )
        self.shortcut = nn.Sequential(
            nn.AvgPool2d(2, 2),
            conv2d(in_ch, out_ch, 1, 1, 0, bias=False, sn=sn),
            BatchNorm2d(out_ch),
            nn.LeakyReLU(0.2, inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.main(x) + self.shortcut(x)) * 0.5


class SimpleDecoder(nn.Module):
    """Reconstructs an image from an 8x8 discriminator feature map (FastGAN's self-supervision).

    Forcing the discriminator to describe real images well enough to redraw them keeps its
    features informative and is FastGAN's main defence against discriminator over-fitting.
    """

    def __init__(self, in_ch: int, out_size: int, width: int, sn: bool):
        super().__init__()
        layers: list[nn.Module] = [nn.AdaptiveAvgPool2d(8)]
        ch, size = in_ch, 8
        while size < out_size:
            size *= 2
            out_ch = max(16, int(width * {16: 2, 32: 1, 64: 1, 128: 0.5}.get(size, 0.5)))
            layers += [
                UpsampleConv(ch, out_ch * 2, sn),
                BatchNorm2d(out_ch * 2),
                GLU(),
            ]
            ch = out_ch
        layers += [conv2d(ch, 3, 3, 1, 1, bias=False, sn=sn), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
