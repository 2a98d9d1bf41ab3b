"""Sharing runs: push (to a stand-in Hub API) and pull packages, all offline; the app finds pulled packages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from gan_studio.app.registry import EVALUATOR, GENERATOR, ModelRegistry
from gan_studio.hub import HubError, pull_run, push_run
from gan_studio.packaging import package_run
from gan_studio.sampling import generate, load_generator
from tests.app_support import tiny_evaluator


class RecordingApi:
    """Stands in for huggingface_hub.HfApi: records what would be uploaded (the tests never go online)."""

    def __init__(self):
        self.repos, self.uploads = [], []

    def create_repo(self, repo_id, **kwargs):
        self.repos.append((repo_id, kwargs))

    def upload_folder(self, *, folder_path, repo_id, **kwargs):
        files = sorted(
            p.relative_to(folder_path).as_posix() for p in Path(folder_path).rglob("*") if p.is_file()
        )
        self.uploads.append((repo_id, files, kwargs))
        return type("Commit", (), {"commit_url": f"https://huggingface.co/{repo_id}/commit/abc"})()


@pytest.fixture(scope="module")
def package(tmp_path_factory, tiny_run, demo_dir):
    evaluator = tiny_evaluator(tmp_path_factory.getbasetemp(), tiny_run, demo_dir)
    return package_run(tiny_run, tmp_path_factory.mktemp("shared") / "vise", evaluator_dir=evaluator)


def test_push_packages_a_run_on_the_fly(tiny_run):
    api = RecordingApi()
    url = push_run(tiny_run, "someone/vise-gan", private=True, api=api)
    assert url == "https://huggingface.co/someone/vise-gan/commit/abc"
    assert api.repos == [("someone/vise-gan", {"repo_type": "model", "private": True, "exist_ok": True})]
    ((repo_id, files, kwargs),) = api.uploads
    assert repo_id == "someone/vise-gan" and kwargs["repo_type"] == "model"
    assert {"package.json", "README.md", "generator/model.safetensors", "split.json"} <= set(files)
    assert not any(
        "training_state" in f or "discriminator" in f for f in files
    )  # never a training checkpoint


def test_push_uploads_an_existing_package_as_is(package):
    api = RecordingApi()
    push_run(package, "someone/vise-gan", api=api)
    ((_, files, _),) = api.uploads
    assert files == sorted(p.relative_to(package).as_posix() for p in package.rglob("*") if p.is_file())


def test_a_failed_upload_says_what_to_do(package):
    class Offline(RecordingApi):
        def create_repo(self, repo_id, **kwargs):
            raise ConnectionError("no network")

    with pytest.raises(HubError, match="huggingface-cli login"):
        push_run(package, "someone/vise-gan", api=Offline())


def test_pulled_package_loads_and_shows_up_in_the_registry(package, tiny_run):
    assert pull_run(package) == package
    G_run, _ = load_generator(tiny_run, device="cpu")
    G_pkg, _ = load_generator(pull_run(package) / "generator", device="cpu")
    same = generate(G_run, [3, 6], [1, 2]).int() - generate(G_pkg, [3, 6], [1, 2]).int()
    assert same.abs().max() <= 8  # fp16-stored weights: the same images up to rounding
    registry = ModelRegistry([package.parent], device="cpu")
    run = registry.get(GENERATOR, "vise")
    assert run.source == "package" and run.step == 6 and run.split_path == package / "split.json"
    assert registry.evaluator_for(run).id == "vise/evaluator"
    assert registry.load(EVALUATOR, "vise/evaluator").model.class_names == list(run.class_names)
    loaded = registry.load(GENERATOR, "vise")
    assert loaded.entry.step == 6 and next(loaded.model.parameters()).dtype == torch.float32


def test_pull_explains_offline_and_non_packages(tmp_path):
    with pytest.raises(HubError, match="HF_HUB_OFFLINE"):  # tests/conftest.py sets it
        pull_run("gan-studio-tests/does-not-exist", local_dir=tmp_path / "x")
    with pytest.raises(HubError, match="not a GAN Studio package"):
        pull_run(tmp_path)


def test_package_model_card_reports_the_evaluators_real_accuracy(tiny_run, package, tmp_path):
    import shutil

    evaluator = tmp_path / "evaluator"
    shutil.copytree(package / "evaluator", evaluator)
    training = json.loads((evaluator / "training.json").read_text())
    training.update(
        test_accuracy=0.9625, per_class_accuracy={"Nut": 1.0}, split={"n_train": 56, "n_test": 24}, arch="x"
    )
    (evaluator / "training.json").write_text(json.dumps(training))
    out = package_run(tiny_run, tmp_path / "pkg", evaluator_dir=evaluator)
    assert json.loads((out / "package.json").read_text())["evaluator"]["test_accuracy"] == 0.9625
    card = (out / "README.md").read_text()
    assert "## Evaluator" in card and "**0.9625**" in card and "| Nut | 1.0000 |" in card
    assert "held-out real test images" in card
