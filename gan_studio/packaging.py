"""Package a trained run as a small, shippable model folder with a model card.

A package is what the app loads out of the box and what gets pushed to the Hugging Face Hub::

    NAME/
      README.md          model card: commands, steps, wall time, hardware, metrics, sample grid
      package.json       machine-readable summary (kind "gan-studio-package")
      generator/         EMA generator, save_pretrained (fp16 by default: half the size)
      evaluator/         evaluator classifier (save_pretrained + training.json), if given
      real_vs_generated.png  per class: the first 4 real train images beside 4 generated ones
      samples.png        per-class sample grid (8 seeds per class)
      run.json, split.json, train_files.json, data_report.json   how the run was trained
      metrics.json, report.md                                     what `evaluate` measured, if given
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import tempfile
import time
from pathlib import Path

from gan_studio.data import DatasetError
from gan_studio.models import Generator
from gan_studio.sampling import generate, load_generator
from gan_studio.side_by_side import PER_SIDE, REAL_VS_GENERATED, save_real_vs_generated, train_examples
from gan_studio.training import checkpoint as ckpt
from gan_studio.training.options import option_args
from gan_studio.training.run_folder import PACKAGED_FILES, RUN_FILE, RunFolder
from gan_studio.utils.images import save_image_grid

PACKAGE_KIND = "gan-studio-package"
RUN_FILES = PACKAGED_FILES


def package_run(
    run_dir: str | Path,
    out_dir: str | Path,
    *,
    evaluator_dir: str | Path | None = None,
    report_dir: str | Path | None = None,
    name: str | None = None,
    fp16: bool = True,
    extra_commands: list[str] | None = None,
) -> Path:
    """Write the package into a temporary folder, then swap it into ``out_dir`` in one rename."""
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    G, info = load_generator(run_dir, device="cpu")
    latest = ckpt.latest_checkpoint(run_dir)
    meta = ckpt.load_checkpoint_meta(latest) if latest else {}
    run = ckpt.read_json(RunFolder(run_dir).run_path) if RunFolder(run_dir).run_path.is_file() else {}
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".tmp-{out_dir.name}-"))
    try:
        (G.half() if fp16 else G).save_pretrained(tmp / "generator")
        G.float()
        for file in RUN_FILES:
            if (run_dir / file).is_file():
                shutil.copy2(run_dir / file, tmp / file)
        if evaluator_dir:
            shutil.copytree(
                evaluator_dir, tmp / "evaluator", ignore=shutil.ignore_patterns(".*", "README.md")
            )
        metrics = None
        if report_dir:
            report_dir = Path(report_dir)
            if (report_dir / "metrics.json").is_file():
                shutil.copy2(report_dir / "metrics.json", tmp / "metrics.json")
                metrics = json.loads((report_dir / "metrics.json").read_text())
            if (report_dir / "report.md").is_file():
                shutil.copy2(report_dir / "report.md", tmp / "report.md")
        n = len(info.class_names)
        grid = generate(G, [c for c in range(n) for _ in range(8)], [s for _ in range(n) for s in range(8)])
        save_image_grid(grid, tmp / "samples.png", ncol=8, row_labels=info.class_names)
        real_vs_generated = _real_vs_generated(G, run_dir, tmp)
        summary = {
            "kind": PACKAGE_KIND,
            "format_version": ckpt.FORMAT_VERSION,
            "name": name or out_dir.name,
            "step": info.step,
            "resolution": info.resolution,
            "class_names": info.class_names,
            "train_seconds": meta.get("train_seconds"),
            "hardware": meta.get("hardware") or run.get("hardware"),
            "precision": (
                f"trained with --precision {run.get('config', {}).get('precision', '?')}; "
                + ("weights stored as fp16" if fp16 else "weights stored as fp32")
            ),
            "config": run.get("config"),
            "recipe_command": recipe_command(run),
            "commands": [
                c
                for c in [
                    *training_commands(run, info.step, run_dir),
                    *(extra_commands or []),
                ]
                if c
            ],
            "evaluator": _evaluator_summary(evaluator_dir) if evaluator_dir else None,
            "has_evaluator": bool(evaluator_dir),
            "real_vs_generated": real_vs_generated,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        ckpt.write_json_atomic(tmp / "package.json", summary)
        placeholders = _placeholders(run, run_dir, evaluator_dir)
        for file in (RUN_FILE, "package.json", "metrics.json", "report.md"):
            if (tmp / file).is_file():
                text = (tmp / file).read_text(encoding="utf-8")
                (tmp / file).write_text(_with_placeholders(text, placeholders), encoding="utf-8")
        (tmp / "README.md").write_text(model_card(summary, metrics), encoding="utf-8")
        if out_dir.exists():
            old = out_dir.with_name(f".old-{out_dir.name}-{os.getpid()}")
            os.replace(out_dir, old)
            os.replace(tmp, out_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


def _real_vs_generated(G: Generator, run_dir: Path, out: Path) -> dict:
    """Write real_vs_generated.png (the run's first train images of each class beside generated ones);
    when the training data is not on this machine, say why instead."""
    try:
        real = train_examples(run_dir, G.class_names, G.resolution, PER_SIDE)
    except (DatasetError, OSError) as error:
        return {"file": None, "reason": str(error)}
    save_real_vs_generated(G, real, out / REAL_VS_GENERATED, k=PER_SIDE)
    return {"file": REAL_VS_GENERATED, "per_side": PER_SIDE, "seeds": list(range(PER_SIDE))}


def real_vs_generated_lines(summary: dict) -> list[str]:
    """The model card's first lines about samples: real and generated side by side, or why not."""
    info = summary.get("real_vs_generated")
    if not info:
        return []
    if not info.get("file"):
        return [
            f"*No real images beside the samples: {info.get('reason')} Compare the samples below with the"
            " real training images (`train_files.json`) before judging them.*",
            "",
        ]
    k, res = info["per_side"], summary["resolution"]
    return [
        f"![Real and generated images of each class: {k} real training photos left of the line,"
        f" {k} generated images right of it]({info['file']})",
        "",
        f"*Each row is one class. Left of the line: **real** training photos (the first {k} of the class in"
        f" `train_files.json`, not picked); right of it: **generated** images (seeds 0-{k - 1}, not picked)."
        f" All are {res} px, fitted the way training fitted them.*",
        "",
    ]


def training_commands(run: dict, step: int, run_dir: Path) -> list[str | None]:
    """The commands that retrace the run: its first command, then each phase's resume (with a guide's
    own train-evaluator command before the phase that adds it), each with ``--steps`` at the step the
    next phase took over (the last at ``step``)."""
    phases = run.get("phases") or []
    ends = [p["from_step"] for p in phases] + [step]
    config = run.get("config") or {}
    commands: list[str | None] = _init_generator_commands(config.get("init_generator"))
    first = run.get("command")
    if first and config.get("guide") and not any(p.get("changes", {}).get("guide") for p in phases):
        # A guide from the first step: remake it first, unless the base model's chain already did.
        guide_command = _guide_command(Path(config["guide"]))
        if re.sub(r"\bRUN\b", "BASE_RUN", guide_command) not in commands:
            commands.append(guide_command)
        first = _guide_placeholder(first)
    commands.append(_portable(reproducible(first, ends[0]), run_dir))
    for phase, end in zip(phases, ends[1:]):
        command = phase.get("command")
        guide = phase.get("changes", {}).get("guide")
        if guide:
            commands.append(_guide_command(Path(guide)))
            command = command and _guide_placeholder(command)
        commands.append(_portable(reproducible(command, end), run_dir))
    return commands


def _guide_placeholder(command: str) -> str:
    """The command with its --guide folder (as typed) written as GUIDE."""
    return re.sub(r"(--guide(?:\s+|=))(\S+)", r"\1GUIDE", command)


def _builtin_recipe(recipe: dict) -> bool:
    """Whether run.json's "recipe" names one of the project's own recipes (not a user's file)."""
    from gan_studio.training.recipes import builtin_recipes

    return recipe.get("name") in builtin_recipes()


def recipe_command(run: dict) -> str | None:
    """The one command that reproduces a run trained by ``train --recipe`` (run.json's "recipe"), its
    folder named RUN; None for a run trained option by option."""
    recipe = run.get("recipe") or {}
    if not recipe.get("name"):
        return None
    name = recipe["name"] if _builtin_recipe(recipe) else Path(recipe.get("file") or "").name
    overrides = {k: v for k, v in (recipe.get("overrides") or {}).items() if k != "out"}
    return "python -m gan_studio " + shlex.join(
        ["train", "--recipe", name, *option_args(overrides), "--out", "RUN"]
    )


def _init_generator_commands(source: str | None) -> list[str | None]:
    """For a run fine-tuned from a package (--init-generator): the commands that made that package,
    its run folder renamed BASE_RUN so that the fine-tuned run can be RUN."""
    if not source:
        return []
    package_json = Path(source) / "package.json"
    if not package_json.is_file():
        return [f"# --init-generator {Path(source).name}: no package.json records how it was made"]
    previous = ckpt.read_json(package_json).get("commands") or []
    return [re.sub(r"\bRUN\b", "BASE_RUN", c) for c in previous]


def _guide_command(guide_dir: Path) -> str:
    """train-evaluator command that remakes a guide classifier, from its training.json."""
    info = ckpt.read_json(guide_dir / "training.json") if (guide_dir / "training.json").is_file() else {}
    if not info.get("arch"):
        return f"# guide classifier {guide_dir.name}: no training.json records how it was made"
    data = info.get("data", {})
    parts = [
        f"python -m gan_studio train-evaluator --data {data.get('source', 'DATA')} --split RUN/split.json",
        f"--arch {info.get('arch')} --stem-stride {info.get('stem_stride')} --res {data.get('resolution')}",
        f"--steps {info.get('steps')} --batch {info.get('batch_size')} --lr {info.get('lr')}",
        f"--seed {info.get('seed')}",
    ]
    if info.get("augment") not in (None, "classic"):
        parts.append(f"--augment {info['augment']}")
    if info.get("init_weights"):
        parts.append("--weights WEIGHTS")
    return " ".join([*parts, "--out GUIDE"])


def reproducible(command: str | None, step: int) -> str | None:
    """The training command with ``--steps`` set to the step actually reached.

    A run stopped early (Ctrl-C, SIGTERM, a time budget) was recorded with its planned step count;
    the same command with ``--steps <reached>`` retraces it exactly."""
    if not command or step < 0:
        return command
    return re.sub(r"--steps(\s+|=)\d+", f"--steps {step}", command)


def _placeholders(run: dict, run_dir: Path, evaluator_dir: str | Path | None) -> dict[str, str]:
    """This machine's folders that a package names (the run, its guides, the evaluator) and the
    placeholders the model card's commands use for them."""
    guides = [(run.get("config") or {}).get("guide")]
    guides += [p.get("changes", {}).get("guide") for p in run.get("phases") or []]
    found = {str(run_dir): "RUN", str(run_dir.resolve()): "RUN"}
    for path, name in [*((g, "GUIDE") for g in guides), (evaluator_dir, "EVAL")]:
        if path:
            found.update({str(path): name, str(Path(path).resolve()): name})
    recipe = run.get("recipe") or {}
    if recipe.get("file"):  # a built-in recipe as the project names it, a user's by its file name
        name = Path(recipe["file"]).name
        found[recipe["file"]] = f"gan_studio/recipes/{name}" if _builtin_recipe(recipe) else name
    return {path: name for path, name in found.items() if path not in ("", ".")}


def _with_placeholders(text: str, placeholders: dict[str, str]) -> str:
    """``text`` with each folder written as its placeholder, longest first, and only where the
    whole folder name matches (so that runs/parts-eval is not read as runs/parts + "-eval")."""
    for path in sorted(placeholders, key=len, reverse=True):
        text = re.sub(r"(?<![\w.-])" + re.escape(path) + r"(?![\w.-])", placeholders[path], text)
    return text


def _portable(command: str | None, run_dir: Path) -> str | None:
    """The command with this machine's run folder written as RUN (the model card's placeholder)."""
    if not command:
        return command
    return _with_placeholders(command, {str(run_dir): "RUN", str(run_dir.resolve()): "RUN"})


def _evaluator_summary(evaluator_dir: str | Path) -> dict:
    """What the model card says about the evaluator: architecture, budget and real test accuracy."""
    from gan_studio.models.classifier import read_training_info

    training = read_training_info(evaluator_dir) or {}
    split = training.get("split") or {}
    return {
        "arch": training.get("arch"),
        "stem_stride": training.get("stem_stride"),
        "steps": training.get("steps"),
        "n_train": split.get("n_train"),
        "n_test": split.get("n_test"),
        "test_accuracy": training.get("test_accuracy"),
        "per_class_accuracy": training.get("per_class_accuracy"),
    }


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 1000 else f"{value:.1f}"
    return "—" if value is None else str(value)


_NOT_IN_THE_CARD = {  # per-class detail (report.md has it) and bookkeeping
    "per_class", "worst_pairs", "pairs", "confusion_matrix", "real_train_per_class", "real_test_per_class",
    "created_unix",
}  # fmt: skip


def _metric_rows(metrics: dict) -> list[str]:
    """One table row per scalar figure of metrics.json (nested dicts are flattened with dots)."""
    rows = []

    def walk(prefix: str, value) -> None:
        if isinstance(value, dict):
            for key, sub in value.items():
                if key in _NOT_IN_THE_CARD:
                    continue
                walk(f"{prefix}.{key}" if prefix else key, sub)
        elif isinstance(value, (int, float)) and not isinstance(value, bool) or value is None:
            rows.append(f"| {prefix} | {_fmt(value)} |")

    walk("", metrics)
    return rows


def _computed_on(metrics: dict, n_classes: int) -> list[str]:
    """What the figures below were computed on, when the evaluation recorded it."""
    from gan_studio.metrics.history import computed_on

    meta = metrics.get("meta") or {}
    return [f"Computed on: {computed_on(meta, n_classes)}.", ""] if meta.get("n_per_class") else []


def _c2st_lines(c2st: dict) -> list[str]:
    """The model card's realism section (empty when the package was evaluated without c2st)."""
    if c2st.get("value") is None:
        return []
    c = c2st.get("classifier") or {}
    baseline = c2st.get("real_baseline")
    return [
        "## Realism: classifier two-sample test (`c2st`)",
        "",
        f"A fresh {c.get('arch')} trained from scratch ({c.get('steps')} steps of {c.get('batch_size')}, "
        f"seed {c.get('seed')}) to tell real train photos from generated images tells held-out ones apart "
        f"**{100 * c2st['value']:.1f}%** of the time (real {100 * c2st['real_accuracy']:.1f}%, generated "
        f"{100 * c2st['generated_accuracy']:.1f}%; {c2st['n_real']} + {c2st['n_generated']} held out). "
        "The same test on real train against real test photos reads "
        + (f"**{100 * baseline:.1f}%**" if baseline is not None else "n/a")
        + " (50%: indistinguishable). CAS says whether samples show the right class; this says whether "
        "they pass for photos.",
        "",
        "| class | told apart | real vs real |",
        "|---|---|---|",
        *[
            f"| {name} | {_fmt(row.get('accuracy'))} | {_fmt(row.get('real_baseline'))} |"
            for name, row in (c2st.get("per_class") or {}).items()
        ],
        "",
    ]


def model_card(summary: dict, metrics: dict | None) -> str:
    hours = (summary.get("train_seconds") or 0) / 3600
    hw = summary.get("hardware") or {}
    lines = [
        "---",
        "library_name: gan-studio",
        "tags: [gan, fastgan, class-conditional, few-shot, gan-studio]",
        "---",
        "",
        f"# {summary['name']}: class-conditional FastGAN ({summary['resolution']} px, {len(summary['class_names'])} classes)",
        "",
        "Trained with GAN Studio — a class-conditional FastGAN (skip-layer excitation generator,"
        " self-supervised discriminator, DiffAugment, spectral norm, EMA generator).",
        "",
        f"Classes: {', '.join(summary['class_names'])}.",
        "",
        "## Samples",
        "",
        *real_vs_generated_lines(summary),
        "![Per-class samples (rows: classes; columns: seeds 0-7)](samples.png)",
        "",
        "## Training",
        "",
        f"- Steps: {summary['step']}; training wall time: {hours:.2f} h ({_fmt(summary.get('train_seconds'))} s,"
        " start-up excluded)",
        f"- Hardware: {hw.get('name', '?')} ({hw.get('device', '?')}, {hw.get('processes', 1)} process(es),"
        f" torch {hw.get('torch', '?')})",
        f"- Precision: {summary['precision']}",
        "",
        *(
            [
                "One command reproduces the training (run it again to continue after a stop):",
                f"`{summary['recipe_command']}`",
                "",
                "The commands it runs, in order:",
            ]
            if summary.get("recipe_command")
            else ["Commands (in order):"]
        ),
        "",
        "```bash",
        *summary["commands"],
        "```",
        "",
        "Configuration: see `run.json` (the split is `split.json`; the exact training images `train_files.json`).",
        "",
    ]
    evaluator = summary.get("evaluator") or {}
    if evaluator.get("test_accuracy") is not None:
        per_class = evaluator.get("per_class_accuracy") or {}
        lines += [
            "## Evaluator (`evaluator/`)",
            "",
            f"{evaluator.get('arch')} trained from scratch on the run's {evaluator.get('n_train')} real train images"
            f" ({evaluator.get('steps')} steps, stem stride {evaluator.get('stem_stride') or 2}); accuracy on the"
            f" {evaluator.get('n_test')} held-out real test images: **{evaluator['test_accuracy']:.4f}**.",
            "",
            "| class | real test accuracy |",
            "|---|---|",
            *[f"| {name} | {_fmt(value)} |" for name, value in per_class.items()],
            "",
        ]
    if metrics:
        lines += [
            "## Evaluation (`python -m gan_studio evaluate`)",
            "",
            "FID/KID here are computed in the evaluator classifier's feature space (no Inception weights offline):"
            " compare them only between runs evaluated with the same evaluator. Full report: `report.md`.",
            "",
            *_computed_on(metrics, len(summary["class_names"])),
            "| metric | value |",
            "|---|---|",
            *_metric_rows(metrics),
            "",
        ]
    lines += _c2st_lines((metrics or {}).get("metrics", {}).get("c2st") or {})
    lines += [
        "## Use",
        "",
        "```python",
        "from gan_studio.sampling import load_generator, generate",
        "",
        'G, info = load_generator("path/to/this/folder")',
        "images = generate(G, class_indices=[0, 1], seeds=[0, 1])  # uint8 [2, 3, R, R]",
        "```",
        "",
    ]
    return "\n".join(lines)


def is_package(path: str | Path) -> bool:
    file = Path(path) / "package.json"
    if not file.is_file():
        return False
    try:
        return json.loads(file.read_text()).get("kind") == PACKAGE_KIND
    except (OSError, json.JSONDecodeError):
        return False


def package_info(path: str | Path) -> dict:
    return json.loads((Path(path) / "package.json").read_text())
