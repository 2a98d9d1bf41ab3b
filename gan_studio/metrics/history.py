"""Evaluations side by side: every ``evaluate`` keeps an entry of its own, and none is ever overwritten.

An evaluation folder (what ``evaluate --out OUT`` and the app's Evaluate tab write)::

    OUT/
      metrics.json, report.md, samples.png, memorization_pairs.png, c2st_photo_likeness.png
                              a copy of the newest evaluation, where readers before the history look
                              (``package --report``, the model registry, older app versions)
      evaluations/
        index.json            one summary row per entry, oldest first (for people and other programs)
        20261205T101530Z-n50/ one evaluation: the same files; the name is its UTC time and n per class
        ...

A folder written before the history existed (metrics.json at the top, no ``evaluations/``) reads as a
history of one entry; the next ``evaluate`` into it first copies that evaluation into an entry of its
own. A package's metrics.json reads the same way, and a package is never written to.

Every entry's ``meta`` records what its figures were computed on: generated and real images per class,
which real images (the train fold of which split), the generator's step, the evaluator and the seeds.
``computed_on`` turns that into the label shown beside every figure, so two evaluations of one model
(200 per class here, 20 per class in the Embeddings tab) read as two measurements, not a contradiction.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gan_studio.utils.atomic import write_json_atomic

HISTORY_DIR = "evaluations"
INDEX_FILE = "index.json"
METRICS_FILE = "metrics.json"
REPORT_FILE = "report.md"
REPORT_FILES = (METRICS_FILE, REPORT_FILE, "samples.png", "memorization_pairs.png", "c2st_photo_likeness.png")
INDEX_VERSION = 1
HEADLINE = (  # (key in headline_metrics, metric, key in its result)
    ("cas", "cas", "value"),
    ("fid", "fid", "value"),
    ("kid", "kid", "value"),
    ("memorization", "memorization", "value"),
    ("precision", "prdc", "precision"),
    ("recall", "prdc", "recall"),
    ("coverage", "prdc", "coverage"),
    ("c2st", "c2st", "value"),
)


def headline_metrics(metrics_json: dict | None) -> dict[str, float]:
    """The few numbers worth a glance (CAS, FID, KID, near-copies, precision, recall, coverage, c2st)."""
    results = (metrics_json or {}).get("metrics", {})
    out: dict[str, float] = {}
    for key, metric, field in HEADLINE:
        value = (results.get(metric) or {}).get(field)
        if isinstance(value, (int, float)):
            out[key] = float(value)
    return out


def utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _per_class(counts: Any, total: Any, n_classes: int | None) -> str | None:
    """'140' (every class alike), '112-140' (a range), or None when the files do not say."""
    if isinstance(counts, dict) and counts:
        low, high = min(counts.values()), max(counts.values())
        return str(low) if low == high else f"{low}-{high}"
    if isinstance(total, int) and n_classes:
        return str(total // n_classes) if total % n_classes == 0 else f"~{total / n_classes:.0f}"
    return None


def _evaluator_name(path: Any) -> str:
    """'vise-parts/evaluator' for .../vise-parts/evaluator; the folder's name otherwise."""
    if not path:
        return "?"
    p = Path(str(path))
    return f"{p.parent.name}/{p.name}" if p.name == "evaluator" and p.parent.name else p.name


def sample_size(meta: dict, n_classes: int | None = None) -> str:
    """Short: '200 generated + 140 real train per class' (what the figures were computed on)."""
    generated = meta.get("n_per_class")
    if meta.get("filter"):
        generated = f"{generated} filtered"
    made = f" (given: {Path(str(meta['images'])).name})" if meta.get("images") else ""
    real = _per_class(meta.get("real_train_per_class"), meta.get("n_real_train"), n_classes)
    if real is None:
        real_text = f"{meta['n_real_train']} real train images" if meta.get("n_real_train") else "real train"
        return f"{generated} generated per class{made} + {real_text}"
    return f"{generated} generated{made} + {real} real train per class"


def computed_on(meta: dict, n_classes: int | None = None) -> str:
    """The label every figure carries: sample sizes, which real images, step, evaluator, seeds."""
    split = Path(str(meta.get("split") or "split.json")).name
    if meta.get("split_sha1"):
        split += f" ({meta['split_sha1'][:8]})"
    parts = [
        sample_size(meta, n_classes),
        f"real: the train fold of {split}",
        f"step {meta['step']}" if meta.get("step") not in (None, -1) else "step unknown",
        f"evaluator {_evaluator_name(meta.get('evaluator'))}",
    ]
    if meta.get("seeds"):
        parts.append(f"seeds {meta['seeds']}")
    return " · ".join(parts)


def read_metrics(folder: Path) -> dict | None:
    try:
        data = json.loads((Path(folder) / METRICS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def entry_id(meta: dict) -> str:
    """'20261205T101530Z-n50': when it was made (UTC when it says so) and generated images per class."""
    stamp = re.sub(r"[^0-9TZ]", "", str(meta.get("created") or "")) or "undated"
    kind = "-filtered" if meta.get("filter") else "-given" if meta.get("images") else ""
    return f"{stamp}-n{meta.get('n_per_class', '?')}{kind}"


@dataclass(frozen=True)
class Evaluation:
    """One evaluation: its files' folder, what it was computed on, its headline figures."""

    id: str
    folder: Path
    meta: dict
    headline: dict[str, float]
    origin: str = "history"  # "history": an entry; "top": a folder's own metrics.json (older, or a package's)

    @classmethod
    def read(cls, folder: Path, origin: str = "history") -> Evaluation | None:
        data = read_metrics(folder)
        if data is None:
            return None
        meta = data.get("meta") or {}
        ident = folder.name if origin == "history" else meta.get("evaluation_id") or entry_id(meta)
        return cls(ident, Path(folder), meta, headline_metrics(data), origin)

    @property
    def created(self) -> str:
        return str(self.meta.get("created") or "")

    @property
    def when(self) -> str:
        """'2026-12-05 10:15 UTC' (or the local time an older file recorded, as it recorded it)."""
        created = self.created
        if not created:
            return "undated"
        shown = created.replace("T", " ").rstrip("Z")[:16]
        return f"{shown} UTC" if created.endswith("Z") else shown

    def computed_on(self, n_classes: int | None = None) -> str:
        return computed_on(self.meta, n_classes)

    def row(self) -> dict:
        """Its summary in index.json."""
        return {
            "id": self.id,
            "created": self.created,
            "step": self.meta.get("step"),
            "generator": self.meta.get("generator"),
            "evaluator": self.meta.get("evaluator"),
            "n_per_class": self.meta.get("n_per_class"),
            "n_real_train": self.meta.get("n_real_train"),
            "seeds": self.meta.get("seeds"),
            "filter": self.meta.get("filter_rule"),
            "computed_on": self.computed_on(),
            "metrics": self.headline,
            "folder": f"{HISTORY_DIR}/{self.id}" if self.origin == "history" else ".",
        }


def order(evaluation: Evaluation) -> tuple:
    """Oldest first: by the recorded time, then (two in one second) by the exact one, then by name."""
    exact = evaluation.meta.get("created_unix")
    return (evaluation.created.rstrip("Z"), exact if isinstance(exact, (int, float)) else 0.0, evaluation.id)


def entries(out: Path) -> list[Evaluation]:
    """The evaluations kept in ``out/evaluations/``, oldest first."""
    root = Path(out) / HISTORY_DIR
    if not root.is_dir():
        return []
    found = [Evaluation.read(folder) for folder in sorted(root.iterdir()) if folder.is_dir()]
    return sorted((e for e in found if e is not None), key=order)


def history(out: Path) -> list[Evaluation]:
    """Every evaluation in ``out``, oldest first: its entries, and its top metrics.json when that is
    not a copy of one of them (written before the history existed, or a package's own)."""
    kept = entries(out)
    top = Evaluation.read(Path(out), origin="top")
    if top is not None and top.meta.get("evaluation_id") not in {e.id for e in kept}:
        kept = sorted([top, *kept], key=order)
    return kept


def keep_earlier(out: Path) -> Evaluation | None:
    """Copy a top-level evaluation that no entry holds (written before the history) into an entry."""
    out = Path(out)
    top = Evaluation.read(out, origin="top")
    if top is None or top.meta.get("evaluation_id") in {e.id for e in entries(out)}:
        return None
    folder = _claim(out, entry_id(top.meta))
    for name in REPORT_FILES[1:]:
        if (out / name).is_file():
            shutil.copy2(out / name, folder / name)
    data = read_metrics(out) or {}
    data["meta"] = {**data.get("meta", {}), "evaluation_id": folder.name}
    write_json_atomic(folder / METRICS_FILE, data)
    write_index(out)
    return Evaluation.read(folder)


def _claim(out: Path, ident: str) -> Path:
    """A new, empty entry folder named ``ident`` (or ``ident-2``, ...): never one that exists."""
    root = Path(out) / HISTORY_DIR
    root.mkdir(parents=True, exist_ok=True)
    for k in range(1, 1000):
        folder = root / (ident if k == 1 else f"{ident}-{k}")
        try:
            folder.mkdir()
        except FileExistsError:
            continue
        return folder
    raise FileExistsError(f"'{root}' already holds 999 evaluations named {ident}; pick another --out.")


def new_entry(out: Path, meta: dict) -> Path:
    """The folder for a new evaluation of ``meta`` (its ``evaluation_id`` is set to the folder's name).
    An earlier evaluation at the top of ``out`` is kept in an entry of its own first."""
    keep_earlier(out)
    meta.setdefault("created", utc_now())
    meta.setdefault("created_unix", time.time())  # orders two evaluations made within one second
    folder = _claim(out, entry_id(meta))
    meta["evaluation_id"] = folder.name
    return folder


def publish(out: Path, folder: Path) -> None:
    """Make entry ``folder`` the newest at the top of ``out`` (for older readers), and rewrite the index.
    A file the entry lacks (no memorisation pairs this time) goes from the top too, so the top never
    mixes two evaluations."""
    out = Path(out)
    for name in REPORT_FILES:
        source, target = folder / name, out / name
        if source.is_file():
            tmp = target.with_name(f".{name}.tmp")
            shutil.copy2(source, tmp)
            tmp.replace(target)
        else:
            target.unlink(missing_ok=True)
    write_index(out)


def write_index(out: Path) -> None:
    rows = [e.row() for e in entries(out)]
    write_json_atomic(
        Path(out) / HISTORY_DIR / INDEX_FILE, {"format_version": INDEX_VERSION, "evaluations": rows}
    )
