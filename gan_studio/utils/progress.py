"""Honest progress for long work: named stages, the units done in the current one, a smoothed ETA.

A job (an evaluation, a UMAP map) declares its stages up front and reports each as it goes:
``stage 3 of 6 · features: 1,200/2,600 images · about 20 s left``. Nothing is weighted or guessed:
the bar is the current stage's share of its own units, and a stage whose size is unknown (decoding a
dataset, compiling UMAP's kernels) says what it is doing and for how long, without a bar.

The ETA divides the units left by an exponential moving average of the rate (units per second),
sampled at most every ``min_interval`` seconds so that a burst of callbacks does not swing it. While
nothing advances, the rate is capped by what the stall still allows, so the ETA grows instead of
counting down to a false "any moment".

``StageProgress`` hands every change to a sink: the ``evaluate`` command writes it to a JSON file the
app polls (``write_progress_file``), the app's in-process jobs forward it to ``gr.Progress``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

from gan_studio.utils.atomic import write_json_atomic

Sink = Callable[[dict], None]
Tick = Callable[[float, float], None]  # (done, total) of an inner loop
OVERDUE_S = 10.0  # past its ETA by this much, a stage says it is taking longer than estimated


class EtaSmoother:
    """Seconds left from an exponential moving average of the rate, in whatever units the caller counts."""

    def __init__(self, *, alpha: float = 0.3, min_interval: float = 0.5):
        if not 0 < alpha <= 1:
            raise ValueError(f"alpha must be in (0, 1], got {alpha}")
        self.alpha, self.min_interval = alpha, min_interval
        self.reset(0.0)

    def reset(self, now: float, done: float = 0.0) -> None:
        """Start over (a new stage): no rate known yet."""
        self._rate: float | None = None
        self._sample_time, self._sample_done = now, done  # the start of the current sampling window
        self._last_advance = now

    def observe(self, done: float, now: float) -> None:
        """``done`` units are finished at time ``now`` (seconds, any monotonic clock)."""
        if done > self._sample_done:
            self._last_advance = now
        elapsed = now - self._sample_time
        if elapsed < self.min_interval or done <= self._sample_done:
            return
        rate = (done - self._sample_done) / elapsed
        self._rate = rate if self._rate is None else self.alpha * rate + (1 - self.alpha) * self._rate
        self._sample_time, self._sample_done = now, done

    def rate(self, now: float) -> float | None:
        """Units per second, capped by a stall: after s seconds without progress, at most 1 unit per s."""
        if self._rate is None:
            return None
        stalled = now - self._last_advance
        return min(self._rate, 1.0 / stalled) if stalled > 0 else self._rate

    def eta(self, done: float, total: float | None, now: float) -> float | None:
        """Seconds until ``total``; None while the rate is unknown or the size is."""
        rate = self.rate(now)
        if total is None or rate is None or rate <= 0:
            return None
        return max(0.0, (total - done) / rate)


def format_duration(seconds: float) -> str:
    """'8 s', '1 min 05 s', '2 h 03 min'."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _count(value: float) -> str:
    return f"{int(value):,}"


class StageProgress:
    """A job's progress through its ``stages``; every change goes to ``sink`` as a snapshot dict.

    Snapshots are throttled to one per ``min_interval`` seconds, except a stage's start and end."""

    def __init__(
        self,
        stages: Sequence[str],
        sink: Sink | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        min_interval: float = 0.5,
        alpha: float = 0.3,
    ):
        if not stages:
            raise ValueError("A job needs at least one stage.")
        self.stages, self.sink, self.clock, self.min_interval = list(stages), sink, clock, min_interval
        self.smoother = EtaSmoother(alpha=alpha, min_interval=min_interval)
        self.stage: str | None = None
        self.total: float | None = None
        self.unit = self.detail = ""
        self.done = 0.0
        self.state = "running"
        self.completed: list[tuple[str, float]] = []  # (stage, seconds) of the finished stages
        self._stage_started = self._last_sent = self.clock()

    def start(self, stage: str, total: float | None = None, unit: str = "", detail: str = "") -> None:
        """Begin ``stage`` (one of ``stages``) of ``total`` ``unit`` (None: its size is unknown)."""
        if stage not in self.stages:
            raise ValueError(f"Unknown stage {stage!r}; this job's stages are {self.stages}")
        now = self.clock()
        self._close_stage(now)
        self.stage, self.total, self.unit, self.detail, self.done = stage, total, unit, detail, 0.0
        self._stage_started = now
        self.smoother.reset(now)
        self._send(now)

    def update(self, done: float, detail: str | None = None, *, force: bool = False) -> None:
        """``done`` units of the current stage are finished (and what it is doing now, if it changed)."""
        now = self.clock()
        self.done = float(done)
        if detail is not None:
            force = force or detail != self.detail
            self.detail = detail
        self.smoother.observe(self.done, now)
        finished = self.total is not None and self.done >= self.total
        if force or finished or now - self._last_sent >= self.min_interval:
            self._send(now)

    def ticker(self, per_unit: float = 1.0, offset: float = 0.0) -> Tick:
        """A callback for an inner loop that counts its own (done, total): ``offset + done / per_unit``
        units of the current stage (e.g. images / images-per-class gives classes)."""
        return lambda done, total: self.update(offset + done / per_unit)

    def finish(self) -> None:
        now = self.clock()
        self._close_stage(now)
        self.stage, self.state = None, "finished"
        self._send(now)

    def _close_stage(self, now: float) -> None:
        if self.stage is not None:
            self.completed.append((self.stage, now - self._stage_started))

    def snapshot(self, now: float | None = None) -> dict:
        now = self.clock() if now is None else now
        index = self.stages.index(self.stage) + 1 if self.stage else len(self.stages)
        return {
            "state": self.state,
            "stage": self.stage,
            "index": index,
            "stages": len(self.stages),
            "done": self.done,
            "total": self.total,
            "unit": self.unit,
            "detail": self.detail,
            "fraction": min(1.0, self.done / self.total) if self.total else None,
            "eta_s": self.smoother.eta(self.done, self.total, now),
            "elapsed_s": now - self._stage_started,
            "completed": [[name, round(seconds, 2)] for name, seconds in self.completed],
            "updated": time.time(),
        }

    def _send(self, now: float) -> None:
        self._last_sent = now
        if self.sink is not None:
            self.sink(self.snapshot(now))


def describe(snapshot: dict | None, *, now: float | None = None) -> str:
    """One line for people: 'stage 3 of 6 · features: 1,200/2,600 images · about 20 s left'.

    ``now`` (wall-clock seconds) ages a snapshot read from a file: the ETA counts down from its writing."""
    if not snapshot:
        return ""
    if snapshot.get("state") == "finished":
        parts = ", ".join(f"{name} {format_duration(s)}" for name, s in snapshot.get("completed", []))
        return f"done: {parts}" if parts else "done"
    age = max(0.0, (now - snapshot.get("updated", now)) if now is not None else 0.0)
    head = f"stage {snapshot['index']} of {snapshot['stages']} · {snapshot['stage']}"
    total = snapshot.get("total")
    if total:
        head += f": {_count(snapshot['done'])}/{_count(total)} {snapshot.get('unit', '')}".rstrip()
    if snapshot.get("detail"):
        head += f" ({snapshot['detail']})"
    eta, so_far = snapshot.get("eta_s"), snapshot.get("elapsed_s", 0.0) + age
    if eta is None:
        tail = f"{format_duration(so_far)} so far"
    elif eta - age >= 1:
        tail = f"about {format_duration(eta - age)} left"
    elif eta - age > -OVERDUE_S:
        tail = "finishing this stage"
    else:
        tail = f"taking longer than estimated ({format_duration(so_far)} so far)"
    return f"{head} · {tail}"


def write_progress_file(path: str | Path) -> Sink:
    """A sink that keeps ``path`` holding the latest snapshot (atomically: readers never see half)."""
    path = Path(path)
    return lambda snapshot: write_json_atomic(path, snapshot)
