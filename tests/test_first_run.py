"""First run, as a newcomer sees it: ``python app.py`` with no arguments opens on the shipped vise-parts
package, and every tab's main action works at once, without training anything.

The app runs as a subprocess exactly as the README launches it (default checkpoints/, a fresh work
folder, an empty demo-data cache); a real chromium drives it. The screenshots it saves under
tests/artifacts/ are the ones in the README (docs/images/).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.app_support import free_port
from tests.browser_support import (
    BROWSER_MARKS,
    SECOND,
    choose,
    open_tab,
    page_fixture,
    playwright_expect,
    screenshots,
    set_number,
    thumbnails,
)

REPO = Path(__file__).resolve().parents[1]

PACKAGE = REPO / "checkpoints" / "vise-parts"
pytestmark = BROWSER_MARKS
expect = playwright_expect()


def test_shipped_package_is_complete_and_small():
    """What issue 5 ships: weights, evaluator, split, metrics and a model card, in at most 30 MB."""
    for name in (
        "package.json",
        "README.md",
        "metrics.json",
        "split.json",
        "samples.png",
        "real_vs_generated.png",
    ):
        assert (PACKAGE / name).is_file(), name
    for folder in ("generator", "evaluator"):
        assert (PACKAGE / folder / "config.json").is_file() and (
            PACKAGE / folder / "model.safetensors"
        ).is_file()
    size = sum(f.stat().st_size for f in PACKAGE.rglob("*") if f.is_file())
    assert size <= 30 * 2**20, f"{size / 2**20:.1f} MB"
    metrics = json.loads((PACKAGE / "metrics.json").read_text())
    assert "cas" in json.dumps(metrics).lower()


@pytest.fixture(scope="module")
def app_url(tmp_path_factory, cache_dir):
    """``python app.py`` on a free port, a fresh work folder and the test session's (empty) cache."""
    port = free_port()
    workdir = tmp_path_factory.mktemp("first-run")
    env = {**os.environ, "GAN_STUDIO_CACHE": str(cache_dir), "PYTHONPATH": str(REPO)}
    log = open(workdir / "app.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "app.py", "--port", str(port), "--workdir", str(workdir / "studio")],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 300
        while True:
            assert proc.poll() is None, (workdir / "app.log").read_text()[-3000:]
            try:
                with urllib.request.urlopen(url, timeout=2):
                    break
            except OSError:
                assert time.monotonic() < deadline, "app.py served no page within 300 s"
                time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


page = page_fixture("app_url", timeout_s=120)
screenshot = screenshots("first-run", full_page=False)


def test_opens_on_the_sample_tab(page):
    """The shipped model is ready to sample from, so the page opens on Sample, not on an empty Train tab."""
    expect(page.get_by_role("tab", name="Sample", exact=True)).to_have_attribute("aria-selected", "true")
    expect(page.locator("#tab-sample")).to_be_visible()
    expect(page.locator("#sample-generate")).to_be_visible()
    expect(page.locator("#tab-train")).to_be_hidden()


def test_opens_on_the_shipped_package(page):
    expect(page.locator("#picker-info")).to_contain_text("vise-parts")
    expect(page.locator("#picker-evaluator input")).to_have_value(re.compile("vise-parts"))


def test_sample_tab_draws_every_class(page):
    open_tab(page, "Sample", "sample")
    choose(page, "sample-class", "All classes")
    set_number(page, "sample-count", 2)
    page.locator("#sample-generate").click()
    expect(page.locator("#sample-status")).to_contain_text("20 images from")
    expect(thumbnails(page, "sample-gallery")).to_have_count(20)
    expect(page.locator("#sample-gallery")).to_contain_text("Nut s0")
    # Beside them, real train images of every class (once the demo data is rendered and decoded).
    expect(thumbnails(page, "sample-real-gallery")).to_have_count(20, timeout=600 * SECOND)
    expect(page.locator("#sample-real-gallery")).to_contain_text("real · Nut")
    screenshot(page, "sample")


def test_interpolate_tab(page):
    open_tab(page, "Interpolate", "interpolate")
    choose(page, "interp-class-a", "Nut")
    choose(page, "interp-class-b", "Clamp")
    set_number(page, "interp-frames", 8)
    page.locator("#interp-run").click()
    expect(page.locator("#interp-filmstrip img")).to_be_visible()
    expect(page.locator("#interp-gif img")).to_have_attribute("src", re.compile(r"\.gif"))
    screenshot(page, "interpolate")


def test_gradcam_tab_on_real_and_synthetic(page):
    open_tab(page, "Grad-CAM", "gradcam")
    choose(page, "cam-class", "Clamp")
    set_number(page, "cam-count", 4)
    page.locator("#cam-run").click()
    # The real test images are the demo data, rendered on first use (the app starts that at launch).
    expect(page.locator("#cam-status")).to_contain_text("GradCAM maps of", timeout=400 * SECOND)
    expect(thumbnails(page, "cam-synthetic")).to_have_count(4)
    expect(thumbnails(page, "cam-real").first).to_be_visible()
    screenshot(page, "gradcam")


def test_embeddings_tab(page):
    open_tab(page, "Embeddings", "embeddings")
    set_number(page, "emb-count", 20)
    page.locator("#emb-run").click()
    expect(page.locator("#emb-readout")).to_contain_text("Coverage", timeout=240 * SECOND)
    expect(page.locator("#emb-plot .js-plotly-plot")).to_contain_text("Nut · generated")
    screenshot(page, "embeddings")


def test_curate_tab(page):
    open_tab(page, "Curate & export", "curate")
    choose(page, "curate-class", "Nut")
    set_number(page, "curate-count", 8)
    page.locator("#curate-generate").click()
    expect(page.locator("#curate-status")).to_contain_text("Added 8 candidates")
    expect(thumbnails(page, "curate-gallery")).to_have_count(8)
    page.locator("#curate-apply").click()
    expect(page.locator("#curate-status")).to_contain_text(re.compile(r"\d+ accepted of 8 candidates"))
    screenshot(page, "curate")


def test_evaluate_and_train_tabs(page):
    open_tab(page, "Evaluate", "evaluate")
    expect(page.locator("#eval-status")).to_contain_text("No job running.")
    screenshot(page, "evaluate")
    open_tab(page, "Train", "train")
    page.locator("#train-check").click()
    expect(page.locator("#train-report")).to_contain_text("10 classes", timeout=300 * SECOND)
    screenshot(page, "train")
