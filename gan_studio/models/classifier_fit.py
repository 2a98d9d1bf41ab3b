"""Train and score a classifier on in-memory uint8 images, with the budget fixed in optimisation steps.

The same function trains the evaluator (real train split) and the classifiers of the augmentation
experiment (real + synthetic mixes). Those comparisons are only fair when every arm gets the same
number of steps of the same batch size, whatever its data size, so the budget is ``steps``, never
epochs, and the function knows nothing about where its images came from.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from gan_studio.device import autocast, pick_device, resolve_precision
from gan_studio.models.classifier import EvaluatorClassifier

if TYPE_CHECKING:
    from torchvision.transforms import v2

AUGMENTATIONS = ("none", "classic")


def _check_images(images: torch.Tensor, labels: torch.Tensor, num_classes: int) -> None:
    if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(
            f"Expected uint8 images of shape [N, 3, H, W], got {images.dtype} {tuple(images.shape)}"
        )
    if labels.ndim != 1 or len(labels) != len(images):
        raise ValueError(
            f"Expected one label per image, got {tuple(labels.shape)} labels for {len(images)} images"
        )
    if len(labels) and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        raise ValueError(
            f"Labels must be class indices in [0, {num_classes - 1}], got {labels.min()}..{labels.max()}"
        )


def classic_augmentation(resolution: int) -> v2.Transform:
    """Flip, mild random-resized crop (80-100% of the area) and colour jitter, for one uint8 image."""
    from torchvision.transforms import v2  # imported when used: torchvision costs seconds of app start-up

    return v2.Compose(
        [
            v2.RandomHorizontalFlip(),
            v2.RandomResizedCrop(resolution, scale=(0.8, 1.0), antialias=True),
            v2.ColorJitter(brightness=0.2, contrast=0.2, saturation=0.2),
        ]
    )


class BatchSampler:
    """Reshuffled passes over the data, so every image is seen once before any is seen twice."""

    def __init__(self, n: int, batch_size: int, generator: torch.Generator):
        self.n, self.batch_size, self.generator = n, batch_size, generator
        self.order = torch.empty(0, dtype=torch.long)

    def next(self) -> torch.Tensor:
        while len(self.order) < self.batch_size:
            self.order = torch.cat([self.order, torch.randperm(self.n, generator=self.generator)])
        batch, self.order = self.order[: self.batch_size], self.order[self.batch_size :]
        return batch


@contextmanager
def seeded_classifier(
    *,
    class_names: Sequence[str],
    arch: str,
    resolution: int,
    stem_stride: int,
    seed: int,
    device: torch.device,
    lr: float,
    weight_decay: float,
    backbone_weights: str | os.PathLike | None = None,
    state: dict | None = None,
) -> Iterator[tuple[EvaluatorClassifier, torch.optim.AdamW]]:
    """A new classifier (from ``backbone_weights`` or a whole ``state`` when given) and its AdamW, both
    made under ``seed`` inside a forked RNG; the block that trains them runs under that RNG too.

    Every fit (the evaluator's fixed budget, the study's convergence rule) starts here, so a fit is a
    pure function of its inputs and ``seed``, and the caller's RNG state is back when the block ends."""
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        model = EvaluatorClassifier(
            arch=arch, class_names=list(class_names), resolution=resolution, stem_stride=stem_stride
        )
        if backbone_weights is not None:
            model.load_local_backbone_weights(backbone_weights)
        if state is not None:
            model.load_state_dict(state)
        model.to(device).train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay, foreach=True)
        yield model, optimizer


def train_classifier(
    images: torch.Tensor,
    labels: torch.Tensor | Sequence[int],
    *,
    class_names: Sequence[str],
    arch: str = "mobilenet_v3_small",
    resolution: int | None = None,
    steps: int = 1000,
    batch_size: int = 64,
    lr: float = 2e-3,
    weight_decay: float = 0.05,
    warmup_fraction: float = 0.05,
    label_smoothing: float = 0.1,
    augment: str = "classic",
    seed: int = 0,
    precision: str = "auto",
    device: str | torch.device | None = None,
    init_weights: str | os.PathLike | None = None,
    stem_stride: int = 2,
    progress: bool = True,
    on_step: Callable[[int, int], None] | None = None,
) -> EvaluatorClassifier:
    """Train an ``EvaluatorClassifier`` from scratch (or from ``init_weights``) for exactly ``steps`` steps.

    ``images`` are uint8 [N, 3, H, W]; ``resolution`` defaults to H. AdamW with linear warm-up then
    cosine decay, label smoothing, bf16 autocast where ``precision`` resolves to it. The result is
    a pure function of the inputs and ``seed`` (on a given machine); the caller's RNG state is untouched.
    ``on_step(done, steps)`` is called after every step.
    """
    labels = torch.as_tensor(labels, dtype=torch.long)
    _check_images(images, labels, len(class_names))
    if len(images) == 0:
        raise ValueError("Cannot train a classifier on zero images.")
    if steps < 1 or batch_size < 1:
        raise ValueError(f"steps and batch_size must be positive, got steps={steps}, batch_size={batch_size}")
    if augment not in AUGMENTATIONS:
        raise ValueError(f"Unknown augmentation {augment!r}: use one of {', '.join(AUGMENTATIONS)}")
    resolution = int(resolution or images.shape[-1])
    device = pick_device() if device is None else torch.device(device)
    precision = resolve_precision(precision, device)
    augmentation = classic_augmentation(resolution) if augment == "classic" else None

    with seeded_classifier(
        class_names=class_names, arch=arch, resolution=resolution, stem_stride=stem_stride, seed=seed,
        device=device, lr=lr, weight_decay=weight_decay, backbone_weights=init_weights,
    ) as (model, optimizer):  # fmt: skip
        warmup = max(1, round(steps * warmup_fraction))

        def lr_factor(step: int) -> float:  # linear warm-up, then cosine decay to zero at the last step
            if step < warmup:
                return (step + 1) / warmup
            return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, steps - warmup)))

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor)
        sampler = BatchSampler(len(images), min(batch_size, len(images)), torch.Generator().manual_seed(seed))

        bar = tqdm(range(steps), desc=f"train {arch}", unit="step", disable=not progress)
        for step in bar:
            idx = sampler.next()
            batch = images[idx]
            if augmentation is not None:
                batch = torch.stack([augmentation(image) for image in batch])
            x = model.prepare_uint8(batch)
            y = labels[idx].to(device)
            with autocast(device, precision):
                logits = model(x)
            loss = F.cross_entropy(logits.float(), y, label_smoothing=label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            if step % 10 == 0 or step == steps - 1:
                bar.set_postfix(loss=f"{loss.item():.3f}", lr=f"{scheduler.get_last_lr()[0]:.1e}")
            if on_step is not None:
                on_step(step + 1, steps)
        model.recalibrate_batchnorm(images, seed=seed)
    return model.eval()


def evaluate_classifier(
    model: EvaluatorClassifier,
    images: torch.Tensor,
    labels: torch.Tensor | Sequence[int],
    *,
    batch_size: int = 256,
    precision: str = "fp32",
    progress: bool = False,
) -> dict:
    """Accuracy, per-class accuracy (None for a class without images) and the confusion matrix.

    ``confusion_matrix[i][j]`` counts images of class i predicted as class j.
    """
    labels = torch.as_tensor(labels, dtype=torch.long)
    num_classes = len(model.class_names)
    _check_images(images, labels, num_classes)
    probs, _ = model.predict_uint8(images, batch_size, precision=precision, progress=progress, desc="score")
    predicted = probs.argmax(axis=1) if len(probs) else np.zeros(0, dtype=np.int64)
    truth = labels.numpy()
    from sklearn.metrics import confusion_matrix  # imported when used, like torchvision above

    matrix = confusion_matrix(truth, predicted, labels=list(range(num_classes)))
    per_class_count = matrix.sum(axis=1)
    return {
        "n": len(truth),
        "accuracy": float((predicted == truth).mean()) if len(truth) else None,
        "per_class_accuracy": {
            name: float(matrix[i, i] / per_class_count[i]) if per_class_count[i] else None
            for i, name in enumerate(model.class_names)
        },
        "per_class_count": {name: int(per_class_count[i]) for i, name in enumerate(model.class_names)},
        "confusion_matrix": matrix.tolist(),
    }
