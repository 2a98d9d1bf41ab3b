"""What a run reports as it trains: status.json (what the app polls), the step statistics averaged
over each log interval (one log.jsonl line each) and the progress bar's summary of such a line."""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

import torch

from gan_studio.training.run_folder import RunFolder


class LogWindow:
    """The statistics of the steps since the last log line: kept on the device as the steps make
    them, read back in one copy when the line is written (or before a checkpoint), then summed."""

    def __init__(self, names: tuple[str, ...], images_per_step: int):
        self.names = names  # what each step's vector holds (``Trainer.stat_names``)
        self.images_per_step = images_per_step  # batch x processes
        self.pending: list[tuple[int, torch.Tensor]] = []  # (step, its statistics), not read yet
        self.sums: dict[str, float] = {}
        self.steps = 0
        self.started = time.perf_counter()

    def add(self, stats: torch.Tensor, step: int) -> None:
        """Keep one step's statistics (a vector in ``names`` order) until ``settle``."""
        self.pending.append((step, stats))

    def settle(self) -> None:
        """Read the kept steps' statistics back (one device-to-host copy) and count them; a
        non-finite one stops the run (its weights are lost): call it before saving anything."""
        if not self.pending:
            return
        rows = torch.stack([stats for _, stats in self.pending]).tolist()
        steps, self.pending = [step for step, _ in self.pending], []
        for step, row in zip(steps, rows, strict=True):
            stats = dict(zip(self.names, row, strict=True))
            for k, v in stats.items():
                self.sums[k] = self.sums.get(k, 0.0) + v
            self.steps += 1
            if not all(math.isfinite(v) for v in stats.values()):
                raise FloatingPointError(
                    f"Training diverged at step {step} (non-finite loss: {stats}). Resume from the last "
                    "checkpoint with a lower learning rate (--lr-g/--lr-d) or --precision fp32."
                )

    def close(self, step: int, now: float) -> dict:
        """The log line of the window's steps (their mean statistics and images per second); the
        next window starts ``now``."""
        self.settle()
        ips = self.steps * self.images_per_step / max(now - self.started, 1e-9)
        record = {
            "step": step,
            **{k: v / self.steps for k, v in self.sums.items()},
            "images_per_s": ips,
            "time": time.time(),
        }
        self.sums, self.steps, self.started = {}, 0, now
        return record


def bar_summary(record: dict) -> dict[str, str]:
    """The progress bar's postfix: D's and G's losses, D's reconstruction, r_t and the speed."""
    return dict(
        d=f"{record['loss_d_real'] + record['loss_d_fake']:.3f}",
        g=f"{record['loss_g']:.3f}",
        rec=f"{record['loss_recon']:.3f}",
        r_t=f"{record['r_t']:.2f}",
        ips=f"{record['images_per_s']:.1f}",
    )


def write_status(
    run_dir: Path,
    state: str,
    *,
    step: int,
    total_steps: int,
    world_size: int,
    device: str,
    precision: str,
    **extra,
) -> None:
    """status.json: the run's state ("running", "finished", "stopped", "failed") and where it is."""
    RunFolder(run_dir).write_status(
        {
            "state": state,
            "step": step,
            "total_steps": total_steps,
            "pid": os.getpid(),
            "world_size": world_size,
            "device": device,
            "precision": precision,
            "updated": time.time(),
            **extra,
        },
    )
