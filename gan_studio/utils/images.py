"""Tensor <-> image conversions and labelled image grids (sample sheets, reconstructions)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
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


RULE = (40, 40, 40)  # the line between column groups (real | generated)
LABEL_FONT_SIZE = 16  # px: the smallest grid label


def label_size(tile: int) -> int:
    """Grid labels grow with the tiles (a quarter of one, at least LABEL_FONT_SIZE): a page that shows a
    grid of large tiles smaller, to fit, still shows its labels at 12 px or more."""
    return max(LABEL_FONT_SIZE, tile // 4)


def label_font(size: int | None = None) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """Pillow's built-in font at ``size`` pixels (its 10 px default face when None)."""
    return ImageFont.load_default() if size is None else ImageFont.load_default(size=size)


@dataclass(frozen=True)
class GridLayout:
    """Where make_grid puts things: tile (row, column) -> top-left pixel, the header band, the rules."""

    tile_h: int
    tile_w: int
    ncol: int
    nrow: int
    pad: int
    label_width: int
    header: int  # height of the column-header band (0 without column groups)
    group_gap: int
    boundaries: tuple[int, ...]  # first column of each group after the first

    def tile_xy(self, row: int, col: int) -> tuple[int, int]:
        gaps = sum(1 for b in self.boundaries if col >= b)
        x = self.label_width + self.pad + col * (self.tile_w + self.pad) + gaps * self.group_gap
        return x, self.header + self.pad + row * (self.tile_h + self.pad)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the whole grid."""
        width = self.label_width + self.ncol * (self.tile_w + self.pad) + self.pad
        return width + len(self.boundaries) * self.group_gap, self.header + self.nrow * (
            self.tile_h + self.pad
        ) + self.pad

    def rule_x(self, boundary: int) -> int:
        """x of the vertical rule in the gap before column ``boundary``."""
        return (self.tile_xy(0, boundary - 1)[0] + self.tile_w + self.tile_xy(0, boundary)[0]) // 2


def grid_layout(
    n: int,
    ncol: int,
    tile_h: int,
    tile_w: int,
    *,
    row_labels: Sequence[str] | None = None,
    pad: int = 2,
    label_width: int | None = None,
    font_size: int | None = None,
    column_groups: Sequence[tuple[str, int]] | None = None,
    group_gap: int = 12,
) -> GridLayout:
    if column_groups and sum(count for _, count in column_groups) != ncol:
        raise ValueError(
            f"column_groups cover {sum(c for _, c in column_groups)} columns, the grid has {ncol}"
        )
    font_size = font_size or label_size(tile_h)
    if row_labels is not None and label_width is None:
        font = label_font(font_size)
        label_width = max(48, int(max((font.getlength(str(s)) for s in row_labels), default=0)) + 12)
    boundaries, start = [], 0
    for _, count in (column_groups or [])[:-1]:
        start += count
        boundaries.append(start)
    return GridLayout(
        tile_h=tile_h,
        tile_w=tile_w,
        ncol=ncol,
        nrow=(n + ncol - 1) // ncol,
        pad=pad,
        label_width=label_width if row_labels is not None else 0,
        header=font_size + 10 if column_groups else 0,
        group_gap=group_gap if column_groups else 0,
        boundaries=tuple(boundaries),
    )


def make_grid(
    images: torch.Tensor,
    ncol: int,
    *,
    row_labels: Sequence[str] | None = None,
    pad: int = 2,
    label_width: int | None = None,
    font_size: int | None = None,
    column_groups: Sequence[tuple[str, int]] | None = None,
    group_gap: int = 12,
) -> Image.Image:
    """Tile uint8 [N, 3, H, W] images into rows of ``ncol``; optional text label left of each row.

    ``column_groups`` ([(header, number of columns), ...]) splits the columns into groups: a header
    above each, a vertical rule between them. ``font_size`` draws labels and headers at that many
    pixels (default: ``label_size`` of the tiles)."""
    n, _, h, w = images.shape
    font_size = font_size or label_size(h)
    layout = grid_layout(
        n, ncol, h, w, row_labels=row_labels, pad=pad, label_width=label_width, font_size=font_size,
        column_groups=column_groups, group_gap=group_gap,
    )  # fmt: skip
    width, height = layout.size
    canvas = np.full((height, width, 3), 255, dtype=np.uint8)
    arr = images.permute(0, 2, 3, 1).numpy()
    for i in range(n):
        x, y = layout.tile_xy(*divmod(i, ncol))
        canvas[y : y + h, x : x + w] = arr[i]
    grid = Image.fromarray(canvas)
    draw = ImageDraw.Draw(grid)
    font = label_font(font_size)
    if row_labels is not None:
        offset = font_size // 2 + 1
        for r, label in enumerate(row_labels[: layout.nrow]):
            draw.text((4, layout.tile_xy(r, 0)[1] + h // 2 - offset), str(label), fill=(0, 0, 0), font=font)
    first = 0
    for g, (header, count) in enumerate(column_groups or []):
        left = layout.tile_xy(0, first)[0]
        right = layout.tile_xy(0, first + count - 1)[0] + w
        x = (left + right - draw.textlength(header, font=font)) / 2
        draw.text((x, 4), header, fill=(0, 0, 0), font=font)
        if g:
            rule = layout.rule_x(first)
            draw.line([(rule, 0), (rule, height - 1)], fill=RULE, width=2)
        first += count
    return grid


def save_image_grid(images: torch.Tensor, path: str | os.PathLike, ncol: int, **kwargs) -> Path:
    return save_png_atomic(make_grid(images, ncol, **kwargs), path)
