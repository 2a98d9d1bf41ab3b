"""Load a trained generator from any of its folders and draw reproducible, class-conditioned images.

Reproducibility contract: an image is a pure function of (weights, class, seed, truncation). Each
seed gives its own latent, and sampling uses the generator's constant noise maps, so the same seed
yields the same image whatever the batch size or the order of the request.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from tqdm.auto import tqdm

from gan_studio.device import autocast
from gan_studio.models import Generator
from gan_studio.training.generator_loading import GeneratorInfo
from gan_studio.training.generator_loading import load_generator as load_generator  # re-exported
from gan_studio.training.generator_loading import resolve_generator_dir as resolve_generator_dir
from gan_studio.utils.atomic import write_json_atomic
from gan_studio.utils.images import save_png_atomic, to_pil, to_uint8


def class_index(G: Generator, name_or_index: str | int) -> int:
    """Accept a class name (case-insensitive) or its index."""
    names = list(G.class_names)
    if isinstance(name_or_index, int) or str(name_or_index).isdigit() and str(name_or_index) not in names:
        idx = int(name_or_index)
        if 0 <= idx < len(names):
            return idx
    else:
        lowered = {n.lower(): i for i, n in enumerate(names)}
        if str(name_or_index) in names:
            return names.index(str(name_or_index))
        if str(name_or_index).lower() in lowered:
            return lowered[str(name_or_index).lower()]
    raise ValueError(f"Unknown class {name_or_index!r}. This model's classes: {', '.join(names)}")


def latent_for_seed(seed: int, z_dim: int, truncation: float = 1.0) -> torch.Tensor:
    """The latent of one seed. ``truncation`` < 1 pulls it toward the mean latent (0): less variety,
    more typical images."""
    z = torch.randn(z_dim, generator=torch.Generator().manual_seed(int(seed)))
    return z * float(truncation)


@torch.no_grad()
def generate_from_latents(
    G: Generator,
    latents: torch.Tensor,
    class_indices: torch.Tensor,
    *,
    batch_size: int = 64,
    progress: bool = False,
    precision: str = "fp32",
    on_batch: Callable[[int, int], None] | None = None,
) -> torch.Tensor:
    """uint8 [N, 3, R, R] images for given latents and classes; ``on_batch(done, total)`` after each batch."""
    device = next(G.parameters()).device
    out = []
    for i in tqdm(range(0, len(latents), batch_size), disable=not progress, desc="sample", unit="batch"):
        z = latents[i : i + batch_size].to(device)
        y = class_indices[i : i + batch_size].to(device)
        with autocast(device, precision):
            out.append(to_uint8(G(z, y, noise_mode="const")))
        if on_batch is not None:
            on_batch(min(i + batch_size, len(latents)), len(latents))
    return torch.cat(out) if out else torch.empty(0, 3, G.resolution, G.resolution, dtype=torch.uint8)


def generate(
    generator: Generator,
    class_indices: Sequence[int],
    seeds: Sequence[int],
    *,
    truncation: float = 1.0,
    batch_size: int = 64,
    device=None,  # noqa: ARG001 - the generator's own device is used
    progress: bool = False,
    on_batch: Callable[[int, int], None] | None = None,
) -> torch.Tensor:
    if len(class_indices) != len(seeds):
        raise ValueError("class_indices and seeds must have the same length")
    latents = (
        torch.stack([latent_for_seed(s, generator.z_dim, truncation) for s in seeds])
        if seeds
        else torch.empty(0, generator.z_dim)
    )
    labels = torch.as_tensor(list(class_indices), dtype=torch.long)
    return generate_from_latents(
        generator, latents, labels, batch_size=batch_size, progress=progress, on_batch=on_batch
    )


def provenance(info: GeneratorInfo, truncation: float) -> dict:
    """What a manifest records so that every image can be regenerated from its seed."""
    return {
        "generator": info.source,
        "run_dir": str(info.run_dir) if info.run_dir else None,
        "step": info.step,
        "resolution": info.resolution,
        "truncation": truncation,
        "noise_mode": "const",
    }


_UNSAFE = re.compile(r"[^\w\-. ]+", re.UNICODE)


def safe_name(name: str) -> str:
    """A class name usable as one path component (no separators, no '..', never empty)."""
    cleaned = _UNSAFE.sub("_", name).strip(" .") or "class"
    return cleaned[:100]


def write_samples(
    G: Generator,
    info: GeneratorInfo,
    out_dir: str | Path,
    class_indices: Sequence[int],
    seeds: Sequence[int],
    *,
    truncation: float = 1.0,
    progress: bool = True,
) -> Path:
    """Write one PNG per (class, seed) in ImageFolder layout plus ``manifest.json``."""
    out_dir = Path(out_dir)
    images = generate(G, class_indices, seeds, truncation=truncation, progress=progress)
    entries = []
    for image, cls, seed in zip(images, class_indices, seeds):
        name = info.class_names[cls]
        rel = Path(safe_name(name)) / f"seed_{int(seed):06d}.png"
        save_png_atomic(to_pil(image), out_dir / rel)
        entries.append(
            {
                "file": rel.as_posix(),
                "class": name,
                "class_index": int(cls),
                "seed": int(seed),
                "latent": [round(v, 6) for v in latent_for_seed(seed, G.z_dim, truncation).tolist()],
            }
        )
    manifest = {**provenance(info, truncation), "images": entries}
    write_json_atomic(out_dir / "manifest.json", manifest)
    return out_dir / "manifest.json"
