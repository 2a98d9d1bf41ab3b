"""study: paired statistics and verdicts, arm planning under a budget, the convergence rule, the
synthetic filters, and one tiny study end to end (tiny recipe, 2 seeds) with its report and resume."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import stats as scipy_stats

from gan_studio.cli import main
from gan_studio.metrics.candidates import FilterRule, SyntheticPool
from gan_studio.study.arms import default_arms, plan_arms, select_arms
from gan_studio.study.fit import (
    ConvergenceRule,
    TrainingMix,
    _Batches,
    fit_to_convergence,
    learning_threshold,
)
from gan_studio.study.stats import paired_difference


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Tiny classifiers gain nothing from intra-op threads; two spinning OpenMP threads on a busy CI
    box make each step many times slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ------------------------------------------------------------------------------------ statistics


def test_paired_difference_interval_and_verdicts():
    arm = {0: 0.80, 1: 0.84, 2: 0.82}
    reference = {0: 0.70, 1: 0.75, 2: 0.71}
    result = paired_difference(arm, reference)
    diffs = np.array([0.10, 0.09, 0.11])
    half = scipy_stats.t.ppf(0.975, 2) * diffs.std(ddof=1) / math.sqrt(3)
    assert result["n"] == 3 and result["mean"] == pytest.approx(0.10)
    assert result["low"] == pytest.approx(0.10 - half) and result["high"] == pytest.approx(0.10 + half)
    assert result["verdict"] == "helps"
    assert paired_difference(reference, arm)["verdict"] == "hurts"
    noisy = paired_difference({0: 0.80, 1: 0.70, 2: 0.78}, {0: 0.75, 1: 0.76, 2: 0.74})
    assert noisy["low"] < 0 < noisy["high"] and noisy["verdict"] == "no detectable effect"
    # Only seeds both arms have count; one seed gives no interval.
    single = paired_difference({0: 0.9, 5: 0.1}, {0: 0.5})
    assert single["n"] == 1 and single["low"] is None and single["verdict"] == "too few seeds"


# ---------------------------------------------------------------------------------------- arms


def test_default_arms_cover_the_ratios_filters_and_levers():
    names = [arm.name for arm in default_arms()]
    assert len(names) == len(set(names))
    for base in ("real", "real+classic"):
        assert base in names
        for ratio in ("0.2", "0.75", "1.25", "2"):
            assert f"{base}+syn@{ratio}" in names and f"{base}+syn_filtered@{ratio}" in names
    for lever in (
        "real+classic+syn_confident@1.25",
        "real+classic+syn_filtered@1.25:pretrain",
        "real+classic+syn_filtered@1.25:weight0.5",
        "real+classic+syn_filtered:share0.25",
    ):
        assert lever in names
    lever = next(a for a in default_arms() if a.name.endswith(":pretrain"))
    assert lever.comparisons() == [
        (lever.name, "real+classic"),
        (lever.name, "real+classic+syn_filtered@1.25"),
    ]
    chosen = [a.name for a in select_arms(default_arms(), "real+classic+syn_filtered@1.25:weight0.5")]
    assert set(chosen) == {
        "real+classic+syn_filtered@1.25:weight0.5",
        "real+classic",
        "real+classic+syn_filtered@1.25",
    }
    with pytest.raises(ValueError, match="Unknown arm"):
        select_arms(default_arms(), "real+magic")


def test_budget_keeps_the_key_comparison_whole_and_reports_the_cuts():
    arms = default_arms()
    full = plan_arms(arms, 3, seconds_per_fit=60, done=set(), budget_s=None)
    assert not full.cut and full.estimate_s == pytest.approx(
        60 * 3 * sum(2 if a.use == "pretrain" else 1 for a in arms)
    )
    small = plan_arms(arms, 3, seconds_per_fit=60, done=set(), budget_s=60 * 3 * 4)
    kept = {a.name for a in small.kept}
    assert {"real+classic", "real+classic+syn_filtered@1.25", "real", "real+syn_filtered@1.25"} == kept
    assert small.cut and "cut to fit the budget" in small.describe()[1]
    # A budget too small for anything still keeps the key comparison whole, never a lone baseline.
    tight = plan_arms(arms, 3, seconds_per_fit=60, done=set(), budget_s=60)
    assert {a.name for a in tight.kept} == {"real+classic", "real+classic+syn_filtered@1.25"}
    # ... also when its baseline has already started: a resumed study never keeps the baseline alone.
    resumed = plan_arms(arms, 3, seconds_per_fit=60, done={("real+classic", 0)}, budget_s=60)
    assert {a.name for a in resumed.kept} == {"real+classic", "real+classic+syn_filtered@1.25"}
    # Finished fits cost nothing: with everything done, every arm fits any budget.
    done = {(a.name, s) for a in arms for s in range(3)}
    assert not plan_arms(arms, 3, seconds_per_fit=60, done=done, budget_s=1).cut


# ---------------------------------------------------------------------- convergence and batches


def test_fixed_share_batches_and_weights():
    real = torch.zeros(10, 3, 8, 8, dtype=torch.uint8)
    syn = torch.full((40, 3, 8, 8), 255, dtype=torch.uint8)
    labels = torch.zeros(10, dtype=torch.long)
    mix = TrainingMix(
        real, labels, syn, torch.ones(40, dtype=torch.long), synthetic_share=0.25, synthetic_weight=0.5
    )
    images, batch_labels, weights = _Batches(mix, 8, torch.Generator().manual_seed(0)).next()
    assert (
        len(images) == 8 and int((batch_labels == 1).sum()) == 2
    )  # a quarter of every batch, whatever the pool
    assert weights.tolist() == [1.0] * 6 + [0.5] * 2
    pooled = _Batches(TrainingMix(real, labels, syn, torch.ones(40, dtype=torch.long)), 50, torch.Generator())
    _, pooled_labels, _ = pooled.next()
    assert int((pooled_labels == 1).sum()) == 40  # one dataset: synthetic images by their count


def test_convergence_rule_stops_on_patience_and_keeps_the_best_weights():
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (40, 3, 32, 32), dtype=torch.uint8, generator=generator)
    labels = torch.arange(40) % 2
    images[labels == 1, 0] = 255  # class 1 is red: learnable
    rule = ConvergenceRule(
        max_steps=400, eval_every=5, patience=4, min_steps=10, batch_size=8, warmup_steps=2
    )
    result = fit_to_convergence(
        TrainingMix(images, labels),
        images[:20],
        labels[:20],
        class_names=["a", "b"],
        rule=rule,
        # ResNet-18 learns this in a few steps on every CPU; MobileNetV3's slow batch-norm statistics
        # (momentum 0.01) kept its evaluations at chance for 400 steps on one CPU and not another.
        arch="resnet18",
        seed=0,
        precision="fp32",
        device="cpu",
    )
    assert result.stopped_by == "patience" and result.steps < rule.max_steps
    assert result.best_step == max(result.history, key=lambda h: (h["val_accuracy"], -h["val_loss"]))["step"]
    from gan_studio.study.fit import validation_scores

    accuracy, loss = validation_scores(result.model, images[:20], labels[:20], "fp32")
    assert accuracy == pytest.approx(result.best_val_accuracy) and loss == pytest.approx(
        result.best_val_loss, rel=1e-4
    )


def test_a_fit_is_a_function_of_its_seed_and_leaves_the_callers_rng_alone():
    """Same inputs and seed: the same weights and history (the classifier and its AdamW are made under
    the seed by models.classifier_fit.seeded_classifier); another seed: other weights."""
    generator = torch.Generator().manual_seed(1)
    images = torch.randint(0, 256, (16, 3, 32, 32), dtype=torch.uint8, generator=generator)
    labels = torch.arange(16) % 2
    rule = ConvergenceRule(max_steps=6, eval_every=3, patience=2, min_steps=3, batch_size=8, warmup_steps=1)

    def fit(seed, init_state=None):
        return fit_to_convergence(
            TrainingMix(images, labels, augment="classic"), images[:8], labels[:8], class_names=["a", "b"],
            rule=rule, seed=seed, precision="fp32", device="cpu", init_state=init_state,
        )  # fmt: skip

    torch.manual_seed(123)
    first = fit(0)
    after_fit = torch.rand(1)
    torch.manual_seed(123)
    assert torch.equal(torch.rand(1), after_fit)
    second, other_seed = fit(0), fit(1)
    for key, value in first.model.state_dict().items():
        assert torch.equal(value, second.model.state_dict()[key]), key
    assert first.history == second.history
    assert not torch.equal(first.model.head.weight, other_seed.model.head.weight)
    # Starting from given weights is as reproducible, and starts from them, not from the seed's own.
    a, b = fit(2, init_state=first.model.state_dict()), fit(2, init_state=first.model.state_dict())
    assert all(torch.equal(v, b.model.state_dict()[k]) for k, v in a.model.state_dict().items())
    assert not torch.equal(a.model.head.weight, fit(2).model.head.weight)


class _ScoredEvaluator:
    """A stand-in evaluator: the confidence of an image is its mean red value, its feature the mean colour."""

    def predict_uint8(self, images, precision="fp32"):
        red = images[:, 0].float().mean(dim=(1, 2)).numpy() / 255
        probs = np.stack([1 - red, red], axis=1)
        return probs, images.float().mean(dim=(2, 3)).numpy()


def test_a_stricter_filter_only_removes_images_from_the_same_stream():
    def generate(c, seeds):
        values = torch.tensor([(s * 37) % 256 for s in seeds], dtype=torch.uint8)
        return values.view(-1, 1, 1, 1).expand(-1, 3, 4, 4).clone()

    def novelty(features, c):
        return features[:, 1] / 255 * 2  # green channel decides "novelty" here

    pool = SyntheticPool(
        generate, _ScoredEvaluator(), novelty, FilterRule(0.5, 0.6, max_factor=10), first_seed=0
    )
    plain, plain_met = pool.select(1, 5, "none")
    confident, _ = pool.select(1, 5, "confidence")
    strict, strict_met = pool.select(1, 5, "confidence+novelty")
    assert plain.tolist() == [0, 1, 2, 3, 4] and plain_met and strict_met
    stream = pool.streams[1]
    assert all(stream.confidence[i] >= 0.5 for i in confident)
    assert all(stream.confidence[i] >= 0.5 and stream.novelty[i] >= 0.6 for i in strict)
    assert set(strict) <= set(np.flatnonzero(stream.confidence >= 0.5))
    # Impossible filters stop at the cap and say so.
    impossible = SyntheticPool(
        generate, _ScoredEvaluator(), novelty, FilterRule(1.0, 5.0, max_factor=3), first_seed=0
    )
    chosen, met = impossible.select(1, 4, "confidence+novelty")
    assert len(chosen) == 0 and not met and len(impossible.streams[1]) == 12


# ------------------------------------------------------------------------------------ end to end

TINY_STUDY = [
    "--seeds",
    "2",
    "--ratios",
    "1",
    "--max-steps",
    "8",
    "--eval-every",
    "4",
    "--patience",
    "2",
    "--min-steps",
    "4",
    "--batch",
    "8",
    "--device",
    "cpu",
    "--precision",
    "fp32",
    "--c2st-steps",
    "5",
    "--no-progress",
]


@pytest.fixture(scope="module")
def tiny_study(demo_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("study") / "tiny"
    argv = ["study", "--data", str(demo_dir), "--recipe", "tiny", "--train-per-class", "3", "--out", str(out)]
    assert main([*argv, *TINY_STUDY]) == 0
    return out


def test_tiny_study_reports_every_arm_with_intervals_and_verdicts(tiny_study):
    doc = json.loads((tiny_study / "results.json").read_text())
    expected = {arm.name for arm in default_arms((1.0,))}
    assert {a["name"] for a in doc["arms"]} == expected and not doc["cut"]
    assert {(r["arm"], r["seed"]) for r in doc["rows"]} == {(name, s) for name in expected for s in (0, 1)}
    assert doc["setup"]["n_train"] == 30  # 3 per class: the GAN, the evaluator and every arm see only these
    run = json.loads((tiny_study / "gan" / "run.json").read_text())
    assert run["config"]["steps"] == 30 and [p["from_step"] for p in run["phases"]] == [15]
    gan_split = json.loads((tiny_study / "split.json").read_text())
    validation = set(json.loads((tiny_study / "validation.json").read_text())["validation"])
    assert len(gan_split["train"]) == 30 and not validation & (
        set(gan_split["train"]) | set(gan_split["test"])
    )
    for comparison in doc["comparisons"]:
        assert comparison["n"] == 2 and comparison["low"] <= comparison["mean"] <= comparison["high"]
        assert comparison["verdict"] in ("helps", "no detectable effect", "hurts")
    report = (tiny_study / "report.md").read_text()
    for name in expected:
        assert f"| {name} |" in report
    assert "95% CI" in report and "## Comparisons (paired by seed)" in report and "did not learn |" in report
    for row in doc["rows"]:  # each fit says whether it learned, and its validation curve
        assert isinstance(row["learned"], bool) and row["val_curve"][-1][0] == row["steps"] - (
            row["pretrain_steps"] or 0
        )
    assert "## Realism of the synthetic images (c2st)" in report
    realism = json.loads((tiny_study / "realism.json").read_text())
    assert set(realism["tests"]) == {
        "real train vs validation (baseline)",
        "real train vs synthetic (unfiltered)",
        "real train vs synthetic (filtered)",
    }
    assert realism["settings"]["steps"] == 5 and doc["realism"] == realism
    with (tiny_study / "results.csv").open() as f:
        assert len(list(csv.DictReader(f))) == 2 * len(expected)
    assert (tiny_study / "differences.html").stat().st_size > 0


def test_tiny_study_resumes_without_retraining_and_refuses_other_settings(tiny_study, demo_dir, capsys):
    before = json.loads((tiny_study / "results.json").read_text())["rows"]
    argv = [
        "study",
        "--data",
        str(demo_dir),
        "--recipe",
        "tiny",
        "--train-per-class",
        "3",
        "--out",
        str(tiny_study),
    ]
    assert main([*argv, *TINY_STUDY]) == 0
    assert json.loads((tiny_study / "results.json").read_text())["rows"] == before
    changed = [*TINY_STUDY]
    changed[changed.index("--patience") + 1] = "3"
    assert main([*argv, *changed]) == 2
    assert "other settings (rule differ)" in capsys.readouterr().err


def test_a_fit_still_at_chance_is_not_stopped_by_patience():
    """Labels the images cannot predict: validation stays at chance, so the fit runs to its cap, and
    at its full learning rate (a slow start is not a plateau: halving the rate there can leave it too
    small to ever start)."""
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (16, 3, 32, 32), dtype=torch.uint8, generator=g)
    labels = torch.arange(16) % 2
    val_images = torch.randint(0, 256, (8, 3, 32, 32), dtype=torch.uint8, generator=g)
    val_labels = torch.tensor([0, 1] * 4)
    rule = ConvergenceRule(max_steps=12, eval_every=2, patience=2, min_steps=2, batch_size=8, lr=1e-12)
    result = fit_to_convergence(
        TrainingMix(images, labels), val_images, val_labels, class_names=["a", "b"], rule=rule,
        precision="fp32", device="cpu",
    )  # fmt: skip
    assert result.best_val_accuracy <= 0.5 and result.stopped_by == "cap" and result.steps == 12
    assert {h["lr"] for h in result.history} == {rule.lr}


def test_learning_means_beating_chance_by_more_than_luck():
    """On 100 balanced validation images of ten classes chance reads 10% +- 3%: a fit that peaks at
    14% has not shown that it learned; 17% has (two standard errors above chance)."""
    labels = torch.arange(100) % 10
    threshold = learning_threshold(labels)
    assert threshold == pytest.approx(0.1 + 2 * (0.1 * 0.9 / 100) ** 0.5)
    assert 0.14 < threshold < 0.17
    assert learning_threshold(torch.tensor([0, 0, 0, 1])) == pytest.approx(
        0.75 + 2 * (0.75 * 0.25 / 4) ** 0.5
    )


def test_a_help_over_a_baseline_that_did_not_learn_or_among_many_comparisons_says_so():
    from gan_studio.study.report import headline, summarize

    arms = [
        a.to_dict()
        for a in select_arms(default_arms((1.25,)), "real+syn_filtered@1.25,real+classic+syn_filtered@1.25")
    ]
    accuracy = {  # per seed: +5, +11, +8 over a baseline near chance; noise against real+classic
        "real": [0.14, 0.12, 0.15], "real+syn_filtered@1.25": [0.19, 0.23, 0.23],
        "real+classic": [0.55, 0.52, 0.57], "real+classic+syn_filtered@1.25": [0.54, 0.55, 0.56],
    }  # fmt: skip
    rows = [
        {"arm": a, "seed": s, "accuracy": v, "n_synthetic": 0, "steps": 100, "stopped_by": "patience",
         "quota_met": True, "learned": not (a == "real" and s == 1)}
        for a, values in accuracy.items() for s, v in enumerate(values)
    ]  # fmt: skip
    summary, comparisons = summarize({"arms": arms, "rows": rows})
    helped = next(c for c in comparisons if c["arm"] == "real+syn_filtered@1.25")
    assert helped["verdict"] == "helps" and helped["family_confidence"] == pytest.approx(0.975)
    text = headline(comparisons, summary)
    assert text.startswith("**Synthetic images help**: real+syn_filtered@1.25 beats real")
    assert "did not learn in 1 of 3 seeds" in text
    # 95%: [+0.5, +15.5]; over two comparisons the 97.5% interval reaches below zero.
    assert helped["low"] > 0 and helped["family_verdict"] == "no detectable effect"
    assert "does not hold at the corrected level (97.5% interval)" in text


def test_realism_is_measured_again_when_the_images_change(tmp_path, monkeypatch):
    """realism.json is reused only for the very images it compared: other synthetic images (a new
    generator, split or filter) are tested again, never reported with the old figure."""
    from types import SimpleNamespace

    from gan_studio.study import realism

    calls = []

    def fake_test(a, b, *, sides, **_):
        calls.append(sides)
        return {"value": 0.5, "ci95": [0.4, 0.6], "p_value": 0.5, "n_real": len(a), "n_generated": len(b)}

    monkeypatch.setattr(realism, "two_sample_test", fake_test)
    g = torch.Generator().manual_seed(0)

    def images(n):
        return torch.randint(0, 256, (n, 3, 8, 8), dtype=torch.uint8, generator=g)

    labels = torch.tensor([0, 1] * 4)
    real = SimpleNamespace(images=images(8), labels=labels, class_names=["a", "b"])
    validation = SimpleNamespace(images=images(8), labels=labels, class_names=["a", "b"])
    synthetic = {"synthetic (filtered)": (images(8), labels)}
    check = lambda syn: realism.realism_check(tmp_path, real, validation, syn, steps=5, device="cpu")  # noqa: E731
    first = check(synthetic)
    assert len(calls) == 2 and check(synthetic) == first and len(calls) == 2  # same images: cached
    check({"synthetic (filtered)": (images(8), labels)})
    assert len(calls) == 4  # other images: measured again
