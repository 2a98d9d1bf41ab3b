"""Embeddings tab: a UMAP of evaluator features, real train / real test / generated, by class.

``_layout`` builds the components, ``_wire`` connects them, and the handlers are module-level functions
given the app's ``Studio``. The map reports its stages (generating, features, UMAP ...) with a smoothed
ETA through ``gr.Progress``, shown on the plot only, so the readout beside it never flickers.
"""

from __future__ import annotations

from types import SimpleNamespace

import gradio as gr

from gan_studio.app.common import (
    PROGRESS,
    SEED_BOUNDS,
    handler,
    metrics_basis,
    require_evaluator,
    require_generator,
)
from gan_studio.app.embeddings import MapRequest, embedding_figure, make_map
from gan_studio.utils.progress import describe

# Shows the hovered point's thumbnail (customdata[3], a PNG data URI) beside the pointer. Plotly's own
# hover label is text only; this listens to the figure's plotly_hover events instead.
HOVER_JS = """
const tip = document.createElement('div');
tip.id = 'emb-hover-image';
tip.style.cssText = 'position:fixed;display:none;z-index:1000;pointer-events:none;padding:4px;' +
  'background:white;border:1px solid #cbd5e1;border-radius:8px;box-shadow:0 2px 8px rgba(0,0,0,.2)';
const img = document.createElement('img');
img.style.cssText = 'width:96px;height:96px;image-rendering:pixelated;display:block';
const caption = document.createElement('div');
caption.style.cssText = 'font-size:11px;max-width:160px;color:#1e293b';
tip.append(img, caption);
document.body.appendChild(tip);
setInterval(() => {
  const plot = document.querySelector('#emb-plot .js-plotly-plot');
  if (!plot || plot.dataset.gsHover || typeof plot.on !== 'function') return;
  plot.dataset.gsHover = '1';
  plot.on('plotly_hover', (event) => {
    const point = event.points && event.points[0];
    const data = point && point.customdata;
    if (!data || typeof data[3] !== 'string' || !data[3].startsWith('data:image/png;base64,')) return;
    img.src = data[3];
    caption.textContent = data[2] + ' · ' + data[1] + ' · ' + data[0];
    // left of the pointer: Plotly draws its own label to the right of the point
    const x = event.event.clientX, y = event.event.clientY;
    tip.style.left = (x > 200 ? x - 190 : x + 16) + 'px';
    tip.style.top = (y + 16) + 'px';
    tip.style.display = 'block';
  });
  plot.on('plotly_unhover', () => { tip.style.display = 'none'; });
}, 400);
"""


def _to_progress(progress):
    """A StageProgress sink that shows each snapshot in Gradio's progress bar: the stage's own share of
    its units (an empty bar for a stage of unknown size, whose text says how long it has run: Gradio
    shows no text without a bar)."""

    def sink(snapshot: dict) -> None:
        fraction = snapshot.get("fraction")
        progress(fraction if fraction is not None else 0.0, desc=describe(snapshot))

    return sink


def _compared(entry) -> str:
    """How the Evaluate tab's figures differ from the map's, when the model has an evaluation."""
    if "coverage" not in entry.metrics:
        return ""
    return (
        f"\n\nThe coverage of {entry.metrics['coverage']:.3f} beside the model at the top was measured "
        f"by its evaluation{metrics_basis(entry)}: other images, so another figure (coverage and recall "
        "grow with the images per class)."
    )


def compute(studio, run_id, evaluator_id, n, first_seed, trunc, with_test, progress=PROGRESS):
    """The UMAP figure and its precision / coverage readout, saying what they were computed on."""
    entry = require_generator(studio, run_id)
    evaluator_entry = require_evaluator(studio, evaluator_id, entry)
    req = MapRequest(int(n), int(first_seed), float(trunc), bool(with_test))
    embedding, step = make_map(studio, entry, evaluator_entry, req, _to_progress(progress))
    title = f"{entry.id} · step {step} · {req.n} generated and up to {req.n} real per class"
    return embedding_figure(embedding, title), embedding.readout() + _compared(entry)


def warm_state(studio):
    if studio.embeddings.warm.is_set():
        return ""  # nothing to say once UMAP is ready
    return "UMAP is warming up in the background (first fit compiles its kernels, ~15 s)…"


def _layout() -> SimpleNamespace:
    ui = SimpleNamespace()
    with gr.Row(equal_height=False):
        with gr.Column(scale=3, elem_classes="gs-card"):
            ui.count = gr.Slider(
                4, 100, value=20, step=1, label="Generated images per class (and as many real ones)",
                elem_id="emb-count",
            )  # fmt: skip
            with gr.Row():
                ui.seed = gr.Number(
                    value=0, precision=0, **SEED_BOUNDS, label="First seed", elem_id="emb-seed"
                )
                ui.truncation = gr.Slider(
                    0.1, 1.5, value=1.0, step=0.05, label="Truncation", elem_id="emb-truncation"
                )
            ui.include_test = gr.Checkbox(
                value=True, label="Include the held-out real test images", elem_id="emb-test"
            )
            ui.run = gr.Button("Compute map", variant="primary", elem_id="emb-run")
            ui.warm = gr.Markdown(elem_id="emb-warm")
            ui.readout = gr.Markdown(elem_id="emb-readout")
        with gr.Column(scale=7, elem_classes="gs-card"):
            ui.plot = gr.Plot(
                label="UMAP of evaluator features (● real train · ◆ real test · ✕ generated; hover: the image)",
                elem_id="emb-plot",
            )
            gr.HTML("", js_on_load=HOVER_JS, elem_id="emb-hover")
    return ui


def _wire(studio, ui: SimpleNamespace, picker) -> None:
    warm = handler(warm_state, studio)
    ui.run.click(
        handler(compute, studio),
        [picker.run, picker.evaluator, ui.count, ui.seed, ui.truncation, ui.include_test],
        [ui.plot, ui.readout],
        api_name="embeddings",
        show_progress_on=[ui.plot],
    ).then(warm, [], [ui.warm], api_name=False)
    picker.on_load(warm, [], [ui.warm])


def build(studio, picker) -> None:
    _wire(studio, _layout(), picker)
