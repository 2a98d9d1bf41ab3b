"""Sample tab: class-conditioned images with optional filters, evaluator verdicts, and a .zip download,
beside real train images of the same classes at the same size.

The images and their manifest come from gan_studio.sampling (``sample``, ``write_samples``), as the
``sample`` command's do; this module lays out the components, wires them, and adds the captions.
"""

from __future__ import annotations

import shutil
from types import SimpleNamespace

import gradio as gr
import numpy as np
import torch

from gan_studio.app.common import (
    ALL_CLASSES,
    PROGRESS,
    SEED_BOUNDS,
    class_indices,
    handler,
    prediction_caption,
    require_generator,
    resolution_warning,
)
from gan_studio.app.postprocess import FILTERS, apply_chain, build_chain, describe
from gan_studio.app.real_data import real_gallery_items
from gan_studio.sampling import (
    SampleBatch,
    evaluator_scores,
    safe_name,
    sample,
    seeds_per_class,
    write_samples,
)
from gan_studio.utils.images import save_png_atomic

MAX_IMAGES = 160


def filter_controls(prefix: str) -> tuple[gr.CheckboxGroup, dict[str, gr.Slider]]:
    """A checkbox per filter and a strength slider each (shared by Sample and Curate)."""
    enabled = gr.CheckboxGroup(
        [(spec.label.split(" (")[0], name) for name, spec in FILTERS.items()],
        value=[],
        label="Post-processing filters (applied in this order)",
        elem_id=f"{prefix}-filters",
    )
    sliders = {}
    with gr.Row():
        for name, spec in FILTERS.items():
            step = 2 if name == "median" else 0.05 if name == "contrast" else 1
            sliders[name] = gr.Slider(
                spec.minimum,
                spec.maximum,
                value=spec.default,
                step=step,
                label=spec.label,
                elem_id=f"{prefix}-{name}",
                min_width=140,
            )
    return enabled, sliders


def save_sample_outputs(out, batch: SampleBatch, originals, shown, chain, probs):
    """The shown images in class folders with the samples manifest (sampling.write_samples), the originals
    when filters changed them, and a .zip of the former; returns (gallery items, (original, shown) pairs,
    the .zip)."""
    names = batch.class_names
    scores = None
    if probs is not None:
        scores = [evaluator_scores(p, r.class_index, names) for p, r in zip(probs, batch.records)]
    folder = write_samples(batch, out / "images", images=shown, filters=describe(chain), scores=scores).parent
    items, pairs = [], []
    for i, record in enumerate(batch.records):
        path = folder / record.file
        original = save_png_atomic(originals[i], out / "originals" / record.file) if chain else path
        caption = f"{record.class_name} s{record.seed}"
        if probs is not None:
            caption += f" · {prediction_caption(names, probs[i], record.class_index)}"
        items.append((str(path), caption))
        pairs.append((str(original), str(path)))
    archive = shutil.make_archive(str(out / f"{safe_name(batch.model['id'])}-samples"), "zip", folder)
    return items, pairs, archive


def _verdicts(studio, evaluator_id, entry, images):
    """(the evaluator's class probabilities for ``images`` or None: no evaluator, or one of other classes;
    a warning when the evaluator works at another resolution)."""
    if not evaluator_id:
        return None, None
    with studio.registry.use_evaluator(evaluator_id) as evaluator:
        if tuple(evaluator.entry.class_names) != tuple(entry.class_names):
            return None, None
        batch = torch.from_numpy(np.stack([np.asarray(image) for image in images])).permute(0, 3, 1, 2)
        probs, _ = evaluator.model.predict_uint8(batch.contiguous())
        return probs, resolution_warning(entry, evaluator.entry)


def draw(
    studio, run_id, evaluator_id, class_choice, n, first_seed, trunc, filters, *strengths, progress=PROGRESS
):
    """Generate: the gallery, the first before/after pair, the .zip, the note, and every pair."""
    entry = require_generator(studio, run_id)
    classes = class_indices(entry, class_choice)
    n = int(n)
    if n * len(classes) > MAX_IMAGES:
        raise gr.Error(f"That is {n * len(classes)} images; ask for at most {MAX_IMAGES} at once.")
    chain = build_chain(filters or [], dict(zip(FILTERS, strengths)))
    labels, seeds = seeds_per_class(classes, n, int(first_seed))
    progress(0.1, desc=f"generating {len(labels)} images")
    with studio.registry.use_generator(entry.id) as loaded:
        batch = sample(loaded.model, loaded.info, labels, seeds, truncation=float(trunc), model=entry.id)
    originals = batch.pil()
    shown = [apply_chain(image, chain) for image in originals] if chain else originals
    if evaluator_id:
        progress(0.6, desc="asking the evaluator")
    probs, warning = _verdicts(studio, evaluator_id, entry, shown)
    progress(0.8, desc="writing the .zip")
    items, pairs, archive = save_sample_outputs(
        studio.scratch_dir("sample"), batch, originals, shown, chain, probs
    )
    note = f"{len(items)} images from **{entry.id}** (step {batch.model['step']})"
    if probs is not None:
        agree = float(np.mean(probs.argmax(1) == np.asarray(labels)))
        note += f" · the evaluator recognises {100 * agree:.0f}% as their class"
    else:
        note += " · pick an evaluator at the top to see its verdict on each image"
    if warning:
        note += f"\n\n{warning}"
    if not chain:  # nothing to compare: the slider stays hidden and a click on an image shows nothing
        return items, None, archive, note, []
    return items, pairs[0], archive, note, pairs


def show_real(studio, run_id, class_choice, n, progress=PROGRESS):
    entry = require_generator(studio, run_id)
    progress(0.1, desc="loading the real train images")
    classes = class_indices(entry, class_choice)
    return real_gallery_items(studio.real_data, entry, classes, int(n), studio.scratch_dir("real"))


def show_before_after(pairs):
    """The before / after slider only when a filter changed the images."""
    return gr.update(visible=bool(pairs))


def select_pair(pairs, evt: gr.SelectData):
    if not pairs or evt.index is None or evt.index >= len(pairs):
        return gr.skip()
    return tuple(pairs[evt.index])


# ------------------------------------------------------------------------------------------------ layout


def _galleries():
    """Real train images and samples side by side, at one thumbnail size; the before/after slider."""
    with gr.Row(equal_height=True):  # same columns and height: real and generated at one size
        real_gallery = gr.Gallery(
            label="Real images of this class (train split)",
            columns=3,
            height=520,
            object_fit="contain",
            elem_id="sample-real-gallery",
        )
        gallery = gr.Gallery(
            label="Samples (✓: the evaluator agrees · →: it sees another class)",
            columns=3,
            height=520,
            object_fit="contain",
            elem_id="sample-gallery",
        )
    real_note = gr.Markdown(elem_id="sample-real-note")
    # Shown only when a filter changed the images: with none, its two halves would be the same image.
    before_after = gr.ImageSlider(
        label="Before / after filters (click an image)",
        elem_id="sample-before-after",
        max_height=320,
        visible=False,
    )
    return real_gallery, gallery, real_note, before_after


def _layout() -> SimpleNamespace:
    ui = SimpleNamespace()
    with gr.Row(equal_height=False):
        with gr.Column(scale=3, elem_classes="gs-card"):
            ui.klass = gr.Dropdown(
                [ALL_CLASSES],
                value=ALL_CLASSES,
                label="Class",
                allow_custom_value=True,
                elem_id="sample-class",
            )
            ui.count = gr.Slider(1, 32, value=8, step=1, label="Images per class", elem_id="sample-count")
            with gr.Row():
                ui.seed = gr.Number(
                    value=0, precision=0, **SEED_BOUNDS, label="First seed", elem_id="sample-seed"
                )
                ui.truncation = gr.Slider(
                    0.1, 1.5, value=1.0, step=0.05, label="Truncation", elem_id="sample-truncation"
                )
            with gr.Accordion("Post-processing", open=False):
                ui.enabled, ui.sliders = filter_controls("sample")
            ui.go = gr.Button("Generate", variant="primary", elem_id="sample-generate")
            ui.status = gr.Markdown(elem_id="sample-status")
            ui.download = gr.File(
                label="Download (.zip: class folders + manifest.json)", elem_id="sample-download"
            )
        with gr.Column(scale=7, elem_classes="gs-card"):
            ui.real_gallery, ui.gallery, ui.real_note, ui.before_after = _galleries()
    return ui


# ------------------------------------------------------------------------------------------------ wiring


def _class_choices(entry):
    choices = [ALL_CLASSES, *entry.class_names] if entry else [ALL_CLASSES]
    return gr.update(choices=choices, value=ALL_CLASSES)


def _wire(studio, ui: SimpleNamespace, picker) -> None:
    shown = gr.State([])  # per browser tab: [(original path, filtered path)] in gallery order
    picker.on_run_change(_class_choices, [ui.klass])
    inputs = [picker.run, picker.evaluator, ui.klass, ui.count, ui.seed, ui.truncation, ui.enabled,
              *ui.sliders.values()]  # fmt: skip
    sampled = ui.go.click(
        handler(draw, studio), inputs, [ui.gallery, ui.before_after, ui.download, ui.status, shown],
        api_name="sample",
    )  # fmt: skip
    sampled.success(
        handler(show_real, studio), [picker.run, ui.klass, ui.count], [ui.real_gallery, ui.real_note],
        api_name=False,
    )  # fmt: skip
    sampled.success(show_before_after, [shown], [ui.before_after], api_name=False, queue=False)
    ui.gallery.select(select_pair, [shown], [ui.before_after], api_name=False)


def build(studio, picker) -> None:
    _wire(studio, _layout(), picker)
