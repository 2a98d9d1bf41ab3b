"""The optional loss terms, one module each, and the registry the trainer builds them from.

Adding a term: a module with a ``Term`` subclass (``name``, ``stats``, ``check``, ``build`` and the
phases it takes part in), its TrainConfig option(s), and its line in ``TERM_TYPES``.
"""

from __future__ import annotations

from gan_studio.training.losses.base import (
    LossTerm,
    StepContext,
    Term,
    TermResult,
    TermSetup,
    stat_vector,
    weighted_total,
)
from gan_studio.training.losses.class_loss import ClassLoss
from gan_studio.training.losses.class_mmd import LayoutMMD, PoseMMD, ShapeMMD
from gan_studio.training.losses.guide import GuideLoss, load_guide
from gan_studio.training.losses.mode_seeking import ModeSeeking
from gan_studio.training.losses.reconstruction import Reconstruction

__all__ = [
    "TERM_TYPES",
    "LossTerm",
    "StepContext",
    "Term",
    "TermResult",
    "TermSetup",
    "build_terms",
    "check_config",
    "load_guide",
    "stat_names",
    "stat_vector",
    "weighted_total",
]

# Every term, in the order each phase runs them. The order is part of a run's trajectory: terms
# draw random numbers (the guide's augmentation) and add gradients in it.
TERM_TYPES: tuple[type[Term], ...] = (
    Reconstruction,
    ClassLoss,
    ModeSeeking,
    ShapeMMD,
    PoseMMD,
    LayoutMMD,
    GuideLoss,
)

# The hinge loss's statistics, which the trainer itself computes and every step logs.
HINGE_STATS = ("loss_d_real", "loss_d_fake", "loss_g", "logits_real", "logits_fake", "r_t")

# log.jsonl's columns in the order runs have always written them; statistics of later terms follow.
_FIRST_COLUMNS = (
    "loss_d_real",
    "loss_d_fake",
    "loss_recon",
    "loss_g",
    "logits_real",
    "logits_fake",
    "r_t",
    "loss_ms",
    "loss_cls_real",
    "loss_cls_fake",
    "acc_cls_real",
    "loss_shape_mmd",
    "loss_pose_mmd",
    "loss_guide",
    "acc_guide_fake",
)


def check_config(config) -> None:
    """Each term's refusals of option values, before anything is built."""
    for kind in TERM_TYPES:
        kind.check(config)


def build_terms(config, setup: TermSetup) -> dict[str, LossTerm]:
    """The terms ``config`` switches on, by name, in ``TERM_TYPES`` order."""
    terms = (kind.build(config, setup) for kind in TERM_TYPES)
    return {term.name: term for term in terms if term is not None}


def stat_names() -> tuple[str, ...]:
    """Every statistic a step reports (a term that is off reports 0.0), in log.jsonl's order."""
    names = HINGE_STATS + tuple(name for kind in TERM_TYPES for name in kind.stats)
    last = len(_FIRST_COLUMNS)
    return tuple(sorted(names, key=lambda n: _FIRST_COLUMNS.index(n) if n in _FIRST_COLUMNS else last))
