"""Train tab: pick and check a dataset, start / stop / resume a background run, watch it live."""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from gan_studio.app.common import PROGRESS, user_errors
from gan_studio.app.training_manager import (
    CUSTOM,
    DEMO,
    RESOLUTIONS,
    RunProgress,
    TrainOptions,
    default_recipe,
    loss_figure,
    stage_upload,
    validate_dataset,
)
from gan_studio.data import DatasetError
from gan_studio.registry import GENERATOR
from gan_studio.training.recipes import builtin_recipes, load_recipe

SOURCES = ("Built-in demo (vise parts)", "Folder on the server", "Upload a .zip")


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


def build(studio, picker) -> None:
    def resolve_source(kind: str, folder: str, upload) -> str:
        if kind == SOURCES[0]:
            return DEMO
        if kind == SOURCES[1]:
            if not folder or not folder.strip():
                raise DatasetError(
                    "Type the path of a folder on the server that holds one subfolder per class."
                )
            return str(studio.check_server_folder(Path(folder.strip())))
        if upload is None:
            raise DatasetError("Upload a .zip of your dataset first (one folder per class inside).")
        return str(stage_upload(upload, studio.path("uploads")))

    def watch_choices() -> list[tuple[str, str]]:
        studio.training.recover_runs()  # killed trainers' leftovers; "running" without a trainer: interrupted
        names = sorted(
            (p.name for p in studio.runs_dir.iterdir() if p.is_dir() and not p.name.startswith(".")),
            key=lambda n: (studio.runs_dir / n).stat().st_mtime,
            reverse=True,
        )
        choices = [(name, name) for name in names]
        own = {str((studio.runs_dir / n).resolve()) for n in names}
        for entry in studio.registry.generators():
            if entry.source == "run" and str(Path(entry.run_dir).resolve()) not in own:
                choices.append((f"{entry.id} (external)", entry.id))
        return choices

    def resolve_watch(value: str | None) -> Path:
        """A run folder from a watch-list value: an app run's name, or a registry run id; nothing else."""
        if not value:
            raise gr.Error("Choose a run to watch (or start one).")
        candidate = studio.runs_dir / value
        if "/" not in value and "\\" not in value and not value.startswith(".") and candidate.is_dir():
            return candidate
        entry = studio.registry.get(GENERATOR, value)
        if entry.source != "run":
            raise gr.Error(f"'{value}' is a packaged generator, not a training run.")
        return Path(entry.run_dir)

    with gr.Row(equal_height=False):
        with gr.Column(scale=4, elem_classes="gs-card"):
            gr.Markdown("### 1 · Dataset")
            source = gr.Radio(
                list(SOURCES),
                value=SOURCES[1] if studio.default_data else SOURCES[0],
                label="Source",
                elem_id="train-source",
            )
            initial = SOURCES[1] if studio.default_data else SOURCES[0]
            folder = gr.Textbox(
                value=studio.default_data or "",
                label="Folder on the server",
                placeholder="/data/my_parts  (one subfolder per class)",
                visible=initial == SOURCES[1],
                elem_id="train-folder",
            )
            upload = gr.File(
                label="Dataset .zip (one folder per class inside)",
                file_types=[".zip"],
                type="filepath",
                visible=initial == SOURCES[2],
                elem_id="train-upload",
            )
            demo_note = gr.Markdown(
                "The built-in demo: photo-like renders of 10 kinds of 3D-printed vise parts, 200 per class "
                "(rendered once on first use, a few minutes on a CPU).",
                visible=initial == SOURCES[0],
                elem_id="train-demo-note",
            )
            check_btn = gr.Button("Check dataset", elem_id="train-check")
            report_md = gr.Markdown(elem_id="train-report")
            counts_df = gr.Dataframe(
                headers=["class", "images"],
                label="Images per class",
                interactive=False,
                visible=False,
                elem_id="train-counts",
            )
        with gr.Column(scale=4, elem_classes="gs-card"):
            gr.Markdown("### 2 · Options")
            name = gr.Textbox(value="my-run", label="Run name", elem_id="train-name")
            first_recipe = default_recipe()
            initial_options = TrainOptions.from_recipe(first_recipe)
            # Built as "custom", the API's start_training keeps its plain-run default; a page load
            # then picks the recipe for this machine (and fills the fields from it).
            recipe = gr.Dropdown(
                [*builtin_recipes(), CUSTOM],
                value=CUSTOM,
                label="Recipe (a whole training: options, guide classifier, phases)",
                elem_id="train-recipe",
            )
            recipe_plan = gr.Markdown(recipe_markdown(first_recipe), elem_id="train-recipe-plan")
            with gr.Row():
                res = gr.Dropdown(
                    [str(r) for r in RESOLUTIONS[:4]],
                    value=str(initial_options.resolution),
                    label="Resolution (px)",
                    elem_id="train-res",
                )
                steps = gr.Number(
                    value=initial_options.steps, precision=0, minimum=1, label="Steps", elem_id="train-steps"
                )
                batch = gr.Number(
                    value=initial_options.batch, precision=0, minimum=1, label="Batch", elem_id="train-batch"
                )
            with gr.Accordion("Advanced", open=False):
                with gr.Row():
                    width = gr.Dropdown(
                        ["8", "16", "24", "32", "64"],
                        value=str(initial_options.width),
                        label="Model width (ngf = ndf)",
                        elem_id="train-width",
                    )
                    z_dim = gr.Dropdown(
                        ["16", "64", "128"],
                        value=str(initial_options.z_dim),
                        label="Latent size",
                        elem_id="train-zdim",
                    )
                with gr.Row():
                    lr = gr.Number(
                        value=initial_options.lr, label="Learning rate (G and D)", elem_id="train-lr"
                    )
                    test_fraction = gr.Slider(
                        0.1,
                        0.5,
                        value=initial_options.test_fraction,
                        step=0.05,
                        label="Held-out test share",
                        elem_id="train-test-fraction",
                    )
                with gr.Row():
                    sample_every = gr.Number(
                        value=initial_options.sample_every,
                        precision=0,
                        minimum=1,
                        label="Samples every N steps",
                        elem_id="train-sample-every",
                    )
                    ckpt_every = gr.Number(
                        value=initial_options.ckpt_every,
                        precision=0,
                        minimum=1,
                        label="Checkpoint every N steps",
                        elem_id="train-ckpt-every",
                    )
                diffaug = gr.Textbox(
                    value=initial_options.diffaug, label="DiffAugment policy", elem_id="train-diffaug"
                )
            with gr.Row():
                start_btn = gr.Button("Start training", variant="primary", elem_id="train-start")
                stop_btn = gr.Button("Stop", variant="stop", elem_id="train-stop")
            with gr.Row():
                resume_steps = gr.Number(
                    value=4000,
                    precision=0,
                    minimum=1,
                    label="Resume up to total steps",
                    elem_id="train-resume-steps",
                )
                resume_btn = gr.Button("Resume", elem_id="train-resume")

    with gr.Column(elem_classes="gs-card"):
        gr.Markdown("### 3 · Live")
        with gr.Row():
            watch = gr.Dropdown(
                choices=[],
                value=None,
                label="Run",
                allow_custom_value=True,
                elem_id="train-watch",
                scale=4,
            )
            watch_refresh = gr.Button("↻", elem_id="train-watch-refresh", scale=0, min_width=48)
        status_md = gr.Markdown("Start a run, or pick one to watch.", elem_id="train-status")
        bar = gr.HTML(_progress_html(None), elem_id="train-progress")
        with gr.Row(equal_height=False):
            with gr.Column():
                gr.Markdown("**Losses** (top) and D's over-fitting signal r_t (bottom)")
                losses = gr.Plot(label="Losses", show_label=False, elem_id="train-losses")
            with gr.Column():
                gr.Markdown("**Latest samples**: one row per class, the same latents at every step")
                samples = gr.Image(
                    label="Latest samples",
                    show_label=False,
                    type="filepath",
                    interactive=False,
                    elem_id="train-samples",
                )
                gr.Markdown("**Discriminator reconstructions** of real images (its self-supervision)")
                recon = gr.Image(
                    label="Discriminator reconstructions",
                    show_label=False,
                    type="filepath",
                    interactive=False,
                    elem_id="train-recon",
                )
        ckpts = gr.Dataframe(
            headers=["step", "created", "path"],
            label="Checkpoints",
            interactive=False,
            elem_id="train-checkpoints",
        )
        with gr.Accordion("Log", open=False):
            log = gr.Code(language=None, label="train.log", elem_id="train-log", interactive=False)
    timer = gr.Timer(2.0)
    seen = gr.State(None)  # what the last poll showed, to skip redrawing unchanged outputs

    @user_errors
    def check(kind, folder_value, upload_value, progress=PROGRESS):
        progress(0.1, desc="checking every image")
        root, report = validate_dataset(resolve_source(kind, folder_value, upload_value), progress=False)
        lines = [f"**{len(report.class_names)} classes · {report.num_images} usable images** in `{root}`"]
        if report.skipped:
            lines.append(f"\n**Skipped {len(report.skipped)} file(s):**")
            lines += [f"- `{path}`: {reason}" for path, reason in report.skipped[:20]]
        if report.converted:
            lines.append(f"\n**Converted {len(report.converted)} file(s):**")
            lines += [f"- `{path}`: {what}" for path, what in report.converted[:20]]
        rows = [[name, report.counts.get(name, 0)] for name in report.class_names]
        return "\n".join(lines), gr.update(value=rows, visible=True)

    check_btn.click(check, [source, folder, upload], [report_md, counts_df], api_name="validate_dataset")
    source.change(
        lambda kind: (
            gr.update(visible=kind == SOURCES[1]),
            gr.update(visible=kind == SOURCES[2]),
            gr.update(visible=kind == SOURCES[0]),
        ),
        [source],
        [folder, upload, demo_note],
        api_name=False,
        queue=False,
    )

    @user_errors
    def start(
        kind,
        folder_value,
        upload_value,
        run_name,
        res_v,
        steps_v,
        batch_v,
        width_v,
        z_v,
        lr_v,
        tf_v,
        se_v,
        ce_v,
        da_v,
        recipe_v=CUSTOM,
        progress=PROGRESS,
    ):
        data = resolve_source(kind, folder_value, upload_value)
        progress(0.1, desc="checking every image")
        root, _ = validate_dataset(data, progress=False)  # fail here with the report's message, not in a log
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
        options.cli_args()  # a bad combination fails here, before a run folder is made
        run_dir = studio.training.start(data if data == DEMO else str(root), run_name, options)
        gr.Info(f"Training '{run_dir.name}' started in the background.")
        return gr.update(choices=watch_choices(), value=run_dir.name), None

    start_btn.click(
        start,
        [
            source,
            folder,
            upload,
            name,
            res,
            steps,
            batch,
            width,
            z_dim,
            lr,
            test_fraction,
            sample_every,
            ckpt_every,
            diffaug,
            recipe,
        ],
        [watch, seen],
        api_name="start_training",
    )

    def fill_from_recipe(value):
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

    recipe.change(
        user_errors(fill_from_recipe),
        [recipe],
        [recipe_plan, res, steps, batch, width, z_dim, lr, test_fraction, sample_every, ckpt_every, diffaug],
        api_name="choose_recipe",
    )

    @user_errors
    def stop(value):
        run_dir = resolve_watch(value)
        if not studio.training.stop(run_dir):
            raise gr.Error(f"'{run_dir.name}' is not being trained by this app right now.")
        gr.Info(f"Stopping '{run_dir.name}': it saves a checkpoint first (resume any time).")
        return f"Stopping **{run_dir.name}** — saving a checkpoint…"

    stop_btn.click(stop, [watch], [status_md], api_name="stop_training")

    @user_errors
    def resume(value, total_steps):
        run_dir = resolve_watch(value)
        studio.training.resume(run_dir, int(total_steps))
        gr.Info(f"Resuming '{run_dir.name}' up to step {int(total_steps)}.")
        return None

    resume_btn.click(resume, [watch, resume_steps], [seen], api_name="resume_training")

    @user_errors
    def poll(value, last):
        if not value:
            return (gr.skip(),) * 8 + (last,)
        progress = studio.training.progress(resolve_watch(value))
        signature = (
            progress.state,
            progress.step,
            len(progress.log),
            len(progress.checkpoints),
            progress.error,
            progress.samples and progress.samples.stat().st_mtime_ns,
            progress.log_tail[-200:],
        )
        if signature == last:
            return (gr.skip(),) * 8 + (last,)
        rows = [[c["step"], c["created"], c["path"]] for c in progress.checkpoints]
        # A first or new checkpoint, or a state change: the run picker at the top lists the run's new step.
        moved = last is None or last[3] != signature[3] or last[0] != signature[0]
        picker_update = gr.update(choices=picker.run_choices()) if moved else gr.skip()
        return (
            progress.summary(),
            _progress_html(progress),
            loss_figure(progress.log) if progress.log else None,
            str(progress.samples) if progress.samples else None,
            str(progress.reconstructions) if progress.reconstructions else None,
            rows,
            progress.log_tail,
            picker_update,
            signature,
        )

    outputs = [status_md, bar, losses, samples, recon, ckpts, log, picker.run, seen]
    timer.tick(poll, [watch, seen], outputs, api_name=False, show_progress="hidden", queue=False)
    watch.change(poll, [watch, gr.State(None)], outputs, api_name="training_progress", show_progress="hidden")
    watch_refresh.click(
        lambda: gr.update(choices=watch_choices()), None, [watch], api_name="list_training_runs"
    )
    picker.on_refresh(lambda: gr.update(choices=watch_choices()), [], [watch])

    def fresh_watch_list(current):
        choices = watch_choices()
        own = [value for label, value in choices if not label.endswith("(external)")]
        return gr.update(choices=choices, value=current or (own[0] if own else None))

    picker.on_load(fresh_watch_list, [watch], [watch])
    picker.on_load(lambda: first_recipe, [], [recipe])
