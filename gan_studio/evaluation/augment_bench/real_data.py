"""The real images: the arms' training set, the held-out test split, and warnings about leaks.

Honesty rules: the arms get the real images the GAN trained on (the run's train_files.json), and the
bench says loudly when the GAN saw more real images than the arms, because synthetic images then carry
real information the real-only baseline never had.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from gan_studio import sampling
from gan_studio.data import DatasetError, LabeledImages, few_shot_paths, load_labeled_images, load_split
from gan_studio.evaluation.augment_bench.config import AugmentBenchConfig
from gan_studio.evaluation.run_record import gan_train_files, read_run
from gan_studio.training.run_folder import RunFolder


@dataclass
class RealData:
    """The real images of one bench, and what is known about the images the GAN saw."""

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


def load_real_data(
    config: AugmentBenchConfig, info: sampling.GeneratorInfo, *, progress: bool = True
) -> RealData:
    """Load the dataset at the GAN's resolution and pick the arms' real training images (see module doc)."""
    run = read_run(info.run_dir)
    run_config, run_data = run.get("config", {}), run.get("data", {})
    source = _dataset_source(config, run_data)
    split_path = _split_file(config, info)
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
    gan_files = gan_train_files(info.run_dir, run, train_records, train_paths)

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
    warnings = _leak_warnings(config, gan_files, chosen, gan_per_class, len(train), test)
    return RealData(train, test, str(source), split_path, gan_files, gan_per_class, warnings)


def _dataset_source(config: AugmentBenchConfig, run_data: dict) -> str:
    """--data, else the dataset run.json records (its extracted folder while that still exists)."""
    source = config.data
    if source is None:
        root = run_data.get("root")
        source = root if root and Path(root).is_dir() else run_data.get("source")
    if not source:
        raise ValueError(
            f"'{config.ckpt}' does not record its dataset (no run.json); pass the real images with --data."
        )
    return source


def _split_file(config: AugmentBenchConfig, info: sampling.GeneratorInfo) -> Path:
    """--split, else the run's split.json: the arms must be scored on images the GAN never trained on."""
    split_path = Path(config.split) if config.split else None
    if split_path is None and info.run_dir is not None:
        split_path = RunFolder(info.run_dir).split_path
    if split_path is None or not split_path.is_file():
        raise FileNotFoundError(
            f"No split.json for '{config.ckpt}'. Pass the split the GAN was trained with: --split RUN_DIR/split.json"
        )
    return split_path


def _leak_warnings(
    config: AugmentBenchConfig,
    gan_files: set[str] | None,
    chosen: set[str],
    gan_per_class: int,
    n_train: int,
    test: LabeledImages,
) -> list[str]:
    """Say when the GAN saw real images the arms lack, or test images: both flatter the synthetic arms."""
    if gan_files is None:
        return [
            f"'{config.ckpt}' has no run folder with train_files.json, so the bench cannot check that the GAN "
            "saw only the real images the classifier arms get. Pass the run folder as --ckpt."
        ]
    warnings = []
    extra = sorted(gan_files - chosen)
    if extra:
        seen = f"{gan_per_class} per class" if gan_per_class else "the whole train split"
        bench = f"{config.train_per_class} per class" if config.train_per_class else "the whole train split"
        fix = f"--train-per-class {gan_per_class}" if gan_per_class else "without --train-per-class"
        warnings.append(
            f"The GAN saw more real images than the classifier arms: it trained on {len(gan_files)} ({seen}), the "
            f"arms get {n_train} ({bench}); {len(extra)} image(s) such as '{extra[0]}' reach the synthetic arms "
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
    return warnings


def evaluator_warnings(evaluator_dir: Path, real: RealData) -> list[str]:
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
