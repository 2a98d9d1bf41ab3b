"""Write the vise-parts dataset to disk: render every image in worker processes, then publish it at once.

An image depends only on (seed, class index, image index), so any number of workers writes a
byte-identical dataset. The images go to a hidden staging folder renamed into place at the end, and
dataset.json is written last, so a folder with a matching dataset.json is a finished one.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import threading
import uuid
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from gan_studio.data.common import DatasetError, cache_root
from gan_studio.data.demo.parts import DEMO_CLASS_NAMES
from gan_studio.data.demo.rendering import render_part

DATASET_NAME = "vise-parts"
GENERATOR = "gan_studio.data.demo"  # recorded in dataset.json: the package that rendered the images
GENERATOR_VERSION = 1  # bump whenever the pixels change, so cached copies are rebuilt


def _metadata(per_class: int, size: int, seed: int) -> dict:
    return {
        "name": DATASET_NAME,
        "generator": GENERATOR,
        "seed": seed,
        "size": size,
        "per_class": per_class,
        "class_names": list(DEMO_CLASS_NAMES),
        "version": GENERATOR_VERSION,
    }


def read_metadata(root: Path) -> dict | None:
    """The folder's dataset.json, or None when it is missing or unreadable (then it is no finished demo)."""
    try:
        meta = json.loads((root / "dataset.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


def _image_name(class_name: str, index: int, per_class: int) -> str:
    return f"{class_name.lower()}_{index:0{max(4, len(str(per_class - 1)))}d}.png"


def _is_complete(root: Path, expected: dict) -> bool:
    """dataset.json is written last, so its presence (and every image) means a finished run."""
    if read_metadata(root) != expected:
        return False
    per_class = expected["per_class"]
    return all(
        (root / name / _image_name(name, per_class - 1, per_class)).is_file()
        and sum(1 for p in (root / name).iterdir() if p.suffix == ".png") == per_class
        for name in DEMO_CLASS_NAMES
    )


def _render_job(job: tuple[int, int, int, int, str]) -> None:
    seed, class_index, index, size, path = job
    rng = np.random.default_rng([seed, class_index, index])
    render_part(DEMO_CLASS_NAMES[class_index], rng, size).save(path, format="PNG", compress_level=3)


def _process_context() -> multiprocessing.context.BaseContext:
    """fork when the caller is single-threaded (the CLI, a test): workers start at once.

    A threaded caller (the Gradio app) gets spawn, because forking while another thread holds a lock
    can deadlock the child; spawned workers pay a few seconds of imports instead. tqdm's monitor
    thread does not count: it only sleeps and takes tqdm's own lock, which the workers never use.
    """
    others = [
        t for t in threading.enumerate() if t is not threading.current_thread() and t.name != "tqdm_monitor"
    ]
    if not others and "fork" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


def _render_all(jobs: list[tuple], workers: int, progress: bool, desc: str) -> None:
    workers = min(workers, len(jobs))
    if workers == 1:
        for job in tqdm(jobs, desc=desc, unit="img", disable=not progress):
            _render_job(job)
        return
    with _process_context().Pool(workers) as pool:
        results = pool.imap_unordered(_render_job, jobs, chunksize=8)
        for _ in tqdm(results, total=len(jobs), desc=desc, unit="img", disable=not progress):
            pass


def _move_into_place(staging: Path, out: Path) -> None:
    """Rename the finished folder to `out`, retiring (then deleting) a previous dataset there."""
    if not out.exists():
        os.rename(staging, out)
        return
    retired = out.parent / f".{out.name}.old-{uuid.uuid4().hex[:8]}"
    os.rename(out, retired)
    try:
        os.rename(staging, out)
    except OSError:
        os.rename(retired, out)
        raise
    shutil.rmtree(retired, ignore_errors=True)


def _check_arguments(per_class: int, size: int, seed: int, workers: int | None) -> None:
    """Refuse impossible requests up front, before a folder is created (ValueError: the CLI prints it)."""
    if not (isinstance(per_class, int) and per_class >= 1):
        raise ValueError(f"The number of images per class (per-class) must be at least 1, got {per_class!r}.")
    if not (isinstance(size, int) and 16 <= size <= 1024):
        raise ValueError(f"The image size must be between 16 and 1024 pixels, got {size!r}.")
    if not (isinstance(seed, int) and seed >= 0):
        raise ValueError(f"The seed must be a non-negative integer, got {seed!r}.")
    if workers is not None and not (isinstance(workers, int) and workers >= 1):
        raise ValueError(f"The number of worker processes must be at least 1, got {workers!r}.")


def make_demo_dataset(
    out_dir: str | os.PathLike,
    *,
    per_class: int = 200,
    size: int = 128,
    seed: int = 0,
    workers: int | None = None,
    progress: bool = True,
) -> Path:
    """Write the vise-parts dataset: OUT_DIR/<ClassName>/<classname>_0000.png plus dataset.json.

    The images are rendered into a hidden folder next to `out_dir` that is renamed into place at the
    end, so an interrupted run never leaves a half dataset behind. A previous vise-parts dataset in
    `out_dir` is replaced; any other non-empty folder is refused.
    """
    _check_arguments(per_class, size, seed, workers)
    out = Path(out_dir).expanduser().absolute()
    if out.exists():
        if not out.is_dir():
            raise DatasetError(f"'{out}' is a file; pass a new folder name for the demo dataset.")
        previous = read_metadata(out)
        if any(out.iterdir()) and not (previous and previous.get("name") == DATASET_NAME):
            raise DatasetError(
                f"'{out}' already exists and holds other files; pass a new (or empty) folder for the demo "
                "dataset, or delete that folder first."
            )
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.parent / f".{out.name}.partial-{uuid.uuid4().hex[:8]}"
    try:
        jobs = []
        for class_index, name in enumerate(DEMO_CLASS_NAMES):
            (staging / name).mkdir(parents=True)
            for index in range(per_class):
                path = staging / name / _image_name(name, index, per_class)
                jobs.append((seed, class_index, index, size, str(path)))
        _render_all(jobs, workers or min(2, os.cpu_count() or 1), progress, f"vise-parts {size}px")
        meta = json.dumps(_metadata(per_class, size, seed), indent=2) + "\n"
        (staging / "dataset.json").write_text(meta, encoding="utf-8")
        _move_into_place(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out


_ENSURE_LOCK = threading.Lock()


def ensure_demo_dataset(
    *, per_class: int = 200, size: int = 128, seed: int = 0, progress: bool = True
) -> Path:
    """The demo dataset from the cache ($GAN_STUDIO_CACHE, default ~/.cache/gan_studio), built once."""
    _check_arguments(per_class, size, seed, None)
    root = cache_root() / "datasets" / f"{DATASET_NAME}-s{size}-n{per_class}-seed{seed}"
    expected = _metadata(per_class, size, seed)
    if _is_complete(root, expected):
        return root
    with _ENSURE_LOCK:  # two threads of one app (a warm-up and a click) render it once, not twice
        if _is_complete(root, expected):
            return root
        try:
            return make_demo_dataset(root, per_class=per_class, size=size, seed=seed, progress=progress)
        except OSError:
            if _is_complete(root, expected):  # another process finished the same dataset first
                return root
            raise
