"""CLI commands ``train-evaluator`` and ``evaluate``; gan_studio.cli registers them via ``register``."""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

from gan_studio.metrics.candidates import FILTERS, FilterRule
from gan_studio.training.evaluator import add_train_evaluator_parser
from gan_studio.training.run_folder import RunFolder
from gan_studio.utils.numbers import MAX_SEED, count, number_in
from gan_studio.utils.progress import StageProgress, write_progress_file

_FILTER = FilterRule()  # --filter's defaults: the study's
# What an evaluation goes through, in order; the app shows "stage 3 of 7 · generating: 4/10 classes".
EVALUATE_STAGES = ("loading models", "real images", "generating", "features", "metrics", "c2st", "report")


def register(sub: argparse._SubParsersAction) -> None:
    add_train_evaluator_parser(sub)

    p = sub.add_parser(
        "evaluate",
        help="measure a generator with the evaluator: metrics.json + report.md, a new entry of --out's history",
    )
    p.add_argument("--ckpt", default=None, help="run folder, checkpoint folder or generator folder")
    p.add_argument(
        "--images",
        type=Path,
        default=None,
        help="instead of --ckpt: generated images already made, e.g. a Curate export (.zip or folder, one "
        "subfolder per class; with its manifest.json only the generated images count). Real images: "
        "the run its manifest names, else give --data and --split",
    )
    p.add_argument("--evaluator", required=True, type=Path, help="folder written by train-evaluator")
    p.add_argument(
        "--out",
        required=True,
        type=Path,
        help="report folder: each evaluation is kept in OUT/evaluations/<UTC time>-n<N>/ (never "
        "overwritten), and the newest is also copied to OUT/metrics.json and OUT/report.md",
    )
    p.add_argument("--n-per-class", type=count(2, 100_000), default=200, help="generated images per class")
    p.add_argument(
        "--seed", type=count(0, MAX_SEED), default=0, help="first seed; image i of every class uses seed+i"
    )
    p.add_argument("--truncation", type=number_in(float, 0.0, 10.0), default=1.0)
    p.add_argument(
        "--filter",
        choices=FILTERS,
        default="none",
        help="measure the images a curator keeps: per class, the first --n-per-class of the seed stream "
        "that pass the evaluator's confidence (and novelty) thresholds, as the study adds them. CAS and "
        "the feature metrics then measure the filter too; c2st (a fresh classifier) does not share its bias",
    )
    p.add_argument(
        "--filter-confidence",
        type=number_in(float, 0.0, 1.0),
        default=_FILTER.confidence,
        help="--filter: the evaluator's least probability of the intended class",
    )
    p.add_argument(
        "--filter-novelty",
        type=number_in(float, 0.0, 100.0),
        default=_FILTER.novelty,
        help="--filter: the least distance to the nearest real training image over the class's spacing",
    )
    p.add_argument(
        "--filter-max-factor",
        type=count(1, 1000),
        default=_FILTER.max_factor,
        help="--filter: draw at most this many candidates per image asked for, then measure what passed",
    )
    p.add_argument(
        "--data", default=None, help="real dataset (default: the one recorded in the run's run.json)"
    )
    p.add_argument(
        "--split", type=Path, default=None, help="split.json (default: the run's, else the evaluator's)"
    )
    p.add_argument("--metrics", default="all", help="comma-separated metric names, or 'all'")
    p.add_argument(
        "--c2st-steps",
        type=count(1),
        default=300,
        help="c2st: training steps of each of its two classifiers (the budget; ~3 min each at 64 px on 2 CPU cores)",
    )
    p.add_argument(
        "--c2st-seed",
        type=count(0, MAX_SEED),
        default=None,
        help="c2st: seed of its split and training (default: --seed)",
    )
    p.add_argument(
        "--c2st-max-per-class",
        type=count(0),
        default=0,
        help="c2st: at most this many images of each class on each side (0: all that balance allows)",
    )
    p.add_argument(
        "--c2st-coarse",
        type=count(0),
        default=0,
        metavar="PX",
        help="c2st on every image reduced to PX pixels and enlarged back: only coarse shape, pose and colour "
        "are left to tell them apart, so a figure near 0.5 there (and near 1.0 at full detail) says the tell "
        "is fine texture (0: full detail)",
    )
    p.add_argument("--batch", type=count(1, 4096), default=64, help="generation batch size")
    p.add_argument("--device", default="auto")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument(
        "--progress-file",
        type=Path,
        default=None,
        help="keep this JSON file holding the current stage, its progress and ETA (the app polls it)",
    )
    p.set_defaults(func=run_evaluate)


def _images_info(args, evaluator):
    """For --images: a stand-in for the generator's info (classes, size, step, run) from the manifest."""
    from types import SimpleNamespace

    from gan_studio.data import resolve_dataset_source
    from gan_studio.sampling import MANIFEST_FILE, read_manifest

    root = resolve_dataset_source(args.images)
    # An export's manifest sits beside its class folders (a .zip may wrap them in one folder).
    found = [root / MANIFEST_FILE, *sorted(root.glob(f"*/{MANIFEST_FILE}"))]
    path = next((p for p in found if p.is_file()), None)
    manifest = read_manifest(path) if path else None
    root = path.parent if path else root
    model = (manifest or {}).get("model") or {}
    run_dir = Path(model["run_dir"]) if model.get("run_dir") else None
    return SimpleNamespace(
        class_names=list(evaluator.class_names),
        resolution=evaluator.resolution,
        step=model.get("step", -1),
        source=str(args.images),
        run_dir=run_dir if run_dir is not None and RunFolder(run_dir).run_path.is_file() else None,
        root=root,
        manifest=manifest,
    )


def _given_images(args, info):
    """(uint8 images, their classes, their record) of --images: the generated ones of the manifest, else all."""
    import numpy as np

    from gan_studio.data import DatasetError, load_labeled_images

    found = load_labeled_images(info.root, info.resolution, progress=not args.no_progress)
    keep = list(range(len(found.records)))
    if info.manifest is not None:
        generated = {
            e.get("file")
            for e in info.manifest.get("images", [])
            if e.get("source", "generated") == "generated"
        }
        keep = [i for i, r in enumerate(found.records) if r.path in generated]
    unknown = sorted(set(found.class_names) - set(info.class_names))
    if unknown:
        raise DatasetError(
            f"'{args.images}' has classes the evaluator does not know: {', '.join(unknown)}. Its class folders "
            f"must be among {', '.join(info.class_names)}."
        )
    index = {name: c for c, name in enumerate(info.class_names)}
    labels = [index[found.records[i].class_name] for i in keep]
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=len(info.class_names))
    short = [f"{name} ({counts[c]})" for c, name in enumerate(info.class_names) if counts[c] < 2]
    if short:
        raise DatasetError(
            f"'{args.images}' needs at least 2 generated images of every class the evaluator knows; it has "
            f"too few of {', '.join(short)}. Export (or accept) more of those classes."
        )
    record = {
        "images": str(args.images),
        "manifest": info.manifest is not None,
        "generated_per_class": {name: int(counts[c]) for c, name in enumerate(info.class_names)},
        "skipped_real": len(found.records) - len(keep),
    }
    return found.images[keep], labels, record


def real_data_source(data: str | None, run_dir: Path | None, model: str | Path) -> tuple[str, str]:
    """(dataset source, fit mode) of the real images to measure ``model`` against: ``data`` (--data)
    wins, else what its run (or package) folder ``run_dir`` recorded in run.json."""
    from gan_studio.training.checkpoint import read_json

    run_data = {}
    if run_dir is not None and RunFolder(run_dir).run_path.is_file():
        run_data = read_json(RunFolder(run_dir).run_path).get("data", {})
    fit = run_data.get("fit", "center-crop")
    if data:
        return data, fit
    root, source = run_data.get("root"), run_data.get("source")
    if root and Path(root).is_dir():
        return root, fit
    if source:
        return source, fit
    raise ValueError(
        f"'{model}' does not record its dataset (no run.json); pass the real images with --data DIR."
    )


def package_dir(ckpt: Path) -> Path | None:
    """The package folder of ``--ckpt`` (the package itself or its generator/ folder), else None."""
    for folder in (ckpt, ckpt.parent):
        if (folder / "package.json").is_file() and RunFolder(folder).run_path.is_file():
            return folder
    return None


def _split_path(args, run_dir: Path | None) -> Path:
    candidates = (
        [args.split]
        if args.split
        else [RunFolder(run_dir).split_path if run_dir else None, args.evaluator / "split.json"]
    )
    for path in candidates:
        if path is not None and path.is_file():
            return path
    raise FileNotFoundError(
        f"No split.json found for '{args.ckpt or args.images}' (looked in the run folder and '{args.evaluator}'). "
        "Pass the split the generator was trained with: --split RUN_DIR/split.json"
    )


def _split_warnings(evaluator_dir: Path, split, split_path: Path) -> list[str]:
    """The evaluator must not have trained on this run's test images; say so when it did."""
    from gan_studio.data import load_split

    own = evaluator_dir / "split.json"
    if not own.is_file():
        return [
            f"'{evaluator_dir}' has no split.json: cannot check that the evaluator never saw test images."
        ]
    if own.resolve() == split_path.resolve():
        return []
    leaked = set(load_split(own).train) & set(split.test)
    if not leaked:
        return []
    return [
        f"the evaluator was trained on {len(leaked)} image(s) that are test images of this run (e.g. "
        f"'{sorted(leaked)[0]}'); retrain it with --split {split_path} for an unbiased evaluation."
    ]


def _resolution_warnings(evaluator_resolution: int, resolution: int) -> list[str]:
    """An evaluator judges other-sized images resized to its own size: its numbers measure that too."""
    if evaluator_resolution == resolution:
        return []
    return [
        f"the evaluator was trained at {evaluator_resolution} px and the generator makes {resolution} px "
        f"images, which are resized for it: CAS and the feature metrics measure the resizing too. Train an "
        f"evaluator at {resolution} px (train-evaluator --res {resolution}) for numbers comparable across runs."
    ]


def _check_sources(args) -> None:
    """One source of generated images: a generator (--ckpt, optionally --filter) or --images."""
    if (args.ckpt is None) == (args.images is None):
        raise ValueError("Give the generator to evaluate (--ckpt) or images it made (--images), not both.")
    if args.images is not None and args.filter != "none":
        raise ValueError("--filter chooses among a generator's samples; with --images, filter in Curate.")


def _metric_names(args) -> list[str]:
    from gan_studio.metrics import list_metrics

    if args.n_per_class < 2:
        raise ValueError("--n-per-class must be at least 2 (distribution metrics need two images per class).")
    if args.metrics == "all":
        return list_metrics()
    names = [m.strip() for m in args.metrics.split(",") if m.strip()]
    unknown = sorted(set(names) - set(list_metrics()))
    if unknown:
        raise ValueError(f"Unknown metric(s) {', '.join(unknown)}; choose from {', '.join(list_metrics())}.")
    return names


def _progress(args, names: list[str]) -> StageProgress:
    """The evaluation's stages (c2st, minutes of training, is one of its own), reported to --progress-file."""
    stages = [stage for stage in EVALUATE_STAGES if stage != "c2st" or "c2st" in names]
    return StageProgress(stages, write_progress_file(args.progress_file) if args.progress_file else None)


def _load_models(args):
    """(generator, its info, evaluator, device); the two must know the same classes."""
    from gan_studio import sampling
    from gan_studio.device import pick_device
    from gan_studio.models.classifier import load_evaluator

    device = pick_device(args.device)
    evaluator = load_evaluator(args.evaluator, device=device)
    if args.images is not None:
        return None, _images_info(args, evaluator), evaluator, device
    generator, info = sampling.load_generator(args.ckpt, device=device)
    if list(evaluator.class_names) != list(info.class_names):
        raise ValueError(
            f"The evaluator '{args.evaluator}' knows classes {evaluator.class_names} but the generator has "
            f"{info.class_names}. Train an evaluator on the generator's dataset (train-evaluator --data ...)."
        )
    return generator, info, evaluator, device


def _real_images(args, info) -> dict:
    """The real images split as the generator's run split them: source, split (path, object), train, test."""
    from gan_studio.data import DatasetError, load_labeled_images, load_split

    # A package carries its run's run.json and split.json, so it names its own data and split too.
    record_dir = info.run_dir or (package_dir(Path(args.ckpt)) if args.ckpt else None)
    source, fit = real_data_source(args.data, record_dir, args.ckpt or args.images)
    split_path = _split_path(args, record_dir)
    real = load_labeled_images(source, info.resolution, fit=fit, progress=not args.no_progress)
    if list(real.class_names) != list(info.class_names):
        raise DatasetError(
            f"The dataset '{source}' has classes {real.class_names} but the generator has {info.class_names}; "
            "pass the dataset it was trained on with --data."
        )
    split = load_split(split_path)
    train_idx, test_idx = split.indices(real.records)
    return {
        "source": source,
        "split_path": split_path,
        "split": split,
        "train": real.subset(train_idx),
        "test": real.subset(test_idx),
    }


def _generate(args, generator, info, evaluator, train_features, stages: StageProgress):
    """(uint8 images, their classes, the filter's record or None): n per class, image i of every class
    from seed + i; with --filter, the first n of each class's seed stream that pass it (its novelty
    scored against ``train_features``, the real train images' FeatureSet)."""
    from gan_studio import sampling

    classes = range(len(info.class_names))
    stages.start("generating", total=len(info.class_names), unit="classes")
    if args.filter != "none":
        return _generate_filtered(args, generator, info, evaluator, train_features, stages)
    class_indices = [c for c in classes for _ in range(args.n_per_class)]
    seeds = [args.seed + i for _ in classes for i in range(args.n_per_class)]
    fake = sampling.generate(
        generator,
        class_indices,
        seeds,
        truncation=args.truncation,
        batch_size=args.batch,
        progress=not args.no_progress,
        on_batch=stages.ticker(per_unit=args.n_per_class),
    )
    return fake, class_indices, None


def _generate_filtered(args, generator, info, evaluator, train_features, stages: StageProgress):
    """The study's candidate streams, scored by this evaluator against the real train images."""
    import numpy as np
    import torch

    from gan_studio import sampling
    from gan_studio.metrics.candidates import NoveltyScorer, SyntheticPool

    rule = FilterRule(args.filter_confidence, args.filter_novelty, args.filter_max_factor)
    rule.validate()
    pool = SyntheticPool(
        lambda c, seeds: sampling.generate(
            generator, [c] * len(seeds), seeds, truncation=args.truncation, batch_size=args.batch
        ),
        evaluator,
        NoveltyScorer(train_features.features, np.asarray(train_features.labels)),
        rule,
        first_seed=args.seed,
        chunk=max(args.batch, 64),
    )
    images, class_indices, short = [], [], []
    for c, name in enumerate(info.class_names):
        positions, met = pool.select(c, args.n_per_class, args.filter)
        if len(positions) < 2:
            raise ValueError(
                f"--filter {args.filter}: only {len(positions)} of {len(pool.streams[c])} candidates of "
                f"class '{name}' pass (confidence >= {rule.confidence:g}"
                + (f", novelty >= {rule.novelty:g}" if args.filter == "confidence+novelty" else "")
                + "); lower --filter-confidence / --filter-novelty or raise --filter-max-factor."
            )
        if not met:
            short.append(f"'{name}' {len(positions)}")
        images.append(pool.images(c, positions))
        class_indices += [c] * len(positions)
        stages.update(c + 1)
    summary = pool.summary()
    record = {
        "kind": args.filter,
        "confidence": rule.confidence,
        "novelty": rule.novelty if args.filter == "confidence+novelty" else None,
        "drawn_per_class": {info.class_names[c]: s["drawn"] for c, s in summary.items()},
        "kept_per_class": {info.class_names[c]: class_indices.count(c) for c in summary},
        "short": short,
    }
    return torch.cat(images), class_indices, record


def _measure(names: list[str], ctx, stages: StageProgress, c2st_steps: int) -> dict:
    """The metrics, in the order asked for; c2st (two classifiers trained from scratch) as its own stage."""
    from gan_studio.metrics import compute_metrics

    quick = [name for name in names if name != "c2st"]
    stages.start("metrics", total=len(quick), unit="metrics")
    results = compute_metrics(
        quick, ctx, on_metric=lambda name, done, _: stages.update(done, detail=name, force=True)
    )
    stages.update(len(quick), detail="")
    if "c2st" in names:
        tests = 2 if ctx.real_test is not None and len(ctx.real_test) else 1
        stages.start("c2st", total=tests * c2st_steps, unit="classifier steps")
        ctx.tick = stages.ticker()
        results.update(compute_metrics(["c2st"], ctx))
    return {name: results[name] for name in names}


def _given_meta(given: dict) -> dict:
    """What --images replaces in the metadata: the images' own counts, no seeds."""
    counts = list(given["generated_per_class"].values())
    low, high = min(counts), max(counts)
    return {
        "images": given["images"],
        "n_per_class": low if low == high else f"{low}-{high}",
        "generated_per_class": given["generated_per_class"],
        "seeds": "as made (given images)",
        "truncation": None,
        "skipped_real_images": given["skipped_real"],
    }


def _filter_text(record: dict) -> str:
    rule = f"confidence >= {record['confidence']:g}"
    if record.get("novelty") is not None:
        rule += f", novelty >= {record['novelty']:g} x the class's spacing"
    drawn, kept = sum(record["drawn_per_class"].values()), sum(record["kept_per_class"].values())
    return f"{rule}: {kept} kept of {drawn} drawn ({kept / max(drawn, 1):.0%})"


def _filter_warnings(record: dict | None, evaluator_dir: Path) -> list[str]:
    if record is None:
        return []
    warnings = [
        f"the generated images were chosen by the evaluator '{evaluator_dir}' ({_filter_text(record)}): "
        "CAS, FID/KID and precision/recall measure the filter as well as the generator; c2st (a "
        "classifier trained from scratch) does not share the evaluator's bias."
    ]
    if record["short"]:
        warnings.append(
            f"the filter passed too few candidates of {', '.join(record['short'])} (kept of "
            f"{max(record['drawn_per_class'].values())} drawn at most): the classes are unequal; raise --filter-max-factor "
            "or lower the thresholds for equal classes."
        )
    return warnings


def _meta(args, info, evaluator, real: dict, filtered: dict | None = None) -> dict:
    """What the figures were computed on: every entry of the history records it."""
    from gan_studio.metrics.history import utc_now
    from gan_studio.models.classifier import read_training_info

    training = read_training_info(args.evaluator) or {}
    names = list(info.class_names)
    train, test = real["train"], real["test"]
    return {
        "generator": info.source,
        "step": info.step,
        "resolution": info.resolution,
        "evaluator": str(args.evaluator),
        "evaluator_arch": evaluator.arch,
        "evaluator_resolution": evaluator.resolution,
        "evaluator_test_accuracy": training.get("test_accuracy"),
        "data": str(real["source"]),
        "split": str(real["split_path"]),
        "split_sha1": hashlib.sha1(real["split_path"].read_bytes()).hexdigest()[:12],
        "n_real_train": len(train),
        "n_real_test": len(test),
        "real_train_per_class": {n: int((train.labels == c).sum()) for c, n in enumerate(names)},
        "real_test_per_class": {n: int((test.labels == c).sum()) for c, n in enumerate(names)},
        "n_per_class": args.n_per_class,
        "seed": args.seed,
        "seeds": (
            f"{args.seed}.. for every class, the first {args.n_per_class} passing the filter"
            if filtered
            else f"{args.seed}..{args.seed + args.n_per_class - 1} for every class"
        ),
        "truncation": args.truncation,
        **(
            {"filter": filtered["kind"], "filter_rule": _filter_text(filtered), "filtered": filtered}
            if filtered
            else {}
        ),
        "created": utc_now(),
        "warnings": _split_warnings(args.evaluator, real["split"], real["split_path"])
        + _resolution_warnings(evaluator.resolution, info.resolution)
        + _filter_warnings(filtered, args.evaluator),
    }


def run_evaluate(args) -> int:
    from gan_studio.metrics import build_context, write_evaluation
    from gan_studio.metrics.c2st import MIN_COARSE_PX, coarse_px_fits
    from gan_studio.metrics.context import FeatureSet
    from gan_studio.metrics.report import summary_line

    _check_sources(args)
    names = _metric_names(args)
    stages = _progress(args, names)
    stages.start("loading models")
    generator, info, evaluator, _ = _load_models(args)
    if "c2st" in names and args.c2st_coarse and not coarse_px_fits(args.c2st_coarse, info.resolution):
        raise ValueError(  # before minutes of generating and reading, not after
            f"--c2st-coarse {args.c2st_coarse}: reduce the {info.resolution} px images to {MIN_COARSE_PX} to "
            f"{info.resolution - 1} pixels, or leave it out (0) for the test at full detail."
        )
    stages.start("real images", detail="reading the dataset")
    real = _real_images(args, info)
    train, test = real["train"], real["test"]
    train_features = None  # --filter scores novelty against them; the metrics then reuse them
    if args.images is None and args.filter != "none":
        train_features = FeatureSet.from_images(
            evaluator, train.images, train.labels, names=[r.path for r in train.records]
        )
    if args.images is not None:
        stages.start("generating", detail="reading the given images")
        fake, class_indices, given = _given_images(args, info)
        filtered = None
    else:
        fake, class_indices, filtered = _generate(args, generator, info, evaluator, train_features, stages)
        given = None
    to_read = (len(train) if train_features is None else 0) + len(test) + len(fake)
    stages.start("features", total=to_read, unit="images")
    ctx = build_context(
        evaluator,
        real_train=train_features,
        real_train_images=train.images,
        real_train_labels=train.labels,
        real_train_names=[r.path for r in train.records],
        real_test_images=test.images,
        real_test_labels=test.labels,
        real_test_names=[r.path for r in test.records],
        fake_images=fake,
        fake_labels=class_indices,
        seed=args.seed,
        progress=not args.no_progress,
        options={
            "c2st_steps": args.c2st_steps,
            "c2st_seed": args.seed if args.c2st_seed is None else args.c2st_seed,
            "c2st_max_per_class": args.c2st_max_per_class or None,
            "c2st_coarse_px": args.c2st_coarse or None,
        },
        tick=stages.ticker(),
    )
    results = _measure(names, ctx, stages, args.c2st_steps)
    stages.start("report")
    meta = _meta(args, info, evaluator, real, filtered)
    if given is not None:
        meta.update(_given_meta(given))
    report = write_evaluation(results, ctx, args.out, meta=meta)
    stages.finish()
    for warning in meta["warnings"]:
        print(f"warning: {warning}")
    for name, result in results.items():
        print(summary_line(name, result))
    print(f"wrote {report.parent / 'metrics.json'} and {report} (the newest is also in {args.out})")
    return 0
