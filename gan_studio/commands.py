"""Core commands: demo-data, train, sample."""

from __future__ import annotations

import argparse
from pathlib import Path

from gan_studio.training.options import add_train_arguments, explicit_options
from gan_studio.utils.numbers import MAX_SEED, count, number_in

TRAIN_DESCRIPTION = """\
Train a class-conditional FastGAN. Either give the options by hand, or follow a recipe, which
describes a whole training (options, the run's own guide classifier, phases) and runs every phase
in one command:

  python -m gan_studio train --recipe vise-parts-64 --data demo --out runs/vp --split checkpoints/vise-parts/split.json
  python -m gan_studio train --recipe photos-cpu-64 --data /data/my_parts --out runs/mine --dry-run

Which recipe (step times on a 2-core CPU; a GPU is far faster):
  recipe         res     runs on   time                      for
  tiny           32 px   CPU       seconds                   smoke tests
  photos-cpu-64  64 px   CPU       ~1.2 h (8000 steps)       your own photos, on a laptop or small server
  vise-parts-64  64 px   CPU       1.4 h (10000 steps)       reproducing checkpoints/vise-parts
  gpu-64         64 px   GPU       untimed; minutes expected photos-cpu-64 at batch 64 (2000 steps)
  gpu-128        128 px  GPU       ~1-2 h on one GPU         your own photos, more detail
  gpu-256        256 px  GPU       a few hours on one GPU    your own photos, full detail

With --recipe, an option given on the command line replaces the recipe's value from step 0; the
recipe's phases still change phase options (mode/guide options) at their steps. Running the same
command again continues the run from its latest checkpoint (no --resume needed), with the options it
was started with. --dry-run prints the resolved options (recipe, command line or default) and the
phase plan, and writes nothing.
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo-data", help="write the built-in procedural vise-parts dataset")
    p.add_argument("out_dir", type=Path)
    p.add_argument("--per-class", type=count(1, 100_000), default=200)
    p.add_argument("--size", type=count(16, 1024), default=128)
    p.add_argument("--seed", type=count(0, MAX_SEED), default=0)
    p.add_argument("--workers", type=count(1, 1024), default=None)
    p.set_defaults(func=run_demo_data)

    p = sub.add_parser(
        "train",
        help="train (or --resume) a class-conditional FastGAN, by hand or from a --recipe",
        description=TRAIN_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--recipe",
        default=None,
        metavar="NAME_OR_FILE",
        help="train every phase of a recipe (a built-in name or a .toml file); continues the run in --out "
        "from its latest checkpoint when there is one",
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="with --recipe: print the resolved options and the phase plan, and exit without training",
    )
    p.add_argument(
        "--resume", action="store_true", help="continue the run in --out from its latest checkpoint"
    )
    add_train_arguments(p, required=("out",))
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--write-rank-fingerprints", action="store_true", help=argparse.SUPPRESS)
    p.set_defaults(func=run_train)

    p = sub.add_parser(
        "package", help="package a run (+ evaluator + report) as a small model folder with a card"
    )
    p.add_argument("--run", required=True, type=Path, help="run folder (the --out of train)")
    p.add_argument(
        "--out", required=True, type=Path, help="package folder to write, e.g. checkpoints/my-parts"
    )
    p.add_argument("--evaluator", type=Path, default=None, help="evaluator folder (train-evaluator --out)")
    p.add_argument("--report", type=Path, default=None, help="report folder (evaluate --out)")
    p.add_argument("--fp32", action="store_true", help="keep fp32 weights (default: fp16, half the size)")
    p.add_argument("--command", action="append", default=[], help="extra command to list in the model card")
    p.set_defaults(func=run_package)

    p = sub.add_parser("sample", help="write class-conditioned samples (PNGs + manifest.json)")
    p.add_argument("--ckpt", required=True, help="run folder, checkpoint folder or generator folder")
    p.add_argument("--class", dest="class_name", default="all", help="class name or index, or 'all'")
    p.add_argument("--n", type=count(1, 100_000), default=16, help="images per class")
    p.add_argument("--seed", type=count(0, MAX_SEED), default=0, help="first seed; image i uses seed+i")
    p.add_argument(
        "--truncation",
        type=number_in(float, 0.0, 10.0),
        default=1.0,
        help="scale of the latent (<1: more typical images)",
    )
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--device", default=None)
    p.set_defaults(func=run_sample)


def run_demo_data(args) -> int:
    from gan_studio.data.demo import make_demo_dataset

    path = make_demo_dataset(
        args.out_dir, per_class=args.per_class, size=args.size, seed=args.seed, workers=args.workers
    )
    print(f"wrote the vise-parts demo dataset to {path}")
    return 0


def config_from_args(args):
    """TrainConfig from the command line: the declared defaults and the options given."""
    from gan_studio.training.config import TrainConfig

    return TrainConfig(**explicit_options(args))


def phase_options_from_args(args) -> dict:
    """The phase options (TrainConfig.PHASE_OPTIONS) given explicitly on the command line."""
    from gan_studio.training.config import TrainConfig

    return {k: v for k, v in explicit_options(args).items() if k in TrainConfig.PHASE_OPTIONS}


def run_train(args) -> int:
    import shlex
    import sys

    from gan_studio.models import check_resolution

    command = "python -m gan_studio " + shlex.join(sys.argv[1:])
    if args.recipe is not None:
        return run_train_recipe(args, command)
    if args.dry_run:
        raise ValueError("--dry-run shows a recipe's plan: use it with --recipe NAME_OR_FILE.")
    from gan_studio.training.loop import Trainer

    config = config_from_args(args)
    check_resolution(config.resolution)
    if not hasattr(args, "data") and not args.resume:
        raise ValueError("train needs --data: a dataset folder, a .zip of one, or 'demo'.")
    trainer = Trainer(
        config,
        resume=args.resume,
        progress=not args.no_progress,
        command=command,
        phase_options=phase_options_from_args(args),
    )
    if trainer.is_main:
        print(trainer.report.summary())
        print(
            f"training on {trainer.device} ({trainer.precision}, {trainer.world_size} process(es)); "
            f"{len(trainer.data)} train images, {len(trainer.class_names)} classes; run folder {trainer.run_dir}"
        )
    path = trainer.fit()
    if args.write_rank_fingerprints:
        write_rank_fingerprint(trainer)
    if trainer.is_main:
        print(f"checkpoint: {path}")
    return 0


def run_train_recipe(args, command: str) -> int:
    from gan_studio.models import check_resolution
    from gan_studio.training.recipes import load_recipe, run_recipe

    recipe = load_recipe(args.recipe)
    overrides = explicit_options(args)
    plan = recipe.resolve(overrides)
    check_resolution(plan.config.resolution)
    if args.dry_run:
        print(plan.describe())
        return 0
    run_dir = run_recipe(recipe, overrides, progress=not args.no_progress, command=command)
    print(f"run folder: {run_dir}")
    return 0


def write_rank_fingerprint(trainer) -> None:
    """Exact per-rank digest of the parameters, to show that data-parallel ranks stay identical.

    (Buffers such as batch-norm statistics are per-rank between steps; DDP re-broadcasts them
    from rank 0 at every forward.)"""
    import hashlib
    import json

    digest = {}
    for name in ("G", "D"):
        model = trainer.accelerator.unwrap_model(getattr(trainer, name))
        h = hashlib.sha256()
        for key, tensor in sorted(model.named_parameters()):
            h.update(key.encode())
            h.update(tensor.detach().float().cpu().contiguous().numpy().tobytes())
        digest[name] = h.hexdigest()
    out = trainer.run_dir / "fingerprints"
    out.mkdir(exist_ok=True)
    (out / f"rank{trainer.rank}.json").write_text(
        json.dumps({"rank": trainer.rank, "world_size": trainer.world_size, "step": trainer.step, **digest})
    )


def run_sample(args) -> int:
    from gan_studio.sampling import class_index, load_generator, sample, seeds_per_class, write_samples

    G, info = load_generator(args.ckpt, device=args.device)
    if args.class_name == "all":
        classes = list(range(len(info.class_names)))
    else:
        classes = [class_index(G, args.class_name)]
    labels, seeds = seeds_per_class(classes, args.n, args.seed)
    batch = sample(G, info, labels, seeds, truncation=args.truncation, progress=True)
    manifest = write_samples(batch, args.out)
    print(f"wrote {len(batch)} images and {manifest}")
    return 0


def run_package(args) -> int:
    from gan_studio.packaging import package_run

    out = package_run(
        args.run,
        args.out,
        evaluator_dir=args.evaluator,
        report_dir=args.report,
        fp16=not args.fp32,
        extra_commands=args.command,
    )
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file()) / 2**20
    print(f"wrote package {out} ({size:.1f} MB)")
    return 0
