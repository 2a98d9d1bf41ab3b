"""Evaluate tab: train an evaluator, run the metrics, the augmentation bench and the study in the background.

The layout functions build the components into a namespace; ``_wire`` connects their events; the handlers
are module-level functions given ``EvalServices`` (the background evaluation jobs, the registry and the real
images), not the whole app.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import gradio as gr

from gan_studio.app.common import COUNT_BOUNDS, SEED_BOUNDS, handler, require_evaluator, require_generator
from gan_studio.app.evaluation_jobs import (
    HISTORY_HEADERS,
    EvaluationService,
    available_commands,
    history_choices,
    history_rows,
    job_status,
    overview_rows,
    per_class_rows,
    read_metrics,
)
from gan_studio.app.real_data import RealDataCache, real_grid
from gan_studio.app.registry import ModelRegistry
from gan_studio.evaluation.augment_bench.arms import ARM_KINDS
from gan_studio.metrics import list_metrics
from gan_studio.metrics.candidates import FILTERS, FilterRule
from gan_studio.models.classifier import ARCHITECTURES
from gan_studio.utils.numbers import MAX_COUNT

# The command line's ranges (evaluate --n-per-class, augment-bench / study --seeds, study --budget-hours).
N_PER_CLASS_MAX, SEEDS_MAX, BUDGET_HOURS_MAX = 100_000, 1000, 10_000.0
JOB_KINDS = ("train-evaluator", "evaluate", "augment-bench", "study")
_FILTER_RULE = f"confidence ≥ {FilterRule().confidence:g}, novelty ≥ {FilterRule().novelty:g}"
SAMPLE_CHOICES = [("every sample", "none"), (f"kept by the filter: {_FILTER_RULE}", "confidence+novelty")]
LIKENESS = "c2st_photo_likeness.png"  # evaluate's grid of the samples c2st found most / least photo-like
EXPORT_CHOICE = "export:"  # + an export's file name: its generated images (evaluate --images)
NOT_BY_DEFAULT = ("inception_fid", "c2st")  # offered, unticked: no weights offline; minutes of training
RESULT_OUTPUTS = (  # overview, per class, samples, pairs, c2st likeness, bench text and plot,
    11  # report file and path, study x2
)
HISTORY_OUTPUTS = 2  # the history table and the picker of the evaluation shown
BUTTONS = (  # (the button's name in the layout, job kind, API name)
    ("train", "train-evaluator", "train_evaluator"),
    ("run", "evaluate", "evaluate"),
    ("bench_btn", "augment-bench", "augment_bench"),
    ("study", "study", "study"),
)


@dataclass(frozen=True)
class EvalServices:
    """What the Evaluate tab's handlers use: the background jobs, the models, the real images."""

    jobs: EvaluationService
    registry: ModelRegistry  # require_generator / require_evaluator look models up here
    real_data: RealDataCache
    real_dir: Callable[[], Path]  # where the real-image grids go

    @classmethod
    def of(cls, studio) -> EvalServices:
        return cls(
            jobs=EvaluationService(studio.jobs, studio.workdir, studio.default_data, studio.path("exports")),
            registry=studio.registry,
            real_data=studio.real_data,
            real_dir=lambda: studio.path("real"),
        )


def _bar(fraction: float | None, state: str) -> str:
    width = 100 * (fraction if fraction is not None else (1.0 if state == "finished" else 0.0))
    return (
        f'<div class="gs-progress" data-state="{state}"><div class="gs-progress-bar" style="width:{width:.1f}%">'
        "</div></div>"
    )


def _bench_results(folder: Path):
    """(summary markdown, accuracy figure) the augmentation experiment left in ``folder``, if any."""
    results = folder / "results.json"
    summary = folder / "summary.md"
    if not results.is_file():
        return "", None
    from gan_studio.evaluation.augment_bench.report import accuracy_figure, summarize

    doc = json.loads(results.read_text(encoding="utf-8"))
    rows = summarize(doc.get("results", []))
    figure = (
        accuracy_figure(rows, "Classifier accuracy on the real test split vs synthetic data")
        if rows
        else None
    )
    return (summary.read_text(encoding="utf-8") if summary.is_file() else ""), figure


def _study_results(folder: Path):
    """(report markdown, forest plot of the paired comparisons) of the study in ``folder``, if any."""
    results = folder / "results.json"
    if not results.is_file():
        return (
            "No study yet: press **Run study** (4), or run `python -m gan_studio study` for this model.",
            None,
        )
    from gan_studio.study.report import REPORT_MD, differences_figure

    doc = json.loads(results.read_text(encoding="utf-8"))
    comparisons = doc.get("comparisons", [])
    figure = differences_figure(comparisons, "Paired differences with 95% intervals") if comparisons else None
    report = folder / REPORT_MD
    text = report.read_text(encoding="utf-8") if report.is_file() else ""
    return f"Study folder: `{folder}`\n\n{text}", figure


# ---------------------------------------------------------------------------------------------- handlers


def _no_results(message: str, bench=("", None), study=("", None)) -> tuple:
    """The results' outputs with no metrics: empty tables and images, the bench and study if any."""
    return (
        [], gr.update(value=[], headers=["class"]), None, None, None, *bench, None, message, *study,
    )  # fmt: skip


def _shown(evaluations: list, evaluation_id: str | None, entry) -> str:
    """Which evaluation the tables show and what it was computed on, above them."""
    number, chosen = next(
        ((i, e) for i, e in enumerate(evaluations, start=1) if e.id == evaluation_id),
        (len(evaluations), evaluations[-1]),
    )
    others = (
        f" {len(evaluations)} evaluations are kept (the table above); a figure from another one was computed "
        "on other images: coverage and recall grow with the images per class."
        if len(evaluations) > 1
        else ""
    )
    return (
        f"**Evaluation #{number}** of {chosen.when}, computed on: {chosen.computed_on(len(entry.class_names))}."
        f"{others}"
    )


def results(svc: EvalServices, run_id, evaluation_id=None):
    """The metrics, sample grids and report of one evaluation of the picked run (its newest unless
    ``evaluation_id`` names another), and its augmentation experiment and study."""
    if not run_id:
        return _no_results("Pick a run at the top.")
    entry = require_generator(svc, run_id)
    evaluations = svc.jobs.history(entry)
    bench = _bench_results(svc.jobs.bench_dir(entry))
    study = _study_results(svc.jobs.study_dir(entry))
    chosen = next((e for e in evaluations if e.id == evaluation_id), evaluations[-1] if evaluations else None)
    metrics = read_metrics(chosen.folder) if chosen is not None else None
    if metrics is None:
        message = "No evaluation yet: train an evaluator (1), then press **Run evaluation** (2)."
        return _no_results(message, bench, study)
    folder = chosen.folder
    headers, rows = per_class_rows(metrics, list(entry.class_names))
    report = folder / "report.md"
    saved = f"Saved report: `{report}`" if report.is_file() else f"Saved metrics: `{folder / 'metrics.json'}`"
    return (
        overview_rows(metrics),
        gr.update(value=rows, headers=headers),
        str(folder / "samples.png") if (folder / "samples.png").is_file() else None,
        str(folder / "memorization_pairs.png") if (folder / "memorization_pairs.png").is_file() else None,
        str(folder / LIKENESS) if (folder / LIKENESS).is_file() else None,
        *bench,
        str(report) if report.is_file() else None,
        f"{_shown(evaluations, chosen.id, entry)}\n\n{saved}",
        *study,
    )


def listed(svc: EvalServices, run_id):
    """The picked run's evaluations, newest first, and the picker of the one shown (the newest)."""
    if not run_id:
        return gr.update(value=[], headers=HISTORY_HEADERS), gr.update(choices=[], value=None)
    entry = require_generator(svc, run_id)
    evaluations = svc.jobs.history(entry)
    choices = history_choices(evaluations)
    return (
        gr.update(value=history_rows(evaluations, entry), headers=HISTORY_HEADERS),
        gr.update(choices=choices, value=choices[0][1] if choices else None),
    )


def start(
    svc: EvalServices, kind, run_id, evaluator_id, arch_v, steps_v, n_v, seed_v, metric_v, arms_v, ratios_v,
    bseeds, bsteps, study_n=0, study_s=3, study_h=0, filter_v="none",
):  # fmt: skip
    """Start this run's job of ``kind`` in the background; returns the status line and the kind to watch."""
    entry = require_generator(svc, run_id)
    if kind == "study":
        job = svc.jobs.study(
            entry, train_per_class=int(study_n or 0), seeds=int(study_s or 3),
            budget_hours=float(study_h or 0) or None,
        )  # fmt: skip
    elif kind == "train-evaluator":
        job = svc.jobs.train_evaluator(entry, steps=int(steps_v), arch=arch_v)
    elif kind == "evaluate":
        if not metric_v:
            raise gr.Error("Tick at least one metric.")
        evaluator = require_evaluator(svc, evaluator_id, entry)
        export = filter_v[len(EXPORT_CHOICE) :] if str(filter_v or "").startswith(EXPORT_CHOICE) else None
        job = svc.jobs.evaluate(
            entry, evaluator, n_per_class=int(n_v), seed=int(seed_v), metrics=list(metric_v),
            filter=filter_v if filter_v in FILTERS else "none", export=export,
        )  # fmt: skip
    else:
        filtered = "real+syn_filtered" in (arms_v or [])
        evaluator = require_evaluator(svc, evaluator_id, entry) if filtered else None
        job = svc.jobs.augment_bench(
            entry, evaluator, arms=list(arms_v or []), ratios=ratios_v, seeds=int(bseeds), steps=int(bsteps)
        )
    gr.Info(f"{kind} started for '{entry.id}' (process {job.pid}).")
    return f"{kind}: **running** · starting", kind


def poll(svc: EvalServices, run_id, kind, last):
    """The watched job's status (its stage and ETA), bar and log; the results and the history once it
    finishes. Skips every output when nothing changed, so nothing redraws for nothing."""
    unchanged = (gr.skip(),) * (3 + RESULT_OUTPUTS + HISTORY_OUTPUTS) + (last,)
    if not run_id or not kind:
        return unchanged
    entry = require_generator(svc, run_id)
    job = svc.jobs.job(kind, entry)
    state = job_status(job)
    summary = f"{kind}: {state.summary()}"
    signature = (run_id, kind, state.state, summary, state.log_tail[-300:], job.pid if job else None)
    if signature == last:
        return unchanged
    if state.state == "failed":
        errors = [line for line in state.log_tail.splitlines() if line.startswith("error:")]
        summary += "\n\n" + (errors[-1] if errors else "See the log for what went wrong.")
    # Finished since the last poll: this job was running then, or it is another job (a short one ends
    # between two polls).
    finished = state.state == "finished" and (
        last is None or last[2] != "finished" or last[5] != signature[5]
    )
    skip = (gr.skip(),) * (RESULT_OUTPUTS + HISTORY_OUTPUTS)
    fresh = (*results(svc, run_id), *listed(svc, run_id)) if finished else skip
    if finished and kind == "train-evaluator":
        gr.Info("The evaluator is ready: pick it at the top of the page (↻ Refresh lists it).")
    return (summary, _bar(state.fraction, state.state), state.log_tail, *fresh, signature)


def image_sources(svc: EvalServices, run_id, current=None):
    """The "Generated images" choices: the model's samples (all, or the filter's) and its Curate exports,
    newest first; the current choice is kept while it is still there."""
    exports = svc.jobs.exports(require_generator(svc, run_id)) if run_id else []
    choices = SAMPLE_CHOICES + [(e.label, EXPORT_CHOICE + e.path.name) for e in exports]
    values = [value for _, value in choices]
    return gr.update(choices=choices, value=current if current in values else "none")


def show_real(svc: EvalServices, run_id, samples_shown):
    """Real train images beside the samples, whenever samples are shown."""
    if not run_id or not samples_shown:
        return None, ""
    entry = require_generator(svc, run_id)
    return real_grid(svc.real_data, entry, svc.real_dir())


def job_state(svc: EvalServices, run_id, kind):
    """API: the state of this run's job of ``kind`` (train-evaluator, evaluate, augment-bench)."""
    if kind not in JOB_KINDS:
        raise gr.Error(f"Unknown job kind '{kind}'; use one of {', '.join(JOB_KINDS)}.")
    state = job_status(svc.jobs.job(kind, require_generator(svc, run_id)))
    return {
        "state": state.state,
        "fraction": state.fraction,
        "description": state.description,
        "stage": state.stage,
        "summary": state.summary(),
        "log": state.log_tail,
    }


# ------------------------------------------------------------------------------------------------ layout


def _results_tabs(ui: SimpleNamespace) -> None:
    """The results, added to ``ui``: metrics (real train images beside the samples), experiment, study."""
    with gr.Tabs():
        with gr.Tab("Metrics", elem_id="eval-tab-metrics"):
            ui.history = gr.Dataframe(
                headers=HISTORY_HEADERS, label="Evaluations of this model, newest first (each one is kept)",
                interactive=False, wrap=True, elem_id="eval-history",
                column_widths=["4%", "15%", "7%", "13%", "7%", "7%", "8%", "8%", "8%", "12%", "11%"],
            )  # fmt: skip
            ui.pick = gr.Dropdown(
                [], label="Evaluation shown below", elem_id="eval-history-pick", interactive=True
            )
            ui.report_path = gr.Markdown(elem_id="eval-report-path")
            ui.overview = gr.Dataframe(
                headers=["metric", "value", "real reference", "notes"], label="Overview", interactive=False,
                wrap=True, column_widths=["34%", "11%", "13%", "42%"], elem_id="eval-overview",
            )  # fmt: skip
            ui.per_class = gr.Dataframe(
                headers=["class"], label="Per class", interactive=False, elem_id="eval-per-class"
            )
            with gr.Row(equal_height=True):  # one layout, one size: real beside generated
                ui.real = gr.Image(
                    label="Real train images (8 per class)", type="filepath", interactive=False,
                    elem_id="eval-real",
                )  # fmt: skip
                ui.samples = gr.Image(
                    label="Samples used (generated)",
                    type="filepath",
                    interactive=False,
                    elem_id="eval-samples",
                )
            ui.real_note = gr.Markdown(elem_id="eval-real-note")
            ui.pairs = gr.Image(
                label="Closest to a training image (generated | nearest real)", type="filepath",
                interactive=False, elem_id="eval-pairs",
            )  # fmt: skip
            ui.likeness = gr.Image(
                label="c2st: real | the samples it found most photo-like | least photo-like (per class)",
                type="filepath", interactive=False, elem_id="eval-c2st-likeness",
            )  # fmt: skip
            ui.report_file = gr.File(label="Report (markdown)", elem_id="eval-report")
        with gr.Tab("Augmentation experiment", elem_id="eval-tab-bench"):
            ui.bench_plot = gr.Plot(label="Test accuracy by arm", elem_id="eval-bench-plot")
            ui.bench = gr.Markdown(elem_id="eval-bench-results")
        with gr.Tab("Study", elem_id="eval-tab-study"):
            ui.study_plot = gr.Plot(label="Does it help? Paired differences", elem_id="eval-study-plot")
            ui.study_report = gr.Markdown(elem_id="eval-study-report")


def _evaluator_and_metrics(ui: SimpleNamespace) -> None:
    """1 · Evaluator and 2 · Metrics, added to ``ui``."""
    metric_names = list_metrics()
    gr.Markdown("### 1 · Evaluator")
    gr.Markdown(
        "A classifier trained on the run's real *train* split; every metric is measured in its features."
    )
    with gr.Row():
        # Twice the steps' width: the longest name, mobilenet_v3_small, shows in full beside the arrow.
        ui.arch = gr.Dropdown(
            list(ARCHITECTURES), value=ARCHITECTURES[0], label="Architecture", elem_id="eval-arch", scale=2
        )
        ui.eval_steps = gr.Number(
            value=1000, precision=0, **COUNT_BOUNDS, label="Steps", elem_id="eval-train-steps", min_width=100
        )
    ui.train = gr.Button("Train evaluator", elem_id="eval-train")
    gr.Markdown("### 2 · Metrics")
    with gr.Row():
        ui.n_per_class = gr.Number(
            value=50,
            precision=0,
            minimum=2,
            maximum=N_PER_CLASS_MAX,
            label="Generated per class",
            elem_id="eval-n",
        )
        ui.seed = gr.Number(value=0, precision=0, **SEED_BOUNDS, label="First seed", elem_id="eval-seed")
    ui.filter = gr.Dropdown(
        SAMPLE_CHOICES,
        value="none",
        label="Generated images",
        info="the model's samples, all or those the study's filter keeps (Curate's thresholds start lower; "
        "CAS then measures the filter too), or a Curate export of it as saved: does the set you would add "
        "pass for your photos (c2st)?",
        elem_id="eval-filter",
    )
    ui.metrics = gr.CheckboxGroup(
        metric_names,
        # inception_fid needs weights that cannot be downloaded; c2st trains two classifiers
        value=[m for m in metric_names if m not in NOT_BY_DEFAULT],
        label="Metrics",
        info="c2st (can a fresh classifier tell samples from real photos?) trains two classifiers "
        "from scratch, 300 steps each: about 5.5 minutes more at 64 px on a busy 2-core CPU.",
        elem_id="eval-metrics",
    )
    ui.run = gr.Button("Run evaluation", variant="primary", elem_id="eval-run")


def _bench_and_study(ui: SimpleNamespace) -> None:
    """3 · Augmentation experiment and 4 · Study, added to ``ui``."""
    bench_available = "augment-bench" in available_commands()
    gr.Markdown("### 3 · Augmentation experiment")
    gr.Markdown("Does synthetic data help? One classifier per arm, same budget, scored on real test images.")
    ui.arms = gr.CheckboxGroup(
        list(ARM_KINDS), value=["real", "real+syn"], label="Arms", elem_id="bench-arms"
    )
    with gr.Row():
        ui.ratios = gr.Textbox(value="0.5,1.0", label="Synthetic per real image", elem_id="bench-ratios")
        ui.bench_seeds = gr.Number(
            value=1, precision=0, minimum=1, maximum=SEEDS_MAX, label="Seeds", elem_id="bench-seeds"
        )
        ui.bench_steps = gr.Number(
            value=300, precision=0, **COUNT_BOUNDS, label="Steps", elem_id="bench-steps"
        )
    ui.bench_btn = gr.Button(
        "Run augmentation experiment" if bench_available else "Augmentation experiment (not in this version)",
        interactive=bench_available,
        elem_id="eval-bench",
    )
    gr.Markdown("### 4 · Study")
    gr.Markdown(
        "The full answer: every arm (real, classic, synthetic at +20-200%, filtered, and the levers) "
        "trains until its validation accuracy stops improving, for several seeds; the report pairs "
        "each arm with its baseline and gives a 95% interval and a verdict. Hours on a CPU: set a budget."
    )
    with gr.Row():
        ui.study_per_class = gr.Number(
            value=0,
            precision=0,
            minimum=0,
            maximum=MAX_COUNT,
            label="Real images per class (0: all)",
            elem_id="study-per-class",
        )
        ui.study_seeds = gr.Number(
            value=3, precision=0, minimum=1, maximum=SEEDS_MAX, label="Seeds", elem_id="study-seeds"
        )
        ui.study_budget = gr.Number(
            value=2.0,
            minimum=0,
            maximum=BUDGET_HOURS_MAX,
            label="Budget (hours, 0: none)",
            elem_id="study-budget",
        )
    ui.study = gr.Button("Run study", elem_id="eval-study")


def _layout() -> SimpleNamespace:
    """The controls (left) and the job status, log and results (right)."""
    ui = SimpleNamespace()
    with gr.Row(equal_height=False):
        with gr.Column(scale=3, elem_classes="gs-card"):
            _evaluator_and_metrics(ui)
            _bench_and_study(ui)
        with gr.Column(scale=7, elem_classes="gs-card"):
            with gr.Row():
                ui.status = gr.Markdown("No job running.", elem_id="eval-status")
                ui.refresh = gr.Button(
                    "Show saved results", elem_id="eval-refresh", size="sm", scale=0, min_width=160
                )
            ui.bar = gr.HTML(_bar(None, "idle"), elem_id="eval-progress")
            with gr.Accordion("Log", open=False):
                ui.log = gr.Code(language=None, interactive=False, elem_id="eval-log")
            _results_tabs(ui)
    return ui


# ------------------------------------------------------------------------------------------------ wiring


def _starter(start_job: Callable, kind: str) -> Callable:
    return lambda *args: start_job(kind, *args)


def _wire(svc: EvalServices, ui: SimpleNamespace, picker) -> None:
    timer = gr.Timer(2.0)
    watching = gr.State(None)  # per session: the job kind this session started last
    shown = handler(results, svc)
    result_outputs = [
        ui.overview, ui.per_class, ui.samples, ui.pairs, ui.likeness, ui.bench, ui.bench_plot, ui.report_file,
        ui.report_path, ui.study_report, ui.study_plot,
    ]  # fmt: skip
    inputs = [
        picker.run, picker.evaluator, ui.arch, ui.eval_steps, ui.n_per_class, ui.seed, ui.metrics, ui.arms,
        ui.ratios, ui.bench_seeds, ui.bench_steps, ui.study_per_class, ui.study_seeds, ui.study_budget,
        ui.filter,
    ]  # fmt: skip
    history_outputs, list_history = [ui.history, ui.pick], handler(listed, svc)
    start_job = handler(start, svc)
    for button, kind, api in BUTTONS:  # no progress overlay: the status line says what runs
        getattr(ui, button).click(
            _starter(start_job, kind), inputs, [ui.status, watching], api_name=api, show_progress="hidden"
        )
    seen = gr.State(None)  # what the last poll showed, to skip redrawing unchanged outputs
    timer.tick(
        handler(poll, svc), [picker.run, watching, seen],
        [ui.status, ui.bar, ui.log, *result_outputs, *history_outputs, seen], api_name=False,
        show_progress="hidden",
    )  # fmt: skip
    ui.refresh.click(shown, [picker.run], result_outputs, api_name="evaluation_results").then(
        list_history, [picker.run], history_outputs, api_name="evaluation_history"
    )
    ui.pick.input(shown, [picker.run, ui.pick], result_outputs, api_name=False)
    ui.samples.change(
        handler(show_real, svc), [picker.run, ui.samples], [ui.real, ui.real_note], api_name=False
    )
    picker.run.change(shown, [picker.run], result_outputs, api_name=False).then(
        list_history, [picker.run], history_outputs, api_name=False
    )
    sources = handler(image_sources, svc)
    picker.run.change(sources, [picker.run], [ui.filter], api_name=False)
    # An export made in Curate since: listed when the user opens the list.
    ui.filter.focus(sources, [picker.run, ui.filter], [ui.filter], api_name="evaluation_sources")
    api_kind, api_out = gr.Textbox(visible=False), gr.JSON(visible=False)
    api_kind.submit(handler(job_state, svc), [picker.run, api_kind], [api_out], api_name="job_status")


def build(studio, picker) -> None:
    _wire(EvalServices.of(studio), _layout(), picker)
