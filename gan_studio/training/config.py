"""Training configuration: every knob of a run, saved with it so that a resume continues exactly.

Each field is declared once, here, with what the ``train`` command line needs to offer it (flag,
help, choices, the range of a number) and when it may change: ``phase=True`` options may change
when a run is resumed and start a new training phase (recorded in run.json), ``resumable=True``
options may change on any resume because they do not alter the trajectory. ``gan_studio.training.options`` builds the
``train`` parser from these declarations, and recipes (``gan_studio.training.recipes``) and the
app's Train tab take their names, defaults and ranges from them; a resume checks run.json's values
against the same ranges (``config_problems``) before it builds anything.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from gan_studio.utils.numbers import MAX_COUNT, MAX_SEED, range_problem


def option(
    default: Any = None,
    *,
    help: str = "",
    flag: str | None = None,
    choices: tuple[str, ...] | None = None,
    metavar: str | None = None,
    phase: bool = False,
    resumable: bool = False,
    path: bool = False,
    cli: bool = True,
    minimum: float | None = None,
    maximum: float | None = None,
    default_factory: Any = None,
) -> Any:
    """A TrainConfig field with its command-line declaration.

    ``flag``: the option's name on the command line (default: ``--`` + the field name with dashes;
    a bool option that defaults to True is offered as its negation, e.g. ``--no-flip``). ``path``:
    the value is a folder that the command line resolves to an absolute path. ``cli=False``: no flag.
    ``minimum`` / ``maximum``: the inclusive range of a number, enforced by the parser, recipes, the
    app and resumes (run.json).
    """
    metadata = {
        "help": help,
        "flag": flag,
        "choices": choices,
        "metavar": metavar,
        "phase": phase,
        "resumable": resumable,
        "path": path,
        "cli": cli,
        "minimum": minimum,
        "maximum": maximum,
    }
    if default_factory is not None:
        return field(default_factory=default_factory, metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass
class TrainConfig:
    data: str = option(
        "demo",
        help="dataset folder (one subfolder per class), a .zip of one, or 'demo' (with --resume: the run's "
        "own, from its run.json)",
    )
    out: str = option("runs/run", help="run folder (checkpoints, samples, logs)", resumable=True)
    resolution: int = option(
        64, flag="--res", help="image resolution: 32, 64, 128, 256, 512 or 1024", minimum=32, maximum=1024
    )
    steps: int = option(
        5000,
        help="total training steps (with --resume: the new total)",
        resumable=True,
        minimum=1,
        maximum=MAX_COUNT,
    )
    batch: int = option(16, help="batch size per process", minimum=1, maximum=4096)
    precision: str = option("auto", choices=("auto", "bf16", "fp32"), help="compute precision")
    device: str = option("auto", help="auto (cuda > mps > cpu), cpu, cuda, cuda:1, mps", resumable=True)
    seed: int = option(
        0, help="seeds the split, the few-shot subset and the training", minimum=0, maximum=MAX_SEED
    )
    # networks
    g_width: int = option(64, flag="--ngf", help="generator width (FastGAN's ngf)", minimum=1, maximum=512)
    d_width: int = option(
        64, flag="--ndf", help="discriminator width (FastGAN's ndf)", minimum=1, maximum=512
    )
    d_widths: str = option(
        "compact",
        choices=("compact", "fastgan"),
        help="discriminator channel profile: compact (half of FastGAN's at 16 px and below) or fastgan",
    )
    # >1: each batch holds batch/K classes with K images of each, and D sees the spread within each
    # such group (minibatch standard deviation), so a class drawn in one pose is visible to D. With
    # one or two fakes of a class per batch, D cannot tell a collapsed class from a varied one.
    class_group_size: int = option(
        1,
        flag="--class-groups",
        metavar="K",
        help="draw each batch as K images of each of batch/K classes, and let D see the spread within each "
        "group (minibatch standard deviation); 1: off; K must divide --batch",
        minimum=1,
        maximum=4096,
    )
    z_dim: int = option(128, help="latent size", minimum=1, maximum=4096)
    embed_dim: int = option(128, help="class embedding size", minimum=1, maximum=4096)
    g_spectral_norm: bool = option(True, help="no spectral norm in the generator")
    # optimisation (FastGAN defaults)
    lr_g: float = option(2e-4, help="generator learning rate", minimum=0.0, maximum=1.0)
    lr_d: float = option(2e-4, help="discriminator learning rate", minimum=0.0, maximum=1.0)
    beta1: float = option(0.5, help="Adam beta1", minimum=0.0, maximum=0.99999)
    beta2: float = option(0.999, help="Adam beta2", minimum=0.0, maximum=0.99999)
    ema_decay: float = option(
        0.999, flag="--ema", help="EMA decay of the generator weights", minimum=0.0, maximum=1.0
    )
    recon_loss: str = option(
        "mse",
        choices=("mse", "l1", "lpips"),
        help="D's reconstruction loss (lpips needs its backbone weights)",
    )
    recon_weight: float = option(1.0, help="weight of D's reconstruction loss", minimum=0.0, maximum=1000.0)
    mode_seeking: float = option(
        0.0,
        phase=True,
        help="weight of the mode-seeking term (MSGAN): more variety within a class; 0: off",
        minimum=0.0,
        maximum=1000.0,
    )
    mode_seeking_space: str = option(
        "pixels",
        choices=("pixels", "shape"),
        phase=True,
        help="what the mode-seeking term compares: raw pixels, or 'shape' (edge maps blind to colour and lighting)",
    )
    # Weight of a per-class MMD between the fakes' and the real train images' shape maps (0: off).
    # It compares where edges are, blind to colour: a class drawn in one pose or place misses most
    # of its real images. Works best with --class-groups, which gives it several fakes per class.
    shape_mmd: float = option(
        0.0,
        phase=True,
        help="weight of a per-class MMD between the fakes' and the real images' coarse edge maps: asks each "
        "class to cover the poses and places of its real images (0: off; pair it with --class-groups)",
        minimum=0.0,
        maximum=1000.0,
    )
    # Weight of a per-class MMD on four numbers per image: the soft silhouette's principal axis
    # (which way the part points, how elongated it is) and its centroid (0: off). Edge maps carry
    # orientation only weakly; this asks each class's fakes to point the ways its real parts do.
    pose_mmd: float = option(
        0.0,
        phase=True,
        help="weight of a per-class MMD on each image's silhouette axis and centroid: asks each class to "
        "point and sit the ways its real images do (0: off; pair it with --class-groups)",
        minimum=0.0,
        maximum=1000.0,
    )
    # Weight of a per-class MMD on each image reduced to 8 x 8 pixels (0: off): brightness, colours,
    # the part's place and size. A classifier still tells samples from photos at that size when only
    # D judges them (docs/experiments/2026-12-05-where-c2st-sees-the-samples.md).
    layout_mmd: float = option(
        0.0,
        phase=True,
        help="weight of a per-class MMD on each image reduced to 8x8 pixels: asks each class to spread over "
        "brightness, colours, place and size as its real images do (0: off; pair it with --class-groups)",
        minimum=0.0,
        maximum=1000.0,
    )
    class_loss: float = option(
        1.0,
        help="weight of the auxiliary-classifier loss (AC-GAN): D classifies real images, G must make fakes "
        "it classifies as their class (0: the projection term only)",
        minimum=0.0,
        maximum=1000.0,
    )
    # A frozen classifier trained beforehand on the real train split (train-evaluator --out). G also
    # minimises its cross-entropy on the fakes: class knowledge D's own head needs ~10^5 images to learn.
    guide: str | None = option(
        None,
        phase=True,
        path=True,
        help="frozen classifier folder (train-evaluator --split RUN/split.json --out GUIDE): G also makes "
        "fakes it classifies as their class; use a different network or seed from your evaluator",
    )
    guide_weight: float = option(
        0.0,
        phase=True,
        help="weight of the guide's loss (0.5 when --guide is given without it)",
        minimum=0.0,
        maximum=1000.0,
    )
    # Stop pushing a fake once the guide gives its class this probability (1.0: never stop). Plain
    # cross-entropy keeps rewarding ever more typical fakes; a cap asks only that the class be
    # recognisable. On its own it did not keep a class's poses (phase A in
    # docs/experiments/2026-11-29-pose-variety-guided-phases.md).
    guide_confidence: float = option(
        1.0,
        phase=True,
        help="stop pushing a fake once the guide gives its class this probability (1.0: never); below 1 "
        "the guide asks only that each fake be recognisable, not ever more typical",
        minimum=0.0,
        maximum=1.0,
    )
    # ce: each fake's cross-entropy; mmd: per-class MMD between the fakes' and the real images' guide
    # features, a distribution target that a class covering one pose does not meet.
    guide_target: str = option(
        "ce",
        choices=("ce", "mmd"),
        phase=True,
        help="what the guide asks: 'ce', each fake's cross-entropy; 'mmd', that each class's fakes match "
        "the spread of its real images in the guide's feature space",
    )
    # What the guide sees of each fake. "rotation" makes its loss blind to in-plane orientation (the
    # loss is averaged over all angles), so it asks for the class without choosing the pose.
    guide_augment: str = option(
        "color,translation",
        phase=True,
        help="what the guide sees of each fake; adding 'rotation' turns each fake by a random angle first, "
        "so the guide asks for the class without preferring one orientation",
    )
    # Start G (and its EMA) from this saved generator (package, run or generator folder) instead of
    # random weights; D starts fresh. For the first d_warmup steps only D trains, so that G is not
    # pushed around by an untrained D's gradients.
    init_generator: str | None = option(
        None,
        path=True,
        help="start G from this saved generator (a package such as checkpoints/vise-parts, a run or a "
        "generator folder) to fine-tune it; D starts fresh",
    )
    d_warmup: int = option(
        0,
        metavar="STEPS",
        help="train only D for the first STEPS steps (with --init-generator: a fresh D learns the generator "
        "before it steers it)",
        minimum=0,
        maximum=MAX_COUNT,
    )
    # augmentation
    diffaug: str = option(
        "color,translation,cutout",
        help="DiffAugment policy ('' for none): what D sees of every real and fake image",
        phase=True,
    )
    flip: bool = option(True, help="disable random horizontal flips of real images")
    # data
    fit: str = option(
        "center-crop", choices=("center-crop", "pad", "stretch"), help="how images are fitted to a square"
    )
    test_fraction: float = option(
        0.3, help="held-out real test share (never trained on)", minimum=0.0, maximum=0.95
    )
    group_pattern: str | None = option(
        None, help="regex on file names: matches with equal group stay on one side of the split"
    )
    split_file: str | None = option(
        None, flag="--split", help="use this split.json instead of making one (e.g. a hand-made split)"
    )
    train_per_class: int = option(
        0, help="few-shot: train on N images per class (0: all)", minimum=0, maximum=MAX_COUNT
    )
    min_per_class: int = option(
        2, help="classes with fewer images are left out", minimum=1, maximum=MAX_COUNT
    )
    # bookkeeping
    log_every: int = option(10, help="log every N steps", resumable=True, minimum=1, maximum=MAX_COUNT)
    sample_every: int = option(
        500,
        help="sample grid every N steps (0: only at the end)",
        resumable=True,
        minimum=0,
        maximum=MAX_COUNT,
    )
    ckpt_every: int = option(
        500,
        help="checkpoint every N steps (0: only at the end)",
        resumable=True,
        minimum=0,
        maximum=MAX_COUNT,
    )
    keep_checkpoints: int = option(
        3,
        flag="--keep",
        help="checkpoints to keep (plus 'latest')",
        resumable=True,
        minimum=0,
        maximum=1000,
    )
    channels_last: str = option(
        "auto",
        choices=("auto", "on", "off"),
        help="memory layout; auto = on for GPUs, off for CPUs (slower weight gradients there)",
    )
    # torch.compile of G's and D's forward and backward passes (their shapes are fixed for a run), with
    # CUDA graphs on GPUs. Random draws stay torch's own, so a compiled run follows the eager one
    # within float rounding (tests/test_compile.py); the first steps compile (minutes on a CPU, and it
    # needs a C++ compiler there). Off by default: on a CPU it pays after some 3500 steps at 64 px
    # (1.35x) and some 300 at 256 px (1.28x), and on GPUs it is not yet measured.
    compile: str = option(
        "off",
        choices=("on", "off"),
        resumable=True,
        help="compile the networks' training passes (torch.compile; CUDA graphs on GPUs): fewer, fused "
        "kernels once the first steps have compiled them (minutes on a CPU; pays there after some 3500 steps "
        "at 64 px, 300 at 256 px; see BENCHMARKS.md)",
    )
    extra: dict = option(default_factory=dict, cli=False)

    # Filled in below from the fields' declarations:
    # PHASE_OPTIONS: options that may change on --resume to start a new training phase (e.g. add a
    # guide once the classes have formed). They alter the trajectory, so run.json records each change
    # and its step. RESUMABLE_OVERRIDES: options that may change whenever a run is resumed (they do
    # not alter the training trajectory).
    PHASE_OPTIONS = ()
    RESUMABLE_OVERRIDES = ()

    # Values of options that older runs lack (their D has no auxiliary classifier, for example).
    LEGACY_DEFAULTS = {"class_loss": 0.0}
    # Types that older runs saved for an option (channels_last was a bool before it became tri-state).
    LEGACY_TYPES = {"channels_last": bool}

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        data = dict(data)
        # Runs saved before a knob existed trained without it: resume them as they were.
        for name, legacy_value in cls.LEGACY_DEFAULTS.items():
            data.setdefault(name, legacy_value)
        return cls(**{k: v for k, v in data.items() if k in names})


TrainConfig.PHASE_OPTIONS = tuple(f.name for f in dataclasses.fields(TrainConfig) if f.metadata.get("phase"))
TrainConfig.RESUMABLE_OVERRIDES = tuple(
    f.name for f in dataclasses.fields(TrainConfig) if f.metadata.get("resumable")
)


def option_problem(name: str, value: Any) -> str | None:
    """Why ``value`` does not fit the declared type or range of TrainConfig's ``name`` (None: it fits)."""
    declared = TrainConfig.__dataclass_fields__.get(name)
    if declared is None:
        return f"{name}: not a TrainConfig option"
    meta, default = declared.metadata, declared.default
    if (value is None and default is None) or isinstance(value, TrainConfig.LEGACY_TYPES.get(name, ())):
        return None
    if isinstance(default, bool):
        return None if isinstance(value, bool) else f"{name}: expected true or false, got {value!r}"
    if isinstance(default, (int, float)):
        wanted = int if isinstance(default, int) else (int, float)
        if isinstance(value, bool) or not isinstance(value, wanted):
            kind = "an integer" if wanted is int else "a number"
            return f"{name}: expected {kind}, got {value!r}"
        problem = range_problem(value, meta.get("minimum"), meta.get("maximum"))
        return f"{name} {problem}" if problem else None
    if isinstance(default, str) and not isinstance(value, str):
        return f"{name}: expected text, got {value!r}"
    choices = meta.get("choices")
    if choices and value not in choices:
        return f"{name}: must be one of {', '.join(choices)}, got {value!r}"
    return None


def config_problems(values: dict[str, Any]) -> list[str]:
    """Every value among ``values`` (TrainConfig field -> value) outside its declared type or range."""
    return [problem for name, value in values.items() if (problem := option_problem(name, value))]
