"""The app-wide services every tab shares: model registry, background jobs, caches, the workspace.

One ``Studio`` per app process. It holds no per-user state (that lives in each session's gr.State);
what it holds is either shared on purpose (loaded models, decoded datasets, curation stores on disk)
or owned by the server (the training processes it started).

Workspace layout (``--workdir``, default ./studio)::

    runs/          training runs started from the app (also scanned for models)
    curation/      one folder per run and set: state.json + candidate PNGs (see app/curation.py)
    exports/       curated .zip exports
    evaluations/   reports of generators that are not app runs (e.g. a shipped package)
    evaluators/    evaluators trained for generators that are not app runs
    uploads/       uploaded dataset .zips (content-addressed), kept to GAN_STUDIO_MAX_UPLOADS_MB
                   (never one a run trains on)
    scratch/       per-request outputs (sample zips, GIFs), pruned after a day and, with exports/,
                   to GAN_STUDIO_MAX_OUTPUT_MB
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from gan_studio.app.curation import CurationStores
from gan_studio.app.embeddings import EmbeddingCache
from gan_studio.app.jobs import JobRunner
from gan_studio.app.real_data import RealDataCache
from gan_studio.app.registry import ModelRegistry
from gan_studio.app.training_manager import TrainingManager
from gan_studio.data import zip_cache
from gan_studio.data.common import cache_root
from gan_studio.utils import limits
from gan_studio.utils.disk_budget import prune_oldest, remove_path

SCRATCH_MAX_AGE_S = 24 * 3600
OUTPUT_GRACE_S = 600  # an output this young may still be downloading: never pruned for size
log = logging.getLogger(__name__)


@dataclass
class Studio:
    workdir: Path
    registry: ModelRegistry
    jobs: JobRunner
    training: TrainingManager
    real_data: RealDataCache
    embeddings: EmbeddingCache
    curation: CurationStores
    default_data: str | None = None  # --data: the Train tab's default folder, and the fallback dataset
    checkpoint_dirs: list[Path] = field(default_factory=list)
    data_roots: list[Path] | None = None  # --data-roots: server folders users may train on (None: any)
    _warm_ups: threading.Thread | None = field(default=None, init=False, repr=False)
    _warm_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @property
    def runs_dir(self) -> Path:
        return self.workdir / "runs"

    def path(self, name: str) -> Path:
        folder = self.workdir / name
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def scratch_dir(self, prefix: str) -> Path:
        """A fresh folder for one request's output files (older outputs pruned to their budget first)."""
        self.prune_outputs()
        return Path(tempfile.mkdtemp(prefix=f"{prefix}-", dir=self.path("scratch")))

    def prune_outputs(self) -> list[Path]:
        """Keep the served outputs (``scratch/`` folders and ``exports/`` zips) within
        ``GAN_STUDIO_MAX_OUTPUT_MB``: the oldest go first, never one made in the last
        ``OUTPUT_GRACE_S`` (its download may still run). Returns what was removed."""
        entries = [p for name in ("scratch", "exports") for p in self.path(name).iterdir()]
        removed = prune_oldest(
            entries, limits.value("output_mb") * 2**20, remove_path, grace_s=OUTPUT_GRACE_S
        )
        if removed:
            log.info("outputs over GAN_STUDIO_MAX_OUTPUT_MB: removed the %d oldest", len(removed))
        return removed

    def prune_scratch(self, max_age_s: float = SCRATCH_MAX_AGE_S) -> None:
        cutoff = time.time() - max_age_s
        for folder in self.path("scratch").iterdir():
            if folder.is_dir() and folder.stat().st_mtime < cutoff:
                shutil.rmtree(folder, ignore_errors=True)

    def check_server_folder(self, folder: Path) -> Path:
        """Refuse dataset folders outside --data-roots, so a public server does not list its own files."""
        folder = Path(folder).expanduser().resolve()
        if self.data_roots is None or any(folder.is_relative_to(root) for root in self.data_roots):
            return folder
        from gan_studio.data import DatasetError

        if not self.data_roots:
            raise DatasetError(
                "This server does not train on its own folders; use the demo or upload a .zip."
            )
        roots = ", ".join(str(r) for r in self.data_roots)
        raise DatasetError(f"This server only trains on folders inside {roots}; upload a .zip instead.")

    def allowed_paths(self) -> list[str]:
        """Folders whose files the UI may serve (outputs, samples of runs, reports)."""
        return [str(p) for p in (self.workdir, *self.checkpoint_dirs)]

    def warm_up_real_data(self, after: threading.Event | None = None) -> threading.Thread:
        """Decode (and for the demo, first render) the default generator's real images in a daemon
        thread, so the first Grad-CAM, embedding or curation click does not wait for it.

        Starts after ``after`` (the UMAP warm-up) so that the page and the first samples come first.
        """

        def run() -> None:
            if after is not None:
                after.wait(180)
            try:
                generators = self.registry.generators()
                if generators:
                    self.real_data.get(generators[0])
            except Exception as exc:  # noqa: BLE001 - a warm-up must never take the app down
                log.info("real-data warm-up skipped: %s", exc)

        thread = threading.Thread(target=run, name="real-data-warm-up", daemon=True)
        thread.start()
        return thread

    def warm_up_models(self) -> None:
        """Load the generator the picker offers first, and its evaluator: the Sample tab's first click."""
        from gan_studio.app.registry import EVALUATOR, GENERATOR

        ready = [entry for entry in self.registry.generators() if entry.loadable]
        if not ready:
            return
        self.registry.load(GENERATOR, ready[0].id)
        evaluator = self.registry.evaluator_for(ready[0])
        if evaluator is not None:
            self.registry.load(EVALUATOR, evaluator.id)

    def start_warm_ups(self, *, umap: bool = True, real_data: bool = False) -> threading.Thread:
        """Warm up in a daemon thread, in the order a newcomer needs them: the default models (Sample),
        then UMAP's kernels (Embeddings), then the real images (Grad-CAM, Curate).

        Call it once the page is served: on a two-core machine, warming up beside the start-up slows it.
        Only the first call starts them; later ones return the same thread."""

        def run() -> None:
            try:
                self.warm_up_models()
            except Exception as exc:  # noqa: BLE001 - a warm-up must never take the app down
                log.info("model warm-up skipped: %s", exc)
            if umap:
                self.embeddings.warm_up()
            if real_data:
                self.warm_up_real_data(after=self.embeddings.warm if umap else None)

        with self._warm_lock:
            if self._warm_ups is None:
                self._warm_ups = threading.Thread(target=run, name="warm-ups", daemon=True)
                self._warm_ups.start()
            return self._warm_ups

    def shutdown(self) -> None:
        """Stop what this app started (training saves a checkpoint on SIGTERM)."""
        self.jobs.stop_all()


def create_studio(
    *,
    workdir: str | os.PathLike = "studio",
    checkpoint_dirs: list[str | os.PathLike] | None = None,
    default_data: str | None = None,
    data_roots: list[str | os.PathLike] | None = None,
    device: str | None = None,
    memory_budget_mb: float | None = None,
    warm_up_umap: bool = True,
    warm_up_real_data: bool = False,
) -> Studio:
    limits.check_all()  # a bad GAN_STUDIO_MAX_* value stops the app here, with the variable named
    workdir = Path(workdir).expanduser().resolve()
    (workdir / "runs").mkdir(parents=True, exist_ok=True)
    dirs = [Path(d).expanduser().resolve() for d in (checkpoint_dirs or [])]
    registry = ModelRegistry(
        [*dirs, workdir / "runs", workdir / "evaluators"], device=device, memory_budget_mb=memory_budget_mb
    )
    jobs = JobRunner()
    training = TrainingManager(workdir / "runs", jobs)
    jobs.outside = training.trainers_elsewhere  # trainers an earlier app process left running count too
    studio = Studio(
        workdir=workdir,
        registry=registry,
        jobs=jobs,
        training=training,
        real_data=RealDataCache(default_data),
        embeddings=EmbeddingCache(),
        curation=CurationStores(workdir / "curation"),
        default_data=default_data,
        checkpoint_dirs=dirs,
        data_roots=[Path(r).expanduser().resolve() for r in data_roots] if data_roots is not None else None,
    )
    studio.prune_scratch()
    zip_cache.prune(cache_root() / "datasets")  # a smaller GAN_STUDIO_ZIP_CACHE_MB applies at once
    if warm_up_umap or warm_up_real_data:
        studio.start_warm_ups(umap=warm_up_umap, real_data=warm_up_real_data)
    return studio
