"""Export a curated set: an ImageFolder .zip, its manifest.json and a Hugging Face metadata file.

Plain functions over plain inputs (the accepted candidates, the real train records, the model's class
names), so the tab only wires them up and the tests need no web layer.

The .zip holds one folder per class with every image at one chosen size, ``manifest.json`` (the
samples manifest of gan_studio.sampling, schema gan-studio/samples-v1: every class of the model with
its index, in the model's order, even a class with no image in the export) and either ``metadata.csv`` or ``metadata.jsonl``: the Hugging Face ``datasets`` imagefolder loader
reads them (``file_name`` relative to the metadata file's folder), but refuses two metadata formats
in one folder, so an export carries one of them.
"""

from __future__ import annotations

import csv
import glob
import io
import json
import os
import re
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from gan_studio.data.folder import load_image
from gan_studio.sampling import SampleRecord, build_manifest, real_entry, safe_name

METADATA_FORMATS = ("metadata.csv", "metadata.jsonl")
MANIFEST_MAX_BYTES = 64 * 1024 * 1024  # a manifest is a few hundred bytes per image
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
    """One image of an export: its manifest entry (where it goes in the .zip, its class, its source and
    provenance: gan_studio.sampling's schema) and how to read it at a size."""

    entry: dict  # SampleRecord.entry or real_entry; "file" is its path inside the .zip
    read: Callable[[int], Image.Image]  # the image at size x size

    @property
    def file_name(self) -> str:
        return self.entry["file"]

    @property
    def label(self) -> str:
        return self.entry["class"]

    @property
    def class_index(self) -> int:
        return self.entry["class_index"]

    @property
    def source(self) -> str:
        return self.entry["source"]


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
    candidates: Sequence, folder: Path, class_names: Sequence[str], *, model: str, z_dim: int | None
) -> list[ExportItem]:
    """The accepted candidates (``Candidate``s of a curation store whose files lie under ``folder``),
    drawn by the model named ``model``."""
    items = []
    for c in candidates:
        index = class_names.index(c.class_name) if c.class_name in class_names else c.class_index
        record = SampleRecord(int(index), c.class_name, c.seed, c.truncation, c.step, model)
        scores = {
            "confidence": c.confidence,
            "predicted": c.predicted,
            "predicted_confidence": c.predicted_confidence,
            "memorization_ratio": c.memorization_ratio,
            "nearest_real": c.nearest_real,
        }
        entry = record.entry(
            z_dim,
            file=f"{safe_name(c.class_name)}/{Path(c.file).name}",
            filters=c.filters,
            scores=scores,
            decision="manual" if c.manual else "threshold",
        )
        items.append(ExportItem(entry, _resized(Path(folder) / c.file)))
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
        entry = real_entry(
            name, record.class_name, class_names.index(record.class_name), original=record.path, fit=fit
        )
        items.append(ExportItem(entry, _fitted(Path(root) / record.path, fit)))
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
        entry = item.entry
        scores = entry.get("scores") or {}
        row = {
            "file_name": item.file_name,
            "label": item.label,
            "class_index": item.class_index,
            "source": item.source,
            "confidence": scores.get("confidence"),
            "memorization_ratio": scores.get("memorization_ratio"),
            "predicted": scores.get("predicted"),
            "predicted_confidence": scores.get("predicted_confidence"),
            "seed": entry.get("seed"),
            "truncation": entry.get("truncation"),
            "decision": entry.get("decision"),
            "original": entry.get("original"),
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


def export_manifest(
    model: dict | None,
    items: Sequence[ExportItem],
    classes: Sequence[dict],
    size: int,
    metadata_file: str,
    **extra,
) -> dict:
    """The export's samples manifest: every image's entry at ``size``, the class rows with their counts."""
    return build_manifest(
        [{**item.entry, "size": size} for item in items],
        model=model,
        classes=classes,
        image_size=size,
        metadata_file=metadata_file,
        class_index_note=INDEX_NOTE,
        counts={row["name"]: row["generated"] + row["real"] for row in classes},
        no_accepted_candidate=[row["name"] for row in classes if row["generated"] == 0],
        n_generated=sum(1 for i in items if i.source == "generated"),
        n_real=sum(1 for i in items if i.source == "real"),
        **extra,
    )


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
    model: dict | None = None,
    **extra,
) -> ExportResult:
    """Write the .zip of ``items`` (generated first, then real); ``candidates`` are all those judged,
    ``model`` the generator's provenance (sampling.model_provenance), ``extra`` more manifest keys."""
    if not items:
        raise ValueError("Nothing to export: accept some candidates first (or include the real images).")
    if metadata_file not in METADATA_FORMATS:
        raise ValueError(f"Unknown metadata file '{metadata_file}'; choose {' or '.join(METADATA_FORMATS)}.")
    size = check_size(size)
    classes = class_rows(class_names, items, candidates)
    manifest = export_manifest(model, items, classes, size, metadata_file, **extra)
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


def export_file_name(model_id: str, stamp: str) -> str:
    """'<model>-curated-<stamp>.zip': the name the Curate tab gives an export of ``model_id``."""
    return f"{safe_name(model_id.replace('/', '__'))}-curated-{stamp}.zip"


def read_export_manifest(path: Path) -> dict | None:
    """The manifest.json of an export .zip, or None when the file is not one (unreadable, no manifest)."""
    try:
        with zipfile.ZipFile(path) as zf:
            info = zf.getinfo("manifest.json")
            if info.file_size > MANIFEST_MAX_BYTES:
                return None
            manifest = json.loads(zf.read(info).decode("utf-8"))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return None
    return manifest if isinstance(manifest, dict) else None


@dataclass(frozen=True)
class SavedExport:
    """An export on disk and what it holds: generated images per class, in the model's class order."""

    path: Path
    generated_per_class: dict[str, int]

    @property
    def n_generated(self) -> int:
        return sum(self.generated_per_class.values())

    @property
    def made(self) -> str:
        """'2026-12-05 15:37:28', from the name the Curate tab gave it (else the name itself)."""
        stamp = re.search(r"-curated-(\d{4})(\d\d)(\d\d)-(\d\d)(\d\d)(\d\d)-[0-9a-f]+\.zip$", self.path.name)
        return "{}-{}-{} {}:{}:{}".format(*stamp.groups()) if stamp else self.path.name

    @property
    def label(self) -> str:
        """'export 12-05 15:37:28 · 40 images': short enough to show whole in the Evaluate tab's list."""
        return f"export {self.made[5:] if self.made[:4].isdigit() else self.made} · {self.n_generated} images"


def _modified(path: Path) -> tuple[float, str]:
    try:
        return path.stat().st_mtime, path.name
    except OSError:  # pruned since it was listed: read_export_manifest skips it
        return 0.0, path.name


def saved_exports(folder: Path, model_id: str) -> list[SavedExport]:
    """The Curate exports of ``model_id`` in ``folder``, newest first: the .zip files named for it whose
    manifest says this model drew their generated images."""
    prefix = export_file_name(model_id, "")[: -len(".zip")]
    paths = [Path(p) for p in glob.glob(glob.escape(str(Path(folder) / prefix)) + "*.zip")]
    found = []
    for path in sorted(paths, key=_modified, reverse=True):
        manifest = read_export_manifest(path)
        if manifest is None or (manifest.get("model") or {}).get("id") != model_id:
            continue
        rows = [r for r in manifest.get("classes") or [] if isinstance(r, dict) and "name" in r]
        found.append(SavedExport(path, {str(r["name"]): int(r.get("generated") or 0) for r in rows}))
    return found
