"""Training options declared once (TrainConfig), recipes, and ``train --recipe`` running every phase."""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
from pathlib import Path

import pytest
from safetensors.torch import load_file

from gan_studio.training import checkpoint as ckpt
from gan_studio.training.config import TrainConfig
from gan_studio.training.options import add_train_arguments, explicit_options, option_args, train_options
from gan_studio.training.recipes import OWN_GUIDE, builtin_recipes, load_recipe, run_recipe
from tests.conftest import REPO, run_cli

SHIPPED = REPO / "checkpoints" / "vise-parts"


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_train_arguments(parser)
    return parser.parse_args(list(argv))


def test_every_option_is_declared_once_with_todays_flags_and_defaults():
    options = {o.name: o for o in train_options()}
    fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    assert set(options) == set(fields) - {"extra"}
    for name, option in options.items():
        assert option.default == fields[name].default, name
    flags = {o.flag: o.name for o in options.values()}
    for flag, name in {"--res": "resolution", "--ngf": "g_width", "--ndf": "d_width", "--ema": "ema_decay",
                       "--class-groups": "class_group_size", "--keep": "keep_checkpoints",
                       "--no-flip": "flip", "--split": "split_file", "--guide-weight": "guide_weight",
                       "--mode-seeking": "mode_seeking", "--lr-g": "lr_g"}.items():  # fmt: skip
        assert flags[flag] == name
    assert TrainConfig.PHASE_OPTIONS == ("mode_seeking", "mode_seeking_space", "shape_mmd", "pose_mmd", "layout_mmd",
                                         "guide",
                                         "guide_weight", "guide_confidence", "guide_target", "guide_augment",
                                         "diffaug")  # fmt: skip
    assert set(TrainConfig.RESUMABLE_OVERRIDES) == {
        "steps", "log_every", "sample_every", "ckpt_every", "keep_checkpoints", "out", "device", "compile",
    }  # fmt: skip

    # Nothing typed: nothing given, and the config is TrainConfig's defaults.
    assert explicit_options(parse()) == {}
    assert TrainConfig(**explicit_options(parse("--out", "x"))) == TrainConfig(out="x")
    # Every option given: each lands on its field with its type, and option_args is the inverse.
    values = {"resolution": 32, "g_width": 8, "flip": False, "g_spectral_norm": False, "lr_g": 1e-3,
              "precision": "fp32", "split_file": "s.json", "mode_seeking": 0.3, "keep_checkpoints": 7}  # fmt: skip
    assert explicit_options(parse(*option_args(values))) == values
    # --guide alone brings the weight 0.5 (and an absolute path), as before.
    given = explicit_options(parse("--guide", "g"))
    assert given == {"guide": str(Path("g").resolve()), "guide_weight": 0.5}
    assert explicit_options(parse("--guide", "g", "--guide-weight", "2"))["guide_weight"] == 2.0


def test_recipe_values_then_command_line_values():
    recipe = load_recipe("tiny")
    overrides = explicit_options(parse("--data", "d", "--out", "r", "--ngf", "16", "--mode-seeking", "0.1"))
    plan = recipe.resolve(overrides)
    cfg = plan.config
    assert (cfg.g_width, cfg.d_width, cfg.embed_dim, cfg.resolution) == (16, 8, 128, 32)
    assert plan.sources["g_width"] == "override" and plan.sources["d_width"] == "recipe"
    assert plan.sources["embed_dim"] == "default"
    # A phase option given on the command line applies from step 0; the recipe's phases still change others.
    assert plan.options_at(0)["mode_seeking"] == 0.1 and plan.options_at(0)["guide"] is None
    late = plan.options_at(15)
    assert late["mode_seeking"] == 0.1 and late["guide"] == str(Path("r", "guide").resolve())
    assert late["guide_weight"] == 0.5
    assert plan.segment_end(0) == 15 and plan.segment_end(15) == 30
    # Fewer steps than a phase's start: the phase is not reached.
    short = recipe.resolve({"out": "r", "steps": 10})
    assert short.phases == () and [p.from_step for p in short.skipped] == [15]
    assert "not reached" in short.describe()


def test_builtin_recipes_load_and_vise_parts_64_is_the_shipped_model():
    assert set(builtin_recipes()) >= {
        "tiny", "photos-cpu-64", "vise-parts-64", "gpu-64", "gpu-128", "gpu-256",
    }  # fmt: skip
    for name in builtin_recipes():
        recipe = load_recipe(name)
        assert recipe.name == name and recipe.description
        plan = recipe.resolve({"out": "RUN"})
        assert plan.phases and any(p.changes.get("guide") == plan.own_guide for p in plan.phases)

    run = json.loads((SHIPPED / "run.json").read_text())
    recipe = load_recipe("vise-parts-64")
    config = recipe.resolve({"out": "RUN", "split_file": run["config"]["split_file"]}).config
    shipped = TrainConfig.from_dict(run["config"])
    changed = {k for p in run["phases"] for k in p["changes"]}
    for f in dataclasses.fields(TrainConfig):
        if f.name not in changed | {"out"}:
            assert getattr(config, f.name) == getattr(shipped, f.name), f.name
    phases = [(p.from_step, p.changes) for p in recipe.phases]
    expected = [
        (p["from_step"], {k: OWN_GUIDE if k == "guide" else v for k, v in p["changes"].items()})
        for p in run.get("phases", [])
    ]
    assert phases == expected
    guide = recipe.guide  # the README's train-evaluator command for GUIDE
    assert (guide.arch, guide.stem_stride, guide.steps, guide.batch, guide.lr, guide.seed) == (
        "resnet18", "2", 1200, 64, 0.002, 7,
    )  # fmt: skip


def test_gpu_64_is_photos_cpu_64_at_four_times_the_batch_and_equal_images_seen():
    """The batch-64 recipe changes only what a 4x batch must: steps and phase starts / 4, learning
    rates x sqrt(4), the EMA decay to the same horizon in images (decay^4); nothing else."""
    small, large = (
        load_recipe("photos-cpu-64").resolve({"out": "R"}),
        load_recipe("gpu-64").resolve({"out": "R"}),
    )
    a, b = small.config, large.config
    ratio = b.batch // a.batch
    assert ratio == 4 and b.batch % b.class_group_size == 0
    assert b.steps * b.batch == a.steps * a.batch
    assert (b.lr_g, b.lr_d) == pytest.approx((a.lr_g * ratio**0.5, a.lr_d * ratio**0.5))
    assert b.ema_decay == pytest.approx(a.ema_decay**ratio, abs=1e-4)
    scaled = {"batch", "steps", "lr_g", "lr_d", "ema_decay", "sample_every", "ckpt_every"}
    for f in dataclasses.fields(TrainConfig):
        if f.name not in scaled:
            assert getattr(a, f.name) == getattr(b, f.name), f.name
    assert [(p.from_step * ratio, p.changes) for p in large.phases] == [
        (p.from_step, p.changes) for p in small.phases
    ]
    assert load_recipe("gpu-64").guide == load_recipe("photos-cpu-64").guide


def test_dry_run_prints_the_shipped_phases_and_writes_nothing(tmp_path):
    out = tmp_path / "vp"
    proc = run_cli("train", "--recipe", "vise-parts-64", "--data", "demo", "--out", out, "--dry-run",
                   "--split", SHIPPED / "split.json", "--seed", "0")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert not out.exists() and list(tmp_path.iterdir()) == []
    text = proc.stdout
    lines = {
        line.split("(phase from_step ")[1].split(")")[0]: line
        for line in text.splitlines()
        if "from_step" in line
    }
    run = json.loads((SHIPPED / "run.json").read_text())
    assert sorted(lines) == ["5000", "7500", "9500"]
    for phase in run["phases"]:
        line = lines[str(phase["from_step"])]
        for key, value in phase["changes"].items():
            assert (f"{key}=RUN/guide (own)" if key == "guide" else f"{key}={value}") in line
    assert "train the run's own guide" in text and "--arch resnet18 --stem-stride 2" in text
    assert "steps 0-5000" in text and "steps 9500-10000" in text
    split_line = next(line for line in text.splitlines() if line.strip().startswith("split_file"))
    assert "command line" in split_line and "--split" in split_line
    assert "recipe" in next(line for line in text.splitlines() if line.strip().startswith("g_width "))


BAD = {
    "unknown top-level key": ("name = 'x'\nsteps = 3\n", "unknown key 'steps'"),
    "unknown option": ("name = 'x'\n[config]\nwidth = 8\n", "unknown key 'width'"),
    "bad type": ("name = 'x'\n[config]\nsteps = 'many'\n", "steps = 'many' should be of type int"),
    "bad choice": ("name = 'x'\n[config]\nprecision = 'fp8'\n", "precision = 'fp8' must be one of"),
    "phase changes a fixed option": (
        "name = 'x'\n[config]\nsteps = 10\n[[phase]]\nfrom_step = 5\nbatch = 4\n",
        "cannot change 'batch'",
    ),
    "from_step out of range": (
        "name = 'x'\n[config]\nsteps = 10\n[[phase]]\nfrom_step = 10\nmode_seeking = 0.1\n",
        "from_step = 10 must be above",
    ),
    "from_step not increasing": (
        "name = 'x'\n[config]\nsteps = 10\n[[phase]]\nfrom_step = 6\nmode_seeking = 0.1\n"
        "[[phase]]\nfrom_step = 4\nmode_seeking = 0.2\n",
        "#2 from_step = 4 must be above the previous phase's \\(6\\)",
    ),
    "own guide without [guide]": (
        "name = 'x'\n[config]\nsteps = 10\n[[phase]]\nfrom_step = 5\nguide = 'own'\n",
        "no \\[guide\\] table",
    ),
    "unknown [guide] key": (
        "name = 'x'\n[guide]\nepochs = 3\n[[phase]]\nfrom_step = 5\nguide = 'own'\n",
        "\\[guide\\] has unknown key 'epochs'",
    ),
    "guide weight without a guide": ("name = 'x'\n[config]\nguide_weight = 1.0\n", "no guide is set"),
    "class groups": ("name = 'x'\n[config]\nbatch = 6\nclass_group_size = 4\n", "must divide batch 6"),
}


@pytest.mark.parametrize("case", BAD)
def test_invalid_recipes_name_the_file_and_the_key(tmp_path, case):
    text, message = BAD[case]
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ValueError, match=message) as info:
        load_recipe(path)
    assert str(path) in str(info.value)


def test_recipe_names_are_built_ins_or_toml_files(tmp_path):
    for name in (
        "../../etc/passwd",
        "nope",
        str(tmp_path / "missing.toml"),
        str(REPO / "pyproject.toml") + "x",
    ):
        with pytest.raises(ValueError, match="Unknown recipe"):
            load_recipe(name)
    proc = run_cli("train", "--recipe", "nope", "--data", "demo", "--out", tmp_path / "r", "--dry-run")
    assert proc.returncode == 2 and "error: Unknown recipe 'nope'" in proc.stderr
    with pytest.raises(ValueError, match="'extra' cannot be overridden"):
        load_recipe("tiny").resolve({"extra": {}})


def _phases(run_dir: Path) -> list[tuple[int, dict]]:
    run = ckpt.read_json(run_dir / "run.json")
    own = str((run_dir / "guide").resolve())
    return [
        (p["from_step"], {k: "own" if v == own else v for k, v in p["changes"].items()})
        for p in run.get("phases", [])
    ]


def _final_weights(run_dir: Path) -> dict:
    return load_file(str(ckpt.latest_checkpoint(run_dir) / "generator_ema" / "model.safetensors"))


@pytest.mark.slow
def test_tiny_recipe_trains_its_guide_at_the_phase_and_resumes_exactly(tmp_path, demo_dir, monkeypatch):
    from gan_studio.training.loop import Trainer

    common = {"data": str(demo_dir), "log_every": 5}
    whole = run_recipe("tiny", {**common, "out": str(tmp_path / "whole")}, progress=False)
    assert ckpt.load_checkpoint_meta(ckpt.latest_checkpoint(whole))["step"] == 30
    guide = json.loads((whole / "guide" / "training.json").read_text())
    n_train = ckpt.read_json(whole / "run.json")["data"]["n_train"]
    assert guide["steps"] == 10 and guide["seed"] == 7 and guide["split"]["n_train"] == n_train
    expected = [(15, {"guide": "own", "guide_weight": 0.5, "guide_augment": "color,translation,rotation"})]
    assert _phases(whole) == expected
    run = ckpt.read_json(whole / "run.json")
    assert run["recipe"]["name"] == "tiny" and run["config"]["guide"] == str((whole / "guide").resolve())
    assert "--steps 15" in run["command"] and "--resume --steps 30" in run["phases"][0]["command"]

    # Stopped at step 10 (as by Ctrl-C): no guide yet, and nothing after the stop.
    out = tmp_path / "parts"
    real = Trainer._should_stop
    monkeypatch.setattr(Trainer, "_should_stop", lambda self: self.step >= 10 or real(self))
    run_recipe("tiny", {**common, "out": str(out)}, progress=False)
    monkeypatch.undo()
    assert ckpt.load_checkpoint_meta(ckpt.latest_checkpoint(out))["step"] == 10
    assert not (out / "guide").exists() and _phases(out) == []
    # Continued with fewer steps, then with the recipe's own: the same phases and the same weights.
    # RUN/guide already there (here: the first run's, to save its training time) is used, not retrained.
    shutil.copytree(whole / "guide", out / "guide")
    guide_mtime = (out / "guide" / "model.safetensors").stat().st_mtime_ns
    run_recipe("tiny", {"out": str(out), "steps": 20}, progress=False)
    assert (out / "guide" / "model.safetensors").stat().st_mtime_ns == guide_mtime
    assert _phases(out) == expected
    run_recipe("tiny", {"out": str(out)}, progress=False)
    assert _phases(out) == expected
    assert ckpt.load_checkpoint_meta(ckpt.latest_checkpoint(out))["step"] == 30
    a, b = _final_weights(whole), _final_weights(out)
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)

    # A finished run: running it again trains nothing; other fixed options are refused.
    run_recipe("tiny", {"out": str(out)}, progress=False)
    with pytest.raises(ValueError, match="g_width"):
        run_recipe("tiny", {"out": str(out), "g_width": 16}, progress=False)

    # The package's commands name the run's own guide GUIDE, made by train-evaluator.
    from gan_studio.packaging import recipe_command, training_commands

    commands = "\n".join(c for c in training_commands(run, 30, whole) if c)
    assert "train-evaluator" in commands and "--guide GUIDE" in commands
    # ... and the one command that made them all: the recipe with the run's own overrides.
    one = recipe_command(run)
    assert one.startswith("python -m gan_studio train --recipe tiny ") and one.endswith(" --out RUN")
    assert "--log-every 5" in one and f"--data {demo_dir}" in one
    from gan_studio.packaging import _placeholders

    assert _placeholders(run, whole, None)[run["recipe"]["file"]] == "gan_studio/recipes/tiny.toml"
