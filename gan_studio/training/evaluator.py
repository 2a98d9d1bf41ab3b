"""The ``train-evaluator`` command: train the evaluator classifier on a dataset's train split.

It sits in the training layer because a recipe's own guide is trained with it (gan_studio.training.phases);
gan_studio.evaluation.commands registers it with the CLI.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

from gan_studio.models.classifier import ARCHITECTURES
from gan_studio.utils.numbers import MAX_SEED, count, fraction, number_in

DEFAULT_EVALUATOR_STEPS = 1000


def add_train_evaluator_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train-evaluator",
        help="train the evaluator classifier from scratch on a dataset's train split (its features feed the metrics)",
    )
    p.add_argument(
        "--data", required=True, help="dataset folder (one subfolder per class), a .zip of one, or 'demo'"
    )
    p.add_argument(
        "--out", required=True, type=Path, help="evaluator folder (config.json, model.safetensors, ...)"
    )
    p.add_argument("--arch", choices=ARCHITECTURES, default="mobilenet_v3_small")
    p.add_argument(
        "--res", type=count(16, 1024), default=64, help="input resolution (use the GAN's resolution)"
    )
    p.add_argument(
        "--stem-stride",
        choices=["auto", "1", "2"],
        default="auto",
        help="stride of the first convolution; auto: 1 up to 64 px (more detail, 4x the compute), else 2",
    )
    p.add_argument("--fit", choices=["center-crop", "pad", "stretch"], default="center-crop")
    p.add_argument(
        "--split",
        type=Path,
        default=None,
        help="split.json to use, e.g. a GAN run's (default: make one like train does)",
    )
    p.add_argument(
        "--test-fraction", type=fraction(0.0, 0.95), default=0.3, help="held-out share when making a split"
    )
    p.add_argument(
        "--group-pattern", default=None, help="regex on file names, as for train, when making a split"
    )
    p.add_argument(
        "--seed", type=count(0, MAX_SEED), default=0, help="seeds the split (like train) and the training"
    )
    p.add_argument(
        "--train-per-class",
        type=count(0),
        default=0,
        help="train on this many images per class, the same ones `train --train-per-class N --seed S` uses "
        "(few-shot experiments: the filtering evaluator then knows no more real images than the GAN)",
    )
    p.add_argument(
        "--steps", type=count(1), default=DEFAULT_EVALUATOR_STEPS, help="optimisation steps (the budget)"
    )
    p.add_argument("--batch", type=count(1, 4096), default=64)
    p.add_argument("--lr", type=number_in(float, 0.0, 1.0), default=2e-3)
    p.add_argument("--augment", choices=["classic", "none"], default="classic")
    p.add_argument("--weights", type=Path, default=None, help="local torchvision state dict to start from")
    p.add_argument("--precision", choices=["auto", "bf16", "fp32"], default="auto")
    p.add_argument("--device", default="auto", help="auto (cuda > mps > cpu), cpu, cuda, mps")
    p.add_argument("--min-per-class", type=count(1), default=2)
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run_train_evaluator)


def _print_classifier_scores(scores: dict, class_names: list[str]) -> None:
    from gan_studio.metrics.report import format_value

    print(f"test accuracy: {format_value(scores['accuracy'], percent=True)} on {scores['n']} held-out images")
    width = max(len(name) for name in class_names)
    for name in class_names:
        acc, n = scores["per_class_accuracy"][name], scores["per_class_count"][name]
        print(f"  {name:<{width}}  {format_value(acc, percent=True):>6}  (n={n})")
    print("confusion matrix (rows: true class, columns: predicted, in the order above):")
    for name, row in zip(class_names, scores["confusion_matrix"]):
        print(f"  {name:<{width}}  " + " ".join(f"{v:4d}" for v in row))


def run_train_evaluator(args) -> int:
    from gan_studio.data import (
        DatasetError,
        few_shot_paths,
        load_labeled_images,
        load_split,
        make_split,
        save_split,
    )
    from gan_studio.device import pick_device, resolve_precision
    from gan_studio.models.classifier import default_stem_stride, save_evaluator
    from gan_studio.models.classifier_fit import evaluate_classifier, train_classifier

    if args.weights is not None and not args.weights.is_file():
        raise FileNotFoundError(
            f"--weights '{args.weights}' does not exist; pass a torchvision state-dict file."
        )
    progress = not args.no_progress
    data = load_labeled_images(
        args.data, args.res, fit=args.fit, min_per_class=args.min_per_class, progress=progress
    )
    if args.split is not None:
        split = load_split(args.split)
    else:
        split = make_split(
            data.records, test_fraction=args.test_fraction, seed=args.seed, group_pattern=args.group_pattern
        )
    train_idx, test_idx = split.indices(data.records)
    if not train_idx:
        raise DatasetError(
            f"The split leaves no training images for '{args.data}'; use a smaller --test-fraction."
        )
    if args.train_per_class:
        # The same subset the GAN run draws (same records, same seed), recorded in the evaluator's own
        # split.json so that leak checks downstream see exactly what it learned from.
        chosen = set(
            few_shot_paths([data.records[i] for i in train_idx], args.train_per_class, seed=args.seed)
        )
        train_idx = [i for i in train_idx if data.records[i].path in chosen]
        split = replace(split, train=sorted(chosen))
    train, test = data.subset(train_idx), data.subset(test_idx)
    device = pick_device(args.device)
    precision = resolve_precision(args.precision, device)
    stem_stride = default_stem_stride(args.res) if args.stem_stride == "auto" else int(args.stem_stride)
    print(
        f"training {args.arch} from {'--weights ' + str(args.weights) if args.weights else 'scratch'} on {len(train)} "
        f"train images ({len(test)} held out), {len(data.class_names)} classes, {args.res}px, {device}, {precision}"
    )
    model = train_classifier(
        train.images,
        train.labels,
        class_names=data.class_names,
        arch=args.arch,
        resolution=args.res,
        steps=args.steps,
        batch_size=args.batch,
        lr=args.lr,
        augment=args.augment,
        seed=args.seed,
        precision=precision,
        device=device,
        init_weights=args.weights,
        stem_stride=stem_stride,
        progress=progress,
    )
    scores = evaluate_classifier(model, test.images, test.labels, progress=progress)
    training = {
        "data": {"source": str(args.data), "root": str(data.root), "resolution": args.res, "fit": args.fit},
        "split": {
            "file": "split.json",
            "from": str(args.split) if args.split else None,
            "n_train": len(train),
            "n_test": len(test),
            "seed": split.seed,
            "test_fraction": split.test_fraction,
            "train_per_class": args.train_per_class or None,
        },
        "arch": args.arch,
        "stem_stride": stem_stride,
        "init_weights": str(args.weights) if args.weights else None,
        "steps": args.steps,
        "batch_size": args.batch,
        "lr": args.lr,
        "augment": args.augment,
        "seed": args.seed,
        "precision": precision,
        "test_accuracy": scores["accuracy"],
        "per_class_accuracy": scores["per_class_accuracy"],
        "per_class_test_count": scores["per_class_count"],
        "confusion_matrix": scores["confusion_matrix"],
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    save_split(split, args.out / "split.json")
    save_evaluator(model, args.out, training=training)
    _print_classifier_scores(scores, data.class_names)
    print(f"saved the evaluator to {args.out}")
    return 0


def train_evaluator_parser() -> argparse.ArgumentParser:
    """A parser of ``train-evaluator ARGS`` alone (what a recipe's own guide runs)."""
    parser = argparse.ArgumentParser(prog="python -m gan_studio")
    add_train_evaluator_parser(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    return parser
