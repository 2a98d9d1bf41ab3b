"""The experiment: set a bench folder up once, then train and score every (arm, seed) it lacks.

Every arm trains the same classifier from scratch with the same budget (``train_classifier``: the same
steps of the same batch size) and is scored on the same held-out real test split.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from gan_studio import sampling
from gan_studio.device import pick_device, resolve_precision
from gan_studio.evaluation.augment_bench.arms import Arm, parse_arms, parse_ratios, synthetic_quota
from gan_studio.evaluation.augment_bench.config import AugmentBenchConfig
from gan_studio.evaluation.augment_bench.real_data import evaluator_warnings, load_real_data
from gan_studio.evaluation.augment_bench.report import write_bench_report
from gan_studio.evaluation.augment_bench.results import BenchResults
from gan_studio.evaluation.augment_bench.synthetic import (
    SEED_STRIDE,
    SYNTHETIC_DIR,
    Candidate,
    SyntheticPool,
    draw_synthetic_pool,
    write_synthetic,
)
from gan_studio.models.classifier import EvaluatorClassifier, load_evaluator
from gan_studio.models.classifier_fit import evaluate_classifier, train_classifier


def _digest(paths: Iterable[str]) -> str:
    """A short fingerprint of a set of image paths: a resumed bench must train and test on the same images."""
    return hashlib.sha256("\n".join(sorted(paths)).encode()).hexdigest()[:16]


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
        self.warnings += evaluator_warnings(Path(path), self.real)
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
            model=sampling.model_provenance(self.G, self.info),
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
