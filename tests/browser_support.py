"""Chromium helpers shared by the browser tests (test_app_browser.py, test_first_run.py).

Playwright is imported inside the helpers, so importing this module never fails where the browser
tests are skipped.
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
SECOND = 1000  # Playwright timeouts are in milliseconds


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
