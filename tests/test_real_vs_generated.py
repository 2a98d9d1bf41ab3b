"""Real images beside generated ones: the grid, the package's real_vs_generated.png, and the shipped one.

The shipped model's image (checkpoints/vise-parts/real_vs_generated.png, shown by its model card and by
the README) is retaken here from the shipped generator and the demo data it was trained on, saved under
tests/artifacts/, and compared with the committed copy: a stale or doctored image fails the test.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gan_studio.data import load_labeled_images, load_split
from gan_studio.data.demo import DEMO_CLASS_NAMES, ensure_demo_dataset, render_part
from gan_studio.packaging import package_run
from gan_studio.sampling import generate, load_generator
from gan_studio.side_by_side import (
    FONT_SIZE,
    PER_SIDE,
    REAL_VS_GENERATED,
    first_per_class,
    layout,
    real_vs_generated_image,
    render_real_vs_generated,
    train_examples,
    train_files,
)
from gan_studio.utils.images import RULE
from tests.browser_support import ARTIFACTS

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "checkpoints" / "vise-parts"


def tile(image: Image.Image, box: tuple[int, int], size: int) -> np.ndarray:
    x, y = box
    return np.asarray(image.convert("RGB"))[y : y + size, x : x + size]


def chw(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))


def test_grid_puts_real_left_of_the_rule_under_headers_with_readable_labels():
    names, k, res = ["Hy", "Bgj"], 3, 16
    real = [torch.full((k, 3, res, res), 10 + c, dtype=torch.uint8) for c in range(2)]
    real[1] = real[1][:1]  # a class with fewer real images than k: blank tiles, never a fake one
    fake = [torch.full((k, 3, res, res), 200 + c, dtype=torch.uint8) for c in range(2)]
    image = real_vs_generated_image(real, fake, names, k)
    grid = layout(names, k, res)
    assert image.size == grid.size
    pixels = np.asarray(image)
    for row in range(2):
        for col in range(2 * k):
            expected = 200 + row if col >= k else 10 + row if (row == 0 or col == 0) else 255
            assert (tile(image, grid.tile_xy(row, col), res) == expected).all(), (row, col)
    rule = grid.rule_x(k)
    assert (pixels[:, rule] == RULE).all()  # the line between real and generated runs top to bottom
    header = pixels[: grid.header]
    left, right = grid.tile_xy(0, 0)[0], grid.tile_xy(0, k)[0]
    assert (header[:, left:rule] < 128).any() and (header[:, rule + 2 : right + k * res] < 128).any()
    label = pixels[grid.tile_xy(0, 0)[1] : grid.tile_xy(1, 0)[1], : grid.label_width]
    ink_rows = np.flatnonzero((label < 128).any(axis=(1, 2)))
    assert FONT_SIZE >= 12 and ink_rows.max() - ink_rows.min() + 1 >= 12  # "Hy": cap to descender


def test_first_per_class_takes_the_first_files_of_each_class(demo_dir, tiny_run):
    data = load_labeled_images(demo_dir, 32, progress=False)
    train_idx, _ = load_split(tiny_run / "split.json").indices(data.records)
    picked = first_per_class(data.subset(train_idx), 2, classes=[3, 0])
    files = sorted(train_files(tiny_run))
    for c, images in zip([3, 0], picked):
        first = [f for f in files if f.startswith(data.class_names[c] + "/")][:2]
        expected = [data.images[[r.path for r in data.records].index(f)] for f in first]
        assert torch.equal(images, torch.stack(expected))
    from_files = train_examples(tiny_run, data.class_names, 32, 2)
    assert torch.equal(from_files[3], picked[0]) and torch.equal(from_files[0], picked[1])


def test_package_shows_real_beside_generated(tiny_run, tmp_path):
    out = package_run(tiny_run, tmp_path / "pkg")
    G, _ = load_generator(tiny_run, device="cpu")
    image = Image.open(out / REAL_VS_GENERATED)
    grid = layout(G.class_names, PER_SIDE, G.resolution)
    assert image.size == grid.size
    real = train_examples(tiny_run, G.class_names, G.resolution, PER_SIDE)
    assert np.array_equal(tile(image, grid.tile_xy(2, 1), 32), real[2][1].permute(1, 2, 0).numpy())
    card = (out / "README.md").read_text()
    samples = card.index("## Samples")
    assert samples < card.index(f"]({REAL_VS_GENERATED})") < card.index("](samples.png)")
    assert "Left of the line: **real** training photos" in card
    assert json.loads((out / "package.json").read_text())["real_vs_generated"]["file"] == REAL_VS_GENERATED


def test_package_says_so_when_the_training_data_is_gone(tiny_run, tmp_path):
    run = tmp_path / "moved"
    shutil.copytree(tiny_run, run)
    meta = json.loads((run / "run.json").read_text())
    meta["data"] = {**meta["data"], "root": str(tmp_path / "gone"), "source": str(tmp_path / "gone")}
    (run / "run.json").write_text(json.dumps(meta))
    out = package_run(run, tmp_path / "pkg")
    assert not (out / REAL_VS_GENERATED).exists()
    card = (out / "README.md").read_text()
    assert "No real images beside the samples" in card and "is not on this machine" in card
    assert json.loads((out / "package.json").read_text())["real_vs_generated"]["file"] is None


def demo_subset(files: list[str], out: Path) -> Path:
    """The demo dataset's ``files`` alone, rendered exactly as `demo-data` renders them (an image
    depends only on the seed, its class and its index), instead of all 2000."""
    defaults = ensure_demo_dataset.__kwdefaults__
    for rel in files:
        name, file = rel.split("/")
        index = int(re.search(r"_(\d+)\.png$", file).group(1))
        rng = np.random.default_rng([defaults["seed"], DEMO_CLASS_NAMES.index(name), index])
        (out / name).mkdir(parents=True, exist_ok=True)
        render_part(name, rng, defaults["size"]).save(out / rel, format="PNG")
    return out


def test_shipped_real_vs_generated_is_retaken(tmp_path):
    """Retake the shipped model's side-by-side image and check the committed copy is that image."""
    assert json.loads((PACKAGE / "run.json").read_text())["data"]["source"] == "demo"
    G, info = load_generator(PACKAGE, device="cpu")
    names, k, res = info.class_names, PER_SIDE, info.resolution
    files = sorted(train_files(PACKAGE))
    needed = [f for name in names for f in [f for f in files if f.startswith(name + "/")][:k]]
    data = demo_subset(needed, tmp_path / "vise-parts")
    real = train_examples(PACKAGE, names, res, k, data=data)
    retake = render_real_vs_generated(G, real, k=k)
    ARTIFACTS.mkdir(exist_ok=True)
    retake.save(ARTIFACTS / REAL_VS_GENERATED)

    grid = layout(names, k, res)
    shipped = Image.open(PACKAGE / REAL_VS_GENERATED)
    assert retake.size == shipped.size == grid.size
    fakes = generate(
        G, [c for c in range(len(names)) for _ in range(k)], [s for _ in names for s in range(k)]
    )
    for row in range(len(names)):
        for col in range(k):
            photo = np.asarray(Image.open(data / needed[row * k + col]).convert("RGB"))
            assert photo.shape[0] > res  # a real photo, fitted down to the model's size like training
            assert np.array_equal(
                tile(retake, grid.tile_xy(row, col), res), real[row][col].permute(1, 2, 0).numpy()
            )
            assert np.array_equal(
                tile(shipped, grid.tile_xy(row, col), res), tile(retake, grid.tile_xy(row, col), res)
            )
            generated = fakes[row * k + col].permute(1, 2, 0).numpy()
            assert np.array_equal(tile(retake, grid.tile_xy(row, k + col), res), generated)
    # Generated pixels may differ by rounding on other hardware; anything more is a stale image.
    diff = np.abs(np.asarray(retake, np.float32) - np.asarray(shipped.convert("RGB"), np.float32))
    assert diff.mean() < 0.5, (
        f"checkpoints/vise-parts/{REAL_VS_GENERATED} is not what the shipped model draws "
        f"(mean difference {diff.mean():.2f}): copy tests/artifacts/{REAL_VS_GENERATED} over it"
    )
    card = (PACKAGE / "README.md").read_text()
    readme = (REPO / "README.md").read_text()
    assert f"]({REAL_VS_GENERATED})" in card and "Left of the line: **real** training photos" in card
    assert f"](checkpoints/vise-parts/{REAL_VS_GENERATED})" in readme
    assert readme.index(REAL_VS_GENERATED) < readme.index("first-run-sample.png")  # above the screenshots


@pytest.mark.parametrize("k", [1, 2])
def test_real_images_of_another_size_are_fitted_to_the_generators(k):
    real = [torch.randint(0, 255, (k, 3, 48, 48), dtype=torch.uint8)]
    fake = [torch.zeros(k, 3, 16, 16, dtype=torch.uint8)]
    image = real_vs_generated_image(real, fake, ["A"], k)
    assert image.size == layout(["A"], k, 16).size
