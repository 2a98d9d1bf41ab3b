"""Sample tab: class-conditioned images with optional filters, evaluator verdicts, and a .zip download,
beside real train images of the same classes at the same size."""

from __future__ import annotations

import json
import shutil
from types import SimpleNamespace

import gradio as gr
import numpy as np
import torch

from gan_studio.app.common import (
    ALL_CLASSES,
    PROGRESS,
    class_indices,
    handler,
    prediction_caption,
    require_generator,
    resolution_warning,
)
from gan_studio.app.postprocess import FILTERS, apply_chain, build_chain, describe
from gan_studio.app.real_data import real_gallery_items
from gan_studio.sampling import generate, latent_for_seed, safe_name
from gan_studio.utils.images import save_png_atomic, to_pil

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


def save_sample_outputs(out, run_id, info, z_dim, labels, seeds, originals, filtered, chain, probs, trunc):
    """Save the images (and the originals when filters changed them) in class folders with a
    manifest.json, zip them; returns (gallery items, (original, shown) pairs, the .zip)."""
    items, pairs, manifest = [], [], []
    for i, (label, s) in enumerate(zip(labels, seeds)):
        name = info.class_names[label]
        rel = f"{safe_name(name)}/seed_{s:06d}.png"
        path = save_png_atomic(filtered[i], out / "images" / rel)
        original = save_png_atomic(originals[i], out / "originals" / rel) if chain else path
        caption = f"{name} s{s}"
        if probs is not None:
            caption += f" · {prediction_caption(info.class_names, probs[i], label)}"
        items.append((str(path), caption))
        pairs.append((str(original), str(path)))
        record = {
            "file": rel,
            "class": name,
            "class_index": label,
            "seed": s,
            "latent": [round(v, 6) for v in latent_for_seed(s, z_dim, trunc).tolist()],
        }
        if probs is not None:
            predicted = int(probs[i].argmax())
            record["evaluator"] = {
                "predicted": info.class_names[predicted],
                "confidence": float(probs[i, predicted]),
            }
        manifest.append(record)
    meta = {
        "run": run_id,
        "generator": info.source,
        "step": info.step,
        "truncation": trunc,
        "noise_mode": "const",
        "filters": describe(chain),
        "images": manifest,
    }
    (out / "images" / "manifest.json").write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n")
    archive = shutil.make_archive(str(out / f"{safe_name(run_id)}-samples"), "zip", out / "images")
    return items, pairs, archive


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


def _verdicts(studio, entry, evaluator_id, filtered, progress):
    """(probabilities per image or None, a warning when the evaluator works at another resolution)."""
    if not evaluator_id:
        return None, None
    progress(0.6, desc="asking the evaluator")
    with studio.registry.use_evaluator(evaluator_id) as evaluator:
        if tuple(evaluator.entry.class_names) != tuple(entry.class_names):
            return None, None
        batch = torch.from_numpy(np.stack([np.asarray(f) for f in filtered])).permute(0, 3, 1, 2)
        probs, _ = evaluator.model.predict_uint8(batch.contiguous())
        return probs, resolution_warning(entry, evaluator.entry)


def sample(
    studio, run_id, evaluator_id, class_choice, n, first_seed, trunc, filters, *strengths, progress=PROGRESS
):
    """Gallery items, the first (original, filtered) pair, the .zip, a note, and every pair (none when no
    filter is on: there is nothing to compare)."""
    entry = require_generator(studio, run_id)
    classes = class_indices(entry, class_choice)
    n = int(n)
    if n * len(classes) > MAX_IMAGES:
        raise gr.Error(f"That is {n * len(classes)} images; ask for at most {MAX_IMAGES} at once.")
    chain = build_chain(filters or [], dict(zip(FILTERS, strengths)))
    labels = [c for c in classes for _ in range(n)]
    seeds = [int(first_seed) + i for _ in classes for i in range(n)]
    progress(0.1, desc=f"generating {len(labels)} images")
    with studio.registry.use_generator(entry.id) as loaded:
        images = generate(loaded.model, labels, seeds, truncation=float(trunc))
        info, z_dim = loaded.info, loaded.model.z_dim
    originals = [to_pil(image) for image in images]
    filtered = [apply_chain(image, chain) for image in originals] if chain else originals
    probs, warning = _verdicts(studio, entry, evaluator_id, filtered, progress)
    progress(0.8, desc="writing the .zip")
    items, pairs, archive = save_sample_outputs(
        studio.scratch_dir("sample"), entry.id, info, z_dim, labels, seeds, originals, filtered,
        chain, probs, float(trunc),
    )  # fmt: skip
    note = f"{len(items)} images from **{entry.id}** (step {info.step})"
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


def class_choices(entry):
    return gr.update(choices=[ALL_CLASSES, *entry.class_names] if entry else [ALL_CLASSES], value=ALL_CLASSES)


def _controls() -> SimpleNamespace:
    """Class, count, seed, truncation, filters, the Generate button, its note and the download."""
    ui = SimpleNamespace()
    ui.klass = gr.Dropdown(
        [ALL_CLASSES], value=ALL_CLASSES, label="Class", allow_custom_value=True, elem_id="sample-class"
    )
    ui.count = gr.Slider(1, 32, value=8, step=1, label="Images per class", elem_id="sample-count")
    with gr.Row():
        ui.seed = gr.Number(value=0, precision=0, label="First seed", elem_id="sample-seed")
        ui.truncation = gr.Slider(
            0.1, 1.5, value=1.0, step=0.05, label="Truncation", elem_id="sample-truncation"
        )
    with gr.Accordion("Post-processing", open=False):
        ui.enabled, ui.sliders = filter_controls("sample")
    ui.go = gr.Button("Generate", variant="primary", elem_id="sample-generate")
    ui.status = gr.Markdown(elem_id="sample-status")
    ui.download = gr.File(label="Download (.zip: class folders + manifest.json)", elem_id="sample-download")
    return ui


def build(studio, picker) -> None:
    with gr.Row(equal_height=False):
        with gr.Column(scale=3, elem_classes="gs-card"):
            c = _controls()
        with gr.Column(scale=7, elem_classes="gs-card"):
            real_gallery, gallery, real_note, before_after = _galleries()
    shown = gr.State([])  # per user: [(original path, filtered path)] in gallery order, when filtered

    picker.on_run_change(class_choices, [c.klass])
    sampled = c.go.click(
        handler(sample, studio),
        [
            picker.run,
            picker.evaluator,
            c.klass,
            c.count,
            c.seed,
            c.truncation,
            c.enabled,
            *c.sliders.values(),
        ],
        [gallery, before_after, c.download, c.status, shown],
        api_name="sample",
    )
    sampled.success(
        handler(show_real, studio), [picker.run, c.klass, c.count], [real_gallery, real_note], api_name=False
    )
    sampled.success(show_before_after, [shown], [before_after], api_name=False, queue=False)
    gallery.select(select_pair, [shown], [before_after], api_name=False)
