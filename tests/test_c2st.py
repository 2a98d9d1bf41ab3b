"""C2ST (classifier two-sample test) on image sets whose answer is known."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from gan_studio.metrics import FeatureSet, MetricContext, compute_metrics, write_report
from gan_studio.metrics.c2st import balanced_halves, c2st_settings, wilson_interval
from gan_studio.packaging import model_card
from tests.test_metrics import CLASSES, squares

FAST = {"c2st_steps": 40, "c2st_batch": 32}  # 32 px images: seconds on two CPU cores


def image_set(images: torch.Tensor, labels) -> FeatureSet:
    """Images with their labels; c2st reads only these, so features and probabilities are placeholders."""
    n = len(images)
    probs = np.full((n, len(CLASSES)), 1 / len(CLASSES), np.float32)
    return FeatureSet(images, np.asarray(labels), np.zeros((n, 4), np.float32), probs)


def context(real, fake, test=None, **options) -> MetricContext:
    return MetricContext(
        class_names=CLASSES,
        evaluator=None,
        real_train=image_set(*real),
        fake=image_set(*fake),
        real_test=image_set(*test) if test is not None else None,
        seed=0,
        options={"c2st_seed": 0, **FAST, **options},
    )


def test_two_halves_of_the_same_real_images_are_indistinguishable():
    images, labels = squares(60, seed=1)  # 180 images: two halves of 90, 45 held out per side
    first, second = slice(0, None, 2), slice(1, None, 2)
    test = squares(30, seed=2)
    result = compute_metrics(
        ["c2st"], context((images[first], labels[first]), (images[second], labels[second]), test)
    )["c2st"]
    assert 0.3 <= result["value"] <= 0.7, result
    assert 0.3 <= result["real_baseline"] <= 0.7, result["baseline"]
    assert result["n_real"] == result["n_generated"] == 45 and result["n_trained_on"] == 90
    assert result["p_value"] > 0.001  # no evidence of a difference
    assert 0.25 <= result["auc"] <= 0.75, result["auc"]
    baseline = result["baseline"]
    assert baseline["n_trained_on"] == 90 and baseline["n_train"] + baseline["n_test"] == 90  # 30 per class
    assert set(result["per_class"]) == set(CLASSES)
    assert sum(row["n_real"] + row["n_generated"] for row in result["per_class"].values()) == 90
    assert all(row["real_baseline"] is not None for row in result["per_class"].values())
    json.dumps(result)  # metrics.json must be plain JSON


def test_noise_is_told_apart_from_real_images():
    real = squares(40, seed=3)
    g = torch.Generator().manual_seed(4)
    noise = torch.randint(0, 256, (120, 3, 32, 32), generator=g, dtype=torch.uint8)
    result = compute_metrics(["c2st"], context(real, (noise, real[1].clone())))["c2st"]
    assert result["value"] >= 0.9, result
    assert result["real_accuracy"] >= 0.8 and result["generated_accuracy"] >= 0.8
    assert all(row["accuracy"] >= 0.8 for row in result["per_class"].values()), result["per_class"]
    assert result["p_value"] < 1e-6 and result["ci95"][0] > 0.8
    assert result["auc"] >= 0.9 and 0 < result["threshold"] < 1
    assert result["real_baseline"] is None and "no real test images" in result["baseline"]["reason"]
    classifier = result["classifier"]
    assert classifier["steps"] == 40 and classifier["batch_size"] == 32 and classifier["seed"] == 0
    assert classifier["resolution"] == 32 and classifier["from_scratch"] and classifier["arch"]


def test_c2st_is_deterministic_given_its_seed_and_shows_in_the_report(tmp_path):
    real, fake, test = squares(6, seed=5), squares(6, seed=6), squares(4, seed=7)
    options = {"c2st_steps": 3, "c2st_batch": 8, "c2st_max_per_class": 4}
    first = compute_metrics(["c2st"], context(real, fake, test, **options))
    again = compute_metrics(["c2st"], context(real, fake, test, **options))
    assert first == again
    result = first["c2st"]
    assert result["n_real"] == result["n_generated"] == 6  # 4 per class, half held out
    assert result["classifier"]["max_per_class"] == 4
    report = write_report(first, context(real, fake, test, **options), tmp_path, meta={}).read_text()
    assert "C2ST" in report and "real train vs real test" in report
    assert "## Realism: classifier two-sample test" in report and "3 steps" in report
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["metrics"]["c2st"]["real_baseline"] == result["real_baseline"]
    summary = {"name": "m", "resolution": 32, "class_names": CLASSES, "step": 1, "precision": "fp32"}
    card = model_card({**summary, "commands": []}, saved)
    assert "## Realism: classifier two-sample test (`c2st`)" in card
    assert f"**{100 * result['value']:.1f}%**" in card and f"**{100 * result['real_baseline']:.1f}%**" in card


def test_too_few_images_give_no_value_and_a_reason():
    real, fake = squares(1, seed=8), squares(1, seed=9)  # one image per class on each side
    result = compute_metrics(["c2st"], context(real, fake, real))["c2st"]
    assert result["value"] is None and "too few images" in result["reason"]
    assert result["real_baseline"] is None


def test_balanced_halves_match_both_sides_within_each_class():
    labels_a = np.array([0] * 10 + [1] * 3 + [2] * 7)
    labels_b = np.array([0] * 4 + [1] * 9 + [2] * 7)
    train_a, held_a, train_b, held_b = balanced_halves(labels_a, labels_b, 3, seed=0, max_per_class=6)
    for c, k in ((0, 4), (1, 3), (2, 6)):
        assert (labels_a[train_a] == c).sum() == (labels_b[train_b] == c).sum() == k // 2
        assert (labels_a[held_a] == c).sum() == (labels_b[held_b] == c).sum() == k - k // 2
    assert not set(train_a) & set(held_a) and not set(train_b) & set(held_b)
    again = balanced_halves(labels_a, labels_b, 3, seed=0, max_per_class=6)
    assert all(np.array_equal(x, y) for x, y in zip(again, (train_a, held_a, train_b, held_b)))


def test_settings_default_and_validate():
    ctx = MetricContext(CLASSES, None, image_set(*squares(1, 0)), image_set(*squares(1, 0)), seed=7)
    assert c2st_settings(ctx) == {
        "arch": "mobilenet_v3_small",
        "stem_stride": 2,
        "steps": 300,
        "batch_size": 64,
        "seed": 7,
        "max_per_class": None,
        "augment": "none",
        "coarse_px": None,
    }
    ctx.options = {"c2st_coarse_px": 32}  # the images' own size: nothing to reduce
    with pytest.raises(ValueError, match="from 2 to 31"):
        c2st_settings(ctx)
    ctx.options = {"c2st_steps": 0}
    with pytest.raises(ValueError, match="positive steps"):
        c2st_settings(ctx)
    ctx.options = {"c2st_max_per_class": 1}
    with pytest.raises(ValueError, match="at least 2"):
        c2st_settings(ctx)
    assert wilson_interval(0, 0) is None
    low, high = wilson_interval(50, 100)
    assert low < 0.5 < high and high - low == pytest.approx(0.19, abs=0.01)


def striped_squares(per_class: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``squares`` whose noisy background is replaced by 1-pixel stripes of the same mean: told apart
    from them by fine texture only."""
    images, labels = squares(per_class, seed)
    stripes = torch.zeros(32, 32, dtype=torch.uint8)
    stripes[:, ::2] = 79
    background = (images < 80).all(dim=1, keepdim=True)  # the squares' colours have a channel above 80
    return torch.where(background, stripes, images), labels


def test_coarse_c2st_tells_a_texture_from_a_shape_difference(tmp_path):
    """A difference in fine texture only: told apart at full detail, not once both sides are reduced to
    4 px (the squares' placement, size and colour are drawn alike on both sides)."""
    real, fake = squares(40, seed=3), striped_squares(40, seed=5)
    full = compute_metrics(["c2st"], context(real, fake))["c2st"]
    assert full["value"] >= 0.9, full
    coarse = compute_metrics(["c2st"], context(real, fake, squares(40, seed=6), c2st_coarse_px=4))["c2st"]
    assert 0.3 <= coarse["value"] <= 0.7, coarse
    assert coarse["classifier"]["coarse_px"] == 4 and "reduced to 4 px" in coarse["label"]
    assert coarse["real_baseline"] is not None  # the baseline is reduced alike


def test_the_report_shows_which_samples_come_closest_to_passing(tmp_path):
    """Half of each class's samples are drawn like the real images, half are noise: the held-out
    samples the test finds most photo-like must be drawn ones, the least photo-like noise."""
    real, test = squares(40, seed=3), squares(20, seed=2)
    drawn_images, drawn_labels = squares(40, seed=11)
    g = torch.Generator().manual_seed(12)
    noise = torch.randint(0, 256, drawn_images.shape, generator=g, dtype=torch.uint8)
    fake = (torch.cat([drawn_images, noise]), np.concatenate([drawn_labels, drawn_labels]))
    ctx = context(real, fake, test)
    results = compute_metrics(["c2st"], ctx)
    result = results["c2st"]
    most, least = result["most_photo_like"], result["least_photo_like"]
    assert set(most) == set(least) == set(CLASSES)
    n_drawn = len(drawn_images)
    for name, c in zip(CLASSES, range(len(CLASSES))):
        assert len(most[name]) == len(least[name]) == 3
        assert all(fake[1][row["fake_index"]] == c for row in most[name] + least[name])
        assert all(row["fake_index"] < n_drawn for row in most[name]), most[name]
        assert all(row["fake_index"] >= n_drawn for row in least[name]), least[name]
        p_most = [row["p_real"] for row in most[name]]
        p_least = [row["p_real"] for row in least[name]]
        assert p_most == sorted(p_most, reverse=True) and p_least == sorted(p_least)
        assert min(p_most) > max(p_least)
    json.dumps(result)
    report = write_report(results, ctx, tmp_path, meta={}).read_text()
    assert "### Which samples come closest to passing" in report
    assert f"counted a sample as real from {result['threshold']:.2f} up" in report
    assert "![real, most and least photo-like samples per class](c2st_photo_likeness.png)" in report
    assert f"{most[CLASSES[0]][0]['p_real']:.2f} (#{most[CLASSES[0]][0]['fake_index']})" in report
    from PIL import Image

    with Image.open(tmp_path / "c2st_photo_likeness.png") as grid:
        assert grid.width > 9 * 32 and grid.height > len(CLASSES) * 32  # 3 groups of 3 tiles per class row


def test_the_threshold_is_fitted_on_the_training_half():
    from gan_studio.metrics.c2st import fitted_threshold

    p = np.array([0.05, 0.1, 0.2, 0.3, 0.35, 0.4])
    is_a = np.array([False, False, False, True, True, True])
    assert 0.2 < fitted_threshold(p, is_a) < 0.3  # every image sorted right, though all are below 0.5
    assert fitted_threshold(np.array([0.7, 0.7]), np.array([True, False])) == pytest.approx(0.7 - 1e-9)


def test_an_off_centre_classifier_that_ranks_the_sides_apart_reads_as_telling_them_apart(monkeypatch):
    """A classifier stopped early can sort the sides perfectly and still call every image "generated"
    at 0.5 (its batch-norm statistics off-centre): at 0.5 that read as chance. With the threshold
    fitted on the training half the test reads 1.0, and the AUC says the same without any threshold."""
    import gan_studio.models.classifier_fit as fit

    class OffCentre:
        def predict_uint8(self, images, *args, **kwargs):
            dark = images.float().mean(dim=(1, 2, 3)).numpy() < 100  # the squares; noise averages 127
            p_real = np.where(dark, 0.3, 0.1)
            return np.stack([p_real, 1 - p_real], axis=1), None

    monkeypatch.setattr(fit, "train_classifier", lambda *args, **kwargs: OffCentre())
    real = squares(20, seed=3)
    noise = torch.randint(
        0, 256, real[0].shape, generator=torch.Generator().manual_seed(4), dtype=torch.uint8
    )
    result = compute_metrics(["c2st"], context(real, (noise, real[1].clone())))["c2st"]
    assert result["value"] == 1.0 and result["auc"] == 1.0, result
    assert 0.1 < result["threshold"] < 0.3
