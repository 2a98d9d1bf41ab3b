"""Memorisation: is a generated image just a copy of a training image?

With a few dozen images per class a GAN can learn to replay its training set, which every
distribution metric rewards. For each generated image we take the distance (evaluator features) to
its nearest real *training* image and divide by the typical spacing of its class: the median over
that class's training images of the distance to their nearest other training image of the class. A
ratio well below 1 means "closer to a training image than real images of the class are to each
other": a near-copy. The scale is per class because classes differ in spread: photos of a compact,
symmetric part (a screw seen from any side) sit close together, and one global scale flagged 13% of
the held-out demo photos of the vise screw as "copies". Held-out real images, scored the same way,
give the floor that a generator which copies nothing reaches (``real_baseline``).
"""

from __future__ import annotations

import numpy as np

from gan_studio.metrics.context import MetricContext
from gan_studio.metrics.prdc import pairwise_distances
from gan_studio.metrics.registry import register_metric

NEAR_COPY_THRESHOLD = 0.5
WORST_PAIRS = 8


def typical_spacing(real: np.ndarray) -> float:
    """Median distance from each image to its nearest other image (0 if it cannot be told)."""
    if len(real) < 2:
        return 0.0
    real_to_real = pairwise_distances(real, real).fill_diagonal_(float("inf")).min(dim=1).values
    positive = real_to_real[real_to_real > 0]  # exact duplicates in the training set would make the scale 0
    return float(positive.median()) if len(positive) else 0.0


def class_spacings(real: np.ndarray, real_labels) -> dict[int, float]:
    """Typical spacing of each class's training images; classes with fewer than two distinct images
    are left out (they fall back to the global spacing)."""
    real, real_labels = np.asarray(real), np.asarray(real_labels)
    spacings = {int(c): typical_spacing(real[real_labels == c]) for c in np.unique(real_labels)}
    return {c: v for c, v in spacings.items() if v > 0}


def copy_ratios(
    real: np.ndarray, fake: np.ndarray, real_labels=None, fake_labels=None
) -> tuple[np.ndarray, np.ndarray, float]:
    """(ratio per generated image, index of its nearest real image, global typical spacing).

    With both label arrays, each generated image's distance is divided by the spacing of its own
    (intended) class; without them, by the spacing of all training images together.
    """
    if len(real) < 2:
        raise ValueError(
            "Memorisation needs at least two real training images to know their typical spacing."
        )
    typical = typical_spacing(real)
    if typical == 0.0:
        raise ValueError("All real training images have identical features; memorisation cannot be measured.")
    if not len(fake):
        return np.zeros(0), np.zeros(0, np.int64), typical
    scale = np.full(len(fake), typical)
    if real_labels is not None and fake_labels is not None:
        spacings = class_spacings(real, real_labels)
        scale = np.array([spacings.get(int(c), typical) for c in np.asarray(fake_labels)])
    nearest = pairwise_distances(fake, real).min(dim=1)
    return nearest.values.numpy() / scale, nearest.indices.numpy(), typical


@register_metric("memorization")
def memorization(ctx: MetricContext) -> dict:
    threshold = float(ctx.options.get("near_copy_threshold", NEAR_COPY_THRESHOLD))
    real, fake, test = ctx.real_train, ctx.fake, ctx.real_test
    ratios, nearest, typical = copy_ratios(real.features, fake.features, real.labels, fake.labels)
    near_copy = ratios < threshold
    spacings = class_spacings(real.features, real.labels)
    test_copy = None
    if test is not None and len(test):
        test_copy = copy_ratios(real.features, test.features, real.labels, test.labels)[0] < threshold
    per_class = {}
    for c, name in enumerate(ctx.class_names):
        mask = fake.labels == c
        per_class[name] = {
            "near_copy_fraction": float(near_copy[mask].mean()) if mask.any() else None,
            "min_ratio": float(ratios[mask].min()) if mask.any() else None,
            "median_ratio": float(np.median(ratios[mask])) if mask.any() else None,
            "spacing": spacings.get(c, typical),
        }
        if test_copy is not None:
            test_mask = test.labels == c
            per_class[name]["real_near_copy_fraction"] = (
                float(test_copy[test_mask].mean()) if test_mask.any() else None
            )
    worst = [
        {
            "fake_index": int(i),
            "real_index": int(nearest[i]),
            "real_name": real.names[nearest[i]] if real.names is not None else None,
            "class": ctx.class_names[int(fake.labels[i])],
            "ratio": float(ratios[i]),
        }
        for i in np.argsort(ratios, kind="stable")[:WORST_PAIRS]
    ]
    return {
        "label": "near-copies of training images (memorisation, evaluator features)",
        "description": f"share of generated images whose distance to the nearest training image is below {threshold} "
        "x the typical nearest-neighbour distance between training images of their class",
        "value": float(near_copy.mean()) if len(ratios) else None,
        "real_baseline": float(test_copy.mean()) if test_copy is not None else None,
        "real_baseline_label": "share of held-out real test images that the same rule calls near-copies "
        "(what a generator that copies nothing reaches)",
        "threshold": threshold,
        "typical_real_nn_distance": typical,
        "median_ratio": float(np.median(ratios)) if len(ratios) else None,
        "n_near_copies": int(near_copy.sum()),
        "worst_pairs": worst,
        "per_class": per_class,
    }
