"""Core commands: demo-data, train, sample."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo-data", help="write the built-in procedural vise-parts dataset")
    p.add_argument("out_dir", type=Path)
    p.add_argument("--per-class", type=int, default=200)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=None)
    p.set_defaults(func=run_demo_data)

    p = sub.add_parser("train", help="train (or --resume) a class-conditional FastGAN")
    p.add_argument(
        "--data",
        default=None,
        help="dataset folder (one subfolder per class), a .zip of one, or 'demo' (with --resume: the "
        "run's own, from its run.json)",
    )
    p.add_argument("--out", required=True, help="run folder (checkpoints, samples, logs)")
    p.add_argument("--res", type=int, default=64, help="image resolution: 32, 64, 128, 256, 512 or 1024")
    p.add_argument(
        "--steps", type=int, default=5000, help="total training steps (with --resume: the new total)"
    )
    p.add_argument("--batch", type=int, default=16, help="batch size per process")
    p.add_argument(
        "--resume", action="store_true", help="continue the run in --out from its latest checkpoint"
    )
    p.add_argument("--precision", choices=["auto", "bf16", "fp32"], default="auto")
    p.add_argument("--device", default="auto", help="auto (cuda > mps > cpu), cpu, cuda, cuda:1, mps")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--ngf", type=int, default=64, help="generator width (FastGAN's ngf)")
    p.add_argument("--ndf", type=int, default=64, help="discriminator width (FastGAN's ndf)")
    p.add_argument(
        "--d-widths",
        choices=["compact", "fastgan"],
        default="compact",
        help="discriminator channel profile: compact (half of FastGAN's at 16 px and below) or fastgan (FastGAN's own)",
    )
    p.add_argument(
        "--class-groups",
        type=int,
        default=1,
        metavar="K",
        help="draw each batch as K images of each of batch/K classes, and let D see the spread within "
        "each group (minibatch standard deviation), so that a class drawn in one pose is visible to "
        "it (default 1: off; K must divide --batch)",
    )
    p.add_argument(
        "--init-generator",
        default=None,
        help="start G from this saved generator (a package such as checkpoints/vise-parts, a run or a "
        "generator folder) instead of random weights, to fine-tune it; D starts fresh",
    )
    p.add_argument(
        "--d-warmup",
        type=int,
        default=0,
        metavar="STEPS",
        help="train only D for the first STEPS steps (with --init-generator: lets a fresh D learn the "
        "generator before it steers it)",
    )
    p.add_argument("--z-dim", type=int, default=128)
    p.add_argument("--lr-g", type=float, default=2e-4)
    p.add_argument("--lr-d", type=float, default=2e-4)
    p.add_argument("--ema", type=float, default=0.999, help="EMA decay of the generator weights")
    p.add_argument(
        "--mode-seeking",
        type=float,
        default=None,
        help="weight of the mode-seeking term (MSGAN) for more variety within a class (default 0). The "
        "shipped model uses 0.3; 0.1 collapsed classes to one pose, 1.0 learned classes more slowly. "
        "With --resume, a new value starts a new phase",
    )
    p.add_argument(
        "--mode-seeking-space",
        choices=["pixels", "shape"],
        default=None,
        help="what the mode-seeking term compares: raw pixels (default), or 'shape': edge maps blind "
        "to colour and lighting, so that G cannot satisfy it by recolouring one pose",
    )
    p.add_argument(
        "--shape-mmd",
        type=float,
        default=None,
        help="weight of a per-class MMD between the fakes' and the real images' coarse edge maps "
        "(blind to colour): asks each class to cover the poses and places of its real images "
        "(default 0; pair it with --class-groups; with --resume, a new value starts a new phase)",
    )
    p.add_argument(
        "--pose-mmd",
        type=float,
        default=None,
        help="weight of a per-class MMD on each image's silhouette axis (which way the part points, "
        "how elongated) and centroid: asks each class to point and sit the ways its real images do "
        "(default 0; pair it with --class-groups; with --resume, a new value starts a new phase)",
    )
    p.add_argument(
        "--class-loss",
        type=float,
        default=1.0,
        help="weight of the auxiliary-classifier loss (AC-GAN): D learns to classify real images, G "
        "must make fakes it classifies as their class (0: the projection term only)",
    )
    p.add_argument(
        "--guide",
        default=None,
        help="frozen classifier folder (train-evaluator --split RUN/split.json --out GUIDE): G also "
        "makes fakes it classifies as their class. Use a different network or seed from your evaluator, "
        "so that CAS stays an independent check. With --resume, adding it starts a new phase",
    )
    p.add_argument(
        "--guide-weight",
        type=float,
        default=None,
        help="weight of the guide's cross-entropy (default 0.5 when --guide is given)",
    )
    p.add_argument(
        "--guide-target",
        choices=["ce", "mmd"],
        default=None,
        help="what the guide asks of the fakes: 'ce' (default), each fake's cross-entropy; 'mmd', "
        "that each class's fakes match the spread of its real images in the guide's feature space",
    )
    p.add_argument(
        "--guide-confidence",
        type=float,
        default=None,
        help="stop pushing a fake once the guide gives its class this probability (default 1.0: "
        "never). Below 1 (e.g. 0.9) the guide asks only that the class be recognisable, which leaves "
        "room for pose variety; with --resume, changing it starts a new phase",
    )
    p.add_argument(
        "--guide-augment",
        default=None,
        help="what the guide sees of each fake (default 'color,translation'). Adding 'rotation' turns "
        "each fake by a random angle first, so the guide asks for the class without preferring one "
        "orientation; with --resume, changing it starts a new phase",
    )
    p.add_argument("--diffaug", default="color,translation,cutout", help="DiffAugment policy ('' for none)")
    p.add_argument("--no-flip", action="store_true", help="disable random horizontal flips of real images")
    p.add_argument("--recon-loss", choices=["mse", "l1", "lpips"], default="mse")
    p.add_argument("--fit", choices=["center-crop", "pad", "stretch"], default="center-crop")
    p.add_argument(
        "--test-fraction", type=float, default=0.3, help="held-out real test share (never trained on)"
    )
    p.add_argument(
        "--group-pattern", default=None, help="regex on file names: matches with equal group stay on one side"
    )
    p.add_argument(
        "--split", dest="split_file", default=None, help="use this split.json instead of making one"
    )
    p.add_argument(
        "--train-per-class", type=int, default=0, help="few-shot: train on N images per class (0: all)"
    )
    p.add_argument("--min-per-class", type=int, default=2)
    p.add_argument("--log-every", type=int, default=10)
    p.add_argument("--sample-every", type=int, default=500)
    p.add_argument("--ckpt-every", type=int, default=500)
    p.add_argument("--keep", type=int, default=3, help="checkpoints to keep (plus 'latest')")
    p.add_argument(
        "--channels-last",
        choices=["auto", "on", "off"],
        default="auto",
        help="memory layout; auto = on for GPUs, off for CPUs (slower weight gradients there)",
    )
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
    p.add_argument("--n", type=int, default=16, help="images per class")
    p.add_argument("--seed", type=int, default=0, help="first seed; image i uses seed+i")
    p.add_argument(
        "--truncation", type=float, default=1.0, help="scale of the latent (<1: more typical images)"
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
    from gan_studio.training.config import TrainConfig

    return TrainConfig(
        data=args.data,
        out=args.out,
        resolution=args.res,
        steps=args.steps,
        batch=args.batch,
        precision=args.precision,
        device=args.device,
        seed=args.seed,
        g_width=args.ngf,
        d_width=args.ndf,
        d_widths=args.d_widths,
        class_group_size=args.class_groups,
        init_generator=str(Path(args.init_generator).expanduser().resolve()) if args.init_generator else None,
        d_warmup=args.d_warmup,
        z_dim=args.z_dim,
        lr_g=args.lr_g,
        lr_d=args.lr_d,
        ema_decay=args.ema,
        mode_seeking=args.mode_seeking or 0.0,
        class_loss=args.class_loss,
        diffaug=args.diffaug,
        flip=not args.no_flip,
        recon_loss=args.recon_loss,
        fit=args.fit,
        test_fraction=args.test_fraction,
        group_pattern=args.group_pattern,
        split_file=args.split_file,
        train_per_class=args.train_per_class,
        min_per_class=args.min_per_class,
        log_every=args.log_every,
        sample_every=args.sample_every,
        ckpt_every=args.ckpt_every,
        keep_checkpoints=args.keep,
        channels_last=args.channels_last,
    )


def phase_options_from_args(args) -> dict:
    """The phase options (TrainConfig.PHASE_OPTIONS) given explicitly on the command line."""
    options = {}
    if args.mode_seeking is not None:
        options["mode_seeking"] = args.mode_seeking
    if args.mode_seeking_space is not None:
        options["mode_seeking_space"] = args.mode_seeking_space
    if args.shape_mmd is not None:
        options["shape_mmd"] = args.shape_mmd
    if args.pose_mmd is not None:
        options["pose_mmd"] = args.pose_mmd
    if args.guide is not None:
        options["guide"] = str(Path(args.guide).expanduser().resolve())
        options["guide_weight"] = 0.5 if args.guide_weight is None else args.guide_weight
    elif args.guide_weight is not None:
        options["guide_weight"] = args.guide_weight
    if args.guide_confidence is not None:
        options["guide_confidence"] = args.guide_confidence
    if args.guide_target is not None:
        options["guide_target"] = args.guide_target
    if args.guide_augment is not None:
        options["guide_augment"] = args.guide_augment
    return options


def run_train(args) -> int:
    from gan_studio.models import check_resolution
    from gan_studio.training.loop import Trainer

    check_resolution(args.res)
    if args.data is None and not args.resume:
        raise ValueError("train needs --data: a dataset folder, a .zip of one, or 'demo'.")
    import shlex
    import sys

    command = "python -m gan_studio " + shlex.join(sys.argv[1:])
    trainer = Trainer(
        config_from_args(args),
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
    from gan_studio.sampling import class_index, load_generator, write_samples

    G, info = load_generator(args.ckpt, device=args.device)
    if args.class_name == "all":
        classes = list(range(len(info.class_names)))
    else:
        classes = [class_index(G, args.class_name)]
    class_indices = [c for c in classes for _ in range(args.n)]
    seeds = [args.seed + i for _ in classes for i in range(args.n)]
    manifest = write_samples(G, info, args.out, class_indices, seeds, truncation=args.truncation)
    print(f"wrote {len(seeds)} images and {manifest}")
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
