"""What a newcomer sees first, and the training view: the tab the app opens on, the recipe it offers, the
sample grids to scrub through, two runs on one plot, readable images, and the warnings that used to be
missing (tiny classes, an evaluator of another resolution). Handlers are called directly, without a page.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
import torch
from PIL import Image

from gan_studio.app.common import (
    MIN_DISPLAY_WIDTH,
    entry_markdown,
    for_display,
    resolution_warning,
    upscaled,
)
from gan_studio.app.interpolation import FILMSTRIP_FRAME, filmstrip
from gan_studio.app.registry import EVALUATOR, GENERATOR, ModelRegistry
from gan_studio.app.tabs import train
from gan_studio.app.training_manager import TrainingManager, comparison_figure, default_recipe, logged_cas
from gan_studio.app.ui import opening_tab
from gan_studio.data import DatasetError
from gan_studio.evaluation.commands import _resolution_warnings
from gan_studio.training.recipes import builtin_recipes
from gan_studio.training.run_folder import RunFolder
from gan_studio.training.samples import RECONSTRUCTION_TILE
from gan_studio.utils.images import LABEL_FONT_SIZE, grid_layout, label_size

FOLDER = train.SOURCES[1]


def no_progress(*args, **kwargs) -> None:
    pass


def services(runs_dir: Path, roots: list[Path] | None = None) -> train.TrainServices:
    registry = ModelRegistry([*(roots or []), runs_dir], device="cpu")
    return train.TrainServices(
        training=TrainingManager(runs_dir),
        registry=registry,
        runs_dir=runs_dir,
        check_folder=Path,
        uploads_dir=lambda: runs_dir.parent / "uploads",
        run_choices=lambda: [(e.label, e.id) for e in registry.generators()],
    )


@pytest.fixture
def runs(tmp_path, tiny_run) -> Path:
    """An app workspace's runs/ with two copies of the tiny run (steps 3 and 6 saved a grid each)."""
    folder = tmp_path / "runs"
    for name in ("first", "second"):
        shutil.copytree(tiny_run, folder / name)
    return folder


# ----------------------------------------------------------------------------- first impression


def test_the_app_opens_on_sample_when_a_model_is_ready_else_on_train(tmp_path, tiny_run):
    assert opening_tab(ModelRegistry([tmp_path / "empty"], device="cpu")) == "train"
    assert opening_tab(ModelRegistry([tiny_run.parent], device="cpu")) == "sample"
    # A run that has not saved a checkpoint yet has nothing to sample from.
    started = tmp_path / "started" / "run"
    started.mkdir(parents=True)
    shutil.copy2(tiny_run / "run.json", started / "run.json")
    registry = ModelRegistry([started.parent], device="cpu")
    assert [e.id for e in registry.generators()] == ["run"] and opening_tab(registry) == "train"


@pytest.mark.parametrize(("cuda", "recipe"), [(False, "photos-cpu-64"), (True, "gpu-128")])
def test_the_train_tab_offers_the_recipe_of_this_machine(monkeypatch, cuda, recipe):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    assert default_recipe() == recipe and recipe in builtin_recipes()


def test_warm_ups_load_the_generator_the_picker_offers_first(tmp_path, tiny_run):
    from gan_studio.app import create_studio

    studio = create_studio(
        workdir=tmp_path / "w", checkpoint_dirs=[tiny_run.parent], device="cpu", warm_up_umap=False
    )
    assert studio.registry.loaded_ids() == []  # nothing loads while the app starts
    studio.start_warm_ups(umap=False).join(timeout=120)
    assert (GENERATOR, "tiny") in studio.registry.loaded_ids()


# ----------------------------------------------------------------------------- sample grids over time


def test_a_run_lists_its_sample_grids_by_step(tiny_run):
    grids = RunFolder(tiny_run).sample_grids()
    assert [step for step, _ in grids] == [3, 6]
    assert all(path.is_file() and path.name.startswith("step_") for _, path in grids)
    assert RunFolder(tiny_run / "nope").sample_grids() == []


def test_the_grid_slider_stops_at_grids_and_names_the_step():
    grids = [(250, Path("a")), (500, Path("b")), (1000, Path("c"))]
    slider = train.grid_slider(grids, 1000)
    assert (slider["minimum"], slider["maximum"], slider["step"], slider["value"]) == (250, 1000, 250, 1000)
    assert train.grid_slider(grids[:1])["visible"] is False  # one grid: nothing to scrub
    assert [train.grid_at(grids, step) for step in (0, 250, 700, 1000, None)] == [0, 0, 1, 2, 0]
    assert "step 500" in train.grid_note(grids, 1) and "grid 2 of 3" in train.grid_note(grids, 1)
    assert "the latest" in train.grid_note(grids, 2)


def test_scrubbing_shows_an_earlier_grid_and_a_new_grid_does_not_pull_the_user_back(runs):
    svc = services(runs)
    first = train.poll(svc, "first", None)
    signature = first[-1]
    samples, slider, note = first[3], first[8], first[9]
    grids = RunFolder(runs / "first").sample_grids()
    assert slider["value"] == 6 and "step 6" in note
    assert np.array_equal(np.asarray(display(samples)), np.asarray(display(for_display(grids[-1][1]))))

    image, note, chosen = train.show_grid(svc, "first", 4)  # between the grids: the one before
    assert "step 3" in note and chosen == 3
    assert np.array_equal(np.asarray(display(image)), np.asarray(display(for_display(grids[0][1]))))
    assert train.show_grid(svc, "first", 6)[2] is None  # back at the latest grid: follow the run again

    shutil.copy2(grids[0][1], runs / "first" / "samples" / "step_0000009.png")  # the run goes on
    kept = train.poll(svc, "first", signature, 3)  # the user looks at step 3
    assert kept[3] == gr.skip()  # the image stays
    assert kept[8]["maximum"] == 9 and "value" not in kept[8] and "step 3" in kept[9]
    followed = train.poll(svc, "first", signature, None)  # the user follows the run
    assert followed[8]["value"] == 9 and "step 9" in followed[9]


def display(value) -> Image.Image:
    return value if isinstance(value, Image.Image) else Image.open(value)


# ----------------------------------------------------------------------------- two runs on one plot


def test_two_runs_on_one_plot_with_the_cas_of_an_evaluated_one(runs):
    evaluation = runs / "second" / "evaluation"
    evaluation.mkdir()
    metrics = {"meta": {"step": 6, "resolution": 32}, "metrics": {"cas": {"value": 0.42, "label": "CAS"}}}
    (evaluation / "metrics.json").write_text(json.dumps(metrics))
    assert logged_cas(runs / "second") == [(6, 0.42)] and logged_cas(runs / "first") == []

    figure, note = train.compare(services(runs), "first", "second")
    names = [trace.name for trace in figure.data]
    assert {"first · G loss", "second · G loss", "first · D loss (real)", "second · CAS"} <= set(names)
    assert "first · CAS" not in names and "second" in note
    assert not any("guide" in name for name in names)  # the tiny runs train without a guide
    cas = next(trace for trace in figure.data if trace.name == "second · CAS")
    assert list(cas.x) == [6] and list(cas.y) == [0.42]
    colours = {trace.line.color for trace in figure.data if trace.name.startswith("first")}
    assert len(colours) == 1 and colours != {
        t.line.color for t in figure.data if t.name.startswith("second ·")
    }


def test_comparing_needs_two_different_runs(runs):
    svc = services(runs)
    with pytest.raises(gr.Error, match="two different runs"):
        train.compare(svc, "first", "first")
    with pytest.raises(gr.Error, match="Choose two runs"):
        train.compare(svc, "first", None)
    figure = comparison_figure([("only", [{"step": 1, "loss_g": 1.0}], [])])
    assert [trace.name for trace in figure.data] == ["only · G loss"]
    guided = [{"step": 1, "loss_g": 1.0, "loss_guide": 0.5, "acc_guide_fake": 0.25}]
    figure = comparison_figure([("guided", guided, [])])
    assert [t.name for t in figure.data] == ["guided · G loss", "guided · guide accuracy on fakes"]


# ----------------------------------------------------------------------------- readable images


def test_small_images_are_enlarged_by_whole_factors_with_their_pixels_kept(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 255, (12, 100, 3), dtype=np.uint8)
    big = upscaled(Image.fromarray(pixels))
    factor = -(-MIN_DISPLAY_WIDTH // 100)
    assert big.size == (100 * factor, 12 * factor)
    assert np.array_equal(np.asarray(big)[::factor, ::factor], pixels)  # nearest: each pixel a square
    wide = tmp_path / "wide.png"
    Image.new("RGB", (MIN_DISPLAY_WIDTH, 10)).save(wide)
    assert for_display(wide) == str(wide)  # wide enough: the file itself


def test_filmstrip_frames_are_enlarged_to_a_readable_size():
    frames = torch.randint(0, 255, (3, 3, 32, 32), dtype=torch.uint8)
    strip = np.asarray(filmstrip(frames, max_columns=3))
    factor = FILMSTRIP_FRAME // 32
    layout = grid_layout(3, 3, FILMSTRIP_FRAME, FILMSTRIP_FRAME)
    assert strip.shape[:2] == layout.size[::-1]
    x, y = layout.tile_xy(0, 1)
    tile = strip[y : y + FILMSTRIP_FRAME, x : x + FILMSTRIP_FRAME]
    assert np.array_equal(tile[::factor, ::factor], frames[1].permute(1, 2, 0).numpy())


def test_reconstructions_are_saved_in_tiles_people_can_read(tiny_run):
    with Image.open(tiny_run / "samples" / "reconstructions.png") as image:
        size = image.size
    images = min(8, json.loads((tiny_run / "data_report.json").read_text())["num_images"])
    rows = ["real", "D: whole", "D: small", "D: top-left"]
    layout = grid_layout(4 * images, images, RECONSTRUCTION_TILE, RECONSTRUCTION_TILE, row_labels=rows)
    assert size == layout.size  # D reconstructs 16 px at 32 px; the file shows 64 px tiles


def test_grid_labels_grow_with_the_tiles():
    assert label_size(16) == label_size(64) == LABEL_FONT_SIZE >= 12
    assert label_size(256) == 64  # a 256 px grid shown at a quarter of its size still reads at 16 px
    assert (
        grid_layout(8, 8, 256, 256, row_labels=["Clamp"]).label_width
        > grid_layout(8, 8, 64, 64, row_labels=["Clamp"]).label_width
    )


# ----------------------------------------------------------------------------- the dataset check


def write_class(root: Path, name: str, n: int) -> None:
    (root / name).mkdir(parents=True)
    rng = np.random.default_rng(len(name))
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(root / name / f"{i}.png")


def test_a_tiny_class_passes_the_check_with_a_warning(tmp_path):
    data = tmp_path / "data"
    write_class(data, "Tiny", 2)
    write_class(data, "Plenty", 12)
    report, counts = train.check(services(tmp_path / "runs"), FOLDER, str(data), None, progress=no_progress)
    assert "2 classes · 14 usable images" in report
    assert "⚠" in report and "Tiny (2)" in report and "Plenty (" not in report
    assert counts["visible"] is True
    from gan_studio.data import scan_image_folder

    _, scanned = scan_image_folder(data, progress=False)
    assert "Warning:" in scanned.summary() and scanned.small_classes() == {"Tiny": 2}


def test_a_new_check_or_source_clears_the_last_report_first(tmp_path):
    report, counts = train.clear_check()
    assert report == "" and counts["visible"] is False and counts["value"] is None
    *_, source_report, source_counts = train.show_source(train.SOURCES[0])
    assert source_report == "" and source_counts["visible"] is False
    with pytest.raises(DatasetError):  # the check that follows fails: the report stays cleared
        train.check(services(tmp_path / "runs"), FOLDER, str(tmp_path / "nope"), None, progress=no_progress)


# ----------------------------------------------------------------------------- an evaluator of another size


def test_an_evaluator_of_another_resolution_is_named_in_a_warning(tiny_run):
    from dataclasses import replace

    generator = ModelRegistry([tiny_run.parent], device="cpu").get(GENERATOR, "tiny")
    same = replace(generator, id="judge", kind=EVALUATOR, resolution=generator.resolution)
    other = replace(same, resolution=64)
    assert resolution_warning(generator, same) is None and resolution_warning(generator, None) is None
    warning = resolution_warning(generator, other)
    assert "64 px" in warning and "32 px" in warning
    assert warning in entry_markdown(generator, other) and "⚠" not in entry_markdown(generator, same)
    assert (
        _resolution_warnings(32, 32) == [] and "train-evaluator --res 32" in _resolution_warnings(64, 32)[0]
    )


def test_sample_shows_before_and_after_only_with_a_filter_and_names_an_evaluator_of_another_size(
    tmp_path, tiny_run
):
    from gan_studio.app import create_studio
    from gan_studio.app.tabs.sample import draw, show_before_after
    from tests.conftest import REPO

    studio = create_studio(
        workdir=tmp_path / "w", checkpoint_dirs=[tiny_run.parent, REPO / "checkpoints"], device="cpu",
        warm_up_umap=False,
    )  # fmt: skip
    judge = next(e for e in studio.registry.evaluators() if e.resolution == 64)  # the shipped evaluator
    controls = (3, 40, 80, 1.2)  # the filters' strengths
    items, first, _, note, pairs = draw(
        studio, "tiny", judge.id, "Nut", 2, 0, 1.0, [], *controls, progress=no_progress
    )
    assert len(items) == 2 and first is None and pairs == []  # no filter: nothing to compare
    assert "the evaluator recognises" in note and "64 px" in note and "32 px" in note
    assert show_before_after(pairs)["visible"] is False
    _, first, _, _, pairs = draw(
        studio, "tiny", None, "Nut", 2, 0, 1.0, ["median"], *controls, progress=no_progress
    )
    assert len(pairs) == 2 and first == pairs[0] and first[0] != first[1]
    assert show_before_after(pairs)["visible"] is True
