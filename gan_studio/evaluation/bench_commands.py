"""CLI command ``augment-bench``; gan_studio.cli registers it via ``register``."""

from __future__ import annotations

import argparse
from pathlib import Path

from gan_studio.utils.numbers import MAX_SEED, count, fraction, number_in

DEFAULT_RATIOS = "0,0.25,0.5,0.75,1.0,1.25"
ARM_HELP = (
    "comma-separated arms: real, real+classic, real+syn, real+classic+syn, real+syn_filtered "
    "(synthetic ones at every --ratios value, or one ratio with @R, e.g. real+syn@0.5), or all"
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "augment-bench",
        help="does synthetic data help? train a classifier per arm from scratch, score it on the real test split",
    )
    p.add_argument(
        "--ckpt", required=True, help="GAN run folder (or a checkpoint/generator folder with --split)"
    )
    p.add_argument("--data", default=None, help="real dataset: folder, .zip or 'demo' (default: the run's)")
    p.add_argument("--out", required=True, type=Path, help="bench folder; rerun into it to resume")
    p.add_argument("--split", type=Path, default=None, help="split.json (default: the run's)")
    p.add_argument("--arms", default="all", help=ARM_HELP)
    p.add_argument(
        "--ratios",
        default=DEFAULT_RATIOS,
        help="synthetic images per real image of each class (0: baselines)",
    )
    p.add_argument(
        "--seeds", type=count(1, 1000), default=3, help="repeats per arm (seeds 0..N-1), for the spread"
    )
    p.add_argument(
        "--train-per-class",
        type=count(1),
        default=None,
        help="real images per class for every arm (default: exactly those the GAN trained on)",
    )
    p.add_argument(
        "--evaluator", type=Path, default=None, help="evaluator folder, needed by real+syn_filtered"
    )
    p.add_argument(
        "--filter-confidence",
        type=fraction(),
        default=0.8,
        help="real+syn_filtered keeps images the evaluator gives their class with at least this probability",
    )
    p.add_argument(
        "--filter-max-factor",
        type=count(1, 10_000),
        default=20,
        help="candidates drawn per filtered image needed, at most",
    )
    p.add_argument(
        "--steps", type=count(1), default=1500, help="optimisation steps per arm (the same for every arm)"
    )
    p.add_argument("--batch", type=count(1, 4096), default=64)
    p.add_argument("--lr", type=number_in(float, 0.0, 1.0), default=2e-3)
    p.add_argument("--arch", default="mobilenet_v3_small", help="classifier: mobilenet_v3_small or resnet18")
    p.add_argument(
        "--truncation",
        type=number_in(float, 0.0, 1.0),
        default=1.0,
        help="latent truncation of the synthetic images",
    )
    p.add_argument(
        "--sample-seed", type=count(0, MAX_SEED), default=0, help="first latent seed of the synthetic images"
    )
    p.add_argument("--precision", choices=["auto", "bf16", "fp32"], default="auto")
    p.add_argument("--device", default="auto", help="auto (cuda > mps > cpu), cpu, cuda, mps")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run_augment_bench_command)


def run_augment_bench_command(args) -> int:
    from tqdm.auto import tqdm

    from gan_studio.evaluation.augment_bench.arms import parse_ratios
    from gan_studio.evaluation.augment_bench.config import AugmentBenchConfig
    from gan_studio.evaluation.augment_bench.report import PLOT_HTML, SUMMARY_MD
    from gan_studio.evaluation.augment_bench.results import RESULTS_JSON
    from gan_studio.evaluation.augment_bench.runner import run_augment_bench

    config = AugmentBenchConfig(
        ckpt=args.ckpt,
        out=args.out,
        data=args.data,
        split=args.split,
        arms=args.arms,
        ratios=parse_ratios(args.ratios),
        seeds=args.seeds,
        train_per_class=args.train_per_class,
        evaluator=args.evaluator,
        filter_confidence=args.filter_confidence,
        filter_max_factor=args.filter_max_factor,
        steps=args.steps,
        batch_size=args.batch,
        lr=args.lr,
        arch=args.arch,
        truncation=args.truncation,
        sample_seed=args.sample_seed,
        device=args.device,
        precision=args.precision,
    )
    doc = run_augment_bench(config, progress=not args.no_progress, log=tqdm.write)
    print((args.out / SUMMARY_MD).read_text(encoding="utf-8"))
    print(f"wrote {args.out / RESULTS_JSON} (+ .csv), {args.out / PLOT_HTML} and {args.out / SUMMARY_MD}")
    if doc["gan_saw_more_real_images"]:
        print("warning: the GAN saw more real images than the classifier arms; see the warning above.")
    return 0
