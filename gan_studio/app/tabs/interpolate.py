"""Interpolate tab: a walk between two seeds (and optionally two classes) as filmstrip, GIF and MP4.

Layout (``_layout``), handler (a module function given the studio) and wiring (``_wire``) apart.
"""

from __future__ import annotations

from types import SimpleNamespace

import gradio as gr

from gan_studio.app.common import PROGRESS, SEED_BOUNDS, class_pickers, handler, require_generator
from gan_studio.app.interpolation import (
    METHODS,
    filmstrip,
    mp4_available,
    render_frames,
    write_gif,
    write_mp4,
)
from gan_studio.sampling import safe_name

SAME_CLASS = "(same as start)"


# ------------------------------------------------------------------------------------------------ handler


def interpolate(studio, run_id, ca, sa, cb, sb, n_frames, how, speed, trunc, progress=PROGRESS):
    """The frames of the walk as a filmstrip, a GIF and (with ffmpeg) an MP4 to download."""
    entry = require_generator(studio, run_id)
    if ca not in entry.class_names:
        raise gr.Error(f"Pick a start class of '{entry.id}'.")
    a = entry.class_names.index(ca)
    b = entry.class_names.index(cb) if cb and cb != SAME_CLASS else None
    if cb and cb != SAME_CLASS and cb not in entry.class_names:
        raise gr.Error(f"'{cb}' is not a class of '{entry.id}'.")
    progress(0.1, desc="generating frames")
    with studio.registry.use_generator(entry.id) as loaded:
        images = render_frames(
            loaded.model, int(sa), int(sb), a, b, frames=int(n_frames), method=how, truncation=float(trunc)
        )
    progress(0.6, desc="writing the animation")
    out = studio.scratch_dir("interp")
    stem = safe_name(f"{entry.id}-{ca}{sa}-to-{cb if b is not None else ca}{sb}-{how}")
    gif_path = write_gif(images, out / f"{stem}.gif", fps=float(speed))
    downloads = [str(gif_path)]
    if mp4_available():
        downloads.append(str(write_mp4(images, out / f"{stem}.mp4", fps=float(speed))))
    return filmstrip(images, max_columns=6), str(gif_path), downloads


# ------------------------------------------------------------------------------------------------ layout


def _layout() -> SimpleNamespace:
    ui = SimpleNamespace()
    with gr.Row(equal_height=False):
        with gr.Column(scale=3, elem_classes="gs-card"):
            with gr.Row():
                ui.class_a = gr.Dropdown(  # twice the seed's width: "(same as start)" shows in full
                    [], label="Start class", allow_custom_value=True, elem_id="interp-class-a", scale=2
                )
                ui.seed_a = gr.Number(
                    value=0, precision=0, **SEED_BOUNDS, label="Start seed", elem_id="interp-seed-a"
                )
            with gr.Row():
                ui.class_b = gr.Dropdown(
                    [SAME_CLASS], value=SAME_CLASS, label="End class", allow_custom_value=True,
                    elem_id="interp-class-b", scale=2,
                )  # fmt: skip
                ui.seed_b = gr.Number(
                    value=1, precision=0, **SEED_BOUNDS, label="End seed", elem_id="interp-seed-b"
                )
            ui.frames = gr.Slider(2, 48, value=12, step=1, label="Frames", elem_id="interp-frames")
            with gr.Row():
                ui.method = gr.Radio(list(METHODS), value="slerp", label="Path", elem_id="interp-method")
                ui.fps = gr.Slider(
                    2, 30, value=10, step=1, label="GIF frames per second", elem_id="interp-fps"
                )
            ui.truncation = gr.Slider(
                0.1, 1.5, value=1.0, step=0.05, label="Truncation", elem_id="interp-truncation"
            )
            ui.go = gr.Button("Interpolate", variant="primary", elem_id="interp-run")
            gr.Markdown(
                "MP4 export is available."
                if mp4_available()
                else "MP4 export needs `pip install imageio-ffmpeg`; the animated GIF works without it.",
                elem_id="interp-mp4-note",
            )
        with gr.Column(scale=7, elem_classes="gs-card"):
            ui.strip = gr.Image(
                label="Filmstrip", type="pil", format="png", interactive=False, elem_id="interp-filmstrip"
            )
            with gr.Row():
                ui.gif = gr.Image(
                    label="Animated GIF", type="filepath", interactive=False, elem_id="interp-gif", height=300
                )
                ui.files = gr.File(label="Downloads", file_count="multiple", elem_id="interp-download")
    return ui


# ------------------------------------------------------------------------------------------------ wiring


def _wire(studio, ui: SimpleNamespace, picker) -> None:
    picker.on_run_change(class_pickers(SAME_CLASS), [ui.class_a, ui.class_b])
    inputs = [picker.run, ui.class_a, ui.seed_a, ui.class_b, ui.seed_b, ui.frames, ui.method, ui.fps,
              ui.truncation]  # fmt: skip
    ui.go.click(handler(interpolate, studio), inputs, [ui.strip, ui.gif, ui.files], api_name="interpolate")


def build(studio, picker) -> None:
    _wire(studio, _layout(), picker)
