"""The app's services without the web layer: filters, interpolation, Grad-CAM, UMAP, curation, jobs, training."""

from __future__ import annotations

import json
import sys
import time
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from gan_studio.app import postprocess
from gan_studio.app.curation import CurationStore
from gan_studio.app.embeddings import EmbeddingCache, build_embedding, embedding_figure
from gan_studio.app.evaluation_jobs import per_class_rows
from gan_studio.app.gradcam import CAM_METHODS, compute_cams, target_layer
from gan_studio.app.interpolation import filmstrip, interpolate, render_frames, slerp, write_gif
from gan_studio.app.jobs import JobRunner, read_tail, tqdm_progress
from gan_studio.app.real_data import RealDataCache, real_gallery_items, real_grid
from gan_studio.app.registry import GENERATOR, ModelRegistry
from gan_studio.app.training_manager import TrainingManager, TrainOptions, loss_figure, sanitize_run_name
from gan_studio.data import DatasetError
from gan_studio.evaluation import EvaluatorClassifier
from gan_studio.sampling import SAMPLES_SCHEMA, generate, upgrade_manifest
from tests.app_support import tiny_evaluator


@pytest.fixture(scope="module")
def registry(tmp_path_factory, tiny_run, demo_dir):
    evaluator = tiny_evaluator(tmp_path_factory.getbasetemp(), tiny_run, demo_dir)
    return ModelRegistry([tiny_run.parent, evaluator.parent], device="cpu")


@pytest.fixture(scope="module")
def real_split(registry):
    return RealDataCache().get(registry.get(GENERATOR, "tiny"))


def noisy_image(seed: int = 0, size: int = 32) -> Image.Image:
    rng = np.random.default_rng(seed)
    base = np.zeros((size, size, 3), np.uint8)
    base[:, size // 2 :] = 200
    return Image.fromarray(np.clip(base + rng.normal(0, 40, base.shape), 0, 255).astype(np.uint8))


# ----------------------------------------------------------------------------- post-processing


def test_denoise_filters_reduce_noise_and_keep_size():
    image = noisy_image()
    noise = lambda im: np.abs(np.diff(np.asarray(im, np.float32), axis=1)).mean()  # noqa: E731
    for name in ("median", "bilateral"):
        out = postprocess.apply_chain(image, postprocess.build_chain([name]))
        assert out.size == image.size and noise(out) < 0.9 * noise(image), name
    sharper = postprocess.apply_chain(image, postprocess.build_chain(["unsharp"]))
    assert noise(sharper) > noise(image)
    flat = postprocess.apply_chain(image, postprocess.build_chain(["contrast"], {"contrast": 0.5}))
    assert np.asarray(flat, np.float32).std() < np.asarray(image, np.float32).std()


def test_filter_chain_has_a_fixed_order_and_checks_its_input():
    chain = postprocess.build_chain(["contrast", "median"], {"median": 5})
    assert [s.name for s in chain] == ["median", "contrast"]
    assert postprocess.describe(chain)[0] == {"name": "median", "strength": 5.0, "params": {"size": 5}}
    with pytest.raises(ValueError, match="Unknown filter"):
        postprocess.build_chain(["blur"])
    with pytest.raises(ValueError, match="between"):
        postprocess.build_chain(["contrast"], {"contrast": 9})


# ----------------------------------------------------------------------------- interpolation


def test_slerp_ends_at_its_endpoints_and_keeps_the_norm():
    a, b = torch.randn(16, generator=torch.Generator().manual_seed(0)), torch.randn(16)
    b = b / b.norm() * a.norm()
    path = slerp(a, b, torch.linspace(0, 1, 7))
    assert torch.allclose(path[0], a, atol=1e-5) and torch.allclose(path[-1], b, atol=1e-5)
    assert torch.allclose(path.norm(dim=1), a.norm().expand(7), rtol=1e-4)
    straight = interpolate(a, b, 7, "lerp")
    assert straight[3].norm() < path[3].norm()  # a straight line cuts through the middle of the sphere
    with pytest.raises(ValueError, match="at least 2"):
        interpolate(a, b, 1)


def test_interpolation_frames_match_the_seeds_and_blend_classes(registry, tmp_path):
    with registry.use_generator("tiny") as loaded:
        G = loaded.model
        frames = render_frames(G, 3, 8, 2, None, frames=5)
        ends = generate(G, [2, 2], [3, 8])
        blended = render_frames(G, 3, 8, 2, 6, frames=5)
        other_end = generate(G, [6], [8])
        assert not G.class_embedding._forward_hooks  # the class blend leaves no hook behind
    assert frames.shape == (5, 3, 32, 32) and frames.dtype == torch.uint8
    assert torch.equal(frames[0], ends[0]) and torch.equal(frames[-1], ends[1])
    assert torch.equal(blended[0], frames[0]) and torch.equal(blended[-1], other_end[0])
    gif = write_gif(frames, tmp_path / "walk.gif", fps=10, size=64)
    with Image.open(gif) as image:
        assert image.is_animated and image.n_frames == 8 and image.size == (64, 64)  # forth and back
    assert filmstrip(frames, max_columns=4).size[0] > filmstrip(frames, max_columns=2).size[0]


# ----------------------------------------------------------------------------- Grad-CAM


@pytest.mark.parametrize(("arch", "resolution", "expected"), [
    ("mobilenet_v3_small", 128, "features.12"), ("mobilenet_v3_small", 64, "features.8"),
    ("resnet18", 128, "layer4.1"), ("resnet18", 64, "layer3.1"),
])  # fmt: skip
def test_target_layer_is_the_last_block_with_a_usable_map(arch, resolution, expected):
    model = EvaluatorClassifier(arch=arch, class_names=["a", "b"], resolution=resolution).eval()
    assert target_layer(model)[0] == expected


def test_cams_explain_the_requested_class_and_leave_the_model_untouched(registry, real_split):
    with registry.use_evaluator("tiny-evaluator") as loaded:
        model = loaded.model
        before = {k: v.clone() for k, v in model.state_dict().items()}
        images = real_split.test.images[:3]
        for method in ("GradCAM", "EigenCAM"):
            result = compute_cams(model, images, method=method, target_class=4, display_size=64)
            assert result.overlays.shape == (3, 64, 64, 3) and result.overlays.dtype == np.uint8
            assert result.heatmaps.shape[0] == 3 and 0 <= result.heatmaps.min() and result.heatmaps.max() <= 1
            assert result.targets == [4, 4, 4] and np.allclose(result.probs.sum(1), 1, atol=1e-5)
        predicted = compute_cams(model, images, method="GradCAM++")
        assert predicted.targets == list(predicted.probs.argmax(1))
        assert not model.training and not any(p.requires_grad for p in model.parameters())
        assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
        assert not any(m._forward_hooks for m in model.modules())
    with pytest.raises(ValueError, match="Unknown CAM method"):
        compute_cams(model, images, method="MagicCAM")
    assert "GradCAM" in CAM_METHODS and "EigenCAM" in CAM_METHODS


# ----------------------------------------------------------------------------- embeddings


def test_embedding_separates_clusters_and_scores_generated_images():
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 10, (2, 8))
    make = lambda n, c: centres[c] + rng.normal(0, 0.5, (n, 8))  # noqa: E731
    sets = [
        (
            "real train",
            np.vstack([make(15, 0), make(15, 1)]),
            np.repeat([0, 1], 15),
            [f"r{i}" for i in range(30)],
        ),
        (
            "generated",
            np.vstack([make(10, 0), make(10, 1)]),
            np.repeat([0, 1], 10),
            [f"seed {i}" for i in range(20)],
        ),
    ]
    embedding = build_embedding(["a", "b"], sets)
    assert embedding.coords.shape == (50, 2) and embedding.kinds.count("generated") == 20
    a, b = embedding.coords[embedding.labels == 0], embedding.coords[embedding.labels == 1]
    spread = max(a.std(0).max(), b.std(0).max())
    assert np.linalg.norm(a.mean(0) - b.mean(0)) > 2 * spread  # the classes land apart
    assert embedding.scores["precision"] > 0.8 and embedding.scores["coverage"] > 0.5
    fig = embedding_figure(embedding)
    assert {t.name for t in fig.data} == {
        "a · real train",
        "a · generated",
        "b · real train",
        "b · generated",
    }
    assert "Precision" in embedding.readout()


def test_embedding_cache_and_warm_up():
    cache = EmbeddingCache()
    thread = cache.warm_up()
    assert cache.warm_up() is thread  # started once
    thread.join(180)
    assert cache.warm.is_set()
    assert cache.get(("x",)) is None


# ----------------------------------------------------------------------------- curation


def test_curation_scores_thresholds_toggles_persists_and_exports(registry, real_split, tmp_path):
    store = CurationStore(tmp_path / "curation", "tiny")
    with registry.use_generator("tiny") as g, registry.use_evaluator("tiny-evaluator") as e:
        _, real_features = e.model.predict_uint8(real_split.train.images)
        new = store.add_generated(
            g.model, g.info, e.model, real_features, real_split.train_names, classes=[0, 6], n_per_class=3, seed=5,
            chain=postprocess.build_chain(["median"]), real_labels=real_split.train.labels,
        )  # fmt: skip
        again = store.add_generated(
            g.model,
            g.info,
            e.model,
            real_features,
            real_split.train_names,
            classes=[6],
            n_per_class=2,
            seed=5,
        )
    assert len(new) == 6 and [c.seed for c in again] == [8, 9]  # seeds already there are skipped
    assert all(0 <= c.confidence <= 1 and c.memorization_ratio >= 0 and c.nearest_real for c in new)
    assert new[0].filters[0]["name"] == "median" and (store.folder / new[0].file).is_file()

    store.set_thresholds(0.0, 0.0)
    assert all(c.accepted for c in store.candidates)
    toggled = store.toggle(new[0].id)
    assert not toggled.accepted and toggled.manual
    store.set_thresholds(1.01, 0.0)  # rejects everything a click did not decide...
    accepted = [c for c in store.candidates if c.accepted]
    assert accepted == []
    store.toggle(new[1].id)
    store.set_thresholds(0.0, 0.0)  # ...and a click's decision survives new thresholds
    assert not next(c for c in store.candidates if c.id == new[0].id).accepted
    counts = {row[0]: row[1:] for row in store.counts(g.info.class_names)}
    assert counts[g.info.class_names[6]] == [5, 5, 0] and counts[g.info.class_names[0]] == [3, 2, 1]

    reopened = CurationStore(tmp_path / "curation", "tiny")  # survives a restart
    assert [(c.id, c.accepted) for c in reopened.candidates] == [(c.id, c.accepted) for c in store.candidates]

    archive = reopened.export(
        tmp_path / "out.zip", real_root=real_split.root, real_records=real_split.train.records
    ).path
    with zipfile.ZipFile(archive) as zf:
        names = set(zf.namelist())
        manifest = json.loads(zf.read("manifest.json"))
    generated = [e for e in manifest["images"] if e["source"] == "generated"]
    real = [e for e in manifest["images"] if e["source"] == "real"]
    assert len(generated) == 7 and len(real) == len(real_split.train)
    assert {e["file"] for e in manifest["images"]} | {"manifest.json", "metadata.csv"} == names
    first = next(e for e in generated if e["seed"] == 6 and e["class"] == g.info.class_names[0])
    assert len(first["latent"]) == 16 and first["model"] == "tiny" and first["step"] == 6
    assert manifest["schema"] == SAMPLES_SCHEMA and manifest["model"] == reopened.meta["model"]
    assert manifest["model"]["id"] == "tiny" and manifest["model"]["step"] == 6
    assert upgrade_manifest(manifest) == manifest  # the samples manifest, as the reader expects it
    assert (
        set(first["scores"]) >= {"confidence", "memorization_ratio"}
        and first["filters"][0]["name"] == "median"
    )
    test_files = set(real_split.test_names)
    assert not any(e["original"] in test_files for e in real)  # the held-out split never leaks into an export
    assert all(name.split("/")[0] in g.info.class_names for name in names - {"manifest.json", "metadata.csv"})


def test_export_of_nothing_says_what_to_do(tmp_path):
    with pytest.raises(ValueError, match="accept some candidates"):
        CurationStore(tmp_path, "empty").export(tmp_path / "x.zip")


# ----------------------------------------------------------------------------- real data


def test_real_split_matches_the_runs_split(registry, real_split, tiny_run):
    split = json.loads((tiny_run / "split.json").read_text())
    assert sorted(real_split.train_names) == sorted(split["train"])
    assert sorted(real_split.test_names) == sorted(split["test"])
    assert real_split.train.images.shape[-1] == 32


def test_real_data_names_the_fix_when_the_dataset_is_gone(registry, tmp_path, tiny_run):
    import shutil

    run = tmp_path / "runs" / "moved"
    shutil.copytree(tiny_run, run)
    meta = json.loads((run / "run.json").read_text())
    meta["data"] = {**meta["data"], "root": str(tmp_path / "gone"), "source": str(tmp_path / "gone")}
    (run / "run.json").write_text(json.dumps(meta))
    entry = ModelRegistry([run.parent], device="cpu").get(GENERATOR, "moved")
    with pytest.raises(DatasetError, match="--data"):
        RealDataCache().get(entry)


def test_real_images_beside_samples_are_the_first_train_images_at_the_samples_size(
    registry, real_split, tmp_path
):
    entry = registry.get(GENERATOR, "tiny")
    cache = RealDataCache()
    items, note = real_gallery_items(cache, entry, [2, 5], 2, tmp_path / "gallery")
    assert [caption for _, caption in items] == ["real · Base"] * 2 + ["real · HeadPlate"] * 2
    order = sorted(range(len(real_split.train)), key=lambda i: real_split.train_names[i])
    first_base = next(i for i in order if real_split.train.records[i].label == 2)
    shown = np.asarray(Image.open(items[0][0]))
    assert shown.shape == (32, 32, 3) and "**real** train images" in note
    assert np.array_equal(shown, real_split.train.images[first_base].permute(1, 2, 0).numpy())
    path, note = real_grid(cache, entry, tmp_path / "grid")
    from gan_studio.utils.images import grid_layout

    layout = grid_layout(80, 8, 32, 32, row_labels=list(entry.class_names))
    assert Image.open(path).size == layout.size  # the evaluation's samples.png layout: same size
    assert real_grid(cache, entry, tmp_path / "grid")[0] == path  # made once per split


def test_real_images_beside_samples_say_why_when_the_dataset_is_gone(tmp_path, tiny_run):
    import shutil

    run = tmp_path / "runs" / "moved"
    shutil.copytree(tiny_run, run)
    meta = json.loads((run / "run.json").read_text())
    meta["data"] = {**meta["data"], "root": str(tmp_path / "gone"), "source": str(tmp_path / "gone")}
    (run / "run.json").write_text(json.dumps(meta))
    entry = ModelRegistry([run.parent], device="cpu").get(GENERATOR, "moved")
    items, note = real_gallery_items(RealDataCache(), entry, [0], 3, tmp_path / "gallery")
    assert items == [] and "Real images are not available here" in note
    path, note = real_grid(RealDataCache(), entry, tmp_path / "grid")
    assert path is None and "Real images are not available here" in note


# ----------------------------------------------------------------------------- background jobs


def test_tqdm_progress_and_log_tail(tmp_path):
    text = "Loading: 100%|##| 9/9\nsample:  40%|####      | 2/5 [00:01<00:02]\rsample:  60%|######    | 3/5"
    assert tqdm_progress(text) == ("sample", 0.6)
    assert tqdm_progress("no bar here") is None
    log = tmp_path / "x.log"
    log.write_text("a\nstep 1\rstep 2\rstep 3\nb\n")
    assert read_tail(log) == "a\nstep 3\nb"


def test_job_runner_refuses_a_second_copy_and_stops_its_own(tmp_path):
    runner = JobRunner()
    job = runner.start("sleep", [sys.executable, "-c", "import time; print('up', flush=True); time.sleep(60)"],
                       tmp_path / "sleep.log")  # fmt: skip
    with pytest.raises(RuntimeError, match="already running"):
        runner.start("sleep", [sys.executable, "-c", "pass"], tmp_path / "other.log")
    job.stop(timeout=20)
    assert not job.running and runner.running() == []


def test_run_names_and_options():
    assert sanitize_run_name("  my run/../x ") == "my-run-..-x"
    assert sanitize_run_name("..").startswith("run-")
    args = TrainOptions(resolution=32, steps=50, width=8).cli_args()
    assert args[args.index("--ngf") + 1] == "8" and args[args.index("--log-every") + 1] == "1"
    with pytest.raises(ValueError, match="not supported"):
        TrainOptions(resolution=48).cli_args()


def test_train_options_come_from_the_declaration_or_the_recipe():
    from gan_studio.training.config import TrainConfig

    plain = TrainOptions()
    assert (plain.steps, plain.width, plain.sample_every) == (TrainConfig().steps, TrainConfig().g_width, 500)
    options = TrainOptions.from_recipe("vise-parts-64")
    assert (options.resolution, options.steps, options.width, options.batch) == (64, 10000, 24, 16)
    assert options.cli_args() == ["--recipe", "vise-parts-64"]  # nothing changed: the recipe alone
    options.steps, options.width = 6000, 32
    # D keeps the recipe's width relative to G's (twice as wide in vise-parts-64).
    assert options.cli_args() == "--recipe vise-parts-64 --steps 6000 --ngf 32 --ndf 64".split()
    options.batch = 12  # class groups of 8 do not divide it: refused before anything starts
    with pytest.raises(ValueError, match="class_group_size 8 must divide batch 12"):
        options.cli_args()


def wait_for(predicate, timeout: float = 300, every: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError("timed out")


def test_training_runs_in_the_background_stops_and_resumes(tmp_path, demo_dir):
    manager = TrainingManager(tmp_path / "runs")
    options = TrainOptions(resolution=32, steps=4000, batch=4, width=8, z_dim=16, precision="fp32",
                           sample_every=1, ckpt_every=1000)  # fmt: skip
    run_dir = manager.start(str(demo_dir), "bg run", options)
    assert run_dir.name == "bg-run" and manager.new_run_dir("bg run").name == "bg-run-2"
    wait_for(lambda: manager.progress(run_dir).step >= 2)
    assert manager.progress(run_dir).alive
    restarted_app = TrainingManager(tmp_path / "runs")  # knows no process: finds the trainer from status.json
    assert restarted_app.stop(run_dir)
    stopped = wait_for(lambda: (p := manager.progress(run_dir)).state == "stopped" and not p.alive and p)
    assert stopped.checkpoints and stopped.checkpoints[0]["step"] == stopped.step
    assert stopped.samples is not None and stopped.reconstructions is not None and stopped.log
    names = [trace.name for trace in loss_figure(stopped.log).data]
    assert names[0] == "D loss (real)" and "class CE (fakes)" in names  # the run has the AC head
    legacy = [{k: v for k, v in record.items() if not k.startswith("loss_cls")} for record in stopped.log]
    assert "class CE (fakes)" not in [trace.name for trace in loss_figure(legacy).data]
    assert "stopped" in stopped.summary()

    manager.resume(run_dir, stopped.step + 2)
    finished = wait_for(lambda: (p := manager.progress(run_dir)).state == "finished" and not p.alive and p)
    assert finished.step == stopped.step + 2 and finished.checkpoints[0]["step"] == finished.step
    with pytest.raises(ValueError, match="already at step"):
        manager.resume(run_dir, finished.step)


def test_a_training_that_fails_at_once_reports_why(tmp_path):
    manager = TrainingManager(tmp_path / "runs")
    run_dir = manager.start(str(tmp_path / "missing"), "broken", TrainOptions(resolution=32, steps=2))
    failed = wait_for(lambda: (p := manager.progress(run_dir)).state == "failed" and p)
    assert "does not exist" in failed.error and not failed.alive


def test_per_class_rows_follow_the_report_columns():
    metrics = {"metrics": {"cas": {"per_class": {"a": {"accuracy": 0.5, "mean_confidence": 0.25}}}}}
    headers, rows = per_class_rows(metrics, ["a", "b"])
    assert headers[:3] == ["class", "CAS", "conf."]  # shortened for the narrow table
    assert rows[0][:3] == ["a", "50.0%", "25.0%"] and rows[1][1] == "n/a"


def test_stop_never_signals_a_process_that_is_not_the_runs_trainer(tmp_path):
    import os

    from gan_studio.app.training_manager import trainer_pid
    from gan_studio.training.checkpoint import write_json_atomic

    run_dir = tmp_path / "runs" / "someone-elses"
    write_json_atomic(run_dir / "status.json", {"state": "running", "pid": os.getpid(), "step": 3})
    assert trainer_pid(run_dir) is None  # alive, but not `gan_studio train --out run_dir`
    assert not TrainingManager(tmp_path / "runs").stop(run_dir)


def test_server_folders_can_be_limited_to_data_roots(tmp_path, demo_dir):
    from gan_studio.app import create_studio

    open_studio = create_studio(workdir=tmp_path / "a", warm_up_umap=False)
    assert open_studio.check_server_folder(demo_dir) == demo_dir.resolve()
    locked = create_studio(workdir=tmp_path / "b", data_roots=[demo_dir.parent], warm_up_umap=False)
    assert locked.check_server_folder(demo_dir) == demo_dir.resolve()
    with pytest.raises(DatasetError, match="only trains on folders inside"):
        locked.check_server_folder(tmp_path)
    with pytest.raises(DatasetError, match="upload a .zip"):
        create_studio(workdir=tmp_path / "c", data_roots=[], warm_up_umap=False).check_server_folder(demo_dir)


def test_real_data_warm_up_decodes_the_default_generators_split(tmp_path, tiny_run):
    from gan_studio.app import create_studio

    studio = create_studio(
        workdir=tmp_path / "w", checkpoint_dirs=[tiny_run.parent], device="cpu", warm_up_umap=False
    )
    studio.warm_up_real_data().join(timeout=120)
    cached = list(studio.real_data._cache.values())
    assert len(cached) == 1 and len(cached[0].train) and len(cached[0].test)
    assert studio.real_data.get(studio.registry.generators()[0]) is cached[0]  # served from the warm cache


def test_model_line_shows_headline_metrics_without_misleading_rounding(tmp_path):
    from gan_studio.app.common import entry_markdown
    from gan_studio.app.registry import ModelEntry

    entry = ModelEntry(
        id="vise-parts",
        kind=GENERATOR,
        path=tmp_path,
        source="package",
        class_names=("A", "B"),
        resolution=64,
        step=5815,
        metrics={"cas": 0.5975, "fid": 52.513, "memorization": 0.0057, "c2st": 0.9957},
    )
    line = entry_markdown(entry, None)
    assert "step 5815" in line
    assert "C2ST 99.6%" in line  # told apart 99.6% of the time, not "always" (100%)
    assert "CAS 60%" in line and "FID 52.5" in line
    # The bar for near-copies is 1%: 0.57% must not be shown as "1%".
    assert "near-copies 0.6%" in line and "near-copies 1%" not in line
