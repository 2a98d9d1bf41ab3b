"""DiffAugment (Zhao et al. 2020): differentiable augmentation applied to real AND fake images.

Because the same random transforms are applied to both sides before D and gradients flow through
them to G, D cannot memorise the handful of training images, and the augmentations do not leak into
the generated images. Randomness comes from torch's RNG only, so training is reproducible.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

from gan_studio.models.layers import cast

POLICIES = ("color", "translation", "cutout")
# Augmentations of the fakes a frozen guide classifier scores. Rotation is one of them but not a D
# augmentation: applied to reals and fakes alike at every angle, it would hide orientation from D.
GUIDE_POLICIES = ("color", "translation", "rotation")


def parse_policy(policy: str, allowed: tuple[str, ...] = POLICIES) -> tuple[str, ...]:
    names = tuple(p.strip() for p in policy.split(",") if p.strip())
    unknown = [p for p in names if p not in allowed]
    if unknown:
        raise ValueError(f"Unknown augmentation {unknown} in {policy!r}; choose from {', '.join(allowed)}")
    return names


def _rand(x: torch.Tensor, *shape: int) -> torch.Tensor:
    return cast(torch.rand(x.shape[0], *shape, device=x.device, dtype=torch.float32), x.dtype)


def color(x: torch.Tensor) -> torch.Tensor:
    """Random brightness (+-0.5), saturation (x0..2) and contrast (x0.5..1.5) for [-1, 1] images."""
    x = x + (_rand(x, 1, 1, 1) - 0.5)
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (_rand(x, 1, 1, 1) * 2) + mean
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (_rand(x, 1, 1, 1) + 0.5) + mean


# The index maps below are the same every step: made once per shape (a few small tensors each).
@functools.lru_cache(maxsize=16)
def _shift_indices(b: int, h: int, w: int, device: torch.device) -> tuple[torch.Tensor, ...]:
    """Each pixel's image, and its row and column in the map padded by one (``translation``)."""
    batch = torch.arange(b, device=device).view(b, 1, 1).expand(b, h, w)
    rows = torch.arange(1, h + 1, device=device).view(1, h, 1)
    return batch, rows, torch.arange(1, w + 1, device=device).view(1, 1, w)


def translation(x: torch.Tensor, ratio: float = 0.125) -> torch.Tensor:
    """Shift each image by up to ``ratio`` of its size, filling with zeros."""
    b, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dy = torch.randint(-sh, sh + 1, (b, 1, 1), device=x.device)
    dx = torch.randint(-sw, sw + 1, (b, 1, 1), device=x.device)
    batch, rows, cols = _shift_indices(b, h, w, x.device)  # rows, cols: +1, into the padded map
    rows = (rows + dy).clamp(0, h + 1).expand(b, h, w)
    cols = (cols + dx).clamp(0, w + 1).expand(b, h, w)
    padded = F.pad(x, (1, 1, 1, 1))
    # The gather runs in NHWC (one contiguous pixel per index); the result goes back to the input's
    # layout, so that D runs in the layout the trainer chose (channels_last only on GPUs by default).
    shifted = padded.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2)
    return shifted.contiguous(memory_format=_memory_format(x))


def _memory_format(x: torch.Tensor) -> torch.memory_format:
    if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
        return torch.channels_last
    return torch.contiguous_format


@functools.lru_cache(maxsize=16)
def _cut_masks(size: int, cut: int, n: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """[n, size]: for each centre 0..n-1 of a ``cut``-wide band, 1 where a row (or column) lies
    outside the band, 0 inside (``cutout``)."""
    start = torch.arange(n)[:, None] - cut // 2
    where = torch.arange(size)[None, :]
    return ((where < start) | (where >= start + cut)).to(device=device, dtype=dtype)


def cutout(x: torch.Tensor, ratio: float = 0.5) -> torch.Tensor:
    """Zero a random square of ``ratio`` times the image size in each image."""
    b, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    n_y, n_x = h + (1 - ch % 2), w + (1 - cw % 2)
    cy = torch.randint(0, n_y, (b, 1, 1), device=x.device)
    cx = torch.randint(0, n_x, (b, 1, 1), device=x.device)
    # A pixel is kept when its row or its column lies outside the square: the larger of two 0/1 masks.
    rows = _cut_masks(h, ch, n_y, x.dtype, x.device)[cy.view(b)].view(b, 1, h, 1)
    cols = _cut_masks(w, cw, n_x, x.dtype, x.device)[cx.view(b)].view(b, 1, 1, w)
    return x * torch.maximum(rows, cols)


def rotation(x: torch.Tensor) -> torch.Tensor:
    """Rotate each image by a uniform random angle about its centre, mirroring at the borders.

    For the guide only: averaged over all angles, the guide's loss no longer depends on the
    orientation a fake is drawn in, so it cannot pull a class towards its most typical pose.
    """
    angle = torch.rand(x.shape[0], device=x.device, dtype=torch.float32) * (2 * torch.pi)
    cos, sin, zero = angle.cos(), angle.sin(), torch.zeros_like(angle)
    theta = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


_OPS = {"color": color, "translation": translation, "cutout": cutout, "rotation": rotation}


def diff_augment(x: torch.Tensor, policy: tuple[str, ...] | str) -> torch.Tensor:
    if isinstance(policy, str):
        policy = parse_policy(policy)
    for name in policy:
        x = _OPS[name](x)
    return x
