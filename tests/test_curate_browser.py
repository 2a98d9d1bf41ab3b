"""The Curate & export tab in a real browser: zoom, keyboard curation, filters, sort, and the exports.

One app over the tiny run and evaluator (tests/conftest.py, tests/app_support.py) and one chromium page
shared by the tests below, which run in file order like a user working through a curation.
"""

from __future__ import annotations

import io
import json
import re
import zipfile

from PIL import Image

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
    thumbnails,
)

pytestmark = BROWSER_MARKS
expect = playwright_expect()


def _on_the_curate_tab(page) -> None:
    expect(page.locator("#picker-info")).to_contain_text("tiny", timeout=120 * SECOND)
    open_tab(page, "Curate & export", "curate")


app = app_fixture("curate-studio")
page = page_fixture(ready=_on_the_curate_tab)
screenshot = screenshots("curate", full_page=True)


def captions(page) -> list[str]:
    return page.locator("#curate-gallery .caption-label").all_inner_texts()


def selected(page):
    return page.locator("#curate-gallery .thumbnail-item.selected")


def generate(page, klass: str, count: int) -> None:
    choose(page, "curate-class", klass)
    set_number(page, "curate-count", count)
    page.locator("#curate-generate").click()
    expect(page.locator("#curate-status")).to_contain_text(f"Added {count} candidates")


def latest_export(studio, before: set) -> zipfile.ZipFile:
    (archive,) = set((studio.workdir / "exports").glob("tiny-curated-*.zip")) - before
    return zipfile.ZipFile(archive)


def test_a_click_zooms_and_keys_accept_reject_and_move(page):
    status, details = page.locator("#curate-status"), page.locator("#curate-details")
    generate(page, "Nut", 4)
    set_number(page, "curate-min-confidence", 1)  # nothing passes: every decision below is by hand
    set_number(page, "curate-min-ratio", 2)
    page.locator("#curate-apply").click()
    expect(status).to_contain_text("0 accepted of 4 candidates")
    expect(thumbnails(page, "curate-gallery")).to_have_count(4)
    expect(details).to_contain_text("Nut · seed 0")  # a new view starts at its first image

    # A click selects and zooms; it decides nothing.
    page.locator("#curate-gallery .thumbnail-item").nth(1).click()
    expect(details).to_contain_text("Nut · seed 1")
    expect(details).to_contain_text("rejected by the thresholds")
    zoom = page.locator("#curate-zoom img")
    expect(zoom).to_be_visible()
    page.wait_for_function("() => document.querySelector('#curate-zoom img').naturalWidth >= 384")
    expect(status).to_contain_text("0 accepted of 4 candidates")

    # Captions: one line of at least 12 px, covering a small part of the tile.
    font, share = page.evaluate(
        """() => { const c = document.querySelector('#curate-gallery .caption-label');
                   const t = c.closest('.thumbnail-item');
                   return [parseFloat(getComputedStyle(c).fontSize), c.offsetHeight / t.offsetHeight]; }"""
    )
    assert font >= 12 and share < 0.2, (font, share)
    assert all(re.fullmatch(r"✗ \d+\.\d+% · \d+\.\d+", c) for c in captions(page)), captions(page)

    # Keys: → moves, A accepts and moves on, ← goes back, R rejects.
    page.keyboard.press("ArrowRight")
    expect(details).to_contain_text("Nut · seed 2")
    expect(selected(page)).to_have_attribute("aria-label", re.compile("Thumbnail 3 of 4"))
    page.keyboard.press("a")
    expect(status).to_contain_text("Nut seed 2: accepted.")
    expect(status).to_contain_text("1 accepted of 4 candidates")
    expect(details).to_contain_text("Nut · seed 3")
    page.keyboard.press("ArrowLeft")
    expect(details).to_contain_text("accepted by hand")
    page.keyboard.press("r")
    expect(status).to_contain_text("0 accepted of 4 candidates")
    page.keyboard.press("ArrowUp")  # a row up from the first row: the first image
    expect(details).to_contain_text("Nut · seed 0")
    page.keyboard.press("a")
    expect(status).to_contain_text("1 accepted of 4 candidates")
    expect(page.locator("#curate-gallery")).to_contain_text("✓* ")  # * decided by hand
    expect(selected(page)).to_have_attribute("aria-label", re.compile("Thumbnail 2 of 4"))

    # Typing into a field is not a shortcut.
    page.locator("#curate-seed input").press("a")
    expect(status).to_contain_text("1 accepted of 4 candidates")
    screenshot(page, "1-zoom-keys")


def test_filter_sort_and_per_class_view(page):
    page.locator("#curate-show").get_by_text("Accepted", exact=True).click()
    expect(thumbnails(page, "curate-gallery")).to_have_count(1)
    expect(page.locator("#curate-status")).to_contain_text("showing 1")
    page.locator("#curate-show").get_by_text("Rejected", exact=True).click()
    expect(thumbnails(page, "curate-gallery")).to_have_count(3)
    page.locator("#curate-show").get_by_text("All", exact=True).click()
    expect(thumbnails(page, "curate-gallery")).to_have_count(4)

    choose(page, "curate-order", "Confidence: highest first")
    page.wait_for_timeout(500)
    expect(thumbnails(page, "curate-gallery")).to_have_count(4)
    shown = [float(re.search(r"(\d+\.\d+)%", c).group(1)) for c in captions(page)]
    assert shown == sorted(shown, reverse=True), shown
    choose(page, "curate-order", "Class, then seed")

    generate(page, "Clamp", 2)  # the view follows the class generated for
    expect(page.locator("#curate-view-class input")).to_have_value("Clamp")
    expect(thumbnails(page, "curate-gallery")).to_have_count(2)
    page.locator("#curate-counts").get_by_text("Nut", exact=True).click()  # a row of the per-class table
    expect(page.locator("#curate-view-class input")).to_have_value("Nut")
    expect(thumbnails(page, "curate-gallery")).to_have_count(4)
    expect(page.locator("#curate-details")).to_contain_text("Nut · seed 0")
    expect(selected(page)).to_have_attribute("aria-label", re.compile("Thumbnail 1 of 4"))
    screenshot(page, "2-filters")


def test_export_names_the_classes_without_an_accepted_candidate(page, app):
    studio = app[1]
    before = set((studio.workdir / "exports").glob("*.zip"))
    expect(page.locator("#curate-size input")).to_have_value("32 px (the model's resolution)")
    page.locator("#curate-export").click()
    report = page.locator("#curate-export-report")
    expect(report).to_contain_text("No accepted candidate for 9 of 10 classes")
    expect(report).to_contain_text("Clamp (0 of 2 accepted)")
    expect(report).to_contain_text("manifest.json lists every class with its index")
    expect(page.locator('[data-testid="toast-body"]').first).to_contain_text(
        "No accepted candidate"
    )  # a toast
    with latest_export(studio, before) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        names = zf.namelist()
    classes = studio.registry.get("generator", "tiny").class_names
    assert [(c["index"], c["name"]) for c in manifest["classes"]] == list(enumerate(classes))
    clamp = next(c for c in manifest["classes"] if c["name"] == "Clamp")
    assert (
        clamp["generated"] == 0 and clamp["candidates"] == 2 and "Clamp" in manifest["no_accepted_candidate"]
    )
    assert not any(n.startswith("Clamp/") for n in names) and "metadata.csv" in names
    screenshot(page, "3-export-warning")


def test_merged_export_has_every_image_at_the_chosen_size(page, app):
    studio = app[1]
    before = set((studio.workdir / "exports").glob("*.zip"))
    page.locator("#curate-merge input").check()
    choose(page, "curate-size", "128 px")
    page.locator("#curate-metadata").get_by_text("metadata.jsonl", exact=True).click()
    page.locator("#curate-export").click()
    report = page.locator("#curate-export-report")
    expect(report).to_contain_text(re.compile(r"\d+ images at 128 px \(1 generated, \d+ real\)"))
    expect(report).to_contain_text("They have real images only.")
    with latest_export(studio, before) as zf:
        pngs = [n for n in zf.namelist() if n.endswith(".png")]
        sizes = {Image.open(io.BytesIO(zf.read(n))).size for n in pngs}
        rows = [json.loads(line) for line in zf.read("metadata.jsonl").decode().splitlines()]
        assert "metadata.csv" not in zf.namelist()
    assert sizes == {(128, 128)} and len(pngs) == len(rows) > 1  # 32 px samples and 64 px photos alike
    assert {r["source"] for r in rows} == {"generated", "real"} and {r["file_name"] for r in rows} == set(
        pngs
    )
    screenshot(page, "4-export-merged")
