"""One trainer per run folder: a lock file that names the process holding it.

Two trainers writing one run folder interleave log.jsonl and overwrite each other's checkpoints
without an error, so a trainer takes ``RUN/trainer.lock`` before it writes anything, and every other
writer (a second trainer, a recipe runner, the app's Train tab) checks it first.

The lock is an advisory ``flock`` on the file (the kernel drops it when its process dies, even by
SIGKILL) plus the holder's pid, host name and process start time written into it, so that a refusal
can say who holds the run and so that readers which must not take the lock (the app's listing) can
still tell a live holder from one that is gone (pid not running, or reused by another process).
Where ``flock`` is unavailable the file's content alone decides. The file is never deleted: a
released lock is an empty file, and deleting it would let two trainers lock two different files.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shlex
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from gan_studio.training.checkpoint import CheckpointError

try:
    import fcntl
except ImportError:  # Windows: the content check alone
    fcntl = None

LOCK_FILE = "trainer.lock"


class RunLockedError(CheckpointError):
    """Another live process trains (or writes) this run folder."""


@dataclasses.dataclass(frozen=True)
class LockHolder:
    pid: int
    host: str
    process_start: str | None  # /proc/PID/stat's start time: tells a reused pid from the holder
    since: float  # when it took the lock (seconds since the epoch)
    command: str | None = None

    def describe(self) -> str:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.since))
        what = f": {self.command}" if self.command else ""
        return f"process {self.pid} on {self.host} (since {when}{what})"


def _process_start(pid: int) -> str | None:
    """A process's start time in clock ticks since boot (Linux), or None where /proc is missing."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[-1].split()[19]  # field 22; the name in (...) may hold spaces


def _this_process() -> LockHolder:
    return LockHolder(os.getpid(), socket.gethostname(), _process_start(os.getpid()), time.time())


def is_alive(holder: LockHolder) -> bool:
    """Whether the holder may still run: on another host we cannot tell, so it counts as alive."""
    if holder.host != socket.gethostname():
        return True
    try:
        os.kill(holder.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, owned by another user
    started = _process_start(holder.pid)
    return holder.process_start is None or started is None or started == holder.process_start


def read_holder(run_dir: Path) -> LockHolder | None:
    """Who the lock file names, alive or not; None for a free (empty) or unreadable lock."""
    try:
        data = json.loads((Path(run_dir) / LOCK_FILE).read_text(encoding="utf-8") or "null")
        return LockHolder(**data) if isinstance(data, dict) else None
    except (OSError, ValueError, TypeError):
        return None


def live_holder(run_dir: Path) -> LockHolder | None:
    """The live process holding the run, or None when nobody does (or its holder is gone)."""
    holder = read_holder(run_dir)
    return holder if holder is not None and is_alive(holder) else None


def locked_message(run_dir: Path, holder: LockHolder) -> str:
    return (
        f"'{run_dir}' is being trained by {holder.describe()}. Wait for it to finish, stop it (Stop in the "
        f"app, Ctrl-C, or kill -TERM {holder.pid} on {holder.host}), or use another --out folder. If that "
        f"process is gone, delete '{Path(run_dir) / LOCK_FILE}'."
    )


def is_first_process() -> bool:
    """Under torchrun / accelerate launch only the first process takes and checks the lock (the
    others run alongside it); known from the environment before any process group exists."""
    return os.environ.get("RANK", "0") == "0"


def refuse_if_held(run_dir: Path) -> None:
    """For writers that must not start while a trainer runs (the app's Resume, for one); a no-op in
    the other processes of a data-parallel run, whose first process holds the lock."""
    if not is_first_process():
        return
    holder = live_holder(run_dir)
    if holder is not None and holder.pid != os.getpid():
        raise RunLockedError(locked_message(run_dir, holder))


class _Held:
    """This process's hold on one run folder; nested holds (a recipe runner, then each of its
    trainers) share it, and the lock is freed when the last one is released."""

    def __init__(self, path: Path, handle):
        self.path, self.handle, self.count = path, handle, 0


_held: dict[Path, _Held] = {}
_held_guard = threading.Lock()


class RunLock:
    """A hold on a run folder's lock; ``release`` (or leaving a ``with`` block) gives it back once."""

    def __init__(self, run_dir: Path):
        self.run_dir = Path(run_dir)
        self._key: Path | None = None

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    @contextlib.contextmanager
    def released_on_error(self) -> Iterator[None]:
        """Keep the hold when the block succeeds, give it back when it raises (a failed start)."""
        try:
            yield
        except BaseException:
            self.release()
            raise

    def release(self) -> None:
        with _held_guard:
            key, self._key = self._key, None
            held = _held.get(key) if key is not None else None
            if held is None:
                return
            held.count -= 1
            if held.count > 0:
                return
            del _held[key]
            try:
                held.handle.seek(0)
                held.handle.truncate()  # an empty file: free
                held.handle.flush()
            except OSError:
                pass
            held.handle.close()  # closing drops the flock


def hold(run_dir: Path, command: str | None = None, *, take: bool = True) -> RunLock:
    """Take the run folder's lock (creating the folder), or raise RunLockedError naming the holder.
    ``take=False``: a hold that holds nothing (data-parallel ranks other than the first)."""
    run_dir = Path(run_dir)
    key = run_dir.expanduser().resolve()
    lock = RunLock(run_dir)
    if not take:
        return lock
    command = command or shlex.join(sys.argv)
    with _held_guard:
        held = _held.get(key)
        if held is None:
            held = _Held(key / LOCK_FILE, _take(run_dir, command))
            _held[key] = held
        held.count += 1
        lock._key = key
    return lock


def _take(run_dir: Path, command: str | None):
    run_dir.mkdir(parents=True, exist_ok=True)
    handle = open(run_dir / LOCK_FILE, "a+", encoding="utf-8")  # never truncates someone else's lock
    try:
        if fcntl is not None:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = read_holder(run_dir)
                if holder is None:  # between its flock and its write: it is starting right now
                    time.sleep(0.2)
                    holder = read_holder(run_dir)
                raise RunLockedError(
                    locked_message(run_dir, holder)
                    if holder is not None
                    else f"'{run_dir}' is being trained by another process that is starting right now; "
                    "use another --out folder or wait for it."
                ) from None
        previous = read_holder(run_dir)
        mine = _this_process()
        if previous is not None and previous.pid != mine.pid and is_alive(previous):
            # flock said free, yet the file names a live holder: another host, or a file system
            # without working locks. Believe the file.
            raise RunLockedError(locked_message(run_dir, previous))
        handle.seek(0)
        handle.truncate()
        data = {**dataclasses.asdict(mine), "command": command}
        handle.write(json.dumps(data) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    except BaseException:
        handle.close()
        raise
    return handle
