"""Sampling: reproducible per seed, manifest, class selection, loading from any folder of a run."""

from __future__ import annotations

import json

import pytest
import torch

from gan_studio.sampling import class_index, generate, load_generator, safe_name
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
    assert manifest["step"] == 6 and len(manifest["images"]) == 4
    entry = manifest["images"][0]
    assert entry["class"] == "Nut" and entry["seed"] == 1 and len(entry["latent"]) == 16


def test_same_seed_same_image_whatever_the_batch(tiny_run):
    G, info = load_generator(tiny_run, device="cpu")
    nut = class_index(G, "nut")
    alone = generate(G, [nut], [7])
    batch = generate(G, [0, nut, 3, nut], [1, 7, 2, 8], batch_size=3)
    assert torch.equal(alone[0], batch[1])
    assert not torch.equal(batch[1], batch[3])
    assert alone.dtype == torch.uint8 and alone.shape == (1, 3, 32, 32)
    assert info.step == 6 and info.run_dir == tiny_run


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
    assert len(manifest["images"]) == 20 and manifest["truncation"] == 0.5


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
