"""What every metric reads: real and synthetic images with their evaluator features and probabilities.

Features are computed once, here, so all metrics agree on the feature space and none repeats the work
(FID/KID are the exception: torchmetrics runs the evaluator itself through a feature-extractor module).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from gan_studio.models.classifier import EvaluatorClassifier


@dataclass
class FeatureSet:
    """Images with their class labels (for synthetic images: the class asked for) and evaluator outputs."""

    images: torch.Tensor  # uint8 [N, 3, R, R]
    labels: np.ndarray  # int64 [N]
    features: np.ndarray  # float32 [N, D] penultimate-layer features
    probs: np.ndarray  # float32 [N, C] class probabilities
    names: list[str] | None = None  # e.g. dataset-relative paths of real images, for reports

    def __post_init__(self) -> None:
        self.labels = np.asarray(self.labels, dtype=np.int64)
        n = len(self.labels)
        if not len(self.images) == len(self.features) == len(self.probs) == n:
            raise ValueError(
                f"FeatureSet parts disagree in length: {len(self.images)} images, {n} labels, "
                f"{len(self.features)} features, {len(self.probs)} probabilities"
            )

    def __len__(self) -> int:
        return len(self.labels)

    def of_class(self, class_index: int) -> FeatureSet:
        keep = np.flatnonzero(self.labels == class_index)
        return FeatureSet(
            images=self.images[torch.from_numpy(keep)],
            labels=self.labels[keep],
            features=self.features[keep],
            probs=self.probs[keep],
            names=[self.names[i] for i in keep] if self.names is not None else None,
        )

    @classmethod
    def from_images(
        cls,
        evaluator: EvaluatorClassifier,
        images: torch.Tensor,
        labels: Sequence[int] | np.ndarray | torch.Tensor,
        *,
        names: list[str] | None = None,
        batch_size: int = 256,
        progress: bool = False,
        desc: str = "features",
        on_batch: Callable[[int, int], None] | None = None,
    ) -> FeatureSet:
        probs, features = evaluator.predict_uint8(
            images, batch_size, progress=progress, desc=desc, on_batch=on_batch
        )
        return cls(images=images, labels=np.asarray(labels), features=features, probs=probs, names=names)


@dataclass
class MetricContext:
    """Inputs shared by all metrics. ``real_train`` is what the generator learned from; ``real_test`` is
    held out from both the generator and the evaluator and serves as the sample-size baseline."""

    class_names: list[str]
    evaluator: EvaluatorClassifier
    real_train: FeatureSet
    fake: FeatureSet  # labels are the intended classes
    real_test: FeatureSet | None = None
    seed: int = 0
    batch_size: int = 256
    progress: bool = False
    options: dict = field(default_factory=dict)  # per-metric knobs, e.g. {"prdc_k": 5}
    # A slow metric reports (done, total) of its own work here (c2st: classifier training steps).
    tick: Callable[[float, float], None] | None = None


def build_context(
    evaluator: EvaluatorClassifier,
    *,
    real_train_images: torch.Tensor,
    real_train_labels: Sequence[int] | torch.Tensor,
    fake_images: torch.Tensor,
    fake_labels: Sequence[int] | torch.Tensor,
    real_test_images: torch.Tensor | None = None,
    real_test_labels: Sequence[int] | torch.Tensor | None = None,
    real_train_names: list[str] | None = None,
    real_test_names: list[str] | None = None,
    seed: int = 0,
    batch_size: int = 256,
    progress: bool = False,
    options: dict | None = None,
    tick: Callable[[float, float], None] | None = None,
    real_train: FeatureSet | None = None,
) -> MetricContext:
    """Run the evaluator once over every image set and bundle the results for ``compute_metrics``;
    ``tick(done, total)`` counts the images featurised so far, over all sets. ``real_train``: the
    train images' features when the caller has them already (``--filter`` reads them to score
    novelty), so that they are not computed twice."""
    sets = [fake_images, *([real_test_images] if real_test_images is not None else [])]
    if real_train is None:
        sets.append(real_train_images)
    total, done = sum(len(s) for s in sets), [0]

    def features(images, labels, names, desc):
        offset = done[0]
        result = FeatureSet.from_images(
            evaluator,
            images,
            np.asarray(labels),
            names=names,
            batch_size=batch_size,
            progress=progress,
            desc=desc,
            on_batch=(lambda n, _: tick(offset + n, total)) if tick is not None else None,
        )
        done[0] += len(images)
        return result

    real_test = None
    if real_test_images is not None and len(real_test_images):
        real_test = features(real_test_images, real_test_labels, real_test_names, "features: real test")
    return MetricContext(
        class_names=list(evaluator.class_names),
        evaluator=evaluator,
        real_train=real_train
        if real_train is not None
        else features(real_train_images, real_train_labels, real_train_names, "features: real train"),
        fake=features(fake_images, fake_labels, None, "features: generated"),
        real_test=real_test,
        seed=seed,
        batch_size=batch_size,
        progress=progress,
        options=dict(options or {}),
    )
