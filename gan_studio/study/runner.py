"""``study``: does adding synthetic images help a classifier? The whole experiment in one resumable folder.

1. Split the real images into train / validation / test (or take a GAN run's split). The validation
   fold only stops training; only the final scoring sees the test images.
2. Train the GAN with a recipe on the arms' real training images (or reuse ``--ckpt``), and an
   evaluator on the same images (it filters the synthetic candidates).
3. Train every arm (``arms.py``) for every seed under one convergence rule (``fit.py``), score it on
   the test images, and write the results after each (arm, seed), so an interrupted study resumes
   where it stopped.
4. Compare each arm with its reference seed by seed (``stats.py``) and write report.md,
   results.json, results.csv and a plot (``report.py``).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from gan_studio import sampling
from gan_studio.data import (
    DatasetError,
    Split,
    few_shot_paths,
    load_labeled_images,
    load_split,
    make_split,
    save_split,
)
from gan_studio.device import pick_device, resolve_precision
from gan_studio.evaluation.run_record import gan_train_files
from gan_studio.metrics.candidates import FilterRule, NoveltyScorer, SyntheticPool
from gan_studio.models.classifier import ARCHITECTURES, load_evaluator, save_evaluator
from gan_studio.models.classifier_fit import evaluate_classifier
from gan_studio.study.arms import DEFAULT_RATIOS, ArmSpec, default_arms, plan_arms, select_arms
from gan_studio.study.fit import (
    ConvergenceRule,
    FitResult,
    TrainingMix,
    fit_to_convergence,
    learning_threshold,
)
from gan_studio.study.realism import realism_check
from gan_studio.training.checkpoint import read_json, write_json_atomic
from gan_studio.training.run_folder import RunFolder

RESULTS_VERSION = 1
SEED_STRIDE = 1_000_000  # study seed s draws latent seeds (s + 1) * SEED_STRIDE + class * 100_000 + i
EVALUATOR_SEED = 10_000
SPLIT_FILE, VALIDATION_FILE, RESULTS_JSON = "split.json", "validation.json", "results.json"


@dataclass
class StudyConfig:
    data: str
    out: str
    recipe: str | None = None  # train the GAN with this recipe on the arms' images ...
    ckpt: str | None = None  # ... or reuse this run (its split and training images decide the arms')
    gan_overrides: dict = field(default_factory=dict)  # recipe options to override (e.g. steps)
    evaluator: str | None = None  # reuse a filtering evaluator (else one is trained)
    split: str | None = None
    test_fraction: float = 0.3
    group_pattern: str | None = None
    train_per_class: int = 0  # 0: the whole train split (minus the validation fold)
    val_per_class: int = 10
    seeds: int = 3
    arch: str = "mobilenet_v3_small"
    stem_stride: int = 2
    arms: str = "all"
    ratios: Sequence[float] = DEFAULT_RATIOS
    budget_hours: float | None = None
    rule: ConvergenceRule = field(default_factory=ConvergenceRule)
    filter: FilterRule = field(default_factory=FilterRule)
    truncation: float = 1.0
    c2st_steps: int = 300  # realism check of the synthetic images (0: skip)
    device: str = "auto"
    precision: str = "auto"

    def validate(self) -> None:
        if (self.recipe is None) == (self.ckpt is None):
            raise ValueError(
                "study needs exactly one of --recipe (train a GAN) or --ckpt (reuse a trained one)."
            )
        if self.seeds < 1:
            raise ValueError(f"--seeds must be at least 1, got {self.seeds}")
        if self.train_per_class < 0 or self.val_per_class < 1:
            raise ValueError("--train-per-class must be >= 0 and --val-per-class >= 1.")
        if self.arch not in ARCHITECTURES:
            raise ValueError(f"Unknown --arch {self.arch!r}: use one of {', '.join(ARCHITECTURES)}")
        if self.budget_hours is not None and self.budget_hours <= 0:
            raise ValueError(f"--budget-hours must be positive, got {self.budget_hours}")
        if not self.ratios or any(r <= 0 for r in self.ratios):
            raise ValueError(f"--ratios must be positive numbers, got {list(self.ratios)}")
        if self.c2st_steps < 0:
            raise ValueError(f"--c2st-steps must be >= 0 (0 skips the realism check), got {self.c2st_steps}")
        if not 0 < self.truncation <= 1:
            raise ValueError(f"--truncation must be in (0, 1], got {self.truncation}")
        self.rule.validate()
        self.filter.validate()


class StudyStopped(Exception):
    """The study stopped before its end (a stop signal during the GAN's training); what is done is kept."""


def _digest(paths) -> str:
    return hashlib.sha256("\n".join(sorted(paths)).encode()).hexdigest()[:16]


@dataclass
class Folds:
    """The real images of a study, each a LabeledImages subset, and how they were chosen."""

    train: object
    val: object
    test: object
    notes: list[str]


class _Pools:
    """One synthetic pool per study seed, made on first use (seed s draws its own latent seeds)."""

    def __init__(self, G, evaluator, folds: Folds, config: StudyConfig, precision: str):
        self.G, self.evaluator, self.config, self.precision = G, evaluator, config, precision
        _, train_features = evaluator.predict_uint8(folds.train.images, precision=precision)
        self.novelty = NoveltyScorer(train_features, folds.train.labels.numpy())
        self.pools: dict[int, SyntheticPool] = {}

    def _generate(self, c: int, seeds: list[int]) -> torch.Tensor:
        return sampling.generate(
            self.G, [c] * len(seeds), [s + c * 100_000 for s in seeds], truncation=self.config.truncation
        )

    def for_seed(self, seed: int) -> SyntheticPool:
        if seed not in self.pools:
            self.pools[seed] = SyntheticPool(
                self._generate,
                self.evaluator,
                self.novelty,
                self.config.filter,
                first_seed=(seed + 1) * SEED_STRIDE,
                precision=self.precision,
            )
        return self.pools[seed]

    def summary(self, class_names) -> dict:
        return {
            str(seed): {class_names[c]: v for c, v in pool.summary().items()}
            for seed, pool in self.pools.items()
        }


class Study:
    """One study folder: ``run`` does whatever is not done yet and rewrites the report."""

    def __init__(
        self, config: StudyConfig, *, progress: bool = True, log: Callable[[str], None] | None = None
    ):
        config.validate()
        self.config, self.progress = config, progress
        self.log = log or (lambda message: print(message, flush=True))
        self.out = Path(config.out).expanduser()
        self.out.mkdir(parents=True, exist_ok=True)
        self.device = pick_device(config.device)
        self.precision = resolve_precision(config.precision, self.device)
        self.notes: list[str] = []
        self.timings: dict[str, float] = {}

    # ------------------------------------------------------------------------------ set-up
    def _resolution_and_fit(self) -> tuple[int, str, dict]:
        if self.config.ckpt:
            _, info = sampling.load_generator(self.config.ckpt, device="cpu")
            run = (
                read_json(RunFolder(info.run_dir).run_path)
                if info.run_dir and RunFolder(info.run_dir).run_path.is_file()
                else {}
            )
            return info.resolution, run.get("config", {}).get("fit", "center-crop"), run
        from gan_studio.training.recipes import load_recipe

        recipe = load_recipe(self.config.recipe)
        resolved = recipe.resolve({"data": self.config.data, **self.config.gan_overrides}).config
        return int(resolved.resolution), resolved.fit, {}

    def _folds(self, data, run: dict) -> Folds:
        """train / validation / test, saved to split.json and validation.json on the first run."""
        cfg, notes = self.config, []
        records = data.records
        split_path, val_path = self.out / SPLIT_FILE, self.out / VALIDATION_FILE
        if split_path.is_file() and val_path.is_file():
            split = load_split(split_path)
            val_paths = set(read_json(val_path)["validation"])
            notes += read_json(val_path).get("notes", [])
        else:
            if cfg.ckpt:
                split, val_paths, notes = self._folds_from_run(data, run)
            else:
                split, val_paths, notes = self._new_folds(data)
            save_split(split, split_path)
            write_json_atomic(val_path, {"validation": sorted(val_paths), "notes": notes})
        train_idx, test_idx = split.indices(records)
        position = {r.path: i for i, r in enumerate(records)}
        missing = [p for p in val_paths if p not in position]
        if missing:
            raise DatasetError(
                f"'{val_path}' lists {len(missing)} image(s) missing from '{cfg.data}' (e.g. '{missing[0]}'); "
                "restore them or start the study in a new --out folder."
            )
        val_idx = sorted(position[p] for p in val_paths)
        folds = Folds(data.subset(train_idx), data.subset(val_idx), data.subset(test_idx), notes)
        for name, fold in (("train", folds.train), ("validation", folds.val), ("test", folds.test)):
            absent = sorted(set(range(len(data.class_names))) - set(fold.labels.tolist()))
            if absent:
                raise DatasetError(
                    f"The {name} fold of '{cfg.data}' has no image of class(es) "
                    f"{', '.join(data.class_names[i] for i in absent)}: add images, or lower --val-per-class."
                )
        return folds

    def _pick_validation(self, records, per_class: int) -> set[str]:
        by_class: dict[str, int] = {}
        for r in records:
            by_class[r.class_name] = by_class.get(r.class_name, 0) + 1
        smallest = min(by_class.values())
        take = max(1, min(per_class, smallest // 2)) if smallest > 1 else 0
        return set(few_shot_paths(records, take, seed=7919)) if take else set()

    def _new_folds(self, data) -> tuple[Split, set[str], list[str]]:
        cfg = self.config
        split = (
            load_split(cfg.split)
            if cfg.split
            else make_split(
                data.records, test_fraction=cfg.test_fraction, seed=0, group_pattern=cfg.group_pattern
            )
        )
        train_idx, _ = split.indices(data.records)
        train_records = [data.records[i] for i in train_idx]
        notes = []
        if cfg.train_per_class:
            chosen = set(few_shot_paths(train_records, cfg.train_per_class, seed=0))
            rest = [r for r in train_records if r.path not in chosen]
            val = self._pick_validation(rest, cfg.val_per_class) if rest else set()
            if not val:
                val = self._pick_validation([r for r in train_records if r.path in chosen], cfg.val_per_class)
                chosen -= val
                notes.append(
                    "The train split had no spare images: the validation fold was carved from the few-shot set."
                )
            else:
                notes.append(
                    f"Validation: up to {cfg.val_per_class} per class of the train split's images outside the "
                    f"{cfg.train_per_class}-per-class training set (never seen by the GAN, the evaluator or any arm)."
                )
        else:
            val = self._pick_validation(train_records, cfg.val_per_class)
            chosen = {r.path for r in train_records} - val
            notes.append(
                f"Validation: up to {cfg.val_per_class} per class carved from the train split; nothing trains on them."
            )
        study_split = Split(
            train=sorted(chosen),
            test=list(split.test),
            seed=split.seed,
            test_fraction=split.test_fraction,
            group_pattern=split.group_pattern,
        )
        return study_split, val, notes

    def _folds_from_run(self, data, run: dict) -> tuple[Split, set[str], list[str]]:
        cfg = self.config
        _, info = sampling.load_generator(cfg.ckpt, device="cpu")
        split_file = (
            Path(cfg.split) if cfg.split else (RunFolder(info.run_dir).split_path if info.run_dir else None)
        )
        if split_file is None and RunFolder(cfg.ckpt).split_path.is_file():
            split_file = RunFolder(cfg.ckpt).split_path  # a package keeps its run's split
        if split_file is None or not split_file.is_file():
            raise FileNotFoundError(
                f"No split.json for '{cfg.ckpt}': pass the split the GAN was trained with (--split RUN/split.json)."
            )
        split = load_split(split_file)
        train_idx, _ = split.indices(data.records)
        train_records = [data.records[i] for i in train_idx]
        train_paths = {r.path for r in train_records}
        run_dir = info.run_dir
        if run_dir is None and RunFolder(cfg.ckpt).train_files_path.is_file():
            run_dir = Path(cfg.ckpt)  # a package: its train_files.json lists the GAN's images
        gan_files = gan_train_files(run_dir, run, train_records, train_paths)
        notes = []
        if gan_files is None:
            gan_files = train_paths
            notes.append(f"'{cfg.ckpt}' does not list its training images; assumed the whole train split.")
        gan_files &= train_paths
        chosen = set(gan_files)
        if cfg.train_per_class:
            chosen = set(
                few_shot_paths([r for r in train_records if r.path in gan_files], cfg.train_per_class, seed=0)
            )
            if chosen != gan_files:
                notes.append(
                    f"The GAN trained on {len(gan_files)} real images, the arms get {len(chosen)}: synthetic "
                    "images carry real information the real-only arms lack."
                )
        spare = [r for r in train_records if r.path not in gan_files]
        val = self._pick_validation(spare, cfg.val_per_class) if spare else set()
        val_classes = {r.label for r in spare if r.path in val}
        if val and val_classes == set(range(len(data.class_names))):
            notes.append("Validation: train-split images the GAN never saw.")
        else:
            val = self._pick_validation([r for r in train_records if r.path in chosen], cfg.val_per_class)
            chosen -= val
            notes.append(
                "Validation: carved from the GAN's own training images (it saw them; they only decide when "
                "an arm stops, and no arm trains on them)."
            )
        study_split = Split(
            train=sorted(chosen),
            test=list(split.test),
            seed=split.seed,
            test_fraction=split.test_fraction,
            group_pattern=split.group_pattern,
        )
        return study_split, val, notes

    def _generator(self):
        cfg = self.config
        if cfg.ckpt:
            return sampling.load_generator(Path(cfg.ckpt).expanduser().resolve(), device=self.device)
        from gan_studio.training.recipes import load_recipe, run_recipe

        gan_dir = self.out / "gan"
        overrides = {
            **cfg.gan_overrides,
            "data": cfg.data,
            "out": str(gan_dir),
            "split_file": str((self.out / SPLIT_FILE).resolve()),
            "train_per_class": 0,  # split.json's train list is exactly the arms' images
        }
        self.log(f"[study] training the GAN with recipe '{cfg.recipe}' in {gan_dir}")
        t0 = time.perf_counter()
        run_recipe(load_recipe(cfg.recipe), overrides=overrides, progress=self.progress)
        self.timings["gan_s"] = time.perf_counter() - t0
        G, info = sampling.load_generator(gan_dir, device=self.device)
        run = read_json(RunFolder(gan_dir).run_path)
        if int(info.step) < int(run["config"]["steps"]):
            raise StudyStopped(
                f"The GAN in '{gan_dir}' stopped at step {info.step} of {run['config']['steps']}; "
                "run the same study command again to continue it."
            )
        return G, info

    def _evaluator(self, folds: Folds):
        cfg = self.config
        if cfg.evaluator:
            evaluator = load_evaluator(cfg.evaluator, device=self.device)
            own = Path(cfg.evaluator) / "split.json"
            if own.is_file():
                leaked = set(load_split(own).train) & {r.path for r in folds.test.records}
                if leaked:
                    raise ValueError(
                        f"The evaluator '{cfg.evaluator}' trained on {len(leaked)} of this study's test images; "
                        "leave out --evaluator and the study trains its own."
                    )
            return evaluator, f"given: {cfg.evaluator}"
        path = self.out / "evaluator"
        if (path / "model.safetensors").is_file():
            return load_evaluator(
                path, device=self.device
            ), "trained by this study (real+classic, convergence rule)"
        self.log("[study] training the filtering evaluator on the arms' real images")
        fit = fit_to_convergence(
            TrainingMix(folds.train.images, folds.train.labels, augment="classic"),
            folds.val.images,
            folds.val.labels,
            class_names=folds.train.class_names,
            rule=cfg.rule,
            arch=cfg.arch,
            stem_stride=cfg.stem_stride,
            seed=EVALUATOR_SEED,
            precision=cfg.precision,
            device=self.device,
            progress=self.progress,
            desc="evaluator",
        )
        save_evaluator(
            fit.model,
            path,
            training={
                "role": "study filtering evaluator",
                "steps": fit.steps,
                "best_step": fit.best_step,
                "val_accuracy": fit.best_val_accuracy,
                "n_train": len(folds.train),
            },
        )
        save_split(
            Split(
                train=[r.path for r in folds.train.records],
                test=[r.path for r in folds.test.records],
                seed=0,
                test_fraction=0.0,
                group_pattern=None,
            ),
            path / "split.json",
        )
        return fit.model, "trained by this study (real+classic, convergence rule)"

    # ------------------------------------------------------------------------------ arms
    def _quotas(self, folds: Folds, ratio: float) -> dict[int, int]:
        counts = torch.bincount(folds.train.labels, minlength=len(folds.train.class_names)).tolist()
        return {c: int(math.floor(ratio * n + 0.5)) for c, n in enumerate(counts)}

    def _synthetic(
        self, pool: SyntheticPool, folds: Folds, arm: ArmSpec
    ) -> tuple[torch.Tensor, torch.Tensor, bool]:
        images, labels, met = [], [], True
        for c, quota in self._quotas(folds, arm.ratio).items():
            if quota == 0:
                continue
            positions, ok = pool.select(c, quota, arm.filter)
            met &= ok
            if len(positions):
                images.append(pool.images(c, positions))
                labels.append(torch.full((len(positions),), c, dtype=torch.long))
        r = folds.train.resolution
        if not images:
            return torch.zeros(0, 3, r, r, dtype=torch.uint8), torch.zeros(0, dtype=torch.long), met
        return torch.cat(images), torch.cat(labels), met

    def _fit(self, mix: TrainingMix, folds: Folds, seed: int, desc: str, init_state=None) -> FitResult:
        cfg = self.config
        return fit_to_convergence(
            mix,
            folds.val.images,
            folds.val.labels,
            class_names=folds.train.class_names,
            rule=cfg.rule,
            arch=cfg.arch,
            stem_stride=cfg.stem_stride,
            seed=seed,
            precision=cfg.precision,
            device=self.device,
            init_state=init_state,
            progress=self.progress,
            desc=desc,
        )

    def _train_arm(self, arm: ArmSpec, seed: int, folds: Folds, pool: SyntheticPool | None) -> dict:
        t0 = time.perf_counter()
        augment = "classic" if arm.classic else "none"
        syn_images = syn_labels = None
        met = True
        if arm.synthetic:
            syn_images, syn_labels, met = self._synthetic(pool, folds, arm)
        steps, pre = 0, None
        if arm.use == "pretrain" and syn_images is not None and len(syn_images):
            pre = self._fit(
                TrainingMix(syn_images, syn_labels, augment=augment), folds, seed, f"{arm.name} (pre-train)"
            )
            steps += pre.steps
            mix = TrainingMix(folds.train.images, folds.train.labels, augment=augment)
            fit = self._fit(mix, folds, seed, f"{arm.name} (fine-tune)", init_state=pre.model.state_dict())
        else:
            mix = TrainingMix(
                folds.train.images,
                folds.train.labels,
                syn_images,
                syn_labels,
                augment=augment,
                synthetic_weight=arm.weight if arm.use == "weighted" else 1.0,
                synthetic_share=arm.share if arm.use == "share" else None,
            )
            fit = self._fit(mix, folds, seed, arm.name)
        steps += fit.steps
        scores = evaluate_classifier(
            fit.model, folds.test.images, folds.test.labels, precision=self.precision
        )
        return {
            "arm": arm.name,
            "seed": seed,
            "accuracy": scores["accuracy"],
            "per_class_accuracy": scores["per_class_accuracy"],
            "n_real": len(folds.train),
            "n_synthetic": 0 if syn_images is None else len(syn_images),
            "quota_met": met,
            "steps": steps,
            "best_step": fit.best_step,
            "pretrain_steps": pre.steps if pre else None,
            "stopped_by": fit.stopped_by,
            "val_accuracy": fit.best_val_accuracy,
            "learned": fit.best_val_accuracy > learning_threshold(folds.val.labels),
            "val_curve": [[h["step"], round(h["val_accuracy"], 4)] for h in fit.history],
            "seconds": round(time.perf_counter() - t0, 1),
        }

    def _seconds_per_fit(self, folds: Folds, rows: list[dict]) -> float:
        """Measured from finished fits when there are any, else a short timed probe of the step."""
        timed = [r["seconds"] / (2 if r.get("pretrain_steps") else 1) for r in rows if r.get("seconds")]
        if timed:
            return float(np.mean(timed))
        cfg = self.config
        probe_rule = ConvergenceRule(
            **{**cfg.rule.to_dict(), "max_steps": 10, "eval_every": 10, "min_steps": 10}
        )
        t0 = time.perf_counter()
        fit_to_convergence(
            TrainingMix(folds.train.images, folds.train.labels, augment="classic"),
            folds.val.images,
            folds.val.labels,
            class_names=folds.train.class_names,
            rule=probe_rule,
            arch=cfg.arch,
            stem_stride=cfg.stem_stride,
            precision=cfg.precision,
            device=self.device,
        )
        per_step = (time.perf_counter() - t0) / 10
        expected = min(cfg.rule.max_steps, cfg.rule.min_steps + 3 * cfg.rule.patience * cfg.rule.eval_every)
        return per_step * expected

    def _fingerprint(self, info, folds: Folds) -> dict:
        c = self.config
        return {
            "generator": str(Path(info.source).resolve()),
            "generator_step": info.step,
            "train": _digest(r.path for r in folds.train.records),
            "validation": _digest(r.path for r in folds.val.records),
            "test": _digest(r.path for r in folds.test.records),
            "arch": c.arch,
            "stem_stride": c.stem_stride,
            "rule": c.rule.to_dict(),
            "filter": asdict(c.filter),
            "truncation": c.truncation,
        }

    def _load_rows(self, fingerprint: dict) -> list[dict]:
        path = self.out / RESULTS_JSON
        if not path.is_file():
            return []
        try:
            doc = read_json(path)
        except Exception as error:  # noqa: BLE001 - a damaged results file: say which and what to do
            raise ValueError(
                f"'{path}' is not readable ({error}); move it away to start the study's arms afresh."
            ) from None
        if doc.get("fingerprint") != fingerprint:
            changed = sorted(k for k in fingerprint if doc.get("fingerprint", {}).get(k) != fingerprint[k])
            raise ValueError(
                f"'{self.out}' holds a study with other settings ({', '.join(changed)} differ); use a new --out "
                "folder, or the same options as before to resume it."
            )
        return list(doc.get("rows", []))

    def run(self) -> dict:
        from gan_studio.study.report import write_report

        cfg = self.config
        resolution, fit_mode, run = self._resolution_and_fit()
        data = load_labeled_images(cfg.data, resolution, fit=fit_mode, progress=self.progress)
        folds = self._folds(data, run)
        self.notes += folds.notes
        self.log(
            f"[study] {len(folds.train)} train, {len(folds.val)} validation, {len(folds.test)} test images"
        )
        G, info = self._generator()
        if list(info.class_names) != list(data.class_names):
            raise DatasetError(
                f"The generator knows classes {info.class_names}, the dataset '{cfg.data}' has {data.class_names}."
            )
        evaluator, evaluator_note = self._evaluator(folds)
        fingerprint = self._fingerprint(info, folds)
        rows = self._load_rows(fingerprint)
        done = {(r["arm"], r["seed"]) for r in rows}

        arms = select_arms(default_arms(cfg.ratios), cfg.arms)
        budget_s = None if cfg.budget_hours is None else cfg.budget_hours * 3600
        plan = plan_arms(
            arms, cfg.seeds, seconds_per_fit=self._seconds_per_fit(folds, rows), done=done, budget_s=budget_s
        )
        for line in plan.describe():
            self.log(f"[study] {line}")
        pools = _Pools(G, evaluator, folds, cfg, self.precision)
        header = self._header(fingerprint, info, folds, data.class_names, resolution, evaluator_note, plan)

        def save() -> None:
            doc = {**header, "rows": rows, "pools": pools.summary(data.class_names)}
            summary, comparisons = write_report(self.out, doc)
            write_json_atomic(
                self.out / RESULTS_JSON, {**doc, "summary": summary, "comparisons": comparisons}
            )

        self._train_arms(arms, plan, folds, pools, rows, done, budget_s, header, save)
        if rows and cfg.c2st_steps:
            header["realism"] = self._realism(folds, pools.for_seed(0))
        save()
        return read_study(self.out)

    def _header(self, fingerprint, info, folds: Folds, class_names, resolution, evaluator_note, plan) -> dict:
        """What results.json says about the study's set-up, before its rows."""
        cfg = self.config
        return {
            "version": RESULTS_VERSION,
            "fingerprint": fingerprint,
            "setup": {
                "data": str(cfg.data),
                "gan": cfg.ckpt or f"recipe {cfg.recipe} ({self.out / 'gan'})",
                "generator_step": info.step,
                "resolution": resolution,
                "n_train": len(folds.train),
                "n_validation": len(folds.val),
                "n_test": len(folds.test),
                "train_per_class": cfg.train_per_class,
                "class_names": list(class_names),
                "arch": cfg.arch,
                "stem_stride": cfg.stem_stride,
                "seeds": cfg.seeds,
                "rule": cfg.rule.to_dict(),
                "filter": asdict(cfg.filter),
                "evaluator": evaluator_note,
                "device": str(self.device),
                "precision": self.precision,
                "budget_hours": cfg.budget_hours,
            },
            "arms": [arm.to_dict() for arm in plan.kept],
            "cut": [arm.name for arm in plan.cut],
            "notes": self.notes,
        }

    def _train_arms(self, arms, plan, folds: Folds, pools, rows, done, budget_s, header, save) -> None:
        """Train what the plan keeps, seed by seed within a priority (an interrupted study holds paired
        seeds of its key comparison), re-planning after every fit with the measured cost so that a
        cautious first estimate does not cut arms that turn out to fit (and a slower machine cuts more)."""
        seeds = self.config.seeds
        started = time.perf_counter()
        remaining = sum(1 for a in plan.kept for s in range(seeds) if (a.name, s) not in done)
        bar = tqdm(total=remaining, desc="study arms", unit="fit", disable=not self.progress)
        while True:
            todo = sorted(
                ((arm, s) for arm in plan.kept for s in range(seeds) if (arm.name, s) not in done),
                key=lambda item: (item[0].priority, item[1]),
            )
            if not todo:
                break
            arm, seed = todo[0]
            bar.set_postfix_str(f"{arm.name} seed {seed}")
            row = self._train_arm(arm, seed, folds, pools.for_seed(seed) if arm.synthetic else None)
            rows.append(row)
            done.add((arm.name, seed))
            self.log(
                f"[study] {arm.name} seed {seed}: test accuracy {row['accuracy']:.4f} "
                f"({row['steps']} steps, stopped by {row['stopped_by']}, {row['seconds']:.0f} s)"
            )
            bar.update(1)
            left = None if budget_s is None else max(0.0, budget_s - (time.perf_counter() - started))
            seconds = self._seconds_per_fit(folds, rows)
            new_plan = plan_arms(arms, seeds, seconds_per_fit=seconds, done=done, budget_s=left)
            if [a.name for a in new_plan.kept] != [a.name for a in plan.kept]:
                plan = new_plan
                header["arms"] = [a.to_dict() for a in plan.kept]
                header["cut"] = [a.name for a in plan.cut]
                bar.total = bar.n + sum(1 for a in plan.kept for s in range(seeds) if (a.name, s) not in done)
                bar.refresh()
                for line in plan.describe():
                    self.log(f"[study] re-planned: {line}")
            save()
        bar.close()

    def _realism(self, folds: Folds, pool: SyntheticPool) -> dict:
        """c2st of the real training images against one synthetic image per real one (seed 0's draw)."""
        synthetic = {}
        for name, kind in (
            ("synthetic (unfiltered)", "none"),
            ("synthetic (filtered)", "confidence+novelty"),
        ):
            images, labels, _ = self._synthetic(pool, folds, ArmSpec(False, 1.0, kind))
            synthetic[name] = (images, labels)
        self.log("[study] realism: c2st of the real training images against the synthetic ones")
        return realism_check(
            self.out, folds.train, folds.val, synthetic, steps=self.config.c2st_steps, device=self.device
        )


def run_study(
    config: StudyConfig, *, progress: bool = True, log: Callable[[str], None] | None = None
) -> dict:
    return Study(config, progress=progress, log=log).run()


def study_path(out: str | os.PathLike) -> Path:
    return Path(out).expanduser() / RESULTS_JSON


def read_study(out: str | os.PathLike) -> dict:
    return json.loads(study_path(out).read_text(encoding="utf-8"))
