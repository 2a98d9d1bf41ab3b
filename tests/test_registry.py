"""Model registry: discovery with metadata, one shared load per model, new checkpoints, LRU eviction."""

from __future__ import annotations

import json
import shutil
import threading

import pytest
import torch

from gan_studio.app.registry import EVALUATOR, GENERATOR, ModelRegistry, discover
from gan_studio.training import checkpoint as ckpt
from tests.app_support import tiny_evaluator


@pytest.fixture(scope="session")
def evaluator_dir(tmp_path_factory, tiny_run, demo_dir):
    return tiny_evaluator(tmp_path_factory.getbasetemp(), tiny_run, demo_dir)


@pytest.fixture()
def run_copy(tiny_run, tmp_path):
    """A private copy of the tiny run, so a test can add checkpoints to it."""
    dest = tmp_path / "runs" / "copy"
    shutil.copytree(tiny_run, dest)
    return dest


def add_checkpoint(run_dir, step: int):
    """What a running training does: a new complete step folder, then ``latest`` points at it."""
    latest = ckpt.latest_checkpoint(run_dir)
    new = ckpt.checkpoints_root(run_dir) / ckpt.step_dir_name(step)
    shutil.copytree(latest, new)
    meta = json.loads((new / "checkpoint.json").read_text())
    ckpt.write_json_atomic(new / "checkpoint.json", {**meta, "step": step})
    ckpt.write_text_atomic(ckpt.checkpoints_root(run_dir) / ckpt.LATEST_FILE, new.name + "\n")


def test_discovers_runs_and_evaluators_with_metadata(tiny_run, evaluator_dir):
    entries = discover([tiny_run.parent, evaluator_dir.parent])
    by_kind = {e.kind: e for e in entries}
    run, evaluator = by_kind[GENERATOR], by_kind[EVALUATOR]
    assert run.id == "tiny" and run.source == "run" and run.step == 6 and run.resolution == 32
    assert len(run.class_names) == 10 and "Nut" in run.class_names and run.state == "finished"
    assert run.split_path == tiny_run / "split.json" and run.dataset is not None
    assert evaluator.id == "tiny-evaluator" and evaluator.class_names == run.class_names
    assert "step 6" in run.label and "32 px" in run.label


def test_a_run_without_checkpoint_is_listed_but_not_loaded(tmp_path, tiny_run):
    pending = tmp_path / "runs" / "pending"
    pending.mkdir(parents=True)
    shutil.copy2(tiny_run / "run.json", pending / "run.json")
    registry = ModelRegistry([tmp_path / "runs"], device="cpu")
    (entry,) = registry.generators()
    assert entry.step == 0 and "no checkpoint yet" in entry.label
    with pytest.raises(ckpt.CheckpointError, match="no checkpoint yet"):
        registry.load(GENERATOR, "pending")


def test_two_threads_asking_for_one_model_load_it_once(tiny_run):
    registry = ModelRegistry([tiny_run.parent], device="cpu")
    barrier = threading.Barrier(4)
    got, errors = [], []

    def ask():
        try:
            barrier.wait()
            with registry.use_generator("tiny") as loaded:
                got.append(loaded.model)
        except Exception as error:  # noqa: BLE001 - reported by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert registry.load_counts == {(GENERATOR, "tiny"): 1}
    assert all(model is got[0] for model in got)
    model = got[0]
    assert not model.training and not any(p.requires_grad for p in model.parameters())
    assert next(model.parameters()).device == torch.device("cpu")


def test_a_new_checkpoint_is_picked_up_without_restart(run_copy):
    registry = ModelRegistry([run_copy.parent], device="cpu")
    first = registry.load(GENERATOR, "copy")
    assert first.info.step == 6
    assert registry.load(GENERATOR, "copy").model is first.model  # nothing new: the same weights
    add_checkpoint(run_copy, 9)
    assert registry.get(GENERATOR, "copy").step == 9
    second = registry.load(GENERATOR, "copy")
    assert second.info.step == 9 and second.model is not first.model
    assert registry.load_counts[(GENERATOR, "copy")] == 2


def test_least_recently_used_model_is_evicted_beyond_the_budget(tiny_run, evaluator_dir):
    registry = ModelRegistry([tiny_run.parent, evaluator_dir.parent], device="cpu", memory_budget_mb=1)
    registry.load(GENERATOR, "tiny")
    assert registry.loaded_ids() == [(GENERATOR, "tiny")]  # alone it may exceed the budget: it stays
    registry.load(EVALUATOR, "tiny-evaluator")
    assert registry.loaded_ids() == [(EVALUATOR, "tiny-evaluator")]
    with registry.use_evaluator("tiny-evaluator"):  # a model in use is never evicted
        registry.load(GENERATOR, "tiny")
        assert set(registry.loaded_ids()) == {(GENERATOR, "tiny"), (EVALUATOR, "tiny-evaluator")}
    roomy = ModelRegistry([tiny_run.parent, evaluator_dir.parent], device="cpu", memory_budget_mb=512)
    roomy.load(GENERATOR, "tiny")
    roomy.load(EVALUATOR, "tiny-evaluator")
    assert len(roomy.loaded_ids()) == 2 and roomy.loaded_bytes() > 0


def test_evaluator_for_prefers_matching_classes(tiny_run, evaluator_dir, tmp_path):
    other = tmp_path / "evaluators" / "other"
    shutil.copytree(evaluator_dir, other)
    config = json.loads((other / "config.json").read_text())
    (other / "config.json").write_text(json.dumps({**config, "class_names": ["a", "b"]}))
    registry = ModelRegistry([tiny_run.parent, evaluator_dir.parent, other.parent], device="cpu")
    run = registry.get(GENERATOR, "tiny")
    assert [e.id for e in registry.evaluators(run.class_names)] == ["tiny-evaluator"]
    assert registry.evaluator_for(run).id == "tiny-evaluator"


def test_unknown_id_names_the_known_ones(tiny_run):
    registry = ModelRegistry([tiny_run.parent], device="cpu")
    with pytest.raises(KeyError, match="known: tiny"):
        registry.get(GENERATOR, "nope")
