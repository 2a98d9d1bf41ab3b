"""One shared place that finds, loads and caches every model the app uses.

Why a registry: the app serves many sessions from one process. Each model is loaded once, onto the
best device, in eval mode, and shared; a lock per model serialises its use (Grad-CAM hooks and
batch-norm buffers are not safe to share mid-forward), models beyond a memory budget are evicted
least-recently-used first, and a run that is still training is re-read whenever its ``latest``
checkpoint moves on, so a new step shows up without restarting the app.

What it discovers under each root (the root itself, its children and grandchildren):

- a training run: ``run.json`` (+ ``checkpoints/``); an evaluator trained for it may sit in ``evaluator/``;
- a package (``gan_studio.packaging``; what ships in ``checkpoints/`` and travels via the Hub):
  ``generator/`` (a save_pretrained folder), ``package.json``, optional ``evaluator/``, ``split.json``,
  ``metrics.json``, ``run.json``;
- a bare generator or evaluator folder (``config.json`` + ``model.safetensors``).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from gan_studio.device import pick_device
from gan_studio.metrics.history import headline_metrics
from gan_studio.training import checkpoint as ckpt
from gan_studio.training.run_folder import RUN_FILE, RunFolder

GENERATOR = "generator"
EVALUATOR = "evaluator"
DEFAULT_BUDGET_MB = 4096
_SCAN_DEPTH = 2
_SKIP_DIRS = {"checkpoints", "samples", "generator", "generator_ema", "discriminator", "__pycache__"}


@dataclass(frozen=True)
class ModelEntry:
    """What the registry knows about one model without loading it."""

    id: str  # unique, stable name shown in the UI
    kind: str  # GENERATOR | EVALUATOR
    path: Path  # what the loader is given: run dir, package generator folder, evaluator folder
    source: str  # "run" | "package" | "folder"
    class_names: tuple[str, ...]
    resolution: int
    step: int = -1  # latest checkpoint step of a run (-1 unknown, 0 = no checkpoint yet)
    dataset: str | None = None  # the dataset it was trained on, as recorded
    run_dir: Path | None = None  # the run (or package) folder: split.json, metrics, samples live here
    state: str | None = None  # a run's training state from status.json
    metrics: dict[str, Any] = field(default_factory=dict)  # headline numbers when an evaluation exists
    metrics_path: Path | None = None
    # what those numbers were computed on: the evaluation's meta (n per class, real images, step, ...)
    metrics_meta: dict[str, Any] = field(default_factory=dict)

    @property
    def loadable(self) -> bool:
        return self.kind == EVALUATOR or self.source != "run" or self.step > 0

    @property
    def split_path(self) -> Path | None:
        for folder in (self.run_dir, self.path):
            if folder is not None and RunFolder(folder).split_path.is_file():
                return RunFolder(folder).split_path
        return None

    @property
    def label(self) -> str:
        """One line for a dropdown: name, classes, resolution, step, state."""
        parts = [self.id, f"{len(self.class_names)} classes", f"{self.resolution} px"]
        if self.step > 0:
            parts.append(f"step {self.step}")
        elif self.source == "run":
            parts.append("no checkpoint yet")
        if self.state == "running":
            parts.append("training")
        return " · ".join(parts)


@dataclass
class LoadedModel:
    """A loaded model and the entry (and step) it was loaded from."""

    model: torch.nn.Module
    entry: ModelEntry
    info: Any = None  # sampling.GeneratorInfo for generators
    nbytes: int = 0
    version: tuple = ()  # changes whenever the weights are reloaded from a newer file


@dataclass
class _Slot:
    lock: threading.RLock = field(default_factory=threading.RLock)
    loaded: LoadedModel | None = None
    version: tuple | None = None
    last_used: float = 0.0
    users: int = 0  # callers inside ``use`` right now (any thread): never evicted while > 0


def _read_json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _model_bytes(model: torch.nn.Module) -> int:
    tensors = [*model.parameters(), *model.buffers()]
    return sum(t.numel() * t.element_size() for t in tensors)


def _metrics_of(folder: Path) -> tuple[dict, Path | None, dict]:
    """(headline figures, metrics.json, its meta: what they were computed on) of the newest evaluation."""
    for candidate in (folder / "metrics.json", folder / "evaluation" / "metrics.json"):
        data = _read_json(candidate) if candidate.is_file() else None
        if data is not None:
            return headline_metrics(data), candidate, data.get("meta") or {}
    return {}, None, {}


def metrics_file(folder: Path) -> tuple[dict, Path] | None:
    """(metrics.json's contents, its path) of a run or package: its own, else its evaluation's."""
    for candidate in (folder / "metrics.json", folder / "evaluation" / "metrics.json"):
        data = _read_json(candidate) if candidate.is_file() else None
        if data is not None:
            return data, candidate
    return None


def _is_weights_folder(folder: Path) -> dict | None:
    if not (folder / "model.safetensors").is_file():
        return None
    return _read_json(folder / "config.json")


def _evaluator_entry(folder: Path, name: str, run_dir: Path | None, source: str) -> ModelEntry | None:
    config = _is_weights_folder(folder)
    if not config or "arch" not in config or not config.get("class_names"):
        return None
    training = _read_json(folder / "training.json") or {}
    return ModelEntry(
        id=name,
        kind=EVALUATOR,
        path=folder,
        source=source,
        class_names=tuple(config["class_names"]),
        resolution=int(config.get("resolution", 64)),
        step=int(training.get("steps", -1)),
        dataset=(training.get("data") or {}).get("source"),
        run_dir=run_dir,
        metrics={"test_accuracy": training["test_accuracy"]}
        if training.get("test_accuracy") is not None
        else {},
    )


def _run_entries(run_dir: Path, name: str) -> list[ModelEntry]:
    run = _read_json(RunFolder(run_dir).run_path)
    if not run or not run.get("class_names"):
        return []
    latest = ckpt.latest_checkpoint(run_dir)
    step = int(latest.name.split("_")[1]) if latest is not None else 0
    status = _read_json(RunFolder(run_dir).status_path) or {}
    metrics, metrics_path, metrics_meta = _metrics_of(run_dir)
    config = run.get("config", {})
    entries = [
        ModelEntry(
            id=name,
            kind=GENERATOR,
            path=run_dir,
            source="run",
            class_names=tuple(run["class_names"]),
            resolution=int(config.get("resolution", (run.get("data") or {}).get("resolution", 64))),
            step=step,
            dataset=(run.get("data") or {}).get("source"),
            run_dir=run_dir,
            state=status.get("state"),
            metrics=metrics,
            metrics_path=metrics_path,
            metrics_meta=metrics_meta,
        )
    ]
    evaluator = _evaluator_entry(run_dir / "evaluator", f"{name}/evaluator", run_dir, "run")
    return entries + ([evaluator] if evaluator else [])


def _package_entries(package: Path, name: str) -> list[ModelEntry]:
    config = _is_weights_folder(package / "generator")
    if not config or "z_dim" not in config:
        return []
    summary = _read_json(package / "package.json") or {}
    run = _read_json(RunFolder(package).run_path) or {}
    metrics, metrics_path, metrics_meta = _metrics_of(package)
    entries = [
        ModelEntry(
            id=name,
            kind=GENERATOR,
            path=package / "generator",
            source="package",
            class_names=tuple(config.get("class_names") or []),
            resolution=int(config.get("resolution", 64)),
            step=int(summary.get("step", -1)),
            dataset=(run.get("data") or {}).get("source"),
            run_dir=package,
            metrics=metrics,
            metrics_path=metrics_path,
            metrics_meta=metrics_meta,
        )
    ]
    evaluator = _evaluator_entry(package / "evaluator", f"{name}/evaluator", package, "package")
    return entries + ([evaluator] if evaluator else [])


def _folder_entries(folder: Path, name: str) -> list[ModelEntry]:
    config = _is_weights_folder(folder)
    if not config:
        return []
    if "arch" in config:
        evaluator = _evaluator_entry(folder, name, None, "folder")
        return [evaluator] if evaluator else []
    if "z_dim" in config:
        training = _read_json(folder / "training.json") or {}
        return [
            ModelEntry(
                id=name,
                kind=GENERATOR,
                path=folder,
                source="folder",
                class_names=tuple(config.get("class_names") or []),
                resolution=int(config.get("resolution", 64)),
                step=int(training.get("step", -1)),
            )
        ]
    return []


def discover(roots: Iterable[str | os.PathLike]) -> list[ModelEntry]:
    """Every run, package, generator and evaluator under ``roots``; ids are unique (clashes get ' (2)')."""
    found: list[ModelEntry] = []
    seen_paths: set[Path] = set()

    def visit(folder: Path, name: str, depth: int) -> None:
        real = folder.resolve()
        if real in seen_paths:
            return
        seen_paths.add(real)
        for reader in (_package_entries, _run_entries, _folder_entries):  # a package also ships run.json
            entries = reader(folder, name)
            if entries:
                found.extend(entries)
                return
        if depth >= _SCAN_DEPTH:
            return
        try:
            children = sorted(p for p in folder.iterdir() if p.is_dir())
        except OSError:
            return
        for child in children:
            if child.name.startswith((".", "_")) or child.name in _SKIP_DIRS:
                continue
            visit(child, f"{name}/{child.name}" if name else child.name, depth + 1)

    for root in roots:
        root = Path(root).expanduser()
        if root.is_dir():
            visit(root, root.name if _looks_like_model(root) else "", 0)

    taken: dict[str, int] = {}
    unique = []
    for entry in found:
        count = taken.get(entry.id, 0) + 1
        taken[entry.id] = count
        unique.append(entry if count == 1 else replace(entry, id=f"{entry.id} ({count})"))
    return unique


def _looks_like_model(folder: Path) -> bool:
    return any((folder / name).exists() for name in (RUN_FILE, "generator", "config.json"))


class ModelRegistry:
    """Discovers models under ``roots`` and hands out shared, lazily loaded instances.

    Use ``with registry.use(kind, id) as loaded:`` to hold a model's lock while computing with it.
    """

    def __init__(
        self,
        roots: Iterable[str | os.PathLike],
        *,
        device: str | torch.device | None = None,
        memory_budget_mb: float | None = None,
    ):
        self.roots = [Path(r).expanduser() for r in roots]
        self.device = pick_device() if device is None else torch.device(device)
        if memory_budget_mb is None:
            memory_budget_mb = float(os.environ.get("GAN_STUDIO_MODEL_BUDGET_MB", DEFAULT_BUDGET_MB))
        self.memory_budget = int(memory_budget_mb * 2**20)
        self._lock = threading.Lock()  # guards _slots and _entries, never held while loading
        self._slots: dict[tuple[str, str], _Slot] = {}
        self._entries: dict[tuple[str, str], ModelEntry] = {}
        self.load_counts: dict[tuple[str, str], int] = {}

    # ----------------------------------------------------------------------------- discovery
    def refresh(self) -> list[ModelEntry]:
        entries = discover(self.roots)
        with self._lock:
            self._entries = {(e.kind, e.id): e for e in entries}
        return entries

    def list(self, kind: str | None = None) -> list[ModelEntry]:
        """Fresh listing (a scan of a few small JSON files; runs that are still training move on)."""
        return [e for e in self.refresh() if kind is None or e.kind == kind]

    def generators(self) -> list[ModelEntry]:
        return self.list(GENERATOR)

    def evaluators(self, class_names: Iterable[str] | None = None) -> list[ModelEntry]:
        """Evaluators, only those for exactly ``class_names`` when given (a generator's own first)."""
        found = self.list(EVALUATOR)
        if class_names is not None:
            wanted = tuple(class_names)
            found = [e for e in found if e.class_names == wanted]
        return found

    def evaluator_for(self, generator: ModelEntry) -> ModelEntry | None:
        """The evaluator that belongs to a generator: its own run/package first, else any with its classes."""
        candidates = self.evaluators(generator.class_names)
        own = [e for e in candidates if e.run_dir is not None and e.run_dir == generator.run_dir]
        return (own or candidates or [None])[0]

    def get(self, kind: str, model_id: str) -> ModelEntry:
        """The current entry for an id, re-read from disk (a run's step moves while it trains)."""
        for entry in self.list(kind):
            if entry.id == model_id:
                return entry
        known = ", ".join(e.id for e in self._entries.values() if e.kind == kind) or "none yet"
        what = "run" if kind == GENERATOR else "evaluator"
        raise KeyError(
            f"No {what} named '{model_id}' (known: {known}). Refresh the list, or train one first."
        )

    # ----------------------------------------------------------------------------- loading
    @staticmethod
    def _version(entry: ModelEntry) -> tuple:
        """Changes whenever the weights on disk change: a run's latest step, a folder's file time."""
        if entry.source == "run" and entry.kind == GENERATOR:
            return (entry.step,)
        weights = Path(entry.path) / "model.safetensors"
        try:
            stat = weights.stat()
        except OSError:
            return (entry.step,)
        return (entry.step, stat.st_mtime_ns, stat.st_size)

    def _load(self, entry: ModelEntry) -> LoadedModel:
        if entry.kind == GENERATOR:
            if not entry.loadable:
                raise ckpt.CheckpointError(
                    f"Run '{entry.id}' has no checkpoint yet: wait for its first save, or train it longer."
                )
            from gan_studio.sampling import load_generator

            try:
                model, info = load_generator(entry.path, device=self.device)
            except RuntimeError as error:  # load_state_dict: the weights do not fit this code's model
                raise ckpt.CheckpointError(
                    f"The weights of '{entry.id}' do not fit this version of GAN Studio's generator "
                    f"({str(error).splitlines()[0][:160]}...). Retrain the run, or use the GAN Studio version "
                    "that trained it."
                ) from None
            return LoadedModel(
                model, replace(entry, step=max(entry.step, info.step)), info, _model_bytes(model)
            )
        from gan_studio.models.classifier import load_evaluator

        model = load_evaluator(entry.path, device=self.device)
        model.requires_grad_(False)
        return LoadedModel(model, entry, None, _model_bytes(model))

    def _slot(self, key: tuple[str, str]) -> _Slot:
        with self._lock:
            return self._slots.setdefault(key, _Slot())

    def load(self, kind: str, model_id: str) -> LoadedModel:
        """The shared instance, loading (or reloading a newer checkpoint) when needed."""
        with self.use(kind, model_id) as loaded:
            return loaded

    @contextmanager
    def use(self, kind: str, model_id: str) -> Iterator[LoadedModel]:
        """Hold the model's lock while using it; other sessions wait, then share the same weights."""
        entry = self.get(kind, model_id)
        key = (kind, entry.id)
        slot = self._slot(key)
        with slot.lock:
            version = self._version(entry)
            if slot.loaded is None or slot.version != version:
                slot.loaded = None  # free the old weights before loading the new ones
                slot.loaded = self._load(entry)
                slot.loaded.version = slot.version = version
                with self._lock:
                    self.load_counts[key] = self.load_counts.get(key, 0) + 1
            slot.last_used = time.monotonic()
            loaded = slot.loaded
            with self._lock:
                slot.users += 1
            try:
                self._evict(keep=key)
                yield loaded
            finally:
                with self._lock:
                    slot.users -= 1

    def use_generator(self, model_id: str):
        return self.use(GENERATOR, model_id)

    def use_evaluator(self, model_id: str):
        return self.use(EVALUATOR, model_id)

    def loaded_bytes(self) -> int:
        with self._lock:
            return sum(s.loaded.nbytes for s in self._slots.values() if s.loaded is not None)

    def loaded_ids(self) -> list[tuple[str, str]]:
        with self._lock:
            return [key for key, s in self._slots.items() if s.loaded is not None]

    def _evict(self, keep: tuple[str, str]) -> None:
        """Drop least-recently-used models until the budget holds; models in use are skipped."""
        with self._lock:
            candidates = sorted(
                ((k, s) for k, s in self._slots.items() if s.loaded is not None and k != keep),
                key=lambda item: item[1].last_used,
            )
            total = sum(s.loaded.nbytes for s in self._slots.values() if s.loaded is not None)
        evicted = False
        for _, slot in candidates:
            if total <= self.memory_budget:
                break
            if not slot.lock.acquire(blocking=False):
                continue  # another session is loading or computing with it right now
            try:
                with self._lock:
                    busy = slot.users > 0  # e.g. this very thread holds it in an outer ``use``
                if slot.loaded is not None and not busy:
                    total -= slot.loaded.nbytes
                    slot.loaded, slot.version = None, None
                    evicted = True
            finally:
                slot.lock.release()
        if evicted and self.device.type == "cuda":
            torch.cuda.empty_cache()
