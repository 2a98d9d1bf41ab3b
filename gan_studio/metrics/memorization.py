"""Memorisation: is a generated image just a copy of a training image?

With a few dozen images per class a GAN can learn to replay its training set, which every
distribution metric rewards. For each generated image we take the distance (evaluator features) to
its nearest real *training* image and divide by the typical real-to-real nearest-neighbour distance
(the median over training images of the distance to their nearest other training image). A ratio
well below 1 means "closer to a training image than real images are to each other": a near-copy.
"""

from __future__ import annotations

import numpy as np

from gan_studio.metrics.context import MetricContext
from gan_studio.metrics.prdc import pairwise_distances
from gan_studio.metrics.registry import register_metric

NEAR_COPY_THRESHOLD = 0.5
WORST_PAIRS = 8


def copy_ratios(real: np.ndarray, fake: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """(ratio per generated image, index of its nearest real image, typical real-to-real NN distance)."""
    if len(real) < 2:
        raise ValueError(
            "Memorisation needs at least two real training images to know their typical spacing."
        )
    real_to_real = pairwise_distances(real, real).fill_diagonal_(float("inf")).min(dim=1).values
    positive = real_to_real[real_to_real > 0]  # exact duplicates in the training set would make the scale 0
    typical = float(positive.median()) if len(positive) else 0.0
    if typical == 0.0:
        raise ValueError("All real training images have identical features; memorisation cannot be measured.")
    if not len(fake):
        return np.zeros(0), np.zeros(0, np.int64), typical
    nearest = pairwise_distances(fake, real).min(dim=1)
    return (nearest.values / typical).numpy(), nearest.indices.numpy(), typical


@register_metric("memorization")
def memorization(ctx: MetricContext) -> dict:
    threshold = float(ctx.options.get("near_copy_threshold", NEAR_COPY_THRESHOLD))
    real, fake = ctx.real_train, ctx.fake
    ratios, nearest, typical = copy_ratios(real.features, fake.features)
    near_copy = ratios < threshold
    per_class = {}
    for c, name in enumerate(ctx.class_names):
        mask = fake.labels == c
        per_class[name] = {
            "near_copy_fraction": float(near_copy[mask].mean()) if mask.any() else None,
            "min_ratio": float(ratios[mask].min()) if mask.any() else None,
            "median_ratio": float(np.median(ratios[mask])) if mask.any() else None,
        }
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
        "x the typical real-to-real nearest-neighbour distance",
        "value": float(near_copy.mean()) if len(ratios) else None,
        "threshold": threshold,
        "typical_real_nn_distance": typical,
        "median_ratio": float(np.median(ratios)) if len(ratios) else None,
        "n_near_copies": int(near_copy.sum()),
        "worst_pairs": worst,
        "per_class": per_class,
    }
