"""The real images behind a generator: its dataset, split into train / held-out test, decoded once.

Grad-CAM shows held-out test images, the embedding plot and memorisation scores compare samples with
the train images, exports can merge the train images in, and the Sample and Evaluate tabs show real
train images beside the generated ones. All read the same split the GAN was
trained with (split.json), so a test image can never leak into anything trained downstream.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from gan_studio.app.registry import LoadedModel, ModelEntry
from gan_studio.data import DatasetError, LabeledImages, load_labeled_images, load_split
from gan_studio.metrics.report import SAMPLES_PER_CLASS_IN_GRID
from gan_studio.sampling import safe_name
from gan_studio.side_by_side import first_per_class
from gan_studio.training.run_folder import RunFolder
from gan_studio.utils.images import save_image_grid, save_png_atomic, to_pil

_MAX_CACHED = 4


@dataclass
class RealSplit:
    source: str
    root: Path
    train: LabeledImages
    test: LabeledImages
    class_names: list[str]
    key: tuple = ()

    @property
    def fit(self) -> str:
        """How the images were made square (center-crop, pad or stretch): part of the cache key."""
        return self.key[1] if len(self.key) > 1 else "center-crop"

    @property
    def train_names(self) -> list[str]:
        return [r.path for r in self.train.records]

    @property
    def test_names(self) -> list[str]:
        return [r.path for r in self.test.records]


def _read(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def dataset_of(entry: ModelEntry, fallback: str | None = None) -> tuple[str, str]:
    """(dataset source, fit mode) a generator was trained on, from its run.json or its evaluator's record."""
    folders = [f for f in (entry.run_dir, entry.path) if f is not None]
    for folder in folders:
        data = _read(RunFolder(folder).run_path).get("data") or {}
        if data.get("source") == "demo":  # the built-in data: this machine's cache, wherever it is
            return "demo", data.get("fit", "center-crop")
        for key in ("root", "source"):
            value = data.get(key)
            if value and Path(value).exists():
                return value, data.get("fit", "center-crop")
    for folder in folders:
        data = _read(Path(folder) / "evaluator" / "training.json").get("data") or {}
        for key in ("root", "source"):
            value = data.get(key)
            if value and (value == "demo" or Path(value).exists()):
                return value, data.get("fit", "center-crop")
    if fallback:
        return fallback, "center-crop"
    raise DatasetError(
        f"Cannot find the real images of '{entry.id}': its run.json names no dataset that exists here. "
        "Start the app with --data DIR pointing at the dataset it was trained on."
    )


class RealDataCache:
    """Decoded real splits, keyed by (dataset, resolution, split file), a few at a time."""

    def __init__(self, fallback_data: str | None = None):
        self.fallback_data = fallback_data
        self._lock = threading.Lock()
        self._cache: OrderedDict[tuple, RealSplit] = OrderedDict()
        self._features: OrderedDict[tuple, tuple[np.ndarray, np.ndarray]] = OrderedDict()

    def get(self, entry: ModelEntry, *, progress: bool = False) -> RealSplit:
        split_path = entry.split_path
        if split_path is None:
            raise DatasetError(
                f"'{entry.id}' has no split.json, so its held-out test images are unknown. Use a run folder "
                "(it writes split.json) or a package that ships one."
            )
        source, fit = dataset_of(entry, self.fallback_data)
        key = (source, fit, entry.resolution, str(split_path), split_path.stat().st_mtime_ns)
        with self._lock:  # one decode at a time: they are memory-heavy and usually for the same key
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
            data = load_labeled_images(source, entry.resolution, fit=fit, progress=progress)
            if tuple(data.class_names) != tuple(entry.class_names):
                raise DatasetError(
                    f"The dataset '{source}' has classes {data.class_names}, but '{entry.id}' was trained on "
                    f"{list(entry.class_names)}. Start the app with --data pointing at the right dataset."
                )
            train_idx, test_idx = load_split(split_path).indices(data.records)
            split = RealSplit(
                source, data.root, data.subset(train_idx), data.subset(test_idx), list(data.class_names), key
            )
            self._cache[key] = split
            while len(self._cache) > _MAX_CACHED:
                self._cache.popitem(last=False)
            return split

    def features(
        self,
        evaluator: LoadedModel,
        split: RealSplit,
        part: str,
        on_batch: Callable[[int, int], None] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Evaluator (probs, features) of the real ``part`` ("train" or "test"), cached per evaluator
        version; ``on_batch(done, total)`` counts its images (all at once when they were cached)."""
        key = (evaluator.entry.id, evaluator.version, split.key, part)
        images = getattr(split, part).images
        with self._lock:
            if key in self._features:
                self._features.move_to_end(key)
                if on_batch is not None:
                    on_batch(len(images), len(images))
                return self._features[key]
        # the caller holds the evaluator's lock
        result = evaluator.model.predict_uint8(images, 128, on_batch=on_batch)
        with self._lock:
            self._features[key] = result
            while len(self._features) > 4 * _MAX_CACHED:
                self._features.popitem(last=False)
        return result


def real_examples(
    cache: RealDataCache, entry: ModelEntry, classes: list[int], per_class: int
) -> tuple[list[torch.Tensor], str | None]:
    """The first ``per_class`` train images of each of ``classes`` in file order (what samples are
    judged against), at the generator's resolution; ([], why not) when the dataset is not here."""
    try:
        split = cache.get(entry)
    except (DatasetError, OSError) as error:
        return [], f"**Real images are not available here**, so none are shown beside the samples: {error}"
    return first_per_class(split.train, per_class, classes), None


def real_gallery_items(
    cache: RealDataCache, entry: ModelEntry, classes: list[int], per_class: int, out_dir: Path
) -> tuple[list[tuple[str, str]], str]:
    """(gallery items, note): the real train images shown beside ``per_class`` samples of each class."""
    reals, why = real_examples(cache, entry, classes, per_class)
    if why:
        return [], why
    items = []
    for c, images in zip(classes, reals):
        name = entry.class_names[c]
        for i, image in enumerate(images):
            path = save_png_atomic(to_pil(image), out_dir / safe_name(name) / f"real_{i:03d}.png")
            items.append((str(path), f"real · {name}"))
    note = (
        f"Left: **real** train images, the first {per_class} of each class in file order (not picked), "
        f"at {entry.resolution} px like the samples on the right."
    )
    short = [entry.class_names[c] for c, images in zip(classes, reals) if len(images) < per_class]
    if short:
        note += f" Fewer train images than that: {', '.join(short)}."
    return items, note


def real_grid(cache: RealDataCache, entry: ModelEntry, out_dir: Path) -> tuple[str | None, str]:
    """(PNG, note): the first train images of every class in the layout of the evaluation's sample grid
    (one row per class, 8 columns), so the two show at the same size side by side."""
    k = SAMPLES_PER_CLASS_IN_GRID
    classes = list(range(len(entry.class_names)))
    reals, why = real_examples(cache, entry, classes, k)
    if why:
        return None, why
    size = entry.resolution
    rows = [torch.cat([r, r.new_zeros(k - len(r), 3, size, size)]) for r in reals]
    key = hashlib.sha1(repr(cache.get(entry).key).encode()).hexdigest()[:12]
    path = out_dir / f"{safe_name(entry.id)}-real-{key}.png"
    if not path.is_file():
        save_image_grid(torch.cat(rows), path, k, row_labels=list(entry.class_names))
    note = f"Left: **real** train images (the first {k} of each class, not picked); right: generated."
    short = [name for name, r in zip(entry.class_names, reals) if len(r) < k]
    if short:
        note += f" Black tiles: fewer than {k} train images ({', '.join(short)})."
    return str(path), note
