"""Evaluate tab: train an evaluator, run the metrics and the augmentation experiment in the background."""

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
from gan_studio.evaluation.augment_bench import ARM_KINDS
from gan_studio.evaluation.classifier import ARCHITECTURES
from gan_studio.metrics import list_metrics

JOB_KINDS = ("train-evaluator", "evaluate", "augment-bench")


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
    from gan_studio.evaluation.augment_bench import accuracy_figure, summarize

    doc = json.loads(results.read_text(encoding="utf-8"))
    rows = summarize(doc.get("results", []))
    figure = (
        accuracy_figure(rows, "Classifier accuracy on the real test split vs synthetic data")
        if rows
        else None
    )
    return (summary.read_text(encoding="utf-8") if summary.is_file() else ""), figure


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
                value=[
                    m for m in metric_names if m != "inception_fid"
                ],  # needs weights that cannot be downloaded
                label="Metrics",
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
        with gr.Column(scale=7, elem_classes="gs-card"):
            with gr.Row():
                status = gr.Markdown("No job running.", elem_id="eval-status")
                refresh_btn = gr.Button(
                    "Show saved results", elem_id="eval-refresh", size="sm", scale=0, min_width=160
                )
            bar = gr.HTML(_bar(None, "idle"), elem_id="eval-progress")
            with gr.Accordion("Log", open=False):
                log = gr.Code(language=None, interactive=False, elem_id="eval-log")
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
                    with gr.Row():
                        samples = gr.Image(
                            label="Samples used", type="filepath", interactive=False, elem_id="eval-samples"
                        )
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
            )
        entry = require_generator(studio, run_id)
        folder = service.report_dir(entry)
        metrics = read_metrics(folder)
        if metrics is None and entry.metrics_path is not None:  # a package's or run's own metrics.json
            folder, metrics = entry.metrics_path.parent, read_metrics(entry.metrics_path.parent)
        bench_md, bench_fig = _bench_results(service.bench_dir(entry))
        if metrics is None:
            message = "No evaluation yet: train an evaluator (1), then press **Run evaluation** (2)."
            return [], gr.update(value=[], headers=["class"]), None, None, bench_md, bench_fig, None, message
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
        )

    result_outputs = [overview, per_class, samples, pairs, bench, bench_plot, report_file, report_path]

    @user_errors
    def start(
        kind, run_id, evaluator_id, arch_v, steps_v, n_v, seed_v, metric_v, arms_v, ratios_v, bseeds, bsteps
    ):
        entry = require_generator(studio, run_id)
        if kind == "train-evaluator":
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
    ]
    for button, kind, api in (
        (train_btn, "train-evaluator", "train_evaluator"),
        (run_btn, "evaluate", "evaluate"),
        (bench_btn, "augment-bench", "augment_bench"),
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
