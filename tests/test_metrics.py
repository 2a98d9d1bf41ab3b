"""Each generation metric on constructed cases whose answer is known."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from gan_studio.evaluation.classifier import EvaluatorClassifier
from gan_studio.metrics import (
    FeatureSet,
    MetricContext,
    build_context,
    compute_metrics,
    list_metrics,
    write_report,
)
from gan_studio.metrics import diversity as diversity_module
from gan_studio.metrics.fid_kid import EvaluatorFeatureExtractor, kernel_distance, kid_subset_size
from gan_studio.metrics.memorization import copy_ratios
from gan_studio.metrics.prdc import prdc

CLASSES = ["a", "b", "c"]
COLOURS = torch.tensor([[220, 40, 40], [40, 220, 40], [40, 40, 220]], dtype=torch.uint8)


def squares(per_class: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Dark noisy images, each with one square in its class colour at a random place and size."""
    g = torch.Generator().manual_seed(seed)
    images, labels = [], []
    for c in range(len(CLASSES)):
        for _ in range(per_class):
            image = torch.randint(0, 80, (3, 32, 32), generator=g, dtype=torch.uint8)
            size = int(torch.randint(10, 20, (1,), generator=g))
            y, x = torch.randint(0, 32 - size, (2,), generator=g).tolist()
            image[:, y : y + size, x : x + size] = COLOURS[c][:, None, None]
            images.append(image)
            labels.append(c)
    return torch.stack(images), torch.tensor(labels)


def bright_noise(n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(150, 256, (n, 3, 32, 32), generator=g, dtype=torch.uint8)


@pytest.fixture(scope="module")
def evaluator() -> EvaluatorClassifier:
    """An untrained network whose BatchNorm statistics are fitted to real images, as a trained evaluator's
    are: random but informative features. resnet18 keeps FID's 512x512 eigen-decomposition cheap."""
    torch.manual_seed(0)
    model = EvaluatorClassifier(arch="resnet18", class_names=CLASSES, resolution=32)
    model.recalibrate_batchnorm(squares(20, seed=100)[0])
    return model.eval()


@pytest.fixture(scope="module")
def real() -> tuple[torch.Tensor, torch.Tensor]:
    return squares(20, seed=1)


def make_context(evaluator, real, fake_images, fake_labels, test=None) -> MetricContext:
    test_images, test_labels = test if test is not None else (None, None)
    return build_context(
        evaluator,
        real_train_images=real[0],
        real_train_labels=real[1],
        fake_images=fake_images,
        fake_labels=fake_labels,
        real_test_images=test_images,
        real_test_labels=test_labels,
    )


def feature_set(features: np.ndarray, labels, probs: np.ndarray | None = None) -> FeatureSet:
    n = len(features)
    probs = np.full((n, len(CLASSES)), 1 / len(CLASSES), np.float32) if probs is None else probs
    return FeatureSet(torch.zeros(n, 3, 8, 8, dtype=torch.uint8), np.asarray(labels), features, probs)


def test_identical_sets_give_zero_fid_and_full_precision_recall(evaluator, real):
    ctx = make_context(evaluator, real, real[0].clone(), real[1])
    results = compute_metrics(["fid", "prdc"], ctx)
    assert results["fid"]["label"].startswith("FID (evaluator features)")
    assert results["fid"]["value"] == pytest.approx(0.0, abs=1e-4)
    prdc_result = results["prdc"]
    assert prdc_result["precision"] == 1.0 and prdc_result["recall"] == 1.0 and prdc_result["coverage"] == 1.0
    for row in prdc_result["per_class"].values():
        assert row["precision"] == 1.0 and row["recall"] == 1.0


def test_disjoint_sets_give_large_fid_and_low_precision(evaluator, real):
    extractor = EvaluatorFeatureExtractor(evaluator)
    from gan_studio.metrics.fid_kid import frechet_distance

    same_distribution = frechet_distance(extractor, real[0], squares(20, seed=2)[0])
    ctx = make_context(evaluator, real, bright_noise(60, seed=3), real[1], test=squares(10, seed=4))
    ctx.options = {"c2st_steps": 30, "c2st_batch": 32}  # c2st's default 300 steps would take minutes here
    results = compute_metrics(None, ctx)
    assert results["fid"]["value"] > 5 * same_distribution
    assert results["fid"]["value"] > 5 * results["fid"]["real_baseline"]
    assert results["kid"]["value"] > 5 * abs(results["kid"]["real_baseline"])
    assert results["prdc"]["precision"] < 0.1 and results["prdc"]["recall"] < 0.1
    assert results["c2st"]["value"] >= 0.9 and results["c2st"]["classifier"]["steps"] == 30
    assert set(results) == set(list_metrics())
    assert all(isinstance(result["label"], str) and result["label"] for result in results.values())
    json.dumps(results)  # metrics.json must be plain JSON


def test_kid_subset_size_fits_small_classes(evaluator, real):
    assert kid_subset_size(5000, 3000) == 1000
    assert kid_subset_size(3, 200) == 3
    assert kid_subset_size(1, 200) == 0
    extractor = EvaluatorFeatureExtractor(evaluator)
    tiny = kernel_distance(extractor, real[0][:3], bright_noise(200, seed=5))
    assert tiny["subset_size"] == 3 and np.isfinite(tiny["mean"])
    assert kernel_distance(extractor, real[0][:1], real[0])["mean"] is None


def test_prdc_shrinks_k_for_tiny_sets():
    rng = np.random.default_rng(0)
    assert prdc(rng.normal(size=(3, 4)), rng.normal(size=(2, 4)), k=5)["k"] == 1
    assert prdc(rng.normal(size=(1, 4)), rng.normal(size=(9, 4)))["precision"] is None


def test_copying_generator_is_flagged_as_memorisation():
    rng = np.random.default_rng(0)
    real = rng.normal(size=(40, 16))
    copied = [3, 17, 25, 31, 8]
    fake = np.concatenate([real[copied] + 1e-4 * rng.normal(size=(5, 16)), rng.normal(size=(5, 16))])
    ctx = MetricContext(
        class_names=CLASSES,
        evaluator=None,
        real_train=feature_set(real, np.arange(40) % 3),
        fake=feature_set(fake, [0] * 5 + [1] * 5),
    )
    result = compute_metrics(["memorization"], ctx)["memorization"]
    assert result["value"] == 0.5 and result["n_near_copies"] == 5
    assert result["per_class"]["a"]["near_copy_fraction"] == 1.0
    assert result["per_class"]["b"]["near_copy_fraction"] == 0.0
    assert result["per_class"]["c"]["near_copy_fraction"] is None
    worst = result["worst_pairs"][:5]
    assert sorted((p["fake_index"], p["real_index"]) for p in worst) == sorted(enumerate(copied))
    assert all(p["ratio"] < 0.01 for p in worst)


def test_memorisation_scales_each_class_by_its_own_spread():
    """A compact class (a screw seen from any side) has training images close together: fresh
    images of it are not copies, and copies of it are still caught."""
    rng = np.random.default_rng(1)
    tight = lambda n: 0.05 * rng.normal(size=(n, 16))  # noqa: E731
    wide = lambda n: 5.0 + rng.normal(size=(n, 16))  # noqa: E731
    real = np.concatenate([tight(20), wide(40)])
    real_labels = [0] * 20 + [1] * 40
    copies = real[[2, 5, 7, 11]] + 1e-4 * rng.normal(size=(4, 16))
    fake = np.concatenate([tight(16), copies, wide(20)])
    fake_labels = [0] * 20 + [1] * 20
    ctx = MetricContext(
        class_names=CLASSES,
        evaluator=None,
        real_train=feature_set(real, real_labels),
        fake=feature_set(fake, fake_labels),
        real_test=feature_set(np.concatenate([tight(10), wide(10)]), [0] * 10 + [1] * 10),
    )
    result = compute_metrics(["memorization"], ctx)["memorization"]
    assert result["n_near_copies"] == 4  # the copies, and none of the fresh compact-class images
    assert sorted(p["fake_index"] for p in result["worst_pairs"][:4]) == [16, 17, 18, 19]
    assert result["real_baseline"] == 0.0
    a, b = result["per_class"]["a"], result["per_class"]["b"]
    assert a["spacing"] < 0.1 * b["spacing"] and a["real_near_copy_fraction"] == 0.0
    assert a["near_copy_fraction"] == 0.2 and b["near_copy_fraction"] == 0.0
    # one global scale (what the metric used to do) calls every fresh compact-class image a copy
    global_ratios = copy_ratios(real, fake)[0]
    assert (global_ratios[:16] < 0.5).all()


def test_shuffled_labels_give_low_cas():
    true_class = np.arange(30) % 3
    probs = np.full((30, 3), 0.05, np.float32)
    probs[np.arange(30), true_class] = 0.9
    features = np.random.default_rng(0).normal(size=(30, 8))

    def cas(intended):
        ctx = MetricContext(
            CLASSES, None, feature_set(features, true_class), feature_set(features, intended, probs)
        )
        return compute_metrics(["cas"], ctx)["cas"]

    faithful, shuffled = cas(true_class), cas((true_class + 1) % 3)
    assert faithful["value"] == 1.0 and faithful["mean_confidence"] == pytest.approx(0.9)
    assert shuffled["value"] == 0.0 and shuffled["mean_confidence"] == pytest.approx(0.05)
    assert all(row["accuracy"] == 0.0 for row in shuffled["per_class"].values())


def test_diversity_falls_back_to_feature_distance_and_detects_collapse(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # no LPIPS backbone here
    rng = np.random.default_rng(0)
    real = rng.normal(size=(30, 8))
    labels = np.arange(30) % 3
    collapsed = real[labels].copy()  # every image of class c is the same point

    def diversity(fake):
        ctx = MetricContext(
            CLASSES,
            EvaluatorClassifier(class_names=CLASSES),
            feature_set(real, labels),
            feature_set(fake, labels),
        )
        return compute_metrics(["diversity"], ctx)["diversity"]

    varied, mode_collapse = diversity(real.copy()), diversity(collapsed)
    assert varied["label"] == "diversity (mean pairwise evaluator-feature distance)"
    assert varied["method"] == "feature-distance" and "LPIPS" in varied["reason"]
    assert varied["ratio"] == pytest.approx(1.0)
    assert mode_collapse["value"] == 0.0 and mode_collapse["ratio"] == 0.0


def test_diversity_uses_lpips_when_its_backbone_is_on_disk(monkeypatch):
    seen_sizes = []

    class FakeLPIPS(torch.nn.Module):  # stands in for lpips.LPIPS: mean absolute difference
        def __init__(self):
            super().__init__()
            self.anchor = torch.nn.Parameter(torch.zeros(1))

        def forward(self, a, b):
            seen_sizes.append(a.shape[-1])
            return (a - b).abs().mean(dim=(1, 2, 3), keepdim=True)

    monkeypatch.setattr(diversity_module, "lpips_available", lambda net: net == "alex")
    monkeypatch.setattr(diversity_module, "load_lpips", lambda net: FakeLPIPS())
    real, labels = squares(4, seed=7)
    fake = real.clone()
    fake[labels == 0] = fake[labels == 0][:1]  # class "a" collapsed onto one image
    ctx = MetricContext(
        CLASSES,
        EvaluatorClassifier(class_names=CLASSES),
        feature_set(np.zeros((12, 2)), labels),
        feature_set(np.zeros((12, 2)), labels),
    )
    ctx.real_train.images, ctx.fake.images = real, fake
    result = compute_metrics(["diversity"], ctx)["diversity"]
    assert result["method"] == "lpips-alex" and "LPIPS" in result["label"]
    assert result["per_class"]["a"]["generated"] == 0.0
    assert result["per_class"]["b"]["ratio"] == pytest.approx(1.0)
    assert set(seen_sizes) == {diversity_module.LPIPS_MIN_SIZE}  # 32 px images are upsampled for AlexNet


def test_inception_fid_is_null_with_a_reason_when_weights_are_missing(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    ctx = MetricContext(
        CLASSES, None, feature_set(np.zeros((2, 2)), [0, 1]), feature_set(np.zeros((2, 2)), [0, 1])
    )
    result = compute_metrics(["inception_fid"], ctx)["inception_fid"]
    assert result["value"] is None
    assert "torch-fidelity" in result["reason"] or str(tmp_path) in result["reason"]
    assert "Inception" in result["label"]


def test_unknown_metric_names_are_refused():
    with pytest.raises(ValueError, match="Unknown metric.*Available"):
        compute_metrics(["fid", "sharpness"], None)


def test_report_has_tables_grids_and_metrics_json(evaluator, real, tmp_path):
    fake_images = real[0].clone()
    ctx = make_context(evaluator, real, fake_images, real[1], test=squares(5, seed=9))
    results = compute_metrics(["cas", "prdc", "memorization", "inception_fid"], ctx)
    report = write_report(
        results, ctx, tmp_path, meta={"generator": "copies of the training set", "warnings": ["test"]}
    )
    text = report.read_text()
    assert "## Per class" in text and all(f"| {name} |" in text for name in CLASSES)
    assert "samples.png" in text and "memorization_pairs.png" in text and "> **Warning:** test" in text
    assert (tmp_path / "samples.png").is_file() and (tmp_path / "memorization_pairs.png").is_file()
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["metrics"]["memorization"]["value"] == 1.0
    assert saved["metrics"]["inception_fid"]["value"] is None
