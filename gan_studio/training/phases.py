"""Running a recipe: one Trainer per phase segment, each an exact resume of the previous one.

Between segments the runner changes the phase options (the Trainer records each change in run.json's
"phases" with its step) and, before the first phase that uses it, trains the run's own guide
classifier with train-evaluator's code on the run's train split.
"""

from __future__ import annotations

import dataclasses
import os
import shlex
import shutil
import tempfile
from pathlib import Path
from typing import Any

from gan_studio.training import checkpoint as ckpt
from gan_studio.training import run_files, run_lock
from gan_studio.training.config import TrainConfig
from gan_studio.training.options import command_line, option_args
from gan_studio.training.recipes import GUIDE_FOLDER, Recipe, RecipePlan, own_guide_path
from gan_studio.training.run_folder import SPLIT_FILE, RunFolder

# Options whose value on a resume comes from the run itself, whatever the command says.
_FROM_RUN = ("data", "split_file", "init_generator", "extra")


def _saved_recipe_overrides(run_dir: Path, recipe: Recipe) -> dict[str, Any]:
    run_json = RunFolder(run_dir).run_path
    if not run_json.is_file():
        return {}
    saved = ckpt.read_json(run_json).get("recipe") or {}
    if saved and saved.get("name") != recipe.name:
        raise ValueError(
            f"'{run_dir}' was started with the recipe '{saved.get('name')}', not '{recipe.name}'. "
            "Continue it with that recipe, or choose a new --out folder."
        )
    return dict(saved.get("overrides") or {})


def _check_resume(plan: RecipePlan, run_dir: Path, explicit: dict[str, Any]) -> None:
    """Options given for this call that would change what the run was started with: an error."""
    saved = run_files.saved_config(run_dir)  # checked against the declared ranges
    differ = [
        f"{name} (the run has {getattr(saved, name)!r}, this command {value!r})"
        for name, value in explicit.items()
        if name not in TrainConfig.PHASE_OPTIONS
        and name not in TrainConfig.RESUMABLE_OVERRIDES
        and name not in _FROM_RUN
        and getattr(plan.config, name) != getattr(saved, name)
    ]
    if differ:
        raise ValueError(
            f"'{run_dir}' already holds checkpoints of a run with other options: {'; '.join(differ)}. "
            "Leave them out to continue it, or choose a new --out folder."
        )


def train_own_guide(plan: RecipePlan, *, progress: bool = True) -> Path:
    """Train the run's own guide (the recipe's [guide]) with train-evaluator on the run's train split
    (RUN/split.json; with train_per_class, exactly the run's train_files.json), into RUN/guide."""
    from gan_studio.data import load_split, save_split
    from gan_studio.training.evaluator import train_evaluator_parser

    run_dir = plan.run_dir
    g = plan.recipe.guide
    cfg = TrainConfig.from_dict(RunFolder(run_dir).config_values())
    target = run_dir / GUIDE_FOLDER
    with tempfile.TemporaryDirectory(prefix=".guide-", dir=run_dir) as tmp:
        split = RunFolder(run_dir).split_path
        if cfg.train_per_class > 0:
            # The GAN's own few-shot subset (its seed), not one drawn with the guide's seed.
            files = sorted(RunFolder(run_dir).read_train_files())
            split_path = Path(tmp) / SPLIT_FILE
            save_split(dataclasses.replace(load_split(split), train=files), split_path)
            split = split_path
        argv = ["train-evaluator", "--data", cfg.data, "--split", str(split), "--arch", g.arch,
                "--stem-stride", g.stem_stride, "--res", str(cfg.resolution), "--fit", cfg.fit,
                "--steps", str(g.steps), "--batch", str(g.batch), "--lr", str(g.lr), "--seed", str(g.seed),
                "--augment", g.augment, "--min-per-class", str(cfg.min_per_class),
                "--precision", cfg.precision, "--device", cfg.device,
                "--out", str(Path(tmp) / GUIDE_FOLDER)]  # fmt: skip
        if not progress:
            argv.append("--no-progress")
        print(f"training the run's own guide: python -m gan_studio {shlex.join(argv)}", flush=True)
        args = train_evaluator_parser().parse_args(argv)
        args.func(args)
        if target.exists():  # an unfinished earlier attempt
            shutil.rmtree(target)
        os.replace(Path(tmp) / GUIDE_FOLDER, target)
    return target


def _guide_ready(run_dir: Path) -> bool:
    return (run_dir / GUIDE_FOLDER / "model.safetensors").is_file()


def _segment_command(plan: RecipePlan, config: TrainConfig, changes: dict[str, Any], end: int) -> str:
    """The plain ``train`` command that does what this segment does (for run.json and model cards)."""
    schedule = {n: getattr(config, n) for n in TrainConfig.RESUMABLE_OVERRIDES if n not in ("out", "steps")}
    schedule = {n: v for n, v in schedule.items() if v != TrainConfig.__dataclass_fields__[n].default}
    return command_line({"out": config.out, "steps": end, **schedule, **changes}, resume=True)


def _first_command(config: TrainConfig, end: int) -> str:
    values = {
        f.name: getattr(config, f.name)
        for f in dataclasses.fields(TrainConfig)
        if f.metadata.get("cli") and (f.name in ("data", "out") or getattr(config, f.name) != f.default)
    }
    return command_line({**values, "steps": end})


def run_plan(
    recipe: Recipe, overrides: dict[str, Any], *, progress: bool = True, command: str | None = None
) -> Path:
    if not overrides.get("out"):
        raise ValueError("A recipe run needs an output folder (--out, or overrides['out']).")
    run_dir = Path(overrides["out"])
    run_lock.refuse_if_held(run_dir)
    latest = ckpt.latest_checkpoint(run_dir) if run_dir.is_dir() else None
    explicit = dict(overrides)
    if latest is not None:
        overrides = {**_saved_recipe_overrides(run_dir, recipe), **overrides}
    plan = recipe.resolve(overrides)
    if latest is None and "data" not in overrides and "data" not in recipe.config:
        raise ValueError("train needs --data: a dataset folder, a .zip of one, or 'demo'.")
    step = 0
    if latest is not None:
        _check_resume(plan, run_dir, explicit)
        intact, _ = ckpt.newest_intact_checkpoint(run_dir)  # the one the trainer will resume from
        step = int(ckpt.load_checkpoint_meta(intact or latest)["step"])
    # The whole plan under the run's lock (by the first process only, under torchrun): the own
    # guide and run.json's recipe record are written between trainers, when no trainer holds it.
    with run_lock.hold(run_dir, command, take=run_lock.is_first_process()):
        _run_segments(
            plan, recipe, run_dir, step, resume=latest is not None, progress=progress, command=command
        )
    return run_dir


def _run_segments(
    plan: RecipePlan,
    recipe: Recipe,
    run_dir: Path,
    step: int,
    *,
    resume: bool,
    progress: bool,
    command: str | None,
) -> None:
    from gan_studio.training.loop import Trainer

    while step < plan.config.steps:
        end = plan.segment_end(step)
        options = plan.options_at(step)
        if plan.needs_own_guide(step) and not _guide_ready(run_dir):
            train_own_guide(plan, progress=progress)
        segment = dataclasses.replace(plan.config, **options, steps=end)
        if resume:
            saved = TrainConfig.from_dict(RunFolder(run_dir).config_values())
            changes = {n: v for n, v in options.items() if getattr(saved, n) != v}
            trainer = Trainer(
                segment,
                resume=True,
                progress=progress,
                command=_segment_command(plan, segment, changes, end),
                phase_options=options,
            )
        else:
            trainer = Trainer(segment, progress=progress, command=_first_command(segment, end))
            if trainer.is_main:
                _record_recipe(run_dir, recipe, plan, command)
        if trainer.is_main:
            print(
                f"recipe {recipe.name}: steps {trainer.step}-{end} of {plan.config.steps} on {trainer.device}; "
                f"run folder {run_dir}",
                flush=True,
            )
        trainer.fit()
        resume = True
        if trainer.step < end:  # stopped (Ctrl-C, SIGTERM): do not start the next phase
            break
        step = trainer.step


def _record_recipe(run_dir: Path, recipe: Recipe, plan: RecipePlan, command: str | None) -> None:
    """run.json's "recipe": which recipe, with which overrides (a later call continues with them)."""
    info = RunFolder(run_dir).read_run()
    overrides = {k: v for k, v in plan.overrides.items() if k != "out"}
    info["recipe"] = {
        "name": recipe.name,
        "file": str(recipe.source),
        "overrides": overrides,
        "command": command
        or "python -m gan_studio "
        + shlex.join(["train", "--recipe", recipe.name, "--out", str(run_dir), *option_args(overrides)]),
    }
    RunFolder(run_dir).write_run(info)


__all__ = ["own_guide_path", "run_plan", "train_own_guide"]
