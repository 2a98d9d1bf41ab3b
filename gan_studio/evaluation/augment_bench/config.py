"""The bench's settings, checked before any model is loaded so a typo fails in a second, not an hour."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

from gan_studio.evaluation.augment_bench.arms import DEFAULT_RATIOS
from gan_studio.models.classifier import ARCHITECTURES


@dataclass
class AugmentBenchConfig:
    """Every setting of one bench, as the augment-bench command (which the Evaluate tab runs) passes them."""

    ckpt: str | os.PathLike
    out: str | os.PathLike
    data: str | None = None  # default: the dataset recorded in the run's run.json
    split: str | os.PathLike | None = None  # default: the run's split.json
    arms: str | Sequence[str] = "all"  # see parse_arms
    ratios: Sequence[float] = DEFAULT_RATIOS
    seeds: int = 3  # bench seeds 0..seeds-1: classifier initialisation, batch order and synthetic draw
    train_per_class: int | None = None  # None: exactly the real images the GAN trained on
    evaluator: str | os.PathLike | None = None  # needed only by real+syn_filtered
    filter_confidence: float = 0.8
    filter_max_factor: int = 20  # at most this many candidates per synthetic image a class needs
    steps: int = 1500
    batch_size: int = 64
    lr: float = 2e-3
    arch: str = "mobilenet_v3_small"
    truncation: float = 1.0
    sample_seed: int = 0
    device: str = "auto"
    precision: str = "auto"

    def validate(self) -> None:
        if self.seeds < 1:
            raise ValueError(f"--seeds must be at least 1, got {self.seeds}")
        if self.train_per_class is not None and self.train_per_class < 1:
            raise ValueError(f"--train-per-class must be at least 1, got {self.train_per_class}")
        if self.steps < 1 or self.batch_size < 1:
            raise ValueError(f"--steps and --batch must be positive, got {self.steps} and {self.batch_size}")
        if not 0 < self.filter_confidence <= 1:
            raise ValueError(f"--filter-confidence must be in (0, 1], got {self.filter_confidence}")
        if self.filter_max_factor < 1:
            raise ValueError(f"--filter-max-factor must be at least 1, got {self.filter_max_factor}")
        if self.arch not in ARCHITECTURES:
            raise ValueError(f"Unknown --arch {self.arch!r}: use one of {', '.join(ARCHITECTURES)}")
        if not 0 < self.truncation <= 1.0:
            raise ValueError(f"--truncation must be in (0, 1], got {self.truncation}")
