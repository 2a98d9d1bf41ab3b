"""A contact sheet of a dataset: the first images of every class in one PNG, for a README or a glance."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from gan_studio.data.common import DatasetError
from gan_studio.data.demo.writer import read_metadata


def make_contact_sheet(
    dataset_dir: str | os.PathLike, out_path: str | os.PathLike, per_class: int = 8, tile: int = 96
) -> Path:
    """A PNG grid of the first `per_class` images of every class (one row each, name on the left)."""
    root = Path(dataset_dir).expanduser()
    if not root.is_dir():
        raise DatasetError(
            f"Dataset folder '{root}' does not exist; pass the folder that holds the class folders."
        )
    names = (read_metadata(root) or {}).get("class_names") or sorted(
        p.name for p in root.iterdir() if p.is_dir()
    )
    if not names:
        raise DatasetError(
            f"'{root}' has no class folders; make one with `python -m gan_studio demo-data {root}`."
        )
    rows = []
    for name in names:
        files = sorted(p for p in (root / name).iterdir() if p.suffix.lower() in {".png", ".jpg", ".jpeg"})
        if not files:
            raise DatasetError(f"Class folder '{root / name}' has no images; regenerate the dataset.")
        rows.append((name, files[:per_class]))

    font = ImageFont.load_default(size=max(10, tile // 7))
    gap, margin = 3, 8
    label_width = max(int(font.getlength(name)) for name in names) + 2 * margin
    width = label_width + per_class * (tile + gap) - gap + margin
    height = len(rows) * (tile + gap) - gap + 2 * margin
    sheet = Image.new("RGB", (width, height), (246, 246, 244))
    draw = ImageDraw.Draw(sheet)
    for row, (name, files) in enumerate(rows):
        y = margin + row * (tile + gap)
        draw.text((margin, y + tile // 2), name, fill=(30, 30, 30), font=font, anchor="lm")
        for column, file in enumerate(files):
            with Image.open(file) as img:
                thumb = img.convert("RGB").resize((tile, tile), Image.Resampling.LANCZOS)
            sheet.paste(thumb, (label_width + column * (tile + gap), y))

    out = Path(out_path).expanduser()
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.partial-{uuid.uuid4().hex[:8]}")
    try:
        sheet.save(partial, format="PNG", optimize=True)
        os.replace(partial, out)
    finally:
        partial.unlink(missing_ok=True)
    return out
