"""Tensor <-> image conversions and labelled image grids (sample sheets, reconstructions)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] float images -> uint8 [N, 3, H, W] on the CPU."""
    return images.detach().float().clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8).cpu().contiguous()


def to_pil(image: torch.Tensor) -> Image.Image:
    """One uint8 [3, H, W] tensor -> PIL image."""
    return Image.fromarray(image.permute(1, 2, 0).numpy())


def save_png_atomic(image: Image.Image, path: str | os.PathLike) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".png")
    os.close(fd)
    try:
        image.save(tmp, format="PNG")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def make_grid(
    images: torch.Tensor,
    ncol: int,
    *,
    row_labels: Sequence[str] | None = None,
    pad: int = 2,
    label_width: int | None = None,
) -> Image.Image:
    """Tile uint8 [N, 3, H, W] images into rows of ``ncol``; optional text label left of each row."""
    n, _, h, w = images.shape
    nrow = (n + ncol - 1) // ncol
    if row_labels is not None and label_width is None:
        label_width = max(48, 7 * max((len(s) for s in row_labels), default=0) + 8)
    lw = label_width if row_labels is not None else 0
    canvas = np.full((nrow * (h + pad) + pad, lw + ncol * (w + pad) + pad, 3), 255, dtype=np.uint8)
    arr = images.permute(0, 2, 3, 1).numpy()
    for i in range(n):
        r, c = divmod(i, ncol)
        y, x = pad + r * (h + pad), lw + pad + c * (w + pad)
        canvas[y : y + h, x : x + w] = arr[i]
    grid = Image.fromarray(canvas)
    if row_labels is not None:
        draw = ImageDraw.Draw(grid)
        font = ImageFont.load_default()
        for r, label in enumerate(row_labels[:nrow]):
            draw.text((4, pad + r * (h + pad) + h // 2 - 6), str(label), fill=(0, 0, 0), font=font)
    return grid


def save_image_grid(images: torch.Tensor, path: str | os.PathLike, ncol: int, **kwargs) -> Path:
    return save_png_atomic(make_grid(images, ncol, **kwargs), path)
