"""A seeded, stratified, group-aware train/test split, saved next to the run as split.json.

The split is made once per run and read back by everything that trains or evaluates, so the GAN and
the evaluator classifier can never see a test image. It depends only on the record paths, the seed,
the test fraction and the group pattern, never on the order the file system lists files in.
"""

from __future__ import annotations

import json
import os
import random
import re
import tempfile
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from gan_studio.data.common import DatasetError
from gan_studio.data.folder import ImageRecord

SPLIT_VERSION = 1


@dataclass
class Split:
    train: list[str]  # record paths relative to the dataset root
    test: list[str]
    seed: int
    test_fraction: float
    group_pattern: str | None

    def indices(self, records: Sequence[ImageRecord]) -> tuple[list[int], list[int]]:
        """Positions of the train and test paths in `records` (records in neither list are left out)."""
        position = {record.path: i for i, record in enumerate(records)}
        missing = [path for path in (*self.train, *self.test) if path not in position]
        if missing:
            shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
            raise DatasetError(
                f"The split lists {len(missing)} file(s) that are not in the dataset: {shown}. The dataset "
                "changed since the split was made; restore the files, or delete split.json to make a new split."
            )
        return sorted(position[path] for path in self.train), sorted(position[path] for path in self.test)

    def to_dict(self) -> dict:
        return {
            "version": SPLIT_VERSION,
            "seed": self.seed,
            "test_fraction": self.test_fraction,
            "group_pattern": self.group_pattern,
            "train": list(self.train),
            "test": list(self.test),
        }


def _group_key(path: str, pattern: re.Pattern | None) -> str:
    """Files whose stem matches share the matched id (first capture group, else the match)."""
    match = pattern.search(PurePosixPath(path).stem) if pattern else None
    group = (match.group(1) if pattern.groups else match.group(0)) if match else None
    return f"file:{path}" if group is None else f"group:{group}"


def _closest_subset(sizes: list[int], target: int, limit: int) -> list[int]:
    """Indices of groups whose sizes sum closest to `target` without exceeding `limit` (exact subset sum).

    Bitsets of reachable sums make this cheap for thousands of groups; among equally good sums the
    smaller one wins, and among subsets with that sum the earliest groups (in the caller's shuffled
    order) are taken, which keeps the choice random but reproducible.
    """
    reachable = [1]
    mask = (1 << (limit + 1)) - 1
    for size in sizes:
        reachable.append((reachable[-1] | (reachable[-1] << size)) & mask)
    best = min(
        (total for total in range(limit + 1) if reachable[-1] >> total & 1),
        key=lambda t: (abs(t - target), t),
    )
    chosen = []
    for i in reversed(range(len(sizes))):
        if not reachable[i] >> best & 1:
            chosen.append(i)
            best -= sizes[i]
    return chosen


def make_split(
    records: Sequence[ImageRecord],
    *,
    test_fraction: float = 0.3,
    seed: int = 0,
    group_pattern: str | None = None,
) -> Split:
    """Split each class separately: round(n * test_fraction) images to test, at least one kept for train.

    With `group_pattern` (a regex searched in each file name without extension, e.g. r"^(.+)_view\\d+$")
    all files of one group land on the same side, as close to the class's test fraction as the group
    sizes allow. Each class uses its own RNG seeded by (seed, class name), so adding a class leaves
    the others' splits unchanged.
    """
    if not 0.0 <= test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in [0, 1), got {test_fraction}")
    try:
        pattern = re.compile(group_pattern) if group_pattern else None
    except re.error as error:
        raise ValueError(f"Invalid group pattern {group_pattern!r}: {error}") from error
    paths = [record.path for record in records]
    if len(set(paths)) != len(paths):
        raise DatasetError("The records contain duplicate paths; each image must appear once to be split.")

    by_class: dict[str, list[str]] = defaultdict(list)
    for record in records:
        by_class[record.class_name].append(record.path)

    train: list[str] = []
    test: list[str] = []
    for class_name in sorted(by_class):
        class_paths = sorted(by_class[class_name])
        groups: dict[str, list[str]] = defaultdict(list)
        for path in class_paths:
            groups[_group_key(path, pattern)].append(path)
        keys = sorted(groups)
        random.Random(f"{seed}:{class_name}").shuffle(keys)
        n = len(class_paths)
        target = min(round(n * test_fraction), n - 1)
        chosen = set(_closest_subset([len(groups[key]) for key in keys], target, limit=n - 1))
        for i, key in enumerate(keys):
            (test if i in chosen else train).extend(groups[key])
    return Split(
        train=sorted(train),
        test=sorted(test),
        seed=seed,
        test_fraction=test_fraction,
        group_pattern=group_pattern,
    )


def save_split(split: Split, path: str | os.PathLike) -> None:
    """Write split.json atomically, so a crash never leaves a half-written split that later runs trust."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(split.to_dict(), f, indent=2, ensure_ascii=False)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_split(path: str | os.PathLike) -> Split:
    """Read and validate split.json; any problem names the file and how to recover."""
    path = Path(path)
    fix = "Delete it to make a new split, or restore it from the run that created it."
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise DatasetError(f"Split file '{path}' does not exist. Make a split first.") from error
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DatasetError(f"Split file '{path}' is not readable JSON ({error}). {fix}") from error

    def invalid(what: str) -> DatasetError:
        return DatasetError(f"Split file '{path}' is invalid: {what}. {fix}")

    if not isinstance(data, dict):
        raise invalid("expected a JSON object")
    if data.get("version") != SPLIT_VERSION:
        raise invalid(f"unsupported version {data.get('version')!r} (expected {SPLIT_VERSION})")
    for key in ("train", "test"):
        value = data.get(key)
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise invalid(f"'{key}' must be a list of file paths")
    seed, fraction, pattern = data.get("seed"), data.get("test_fraction"), data.get("group_pattern")
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise invalid("'seed' must be an integer")
    if not isinstance(fraction, (int, float)) or isinstance(fraction, bool) or not 0 <= fraction < 1:
        raise invalid("'test_fraction' must be a number in [0, 1)")
    if pattern is not None and not isinstance(pattern, str):
        raise invalid("'group_pattern' must be a string or null")
    overlap = set(data["train"]) & set(data["test"])
    if overlap:
        raise invalid(f"{len(overlap)} file(s) are in both train and test, e.g. '{sorted(overlap)[0]}'")
    if len(set(data["train"])) != len(data["train"]) or len(set(data["test"])) != len(data["test"]):
        raise invalid("a file is listed twice")
    return Split(
        train=list(data["train"]),
        test=list(data["test"]),
        seed=seed,
        test_fraction=float(fraction),
        group_pattern=pattern,
    )


def few_shot_paths(records: Sequence[ImageRecord], per_class: int, *, seed: int = 0) -> list[str]:
    """At most ``per_class`` paths of each class, drawn with a per-class seeded RNG.

    Simulates the few-shot regime on a larger training split. The GAN run and the augmentation
    experiment call this with the same records and seed, so both see exactly the same real images.
    """
    if per_class < 1:
        raise ValueError(f"per_class must be at least 1, got {per_class}")
    by_class: dict[str, list[str]] = defaultdict(list)
    for record in records:
        by_class[record.class_name].append(record.path)
    chosen: list[str] = []
    for class_name in sorted(by_class):
        paths = sorted(by_class[class_name])
        random.Random(f"few-shot:{seed}:{class_name}").shuffle(paths)
        chosen.extend(paths[:per_class])
    return sorted(chosen)
