import json
import os
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gan_studio.data import (
    DatasetError,
    ImageRecord,
    load_labeled_images,
    resolve_dataset_source,
    scan_image_folder,
)
from gan_studio.data.folder import fit_square, load_image

RED, GREEN, BLUE, WHITE, BLACK = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255), (0, 0, 0)


def noise_image(size=(32, 32), seed=0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


def save(path: Path, img: Image.Image, **kwargs) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, **kwargs)
    return path


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def make_dataset(root: Path, classes=("Clamp", "Nut"), per_class=3) -> Path:
    for c, name in enumerate(classes):
        for i in range(per_class):
            save(root / name / f"img{i}.png", noise_image(seed=10 * c + i))
    return root


def scan(root, **kwargs):
    return scan_image_folder(root, progress=False, **kwargs)


# -- validation report ---------------------------------------------------------------------------


def test_report_names_every_unusable_file(tmp_path):
    root = make_dataset(tmp_path / "data")
    jpeg = root / "Nut" / "full.jpg"
    save(jpeg, noise_image((64, 64)), quality=90)
    write(root / "Nut" / "truncated.jpg", jpeg.read_bytes()[: jpeg.stat().st_size // 2])
    jpeg.unlink()
    write(root / "Nut" / "text.png", b"this is not a picture\n")
    write(root / "Nut" / "empty.jpg", b"")
    save(root / "Nut" / "tiny.png", noise_image((8, 30)))
    write(root / "Nut" / "notes.txt", b"hello")
    save(root / "loose.png", noise_image())
    write(root / ".DS_Store", b"junk")
    write(root / "Nut" / "Thumbs.db", b"junk")
    write(root / "Nut" / "._img0.png", b"apple double")
    save(root / "__MACOSX" / "Nut" / "img9.png", noise_image())
    save(root / ".hidden" / "img.png", noise_image())

    records, report = scan(root)

    reasons = dict(report.skipped)
    assert set(reasons) == {
        "Nut/truncated.jpg",
        "Nut/text.png",
        "Nut/empty.jpg",
        "Nut/tiny.png",
        "Nut/notes.txt",
        "loose.png",
    }
    assert reasons["Nut/truncated.jpg"] == "truncated or corrupt"
    assert reasons["Nut/text.png"].startswith("not an image (cannot be decoded:")
    assert reasons["Nut/empty.jpg"] == "zero bytes"
    assert reasons["Nut/tiny.png"] == "too small (8x30 < 16)"
    assert reasons["Nut/notes.txt"] == "not an image (extension .txt)"
    assert "move it into" in reasons["loose.png"] and "<class_name>" in reasons["loose.png"]
    assert report.class_names == ["Clamp", "Nut"]
    assert report.counts == {"Clamp": 3, "Nut": 3}
    assert report.converted == []
    assert [r.path for r in records] == [f"{c}/img{i}.png" for c in ("Clamp", "Nut") for i in range(3)]
    summary = report.summary()
    for path, reason in report.skipped:
        assert f"{path}: {reason}" in summary
    assert json.loads(json.dumps(report.to_dict()))["num_images"] == 6


def _gray16_gradient() -> Image.Image:
    ramp = np.linspace(0, 65535, 64 * 64).round().astype(np.uint16).reshape(64, 64)
    return Image.fromarray(ramp)


def _rgba_half_transparent() -> Image.Image:
    pixels = np.zeros((32, 32, 4), np.uint8)
    pixels[:, :16] = (255, 0, 0, 255)  # opaque red on the left, fully transparent on the right
    return Image.fromarray(pixels, "RGBA")


CONVERSIONS = {
    "gray.png": (lambda: Image.new("L", (32, 32), 77), "grayscale (L) -> RGB"),
    "gray_alpha.png": (
        lambda: Image.new("LA", (32, 32), (77, 255)),
        "grayscale+alpha (LA) -> RGB, composited",
    ),
    "rgba.png": (_rgba_half_transparent, "RGB+alpha (RGBA) -> RGB, composited on white"),
    "palette.png": (lambda: Image.new("RGB", (32, 32), BLUE).convert("P"), "palette (P) -> RGB"),
    "cmyk.tif": (lambda: Image.new("CMYK", (32, 32), (0, 255, 0, 0)), "CMYK -> RGB"),
    "bits.png": (lambda: Image.new("1", (32, 32), 1), "1-bit (1) -> RGB"),
    "gray16.png": (_gray16_gradient, "16-bit grayscale (I;16) -> 8-bit RGB"),
}


def test_every_conversion_is_reported_and_correct(tmp_path):
    root = make_dataset(tmp_path / "data", classes=("Base",), per_class=2)
    for name, (make, _) in CONVERSIONS.items():
        save(root / "Odd" / name, make())

    records, report = scan(root)

    converted = dict(report.converted)
    assert set(converted) == {f"Odd/{name}" for name in CONVERSIONS}
    for name, (_, expected) in CONVERSIONS.items():
        assert converted[f"Odd/{name}"].startswith(expected), name
    assert report.counts == {"Base": 2, "Odd": len(CONVERSIONS)}

    def pixels(name, size=32):
        return load_image(root / "Odd" / name, size, fit="stretch").astype(int)

    assert (pixels("gray.png") == 77).all()
    assert (pixels("cmyk.tif") == (255, 0, 255)).all()
    assert (pixels("palette.png") == BLUE).all()
    assert (pixels("bits.png") == 255).all()
    rgba = pixels("rgba.png")
    assert (rgba[:, :15] == RED).all() and (rgba[:, 17:] == WHITE).all()
    gray16 = pixels("gray16.png", size=64)
    assert gray16.min() == 0 and gray16.max() == 255  # scaled, not clipped to white
    assert 120 <= int(np.median(gray16)) <= 135
    assert (gray16[..., 0] == gray16[..., 1]).all()


def write_png48(path: Path, rgb16: np.ndarray) -> Path:
    """A 16-bit-per-channel RGB PNG (Pillow can read these but not write them)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    height, width, _ = rgb16.shape
    rows = b"".join(b"\x00" + row.astype(">u2").tobytes() for row in rgb16)
    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    png = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )
    return write(path, png)


def test_16_bit_rgb_png_is_reported_and_keeps_its_range(tmp_path):
    rgb16 = np.zeros((20, 20, 3), np.uint16)
    rgb16[:, :10] = (65535, 32768, 0)
    rgb16[:, 10:] = (0, 1000, 65535)
    path = write_png48(tmp_path / "data" / "Deep" / "rgb48.png", rgb16)
    save(tmp_path / "data" / "Deep" / "plain.png", noise_image())

    _, report = scan(tmp_path / "data")
    assert dict(report.converted)["Deep/rgb48.png"].startswith("16-bit RGB")
    pixels = load_image(path, 20, fit="stretch").astype(int)
    assert np.abs(pixels[:, :8] - (255, 128, 0)).max() <= 1
    assert np.abs(pixels[:, 12:] - (0, 4, 255)).max() <= 1


def test_exif_orientation_is_applied(tmp_path):
    stored = Image.new("RGB", (64, 32), RED)
    stored.paste(BLUE, (32, 0, 64, 32))  # stored: red left half, blue right half
    exif = Image.Exif()
    exif[0x0112] = 6  # display = stored rotated 90 degrees clockwise: left half ends up on top
    path = save(tmp_path / "data" / "Nut" / "rotated.jpg", stored, exif=exif, quality=95)
    save(tmp_path / "data" / "Nut" / "plain.png", noise_image())

    _, report = scan(tmp_path / "data")
    assert dict(report.converted) == {"Nut/rotated.jpg": "EXIF orientation 6 applied"}

    upright = load_image(path, 32, fit="pad").astype(int)  # 32x64 upright fits exactly into the middle
    assert np.abs(upright[4:12, 12:20] - RED).max() < 40
    assert np.abs(upright[20:28, 12:20] - BLUE).max() < 40
    assert (upright[:, :6] == 0).all() and (upright[:, -6:] == 0).all()


def test_nested_folders_unicode_spaces_and_mixed_extensions(tmp_path):
    root = tmp_path / "my data"
    paths = [
        "Écrou à vis/sub dir/deep/IMG 01.JPG",
        "Écrou à vis/ünïcödé.JPEG",
        "Clamp 2/x.PnG",
        "Clamp 2/nested/y.webp",
        "Clamp 2/nested/z.Tiff",
        "clamp/a.bmp",
        "clamp/b.gif",
    ]
    for i, rel in enumerate(paths):
        save(root / rel, noise_image(seed=i).convert("RGB"))

    records, report = scan(root)

    assert report.class_names == ["Clamp 2", "clamp", "Écrou à vis"]  # sorted, case-sensitive
    assert report.skipped == []
    assert report.counts == {"Clamp 2": 3, "clamp": 2, "Écrou à vis": 2}
    assert sorted(r.path for r in records) == sorted(paths)
    assert all(r.class_name == report.class_names[r.label] for r in records)
    assert [(r.label, r.path) for r in records] == sorted((r.label, r.path) for r in records)


def test_wrapper_folder_is_descended(tmp_path):
    make_dataset(tmp_path / "outer" / "mydata")
    write(tmp_path / "outer" / "README.txt", b"about")
    records, report = scan(tmp_path / "outer")
    assert Path(report.root) == (tmp_path / "outer" / "mydata").resolve()
    assert report.class_names == ["Clamp", "Nut"]
    assert records[0].path == "Clamp/img0.png"


def test_symlinks_leaving_the_root_are_not_followed(tmp_path):
    root = make_dataset(tmp_path / "data")
    outside = save(tmp_path / "secret" / "private.png", noise_image())
    try:
        os.symlink(outside, root / "Nut" / "link.png")
        os.symlink(outside.parent, root / "Nut" / "linkdir", target_is_directory=True)
        os.symlink(root / "Nut" / "img0.png", root / "Clamp" / "inside.png")
    except (OSError, NotImplementedError):
        pytest.skip("symbolic links are not available here")
    records, report = scan(root)
    reasons = dict(report.skipped)
    assert "outside the dataset folder" in reasons["Nut/link.png"]
    assert "not followed" in reasons["Nut/linkdir"]
    assert "Clamp/inside.png" in {r.path for r in records}
    assert not any("private" in r.path for r in records)


# -- refusals --------------------------------------------------------------------------------------


def test_folder_without_class_folders_is_refused_with_a_fix(tmp_path):
    root = tmp_path / "flat"
    for i in range(3):
        save(root / f"img{i}.png", noise_image(seed=i))
    with pytest.raises(DatasetError) as raised:
        scan(root)
    message = str(raised.value)
    assert f"No class folders found in '{root.resolve()}'" in message
    assert "one subfolder per class" in message and "Found 3 image file(s)" in message

    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="No class folders found"):
        scan(tmp_path / "empty")


def test_class_with_too_few_images_is_refused_naming_its_skipped_files(tmp_path):
    root = make_dataset(tmp_path / "data", classes=("Clamp",))
    save(root / "Nut" / "good.png", noise_image())
    write(root / "Nut" / "empty.png", b"")
    (root / "Vacant").mkdir()
    with pytest.raises(DatasetError) as raised:
        scan(root, min_per_class=2)
    message = str(raised.value)
    assert "Class 'Nut'" in message and "has 1 usable image(s); at least 2 are needed" in message
    assert "Nut/empty.png (zero bytes)" in message
    assert "Class 'Vacant'" in message and "has 0 usable image(s)" in message
    assert "Clamp" not in message

    _, report = scan(root, min_per_class=0)
    assert report.counts == {"Clamp": 3, "Nut": 1, "Vacant": 0}


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("missing", None, "does not exist"),
        ("notes.txt", b"text", "is a file, not a folder or a .zip"),
        ("broken.zip", b"PK\x03\x04 definitely not a zip", "not a valid or readable zip"),
    ],
)
def test_bad_sources_are_refused(tmp_path, name, content, expected):
    if content is not None:
        write(tmp_path / name, content)
    with pytest.raises(DatasetError, match=expected):
        resolve_dataset_source(tmp_path / name, cache_dir=tmp_path / "cache")


# -- zips -----------------------------------------------------------------------------------------


def zip_folder(folder: Path, zip_path: Path, prefix: str = "") -> Path:
    with zipfile.ZipFile(zip_path, "w") as archive:
        for path in sorted(folder.rglob("*")):
            archive.write(path, prefix + path.relative_to(folder).as_posix())
    return zip_path


def test_zip_with_wrapper_folder_loads_and_is_extracted_once(tmp_path, monkeypatch):
    source = make_dataset(tmp_path / "src", classes=("Nut", "Vis à tête"), per_class=2)
    archive = zip_folder(source, tmp_path / "mydata.zip", prefix="mydata/")
    monkeypatch.setenv("GAN_STUDIO_CACHE", str(tmp_path / "cache"))

    data = load_labeled_images(archive, 16, progress=False)
    assert data.class_names == ["Nut", "Vis à tête"]
    assert data.root.name == "mydata" and data.root.parent.name.startswith("zip-")
    assert data.root.is_relative_to((tmp_path / "cache" / "datasets").resolve())

    extracted = resolve_dataset_source(archive)
    assert resolve_dataset_source(archive) == extracted
    cached = [p.name for p in (tmp_path / "cache" / "datasets").iterdir() if not p.name.startswith(".")]
    assert cached == [extracted.name]  # hidden: the readers' locks (.locks)


@pytest.mark.parametrize("member", ["../evil.png", "/abs/evil.png", "Nut/../../evil.png", "C:\\evil.png"])
def test_zip_slip_members_are_refused(tmp_path, member):
    archive = tmp_path / "slip.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("Nut/ok.png", b"x")
        z.writestr(member, b"evil")
    cache = tmp_path / "cache"
    with pytest.raises(DatasetError, match="unsafe member path"):
        resolve_dataset_source(archive, cache_dir=cache)
    assert not (tmp_path / "evil.png").exists()
    assert list(cache.iterdir()) == []  # the temporary extraction folder was removed


def test_zip_symlinks_and_oversized_zips_are_refused(tmp_path, monkeypatch):
    archive = tmp_path / "link.zip"
    with zipfile.ZipFile(archive, "w") as z:
        info = zipfile.ZipInfo("Nut/link.png")
        info.external_attr = (0o120777) << 16
        z.writestr(info, "/etc/passwd")
    with pytest.raises(DatasetError, match="symbolic link"):
        resolve_dataset_source(archive, cache_dir=tmp_path / "cache")

    big = zip_folder(make_dataset(tmp_path / "src"), tmp_path / "big.zip")
    monkeypatch.setenv("GAN_STUDIO_MAX_EXTRACT_MB", "0.0001")  # 105 bytes
    with pytest.raises(DatasetError, match="GAN_STUDIO_MAX_EXTRACT_MB"):
        resolve_dataset_source(big, cache_dir=tmp_path / "cache")


# -- square fitting and loading ---------------------------------------------------------------------


def striped_wide_image() -> Image.Image:
    """80x40: red quarter, green middle half, blue quarter."""
    img = Image.new("RGB", (80, 40), GREEN)
    img.paste(RED, (0, 0, 20, 40))
    img.paste(BLUE, (60, 0, 80, 40))
    return img


def test_fit_modes_produce_squares_that_behave_as_named():
    wide = striped_wide_image()
    for mode in ("center-crop", "pad", "stretch"):
        assert fit_square(wide, 24, mode).size == (24, 24)
        assert fit_square(wide.convert("L"), 24, mode).size == (24, 24)

    crop = np.asarray(fit_square(wide, 20, "center-crop")).astype(int)
    assert np.abs(crop[:, 2:-2] - GREEN).max() < 10  # only the centre survives

    pad = np.asarray(fit_square(wide, 80, "pad")).astype(int)
    assert (pad[:18] == BLACK).all() and (pad[-18:] == BLACK).all()  # bars above and below
    middle = pad[22:58]
    assert np.abs(middle[:, 2:16] - RED).max() < 10 and np.abs(middle[:, -16:-2] - BLUE).max() < 10

    stretch = np.asarray(fit_square(wide, 40, "stretch")).astype(int)
    assert np.abs(stretch[:, :8] - RED).max() < 10 and np.abs(stretch[:, -8:] - BLUE).max() < 10
    assert not (stretch == BLACK).all(axis=-1).any()

    with pytest.raises(ValueError, match="center-crop, pad, stretch"):
        fit_square(wide, 24, "zoom")


def test_labeled_images_cache_shapes_order_and_subset(tmp_path):
    root = make_dataset(tmp_path / "data", classes=("b", "a"), per_class=3)
    save(root / "a" / "wide.jpg", striped_wide_image(), quality=95)
    save(root / "b" / "gray.png", Image.new("L", (40, 40), 100))

    data = load_labeled_images(root, 16, fit="center-crop", progress=False)

    assert len(data) == 8 and data.resolution == 16
    assert data.images.shape == (8, 3, 16, 16) and data.images.dtype == torch.uint8
    assert data.labels.dtype == torch.int64
    assert data.class_names == ["a", "b"]
    assert [r.path for r in data.records] == [
        "a/img0.png", "a/img1.png", "a/img2.png", "a/wide.jpg",
        "b/gray.png", "b/img0.png", "b/img1.png", "b/img2.png",
    ]  # fmt: skip
    assert data.labels.tolist() == [r.label for r in data.records] == [0, 0, 0, 0, 1, 1, 1, 1]
    assert dict(data.report.converted) == {"b/gray.png": "grayscale (L) -> RGB"}
    for i, record in enumerate(data.records):
        single = load_image(root / record.path, 16, fit="center-crop")
        assert torch.equal(data.images[i], torch.from_numpy(single).permute(2, 0, 1)), record.path

    part = data.subset([5, 0])
    assert [r.path for r in part.records] == ["b/img0.png", "a/img0.png"]
    assert torch.equal(part.images[1], data.images[0]) and part.labels.tolist() == [1, 0]
    masked = data.subset(data.labels == 1)
    assert len(masked) == 4 and set(masked.labels.tolist()) == {1}
    assert isinstance(part.records[0], ImageRecord) and part.class_names == data.class_names


def test_acceptance_folder_with_bad_and_odd_files_loads_after_naming_each(tmp_path):
    root = make_dataset(tmp_path / "data", classes=("Clamp", "Nut"), per_class=2)
    jpeg = save(tmp_path / "full.jpg", noise_image((48, 48)), quality=90)
    write(root / "Nut" / "cut.jpg", jpeg.read_bytes()[:300])
    write(root / "Nut" / "fake.png", b"not a png")
    save(root / "Nut" / "gray.png", Image.new("L", (32, 32), 9))
    save(root / "Clamp" / "alpha.png", _rgba_half_transparent())
    save(root / "Clamp" / "deep.png", _gray16_gradient())

    data = load_labeled_images(root, 32, progress=False)

    assert len(data) == 7
    named = {path for path, _ in data.report.skipped} | {path for path, _ in data.report.converted}
    assert named == {"Nut/cut.jpg", "Nut/fake.png", "Nut/gray.png", "Clamp/alpha.png", "Clamp/deep.png"}
    assert "Nut/cut.jpg: truncated or corrupt" in data.report.summary()


def test_load_image_refuses_unusable_files(tmp_path):
    bad = write(tmp_path / "bad.png", b"nope")
    with pytest.raises(DatasetError, match="bad.png' cannot be used: not an image"):
        load_image(bad, 16)
    with pytest.raises(DatasetError, match="does not exist"):
        load_image(tmp_path / "missing.png", 16)


def test_demo_source_uses_the_demo_builder(tmp_path, monkeypatch):
    demo_root = make_dataset(tmp_path / "demo-cache")
    import gan_studio.data.demo as demo_module  # folder.py imports it when 'demo' is asked for

    monkeypatch.setattr(demo_module, "ensure_demo_dataset", lambda **_: demo_root)
    assert resolve_dataset_source("demo") == demo_root
    records, report = scan("demo")
    assert report.class_names == ["Clamp", "Nut"] and len(records) == 6


def test_a_refused_dataset_ends_its_decoding_threads_before_the_error_leaves(tmp_path):
    """The decoding pool belongs to the scan: when the scan refuses the dataset, its threads end
    before the error leaves, in this thread. (Held by a generator that the refusal left suspended,
    they ended when the garbage collector finalised it, in whichever thread allocated next: once
    inside threading's own locks, where the test suite deadlocked.)"""
    import threading

    root = make_dataset(tmp_path / "data", classes=("Clamp", "Nut"), per_class=6)
    for extra in list((root / "Nut").iterdir())[1:]:
        extra.unlink()  # one Nut image: the class is refused after every image was decoded
    before = {t.ident for t in threading.enumerate()}
    with pytest.raises(DatasetError, match="Class 'Nut'") as refused:
        load_labeled_images(root, 16, min_per_class=2, progress=False)
    left = [
        t.name for t in threading.enumerate() if t.ident not in before and t.name.startswith("ThreadPool")
    ]
    assert not left, left  # while the error (and the scan's frames it holds) is still alive
    assert refused.value.__traceback__ is not None
