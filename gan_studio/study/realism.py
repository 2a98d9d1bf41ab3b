"""How real do the study's synthetic images look? The c2st metric on the study's own images.

Accuracy gains need synthetic images that teach what the real ones do; a classifier that tells
them from photos at a glance may learn that difference instead of the classes. So the study runs
the classifier two-sample test (``metrics.c2st``) on what its arms actually get: the real training
images against as many synthetic images of each class, unfiltered and filtered, and, as the
baseline that reads "indistinguishable" with so few images, the training images against the
validation fold. The test images stay unseen. Cached in ``realism.json`` under a digest of the very
images it compared, so a study whose generator, split or filter changed measures again (a cache keyed
by the settings alone once kept a figure of images the study no longer used); cheap next to the arms.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch

from gan_studio.metrics.c2st import DEFAULT_BATCH, DEFAULT_STEPS, STEM_STRIDE, two_sample_test
from gan_studio.metrics.context import FeatureSet
from gan_studio.training.checkpoint import read_json, write_json_atomic

REALISM_JSON = "realism.json"
SETTINGS = {
    "arch": "mobilenet_v3_small",
    "stem_stride": STEM_STRIDE,
    "steps": DEFAULT_STEPS,
    "batch_size": DEFAULT_BATCH,
    "seed": 0,
    "max_per_class": None,
    "augment": "none",
}


def _feature_set(images: torch.Tensor, labels) -> FeatureSet:
    n = len(images)
    return FeatureSet(
        images=images, labels=np.asarray(labels), features=np.zeros((n, 0)), probs=np.zeros((n, 0))
    )


def _summary(result: dict) -> dict:
    keep = ("value", "ci95", "p_value", "reason")
    return {k: result.get(k) for k in keep} | {
        "n_held_out": sum(v for k, v in result.items() if k.startswith("n_") and k != "n_trained_on")
    }


def _digest(real, validation, synthetic: dict) -> str:
    """sha1 over every image and label the tests read, in order."""
    h = hashlib.sha1()
    sets = [("real", real.images, real.labels), ("validation", validation.images, validation.labels)]
    for name, (images, labels) in sorted(synthetic.items()):
        sets.append((name, images, labels))
    for name, images, labels in sets:
        h.update(name.encode())
        h.update(images.contiguous().numpy().tobytes())
        h.update(np.asarray(labels, dtype=np.int64).tobytes())
    return h.hexdigest()


def realism_check(
    out: Path, real, validation, synthetic: dict, *, steps: int, device, progress: bool = False
) -> dict:
    """c2st of the real training images against each synthetic set in ``synthetic`` ({name: (images,
    labels)}) and against the validation fold; cached in ``out/realism.json`` (computed once per budget)."""
    path = Path(out) / REALISM_JSON
    settings = {**SETTINGS, "steps": int(steps)}
    images_sha1 = _digest(real, validation, synthetic)
    if path.is_file():
        cached = read_json(path)
        if cached.get("settings") == settings and cached.get("images_sha1") == images_sha1:
            return cached
    class_names = list(real.class_names)
    resolution = int(real.images.shape[-1])
    common = {"class_names": class_names, "resolution": resolution, "settings": settings, "device": device}
    real_set = _feature_set(real.images, real.labels.numpy())
    tests = {
        "real train vs validation (baseline)": two_sample_test(
            real_set,
            _feature_set(validation.images, validation.labels.numpy()),
            sides=("train", "validation"),
            progress=progress,
            **common,
        )
    }
    for name, (images, labels) in synthetic.items():
        tests[f"real train vs {name}"] = two_sample_test(
            real_set,
            _feature_set(images, labels.numpy()),
            sides=("real", "generated"),
            progress=progress,
            **common,
        )
    doc = {
        "settings": settings,
        "images_sha1": images_sha1,
        "tests": {name: _summary(result) for name, result in tests.items()},
    }
    write_json_atomic(path, doc)
    return doc


def realism_markdown(doc: dict | None) -> list[str]:
    if not doc:
        return []
    lines = [
        "",
        "## Realism of the synthetic images (c2st)",
        "",
        f"A fresh {doc['settings']['arch']} trained from scratch ({doc['settings']['steps']} steps) to tell "
        "the two sides apart on half of each, scored on the other half: 0.5 = indistinguishable, 1.0 = "
        "always told apart. The baseline reads what 'indistinguishable' looks like with this few images.",
        "",
        "| test | held-out accuracy | 95% CI | held-out images |",
        "|---|---|---|---|",
    ]
    for name, row in doc["tests"].items():
        if row.get("value") is None:
            lines.append(f"| {name} | n/a ({row.get('reason', 'not computed')}) | | |")
            continue
        low, high = row["ci95"]
        lines.append(f"| {name} | {row['value']:.3f} | {low:.3f}-{high:.3f} | {row['n_held_out']} |")
    return lines
