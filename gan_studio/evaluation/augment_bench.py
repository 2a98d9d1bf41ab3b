"""The augmentation experiment: does adding GAN images to a small real training set help a classifier?

Every arm trains the same classifier from scratch with the same budget (``train_classifier``: the same
steps of the same batch size), on its own training set, and is scored on the same held-out real test split:

    real                    the real training images only
    real+classic            the same, with flip / crop / colour-jitter augmentation
    real+syn@r              real + round(r x real count) synthetic images of every class
    real+classic+syn@r      both
    real+syn_filtered@r     real + synthetic images the evaluator gives their intended class with
                            confidence >= a threshold (more candidates are drawn until the quota is met)

Honesty rules: the arms get the real images the GAN trained on (the run's train_files.json), and the
bench says loudly when the GAN saw more real images than the arms, because synthetic images then carry
real information the real-only baseline never had. Results are rewritten after every finished
(arm, seed), so an interrupted bench keeps what it measured and a rerun into the same folder trains only
the missing pairs. The synthetic images are saved with a manifest, so any arm can be rebuilt exactly.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from gan_studio import sampling
from gan_studio.data import DatasetError, LabeledImages, few_shot_paths, load_labeled_images, load_split
from gan_studio.device import pick_device, resolve_precision
from gan_studio.evaluation.classifier import ARCHITECTURES, EvaluatorClassifier, load_evaluator
from gan_studio.evaluation.train_classifier import evaluate_classifier, train_classifier
from gan_studio.training.checkpoint import write_json_atomic, write_text_atomic
from gan_studio.utils.images import save_png_atomic, to_pil

ARM_KINDS = ("real", "real+classic", "real+syn", "real+classic+syn", "real+syn_filtered")
BASELINE_KINDS = ("real", "real+classic")
DEFAULT_RATIOS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.25)  # +25% .. +125% of the real training set, as in the study
RESULTS_VERSION = 1
SEED_STRIDE = 1_000_000  # bench seed s draws latent seeds sample_seed + s * SEED_STRIDE + i
RESULTS_JSON, RESULTS_CSV = "results.json", "results.csv"
PLOT_HTML, PLOT_PNG, SUMMARY_MD = "accuracy.html", "accuracy.png", "summary.md"
SYNTHETIC_DIR = "synthetic"


# --------------------------------------------------------------------------------------------------
# Arms


@dataclass(frozen=True)
class Arm:
    """One training recipe; ``ratio`` is synthetic images per real image (0 for the baselines)."""

    kind: str
    ratio: float = 0.0

    @property
    def name(self) -> str:
        return self.kind if self.kind in BASELINE_KINDS else f"{self.kind}@{self.ratio:g}"

    @property
    def augment(self) -> str:
        return "classic" if "classic" in self.kind else "none"

    @property
    def synthetic(self) -> bool:
        return self.kind not in BASELINE_KINDS

    @property
    def filtered(self) -> bool:
        return self.kind == "real+syn_filtered"

    @property
    def baseline(self) -> str:
        """The arm this one adds synthetic images to: its curve starts there at ratio 0."""
        return "real+classic" if self.augment == "classic" else "real"


def _parse_ratio(text: str, what: str) -> float:
    try:
        ratio = float(text)
    except ValueError:
        raise ValueError(f"{what}: {text!r} is not a number (write ratios like 0.25 for +25%).") from None
    if not math.isfinite(ratio) or ratio < 0:
        raise ValueError(f"{what}: ratio {text!r} must be a finite number >= 0.")
    return round(ratio, 6)


def parse_ratios(text: str | Iterable[float]) -> tuple[float, ...]:
    """'0,0.25,0.5' (or numbers) -> sorted unique ratios; 0 stands for the baseline arms."""
    items = text.split(",") if isinstance(text, str) else list(text)
    ratios = sorted({_parse_ratio(str(item).strip(), "--ratios") for item in items if str(item).strip()})
    if not ratios:
        raise ValueError("--ratios is empty; pass e.g. --ratios 0,0.25,0.5,0.75,1.0,1.25")
    return tuple(ratios)


def parse_arms(names: str | Sequence[str], ratios: Sequence[float]) -> list[Arm]:
    """Arm names -> arms. A synthetic kind without '@r' runs at every non-zero ratio; 'all' is every kind."""
    if isinstance(names, str):
        names = [name for name in names.split(",") if name.strip()]
    if not names:
        raise ValueError("--arms is empty; pass e.g. --arms real,real+syn or --arms all")
    hint = f"use one of {', '.join(ARM_KINDS)} (synthetic ones optionally with @RATIO, e.g. real+syn@0.5), or all"
    arms: list[Arm] = []
    for raw in names:
        name = raw.strip()
        if name == "all":
            arms += parse_arms(ARM_KINDS, ratios)
            continue
        kind, at, ratio_text = name.partition("@")
        if kind not in ARM_KINDS:
            raise ValueError(f"Unknown arm {name!r}: {hint}.")
        if kind in BASELINE_KINDS:
            if at:
                raise ValueError(
                    f"Arm {kind!r} adds no synthetic images, so it takes no ratio: write '{kind}'."
                )
            arms.append(Arm(kind))
            continue
        chosen = [_parse_ratio(ratio_text, f"arm {name!r}")] if at else [r for r in ratios if r > 0]
        if at and chosen[0] == 0:
            baseline = Arm(kind).baseline
            raise ValueError(f"Arm {name!r} adds no synthetic images; that is the arm '{baseline}'.")
        arms += [Arm(kind, ratio) for ratio in chosen]
    return sorted(set(arms), key=lambda arm: (ARM_KINDS.index(arm.kind), arm.ratio))


def synthetic_quota(ratio: float, real_count: int) -> int:
    """Synthetic images of one class: ratio x its real count, rounded half up."""
    return int(math.floor(ratio * real_count + 0.5))


# --------------------------------------------------------------------------------------------------
# Configuration


@dataclass
class AugmentBenchConfig:
    ckpt: str | os.PathLike
    out: str | os.PathLike
    data: str | None = None  # default: the dataset recorded in the run's run.json
    split: str | os.PathLike | None = None  # default: the run's split.json
    arms: str | Sequence[str] = "all"  # see parse_arms
    ratios: Sequence[float] = DEFAULT_RATIOS
    seeds: int = 3  # bench seeds 0..seeds-1: classifier initialisation, batch order and synthetic draw
    train_per_class: int | None = None  # None: exactly the real images the GAN trained on
    evaluator: str | os.PathLike | None = None  # needed only by real+syn_filtered
    filter_confidence: float = 0.8
    filter_max_factor: int = 20  # at most this many candidates per synthetic image a class needs
    steps: int = 1500
    batch_size: int = 64
    lr: float = 2e-3
    arch: str = "mobilenet_v3_small"
    truncation: float = 1.0
    sample_seed: int = 0
    device: str = "auto"
    precision: str = "auto"

    def validate(self) -> None:
        if self.seeds < 1:
            raise ValueError(f"--seeds must be at least 1, got {self.seeds}")
        if self.train_per_class is not None and self.train_per_class < 1:
            raise ValueError(f"--train-per-class must be at least 1, got {self.train_per_class}")
        if self.steps < 1 or self.batch_size < 1:
            raise ValueError(f"--steps and --batch must be positive, got {self.steps} and {self.batch_size}")
        if not 0 < self.filter_confidence <= 1:
            raise ValueError(f"--filter-confidence must be in (0, 1], got {self.filter_confidence}")
        if self.filter_max_factor < 1:
            raise ValueError(f"--filter-max-factor must be at least 1, got {self.filter_max_factor}")
        if self.arch not in ARCHITECTURES:
            raise ValueError(f"Unknown --arch {self.arch!r}: use one of {', '.join(ARCHITECTURES)}")
        if not 0 < self.truncation <= 1.0:
            raise ValueError(f"--truncation must be in (0, 1], got {self.truncation}")


# --------------------------------------------------------------------------------------------------
# Real images: the arms' training set and the held-out test split


@dataclass
class RealData:
    train: LabeledImages  # the real images every arm trains on
    test: LabeledImages  # the held-out real test split every arm is scored on
    source: str
    split_path: Path
    gan_train_files: set[str] | None  # what the GAN trained on; None when unknown
    gan_train_per_class: int
    warnings: list[str] = field(default_factory=list)

    @property
    def counts(self) -> list[int]:
        return torch.bincount(self.train.labels, minlength=len(self.train.class_names)).tolist()

    @property
    def gan_saw_more_real_images(self) -> bool | None:
        if self.gan_train_files is None:
            return None
        return bool(self.gan_train_files - {r.path for r in self.train.records})


def _read_run(run_dir: Path | None) -> dict:
    if run_dir is None or not (run_dir / "run.json").is_file():
        return {}
    return json.loads((run_dir / "run.json").read_text(encoding="utf-8"))


def _gan_train_files(
    run_dir: Path | None, run: dict, train_records: list, train_paths: set[str]
) -> set[str] | None:
    """The exact real images the GAN trained on: train_files.json, else rebuilt from run.json, else None."""
    listing = run_dir / "train_files.json" if run_dir else None
    if listing is not None and listing.is_file():
        files = json.loads(listing.read_text(encoding="utf-8"))
        if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
            raise DatasetError(f"'{listing}' must be a JSON list of file paths; restore it from the run.")
        return set(files)
    if not run:
        return None
    per_class = int(run.get("config", {}).get("train_per_class") or 0)
    if per_class > 0:
        return set(few_shot_paths(train_records, per_class, seed=int(run["config"].get("seed", 0))))
    return set(train_paths)


def load_real_data(
    config: AugmentBenchConfig, info: sampling.GeneratorInfo, *, progress: bool = True
) -> RealData:
    """Load the dataset at the GAN's resolution and pick the arms' real training images (see module doc)."""
    run = _read_run(info.run_dir)
    run_config, run_data = run.get("config", {}), run.get("data", {})
    source = config.data
    if source is None:
        root = run_data.get("root")
        source = root if root and Path(root).is_dir() else run_data.get("source")
    if not source:
        raise ValueError(
            f"'{config.ckpt}' does not record its dataset (no run.json); pass the real images with --data."
        )
    split_path = Path(config.split) if config.split else None
    if split_path is None and info.run_dir is not None:
        split_path = info.run_dir / "split.json"
    if split_path is None or not split_path.is_file():
        raise FileNotFoundError(
            f"No split.json for '{config.ckpt}'. Pass the split the GAN was trained with: --split RUN_DIR/split.json"
        )
    data = load_labeled_images(
        source,
        info.resolution,
        fit=run_config.get("fit") or run_data.get("fit") or "center-crop",
        min_per_class=int(run_config.get("min_per_class", 2)),
        progress=progress,
    )
    if list(data.class_names) != list(info.class_names):
        raise DatasetError(
            f"The dataset '{source}' has classes {data.class_names} but the generator has {info.class_names}; "
            "pass the dataset it was trained on with --data."
        )
    train_idx, test_idx = load_split(split_path).indices(data.records)
    if not train_idx or not test_idx:
        raise DatasetError(
            f"'{split_path}' leaves no {'train' if not train_idx else 'test'} images for '{source}'."
        )
    train_records = [data.records[i] for i in train_idx]
    train_paths = {r.path for r in train_records}
    gan_per_class = int(run_config.get("train_per_class") or 0)
    run_seed = int(run_config.get("seed", 0))
    gan_files = _gan_train_files(info.run_dir, run, train_records, train_paths)

    if config.train_per_class is None or config.train_per_class == gan_per_class:
        chosen = (gan_files & train_paths) if gan_files is not None else train_paths
    else:
        chosen = set(few_shot_paths(train_records, config.train_per_class, seed=run_seed))
    train = data.subset([i for i in train_idx if data.records[i].path in chosen])
    test = data.subset(test_idx)
    missing = sorted(set(range(len(data.class_names))) - set(train.labels.tolist()))
    if missing:
        raise DatasetError(
            f"The training images of '{source}' have no image of class(es) "
            f"{', '.join(data.class_names[i] for i in missing)}; check '{split_path}' and train_files.json."
        )

    warnings = []
    if gan_files is None:
        warnings.append(
            f"'{config.ckpt}' has no run folder with train_files.json, so the bench cannot check that the GAN "
            "saw only the real images the classifier arms get. Pass the run folder as --ckpt."
        )
    else:
        extra = sorted(gan_files - chosen)
        if extra:
            seen = f"{gan_per_class} per class" if gan_per_class else "the whole train split"
            bench = (
                f"{config.train_per_class} per class" if config.train_per_class else "the whole train split"
            )
            fix = f"--train-per-class {gan_per_class}" if gan_per_class else "without --train-per-class"
            warnings.append(
                f"The GAN saw more real images than the classifier arms: it trained on {len(gan_files)} ({seen}), the "
                f"arms get {len(train)} ({bench}); {len(extra)} image(s) such as '{extra[0]}' reach the synthetic arms "
                f"only through the GAN, so synthetic data leaks extra real information and the synthetic arms look "
                f"better than a true few-shot GAN would make them. For a fair comparison bench {fix}, or train "
                f"the GAN with --train-per-class {config.train_per_class}."
            )
        leaked = sorted(gan_files & {r.path for r in test.records})
        if leaked:
            warnings.append(
                f"The GAN trained on {len(leaked)} image(s) of this test split (e.g. '{leaked[0]}'): the synthetic "
                f"arms are scored on images their generator has seen. Use the run's own split.json."
            )
    return RealData(train, test, str(source), split_path, gan_files, gan_per_class, warnings)


def _evaluator_warnings(evaluator_dir: Path, real: RealData) -> list[str]:
    """The filtering evaluator must not know test images, and ideally no real image the arms lack."""
    own = evaluator_dir / "split.json"
    if not own.is_file():
        return [
            f"'{evaluator_dir}' has no split.json: cannot check which real images the filtering evaluator saw."
        ]
    evaluator_train = set(load_split(own).train)
    warnings = []
    leaked = sorted(evaluator_train & {r.path for r in real.test.records})
    if leaked:
        warnings.append(
            f"The filtering evaluator '{evaluator_dir}' trained on {len(leaked)} test image(s) (e.g. '{leaked[0]}'); "
            f"retrain it with --split {real.split_path} before trusting the real+syn_filtered arms."
        )
    extra = evaluator_train - {r.path for r in real.train.records}
    if extra and not leaked:
        warnings.append(
            f"The filtering evaluator '{evaluator_dir}' trained on {len(extra)} real image(s) the classifier arms do "
            "not get, so real+syn_filtered also benefits from that extra real information."
        )
    return warnings


# --------------------------------------------------------------------------------------------------
# Synthetic images


@dataclass
class Candidate:
    class_index: int
    stream_index: int  # i: the i-th image drawn for its class
    seed: int  # latent seed = first_seed + stream_index
    image: torch.Tensor  # uint8 [3, R, R]
    confidence: float | None  # evaluator probability of the intended class (None: no evaluator)
    passes_filter: bool | None


@dataclass
class SyntheticPool:
    """Every synthetic image one bench seed uses: per class, the stream prefix and the accepted candidates."""

    first_seed: int
    kept: dict[int, list[Candidate]]  # class -> candidates some arm uses, in stream order
    tried: dict[int, int]  # class -> candidates drawn

    def select(self, quotas: dict[int, int], *, filtered: bool) -> list[Candidate]:
        """The first ``quota`` images of each class's stream (filtered: of its accepted candidates)."""
        chosen = []
        for c, quota in quotas.items():
            if filtered:
                chosen += [cand for cand in self.kept.get(c, []) if cand.passes_filter][:quota]
            else:
                chosen += [cand for cand in self.kept.get(c, []) if cand.stream_index < quota]
        return chosen


def draw_synthetic_pool(
    generate_images: Callable[[int, list[int]], torch.Tensor],
    plain_quota: dict[int, int],
    filtered_quota: dict[int, int],
    *,
    first_seed: int,
    confidence: Callable[[torch.Tensor, int], np.ndarray] | None = None,
    threshold: float = 0.8,
    max_factor: int = 20,
) -> SyntheticPool:
    """Draw each class's stream (latent seed first_seed + i) until both quotas are met or the cap is hit.

    The unfiltered arms take the stream's prefix and the filtered ones its first candidates with
    ``confidence >= threshold``, so a filtered set is literally the unfiltered stream, filtered. A class
    draws at most ``max_factor`` candidates per filtered image it needs; a shortfall is left to the caller
    to report (``tried`` and the accepted count tell it).
    """
    if filtered_quota and any(filtered_quota.values()) and confidence is None:
        raise ValueError("Filtered synthetic images need an evaluator to score their confidence.")
    kept: dict[int, list[Candidate]] = {}
    tried: dict[int, int] = {}
    for c in sorted(set(plain_quota) | set(filtered_quota)):
        n_plain, n_filtered = plain_quota.get(c, 0), filtered_quota.get(c, 0)
        cap = max(n_plain, n_filtered * max_factor)
        if cap >= SEED_STRIDE:
            raise ValueError(
                f"Class {c} would draw {cap} candidates, more than the {SEED_STRIDE} seeds a bench seed owns."
            )
        kept[c], drawn, accepted = [], 0, 0
        while drawn < n_plain or (accepted < n_filtered and drawn < cap):
            if drawn < n_plain:
                chunk = n_plain - drawn
            else:
                chunk = min(cap - drawn, max(16, 2 * (n_filtered - accepted)))
            seeds = [first_seed + drawn + j for j in range(chunk)]
            images = generate_images(c, seeds)
            scores = confidence(images, c) if confidence is not None else None
            for j, image in enumerate(images):
                score = float(scores[j]) if scores is not None else None
                passes = None if score is None else score >= threshold
                use_filtered = bool(passes) and accepted < n_filtered
                accepted += use_filtered
                if drawn + j < n_plain or use_filtered:
                    # clone: a view would keep the whole chunk, rejected candidates included, alive
                    kept[c].append(Candidate(c, drawn + j, seeds[j], image.clone(), score, passes))
            drawn += chunk
        tried[c] = drawn
    return SyntheticPool(first_seed, kept, tried)


def _image_file(class_name: str, seed: int) -> str:
    return f"{sampling.safe_name(class_name)}/seed_{seed:06d}.png"


def write_synthetic(
    pool: SyntheticPool,
    selections: dict[str, list[Candidate]],
    folder: Path,
    *,
    class_names: list[str],
    info: sampling.GeneratorInfo,
    truncation: float,
    extra: dict,
) -> Path:
    """PNGs of every selected image plus manifest.json (merged with an earlier run's, which it extends)."""
    manifest_path = folder / "manifest.json"
    old = json.loads(manifest_path.read_text(encoding="utf-8")) if manifest_path.is_file() else {}
    same_draw = {
        "generator": info.source,
        "step": info.step,
        "first_seed": pool.first_seed,
        "truncation": truncation,
    }
    if any(old.get(key) != value for key, value in same_draw.items()):
        old = {}  # an earlier bench in this folder drew other images: start the manifest afresh
    images = {entry["file"]: entry for entry in old.get("images", [])}
    used = {id(cand): cand for chosen in selections.values() for cand in chosen}
    for cand in sorted(used.values(), key=lambda cand: (cand.class_index, cand.stream_index)):
        file = _image_file(class_names[cand.class_index], cand.seed)
        save_png_atomic(to_pil(cand.image), folder / file)
        images[file] = {
            "file": file,
            "class": class_names[cand.class_index],
            "class_index": cand.class_index,
            "seed": cand.seed,
            "stream_index": cand.stream_index,
            "confidence": None if cand.confidence is None else round(cand.confidence, 6),
            "passes_filter": cand.passes_filter,
        }
    arms = {**old.get("arms", {})}
    for arm_name, chosen in selections.items():
        arms[arm_name] = [_image_file(class_names[cand.class_index], cand.seed) for cand in chosen]
    tried = {**old.get("candidates_tried", {})}
    for c, n in pool.tried.items():
        tried[class_names[c]] = max(n, tried.get(class_names[c], 0))
    manifest = {
        **extra,
        **sampling.provenance(info, truncation),
        "first_seed": pool.first_seed,
        "seed_rule": "the i-th image drawn for a class uses latent seed first_seed + i "
        "(python -m gan_studio sample --ckpt RUN --class C --seed first_seed --n i+1 redraws it)",
        "candidates_tried": tried,
        "images": sorted(images.values(), key=lambda e: (e["class_index"], e["stream_index"])),
        "arms": dict(sorted(arms.items())),
    }
    write_json_atomic(manifest_path, manifest)
    return manifest_path


# --------------------------------------------------------------------------------------------------
# Results: rewritten after every arm, resumable


def _digest(paths: Iterable[str]) -> str:
    return hashlib.sha256("\n".join(sorted(paths)).encode()).hexdigest()[:16]


class BenchResults:
    """results.json + results.csv in the bench folder; refuses to mix results of different setups."""

    def __init__(self, out: Path, fingerprint: dict, header: dict, class_names: list[str]):
        self.out, self.class_names = out, class_names
        self.path = out / RESULTS_JSON
        self.doc: dict[str, Any] = {"results": []}
        if self.path.is_file():
            try:
                self.doc = json.loads(self.path.read_text(encoding="utf-8"))
            except json.JSONDecodeError as error:
                raise ValueError(
                    f"'{self.path}' is not valid JSON ({error}); delete it to start the bench over."
                ) from None
            self._check_fingerprint(fingerprint)
        created = self.doc.get("created", time.strftime("%Y-%m-%dT%H:%M:%S"))
        results = self.doc.get("results", [])
        # The union: a run without an evaluator keeps the filter setup of earlier filtered arms.
        fingerprint = {**self.doc.get("fingerprint", {}), **fingerprint}
        self.doc = {"format_version": RESULTS_VERSION, "kind": "gan-studio-augment-bench", **header}
        self.doc.update(fingerprint=fingerprint, created=created, results=results)

    def _check_fingerprint(self, fingerprint: dict) -> None:
        """Keys on both sides must agree; a key only one side has (the filter) constrains nothing yet."""
        old = self.doc.get("fingerprint", {})
        changed = [
            f"{key}: {old[key]!r} -> {value!r}"
            for key, value in fingerprint.items()
            if key in old and old[key] != value
        ]
        if self.doc.get("format_version") != RESULTS_VERSION or changed:
            raise ValueError(
                f"'{self.path}' holds results of a different setup ({'; '.join(changed) or 'another format'}). "
                "Use a new --out folder, or delete that results.json to start over."
            )

    def has(self, arm: str, seed: int) -> bool:
        return any(row["arm"] == arm and row["seed"] == seed for row in self.doc["results"])

    def add(self, row: dict) -> None:
        self.doc["results"] = [
            r for r in self.doc["results"] if (r["arm"], r["seed"]) != (row["arm"], row["seed"])
        ]
        self.doc["results"].append(row)
        self.doc["results"].sort(key=lambda r: (ARM_KINDS.index(r["kind"]), r["ratio"], r["seed"]))
        self.save()

    def save(self) -> None:
        self.doc["updated"] = time.strftime("%Y-%m-%dT%H:%M:%S")
        self.out.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.path, self.doc)
        write_text_atomic(self.out / RESULTS_CSV, results_csv(self.doc["results"], self.class_names))


def results_csv(rows: list[dict], class_names: list[str]) -> str:
    """One line per (arm, seed); per-class accuracies as accuracy[<class>] columns."""
    columns = ["arm", "kind", "ratio", "seed", "accuracy", "n_real", "n_synthetic", "n_test", "quota_met"]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns + [f"accuracy[{name}]" for name in class_names])
    for row in rows:
        per_class = row["per_class_accuracy"]
        writer.writerow([row[c] for c in columns] + [per_class.get(name) for name in class_names])
    return buffer.getvalue()


# --------------------------------------------------------------------------------------------------
# Report: summary table, plot


def summarize(rows: list[dict]) -> list[dict]:
    """Mean and spread (sample std) of test accuracy over seeds per arm, and the change against 'real'."""
    by_arm: dict[str, list[dict]] = {}
    for row in rows:
        by_arm.setdefault(row["arm"], []).append(row)
    summary = []
    for arm, group in by_arm.items():
        accuracies = np.array([r["accuracy"] for r in group], dtype=np.float64)
        summary.append(
            {
                "arm": arm,
                "kind": group[0]["kind"],
                "ratio": group[0]["ratio"],
                "mean": float(accuracies.mean()),
                "std": float(accuracies.std(ddof=1)) if len(accuracies) > 1 else 0.0,
                "n_seeds": len(accuracies),
            }
        )
    summary.sort(key=lambda s: (ARM_KINDS.index(s["kind"]), s["ratio"]))
    real = next((s["mean"] for s in summary if s["arm"] == "real"), None)
    for s in summary:
        s["delta_vs_real"] = None if real is None else s["mean"] - real
    return summary


def accuracy_figure(summary: list[dict], title: str):
    """Test accuracy against synthetic ratio: one curve per synthetic arm, baselines as lines with a band."""
    import plotly.graph_objects as go

    colours = {
        "real": "#444444",
        "real+classic": "#8c564b",
        "real+syn": "#1f77b4",
        "real+classic+syn": "#ff7f0e",
        "real+syn_filtered": "#2ca02c",
    }
    by_arm = {s["arm"]: s for s in summary}
    fig = go.Figure()
    for kind in ARM_KINDS[2:]:
        points = [s for s in summary if s["kind"] == kind]
        if not points:
            continue
        start = by_arm.get(Arm(kind).baseline)
        points = ([{**start, "ratio": 0.0}] if start else []) + points
        fig.add_trace(
            go.Scatter(
                x=[p["ratio"] for p in points],
                y=[p["mean"] for p in points],
                error_y={"type": "data", "array": [p["std"] for p in points], "visible": True},
                customdata=[[p["n_seeds"]] for p in points],
                hovertemplate="+%{x:.0%} synthetic: %{y:.1%} (%{customdata[0]} seeds)<extra>"
                + kind
                + "</extra>",
                mode="lines+markers",
                name=kind,
                line={"color": colours[kind]},
            )
        )
    for kind in BASELINE_KINDS:
        base = by_arm.get(kind)
        if base is None:
            continue
        fig.add_hrect(
            y0=base["mean"] - base["std"],
            y1=base["mean"] + base["std"],
            fillcolor=colours[kind],
            opacity=0.12,
            line_width=0,
        )
        fig.add_hline(
            y=base["mean"],
            line={"color": colours[kind], "dash": "dash"},
            annotation_text=f"{kind}: {base['mean']:.1%} ± {base['std']:.1%}",
            annotation_position="bottom right",
        )
    ratios = sorted({0.0, *(s["ratio"] for s in summary)})
    fig.update_layout(
        title=title,
        template="plotly_white",
        xaxis={
            "title": "synthetic images added (share of the real training set)",
            "tickformat": "+.0%",
            "tickvals": ratios,
        },
        yaxis={"title": "accuracy on the held-out real test split", "tickformat": ".0%"},
        legend={"title": "arm"},
        width=900,
        height=550,
    )
    return fig


def write_plot_png(fig, path: Path) -> str | None:
    """Static PNG through kaleido (which drives a Chrome); returns why it was skipped, or None."""
    try:
        import kaleido  # noqa: F401 - plotly's static export backend
    except ImportError:
        return f"{path.name} skipped: static export needs the kaleido package and a Chrome/Chromium."
    try:
        png = fig.to_image(format="png", scale=2)
    except Exception as error:  # noqa: BLE001 - any kaleido/Chrome failure just means no PNG
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        return f"{path.name} skipped: kaleido could not render it ({reason})."
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(png)
    os.replace(tmp, path)
    return None


def _pct(value: float | None, signed: bool = False) -> str:
    return "n/a" if value is None else f"{value * 100:{'+' if signed else ''}.1f}%"


def summary_markdown(doc: dict, summary: list[dict], report_notes: list[str]) -> str:
    setup = doc["setup"]
    real_set = (
        f"{setup['train_per_class']} per class" if setup["train_per_class"] else "those the GAN trained on"
    )
    lines = [
        "# Augmentation benchmark",
        "",
        f"- generator: `{setup['generator']}` (step {setup['generator_step']})",
        f"- data: `{setup['data']}`, split `{setup['split']}`",
        f"- real training images per arm: {setup['n_real_train']} ({real_set}); "
        f"held-out real test images: {setup['n_test']}",
        f"- classifier: {setup['arch']} from scratch, {setup['steps']} steps x batch {setup['batch_size']} for every arm",
        f"- GAN saw more real images than the arms: {doc['gan_saw_more_real_images']}",
        "",
    ]
    for warning in doc.get("warnings", []):
        lines.append(f"> **Warning:** {warning}")
        lines.append("")
    lines += [
        "| arm | synthetic ratio | test accuracy (mean ± std) | seeds | Δ vs real |",
        "|---|---|---|---|---|",
    ]
    for s in summary:
        ratio = "—" if s["kind"] in BASELINE_KINDS else f"+{s['ratio']:.0%}"
        lines.append(
            f"| {s['arm']} | {ratio} | {_pct(s['mean'])} ± {_pct(s['std'])} | {s['n_seeds']} | "
            f"{_pct(s['delta_vs_real'], signed=True)} |"
        )
    notes = [
        *doc.get("notes", []),
        *(row["note"] for row in doc["results"] if row.get("note")),
        *report_notes,
    ]
    if notes:
        lines += ["", "Notes:", *(f"- {note}" for note in notes)]
    return "\n".join(lines) + "\n"


def write_bench_report(out: Path, doc: dict) -> tuple[list[dict], list[str]]:
    """summary.md, accuracy.html and (with kaleido) accuracy.png; returns the summary and report notes."""
    summary = summarize(doc["results"])
    setup = doc["setup"]
    title = (
        f"Classifier accuracy vs synthetic data — {setup['n_real_train']} real train images, "
        f"{setup['steps']} steps, mean ± std over seeds"
    )
    fig = accuracy_figure(summary, title)
    write_text_atomic(out / PLOT_HTML, fig.to_html(include_plotlyjs=True, full_html=True))  # viewable offline
    notes = [note for note in [write_plot_png(fig, out / PLOT_PNG)] if note]
    write_text_atomic(out / SUMMARY_MD, summary_markdown(doc, summary, notes))
    return summary, notes


# --------------------------------------------------------------------------------------------------
# The experiment


class AugmentBench:
    """One bench folder: set up once, then ``run`` trains every (arm, seed) it does not hold yet."""

    def __init__(
        self, config: AugmentBenchConfig, *, progress: bool = True, log: Callable[[str], None] | None = None
    ):
        config.validate()
        self.config, self.progress = config, progress
        self.log = log or (lambda message: None)
        self.out = Path(config.out)
        self.device = pick_device(config.device)
        self.precision = resolve_precision(config.precision, self.device)
        ckpt = Path(config.ckpt).expanduser().resolve()  # absolute paths in results and manifests
        self.G, self.info = sampling.load_generator(ckpt, device=self.device)
        self.real = load_real_data(config, self.info, progress=progress)
        self.class_names = list(self.info.class_names)
        self.counts = self.real.counts
        self.arms = parse_arms(config.arms, parse_ratios(config.ratios))
        self.warnings, self.notes = list(self.real.warnings), []
        self.evaluator = self._filtering_evaluator()
        if not self.arms:
            raise ValueError("No arm left to run; choose arms with --arms (e.g. --arms real,real+syn).")
        self.batch_size = min(config.batch_size, len(self.real.train))
        if self.batch_size < config.batch_size:
            self.notes.append(
                f"Batch size {self.batch_size} instead of {config.batch_size}: the real training set has only "
                f"{len(self.real.train)} images, and every arm must get the same batch for the same budget."
            )
        self.store = BenchResults(self.out, self._fingerprint(), self._header(), self.class_names)
        for message in self.warnings:
            self.log(f"warning: {message}")
        for message in self.notes:
            self.log(f"note: {message}")

    # ------------------------------------------------------------------------------ set-up
    def _filtering_evaluator(self) -> EvaluatorClassifier | None:
        """The evaluator that scores candidates for the filtered arms; without one those arms are skipped."""
        if not any(arm.filtered for arm in self.arms):
            return None
        path = self.config.evaluator
        if path is None:
            self.notes.append(
                "Skipped the real+syn_filtered arms: filtering needs an evaluator "
                "(--evaluator EVAL_DIR, made by python -m gan_studio train-evaluator)."
            )
            self.arms = [arm for arm in self.arms if not arm.filtered]
            return None
        evaluator = load_evaluator(path, device=self.device)
        if list(evaluator.class_names) != self.class_names:
            raise ValueError(
                f"The evaluator '{path}' knows classes {evaluator.class_names} but the generator has "
                f"{self.class_names}. Train one on the GAN's data: train-evaluator --split RUN_DIR/split.json ..."
            )
        self.warnings += _evaluator_warnings(Path(path), self.real)
        return evaluator

    def _fingerprint(self) -> dict:
        """Everything a measured accuracy depends on besides its arm and seed: resuming must match it."""
        c = self.config
        fingerprint = {
            "generator": str(Path(self.info.source).resolve()),
            "generator_step": self.info.step,
            "resolution": self.info.resolution,
            "real_train": _digest(r.path for r in self.real.train.records),
            "real_test": _digest(r.path for r in self.real.test.records),
            "arch": c.arch,
            "steps": c.steps,
            "batch_size": self.batch_size,
            "lr": c.lr,
            "truncation": c.truncation,
            "sample_seed": c.sample_seed,
        }
        if self.evaluator is not None:
            fingerprint["filter"] = self._filter_setup()
        return fingerprint

    def _filter_setup(self) -> dict | None:
        if self.evaluator is None:
            return None
        c = self.config
        return {
            "evaluator": str(Path(c.evaluator).resolve()),
            "confidence": c.filter_confidence,
            "max_factor": c.filter_max_factor,
        }

    def _header(self) -> dict:
        c, real, names = self.config, self.real, self.class_names
        test_counts = torch.bincount(real.test.labels, minlength=len(names)).tolist()
        return {
            "setup": {
                "generator": self.info.source,
                "generator_step": self.info.step,
                "data": real.source,
                "split": str(real.split_path),
                "resolution": self.info.resolution,
                "train_per_class": c.train_per_class,
                "gan_train_per_class": real.gan_train_per_class,
                "n_real_train": len(real.train),
                "real_train_counts": dict(zip(names, self.counts)),
                "n_test": len(real.test),
                "test_counts": dict(zip(names, test_counts)),
                "arch": c.arch,
                "steps": c.steps,
                "batch_size": self.batch_size,
                "lr": c.lr,
                "truncation": c.truncation,
                "sample_seed": c.sample_seed,
                "filter": self._filter_setup(),
                "device": str(self.device),
                "precision": self.precision,
            },
            "gan_saw_more_real_images": real.gan_saw_more_real_images,
            "warnings": self.warnings,
            "notes": self.notes,
        }

    # ------------------------------------------------------------------------------ the loop
    def run(self) -> dict:
        """Train and score the missing (arm, seed) pairs, then write the report; returns results.json."""
        seeds = range(self.config.seeds)
        done = sum(self.store.has(arm.name, seed) for arm in self.arms for seed in seeds)
        total = len(self.arms) * len(seeds)
        bar = tqdm(total=total, initial=done, desc="augment-bench", unit="arm", disable=not self.progress)
        for seed in seeds:
            todo = [arm for arm in self.arms if not self.store.has(arm.name, seed)]
            if not todo:
                continue
            selections, shortfalls = self._synthetic(seed) if any(a.synthetic for a in todo) else ({}, {})
            for arm in todo:
                row = self._train_arm(arm, seed, selections.get(arm.name, []), shortfalls.get(arm.name))
                self.store.add(row)
                bar.update(1)
                bar.set_postfix(arm=arm.name, seed=seed, acc=f"{row['accuracy']:.3f}")
        bar.close()
        self.store.save()
        _, report_notes = write_bench_report(self.out, self.store.doc)
        for message in report_notes:
            self.log(f"note: {message}")
        return {**self.store.doc, "report_notes": report_notes}

    def _synthetic(self, seed: int) -> tuple[dict[str, list[Candidate]], dict[str, str | None]]:
        """Draw this seed's synthetic images for every synthetic arm, save them, and pick each arm's share."""
        syn_arms = [arm for arm in self.arms if arm.synthetic]
        quotas = {
            arm: {c: synthetic_quota(arm.ratio, n) for c, n in enumerate(self.counts)} for arm in syn_arms
        }

        def largest(filtered: bool) -> dict[int, int]:
            chosen = [quotas[arm] for arm in syn_arms if arm.filtered == filtered]
            return {c: max(q[c] for q in chosen) for c in range(len(self.counts))} if chosen else {}

        pool = draw_synthetic_pool(
            self._generate,
            largest(filtered=False),
            largest(filtered=True),
            first_seed=self.config.sample_seed + seed * SEED_STRIDE,
            confidence=self._confidence if self.evaluator is not None else None,
            threshold=self.config.filter_confidence,
            max_factor=self.config.filter_max_factor,
        )
        selections = {arm.name: pool.select(quotas[arm], filtered=arm.filtered) for arm in syn_arms}
        shortfalls = {
            arm.name: self._shortfall(arm, seed, selections[arm.name], quotas[arm], pool) for arm in syn_arms
        }
        write_synthetic(
            pool,
            selections,
            self.out / SYNTHETIC_DIR / f"seed_{seed}",
            class_names=self.class_names,
            info=self.info,
            truncation=self.config.truncation,
            extra={"bench_seed": seed, "filter": self._filter_setup()},
        )
        return selections, shortfalls

    def _generate(self, class_index: int, seeds: list[int]) -> torch.Tensor:
        return sampling.generate(self.G, [class_index] * len(seeds), seeds, truncation=self.config.truncation)

    def _confidence(self, images: torch.Tensor, class_index: int) -> np.ndarray:
        return self.evaluator.predict_uint8(images, precision=self.precision)[0][:, class_index]

    def _shortfall(
        self, arm: Arm, seed: int, chosen: list[Candidate], quota: dict[int, int], pool: SyntheticPool
    ) -> str | None:
        """Which classes a filtered arm could not fill, and after how many candidates; None when all were."""
        got = torch.bincount(
            torch.tensor([cand.class_index for cand in chosen], dtype=torch.long), minlength=len(self.counts)
        ).tolist()
        short = [f"'{self.class_names[c]}' {got[c]}/{q}" for c, q in quota.items() if got[c] < q]
        if not short:
            return None
        shown = ", ".join(short[:4]) + (f" and {len(short) - 4} more classes" if len(short) > 4 else "")
        return (
            f"{arm.name}, seed {seed}: only {len(chosen)} of {sum(quota.values())} synthetic images reached "
            f"confidence >= {self.config.filter_confidence} within --filter-max-factor "
            f"{self.config.filter_max_factor} (at most {max(pool.tried.values())} candidates per class); short: "
            f"{shown}. The arm trained on the images found; a better GAN or evaluator, a lower "
            "--filter-confidence or a higher --filter-max-factor fills it."
        )

    def _train_arm(self, arm: Arm, seed: int, chosen: list[Candidate], shortfall: str | None) -> dict:
        """Train one classifier from scratch on real (+ chosen synthetic) images; score it on the real test split."""
        if shortfall:
            self.log(f"note: {shortfall}")
        real, c = self.real, self.config
        images, labels = real.train.images, real.train.labels
        if chosen:
            images = torch.cat([images, torch.stack([cand.image for cand in chosen])])
            labels = torch.cat(
                [labels, torch.tensor([cand.class_index for cand in chosen], dtype=torch.long)]
            )
        started = time.perf_counter()
        model = train_classifier(
            images,
            labels,
            class_names=self.class_names,
            arch=c.arch,
            resolution=self.info.resolution,
            steps=c.steps,
            batch_size=self.batch_size,
            lr=c.lr,
            augment=arm.augment,
            seed=seed,
            precision=self.precision,
            device=self.device,
            progress=self.progress,
        )
        scores = evaluate_classifier(model, real.test.images, real.test.labels, precision=self.precision)
        per_class = torch.bincount(labels[len(real.train) :], minlength=len(self.counts)).tolist()
        return {
            "arm": arm.name,
            "kind": arm.kind,
            "ratio": arm.ratio,
            "seed": seed,
            "augment": arm.augment,
            "filtered": arm.filtered,
            "n_real": len(real.train),
            "n_synthetic": len(chosen),
            "synthetic_per_class": dict(zip(self.class_names, per_class)),
            "quota_met": not shortfall,
            "note": shortfall,
            "synthetic_manifest": f"{SYNTHETIC_DIR}/seed_{seed}/manifest.json" if arm.synthetic else None,
            "accuracy": scores["accuracy"],
            "per_class_accuracy": scores["per_class_accuracy"],
            "n_test": scores["n"],
            "confusion_matrix": scores["confusion_matrix"],
            "seconds": round(time.perf_counter() - started, 1),
        }


def run_augment_bench(
    config: AugmentBenchConfig, *, progress: bool = True, log: Callable[[str], None] | None = None
) -> dict:
    """Run the experiment into ``config.out`` (resuming what is there); returns the results.json document.

    ``log`` receives warnings and notes as soon as they are known; they are saved in the results too.
    """
    return AugmentBench(config, progress=progress, log=log).run()
