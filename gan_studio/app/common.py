"""Small helpers the tabs share: user-facing errors, model look-ups, image conversions, captions."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from pathlib import Path

import gradio as gr
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from gan_studio.app.registry import EVALUATOR, GENERATOR, ModelEntry
from gan_studio.data import DatasetError
from gan_studio.metrics.history import sample_size
from gan_studio.training.checkpoint import CheckpointError
from gan_studio.utils.numbers import MAX_COUNT, MAX_SEED

ALL_CLASSES = "All classes"
NO_RUN = (
    "**No trained run yet.** Start one in the **Train** tab (a first look at 64 px takes a few minutes on a "
    "CPU), or put a packaged run in `checkpoints/` (e.g. `python -m gan_studio pull USER/REPO --local-dir "
    "checkpoints/NAME`) and press **↻ Refresh**."
)
# Gradio swaps a fresh tracker in for each call, so one shared default is safe (and keeps ruff's B008 quiet).
# No track_tqdm: its patched tqdm fails to close bars that wrap generators (the dataset scanner's pool.map),
# so handlers report their stages themselves.
PROGRESS = gr.Progress()
_USER_ERRORS = (DatasetError, CheckpointError, FileNotFoundError, ValueError, KeyError, RuntimeError)
# Every number field an API caller can fill has a range; Gradio refuses a value outside it before a
# handler runs. Counts whose real ceiling is a deployment limit (steps, batch) are checked again by
# the handler against that limit (gan_studio/utils/limits.py), with a message naming its variable.
SEED_BOUNDS = {"minimum": 0, "maximum": MAX_SEED}
COUNT_BOUNDS = {"minimum": 1, "maximum": MAX_COUNT}


def _not_finite(values) -> float | None:
    """The first float among ``values`` that is NaN or infinite (Gradio's range check lets NaN through)."""
    return next((v for v in values if isinstance(v, float) and not math.isfinite(v)), None)


def user_errors(fn: Callable) -> Callable:
    """Turn the errors a user can fix into a gr.Error toast carrying their message (no traceback)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        bad = _not_finite([*args, *kwargs.values()])
        if bad is not None:
            raise gr.Error(f"Numbers must be finite; this request holds {bad}.", duration=12)
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except _USER_ERRORS as error:
            message = error.args[0] if isinstance(error, KeyError) and error.args else str(error)
            raise gr.Error(str(message), duration=12) from None

    return wrapper


def handler(fn: Callable, *services) -> Callable:
    """A Gradio handler from a module-level function: ``services`` bound to its first parameters, and
    user-fixable errors turned into toasts. Gradio still sees the rest of the signature (gr.Progress, defaults)."""
    return user_errors(functools.partial(fn, *services))


def require_generator(studio, run_id: str | None) -> ModelEntry:
    if not run_id:
        raise gr.Error(
            "Pick a run first (top of the page). No run yet? Train one in the Train tab, or put a packaged "
            "run in checkpoints/ and press Refresh."
        )
    return studio.registry.get(GENERATOR, run_id)


def require_evaluator(studio, evaluator_id: str | None, generator: ModelEntry) -> ModelEntry:
    if not evaluator_id:
        raise gr.Error(
            f"'{generator.id}' has no evaluator yet: train one in the Evaluate tab (a minute or two), then pick it "
            "at the top of the page."
        )
    entry = studio.registry.get(EVALUATOR, evaluator_id)
    if tuple(entry.class_names) != tuple(generator.class_names):
        raise gr.Error(
            f"The evaluator '{entry.id}' was trained on other classes than '{generator.id}'; pick another."
        )
    return entry


def class_indices(entry: ModelEntry, choice: str | None) -> list[int]:
    """[all classes] or [the chosen one]."""
    if not choice or choice == ALL_CLASSES:
        return list(range(len(entry.class_names)))
    if choice not in entry.class_names:
        raise gr.Error(
            f"'{choice}' is not a class of '{entry.id}'. Its classes: {', '.join(entry.class_names)}."
        )
    return [entry.class_names.index(choice)]


def percent(value: float) -> str:
    return f"{100 * value:.0f}%"


def decisive(value: float, threshold: float, *, scale: float = 1.0, decimals: int = 2) -> str:
    """``value * scale`` with enough decimals that its side of ``threshold`` shows: 59.7 and 60.2 at 60.

    Rounding alone can print a value just under the threshold as the threshold itself."""
    for places in range(decimals, decimals + 6):
        shown, bar = f"{value * scale:.{places}f}", f"{threshold * scale:.{places}f}"
        if (float(shown) >= float(bar)) == (value >= threshold):
            return shown
    return f"{value * scale:.{decimals + 6}f}"


def prediction_caption(class_names, probs_row: np.ndarray, intended: int | None = None) -> str:
    """'✓ 92%' when the evaluator agrees with the intended class, else '→ Clamp 40%'."""
    predicted = int(probs_row.argmax())
    confidence = percent(float(probs_row[predicted]))
    if intended is not None and predicted == intended:
        return f"✓ {confidence}"
    return f"→ {class_names[predicted]} {confidence}"


MIN_DISPLAY_WIDTH = 480  # px: narrower images (16 px reconstructions, a 32 px run's grid) are enlarged


def upscaled(image: Image.Image | str | Path, min_width: int = MIN_DISPLAY_WIDTH) -> Image.Image:
    """The image enlarged by a whole factor, nearest neighbour (each pixel a crisp square, nothing
    invented between them), until it is at least ``min_width`` wide; as it is when already that wide."""
    if not isinstance(image, Image.Image):
        with Image.open(image) as opened:
            image = opened.convert("RGB")
    factor = max(1, -(-min_width // max(1, image.width)))
    if factor == 1:
        return image
    return image.resize((image.width * factor, image.height * factor), Image.Resampling.NEAREST)


def for_display(path: str | Path) -> str | Image.Image:
    """An image file for a gr.Image: the file itself when wide enough, else an enlarged copy (``upscaled``)."""
    with Image.open(path) as image:
        if image.width >= MIN_DISPLAY_WIDTH:
            return str(path)
        return upscaled(image.convert("RGB"))


def resolution_warning(generator: ModelEntry | None, evaluator: ModelEntry | None) -> str | None:
    """A warning when the evaluator judges images at another size than the generator makes them."""
    if generator is None or evaluator is None or generator.resolution == evaluator.resolution:
        return None
    return (
        f"⚠ The evaluator '{evaluator.id}' was trained on {evaluator.resolution} px images and '{generator.id}' "
        f"makes {generator.resolution} px ones: each is resized for it, so its verdicts and CAS measure "
        "the resizing too. Train an evaluator at the run's size (Evaluate tab) for numbers you can compare."
    )


INK, GOOD, BAD = (30, 41, 59), (21, 128, 61), (185, 28, 28)
TILE_FONT = 16  # px: the verdict under a labelled tile, at the tile's own size


def labelled_tile(image: np.ndarray, lines: list[tuple[str, tuple]], width: int = 224) -> np.ndarray:
    """The image scaled to ``width`` with (text, colour) lines under it: a verdict readable without hovering.

    Colour, not symbols: Pillow's built-in font has no check marks, and no other font is guaranteed."""
    pil = Image.fromarray(image).resize(
        (width, width * image.shape[0] // image.shape[1]), Image.Resampling.LANCZOS
    )
    font = ImageFont.load_default(size=TILE_FONT)
    tile = Image.new("RGB", (pil.width, pil.height + 10 + 20 * len(lines)), (255, 255, 255))
    tile.paste(pil, (0, 0))
    draw = ImageDraw.Draw(tile)
    for i, (line, colour) in enumerate(lines):
        draw.text((8, pil.height + 5 + 20 * i), line, fill=colour, font=font)
    return np.asarray(tile)


def metrics_basis(entry: ModelEntry) -> str:
    """' on 200 generated + 140 real train per class' (and the step, when the run has moved on since):
    what the picker line's figures were computed on; '' for an evaluation that does not say."""
    meta = entry.metrics_meta
    if meta.get("n_per_class") is None:
        return ""
    basis = f" on {sample_size(meta, len(entry.class_names))}"
    step = meta.get("step")
    if isinstance(step, int) and step > 0 and step != entry.step:
        basis += f" at step {step}"
    return basis


def entry_markdown(entry: ModelEntry | None, evaluator: ModelEntry | None) -> str:
    """The metadata line under the model picker."""
    if entry is None:
        return ""  # the no-run banner says what to do
    bits = [f"**{entry.id}**", f"{len(entry.class_names)} classes", f"{entry.resolution} px"]
    if entry.step > 0:
        bits.append(f"step {entry.step}")
    if entry.dataset:
        bits.append(f"data: `{Path(str(entry.dataset)).name or entry.dataset}`")
    if entry.state:
        bits.append(f"training: {entry.state}")
    metrics = entry.metrics
    if metrics:
        shown = []
        # Near-copies get a decimal: the bar is 1%, and 0.55% must not read as "1%".
        for key, label, fmt in (
            ("cas", "CAS", percent),
            ("c2st", "C2ST", lambda v: f"{100 * v:.1f}%"),  # 99.6% is not "100%": always told apart
            ("fid", "FID", "{:.3g}".format),
            ("precision", "precision", "{:.3g}".format),
            ("coverage", "coverage", "{:.3g}".format),
            ("memorization", "near-copies", lambda v: f"{100 * v:.1f}%"),
        ):
            if key in metrics:
                shown.append(f"{label} {fmt(metrics[key])}")
        bits.append(f"metrics{metrics_basis(entry)}: " + ", ".join(shown))
    if evaluator is not None and "test_accuracy" in evaluator.metrics:
        bits.append(f"evaluator test accuracy {percent(evaluator.metrics['test_accuracy'])}")
    warning = resolution_warning(entry, evaluator)
    return " · ".join(bits) + (f"\n\n**{warning}**" if warning else "")


def class_pickers(first_choice: str) -> Callable:
    """For ``picker.on_run_change``: a class picker set to the run's first class, and a second one
    that offers ``first_choice`` before the classes and starts on it ("Predicted class", "same as start")."""

    def updates(entry):
        classes = list(entry.class_names) if entry else []
        return (
            gr.update(choices=classes, value=classes[0] if classes else None),
            gr.update(choices=[first_choice, *classes], value=first_choice),
        )

    return updates
