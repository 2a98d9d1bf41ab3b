"""Curate & export: generate candidates, score them, keep the good ones, export a training-ready set.

Each candidate gets two scores computed by the metrics code: the evaluator's confidence in the class
it was generated for (a sample the evaluator reads as another class would teach a downstream
classifier the wrong label) and the memorisation ratio (distance to the nearest real training image
over the typical real-to-real distance; near 0 means a near-copy that adds nothing). Thresholds
accept or reject automatically; a decision by hand (a button or a key) overrides either way, and
survives new thresholds. Exports are written by gan_studio.app.export.

Sets (who sees which accepted set): a curation is a *set* of one run's candidates, kept on disk
(state.json + PNGs, written atomically). A set with a name is shared by everyone who types that name for
that run, and survives reloads and restarts; the set named ``default`` is the one a local app starts
with, kept where earlier versions kept a run's curation. A page that gives no name gets a private set:
only that page (its Gradio connection; each API client is one) sees or changes it, and it goes an
hour after the page is closed, or a day after its last change. A public Space starts every page on a
private set.
"""

from __future__ import annotations

import json
import re
import shutil
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from gan_studio.app.export import ExportResult, export_dataset, generated_items, real_items
from gan_studio.app.postprocess import FilterSpec, apply_chain, describe
from gan_studio.data.zip_cache import in_use
from gan_studio.metrics.memorization import NEAR_COPY_THRESHOLD, copy_ratios
from gan_studio.sampling import safe_name, sample
from gan_studio.utils.atomic import write_json_atomic
from gan_studio.utils.images import save_png_atomic

STATE_FILE = "state.json"
DEFAULT_SET = "default"
PRIVATE_MAX_AGE_S = 24 * 3600  # a private set untouched this long goes
CLOSED_KEPT_S = 3600  # a closed page's private sets go this long after
_SET_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
DEFAULT_MIN_CONFIDENCE = 0.6
DEFAULT_MIN_RATIO = NEAR_COPY_THRESHOLD
SHOW_CHOICES = ("All", "Accepted", "Rejected")
SORT_ORDERS = (
    "Class, then seed",
    "Confidence: lowest first",
    "Confidence: highest first",
    "Memorisation ratio: lowest first",
    "Memorisation ratio: highest first",
)


@dataclass
class Candidate:
    id: str  # "<class folder>/seed_000012_t100": unique per (class, seed, truncation)
    class_name: str
    class_index: int
    seed: int
    truncation: float
    step: int
    file: str  # relative to the store's folder
    confidence: float  # evaluator probability of class_name
    predicted: str
    predicted_confidence: float
    memorization_ratio: float
    nearest_real: str | None
    filters: list[dict] = field(default_factory=list)
    accepted: bool = False
    manual: bool = False  # decided by hand: thresholds no longer change it


@dataclass
class Thresholds:
    min_confidence: float = DEFAULT_MIN_CONFIDENCE
    min_memorization_ratio: float = DEFAULT_MIN_RATIO

    def accepts(self, c: Candidate) -> bool:
        return c.confidence >= self.min_confidence and c.memorization_ratio >= self.min_memorization_ratio


def score_candidates(
    probs: np.ndarray,
    features: np.ndarray,
    labels: Sequence[int],
    real_features: np.ndarray,
    real_labels: Sequence[int] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(confidence in the intended class, memorisation ratio, index of the nearest real image).

    With ``real_labels`` the ratio uses each class's own spacing, as the memorisation metric does."""
    labels = np.asarray(labels, dtype=np.int64)
    confidence = probs[np.arange(len(labels)), labels] if len(labels) else np.zeros(0, np.float32)
    ratios, nearest, _ = copy_ratios(real_features, features, real_labels, labels)
    return confidence, ratios, nearest


def view(
    candidates: Sequence[Candidate],
    class_name: str | None = None,
    show: str = "All",
    order: str = SORT_ORDERS[0],
) -> list[Candidate]:
    """The candidates of one class (None: all), all / accepted / rejected ones, in a sort order."""
    if show not in SHOW_CHOICES:
        raise ValueError(f"Unknown filter '{show}'; choose one of: {', '.join(SHOW_CHOICES)}.")
    if order not in SORT_ORDERS:
        raise ValueError(f"Unknown order '{order}'; choose one of: {', '.join(SORT_ORDERS)}.")
    shown = [
        c
        for c in candidates
        if class_name in (None, c.class_name) and (show == "All" or c.accepted == (show == "Accepted"))
    ]
    by_class = sorted(shown, key=lambda c: (c.class_index, c.seed, c.truncation))  # stable tie-break
    if order.startswith("Confidence"):
        return sorted(by_class, key=lambda c: c.confidence, reverse=order.endswith("highest first"))
    if order.startswith("Memorisation"):
        return sorted(by_class, key=lambda c: c.memorization_ratio, reverse=order.endswith("highest first"))
    return by_class


def step_cursor(ids: Sequence[str], cursor: str | None, delta: int) -> str | None:
    """The id ``delta`` places from ``cursor`` in ``ids``, kept inside the list (nothing picked: an end)."""
    if not ids:
        return None
    if cursor not in ids:
        return ids[0] if delta >= 0 else ids[-1]
    return ids[min(max(list(ids).index(cursor) + delta, 0), len(ids) - 1)]


def next_cursor(before: Sequence[str], after: Sequence[str], decided: str) -> str | None:
    """Where the cursor goes once ``decided`` got a decision: the next image of the view.

    ``before`` / ``after`` are the ids shown before and after; ``decided`` may have left the view (a
    filter on accepted or rejected), then the image that took its place is next."""
    if not after:
        return None
    if decided in after:
        at = list(after).index(decided)
        return after[min(at + 1, len(after) - 1)]
    at = list(before).index(decided) if decided in before else 0
    return after[min(at, len(after) - 1)]


class CurationStore:
    """The candidates of one run, persisted in ``folder``; all methods are thread-safe."""

    def __init__(self, folder: str | Path, run_id: str, set_name: str | None = DEFAULT_SET):
        self.folder = Path(folder)
        self.run_id = run_id
        self.set_name = set_name  # None: a page's private set
        self._lock = threading.RLock()
        self.candidates: list[Candidate] = []
        self.thresholds = Thresholds()
        self.meta: dict = {}
        self._load()

    # ----------------------------------------------------------------------------- persistence
    def _load(self) -> None:
        path = self.folder / STATE_FILE
        if not path.is_file():
            return
        try:
            state = json.loads(path.read_text(encoding="utf-8"))
            self.candidates = [Candidate(**c) for c in state.get("candidates", [])]
            self.thresholds = Thresholds(**state.get("thresholds", {}))
            self.meta = state.get("meta", {})
        except (ValueError, TypeError) as error:
            raise ValueError(
                f"The curation state '{path}' is damaged ({error}). Move it away to start a new curation."
            ) from None

    def save(self) -> None:
        with self._lock:
            write_json_atomic(
                self.folder / STATE_FILE,
                {
                    "run": self.run_id,
                    "meta": self.meta,
                    "thresholds": asdict(self.thresholds),
                    "candidates": [asdict(c) for c in self.candidates],
                    "updated": time.strftime("%Y-%m-%dT%H:%M:%S"),
                },
            )

    # ----------------------------------------------------------------------------- candidates
    def add_generated(
        self,
        generator,
        info,
        evaluator,
        real_features: np.ndarray,
        real_names: Sequence[str],
        *,
        classes: Sequence[int],
        n_per_class: int,
        seed: int = 0,
        truncation: float = 1.0,
        chain: Sequence[FilterSpec] = (),
        progress: bool = False,
        real_labels: Sequence[int] | None = None,
    ) -> list[Candidate]:
        """Generate ``n_per_class`` new candidates per class (seeds already present are skipped) and score them.

        The caller holds the generator's and the evaluator's locks.
        """
        if n_per_class < 1:
            raise ValueError("Generate at least one candidate per class.")
        with self._lock:
            taken = {c.id for c in self.candidates}
            plan: list[tuple[int, int, str]] = []
            for c in classes:
                folder, s = safe_name(info.class_names[c]), seed
                while sum(1 for _, cls, _ in plan if cls == c) < n_per_class:
                    cid = f"{folder}/seed_{s:06d}_t{round(truncation * 100):03d}"
                    if cid not in taken:
                        plan.append((s, c, cid))
                    s += 1
            seeds, labels = [p[0] for p in plan], [p[1] for p in plan]
            batch = sample(
                generator, info, labels, seeds, truncation=truncation, model=self.run_id, progress=progress
            )
            pils = [apply_chain(image, chain) for image in batch.pil()]
            filtered = (
                torch.from_numpy(np.stack([np.asarray(p) for p in pils])).permute(0, 3, 1, 2).contiguous()
            )
            probs, features = evaluator.predict_uint8(filtered, 128)
            confidence, ratios, nearest = score_candidates(
                probs, features, labels, real_features, real_labels
            )
            new = []
            for i, (record, (_, _, cid)) in enumerate(zip(batch.records, plan)):
                file = f"images/{cid}.png"
                save_png_atomic(pils[i], self.folder / file)
                predicted = int(probs[i].argmax())
                candidate = Candidate(
                    id=cid,
                    class_name=record.class_name,
                    class_index=record.class_index,
                    seed=record.seed,
                    truncation=record.truncation,
                    step=record.step,
                    file=file,
                    confidence=float(confidence[i]),
                    predicted=info.class_names[predicted],
                    predicted_confidence=float(probs[i, predicted]),
                    memorization_ratio=float(ratios[i]),
                    nearest_real=real_names[int(nearest[i])] if len(real_names) else None,
                    filters=describe(chain),
                )
                candidate.accepted = self.thresholds.accepts(candidate)
                new.append(candidate)
            self.candidates.extend(new)
            self.meta.update(
                {
                    "model": batch.model,  # the samples manifest's "model", for the export
                    "generator": info.source,
                    "z_dim": int(generator.z_dim),
                    "class_names": list(info.class_names),
                }
            )
            self.save()
            return new

    def set_thresholds(self, min_confidence: float, min_memorization_ratio: float) -> None:
        """Re-decide every candidate not decided by hand."""
        with self._lock:
            self.thresholds = Thresholds(float(min_confidence), float(min_memorization_ratio))
            for c in self.candidates:
                if not c.manual:
                    c.accepted = self.thresholds.accepts(c)
            self.save()

    def get(self, candidate_id: str) -> Candidate:
        with self._lock:
            for c in self.candidates:
                if c.id == candidate_id:
                    return c
        raise KeyError(f"No candidate '{candidate_id}' in this curation.")

    def decide(self, candidate_id: str, accepted: bool) -> Candidate:
        """Accept or reject one candidate by hand: thresholds no longer change it."""
        with self._lock:
            c = self.get(candidate_id)
            c.accepted, c.manual = bool(accepted), True
            self.save()
            return c

    def toggle(self, candidate_id: str) -> Candidate:
        with self._lock:
            return self.decide(candidate_id, not self.get(candidate_id).accepted)

    def clear(self) -> None:
        with self._lock:
            self.candidates = []
            shutil.rmtree(self.folder / "images", ignore_errors=True)
            self.save()

    def visible(
        self, class_name: str | None = None, show: str = "All", order: str = SORT_ORDERS[0]
    ) -> list[Candidate]:
        with self._lock:
            return view(self.candidates, class_name, show, order)

    def counts(self, class_names: Sequence[str]) -> list[list]:
        """Rows of [class, candidates, accepted, rejected]."""
        with self._lock:
            rows = []
            for name in class_names:
                mine = [c for c in self.candidates if c.class_name == name]
                accepted = sum(c.accepted for c in mine)
                rows.append([name, len(mine), accepted, len(mine) - accepted])
            return rows

    # ----------------------------------------------------------------------------- export
    def export(
        self,
        out_zip: str | Path,
        *,
        class_names: Sequence[str] | None = None,
        size: int | None = None,
        metadata_file: str = "metadata.csv",
        real_root: Path | None = None,
        real_records: Sequence | None = None,
        real_fit: str = "center-crop",
    ) -> ExportResult:
        """The accepted candidates (and the *train* split's ``real_records`` under ``real_root``) as a .zip.

        Every image is written at ``size`` (default: the generated images' own size), real ones fitted as
        the training loader does (``real_fit``); see gan_studio.app.export for the layout.
        """
        with self._lock:
            names = list(class_names or self.meta.get("class_names") or [])
            accepted = [c for c in self.candidates if c.accepted]
            if not accepted and not real_records:
                raise ValueError(
                    "Nothing to export: accept some candidates first (or include the real images)."
                )
            if size is None:
                if not accepted:
                    raise ValueError("Choose an output size for the real images.")
                with Image.open(self.folder / accepted[0].file) as first:
                    size = first.width
            model = self.meta.get("model") or {  # a curation from before the model was recorded
                "id": self.run_id,
                "generator": self.meta.get("generator"),
                "run_dir": None,
                "step": max((c.step for c in accepted), default=None),
                "resolution": None,
                "z_dim": self.meta.get("z_dim"),
                "noise_mode": "const",
            }
            items = generated_items(accepted, self.folder, names, model=self.run_id, z_dim=model.get("z_dim"))
            if real_records:
                items += real_items(real_records, Path(real_root), names, real_fit)
            with in_use(real_root or self.folder):  # real images of an extracted .zip stay while read
                return export_dataset(
                    out_zip,
                    items,
                    class_names=names,
                    candidates=list(self.candidates),
                    size=size,
                    metadata_file=metadata_file,
                    model=model if accepted else None,
                    thresholds=asdict(self.thresholds),
                )


def set_name(text: str | None) -> str | None:
    """A typed set name in its one spelling (lower case: folders may ignore case), None when blank."""
    name = (text or "").strip().lower()
    if not name:
        return None
    if not _SET_NAME.fullmatch(name):
        raise ValueError(
            f"'{text.strip()}' cannot name a set: use up to 64 letters, digits, '-', '_' or '.', starting with "
            "a letter or digit. Everyone who types the same name shares the set."
        )
    return name


class CurationStores:
    """The curation sets of every run: one store per (run, set), shared by all who ask for the same set.

    Folders: ``ROOT/RUN`` (the set named ``default``), ``ROOT/.sets/NAME/RUN``, and
    ``ROOT/.private/OWNER/RUN`` for a page's private set (``OWNER``: its Gradio connection)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self._lock = threading.Lock()
        self._stores: dict[tuple[str, str | None, str | None], CurationStore] = {}
        self._closed: dict[str, float] = {}  # owner -> when its page closed
        self._pruned = 0.0

    def folder(self, run_id: str, name: str | None = DEFAULT_SET, owner: str | None = None) -> Path:
        run = safe_name(run_id.replace("/", "__"))
        if name == DEFAULT_SET:
            return self.root / run
        if name:
            return self.root / ".sets" / name / run
        if not owner:
            raise ValueError("Name the set to curate (this request comes from no page of its own).")
        return self.root / ".private" / safe_name(owner) / run

    def get(self, run_id: str, name: str | None = DEFAULT_SET, owner: str | None = None) -> CurationStore:
        """The store of ``run_id``'s set ``name``, or of ``owner``'s private set when ``name`` is None."""
        key = (run_id, name, None if name else owner)
        folder = self.folder(run_id, name, owner)
        self._prune_private()
        with self._lock:
            self._closed.pop(owner, None)  # back (a page reconnects after a network hiccup)
            if key not in self._stores:
                self._stores[key] = CurationStore(folder, run_id, name)
            return self._stores[key]

    def closed(self, owner: str | None) -> None:
        """``owner``'s page closed: its private sets go an hour later, unless it comes back (Gradio
        keeps a closed page's state for an hour too, as a dropped connection also reads as a close)."""
        if owner:
            with self._lock:
                self._closed[owner] = time.time()

    def forget(self, owner: str | None) -> None:
        """Drop ``owner``'s private sets, in memory and on disk."""
        if not owner:
            return
        with self._lock:
            self._closed.pop(owner, None)
            for key in [k for k in self._stores if k[1] is None and k[2] == owner]:
                del self._stores[key]
            shutil.rmtree(self.root / ".private" / safe_name(owner), ignore_errors=True)

    def _prune_private(self, now: float | None = None, every_s: float = 600.0) -> None:
        """Remove the private sets of pages closed an hour ago, and those untouched for a day (pages
        that went without saying so); at most once every ``every_s`` seconds."""
        now = time.time() if now is None else now
        if now - self._pruned < every_s:
            return
        self._pruned = now
        with self._lock:
            gone = [owner for owner, when in self._closed.items() if now - when > CLOSED_KEPT_S]
        private = self.root / ".private"
        folders = list(private.iterdir()) if private.is_dir() else []
        gone += [folder.name for folder in folders if now - _last_change(folder) > PRIVATE_MAX_AGE_S]
        for owner in gone:
            self.forget(owner)


def _last_change(folder: Path) -> float:
    """When a private set folder's newest state.json (else the folder) last changed; 0 if gone."""
    times = []
    for path in [*folder.glob(f"*/{STATE_FILE}"), folder]:
        try:
            times.append(path.stat().st_mtime)
        except OSError:
            pass
    return max(times, default=0.0)
