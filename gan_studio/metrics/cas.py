"""CAS: does the evaluator recognise each generated image as the class it was generated for?

A conditional generator can produce sharp, varied images of the *wrong* class; FID barely notices,
this does. Read it next to the evaluator's own accuracy on real test images: that is its ceiling.
"""

from __future__ import annotations

import numpy as np

from gan_studio.metrics.context import FeatureSet, MetricContext
from gan_studio.metrics.registry import register_metric


def _scores(probs: np.ndarray, intended: np.ndarray) -> dict:
    if not len(intended):
        return {"accuracy": None, "mean_confidence": None, "n": 0}
    return {
        "accuracy": float((probs.argmax(axis=1) == intended).mean()),
        "mean_confidence": float(probs[np.arange(len(intended)), intended].mean()),
        "n": int(len(intended)),
    }


def _class_scores(images: FeatureSet, class_index: int) -> dict:
    mask = images.labels == class_index
    return _scores(images.probs[mask], images.labels[mask])


@register_metric("cas")
def classification_accuracy_score(ctx: MetricContext) -> dict:
    fake, real = ctx.fake, ctx.real_test
    per_class = {}
    for c, name in enumerate(ctx.class_names):
        per_class[name] = _class_scores(fake, c)
        per_class[name]["real_test_accuracy"] = (
            _class_scores(real, c)["accuracy"] if real is not None else None
        )
    overall = _scores(fake.probs, fake.labels)
    return {
        "label": "CAS: evaluator accuracy on class-conditioned samples",
        "value": overall["accuracy"],
        "mean_confidence": overall["mean_confidence"],
        "mean_confidence_label": "mean evaluator probability of the intended class",
        "real_test_accuracy": _scores(real.probs, real.labels)["accuracy"] if real is not None else None,
        "real_test_accuracy_label": "the evaluator's accuracy on held-out real test images (the ceiling for CAS)",
        "n": overall["n"],
        "per_class": per_class,
    }
