"""The run's train images: which ones (its split, a few-shot subset), decoded once into memory, and
how each step's batch is drawn from them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from gan_studio.data import few_shot_paths, load_labeled_images, load_split, make_split
from gan_studio.data.folder import LabeledImages
from gan_studio.data.split import Split
from gan_studio.training.run_folder import RunFolder


@dataclass
class TrainSet:
    data: LabeledImages  # the train split (or its few-shot subset), decoded once
    split: Split
    report: object  # what loading the whole folder found (skipped and converted files, counts)
    root: Path  # the dataset folder (the demo data or an unpacked zip: where it was made)
    class_names: list[str]
    class_members: list[torch.Tensor]  # per class with train images: their positions in ``data``


def load_train_set(config, root: Path, run_dir: Path, *, progress: bool) -> TrainSet:
    """The train images of ``root``: the run's own split.json once it has one, else ``--split`` or
    a new split, cut to ``--train-per-class`` images per class when set."""
    data = load_labeled_images(
        root,
        config.resolution,
        fit=config.fit,
        min_per_class=config.min_per_class,
        progress=progress,
    )
    split_path = RunFolder(run_dir).split_path
    if split_path.is_file():
        split = load_split(split_path)
    elif config.split_file:
        split = load_split(config.split_file)
    else:
        split = make_split(
            data.records,
            test_fraction=config.test_fraction,
            seed=config.seed,
            group_pattern=config.group_pattern,
        )
    train_idx, _ = split.indices(data.records)
    if config.train_per_class > 0:
        keep = set(
            few_shot_paths([data.records[i] for i in train_idx], config.train_per_class, seed=config.seed)
        )
        train_idx = [i for i in train_idx if data.records[i].path in keep]
    train = data.subset(train_idx)
    class_names = list(data.class_names)
    if len(train) == 0:
        raise ValueError(f"The train split of '{config.data}' is empty; lower --test-fraction.")
    members = [torch.nonzero(train.labels == c).flatten() for c in range(len(class_names))]
    return TrainSet(train, split, data.report, root, class_names, [m for m in members if len(m)])


def check_class_groups(config) -> None:
    if config.class_group_size < 1 or config.batch % config.class_group_size:
        raise ValueError(
            f"--class-groups {config.class_group_size} must divide --batch {config.batch} (e.g. batch 16, groups 4)."
        )


def draw_batch_indices(
    n_images: int, class_members: list[torch.Tensor], batch: int, group_size: int, rng: torch.Generator
) -> torch.Tensor:
    """Random train images; with --class-groups K, K of each of batch/K classes, in a row."""
    k = group_size
    if k == 1:
        return torch.randint(n_images, (batch,), generator=rng)
    n_groups = batch // k
    n_classes = len(class_members)
    order = torch.cat([torch.randperm(n_classes, generator=rng) for _ in range(-(-n_groups // n_classes))])[
        :n_groups
    ]
    picks = [
        class_members[c][torch.randint(len(class_members[c]), (k,), generator=rng)] for c in order.tolist()
    ]
    return torch.cat(picks)


def real_batch(
    images: torch.Tensor, labels: torch.Tensor, idx: torch.Tensor, device, *, flip: bool, channels_last: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The images at ``idx`` in [-1, 1] on ``device``, each mirrored with probability 1/2 (``flip``),
    their labels there and their labels on the host (read without waiting for the device)."""
    batch = images[idx].to(device, non_blocking=True).float().div_(127.5).sub_(1.0)
    host_labels = labels[idx]
    batch_labels = host_labels.to(device)
    if flip:
        mirrored = torch.rand(batch.shape[0], device=device) < 0.5
        batch = torch.where(mirrored[:, None, None, None], batch.flip(3), batch)
    if channels_last:
        batch = batch.contiguous(memory_format=torch.channels_last)
    return batch, batch_labels, host_labels
