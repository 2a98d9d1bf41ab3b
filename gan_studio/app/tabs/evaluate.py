"""Evaluate tab: train an evaluator, run the metrics, the augmentation bench and the study in the background."""

from __future__ import annotations

import json
from pathlib import Path

import gradio as gr

from gan_studio.app.common import require_evaluator, require_generator, user_errors
from gan_studio.app.evaluation_jobs import (
    EvaluationService,
    available_commands,
    job_status,
    overview_rows,
    per_class_rows,
    read_metrics,
)
from gan_studio.app.real_data import real_grid
from gan_studio.evaluation.augment_bench.arms import ARM_KINDS
from gan_studio.evaluation.classifier import ARCHITECTURES
from gan_studio.metrics import list_metrics

JOB_KINDS = ("train-evaluator", "evaluate", "augment-bench", "study")
NOT_BY_DEFAULT = ("inception_fid", "c2st")  # offered, unticked: no weights offline; minutes of training


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


def _results_tabs():
    """The results: metrics (real train images beside the samples), augmentation experiment, study."""
    with gr.Tabs():
        with gr.Tab("Metrics", elem_id="eval-tab-metrics"):
            report_path = gr.Markdown(elem_id="eval-report-path")
            overview = gr.Dataframe(
                headers=["metric", "value", "real reference", "notes"],
                label="Overview",
                interactive=False,
                wrap=True,
                column_widths=["34%", "11%", "13%", "42%"],
                elem_id="eval-overview",
            )
            per_class = gr.Dataframe(
                headers=["class"], label="Per class", interactive=False, elem_id="eval-per-class"
            )
            with gr.Row(equal_height=True):  # one layout, one size: real beside generated
                real = gr.Image(
                    label="Real train images (8 per class)",
                    type="filepath",
                    interactive=False,
                    elem_id="eval-real",
                )
                samples = gr.Image(
                    label="Samples used (generated)",
                    type="filepath",
                    interactive=False,
                    elem_id="eval-samples",
                )
            real_note = gr.Markdown(elem_id="eval-real-note")
            pairs = gr.Image(
                label="Closest to a training image (generated | nearest real)",
                type="filepath",
                interactive=False,
                elem_id="eval-pairs",
            )
            report_file = gr.File(label="Report (markdown)", elem_id="eval-report")
        with gr.Tab("Augmentation experiment", elem_id="eval-tab-bench"):
            bench_plot = gr.Plot(label="Test accuracy by arm", elem_id="eval-bench-plot")
            bench = gr.Markdown(elem_id="eval-bench-results")
        with gr.Tab("Study", elem_id="eval-tab-study"):
            study_plot = gr.Plot(label="Does it help? Paired differences", elem_id="eval-study-plot")
            study_report = gr.Markdown(elem_id="eval-study-report")
    return (
        report_path, overview, per_class, real, samples, real_note, pairs, report_file, bench_plot, bench,
        study_plot, study_report,
    )  # fmt: skip


def build(studio, picker) -> None:
    service = EvaluationService(studio.jobs, studio.workdir, studio.default_data)
    bench_available = "augment-bench" in available_commands()
    metric_names = list_metrics()

    with gr.Row(equal_height=False):
        with gr.Column(scale=3, elem_classes="gs-card"):
            gr.Markdown("### 1 · Evaluator")
            gr.Markdown(
                "A classifier trained on the run's real *train* split; every metric is measured in its features."
            )
            with gr.Row():
                arch = gr.Dropdown(
                    list(ARCHITECTURES), value=ARCHITECTURES[0], label="Architecture", elem_id="eval-arch"
                )
                eval_steps = gr.Number(
                    value=1000, precision=0, minimum=1, label="Steps", elem_id="eval-train-steps"
                )
            train_btn = gr.Button("Train evaluator", elem_id="eval-train")
            gr.Markdown("### 2 · Metrics")
            with gr.Row():
                n_per_class = gr.Number(
                    value=50, precision=0, minimum=2, label="Generated per class", elem_id="eval-n"
                )
                seed = gr.Number(value=0, precision=0, label="First seed", elem_id="eval-seed")
            metrics = gr.CheckboxGroup(
                metric_names,
                # inception_fid needs weights that cannot be downloaded; c2st trains two classifiers
                value=[m for m in metric_names if m not in NOT_BY_DEFAULT],
                label="Metrics",
                info="c2st (can a fresh classifier tell samples from real photos?) trains two classifiers "
                "from scratch, 300 steps each: about 5.5 minutes more at 64 px on a busy 2-core CPU.",
                elem_id="eval-metrics",
            )
            run_btn = gr.Button("Run evaluation", variant="primary", elem_id="eval-run")
            gr.Markdown("### 3 · Augmentation experiment")
            gr.Markdown(
                "Does synthetic data help? One classifier per arm, same budget, scored on real test images."
            )
            arms = gr.CheckboxGroup(
                list(ARM_KINDS), value=["real", "real+syn"], label="Arms", elem_id="bench-arms"
            )
            with gr.Row():
                ratios = gr.Textbox(value="0.5,1.0", label="Synthetic per real image", elem_id="bench-ratios")
                bench_seeds = gr.Number(value=1, precision=0, minimum=1, label="Seeds", elem_id="bench-seeds")
                bench_steps = gr.Number(
                    value=300, precision=0, minimum=1, label="Steps", elem_id="bench-steps"
                )
            bench_btn = gr.Button(
                "Run augmentation experiment"
                if bench_available
                else "Augmentation experiment (not in this version)",
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
                study_per_class = gr.Number(
                    value=0,
                    precision=0,
                    minimum=0,
                    label="Real images per class (0: all)",
                    elem_id="study-per-class",
                )
                study_seeds = gr.Number(value=3, precision=0, minimum=1, label="Seeds", elem_id="study-seeds")
                study_budget = gr.Number(
                    value=2.0, minimum=0, label="Budget (hours, 0: none)", elem_id="study-budget"
                )
            study_btn = gr.Button("Run study", elem_id="eval-study")
        with gr.Column(scale=7, elem_classes="gs-card"):
            with gr.Row():
                status = gr.Markdown("No job running.", elem_id="eval-status")
                refresh_btn = gr.Button(
                    "Show saved results", elem_id="eval-refresh", size="sm", scale=0, min_width=160
                )
            bar = gr.HTML(_bar(None, "idle"), elem_id="eval-progress")
            with gr.Accordion("Log", open=False):
                log = gr.Code(language=None, interactive=False, elem_id="eval-log")
            (
                report_path, overview, per_class, real, samples, real_note, pairs, report_file, bench_plot,
                bench, study_plot, study_report,
            ) = _results_tabs()  # fmt: skip
    timer = gr.Timer(2.0)
    watching = gr.State(None)  # per session: the job kind this session started last

    @user_errors
    def results(run_id):
        if not run_id:
            return (
                [],
                gr.update(value=[], headers=["class"]),
                None,
                None,
                "",
                None,
                None,
                "Pick a run at the top.",
                "",
                None,
            )
        entry = require_generator(studio, run_id)
        folder = service.report_dir(entry)
        metrics = read_metrics(folder)
        if metrics is None and entry.metrics_path is not None:  # a package's or run's own metrics.json
            folder, metrics = entry.metrics_path.parent, read_metrics(entry.metrics_path.parent)
        bench_md, bench_fig = _bench_results(service.bench_dir(entry))
        study_md, study_fig = _study_results(service.study_dir(entry))
        if metrics is None:
            message = "No evaluation yet: train an evaluator (1), then press **Run evaluation** (2)."
            return (
                [], gr.update(value=[], headers=["class"]), None, None, bench_md, bench_fig, None, message,
                study_md, study_fig,
            )  # fmt: skip
        headers, rows = per_class_rows(metrics, list(entry.class_names))
        report = folder / "report.md"
        return (
            overview_rows(metrics),
            gr.update(value=rows, headers=headers),
            str(folder / "samples.png") if (folder / "samples.png").is_file() else None,
            str(folder / "memorization_pairs.png") if (folder / "memorization_pairs.png").is_file() else None,
            bench_md,
            bench_fig,
            str(report) if report.is_file() else None,
            f"Saved report: `{report}`"
            if report.is_file()
            else f"Saved metrics: `{folder / 'metrics.json'}`",
            study_md,
            study_fig,
        )

    result_outputs = [
        overview, per_class, samples, pairs, bench, bench_plot, report_file, report_path, study_report, study_plot,
    ]  # fmt: skip

    @user_errors
    def start(
        kind, run_id, evaluator_id, arch_v, steps_v, n_v, seed_v, metric_v, arms_v, ratios_v, bseeds, bsteps,
        study_n=0, study_s=3, study_h=0,
    ):  # fmt: skip
        entry = require_generator(studio, run_id)
        if kind == "study":
            job = service.study(
                entry,
                train_per_class=int(study_n or 0),
                seeds=int(study_s or 3),
                budget_hours=float(study_h or 0) or None,
            )
        elif kind == "train-evaluator":
            job = service.train_evaluator(entry, steps=int(steps_v), arch=arch_v)
        elif kind == "evaluate":
            if not metric_v:
                raise gr.Error("Tick at least one metric.")
            evaluator = require_evaluator(studio, evaluator_id, entry)
            job = service.evaluate(
                entry, evaluator, n_per_class=int(n_v), seed=int(seed_v), metrics=list(metric_v)
            )
        else:
            evaluator = (
                require_evaluator(studio, evaluator_id, entry)
                if "real+syn_filtered" in (arms_v or [])
                else None
            )
            job = service.augment_bench(
                entry,
                evaluator,
                arms=list(arms_v or []),
                ratios=ratios_v,
                seeds=int(bseeds),
                steps=int(bsteps),
            )
        gr.Info(f"{kind} started for '{entry.id}' (process {job.pid}).")
        return f"**running** · {kind}", kind

    inputs = [
        picker.run,
        picker.evaluator,
        arch,
        eval_steps,
        n_per_class,
        seed,
        metrics,
        arms,
        ratios,
        bench_seeds,
        bench_steps,
        study_per_class,
        study_seeds,
        study_budget,
    ]
    for button, kind, api in (
        (train_btn, "train-evaluator", "train_evaluator"),
        (run_btn, "evaluate", "evaluate"),
        (bench_btn, "augment-bench", "augment_bench"),
        (study_btn, "study", "study"),
    ):
        button.click(lambda *args, k=kind: start(k, *args), inputs, [status, watching], api_name=api)

    @user_errors
    def poll(run_id, kind, last):
        unchanged = (gr.skip(),) * (3 + len(result_outputs)) + (last,)
        if not run_id or not kind:
            return unchanged
        entry = require_generator(studio, run_id)
        state = job_status(service.job(kind, entry))
        signature = (run_id, kind, state.state, state.fraction, state.log_tail[-300:])
        if signature == last:
            return unchanged
        summary = f"{kind}: {state.summary()}"
        if state.state == "failed":
            errors = [line for line in state.log_tail.splitlines() if line.startswith("error:")]
            summary += "\n\n" + (errors[-1] if errors else "See the log for what went wrong.")
        finished = state.state == "finished" and (last is None or last[2] != "finished")
        fresh = results(run_id) if finished else (gr.skip(),) * len(result_outputs)
        if finished and kind == "train-evaluator":
            gr.Info("The evaluator is ready: pick it at the top of the page (↻ Refresh lists it).")
        return (summary, _bar(state.fraction, state.state), state.log_tail, *fresh, signature)

    seen = gr.State(None)  # what the last poll showed, to skip redrawing unchanged outputs
    timer.tick(
        poll,
        [picker.run, watching, seen],
        [status, bar, log, *result_outputs, seen],
        api_name=False,
        show_progress="hidden",
    )
    refresh_btn.click(results, [picker.run], result_outputs, api_name="evaluation_results")

    @user_errors
    def show_real(run_id, samples_shown):
        """Real train images beside the samples, whenever samples are shown."""
        if not run_id or not samples_shown:
            return None, ""
        entry = require_generator(studio, run_id)
        return real_grid(studio.real_data, entry, studio.path("real"))

    samples.change(show_real, [picker.run, samples], [real, real_note], api_name=False)
    picker.run.change(results, [picker.run], result_outputs, api_name=False)

    @user_errors
    def job_state(run_id, kind):
        """API: the state of this run's job of ``kind`` (train-evaluator, evaluate, augment-bench)."""
        if kind not in JOB_KINDS:
            raise gr.Error(f"Unknown job kind '{kind}'; use one of {', '.join(JOB_KINDS)}.")
        state = job_status(service.job(kind, require_generator(studio, run_id)))
        return {
            "state": state.state,
            "fraction": state.fraction,
            "description": state.description,
            "log": state.log_tail,
        }

    api_kind, api_out = gr.Textbox(visible=False), gr.JSON(visible=False)
    api_kind.submit(job_state, [picker.run, api_kind], [api_out], api_name="job_status")
