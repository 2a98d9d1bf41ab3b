"""Precision, recall, density and coverage on k-NN manifolds of evaluator features.

FID folds fidelity and variety into one number; these separate them. Each real image gets a ball
reaching its k-th nearest real neighbour (and each generated image one reaching its k-th generated
neighbour):

- precision (Kynkaanniemi et al. 2019): share of generated images inside some real ball (fidelity);
- recall (same paper): share of real images inside some generated ball (variety);
- density (Naeem et al. 2020): how many real balls hold a generated image, on average, divided by k;
  robust to real outliers, and above 1 when samples crowd where real images are dense;
- coverage (same paper): share of real balls holding at least one generated image.
"""

from __future__ import annotations

import numpy as np
import torch

from gan_studio.metrics.context import MetricContext
from gan_studio.metrics.registry import register_metric

DEFAULT_K = 5


def pairwise_distances(a: np.ndarray, b: np.ndarray) -> torch.Tensor:
    """Euclidean distances [len(a), len(b)], in float64 so that the round-off of the fast matmul form
    (~1e-8 of the norms) stays far below any real neighbour distance."""
    return torch.cdist(
        torch.from_numpy(np.asarray(a, np.float64)), torch.from_numpy(np.asarray(b, np.float64))
    )


def knn_radii(features: np.ndarray, k: int) -> torch.Tensor:
    """Distance from each point to its k-th nearest *other* point of the same set."""
    distances = pairwise_distances(features, features)
    return distances.kthvalue(k + 1, dim=1).values  # the 1st smallest is the point itself (0)


def prdc(real: np.ndarray, fake: np.ndarray, k: int = DEFAULT_K) -> dict:
    """Precision/recall/density/coverage; ``k`` shrinks to fit small sets (None values below 2 points)."""
    k_used = min(k, len(real) - 1, len(fake) - 1)
    if k_used < 1:
        return {"precision": None, "recall": None, "density": None, "coverage": None, "k": 0}
    real_radii, fake_radii = knn_radii(real, k_used), knn_radii(fake, k_used)
    real_to_fake = pairwise_distances(real, fake)  # [n_real, n_fake]
    fake_in_real_ball = real_to_fake <= real_radii[:, None]
    real_in_fake_ball = real_to_fake <= fake_radii[None, :]
    return {
        "precision": float(fake_in_real_ball.any(dim=0).double().mean()),
        "recall": float(real_in_fake_ball.any(dim=1).double().mean()),
        "density": float(fake_in_real_ball.sum(dim=0).double().mean() / k_used),
        "coverage": float(fake_in_real_ball.any(dim=1).double().mean()),
        "k": k_used,
    }


@register_metric("prdc")
def precision_recall_density_coverage(ctx: MetricContext) -> dict:
    k = int(ctx.options.get("prdc_k", DEFAULT_K))
    real, fake = ctx.real_train, ctx.fake
    overall = prdc(real.features, fake.features, k)
    per_class = {
        name: prdc(real.features[real.labels == c], fake.features[fake.labels == c], k)
        for c, name in enumerate(ctx.class_names)
    }
    return {
        "label": f"precision / recall / density / coverage (k-NN manifolds, k={k}, evaluator features, vs real train)",
        **overall,
        "per_class": per_class,
    }
