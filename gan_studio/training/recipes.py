"""Recipes: a whole training (configuration, own guide classifier, phases) described in one TOML file.

A recipe file::

    name = "tiny"
    description = "..."

    [config]            # TrainConfig fields (gan_studio/training/config.py)
    resolution = 32
    steps = 30

    [guide]             # how the run trains its own guide classifier (train-evaluator's options)
    arch = "resnet18"
    steps = 10

    [[phase]]           # from this step on, these phase options change
    from_step = 15
    guide = "own"       # the run's own guide, RUN/guide, trained from [guide] right before the phase
    guide_weight = 0.5

The resolved configuration is TrainConfig's defaults, then the recipe's [config], then the
overrides (explicit command-line options, or ``run_recipe``'s ``overrides``). An override of a phase
option applies from step 0; the recipe's phases still change it at their steps.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from pathlib import Path
from typing import Any

from gan_studio.training.config import TrainConfig, option_problem
from gan_studio.training.options import options_by_name, with_guide_weight

BUILTIN_DIR = Path(__file__).resolve().parents[1] / "recipes"
OWN_GUIDE = "own"  # a phase's guide = "own": the run's own guide classifier at RUN/guide
GUIDE_FOLDER = "guide"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
# Options a recipe's [config] cannot set: where a run is written is the command's business.
NOT_IN_RECIPES = ("out", "extra")


@dataclasses.dataclass(frozen=True)
class GuideRecipe:
    """How a run trains its own guide classifier (the options of ``train-evaluator``)."""

    arch: str = "resnet18"
    stem_stride: str = "auto"  # auto, 1 or 2
    steps: int = 1200
    batch: int = 64
    lr: float = 2e-3
    seed: int = 7
    augment: str = "classic"  # classic | none


@dataclasses.dataclass(frozen=True)
class Phase:
    from_step: int
    changes: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Recipe:
    name: str
    description: str
    config: dict[str, Any]  # TrainConfig field -> value, as the file gives them
    phases: tuple[Phase, ...]
    guide: GuideRecipe | None
    source: Path  # the .toml file

    def resolve(self, overrides: dict[str, Any] | None = None) -> RecipePlan:
        """The configuration and phases that a run of this recipe with these overrides follows."""
        return resolve_recipe(self, overrides)

    def plan(self, overrides: dict[str, Any] | None = None) -> str:
        """The resolved configuration and the phase plan, as text (``train --recipe ... --dry-run``)."""
        return self.resolve(overrides).describe()


@dataclasses.dataclass(frozen=True)
class RecipePlan:
    """A recipe resolved against overrides: the configuration at step 0 and the phases that follow."""

    recipe: Recipe
    config: TrainConfig  # at step 0, with the own guide's sentinel already replaced by its folder
    sources: dict[str, str]  # field -> "default" | "recipe" | "override"
    phases: tuple[Phase, ...]  # those that start before config.steps (guide sentinel replaced)
    skipped: tuple[Phase, ...]  # those at or after config.steps (not reached)
    overrides: dict[str, Any]

    @property
    def run_dir(self) -> Path:
        return Path(self.config.out)

    @property
    def own_guide(self) -> str:
        return own_guide_path(self.config.out)

    def options_at(self, step: int) -> dict[str, Any]:
        """The phase options in effect from ``step`` on."""
        options = {name: getattr(self.config, name) for name in TrainConfig.PHASE_OPTIONS}
        for phase in self.phases:
            if phase.from_step <= step:
                options.update(phase.changes)
        return options

    def segment_end(self, step: int) -> int:
        """The step where the segment that contains ``step`` ends (the next phase, or the last step)."""
        return next((p.from_step for p in self.phases if p.from_step > step), self.config.steps)

    def needs_own_guide(self, step: int) -> bool:
        return self.options_at(step).get("guide") == self.own_guide

    def describe(self) -> str:
        declared = options_by_name()
        cfg = self.config
        lines = [f"recipe {self.recipe.name} ({self.recipe.source})", f"  {self.recipe.description}", ""]
        lines.append("configuration (where each value comes from: recipe, command line, or default):")
        width = max(len(name) for name in declared)
        for name, option in declared.items():
            origin = {"override": "command line", "recipe": "recipe"}.get(self.sources[name], "default")
            shown = self._show(name, getattr(cfg, name))
            lines.append(f"  {name:<{width}}  {shown:<28} {origin:<12}  {option.flag}")
        lines += ["", "phases:"]
        starts = [0, *(p.from_step for p in self.phases)]
        ends = [*(p.from_step for p in self.phases), cfg.steps]
        initial = {n: self._show(n, getattr(cfg, n)) for n in TrainConfig.PHASE_OPTIONS}
        initial = ", ".join(f"{n}={v}" for n, v in initial.items())
        lines.append(f"  steps {starts[0]}-{ends[0]}: {initial}")
        for phase, start, end in zip(self.phases, starts[1:], ends[1:]):
            if phase.changes.get("guide") == self.own_guide and not any(
                p.changes.get("guide") == self.own_guide for p in self.phases if p.from_step < phase.from_step
            ):
                lines.append(f"  at step {start}, unless RUN/guide exists: {self.guide_description()}")
            changes = ", ".join(f"{n}={self._show(n, v)}" for n, v in phase.changes.items())
            lines.append(f"  steps {start}-{end} (phase from_step {phase.from_step}): {changes}")
        for phase in self.skipped:
            lines.append(
                f"  not reached (steps is {cfg.steps}): phase from_step {phase.from_step}: "
                + ", ".join(f"{n}={self._show(n, v)}" for n, v in phase.changes.items())
            )
        return "\n".join(lines)

    def guide_description(self) -> str:
        g = self.recipe.guide
        subset = (
            f"its {self.config.train_per_class} images per class (train_files.json)"
            if self.config.train_per_class
            else "its train split"
        )
        return (
            f"train the run's own guide on {subset} (RUN/split.json): train-evaluator --arch {g.arch} "
            f"--stem-stride {g.stem_stride} --res {self.config.resolution} --steps {g.steps} --batch {g.batch} "
            f"--lr {g.lr} --seed {g.seed} --augment {g.augment} --out RUN/guide"
        )

    def _show(self, name: str, value: Any) -> str:
        if name == "guide" and value == self.own_guide:
            return "RUN/guide (own)"
        return "-" if value is None else str(value)


def own_guide_path(out: str | Path) -> str:
    return str((Path(out) / GUIDE_FOLDER).expanduser().resolve())


def builtin_recipes() -> list[str]:
    """Names of the recipes that ship with GAN Studio."""
    return sorted(p.stem for p in BUILTIN_DIR.glob("*.toml"))


def recipe_path(name_or_path: str | Path) -> Path:
    """A built-in recipe's file, or an existing .toml file; anything else is a ValueError."""
    text = str(name_or_path)
    if _NAME.match(text) and (BUILTIN_DIR / f"{text}.toml").is_file():
        return BUILTIN_DIR / f"{text}.toml"
    path = Path(text).expanduser()
    if path.suffix == ".toml" and path.is_file():
        return path.resolve()
    raise ValueError(
        f"Unknown recipe '{text}': use a built-in one ({', '.join(builtin_recipes())}) or the path of a "
        ".toml recipe file."
    )


def load_recipe(name_or_path: str | Path) -> Recipe:
    """Read and validate a recipe: a built-in name (see ``builtin_recipes``) or a .toml file's path.

    Raises ValueError naming the file and the key for anything it does not understand."""
    path = recipe_path(name_or_path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"recipe {path}: not valid TOML ({e})") from None
    return parse_recipe(data, path)


def parse_recipe(data: dict, path: Path) -> Recipe:
    def fail(message: str) -> ValueError:
        return ValueError(f"recipe {path}: {message}")

    unknown = set(data) - {"name", "description", "config", "guide", "phase"}
    if unknown:
        raise fail(
            f"unknown key '{sorted(unknown)[0]}' (a recipe has name, description, [config], [guide], [[phase]])"
        )
    name = data.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise fail("'name' must be a short name of letters, digits, '.', '_' or '-'")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise fail("'description' must be a string")
    config = data.get("config", {})
    if not isinstance(config, dict):
        raise fail("[config] must be a table")
    for key, value in config.items():
        if key in NOT_IN_RECIPES:
            raise fail(f"[config] key '{key}' cannot be set in a recipe (give --out on the command line)")
        check_value(key, value, where="[config]", fail=fail)
        if key == "guide" and value == OWN_GUIDE:
            raise fail(
                "[config] guide = 'own' is not possible: the own guide is trained on the run's split, "
                "which exists once training started; set it in a [[phase]]"
            )
    steps = config.get("steps", TrainConfig.steps)

    guide = None
    if "guide" in data:
        table = data["guide"]
        if not isinstance(table, dict):
            raise fail("[guide] must be a table")
        fields = {f.name: f for f in dataclasses.fields(GuideRecipe)}
        for key, value in table.items():
            if key not in fields:
                raise fail(f"[guide] has unknown key '{key}' (known: {', '.join(fields)})")
            expected = {"arch": str, "stem_stride": (str, int), "steps": int, "batch": int, "lr": (float, int),
                        "seed": int, "augment": str}[key]  # fmt: skip
            if isinstance(value, bool) or not isinstance(value, expected):
                raise fail(f"[guide] {key} = {value!r} has the wrong type")
        from gan_studio.models.classifier import ARCHITECTURES

        if table.get("arch", GuideRecipe.arch) not in ARCHITECTURES:
            raise fail(f"[guide] arch must be one of {', '.join(ARCHITECTURES)}")
        if str(table.get("stem_stride", "auto")) not in ("auto", "1", "2"):
            raise fail("[guide] stem_stride must be 'auto', 1 or 2")
        if table.get("augment", "classic") not in ("classic", "none"):
            raise fail("[guide] augment must be 'classic' or 'none'")
        for key in ("steps", "batch", "lr"):
            if key in table and table[key] <= 0:
                raise fail(f"[guide] {key} must be positive")
        guide = GuideRecipe(**{**table, "stem_stride": str(table.get("stem_stride", "auto")),
                               "lr": float(table.get("lr", GuideRecipe.lr))})  # fmt: skip

    entries = data.get("phase", [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise fail("phases are [[phase]] tables")
    phases, previous = [], 0
    for i, entry in enumerate(entries, 1):
        where = f"[[phase]] #{i}"
        from_step = entry.get("from_step")
        if isinstance(from_step, bool) or not isinstance(from_step, int):
            raise fail(f"{where} needs an integer from_step")
        if not previous < from_step < steps:
            raise fail(
                f"{where} from_step = {from_step} must be above the previous phase's ({previous}) and below "
                f"steps ({steps})"
            )
        changes = {k: v for k, v in entry.items() if k != "from_step"}
        if not changes:
            raise fail(f"{where} changes nothing")
        for key, value in changes.items():
            if key not in TrainConfig.PHASE_OPTIONS:
                raise fail(
                    f"{where} cannot change '{key}': a phase may change only {', '.join(TrainConfig.PHASE_OPTIONS)}"
                )
            check_value(key, value, where=where, fail=fail)
        if changes.get("guide") == OWN_GUIDE and guide is None:
            raise fail(
                f"{where} uses guide = 'own' but the recipe has no [guide] table saying how to train it"
            )
        phases.append(Phase(from_step, with_guide_weight(changes)))
        previous = from_step
    if guide is not None and not any(p.changes.get("guide") == OWN_GUIDE for p in phases):
        raise fail("[guide] is given but no [[phase]] sets guide = 'own'")
    recipe = Recipe(name, description, dict(with_guide_weight(config)), tuple(phases), guide, path)
    recipe.resolve({"out": "RUN"})  # every segment's options make sense together
    return recipe


def check_value(key: str, value: Any, *, where: str, fail) -> None:
    """A TrainConfig value of the declared type, among its choices and within its range."""
    declared = options_by_name()
    if key not in declared:
        raise fail(f"{where} has unknown key '{key}' (not a TrainConfig option)")
    option = declared[key]
    kind = option.kind
    ok = (
        isinstance(value, bool)
        if kind is bool
        else not isinstance(value, bool)
        and (isinstance(value, (int, float)) if kind is float else isinstance(value, kind))
    )
    if value is None and option.default is None:
        ok = True
    if not ok:
        raise fail(f"{where} {key} = {value!r} should be of type {kind.__name__}")
    if option.choices and value not in option.choices:
        raise fail(f"{where} {key} = {value!r} must be one of {', '.join(option.choices)}")
    problem = option_problem(key, value)  # the declared range (gan_studio/training/config.py)
    if problem:
        raise fail(f"{where} {problem}")


def resolve_recipe(recipe: Recipe, overrides: dict[str, Any] | None = None) -> RecipePlan:
    """Defaults <- the recipe's [config] <- ``overrides``; the own guide's sentinel becomes RUN/guide."""

    def fail(message: str) -> ValueError:
        return ValueError(f"recipe {recipe.source}: {message}")

    overrides = dict(overrides or {})
    for key, value in overrides.items():
        if key == "extra":
            raise ValueError("'extra' cannot be overridden")
        check_value(key, value, where="override", fail=lambda m: ValueError(m))
    values = {**recipe.config, **with_guide_weight(overrides)}
    for key in ("steps", "batch", "resolution"):
        if key in values and values[key] < 1:
            raise fail(f"{key} must be at least 1")
    config = TrainConfig(**values)
    own = own_guide_path(config.out)
    if config.guide == OWN_GUIDE:
        raise fail("guide = 'own' can only be set by a [[phase]]")
    sources = {
        f.name: "override" if f.name in overrides else "recipe" if f.name in recipe.config else "default"
        for f in dataclasses.fields(TrainConfig)
    }
    reached, skipped = [], []
    for phase in recipe.phases:
        changes = {k: own if k == "guide" and v == OWN_GUIDE else v for k, v in phase.changes.items()}
        (reached if phase.from_step < config.steps else skipped).append(Phase(phase.from_step, changes))
    plan = RecipePlan(recipe, config, sources, tuple(reached), tuple(skipped), overrides)
    if config.class_group_size < 1 or config.batch % config.class_group_size:
        raise fail(f"class_group_size {config.class_group_size} must divide batch {config.batch}")
    for start in [0, *(p.from_step for p in plan.phases)]:
        options = plan.options_at(start)
        if options["guide_weight"] > 0 and not options["guide"]:
            raise fail(f"from step {start}, guide_weight is {options['guide_weight']} but no guide is set")
        if options["guide_confidence"] < 1.0 and not options["guide"]:
            raise fail(f"from step {start}, guide_confidence is below 1 but no guide is set")
        if not 0.0 < options["guide_confidence"] <= 1.0:
            raise fail(f"from step {start}, guide_confidence must be in (0, 1]")
    return plan


def run_recipe(
    recipe: Recipe | str | Path,
    overrides: dict[str, Any] | None = None,
    *,
    progress: bool = True,
    command: str | None = None,
) -> Path:
    """Train every phase of ``recipe`` into ``overrides['out']``; returns the run folder.

    Resumable at any point: a run folder with checkpoints continues from its latest one, with the
    overrides it was started with (saved in run.json) unless given anew. Returns after the last
    phase, or as soon as the trainer was stopped (Ctrl-C, SIGTERM) without starting the next one."""
    from gan_studio.training.phases import run_plan

    if not isinstance(recipe, Recipe):
        recipe = load_recipe(recipe)
    return run_plan(recipe, dict(overrides or {}), progress=progress, command=command)
