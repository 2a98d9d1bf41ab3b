"""The built-in vise-parts dataset: layout, determinism, caching, and that shape (not colour) decides."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from gan_studio.data.demo import (
    DEMO_CLASS_NAMES,
    GENERATOR_VERSION,
    ensure_demo_dataset,
    make_contact_sheet,
    make_demo_dataset,
    materials,
    render_part,
    writer,
)
from gan_studio.data.demo.rendering import render_with_coverage

SIZE = 64
PER_CLASS = 3


def _files(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return make_demo_dataset(
        tmp_path_factory.mktemp("demo") / "vise",
        per_class=PER_CLASS,
        size=SIZE,
        seed=0,
        workers=1,
        progress=False,
    )


def test_layout_counts_and_image_sizes(dataset):
    assert sorted(p.name for p in dataset.iterdir() if p.is_dir()) == sorted(DEMO_CLASS_NAMES)
    for name in DEMO_CLASS_NAMES:
        files = sorted(p.name for p in (dataset / name).iterdir())
        assert files == [f"{name.lower()}_{i:04d}.png" for i in range(PER_CLASS)]
        for file in files:
            with Image.open(dataset / name / file) as img:
                assert (img.format, img.mode, img.size) == ("PNG", "RGB", (SIZE, SIZE))
    # Only the finished dataset is left next to it: no staging or retired folders.
    assert [p.name for p in dataset.parent.iterdir()] == [dataset.name]


def test_dataset_json_describes_the_run(dataset):
    meta = json.loads((dataset / "dataset.json").read_text())
    assert meta == {
        "name": "vise-parts",
        "generator": "gan_studio.data.demo",
        "seed": 0,
        "size": SIZE,
        "per_class": PER_CLASS,
        "class_names": list(DEMO_CLASS_NAMES),
        "version": GENERATOR_VERSION,
    }


def test_same_seed_same_bytes_with_one_or_two_workers(dataset, tmp_path):
    again = make_demo_dataset(
        tmp_path / "two", per_class=PER_CLASS, size=SIZE, seed=0, workers=2, progress=False
    )
    assert _files(again) == _files(dataset)


def test_different_seeds_give_different_images(dataset, tmp_path):
    other = _files(make_demo_dataset(tmp_path / "s1", per_class=PER_CLASS, size=SIZE, seed=1, progress=False))
    first = _files(dataset)
    images = [path for path in first if path.endswith(".png")]
    assert sum(first[path] != other[path] for path in images) == len(images)


def test_images_within_a_class_vary(dataset):
    for name in DEMO_CLASS_NAMES:
        a, b = (np.asarray(Image.open(p), dtype=np.float32) for p in sorted((dataset / name).iterdir())[:2])
        assert np.abs(a - b).mean() > 10, name


def test_render_part_is_deterministic_and_validates_its_arguments():
    first = render_part("Nut", np.random.default_rng(5), 48)
    second = render_part("Nut", np.random.default_rng(5), 48)
    assert first.size == (48, 48) and first.mode == "RGB"
    assert first.tobytes() == second.tobytes()
    with pytest.raises(ValueError, match="Unknown demo class"):
        render_part("Hammer", np.random.default_rng(0), 48)
    with pytest.raises(ValueError, match="at least 16"):
        render_part("Nut", np.random.default_rng(0), 8)


def test_parts_fill_a_sensible_share_of_the_frame():
    """Framing: the part's silhouette spans roughly 35-90% of the frame and is rarely cut by its edge."""
    extents, cut = [], 0
    for class_index, name in enumerate(DEMO_CLASS_NAMES):
        for i in range(4):
            _, coverage = render_with_coverage(name, np.random.default_rng([3, class_index, i]), 48)
            rows, cols = np.flatnonzero(coverage.any(axis=1)), np.flatnonzero(coverage.any(axis=0))
            extents.append(max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1)
            cut += rows[0] == 0 or cols[0] == 0 or rows[-1] == 47 or cols[-1] == 47
    fraction = np.array(extents) / 48
    assert fraction.min() > 0.3 and fraction.max() <= 1.0
    assert 0.5 < np.median(fraction) < 0.85
    assert cut <= 4


def _leave_one_out_nearest_centroid(features: np.ndarray, labels: np.ndarray) -> float:
    features = (features - features.mean(axis=0)) / (features.std(axis=0) + 1e-9)
    correct = 0
    for i in range(len(features)):
        rest = np.arange(len(features)) != i
        centroids = np.stack(
            [features[rest & (labels == c)].mean(axis=0) for c in range(len(DEMO_CLASS_NAMES))]
        )
        correct += int(np.argmin(((centroids - features[i]) ** 2).sum(axis=1)) == labels[i])
    return correct / len(features)


def _silhouette_features(mask: np.ndarray) -> list[float]:
    """Pose-invariant shape descriptors: elongation, compactness, holes."""
    ys, xs = np.nonzero(mask)
    eigen = np.sort(np.linalg.eigvalsh(np.cov(np.stack([ys, xs]).astype(float))))
    filled = ndimage.binary_fill_holes(mask)
    holes = ndimage.label(filled & ~mask)[1]
    return [
        np.sqrt(eigen[0] / eigen[1]),
        mask.sum() / eigen.sum(),
        (filled.sum() - mask.sum()) / filled.sum(),
        holes,
    ]


def _features(monkeypatch=None):
    """Per image: mean colour of the part, mean colour of the photo, silhouette shape; and labels."""
    palette = materials.PLASTIC_PALETTE
    part_colours, photo_colours, shapes, labels = [], [], [], []
    for class_index, name in enumerate(DEMO_CLASS_NAMES):
        if monkeypatch is not None:  # simulate a broken generator: one filament colour per class
            monkeypatch.setattr(materials, "PLASTIC_PALETTE", (palette[class_index],))
        for i in range(20):
            image, coverage = render_with_coverage(name, np.random.default_rng([7, class_index, i]), 32)
            pixels = np.asarray(image, dtype=np.float32)
            part_colours.append(pixels[coverage > 0.5].mean(axis=0))
            photo_colours.append(pixels.reshape(-1, 3).mean(axis=0))
            shapes.append(_silhouette_features(coverage > 0.5))
            labels.append(class_index)
    return np.array(part_colours), np.array(photo_colours), np.array(shapes), np.array(labels)


def test_colour_does_not_give_the_class_away_but_shape_does():
    part_colours, photo_colours, shapes, labels = _features()
    part_accuracy = _leave_one_out_nearest_centroid(part_colours, labels)
    photo_accuracy = _leave_one_out_nearest_centroid(photo_colours, labels)
    shape_accuracy = _leave_one_out_nearest_centroid(shapes, labels)
    assert part_accuracy < 0.4, f"the part's colour predicts its class ({part_accuracy:.2f})"
    assert photo_accuracy < 0.4, f"the photo's mean colour predicts its class ({photo_accuracy:.2f})"
    assert shape_accuracy > 0.4 and shape_accuracy > part_accuracy + 0.2, (shape_accuracy, part_accuracy)


def test_the_colour_check_catches_colour_coded_classes(monkeypatch):
    part_colours, _, _, labels = _features(monkeypatch)
    assert _leave_one_out_nearest_centroid(part_colours, labels) > 0.4


def test_ensure_demo_dataset_builds_once_into_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GAN_STUDIO_CACHE", str(tmp_path / "cache"))
    root = ensure_demo_dataset(per_class=2, size=32, seed=4, progress=False)
    assert root == tmp_path / "cache" / "datasets" / "vise-parts-s32-n2-seed4"
    assert len(list(root.rglob("*.png"))) == 2 * len(DEMO_CLASS_NAMES)

    def must_not_run(*args, **kwargs):
        raise AssertionError("a complete cached dataset was rebuilt")

    monkeypatch.setattr(writer, "make_demo_dataset", must_not_run)
    assert ensure_demo_dataset(per_class=2, size=32, seed=4) == root
    monkeypatch.undo()

    # A damaged cache entry (an image lost) is rebuilt, not trusted.
    monkeypatch.setenv("GAN_STUDIO_CACHE", str(tmp_path / "cache"))
    lost = root / "Nut" / "nut_0001.png"
    original = lost.read_bytes()
    lost.unlink()
    assert ensure_demo_dataset(per_class=2, size=32, seed=4, progress=False) == root
    assert lost.read_bytes() == original


def test_interrupted_run_leaves_nothing_behind(tmp_path, monkeypatch):
    rendered = []

    def crash_after_five(job):
        if len(rendered) == 5:
            raise KeyboardInterrupt
        rendered.append(job)

    monkeypatch.setattr(writer, "_render_job", crash_after_five)
    with pytest.raises(KeyboardInterrupt):
        make_demo_dataset(tmp_path / "vise", per_class=2, size=32, workers=1, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_refuses_a_folder_with_other_files_but_replaces_an_old_demo(tmp_path):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match="already exists"):
        make_demo_dataset(foreign, per_class=1, size=32, progress=False)
    assert (foreign / "notes.txt").read_text() == "keep me"

    target = make_demo_dataset(tmp_path / "vise", per_class=2, size=32, seed=0, workers=1, progress=False)
    make_demo_dataset(target, per_class=1, size=32, seed=1, workers=1, progress=False)
    assert json.loads((target / "dataset.json").read_text())["per_class"] == 1
    assert len(list(target.rglob("*.png"))) == len(DEMO_CLASS_NAMES)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine", "vise"]


@pytest.mark.parametrize("kwargs", [{"per_class": 0}, {"size": 8}, {"seed": -1}, {"workers": 0}])
def test_rejects_bad_arguments(tmp_path, kwargs):
    with pytest.raises(ValueError):
        make_demo_dataset(tmp_path / "vise", progress=False, **kwargs)
    assert list(tmp_path.iterdir()) == []


def test_contact_sheet_has_a_row_per_class(dataset, tmp_path):
    out = make_contact_sheet(dataset, tmp_path / "sheets" / "sheet.png", per_class=2, tile=40)
    assert out == tmp_path / "sheets" / "sheet.png"
    with Image.open(out) as sheet:
        width, height = sheet.size
        pixels = np.asarray(sheet.convert("RGB"))
    assert height == 2 * 8 + len(DEMO_CLASS_NAMES) * 40 + (len(DEMO_CLASS_NAMES) - 1) * 3
    label_width = width - (2 * 40 + 3) - 8  # the tiles and the right margin take the rest
    assert label_width > 60  # room for the class names
    # The label column holds dark text on the light background.
    assert (pixels[:, :label_width].min(axis=2) < 100).any()
    with pytest.raises(ValueError, match="does not exist"):
        make_contact_sheet(tmp_path / "missing", tmp_path / "x.png")
