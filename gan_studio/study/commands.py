"""CLI command ``study``; gan_studio.cli registers it via ``register``."""

from __future__ import annotations

import argparse
import sys

from gan_studio.metrics.candidates import FilterRule
from gan_studio.models.classifier import ARCHITECTURES
from gan_studio.study.arms import DEFAULT_RATIOS
from gan_studio.study.fit import ConvergenceRule
from gan_studio.utils.numbers import count, fraction, number_in

_RULE, _FILTER = ConvergenceRule(), FilterRule()


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "study",
        help="does it help? train the GAN (or reuse one), then classifiers on real and real+synthetic images "
        "for several seeds, each until it converges, and report paired differences with 95%% intervals",
        description="Every arm (real, real+classic, real+synthetic and real+classic+synthetic at +20/75/125/200%%, "
        "filtered and unfiltered, and the levers: confidence-only filtering, pre-training, down-weighting, a fixed "
        "synthetic share per batch) trains until its validation accuracy stops improving. Run the same command "
        "again to resume an interrupted study.",
    )
    p.add_argument(
        "--data", required=True, help="dataset folder (one subfolder per class), a .zip of one, or 'demo'"
    )
    p.add_argument("--out", required=True, help="study folder (report.md, results.json, results.csv, plot)")
    gan = p.add_mutually_exclusive_group(required=True)
    gan.add_argument(
        "--recipe", help="train the GAN with this recipe (built-in name or .toml) on the arms' images"
    )
    gan.add_argument(
        "--ckpt", help="reuse this GAN run or package; its split and training images decide the arms'"
    )
    p.add_argument("--gan-steps", type=count(1), default=None, help="override the recipe's total GAN steps")
    p.add_argument(
        "--evaluator", default=None, help="filtering evaluator to reuse (default: the study trains one)"
    )
    p.add_argument("--split", default=None, help="split.json to use (default: the run's, or a new one)")
    p.add_argument(
        "--test-fraction", type=fraction(0.0, 0.95), default=0.3, help="held-out share when making a split"
    )
    p.add_argument("--group-pattern", default=None, help="regex on file names: one group stays on one side")
    p.add_argument(
        "--train-per-class",
        type=count(0),
        default=0,
        help="few-shot: real training images per class (0: all)",
    )
    p.add_argument(
        "--val-per-class", type=count(1), default=10, help="validation images per class (stop rule only)"
    )
    p.add_argument(
        "--seeds", type=count(1, 1000), default=3, help="seeds per arm (a positive answer must hold over 3)"
    )
    p.add_argument("--arch", choices=ARCHITECTURES, default="mobilenet_v3_small")
    p.add_argument("--stem-stride", type=int, choices=[1, 2], default=2, help="first convolution's stride")
    p.add_argument("--arms", default="all", help="'all' or comma-separated arm names (references come along)")
    p.add_argument(
        "--ratios", default=",".join(f"{r:g}" for r in DEFAULT_RATIOS), help="synthetic images per real image"
    )
    p.add_argument(
        "--budget-hours",
        type=number_in(float, 0.0, 10_000.0),
        default=None,
        help="hours for the classifier arms (the GAN and the evaluator come first): the most important "
        "arms are kept whole, re-planned after every fit with its measured cost; the report says what was cut",
    )
    p.add_argument("--max-steps", type=count(1), default=_RULE.max_steps, help="step cap of every arm")
    p.add_argument(
        "--eval-every", type=count(1), default=_RULE.eval_every, help="steps between validation checks"
    )
    p.add_argument(
        "--patience", type=count(1), default=_RULE.patience, help="checks without improvement before stopping"
    )
    p.add_argument("--min-steps", type=count(0), default=_RULE.min_steps, help="no stop before this step")
    p.add_argument("--batch", type=count(1, 4096), default=_RULE.batch_size)
    p.add_argument("--lr", type=number_in(float, 0.0, 1.0), default=_RULE.lr)
    p.add_argument("--filter-confidence", type=fraction(), default=_FILTER.confidence)
    p.add_argument("--filter-novelty", type=number_in(float, 0.0, 100.0), default=_FILTER.novelty)
    p.add_argument("--truncation", type=number_in(float, 0.0, 1.0), default=1.0)
    p.add_argument(
        "--c2st-steps",
        type=count(0),
        default=300,
        help="realism check: steps of the fresh classifier telling real training images from the synthetic "
        "ones (c2st, in report.md); 0 skips it",
    )
    p.add_argument("--device", default="auto")
    p.add_argument("--precision", choices=["auto", "bf16", "fp32"], default="auto")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run_study_command)


def _ratios(text: str) -> tuple[float, ...]:
    try:
        ratios = tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise ValueError(
            f"--ratios must be comma-separated numbers such as 0.2,0.75,1.25,2, got {text!r}"
        ) from None
    return ratios


def run_study_command(args) -> int:
    from gan_studio.study.report import headline
    from gan_studio.study.runner import StudyConfig, StudyStopped, run_study

    config = StudyConfig(
        data=args.data,
        out=args.out,
        recipe=args.recipe,
        ckpt=args.ckpt,
        gan_overrides={"steps": args.gan_steps} if args.gan_steps else {},
        evaluator=args.evaluator,
        split=args.split,
        test_fraction=args.test_fraction,
        group_pattern=args.group_pattern,
        train_per_class=args.train_per_class,
        val_per_class=args.val_per_class,
        seeds=args.seeds,
        arch=args.arch,
        stem_stride=args.stem_stride,
        arms=args.arms,
        ratios=_ratios(args.ratios),
        budget_hours=args.budget_hours,
        rule=ConvergenceRule(
            max_steps=args.max_steps,
            eval_every=args.eval_every,
            patience=args.patience,
            min_steps=args.min_steps,
            batch_size=args.batch,
            lr=args.lr,
        ),
        filter=FilterRule(confidence=args.filter_confidence, novelty=args.filter_novelty),
        truncation=args.truncation,
        c2st_steps=args.c2st_steps,
        device=args.device,
        precision=args.precision,
    )
    try:
        doc = run_study(config, progress=not args.no_progress)
    except StudyStopped as stopped:
        print(f"stopped: {stopped}", file=sys.stderr)
        return 130
    print(headline(doc["comparisons"], doc.get("summary")).replace("**", ""))
    print(f"report: {args.out}/report.md")
    return 0
