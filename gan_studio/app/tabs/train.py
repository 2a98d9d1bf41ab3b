"""Train tab: pick and check a dataset, start / stop / resume a background run, watch it live.

Three parts: the layout (``_dataset_column``, ``_options_column``, ``_live_panel``) builds the components
and returns them in a namespace; ``_wire`` connects their events; the handlers are module-level functions
given ``TrainServices`` (the training manager, the registry and the workspace folders), not the whole app.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from types import SimpleNamespace

import gradio as gr

from gan_studio.app.common import COUNT_BOUNDS, PROGRESS, for_display, handler, user_errors
from gan_studio.app.registry import GENERATOR, ModelRegistry
from gan_studio.app.training_manager import (
    CUSTOM,
    DEMO,
    RESOLUTIONS,
    RunProgress,
    TrainingManager,
    TrainOptions,
    comparison_figure,
    default_recipe,
    logged_cas,
    loss_figure,
    stage_upload,
    validate_dataset,
)
from gan_studio.data import DatasetError
from gan_studio.training.config import TrainConfig
from gan_studio.training.recipes import builtin_recipes, load_recipe
from gan_studio.training.run_folder import RunFolder
from gan_studio.utils import limits

BATCH_MAX = TrainConfig.__dataclass_fields__["batch"].metadata["maximum"]
SOURCES = ("Built-in demo (vise parts)", "Folder on the server", "Upload a .zip")
# What a poll redraws besides its signature: status, bar, plot, samples, reconstructions, checkpoints,
# log, the run picker, then the sample-grid slider and its note.
POLL_OUTPUTS = 10


@dataclass(frozen=True)
class TrainServices:
    """What the Train tab's handlers use: the runs, where they live, and the run picker's choices."""

    training: TrainingManager
    registry: ModelRegistry
    runs_dir: Path
    check_folder: Callable[[Path], Path]  # refuses folders outside --data-roots
    uploads_dir: Callable[[], Path]
    run_choices: Callable[[], list[tuple[str, str]]]  # the picker's list of generators

    @classmethod
    def of(cls, studio, picker) -> TrainServices:
        return cls(
            training=studio.training,
            registry=studio.registry,
            runs_dir=studio.runs_dir,
            check_folder=studio.check_server_folder,
            uploads_dir=lambda: studio.path("uploads"),
            run_choices=picker.run_choices,
        )


def _progress_html(progress: RunProgress | None) -> str:
    fraction = progress.fraction if progress else 0.0
    state = progress.state if progress else "idle"
    return (
        f'<div class="gs-progress" data-state="{state}"><div class="gs-progress-bar" '
        f'style="width:{100 * fraction:.1f}%"></div></div>'
    )


def recipe_markdown(name: str | None) -> str:
    """The Train tab's description of a recipe: what it is for and its phase plan."""
    if not name or name == CUSTOM:
        return (
            "**custom**: one phase with the options below (the CLI's `train` defaults); no guide classifier."
        )
    recipe = load_recipe(name)
    plan = recipe.resolve({"out": "RUN"})
    phases = plan.describe().split("\nphases:\n", 1)[1]
    return f"**{recipe.name}**: {recipe.description}\n\n**Phase plan**\n\n```\n{phases}\n```"


def dataset_markdown(root, report) -> str:
    """The dataset check's report: classes and usable images, then the skipped and converted files."""
    lines = [f"**{len(report.class_names)} classes · {report.num_images} usable images** in `{root}`"]
    if report.skipped:
        lines.append(f"\n**Skipped {len(report.skipped)} file(s):**")
        lines += [f"- `{path}`: {reason}" for path, reason in report.skipped[:20]]
    if report.converted:
        lines.append(f"\n**Converted {len(report.converted)} file(s):**")
        lines += [f"- `{path}`: {what}" for path, what in report.converted[:20]]
    warning = report.small_class_warning()
    if warning:
        lines.insert(1, f"\n**⚠ {warning}**")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------- handlers


def resolve_source(svc: TrainServices, kind: str, folder: str, upload) -> str:
    if kind == SOURCES[0]:
        return DEMO
    if kind == SOURCES[1]:
        if not folder or not folder.strip():
            raise DatasetError("Type the path of a folder on the server that holds one subfolder per class.")
        return str(svc.check_folder(Path(folder.strip())))
    if upload is None:
        raise DatasetError("Upload a .zip of your dataset first (one folder per class inside).")
    return str(stage_upload(upload, svc.uploads_dir(), svc.runs_dir))


def watch_choices(svc: TrainServices) -> list[tuple[str, str]]:
    """The app's runs, newest first, then the registry's other training runs (marked external)."""
    svc.training.recover_runs()  # killed trainers' leftovers; "running" without a trainer: interrupted
    names = sorted(
        (p.name for p in svc.runs_dir.iterdir() if p.is_dir() and not p.name.startswith(".")),
        key=lambda n: (svc.runs_dir / n).stat().st_mtime,
        reverse=True,
    )
    choices = [(name, name) for name in names]
    own = {str((svc.runs_dir / n).resolve()) for n in names}
    for entry in svc.registry.generators():
        if entry.source == "run" and str(Path(entry.run_dir).resolve()) not in own:
            choices.append((f"{entry.id} (external)", entry.id))
    return choices


def resolve_watch(svc: TrainServices, value: str | None) -> Path:
    """A run folder from a watch-list value: an app run's name, or a registry run id; nothing else."""
    if not value:
        raise gr.Error("Choose a run to watch (or start one).")
    candidate = svc.runs_dir / value
    if "/" not in value and "\\" not in value and not value.startswith(".") and candidate.is_dir():
        return candidate
    entry = svc.registry.get(GENERATOR, value)
    if entry.source != "run":
        raise gr.Error(f"'{value}' is a packaged generator, not a training run.")
    return Path(entry.run_dir)


def check(svc: TrainServices, kind, folder_value, upload_value, progress=PROGRESS):
    progress(0.1, desc="checking every image")
    root, report = validate_dataset(resolve_source(svc, kind, folder_value, upload_value), progress=False)
    rows = [[name, report.counts.get(name, 0)] for name in report.class_names]
    return dataset_markdown(root, report), gr.update(value=rows, visible=True)


def clear_check():
    """The report and counts of the last check, gone: a new check (or source) must not show the
    previous dataset's report, least of all beside the error of a check that failed."""
    return "", gr.update(value=None, visible=False)


def show_source(kind):
    """The folder box, the upload and the demo note: only the chosen source's; no stale report."""
    return (
        gr.update(visible=kind == SOURCES[1]),
        gr.update(visible=kind == SOURCES[2]),
        gr.update(visible=kind == SOURCES[0]),
        *clear_check(),
    )


def start(
    svc: TrainServices, kind, folder_value, upload_value, run_name, res_v, steps_v, batch_v, width_v, z_v,
    lr_v, tf_v, se_v, ce_v, da_v, recipe_v=CUSTOM, progress=PROGRESS,
):  # fmt: skip
    options = TrainOptions(
        resolution=int(res_v),
        steps=int(steps_v),
        batch=int(batch_v),
        width=int(width_v),
        z_dim=int(z_v),
        lr=float(lr_v),
        diffaug=da_v or "",
        test_fraction=float(tf_v),
        sample_every=int(se_v),
        ckpt_every=int(ce_v),
        recipe=None if recipe_v in (None, "", CUSTOM) else recipe_v,
    )
    options.cli_args()  # a bad combination or a limit fails here, before the dataset is checked
    data = resolve_source(svc, kind, folder_value, upload_value)
    progress(0.1, desc="checking every image")
    validate_dataset(data, progress=False)  # fail here with the report's message, not in a log
    # The .zip itself, not its folder in the extraction cache: the cache is pruned, the staged .zip stays.
    run_dir = svc.training.start(data, run_name, options)
    gr.Info(f"Training '{run_dir.name}' started in the background.")
    return gr.update(choices=watch_choices(svc), value=run_dir.name), None


def fill_from_recipe(value):
    """The recipe's plan, then its options in the order of the option fields."""
    options = TrainOptions.from_recipe(value)
    return (
        recipe_markdown(value),
        str(options.resolution),
        options.steps,
        options.batch,
        str(options.width),
        str(options.z_dim),
        options.lr,
        options.test_fraction,
        options.sample_every,
        options.ckpt_every,
        options.diffaug,
    )


def stop(svc: TrainServices, value):
    run_dir = resolve_watch(svc, value)
    if not svc.training.stop(run_dir):
        raise gr.Error(f"'{run_dir.name}' is not being trained by this app right now.")
    gr.Info(f"Stopping '{run_dir.name}': it saves a checkpoint first (resume any time).")
    return f"Stopping **{run_dir.name}** — saving a checkpoint…"


def resume(svc: TrainServices, value, total_steps):
    run_dir = resolve_watch(svc, value)
    svc.training.resume(run_dir, int(total_steps))
    gr.Info(f"Resuming '{run_dir.name}' up to step {int(total_steps)}.")
    return None


def grid_note(grids: list[tuple[int, Path]], index: int) -> str:
    """Which sample grid is shown: its step, and where it sits among the run's grids."""
    if not grids:
        return ""
    step = grids[index][0]
    where = "the latest" if index == len(grids) - 1 else f"latest: step {grids[-1][0]}"
    return f"Samples at **step {step}** (grid {index + 1} of {len(grids)}, {where})"


def grid_slider(grids: list[tuple[int, Path]], value: int | None = None):
    """The scrub slider over the grids' steps (hidden until there are two); at ``value`` when given.

    Its step is the largest that lands on every grid, so dragging it stops at grids only."""
    if len(grids) < 2:
        return gr.update(visible=False)
    steps = [step for step, _ in grids]
    gap = math.gcd(*(b - a for a, b in zip(steps, steps[1:])))
    update = {"minimum": steps[0], "maximum": steps[-1], "step": max(1, gap), "visible": True}
    if value is not None:
        update["value"] = value
    return gr.update(**update)


def grid_at(grids: list[tuple[int, Path]], step) -> int:
    """Index of the last grid at or before ``step`` (the first grid when ``step`` is before it)."""
    index = 0
    for i, (grid_step, _) in enumerate(grids):
        if step is not None and grid_step <= float(step):
            index = i
    return index


def show_grid(svc: TrainServices, value, step):
    """The watched run's sample grid at (or just before) the slider's step, its caption, and the step the
    user chose (None at the latest grid: the view then follows the run as new grids come)."""
    grids = RunFolder(resolve_watch(svc, value)).sample_grids()
    if not grids:
        return gr.skip(), "", None
    index = grid_at(grids, step)
    chosen = None if index == len(grids) - 1 else grids[index][0]
    return for_display(grids[index][1]), grid_note(grids, index), chosen


def _sample_outputs(progress: RunProgress, scrub_step) -> tuple:
    """Samples image, grid slider and note: the latest grid while the user follows the run (``scrub_step``
    None), else the grid they chose stays and only the slider grows."""
    grids = progress.grids
    if not grids:
        latest = for_display(progress.samples) if progress.samples else None
        return latest, gr.update(visible=False), ""
    if scrub_step is None or float(scrub_step) >= grids[-1][0]:
        return for_display(grids[-1][1]), grid_slider(grids, grids[-1][0]), grid_note(grids, len(grids) - 1)
    return gr.skip(), grid_slider(grids), grid_note(grids, grid_at(grids, scrub_step))


def poll(svc: TrainServices, value, last, scrub_step=None):
    """The watched run's state, plots, images, checkpoints and log; skips all when nothing changed.

    ``scrub_step``: the earlier sample grid the user is looking at (None: they follow the latest)."""
    if not value:
        return (gr.skip(),) * POLL_OUTPUTS + (last,)
    progress = svc.training.progress(resolve_watch(svc, value))
    signature = (
        progress.state,
        progress.step,
        len(progress.log),
        len(progress.checkpoints),
        progress.error,
        progress.samples and progress.samples.stat().st_mtime_ns,
        progress.log_tail[-200:],
        progress.grids[-1][0] if progress.grids else None,
    )
    if signature == last:
        return (gr.skip(),) * POLL_OUTPUTS + (last,)
    rows = [[c["step"], c["created"], c["path"]] for c in progress.checkpoints]
    # A first or new checkpoint, or a state change: the run picker at the top lists the run's new step.
    moved = last is None or last[3] != signature[3] or last[0] != signature[0]
    picker_update = gr.update(choices=svc.run_choices()) if moved else gr.skip()
    samples, slider, note = _sample_outputs(progress, scrub_step)
    return (
        progress.summary(),
        _progress_html(progress),
        loss_figure(progress.log) if progress.log else None,
        samples,
        for_display(progress.reconstructions) if progress.reconstructions else None,
        rows,
        progress.log_tail,
        picker_update,
        slider,
        note,
        signature,
    )


def compare(svc: TrainServices, first, second):
    """The losses (and, when measured, CAS) of two runs on one figure, and a note on what it shows."""
    if not first or not second:
        raise gr.Error("Choose two runs to compare.")
    if first == second:
        raise gr.Error("Choose two different runs.")
    runs = []
    for value in (first, second):
        run_dir = resolve_watch(svc, value)
        runs.append((value, RunFolder(run_dir).log_records(), logged_cas(run_dir)))
    if not any(log for _, log, _ in runs):
        raise gr.Error("Neither run has logged a step yet.")
    measured = [name for name, _, cas in runs if cas]
    note = (
        f"CAS measured for {', '.join(measured)} (its evaluation, at the step it evaluated)."
        if measured
        else "No CAS yet: evaluate a run in the Evaluate tab and it shows here, at the step it scored."
    )
    return comparison_figure(runs), note


def refresh_watch_list(svc: TrainServices):
    choices = watch_choices(svc)
    return gr.update(choices=choices), gr.update(choices=choices), gr.update(choices=choices)


def fresh_watch_list(svc: TrainServices, current):
    """On page load: fresh choices (also the comparison's); keep the watched run, else watch the newest
    app run."""
    choices = watch_choices(svc)
    own = [value for label, value in choices if not label.endswith("(external)")]
    watched = current or (own[0] if own else None)
    return gr.update(choices=choices, value=watched), gr.update(choices=choices), gr.update(choices=choices)


# ------------------------------------------------------------------------------------------------ layout


def _dataset_column(default_data: str | None) -> SimpleNamespace:
    """1 · Dataset: the source, its folder / upload / note, and the check's report."""
    ui = SimpleNamespace()
    initial = SOURCES[1] if default_data else SOURCES[0]
    gr.Markdown("### 1 · Dataset")
    ui.source = gr.Radio(list(SOURCES), value=initial, label="Source", elem_id="train-source")
    ui.folder = gr.Textbox(
        value=default_data or "",
        label="Folder on the server",
        placeholder="/data/my_parts  (one subfolder per class)",
        visible=initial == SOURCES[1],
        elem_id="train-folder",
    )
    ui.upload = gr.File(
        label="Dataset .zip (one folder per class inside)",
        file_types=[".zip"],
        type="filepath",
        visible=initial == SOURCES[2],
        elem_id="train-upload",
    )
    ui.demo_note = gr.Markdown(
        "The built-in demo: photo-like renders of 10 kinds of 3D-printed vise parts, 200 per class "
        "(rendered once on first use, a few minutes on a CPU).",
        visible=initial == SOURCES[0],
        elem_id="train-demo-note",
    )
    ui.check = gr.Button("Check dataset", elem_id="train-check")
    ui.report = gr.Markdown(elem_id="train-report")
    ui.counts = gr.Dataframe(
        headers=["class", "images"],
        label="Images per class",
        interactive=False,
        visible=False,
        elem_id="train-counts",
    )
    return ui


def _advanced_options(ui: SimpleNamespace, initial: TrainOptions) -> None:
    """The Advanced accordion's fields, added to ``ui``."""
    with gr.Row():
        ui.width = gr.Dropdown(
            ["8", "16", "24", "32", "64"], value=str(initial.width), label="Model width (ngf)",
            info="ndf: the same, or the recipe's multiple of it",
            elem_id="train-width",
        )  # fmt: skip
        ui.z_dim = gr.Dropdown(
            ["16", "64", "128"], value=str(initial.z_dim), label="Latent size", elem_id="train-zdim"
        )
    with gr.Row():
        ui.lr = gr.Number(
            value=initial.lr, minimum=0, maximum=1, label="Learning rate (G and D)", elem_id="train-lr"
        )
        ui.test_fraction = gr.Slider(
            0.1, 0.5, value=initial.test_fraction, step=0.05, label="Held-out test share",
            elem_id="train-test-fraction",
        )  # fmt: skip
    with gr.Row():
        ui.sample_every = gr.Number(
            value=initial.sample_every, precision=0, **COUNT_BOUNDS, label="Samples every N steps",
            elem_id="train-sample-every",
        )  # fmt: skip
        ui.ckpt_every = gr.Number(
            value=initial.ckpt_every, precision=0, **COUNT_BOUNDS, label="Checkpoint every N steps",
            elem_id="train-ckpt-every",
        )  # fmt: skip
    ui.diffaug = gr.Textbox(value=initial.diffaug, label="DiffAugment policy", elem_id="train-diffaug")


def limits_note() -> str:
    """The limits a shared server (a Space) puts on trainings, in one line for the Train tab."""
    value = limits.value
    return (
        f"**Limits of this server:** at most {value('steps'):,} steps, a batch of {value('batch')}, "
        f"{value('resolution')} px, .zip uploads of {value('upload_mb'):g} MB and {value('trainings')} "
        "background job(s) at a time (set by GAN_STUDIO_MAX_* environment variables)."
    )


def _options_column(first_recipe: str) -> SimpleNamespace:
    """2 · Options: name, recipe and its plan, the training options, start / stop / resume."""
    ui = SimpleNamespace()
    initial = TrainOptions.from_recipe(first_recipe)
    gr.Markdown("### 2 · Options")
    if limits.space_profile():
        gr.Markdown(limits_note(), elem_id="train-limits")
    ui.name = gr.Textbox(value="my-run", label="Run name", elem_id="train-name")
    # Built as "custom", the API's start_training keeps its plain-run default; a page load
    # then picks the recipe for this machine (and fills the fields from it).
    ui.recipe = gr.Dropdown(
        [*builtin_recipes(), CUSTOM],
        value=CUSTOM,
        label="Recipe (a whole training: options, guide classifier, phases)",
        elem_id="train-recipe",
    )
    ui.recipe_plan = gr.Markdown(recipe_markdown(first_recipe), elem_id="train-recipe-plan")
    with gr.Row():
        ui.res = gr.Dropdown(
            [str(r) for r in RESOLUTIONS[:4]], value=str(initial.resolution), label="Resolution (px)",
            elem_id="train-res",
        )  # fmt: skip
        ui.steps = gr.Number(
            value=initial.steps, precision=0, **COUNT_BOUNDS, label="Steps", elem_id="train-steps"
        )
        ui.batch = gr.Number(
            value=initial.batch,
            precision=0,
            minimum=1,
            maximum=BATCH_MAX,
            label="Batch",
            elem_id="train-batch",
        )
    with gr.Accordion("Advanced", open=False):
        _advanced_options(ui, initial)
    with gr.Row():
        ui.start = gr.Button("Start training", variant="primary", elem_id="train-start")
        ui.stop = gr.Button("Stop", variant="stop", elem_id="train-stop")
    with gr.Row():
        ui.resume_steps = gr.Number(
            value=4000,
            precision=0,
            **COUNT_BOUNDS,
            label="Resume up to total steps",
            elem_id="train-resume-steps",
        )
        ui.resume = gr.Button("Resume", elem_id="train-resume")
    return ui


def _live_images(ui: SimpleNamespace) -> None:
    """The samples (with the slider over earlier grids) and D's reconstructions, added to ``ui``."""
    gr.Markdown("**Samples**: one row per class, the same latents at every step; drag to go back in time")
    ui.samples = gr.Image(
        label="Samples", show_label=False, type="filepath", format="png", interactive=False,
        elem_id="train-samples",
    )  # fmt: skip
    ui.grid_step = gr.Slider(
        0, 1, value=0, step=1, label="Sample grid at step", visible=False, elem_id="train-grid-step"
    )
    ui.grid_note = gr.Markdown(elem_id="train-grid-note")
    gr.Markdown("**Discriminator reconstructions** of real images (its self-supervision)")
    ui.recon = gr.Image(
        label="Discriminator reconstructions", show_label=False, type="filepath", format="png",
        interactive=False, elem_id="train-recon",
    )  # fmt: skip


def _compare_panel(ui: SimpleNamespace) -> None:
    """Two runs on one plot: their losses, and CAS where an evaluation measured it; added to ``ui``."""
    with gr.Accordion("Compare two runs", open=False, elem_id="train-compare-box"):
        with gr.Row(equal_height=True):
            ui.compare_a = gr.Dropdown([], label="Run", allow_custom_value=True, elem_id="train-compare-a")
            ui.compare_b = gr.Dropdown(
                [], label="Against", allow_custom_value=True, elem_id="train-compare-b"
            )
            ui.compare = gr.Button("Compare", elem_id="train-compare-run", scale=0, min_width=120)
        ui.compare_note = gr.Markdown(elem_id="train-compare-note")
        ui.compare_plot = gr.Plot(label="Two runs", show_label=False, elem_id="train-compare-plot")


def _live_panel() -> SimpleNamespace:
    """3 · Live: the watched run, its progress, losses, samples, reconstructions, checkpoints and log."""
    ui = SimpleNamespace()
    gr.Markdown("### 3 · Live")
    with gr.Row():
        ui.watch = gr.Dropdown(
            choices=[], value=None, label="Run", allow_custom_value=True, elem_id="train-watch", scale=4
        )
        ui.watch_refresh = gr.Button("↻", elem_id="train-watch-refresh", scale=0, min_width=48)
    ui.status = gr.Markdown("Start a run, or pick one to watch.", elem_id="train-status")
    ui.bar = gr.HTML(_progress_html(None), elem_id="train-progress")
    with gr.Row(equal_height=False):
        with gr.Column():
            gr.Markdown("**Losses** (top) and D's over-fitting signal r_t (bottom)")
            ui.losses = gr.Plot(label="Losses", show_label=False, elem_id="train-losses")
        with gr.Column():
            _live_images(ui)
    _compare_panel(ui)
    ui.ckpts = gr.Dataframe(
        headers=["step", "created", "path"],
        label="Checkpoints",
        interactive=False,
        elem_id="train-checkpoints",
    )
    with gr.Accordion("Log", open=False):
        ui.log = gr.Code(language=None, label="train.log", elem_id="train-log", interactive=False)
    return ui


# ------------------------------------------------------------------------------------------------ wiring


def _wire_live(svc: TrainServices, live, picker, seen) -> None:
    """The live panel: polling, the grid slider, the comparison and the run lists."""
    timer = gr.Timer(2.0)
    scrub = gr.State(None)  # the earlier grid's step the user went back to; None: follow the latest
    outputs = [live.status, live.bar, live.losses, live.samples, live.recon, live.ckpts, live.log, picker.run,
               live.grid_step, live.grid_note, seen]  # fmt: skip
    polled = handler(poll, svc)
    timer.tick(
        polled, [live.watch, seen, scrub], outputs, api_name=False, show_progress="hidden", queue=False
    )
    live.watch.change(
        polled, [live.watch, gr.State(None)], outputs, api_name="training_progress", show_progress="hidden"
    )
    live.watch.change(lambda: None, None, [scrub], api_name=False, queue=False)  # a new run: follow it
    live.grid_step.input(
        handler(show_grid, svc), [live.watch, live.grid_step], [live.samples, live.grid_note, scrub],
        api_name="sample_grid", show_progress="hidden", trigger_mode="always_last",
    )  # fmt: skip
    live.compare.click(
        handler(compare, svc), [live.compare_a, live.compare_b], [live.compare_plot, live.compare_note],
        api_name="compare_runs",
    )  # fmt: skip
    lists = [live.watch, live.compare_a, live.compare_b]
    refresh = partial(refresh_watch_list, svc)
    live.watch_refresh.click(refresh, None, lists, api_name="list_training_runs")
    picker.on_refresh(refresh, [], lists)
    picker.on_load(partial(fresh_watch_list, svc), [live.watch], lists)
    live.watch.change(lambda value: value, [live.watch], [live.compare_a], api_name=False, queue=False)


def _wire(svc: TrainServices, d, o, live, picker, first_recipe: str) -> None:
    """Connect the dataset (d), options (o) and live (live) components to the handlers."""
    seen = gr.State(None)  # what the last poll showed, to skip redrawing unchanged outputs
    d.check.click(clear_check, None, [d.report, d.counts], api_name=False, queue=False).then(
        handler(check, svc), [d.source, d.folder, d.upload], [d.report, d.counts], api_name="validate_dataset"
    )
    d.source.change(
        show_source, [d.source], [d.folder, d.upload, d.demo_note, d.report, d.counts], api_name=False,
        queue=False,
    )  # fmt: skip
    fields = [o.res, o.steps, o.batch, o.width, o.z_dim, o.lr, o.test_fraction, o.sample_every, o.ckpt_every,
              o.diffaug]  # fmt: skip
    o.start.click(
        handler(start, svc), [d.source, d.folder, d.upload, o.name, *fields, o.recipe], [live.watch, seen],
        api_name="start_training",
    )  # fmt: skip
    o.recipe.change(
        user_errors(fill_from_recipe), [o.recipe], [o.recipe_plan, *fields], api_name="choose_recipe"
    )
    o.stop.click(handler(stop, svc), [live.watch], [live.status], api_name="stop_training")
    o.resume.click(handler(resume, svc), [live.watch, o.resume_steps], [seen], api_name="resume_training")
    _wire_live(svc, live, picker, seen)
    picker.on_load(lambda: first_recipe, [], [o.recipe])


def build(studio, picker) -> None:
    first_recipe = default_recipe()
    with gr.Row(equal_height=False):
        with gr.Column(scale=4, elem_classes="gs-card"):
            dataset = _dataset_column(studio.default_data)
        with gr.Column(scale=4, elem_classes="gs-card"):
            options = _options_column(first_recipe)
    with gr.Column(elem_classes="gs-card"):
        live = _live_panel()
    _wire(TrainServices.of(studio, picker), dataset, options, live, picker, first_recipe)
