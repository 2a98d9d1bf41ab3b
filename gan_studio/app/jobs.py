"""Background CLI processes (training, evaluation) that the app starts, watches and stops.

Why subprocesses: a training run or an evaluation can take hours and may crash (bad data, out of
memory); in its own process and session it can never freeze or take down the web app, and it keeps
running (and can be resumed) if the app restarts. Output goes to a log file the UI tails.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import gan_studio
from gan_studio.utils import limits

PACKAGE_PARENT = Path(gan_studio.__file__).resolve().parents[1]
_TQDM_PERCENT = re.compile(r"(\d{1,3})%\|")
_TQDM_DESC = re.compile(r"(?:^|\r)([^\r|:]{1,60}):\s+\d{1,3}%\|")


def cli_command(*args: str) -> list[str]:
    """``python -m gan_studio ARGS`` with the interpreter running the app."""
    return [sys.executable, "-m", "gan_studio", *map(str, args)]


def read_tail(path: Path, max_bytes: int = 8000) -> str:
    """The end of a log file, with tqdm's carriage-return redraws collapsed to their final state."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - max_bytes))
            raw = f.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    lines = [line.rsplit("\r", 1)[-1] for line in raw.replace("\r\n", "\n").split("\n")]
    return "\n".join(line for line in lines if line.strip())


def tqdm_progress(text: str) -> tuple[str, float] | None:
    """(description, fraction) of the last tqdm bar printed in ``text``, if any."""
    percents = list(_TQDM_PERCENT.finditer(text))
    if not percents:
        return None
    last = percents[-1]
    line_start = text.rfind("\n", 0, last.start()) + 1
    line = text[line_start : last.end()].rsplit("\r", 1)[-1]
    desc = _TQDM_DESC.search(line)
    return (desc.group(1).strip() if desc else ""), int(last.group(1)) / 100


def job_label(name: str) -> str:
    """A job's name as users know it: "train my-run" for "train:/srv/studio/runs/my-run"."""
    kind, _, target = name.partition(":")
    return f"{kind} {Path(target).name if os.sep in target else target}".strip()


@dataclass
class Job:
    """One started process: its command, log file and exit code once it ended."""

    name: str
    argv: list[str]
    log_path: Path
    process: subprocess.Popen
    meta: dict = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.process.pid

    def poll(self) -> int | None:
        return self.process.poll()

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float | None = None) -> None:
        """SIGTERM: the CLI commands save what they have (a checkpoint) and exit cleanly."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            if timeout is not None:
                try:
                    self.process.wait(timeout)
                except subprocess.TimeoutExpired:
                    pass

    def log_tail(self, max_bytes: int = 8000) -> str:
        return read_tail(self.log_path, max_bytes)


class JobRunner:
    """Starts CLI processes and remembers the ones this app started (it never signals others)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: dict[str, Job] = {}
        # Labels of jobs running outside this app process that count against the limit too (the
        # trainers an earlier app process left running: ``TrainingManager.trainers_elsewhere``).
        self.outside: Callable[[set[int]], list[str]] = lambda own_pids: []

    def check_capacity(self) -> None:
        """Refuse one more job when ``GAN_STUDIO_MAX_TRAININGS`` of them run already."""
        with self._lock:
            self._check_capacity()

    def _check_capacity(self) -> None:
        running = [job for job in self._jobs.values() if job.running]
        labels = [job_label(job.name) for job in running]
        labels += self.outside({job.pid for job in running})
        asked = f"One more background job ({len(labels)} running: {', '.join(labels)})"
        message = limits.exceeded("trainings", len(labels) + 1, asked)
        if message:
            raise limits.LimitExceeded(f"{message} Wait for one to finish, or stop it, and try again.")

    def start(self, name: str, argv: list[str], log_path: Path, *, meta: dict | None = None) -> Job:
        with self._lock:
            current = self._jobs.get(name)
            if current is not None and current.running:
                raise RuntimeError(f"'{name}' is already running (process {current.pid}); stop it first.")
            self._check_capacity()
            log_path.parent.mkdir(parents=True, exist_ok=True)
            env = {**os.environ, "PYTHONUNBUFFERED": "1"}
            env["PYTHONPATH"] = os.pathsep.join(
                p for p in (str(PACKAGE_PARENT), env.get("PYTHONPATH", "")) if p
            )
            with open(log_path, "ab") as log:
                process = subprocess.Popen(
                    argv,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    cwd=PACKAGE_PARENT,
                    env=env,
                    start_new_session=True,  # Ctrl-C in the app's terminal does not reach it
                )
            job = Job(name, list(argv), log_path, process, dict(meta or {}))
            self._jobs[name] = job
            return job

    def get(self, name: str) -> Job | None:
        with self._lock:
            return self._jobs.get(name)

    def running(self) -> list[Job]:
        with self._lock:
            return [job for job in self._jobs.values() if job.running]

    def stop_all(self, timeout: float = 30.0) -> None:
        for job in self.running():
            job.stop(timeout)
