"""Curate & export tab: score candidates, accept by thresholds or by hand, export a training-ready .zip.

A click selects an image and shows it large with its scores; the buttons under it (or the keys A / R
and the arrows) accept, reject and move. The export itself is gan_studio.app.export; this module only
wires components to it and to the curation store.
"""

from __future__ import annotations

import inspect
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from types import SimpleNamespace

import gradio as gr
import numpy as np
from PIL import Image, ImageOps

from gan_studio.app.common import (
    ALL_CLASSES,
    PROGRESS,
    SEED_BOUNDS,
    class_indices,
    decisive,
    require_evaluator,
    require_generator,
    user_errors,
)
from gan_studio.app.curation import (
    DEFAULT_MIN_CONFIDENCE,
    DEFAULT_MIN_RATIO,
    DEFAULT_SET,
    SHOW_CHOICES,
    SORT_ORDERS,
    Candidate,
    Thresholds,
    next_cursor,
    set_name,
    step_cursor,
)
from gan_studio.app.export import METADATA_FORMATS, check_size, export_file_name
from gan_studio.app.postprocess import FILTERS, build_chain
from gan_studio.app.tabs.sample import filter_controls
from gan_studio.utils import limits

ACCEPT_COLOUR, REJECT_COLOUR = (22, 163, 74), (220, 38, 38)
THUMB = 128
ZOOM = 384  # the zoomed image's side: nearest-neighbour upscaling keeps every pixel visible
COLUMNS = 5  # gallery columns: the up / down keys move by one row
SIZES = (32, 64, 128, 256, 512)
VIEW_CONCURRENCY = "curate-view"  # selection, moves and decisions run one at a time, in order

# Keys work while the Curate tab is shown and no text field has the focus (arrows: nor a radio button or
# a slider, which use them); each clicks a button.
KEYBOARD_JS = """
() => {
  if (window.gsCurateKeys) return;
  window.gsCurateKeys = true;
  const keys = {a: "curate-accept", r: "curate-reject", ArrowLeft: "curate-prev", ArrowRight: "curate-next",
                ArrowUp: "curate-up", ArrowDown: "curate-down"};
  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const target = event.target || {};
    const choice = target.tagName === "INPUT" && ["radio", "checkbox", "range", "button"].includes(target.type);
    if (target.isContentEditable || ["TEXTAREA", "SELECT"].includes(target.tagName)) return;
    if (target.tagName === "INPUT" && (!choice || event.key.startsWith("Arrow"))) return;  // typing, or a radio
    const panel = document.getElementById("tab-curate");
    if (!panel || !panel.checkVisibility()) return;
    const id = keys[event.key.length === 1 ? event.key.toLowerCase() : event.key];
    if (!id || (event.repeat && event.key.length === 1)) return;
    const element = document.getElementById(id);
    const button = element && (element.tagName === "BUTTON" ? element : element.querySelector("button"));
    if (!button) return;
    event.preventDefault();
    button.click();
  });
}
"""
SCROLL_JS = """
() => setTimeout(() => {
  const item = document.querySelector("#curate-gallery .thumbnail-item.selected");
  if (item) item.scrollIntoView({block: "nearest"});
}, 80)
"""
NO_SELECTION = "Click an image (or press →) to see it large with its scores."


def _thumbnail(store, candidate: Candidate) -> np.ndarray:
    """The candidate with a green (accepted) or red (rejected) frame: the state is visible at a glance."""
    with Image.open(store.folder / candidate.file) as image:
        image = image.convert("RGB").resize((THUMB, THUMB), Image.Resampling.NEAREST)
    colour = ACCEPT_COLOUR if candidate.accepted else REJECT_COLOUR
    return np.asarray(ImageOps.expand(image, border=6, fill=colour))


def _caption(c: Candidate, thresholds: Thresholds) -> str:
    """One short line: decision (* by hand), confidence and memorisation ratio, each side of its threshold."""
    mark = ("✓" if c.accepted else "✗") + ("*" if c.manual else "")
    confidence = decisive(c.confidence, thresholds.min_confidence, scale=100, decimals=1)
    ratio = decisive(c.memorization_ratio, thresholds.min_memorization_ratio)
    return f"{mark} {confidence}% · {ratio}"


def _zoomed(store, c: Candidate) -> np.ndarray:
    with Image.open(store.folder / c.file) as image:
        image = image.convert("RGB")
        factor = max(1, ZOOM // max(image.size))
        return np.asarray(
            image.resize((image.width * factor, image.height * factor), Image.Resampling.NEAREST)
        )


def _details(c: Candidate, t: Thresholds) -> str:
    verdict = "✓ accepted" if c.accepted else "✗ rejected"
    how = "by hand" if c.manual else "by the thresholds"
    confidence = decisive(c.confidence, t.min_confidence, scale=100, decimals=1)
    ratio = decisive(c.memorization_ratio, t.min_memorization_ratio)
    lines = [
        f"**{c.class_name}** · seed {c.seed} · truncation {c.truncation:.2f} · step {c.step} — **{verdict}** {how}",
        f"- Confidence in {c.class_name}: **{confidence}%** (threshold {100 * t.min_confidence:g}%)"
        + (
            ""
            if c.predicted == c.class_name
            else f" · read as **{c.predicted}** ({100 * c.predicted_confidence:.1f}%)"
        ),
        f"- Memorisation ratio: **{ratio}** (threshold {t.min_memorization_ratio:g}; lower: a near-copy)"
        + (f" · nearest real image `{c.nearest_real}`" if c.nearest_real else ""),
    ]
    if c.filters:
        lines.append("- Post-processing: " + ", ".join(f"{f['name']} {f['strength']:g}" for f in c.filters))
    return "\n".join(lines)


def _size_choices(resolution: int | None) -> list[tuple[str, int]]:
    sizes = sorted({*SIZES, *([resolution] if resolution else [])})
    return [(f"{s} px" + (" (the model's resolution)" if s == resolution else ""), s) for s in sizes]


def _set_label(store_name: str | None) -> str:
    return f"set **{store_name}**" if store_name else "your private set"


def page_id(request: gr.Request | None) -> str | None:
    """Gradio's id of the page's connection (each browser tab, each API client): the owner of its
    private set."""
    return getattr(request, "session_hash", None)


def _owned(method: Callable, *, event: bool = False) -> Callable:
    """A handler that passes ``method`` the page it serves first (its Gradio connection: the owner of
    the page's private set), then the inputs; with ``event``, the select event's data last.

    The handler shows Gradio ``method``'s own parameters (the API's names), after the request."""
    if event:

        def call(request: gr.Request, evt: gr.SelectData, *args):
            return method(page_id(request), *args, evt)

    else:

        def call(request: gr.Request, *args):
            return method(page_id(request), *args)

    own = list(inspect.signature(method).parameters.values())[1:]  # without the owner
    special = list(inspect.signature(call).parameters.values())[: 2 if event else 1]
    call.__signature__ = inspect.Signature([*special, *(own[:-1] if event else own)])
    return user_errors(call)


@dataclass
class _Curate:
    """The tab's handlers; ``render`` returns (gallery, counts, status, ids, cursor, zoom, details).

    Each gets the page's owner id and the typed set name (blank: the page's private set)."""

    studio: object

    def store(self, entry, owner: str | None, set_text: str | None):
        return self.studio.curation.get(entry.id, set_name(set_text), owner)

    @staticmethod
    def shown(store, view_class, show, order) -> list[Candidate]:
        wanted = None if view_class in (None, ALL_CLASSES) else view_class
        return store.visible(wanted, show or "All", order or SORT_ORDERS[0])

    def render(self, entry, store, view_class, show, order, cursor=None, message=""):
        shown = self.shown(store, view_class, show, order)
        ids = [c.id for c in shown]
        index = ids.index(cursor) if cursor in ids else (0 if ids else None)  # a new view starts at its first
        items = [(_thumbnail(store, c), _caption(c, store.thresholds)) for c in shown]
        rows = store.counts(entry.class_names)
        t = store.thresholds
        summary = f"**{sum(r[2] for r in rows)} accepted** of {sum(r[1] for r in rows)} candidates for "
        summary += f"**{entry.id}** in {_set_label(store.set_name)} · thresholds: confidence ≥ "
        summary += f"{100 * t.min_confidence:g}%, ratio ≥ {t.min_memorization_ratio:g} · showing {len(shown)}"
        if message:
            summary = message + "\n\n" + summary
        cursor = ids[index] if index is not None else None
        zoom, details = self.zoom(store, shown[index] if index is not None else None)
        return items, rows, summary, ids, cursor, zoom, details

    @staticmethod
    def highlight(ids, cursor):
        """Mark the selected image in the gallery (a step of its own, so the API returns plain galleries)."""
        return gr.update(selected_index=ids.index(cursor) if cursor in ids else None)

    @staticmethod
    def zoom(store, candidate):
        if candidate is None:
            return None, NO_SELECTION
        return _zoomed(store, candidate), _details(candidate, store.thresholds)

    def show(self, owner, run_id, view_class, show, order, cursor=None, set_text=None):
        if not run_id:
            return [], [], "Pick a run at the top of the page.", [], None, None, NO_SELECTION
        entry = require_generator(self.studio, run_id)
        return self.render(entry, self.store(entry, owner, set_text), view_class, show, order, cursor)

    def generate(
        self,
        owner,
        run_id,
        evaluator_id,
        class_choice,
        n,
        first_seed,
        trunc,
        filters,
        *rest,
        progress=PROGRESS,
    ):
        *strengths, view_class, show, order, cursor, set_text = rest
        entry = require_generator(self.studio, run_id)
        store = self.store(entry, owner, set_text)
        evaluator_entry = require_evaluator(self.studio, evaluator_id, entry)
        chain = build_chain(filters or [], dict(zip(FILTERS, strengths)))
        progress(0.05, desc="loading the real training images")
        split = self.studio.real_data.get(entry)
        progress(0.3, desc="generating and scoring candidates")
        registry = self.studio.registry
        with (  # generator before evaluator, as everywhere: a fixed lock order cannot deadlock
            registry.use_generator(entry.id) as generator,
            registry.use_evaluator(evaluator_entry.id) as evaluator,
        ):
            _, real_features = self.studio.real_data.features(evaluator, split, "train")
            new = store.add_generated(
                generator.model, generator.info, evaluator.model, real_features, split.train_names,
                classes=class_indices(entry, class_choice), n_per_class=int(n), seed=int(first_seed),
                truncation=float(trunc), chain=chain, real_labels=split.train.labels,
            )  # fmt: skip
        message = f"Added {len(new)} candidates; {sum(c.accepted for c in new)} pass the thresholds."
        return self.render(entry, store, view_class, show, order, cursor, message)

    def thresholds(self, owner, run_id, view_class, conf, ratio, show, order, cursor=None, set_text=None):
        entry = require_generator(self.studio, run_id)
        store = self.store(entry, owner, set_text)
        store.set_thresholds(float(conf), float(ratio))
        message = "Thresholds applied (images decided by hand keep your decision)."
        return self.render(entry, store, view_class, show, order, cursor, message)

    def select(self, owner, run_id, ids, set_text, evt: gr.SelectData):
        entry = require_generator(self.studio, run_id)
        if evt.index is None or not isinstance(evt.index, int) or evt.index >= len(ids):
            return gr.skip(), gr.skip(), gr.skip()
        store = self.store(entry, owner, set_text)
        return ids[evt.index], *self.zoom(store, store.get(ids[evt.index]))

    def move(self, owner, run_id, ids, cursor, set_text, delta: int):
        entry = require_generator(self.studio, run_id)
        cursor = step_cursor(ids, cursor, delta)
        if cursor is None:
            return gr.skip(), None, None, NO_SELECTION
        store = self.store(entry, owner, set_text)
        return gr.update(selected_index=ids.index(cursor)), cursor, *self.zoom(store, store.get(cursor))

    def decide(self, owner, run_id, view_class, show, order, ids, cursor, set_text, accepted: bool):
        entry = require_generator(self.studio, run_id)
        if cursor not in ids:
            raise gr.Error("Select an image first: click it, or press → to start at the first one.")
        store = self.store(entry, owner, set_text)
        candidate = store.decide(cursor, accepted)
        verdict = "accepted" if candidate.accepted else "rejected"
        message = f"{candidate.class_name} seed {candidate.seed}: {verdict}."
        after = [c.id for c in self.shown(store, view_class, show, order)]
        return self.render(entry, store, view_class, show, order, next_cursor(ids, after, cursor), message)

    def toggle_by_id(self, owner, run_id, view_class, candidate_id, show, order, cursor=None, set_text=None):
        """API: toggle a candidate by its id."""
        entry = require_generator(self.studio, run_id)
        store = self.store(entry, owner, set_text)
        store.toggle(candidate_id)
        return self.render(entry, store, view_class, show, order, cursor)

    def export(self, owner, run_id, with_real, size, metadata_file, set_text=None, progress=PROGRESS):
        entry = require_generator(self.studio, run_id)
        store = self.store(entry, owner, set_text)
        size = check_size(size or entry.resolution)  # a whole number of pixels
        if size != entry.resolution:
            limits.refuse_above("resolution", size, f"Exporting at {size} px")
        real = {}
        if with_real:
            progress(0.1, desc="finding the real training images")
            split = self.studio.real_data.get(entry)
            real = {"real_root": split.root, "real_records": split.train.records, "real_fit": split.fit}
        progress(0.4, desc="writing the .zip")
        self.studio.prune_outputs()  # older outputs make room within GAN_STUDIO_MAX_OUTPUT_MB
        # Unique: clients exporting the same run in the same second must not write one file.
        stamp = f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(6)}"
        name = export_file_name(entry.id, stamp)
        result = store.export(
            self.studio.path("exports") / name,
            class_names=entry.class_names,
            size=size,
            metadata_file=metadata_file or METADATA_FORMATS[0],
            **real,
        )
        report = (
            f"Exported **{result.path.name}**: {result.n_generated + result.n_real} images at "
            f"{result.size} px ({result.n_generated} generated, {result.n_real} real), manifest.json and "
            f"{result.metadata_file}."
        )
        if result.warning:
            gr.Warning(result.warning, duration=20)
            report += f"\n\n⚠️ {result.warning}"
        else:
            gr.Info(f"Exported {result.path.name}")
        return str(result.path), report

    def clear(self, owner, run_id, view_class, show, order, set_text=None):
        entry = require_generator(self.studio, run_id)
        store = self.store(entry, owner, set_text)
        store.clear()
        return self.render(entry, store, view_class, show, order, None, "All candidates removed.")

    def pick_class(self, run_id, evt: gr.SelectData):
        """A click on a row of the per-class table shows that class."""
        entry = require_generator(self.studio, run_id)
        row = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
        if row is None or not 0 <= int(row) < len(entry.class_names):
            return gr.skip()
        return entry.class_names[int(row)]


def _controls() -> SimpleNamespace:
    """The left column: the set, generation, thresholds, export."""
    ui = SimpleNamespace()
    ui.set = gr.Textbox(
        value="" if limits.space_profile() else DEFAULT_SET,
        label="Set",
        placeholder="empty: private to this page",
        info="Empty: a set only this page sees, gone after the page closes. A name keeps the set across reloads and "
        "restarts, and shares it: everyone who types the same name sees and changes the same set.",
        max_lines=1,
        elem_id="curate-set",
    )
    gr.Markdown("### Candidates")
    ui.klass = gr.Dropdown(
        [ALL_CLASSES], value=ALL_CLASSES, label="Class", allow_custom_value=True, elem_id="curate-class"
    )
    ui.count = gr.Slider(1, 32, value=8, step=1, label="New candidates per class", elem_id="curate-count")
    with gr.Row():
        ui.seed = gr.Number(value=0, precision=0, **SEED_BOUNDS, label="From seed", elem_id="curate-seed")
        ui.truncation = gr.Slider(
            0.1, 1.5, value=1.0, step=0.05, label="Truncation", elem_id="curate-truncation"
        )
    with gr.Accordion("Post-processing", open=False):
        ui.enabled, ui.sliders = filter_controls("curate")
    ui.generate = gr.Button("Generate candidates", variant="primary", elem_id="curate-generate")
    gr.Markdown("### Thresholds")
    ui.min_conf = gr.Slider(
        0, 1, value=DEFAULT_MIN_CONFIDENCE, step=0.01,
        label="Min. evaluator confidence in the intended class", elem_id="curate-min-confidence",
    )  # fmt: skip
    ui.min_ratio = gr.Slider(
        0, 2, value=DEFAULT_MIN_RATIO, step=0.01,
        label="Min. memorisation ratio (below: near-copy of a training image)", elem_id="curate-min-ratio",
    )  # fmt: skip
    ui.apply = gr.Button("Apply thresholds", elem_id="curate-apply")
    gr.Markdown("### Export")
    ui.merge = gr.Checkbox(
        value=False, label="Merge in the real training images (never the test split)", elem_id="curate-merge"
    )
    ui.size = gr.Dropdown(
        _size_choices(None),
        value=64,
        label="Output size (every image, generated and real)",
        allow_custom_value=True,
        elem_id="curate-size",
    )
    ui.metadata = gr.Radio(
        list(METADATA_FORMATS), value=METADATA_FORMATS[0], label="Metadata file for Hugging Face datasets",
        info="load_dataset('imagefolder') reads either; it refuses both in one folder.", elem_id="curate-metadata",
    )  # fmt: skip
    with gr.Row():
        ui.export = gr.Button("Export .zip", variant="primary", elem_id="curate-export")
        ui.clear = gr.Button("Clear all candidates", variant="stop", elem_id="curate-clear")
    ui.file = gr.File(label="Export (ImageFolder + manifest.json + metadata)", elem_id="curate-download")
    ui.report = gr.Markdown(elem_id="curate-export-report")
    return ui


def _view() -> SimpleNamespace:
    """The right column: status, view options, the gallery beside the zoomed image, the per-class table."""
    ui = SimpleNamespace()
    ui.status = gr.Markdown("Generate candidates to start.", elem_id="curate-status")
    with gr.Row():
        ui.view_class = gr.Dropdown(
            [ALL_CLASSES],
            value=ALL_CLASSES,
            label="Show class",
            allow_custom_value=True,
            elem_id="curate-view-class",
        )
        ui.show = gr.Radio(list(SHOW_CHOICES), value="All", label="Show", elem_id="curate-show")
        ui.order = gr.Dropdown(
            list(SORT_ORDERS), value=SORT_ORDERS[0], label="Sort by", elem_id="curate-order"
        )
    gr.Markdown(
        "Frame and mark: **✓** accepted (green) · **✗** rejected (red) · **\\*** decided by hand; then the "
        "confidence in the class and the memorisation ratio. Click an image to see it large.",
        elem_id="curate-legend",
    )
    with gr.Row(equal_height=False):
        with gr.Column(scale=3, min_width=420):
            ui.gallery = gr.Gallery(
                label="Candidates", show_label=False, columns=COLUMNS, height=600, allow_preview=False,
                format="png", elem_id="curate-gallery",
            )  # fmt: skip
        with gr.Column(scale=2, min_width=300, elem_id="curate-zoom-panel"):
            ui.zoom = gr.Image(
                label="Selected image", show_label=False, interactive=False, format="png", buttons=[],
                height=ZOOM + 16, elem_id="curate-zoom",
            )  # fmt: skip
            ui.details = gr.Markdown(NO_SELECTION, elem_id="curate-details")
            with gr.Row():
                ui.accept = gr.Button("✓ Accept (A)", variant="primary", elem_id="curate-accept")
                ui.reject = gr.Button("✗ Reject (R)", variant="stop", elem_id="curate-reject")
            with gr.Row():
                ui.prev = gr.Button("◀ Previous (←)", elem_id="curate-prev")
                ui.next = gr.Button("Next (→) ▶", elem_id="curate-next")
            ui.up = gr.Button("Row up (↑)", visible="hidden", elem_id="curate-up")
            ui.down = gr.Button("Row down (↓)", visible="hidden", elem_id="curate-down")
            gr.Markdown(
                "Keys: **A** accept · **R** reject · **← →** previous / next · **↑ ↓** a row up / down"
            )
    ui.counts = gr.Dataframe(
        headers=["class", "candidates", "accepted", "rejected"],
        label="Per class (click a row to show that class)", interactive=False, elem_id="curate-counts",
    )  # fmt: skip
    return ui


def build(studio, picker) -> None:
    with gr.Row(equal_height=False):
        with gr.Column(scale=3, min_width=300, elem_classes="gs-card"):
            c = _controls()
        with gr.Column(scale=8, elem_classes="gs-card"):
            v = _view()
    _wire(studio, c, v, picker)


def _wire(studio, c: SimpleNamespace, v: SimpleNamespace, picker) -> None:
    """The tab's events: each control to its handler on ``_Curate``, with the views it updates."""
    ids, cursor = gr.State([]), gr.State(None)  # per user: the ids shown, in order, and the selected one
    h = _Curate(studio)
    view_outputs = [v.gallery, v.counts, v.status, ids, cursor, v.zoom, v.details]
    shown = [v.view_class, v.show, v.order]
    queue = {"concurrency_id": VIEW_CONCURRENCY}

    def classes(entry):
        choices = [ALL_CLASSES, *entry.class_names] if entry else [ALL_CLASSES]
        size = entry.resolution if entry else 64
        update = gr.update(choices=choices, value=ALL_CLASSES)
        return update, update, gr.update(choices=_size_choices(size), value=size)

    def highlighted(event):
        """After a view changed: mark the selected image, then scroll it into view."""
        then = event.then(h.highlight, [ids, cursor], [v.gallery], api_name=False, **queue)
        then.then(None, js=SCROLL_JS)

    picker.on_run_change(classes, [c.klass, v.view_class, c.size])
    c.klass.change(lambda k: k, [c.klass], [v.view_class], api_name=False, queue=False)  # generate, then see
    highlighted(c.generate.click(
        _owned(h.generate),
        [picker.run, picker.evaluator, c.klass, c.count, c.seed, c.truncation, c.enabled, *c.sliders.values(),
         *shown, cursor, c.set],
        view_outputs, api_name="curate_generate",
    ))  # fmt: skip
    highlighted(c.apply.click(
        _owned(h.thresholds), [picker.run, v.view_class, c.min_conf, c.min_ratio, v.show, v.order, cursor, c.set],
        view_outputs, api_name="curate_thresholds", **queue,
    ))  # fmt: skip
    for component, api in ((v.view_class, "curate_show"), (v.show, False), (v.order, False)):
        highlighted(component.change(
            _owned(h.show), [picker.run, *shown, cursor, c.set], view_outputs, api_name=api, **queue
        ))  # fmt: skip
    no_cursor = gr.State(None)  # another run or set: start at its first image
    for event in (picker.run.change, c.set.submit, c.set.blur):
        event(_owned(h.show), [picker.run, *shown, no_cursor, c.set], view_outputs, api_name=False)
    v.gallery.select(
        _owned(h.select, event=True), [picker.run, ids, c.set], [cursor, v.zoom, v.details], api_name=False,
        trigger_mode="multiple", **queue,
    )  # fmt: skip
    for button, delta in ((v.prev, -1), (v.next, 1), (v.up, -COLUMNS), (v.down, COLUMNS)):
        button.click(
            _owned(partial(h.move, delta=delta)), [picker.run, ids, cursor, c.set],
            [v.gallery, cursor, v.zoom, v.details], api_name=False, trigger_mode="multiple", **queue,
        ).then(None, js=SCROLL_JS)  # fmt: skip
    for button, accepted in ((v.accept, True), (v.reject, False)):
        highlighted(button.click(
            _owned(partial(h.decide, accepted=accepted)), [picker.run, *shown, ids, cursor, c.set], view_outputs,
            api_name=False, trigger_mode="multiple", **queue,
        ))  # fmt: skip
    toggle_id = gr.Textbox(visible=False, elem_id="curate-toggle-id")
    highlighted(toggle_id.submit(
        _owned(h.toggle_by_id), [picker.run, v.view_class, toggle_id, v.show, v.order, cursor, c.set],
        view_outputs, api_name="curate_toggle", **queue,
    ))  # fmt: skip
    v.counts.select(user_errors(h.pick_class), [picker.run], [v.view_class], api_name=False)
    c.export.click(
        _owned(h.export), [picker.run, c.merge, c.size, c.metadata, c.set], [c.file, c.report],
        api_name="curate_export",
    )  # fmt: skip
    highlighted(c.clear.click(
        _owned(h.clear), [picker.run, *shown, c.set], view_outputs, api_name="curate_clear", **queue
    ))  # fmt: skip


def page_closed(studio) -> Callable:
    """For ``demo.unload``: a closed page's private sets go an hour later (no one can reach them)."""

    def closed(request: gr.Request):
        studio.curation.closed(page_id(request))

    return closed
