"""What a loss term is: a name, a weight, and one entry point per training phase.

After StyleGAN2-ADA's training/loss.py (one loss object, one entry point per phase), split by term:
the trainer keeps the hinge loss and the optimiser steps, and each optional term says what it adds
to D's and G's losses and which statistics it logs, so that adding one touches only its own module,
its TrainConfig options and the registry (``gan_studio.training.losses.TERM_TYPES``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import torch

from gan_studio.models.layers import fp32

# A term's loss for one phase and its statistics, keyed by their log.jsonl names.
TermResult = tuple[torch.Tensor, dict[str, torch.Tensor]]


@dataclass
class StepContext:
    """What one training step has made so far, for the terms to read."""

    real: torch.Tensor  # the real batch in [-1, 1]
    labels: torch.Tensor  # its classes
    z: torch.Tensor  # the fakes' latents
    fake: torch.Tensor  # G(z, fake_labels), not augmented
    fake_labels: torch.Tensor
    discriminator: torch.nn.Module  # D itself, unwrapped from DDP
    fake_classes: list[int]  # fake_labels on the host: per-class terms read them without a device sync
    real_aug: torch.Tensor | None = None  # the batches as D sees them (DiffAugment)
    fake_aug: torch.Tensor | None = None
    d_real: Any = None  # D's output on real_aug, with reconstructions (D's step)
    d_fake: Any = None  # D's output on fake_aug in G's step


@dataclass
class TermSetup:
    """What terms are built from besides the config: the train images and where the run computes."""

    images: torch.Tensor  # uint8 [N, 3, R, R], the in-memory train set
    labels: torch.Tensor
    n_classes: int
    device: torch.device
    precision: str
    guide: torch.nn.Module | None = None  # the frozen guide classifier, when the run has one


class LossTerm(Protocol):
    """One optional loss term. ``stats`` are the log.jsonl names it reports (0.0 while it is off)."""

    name: str
    weight: float
    stats: tuple[str, ...]
    # Computes its G loss from the raw fakes alone, as soon as G has drawn them (before D's step).
    uses_raw_fakes: bool

    def fake_labels(self, labels: torch.Tensor) -> torch.Tensor: ...

    def discriminator_loss(self, ctx: StepContext) -> TermResult | None: ...

    def generator_loss(self, ctx: StepContext) -> TermResult | None: ...


class Term:
    """Defaults for a term that takes no part in a phase; subclasses add ``check`` and ``build``."""

    name = ""
    stats: tuple[str, ...] = ()
    uses_raw_fakes = False

    def __init__(self, weight: float):
        self.weight = weight

    @classmethod
    def check(cls, config) -> None:
        """Refuse option values this term cannot train with (before anything is built)."""

    @classmethod
    def build(cls, config, setup: TermSetup) -> Term | None:
        """The term as ``config`` sets it, or None while it is off."""
        raise NotImplementedError

    def fake_labels(self, labels: torch.Tensor) -> torch.Tensor:
        return labels

    def discriminator_loss(self, ctx: StepContext) -> TermResult | None:
        return None

    def generator_loss(self, ctx: StepContext) -> TermResult | None:
        return None


def weighted_total(
    base: torch.Tensor, results: Iterable[tuple[LossTerm, TermResult | None]]
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``base`` plus each term's weighted loss, and the terms' statistics. Call it once all losses
    are computed: the sum's nodes then come last in the graph and the backward pass adds the
    gradients reaching G's fakes in the order of the terms' own nodes, as it always has."""
    total, stats = base, {}
    for term, result in results:
        if result is not None:
            loss, term_stats = result
            total = total + term.weight * loss
            stats.update(term_stats)
    return total, stats


def stat_vector(stats: dict[str, torch.Tensor], names: tuple[str, ...], zero: torch.Tensor) -> torch.Tensor:
    """The step's statistics as one float32 vector in ``names`` order (``zero`` for those it did not
    compute), made by one operator and left on the device: the trainer reads a log line's steps
    back in one copy (each ``.item()`` would make a GPU drain its queue)."""
    with torch.no_grad():
        values = [stats.get(name, zero) for name in names]
        return torch.stack([fp32(v if v.dim() == 0 else v.reshape(())) for v in values])
