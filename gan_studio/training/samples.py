"""The images a run saves as it trains: a per-class grid from the EMA generator (fixed latents, so
comparable across steps) and D's reconstructions of a few real images (is its self-supervision
working?)."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from gan_studio.device import autocast
from gan_studio.utils.images import save_image_grid, to_uint8

RECONSTRUCTION_TILE = 64  # px: the smallest tile of reconstructions.png


def grid_latents(n_classes: int, z_dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The sample grid's latents and classes (8 per class), the same at every step and on resume."""
    grid_gen = torch.Generator().manual_seed(1234)
    z = torch.randn(n_classes * 8, z_dim, generator=grid_gen)
    return z, torch.arange(n_classes).repeat_interleave(8)


@torch.no_grad()
def save_generated_grid(
    G,
    z: torch.Tensor,
    labels: torch.Tensor,
    class_names: list[str],
    out: Path,
    step: int,
    *,
    device,
    precision,
) -> Path:
    """``out/step_N.png`` and ``out/latest.png``: one row of 8 per class."""
    images = []
    for i in range(0, len(z), 64):
        with autocast(device, precision):
            images.append(
                G(z[i : i + 64].to(device), labels[i : i + 64].to(device), noise_mode="const").float().cpu()
            )
    grid = to_uint8(torch.cat(images))
    path = out / f"step_{step:07d}.png"
    save_image_grid(grid, path, ncol=8, row_labels=class_names)
    save_image_grid(grid, out / "latest.png", ncol=8, row_labels=class_names)
    return path


@torch.no_grad()
def save_reconstructions(
    D, images: torch.Tensor, labels: torch.Tensor, out: Path, *, device, precision
) -> None:
    """``out/reconstructions.png``: up to 8 real images and what D's three decoders make of them."""
    was_training = D.training
    D.eval()
    gen = torch.Generator().manual_seed(99)
    idx = torch.randint(len(images), (min(8, len(images)),), generator=gen)
    real = images[idx].to(device).float().div(127.5).sub(1.0)
    with autocast(device, precision):
        rec = D(real, labels[idx].to(device), reconstruct=True, part=0).reconstructions
    size = D.rec_size
    # D reconstructs at rec_size (16 px for small models): each tile is blown up, nearest neighbour so
    # its pixels stay as D made them, to at least RECONSTRUCTION_TILE px so that people can read it.
    shown = size * max(1, -(-RECONSTRUCTION_TILE // size))
    rows = [F.interpolate(F.interpolate(real, size=size, mode="area"), size=shown, mode="nearest")]
    rows += [F.interpolate(rec[k].float(), size=shown, mode="nearest") for k in ("big", "small", "part")]
    rows = [to_uint8(row.cpu()) for row in rows]
    save_image_grid(
        torch.cat(rows),
        out / "reconstructions.png",
        ncol=len(idx),
        row_labels=["real", "D: whole", "D: small", "D: top-left"],
    )
    D.train(was_training)
