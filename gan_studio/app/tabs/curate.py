"""Curate & export tab: score candidates, accept by thresholds or by click, export an ImageFolder .zip."""

from __future__ import annotations

import time

import gradio as gr
import numpy as np
from PIL import Image, ImageOps

from gan_studio.app.common import (
    ALL_CLASSES,
    PROGRESS,
    class_indices,
    percent,
    require_evaluator,
    require_generator,
    user_errors,
)
from gan_studio.app.curation import DEFAULT_MIN_CONFIDENCE, DEFAULT_MIN_RATIO, Candidate
from gan_studio.app.postprocess import FILTERS, build_chain
from gan_studio.app.tabs.sample import filter_controls
from gan_studio.sampling import safe_name

ACCEPT_COLOUR, REJECT_COLOUR = (22, 163, 74), (220, 38, 38)
THUMB = 128


def _thumbnail(store, candidate: Candidate) -> np.ndarray:
    """The candidate with a green (accepted) or red (rejected) frame: the state is visible at a glance."""
    with Image.open(store.folder / candidate.file) as image:
        image = image.convert("RGB").resize((THUMB, THUMB), Image.Resampling.NEAREST)
    colour = ACCEPT_COLOUR if candidate.accepted else REJECT_COLOUR
    return np.asarray(ImageOps.expand(image, border=6, fill=colour))


def _caption(c: Candidate) -> str:
    mark = "✓" if c.accepted else "✗"
    hand = " (click)" if c.manual else ""
    return f"{mark}{hand} {c.class_name} s{c.seed} · conf {percent(c.confidence)} · copy {c.memorization_ratio:.2f}"


def build(studio, picker) -> None:
    with gr.Row(equal_height=False):
        with gr.Column(scale=3, elem_classes="gs-card"):
            gr.Markdown("### Candidates")
            klass = gr.Dropdown(
                [ALL_CLASSES],
                value=ALL_CLASSES,
                label="Class",
                allow_custom_value=True,
                elem_id="curate-class",
            )
            count = gr.Slider(
                1, 32, value=8, step=1, label="New candidates per class", elem_id="curate-count"
            )
            with gr.Row():
                seed = gr.Number(value=0, precision=0, label="From seed", elem_id="curate-seed")
                truncation = gr.Slider(
                    0.1, 1.5, value=1.0, step=0.05, label="Truncation", elem_id="curate-truncation"
                )
            with gr.Accordion("Post-processing", open=False):
                enabled, sliders = filter_controls("curate")
            gen_btn = gr.Button("Generate candidates", variant="primary", elem_id="curate-generate")
            gr.Markdown("### Thresholds")
            min_conf = gr.Slider(
                0,
                1,
                value=DEFAULT_MIN_CONFIDENCE,
                step=0.01,
                label="Min. evaluator confidence in the intended class",
                elem_id="curate-min-confidence",
            )
            min_ratio = gr.Slider(
                0,
                2,
                value=DEFAULT_MIN_RATIO,
                step=0.01,
                label="Min. memorisation ratio (below: near-copy of a training image)",
                elem_id="curate-min-ratio",
            )
            apply_btn = gr.Button("Apply thresholds", elem_id="curate-apply")
            gr.Markdown("### Export")
            merge = gr.Checkbox(
                value=False,
                label="Merge in the real training images (never the test split)",
                elem_id="curate-merge",
            )
            with gr.Row():
                export_btn = gr.Button("Export .zip", variant="primary", elem_id="curate-export")
                clear_btn = gr.Button("Clear all candidates", variant="stop", elem_id="curate-clear")
            export_file = gr.File(label="Export (ImageFolder + manifest.json)", elem_id="curate-download")
        with gr.Column(scale=7, elem_classes="gs-card"):
            status = gr.Markdown(
                "Generate candidates to start. Click an image to accept / reject it.", elem_id="curate-status"
            )
            gallery = gr.Gallery(
                label="Candidates (green: accepted · red: rejected · click to toggle)",
                columns=6,
                height=560,
                allow_preview=False,
                elem_id="curate-gallery",
            )
            counts = gr.Dataframe(
                headers=["class", "candidates", "accepted", "rejected"],
                label="Per class",
                interactive=False,
                elem_id="curate-counts",
            )
    shown_ids = gr.State([])  # per session: candidate ids in gallery order

    picker.on_run_change(
        lambda entry: gr.update(
            choices=[ALL_CLASSES, *entry.class_names] if entry else [ALL_CLASSES], value=ALL_CLASSES
        ),
        [klass],
    )

    def render(entry, class_choice, message=""):
        store = studio.curation.get(entry.id)
        wanted = None if class_choice in (None, ALL_CLASSES) else class_choice
        visible = store.visible(wanted)
        items = [(_thumbnail(store, c), _caption(c)) for c in visible]
        rows = store.counts(entry.class_names)
        accepted = sum(r[2] for r in rows)
        summary = f"**{accepted} accepted** of {sum(r[1] for r in rows)} candidates for **{entry.id}**"
        summary += f" · thresholds: confidence ≥ {store.thresholds.min_confidence:.2f}, ratio ≥ "
        summary += f"{store.thresholds.min_memorization_ratio:.2f}"
        if message:
            summary = message + "\n\n" + summary
        return items, rows, summary, [c.id for c in visible]

    @user_errors
    def show(run_id, class_choice):
        if not run_id:
            return [], [], "Pick a run at the top of the page.", []
        return render(require_generator(studio, run_id), class_choice)

    @user_errors
    def generate_candidates(
        run_id, evaluator_id, class_choice, n, first_seed, trunc, filters, *strengths, progress=PROGRESS
    ):
        entry = require_generator(studio, run_id)
        evaluator_entry = require_evaluator(studio, evaluator_id, entry)
        classes = class_indices(entry, class_choice)
        chain = build_chain(filters or [], dict(zip(FILTERS, strengths)))
        progress(0.05, desc="loading the real training images")
        split = studio.real_data.get(entry)
        store = studio.curation.get(entry.id)
        progress(0.3, desc="generating and scoring candidates")
        with (  # generator before evaluator, as everywhere: a fixed lock order cannot deadlock
            studio.registry.use_generator(entry.id) as generator,
            studio.registry.use_evaluator(evaluator_entry.id) as evaluator,
        ):
            _, real_features = studio.real_data.features(evaluator, split, "train")
            new = store.add_generated(
                generator.model,
                generator.info,
                evaluator.model,
                real_features,
                split.train_names,
                classes=classes,
                n_per_class=int(n),
                seed=int(first_seed),
                truncation=float(trunc),
                chain=chain,
                real_labels=split.train.labels,
            )
        accepted = sum(c.accepted for c in new)
        return render(entry, class_choice, f"Added {len(new)} candidates; {accepted} pass the thresholds.")

    @user_errors
    def apply_thresholds(run_id, class_choice, conf, ratio):
        entry = require_generator(studio, run_id)
        studio.curation.get(entry.id).set_thresholds(float(conf), float(ratio))
        return render(entry, class_choice, "Thresholds applied (clicked images keep your decision).")

    @user_errors
    def toggle(run_id, class_choice, ids, evt: gr.SelectData):
        entry = require_generator(studio, run_id)
        if evt.index is None or evt.index >= len(ids):
            return gr.skip(), gr.skip(), gr.skip(), ids
        candidate = studio.curation.get(entry.id).toggle(ids[evt.index])
        verdict = "accepted" if candidate.accepted else "rejected"
        return render(entry, class_choice, f"{candidate.class_name} seed {candidate.seed}: {verdict}.")

    @user_errors
    def toggle_by_id(run_id, class_choice, candidate_id):
        """API twin of the click: toggle a candidate by its id."""
        entry = require_generator(studio, run_id)
        studio.curation.get(entry.id).toggle(candidate_id)
        return render(entry, class_choice)

    @user_errors
    def export(run_id, with_real, progress=PROGRESS):
        entry = require_generator(studio, run_id)
        store = studio.curation.get(entry.id)
        records = root = None
        if with_real:
            progress(0.1, desc="finding the real training images")
            split = studio.real_data.get(entry)
            root, records = split.root, split.train.records
        progress(0.4, desc="writing the .zip")
        name = f"{safe_name(entry.id.replace('/', '__'))}-curated-{time.strftime('%Y%m%d-%H%M%S')}.zip"
        path = store.export(studio.path("exports") / name, real_root=root, real_records=records)
        gr.Info(f"Exported {path.name}")
        return str(path)

    @user_errors
    def clear(run_id, class_choice):
        entry = require_generator(studio, run_id)
        studio.curation.get(entry.id).clear()
        return render(entry, class_choice, "All candidates removed.")

    outputs = [gallery, counts, status, shown_ids]
    gen_btn.click(
        generate_candidates,
        [picker.run, picker.evaluator, klass, count, seed, truncation, enabled, *sliders.values()],
        outputs,
        api_name="curate_generate",
    )
    apply_btn.click(
        apply_thresholds, [picker.run, klass, min_conf, min_ratio], outputs, api_name="curate_thresholds"
    )
    gallery.select(toggle, [picker.run, klass, shown_ids], outputs, api_name=False)
    toggle_id = gr.Textbox(visible=False, elem_id="curate-toggle-id")
    toggle_id.submit(toggle_by_id, [picker.run, klass, toggle_id], outputs, api_name="curate_toggle")
    klass.change(show, [picker.run, klass], outputs, api_name="curate_show")
    export_btn.click(export, [picker.run, merge], [export_file], api_name="curate_export")
    clear_btn.click(clear, [picker.run, klass], outputs, api_name="curate_clear")
    picker.run.change(show, [picker.run, klass], outputs, api_name=False)
