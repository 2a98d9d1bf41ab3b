"""The app in a real browser (Playwright + Debian chromium): every tab, its main action, what the user sees.

The app is launched once over the session's tiny run and tiny evaluator (tests/conftest.py,
tests/app_support.py). The tests below share one page and run in file order, like a user clicking
through the tabs; each saves a screenshot under tests/artifacts/ (git-ignored).
"""

from __future__ import annotations

import json
import re
import shutil
import zipfile
from pathlib import Path

from PIL import Image

from gan_studio.app.common import TILE_FONT
from gan_studio.app.export import SavedExport
from gan_studio.app.interpolation import FILMSTRIP_FRAME
from gan_studio.utils.images import label_size
from tests.app_support import tiny_evaluator
from tests.browser_support import (
    BROWSER_MARKS,
    SECOND,
    app_fixture,
    choose,
    open_tab,
    page_fixture,
    playwright_expect,
    screenshots,
    set_number,
    shown_and_drawn,
    thumbnails,
)

pytestmark = BROWSER_MARKS
expect = playwright_expect()


def _picked(page) -> None:
    """demo.load filled the picker: the tiny run and its evaluator are picked."""
    expect(page.locator("#picker-info")).to_contain_text("tiny", timeout=120 * SECOND)
    expect(page.locator("#picker-evaluator input")).to_have_value(re.compile("tiny-evaluator"))


app = app_fixture("browser-studio")
page = page_fixture(ready=_picked)
screenshot = screenshots("browser", full_page=True)


def shown_text_px(page, selector: str, drawn: Path, font_px: int) -> float:
    """How tall, on the page, text drawn ``font_px`` high into the image file ``drawn`` is: the page may
    show an enlarged copy of the file, or the file made smaller to fit."""
    shown = shown_and_drawn(page.locator(selector))[0]["width"]
    with Image.open(drawn) as image:
        return font_px * shown / image.width


def test_opens_on_the_sample_tab_with_a_ready_run(page):
    expect(page.get_by_role("tab", name="Sample", exact=True)).to_have_attribute("aria-selected", "true")
    expect(page.locator("#tab-sample")).to_be_visible()
    expect(page.locator("#tab-train")).to_be_hidden()


def test_train_tab_recipe_shows_its_plan_and_fills_the_fields(page):
    open_tab(page, "Train", "train")
    expect(page.locator("#train-recipe input")).to_have_value("photos-cpu-64")  # no GPU here
    choose(page, "train-recipe", "vise-parts-64")
    plan = page.locator("#train-recipe-plan")
    expect(plan).to_contain_text("checkpoints/vise-parts")
    expect(plan).to_contain_text("phase from_step 7500): guide_weight=1.0")
    expect(plan).to_contain_text("phase from_step 9500): guide_confidence=0.8")
    expect(page.locator("#train-steps input[type=number]")).to_have_value("10000")
    choose(page, "train-recipe", "custom")  # the CLI's own defaults
    expect(plan).to_contain_text("no guide classifier")
    expect(page.locator("#train-steps input[type=number]")).to_have_value("5000")
    screenshot(page, "0-train-recipe")


def test_train_tab_check_warns_of_small_classes_and_a_failed_check_leaves_no_stale_report(page):
    open_tab(page, "Train", "train")
    report = page.locator("#train-report")
    page.locator("#train-check").click()
    expect(report).to_contain_text("10 classes · 80 usable images")
    expect(report).to_contain_text("10 class(es) with fewer than 10 usable images")  # 8 of each here
    expect(page.locator("#train-counts")).to_be_visible()
    folder = page.locator("#train-folder textarea, #train-folder input").first
    original = folder.input_value()
    folder.fill(original + "-missing")
    page.locator("#train-check").click()
    expect(page.locator('[data-testid="toast-body"]').first).to_contain_text("does not exist")
    expect(report).not_to_contain_text("usable images")  # not the previous dataset's report
    expect(page.locator("#train-counts")).to_be_hidden()
    folder.fill(original)


def test_train_tab_trains_a_few_steps(page, app):
    panel = open_tab(page, "Train", "train")
    choose(page, "train-recipe", "custom")
    expect(page.locator("#train-folder textarea, #train-folder input").first).to_have_value(
        re.compile("vise")
    )
    page.locator("#train-check").click()
    expect(page.locator("#train-report")).to_contain_text("10 classes · 80 usable images")

    page.locator("#train-name textarea, #train-name input").first.fill("browser run")
    choose(page, "train-res", "32")
    set_number(page, "train-steps", 4)
    set_number(page, "train-batch", 4)
    panel.get_by_text("Advanced", exact=True).click()
    choose(page, "train-width", "8")
    choose(page, "train-zdim", "16")
    set_number(page, "train-sample-every", 2)
    set_number(page, "train-ckpt-every", 2)
    page.locator("#train-start").click()

    expect(page.locator("#train-watch input")).to_have_value("browser-run")
    status = page.locator("#train-status")
    expect(status).to_contain_text("finished", timeout=240 * SECOND)
    expect(status).to_contain_text("step 4 / 4")
    expect(page.locator('#train-progress .gs-progress[data-state="finished"]')).to_be_attached()
    expect(page.locator("#train-samples img")).to_be_visible()
    expect(page.locator("#train-recon img")).to_be_visible()
    expect(page.locator("#train-losses .js-plotly-plot")).to_be_visible()
    expect(page.locator("#train-checkpoints")).to_contain_text("4")
    run = app[1].runs_dir / "browser-run"
    assert run.is_dir()
    # The labels drawn into the 32 px grid and into D's reconstructions read at 12 px or more.
    expect(page.locator("#train-grid-note")).to_contain_text("step 4")
    samples = shown_text_px(page, "#train-samples img", run / "samples" / "step_0000004.png", label_size(32))
    recon = shown_text_px(page, "#train-recon img", run / "samples" / "reconstructions.png", label_size(64))
    assert samples >= 12 and recon >= 12, (samples, recon)
    screenshot(page, "1-train")


def test_train_tab_scrubs_back_through_the_sample_grids(page):
    note = page.locator("#train-grid-note")
    expect(note).to_contain_text("step 4 (grid 2 of 2, the latest)")
    latest = page.locator("#train-samples img").get_attribute("src")
    set_number(page, "train-grid-step", 2)
    expect(note).to_contain_text("step 2 (grid 1 of 2, latest: step 4)")
    expect(page.locator("#train-samples img")).not_to_have_attribute("src", latest)
    page.wait_for_timeout(2500)  # a poll or two of the finished run: the user's grid stays
    expect(note).to_contain_text("step 2")
    set_number(page, "train-grid-step", 4)
    expect(note).to_contain_text("step 4")


def test_train_tab_compares_two_runs_on_one_plot(page):
    page.get_by_text("Compare two runs", exact=True).click()
    expect(page.locator("#train-compare-a input")).to_have_value("browser-run")  # the watched run
    choose(page, "train-compare-b", "tiny (external)")
    page.locator("#train-compare-run").click()
    plot = page.locator("#train-compare-plot .js-plotly-plot")
    expect(plot).to_contain_text("browser-run · G loss")
    expect(plot).to_contain_text("tiny · G loss")
    expect(page.locator("#train-compare-note")).to_contain_text("No CAS yet")
    screenshot(page, "1-train-compare")


def test_sample_tab_generates_a_gallery_and_a_zip(page):
    open_tab(page, "Sample", "sample")
    choose(page, "sample-class", "Nut")
    set_number(page, "sample-count", 3)
    set_number(page, "sample-seed", 7)
    page.locator("#sample-generate").click()
    expect(page.locator("#sample-status")).to_contain_text("3 images from")
    expect(page.locator("#sample-status")).to_contain_text("the evaluator recognises")
    expect(thumbnails(page, "sample-gallery")).to_have_count(3)
    expect(page.locator("#sample-gallery")).to_contain_text("Nut s7")
    expect(page.locator('#sample-download a[href$="/tiny-samples.zip"]')).to_be_visible()
    expect(page.locator("#sample-before-after")).to_be_hidden()  # no filter: nothing to compare
    # Real train images of the class, left of the samples, at the same size.
    real = thumbnails(page, "sample-real-gallery")
    expect(real).to_have_count(3)
    expect(page.locator("#sample-real-gallery")).to_contain_text("real · Nut")
    expect(page.locator("#sample-real-note")).to_contain_text("real")
    same_size_side_by_side(real.first, thumbnails(page, "sample-gallery").first)
    screenshot(page, "2-sample")


def test_sample_tab_shows_before_and_after_only_when_a_filter_is_on(page):
    page.locator("#tab-sample").get_by_text("Post-processing", exact=True).click()
    page.locator("#sample-filters").get_by_text("Median denoise", exact=True).click()
    page.locator("#sample-generate").click()
    expect(page.locator("#sample-before-after img").first).to_be_visible()
    page.locator("#sample-filters").get_by_text("Median denoise", exact=True).click()  # off again
    page.locator("#sample-generate").click()
    expect(page.locator("#sample-before-after")).to_be_hidden()


def same_size_side_by_side(real, generated) -> None:
    """The real image shows left of the generated one, at the same size on the page."""
    a, b = shown_and_drawn(real)[0], shown_and_drawn(generated)[0]
    assert a["x"] + a["width"] <= b["x"], (a, b)
    assert abs(a["width"] - b["width"]) <= 1 and abs(a["height"] - b["height"]) <= 1, (a, b)


def test_interpolate_tab_makes_a_filmstrip_and_a_gif(page):
    open_tab(page, "Interpolate", "interpolate")
    choose(page, "interp-class-a", "Nut")
    choose(page, "interp-class-b", "Clamp")
    set_number(page, "interp-frames", 6)
    page.locator("#interp-run").click()
    expect(page.locator("#interp-filmstrip img")).to_be_visible()
    expect(page.locator("#interp-gif img")).to_have_attribute("src", re.compile(r"\.gif"))
    expect(page.locator('#interp-download a[href$=".gif"]')).to_be_visible()
    strip = page.locator("#interp-filmstrip img")
    box, (drawn, _) = shown_and_drawn(strip)
    shown = box["width"]
    assert FILMSTRIP_FRAME * shown / drawn >= 96, (shown, drawn)  # 32 px frames show 3x as large or more
    screenshot(page, "3-interpolate")


def test_gradcam_tab_explains_real_and_synthetic(page):
    open_tab(page, "Grad-CAM", "gradcam")
    choose(page, "cam-class", "Nut")
    set_number(page, "cam-count", 2)
    page.locator("#cam-run").click()
    expect(page.locator("#cam-status")).to_contain_text("GradCAM maps of")
    expect(thumbnails(page, "cam-synthetic")).to_have_count(2)
    expect(thumbnails(page, "cam-real").first).to_be_visible()
    tile = thumbnails(page, "cam-synthetic").first
    box, (_, drawn) = shown_and_drawn(tile)
    shown = box["height"]
    assert TILE_FONT * shown / drawn >= 12, (shown, drawn)  # the verdict under each map
    screenshot(page, "4-gradcam")


def test_embeddings_tab_plots_a_umap(page):
    open_tab(page, "Embeddings", "embeddings")
    set_number(page, "emb-count", 4)
    page.locator("#emb-run").click()
    readout = page.locator("#emb-readout")
    expect(readout).to_contain_text("Precision", timeout=180 * SECOND)  # the first UMAP fit compiles
    expect(readout).to_contain_text("Coverage")
    plot = page.locator("#emb-plot .js-plotly-plot")
    expect(plot).to_be_visible()
    expect(plot).to_contain_text("Nut · generated")
    expect(page.locator("#emb-warm")).not_to_contain_text("warming up")  # the note goes once UMAP ran
    screenshot(page, "5-embeddings")


def test_curate_tab_accepts_two_images_and_exports(page, app):
    studio = app[1]
    open_tab(page, "Curate & export", "curate")
    status = page.locator("#curate-status")
    choose(page, "curate-class", "Nut")
    set_number(page, "curate-count", 4)
    page.locator("#curate-generate").click()
    expect(status).to_contain_text("Added 4 candidates")
    expect(thumbnails(page, "curate-gallery")).to_have_count(4)

    # Thresholds nothing passes, then accept two candidates by hand: a click selects, Accept moves on.
    set_number(page, "curate-min-confidence", 1)
    set_number(page, "curate-min-ratio", 2)
    page.locator("#curate-apply").click()
    expect(status).to_contain_text("0 accepted of 4 candidates")
    page.locator("#curate-gallery .thumbnail-item").nth(0).click()
    page.locator("#curate-accept").click()
    expect(status).to_contain_text("1 accepted of 4 candidates")
    page.locator("#curate-accept").click()
    expect(status).to_contain_text("2 accepted of 4 candidates")
    expect(page.locator("#curate-gallery")).to_contain_text("✓* ")  # * decided by hand

    page.locator("#curate-export").click()
    expect(page.locator('#curate-download a[href*="/tiny-curated-"][href$=".zip"]')).to_be_visible()
    (archive,) = sorted((studio.workdir / "exports").glob("tiny-curated-*.zip"))
    with zipfile.ZipFile(archive) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        pngs = [n for n in zf.namelist() if n.endswith(".png")]
    assert manifest["n_generated"] == 2 and len(pngs) == 2 and all(n.startswith("Nut/") for n in pngs)
    screenshot(page, "6-curate")


def test_evaluate_tab_shows_its_state(page, app):
    open_tab(page, "Evaluate", "evaluate")
    expect(page.locator("#eval-status")).to_contain_text("No job running.")
    page.locator("#eval-refresh").click()
    expect(page.locator("#eval-report-path")).to_contain_text(re.compile("No evaluation yet|Saved"))
    expect(page.locator("#eval-train")).to_be_enabled()
    expect(page.locator("#eval-run")).to_be_enabled()
    # The export made in Curate above is one of the image sets an evaluation can measure (--images).
    (archive,) = sorted((app[1].workdir / "exports").glob("tiny-curated-*.zip"))
    choose(page, "eval-filter", f"export {SavedExport(archive, {}).made[5:]} · 2 images")
    screenshot(page, "7-evaluate")
    choose(page, "eval-filter", "every sample")


def test_evaluate_tab_shows_real_images_beside_the_samples_used(
    page, app, tiny_run, tmp_path_factory, demo_dir
):
    """An evaluated run (a copy of the tiny run in this app's workspace) shows its real train images
    beside the evaluation's samples, in the same layout and at the same size."""
    from gan_studio.cli import main

    studio = app[1]
    run = studio.runs_dir / "evaluated"
    shutil.copytree(tiny_run, run)
    evaluator = tiny_evaluator(tmp_path_factory.getbasetemp(), tiny_run, demo_dir)
    argv = [
        "evaluate", "--ckpt", str(run), "--evaluator", str(evaluator), "--out", str(run / "evaluation"),
        "--n-per-class", "2", "--metrics", "cas", "--device", "cpu", "--no-progress",
    ]  # fmt: skip
    assert main(argv) == 0
    label = next(e.label for e in studio.registry.generators() if e.run_dir and e.run_dir.name == "evaluated")
    tiny = next(e.label for e in studio.registry.generators() if e.id == "tiny")
    page.locator("#picker-refresh").click()
    choose(page, "picker-run", label)
    try:
        open_tab(page, "Evaluate", "evaluate")
        page.locator("#eval-refresh").click()
        page.get_by_role("tab", name="Metrics", exact=True).click()
        expect(page.locator("#eval-samples img")).to_be_visible(timeout=60 * SECOND)
        expect(page.locator("#eval-real img")).to_be_visible(timeout=60 * SECOND)
        expect(page.locator("#eval-real-note")).to_contain_text("real")
        same_size_side_by_side(page.locator("#eval-real img"), page.locator("#eval-samples img"))
        screenshot(page, "7-evaluate-real")
    finally:
        choose(page, "picker-run", tiny)  # the tests below work on the tiny run


def test_evaluate_tab_shows_a_study(page, app, tiny_run, demo_dir):
    """A study of the picked run (a real one, at toy settings, from the CLI) appears in the Study tab."""
    from gan_studio.cli import main

    studio = app[1]
    entry = next(
        e
        for e in studio.registry.generators()
        if e.source == "run" and e.run_dir.resolve() == tiny_run.resolve()
    )
    from gan_studio.app.evaluation_jobs import EvaluationService

    out = EvaluationService(studio.jobs, studio.workdir).study_dir(entry)
    argv = [
        "study", "--data", str(demo_dir), "--ckpt", str(tiny_run), "--out", str(out),
        "--arms", "real+classic+syn@1", "--ratios", "1", "--seeds", "2", "--max-steps", "6", "--eval-every", "3",
        "--patience", "1", "--min-steps", "3", "--batch", "8", "--device", "cpu", "--precision", "fp32",
        "--no-progress",
    ]  # fmt: skip
    assert main(argv) == 0
    open_tab(page, "Evaluate", "evaluate")
    expect(page.locator("#eval-study")).to_be_enabled()
    page.locator("#eval-refresh").click()
    page.get_by_role("tab", name="Study", exact=True).click()
    report = page.locator("#eval-study-report")
    expect(report).to_contain_text("Does it help?", timeout=30 * SECOND)
    expect(report).to_contain_text("real+classic+syn@1")
    expect(report).to_contain_text("95% CI")
    expect(page.locator("#eval-study-plot .js-plotly-plot")).to_be_visible(timeout=30 * SECOND)
    screenshot(page, "8-evaluate-study")
