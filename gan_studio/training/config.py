"""Training configuration: every knob of a run, saved with it so that a resume continues exactly."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field


@dataclass
class TrainConfig:
    data: str = "demo"  # dataset folder, .zip, or "demo" (built-in vise-parts data)
    out: str = "runs/run"
    resolution: int = 64
    steps: int = 5000
    batch: int = 16  # per process
    precision: str = "auto"  # auto | bf16 | fp32
    device: str = "auto"
    seed: int = 0
    # networks
    g_width: int = 64  # FastGAN's ngf
    d_width: int = 64  # FastGAN's ndf
    d_widths: str = "compact"  # compact | fastgan (discriminator channel profile, models/discriminator.py)
    # >1: each batch holds batch/K classes with K images of each, and D sees the spread within each
    # such group (minibatch standard deviation), so a class drawn in one pose is visible to D. With
    # one or two fakes of a class per batch, D cannot tell a collapsed class from a varied one.
    class_group_size: int = 1
    z_dim: int = 128
    embed_dim: int = 128
    g_spectral_norm: bool = True
    # optimisation (FastGAN defaults)
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    ema_decay: float = 0.999
    recon_loss: str = "mse"  # mse | l1 | lpips (needs its backbone weights locally)
    recon_weight: float = 1.0
    mode_seeking: float = 0.0  # weight of MSGAN's mode-seeking term (0: off)
    mode_seeking_space: str = "pixels"  # pixels | shape (edge maps blind to colour and lighting)
    # Weight of a per-class MMD between the fakes' and the real train images' shape maps (0: off).
    # It compares where edges are, blind to colour: a class drawn in one pose or place misses most
    # of its real images. Works best with --class-groups, which gives it several fakes per class.
    shape_mmd: float = 0.0
    # Weight of a per-class MMD on four numbers per image: the soft silhouette's principal axis
    # (which way the part points, how elongated it is) and its centroid (0: off). Edge maps carry
    # orientation only weakly; this asks each class's fakes to point the ways its real parts do.
    pose_mmd: float = 0.0
    class_loss: float = 1.0  # weight of the auxiliary-classifier (AC-GAN) loss; 0: projection only
    # A frozen classifier trained beforehand on the real train split (train-evaluator --out). G also
    # minimises its cross-entropy on the fakes: class knowledge D's own head needs ~10^5 images to learn.
    guide: str | None = None
    guide_weight: float = 0.0
    # Stop pushing a fake once the guide gives its class this probability (1.0: never stop). Plain
    # cross-entropy keeps rewarding ever more typical fakes and pulls each class to one prototype
    # pose; a cap asks only that the class be recognisable and leaves the rest to D.
    guide_confidence: float = 1.0
    # ce: each fake's cross-entropy; mmd: per-class MMD between the fakes' and the real images' guide
    # features, a distribution target that a class covering one pose does not meet.
    guide_target: str = "ce"
    # What the guide sees of each fake. "rotation" makes its loss blind to in-plane orientation (the
    # loss is averaged over all angles), so it asks for the class without choosing the pose.
    guide_augment: str = "color,translation"
    # Start G (and its EMA) from this saved generator (package, run or generator folder) instead of
    # random weights; D starts fresh. For the first d_warmup steps only D trains, so that G is not
    # pushed around by an untrained D's gradients.
    init_generator: str | None = None
    d_warmup: int = 0
    # augmentation
    diffaug: str = "color,translation,cutout"
    flip: bool = True
    # data
    fit: str = "center-crop"  # center-crop | pad | stretch
    test_fraction: float = 0.3
    group_pattern: str | None = None
    split_file: str | None = None  # adopt an existing split.json (e.g. a hand-made split by pose)
    train_per_class: int = 0  # >0: train on this many images per class (few-shot regime)
    min_per_class: int = 2
    # bookkeeping
    log_every: int = 10
    sample_every: int = 500
    ckpt_every: int = 500
    keep_checkpoints: int = 3
    channels_last: str = "auto"  # auto (GPUs only) | on | off
    extra: dict = field(default_factory=dict)

    # Options that may change on --resume to start a new training phase (e.g. add a guide once the
    # classes have formed). They alter the trajectory, so run.json records each change and its step.
    PHASE_OPTIONS = (
        "mode_seeking",
        "mode_seeking_space",
        "shape_mmd",
        "pose_mmd",
        "guide",
        "guide_weight",
        "guide_confidence",
        "guide_target",
        "guide_augment",
    )

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

    # Values of options that older runs lack (their D has no auxiliary classifier, for example).
    LEGACY_DEFAULTS = {"class_loss": 0.0}

    # Options that may change when a run is resumed (they do not alter the training trajectory).
    RESUMABLE_OVERRIDES = (
        "steps",
        "log_every",
        "sample_every",
        "ckpt_every",
        "keep_checkpoints",
        "out",
        "device",
    )
