"""Keeping a folder's contents within a size budget: the least recently used entries go first.

Shared by the zip cache (extracted datasets) and the app's served outputs (scratch folders, exports).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterable
from pathlib import Path


def disk_size(path: Path) -> int:
    """Bytes of a file, or of the files below a folder (links not followed; what vanished counts 0)."""
    if not path.is_dir():
        try:
            return os.lstat(path).st_size
        except OSError:
            return 0
    total = 0
    for dirpath, _, filenames in os.walk(path):
        for name in filenames:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                pass
    return total


def mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def remove_path(path: Path) -> bool:
    """Delete a file or a folder (what is already gone counts as removed); for ``prune_oldest``."""
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
    return True


def prune_oldest(
    entries: Iterable[Path],
    budget_bytes: float,
    remove: Callable[[Path], bool],
    *,
    grace_s: float,
    keep: Callable[[Path], bool] = lambda path: False,
) -> list[Path]:
    """Remove ``entries``, least recently modified first, until the rest fit ``budget_bytes``.
    Never one modified in the last ``grace_s`` seconds (it may be in use) nor one ``keep`` names;
    ``remove`` returns False when an entry could not go (a reader holds it). Returns what went."""
    ordered = sorted(entries, key=mtime)
    sizes = {entry: disk_size(entry) for entry in ordered}
    total, removed, now = sum(sizes.values()), [], time.time()
    for entry in ordered:
        if total <= budget_bytes:
            break
        if keep(entry) or now - mtime(entry) < grace_s:
            continue
        if remove(entry):
            total -= sizes[entry]
            removed.append(entry)
    return removed
