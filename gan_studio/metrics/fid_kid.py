"""FID and KID in the evaluator's feature space (torchmetrics), and standard Inception FID when possible.

Inception-v3 weights cannot be downloaded here, so the default feature space is the evaluator's:
these numbers rank generators of the *same* dataset against each other and are labelled
"(evaluator features)" everywhere. They are not comparable with published (Inception) FIDs.

FID is biased upwards at small sample sizes and few-shot classes are small, so every result comes
with the same statistic between real test and real train images: the value two real samples of
these sizes already reach. KID is unbiased, which is why per-class numbers use KID, not FID.
"""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

import torch
from torch import nn

from gan_studio.metrics.context import MetricContext
from gan_studio.metrics.registry import register_metric
from gan_studio.models.classifier import EvaluatorClassifier

KID_MAX_SUBSET_SIZE = 1000  # the usual value for 50k-image sets; small sets cap it at their size
KID_SUBSETS = 100
INCEPTION_WEIGHTS_FILE = "weights-inception-2015-12-05-6726825d.pth"  # torch-fidelity's file name


class EvaluatorFeatureExtractor(nn.Module):
    """uint8 images -> evaluator features: the ``feature=`` module torchmetrics calls. Always in eval mode."""

    def __init__(self, evaluator: EvaluatorClassifier):
        super().__init__()
        self.evaluator = evaluator.eval()
        self.num_features = evaluator.num_features

    def train(self, mode: bool = True) -> EvaluatorFeatureExtractor:
        return super().train(False)  # whatever is asked: BatchNorm statistics must stay frozen

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.evaluator.features(self.evaluator.prepare_uint8(images)).float()


def kid_subset_size(n_real: int, n_fake: int, max_size: int = KID_MAX_SUBSET_SIZE) -> int:
    """KID's subset size: as large as allowed, never more than either set holds (0 when KID is undefined)."""
    size = min(max_size, n_real, n_fake)
    return size if size >= 2 else 0


def _feed(metric, real: torch.Tensor, fake: torch.Tensor, batch_size: int):
    for images, is_real in ((real, True), (fake, False)):
        for start in range(0, len(images), batch_size):
            metric.update(images[start : start + batch_size], real=is_real)
    return metric


def frechet_distance(
    feature: nn.Module | int,
    real: torch.Tensor,
    fake: torch.Tensor,
    *,
    batch_size: int = 256,
    device: torch.device | None = None,
    **kwargs,
) -> float | None:
    """FID between two uint8 image sets with torchmetrics; None when either set has fewer than 2 images.

    ``feature`` is a feature-extractor module, or an Inception feature size (then ``kwargs`` must
    name local weights: ``feature_extractor_weights_path``)."""
    if min(len(real), len(fake)) < 2:
        return None
    from torchmetrics.image.fid import FrechetInceptionDistance  # seconds to import: only when measured

    if device is None:
        device = next(feature.parameters()).device if isinstance(feature, nn.Module) else torch.device("cpu")
    metric = _feed(FrechetInceptionDistance(feature=feature, **kwargs).to(device), real, fake, batch_size)
    return max(0.0, float(metric.compute()))  # tiny negatives are round-off of an exact 0


def kernel_distance(
    feature: nn.Module, real: torch.Tensor, fake: torch.Tensor, *, seed: int = 0, batch_size: int = 256
) -> dict:
    """KID mean/std over random subsets (seeded, so reports are reproducible); None values when undefined."""
    subset_size = kid_subset_size(len(real), len(fake))
    if not subset_size:
        return {"mean": None, "std": None, "subset_size": 0, "subsets": 0}
    from torchmetrics.image.kid import KernelInceptionDistance

    with warnings.catch_warnings():  # "saves all features in a buffer": intended, our sets are small
        warnings.filterwarnings("ignore", message=".*will save all extracted features", category=UserWarning)
        metric = KernelInceptionDistance(feature=feature, subsets=KID_SUBSETS, subset_size=subset_size)
    metric = _feed(metric.to(next(feature.parameters()).device), real, fake, batch_size)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        mean, std = metric.compute()
    return {"mean": float(mean), "std": float(std), "subset_size": subset_size, "subsets": KID_SUBSETS}


def inception_weights_path() -> Path:
    """Where torch-fidelity (and so torchmetrics) caches its Inception weights: ``$TORCH_HOME/hub/checkpoints``."""
    return Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_WEIGHTS_FILE


def inception_unavailable_reason() -> str | None:
    """Why standard Inception FID cannot be computed offline, or None when it can."""
    if importlib.util.find_spec("torch_fidelity") is None:
        return (
            "torch-fidelity is not installed (pip install torch-fidelity, then place the Inception weights)"
        )
    if not inception_weights_path().is_file():
        return (
            f"Inception weights not found at '{inception_weights_path()}' and they cannot be downloaded here; "
            f"copy {INCEPTION_WEIGHTS_FILE} there (or set TORCH_HOME) to get standard FID"
        )
    return None


@register_metric("fid")
def fid_evaluator_features(ctx: MetricContext) -> dict:
    extractor = EvaluatorFeatureExtractor(ctx.evaluator)
    real, fake, test = ctx.real_train, ctx.fake, ctx.real_test
    value = frechet_distance(extractor, real.images, fake.images, batch_size=ctx.batch_size)
    return {
        "label": "FID (evaluator features), generated vs real train images",
        "value": value,
        "reason": None if value is not None else "needs at least 2 real and 2 generated images",
        "n_real": len(real),
        "n_fake": len(fake),
        "real_baseline": frechet_distance(extractor, real.images, test.images, batch_size=ctx.batch_size)
        if test is not None
        else None,
        "real_baseline_label": f"real test vs real train ({len(test) if test else 0} test images), what two real "
        "samples reach: FID grows as samples shrink",
    }


@register_metric("kid")
def kid_evaluator_features(ctx: MetricContext) -> dict:
    extractor = EvaluatorFeatureExtractor(ctx.evaluator)
    real, fake, test = ctx.real_train, ctx.fake, ctx.real_test
    kid = kernel_distance(extractor, real.images, fake.images, seed=ctx.seed, batch_size=ctx.batch_size)
    per_class = {}
    for c, name in enumerate(ctx.class_names):
        real_c, fake_c = real.of_class(c), fake.of_class(c)
        per_class[name] = kernel_distance(
            extractor, real_c.images, fake_c.images, seed=ctx.seed, batch_size=ctx.batch_size
        )
        if test is not None:
            test_c = test.of_class(c)
            baseline = kernel_distance(
                extractor, real_c.images, test_c.images, seed=ctx.seed, batch_size=ctx.batch_size
            )
            per_class[name]["real_baseline"] = baseline["mean"]
    baseline = (
        kernel_distance(extractor, real.images, test.images, seed=ctx.seed, batch_size=ctx.batch_size)
        if test is not None
        else None
    )
    return {
        "label": "KID (evaluator features), generated vs real train images",
        "value": kid["mean"],
        **kid,
        "reason": None if kid["mean"] is not None else "needs at least 2 real and 2 generated images",
        "real_baseline": baseline["mean"] if baseline else None,
        "real_baseline_label": "real test vs real train, the value two real samples reach",
        "per_class": per_class,
    }


@register_metric("inception_fid")
def inception_fid(ctx: MetricContext) -> dict:
    label = "FID (Inception-v3, standard)"
    reason = inception_unavailable_reason()
    if reason is not None:
        return {"label": label, "value": None, "reason": reason}
    value = frechet_distance(
        2048,
        ctx.real_train.images,
        ctx.fake.images,
        batch_size=ctx.batch_size,
        device=ctx.evaluator.device,
        feature_extractor_weights_path=str(inception_weights_path()),
    )
    return {
        "label": label,
        "value": value,
        "reason": None,
        "n_real": len(ctx.real_train),
        "n_fake": len(ctx.fake),
    }
