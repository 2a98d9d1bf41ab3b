"""C2ST, the classifier two-sample test: can a fresh classifier tell generated images from real ones?

CAS asks whether a classifier trained on real images *recognises* a sample's class; a sample can pass
that and still look nothing like a photo (wrong texture, tell-tale artefacts). Here a new classifier,
trained from scratch, learns "real" against "generated" on one half of each set and is scored on the
other half (Lopez-Paz & Oquab 2017). Its held-out accuracy is the metric: 0.5 means it cannot tell
them apart (chance, as both halves are balanced), 1.0 means it always can.

The same procedure on real *train* images against real *test* images ("train" vs "test") is the
baseline: it reads about 0.5 unless the split itself differs (a sampling artefact, or too few images
for the training budget), and a generator can only be judged against it.

The decision threshold is fitted on the training half (the probability cut that sorts those images
best), not taken as 0.5: a classifier stopped after a fixed budget can rank the two sides well and
still be off-centre in eval mode (MobileNetV3's batch-norm statistics settle slowly), calling most
held-out real images "generated"; at 0.5 it would then read near chance while telling the sides apart.
``auc`` (held-out ROC AUC of the probability of being real, threshold-free) is reported beside it.

The budget is fixed in optimisation steps, not epochs, so every figure is computed with the same
amount of training whatever the number of images; steps, batch, seed, augmentation and the number of
images per class are options (``c2st_*`` in ``MetricContext.options``) and are recorded in the result.

``c2st_coarse_px`` asks *where* the difference lies: every image (both sides, and the baseline's) is
reduced to that many pixels and enlarged back before the test, so only coarse shape, pose and colour
are left to tell them apart. Near 0.5 there while the full test reads near 1.0: the tell is fine
detail (texture, edges); still near 1.0: the silhouettes themselves differ.

Which samples come closest to passing: for every class the held-out generated images the test's
classifier gives the highest and the lowest probability of being real (``most_photo_like``,
``least_photo_like``; report.md shows them side by side). Looked at together they say what gives the
samples away, and which kinds of sample already pass.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from gan_studio.device import pick_device, resolve_precision
from gan_studio.metrics.context import FeatureSet, MetricContext
from gan_studio.metrics.registry import register_metric

DEFAULT_STEPS = 300
DEFAULT_BATCH = 64
DEFAULT_AUGMENT = "none"
ARCH = "mobilenet_v3_small"
STEM_STRIDE = 2
SIDES = ("real", "generated")
MIN_COARSE_PX = 2
BASELINE_SIDES = ("train", "test")
EXTREMES_PER_CLASS = 3  # held-out samples per class in most_photo_like and least_photo_like


def coarse_px_fits(coarse_px: int, resolution: int) -> bool:
    """Whether images of ``resolution`` px can be reduced to ``coarse_px`` (at least 2, below their size)."""
    return MIN_COARSE_PX <= coarse_px < resolution


def c2st_settings(ctx: MetricContext) -> dict:
    """The test's knobs from ``ctx.options`` (``c2st_steps``, ``c2st_batch``, ``c2st_seed``,
    ``c2st_max_per_class``, ``c2st_augment``, ``c2st_coarse_px``), with their defaults filled in."""
    options = ctx.options
    max_per_class = options.get("c2st_max_per_class")
    coarse_px = options.get("c2st_coarse_px")
    settings = {
        "arch": ARCH,
        "stem_stride": STEM_STRIDE,
        "steps": int(options.get("c2st_steps", DEFAULT_STEPS)),
        "batch_size": int(options.get("c2st_batch", DEFAULT_BATCH)),
        "seed": int(options.get("c2st_seed", ctx.seed)),
        "max_per_class": int(max_per_class) if max_per_class else None,
        "augment": str(options.get("c2st_augment", DEFAULT_AUGMENT)),
        "coarse_px": int(coarse_px) if coarse_px else None,
    }
    if settings["steps"] < 1 or settings["batch_size"] < 1:
        raise ValueError(
            f"c2st needs positive steps and batch size, got {settings['steps']} and {settings['batch_size']}"
        )
    if settings["max_per_class"] is not None and settings["max_per_class"] < 2:
        raise ValueError(
            f"c2st_max_per_class must be at least 2 (one image to train on, one to test), "
            f"got {settings['max_per_class']}"
        )
    resolution = int(ctx.fake.images.shape[-1])
    if settings["coarse_px"] is not None and not coarse_px_fits(settings["coarse_px"], resolution):
        raise ValueError(
            f"c2st_coarse_px must be from {MIN_COARSE_PX} to {resolution - 1} (below the images' {resolution} px), "
            f"got {settings['coarse_px']}"
        )
    return settings


def balanced_halves(
    labels_a: np.ndarray, labels_b: np.ndarray, num_classes: int, seed: int, max_per_class: int | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(train indices of a, held-out of a, train of b, held-out of b), balanced within every class.

    Each class contributes the same number k of images from both sets (the smaller count, capped at
    ``max_per_class``), drawn at random; k // 2 of each go to training, the rest are held out. So both
    sides are equally large in training and in the held-out set, where chance is exactly 0.5, and
    no class weighs more on one side than on the other.
    """
    rng = np.random.default_rng(seed)
    parts: list[list[np.ndarray]] = [[], [], [], []]
    for c in range(num_classes):
        a, b = np.flatnonzero(labels_a == c), np.flatnonzero(labels_b == c)
        k = min(len(a), len(b), max_per_class or len(a))
        a, b = rng.permutation(a)[:k], rng.permutation(b)[:k]
        half = k // 2
        for part, chosen in zip(parts, (a[:half], a[half:], b[:half], b[half:])):
            part.append(chosen)
    return tuple(np.sort(np.concatenate(p)).astype(np.int64) if p else np.zeros(0, np.int64) for p in parts)


def wilson_interval(correct: int, n: int, z: float = 1.96) -> list[float] | None:
    """95% Wilson score interval of a binomial proportion (None for n = 0)."""
    if n == 0:
        return None
    p = correct / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return [max(0.0, centre - half), min(1.0, centre + half)]


def fitted_threshold(p_a: np.ndarray, is_a: np.ndarray) -> float:
    """The cut on the probability of side a that classifies the training images best (the midpoint
    between neighbouring scores; of equally good cuts, the one nearest 0.5)."""
    scores = np.unique(p_a.astype(np.float64))
    cuts = np.concatenate([[scores[0] - 1e-9], (scores[1:] + scores[:-1]) / 2, [scores[-1] + 1e-9]])
    # accuracy at each cut: side a above it, side b below it, in one pass over the sorted scores
    order = np.argsort(p_a, kind="stable")
    sorted_scores, sorted_a = p_a[order], is_a[order]
    below = np.searchsorted(sorted_scores, cuts, side="left")  # images with a score under the cut
    b_below = np.concatenate([[0], np.cumsum(~sorted_a)])[below]
    a_above = is_a.sum() - np.concatenate([[0], np.cumsum(sorted_a)])[below]
    accuracy = (a_above + b_below) / len(p_a)
    best = np.flatnonzero(accuracy == accuracy.max())
    return float(cuts[best[np.argmin(np.abs(cuts[best] - 0.5))]])


def roc_auc(p_a: np.ndarray, is_a: np.ndarray) -> float | None:
    """Held-out ROC AUC of the probability of side a (0.5: no ranking; None if a side is missing)."""
    from sklearn.metrics import roc_auc_score

    if is_a.all() or not is_a.any():
        return None
    return float(roc_auc_score(is_a, p_a))


def _at_resolution(images: torch.Tensor, resolution: int) -> torch.Tensor:
    if images.shape[-1] == resolution and images.shape[-2] == resolution:
        return images
    x = F.interpolate(images.float(), size=(resolution, resolution), mode="bilinear", antialias=True)
    return x.round().clamp(0, 255).to(torch.uint8)


def _accuracy(correct: np.ndarray) -> float | None:
    return float(correct.mean()) if len(correct) else None


def two_sample_test(
    a: FeatureSet,
    b: FeatureSet,
    *,
    sides: tuple[str, str],
    class_names: list[str],
    resolution: int,
    settings: dict,
    device: torch.device,
    progress: bool = False,
    on_step: Callable[[int, int], None] | None = None,
    ranked_per_class: int = 0,
) -> dict:
    """Train a fresh classifier on half of ``a`` (label 0) and half of ``b`` (label 1), balanced per class;
    score it on the other halves. Accuracies are None (with a ``reason``) when a half would be empty.
    ``ranked_per_class`` > 0 adds, per class, that many held-out ``b`` images it found most and least
    like ``a`` (``{b}_most_like_{a}``, ``{b}_least_like_{a}``)."""
    from gan_studio.models.classifier_fit import train_classifier

    train_a, held_a, train_b, held_b = balanced_halves(
        a.labels, b.labels, len(class_names), settings["seed"], settings["max_per_class"]
    )
    name_a, name_b = sides
    result: dict = {
        "value": None,
        f"{name_a}_accuracy": None,
        f"{name_b}_accuracy": None,
        f"n_{name_a}": len(held_a),
        f"n_{name_b}": len(held_b),
        "n_trained_on": len(train_a) + len(train_b),
        "ci95": None,
        "p_value": None,
        "per_class": {},
    }
    if not len(train_a) or not len(held_a):
        result["reason"] = (
            f"too few images: every class needs at least two {name_a} and two {name_b} images "
            "(one to train on, one to hold out)"
        )
        return result

    def images(features: FeatureSet, idx: np.ndarray) -> torch.Tensor:
        chosen = features.images[torch.from_numpy(idx)]
        if settings.get("coarse_px"):  # only what survives at that size: shape, pose, colour
            chosen = _at_resolution(chosen, settings["coarse_px"])
        return _at_resolution(chosen, resolution)

    train_images = torch.cat([images(a, train_a), images(b, train_b)])
    train_labels = torch.cat([torch.zeros(len(train_a)), torch.ones(len(train_b))]).long()
    precision = resolve_precision("auto", device)
    model = train_classifier(
        train_images,
        train_labels,
        class_names=list(sides),
        arch=ARCH,
        resolution=resolution,
        steps=settings["steps"],
        batch_size=settings["batch_size"],
        augment=settings["augment"],
        seed=settings["seed"],
        precision=precision,
        device=device,
        stem_stride=STEM_STRIDE,
        progress=progress,
        on_step=on_step,
    )
    held_images = torch.cat([images(a, held_a), images(b, held_b)])
    truth = np.concatenate([np.zeros(len(held_a), np.int64), np.ones(len(held_b), np.int64)])
    train_probs, _ = model.predict_uint8(train_images, precision="fp32")
    threshold = fitted_threshold(train_probs[:, 0], train_labels.numpy() == 0)
    probs, _ = model.predict_uint8(held_images, precision="fp32")
    correct = (probs[:, 0] >= threshold) == (truth == 0)
    if ranked_per_class > 0:
        most, least = ranked_by_likeness(
            held_b, probs[len(held_a) :, 0], b.labels, class_names, ranked_per_class
        )
        result[f"{name_b}_most_like_{name_a}"], result[f"{name_b}_least_like_{name_a}"] = most, least
    held_classes = np.concatenate([a.labels[held_a], b.labels[held_b]])
    result["per_class"] = _per_class(correct, truth, held_classes, class_names, sides)
    n_correct, n = int(correct.sum()), len(correct)
    from scipy.stats import binomtest  # a second of import: only when a C2ST runs

    result.update(
        {
            "value": n_correct / n,
            f"{name_a}_accuracy": _accuracy(correct[truth == 0]),
            f"{name_b}_accuracy": _accuracy(correct[truth == 1]),
            "ci95": wilson_interval(n_correct, n),
            "auc": roc_auc(probs[:, 0], truth == 0),
            "threshold": round(float(threshold), 6),
            "p_value": float(binomtest(n_correct, n, 0.5, alternative="greater").pvalue),
            "classifier_precision": precision,
        }
    )
    return result


def _per_class(
    correct: np.ndarray,
    truth: np.ndarray,
    classes: np.ndarray,
    class_names: list[str],
    sides: tuple[str, str],
) -> dict:
    """Held-out accuracy within each class, overall and on each side."""
    name_a, name_b = sides
    rows = {}
    for c, name in enumerate(class_names):
        in_class = classes == c
        rows[name] = {
            "accuracy": _accuracy(correct[in_class]),
            f"{name_a}_accuracy": _accuracy(correct[in_class & (truth == 0)]),
            f"{name_b}_accuracy": _accuracy(correct[in_class & (truth == 1)]),
            f"n_{name_a}": int((in_class & (truth == 0)).sum()),
            f"n_{name_b}": int((in_class & (truth == 1)).sum()),
        }
    return rows


def ranked_by_likeness(
    indices: np.ndarray, p_a: np.ndarray, labels: np.ndarray, class_names: list[str], k: int
) -> tuple[dict, dict]:
    """Per class, the ``k`` images (``indices`` into their set, of ``labels``) with the highest and the
    lowest probability ``p_a`` of being side a. Rows name them as c2st's report reads them."""
    most, least = {}, {}
    for c, name in enumerate(class_names):
        mine = np.flatnonzero(labels[indices] == c)
        order = mine[np.argsort(-p_a[mine], kind="stable")]
        rows = [{"fake_index": int(indices[i]), "p_real": round(float(p_a[i]), 4)} for i in order]
        most[name], least[name] = rows[:k], rows[::-1][:k]
    return most, least


@register_metric("c2st")
def classifier_two_sample_test(ctx: MetricContext) -> dict:
    settings = c2st_settings(ctx)
    resolution = int(ctx.fake.images.shape[-1])
    device = ctx.evaluator.device if ctx.evaluator is not None else pick_device()
    common = {
        "class_names": ctx.class_names,
        "resolution": resolution,
        "settings": settings,
        "device": device,
        "progress": ctx.progress,
    }
    with_baseline = ctx.real_test is not None and len(ctx.real_test) > 0
    tests, steps = 1 + with_baseline, settings["steps"]

    def on_step(first: int):  # both classifiers' steps as one count, for ctx.tick
        return (lambda done, _: ctx.tick(first + done, tests * steps)) if ctx.tick is not None else None

    main = two_sample_test(
        ctx.real_train,
        ctx.fake,
        sides=SIDES,
        on_step=on_step(0),
        ranked_per_class=EXTREMES_PER_CLASS,
        **common,
    )
    if with_baseline:
        baseline = two_sample_test(
            ctx.real_train, ctx.real_test, sides=BASELINE_SIDES, on_step=on_step(steps), **common
        )
    else:
        baseline = {"value": None, "reason": "no real test images to compare the real train images with"}
    per_class = main.pop("per_class")
    precision = main.pop("classifier_precision", None)
    baseline.pop("classifier_precision", None)
    if "generated_most_like_real" in main:
        main["most_photo_like"] = main.pop("generated_most_like_real")
        main["least_photo_like"] = main.pop("generated_least_like_real")
    for name, row in per_class.items():
        row["real_baseline"] = baseline.get("per_class", {}).get(name, {}).get("accuracy")
    coarse = f", every image reduced to {settings['coarse_px']} px" if settings["coarse_px"] else ""
    return {
        "label": "C2ST: held-out accuracy of a fresh classifier telling real train images from generated "
        f"ones (0.5: indistinguishable, 1: always told apart{coarse})",
        **main,
        "real_baseline": baseline["value"],
        "real_baseline_label": "the same test on real train vs real test images (about 0.5: what "
        "indistinguishable reads with these images and this budget)",
        "baseline": baseline,
        "classifier": {**settings, "resolution": resolution, "precision": precision, "from_scratch": True},
        "per_class": per_class,
    }
