"""Train a classifier until it stops improving on a validation fold: the study's one convergence rule.

A fixed step budget measures the budget as much as the data: an arm with twice the images needs more
steps to converge, and an arm stopped early looks worse for it. Every arm of a study therefore trains
under the same rule: evaluate on the real validation fold every ``eval_every`` steps, halve the
learning rate after ``patience // 2`` evaluations without improvement, stop after ``patience`` (both
counted only once it beats chance), never beyond ``max_steps``, and keep the weights of the best
evaluation. Only the validation fold decides when to stop; the test images are never seen here.

The training set can mix real and synthetic images three ways (``TrainingMix``): as one dataset, with
the synthetic images' loss down-weighted, or with a fixed share of synthetic images in every batch.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from gan_studio.device import autocast, pick_device, resolve_precision
from gan_studio.models.classifier import EvaluatorClassifier
from gan_studio.models.classifier_fit import (
    AUGMENTATIONS,
    BatchSampler,
    classic_augmentation,
    seeded_classifier,
)


@dataclass
class ConvergenceRule:
    """When every arm stops. The defaults suit a few hundred to a few thousand images at 32-128 px."""

    max_steps: int = 3000  # the generous cap; a run that reaches it is reported as capped
    eval_every: int = 50
    patience: int = 8  # evaluations without improvement before stopping
    min_steps: int = 200  # no stop before this (the first evaluations are noise)
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 0.05
    warmup_steps: int = 50
    label_smoothing: float = 0.1

    def validate(self) -> None:
        for name in ("max_steps", "eval_every", "patience", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(
                    f"The convergence rule's {name} must be at least 1, got {getattr(self, name)}."
                )
        if self.lr <= 0:
            raise ValueError(f"The learning rate must be positive, got {self.lr}.")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class TrainingMix:
    """What one arm trains on. ``synthetic_share`` set: each batch holds that share of synthetic
    images whatever their count; unset: one dataset, each synthetic image's loss times ``synthetic_weight``."""

    real_images: torch.Tensor  # uint8 [N, 3, R, R]
    real_labels: torch.Tensor
    synthetic_images: torch.Tensor | None = None
    synthetic_labels: torch.Tensor | None = None
    augment: str = "none"  # none | classic (applied to real and synthetic images alike)
    synthetic_weight: float = 1.0
    synthetic_share: float | None = None

    def __post_init__(self) -> None:
        if self.augment not in AUGMENTATIONS:
            raise ValueError(f"Unknown augmentation {self.augment!r}: use one of {', '.join(AUGMENTATIONS)}")
        if self.synthetic_images is None:
            r = self.real_images.shape[-1]
            self.synthetic_images = torch.zeros(0, 3, r, r, dtype=torch.uint8)
            self.synthetic_labels = torch.zeros(0, dtype=torch.long)
        if self.synthetic_share is not None and not 0 < self.synthetic_share < 1:
            raise ValueError(f"synthetic_share must be in (0, 1), got {self.synthetic_share}")

    @property
    def n_real(self) -> int:
        return len(self.real_images)

    @property
    def n_synthetic(self) -> int:
        return len(self.synthetic_images)


def learning_threshold(val_labels: torch.Tensor, z: float = 2.0) -> float:
    """The validation accuracy a fit must exceed to count as learning: chance (always answering the
    commonest class) plus ``z`` binomial standard errors, since on 100 validation images a network
    that learned nothing reads 10% +- 3% on ten balanced classes."""
    labels = torch.as_tensor(val_labels, dtype=torch.long)
    chance = float(torch.bincount(labels).max()) / len(labels)
    return chance + z * math.sqrt(chance * (1 - chance) / len(labels))


@dataclass
class FitResult:
    model: EvaluatorClassifier
    steps: int  # steps trained
    best_step: int  # the step whose weights were kept
    best_val_accuracy: float
    best_val_loss: float
    stopped_by: str  # "patience" | "cap"
    history: list[dict]  # one entry per evaluation: step, val_accuracy, val_loss, lr


@torch.no_grad()
def validation_scores(
    model: EvaluatorClassifier, images: torch.Tensor, labels: torch.Tensor, precision: str, batch: int = 256
) -> tuple[float, float]:
    """(accuracy, mean cross-entropy) on uint8 images, in eval mode."""
    was_training = model.training
    model.eval()
    correct, loss = 0, 0.0
    try:
        for start in range(0, len(images), batch):
            x = model.prepare_uint8(images[start : start + batch])
            y = labels[start : start + batch].to(model.device)
            with autocast(model.device, precision):
                logits = model(x)
            logits = logits.float()
            correct += int((logits.argmax(1) == y).sum())
            loss += float(F.cross_entropy(logits, y, reduction="sum"))
    finally:
        model.train(was_training)
    return correct / len(images), loss / len(images)


class _Batches:
    """Batches of (uint8 images, labels, per-image loss weights) following a ``TrainingMix``."""

    def __init__(self, mix: TrainingMix, batch_size: int, generator: torch.Generator):
        self.mix = mix
        if mix.synthetic_share is not None and mix.n_synthetic:
            n_syn = max(1, round(batch_size * mix.synthetic_share))
            self.real = BatchSampler(mix.n_real, min(batch_size - n_syn, mix.n_real), generator)
            self.syn = BatchSampler(mix.n_synthetic, min(n_syn, mix.n_synthetic), generator)
            self.pooled = None
        else:
            self.pooled = BatchSampler(
                mix.n_real + mix.n_synthetic, min(batch_size, mix.n_real + mix.n_synthetic), generator
            )
            self.images = torch.cat([mix.real_images, mix.synthetic_images])
            self.labels = torch.cat([mix.real_labels, mix.synthetic_labels])
            self.weights = torch.cat(
                [torch.ones(mix.n_real), torch.full((mix.n_synthetic,), float(mix.synthetic_weight))]
            )

    def next(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if self.pooled is not None:
            idx = self.pooled.next()
            return self.images[idx], self.labels[idx], self.weights[idx]
        real, syn = self.real.next(), self.syn.next()
        images = torch.cat([self.mix.real_images[real], self.mix.synthetic_images[syn]])
        labels = torch.cat([self.mix.real_labels[real], self.mix.synthetic_labels[syn]])
        weights = torch.cat(
            [torch.ones(len(real)), torch.full((len(syn),), float(self.mix.synthetic_weight))]
        )
        return images, labels, weights


def _train_step(
    model, optimizer, batches: _Batches, augmentation, rule: ConvergenceRule, lr: float, precision
):
    """One optimiser step on the next batch, each image's loss weighted by its source's weight."""
    for group in optimizer.param_groups:
        group["lr"] = lr
    images, labels, weights = batches.next()
    if augmentation is not None:
        images = torch.stack([augmentation(image) for image in images])
    x = model.prepare_uint8(images)
    device = x.device
    with autocast(device, precision):
        logits = model(x)
    per_image = F.cross_entropy(
        logits.float(), labels.to(device), label_smoothing=rule.label_smoothing, reduction="none"
    )
    weights = weights.to(device)
    loss = (per_image * weights).sum() / weights.sum()
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def fit_to_convergence(
    mix: TrainingMix,
    val_images: torch.Tensor,
    val_labels: torch.Tensor,
    *,
    class_names: Sequence[str],
    rule: ConvergenceRule,
    arch: str = "mobilenet_v3_small",
    stem_stride: int = 2,
    seed: int = 0,
    precision: str = "auto",
    device: str | torch.device | None = None,
    init_state: dict | None = None,
    progress: bool = False,
    desc: str = "arm",
) -> FitResult:
    """Train from scratch (or from ``init_state``) under ``rule``; returns the best-validation weights.

    Deterministic for given inputs and ``seed`` on one machine; the caller's RNG state is untouched.
    """
    rule.validate()
    if mix.n_real + mix.n_synthetic == 0:
        raise ValueError("Cannot train a classifier on zero images.")
    if len(val_images) == 0:
        raise ValueError("The convergence rule needs at least one validation image.")
    device = pick_device() if device is None else torch.device(device)
    precision = resolve_precision(precision, device)
    resolution = int(mix.real_images.shape[-1])
    augmentation = classic_augmentation(resolution) if mix.augment == "classic" else None
    val_labels = torch.as_tensor(val_labels, dtype=torch.long)
    learned = learning_threshold(val_labels)

    with seeded_classifier(
        class_names=class_names, arch=arch, resolution=resolution, stem_stride=stem_stride, seed=seed,
        device=device, lr=rule.lr, weight_decay=rule.weight_decay, state=init_state,
    ) as (model, optimizer):  # fmt: skip
        batches = _Batches(mix, rule.batch_size, torch.Generator().manual_seed(seed))
        lr_scale, best, best_state, since_best = 1.0, None, None, 0
        history: list[dict] = []
        stopped_by = "cap"
        bar = tqdm(total=rule.max_steps, desc=desc, unit="step", disable=not progress, leave=False)
        step = 0
        while step < rule.max_steps:
            warm = min(1.0, (step + 1) / max(1, rule.warmup_steps))
            _train_step(model, optimizer, batches, augmentation, rule, rule.lr * lr_scale * warm, precision)
            step += 1
            bar.update(1)
            if step % rule.eval_every and step != rule.max_steps:
                continue
            accuracy, val_loss = validation_scores(model, val_images, val_labels, precision)
            history.append(
                {"step": step, "val_accuracy": accuracy, "val_loss": val_loss, "lr": rule.lr * lr_scale}
            )
            bar.set_postfix(val=f"{accuracy:.3f}", loss=f"{val_loss:.3f}")
            # Better accuracy wins; on a tie (small validation folds tie often) the lower loss.
            if best is None or (accuracy, -val_loss) > (best[1], -best[2]):
                best, best_state, since_best = (
                    (step, accuracy, val_loss),
                    copy.deepcopy(model.state_dict()),
                    0,
                )
                continue
            # A fit still at chance has not started to learn (a slow start, not a plateau): neither
            # the learning-rate halving nor patience counts until it beats chance by more than luck,
            # else it would be scored as a 10-15% "converged" arm, or left with too small a rate to
            # ever start.
            if best[1] <= learned:
                continue
            since_best += 1
            if since_best % max(1, rule.patience // 2) == 0:
                lr_scale *= 0.5
            if since_best >= rule.patience and step >= rule.min_steps:
                stopped_by = "patience"
                break
        bar.close()
        model.load_state_dict(best_state)
    if not math.isfinite(best[2]):
        raise FloatingPointError(f"{desc}: the validation loss is not finite; lower the learning rate.")
    return FitResult(
        model=model.eval(),
        steps=step,
        best_step=best[0],
        best_val_accuracy=best[1],
        best_val_loss=best[2],
        stopped_by=stopped_by,
        history=history,
    )
