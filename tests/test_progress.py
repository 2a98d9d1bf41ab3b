"""Progress by stage with a smoothed ETA (gan_studio/utils/progress.py), on a clock the tests move."""

from __future__ import annotations

import json

import pytest

from gan_studio.utils.progress import (
    EtaSmoother,
    StageProgress,
    describe,
    format_duration,
    write_progress_file,
)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_steady_rate_gives_the_exact_eta():
    smoother = EtaSmoother(alpha=0.3, min_interval=0.5)
    smoother.reset(0.0)
    for second in range(1, 11):  # 2 units per second
        smoother.observe(2 * second, float(second))
    assert smoother.eta(20, 100, 10.0) == pytest.approx(40.0)
    assert smoother.eta(20, None, 10.0) is None  # unknown size: no ETA


def test_no_eta_before_a_rate_is_known():
    smoother = EtaSmoother(min_interval=0.5)
    smoother.reset(0.0)
    smoother.observe(5, 0.1)  # within the first sampling window
    assert smoother.eta(5, 100, 0.1) is None


def test_one_burst_moves_the_eta_less_than_the_raw_rate_would():
    smoother = EtaSmoother(alpha=0.3, min_interval=0.5)
    smoother.reset(0.0)
    for second in range(1, 11):  # 1 unit per second ...
        smoother.observe(second, float(second))
    smoother.observe(20, 11.0)  # ... then 10 units in one second
    raw = (100 - 20) / 10.0
    smoothed = smoother.eta(20, 100, 11.0)
    assert smoothed > 2 * raw  # the burst alone would promise 8 s
    assert smoothed < (100 - 20) / 1.0  # but it does count


def test_a_stall_makes_the_eta_grow_instead_of_counting_down():
    smoother = EtaSmoother(alpha=0.3, min_interval=0.5)
    smoother.reset(0.0)
    for second in range(1, 11):
        smoother.observe(10 * second, float(second))  # 10 units per second
    before = smoother.eta(100, 200, 10.0)
    smoother.observe(100, 30.0)  # 20 s without progress
    after = smoother.eta(100, 200, 30.0)
    assert before == pytest.approx(10.0)
    assert after == pytest.approx(100 / (1 / 20))  # at most one unit per 20 s now


def test_stages_report_their_units_eta_and_durations():
    clock, seen = Clock(), []
    stages = StageProgress(["load", "generate", "score"], seen.append, clock=clock, min_interval=0.5)
    stages.start("load")
    clock.now = 3.0
    stages.start("generate", total=10, unit="classes")
    tick = stages.ticker(per_unit=50)  # an inner loop counting images, 50 per class
    for second in range(1, 5):
        clock.now = 3.0 + second
        tick(100 * second, 500)  # two classes a second
    last = seen[-1]
    assert last["stage"] == "generate" and last["index"] == 2 and last["stages"] == 3
    assert last["done"] == 8 and last["total"] == 10 and last["fraction"] == pytest.approx(0.8)
    assert last["eta_s"] == pytest.approx(1.0)
    assert describe(last, now=last["updated"]) == "stage 2 of 3 · generate: 8/10 classes · about 1 s left"
    clock.now = 10.0
    stages.start("score", detail="cas")
    assert describe(seen[-1], now=seen[-1]["updated"]) == "stage 3 of 3 · score (cas) · 0 s so far"
    clock.now = 12.5
    stages.finish()
    done = seen[-1]
    assert done["state"] == "finished" and done["completed"] == [
        ["load", 3.0],
        ["generate", 7.0],
        ["score", 2.5],
    ]
    assert describe(done) == "done: load 3 s, generate 7 s, score 2 s"


def test_updates_are_throttled_but_a_stage_end_is_always_sent():
    clock, seen = Clock(), []
    stages = StageProgress(["work"], seen.append, clock=clock, min_interval=0.5)
    stages.start("work", total=1000, unit="images")
    for i in range(1, 1001):
        clock.now = i * 0.001  # a thousand callbacks within one second
        stages.update(i)
    assert 2 <= len(seen) <= 4  # the start, one per half second, and the end
    assert seen[-1]["done"] == 1000


def test_an_unknown_stage_is_refused():
    stages = StageProgress(["a", "b"])
    with pytest.raises(ValueError, match="Unknown stage 'c'"):
        stages.start("c")


def test_a_stale_snapshot_counts_down_then_says_it_is_late():
    snapshot = {
        "state": "running", "stage": "features", "index": 4, "stages": 7, "done": 10, "total": 100,
        "unit": "images", "detail": "", "eta_s": 30.0, "elapsed_s": 5.0, "updated": 1000.0,
    }  # fmt: skip
    assert describe(snapshot, now=1010.0).endswith("about 20 s left")
    assert describe(snapshot, now=1035.0).endswith("finishing this stage")
    assert describe(snapshot, now=1060.0).endswith("taking longer than estimated (1 min 05 s so far)")


def test_durations_read_naturally():
    assert [format_duration(s) for s in (0.4, 8, 65, 3725)] == ["0 s", "8 s", "1 min 05 s", "1 h 02 min"]


def test_the_progress_file_holds_the_latest_snapshot(tmp_path):
    path = tmp_path / "job.progress.json"
    stages = StageProgress(["only"], write_progress_file(path))
    stages.start("only", total=3, unit="steps")
    stages.update(3)
    saved = json.loads(path.read_text())
    assert saved["stage"] == "only" and saved["done"] == 3 and saved["total"] == 3
