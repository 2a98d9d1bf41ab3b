"""Squared MMD between the fakes of a class and its real images: a distribution target, which a
class drawn in one pose does not meet (a per-image target such as cross-entropy does)."""

from __future__ import annotations

from collections.abc import Callable

import torch


def mean_kernel(
    a: torch.Tensor, b: torch.Tensor, gamma: float | tuple[float, ...], unbiased: bool = False
) -> torch.Tensor:
    """Mean Gaussian kernel exp(-gamma |a_i - b_j|^2), summed over several gammas when given a
    tuple; ``unbiased`` leaves out i == j (a is b)."""
    d2 = torch.cdist(a, b) ** 2
    k = sum(torch.exp(-g * d2) for g in (gamma if isinstance(gamma, tuple) else (gamma,)))
    if not unbiased:
        return k.mean()
    n = len(a)
    return (k.sum() - k.diagonal().sum()) / (n * (n - 1))


def squared_mmd(
    fake: torch.Tensor,
    real: torch.Tensor,
    gamma: float | tuple[float, ...],
    real_term: torch.Tensor | None = None,
) -> torch.Tensor:
    """Squared MMD between two samples (unbiased within each); ``real_term`` when already known."""
    if real_term is None:
        real_term = mean_kernel(real, real, gamma, unbiased=len(real) > 1)
    return (
        mean_kernel(fake, fake, gamma, unbiased=len(fake) > 1)
        + real_term
        - 2.0 * mean_kernel(fake, real, gamma)
    )


def class_rows(x: torch.Tensor, labels: list[int] | torch.Tensor) -> list[tuple[int, torch.Tensor]]:
    """(class, its rows of ``x``) for each class in ``labels``, in ascending order: what
    ``x[labels == c]`` gives for each of ``labels.unique()``, taken as slices of runs of equal
    labels (one per class with --class-groups) from their host copy, so that nothing waits for the
    device (a boolean mask or ``unique`` on a GPU does)."""
    labels = labels if isinstance(labels, list) else labels.tolist()
    rows: dict[int, list[int]] = {}
    for i, c in enumerate(labels):
        rows.setdefault(c, []).append(i)
    found = []
    for c in sorted(rows):
        starts = [i for n, i in enumerate(rows[c]) if n == 0 or rows[c][n - 1] != i - 1]
        ends = [i + 1 for n, i in enumerate(rows[c]) if n + 1 == len(rows[c]) or rows[c][n + 1] != i + 1]
        parts = [x[a:b] for a, b in zip(starts, ends, strict=True)]
        found.append((c, parts[0] if len(parts) == 1 else torch.cat(parts)))
    return found


# Kernel widths of the per-class MMDs (shape and pose), as fractions of a class's median squared
# distance between its real images. A single wide kernel only matches the class's mean, which
# one blurred pose meets; narrow ones see whether each real pose has a fake near it.
CLASS_MMD_SCALES = (0.1, 0.3, 1.0)


def real_feature_bank(
    features: Callable[[torch.Tensor], torch.Tensor],
    images: torch.Tensor,
    labels: torch.Tensor,
    n_classes: int,
    device: torch.device,
) -> list[tuple[torch.Tensor, tuple[float, ...], torch.Tensor]]:
    """Per class: ``features`` of every real train image and its mirror image (training flips
    them), the class's kernel widths (``CLASS_MMD_SCALES``) and its constant real-real term."""
    feats, labels_all = [], []
    for i in range(0, len(images), 256):
        real = images[i : i + 256].float().div(127.5).sub(1.0)
        feats.append(torch.cat([features(real), features(real.flip(3))]))
        labels_all.append(labels[i : i + 256].repeat(2))
    bank, labels_all = torch.cat(feats).to(device), torch.cat(labels_all).to(device)
    classes = []
    for c in range(n_classes):
        real = bank[labels_all == c]
        d2 = torch.pdist(real) ** 2  # each pair once
        median = float(d2.median()) if len(d2) and d2.median() > 0 else 1.0
        gammas = tuple(1.0 / (2.0 * scale * median) for scale in CLASS_MMD_SCALES)
        classes.append((real, gammas, mean_kernel(real, real, gammas, unbiased=len(real) > 1)))
    return classes
