"""Finding and loading a trained generator from a run, checkpoint, package or generator folder.

Training needs it (``init_generator`` warm starts) as much as sampling does, so it lives here, below
both; gan_studio.sampling re-exports it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from gan_studio.device import pick_device
from gan_studio.models import Generator
from gan_studio.training import checkpoint as ckpt
from gan_studio.training.run_folder import RunFolder


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
    if RunFolder(path).run_path.is_file() or (path / ckpt.CHECKPOINT_DIR).is_dir():
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


__all__ = ["GeneratorInfo", "load_generator", "resolve_generator_dir"]
