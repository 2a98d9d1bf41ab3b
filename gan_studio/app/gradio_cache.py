"""Gradio's cache of returned images, made safe for identical images returned at the same moment.

Gradio (6.31) saves every image an event returns into its cache, in a folder named after the hash of
the image's bytes, and writes the file in place (``Path.write_bytes``). Two requests that return the
same image at once (two visitors sampling seed 0, two clients sharing a curation set) write the same
path: one truncates the file while the other's browser or API client downloads it, and that download
ends short ("peer closed connection without sending complete message body", seen by
benchmarks/space_soak.py). Here a copy is written under a temporary name and renamed into place, and a
copy already there is left alone (same folder, same name: the same bytes), as Gradio already does for
files it copies (``save_file_to_cache``). ``install`` swaps these in for Gradio's two in-place writers.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from gradio import processing_utils


def _write_once(path: Path, data: bytes) -> None:
    """``data`` at ``path`` unless a copy is there already; never a half-written file at ``path``."""
    if path.exists():
        try:
            os.utime(path)  # Gradio's delete_cache ages copies: one handed out again counts as new
        except OSError:
            pass
        return
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_pil_to_cache(img, cache_dir: str, name: str = "image", format: str = "webp") -> str:
    """Gradio's ``processing_utils.save_pil_to_cache``, writing once and atomically."""
    data = processing_utils.encode_pil_to_bytes(img, format)
    folder = Path(cache_dir) / processing_utils.hash_bytes(data)
    folder.mkdir(exist_ok=True, parents=True)
    path = (folder / f"{name}.{format}").resolve()
    _write_once(path, data)
    return str(path)


def save_bytes_to_cache(data: bytes, file_name: str, cache_dir: str) -> str:
    """Gradio's ``processing_utils.save_bytes_to_cache``, writing once and atomically."""
    folder = Path(cache_dir) / processing_utils.hash_bytes(data)
    folder.mkdir(exist_ok=True, parents=True)
    if not Path(file_name).suffix:
        file_name = file_name + processing_utils.detect_audio_format(data)
    path = folder / Path(file_name).name
    _write_once(path, data)
    return str(path.resolve())


def install() -> None:
    """Use these writers for every image and byte string Gradio caches (its components call them
    through ``processing_utils``); idempotent."""
    processing_utils.save_pil_to_cache = save_pil_to_cache
    processing_utils.save_bytes_to_cache = save_bytes_to_cache
