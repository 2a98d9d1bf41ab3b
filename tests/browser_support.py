"""Chromium helpers shared by the browser tests (test_app_browser.py, test_curate_browser.py,
test_first_run.py): their marks, the fixtures that serve the app and open one page on it, screenshots,
and the clicks they all make.

Playwright is imported inside the helpers, so importing this module never fails where the browser
tests are skipped.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
SECOND = 1000  # Playwright timeouts are in milliseconds

# Every browser test module's pytestmark. Gradio's queue calls pandas APIs that pandas 3 deprecates; not ours.
BROWSER_MARKS = [
    pytest.mark.filterwarnings("ignore::pandas.errors.Pandas4Warning"),
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian chromium: apt-get install -y chromium"),
]


def playwright_expect():
    """Playwright's ``expect``; skips the calling module where Playwright is not installed."""
    return pytest.importorskip("playwright.sync_api").expect


def app_fixture(workspace: str):
    """A module-scoped fixture yielding (url, studio): the app over the tiny run and the tiny evaluator
    (tests/conftest.py, tests/app_support.py) in a fresh work folder named after ``workspace``.
    Assign it to a module attribute named ``app``."""

    @pytest.fixture(scope="module", name="app")
    def app(tmp_path_factory, tiny_run, demo_dir):
        from tests.app_support import running_app, tiny_evaluator

        evaluator = tiny_evaluator(tmp_path_factory.getbasetemp(), tiny_run, demo_dir)
        with running_app(tmp_path_factory.mktemp(workspace), tiny_run, demo_dir, evaluator) as served:
            yield served

    return app


def page_fixture(served_by: str = "app", *, timeout_s: float = 60, ready: Callable | None = None):
    """A module-scoped fixture yielding one chromium page, shared by the module's tests (they run in
    order), on the app the fixture ``served_by`` yields (its URL, or (url, studio)), once ``ready(page)``
    has returned. Assign it to a module attribute named ``page``."""

    @pytest.fixture(scope="module", name="page")
    def page(request):
        served = request.getfixturevalue(served_by)
        url = served if isinstance(served, str) else served[0]
        with chromium_page(url, timeout_s=timeout_s) as opened:
            if ready is not None:
                ready(opened)
            yield opened

    return page


def screenshots(prefix: str, *, full_page: bool) -> Callable:
    """A module's ``screenshot(page, name)``: saves ARTIFACTS/<prefix>-<name>.png once its images loaded."""

    def save(page, name: str) -> None:
        screenshot(page, ARTIFACTS / f"{prefix}-{name}.png", full_page)

    return save


@contextmanager
def chromium_page(url: str, timeout_s: float):
    """One headless Debian-chromium page on ``url``; anything but the app itself is refused (offline)."""
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            context = browser.new_context(viewport={"width": 1480, "height": 1000})
            # Offline: CDNs, fonts and telemetry fail at once instead of hanging.
            context.route(
                re.compile(r"^(?!https?://(127\.0\.0\.1|localhost)[:/]).*"), lambda route: route.abort()
            )
            page = context.new_page()
            page.set_default_timeout(timeout_s * SECOND)
            expect.set_options(timeout=timeout_s * SECOND)
            page.goto(url, wait_until="domcontentloaded")
            yield page
        finally:
            browser.close()


def screenshot(page, path: Path, full_page: bool) -> None:
    """Save a screenshot once every visible picture has loaded (galleries fetch files after the event)."""
    page.wait_for_function(
        "Array.from(document.querySelectorAll('img')).filter(i => i.offsetParent !== null)"
        ".every(i => i.complete && i.naturalWidth > 0)",
        timeout=60 * SECOND,
    )
    page.screenshot(path=str(path), full_page=full_page)


def open_tab(page, label: str, key: str):
    """Click a tab's button and wait for its panel; returns the panel."""
    from playwright.sync_api import expect

    page.get_by_role("tab", name=label, exact=True).click()
    panel = page.locator(f"#tab-{key}")
    expect(panel).to_be_visible()
    return panel


def set_number(page, elem_id: str, value) -> None:
    """Type into a gr.Number (or the number box of a gr.Slider) and commit it."""
    from playwright.sync_api import expect

    box = page.locator(f"#{elem_id} input[type=number]")
    box.fill(str(value))
    box.press("Tab")
    expect(box).to_have_value(str(value))


def choose(page, elem_id: str, option: str) -> None:
    """Pick an option of a gr.Dropdown."""
    from playwright.sync_api import expect

    box = page.locator(f"#{elem_id} input")
    box.click()
    page.locator(f"#{elem_id}").get_by_role("option", name=option, exact=True).click()
    expect(box).to_have_value(option)


def thumbnails(page, elem_id: str):
    return page.locator(f"#{elem_id} .thumbnail-item img")


LOADED_JS = """img => img.complete && img.naturalWidth
    ? [img.naturalWidth, img.naturalHeight]
    : new Promise(done => img.addEventListener(
        "load", () => done([img.naturalWidth, img.naturalHeight]), {once: true}))"""


def shown_and_drawn(image) -> tuple[dict, tuple[int, int]]:
    """An <img>'s box on the page and its natural (width, height), once it has loaded.

    Measured before the load, the natural size is 0 and the box may still be the placeholder's.
    """
    width, height = image.evaluate(LOADED_JS)
    return image.bounding_box(), (width, height)
