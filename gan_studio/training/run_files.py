"""Reading a run folder back after crashes and hand edits: what a resume may trust, and what to tidy.

A trainer killed with SIGKILL (out of memory, a closed laptop, a cluster's time limit) leaves what
it was writing: ``.tmp-`` checkpoint folders, temporary files of atomic writes, a torn last line in
log.jsonl, status.json saying "running" forever. run.json may also have been edited by hand. Each
helper here turns one of those into either a tidy folder or a message naming the file and the fix.
Only call the tidying helpers while holding the run's lock, or when nobody holds it.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

from gan_studio.training import checkpoint as ckpt
from gan_studio.training import run_lock
from gan_studio.training.config import TrainConfig, config_problems
from gan_studio.training.run_folder import LOG_FILE, STATUS_FILE, RunFolder

# How long a "starting" status (written by the app before its trainer runs) may go without a lock
# holder before it counts as interrupted: a trainer takes the lock within seconds of starting.
STARTING_GRACE_S = 180.0


def saved_config(run_dir: Path) -> TrainConfig:
    """run.json's configuration, each value checked against its declared type and range before
    anything is built from it (a width of 10^6 would ask for half a terabyte)."""
    path = RunFolder(run_dir).run_path
    info = ckpt.read_json(path)
    values = info.get("config") if isinstance(info, dict) else None
    if not isinstance(values, dict):
        raise ckpt.CheckpointError(f"'{path}' has no \"config\" table; the file is damaged.")
    known = {k: v for k, v in values.items() if k in TrainConfig.__dataclass_fields__}
    problems = config_problems({k: v for k, v in known.items() if k != "extra"})
    if not problems:
        from gan_studio.models import check_resolution

        try:
            check_resolution(known.get("resolution", TrainConfig.resolution))
        except ValueError as e:
            problems.append(str(e))
    if problems:
        raise ckpt.CheckpointError(
            f"'{path}' holds values GAN Studio cannot use: {'; '.join(problems)}. The file was damaged or "
            "edited: put back the values the run was started with (every checkpoint's checkpoint.json "
            'keeps a copy under "config"), or start a new run.'
        )
    return TrainConfig.from_dict(known)


def checkpoint_to_resume(run_dir: Path, *, announce: bool = True) -> Path:
    """The newest intact checkpoint; each newer damaged one is named on stderr with why it was skipped."""
    path, skipped = ckpt.newest_intact_checkpoint(run_dir)
    if path is None:
        raise ckpt.CheckpointError(
            f"No intact checkpoint in '{run_dir}': {'; '.join(problem for _, problem in skipped)}. "
            "Start a new run (another --out folder)."
        )
    if announce:
        for skipped_path, problem in skipped:
            print(f"note: skipped checkpoint '{skipped_path.name}': {problem}", file=sys.stderr)
        if skipped:
            print(f"note: resuming from the newest intact checkpoint, '{path}'", file=sys.stderr)
    return path


def trim_log(run_dir: Path, step: int) -> list[str]:
    """Keep log.jsonl's lines up to ``step`` (the later ones will be redone); a torn last line (the
    trainer was killed while writing it) is dropped. Returns what it dropped, for the user."""
    path = Path(run_dir) / LOG_FILE
    if not path.is_file():
        return []
    lines = [line for line in path.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]
    kept, notes = [], []
    for number, line in enumerate(lines, 1):
        try:
            record = json.loads(line)
            record_step = int(record["step"])
        except (ValueError, KeyError, TypeError) as e:
            if number == len(lines):
                notes.append(
                    f"'{path}': dropped its torn last line (the trainer was stopped while writing it)"
                )
                break
            raise ckpt.CheckpointError(
                f"'{path}' line {number} is not a log record ({e}). Delete that line (or the whole file, "
                "which only feeds the loss curves) and resume again."
            ) from None
        if record_step <= step:
            kept.append(line)
    ckpt.write_text_atomic(path, "".join(line + "\n" for line in kept))
    return notes


def _temporary_leftovers(run_dir: Path) -> list[Path]:
    """What atomic writes and checkpoint saves leave when their process dies half-way."""
    root = ckpt.checkpoints_root(run_dir)
    found = [p for p in root.glob(f"{ckpt.TMP_PREFIX}*")] if root.is_dir() else []
    settled = time.time() - 60  # the app may be writing status.json right now, before its trainer runs
    for folder in (run_dir, root):
        if folder.is_dir():
            found += [p for p in folder.glob(".*.tmp") if p.is_file() and p.stat().st_mtime < settled]
    found += [p for p in run_dir.glob(".guide-*") if p.is_dir()]  # an own guide being trained
    return found


def tidy(run_dir: Path, *, check_checkpoints: bool = False) -> list[str]:
    """Remove what killed trainers left behind; returns one line per thing removed.

    Removes temporary folders and files, ``step_N`` folders without their checkpoint.json (a
    checkpoint deleted half-way) and, with ``check_checkpoints``, damaged checkpoints older than the
    newest intact one (pruned half-way by an older version). Never a damaged checkpoint newer than
    every intact one: that is for the user to look at. Does nothing while a live process holds the run.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir() or _held_by_another(run_dir):
        return []
    removed = []
    for path in _temporary_leftovers(run_dir):
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed.append(f"removed '{path}' (left by a trainer that was killed)")
    root = ckpt.checkpoints_root(run_dir)
    steps = sorted(root.glob("step_*")) if root.is_dir() else []
    for path in steps:
        if path.is_dir() and not (path / "checkpoint.json").is_file():
            shutil.rmtree(path, ignore_errors=True)
            removed.append(f"removed '{path}' (a checkpoint deleted half-way)")
    if check_checkpoints:
        intact, _ = ckpt.newest_intact_checkpoint(run_dir)
        if intact is not None:
            newest = _step(intact)
            for path in ckpt.list_checkpoints(run_dir):
                problem = ckpt.checkpoint_problem(path) if _step(path) < newest else None
                if problem:
                    shutil.rmtree(path, ignore_errors=True)
                    removed.append(f"removed '{path}', an older checkpoint pruned half-way ({problem})")
    return removed


def _step(checkpoint: Path) -> int:
    return int(checkpoint.name.split("_")[1])


def _held_by_another(run_dir: Path) -> bool:
    holder = run_lock.live_holder(run_dir)
    return holder is not None and holder.pid != os.getpid()


def mark_interrupted(run_dir: Path, *, grace_s: float = STARTING_GRACE_S) -> dict | None:
    """A status.json that says "running" (or "starting", for longer than ``grace_s``) while no live
    process holds the run: its trainer was killed. Rewrite it as "interrupted" and return it; None
    when there was nothing to change."""
    path = Path(run_dir) / STATUS_FILE
    try:
        status = ckpt.read_json(path)
    except ckpt.CheckpointError:
        return None
    if not isinstance(status, dict):
        return None
    state = status.get("state")
    if state not in ("running", "starting") or run_lock.live_holder(run_dir) is not None:
        return None
    if state == "starting" and time.time() - float(status.get("updated") or 0) < grace_s:
        return None
    status = {
        **status,
        "state": "interrupted",
        "error": f"the trainer (process {status.get('pid', '?')}) ended without saving its state "
        f"(killed, or the machine stopped) while {state}; resume from the latest checkpoint",
        "interrupted_found": time.time(),
    }
    ckpt.write_json_atomic(path, status)
    return status


def recover(run_dir: Path, *, check_checkpoints: bool = False, announce: bool = False) -> list[str]:
    """``tidy`` and ``mark_interrupted`` together (the app's run listing, a trainer's start);
    returns one line per change, also printed to stderr when ``announce``."""
    notes = tidy(run_dir, check_checkpoints=check_checkpoints)
    if mark_interrupted(run_dir) is not None:
        notes.append(f"'{Path(run_dir) / STATUS_FILE}' said the run was still running: marked interrupted")
    if announce:
        for note in notes:
            print(f"note: {note}", file=sys.stderr)
    return notes
