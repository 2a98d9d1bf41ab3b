"""Sampling: reproducible per seed, the samples manifest (one schema for the sample command and the
Sample tab, older manifests still read), class selection, loading from any folder of a run."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
import torch

from gan_studio.sampling import (
    SAMPLES_SCHEMA,
    class_index,
    generate,
    load_generator,
    read_manifest,
    safe_name,
    sample,
    upgrade_manifest,
)
from tests.conftest import run_cli


def test_sample_cli_is_deterministic(tiny_run, tmp_path):
    for out in ("a", "b"):
        proc = run_cli(
            "sample", "--ckpt", tiny_run, "--class", "Nut", "--n", "4", "--seed", "1", "--out", tmp_path / out
        )
        assert proc.returncode == 0, proc.stderr
    files = sorted((tmp_path / "a" / "Nut").glob("*.png"))
    assert [f.name for f in files] == [f"seed_{s:06d}.png" for s in (1, 2, 3, 4)]
    for f in files:
        assert f.read_bytes() == (tmp_path / "b" / "Nut" / f.name).read_bytes()
    manifest = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert manifest["schema"] == SAMPLES_SCHEMA and manifest["model"]["step"] == 6
    assert manifest["model"]["id"] == "tiny" and len(manifest["images"]) == 4
    entry = manifest["images"][0]
    assert entry["class"] == "Nut" and entry["seed"] == 1 and len(entry["latent"]) == 16
    assert entry["step"] == 6 and entry["model"] == "tiny" and entry["truncation"] == 1.0
    assert entry["file"] == "Nut/seed_000001.png" and entry["source"] == "generated"
    assert [c["name"] for c in manifest["classes"]][entry["class_index"]] == "Nut"


def test_same_seed_same_image_whatever_the_batch(tiny_run):
    G, info = load_generator(tiny_run, device="cpu")
    nut = class_index(G, "nut")
    alone = generate(G, [nut], [7])
    batch = generate(G, [0, nut, 3, nut], [1, 7, 2, 8], batch_size=3)
    assert torch.equal(alone[0], batch[1])
    assert not torch.equal(batch[1], batch[3])
    assert alone.dtype == torch.uint8 and alone.shape == (1, 3, 32, 32)
    assert info.step == 6 and info.run_dir == tiny_run


def test_sample_gives_each_image_its_provenance(tiny_run):
    G, info = load_generator(tiny_run, device="cpu")
    batch = sample(G, info, [3, 0], [7, 2], truncation=0.5)
    assert torch.equal(batch.images, generate(G, [3, 0], [7, 2], truncation=0.5))
    first = batch.records[0]
    assert (first.class_index, first.class_name, first.seed, first.truncation, first.step, first.model) == (
        3, info.class_names[3], 7, 0.5, 6, "tiny",
    )  # fmt: skip
    assert batch.model["z_dim"] == 16 and batch.model["id"] == "tiny"
    assert sample(G, info, [1], [0], model="mine").records[0].model == "mine"
    with pytest.raises(ValueError, match="out of range"):
        sample(G, info, [10], [0])


def _quiet(*args, **kwargs):
    """Stands in for gr.Progress outside an event."""


def test_the_sample_command_and_the_sample_tab_write_one_manifest_schema(tiny_run, tmp_path):
    proc = run_cli(
        "sample", "--ckpt", tiny_run, "--class", "Nut", "--n", "2", "--seed", "7", "--truncation", "0.8",
        "--out", tmp_path / "cli",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    cli = json.loads((tmp_path / "cli" / "manifest.json").read_text())
    assert read_manifest(tmp_path / "cli") == cli  # the schema reads back as written

    from gan_studio.app import create_studio
    from gan_studio.app.postprocess import FILTERS
    from gan_studio.app.tabs.sample import draw

    studio = create_studio(
        workdir=tmp_path / "studio", checkpoint_dirs=[tiny_run.parent], device="cpu", warm_up_umap=False
    )
    try:
        strengths = [spec.default for spec in FILTERS.values()]
        _, _, archive, _, _ = draw(
            studio, "tiny", None, "Nut", 2, 7, 0.8, ["median"], *strengths, progress=_quiet
        )
    finally:
        studio.shutdown()
    with zipfile.ZipFile(archive) as zf:
        tab = json.loads(zf.read("manifest.json"))
        assert sorted(n for n in zf.namelist() if n.endswith(".png")) == [e["file"] for e in tab["images"]]

    assert cli["schema"] == tab["schema"] == SAMPLES_SCHEMA and set(cli) == set(tab)
    assert cli["classes"] == tab["classes"]
    for key in ("generator", "run_dir"):  # the same weights (the app resolves its folders)
        assert Path(cli["model"].pop(key)).resolve() == Path(tab["model"].pop(key)).resolve()
    assert cli["model"] == tab["model"]
    for from_cli, from_tab in zip(cli["images"], tab["images"], strict=True):
        assert set(from_cli) == set(from_tab)
        assert from_cli["filters"] == [] and [f["name"] for f in from_tab["filters"]] == ["median"]
        assert {**from_cli, "filters": None} == {**from_tab, "filters": None}  # same image, same record


# The manifests written before the schema had a name, as each writer wrote them.
OLD_CLI = {
    "generator": "/x/runs/parts/checkpoints/step_0000600/generator_ema", "run_dir": "/x/runs/parts",
    "step": 600, "resolution": 32, "truncation": 0.7, "noise_mode": "const",
    "images": [
        {"file": "Nut/seed_000001.png", "class": "Nut", "class_index": 2, "seed": 1, "latent": [0.1] * 4},
    ],
}  # fmt: skip
OLD_SAMPLE_TAB = {
    "run": "parts", "generator": "/x/runs/parts/checkpoints/step_0000600/generator_ema", "step": 600,
    "truncation": 1.0, "noise_mode": "const", "filters": [{"name": "median", "strength": 3.0, "params": {}}],
    "images": [
        {"file": "Nut/seed_000000.png", "class": "Nut", "class_index": 2, "seed": 0, "latent": [0.2] * 4,
         "evaluator": {"predicted": "Clamp", "confidence": 0.55}},
    ],
}  # fmt: skip
OLD_EXPORT = {
    "run": "parts", "generator": "/x/pkg/generator", "thresholds": {"min_confidence": 0.6},
    "created": "2026-11-01T10:00:00", "image_size": 64, "metadata_file": "metadata.csv",
    "classes": [{"index": 0, "name": "Bolt", "folder": "Bolt", "generated": 0, "real": 1},
                {"index": 1, "name": "Clamp", "folder": "Clamp", "generated": 1, "real": 0}],
    "n_generated": 1, "n_real": 1,
    "images": [
        {"file": "Clamp/seed_000004_t100.png", "class": "Clamp", "class_index": 1, "source": "generated",
         "size": 64, "seed": 4, "truncation": 1.0, "latent": None, "run": "parts", "step": 600,
         "scores": {"confidence": 0.9}, "decision": "threshold", "filters": []},
        {"file": "Bolt/real_a.png", "class": "Bolt", "class_index": 0, "source": "real", "size": 64,
         "original": "Bolt/a.jpg", "fit": "center-crop"},
    ],
}  # fmt: skip
OLD_BENCH = {
    "bench_seed": 0, "generator": "/x/runs/parts/checkpoints/step_0000600/generator_ema",
    "run_dir": "/x/runs/parts", "step": 600, "resolution": 32, "truncation": 1.0, "noise_mode": "const",
    "first_seed": 0,
    "images": [{"file": "Nut/seed_000000.png", "class": "Nut", "class_index": 2, "seed": 0, "stream_index": 0,
                "confidence": 0.8125, "passes_filter": True}],
    "arms": {"real+syn@0.5": ["Nut/seed_000000.png"]},
}  # fmt: skip


def test_the_reader_turns_every_older_manifest_into_the_schema(tmp_path):
    (tmp_path / "manifest.json").write_text(json.dumps(OLD_CLI))
    cli = read_manifest(tmp_path)  # a folder or the file itself
    assert cli == read_manifest(tmp_path / "manifest.json") and cli["schema"] == SAMPLES_SCHEMA
    assert cli["model"] == {
        "id": "parts", "generator": OLD_CLI["generator"], "run_dir": "/x/runs/parts", "step": 600,
        "resolution": 32, "z_dim": 4, "noise_mode": "const",
    }  # fmt: skip
    (image,) = cli["images"]
    assert (image["source"], image["truncation"], image["step"], image["model"], image["filters"]) == (
        "generated", 0.7, 600, "parts", [],
    )  # fmt: skip
    assert cli["classes"] == [{"index": 2, "name": "Nut", "folder": "Nut"}] and "truncation" not in cli

    tab = upgrade_manifest(OLD_SAMPLE_TAB)
    (image,) = tab["images"]
    assert tab["model"]["id"] == "parts" and image["filters"] == OLD_SAMPLE_TAB["filters"]
    assert (
        image["scores"] == {"predicted": "Clamp", "predicted_confidence": 0.55} and "evaluator" not in image
    )

    export = upgrade_manifest(OLD_EXPORT)
    generated, real = export["images"]
    assert export["model"]["id"] == "parts" and export["model"]["step"] == 600
    assert (
        generated["model"] == "parts"
        and "run" not in generated
        and generated["scores"] == {"confidence": 0.9}
    )
    assert real == OLD_EXPORT["images"][1]  # a real image's entry had its v1 form already
    assert export["classes"] == OLD_EXPORT["classes"] and export["created"] == "2026-11-01T10:00:00"
    assert (
        export["thresholds"] == {"min_confidence": 0.6} and export["n_real"] == 1
    )  # a writer's own keys stay

    bench = upgrade_manifest(OLD_BENCH)
    (image,) = bench["images"]
    assert image["scores"] == {"confidence": 0.8125} and image["stream_index"] == 0 and image["passes_filter"]
    assert bench["arms"] == OLD_BENCH["arms"] and bench["first_seed"] == 0 and bench["model"]["step"] == 600

    assert upgrade_manifest(cli) == cli  # the schema itself reads as it is
    with pytest.raises(ValueError, match="samples-v9"):
        upgrade_manifest({**cli, "schema": "gan-studio/samples-v9"})
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "manifest.json").write_text("{not json")
    with pytest.raises(ValueError, match="not a readable manifest"):
        read_manifest(tmp_path / "bad")


def test_load_generator_from_each_folder_kind(tiny_run):
    latest = tiny_run / "checkpoints" / "step_0000006"
    for path in (tiny_run, latest, latest / "generator_ema"):
        G, info = load_generator(path, device="cpu")
        assert info.resolution == 32 and len(info.class_names) == 10
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_generator(tiny_run / "nope")


def test_unknown_class_lists_the_classes(tiny_run, tmp_path):
    proc = run_cli("sample", "--ckpt", tiny_run, "--class", "Hammer", "--n", "1", "--out", tmp_path / "s")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "Hammer" in proc.stderr and "Nut" in proc.stderr


def test_all_classes_and_truncation(tiny_run, tmp_path):
    proc = run_cli("sample", "--ckpt", tiny_run, "--n", "2", "--truncation", "0.5", "--out", tmp_path / "s")
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads((tmp_path / "s" / "manifest.json").read_text())
    assert len(manifest["images"]) == 20 and {e["truncation"] for e in manifest["images"]} == {0.5}


def test_safe_name():
    for hostile in ("../../etc", "a/b", "..", "C:\\x", "/abs"):
        cleaned = safe_name(hostile)
        assert "/" not in cleaned and "\\" not in cleaned and not cleaned.startswith(".") and cleaned
    assert safe_name("") == "class" and safe_name("Ball Joint ü") == "Ball Joint ü"


def test_package_is_small_loadable_and_carded(tiny_run, tmp_path):
    proc = run_cli("package", "--run", tiny_run, "--out", tmp_path / "pkg")
    assert proc.returncode == 0, proc.stderr
    pkg = tmp_path / "pkg"
    for name in ("README.md", "package.json", "samples.png", "split.json", "train_files.json", "run.json"):
        assert (pkg / name).is_file(), name
    from safetensors.torch import load_file

    assert all(
        t.dtype == torch.float16
        for t in load_file(pkg / "generator" / "model.safetensors").values()
        if t.is_floating_point()
    )
    G, info = load_generator(pkg, device="cpu")
    G_run, _ = load_generator(tiny_run, device="cpu")
    assert info.step == 6 and info.class_names == G_run.class_names
    assert load_generator(pkg / "generator", device="cpu")[1].step == 6  # the folder inside knows it too
    a, b = generate(G, [2], [5]).float(), generate(G_run, [2], [5]).float()
    assert (a - b).abs().mean() < 2.0  # fp16 storage changes pixels by at most rounding noise
    card = (pkg / "README.md").read_text()
    assert "python -m gan_studio train" in card and "Steps: 6" in card
    assert "--out RUN" in card and str(tiny_run) not in card  # portable: no path of this machine
    for name in ("run.json", "package.json"):
        text = (pkg / name).read_text()
        assert str(tiny_run) not in text and str(tiny_run.resolve()) not in text, name
    assert json.loads((pkg / "run.json").read_text())["config"]["out"] == "RUN"


def test_package_placeholders_match_whole_folder_names():
    from gan_studio.packaging import _with_placeholders

    places = {"runs/parts": "RUN", "/home/me/runs/parts": "RUN", "runs/parts-guide": "GUIDE"}
    text = '{"out": "/home/me/runs/parts", "guide": "runs/parts-guide", "eval": "runs/parts-eval", "x": "myruns/parts"}'
    assert _with_placeholders(text, places) == (
        '{"out": "RUN", "guide": "GUIDE", "eval": "runs/parts-eval", "x": "myruns/parts"}'
    )
