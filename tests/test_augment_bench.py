"""augment-bench: arm names and quotas, the synthetic stream and its filter, a tiny bench on the tiny run
(results schema, manifest, plot, resume after an interruption), the leak warning, and the COIL split script."""

from __future__ import annotations

import csv
import json
import runpy
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gan_studio.cli import main
from gan_studio.data import load_split
from gan_studio.evaluation.augment_bench import (
    Arm,
    Candidate,
    SyntheticPool,
    draw_synthetic_pool,
    parse_arms,
    parse_ratios,
    runner,
    synthetic_quota,
    write_synthetic,
)
from gan_studio.evaluation.classifier import EvaluatorClassifier, load_evaluator, save_evaluator
from gan_studio.sampling import SAMPLES_SCHEMA, generate, load_generator, read_manifest
from tests.conftest import REPO

TINY = [
    "--seeds",
    "1",
    "--steps",
    "3",
    "--batch",
    "8",
    "--device",
    "cpu",
    "--precision",
    "fp32",
    "--no-progress",
]


def bench_argv(run: Path, out: Path, *extra: str, arms: str = "real,real+syn@0.5") -> list[str]:
    return ["augment-bench", "--ckpt", str(run), "--out", str(out), "--arms", arms, *TINY, *extra]


def read_results(out: Path) -> dict:
    return json.loads((out / "results.json").read_text())


def load_png(path: Path) -> torch.Tensor:
    return torch.from_numpy(np.array(Image.open(path).convert("RGB"))).permute(2, 0, 1)


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """The tiny classifiers gain nothing from intra-op threads, and on a busy CI box two spinning
    OpenMP threads make each step many times slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def bench(tiny_run, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bench") / "tiny"
    assert main(bench_argv(tiny_run, out)) == 0
    return out


# ------------------------------------------------------------------------------------------ arms


def test_arm_names_expand_over_ratios_and_reject_nonsense():
    names = [arm.name for arm in parse_arms("real,real+syn", parse_ratios("0,0.25,0.5"))]
    assert names == ["real", "real+syn@0.25", "real+syn@0.5"]
    assert [arm.name for arm in parse_arms("all", (0.0, 1.0))] == [
        "real",
        "real+classic",
        "real+syn@1",
        "real+classic+syn@1",
        "real+syn_filtered@1",
    ]
    assert [arm.name for arm in parse_arms("real+syn@0.5", (0.0, 1.0))] == ["real+syn@0.5"]
    both = Arm("real+classic+syn", 0.5)
    assert (both.augment, both.baseline, both.synthetic, both.filtered) == (
        "classic",
        "real+classic",
        True,
        False,
    )
    for bad, message in [
        ("real@0.5", "takes no ratio"),
        ("real+syn@0", "that is the arm 'real'"),
        ("gan", "Unknown"),
    ]:
        with pytest.raises(ValueError, match=message):
            parse_arms(bad, (0.0, 0.5))
    assert parse_ratios("1, 0 ,0.25,0.25") == (0.0, 0.25, 1.0)
    for bad in ("x", "-1", ""):
        with pytest.raises(ValueError):
            parse_ratios(bad)


def test_quota_is_ratio_times_real_count_rounded_half_up():
    assert [synthetic_quota(r, n) for r, n in [(0.25, 6), (0.5, 5), (1.25, 8), (0.0, 6), (0.75, 2)]] == [
        2,
        3,
        10,
        0,
        2,
    ]


# ------------------------------------------------------------------------------- synthetic stream


def test_filtered_pool_is_the_unfiltered_stream_filtered_with_a_cap():
    """Fake generator: an image's pixels hold its seed; fake evaluator: confident on multiples of 3."""
    drawn = []

    def generate_images(c: int, seeds: list[int]) -> torch.Tensor:
        drawn.extend((c, s) for s in seeds)
        return torch.tensor(seeds, dtype=torch.uint8).view(-1, 1, 1, 1).expand(-1, 3, 2, 2).clone()

    def confidence(images: torch.Tensor, c: int) -> np.ndarray:
        return np.where(images[:, 0, 0, 0].numpy() % 3 == 0, 0.9, 0.1)

    pool = draw_synthetic_pool(
        generate_images,
        {0: 4, 1: 2},
        {0: 3, 1: 5},
        first_seed=100,
        confidence=confidence,
        threshold=0.5,
        max_factor=2,
    )

    def seeds(candidates):
        return [(cand.class_index, cand.seed) for cand in candidates]

    assert seeds(pool.select({0: 4, 1: 2}, filtered=False)) == [
        (0, 100),
        (0, 101),
        (0, 102),
        (0, 103),
        (1, 100),
        (1, 101),
    ]
    # class 0 may draw max(4, 3 * 2) = 6 candidates: only seeds 102 and 105 pass; class 1 draws 10 (102, 105, 108)
    assert seeds(pool.select({0: 3, 1: 5}, filtered=True)) == [
        (0, 102),
        (0, 105),
        (1, 102),
        (1, 105),
        (1, 108),
    ]
    assert seeds(pool.select({0: 1}, filtered=True)) == [(0, 102)]
    assert pool.tried == {0: 6, 1: 10} and len(drawn) == 16 and len(set(drawn)) == 16
    assert all(
        cand.confidence in (0.9, 0.1) and cand.passes_filter == (cand.seed % 3 == 0) for cand in pool.kept[0]
    )
    with pytest.raises(ValueError, match="need an evaluator"):
        draw_synthetic_pool(generate_images, {}, {0: 1}, first_seed=0)


# ------------------------------------------------------------------------------------ tiny bench


def test_synthetic_manifest_extends_an_earlier_one_written_before_the_schema(tmp_path):
    """A bench folder from before samples-v1: the same stream is extended, another one starts afresh."""
    folder = tmp_path / "seed_0"
    folder.mkdir()
    old = {
        "bench_seed": 0, "generator": "/x/gen", "run_dir": "/x/parts", "step": 600, "resolution": 8,
        "truncation": 1.0, "noise_mode": "const", "first_seed": 0, "candidates_tried": {"A": 1},
        "images": [{"file": "A/seed_000000.png", "class": "A", "class_index": 0, "seed": 0, "stream_index": 0,
                    "confidence": 0.9, "passes_filter": True}],
        "arms": {"real+syn@0.5": ["A/seed_000000.png"]},
    }  # fmt: skip
    (folder / "manifest.json").write_text(json.dumps(old))
    model = {"id": "parts", "generator": "/x/gen", "run_dir": "/x/parts", "step": 600, "resolution": 8,
             "z_dim": 4, "noise_mode": "const"}  # fmt: skip
    drawn = Candidate(1, 0, 0, torch.zeros(3, 8, 8, dtype=torch.uint8), 0.5, True)

    def write(first_seed: int) -> dict:
        pool = SyntheticPool(first_seed, {1: [drawn]}, {1: 1})
        path = write_synthetic(
            pool, {"real+syn@1": [drawn]}, folder, class_names=["A", "B"], model=model, truncation=1.0,
            extra={"bench_seed": 0},
        )  # fmt: skip
        return read_manifest(path)

    extended = write(first_seed=0)
    assert extended["schema"] == SAMPLES_SCHEMA and extended["model"] == model
    assert [e["file"] for e in extended["images"]] == ["A/seed_000000.png", "B/seed_000000.png"]
    earlier, new = extended["images"]
    assert earlier["scores"] == {"confidence": 0.9} and earlier["model"] == "parts" and earlier["step"] == 600
    assert new["scores"] == {"confidence": 0.5} and new["stream_index"] == 0 and new["latent"] is None
    assert set(extended["arms"]) == {"real+syn@0.5", "real+syn@1"}
    assert extended["candidates_tried"] == {"A": 1, "B": 1} and extended["bench_seed"] == 0
    afresh = write(first_seed=5)  # another stream: the earlier images are not of it
    assert [e["file"] for e in afresh["images"]] == ["B/seed_000000.png"] and set(afresh["arms"]) == {
        "real+syn@1"
    }


def test_results_are_well_formed(bench, tiny_run):
    doc = read_results(bench)
    setup, rows = doc["setup"], doc["results"]
    classes = list(setup["real_train_counts"])
    gan_files = json.loads((tiny_run / "train_files.json").read_text())
    assert setup["n_real_train"] == len(gan_files) and doc["gan_saw_more_real_images"] is False
    assert doc["warnings"] == []
    assert [(row["arm"], row["ratio"], row["seed"]) for row in rows] == [
        ("real", 0.0, 0),
        ("real+syn@0.5", 0.5, 0),
    ]
    expected_synthetic = {name: synthetic_quota(0.5, n) for name, n in setup["real_train_counts"].items()}
    for row in rows:
        assert row["n_real"] == len(gan_files) and row["n_test"] == setup["n_test"]
        assert list(row["per_class_accuracy"]) == classes
        assert all(0.0 <= acc <= 1.0 for acc in row["per_class_accuracy"].values())
        weighted = (
            sum(row["per_class_accuracy"][c] * setup["test_counts"][c] for c in classes) / setup["n_test"]
        )
        assert row["accuracy"] == pytest.approx(weighted)
        assert np.trace(np.array(row["confusion_matrix"])) == round(row["accuracy"] * row["n_test"])
    real, syn = rows
    assert real["n_synthetic"] == 0 and real["synthetic_manifest"] is None
    assert syn["synthetic_per_class"] == expected_synthetic and syn["n_synthetic"] == sum(
        expected_synthetic.values()
    )
    assert syn["quota_met"] and syn["augment"] == "none"

    with open(bench / "results.csv", newline="") as f:
        table = list(csv.DictReader(f))
    assert [line["arm"] for line in table] == ["real", "real+syn@0.5"]
    for line, row in zip(table, rows):
        assert float(line["accuracy"]) == pytest.approx(row["accuracy"])
        assert {c: float(line[f"accuracy[{c}]"]) for c in classes} == pytest.approx(row["per_class_accuracy"])


def test_manifest_lists_the_synthetic_images_and_reproduces_them(bench, tiny_run):
    doc = read_results(bench)
    manifest_path = bench / doc["results"][1]["synthetic_manifest"]
    manifest = json.loads(manifest_path.read_text())
    assert manifest["schema"] == SAMPLES_SCHEMA and manifest["model"]["step"] == 6  # the samples manifest
    files = manifest["arms"]["real+syn@0.5"]
    assert len(files) == doc["results"][1]["n_synthetic"]
    entries = {entry["file"]: entry for entry in manifest["images"]}
    assert set(files) == set(entries)
    G, _ = load_generator(tiny_run, device="cpu")
    listed = [entries[file] for file in files]
    expected = generate(G, [e["class_index"] for e in listed], [e["seed"] for e in listed])
    for entry, image in zip(listed, expected):
        assert entry["seed"] == manifest["first_seed"] + entry["stream_index"]
        assert torch.equal(load_png(manifest_path.parent / entry["file"]), image), entry["file"]
    quota = doc["results"][1]["synthetic_per_class"]
    for name, n in quota.items():
        assert sorted(e["stream_index"] for e in listed if e["class"] == name) == list(range(n))


def test_plot_and_summary(bench):
    html = (bench / "accuracy.html").read_text()
    assert "plotly" in html.lower() and "real+syn" in html
    summary = (bench / "summary.md").read_text()
    assert "| real | — |" in summary and "| real+syn@0.5 | +50% |" in summary
    assert (bench / "accuracy.png").is_file() or "accuracy.png skipped" in summary


def test_an_interrupted_bench_keeps_its_results_and_resumes(tiny_run, tmp_path, monkeypatch):
    calls = []
    train = runner.train_classifier

    def interrupted_after_one(*args, **kwargs):
        calls.append(kwargs["seed"])
        if len(calls) == 2:
            raise KeyboardInterrupt
        return train(*args, **kwargs)

    monkeypatch.setattr(runner, "train_classifier", interrupted_after_one)
    out = tmp_path / "bench"
    assert main(bench_argv(tiny_run, out)) == 130
    assert [row["arm"] for row in read_results(out)["results"]] == ["real"]

    def counted(*args, **kwargs):
        calls.append(kwargs["seed"])
        return train(*args, **kwargs)

    monkeypatch.setattr(runner, "train_classifier", counted)
    calls.clear()
    assert main(bench_argv(tiny_run, out)) == 0  # trains only the missing arm
    assert len(calls) == 1 and [row["arm"] for row in read_results(out)["results"]] == [
        "real",
        "real+syn@0.5",
    ]
    before = read_results(out)["results"]
    calls.clear()
    assert main(bench_argv(tiny_run, out)) == 0  # everything measured: nothing to train
    assert calls == [] and read_results(out)["results"] == before
    seeds_argv = bench_argv(tiny_run, out, arms="real")
    seeds_argv[seeds_argv.index("--seeds") + 1] = "2"
    assert main(seeds_argv) == 0  # one more seed of one arm
    assert calls == [1] and [(r["arm"], r["seed"]) for r in read_results(out)["results"]] == [
        ("real", 0),
        ("real", 1),
        ("real+syn@0.5", 0),
    ]
    assert "| real | — |" in (out / "summary.md").read_text() and "| 2 |" in (out / "summary.md").read_text()


def test_resume_refuses_a_different_setup(bench, tiny_run, capsys):
    before = (bench / "results.json").read_text()
    argv = bench_argv(tiny_run, bench)
    argv[argv.index("--steps") + 1] = "4"
    assert main(argv) == 2
    assert "steps: 3 -> 4" in capsys.readouterr().err
    assert (bench / "results.json").read_text() == before


def test_warns_when_the_gan_saw_more_real_images_than_the_arms(tiny_run, tmp_path, capsys):
    out = tmp_path / "few"
    assert main(bench_argv(tiny_run, out, "--train-per-class", "2", arms="real")) == 0
    doc = read_results(out)
    assert doc["gan_saw_more_real_images"] is True
    assert len(doc["warnings"]) == 1 and "The GAN saw more real images" in doc["warnings"][0]
    assert doc["setup"]["n_real_train"] == 2 * len(doc["setup"]["real_train_counts"])
    assert set(doc["setup"]["real_train_counts"].values()) == {2}
    assert "Warning:** The GAN saw more real images" in (out / "summary.md").read_text()
    assert "warning: The GAN saw more real images" in capsys.readouterr().out


def test_filtered_arm_keeps_only_confident_images(tiny_run, tmp_path):
    G, info = load_generator(tiny_run, device="cpu")
    torch.manual_seed(0)
    evaluator_dir = tmp_path / "evaluator"
    model = EvaluatorClassifier(arch="mobilenet_v3_small", class_names=info.class_names, resolution=32)
    save_evaluator(model, evaluator_dir, training={})
    shutil.copy(
        tiny_run / "split.json", evaluator_dir / "split.json"
    )  # it "trained" on the GAN's train split
    out, threshold = tmp_path / "filtered", 0.1
    argv = bench_argv(tiny_run, out, "--evaluator", str(evaluator_dir), "--filter-confidence", str(threshold))
    assert main([*argv[:6], "real+syn_filtered@0.5", *argv[7:]]) == 0
    doc = read_results(out)
    (row,) = doc["results"]
    assert row["filtered"] and doc["warnings"] == [] and row["n_synthetic"] > 0
    assert doc["fingerprint"]["filter"]["confidence"] == threshold
    manifest = json.loads((out / row["synthetic_manifest"]).read_text())
    entries = {entry["file"]: entry for entry in manifest["images"]}
    chosen = [entries[file] for file in manifest["arms"]["real+syn_filtered@0.5"]]
    assert len(chosen) == row["n_synthetic"] and all(e["scores"]["confidence"] >= threshold for e in chosen)
    assert row["quota_met"] == (row["note"] is None)
    for name, count in row["synthetic_per_class"].items():  # the first confident candidates of the stream
        picked = sorted(e["stream_index"] for e in chosen if e["class"] == name)
        assert len(picked) == count
        passing = sorted(
            e["stream_index"] for e in entries.values() if e["class"] == name and e["passes_filter"]
        )
        assert picked == passing[:count]
    scored = load_evaluator(evaluator_dir, device="cpu")
    images = torch.stack([load_png(out / "synthetic" / "seed_0" / e["file"]) for e in chosen])
    probs, _ = scored.predict_uint8(images)
    recomputed = probs[np.arange(len(chosen)), [e["class_index"] for e in chosen]]
    assert recomputed == pytest.approx([e["scores"]["confidence"] for e in chosen], abs=1e-4)

    unreachable = [*argv, "--filter-confidence", "1.0", "--filter-max-factor", "2"]
    unreachable[unreachable.index("--out") + 1] = str(tmp_path / "unreachable")
    assert main([*unreachable[:6], "real+syn_filtered@0.5", *unreachable[7:]]) == 0
    (row,) = read_results(tmp_path / "unreachable")["results"]
    assert row["n_synthetic"] == 0 and not row["quota_met"]
    assert "only 0 of" in row["note"] and "--filter-max-factor 2" in row["note"]


# ------------------------------------------------------------------------------------ COIL split


def test_coil100_split_script_splits_by_alternate_poses(tmp_path, capsys):
    data = tmp_path / "coil"
    rng = np.random.default_rng(0)
    for obj in (3, 12):
        (data / f"obj{obj:03d}").mkdir(parents=True)
        for angle in (0, 5, 10, 15, 350, 355):
            image = rng.integers(0, 255, size=(16, 16, 3), dtype=np.uint8)
            Image.fromarray(image).save(data / f"obj{obj:03d}" / f"obj{obj}__{angle}.png")
    script = runpy.run_path(
        str(REPO / "benchmarks" / "coil100_split.py")
    )  # the file, not a copy of its logic
    assert script["main"]([str(data), str(tmp_path / "split.json")]) == 0
    split = load_split(tmp_path / "split.json")
    assert split.train == sorted(f"obj{o:03d}/obj{o}__{a}.png" for o in (3, 12) for a in (0, 10, 350))
    assert split.test == sorted(f"obj{o:03d}/obj{o}__{a}.png" for o in (3, 12) for a in (5, 15, 355))

    Image.fromarray(image).save(data / "obj003" / "photo.png")
    assert script["main"]([str(data), str(tmp_path / "other.json")]) == 2
    assert "photo.png" in capsys.readouterr().err and not (tmp_path / "other.json").exists()
