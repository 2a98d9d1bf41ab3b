"""Embeddings tab: a UMAP of evaluator features, real train / real test / generated, by class."""

from __future__ import annotations

import gradio as gr
import numpy as np

from gan_studio.app.common import PROGRESS, SEED_BOUNDS, require_evaluator, require_generator, user_errors
from gan_studio.app.embeddings import build_embedding, embedding_figure
from gan_studio.sampling import generate


def build(studio, picker) -> None:
    with gr.Row(equal_height=False):
        with gr.Column(scale=3, elem_classes="gs-card"):
            count = gr.Slider(
                4, 100, value=20, step=1, label="Generated images per class", elem_id="emb-count"
            )
            with gr.Row():
                seed = gr.Number(value=0, precision=0, **SEED_BOUNDS, label="First seed", elem_id="emb-seed")
                truncation = gr.Slider(
                    0.1, 1.5, value=1.0, step=0.05, label="Truncation", elem_id="emb-truncation"
                )
            include_test = gr.Checkbox(
                value=True, label="Include the held-out real test images", elem_id="emb-test"
            )
            go_btn = gr.Button("Compute map", variant="primary", elem_id="emb-run")
            warm = gr.Markdown(elem_id="emb-warm")
            readout = gr.Markdown(elem_id="emb-readout")
        with gr.Column(scale=7, elem_classes="gs-card"):
            plot = gr.Plot(
                label="UMAP of evaluator features (● real train · ◆ real test · ✕ generated)",
                elem_id="emb-plot",
            )

    @user_errors
    def compute(run_id, evaluator_id, n, first_seed, trunc, with_test, progress=PROGRESS):
        entry = require_generator(studio, run_id)
        evaluator_entry = require_evaluator(studio, evaluator_id, entry)
        n, first_seed, trunc = int(n), int(first_seed), float(trunc)
        with studio.registry.use_generator(entry.id) as loaded:
            step = loaded.info.step
            key = (
                entry.id,
                step,
                evaluator_entry.id,
                evaluator_entry.step,
                n,
                first_seed,
                trunc,
                bool(with_test),
            )
            cached = studio.embeddings.get(key)
            if cached is None:
                classes = range(len(entry.class_names))
                labels = [c for c in classes for _ in range(n)]
                seeds = [first_seed + i for _ in classes for i in range(n)]
                progress(0.05, desc="generating")
                fake = generate(loaded.model, labels, seeds, truncation=trunc)
        if cached is None:
            progress(0.3, desc="loading real images")
            split = studio.real_data.get(entry)
            with studio.registry.use_evaluator(evaluator_entry.id) as evaluator:
                progress(0.4, desc="evaluator features")
                _, train_features = studio.real_data.features(evaluator, split, "train")
                sets = [("real train", train_features, split.train.labels.numpy(), split.train_names)]
                if with_test and len(split.test):
                    _, test_features = studio.real_data.features(evaluator, split, "test")
                    sets.append(("real test", test_features, split.test.labels.numpy(), split.test_names))
                _, fake_features = evaluator.model.predict_uint8(fake)
            sets.append(("generated", fake_features, np.asarray(labels), [f"seed {s}" for s in seeds]))
            if not studio.embeddings.warm.is_set():
                progress(0.6, desc="UMAP is compiling its kernels (first map only)")
                studio.embeddings.warm.wait(120)
            progress(0.7, desc="UMAP")
            cached = build_embedding(entry.class_names, sets, seed=0)
            studio.embeddings.put(key, cached)
        title = f"{entry.id} · step {step} · {n} generated per class"
        return embedding_figure(cached, title), cached.readout()

    def warm_state():
        if studio.embeddings.warm.is_set():
            return ""  # nothing to say once UMAP is ready
        return "UMAP is warming up in the background (first fit compiles its kernels, ~15 s)…"

    go_btn.click(
        compute,
        [picker.run, picker.evaluator, count, seed, truncation, include_test],
        [plot, readout],
        api_name="embeddings",
    ).then(warm_state, [], [warm])
    picker.on_load(warm_state, [], [warm])
