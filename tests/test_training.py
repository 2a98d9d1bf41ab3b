"""Training: a tiny real run, checkpoints, exact resume, refusals, clean stop, data-parallel ranks."""

from __future__ import annotations

import itertools
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from gan_studio.training import checkpoint as ckpt
from gan_studio.training.config import TrainConfig
from gan_studio.training.loop import train
from tests.conftest import REPO, TINY_MODEL_ARGS, run_cli

LOG_KEYS = {
    "step",
    "loss_d_real",
    "loss_d_fake",
    "loss_recon",
    "loss_g",
    "logits_real",
    "logits_fake",
    "r_t",
    "images_per_s",
}


def test_tiny_run_writes_everything(tiny_run):
    run = json.loads((tiny_run / "run.json").read_text())
    assert run["config"]["resolution"] == 32 and len(run["class_names"]) == 10
    assert (tiny_run / "split.json").is_file() and (tiny_run / "data_report.json").is_file()
    lines = [json.loads(line) for line in (tiny_run / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == [2, 4, 6]
    assert LOG_KEYS <= set(lines[0]) and all(-1 <= r["r_t"] <= 1 for r in lines)
    latest = ckpt.latest_checkpoint(tiny_run)
    assert latest.name == "step_0000006"
    for name in ("generator", "generator_ema", "discriminator"):
        assert (latest / name / "config.json").is_file() and (latest / name / "model.safetensors").is_file()
    meta = ckpt.load_checkpoint_meta(latest)
    assert (
        meta["step"] == 6 and meta["format_version"] == ckpt.FORMAT_VERSION and len(meta["class_names"]) == 10
    )
    state = ckpt.load_training_state(latest)  # weights_only=True: no pickled objects
    assert state["step"] == 6 and {"optimizer_g", "optimizer_d", "rng"} <= set(state)
    assert json.loads((latest / "split.json").read_text()) == json.loads(
        (tiny_run / "split.json").read_text()
    )
    grid = Image.open(tiny_run / "samples" / "latest.png")
    assert grid.height >= 10 * 32  # one row per class
    assert (tiny_run / "samples" / "reconstructions.png").is_file()
    status = json.loads((tiny_run / "status.json").read_text())
    assert status["state"] == "finished" and status["step"] == 6
    assert not [p for p in (tiny_run / "checkpoints").iterdir() if p.name.startswith(".tmp")]


def test_split_keeps_test_images_out_of_training(tiny_run):
    split = json.loads((tiny_run / "split.json").read_text())
    assert split["test"] and not set(split["train"]) & set(split["test"])
    run = json.loads((tiny_run / "run.json").read_text())
    assert run["data"]["n_train"] == len(split["train"])


def _config(data, out, steps, **kw):
    base = dict(
        data=str(data),
        out=str(out),
        resolution=32,
        steps=steps,
        batch=4,
        g_width=8,
        d_width=8,
        z_dim=16,
        embed_dim=8,
        precision="fp32",
        log_every=1,
        sample_every=0,
        ckpt_every=0,
    )
    return TrainConfig(**{**base, **kw})


def test_a_step_reads_its_statistics_in_one_host_copy(demo_dir, tmp_path, monkeypatch):
    """Each .item() makes a GPU drain its queue; the step must read all of its numbers at once."""
    from gan_studio.training.loop import Trainer

    trainer = Trainer(
        _config(demo_dir, tmp_path / "sync", 2, class_loss=1.0, mode_seeking=0.3), progress=False
    )
    reads = []  # reads of computed (floating-point) values; D's integer draw from the CPU RNG is no device read
    item, tolist = torch.Tensor.item, torch.Tensor.tolist

    def spy(name, read):
        return lambda t: (t.is_floating_point() and reads.append(name)) or read(t)

    monkeypatch.setattr(torch.Tensor, "item", spy("item", item))
    monkeypatch.setattr(torch.Tensor, "tolist", spy("tolist", tolist))
    stats = trainer.train_step()
    monkeypatch.undo()
    assert reads == ["tolist"]
    assert all(isinstance(v, float) and math.isfinite(v) for v in stats.values())
    assert stats["loss_ms"] > 0 and stats["loss_cls_real"] > 0 and 0 <= stats["acc_cls_real"] <= 1


def test_fit_reads_the_statistics_once_per_log_line(demo_dir, tmp_path, monkeypatch):
    """Training reads nothing back from the device step by step: a log line's steps are read in one
    copy when it is written, and the log holds each step's statistics all the same."""
    from gan_studio.training.loop import Trainer

    config = _config(demo_dir, tmp_path / "lazy", 6, log_every=3, class_loss=1.0, mode_seeking=0.3)
    trainer = Trainer(config, progress=False)
    reads = []
    item, tolist = torch.Tensor.item, torch.Tensor.tolist

    def spy(read):
        return lambda t: (t.is_floating_point() and reads.append(trainer.step)) or read(t)

    monkeypatch.setattr(torch.Tensor, "item", spy(item))
    monkeypatch.setattr(torch.Tensor, "tolist", spy(tolist))
    trainer.fit()
    monkeypatch.undo()
    assert reads == [3, 6]
    log = [json.loads(line) for line in (tmp_path / "lazy" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [3, 6] and all(r["loss_ms"] > 0 for r in log)


def test_a_diverged_step_stops_the_run_before_it_saves(demo_dir, tmp_path, monkeypatch):
    """Statistics are read back at log lines and before every save: a non-finite loss stops the run
    there, naming its step, and no checkpoint of the diverged weights is written."""
    from gan_studio.training.loop import Trainer

    trainer = Trainer(_config(demo_dir, tmp_path / "nan", 6, log_every=5, ckpt_every=3), progress=False)
    step_on_device = trainer.step_on_device

    def diverging():
        stats = step_on_device()
        return stats * float("nan") if trainer.step == 1 else stats  # the second step diverges

    monkeypatch.setattr(trainer, "step_on_device", diverging)
    with pytest.raises(FloatingPointError, match="diverged at step 2"):
        trainer.fit()
    assert ckpt.latest_checkpoint(tmp_path / "nan") is None  # step 3's checkpoint was not written


def _weights(run_dir, step):
    folder = run_dir / "checkpoints" / ckpt.step_dir_name(step)
    return {
        name: load_file(folder / name / "model.safetensors")
        for name in ("generator", "generator_ema", "discriminator")
    }


def _loss_lines(run_dir):
    keys = LOG_KEYS - {"images_per_s"}
    return [
        {k: v for k, v in json.loads(line).items() if k in keys}
        for line in (run_dir / "log.jsonl").read_text().splitlines()
    ]


def test_resume_matches_straight_run(tmp_path, demo_dir):
    train(_config(demo_dir, tmp_path / "straight", 6), progress=False)
    train(_config(demo_dir, tmp_path / "resumed", 3), progress=False)
    train(_config(demo_dir, tmp_path / "resumed", 6), resume=True, progress=False)
    a, b = _weights(tmp_path / "straight", 6), _weights(tmp_path / "resumed", 6)
    for name in a:
        for key in a[name]:
            torch.testing.assert_close(a[name][key], b[name][key], rtol=0, atol=1e-6, msg=f"{name}.{key}")
    assert _loss_lines(tmp_path / "straight") == _loss_lines(tmp_path / "resumed")


def test_fastgan_discriminator_widths_train_and_resume(tmp_path, demo_dir):
    """--d-widths fastgan reaches D, is saved with the run and is kept on --resume."""
    out = tmp_path / "run"
    train(_config(demo_dir, out, 2, d_widths="fastgan"), progress=False)
    train(_config(demo_dir, out, 3), resume=True, progress=False)
    d_config = json.loads(
        (out / "checkpoints" / ckpt.step_dir_name(3) / "discriminator" / "config.json").read_text()
    )
    assert d_config["widths"] == "fastgan"
    compact = tmp_path / "compact"
    train(_config(demo_dir, compact, 1), progress=False)
    n_params = [
        sum(t.numel() for t in _weights(run, step)["discriminator"].values())
        for run, step in ((out, 3), (compact, 1))
    ]
    assert n_params[0] > n_params[1]


def test_resume_refusals(tmp_path, demo_dir):
    with pytest.raises(ckpt.CheckpointError, match="no checkpoint yet"):
        train(_config(demo_dir, tmp_path / "nothing", 2), resume=True, progress=False)
    train(_config(demo_dir, tmp_path / "run", 2), progress=False)
    saved = _weights(tmp_path / "run", 2)
    with pytest.raises(ckpt.CheckpointError, match="already holds checkpoints"):
        train(_config(demo_dir, tmp_path / "run", 4), progress=False)
    assert all(
        torch.equal(saved["generator"][k], v) for k, v in _weights(tmp_path / "run", 2)["generator"].items()
    )


def test_keeps_last_k_checkpoints_and_latest(tmp_path, demo_dir):
    out = tmp_path / "run"
    train(_config(demo_dir, out, 8, ckpt_every=2, keep_checkpoints=2), progress=False)
    assert [p.name for p in ckpt.list_checkpoints(out)] == ["step_0000006", "step_0000008"]
    assert (out / "checkpoints" / "latest").read_text().strip() == "step_0000008"


def test_latest_pointer_survives_a_bad_pointer(tmp_path, demo_dir):
    out = tmp_path / "run"
    train(_config(demo_dir, out, 2), progress=False)
    (out / "checkpoints" / "latest").write_text("../../etc\n")
    assert ckpt.latest_checkpoint(out).name == "step_0000002"


def test_unknown_checkpoint_format_is_refused(tmp_path, demo_dir):
    out = tmp_path / "run"
    train(_config(demo_dir, out, 2), progress=False)
    meta_path = out / "checkpoints" / "step_0000002" / "checkpoint.json"
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**meta, "format_version": 99}))
    with pytest.raises(ckpt.CheckpointError, match="format 99"):
        ckpt.load_checkpoint_meta(meta_path.parent)


def test_sigterm_saves_and_exits_cleanly(tmp_path, demo_dir):
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gan_studio",
            "train",
            "--data",
            str(demo_dir),
            "--out",
            str(out),
            "--res",
            "32",
            "--steps",
            "100000",
            "--batch",
            "4",
            *TINY_MODEL_ARGS,
            "--log-every",
            "1",
            "--ckpt-every",
            "0",
            "--sample-every",
            "0",
            "--precision",
            "fp32",
            "--no-progress",
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    log = out / "log.jsonl"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not (log.is_file() and log.read_text().count("\n") >= 2):
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr
    assert "Traceback" not in stderr and "--resume" in stderr
    latest = ckpt.latest_checkpoint(out)
    assert latest is not None and ckpt.load_checkpoint_meta(latest)["step"] >= 2
    assert json.loads((out / "status.json").read_text())["state"] == "stopped"


def test_cli_train_then_resume_more_steps(tmp_path, demo_dir):
    out = tmp_path / "run"
    args = [
        "--data",
        demo_dir,
        "--out",
        out,
        "--res",
        "32",
        "--batch",
        "4",
        *TINY_MODEL_ARGS,
        "--no-progress",
    ]
    assert run_cli("train", *args, "--steps", "3").returncode == 0
    proc = run_cli("train", *args, "--steps", "5", "--resume")
    assert proc.returncode == 0, proc.stderr
    assert ckpt.latest_checkpoint(out).name == "step_0000005"
    # --resume alone knows its data from run.json; a new run without --data is refused in one line.
    proc = run_cli("train", "--out", out, "--steps", "6", "--resume", "--no-progress")
    assert proc.returncode == 0, proc.stderr
    assert ckpt.latest_checkpoint(out).name == "step_0000006"
    proc = run_cli("train", "--out", out.parent / "no-data", "--steps", "6")
    assert proc.returncode == 2 and "needs --data" in proc.stderr and "Traceback" not in proc.stderr


def test_cli_refuses_folder_without_classes(tmp_path):
    (tmp_path / "flat").mkdir()
    Image.new("RGB", (40, 40)).save(tmp_path / "flat" / "a.png")
    proc = run_cli(
        "train", "--data", tmp_path / "flat", "--out", tmp_path / "run", "--res", "32", "--steps", "1"
    )
    assert proc.returncode == 2
    assert (
        "Traceback" not in proc.stderr
        and "class" in proc.stderr.lower()
        and str(tmp_path / "flat") in proc.stderr
    )
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_bad_files_are_reported_and_training_goes_on(tmp_path, demo_dir):
    """The issue's acceptance folder: truncated JPEG, text named .png, grayscale, RGBA, 16-bit PNG."""
    import numpy as np

    data = tmp_path / "data"
    for cls in ("Nut", "Screw"):
        shutil.copytree(demo_dir / cls, data / cls)
    Image.fromarray(np.arange(64 * 64, dtype=np.uint8).reshape(64, 64)).save(data / "Nut" / "gray.png")
    Image.new("RGBA", (64, 64), (10, 20, 200, 128)).save(data / "Nut" / "rgba.png")
    Image.fromarray((np.arange(64 * 64).reshape(64, 64) * 16).astype(np.uint16)).save(
        data / "Screw" / "deep16.png"
    )
    Image.new("RGB", (64, 64), (50, 60, 70)).save(data / "Screw" / "whole.jpg", quality=95)
    raw = (data / "Screw" / "whole.jpg").read_bytes()
    (data / "Screw" / "truncated.jpg").write_bytes(raw[: len(raw) // 2])
    (data / "Screw" / "notes.png").write_text("this is not an image")
    proc = run_cli(
        "train",
        "--data",
        data,
        "--out",
        tmp_path / "run",
        "--res",
        "32",
        "--steps",
        "2",
        "--batch",
        "4",
        *TINY_MODEL_ARGS,
        "--no-progress",
    )
    assert proc.returncode == 0, proc.stderr
    for name in ("gray.png", "rgba.png", "deep16.png", "truncated.jpg", "notes.png"):
        assert name in proc.stdout, f"{name} missing from the report:\n{proc.stdout}"


def test_two_process_data_parallel_ranks_stay_identical(tmp_path, demo_dir):
    out = tmp_path / "ddp"
    args = [
        "--nproc_per_node",
        "2",
        "-m",
        "gan_studio",
        "train",
        "--data",
        demo_dir,
        "--out",
        out,
        "--res",
        "32",
        "--steps",
        "3",
        "--batch",
        "4",
        *TINY_MODEL_ARGS,
        "--precision",
        "fp32",
        "--no-progress",
        "--write-rank-fingerprints",
    ]
    proc = run_cli(
        *args, module=("-m", "torch.distributed.run", "--standalone"), env={"OMP_NUM_THREADS": "1"}
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    prints = [json.loads((out / "fingerprints" / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert prints[0]["world_size"] == 2 and prints[0]["step"] == prints[1]["step"] == 3
    assert prints[0]["G"] == prints[1]["G"] and prints[0]["D"] == prints[1]["D"]
    meta = ckpt.load_checkpoint_meta(ckpt.latest_checkpoint(out))
    assert meta["world_size"] == 2


def test_lpips_reconstruction_loss_with_local_backbone(tmp_path, demo_dir, monkeypatch):
    """LPIPS needs ImageNet backbone weights that cannot be downloaded here: with no file the run is
    refused with a clear message; with a (self-made) AlexNet file in $TORCH_HOME it trains."""
    import torchvision

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    with pytest.raises(FileNotFoundError, match="--recon-loss mse"):
        train(_config(demo_dir, tmp_path / "no_weights", 1, recon_loss="lpips"), progress=False)
    target = tmp_path / "torch_home" / "hub" / "checkpoints" / "alexnet-owt-7be5be79.pth"
    target.parent.mkdir(parents=True)
    torch.save(torchvision.models.alexnet(weights=None).state_dict(), target)
    train(_config(demo_dir, tmp_path / "with_weights", 2, recon_loss="lpips"), progress=False)
    lines = _loss_lines(tmp_path / "with_weights")
    assert len(lines) == 2 and all(r["loss_recon"] > 0 for r in lines)


def test_few_shot_subset_and_adopted_split(tmp_path, demo_dir):
    from gan_studio.data import load_split, make_split, save_split, scan_image_folder

    records, _ = scan_image_folder(demo_dir, progress=False)
    split = make_split(records, test_fraction=0.5, seed=3)
    save_split(split, tmp_path / "by_hand.json")
    out = tmp_path / "few"
    train(
        _config(demo_dir, out, 1, split_file=str(tmp_path / "by_hand.json"), train_per_class=2),
        progress=False,
    )
    assert load_split(out / "split.json").to_dict() == split.to_dict()
    used = json.loads((out / "train_files.json").read_text())
    assert len(used) == 20 and set(used) <= set(split.train)  # 2 per class x 10 classes, never a test image
    assert json.loads((out / "run.json").read_text())["data"]["n_train"] == 20


def test_mode_seeking_pairs_classes_and_logs_its_term(tmp_path, demo_dir):
    """--mode-seeking: fakes come in same-class pairs, reals keep their own labels, and the
    (positive) term is logged per step."""
    from gan_studio.training.loop import Trainer

    trainer = Trainer(_config(demo_dir, tmp_path / "ms", 2, mode_seeking=1.0, batch=6), progress=False)
    seen = {}
    original, original_batch, original_d = trainer.G.forward, trainer._real_batch, trainer.D.forward

    def spy(z, labels, *args, **kwargs):
        seen["labels"] = labels.clone()
        return original(z, labels, *args, **kwargs)

    def batch_spy():
        images, _, _ = original_batch()
        labels = torch.tensor([0, 1, 2, 3, 4, 5])  # six classes: no pair is alike by chance
        seen["real"] = labels.clone()
        return images, labels, labels.clone()  # on the device (the CPU here) and on the host

    def d_spy(images, labels, reconstruct=False, part=None):
        if reconstruct:  # the real pass (the only one that reconstructs)
            seen["d_real"] = labels.clone()
        return original_d(images, labels, reconstruct=reconstruct, part=part)

    trainer.G.forward, trainer._real_batch, trainer.D.forward = spy, batch_spy, d_spy
    stats = trainer.train_step()
    assert torch.equal(seen["labels"][:3], seen["labels"][3:])
    assert torch.equal(seen["d_real"], seen["real"])  # D judges each real image under its own class
    assert 0 < stats["loss_ms"] < float("inf")
    trainer.G.forward, trainer._real_batch, trainer.D.forward = original, original_batch, original_d
    plain = Trainer(_config(demo_dir, tmp_path / "plain", 2, batch=6), progress=False)
    assert plain.train_step()["loss_ms"] == 0.0


def test_shape_map_ignores_colour_and_lighting_but_not_pose():
    """--mode-seeking-space shape compares edge maps: recolouring the part or re-lighting the table
    leaves them (almost) unchanged, moving or turning the part does not."""
    from gan_studio.training.losses.image_features import shape_map

    def scene(part, x0, background=0.2, turned=False):
        image = torch.full((1, 3, 64, 64), background)
        if turned:
            image[..., x0 : x0 + 12, 20:40] = part
        else:
            image[..., 20:40, x0 : x0 + 12] = part
        return shape_map(image)

    base = scene(-0.8, 20)
    gap = {
        "recolour": (base - scene(0.9, 20)).abs().mean().item(),
        "relight": (base - scene(-0.8, 20, background=0.5)).abs().mean().item(),
        "move": (base - scene(-0.8, 32)).abs().mean().item(),
        "turn": (base - scene(-0.8, 20, turned=True)).abs().mean().item(),
    }
    assert max(gap["recolour"], gap["relight"]) < 0.01 * min(gap["move"], gap["turn"]), gap


def test_mode_seeking_space_changes_the_term_and_is_validated(tmp_path, demo_dir):
    from gan_studio.training.loop import Trainer

    terms = {}
    for space in ("pixels", "shape"):
        cfg = _config(demo_dir, tmp_path / space, 1, mode_seeking=1.0, mode_seeking_space=space, batch=6)
        terms[space] = Trainer(cfg, progress=False).train_step()["loss_ms"]
    assert 0 < terms["shape"] < float("inf") and terms["shape"] != terms["pixels"]
    with pytest.raises(ValueError, match="mode-seeking-space"):
        Trainer(_config(demo_dir, tmp_path / "bad", 1, mode_seeking_space="colour"), progress=False)


def test_class_loss_trains_the_auxiliary_classifier_and_old_runs_resume_without_it(tmp_path, demo_dir):
    """--class-loss: D's classifier learns on reals, G gets the fakes' cross-entropy; legacy runs keep 0."""
    from gan_studio.training.config import TrainConfig
    from gan_studio.training.loop import Trainer

    trainer = Trainer(_config(demo_dir, tmp_path / "ac", 2, class_loss=1.0), progress=False)
    head = trainer.D.classifier.parametrizations.weight.original
    before = head.detach().clone()
    fired = []  # per D call: did a loss send a gradient into its class logits?
    original = trainer.D.forward

    def spy(*args, **kwargs):
        out = original(*args, **kwargs)
        index = len(fired)
        fired.append(False)
        out.class_logits.register_hook(lambda grad: fired.__setitem__(index, bool(grad.abs().sum() > 0)))
        return out

    trainer.D.forward = spy
    stats = trainer.train_step()
    trainer.D.forward = original
    assert fired == [False, True, True]  # D on fakes: hinge only; D on reals and the G step: + class CE
    assert not torch.equal(before, head.detach())
    assert stats["loss_cls_real"] > 0 and stats["loss_cls_fake"] > 0 and 0 <= stats["acc_cls_real"] <= 1

    plain = Trainer(_config(demo_dir, tmp_path / "proj", 2, class_loss=0.0), progress=False)
    assert plain.D.classifier is None
    assert plain.train_step()["loss_cls_fake"] == 0.0

    legacy = TrainConfig().to_dict()
    del legacy["class_loss"]
    assert TrainConfig.from_dict(legacy).class_loss == 0.0  # its discriminator has no classifier


def test_class_groups_batch_by_class_and_reach_d(tmp_path, demo_dir):
    """--class-groups K: the batch is batch/K runs of K images of one class (distinct classes), the
    fakes take the same labels, D is built with the group spread and keeps it on --resume;
    mode-seeking pairs are neighbours of one class."""
    from gan_studio.training.loop import Trainer

    out = tmp_path / "groups"
    trainer = Trainer(
        _config(demo_dir, out, 2, batch=8, class_group_size=4, mode_seeking=1.0), progress=False
    )
    for _ in range(5):
        idx = trainer._batch_indices()
        labels = trainer.labels[idx].view(2, 4)
        assert (labels == labels[:, :1]).all() and labels[0, 0] != labels[1, 0]
    seen = {}
    original = trainer.G.forward

    def spy(z, labels, *args, **kwargs):
        seen["fake_labels"] = labels.clone()
        return original(z, labels, *args, **kwargs)

    trainer.G.forward = spy
    stats = trainer.train_step()
    assert (seen["fake_labels"].view(2, 4) == seen["fake_labels"].view(2, 4)[:, :1]).all()
    assert 0 < stats["loss_ms"] < float("inf")
    trainer.G.forward = original
    trainer.fit()
    train(_config(demo_dir, out, 3), resume=True, progress=False)  # the run's own K, not the default
    d_config = json.loads(
        (out / "checkpoints" / ckpt.step_dir_name(3) / "discriminator" / "config.json").read_text()
    )
    assert d_config["group_size"] == 4
    with pytest.raises(ValueError, match="must divide --batch"):
        Trainer(_config(demo_dir, tmp_path / "bad", 2, batch=6, class_group_size=4), progress=False)
    with pytest.raises(ValueError, match="even --class-groups"):
        Trainer(
            _config(demo_dir, tmp_path / "odd", 2, batch=6, class_group_size=3, mode_seeking=1.0),
            progress=False,
        )


def test_init_generator_fine_tunes_a_saved_generator(tmp_path, demo_dir):
    """--init-generator: G and its EMA start from the saved weights, D starts fresh; during
    --d-warmup only D trains; a generator of another shape is refused with the mismatch named."""
    source = tmp_path / "source"
    train(_config(demo_dir, source, 2), progress=False)
    saved = _weights(source, 2)["generator_ema"]
    out = tmp_path / "tuned"
    train(_config(demo_dir, out, 2, init_generator=str(source), d_warmup=2), progress=False)
    tuned = _weights(out, 2)
    for key, value in saved.items():
        torch.testing.assert_close(tuned["generator_ema"][key], value, rtol=0, atol=0, msg=key)
        # Trainable weights stay; the batch-norm statistics and spectral-norm vectors follow G's use.
        if not key.endswith(("running_mean", "running_var", "num_batches_tracked", "._u", "._v")):
            torch.testing.assert_close(tuned["generator"][key], value, rtol=0, atol=0, msg=key)
    assert json.loads((out / "run.json").read_text())["config"]["init_generator"] == str(source)
    train(_config(demo_dir, out, 3), resume=True, progress=False)  # warm-up over: G moves
    moved = _weights(out, 3)["generator"]
    assert any(not torch.equal(moved[k], saved[k]) for k in saved)
    with pytest.raises(ValueError, match="does not fit this run.*width"):
        train(_config(demo_dir, tmp_path / "wide", 1, g_width=16, init_generator=str(source)), progress=False)


def _assert_resume_starts_phase(out, demo_dir, option: str, value: float) -> None:
    """``train --resume --OPTION VALUE`` on a 2-step run records the new value and a phase for it."""
    train(_config(demo_dir, out, 2), progress=False)
    flag = "--" + option.replace("_", "-")
    proc = run_cli("train", "--resume", "--steps", "3", flag, str(value), "--out", str(out), "--no-progress")
    assert proc.returncode == 0, proc.stderr
    run = json.loads((out / "run.json").read_text())
    assert run["config"][option] == value and run["phases"][-1]["changes"] == {option: value}


def test_shape_mmd_prefers_a_class_spread_like_its_real_images(tmp_path, demo_dir):
    """--shape-mmd: four different real images of a class are closer (in the shape-map MMD) to
    that class's real images than four copies of one of them; the term is logged, reaches G and
    can start a new phase on --resume."""
    from gan_studio.training.loop import Trainer

    out = tmp_path / "shape"
    trainer = Trainer(_config(demo_dir, out, 2, batch=8, class_group_size=8, shape_mmd=1.0), progress=False)
    members = trainer.class_members[0][:4]
    varied = trainer.images[members].float().div(127.5).sub(1.0)
    copies = varied[:1].repeat(4, 1, 1, 1)
    labels = torch.zeros(4, dtype=torch.long)
    assert trainer.terms["shape_mmd"].mmd(varied, labels) < trainer.terms["shape_mmd"].mmd(copies, labels)
    recoloured = torch.cat([varied[:2], -varied[2:]])  # inverted colours: the same outlines
    torch.testing.assert_close(
        trainer.terms["shape_mmd"].mmd(recoloured, labels),
        trainer.terms["shape_mmd"].mmd(varied, labels),
        rtol=0.05,
        atol=1e-3,
    )
    stats = trainer.train_step()
    assert 0 < stats["loss_shape_mmd"] < float("inf")
    plain = Trainer(_config(demo_dir, tmp_path / "plain", 2), progress=False)
    assert plain.train_step()["loss_shape_mmd"] == 0.0
    _assert_resume_starts_phase(tmp_path / "phase", demo_dir, "shape_mmd", 2.0)


def test_pose_moments_read_which_way_a_part_points_and_where_it_sits():
    """A bar on a plain table: its axis vector is elongation * (cos 2θ, sin 2θ) (image y pointing
    down, as in benchmarks/pose_spread.py), its centroid is where it lies, the table's colour does
    not matter, and the gradient reaches the pixels."""
    from gan_studio.training.losses.image_features import pose_moments

    table = torch.full((4, 3, 32, 32), -0.6)
    table[1] = 0.4  # another table colour
    bars = table.clone()
    bars[0, :, 14:18, 4:28] = 0.9  # horizontal, centred
    bars[1, :, 14:18, 4:28] = -0.9  # the same bar, dark on a light table
    bars[2, :, 4:28, 6:10] = 0.9  # vertical, on the left
    for i in range(4, 28):  # diagonal: from top-left to bottom-right
        bars[3, :, i, i - 2 : i + 2] = 0.9
    bars.requires_grad_(True)
    m = pose_moments(bars)
    assert m[0, 0] > 0.8 and abs(m[0, 1]) < 0.05
    torch.testing.assert_close(m[1], m[0], atol=0.02, rtol=0)
    assert m[2, 0] < -0.8 and m[2, 2] < m[0, 2] - 0.5  # the centroid (doubled) lies further left
    assert m[3, 1] > 0.8 and abs(m[3, 0]) < 0.1  # y down: this diagonal has a positive xy moment
    m[:, :2].abs().sum().backward()
    assert bars.grad.abs().sum() > 0


def test_pose_mmd_prefers_a_class_spread_like_its_real_images(tmp_path, demo_dir):
    """--pose-mmd: varied real images of a class are closer to its real images than copies of one;
    the term is logged, 0 when off, and a phase option on --resume."""
    from gan_studio.training.loop import Trainer

    trainer = Trainer(
        _config(demo_dir, tmp_path / "pose", 2, batch=8, class_group_size=8, pose_mmd=1.0), progress=False
    )
    members = trainer.class_members[0]
    varied = trainer.images[members].float().div(127.5).sub(1.0)
    copies = varied[:1].repeat(len(varied), 1, 1, 1)
    labels = torch.zeros(len(varied), dtype=torch.long)
    assert trainer.terms["pose_mmd"].mmd(varied, labels) < trainer.terms["pose_mmd"].mmd(copies, labels)
    stats = trainer.train_step()
    assert 0 < stats["loss_pose_mmd"] < float("inf") and stats["loss_shape_mmd"] == 0.0
    assert (
        Trainer(_config(demo_dir, tmp_path / "plain", 2), progress=False).train_step()["loss_pose_mmd"] == 0.0
    )
    _assert_resume_starts_phase(tmp_path / "phase", demo_dir, "pose_mmd", 2.0)


def test_layout_mmd_tells_a_brightness_spread_unlike_its_real_images(tmp_path, demo_dir):
    """--layout-mmd: a class's real images are closer (in the MMD of 8 x 8 thumbnails) to its real
    images than the same images lit alternately brighter and darker, or copies of one; the gradient
    reaches the pixels, the term is logged, 0 when off, and a phase option on --resume."""
    from gan_studio.training.loop import Trainer

    trainer = Trainer(
        _config(demo_dir, tmp_path / "layout", 2, batch=8, class_group_size=8, layout_mmd=1.0), progress=False
    )
    members = trainer.class_members[0]
    real = trainer.images[members].float().div(127.5).sub(1.0)
    shift = torch.tensor([0.25, -0.25]).repeat(len(real))[: len(real)].view(-1, 1, 1, 1)
    relit = (real + shift).clamp(-1, 1)
    copies = real[:1].repeat(len(real), 1, 1, 1)
    labels = torch.zeros(len(real), dtype=torch.long)
    term = trainer.terms["layout_mmd"]
    assert term.mmd(real, labels) < min(term.mmd(relit, labels), term.mmd(copies, labels))
    relit.requires_grad_(True)
    term.mmd(relit, labels).backward()
    assert relit.grad.abs().sum() > 0
    stats = trainer.train_step()
    assert 0 < stats["loss_layout_mmd"] < float("inf") and stats["loss_pose_mmd"] == 0.0
    plain = Trainer(_config(demo_dir, tmp_path / "plain", 2), progress=False)
    assert plain.train_step()["loss_layout_mmd"] == 0.0
    _assert_resume_starts_phase(tmp_path / "phase", demo_dir, "layout_mmd", 2.0)


# A run folder written by the trainer before its loss terms became objects of their own
# (gan_studio/training/losses): class groups, mode seeking in shape space, shape and pose MMD and the
# auxiliary classifier, 2 steps. Its weights (~0.5 MB) are not stored: tensors.json records each
# tensor's dtype, shape and range (and the RNG states exactly), and the folder is rebuilt from it.
OLD_RUN = REPO / "tests" / "fixtures" / "run_before_loss_terms"


def _recorded_tensor(spec: dict, index: int) -> torch.Tensor:
    """A tensor of the recorded dtype and shape: saved bytes when recorded, else a smooth sweep
    between the recorded extremes (plausible weights, Adam moments and counters, no RNG)."""
    import base64

    if "base64" in spec:
        return torch.frombuffer(bytearray(base64.b64decode(spec["base64"])), dtype=torch.uint8).clone()
    dtype, shape = getattr(torch, spec["dtype"]), spec["shape"]
    if "min" not in spec:
        return torch.zeros(shape, dtype=dtype)
    sweep = (torch.sin(torch.arange(math.prod(shape), dtype=torch.float64) * 0.7 + index) + 1.0) / 2.0
    values = (spec["min"] + (spec["max"] - spec["min"]) * sweep).reshape(shape)
    return values.to(dtype) if dtype.is_floating_point else values.round().to(dtype)


def _rebuilt(node, counter):
    """training_state.pt's recorded structure, tensors rebuilt (dict keys keep their types)."""
    ((kind, value),) = node.items()
    if kind == "tensor":
        return _recorded_tensor(value, next(counter))
    if kind == "dict":
        return {key: _rebuilt(item, counter) for key, item in value}
    if kind in ("list", "tuple"):
        items = [_rebuilt(item, counter) for item in value]
        return tuple(items) if kind == "tuple" else items
    return value


def old_run_folder(out, data) -> None:
    """Rebuild the recorded run folder at ``out``, its dataset at ``data``."""
    from safetensors.torch import save_file

    for src in OLD_RUN.rglob("*"):
        if src.is_file() and src.name not in ("tensors.json", "continued.json"):
            target = out / src.relative_to(OLD_RUN)
            target.parent.mkdir(parents=True, exist_ok=True)
            text = src.read_text().replace("@DEMO_DATA@", str(data)).replace("@RUN_DIR@", str(out))
            target.write_text(text)
    layout = json.loads((OLD_RUN / "tensors.json").read_text())
    checkpoint = out / "checkpoints" / ckpt.step_dir_name(2)
    for name, tensors in layout["models"].items():
        weights = {key: _recorded_tensor(spec, i) for i, (key, spec) in enumerate(tensors.items())}
        save_file(weights, str(checkpoint / name / "model.safetensors"))
    state = _rebuilt(layout["training_state"], itertools.count())
    torch.save(state, checkpoint / "training_state.pt")


# Statistics of the loss terms added after the run folder below was recorded.
TERMS_ADDED_SINCE = {"loss_layout_mmd"}


def test_a_run_written_before_the_loss_terms_refactor_resumes(tmp_path, demo_dir):
    """Old runs resume: the recorded folder (every optional term on) continues with a guide added as
    a new phase, logs every statistic under its old name, matches what the trainer of that time
    logged from the same folder, and writes its checkpoint in the same layout."""
    from gan_studio.training.loop import Trainer
    from tests.test_guide import _make_guide

    out = tmp_path / "old"
    old_run_folder(out, demo_dir)
    names = json.loads((out / "run.json").read_text())["class_names"]
    guide = _make_guide(tmp_path / "guide", names)
    trainer = Trainer(
        _config(demo_dir, out, 4),
        resume=True,
        progress=False,
        phase_options={"guide": str(guide), "guide_weight": 0.5},
    )
    assert trainer.step == 2 and trainer.guide is not None
    trainer.fit()

    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2, 3, 4]
    # The names the app plots: old and new lines alike, the new ones adding only the statistics of
    # terms made since the recording (logged as 0.0 while off; the app reads missing ones as absent).
    assert (
        all(r.keys() == log[2].keys() for r in log[2:]) and log[2].keys() == log[0].keys() | TERMS_ADDED_SINCE
    )
    assert all(r["loss_guide"] == 0 for r in log[:2]) and all(r["loss_guide"] > 0 for r in log[2:])
    for key in ("loss_ms", "loss_shape_mmd", "loss_pose_mmd", "loss_cls_real", "loss_cls_fake"):
        assert all(0 < r[key] < float("inf") for r in log), key
    continued = OLD_RUN / "continued.json"  # what the trainer before the refactor logged here
    for mine, theirs in zip(log[2:], json.loads(continued.read_text()), strict=True):
        assert mine.keys() == theirs.keys() | {"time", "images_per_s"} | TERMS_ADDED_SINCE
        for key, value in theirs.items():
            if key.startswith(("loss_", "logits_")):  # r_t and accuracies count signs: no tolerance
                assert mine[key] == pytest.approx(value, rel=1e-3, abs=1e-4), key

    run = json.loads((out / "run.json").read_text())
    assert run["phases"][0]["from_step"] == 2 and run["phases"][0]["changes"]["guide_weight"] == 0.5
    recorded = json.loads((OLD_RUN / "tensors.json").read_text())
    written = out / "checkpoints" / ckpt.step_dir_name(4)
    for name, tensors in recorded["models"].items():
        saved = load_file(str(written / name / "model.safetensors"))
        assert {k: list(v.shape) for k, v in saved.items()} == {k: s["shape"] for k, s in tensors.items()}
    state = ckpt.load_training_state(written)
    assert state.keys() == {key for key, _ in recorded["training_state"]["dict"]} and state["step"] == 4


def test_each_statistic_keeps_the_name_the_app_plots():
    """log.jsonl's columns are the terms' statistics: the same names, in the same order, as runs
    written before the terms became objects (gan_studio/app/training_manager.py plots them), and
    the statistics of terms made since after them."""
    from gan_studio.training.losses import TERM_TYPES, stat_names

    assert stat_names() == (
        "loss_d_real", "loss_d_fake", "loss_recon", "loss_g", "logits_real", "logits_fake", "r_t",
        "loss_ms", "loss_cls_real", "loss_cls_fake", "acc_cls_real", "loss_shape_mmd", "loss_pose_mmd",
        "loss_guide", "acc_guide_fake", "loss_layout_mmd",
    )  # fmt: skip
    names = [kind.name for kind in TERM_TYPES]
    assert len(set(names)) == len(names) and all(kind.stats for kind in TERM_TYPES)
