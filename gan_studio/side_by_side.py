"""Real and generated images side by side, so that samples are never judged alone.

One row per class: k real training images, a rule, then k generated images, all at the generator's
resolution. The real ones are the first k train images of the class in file order (not picked), fitted
to the resolution the way training fitted them; the generated ones are seeds 0..k-1. The model card
and the README show this grid (``real_vs_generated.png``); the app's Sample and Evaluate tabs pick
their real images the same way (``first_per_class``) and show them beside the samples at one size.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from gan_studio.data import DatasetError, LabeledImages, resolve_dataset_source
from gan_studio.data.folder import _unwrap_single_folder, fit_square, load_image
from gan_studio.data.zip_cache import in_use
from gan_studio.models import Generator
from gan_studio.sampling import generate
from gan_studio.training.run_folder import SPLIT_FILE, TRAIN_FILES_FILE, RunFolder
from gan_studio.utils.images import GridLayout, grid_layout, make_grid, save_png_atomic

REAL_VS_GENERATED = "real_vs_generated.png"
PER_SIDE = 4  # real images, then as many generated, per class
FONT_SIZE = 13  # class labels and the "real" / "generated" headers, in pixels
HEADERS = ("real", "generated")


def first_per_class(data: LabeledImages, k: int, classes: Sequence[int] | None = None) -> list[torch.Tensor]:
    """The first ``k`` images of each class of ``data`` in file order (uint8 [<=k, 3, R, R] each)."""
    order = sorted(range(len(data.records)), key=lambda i: data.records[i].path)
    out = []
    for c in range(len(data.class_names)) if classes is None else classes:
        picked = [i for i in order if data.records[i].label == c][:k]
        out.append(data.images[picked])
    return out


def train_files(folder: str | Path) -> list[str]:
    """The training images (paths relative to the dataset) a run or package records."""
    folder = Path(folder)
    for name, key in ((TRAIN_FILES_FILE, None), (SPLIT_FILE, "train")):
        path = folder / name
        if path.is_file():
            doc = json.loads(path.read_text(encoding="utf-8"))
            return list(doc[key] if key else doc)
    raise DatasetError(
        f"'{folder}' has neither train_files.json nor split.json: its training images are unknown."
    )


def dataset_folder(run: dict, data: str | Path | None = None) -> Path:
    """The folder of the dataset a run (its run.json) was trained on; ``data`` overrides it."""
    if data is not None:
        return _unwrap_single_folder(resolve_dataset_source(str(data)))
    record = run.get("data") or {}
    root, source = record.get("root"), record.get("source")
    if root and Path(root).is_dir():
        return Path(root)
    if source == "demo" or (source and Path(source).exists()):
        return _unwrap_single_folder(resolve_dataset_source(source))
    raise DatasetError(f"The training data ({source or root or 'unrecorded'}) is not on this machine.")


def train_examples(
    folder: str | Path, class_names: Sequence[str], resolution: int, k: int = PER_SIDE, *, data=None
) -> list[torch.Tensor]:
    """The first ``k`` train images of each class of the run or package in ``folder``, read from its
    dataset (``data`` overrides the one run.json names) and fitted as training fitted them."""
    folder = Path(folder)
    run_json = RunFolder(folder).run_path
    run = json.loads(run_json.read_text(encoding="utf-8")) if run_json.is_file() else {}
    fit = (run.get("data") or {}).get("fit", "center-crop")
    files = sorted(train_files(folder))
    root = dataset_folder(run, data)
    out = []
    with in_use(root):  # an extracted .zip stays in the cache while it is read
        for name in class_names:
            picked = [f for f in files if Path(f).parts[0] == name][:k]
            images = [load_image(root / f, resolution, fit).transpose(2, 0, 1) for f in picked]
            shape = (0, 3, resolution, resolution)
            out.append(
                torch.from_numpy(np.stack(images)) if images else torch.empty(shape, dtype=torch.uint8)
            )
    return out


def _at_resolution(images: torch.Tensor, resolution: int) -> torch.Tensor:
    if images.shape[-1] == resolution and images.shape[-2] == resolution:
        return images
    resized = [
        np.asarray(fit_square(Image.fromarray(img.permute(1, 2, 0).numpy()), resolution)).transpose(2, 0, 1)
        for img in images
    ]
    return torch.from_numpy(np.stack(resized)) if resized else images.new_zeros(0, 3, resolution, resolution)


def layout(class_names: Sequence[str], k: int, resolution: int) -> GridLayout:
    """Where real_vs_generated_image puts each tile (columns 0..k-1 real, k..2k-1 generated)."""
    return grid_layout(
        len(class_names) * 2 * k, 2 * k, resolution, resolution, row_labels=list(class_names),
        font_size=FONT_SIZE, column_groups=[(HEADERS[0], k), (HEADERS[1], k)],
    )  # fmt: skip


def real_vs_generated_image(
    real: Sequence[torch.Tensor], generated: Sequence[torch.Tensor], class_names: Sequence[str], k: int
) -> Image.Image:
    """The grid: per class ``k`` real tiles (blank where the class has fewer), the rule, ``k`` generated."""
    resolution = generated[0].shape[-1]
    blank = torch.full((3, resolution, resolution), 255, dtype=torch.uint8)
    tiles = []
    for reals, fakes in zip(real, generated, strict=True):
        for side in (_at_resolution(reals[:k], resolution), fakes[:k]):
            tiles += [*side, *[blank] * (k - len(side))]
    return make_grid(
        torch.stack(tiles), 2 * k, row_labels=list(class_names), font_size=FONT_SIZE,
        column_groups=[(HEADERS[0], k), (HEADERS[1], k)],
    )  # fmt: skip


def render_real_vs_generated(
    G: Generator, real: Sequence[torch.Tensor], *, k: int = PER_SIDE, truncation: float = 1.0
) -> Image.Image:
    """``real`` (one tensor per class of G) beside G's images of seeds 0..k-1 of each class."""
    n = len(G.class_names)
    if len(real) != n:
        raise ValueError(f"Got real images of {len(real)} classes; the generator has {n}.")
    fakes = generate(
        G,
        [c for c in range(n) for _ in range(k)],
        [s for _ in range(n) for s in range(k)],
        truncation=truncation,
    )
    return real_vs_generated_image(real, list(fakes.split(k)), list(G.class_names), k)


def save_real_vs_generated(
    G: Generator, real: Sequence[torch.Tensor], path: str | Path, *, k: int = PER_SIDE
) -> Path:
    return save_png_atomic(render_real_vs_generated(G, real, k=k), path)
