"""The Gradio Blocks: header, the shared run / evaluator picker, and one module per tab.

Every tab reads the picked run and evaluator from the picker, asks the registry for the models and
keeps whatever is per user in gr.State, so concurrent sessions never see each other's work.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import gradio as gr

from gan_studio.app import gradio_cache
from gan_studio.app.common import NO_RUN, entry_markdown
from gan_studio.app.registry import EVALUATOR, GENERATOR, ModelEntry
from gan_studio.app.studio import Studio
from gan_studio.app.tabs import curate, embeddings, evaluate, gradcam, interpolate, sample, train
from gan_studio.utils import limits

TITLE = "GAN Studio"
TAGLINE = (
    "Grow small labeled image datasets with a class-conditional few-shot GAN, and measure whether it helps."
)
TABS = (
    ("Train", "train", train),
    ("Sample", "sample", sample),
    ("Interpolate", "interpolate", interpolate),
    ("Grad-CAM", "gradcam", gradcam),
    ("Embeddings", "embeddings", embeddings),
    ("Curate & export", "curate", curate),
    ("Evaluate", "evaluate", evaluate),
)

CSS = """
.gradio-container { max-width: 1480px !important; margin: auto; }
#gs-header { padding: 18px 22px; border-radius: 16px; color: white;
  background: linear-gradient(120deg, #312e81 0%, #4f46e5 45%, #0ea5e9 100%); margin-bottom: 6px; }
#gs-header h1 { margin: 0; font-size: 1.7rem; letter-spacing: -0.01em; color: white; }
#gs-header p { margin: 4px 0 0 0; opacity: 0.92; color: white; }
#gs-header .gs-chips { margin-top: 10px; display: flex; gap: 8px; flex-wrap: wrap; }
#gs-header .gs-chip { background: rgba(255,255,255,0.18); border: 1px solid rgba(255,255,255,0.35);
  border-radius: 999px; padding: 2px 10px; font-size: 0.82rem; color: white !important; }
/* Generated images, and the real ones beside them, are small: show their pixels crisp (both alike)
   instead of blurred by the browser's upscaling. */
#sample-gallery img, #curate-gallery img, #interp-filmstrip img, #interp-gif img, #train-samples img,
#train-recon img, #eval-samples img, #eval-pairs img, #sample-before-after img, #curate-zoom img,
#sample-real-gallery img, #eval-real img
{ image-rendering: pixelated; }
/* Grad-CAM tiles carry their verdict under the image; the hover caption would only cover it. */
#cam-real .caption-label, #cam-synthetic .caption-label { display: none; }
/* Verdict captions wrap instead of being cut to "Assembly s0 · …". */
#sample-gallery .caption-label, #sample-real-gallery .caption-label { white-space: normal; overflow: visible;
  text-overflow: clip; font-size: 12px; line-height: 1.25; max-width: 92%; padding: 2px 6px; }
/* Curation captions are one short line, so they cover little of the image; the selection stands out. */
#curate-gallery .caption-label { white-space: nowrap; font-size: 12px; line-height: 1.2; max-width: 96%;
  padding: 1px 5px; }
#curate-gallery .thumbnail-item.selected { outline: 4px solid #4f46e5; outline-offset: 1px; }
.gs-card { border: 1px solid var(--border-color-primary); border-radius: 14px; padding: 10px 12px !important;
  background: var(--background-fill-primary); }
#gs-picker { border: 1px solid var(--border-color-primary); border-radius: 14px; padding: 6px 10px; }
#gs-no-run { border-left: 4px solid #f59e0b; background: rgba(245,158,11,0.08); padding: 8px 12px; border-radius: 8px; }
.gs-progress { height: 10px; background: var(--neutral-200); border-radius: 999px; overflow: hidden; margin: 4px 0 8px; }
.gs-progress-bar { height: 100%; background: linear-gradient(90deg, #6366f1, #0ea5e9); transition: width .6s ease; }
.gs-progress[data-state="failed"] .gs-progress-bar { background: #dc2626; }
.gs-progress[data-state="finished"] .gs-progress-bar { background: #16a34a; }
footer { display: none !important; }
/* Layout fixes for Gradio's own components, prefixed with .gradio-container to outrank their scoped styles.
   Dropdowns: the arrow takes its own room beside the text (it floated over the text's end), and text too long
   for the box ends in an ellipsis. */
.gradio-container .secondary-wrap > .icon-wrap { position: static; transform: none; flex: none; }
.gradio-container .secondary-wrap > input[role="combobox"] { text-overflow: ellipsis; }
/* Sliders: in a narrow column the track narrows, instead of pushing the max label out of the box. */
.gradio-container .slider_input_container input[type="range"] { min-width: 0; }
.gradio-container .slider_input_container > :is(.min_value, .max_value) { flex: none; }
/* Labels of galleries, images, plots and files sit above their content, not over its first row or toolbar. */
.gradio-container label[data-testid="block-label"].float { position: static; }
/* Tables: headers wrap between words, and the hidden row Gradio sizes columns with loses the padding its cells
   already have (it made every column 16 px too wide); tables of 10 columns or more use a smaller font, and
   of 14 or more (an evaluation's per-class table with c2st) narrower cell padding. */
.gradio-container .header-table .header-cell span.header { white-space: normal; }
.gradio-container .header-table .sizing-body td { padding: 0; }
.gradio-container .table-wrap:has(.header-cell:nth-child(10)) :is(.header-table, .virtual-row) { font-size: 12px; }
.gradio-container .table-wrap:has(.header-cell:nth-child(10)) .cell-wrap { padding: 6px; }
.gradio-container .table-wrap:has(.header-cell:nth-child(14)) .cell-wrap { padding: 6px 3px; }
"""


def theme() -> gr.themes.Base:
    return gr.themes.Soft(
        primary_hue="indigo",
        secondary_hue="sky",
        neutral_hue="slate",
        radius_size="lg",
        font=["Inter", "ui-sans-serif", "system-ui", "sans-serif"],  # no web fonts: the app works offline
    ).set(button_primary_background_fill="linear-gradient(90deg, #4f46e5, #0ea5e9)")


@dataclass
class Picker:
    """The run and evaluator every tab works on, and hooks for tabs that depend on them."""

    studio: Studio
    run: gr.Dropdown
    evaluator: gr.Dropdown
    info: gr.Markdown
    refresh: gr.Button
    loaders: list[tuple[Callable, list, list]] = field(default_factory=list)

    def entry(self, run_id: str | None) -> ModelEntry | None:
        if not run_id:
            return None
        try:
            return self.studio.registry.get(GENERATOR, run_id)
        except KeyError:
            return None

    def run_choices(self) -> list[tuple[str, str]]:
        """(label, id) of every generator, for the run dropdown."""
        return [(e.label, e.id) for e in self.studio.registry.generators()]

    def on_run_change(self, fn: Callable[[ModelEntry | None], object], outputs: list) -> None:
        """Call ``fn(entry)`` whenever the picked run changes (e.g. to offer its classes)."""
        self.run.change(
            lambda run_id: fn(self.entry(run_id)), [self.run], outputs, api_name=False, queue=False
        )

    def on_refresh(self, fn: Callable, inputs: list, outputs: list) -> None:
        self.refresh.click(fn, inputs, outputs, api_name=False, queue=False)

    def on_load(self, fn: Callable, inputs: list, outputs: list) -> None:
        """Run ``fn`` when a browser opens the page (fresh choices for lists built at start-up)."""
        self.loaders.append((fn, inputs, outputs))


def _header(studio: Studio) -> str:
    device = studio.registry.device
    chips = [
        f"device: {device.type}",
        "7 tools: train · sample · interpolate · explain · embed · curate · evaluate",
    ]
    chip_html = "".join(f'<span class="gs-chip">{c}</span>' for c in chips)
    return (
        f'<div id="gs-header"><h1>{TITLE}</h1><p>{TAGLINE}</p><div class="gs-chips">{chip_html}</div></div>'
    )


def opening_tab(registry) -> str:
    """The tab the page opens on: Sample when a generator is ready to sample from, else Train."""
    return "sample" if any(entry.loadable for entry in registry.generators()) else "train"


def build_app(studio: Studio) -> gr.Blocks:
    gradio_cache.install()  # identical images returned at once must not truncate each other's download
    registry = studio.registry

    def evaluator_update(entry: ModelEntry | None, current: str | None = None):
        if entry is None:
            return gr.update(choices=[], value=None)
        options = registry.evaluators(entry.class_names)
        ids = [e.id for e in options]
        value = current if current in ids else (registry.evaluator_for(entry).id if options else None)
        return gr.update(choices=[(e.label, e.id) for e in options], value=value)

    def list_models(current_run: str | None, current_evaluator: str | None):
        generators = registry.generators()
        ids = [e.id for e in generators]
        run_id = current_run if current_run in ids else (ids[0] if ids else None)
        entry = next((e for e in generators if e.id == run_id), None)
        evaluators = evaluator_update(entry, current_evaluator)
        evaluator_entry = _evaluator_entry(evaluators)
        return (
            gr.update(choices=[(e.label, e.id) for e in generators], value=run_id),
            evaluators,
            entry_markdown(entry, evaluator_entry),
            gr.update(visible=not generators),
        )

    def _evaluator_entry(update: dict) -> ModelEntry | None:
        value = update.get("value")
        if not value:
            return None
        try:
            return registry.get(EVALUATOR, value)
        except KeyError:
            return None

    def select_run(run_id: str | None, current_evaluator: str | None):
        entry = picker.entry(run_id)
        evaluators = evaluator_update(entry, current_evaluator)
        return evaluators, entry_markdown(entry, _evaluator_entry(evaluators))

    def select_evaluator(run_id: str | None, evaluator_id: str | None):
        entry = picker.entry(run_id)
        try:
            evaluator_entry = registry.get(EVALUATOR, evaluator_id) if evaluator_id else None
        except KeyError:
            evaluator_entry = None
        return entry_markdown(entry, evaluator_entry)

    # delete_cache: every hour, drop served copies older than a day (a long-running Space would fill its disk)
    with gr.Blocks(title=TITLE, analytics_enabled=False, delete_cache=(3600, 86400)) as demo:
        gr.HTML(_header(studio))
        with gr.Row(elem_id="gs-picker", equal_height=True):  # halves: evaluator labels are as long as runs'
            run_dd = gr.Dropdown(
                [], label="Run (generator)", allow_custom_value=True, elem_id="picker-run", scale=4
            )
            eval_dd = gr.Dropdown(
                [], label="Evaluator", allow_custom_value=True, elem_id="picker-evaluator", scale=4
            )
            refresh = gr.Button("↻ Refresh", elem_id="picker-refresh", scale=0, min_width=110)
        info = gr.Markdown(elem_id="picker-info")
        no_run = gr.Markdown(NO_RUN, visible=not registry.generators(), elem_id="gs-no-run")
        picker = Picker(studio, run_dd, eval_dd, info, refresh)

        with gr.Tabs(elem_id="gs-tabs", selected=opening_tab(registry)) as tabs:
            for label, key, module in TABS:
                with gr.Tab(label, id=key, elem_id=f"tab-{key}"):
                    module.build(studio, picker)

        listing = [run_dd, eval_dd, info, no_run]
        refresh.click(list_models, [run_dd, eval_dd], listing, api_name="list_models")
        run_dd.change(select_run, [run_dd, eval_dd], [eval_dd, info], api_name="select_run")
        eval_dd.change(select_evaluator, [run_dd, eval_dd], [info], api_name=False)
        demo.load(list_models, [run_dd, eval_dd], listing, api_name=False)
        demo.unload(curate.page_closed(studio))
        # A run trained since start-up has a checkpoint now: the next page opens on Sample.
        demo.load(lambda: gr.Tabs(selected=opening_tab(registry)), None, [tabs], api_name=False, queue=False)
        for fn, inputs, outputs in picker.loaders:
            demo.load(fn, inputs, outputs, api_name=False)
    return demo


def launch_options(studio: Studio) -> dict:
    """Keyword arguments for ``demo.launch`` (Gradio 6 takes theme, CSS and page-load JS there)."""
    return {
        "theme": theme(),
        "css": CSS,
        "js": curate.KEYBOARD_JS,
        "allowed_paths": studio.allowed_paths(),
        "footer_links": ["api"],
        # Gradio stops an upload past the limit while it streams in; stage_upload checks again.
        "max_file_size": int(limits.value("upload_mb") * 2**20),
    }
