"""Export a curated set: an ImageFolder .zip, its manifest.json and a Hugging Face metadata file.

Plain functions over plain inputs (the accepted candidates, the real train records, the model's class
names), so the tab only wires them up and the tests need no web layer.

The .zip holds one folder per class with every image at one chosen size, ``manifest.json`` (every
class of the model with its index, in the model's order, even a class with no image in the export)
and either ``metadata.csv`` or ``metadata.jsonl``: the Hugging Face ``datasets`` imagefolder loader
reads them (``file_name`` relative to the metadata file's folder), but refuses two metadata formats
in one folder, so an export carries one of them.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
import time
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from gan_studio.data.folder import load_image
from gan_studio.sampling import latent_for_seed, safe_name

METADATA_FORMATS = ("metadata.csv", "metadata.jsonl")
MIN_SIZE, MAX_SIZE = 8, 1024
# One flat row per image: what `datasets` turns into columns (file_name becomes the `image` column).
METADATA_COLUMNS = (
    "file_name",
    "label",
    "class_index",
    "source",
    "confidence",
    "memorization_ratio",
    "predicted",
    "predicted_confidence",
    "seed",
    "truncation",
    "decision",
    "original",
)
INDEX_NOTE = (
    "class_index is the model's class order (the 'classes' list). ImageFolder loaders number the folders "
    "they find in sorted order instead, and a class without images has no folder: map through 'classes'."
)


@dataclass
class ExportItem:
    """One image of an export: where it goes in the .zip, its class, and how to read it at a size."""

    file_name: str  # inside the .zip, e.g. "Nut/seed_000012_t100.png"
    label: str
    class_index: int
    source: str  # "generated" or "real"
    read: Callable[[int], Image.Image]  # the image at size x size
    details: dict = field(default_factory=dict)  # everything else the manifest records


@dataclass
class ExportResult:
    path: Path
    size: int
    metadata_file: str
    classes: list[dict]  # one row per class of the model, in its order
    n_generated: int
    n_real: int
    warning: str | None  # names the classes without an accepted candidate


def check_size(size) -> int:
    try:
        value = int(size)
    except (TypeError, ValueError):
        raise ValueError(f"The output size must be a whole number of pixels, not '{size}'.") from None
    if not MIN_SIZE <= value <= MAX_SIZE or value != float(size):
        raise ValueError(f"The output size must be a whole number from {MIN_SIZE} to {MAX_SIZE} pixels.")
    return value


def _resized(path: Path) -> Callable[[int], Image.Image]:
    def read(size: int) -> Image.Image:
        with Image.open(path) as image:
            image = image.convert("RGB")
            if image.size != (size, size):
                image = image.resize((size, size), Image.Resampling.LANCZOS)
            return image

    return read


def _fitted(path: Path, fit: str) -> Callable[[int], Image.Image]:
    """A real image at any size, decoded and fitted exactly as the training data loader does."""
    return lambda size: Image.fromarray(load_image(path, size, fit))


def generated_items(
    candidates: Sequence, folder: Path, class_names: Sequence[str], *, run_id: str, z_dim: int | None
) -> list[ExportItem]:
    """The accepted candidates (``Candidate``s of a curation store whose files lie under ``folder``)."""
    items = []
    for c in candidates:
        index = class_names.index(c.class_name) if c.class_name in class_names else c.class_index
        latent = latent_for_seed(c.seed, z_dim, c.truncation).tolist() if z_dim else None
        details = {
            "seed": c.seed,
            "truncation": c.truncation,
            "latent": [round(v, 6) for v in latent] if latent else None,
            "run": run_id,
            "step": c.step,
            "scores": {
                "confidence": c.confidence,
                "predicted": c.predicted,
                "predicted_confidence": c.predicted_confidence,
                "memorization_ratio": c.memorization_ratio,
                "nearest_real": c.nearest_real,
            },
            "decision": "manual" if c.manual else "threshold",
            "filters": c.filters,
        }
        items.append(
            ExportItem(
                f"{safe_name(c.class_name)}/{Path(c.file).name}",
                c.class_name,
                int(index),
                "generated",
                _resized(Path(folder) / c.file),
                details,
            )
        )
    return items


def real_items(records: Sequence, root: Path, class_names: Sequence[str], fit: str) -> list[ExportItem]:
    """The real train images (``ImageRecord``s under ``root``), named real_<stem>.png, never two alike."""
    items, taken = [], set()
    for record in records:
        folder, stem = safe_name(record.class_name), safe_name(Path(record.path).stem)
        name, n = f"{folder}/real_{stem}.png", 2
        while name in taken:
            name, n = f"{folder}/real_{stem}_{n}.png", n + 1
        taken.add(name)
        if record.class_name not in class_names:
            raise ValueError(
                f"The real image '{record.path}' is of class '{record.class_name}', not one of the model's."
            )
        items.append(
            ExportItem(
                name,
                record.class_name,
                class_names.index(record.class_name),
                "real",
                _fitted(Path(root) / record.path, fit),
                {"original": record.path, "fit": fit},
            )
        )
    return items


def class_rows(class_names: Sequence[str], items: Sequence[ExportItem], candidates: Sequence) -> list[dict]:
    """Every class of the model, in its order: index, folder, images exported, candidates judged."""
    rows = []
    for index, name in enumerate(class_names):
        mine = [c for c in candidates if c.class_name == name]
        rows.append(
            {
                "index": index,
                "name": name,
                "folder": safe_name(name),
                "generated": sum(1 for i in items if i.label == name and i.source == "generated"),
                "real": sum(1 for i in items if i.label == name and i.source == "real"),
                "candidates": len(mine),
                "accepted": sum(1 for c in mine if c.accepted),
            }
        )
    return rows


def missing_warning(rows: Sequence[dict]) -> str | None:
    """Names the classes without an accepted candidate, and says which of them the .zip lacks entirely."""
    lacking = [r for r in rows if r["generated"] == 0]
    if not lacking:
        return None
    judged = [f"{r['name']} (0 of {r['candidates']} accepted)" for r in lacking if r["candidates"]]
    unjudged = [r["name"] for r in lacking if not r["candidates"]]
    parts = judged + ([f"none generated for {', '.join(unjudged)}"] if unjudged else [])
    text = f"No accepted candidate for {len(lacking)} of {len(rows)} classes: {'; '.join(parts)}."
    absent = [r["name"] for r in lacking if r["real"] == 0]
    if absent:
        which = "them" if len(absent) == len(lacking) else ", ".join(absent)
        text += (
            f" The .zip has no folder for {which}, so an ImageFolder loader numbers the classes without "
            "them; manifest.json lists every class with its index in the model's order."
        )
    if len(absent) < len(lacking):
        text += " " + ("They have" if not absent else "The others have") + " real images only."
    return text


def metadata_rows(items: Sequence[ExportItem]) -> list[dict]:
    """One flat row per image, with the columns of METADATA_COLUMNS (None where a column does not apply)."""
    rows = []
    for item in items:
        scores = item.details.get("scores") or {}
        row = {
            "file_name": item.file_name,
            "label": item.label,
            "class_index": item.class_index,
            "source": item.source,
            "confidence": scores.get("confidence"),
            "memorization_ratio": scores.get("memorization_ratio"),
            "predicted": scores.get("predicted"),
            "predicted_confidence": scores.get("predicted_confidence"),
            "seed": item.details.get("seed"),
            "truncation": item.details.get("truncation"),
            "decision": item.details.get("decision"),
            "original": item.details.get("original"),
        }
        rows.append(row)
    return rows


def metadata_csv(rows: Sequence[dict]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=METADATA_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)  # None -> an empty cell
    return out.getvalue()


def metadata_jsonl(rows: Sequence[dict]) -> str:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def build_manifest(
    header: dict, items: Sequence[ExportItem], classes: Sequence[dict], size: int, metadata_file: str
) -> dict:
    images = []
    for item in items:
        entry = {"file": item.file_name, "class": item.label, "class_index": item.class_index}
        images.append({**entry, "source": item.source, "size": size, **item.details})
    return {
        **header,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "image_size": size,
        "metadata_file": metadata_file,
        "classes": list(classes),
        "class_index_note": INDEX_NOTE,
        "counts": {row["name"]: row["generated"] + row["real"] for row in classes},
        "no_accepted_candidate": [row["name"] for row in classes if row["generated"] == 0],
        "n_generated": sum(1 for i in items if i.source == "generated"),
        "n_real": sum(1 for i in items if i.source == "real"),
        "images": images,
    }


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def write_zip(out_zip: str | Path, images: Sequence[ExportItem], size: int, texts: dict[str, str]) -> Path:
    """Every image at ``size`` x ``size`` plus the text files, written atomically (a .zip is whole or absent)."""
    out_zip = Path(out_zip)
    out_zip.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out_zip.parent, prefix=f".{out_zip.stem}.", suffix=".zip")
    os.close(fd)
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as zf:  # PNGs are compressed already
            for item in images:
                zf.writestr(item.file_name, _png(item.read(size)))
            for name, text in texts.items():
                zf.writestr(name, text)
        os.replace(tmp, out_zip)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out_zip


def export_dataset(
    out_zip: str | Path,
    items: Sequence[ExportItem],
    *,
    class_names: Sequence[str],
    candidates: Sequence,
    size: int,
    metadata_file: str = "metadata.csv",
    header: dict | None = None,
) -> ExportResult:
    """Write the .zip of ``items`` (generated first, then real); ``candidates`` are all those judged."""
    if not items:
        raise ValueError("Nothing to export: accept some candidates first (or include the real images).")
    if metadata_file not in METADATA_FORMATS:
        raise ValueError(f"Unknown metadata file '{metadata_file}'; choose {' or '.join(METADATA_FORMATS)}.")
    size = check_size(size)
    classes = class_rows(class_names, items, candidates)
    manifest = build_manifest(header or {}, items, classes, size, metadata_file)
    rows = metadata_rows(items)
    texts = {
        "manifest.json": json.dumps(manifest, indent=2, ensure_ascii=False) + "\n",
        metadata_file: metadata_csv(rows) if metadata_file.endswith(".csv") else metadata_jsonl(rows),
    }
    path = write_zip(out_zip, items, size, texts)
    return ExportResult(
        path,
        size,
        metadata_file,
        classes,
        manifest["n_generated"],
        manifest["n_real"],
        missing_warning(classes),
    )
