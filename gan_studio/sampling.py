"""Load a trained generator from any of its folders and draw reproducible, class-conditioned images.

Reproducibility contract: an image is a pure function of (weights, class, seed, truncation). Each
seed gives its own latent, and sampling uses the generator's constant noise maps, so the same seed
yields the same image whatever the batch size or the order of the request.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from gan_studio.device import autocast, pick_device
from gan_studio.models import Generator
from gan_studio.training import checkpoint as ckpt
from gan_studio.utils.images import save_png_atomic, to_pil, to_uint8


@dataclass
class GeneratorInfo:
    class_names: list[str]
    resolution: int
    step: int
    source: str  # the save_pretrained folder the weights came from
    run_dir: Path | None


def resolve_generator_dir(path: str | Path) -> tuple[Path, Path | None, int]:
    """Find the EMA generator folder for a run dir, a checkpoint dir or a save_pretrained folder.

    Returns (generator folder, run dir or None, training step or -1 when unknown).
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise FileNotFoundError(
            f"'{path}' does not exist. Pass a run folder (the --out of train), a checkpoint folder, "
            "or a generator folder holding config.json + model.safetensors."
        )
    if (path / "package.json").is_file() and (path / "generator" / "config.json").is_file():
        step = int(json.loads((path / "package.json").read_text()).get("step", -1))
        return path / "generator", None, step
    if (path / "run.json").is_file() or (path / ckpt.CHECKPOINT_DIR).is_dir():
        latest = ckpt.latest_checkpoint(path)
        if latest is None:
            raise ckpt.CheckpointError(
                f"Run '{path}' has no checkpoint yet: train it first (or wait for its first save)."
            )
        return latest / "generator_ema", path, int(ckpt.load_checkpoint_meta(latest)["step"])
    if (path / "checkpoint.json").is_file():
        meta = ckpt.load_checkpoint_meta(path)
        return path / "generator_ema", path.parent.parent, int(meta["step"])
    if (path / "config.json").is_file():
        step = -1
        # A package's generator/ folder: the step is in ../package.json; a checkpoint's: ../checkpoint.json.
        for meta_file in (
            path / "training.json",
            path.parent / "package.json",
            path.parent / "checkpoint.json",
        ):
            if meta_file.is_file():
                step = int(json.loads(meta_file.read_text()).get("step", -1))
                break
        return path, None, step
    raise ckpt.CheckpointError(
        f"'{path}' is not a GAN Studio run, checkpoint or generator folder (no run.json, checkpoint.json or config.json)."
    )


def load_generator(
    path: str | Path, device: str | torch.device | None = None
) -> tuple[Generator, GeneratorInfo]:
    gen_dir, run_dir, step = resolve_generator_dir(path)
    if not (gen_dir / "model.safetensors").is_file():
        raise ckpt.CheckpointError(
            f"'{gen_dir / 'model.safetensors'}' is missing: the checkpoint is incomplete."
        )
    device = pick_device() if device is None else torch.device(device)
    G = Generator.from_pretrained(gen_dir).float().to(device).eval()  # fp16 shipped weights are upcast
    G.requires_grad_(False)
    info = GeneratorInfo(list(G.class_names), G.resolution, step, str(gen_dir), run_dir)
    return G, info


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
) -> torch.Tensor:
    """uint8 [N, 3, R, R] images for given latents and classes."""
    device = next(G.parameters()).device
    out = []
    for i in tqdm(range(0, len(latents), batch_size), disable=not progress, desc="sample", unit="batch"):
        z = latents[i : i + batch_size].to(device)
        y = class_indices[i : i + batch_size].to(device)
        with autocast(device, precision):
            out.append(to_uint8(G(z, y, noise_mode="const")))
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
) -> torch.Tensor:
    if len(class_indices) != len(seeds):
        raise ValueError("class_indices and seeds must have the same length")
    latents = (
        torch.stack([latent_for_seed(s, generator.z_dim, truncation) for s in seeds])
        if seeds
        else torch.empty(0, generator.z_dim)
    )
    labels = torch.as_tensor(list(class_indices), dtype=torch.long)
    return generate_from_latents(generator, latents, labels, batch_size=batch_size, progress=progress)


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
    ckpt.write_json_atomic(out_dir / "manifest.json", manifest)
    return out_dir / "manifest.json"
