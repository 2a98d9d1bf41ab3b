"""Ctrl-C and SIGTERM ask a trainer to stop; they never interrupt it.

The trainer finishes its step, saves a checkpoint and marks the run stopped. Until all of that is
done, every further Ctrl-C or SIGTERM only repeats the request: a second stop during the final save
used to hit the default handler (restored too early), killing the process with the checkpoint half
written and status.json still saying "running".
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def stop_requests(on_stop: Callable[[], None], *, announce: bool = True) -> Iterator[None]:
    """For the whole block, Ctrl-C and SIGTERM call ``on_stop`` (and say so on stderr) instead of
    ending the process; the previous handlers come back when the block ends."""
    seen = []

    def handler(signum, frame) -> None:  # noqa: ARG001
        if announce:
            name = signal.Signals(signum).name
            text = (
                f"{name}: stopping after this step and saving a checkpoint first...\n"
                if not seen
                else f"{name}: already stopping; the checkpoint is being saved, please wait.\n"
            )
            # os.write, not print: a print interrupted by this very handler would raise
            # "reentrant call" from inside the trainer.
            try:
                os.write(sys.stderr.fileno(), text.encode())
            except (OSError, ValueError):
                pass
        seen.append(signum)
        on_stop()

    previous = {}
    for sig in STOP_SIGNALS:
        try:
            previous[sig] = signal.signal(sig, handler)
        except ValueError:  # not in the main thread (e.g. a notebook worker): nothing to route
            pass
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
