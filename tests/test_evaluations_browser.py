"""Long work shows its stages, and evaluations are kept side by side, in a real browser (Playwright +
Debian chromium), on a copy of the tiny run with tiny sample sizes.

The work is held at a known point while the page is checked (the UMAP fit by a gate in its epoch
callback, the evaluation's process by SIGSTOP), so the progress shown is seen, whatever the machine's
speed; the screenshots go to tests/artifacts/ (git-ignored).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import threading
import time

import pytest

from tests.app_support import running_app, tiny_evaluator
from tests.browser_support import ARTIFACTS, CHROMIUM, SECOND, choose, chromium_page, open_tab, set_number
from tests.browser_support import screenshot as save_screenshot

pytestmark = [
    pytest.mark.filterwarnings("ignore::pandas.errors.Pandas4Warning"),
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian chromium: apt-get install -y chromium"),
]

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect
RUN = "measured"


@pytest.fixture(scope="module")
def app(tmp_path_factory, tiny_run, demo_dir):
    """(url, studio) over a copy of the tiny run in the workspace: its evaluations are written there."""
    evaluator = tiny_evaluator(tmp_path_factory.getbasetemp(), tiny_run, demo_dir)
    workdir = tmp_path_factory.mktemp("evaluations-studio")
    shutil.copytree(tiny_run, workdir / "runs" / RUN)
    with running_app(workdir, tiny_run, demo_dir, evaluator) as (url, studio):
        yield url, studio


@pytest.fixture(scope="module")
def page(app):
    with chromium_page(app[0], timeout_s=60) as page:
        expect(page.locator("#picker-info")).to_contain_text("tiny", timeout=120 * SECOND)
        label = next(e.label for e in app[1].registry.generators() if e.id == RUN)
        choose(page, "picker-run", label)
        expect(page.locator("#picker-info")).to_contain_text(RUN)
        yield page


def screenshot(page, name: str) -> None:
    save_screenshot(page, ARTIFACTS / f"evaluations-{name}.png", full_page=True)


def test_the_umap_map_shows_its_stages_then_says_what_it_was_computed_on(page, monkeypatch):
    import gan_studio.app.embeddings as maps

    held, released = threading.Event(), threading.Event()
    build = maps.build_embedding

    def build_held_in_its_layout(*args, on_epoch, **kwargs):
        def tick(done: int, total: int) -> None:
            on_epoch(done, total)
            if done > 0 and not held.is_set():
                held.set()
                released.wait(90)

        return build(*args, on_epoch=tick, **kwargs)

    monkeypatch.setattr(maps, "build_embedding", build_held_in_its_layout)
    open_tab(page, "Embeddings", "embeddings")
    set_number(page, "emb-count", 4)
    page.locator("#emb-run").click()
    try:
        stage = re.compile(r"stage \d of \d · UMAP layout: \d+/\d+ epochs")
        expect(page.locator("#emb-plot")).to_contain_text(stage, timeout=240 * SECOND)
        page.screenshot(path=str(ARTIFACTS / "evaluations-umap-progress.png"))
    finally:
        released.set()
    readout = page.locator("#emb-readout")
    expect(readout).to_contain_text("Coverage", timeout=120 * SECOND)
    expect(readout).to_contain_text("Computed on 4 generated + 4 real train per class")
    expect(page.locator("#emb-plot")).not_to_contain_text("stage")  # the progress went with the work


def test_hovering_a_point_shows_its_image(page):
    open_tab(page, "Embeddings", "embeddings")
    point = page.locator("#emb-plot .scatterlayer .trace .points path").first
    expect(point).to_be_visible(timeout=60 * SECOND)
    box = point.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    image = page.locator("#emb-hover-image img")
    expect(image).to_be_visible()
    assert image.get_attribute("src").startswith("data:image/png;base64,")
    expect(page.locator("#emb-hover-image")).to_contain_text(re.compile("real train|real test|generated"))
    screenshot(page, "hover")


def run_evaluation_held_in_a_stage(page, studio, n: int) -> None:
    """Start an evaluation of n images per class; stop its process as soon as it reports a stage, check
    that the page shows that stage, then let it finish."""
    name, progress = f"evaluate:{RUN}", studio.runs_dir / RUN / "evaluation.progress.json"
    before = studio.jobs.get(name)
    set_number(page, "eval-n", n)
    page.locator("#eval-run").click()
    deadline = time.monotonic() + 180
    job = None
    while time.monotonic() < deadline:  # the new job: the app removes the last one's progress file first
        job = studio.jobs.get(name)
        if job is not None and job is not before:
            break
        time.sleep(0.01)
    assert job is not None and job is not before, "the evaluation did not start"
    # Let it run in short slices until its first report, so that a loaded machine cannot let it finish
    # between the report and the check.
    os.kill(job.pid, signal.SIGSTOP)
    while time.monotonic() < deadline and not progress.is_file():
        os.kill(job.pid, signal.SIGCONT)
        time.sleep(0.05)
        os.kill(job.pid, signal.SIGSTOP)
    assert progress.is_file(), "the evaluation reported no stage"
    try:
        shown = json.loads(progress.read_text())
        assert shown["state"] == "running", shown  # stopped at its first report, long before its end
        status = page.locator("#eval-status")
        expect(status).to_contain_text(f"stage {shown['index']} of {shown['stages']} · {shown['stage']}")
        expect(page.locator('#eval-progress .gs-progress[data-state="running"]')).to_be_attached()
        screenshot(page, f"evaluate-progress-n{n}")
    finally:
        os.kill(job.pid, signal.SIGCONT)
    expect(page.locator("#eval-status")).to_contain_text("finished", timeout=240 * SECOND)
    expect(page.locator("#eval-status")).to_contain_text(re.compile(r"done: loading models \d+ s"))


def test_evaluations_are_kept_side_by_side_and_each_says_what_it_was_computed_on(page, app):
    studio = app[1]
    open_tab(page, "Evaluate", "evaluate")
    page.get_by_role("tab", name="Metrics", exact=True).click()
    for slow in ("diversity", "fid", "kid", "memorization"):  # CAS and coverage are enough here
        page.locator("#eval-metrics").get_by_label(slow, exact=True).uncheck()
    run_evaluation_held_in_a_stage(page, studio, 2)
    history = page.locator("#eval-history")
    expect(history).to_contain_text(re.compile(r"(^|\s)2 \+ \d+"))  # generated + real per class
    run_evaluation_held_in_a_stage(page, studio, 3)

    expect(history.locator("div[role=row]")).to_have_count(2)
    expect(history.locator("div[role=row]").first).to_contain_text(
        re.compile(r"(^|\s)3 \+ \d+")
    )  # newest first
    expect(history.locator("div[role=row]").nth(1)).to_contain_text(
        re.compile(r"(^|\s)2 \+ \d+")
    )  # still there
    shown = page.locator("#eval-report-path")
    expect(shown).to_contain_text("Evaluation #2")
    expect(shown).to_contain_text("computed on: 3 generated + ")
    entries = sorted((studio.runs_dir / RUN / "evaluation" / "evaluations").glob("*-n*"))
    assert [e.name.rsplit("-", 1)[1] for e in entries] == ["n2", "n3"]

    from gan_studio.app.evaluation_jobs import EvaluationService, history_choices

    kept = EvaluationService(studio.jobs, studio.workdir).history(studio.registry.get("generator", RUN))
    choose(page, "eval-history-pick", history_choices(kept)[-1][0])  # the oldest, listed last
    expect(shown).to_contain_text("Evaluation #1")
    expect(shown).to_contain_text("computed on: 2 generated + ")
    expect(shown).to_contain_text(entries[0].name)  # its own report, not the newest one
    screenshot(page, "history")
