"""Reliability: one trainer per run, stops that always finish their save, resumes that survive damaged
files, bounded numbers, datasets with link loops, and clean-up after killed trainers.

Each test is one case of RELIABILITY.md; all use tiny runs (32 px, width 8) on the shared demo set.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
import torch

from gan_studio.training import checkpoint as ckpt
from gan_studio.training import run_files, run_lock
from gan_studio.training.loop import Trainer, train
from tests.conftest import REPO, TINY_MODEL_ARGS, run_cli
from tests.test_training import _config

TINY_CLI = ["--res", "32", "--batch", "4", *TINY_MODEL_ARGS, "--precision", "fp32", "--no-progress"]


def _start_trainer(demo_dir, out, *extra) -> subprocess.Popen:
    """A long CLI trainer in the background (stopped by the test)."""
    return subprocess.Popen(
        [sys.executable, "-m", "gan_studio", "train", "--data", str(demo_dir), "--out", str(out),
         "--steps", "100000", "--log-every", "1", "--sample-every", "0", *TINY_CLI, *extra],
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _wait_for_log_lines(proc, out, n=2, timeout=300):
    log, deadline = out / "log.jsonl", time.monotonic() + timeout
    while not (log.is_file() and log.read_text().count("\n") >= n):
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline, "the trainer did not start"
        time.sleep(0.2)


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _write_lock(run_dir, **fields):
    holder = {"pid": _dead_pid(), "host": socket.gethostname(), "process_start": None, "since": time.time(),
              "command": "python -m gan_studio train ...", **fields}  # fmt: skip
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / run_lock.LOCK_FILE).write_text(json.dumps(holder))


# -- 1. one trainer per run folder --------------------------------------------------------------------


def test_a_second_trainer_is_refused_naming_the_holder(tmp_path, demo_dir):
    from gan_studio.app.training_manager import TrainingManager

    out = tmp_path / "run"
    first = _start_trainer(demo_dir, out, "--seed", "1", "--ckpt-every", "2")
    try:
        _wait_for_log_lines(first, out, n=3)
        second = run_cli("train", "--data", demo_dir, "--out", out, "--steps", "6", "--seed", "2", *TINY_CLI)
        assert second.returncode == 2, second.stderr
        assert (
            f"is being trained by process {first.pid}" in second.stderr and "Traceback" not in second.stderr
        )
        with pytest.raises(run_lock.RunLockedError, match=f"process {first.pid} on {socket.gethostname()}"):
            train(_config(demo_dir, out, 6), resume=True, progress=False)  # a resume, too
        # An app restarted meanwhile knows no job for it, and still refuses to start a second trainer.
        with pytest.raises(run_lock.RunLockedError, match=f"process {first.pid}"):
            TrainingManager(tmp_path).resume(out, 10**6)
        assert run_files.mark_interrupted(out) is None  # alive: never marked interrupted
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=300)
    assert first.returncode == 0
    steps = [json.loads(line)["step"] for line in (out / "log.jsonl").read_text().splitlines()]
    assert steps == list(range(1, len(steps) + 1))  # one writer: no interleaved lines
    assert run_lock.live_holder(out) is None  # released: the run resumes
    train(_config(demo_dir, out, steps[-1] + 1), resume=True, progress=False)


def test_a_lock_left_by_a_dead_or_reused_process_is_taken_over(tmp_path, demo_dir):
    out = tmp_path / "run"
    _write_lock(out)  # its process is gone (SIGKILL leaves the file behind)
    assert run_lock.read_holder(out) is not None and run_lock.live_holder(out) is None
    train(_config(demo_dir, out, 1), progress=False)
    # A live pid that is not the holder any more (its start time differs): stale too.
    _write_lock(out, pid=os.getppid(), process_start="1")
    train(_config(demo_dir, out, 2), resume=True, progress=False)
    # A holder on another host cannot be checked: refused, naming it and how to clear it.
    _write_lock(out, host="gpu-node-7", pid=4242)
    with pytest.raises(run_lock.RunLockedError, match="process 4242 on gpu-node-7.*delete '.*trainer.lock'"):
        train(_config(demo_dir, out, 3), resume=True, progress=False)


# -- 2. a second stop during the final save -------------------------------------------------------------


def test_more_stops_during_the_final_save_are_ignored_until_it_is_done(tmp_path, demo_dir, monkeypatch):
    trainer = Trainer(_config(demo_dir, tmp_path / "run", 50), progress=False)
    step, save = trainer.step_on_device, trainer.save_checkpoint

    def step_then_stop():
        if trainer.step == 2:
            os.kill(os.getpid(), signal.SIGTERM)  # the first stop
        return step()

    def save_under_fire():
        for _ in range(3):  # the impatient user: more stops while the checkpoint is written
            os.kill(os.getpid(), signal.SIGTERM)
        return save()

    monkeypatch.setattr(trainer, "step_on_device", step_then_stop)
    monkeypatch.setattr(trainer, "save_checkpoint", save_under_fire)
    before = signal.getsignal(signal.SIGTERM)
    path = trainer.fit()  # with the handlers restored before the save, SIGTERM would end pytest here
    assert path.name == "step_0000003" and ckpt.checkpoint_problem(path) is None
    assert json.loads((tmp_path / "run" / "status.json").read_text())["state"] == "stopped"
    assert not list((tmp_path / "run" / "checkpoints").glob(".tmp-*"))
    assert signal.getsignal(signal.SIGTERM) == before and run_lock.live_holder(tmp_path / "run") is None


# -- 3. a damaged latest checkpoint --------------------------------------------------------------------


def test_resume_falls_back_to_the_newest_intact_checkpoint(tmp_path, demo_dir, capsys):
    out = tmp_path / "run"
    train(_config(demo_dir, out, 4, ckpt_every=2), progress=False)
    weights = out / "checkpoints" / "step_0000004" / "generator" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])  # a disk that filled up, a copy cut short
    capsys.readouterr()
    trainer = Trainer(_config(demo_dir, out, 6, ckpt_every=2), resume=True, progress=False)
    err = capsys.readouterr().err
    assert trainer.step == 2
    assert "skipped checkpoint 'step_0000004'" in err and str(weights) in err and "damaged" in err
    trainer.fit()
    assert ckpt.latest_checkpoint(out).name == "step_0000006"
    for folder in ckpt.list_checkpoints(out):
        (folder / "training_state.pt").write_bytes(b"PK\x03\x04 cut")
    with pytest.raises(ckpt.CheckpointError, match="No intact checkpoint.*training_state.pt"):
        Trainer(_config(demo_dir, out, 8), resume=True, progress=False)


# -- 4. run.json values --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"resolution": 100000}, "resolution must be at most 1024, got 100000"),
        ({"g_width": 10**6}, "g_width must be at most 512, got 1000000"),
        ({"batch": "4"}, "batch: expected an integer, got '4'"),
        ({"resolution": 48}, "Resolution 48 is not supported"),
    ],
)
def test_run_json_values_are_checked_before_anything_is_built(
    tmp_path, demo_dir, monkeypatch, changes, expected
):
    import gan_studio.training.train_data as train_data

    out = tmp_path / "run"
    train(_config(demo_dir, out, 1), progress=False)
    info = json.loads((out / "run.json").read_text())
    info["config"].update(changes)
    (out / "run.json").write_text(json.dumps(info))
    monkeypatch.setattr(
        train_data, "load_labeled_images", lambda *a, **k: pytest.fail("built before checking")
    )
    with pytest.raises(ckpt.CheckpointError, match=expected) as raised:
        Trainer(_config(demo_dir, out, 8), resume=True, progress=False)
    assert str(out / "run.json") in str(raised.value)


def test_values_older_runs_saved_still_pass():
    from gan_studio.training.config import TrainConfig, config_problems

    assert config_problems(TrainConfig().to_dict()) == []
    assert config_problems({"channels_last": True, "guide": None}) == []  # before channels_last had "auto"


# -- 5. a torn last line in log.jsonl ------------------------------------------------------------------


def test_a_torn_last_log_line_is_dropped_and_said(tmp_path, demo_dir, capsys):
    out = tmp_path / "run"
    train(_config(demo_dir, out, 2), progress=False)
    with open(out / "log.jsonl", "a") as log:
        log.write('{"step": 3, "loss_d_re')  # killed mid-write
    capsys.readouterr()
    train(_config(demo_dir, out, 3), resume=True, progress=False)
    assert "dropped its torn last line" in capsys.readouterr().err
    assert [json.loads(line)["step"] for line in (out / "log.jsonl").read_text().splitlines()] == [1, 2, 3]
    # A damaged line in the middle is not a crash's doing: named, with the fix.
    lines = (out / "log.jsonl").read_text().splitlines()
    (out / "log.jsonl").write_text("\n".join([lines[0], "garbage", *lines[1:]]) + "\n")
    with pytest.raises(
        ckpt.CheckpointError, match=r"log.jsonl' line 2 is not a log record.*Delete that line"
    ):
        run_files.trim_log(out, 3)


# -- 6. a hostile optimizer-state file -----------------------------------------------------------------


class _Payload:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))  # unpickling would create the marker file


def test_a_hostile_optimizer_state_is_named_and_not_loaded(tmp_path, demo_dir):
    out, marker = tmp_path / "run", tmp_path / "pwned"
    train(_config(demo_dir, out, 2), progress=False)
    state = out / "checkpoints" / "step_0000002" / "training_state.pt"
    torch.save({"step": 2, "optimizer_g": _Payload(marker)}, state)
    with pytest.raises(ckpt.CheckpointError) as raised:
        train(_config(demo_dir, out, 3), resume=True, progress=False)
    message = str(raised.value)
    assert str(state) in message and "was not loaded" in message and "weights_only" not in message
    assert not marker.exists()


# -- 7. numbers on the command line, in recipes and in the app ------------------------------------------


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ("train --out R --steps -5", "argument --steps: must be at least 1, got -5"),
        ("train --out R --batch 0", "argument --batch: must be at least 1, got 0"),
        ("train --out R --batch -3", "argument --batch: must be at least 1, got -3"),
        ("train --out R --ngf 0", "argument --ngf: must be at least 1, got 0"),
        ("train --out R --ngf 1000000", "argument --ngf: must be at most 512"),
        ("train --out R --res 100000", "argument --res: must be at most 1024"),
        ("train --out R --lr-g nan", "argument --lr-g: must be a finite number"),
        ("train --out R --log-every 0", "argument --log-every: must be at least 1"),
        ("train --out R --steps ten", "argument --steps: expected an integer, got 'ten'"),
        ("sample --ckpt C --out O --n 0", "argument --n: must be at least 1, got 0"),
        (
            "evaluate --ckpt C --evaluator E --out O --n-per-class 0",
            "argument --n-per-class: must be at least 2",
        ),
        ("train-evaluator --data D --out O --batch 0", "argument --batch: must be at least 1"),
        ("demo-data X --size 8", "argument --size: must be at least 16"),
        (
            "augment-bench --ckpt C --out O --filter-confidence 2",
            "argument --filter-confidence: must be at most",
        ),
        ("study --data D --out O --recipe tiny --seeds 0", "argument --seeds: must be at least 1"),
    ],
)
def test_numbers_out_of_range_are_argparse_errors(argv, expected, capsys):
    from gan_studio.cli import main

    with pytest.raises(SystemExit) as exited:
        main(argv.split())
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err


def test_every_numeric_option_of_every_command_has_bounds():
    from gan_studio.cli import build_parser

    unbounded = []
    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    for name, parser in commands.choices.items():
        for action in parser._actions:
            if action.type in (int, float) and not action.choices:
                unbounded.append(f"{name} {action.option_strings}")
    assert unbounded == []


def test_a_cli_value_out_of_range_exits_2_without_training(tmp_path):
    proc = run_cli("train", "--data", "demo", "--out", tmp_path / "r", "--steps", "-5")
    assert proc.returncode == 2 and "must be at least 1, got -5" in proc.stderr
    assert not (tmp_path / "r").exists()


def test_recipes_and_the_app_use_the_same_bounds(tmp_path):
    from gan_studio.app.training_manager import TrainOptions
    from gan_studio.training.recipes import load_recipe

    recipe = tmp_path / "bad.toml"
    recipe.write_text("name = 'x'\n[config]\nbatch = 0\n")
    with pytest.raises(ValueError, match=r"bad.toml: \[config\] batch must be at least 1, got 0"):
        load_recipe(recipe)
    with pytest.raises(ValueError, match="must be at least 1, got -3"):
        load_recipe("tiny").resolve({"out": "R", "steps": -3})
    with pytest.raises(ValueError, match="g_width must be at most 512"):
        TrainOptions(resolution=32, width=10**6).cli_args()


# -- 8. datasets: link loops, readable refusals ---------------------------------------------------------


def test_a_symlink_loop_is_skipped_with_a_reason(tmp_path):
    from gan_studio.app.training_manager import validate_dataset
    from tests.test_data_folder import make_dataset

    root = make_dataset(tmp_path / "data")
    try:
        os.symlink("loop.png", root / "Nut" / "loop.png")
        os.symlink("top.png", root / "top.png")
    except (OSError, NotImplementedError):
        pytest.skip("symbolic links are not available here")
    _, report = validate_dataset(root, progress=False)  # the app's check: the dataset is usable
    reasons = dict(report.skipped)
    assert "link loop" in reasons["Nut/loop.png"] and "link loop" in reasons["top.png"]
    assert report.counts == {"Clamp": 3, "Nut": 3}


def test_a_refused_class_groups_its_skipped_files_by_reason(tmp_path):
    from gan_studio.data import DatasetError, scan_image_folder
    from tests.test_data_folder import make_dataset

    root = make_dataset(tmp_path / "data", classes=("Clamp",))
    (root / "Nut").mkdir()
    for i in range(1400):
        (root / "Nut" / f"scan{i:04d}.png").write_bytes(b"")
    (root / "Nut" / "notes.txt").write_text("x")
    with pytest.raises(DatasetError) as raised:
        scan_image_folder(root, progress=False)
    message = str(raised.value)
    assert (
        "zero bytes: 1400 files (Nut/scan0000.png, Nut/scan0001.png, Nut/scan0002.png and 1397 more)"
        in message
    )
    assert "Nut/notes.txt (not an image (extension .txt))" in message
    assert len(message) < 600


# -- 9. what a killed trainer leaves behind ------------------------------------------------------------


def test_sigkill_debris_is_cleaned_and_the_status_says_interrupted(tmp_path, demo_dir, capsys):
    from gan_studio.app.training_manager import TrainingManager

    out = tmp_path / "runs" / "killed"
    proc = _start_trainer(demo_dir, out, "--ckpt-every", "1", "--keep", "2")
    _wait_for_log_lines(proc, out, n=4)
    proc.kill()  # SIGKILL: no handler runs, the lock's file still names the dead process
    proc.communicate(timeout=60)
    assert json.loads((out / "status.json").read_text())["state"] == "running"
    # The debris of an unlucky moment, as a kill mid-save and mid-prune leaves it:
    root = out / "checkpoints"
    (root / ".tmp-step_0009999-abc").mkdir()
    (root / ".tmp-step_0009999-abc" / "training_state.pt").write_bytes(b"half")
    (root / ".latest.x1.tmp").write_text("step_")
    os.utime(root / ".latest.x1.tmp", (time.time() - 120,) * 2)  # younger ones may be a write in progress
    (root / "step_0000000").mkdir()  # deleted half-way: its checkpoint.json already gone
    newest = ckpt.latest_checkpoint(out)

    manager = TrainingManager(tmp_path / "runs")  # the app, restarted
    assert manager.progress(out).state == "interrupted"
    notes = manager.recover_runs()
    assert any(".tmp-step_0009999-abc" in n for n in notes) and any("step_0000000" in n for n in notes)
    assert (
        not list(root.glob(".tmp-*"))
        and not list(root.glob(".*.tmp"))
        and not (root / "step_0000000").exists()
    )
    assert ckpt.latest_checkpoint(out) == newest and ckpt.checkpoint_problem(newest) is None

    step = ckpt.load_checkpoint_meta(newest)["step"]
    train(_config(demo_dir, out, step + 1), resume=True, progress=False)
    assert json.loads((out / "status.json").read_text())["state"] == "finished"


def test_a_resume_removes_half_pruned_checkpoints_but_keeps_newer_damaged_ones(tmp_path, demo_dir):
    out = tmp_path / "run"
    train(_config(demo_dir, out, 6, ckpt_every=2), progress=False)
    oldest, middle, newest = ckpt.list_checkpoints(out)
    (oldest / "discriminator" / "model.safetensors").unlink()  # pruned half-way by an older version
    (newest / "generator" / "config.json").write_text("{")  # damaged: for the user to see
    notes = run_files.tidy(out, check_checkpoints=True)
    assert not oldest.exists() and middle.exists() and newest.exists()
    assert len(notes) == 1 and oldest.name in notes[0]
    # "running" while a live process holds the run (this one) is left alone; once released, interrupted.
    ckpt.write_json_atomic(out / "status.json", {"state": "running", "step": 6, "pid": os.getpid()})
    with run_lock.hold(out):
        assert run_files.mark_interrupted(out) is None
    assert run_files.mark_interrupted(out)["state"] == "interrupted"
