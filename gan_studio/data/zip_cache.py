"""Dataset .zips: extracted once into a content-addressed cache folder, and the cache kept to a size budget.

A .zip is extracted into ``CACHE/zip-<sha256 prefix>`` (a temporary folder renamed into place, so a
half-extraction is never seen) when its members declare at most ``GAN_STUDIO_MAX_EXTRACT_MB`` in all,
and zipfile writes no member past its declared size: a zip bomb is refused before a byte is written. After
each extraction the cache is pruned to ``GAN_STUDIO_ZIP_CACHE_MB``: the folders used longest ago go
first, never one in use now. In use means a reader holds its lock (``in_use``: extraction, and every
scan or decode of the dataset) or used it in the last ``GRACE_S`` seconds (the hand-over between
resolving a .zip and reading the folder). A pruned dataset is extracted again from its .zip when
needed; the .zip itself is never touched.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from gan_studio.data.common import DatasetError
from gan_studio.utils import limits
from gan_studio.utils.disk_budget import mtime, prune_oldest

try:
    import fcntl
except ImportError:  # Windows: the grace period alone protects folders in use
    fcntl = None

ZIP_FOLDER = re.compile(r"zip-[0-9a-f]{16}")
LOCKS = ".locks"  # CACHE/.locks/zip-<...>.lock: one per extracted folder, beside the folders
GRACE_S = 120.0
LEFTOVER_AGE_S = 24 * 3600  # half-extractions and half-deletions of killed processes
_ZIP_SYMLINK = 0o120000
MB = 2**20


def _sha256_prefix(path: Path, length: int = 16) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:length]


def _member_name(info: zipfile.ZipInfo) -> str:
    """Recover UTF-8 names that zip tools stored without setting the UTF-8 flag (read back as cp437)."""
    if info.flag_bits & 0x800:
        return info.filename
    try:
        return info.filename.encode("cp437").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return info.filename


def _safe_member_parts(zip_path: Path, info: zipfile.ZipInfo) -> list[str]:
    """Path components of a zip member, refusing anything that could land outside the extraction dir."""
    name = _member_name(info)
    if (info.external_attr >> 16) & 0o170000 == _ZIP_SYMLINK:
        raise DatasetError(
            f"Zip '{zip_path}' contains a symbolic link '{name}'; links are not extracted for safety. "
            "Re-create the archive from real files."
        )
    parts = [part for part in re.split(r"[/\\]", name) if part not in ("", ".")]
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name) or ".." in parts:
        raise DatasetError(
            f"Zip '{zip_path}' contains the unsafe member path '{name}' (absolute or with '..'); "
            "it was refused to protect your files. Re-create the archive from the dataset folder."
        )
    return parts


# --------------------------------------------------------------------------------------------------
# Locks: readers share a folder's lock, the pruner needs it alone


def _lock_path(folder: Path) -> Path:
    return folder.parent / LOCKS / f"{folder.name}.lock"


@contextmanager
def _locked(lock_path: Path, *, exclusive: bool) -> Iterator[bool]:
    """Hold ``lock_path`` (shared, or exclusive without waiting); yields False when an exclusive lock
    is refused (or cannot be taken). Re-opens when the file was replaced while waiting, so a lock is
    never held on a deleted file."""
    if fcntl is None:
        yield True
        return
    for _ in range(100):
        try:
            lock_path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        except FileNotFoundError:  # the empty locks folder was just removed: make it again
            continue
        except OSError:  # a read-only cache: nothing can be pruned from it either
            yield not exclusive
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB if exclusive else fcntl.LOCK_SH)
        except BlockingIOError:
            os.close(fd)
            yield False
            return
        try:
            current = os.stat(lock_path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            current = False
        if current:
            break
        os.close(fd)
    else:  # never settled (someone keeps replacing the file): do not claim the folder alone
        yield not exclusive
        return
    try:
        yield True
    finally:
        os.close(fd)


def _cache_folder(path: Path) -> Path | None:
    """The extracted-zip folder ``path`` lies in (the folder itself or one below it), or None."""
    for folder in (path, *path.parents):
        if ZIP_FOLDER.fullmatch(folder.name) and _lock_path(folder).exists():
            return folder
    return None


@contextmanager
def in_use(path: str | os.PathLike) -> Iterator[None]:
    """While inside, the extracted dataset ``path`` belongs to is not pruned (no-op for other folders)."""
    folder = _cache_folder(Path(path))
    if folder is None:
        yield
        return
    with _locked(_lock_path(folder), exclusive=False):
        _touch(folder)
        yield


def _touch(folder: Path) -> None:
    try:
        os.utime(folder)
    except OSError:
        pass  # gone or read-only: pruning order only


# --------------------------------------------------------------------------------------------------
# Extraction


def extract_zip(zip_path: Path, cache_dir: Path) -> Path:
    """The folder ``zip_path`` extracts to, extracting it first when needed; then the cache is pruned."""
    target = cache_dir / f"zip-{_sha256_prefix(zip_path)}"
    cache_dir.mkdir(parents=True, exist_ok=True)
    try:
        with _locked(_lock_path(target), exclusive=False):
            if not target.is_dir():
                _extract(zip_path, target)
            _touch(target)
    except BaseException:
        _drop_orphan_lock(target)  # a refused zip leaves nothing behind
        raise
    prune(cache_dir, keep=target)
    return target


def _too_big(zip_path: Path, size: float) -> DatasetError:
    asked = f"Zip '{zip_path}' expands to {size / MB:,.1f} MB, which"
    message = limits.exceeded("extract_mb", size / MB, asked) or f"{asked} is too much."
    return DatasetError(f"{message} Or extract it yourself and pass the folder.")


def _copy_members(zip_path: Path, archive: zipfile.ZipFile, tmp: Path) -> None:
    """Every member into ``tmp``, refused as a whole when its declared sizes pass the limit.

    The declared sizes bound what is written: Python's zipfile never reads a member past its declared
    size, and a member whose data runs on fails its CRC check ("not a valid zip")."""
    members = [(info, _safe_member_parts(zip_path, info)) for info in archive.infolist()]
    declared = sum(info.file_size for info, _ in members)
    if declared > limits.value("extract_mb") * MB:
        raise _too_big(zip_path, declared)
    for info, parts in members:
        if not parts:
            continue
        dest = tmp.joinpath(*parts)
        if info.is_dir():
            dest.mkdir(parents=True, exist_ok=True)
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        with archive.open(info) as src, open(dest, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)


def _extract(zip_path: Path, target: Path) -> None:
    """Extract into a temporary folder renamed to ``target``: half-extractions stay invisible."""
    cache_dir = target.parent
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=cache_dir))
    try:
        with zipfile.ZipFile(zip_path) as archive:
            _copy_members(zip_path, archive, tmp)
        try:
            os.replace(tmp, target)
        except OSError:
            if not target.is_dir():  # not a concurrent extraction of the same zip: a real failure
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, NotImplementedError) as error:
        shutil.rmtree(tmp, ignore_errors=True)
        raise DatasetError(
            f"Zip '{zip_path}' is not a valid or readable zip archive ({error}). Re-create it, or extract "
            "it yourself and pass the folder."
        ) from error
    except OSError as error:
        shutil.rmtree(tmp, ignore_errors=True)
        raise DatasetError(
            f"Zip '{zip_path}' could not be extracted into '{cache_dir}' ({error}). Free disk space or set "
            "GAN_STUDIO_CACHE to a writable folder, or extract it yourself and pass the folder."
        ) from error
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


# --------------------------------------------------------------------------------------------------
# Pruning


def _remove_leftovers(cache_dir: Path, now: float) -> None:
    """Temporary folders of extractions or deletions whose process died a day ago or more, and the
    locks of extractions that failed (no reader holds them, no folder came of them)."""
    for path in cache_dir.iterdir():
        if path.name.startswith((".zip-", ".tmp-delete-zip-")):
            if path.is_dir() and now - mtime(path) > LEFTOVER_AGE_S:
                shutil.rmtree(path, ignore_errors=True)
    locks = cache_dir / LOCKS
    for path in locks.glob("zip-*.lock") if locks.is_dir() else []:
        _drop_orphan_lock(cache_dir / path.stem)


def _drop_orphan_lock(folder: Path) -> None:
    """The lock of a folder that does not exist (its extraction failed), unless a reader holds it; the
    locks' folder too once it is empty."""
    lock = _lock_path(folder)
    if folder.exists() or not lock.exists():
        return
    with _locked(lock, exclusive=True) as alone:
        if alone and not folder.exists():
            lock.unlink(missing_ok=True)
    try:
        lock.parent.rmdir()
    except OSError:
        pass  # other locks in it, or gone already


def _remove(folder: Path) -> bool:
    """Delete one extracted dataset unless a reader holds it; True when it went."""
    lock = _lock_path(folder)
    with _locked(lock, exclusive=True) as alone:
        if not alone:
            return False
        doomed = folder.with_name(f".tmp-delete-{folder.name}-{os.getpid()}")
        try:
            os.replace(folder, doomed)  # one rename: a reader never sees half a dataset
        except OSError:
            return False
        lock.unlink(missing_ok=True)
    shutil.rmtree(doomed, ignore_errors=True)
    return True


def prune(
    cache_dir: str | os.PathLike, *, keep: Path | None = None, budget_mb: float | None = None
) -> list[Path]:
    """Remove extracted datasets, least recently used first, until the cache fits ``budget_mb``
    (default ``GAN_STUDIO_ZIP_CACHE_MB``). ``keep``, folders used in the last ``GRACE_S`` seconds and
    folders a reader holds stay. Returns the removed folders."""
    cache_dir = Path(cache_dir)
    if not cache_dir.is_dir():
        return []
    budget = (limits.value("zip_cache_mb") if budget_mb is None else budget_mb) * MB
    _remove_leftovers(cache_dir, time.time())
    folders = [p for p in cache_dir.iterdir() if ZIP_FOLDER.fullmatch(p.name) and p.is_dir()]
    return prune_oldest(folders, budget, _remove, grace_s=GRACE_S, keep=lambda folder: folder == keep)
