"""Layout at a 1280 x 900 window (issue 22), measured on the real page: dropdown text stays clear of its arrow,
slider end labels stay inside their box, component labels leave galleries and plots uncovered, the per-class
table fits without a sideways scroll, and mobilenet_v3_small shows in full.

The checks are geometric, so a Gradio upgrade or a CSS change that brings a glitch back fails here. The app is
the tiny run and evaluator of tests/conftest.py, plus a copy of the run holding the shipped package's metrics
(the widest per-class table the app draws) and a study's comparisons (a plot).
"""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path

import pytest

from gan_studio.metrics import history
from gan_studio.utils.atomic import write_json_atomic
from tests.browser_support import (
    BROWSER_MARKS,
    SECOND,
    app_fixture,
    open_tab,
    page_fixture,
    playwright_expect,
    screenshots,
    set_number,
    thumbnails,
)

PACKAGE = Path(__file__).resolve().parents[1] / "checkpoints" / "vise-parts"
WINDOW = {"width": 1280, "height": 900}
pytestmark = BROWSER_MARKS
expect = playwright_expect()

# Where each visible dropdown's text area ends and its arrow begins, and whether its text overflows.
DROPDOWNS_JS = """root => [...root.querySelectorAll('input[role=combobox]')].filter(i => i.offsetParent).map(i => {
  const style = getComputedStyle(i), arrow = i.closest('.wrap').querySelector('.icon-wrap');
  return {id: i.closest('.block').id, value: i.value, scroll: i.scrollWidth, client: i.clientWidth,
    text_right: i.getBoundingClientRect().right - parseFloat(style.paddingRight) - parseFloat(style.borderRightWidth),
    arrow_left: arrow.getBoundingClientRect().left};
})"""
# Each visible slider's box and its min / max labels.
SLIDERS_JS = """root => [...root.querySelectorAll('.slider_input_container')].filter(s => s.offsetParent).map(s => {
  const block = s.closest('.block'), box = block.getBoundingClientRect();
  return {id: block.id, left: box.left, right: box.right, scroll: block.scrollWidth, client: block.clientWidth,
    labels: [...s.querySelectorAll('.min_value, .max_value')].map(l => {
      const r = l.getBoundingClientRect(); return [l.textContent, r.left, r.right];
    })};
})"""
TABLE_JS = "v => [v.scrollWidth, v.clientWidth]"
# Headers whose text is drawn on more lines than it has words (a word was split across lines).
WORD_BROKEN_JS = """spans => spans.filter(span => {
    const range = document.createRange();
    range.selectNodeContents(span);
    const lines = new Set([...range.getClientRects()].map(r => Math.round(r.top)));
    return lines.size > span.textContent.trim().split(/[\\s-]+/).length;
}).map(span => span.textContent)"""


@pytest.fixture(scope="module")
def served(app, tiny_run):
    """The app, with a copy of the tiny run that holds the shipped package's evaluation (same classes; every
    per-class column, 15), a second evaluation in its history and a study's comparisons, so the Evaluate tab
    has its widest tables and a plot."""
    run = app[1].runs_dir / "layout"
    shutil.copytree(tiny_run, run)
    for made in ("evaluation", "evaluations", "study"):  # what earlier tests may have left in the tiny run
        shutil.rmtree(run / made, ignore_errors=True)
    (run / "evaluation").mkdir()
    metrics = json.loads((PACKAGE / "metrics.json").read_text())
    assert "c2st" in metrics["metrics"], (
        "the package's evaluation lacks c2st: its per-class columns are not all here"
    )
    (run / "evaluation" / "metrics.json").write_text(json.dumps(metrics))
    meta = {**metrics.get("meta", {}), "created": "2030-01-01T00:00:00Z"}
    later = history.new_entry(run / "evaluation", meta)  # a second evaluation, in the history
    write_json_atomic(later / "metrics.json", {**metrics, "meta": meta})
    history.publish(run / "evaluation", later)
    (run / "study").mkdir()
    comparison = {"arm": "real+syn", "reference": "real", "mean": 0.01, "low": -0.02, "high": 0.04}
    comparisons = [{**comparison, "verdict": "no detectable effect", "n": 3}]
    (run / "study" / "results.json").write_text(json.dumps({"comparisons": comparisons}))
    return app


def _at_1280(page) -> None:
    """A normal laptop window, before any tab draws; then the copied run is picked."""
    page.set_viewport_size(WINDOW)
    expect(page.locator("#picker-info")).to_contain_text("classes", timeout=120 * SECOND)
    page.locator("#picker-run input").click()
    page.locator("#picker-run").get_by_role("option", name=re.compile(r"^layout · ")).click()
    expect(page.locator("#picker-info")).to_contain_text("layout")


app = app_fixture("layout-studio")
page = page_fixture("served", ready=_at_1280)
screenshot = screenshots("layout", full_page=True)


def overlap(a: dict, b: dict) -> bool:
    """Whether two bounding boxes share any area."""
    return min(a["x"] + a["width"], b["x"] + b["width"]) > max(a["x"], b["x"]) and min(
        a["y"] + a["height"], b["y"] + b["height"]
    ) > max(a["y"], b["y"])


def settled(measure, ok, timeout_s: float = 10):
    """``measure()`` once ``ok`` holds for it, or its last value: Gradio sizes some parts a frame after drawing."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = measure()
        if ok(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


def clear_dropdowns(page, root: str) -> list[dict]:
    """The dropdowns under ``root``, each checked: its text area ends before its arrow begins."""
    dropdowns = page.locator(root).evaluate(DROPDOWNS_JS)
    assert dropdowns
    for dropdown in dropdowns:
        assert dropdown["text_right"] <= dropdown["arrow_left"], dropdown
    return dropdowns


def test_dropdown_text_stays_clear_of_its_arrow(page):
    assert page.viewport_size == WINDOW
    clear_dropdowns(page, "#gs-picker")
    clear_dropdowns(page, "#tab-sample")


def test_slider_end_labels_stay_inside_their_box(page):
    sliders = page.locator("#tab-sample").evaluate(SLIDERS_JS)
    assert {"sample-count", "sample-truncation"} <= {s["id"] for s in sliders}
    for slider in sliders:
        assert slider["scroll"] <= slider["client"], slider  # nothing cut off by the box
        for _, left, right in slider["labels"]:
            assert slider["left"] <= left and right <= slider["right"], slider


def test_gallery_labels_leave_the_first_image_clear(page):
    set_number(page, "sample-count", 1)
    page.locator("#sample-generate").click()
    for gallery in ("sample-gallery", "sample-real-gallery"):
        first = thumbnails(page, gallery)
        expect(first).to_have_count(10)
        label = page.locator(f'#{gallery} label[data-testid="block-label"]').bounding_box()
        image = page.locator(f"#{gallery} .thumbnail-item").first.bounding_box()
        assert not overlap(label, image), (gallery, label, image)
    screenshot(page, "sample")


def test_per_class_table_fits_its_width(page):
    open_tab(page, "Evaluate", "evaluate")
    page.locator("#eval-refresh").click()
    page.get_by_role("tab", name="Metrics", exact=True).click()
    expect(page.locator("#eval-per-class")).to_contain_text("ViseScrew")
    expect(page.locator("#eval-per-class .header-cell")).to_have_count(15)
    expect(page.locator("#eval-history div[role=row]")).to_have_count(2)
    screenshot(page, "evaluate")  # before the checks, to show what failed
    for table in ("eval-per-class", "eval-history"):
        viewport = page.locator(f"#{table} .virtual-table-viewport")
        scroll, client = settled(lambda v=viewport: v.evaluate(TABLE_JS), lambda v: v[0] <= v[1] + 1)
        assert scroll <= client + 1, f"{table} scrolls sideways: {scroll} px of content in {client} px"
        broken = page.locator(f"#{table} .header-cell span.header").evaluate_all(WORD_BROKEN_JS)
        assert not broken, f"{table}: headers broken inside a word: {broken}"


def test_architecture_name_shows_in_full(page):
    """The default architecture, mobilenet_v3_small, whole and clear of the arrow (it read "mobilenet_v3_sn")."""
    open_tab(page, "Evaluate", "evaluate")
    (arch,) = [d for d in clear_dropdowns(page, "#tab-evaluate") if d["id"] == "eval-arch"]
    assert arch["value"] == "mobilenet_v3_small" and arch["scroll"] <= arch["client"], arch


def test_plot_label_leaves_the_plot_and_its_toolbar_clear(page):
    page.get_by_role("tab", name="Study", exact=True).click()
    plot = page.locator("#eval-study-plot .js-plotly-plot")
    expect(plot).to_be_visible()
    toolbar = page.locator("#eval-study-plot .modebar")
    expect(toolbar).to_be_attached()
    label = page.locator('#eval-study-plot label[data-testid="block-label"]').bounding_box()
    for part in (plot, toolbar):
        box = part.bounding_box()
        assert not overlap(label, box), (label, box)
