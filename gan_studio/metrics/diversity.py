"""Intra-class diversity of generated images, next to the same number for the real training images.

Few-shot generators fail by collapsing each class onto a handful of images, which per-class
diversity exposes directly. LPIPS (a perceptual distance) is used when its ImageNet backbone is
already on disk; otherwise the mean pairwise distance of evaluator features stands in, clearly
labelled. Either way the real images' value is the yardstick: a ratio near 1 is real-like variety.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from gan_studio.metrics.context import MetricContext
from gan_studio.metrics.registry import register_metric
from gan_studio.perceptual import backbone_path, load_lpips, lpips_available

LPIPS_NETS = ("alex", "vgg")  # alex first: the LPIPS authors' choice for a forward metric
MAX_PAIRS = 200  # per class and image set; all pairs when there are fewer
LPIPS_MIN_SIZE = 64  # AlexNet's stride-4 stem leaves ~1 pixel of a 32 px image at its deepest layer


def sample_pairs(n: int, max_pairs: int, generator: torch.Generator) -> torch.Tensor:
    """[P, 2] index pairs i < j: all of them, or ``max_pairs`` distinct ones drawn at random."""
    pairs = torch.combinations(torch.arange(n), r=2)
    if len(pairs) > max_pairs:
        pairs = pairs[torch.randperm(len(pairs), generator=generator)[:max_pairs]]
    return pairs


def mean_feature_distance(features: np.ndarray) -> float | None:
    if len(features) < 2:
        return None
    return float(torch.pdist(torch.from_numpy(np.asarray(features, np.float64))).mean())


@torch.no_grad()
def mean_lpips(
    model: torch.nn.Module, images: torch.Tensor, pairs: torch.Tensor, batch_size: int = 64
) -> float | None:
    if not len(pairs):
        return None
    device = next(model.parameters()).device
    distances = []
    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start : start + batch_size]
        a, b = (images[chunk[:, i]].to(device).float().div(127.5).sub(1) for i in (0, 1))
        if a.shape[-1] < LPIPS_MIN_SIZE:
            a, b = (
                F.interpolate(x, size=LPIPS_MIN_SIZE, mode="bilinear", align_corners=False) for x in (a, b)
            )
        distances.append(model(a, b).flatten().cpu())
    return float(torch.cat(distances).mean())


def _ratio(generated: float | None, real: float | None) -> float | None:
    return generated / real if generated is not None and real else None


def _mean(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return float(np.mean(known)) if known else None


@register_metric("diversity")
def intra_class_diversity(ctx: MetricContext) -> dict:
    net = next((net for net in LPIPS_NETS if lpips_available(net)), None)
    model = load_lpips(net).to(ctx.evaluator.device) if net else None
    generator = torch.Generator().manual_seed(ctx.seed)
    per_class = {}
    for c, name in enumerate(ctx.class_names):
        row = {}
        for key, subset in (("generated", ctx.fake.of_class(c)), ("real", ctx.real_train.of_class(c))):
            if model is not None:
                row[key] = mean_lpips(model, subset.images, sample_pairs(len(subset), MAX_PAIRS, generator))
            else:
                row[key] = mean_feature_distance(subset.features)
        row["ratio"] = _ratio(row["generated"], row["real"])
        per_class[name] = row
    generated = _mean([row["generated"] for row in per_class.values()])
    real = _mean([row["real"] for row in per_class.values()])
    if model is not None:
        label, method, reason = f"diversity: mean intra-class LPIPS ({net})", f"lpips-{net}", None
    else:
        label, method = "diversity (mean pairwise evaluator-feature distance)", "feature-distance"
        reason = f"LPIPS backbone weights not found (looked for '{backbone_path(LPIPS_NETS[0])}')"
    return {
        "label": label,
        "method": method,
        "reason": reason,
        "value": generated,
        "real_value": real,
        "ratio": _ratio(generated, real),
        "ratio_label": "generated / real train diversity (1 = real-like variety, near 0 = collapse)",
        "per_class": per_class,
    }
