"""Labeled image folders: find them, validate them, and decode them once into a uint8 cache.

A dataset is an ImageFolder-style directory (one subfolder per class, images anywhere below it) or a
.zip of one. Nothing is trained before `scan_image_folder` has produced a `ValidationReport` that names
every skipped and every converted file, because a few-shot GAN silently learns whatever junk it is fed.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError
from tqdm.auto import tqdm

from gan_studio.data.common import DatasetError, cache_root
from gan_studio.data.zip_cache import extract_zip, in_use
from gan_studio.utils import limits

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"})
IGNORED_NAMES = frozenset({"__MACOSX", "Thumbs.db", "desktop.ini"})
# Metadata files that may sit next to the class folders without being reported as skipped.
ROOT_METADATA_NAMES = frozenset(
    {"dataset.json", "manifest.json", "README.md", "README.txt", "LICENSE", "split.json"}
)
FIT_MODES = ("center-crop", "pad", "stretch")
_SYMLINK_DIR_REASON = "symbolic link to a folder (not followed); copy the images into the dataset instead"
_SYMLINK_OUTSIDE_REASON = "symbolic link pointing outside the dataset folder (not followed)"
_SYMLINK_LOOP_REASON = "symbolic link that leads back to itself (a link loop); remove or fix the link"
# Longer skip lists are grouped by reason, with a count and the first few names (data_report.json
# keeps every one): a class of 1,400 unreadable files must not print 1,400 names on one line.
SKIPPED_NAMED_IN_FULL = 30
# A class with fewer usable images passes the check (two are enough to split), with a warning: the split
# leaves it a handful to learn from, and its CAS rests on a few test images.
FEW_IMAGES = 10
SKIPPED_EXAMPLES = 3
_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})
_MODE_NAMES = {
    "1": "1-bit",
    "L": "grayscale",
    "LA": "grayscale+alpha",
    "La": "grayscale+alpha",
    "P": "palette",
    "PA": "palette+alpha",
    "RGBA": "RGB+alpha",
    "RGBa": "RGB+alpha",
    "I": "32-bit integer grayscale",
    "F": "32-bit float grayscale",
}

T = TypeVar("T")


@dataclass(frozen=True)
class ImageRecord:
    path: str  # POSIX path relative to the dataset root, e.g. "Nut/img 01.png"
    label: int  # index into the sorted class names
    class_name: str


@dataclass
class ValidationReport:
    """What a scan found, shown to the user before any training starts."""

    root: str
    class_names: list[str]
    counts: dict[str, int]  # usable images per class
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (relative path, reason)
    converted: list[tuple[str, str]] = field(default_factory=list)  # (relative path, what was done)

    @property
    def num_images(self) -> int:
        return sum(self.counts.values())

    def small_classes(self, few: int = FEW_IMAGES) -> dict[str, int]:
        """{class: usable images} of the classes with fewer than ``few``."""
        return {name: self.counts.get(name, 0) for name in self.class_names if self.counts.get(name, 0) < few}

    def small_class_warning(self, few: int = FEW_IMAGES) -> str | None:
        """One sentence naming the classes with fewer than ``few`` usable images, or None."""
        small = self.small_classes(few)
        if not small:
            return None
        listed = ", ".join(f"{name} ({count})" for name, count in small.items())
        return (
            f"{len(small)} class(es) with fewer than {few} usable images: {listed}. They train, but the "
            "train/test split leaves each only a few images to learn from and a few to test on (so its CAS "
            "moves in big steps). Add images where you can."
        )

    def summary(self) -> str:
        lines = [
            f"Dataset: {self.root}",
            f"{len(self.class_names)} classes, {self.num_images} usable images, "
            f"{len(self.skipped)} skipped, {len(self.converted)} converted",
        ]
        width = max((len(name) for name in self.class_names), default=0)
        lines += [f"  {name:<{width}}  {self.counts.get(name, 0):>6}" for name in self.class_names]
        if len(self.skipped) > SKIPPED_NAMED_IN_FULL:
            lines.append("Skipped files, by reason (data_report.json names every one):")
            lines += [f"  {line}" for line in group_skipped(self.skipped)]
        elif self.skipped:
            lines.append("Skipped files:")
            lines += [f"  {path}: {reason}" for path, reason in self.skipped]
        if self.converted:
            lines.append("Converted files:")
            lines += [f"  {path}: {conversion}" for path, conversion in self.converted]
        warning = self.small_class_warning()
        if warning:
            lines.append(f"Warning: {warning}")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {
            "root": self.root,
            "class_names": list(self.class_names),
            "counts": dict(self.counts),
            "num_images": self.num_images,
            "skipped": [{"path": path, "reason": reason} for path, reason in self.skipped],
            "converted": [{"path": path, "conversion": conversion} for path, conversion in self.converted],
        }


# --------------------------------------------------------------------------------------------------
# Sources: a folder, a zip, or the built-in demo


def resolve_dataset_source(source: str | os.PathLike, *, cache_dir: str | os.PathLike | None = None) -> Path:
    """Turn what the user typed into a dataset directory.

    "demo" builds (or reuses) the synthetic demo set; a .zip is extracted once into
    `cache_dir` (default $GAN_STUDIO_CACHE/datasets) under a name derived from its content;
    a directory is returned as is. Use "./demo" for a folder that happens to be called demo.
    """
    if isinstance(source, str) and source == "demo":
        from gan_studio.data.demo import ensure_demo_dataset  # its renderer imports scipy: only when asked

        return Path(ensure_demo_dataset())
    path = Path(source).expanduser()
    if path.is_dir():
        return path.resolve()
    if not path.exists():
        raise DatasetError(
            f"Dataset '{path}' does not exist. Pass a folder with one subfolder per class, "
            "a .zip of such a folder, or 'demo'."
        )
    if path.suffix.lower() != ".zip":
        raise DatasetError(
            f"Dataset '{path}' is a file, not a folder or a .zip archive. Pass the folder that holds "
            "one subfolder per class, or a .zip of it."
        )
    return extract_zip(path.resolve(), Path(cache_dir) if cache_dir else cache_root() / "datasets")


# --------------------------------------------------------------------------------------------------
# Finding files


def _is_ignored(name: str) -> bool:
    return name.startswith(".") or name in IGNORED_NAMES


def _visible_entries(directory: Path) -> list[os.DirEntry]:
    with os.scandir(directory) as entries:
        return [entry for entry in entries if not _is_ignored(entry.name)]


def _is_image_name(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def _is_real_dir(entry: os.DirEntry) -> bool:
    return entry.is_dir(follow_symlinks=False)


def _leads_to(entry: os.DirEntry, kind: str) -> bool:
    """``entry.is_dir()`` / ``is_file()`` following links, False for a link that loops (ELOOP)."""
    try:
        return entry.is_dir() if kind == "dir" else entry.is_file()
    except OSError:
        return False


def _unwrap_single_folder(root: Path) -> Path:
    """Descend `root/<name>/` when it is just a wrapper around the class folders, as most zips are."""
    entries = _visible_entries(root)
    folders = [entry for entry in entries if _is_real_dir(entry)]
    if len(folders) != 1 or any(_leads_to(entry, "file") and _is_image_name(entry.name) for entry in entries):
        return root
    inner = _visible_entries(Path(folders[0].path))
    has_class_folders = any(_is_real_dir(entry) for entry in inner)
    has_images = any(_leads_to(entry, "file") and _is_image_name(entry.name) for entry in inner)
    return Path(folders[0].path) if has_class_folders and not has_images else root


def _link_problem(path: Path, root: Path) -> str | None:
    """Why a symbolic link is not followed (a loop, or a target outside the dataset), or None."""
    try:
        resolved = path.resolve(strict=True)
    except FileNotFoundError:
        return None  # a broken link: decoding says "file vanished, or a broken link"
    except (RuntimeError, OSError):  # RuntimeError: Python before 3.13 on a loop; OSError: ELOOP
        return _SYMLINK_LOOP_REASON
    return None if resolved.is_relative_to(root) else _SYMLINK_OUTSIDE_REASON


def group_skipped(skipped: Sequence[tuple[str, str]], examples: int = SKIPPED_EXAMPLES) -> list[str]:
    """Skipped files grouped by reason, largest group first: "reason: N files (a, b, c and N-3 more)",
    or "path (reason)" for a reason that only one file has."""
    by_reason: dict[str, list[str]] = {}
    for path, reason in skipped:
        by_reason.setdefault(reason, []).append(path)
    lines = []
    for reason, paths in sorted(by_reason.items(), key=lambda item: (-len(item[1]), item[0])):
        if len(paths) == 1:
            lines.append(f"{paths[0]} ({reason})")
            continue
        named = ", ".join(paths[:examples])
        more = f" and {len(paths) - examples} more" if len(paths) > examples else ""
        lines.append(f"{reason}: {len(paths)} files ({named}{more})")
    return lines


def _list_files(root: Path) -> tuple[list[str], dict[str, list[str]], list[tuple[str, str]]]:
    """Class names, candidate image paths per class, and files skipped without decoding (all sorted)."""
    class_names: list[str] = []
    skipped: list[tuple[str, str]] = []
    for entry in _visible_entries(root):
        rel = entry.name
        if entry.is_symlink() and _leads_to(entry, "dir"):
            skipped.append((rel, _SYMLINK_DIR_REASON))
        elif entry.is_symlink() and (problem := _link_problem(Path(entry.path), root)):
            skipped.append((rel, problem))
        elif _is_real_dir(entry):
            class_names.append(entry.name)
        elif _is_image_name(entry.name):
            skipped.append((rel, f"image directly in the dataset folder; move it into {root}/<class_name>/"))
        elif entry.name in ROOT_METADATA_NAMES:
            continue  # a dataset's own description (e.g. the demo's dataset.json), not a stray file
        else:
            skipped.append((rel, _extension_reason(entry.name)))
    class_names.sort()

    candidates: dict[str, list[str]] = {}
    for class_name in class_names:
        class_dir = root / class_name
        files: list[str] = []
        for dirpath, dirnames, filenames in os.walk(class_dir, followlinks=False):
            here = Path(dirpath)
            kept_dirs = []
            for name in dirnames:
                if _is_ignored(name):
                    continue
                if (here / name).is_symlink():
                    skipped.append(((here / name).relative_to(root).as_posix(), _SYMLINK_DIR_REASON))
                else:
                    kept_dirs.append(name)
            dirnames[:] = kept_dirs
            for name in filenames:
                if _is_ignored(name):
                    continue
                path = here / name
                rel = path.relative_to(root).as_posix()
                if path.is_symlink() and (problem := _link_problem(path, root)):
                    skipped.append((rel, problem))
                elif not _is_image_name(name):
                    skipped.append((rel, _extension_reason(name)))
                else:
                    files.append(rel)
        candidates[class_name] = sorted(files)
    return class_names, candidates, skipped


def _extension_reason(name: str) -> str:
    extension = os.path.splitext(name)[1]
    return f"not an image (extension {extension})" if extension else "not an image (no file extension)"


# --------------------------------------------------------------------------------------------------
# Decoding


def _mode_label(mode: str) -> str:
    if mode.startswith("I;16"):
        return f"16-bit grayscale ({mode})"
    name = _MODE_NAMES.get(mode, mode)
    return mode if name == mode else f"{name} ({mode})"


def _raw_mode(img: Image.Image) -> str:
    """The decoder's raw pixel layout (e.g. 'RGB;16B' for 48-bit PNGs), used only to report bit depth."""
    tile = getattr(img, "tile", None)
    if not tile:
        return ""
    args = tile[0][3]
    return args if isinstance(args, str) else str(args[0]) if isinstance(args, tuple) and args else ""


def _scale_to_uint8(array: np.ndarray, mode: str) -> np.ndarray:
    """Map high-bit-depth pixels to 0..255 by their nominal range, so a 16-bit image is not clipped white."""
    values = array.astype(np.float64)
    if mode.startswith("I;16"):
        scaled = values / 257.0
    elif mode == "F" and values.min() >= 0.0 and values.max() <= 1.0:
        scaled = values * 255.0
    elif values.min() >= 0 and values.max() <= 255:
        scaled = values
    elif mode == "I" and values.min() >= 0 and values.max() <= 65535:
        scaled = values / 257.0
    else:  # unknown range: stretch what is there
        low, high = values.min(), values.max()
        scaled = (values - low) * (255.0 / max(high - low, 1e-12))
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def _to_rgb(img: Image.Image, raw_mode: str = "") -> tuple[Image.Image, str | None]:
    """Convert any PIL mode to 8-bit RGB and describe what changed (None when nothing did).

    `raw_mode` is the decoder's pixel layout read before `load()`: Pillow already reduces 48-bit RGB
    to 8 bits by keeping the high byte (full range), so that case only needs reporting.
    """
    mode = img.mode
    if mode == "RGB" and "transparency" not in img.info:
        return img, (f"16-bit RGB ({raw_mode}) -> 8-bit RGB" if ";16" in raw_mode else None)
    if mode.startswith("I") or mode == "F":  # before alpha: Pillow's own conversion would clip to white
        gray = Image.fromarray(_scale_to_uint8(np.asarray(img), mode))
        return gray.convert("RGB"), f"{_mode_label(mode)} -> 8-bit RGB"
    if mode in _ALPHA_MODES or "transparency" in img.info:
        background = Image.new("RGBA", img.size, (255, 255, 255, 255))
        rgb = Image.alpha_composite(background, img.convert("RGBA")).convert("RGB")
        label = _mode_label(mode) if mode in _ALPHA_MODES else f"{_mode_label(mode)} with transparency"
        return rgb, f"{label} -> RGB, composited on white"
    return img.convert("RGB"), f"{_mode_label(mode)} -> RGB"


@dataclass(frozen=True)
class _Decoded:
    image: Image.Image | None
    skip_reason: str | None = None
    conversion: str | None = None


def too_many_pixels(width: int, height: int, max_pixels: int) -> str | None:
    """Why an image of ``width`` x ``height`` is not decoded (``GAN_STUDIO_MAX_IMAGE_PIXELS``), or None."""
    if width * height <= max_pixels:
        return None
    return (
        f"too many pixels to decode ({width}x{height} = {width * height / 1e6:.1f} megapixels; at most "
        f"{max_pixels / 1e6:g} megapixels per image, {limits.LIMITS['image_pixels'].env}); scale it down"
    )


def _decode_rgb(
    path: Path, *, min_size: int = 1, draft_size: int | None = None, max_pixels: int | None = None
) -> _Decoded:
    """Fully decode one file to upright 8-bit RGB, or say in a few words why it cannot be used.

    `draft_size` lets JPEG decode at a reduced scale that still covers draft_size x draft_size pixels.
    An image whose header says it has more than `max_pixels` (default: the limit in
    GAN_STUDIO_MAX_IMAGE_PIXELS) is refused before a single pixel is decoded.
    """
    if max_pixels is None:
        max_pixels = limits.value("image_pixels")
    try:
        if path.stat().st_size == 0:
            return _Decoded(None, "zero bytes")
        with Image.open(path) as img:  # reads the header only
            width, height = img.size
            if min(width, height) < min_size:
                return _Decoded(None, f"too small ({width}x{height} < {min_size})")
            if too_big := too_many_pixels(width, height, max_pixels):
                return _Decoded(None, too_big)
            raw_mode = _raw_mode(img)
            if draft_size and img.format == "JPEG":
                img.draft(img.mode, (draft_size, draft_size))
            img.load()
            notes = []
            orientation = img.getexif().get(ExifTags.Base.Orientation, 1)
            upright = img
            if orientation in range(2, 9):
                upright = ImageOps.exif_transpose(img)
                notes.append(f"EXIF orientation {orientation} applied")
            rgb, conversion = _to_rgb(upright, raw_mode)
            if conversion:
                notes.append(conversion)
            if rgb is img:  # closing the file invalidates `img`; keep a detached copy
                rgb = img.copy()
    except PermissionError:
        return _Decoded(None, "cannot be read (permission denied)")
    except FileNotFoundError:
        return _Decoded(None, "cannot be read (file vanished, or a broken link)")
    except UnidentifiedImageError:
        return _Decoded(None, "not an image (cannot be decoded: unrecognised file format)")
    except Image.DecompressionBombError as error:
        return _Decoded(None, f"too large to decode safely ({error})")
    except (OSError, SyntaxError, ValueError, EOFError):
        return _Decoded(None, "truncated or corrupt")
    return _Decoded(rgb, conversion="; ".join(notes) or None)


def fit_square(img: Image.Image, resolution: int, mode: str = "center-crop") -> Image.Image:
    """Make `img` a `resolution` x `resolution` square.

    center-crop keeps the centre and drops the long side's edges, pad keeps the whole image and fills
    the rest with black, stretch keeps everything but distorts the aspect ratio.
    """
    if resolution < 1:
        raise ValueError(f"resolution must be a positive number of pixels, got {resolution}")
    size = (resolution, resolution)
    if mode == "center-crop":
        return ImageOps.fit(img, size, method=Image.Resampling.LANCZOS)
    if mode == "pad":
        return ImageOps.pad(img, size, method=Image.Resampling.LANCZOS, color=0)
    if mode == "stretch":
        return img.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
    raise ValueError(f"Unknown fit mode '{mode}'; choose one of: {', '.join(FIT_MODES)}")


def load_image(path: str | os.PathLike, resolution: int, fit: str = "center-crop") -> np.ndarray:
    """One file as a uint8 HxWx3 RGB array at `resolution`, converted exactly as the dataset loader does."""
    if fit not in FIT_MODES:
        raise ValueError(f"Unknown fit mode '{fit}'; choose one of: {', '.join(FIT_MODES)}")
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"Image '{path}' does not exist or is not a file.")
    decoded = _decode_rgb(path, draft_size=resolution)
    if decoded.image is None:
        raise DatasetError(f"Image '{path}' cannot be used: {decoded.skip_reason}. Replace or remove it.")
    return np.array(fit_square(decoded.image, resolution, fit))


# --------------------------------------------------------------------------------------------------
# Scanning and loading


@contextlib.contextmanager
def _parallel_map(
    fn: Callable[[str], T], items: Sequence[str], desc: str, progress: bool
) -> Iterator[Iterable[T]]:
    """Ordered map over a small thread pool (PIL releases the GIL while it decodes and resizes), as a
    context: the pool ends when the block does, in this thread, its queued work cancelled if the block
    raised. (A generator that held the pool was finalised by the garbage collector when a consumer
    raised, in whichever thread allocated next: inside ``threading``'s own locks it deadlocked.)"""
    workers = max(1, min(8, os.cpu_count() or 1, len(items)))
    pool = ThreadPoolExecutor(max_workers=workers)
    try:
        yield tqdm(pool.map(fn, items), total=len(items), desc=desc, unit="img", disable=not progress)
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def _scan(
    source: str | os.PathLike,
    *,
    min_per_class: int,
    min_size: int,
    progress: bool,
    desc: str,
    keep: Callable[[Image.Image], Any] | None = None,
    draft_size: int | None = None,
) -> tuple[list[ImageRecord], ValidationReport, list[Any]]:
    """Decode every candidate once; `keep` turns each usable image into what the caller stores."""
    root = _unwrap_single_folder(resolve_dataset_source(source).resolve())
    with in_use(root):  # an extracted .zip is not pruned from the cache while it is read
        return _scan_root(root, min_per_class, min_size, progress, desc, keep, draft_size)


def _scan_root(
    root: Path,
    min_per_class: int,
    min_size: int,
    progress: bool,
    desc: str,
    keep: Callable[[Image.Image], Any] | None,
    draft_size: int | None,
) -> tuple[list[ImageRecord], ValidationReport, list[Any]]:
    class_names, candidates, skipped = _list_files(root)
    if not class_names:
        loose = sum(1 for path, _ in skipped if _is_image_name(path))
        found = f" Found {loose} image file(s) directly in the folder." if loose else ""
        raise DatasetError(
            f"No class folders found in '{root}'.{found} GAN Studio expects one subfolder per class: "
            f"{root}/<class_name>/<images>. Put each class's images in its own folder (or pass the parent "
            "folder)."
        )

    ordered = [(label, name, path) for label, name in enumerate(class_names) for path in candidates[name]]

    max_pixels = limits.value("image_pixels")

    def work(path: str) -> tuple[_Decoded, Any]:
        decoded = _decode_rgb(root / path, min_size=min_size, draft_size=draft_size, max_pixels=max_pixels)
        return decoded, (keep(decoded.image) if keep and decoded.image is not None else None)

    records: list[ImageRecord] = []
    kept: list[Any] = []
    converted: list[tuple[str, str]] = []
    counts = dict.fromkeys(class_names, 0)
    with _parallel_map(work, [path for _, _, path in ordered], desc, progress) as results:
        for (label, name, path), (decoded, value) in zip(ordered, results):
            if decoded.image is None:
                skipped.append((path, decoded.skip_reason or "unusable"))
                continue
            if decoded.conversion:
                converted.append((path, decoded.conversion))
            records.append(ImageRecord(path=path, label=label, class_name=name))
            kept.append(value)
            counts[name] += 1

    report = ValidationReport(
        root=str(root), class_names=class_names, counts=counts, skipped=sorted(skipped), converted=converted
    )
    _refuse_small_classes(report, min_per_class)
    if report.num_images == 0:
        raise DatasetError(f"No usable images in '{root}'.\n{report.summary()}")
    return records, report, kept


def _refuse_small_classes(report: ValidationReport, min_per_class: int) -> None:
    problems = []
    for name in report.class_names:
        count = report.counts[name]
        if count >= min_per_class:
            continue
        own = group_skipped(
            [(path, reason) for path, reason in report.skipped if path.startswith(f"{name}/")]
        )
        skipped = f" Skipped files: {'; '.join(own)}." if own else ""
        problems.append(
            f"Class '{name}' in '{report.root}' has {count} usable image(s); at least {min_per_class} are "
            f"needed. Add images or remove the folder.{skipped}"
        )
    if problems:
        raise DatasetError("\n".join(problems))


def scan_image_folder(
    root: str | os.PathLike, *, min_per_class: int = 2, min_size: int = 16, progress: bool = True
) -> tuple[list[ImageRecord], ValidationReport]:
    """Validate a dataset without keeping pixels: usable records (sorted by class, path) and the report.

    Raises DatasetError when there are no class folders or a class has fewer than `min_per_class`
    usable images. `root` may also be a .zip or "demo" (see `resolve_dataset_source`).
    """
    records, report, _ = _scan(
        root, min_per_class=min_per_class, min_size=min_size, progress=progress, desc="Checking images"
    )
    return records, report


@dataclass
class LabeledImages:
    """A whole dataset decoded once: an epoch over it is tensor indexing, not JPEG decoding."""

    root: Path
    images: torch.Tensor  # uint8 [N, 3, R, R]
    labels: torch.Tensor  # int64 [N]
    class_names: list[str]
    records: list[ImageRecord]
    report: ValidationReport
    resolution: int

    def __len__(self) -> int:
        return len(self.records)

    def subset(self, indices: Sequence[int] | torch.Tensor) -> LabeledImages:
        index = torch.as_tensor(indices)
        if index.dtype == torch.bool:
            index = index.nonzero().flatten()
        index = index.to(torch.long).flatten()
        return replace(
            self,
            images=self.images[index],
            labels=self.labels[index],
            records=[self.records[i] for i in index.tolist()],
        )


def load_labeled_images(
    source: str | os.PathLike,
    resolution: int,
    *,
    fit: str = "center-crop",
    min_per_class: int = 2,
    min_size: int = 16,
    progress: bool = True,
) -> LabeledImages:
    """Validate and decode a dataset into one uint8 [N, 3, R, R] tensor in (class, path) order."""
    if fit not in FIT_MODES:
        raise ValueError(f"Unknown fit mode '{fit}'; choose one of: {', '.join(FIT_MODES)}")
    if resolution < 1:
        raise ValueError(f"resolution must be a positive number of pixels, got {resolution}")

    def fitted(img: Image.Image) -> np.ndarray:
        return np.array(fit_square(img, resolution, fit))

    records, report, arrays = _scan(
        source,
        min_per_class=min_per_class,
        min_size=min_size,
        progress=progress,
        desc="Loading images",
        keep=fitted,
        draft_size=resolution,
    )
    # Fill one buffer and drop each array as it is copied, so peak memory stays ~1x the cache. NumPy,
    # not torch: torch's intra-op threading makes thousands of tiny copies ~50x slower.
    buffer = np.empty((len(arrays), 3, resolution, resolution), dtype=np.uint8)
    for i, array in enumerate(arrays):
        buffer[i] = array.transpose(2, 0, 1)
        arrays[i] = None
    images = torch.from_numpy(buffer)
    labels = torch.tensor([record.label for record in records], dtype=torch.long)
    return LabeledImages(
        root=Path(report.root),
        images=images,
        labels=labels,
        class_names=list(report.class_names),
        records=records,
        report=report,
        resolution=resolution,
    )
