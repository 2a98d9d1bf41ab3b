"""Checkpoint layout and atomic, pickle-free checkpoints (the run folder's other files: gan_studio.training.run_folder).

A run directory looks like::

    RUN_DIR/
      run.json            config, class names, dataset summary
      split.json          the train/test split (the GAN never sees test images)
      data_report.json    the dataset validation report
      log.jsonl           one JSON line per logging interval
      status.json         live state for the app (running / finished / stopped / failed / interrupted)
      trainer.lock        who trains the run now (gan_studio.training.run_lock); empty when nobody does
      samples/            per-class sample grids, reconstructions
      checkpoints/
        latest            text file naming the newest complete checkpoint
        step_000500/
          checkpoint.json     format version, step, class names, config, world size
          generator/          save_pretrained folders (config.json + model.safetensors)
          generator_ema/
          discriminator/
          training_state.pt   optimiser states, RNG states (tensors and plain types only)
          split.json

Each checkpoint is written into a temporary folder and renamed into place, so a crash or Ctrl-C
never leaves a half-written checkpoint behind and ``latest`` always names a complete one; old ones
are renamed to a temporary name before they are deleted, so a kill while pruning leaves only
``.tmp-*`` folders (removed at the next start, see ``gan_studio.training.run_files``). A resume
checks each checkpoint (``checkpoint_problem``) and falls back to the newest intact one.
Loading uses safetensors and ``torch.load(weights_only=True)``: nothing user-supplied is unpickled.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import torch

from gan_studio.utils.atomic import write_json_atomic, write_text_atomic

FORMAT_VERSION = 1
CHECKPOINT_DIR = "checkpoints"
LATEST_FILE = "latest"
TMP_PREFIX = ".tmp-"  # checkpoints being written or deleted; debris once their process is gone
MODEL_FOLDERS = ("generator", "generator_ema", "discriminator")


class CheckpointError(ValueError):
    """A run or checkpoint folder is missing, incomplete, or from an unknown format."""


def read_json(path: Path) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(f"Missing file '{path}'.") from None
    except json.JSONDecodeError as e:
        raise CheckpointError(f"'{path}' is not valid JSON ({e}); the file is damaged.") from None


def step_dir_name(step: int) -> str:
    return f"step_{step:07d}"


def checkpoints_root(run_dir: Path) -> Path:
    return Path(run_dir) / CHECKPOINT_DIR


def list_checkpoints(run_dir: Path) -> list[Path]:
    """Complete checkpoints of a run, oldest first."""
    root = checkpoints_root(run_dir)
    if not root.is_dir():
        return []
    found = [
        p
        for p in root.iterdir()
        if p.is_dir() and p.name.startswith("step_") and (p / "checkpoint.json").is_file()
    ]
    return sorted(found, key=lambda p: int(p.name.split("_")[1]))


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The checkpoint ``latest`` names, falling back to the newest complete one."""
    root = checkpoints_root(run_dir)
    pointer = root / LATEST_FILE
    if pointer.is_file():
        name = pointer.read_text(encoding="utf-8").strip()
        candidate = root / name
        if name.startswith("step_") and "/" not in name and (candidate / "checkpoint.json").is_file():
            return candidate
    found = list_checkpoints(run_dir)
    return found[-1] if found else None


def save_checkpoint(
    run_dir: Path,
    step: int,
    *,
    models: dict[str, torch.nn.Module],
    training_state: dict[str, Any],
    meta: dict[str, Any],
    extra_files: dict[str, Path] | None = None,
    keep: int = 3,
) -> Path:
    """Write ``checkpoints/step_N`` atomically, point ``latest`` at it, prune old ones."""
    root = checkpoints_root(run_dir)
    root.mkdir(parents=True, exist_ok=True)
    final = root / step_dir_name(step)
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=f".tmp-{final.name}-"))
    try:
        for name, model in models.items():
            model.save_pretrained(tmp / name)
        torch.save(training_state, tmp / "training_state.pt")
        for name, src in (extra_files or {}).items():
            shutil.copy2(src, tmp / name)
        write_json_atomic(tmp / "checkpoint.json", {"format_version": FORMAT_VERSION, "step": step, **meta})
        if final.exists():  # re-saving the same step (e.g. resumed with no new steps)
            _delete(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    write_text_atomic(root / LATEST_FILE, final.name + "\n")
    for old in list_checkpoints(run_dir)[:-keep] if keep > 0 else []:
        if old != final:
            _delete(old)
    return final


def _delete(checkpoint: Path) -> None:
    """Rename out of sight first, then delete: a kill half-way leaves a ``.tmp-`` folder that the
    next start removes, never a half-deleted ``step_N`` that looks like a checkpoint."""
    doomed = checkpoint.with_name(f"{TMP_PREFIX}delete-{checkpoint.name}-{os.getpid()}")
    try:
        os.replace(checkpoint, doomed)
    except OSError:
        doomed = checkpoint
    shutil.rmtree(doomed, ignore_errors=True)


def checkpoint_problem(ckpt_dir: Path) -> str | None:
    """Why a checkpoint folder cannot be resumed from (a missing, truncated or unreadable file), or
    None when it looks intact. Cheap: it reads headers, not the weights."""
    from safetensors import SafetensorError, safe_open

    ckpt_dir = Path(ckpt_dir)
    try:
        load_checkpoint_meta(ckpt_dir)
    except CheckpointError as e:
        return str(e)
    for name in MODEL_FOLDERS:
        folder = ckpt_dir / name
        try:
            json.loads((folder / "config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            return f"'{folder / 'config.json'}' is missing or damaged ({e})"
        weights = folder / "model.safetensors"
        try:
            with safe_open(str(weights), framework="pt"):
                pass
        except (SafetensorError, OSError) as e:
            return f"'{weights}' is missing or damaged ({e})"
    state = ckpt_dir / "training_state.pt"
    try:
        with zipfile.ZipFile(state):  # torch's format; a truncated file has no central directory
            pass
    except (OSError, zipfile.BadZipFile) as e:
        return f"'{state}' is missing or damaged ({e})"
    return None


def newest_intact_checkpoint(run_dir: Path) -> tuple[Path | None, list[tuple[Path, str]]]:
    """The checkpoint a resume should use: ``latest`` when intact, else the newest intact one; with
    the newer ones that were passed over and why."""
    candidates = []
    named = latest_checkpoint(run_dir)
    if named is not None:
        candidates.append(named)
    candidates += [p for p in reversed(list_checkpoints(run_dir)) if p != named]
    skipped = []
    for path in candidates:
        problem = checkpoint_problem(path)
        if problem is None:
            return path, skipped
        skipped.append((path, problem))
    return None, skipped


def load_checkpoint_meta(ckpt_dir: Path) -> dict[str, Any]:
    meta = read_json(Path(ckpt_dir) / "checkpoint.json")
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"'{ckpt_dir}' uses checkpoint format {version}, this GAN Studio reads format {FORMAT_VERSION}. "
            "Upgrade or downgrade GAN Studio to match the run."
        )
    return meta


def load_weights(model: torch.nn.Module, weights: Path) -> None:
    """Load a checkpoint's safetensors file into ``model``, or say which file does not fit it."""
    from safetensors import SafetensorError
    from safetensors.torch import load_model

    try:
        load_model(model, str(weights), device="cpu")
    except (RuntimeError, SafetensorError, OSError) as e:  # shapes that the run's settings do not build
        raise CheckpointError(
            f"'{weights}' does not fit the network built from the run's run.json ({str(e).splitlines()[0]}). "
            "Put back the run's original run.json, or resume from another checkpoint."
        ) from None


def load_training_state(ckpt_dir: Path) -> dict[str, Any]:
    path = Path(ckpt_dir) / "training_state.pt"
    if not path.is_file():
        raise CheckpointError(f"'{path}' is missing: the checkpoint is incomplete. Resume from an older one.")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise CheckpointError(
            f"'{path}' holds Python objects, not just tensors and numbers; GAN Studio never unpickles "
            "such files (they can run code), so it was not loaded. If you did not write it yourself, "
            "delete that checkpoint folder and resume from an older one, or start a new run."
        ) from None
    except (RuntimeError, EOFError, OSError) as e:
        raise CheckpointError(
            f"'{path}' is damaged and could not be read ({e}). Delete that checkpoint folder and resume "
            "from an older one."
        ) from None
