"""The evaluator classifier: training budget and determinism, save/load, local backbone weights, and the
train-evaluator / evaluate commands on a tiny dataset of coloured squares."""

from __future__ import annotations

import hashlib
import importlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image

from gan_studio import sampling
from gan_studio.cli import main
from gan_studio.data import load_labeled_images, load_split, make_split, save_split
from gan_studio.evaluation.classifier import EvaluatorClassifier, load_evaluator, save_evaluator
from gan_studio.models.classifier_fit import evaluate_classifier, train_classifier

CLASSES = {"Blue": (40, 40, 220), "Green": (40, 220, 40), "Red": (220, 40, 40)}  # sorted, as folders are
PER_CLASS = 12
COMMON = ["--device", "cpu", "--no-progress"]
train_module = importlib.import_module(
    "gan_studio.models.classifier_fit"
)  # the package re-exports its function


def coloured_squares(n: int, colour: tuple[int, int, int], rng: np.random.Generator) -> list[np.ndarray]:
    images = []
    for _ in range(n):
        image = rng.integers(0, 80, size=(32, 32, 3), dtype=np.uint8)
        size = int(rng.integers(16, 26))
        y, x = rng.integers(0, 32 - size, size=2)
        image[y : y + size, x : x + size] = colour
        images.append(image)
    return images


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("squares")
    rng = np.random.default_rng(0)
    for name, colour in CLASSES.items():
        (root / name).mkdir()
        for i, image in enumerate(coloured_squares(PER_CLASS, colour, rng)):
            Image.fromarray(image).save(root / name / f"img {i:02d}.png")
    return root


@pytest.fixture(scope="module")
def evaluator_dir(dataset, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("evaluator")
    argv = ["train-evaluator", "--data", str(dataset), "--out", str(out), "--res", "32"]
    assert main([*argv, "--steps", "30", "--batch", "24", "--precision", "fp32", *COMMON]) == 0
    return out


def digest(image: torch.Tensor) -> str:
    return hashlib.sha256(image.numpy().tobytes()).hexdigest()


def test_train_evaluator_writes_model_split_and_test_scores(evaluator_dir, capsys):
    config = json.loads((evaluator_dir / "config.json").read_text())
    assert config["class_names"] == list(CLASSES) and config["arch"] == "mobilenet_v3_small"
    assert config["resolution"] == 32
    assert (evaluator_dir / "model.safetensors").is_file()
    split = load_split(evaluator_dir / "split.json")
    assert not set(split.train) & set(split.test)
    assert len(split.train) + len(split.test) == len(CLASSES) * PER_CLASS
    training = json.loads((evaluator_dir / "training.json").read_text())
    assert training["split"]["n_test"] == len(split.test) and training["steps"] == 30
    assert np.array(training["confusion_matrix"]).sum() == len(split.test)
    assert set(training["per_class_accuracy"]) == set(CLASSES)
    assert training["test_accuracy"] >= 0.8  # the classes differ by colour: easy even after 30 steps


def test_train_evaluator_trains_only_on_the_train_split(dataset, tmp_path, monkeypatch):
    data = load_labeled_images(dataset, 32, progress=False)
    split = make_split(data.records, test_fraction=0.4, seed=5)
    save_split(split, tmp_path / "gan_run_split.json")
    _, test_idx = split.indices(data.records)
    test_digests = {digest(image) for image in data.images[test_idx]}
    seen = {}

    def spy(images, labels, **kwargs):
        seen["digests"] = {digest(image) for image in images}
        return train_classifier(images, labels, **kwargs)

    monkeypatch.setattr(train_module, "train_classifier", spy)
    out = tmp_path / "evaluator"
    argv = ["train-evaluator", "--data", str(dataset), "--out", str(out), "--res", "32", "--steps", "2"]
    assert main([*argv, "--split", str(tmp_path / "gan_run_split.json"), "--precision", "fp32", *COMMON]) == 0
    assert len(seen["digests"]) == len(split.train)
    assert not seen["digests"] & test_digests
    assert load_split(out / "split.json") == split  # the split used is kept with the evaluator


def test_train_evaluator_few_shot_uses_the_gan_runs_subset(dataset, tmp_path):
    """--train-per-class N picks the same images as `train --train-per-class N` and records only them."""
    from gan_studio.data import few_shot_paths

    data = load_labeled_images(dataset, 32, progress=False)
    split = make_split(data.records, test_fraction=0.25, seed=3)
    save_split(split, tmp_path / "split.json")
    out = tmp_path / "evaluator"
    argv = ["train-evaluator", "--data", str(dataset), "--out", str(out), "--res", "32", "--steps", "2"]
    argv += ["--split", str(tmp_path / "split.json"), "--train-per-class", "4", "--seed", "3"]
    assert main([*argv, "--precision", "fp32", *COMMON]) == 0
    own = load_split(out / "split.json")
    train_records = [r for r in data.records if r.path in set(split.train)]
    assert own.train == few_shot_paths(train_records, 4, seed=3)
    assert len(own.train) == 4 * len(CLASSES) and own.test == split.test
    training = json.loads((out / "training.json").read_text())
    assert training["split"]["n_train"] == 4 * len(CLASSES) and training["split"]["train_per_class"] == 4


def test_save_and_load_round_trip_gives_identical_outputs(tmp_path):
    torch.manual_seed(0)
    model = EvaluatorClassifier(arch="mobilenet_v3_small", class_names=["x", "y"], resolution=48)
    images = torch.randint(0, 256, (6, 3, 40, 40), dtype=torch.uint8)  # other size: resized to 48
    model.recalibrate_batchnorm(images)
    save_evaluator(model, tmp_path / "ev", training={"steps": 0})
    loaded = load_evaluator(tmp_path / "ev", device="cpu")
    assert (loaded.arch, loaded.class_names, loaded.resolution) == ("mobilenet_v3_small", ["x", "y"], 48)
    probs, features = model.eval().predict_uint8(images)
    probs2, features2 = loaded.predict_uint8(images)
    np.testing.assert_array_equal(probs, probs2)
    np.testing.assert_array_equal(features, features2)
    assert features.shape == (6, model.num_features)
    assert not list((tmp_path / "ev").glob(".save-*"))  # the staging folder is gone


def test_loading_a_missing_evaluator_names_the_fix(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match="model.safetensors.*train-evaluator"):
        load_evaluator(tmp_path)


def test_local_torchvision_weights_initialise_the_backbone_but_not_the_head(tmp_path):
    torch.manual_seed(1)
    source = torchvision.models.mobilenet_v3_small(weights=None)  # 1000-class head, like ImageNet weights
    torch.save(source.state_dict(), tmp_path / "mobilenet.pth")
    model = EvaluatorClassifier(arch="mobilenet_v3_small", class_names=["x", "y", "z"])
    model.load_local_backbone_weights(tmp_path / "mobilenet.pth")
    torch.testing.assert_close(model.backbone.features[0][0].weight, source.features[0][0].weight)
    torch.testing.assert_close(model.backbone.classifier[0].weight, source.classifier[0].weight)
    assert model.head.out_features == 3

    with pytest.raises(ValueError, match=r"mobilenet\.pth.*do not fit torchvision's resnet18"):
        EvaluatorClassifier(arch="resnet18", class_names=["x", "y"]).load_local_backbone_weights(
            tmp_path / "mobilenet.pth"
        )


def test_local_weights_are_never_unpickled(tmp_path):
    torch.save({"model": Path("not a tensor")}, tmp_path / "pickle.pth")  # needs full unpickling to load
    with pytest.raises(ValueError, match=r"Cannot read backbone weights .*pickle\.pth"):
        EvaluatorClassifier(class_names=["x", "y"]).load_local_backbone_weights(tmp_path / "pickle.pth")


def test_training_is_deterministic_for_a_seed_and_leaves_global_rng_alone():
    rng = np.random.default_rng(3)
    images = (
        torch.from_numpy(np.stack(coloured_squares(8, (200, 40, 40), rng))).permute(0, 3, 1, 2).contiguous()
    )
    labels = torch.arange(8) % 2

    def train(seed):
        return train_classifier(
            images,
            labels,
            class_names=["x", "y"],
            steps=2,
            batch_size=4,
            seed=seed,
            precision="fp32",
            progress=False,
        )

    torch.manual_seed(123)
    first = train(seed=0)
    after_training = torch.rand(1)
    torch.manual_seed(123)
    assert torch.equal(torch.rand(1), after_training)
    second, other_seed = train(seed=0), train(seed=1)
    for key, value in first.state_dict().items():
        assert torch.equal(value, second.state_dict()[key]), key
    assert not torch.equal(first.head.weight, other_seed.head.weight)
    scores = evaluate_classifier(first, images, labels)
    assert scores["n"] == 8 and np.array(scores["confusion_matrix"]).sum() == 8


def fake_run(tmp_path: Path, dataset: Path, split: Path):
    """A run folder recording the dataset and split, plus the real training images the run learned from."""
    run_dir = tmp_path / "run"
    run_dir.mkdir(exist_ok=True)
    (run_dir / "run.json").write_text(json.dumps({"data": {"source": str(dataset), "fit": "center-crop"}}))
    shutil.copy(split, run_dir / "split.json")
    data = load_labeled_images(dataset, 32, progress=False)
    train_idx, _ = load_split(run_dir / "split.json").indices(data.records)
    return run_dir, data.subset(train_idx)


@pytest.fixture
def evaluate(tmp_path, dataset, evaluator_dir, monkeypatch):
    """Run `evaluate` on a stand-in generator that returns training images of class class_for(c) for class c
    (or class_for(c, seed) when it takes the seed too)."""

    def run(class_for, *extra, evaluator=evaluator_dir, split=evaluator_dir / "split.json"):
        source = class_for if class_for.__code__.co_argcount == 2 else (lambda c, s: class_for(c))
        run_dir, train = fake_run(tmp_path, dataset, split)

        def load_generator(path, device=None):
            info = sampling.GeneratorInfo(list(CLASSES), 32, step=100, source=str(path), run_dir=Path(path))
            return torch.nn.Identity(), info

        def generate(generator, class_indices, seeds, **kwargs):
            pools = [train.images[train.labels == c] for c in range(len(CLASSES))]
            picked = [(source(c, s), s) for c, s in zip(class_indices, seeds)]
            return torch.stack([pools[k][s % len(pools[k])] for k, s in picked])

        monkeypatch.setattr(sampling, "load_generator", load_generator)
        monkeypatch.setattr(sampling, "generate", generate)
        out = tmp_path / "report"
        argv = ["evaluate", "--ckpt", str(run_dir), "--evaluator", str(evaluator), "--out", str(out)]
        code = main([*argv, "--n-per-class", "6", *extra, *COMMON])
        return code, out

    return run


def test_evaluate_flags_a_generator_that_copies_training_images(evaluate, tmp_path):
    progress = tmp_path / "progress.json"
    code, out = evaluate(lambda c: c, "--c2st-steps", "30", "--progress-file", str(progress))
    assert code == 0
    stages = [name for name, _ in json.loads(progress.read_text())["completed"]]
    assert stages[-3:] == ["metrics", "c2st", "report"]  # c2st trains classifiers: a stage of its own
    saved = json.loads((out / "metrics.json").read_text())
    metrics = saved["metrics"]
    assert metrics["c2st"]["classifier"]["steps"] == 30 and metrics["c2st"]["real_baseline"] is not None
    assert metrics["memorization"]["value"] == 1.0
    assert all(pair["ratio"] < 1e-3 and pair["real_name"] for pair in metrics["memorization"]["worst_pairs"])
    assert metrics["cas"]["value"] >= 0.8
    assert metrics["fid"]["label"].startswith("FID (evaluator features)")
    assert metrics["inception_fid"]["value"] is None and metrics["inception_fid"]["reason"]
    assert saved["meta"]["n_per_class"] == 6 and saved["meta"]["warnings"] == []
    report = (out / "report.md").read_text()
    assert "FID (evaluator features)" in report and all(f"| {name} |" in report for name in CLASSES)
    assert (out / "samples.png").is_file() and (out / "memorization_pairs.png").is_file()


def test_evaluate_gives_low_cas_to_a_generator_with_shuffled_labels(evaluate):
    code, out = evaluate(lambda c: (c + 1) % len(CLASSES), "--metrics", "cas")
    assert code == 0
    saved = json.loads((out / "metrics.json").read_text())
    assert set(saved["metrics"]) == {"cas"}
    assert saved["metrics"]["cas"]["value"] <= 0.2 and saved["metrics"]["cas"]["real_test_accuracy"] >= 0.8


def test_evaluate_filter_measures_the_images_a_curator_keeps(evaluate, capsys, monkeypatch):
    """--filter confidence keeps, per class, the first candidates the evaluator reads as their class (here
    the even seeds; odd seeds draw another class) and says so in the report, reading each image set once
    (the filter's novelty and the metrics share the train images' features); a filter that nothing
    passes (exact copies have novelty 0) names the thresholds to change."""
    half_wrong = lambda c, s: c if s % 2 == 0 else (c + 1) % len(CLASSES)  # noqa: E731
    read, predict = [], EvaluatorClassifier.predict_uint8

    def counting(self, images, *args, **kwargs):
        read.append((len(images), float(images.float().sum())))
        return predict(self, images, *args, **kwargs)

    monkeypatch.setattr(EvaluatorClassifier, "predict_uint8", counting)
    code, out = evaluate(half_wrong, "--metrics", "cas", "--n-per-class", "4")
    assert code == 0
    unfiltered = json.loads((out / "metrics.json").read_text())["metrics"]["cas"]["value"]
    assert 0.3 <= unfiltered <= 0.7  # half the stream is of the wrong class
    args = ["--metrics", "cas", "--n-per-class", "4", "--filter", "confidence", "--filter-confidence", "0.5"]
    read.clear()
    code, out = evaluate(half_wrong, *args)
    assert code == 0
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["metrics"]["cas"]["value"] >= 0.9
    assert len(read) == len(set(read)), "an image set was read twice"
    record = saved["meta"]["filtered"]
    assert record["kind"] == "confidence" and record["kept_per_class"] == {name: 4 for name in CLASSES}
    assert all(drawn >= 8 for drawn in record["drawn_per_class"].values())  # the odd seeds were rejected
    assert saved["meta"]["evaluation_id"].endswith("-n4-filtered")
    report = (out / "report.md").read_text()
    assert "Computed on: 4 filtered generated + " in report and "chosen by the evaluator" in report
    code, _ = evaluate(lambda c: c, "--metrics", "cas", "--filter", "confidence+novelty")
    assert code == 2
    err = capsys.readouterr().err
    assert "novelty >= 0.75" in err and "lower --filter-confidence / --filter-novelty" in err


def test_evaluating_twice_keeps_both_and_reports_its_stages(evaluate, tmp_path):
    """Two evaluations into one folder are two entries, each saying what it was computed on; the newest is
    also at the top, where older readers look; --progress-file follows the stages."""
    from gan_studio.metrics import history

    progress = tmp_path / "evaluate.progress.json"
    code, out = evaluate(lambda c: c, "--metrics", "cas,memorization", "--progress-file", str(progress))
    assert code == 0
    stages = json.loads(progress.read_text())
    assert stages["state"] == "finished"
    assert [name for name, _ in stages["completed"]] == [
        "loading models", "real images", "generating", "features", "metrics", "report",
    ]  # fmt: skip
    code, _ = evaluate(
        lambda c: (c + 1) % len(CLASSES), "--metrics", "cas", "--n-per-class", "4", "--seed", "9"
    )
    assert code == 0
    first, second = history.history(out)
    assert first.id.endswith("-n6") and second.id.endswith("-n4")
    assert first.headline["cas"] >= 0.8 and second.headline["cas"] <= 0.2  # the first one was kept intact
    assert (first.folder / "memorization_pairs.png").is_file() and not (
        out / "memorization_pairs.png"
    ).exists()
    top = json.loads((out / "metrics.json").read_text())["meta"]
    assert top["evaluation_id"] == second.id and top["created"].endswith("Z")
    counts = {name: int(n) for name, n in second.meta["real_train_per_class"].items()}
    assert set(counts) == set(CLASSES) and sum(counts.values()) == second.meta["n_real_train"]
    assert second.meta["seed"] == 9 and second.meta["step"] == 100 and len(second.meta["split_sha1"]) == 12
    assert "Computed on: 4 generated + " in (second.folder / "report.md").read_text()


def test_evaluate_refuses_a_coarse_c2st_at_the_images_own_size(evaluate, tmp_path, capsys):
    code, out = evaluate(lambda c: c, "--metrics", "cas,c2st", "--c2st-coarse", "32")
    assert code == 2 and not (out / "metrics.json").exists()  # refused before anything was measured
    assert "--c2st-coarse 32: reduce the 32 px images to 2 to 31 pixels" in capsys.readouterr().err


def test_evaluate_refuses_an_evaluator_of_other_classes(evaluate, tmp_path, evaluator_dir, capsys):
    other = tmp_path / "other_evaluator"
    shutil.copytree(evaluator_dir, other)
    config = json.loads((other / "config.json").read_text())
    (other / "config.json").write_text(json.dumps({**config, "class_names": ["Cyan", "Magenta", "Yellow"]}))
    assert evaluate(lambda c: c, evaluator=other)[0] == 2
    assert "knows classes ['Cyan', 'Magenta', 'Yellow']" in capsys.readouterr().err


def test_evaluate_warns_when_the_evaluator_trained_on_the_runs_test_images(
    evaluate, dataset, tmp_path, capsys
):
    data = load_labeled_images(dataset, 32, progress=False)
    save_split(
        make_split(data.records, seed=7), tmp_path / "other_split.json"
    )  # the GAN run used another split
    code, out = evaluate(lambda c: c, "--metrics", "cas", split=tmp_path / "other_split.json")
    assert code == 0
    warnings = json.loads((out / "metrics.json").read_text())["meta"]["warnings"]
    assert len(warnings) == 1 and "test images of this run" in warnings[0]
    assert "warning: the evaluator was trained on" in capsys.readouterr().out
    assert "> **Warning:** the evaluator was trained on" in (out / "report.md").read_text()


def test_stem_stride_is_saved_and_restored(tmp_path):
    """A stride-1 stem (the default up to 64 px) survives save/load, and gives a finer last feature map."""
    from gan_studio.evaluation.classifier import default_stem_stride

    assert default_stem_stride(64) == 1 and default_stem_stride(128) == 2
    torch.manual_seed(0)
    model = EvaluatorClassifier(class_names=["a", "b"], resolution=32, stem_stride=1).eval()
    save_evaluator(model, tmp_path / "ev", training={})
    loaded = load_evaluator(tmp_path / "ev", device="cpu")
    assert loaded.stem_stride == 1 and loaded.backbone.features[0][0].stride == (1, 1)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    torch.testing.assert_close(loaded(x), model(x))
    coarse = EvaluatorClassifier(class_names=["a", "b"], resolution=32).eval()
    assert coarse.backbone.features(x).shape[-1] * 2 == model.backbone.features(x).shape[-1]


def test_evaluate_images_measures_a_curated_export(tmp_path, dataset, evaluator_dir, capsys):
    """--images measures images already made (a Curate export: class folders and a manifest): only
    those the manifest calls generated count, the real data comes from --data and --split, and a
    class with too few images is named."""
    export = tmp_path / "export"
    entries = []
    for name in CLASSES:
        (export / name).mkdir(parents=True)
        for i, source in enumerate(sorted((dataset / name).iterdir())[:5]):
            kind = "real" if i == 4 else "generated"
            shutil.copy(source, export / name / f"{kind}-{i}.png")
            entries.append({"file": f"{name}/{kind}-{i}.png", "class": name, "source": kind})
    manifest = {"schema": sampling.SAMPLES_SCHEMA, "model": {"step": 42}, "images": entries}
    (export / "manifest.json").write_text(json.dumps(manifest))
    out = tmp_path / "report"
    argv = ["evaluate", "--images", str(export), "--evaluator", str(evaluator_dir), "--out", str(out)]
    where = ["--data", str(dataset), "--split", str(evaluator_dir / "split.json")]
    assert main([*argv, *where, "--metrics", "cas,memorization", *COMMON]) == 0
    saved = json.loads((out / "metrics.json").read_text())
    meta = saved["meta"]
    assert meta["generated_per_class"] == {name: 4 for name in CLASSES} and meta["skipped_real_images"] == 3
    assert meta["step"] == 42 and meta["images"] == str(export)
    assert saved["metrics"]["cas"]["value"] >= 0.8 and saved["metrics"]["memorization"]["value"] > 0.5
    assert f"Computed on: 4 generated (given: {export.name}) + " in (out / "report.md").read_text()
    exported_zip = shutil.make_archive(str(tmp_path / "export"), "zip", export)  # as Curate writes it
    argv[2] = exported_zip
    assert main([*argv, *where, "--metrics", "cas", *COMMON]) == 0
    assert json.loads((out / "metrics.json").read_text())["meta"]["skipped_real_images"] == 3

    shutil.rmtree(export / "Red")  # an export where no Red candidate was accepted
    argv[2] = str(export)
    assert main([*argv, *where, "--metrics", "cas", *COMMON]) == 2
    err = capsys.readouterr().err
    assert "too few of Red (0)" in err
    assert main([*argv, "--ckpt", str(export), *where, *COMMON]) == 2
    assert "not both" in capsys.readouterr().err
