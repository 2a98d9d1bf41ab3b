"""Generated candidates filtered as a curator would: one stream per class, scored for confidence and novelty.

Each class draws a stream of latent seeds (``first_seed + i``). Every candidate gets two scores from
an evaluator (the study's, trained on the arms' real images only; or the one ``evaluate --filter``
is given):

- **confidence**: the probability it gives the intended class;
- **novelty**: the distance (evaluator features) to the nearest real training image of any class,
  divided by the typical spacing of the class's training images (the memorisation metric's ratio).
  Below ~0.5 an image is a near-copy of a training photo; it adds little a real-only set lacks.

A consumer takes the first ``quota`` images of the stream that pass its filter, so a filtered set is
the unfiltered stream, filtered, and a stricter filter only removes images. The study's arms and
``evaluate --filter`` share it, so the images the study adds are the images evaluate measures.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from gan_studio.metrics.memorization import class_spacings, typical_spacing
from gan_studio.metrics.prdc import pairwise_distances
from gan_studio.models.classifier import EvaluatorClassifier

FILTERS = ("none", "confidence", "confidence+novelty")


@dataclass
class FilterRule:
    confidence: float = 0.8  # evaluator probability of the intended class
    novelty: float = 0.75  # nearest-training-image distance / class spacing
    max_factor: int = 10  # at most this many candidates drawn per image a filtered arm needs

    def validate(self) -> None:
        if not 0 < self.confidence <= 1:
            raise ValueError(f"--filter-confidence must be in (0, 1], got {self.confidence}")
        if self.novelty < 0:
            raise ValueError(f"--filter-novelty must be at least 0, got {self.novelty}")
        if self.max_factor < 1:
            raise ValueError(f"--filter-max-factor must be at least 1, got {self.max_factor}")

    def passes(self, kind: str, confidence: np.ndarray, novelty: np.ndarray) -> np.ndarray:
        if kind == "none":
            return np.ones(len(confidence), dtype=bool)
        confident = confidence >= self.confidence
        if kind == "confidence":
            return confident
        if kind == "confidence+novelty":
            return confident & (novelty >= self.novelty)
        raise ValueError(f"Unknown synthetic filter {kind!r}: use one of {', '.join(FILTERS)}")


@dataclass
class ClassStream:
    seeds: list[int] = field(default_factory=list)
    images: list[torch.Tensor] = field(default_factory=list)  # uint8 chunks [n, 3, R, R]
    confidence: np.ndarray = field(default_factory=lambda: np.zeros(0))
    novelty: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def __len__(self) -> int:
        return len(self.seeds)

    def all_images(self) -> torch.Tensor:
        return torch.cat(self.images)


class NoveltyScorer:
    """Distance to the nearest real training image over the spacing of the intended class."""

    def __init__(self, train_features: np.ndarray, train_labels: np.ndarray):
        self.features = torch.as_tensor(train_features, dtype=torch.float32)
        self.spacings = class_spacings(train_features, train_labels)
        self.global_spacing = typical_spacing(train_features) or 1.0

    def __call__(self, features: np.ndarray, class_index: int) -> np.ndarray:
        nearest = pairwise_distances(torch.as_tensor(features, dtype=torch.float32), self.features).min(dim=1)
        return nearest.values.numpy() / self.spacings.get(class_index, self.global_spacing)


class SyntheticPool:
    """Per class, a stream of candidates drawn on demand until every arm's quota is met (or capped)."""

    def __init__(
        self,
        generate: Callable[[int, list[int]], torch.Tensor],
        evaluator: EvaluatorClassifier,
        novelty: NoveltyScorer,
        rule: FilterRule,
        *,
        first_seed: int,
        precision: str = "fp32",
        chunk: int = 64,
    ):
        self.generate, self.evaluator, self.novelty, self.rule = generate, evaluator, novelty, rule
        self.first_seed, self.precision, self.chunk = first_seed, precision, chunk
        self.streams: dict[int, ClassStream] = {}

    def _draw(self, class_index: int, n: int) -> None:
        stream = self.streams.setdefault(class_index, ClassStream())
        seeds = [self.first_seed + len(stream) + i for i in range(n)]
        images = self.generate(class_index, seeds)
        probs, features = self.evaluator.predict_uint8(images, precision=self.precision)
        stream.seeds += seeds
        stream.images.append(images)
        stream.confidence = np.concatenate([stream.confidence, probs[:, class_index]])
        stream.novelty = np.concatenate([stream.novelty, self.novelty(features, class_index)])

    def select(self, class_index: int, quota: int, kind: str) -> tuple[np.ndarray, bool]:
        """Stream positions of the first ``quota`` candidates passing ``kind``; and whether the quota was met."""
        cap = quota if kind == "none" else quota * self.rule.max_factor
        while True:
            stream = self.streams.get(class_index, ClassStream())
            ok = np.flatnonzero(self.rule.passes(kind, stream.confidence, stream.novelty))
            if len(ok) >= quota or len(stream) >= cap:
                return ok[:quota], len(ok) >= quota
            need = quota - len(ok) if kind == "none" else max(self.chunk, 2 * (quota - len(ok)))
            self._draw(class_index, min(need, cap - len(stream)))

    def images(self, class_index: int, positions: np.ndarray) -> torch.Tensor:
        stream = self.streams[class_index]
        return stream.all_images()[torch.as_tensor(positions, dtype=torch.long)]

    def summary(self) -> dict:
        """Per class: candidates drawn and how many pass each filter (for the report)."""
        out = {}
        for c, stream in sorted(self.streams.items()):
            out[c] = {
                "drawn": len(stream),
                **{
                    kind: int(self.rule.passes(kind, stream.confidence, stream.novelty).sum())
                    for kind in FILTERS
                },
                "median_confidence": float(np.median(stream.confidence)) if len(stream) else None,
                "median_novelty": float(np.median(stream.novelty)) if len(stream) else None,
            }
        return out
