"""A trainer's checkpoint: what ``Trainer`` writes to resume exactly and how it reads it back.

The files' format is ``checkpoint.py``'s; this module decides what of a running trainer goes in
(weights, optimiser states, every process's random states, the run's metadata) and restores it.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch
from accelerate.utils import gather_object

from gan_studio.device import hardware_summary
from gan_studio.training import checkpoint as ckpt
from gan_studio.training import run_files
from gan_studio.training.run_folder import SPLIT_FILE, RunFolder


def save_trainer_checkpoint(trainer) -> Path | None:
    """Write ``trainer``'s checkpoint (every process's random states gathered; the main one writes)
    and return its folder on the main process."""
    rng = {"torch": torch.get_rng_state(), "data": trainer.data_rng.get_state()}
    if trainer.device.type == "cuda":
        rng["cuda"] = torch.cuda.get_rng_state(trainer.device)
    all_rng = gather_object([rng]) if trainer.world_size > 1 else [rng]
    path = None
    if trainer.is_main:
        unwrap = trainer.accelerator.unwrap_model
        meta = {
            "class_names": trainer.class_names,
            "config": trainer.config.to_dict(),
            "world_size": trainer.world_size,
            "resolution": trainer.config.resolution,
            "train_seconds": round(trainer.train_seconds, 1),
            "hardware": hardware_summary(trainer.device, trainer.world_size),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        state = {
            "format_version": ckpt.FORMAT_VERSION,
            "step": trainer.step,
            "train_seconds": trainer.train_seconds,
            "optimizer_g": trainer.opt_g.state_dict(),
            "optimizer_d": trainer.opt_d.state_dict(),
            "rng": [{k: v.cpu() for k, v in r.items()} for r in all_rng],
        }
        path = ckpt.save_checkpoint(
            trainer.run_dir,
            trainer.step,
            models={
                "generator": unwrap(trainer.G),
                "generator_ema": trainer.G_ema,
                "discriminator": unwrap(trainer.D),
            },
            training_state=state,
            meta=meta,
            extra_files={SPLIT_FILE: RunFolder(trainer.run_dir).split_path},
            keep=trainer.config.keep_checkpoints,
        )
    trainer.accelerator.wait_for_everyone()
    return path


def load_latest(trainer) -> None:
    """Restore ``trainer`` (weights, optimisers, step, random states) from its run's newest intact
    checkpoint, and trim the log lines after it."""
    path = run_files.checkpoint_to_resume(trainer.run_dir, announce=trainer.is_main)  # the newest intact one
    meta = ckpt.load_checkpoint_meta(path)
    if meta["class_names"] != trainer.class_names:
        raise ckpt.CheckpointError(
            f"The classes in '{trainer.config.data}' ({trainer.class_names}) differ from those the run was "
            f"trained on ({meta['class_names']}). Resume with the original dataset."
        )
    for name, model in (
        ("generator", trainer.G),
        ("generator_ema", trainer.G_ema),
        ("discriminator", trainer.D),
    ):
        ckpt.load_weights(model, path / name / "model.safetensors")
    state = ckpt.load_training_state(path)
    trainer.opt_g.load_state_dict(state["optimizer_g"])
    trainer.opt_d.load_state_dict(state["optimizer_d"])
    trainer.step = int(state["step"])
    trainer.train_seconds = float(state.get("train_seconds", 0.0))
    rng = state["rng"]
    if len(rng) != trainer.world_size:
        raise ckpt.CheckpointError(
            f"'{path}' was written by {len(rng)} process(es), this run has {trainer.world_size}. "
            "Resume with the same number of processes to continue exactly."
        )
    mine = rng[trainer.rank]
    torch.set_rng_state(mine["torch"])
    trainer.data_rng.set_state(mine["data"])
    if "cuda" in mine and torch.cuda.is_available():
        torch.cuda.set_rng_state(mine["cuda"])
    if trainer.is_main:  # log lines after this checkpoint will be redone; a torn last one is dropped
        for note in run_files.trim_log(trainer.run_dir, trainer.step):
            print(f"note: {note}", file=sys.stderr)
