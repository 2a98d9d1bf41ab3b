"""The training loop: class-conditional FastGAN with DiffAugment, hinge loss and EMA.

One iteration (FastGAN's schedule, one generator forward per step):
  1. G draws a batch of fakes for the classes of a real batch; both are DiffAugmented.
  2. D step: hinge loss on fakes (detached) and on reals, plus the reconstruction loss of D's
     decoders on the real batch.
  3. G step: -D(fake), through the updated D (plus, when set, the mode-seeking term and a frozen
     guide classifier's cross-entropy); then the EMA generator follows G.

Data-parallel training is built on accelerate: under ``torchrun --nproc_per_node N`` each process
draws its own batches and DDP averages gradients, so every rank holds identical weights.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from accelerate import Accelerator
from accelerate.utils import gather_object
from tqdm.auto import tqdm

from gan_studio.data import (
    few_shot_paths,
    load_labeled_images,
    load_split,
    make_split,
    resolve_dataset_source,
    save_split,
)
from gan_studio.device import autocast, pick_device, resolve_precision
from gan_studio.models import Discriminator, Generator
from gan_studio.models.diffaug import GUIDE_POLICIES, diff_augment, parse_policy
from gan_studio.models.ema import make_ema, update_ema
from gan_studio.training import checkpoint as ckpt
from gan_studio.training import run_files, run_lock
from gan_studio.training.config import TrainConfig
from gan_studio.training.stop_signals import stop_requests
from gan_studio.utils.images import save_image_grid, to_uint8

__all__ = ["Trainer", "train"]


@dataclass
class StepStats:
    loss_d_real: float
    loss_d_fake: float
    loss_recon: float
    loss_g: float
    logits_real: float
    logits_fake: float
    r_t: float  # ADA's over-fitting signal E[sign(D(real))]: near 1 means D memorises the reals
    loss_ms: float = 0.0  # mode-seeking term (0 when --mode-seeking is off)
    loss_cls_real: float = 0.0  # D's auxiliary-classifier cross-entropy on reals (0 when off)
    loss_cls_fake: float = 0.0  # the same classifier's cross-entropy on G's fakes (G minimises it)
    acc_cls_real: float = 0.0  # that classifier's accuracy on the (augmented) real batch
    loss_shape_mmd: float = 0.0  # the per-class shape-map MMD (0 when --shape-mmd is off)
    loss_pose_mmd: float = 0.0  # the per-class pose-moment MMD (0 when --pose-mmd is off)
    loss_guide: float = 0.0  # the guide classifier's cross-entropy on the fakes (0 when off)
    acc_guide_fake: float = 0.0  # the guide's accuracy on the fakes: a running CAS-like signal


def host_floats(stats: dict[str, torch.Tensor]) -> dict[str, float]:
    """The step's statistics as Python floats, in one device-to-host copy. Each ``.item()`` waits
    for the GPU to drain its queue; fifteen of them per step, half of them before G's step was even
    queued, kept the GPU idle between small kernels."""
    values = torch.stack([value.detach().float().reshape(()) for value in stats.values()]).tolist()
    return dict(zip(stats, values))


def hardware_summary(device: torch.device, world_size: int) -> dict:
    import platform

    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = platform.processor() or platform.machine()
        try:
            for line in Path("/proc/cpuinfo").read_text().splitlines():
                if line.startswith("model name"):
                    name = f"{line.split(':', 1)[1].strip()} ({os.cpu_count()} cores)"
                    break
        except OSError:
            pass
    return {
        "device": device.type,
        "name": name,
        "processes": world_size,
        "cpu_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "malloc_tunables": os.environ.get("GLIBC_TUNABLES"),  # see gan_studio/utils/allocator.py
    }


def shape_map(images: torch.Tensor) -> torch.Tensor:
    """Where the edges are, blind to colour and lighting: the gradient magnitude of each image's
    standardised luminance, pooled 2x2.

    Mode seeking on raw pixels is satisfied most cheaply by recolouring the part or re-lighting the
    table, which is what a class-conditional G on few images learns to do while keeping one pose.
    Here a dark and a light part in the same place look alike, and a part moved or turned does not.
    """
    gray = images.float().mean(dim=1, keepdim=True)
    gray = (gray - gray.mean(dim=(2, 3), keepdim=True)) / (gray.std(dim=(2, 3), keepdim=True) + 1e-3)
    dx = gray[..., :, 1:] - gray[..., :, :-1]
    dy = gray[..., 1:, :] - gray[..., :-1, :]
    edges = torch.sqrt(dx[..., :-1, :] ** 2 + dy[..., :, :-1] ** 2 + 1e-6)
    return F.avg_pool2d(edges, 2)


def pose_features(images: torch.Tensor, size: int = 16) -> torch.Tensor:
    """[B, size*size] coarse edge maps (``shape_map`` pooled): where a part's outline lies."""
    return F.adaptive_avg_pool2d(shape_map(images), size).flatten(1)


def soft_silhouette(images: torch.Tensor, floor: float = 0.3) -> torch.Tensor:
    """[B, H, W] soft mask of what differs from each image's border colour (images in [-1, 1]).

    The differentiable twin of ``benchmarks/pose_spread.py``'s silhouettes: the part is what stands
    out from the table, whose colour the image border gives. The background colour and the
    threshold (the larger of ``floor`` and half the 99th-percentile distance) are held fixed for
    the gradient: it reaches what G draws, not the yardstick. A G that answers it with dark blobs
    rather than turned parts shows in precision and the sample grid
    (docs/experiments/2026-11-29-pose-mmd-run-x.md).
    """
    x = images.float()
    border = torch.cat(
        [
            x[..., :2, :].flatten(2),
            x[..., -2:, :].flatten(2),
            x[..., :, :2].flatten(2),
            x[..., :, -2:].flatten(2),
        ],
        dim=2,
    )
    background = border.median(dim=2).values.detach()[..., None, None]
    distance = torch.sqrt(((x - background) ** 2).sum(dim=1) + 1e-6)
    threshold = torch.clamp(0.5 * torch.quantile(distance.detach().flatten(1), 0.99, dim=1), min=floor)
    threshold = threshold[:, None, None]
    return torch.sigmoid((distance - threshold) / (0.1 * threshold))


def pose_moments(images: torch.Tensor) -> torch.Tensor:
    """[B, 4] where a part lies and which way it points: the soft silhouette's principal-axis
    vector (elongation * (cos 2θ, sin 2θ), from its second moments) and its centroid (doubled, so
    that a shift across the image weighs like a turn).

    Edge maps pooled to 16x16 carry a part's orientation only weakly; these four numbers are it.
    """
    mask = soft_silhouette(images)
    h, w = mask.shape[-2:]
    ys = torch.linspace(0.0, 1.0, h, device=mask.device)[:, None].expand(h, w)
    xs = torch.linspace(0.0, 1.0, w, device=mask.device)[None, :].expand(h, w)
    area = mask.sum(dim=(1, 2)) + 1e-3
    cx = (mask * xs).sum(dim=(1, 2)) / area
    cy = (mask * ys).sum(dim=(1, 2)) / area
    dx, dy = xs - cx[:, None, None], ys - cy[:, None, None]
    cxx = (mask * dx * dx).sum(dim=(1, 2)) / area
    cyy = (mask * dy * dy).sum(dim=(1, 2)) / area
    cxy = (mask * dx * dy).sum(dim=(1, 2)) / area
    trace = cxx + cyy + 1e-6
    return torch.stack([(cxx - cyy) / trace, 2.0 * cxy / trace, 2.0 * cx, 2.0 * cy], dim=1)


def _mean_kernel(
    a: torch.Tensor, b: torch.Tensor, gamma: float | tuple[float, ...], unbiased: bool = False
) -> torch.Tensor:
    """Mean Gaussian kernel exp(-gamma |a_i - b_j|^2), summed over several gammas when given a
    tuple; ``unbiased`` leaves out i == j (a is b)."""
    d2 = torch.cdist(a, b) ** 2
    k = sum(torch.exp(-g * d2) for g in (gamma if isinstance(gamma, tuple) else (gamma,)))
    if not unbiased:
        return k.mean()
    n = len(a)
    return (k.sum() - k.diagonal().sum()) / (n * (n - 1))


def reconstruction_loss(kind: str):
    if kind == "mse":
        return F.mse_loss
    if kind == "l1":
        return F.l1_loss
    if kind == "lpips":
        from gan_studio.perceptual import load_lpips

        lpips_model = load_lpips()

        def lpips_loss(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
            if a.shape[-1] < 64:  # the backbones' pooling needs >= 64 px inputs
                a = F.interpolate(a, size=64, mode="bilinear", align_corners=False)
                b = F.interpolate(b, size=64, mode="bilinear", align_corners=False)
            return lpips_model.to(a.device)(a.float(), b.float()).mean()

        return lpips_loss
    raise ValueError(f"Unknown reconstruction loss {kind!r}: use mse, l1 or lpips")


def _squared_mmd(
    fake: torch.Tensor,
    real: torch.Tensor,
    gamma: float | tuple[float, ...],
    real_term: torch.Tensor | None = None,
) -> torch.Tensor:
    """Squared MMD between two samples (unbiased within each); ``real_term`` when already known."""
    if real_term is None:
        real_term = _mean_kernel(real, real, gamma, unbiased=len(real) > 1)
    return (
        _mean_kernel(fake, fake, gamma, unbiased=len(fake) > 1)
        + real_term
        - 2.0 * _mean_kernel(fake, real, gamma)
    )


class Trainer:
    """Owns the models, optimisers, data and run directory of one training run."""

    def __init__(
        self,
        config: TrainConfig,
        *,
        resume: bool = False,
        progress: bool = True,
        command: str | None = None,
        phase_options: dict | None = None,
    ):
        """``phase_options``: values of ``TrainConfig.PHASE_OPTIONS`` given explicitly for a resume;
        those that differ from the run's start a new phase (recorded in run.json)."""
        self.command = command  # the CLI line that started the run, recorded for model cards
        self.resume = resume
        self.progress = progress
        self.run_dir = Path(config.out)
        run_lock.refuse_if_held(self.run_dir)  # say so before any other complaint about the run
        self.stop_requested = False

        self.phase_changes: dict = {}
        if resume:
            config = self._config_for_resume(config, phase_options or {})
        elif phase_options:
            config = TrainConfig.from_dict({**config.to_dict(), **phase_options})
        self.config = cfg = config
        self.policy = parse_policy(cfg.diffaug)
        self.guide_policy = parse_policy(cfg.guide_augment, GUIDE_POLICIES)
        if cfg.guide_weight > 0 and not cfg.guide:
            raise ValueError("--guide-weight needs --guide GUIDE_DIR (a classifier from train-evaluator).")
        if not 0.0 < cfg.guide_confidence <= 1.0:
            raise ValueError(f"--guide-confidence must be in (0, 1], got {cfg.guide_confidence}.")
        if cfg.mode_seeking_space not in ("pixels", "shape"):
            raise ValueError(
                f"--mode-seeking-space must be 'pixels' or 'shape', got {cfg.mode_seeking_space!r}."
            )
        if cfg.guide_target not in ("ce", "mmd"):
            raise ValueError(f"--guide-target must be 'ce' or 'mmd', got {cfg.guide_target!r}.")
        if cfg.class_group_size < 1 or cfg.batch % cfg.class_group_size:
            raise ValueError(
                f"--class-groups {cfg.class_group_size} must divide --batch {cfg.batch} (e.g. batch 16, groups 4)."
            )
        if cfg.class_group_size > 1 and cfg.mode_seeking > 0 and cfg.class_group_size % 2:
            raise ValueError(
                f"--mode-seeking pairs two fakes of one class: use an even --class-groups (got {cfg.class_group_size})."
            )
        if cfg.guide_confidence < 1.0 and not cfg.guide:
            raise ValueError(
                "--guide-confidence needs --guide GUIDE_DIR (a classifier from train-evaluator)."
            )

        device = pick_device(cfg.device)
        self.accelerator = Accelerator(cpu=device.type == "cpu")
        self.device = self.accelerator.device
        self.precision = resolve_precision(cfg.precision, self.device)
        # channels_last speeds up GPU convolutions, but on CPUs without AVX512 (measured on an AVX2 EPYC)
        # oneDNN's weight gradients in that layout are ~3x slower, so "auto" keeps NCHW there.
        self.channels_last = {"on": True, "off": False}.get(
            str(cfg.channels_last).lower(), self.device.type == "cuda"
        )
        if isinstance(cfg.channels_last, bool):  # configs written before the option became tri-state
            self.channels_last = cfg.channels_last
        self.is_main = self.accelerator.is_main_process
        self.rank = self.accelerator.process_index
        self.world_size = self.accelerator.num_processes
        if self.device.type == "cpu" and self.world_size > 1:
            torch.set_num_threads(max(1, (os.cpu_count() or 1) // self.accelerator.num_processes))
        # One trainer per run folder, taken before anything is written; fit() gives it back.
        self.run_lock = run_lock.hold(self.run_dir, command, take=self.is_main)
        with self.run_lock.released_on_error():
            self._set_up(resume)

    def _set_up(self, resume: bool) -> None:
        cfg = self.config
        if self.is_main:  # what killed trainers left behind (the lock says none is running now)
            run_files.recover(self.run_dir, check_checkpoints=resume, announce=True)
        torch.manual_seed(cfg.seed * 1000 + self.rank)
        self.data_rng = torch.Generator().manual_seed(cfg.seed * 1000 + 17 + self.rank)

        self._load_data()
        self._build_models()
        self.step = 0
        self.train_seconds = 0.0  # cumulative over resumes, excluding start-up
        if resume:
            self._load_latest()
            if self.phase_changes and self.is_main:
                self._record_phase()
        elif self.is_main:
            if ckpt.list_checkpoints(self.run_dir):
                raise ckpt.CheckpointError(
                    f"'{self.run_dir}' already holds checkpoints. Pass --resume to continue that run, "
                    "or choose a new --out folder (nothing was overwritten)."
                )
            self._write_run_files()
        self.accelerator.wait_for_everyone()

        self.G, self.D, self.opt_g, self.opt_d = self.accelerator.prepare(
            self.G, self.D, self.opt_g, self.opt_d
        )
        self.recon_loss = reconstruction_loss(cfg.recon_loss)
        grid_gen = torch.Generator().manual_seed(1234)
        self.grid_z = torch.randn(len(self.class_names) * 8, cfg.z_dim, generator=grid_gen)
        self.grid_labels = torch.arange(len(self.class_names)).repeat_interleave(8)

    # ----------------------------------------------------------------------------- set-up
    def _config_for_resume(self, cli_config: TrainConfig, phase_options: dict) -> TrainConfig:
        run_json = self.run_dir / "run.json"
        if not run_json.is_file() or ckpt.latest_checkpoint(self.run_dir) is None:
            raise ckpt.CheckpointError(
                f"Cannot resume: '{self.run_dir}' has no checkpoint yet. Start it without --resume "
                "(or check the --out path)."
            )
        saved = run_files.saved_config(self.run_dir)  # checked against the declared ranges
        for name in TrainConfig.RESUMABLE_OVERRIDES:
            setattr(saved, name, getattr(cli_config, name))
        for name, value in phase_options.items():
            if name not in TrainConfig.PHASE_OPTIONS:
                raise ValueError(f"'{name}' cannot change when a run is resumed.")
            if value != getattr(saved, name):
                self.phase_changes[name] = value
                setattr(saved, name, value)
        return saved

    def _record_phase(self) -> None:
        """A resume that changed a phase option: save the new config and when it took effect, so
        the run (and a model card made from it) says exactly how it was trained."""
        run_json = self.run_dir / "run.json"
        info = ckpt.read_json(run_json)
        info["config"] = self.config.to_dict()
        info.setdefault("phases", []).append(
            {"from_step": self.step, "changes": dict(self.phase_changes), "command": self.command}
        )
        ckpt.write_json_atomic(run_json, info)

    def _load_data(self) -> None:
        cfg = self.config
        if self.is_main:
            root = resolve_dataset_source(cfg.data)  # builds the demo data / unpacks a zip once
        self.accelerator.wait_for_everyone()
        root = resolve_dataset_source(cfg.data)
        data = load_labeled_images(
            root,
            cfg.resolution,
            fit=cfg.fit,
            min_per_class=cfg.min_per_class,
            progress=self.progress and self.is_main,
        )
        self.report = data.report
        split_path = self.run_dir / "split.json"
        if split_path.is_file():
            split = load_split(split_path)
        elif cfg.split_file:
            split = load_split(cfg.split_file)
        else:
            split = make_split(
                data.records, test_fraction=cfg.test_fraction, seed=cfg.seed, group_pattern=cfg.group_pattern
            )
        self.split = split
        train_idx, _ = split.indices(data.records)
        if cfg.train_per_class > 0:
            keep = set(
                few_shot_paths([data.records[i] for i in train_idx], cfg.train_per_class, seed=cfg.seed)
            )
            train_idx = [i for i in train_idx if data.records[i].path in keep]
        self.data = data.subset(train_idx)
        self.data_root = root
        self.class_names = list(data.class_names)
        if len(self.data) == 0:
            raise ValueError(f"The train split of '{cfg.data}' is empty; lower --test-fraction.")
        self.images = self.data.images  # uint8 [N,3,R,R], the in-memory cache
        self.labels = self.data.labels
        self.class_members = [torch.nonzero(self.labels == c).flatten() for c in range(len(self.class_names))]
        self.class_members = [m for m in self.class_members if len(m)]

    def _build_models(self) -> None:
        cfg = self.config
        n = len(self.class_names)
        self.G = Generator(
            resolution=cfg.resolution,
            n_classes=n,
            class_names=self.class_names,
            z_dim=cfg.z_dim,
            width=cfg.g_width,
            embed_dim=cfg.embed_dim,
            spectral_norm=cfg.g_spectral_norm,
        )
        self.D = Discriminator(
            resolution=cfg.resolution,
            n_classes=n,
            width=cfg.d_width,
            aux_classifier=cfg.class_loss > 0,
            widths=cfg.d_widths,
            group_size=cfg.class_group_size,
        )
        if cfg.init_generator and not self.resume:
            self._init_generator(cfg.init_generator)
        memory_format = torch.channels_last if self.channels_last else torch.contiguous_format
        self.G.to(memory_format=memory_format)
        self.D.to(memory_format=memory_format)
        self.G_ema = make_ema(self.G).to(self.device)
        betas = (cfg.beta1, cfg.beta2)
        # The fused Adam kernel updates all tensors in one pass (much faster than the per-tensor loop on CPUs).
        fused = self.device.type in ("cpu", "cuda")
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=cfg.lr_g, betas=betas, fused=fused)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=cfg.lr_d, betas=betas, fused=fused)
        self.guide = self._load_guide() if cfg.guide and cfg.guide_weight > 0 else None
        self._real_banks: dict[str, dict] = {}  # shape_mmd / pose_mmd: real features per class
        self._guide_bank: list[torch.Tensor] | None = None  # guide_target mmd: real features per class
        self._guide_bandwidth = 1.0

    def _init_generator(self, source: str) -> None:
        """Copy a saved generator's weights into G (before the EMA copy is made): fine-tuning."""
        from gan_studio.sampling import load_generator

        G_init, _ = load_generator(source, device="cpu")
        differ = [
            f"{name}: {getattr(G_init, name)!r} there, {getattr(self.G, name)!r} here"
            for name in ("resolution", "z_dim", "class_names")
            if getattr(G_init, name) != getattr(self.G, name)
        ]
        theirs, mine = G_init.state_dict(), self.G.state_dict()
        if not differ and (
            theirs.keys() != mine.keys() or any(theirs[k].shape != mine[k].shape for k in mine)
        ):
            differ.append("layer widths differ (--ngf, embedding size or spectral norm)")
        if differ:
            raise ValueError(
                f"--init-generator '{source}' does not fit this run ({'; '.join(differ)}). Train with "
                "the same --res, --ngf, --z-dim and dataset classes as that generator."
            )
        self.G.load_state_dict(G_init.state_dict())

    def _load_guide(self):
        """The frozen guide classifier (eval mode, no parameter gradients; gradients reach G only)."""
        from gan_studio.evaluation.classifier import load_evaluator

        try:
            with torch.random.fork_rng(devices=[]):  # building it draws random weights: keep the run's RNG
                guide = load_evaluator(self.config.guide, device=self.device)
        except FileNotFoundError as exc:
            raise FileNotFoundError(
                f"{exc} (--guide of this run; make it with train-evaluator --split "
                f"{self.run_dir / 'split.json'} so that it never sees test images)"
            ) from None
        if guide.class_names != self.class_names:
            raise ValueError(
                f"The guide '{self.config.guide}' knows the classes {guide.class_names}, this run trains "
                f"{self.class_names}. Train the guide on the same dataset (train-evaluator --split "
                f"{self.run_dir / 'split.json'})."
            )
        return guide.eval().requires_grad_(False)

    def _guide_mmd(self, features: torch.Tensor, labels: torch.Tensor, n_real: int = 32) -> torch.Tensor:
        """Per-class squared MMD between the fakes' guide features and the class's real ones.

        Cross-entropy rewards each fake for being the most typical member of its class, so a class
        collapses onto one pose. MMD compares distributions: fakes are drawn towards all of their
        class's real images and pushed apart from each other (the unbiased fake-fake term), so
        covering one pose leaves a gap. Real features are computed once (eval mode) and sampled.
        """
        if self._guide_bank is None:
            _, bank = self.guide.predict_uint8(self.images)
            bank = torch.from_numpy(bank).to(self.device)
            labels_all = self.labels.to(bank.device)
            self._guide_bank = [bank[labels_all == c] for c in range(len(self.class_names))]
            sample = bank[torch.randperm(len(bank), generator=torch.Generator().manual_seed(0))[:512]]
            self._guide_bandwidth = torch.cdist(sample, sample).median().item() ** 2  # median heuristic
        gamma = 1.0 / (2.0 * self._guide_bandwidth)
        terms = []
        for c in labels.unique().tolist():
            fake = features[labels == c]
            bank = self._guide_bank[c]
            real = bank[torch.randint(len(bank), (min(n_real, len(bank)),), device=bank.device)]
            terms.append(_squared_mmd(fake, real, gamma))
        return torch.stack(terms).mean()

    # Kernel widths of the per-class MMDs (shape and pose), as fractions of a class's median squared
    # distance between its real images. A single wide kernel only matches the class's mean, which
    # one blurred pose meets; narrow ones see whether each real pose has a fake near it.
    SHAPE_MMD_SCALES = (0.1, 0.3, 1.0)

    def _real_bank(self, features) -> dict:
        """``features`` of every real train image and its mirror image (training flips them), per
        class, with the class's kernel widths (``SHAPE_MMD_SCALES``) and its constant real-real term."""
        feats, labels_all = [], []
        for i in range(0, len(self.images), 256):
            real = self.images[i : i + 256].float().div(127.5).sub(1.0)
            feats.append(torch.cat([features(real), features(real.flip(3))]))
            labels_all.append(self.labels[i : i + 256].repeat(2))
        bank, labels_all = torch.cat(feats).to(self.device), torch.cat(labels_all).to(self.device)
        classes = []
        for c in range(len(self.class_names)):
            real = bank[labels_all == c]
            d2 = torch.pdist(real) ** 2  # each pair once
            median = float(d2.median()) if len(d2) and d2.median() > 0 else 1.0
            gammas = tuple(1.0 / (2.0 * scale * median) for scale in self.SHAPE_MMD_SCALES)
            classes.append((real, gammas, _mean_kernel(real, real, gammas, unbiased=len(real) > 1)))
        return {"features": features, "classes": classes}

    def _class_mmd(self, kind: str, fake: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Mean over the batch's classes of the squared MMD between the fakes' features (``kind``:
        "shape", ``pose_features``; "pose", ``pose_moments``) and all of the class's real ones."""
        if kind not in self._real_banks:
            self._real_banks[kind] = self._real_bank({"shape": pose_features, "pose": pose_moments}[kind])
        bank = self._real_banks[kind]
        features = bank["features"](fake.float())
        terms = [_squared_mmd(features[labels == c], *bank["classes"][c]) for c in labels.unique().tolist()]
        return torch.stack(terms).mean()

    def _write_run_files(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        save_split(self.split, self.run_dir / "split.json")
        ckpt.write_json_atomic(self.run_dir / "data_report.json", self.report.to_dict())
        # The exact real images this run trains on (the whole train split, or its few-shot subset).
        ckpt.write_json_atomic(self.run_dir / "train_files.json", [r.path for r in self.data.records])
        ckpt.write_json_atomic(
            self.run_dir / "run.json",
            {
                "format_version": ckpt.FORMAT_VERSION,
                "kind": "gan-studio-run",
                "config": self.config.to_dict(),
                "class_names": self.class_names,
                "data": {
                    "source": self.config.data,
                    "root": str(self.data_root),
                    "resolution": self.config.resolution,
                    "fit": self.config.fit,
                    "n_train": len(self.data),
                    "train_per_class": self.config.train_per_class,
                    "n_test": len(self.split.test),
                    "counts": self.report.counts,
                },
                "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
                "command": self.command,
                "hardware": hardware_summary(self.device, self.world_size),
            },
        )
        (self.run_dir / "log.jsonl").write_text("")

    def _load_latest(self) -> None:
        path = run_files.checkpoint_to_resume(self.run_dir, announce=self.is_main)  # the newest intact one
        meta = ckpt.load_checkpoint_meta(path)
        if meta["class_names"] != self.class_names:
            raise ckpt.CheckpointError(
                f"The classes in '{self.config.data}' ({self.class_names}) differ from those the run was "
                f"trained on ({meta['class_names']}). Resume with the original dataset."
            )
        for name, model in (("generator", self.G), ("generator_ema", self.G_ema), ("discriminator", self.D)):
            ckpt.load_weights(model, path / name / "model.safetensors")
        state = ckpt.load_training_state(path)
        self.opt_g.load_state_dict(state["optimizer_g"])
        self.opt_d.load_state_dict(state["optimizer_d"])
        self.step = int(state["step"])
        self.train_seconds = float(state.get("train_seconds", 0.0))
        rng = state["rng"]
        if len(rng) != self.world_size:
            raise ckpt.CheckpointError(
                f"'{path}' was written by {len(rng)} process(es), this run has {self.world_size}. "
                "Resume with the same number of processes to continue exactly."
            )
        mine = rng[self.rank]
        torch.set_rng_state(mine["torch"])
        self.data_rng.set_state(mine["data"])
        if "cuda" in mine and torch.cuda.is_available():
            torch.cuda.set_rng_state(mine["cuda"])
        if self.is_main:  # log lines after this checkpoint will be redone; a torn last one is dropped
            for note in run_files.trim_log(self.run_dir, self.step):
                print(f"note: {note}", file=sys.stderr)

    # ----------------------------------------------------------------------------- training
    def _batch_indices(self) -> torch.Tensor:
        """Random train images; with --class-groups K, K of each of batch/K classes, in a row."""
        k = self.config.class_group_size
        if k == 1:
            return torch.randint(len(self.images), (self.config.batch,), generator=self.data_rng)
        n_groups = self.config.batch // k
        n_classes = len(self.class_members)
        order = torch.cat(
            [torch.randperm(n_classes, generator=self.data_rng) for _ in range(-(-n_groups // n_classes))]
        )[:n_groups]
        picks = [
            self.class_members[c][torch.randint(len(self.class_members[c]), (k,), generator=self.data_rng)]
            for c in order.tolist()
        ]
        return torch.cat(picks)

    def _real_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        idx = self._batch_indices()
        images = self.images[idx].to(self.device, non_blocking=True).float().div_(127.5).sub_(1.0)
        labels = self.labels[idx].to(self.device)
        if self.config.flip:
            flip = torch.rand(images.shape[0], device=self.device) < 0.5
            images = torch.where(flip[:, None, None, None], images.flip(3), images)
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        return images, labels

    def train_step(self) -> StepStats:
        cfg = self.config
        G, D = self.G, self.D
        D_plain = self.accelerator.unwrap_model(D)
        real, labels = self._real_batch()
        z = torch.randn(real.shape[0], cfg.z_dim, device=self.device)
        half = real.shape[0] // 2
        # The fakes' classes. They are the real batch's classes (so D compares like with like),
        # except that with mode seeking pairs of fakes share a class (the second half repeats the
        # first half's), so that the term below compares two latents of the same class. The reals
        # keep their own labels: relabelling them would teach D's class terms wrong answers.
        # With class groups, neighbours (2i, 2i+1) already share a class and are the pairs.
        fake_labels = labels
        grouped = cfg.class_group_size > 1
        if cfg.mode_seeking > 0 and half and not grouped:
            fake_labels = labels.clone()
            fake_labels[half : 2 * half] = labels[:half]

        warming_up = self.step < cfg.d_warmup  # only D trains: G needs no graph
        with autocast(self.device, self.precision), torch.set_grad_enabled(not warming_up):
            fake = G(z, fake_labels)
        loss_ms = torch.zeros((), device=self.device)
        if cfg.mode_seeking > 0 and half:
            # MSGAN (Mao et al. 2019): penalise a generator whose images move less than its latents,
            # the within-class collapse a class-conditional GAN on few images is prone to.
            view = shape_map(fake) if cfg.mode_seeking_space == "shape" else fake.float()
            first, second = (
                (slice(0, None, 2), slice(1, None, 2)) if grouped else (slice(0, half), slice(half, 2 * half))
            )
            image_gap = (view[first] - view[second]).abs().mean(dim=(1, 2, 3))
            latent_gap = (z[first] - z[second]).abs().mean(dim=1)
            loss_ms = 1.0 / ((image_gap / latent_gap).mean() + 1e-5)
        fake_aug = diff_augment(fake, self.policy)
        real_aug = diff_augment(real, self.policy)

        # D step. The fake half runs without gradient sync; the real half (which uses every
        # parameter, decoders included) syncs the accumulated gradients across processes.
        self.opt_d.zero_grad(set_to_none=True)
        with self.accelerator.no_sync(D):
            with autocast(self.device, self.precision):
                out_fake = D(fake_aug.detach(), fake_labels)
            logits_fake = out_fake.logits.float()
            loss_d_fake = F.relu(torch.rand_like(logits_fake) * 0.2 + 0.8 + logits_fake).mean()
            self.accelerator.backward(loss_d_fake)
        with autocast(self.device, self.precision):
            out_real = D(real_aug, labels, reconstruct=True)
        logits_real = out_real.logits.float()
        loss_d_real = F.relu(torch.rand_like(logits_real) * 0.2 + 0.8 - logits_real).mean()
        targets = D_plain.reconstruction_targets(real_aug, out_real.part)
        loss_recon = sum(
            self.recon_loss(out_real.reconstructions[k].float(), targets[k].float()) for k in targets
        )
        loss_cls_real = torch.zeros((), device=self.device)
        acc_cls_real = torch.zeros((), device=self.device)
        if out_real.class_logits is not None:
            class_logits = out_real.class_logits.float()
            loss_cls_real = F.cross_entropy(class_logits, labels)
            acc_cls_real = (class_logits.argmax(1) == labels).float().mean()
        self.accelerator.backward(
            loss_d_real + cfg.recon_weight * loss_recon + cfg.class_loss * loss_cls_real
        )
        self.opt_d.step()

        d_stats = dict(
            loss_d_real=loss_d_real,
            loss_d_fake=loss_d_fake,
            loss_recon=loss_recon,
            logits_real=logits_real.mean(),
            logits_fake=logits_fake.mean(),
            r_t=torch.sign(logits_real).mean(),
            loss_cls_real=loss_cls_real,
            acc_cls_real=acc_cls_real,
        )
        if warming_up:  # D catches up with a G it did not train with (--init-generator)
            return StepStats(**host_floats(d_stats), loss_g=0.0)

        # G step through the updated D (its weights frozen: no D gradients are computed).
        self.opt_g.zero_grad(set_to_none=True)
        D_plain.requires_grad_(False)
        with autocast(self.device, self.precision):
            out_g = D_plain(fake_aug, fake_labels)
        loss_g = -out_g.logits.float().mean()
        loss_cls_fake = torch.zeros((), device=self.device)
        if out_g.class_logits is not None:
            loss_cls_fake = F.cross_entropy(out_g.class_logits.float(), fake_labels)
        loss_shape_mmd = torch.zeros((), device=self.device)
        if cfg.shape_mmd > 0:
            loss_shape_mmd = self._class_mmd("shape", fake, fake_labels)
        loss_pose_mmd = torch.zeros((), device=self.device)
        if cfg.pose_mmd > 0:
            loss_pose_mmd = self._class_mmd("pose", fake, fake_labels)
        loss_guide = torch.zeros((), device=self.device)
        acc_guide = torch.zeros((), device=self.device)
        if self.guide is not None:
            # Its own augmentation (--guide-augment; never cutout, which it did not see in training):
            # G must make the class visible wherever the part lands, not a pixel pattern.
            guide_in = self.guide.fit_resolution(diff_augment(fake, self.guide_policy).float())
            if cfg.guide_target == "mmd":
                with autocast(self.device, self.precision):
                    guide_features = self.guide.features(guide_in)
                    guide_logits = self.guide.head(guide_features).float()
                loss_guide = self._guide_mmd(guide_features.float(), fake_labels)
            else:
                with autocast(self.device, self.precision):
                    guide_logits = self.guide(guide_in).float()
                loss_guide = F.cross_entropy(guide_logits, fake_labels, reduction="none")
                if cfg.guide_confidence < 1.0:
                    # -log p + log c > 0 exactly while p < c: recognised fakes get no further push.
                    loss_guide = F.relu(loss_guide + math.log(cfg.guide_confidence))
                loss_guide = loss_guide.mean()
            acc_guide = (guide_logits.argmax(1) == fake_labels).float().mean()
        self.accelerator.backward(
            loss_g
            + cfg.mode_seeking * loss_ms
            + cfg.class_loss * loss_cls_fake
            + cfg.guide_weight * loss_guide
            + cfg.shape_mmd * loss_shape_mmd
            + cfg.pose_mmd * loss_pose_mmd
        )
        D_plain.requires_grad_(True)
        self.opt_g.step()
        # EMA ramp-up: average over roughly the steps so far until the full horizon is reached, so
        # that short runs (and the first samples of long ones) are not dominated by the initial weights.
        decay = min(cfg.ema_decay, (1.0 + self.step) / (10.0 + self.step))
        update_ema(self.G_ema, self.accelerator.unwrap_model(G), decay)

        return StepStats(
            **host_floats(
                dict(
                    d_stats,
                    loss_g=loss_g,
                    loss_ms=loss_ms,
                    loss_cls_fake=loss_cls_fake,
                    loss_shape_mmd=loss_shape_mmd,
                    loss_pose_mmd=loss_pose_mmd,
                    loss_guide=loss_guide,
                    acc_guide_fake=acc_guide,
                )
            )
        )

    # ----------------------------------------------------------------------------- outputs
    def _status(self, state: str, **extra) -> None:
        if self.is_main:
            ckpt.write_json_atomic(
                self.run_dir / "status.json",
                {
                    "state": state,
                    "step": self.step,
                    "total_steps": self.config.steps,
                    "pid": os.getpid(),
                    "world_size": self.world_size,
                    "device": str(self.device),
                    "precision": self.precision,
                    "updated": time.time(),
                    **extra,
                },
            )

    @torch.no_grad()
    def save_samples(self) -> Path | None:
        """Per-class grid from the EMA generator (fixed latents: comparable across steps) and
        D's reconstructions of a few real images (is the self-supervision working?)."""
        if not self.is_main:
            return None
        out = self.run_dir / "samples"
        out.mkdir(parents=True, exist_ok=True)
        G = self.G_ema.eval()
        images = []
        for i in range(0, len(self.grid_z), 64):
            z = self.grid_z[i : i + 64].to(self.device)
            y = self.grid_labels[i : i + 64].to(self.device)
            with autocast(self.device, self.precision):
                images.append(G(z, y, noise_mode="const").float().cpu())
        grid = to_uint8(torch.cat(images))
        path = out / f"step_{self.step:07d}.png"
        save_image_grid(grid, path, ncol=8, row_labels=self.class_names)
        save_image_grid(grid, out / "latest.png", ncol=8, row_labels=self.class_names)

        D = self.accelerator.unwrap_model(self.D)
        was_training = D.training
        D.eval()
        gen = torch.Generator().manual_seed(99)
        idx = torch.randint(len(self.images), (min(8, len(self.images)),), generator=gen)
        real = self.images[idx].to(self.device).float().div(127.5).sub(1.0)
        with autocast(self.device, self.precision):
            rec = D(real, self.labels[idx].to(self.device), reconstruct=True, part=0).reconstructions
        size = D.rec_size
        rows = [to_uint8(F.interpolate(real, size=size, mode="area").cpu())]
        rows += [
            to_uint8(F.interpolate(rec[k].float(), size=size, mode="nearest").cpu())
            for k in ("big", "small", "part")
        ]
        save_image_grid(
            torch.cat(rows),
            out / "reconstructions.png",
            ncol=len(idx),
            row_labels=["real", "D: whole", "D: small", "D: top-left"],
        )
        D.train(was_training)
        return path

    def save_checkpoint(self) -> Path | None:
        rng = {"torch": torch.get_rng_state(), "data": self.data_rng.get_state()}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        all_rng = gather_object([rng]) if self.world_size > 1 else [rng]
        path = None
        if self.is_main:
            unwrap = self.accelerator.unwrap_model
            meta = {
                "class_names": self.class_names,
                "config": self.config.to_dict(),
                "world_size": self.world_size,
                "resolution": self.config.resolution,
                "train_seconds": round(self.train_seconds, 1),
                "hardware": hardware_summary(self.device, self.world_size),
                "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
            }
            state = {
                "format_version": ckpt.FORMAT_VERSION,
                "step": self.step,
                "train_seconds": self.train_seconds,
                "optimizer_g": self.opt_g.state_dict(),
                "optimizer_d": self.opt_d.state_dict(),
                "rng": [{k: v.cpu() for k, v in r.items()} for r in all_rng],
            }
            path = ckpt.save_checkpoint(
                self.run_dir,
                self.step,
                models={
                    "generator": unwrap(self.G),
                    "generator_ema": self.G_ema,
                    "discriminator": unwrap(self.D),
                },
                training_state=state,
                meta=meta,
                extra_files={"split.json": self.run_dir / "split.json"},
                keep=self.config.keep_checkpoints,
            )
        self.accelerator.wait_for_everyone()
        return path

    def _log(self, record: dict) -> None:
        if self.is_main:
            with open(self.run_dir / "log.jsonl", "a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")

    def _request_stop(self) -> None:
        self.stop_requested = True

    def _should_stop(self) -> bool:
        if self.world_size == 1:
            return self.stop_requested
        flag = torch.tensor([1.0 if self.stop_requested else 0.0], device=self.device)
        return bool(self.accelerator.reduce(flag, reduction="sum").item() > 0)

    def fit(self) -> Path | None:
        """Train until ``config.steps``; save on schedule, at the end, and on Ctrl-C / SIGTERM."""
        with self.run_lock, stop_requests(self._request_stop, announce=self.is_main):
            return self._fit()

    def _fit(self) -> Path | None:
        cfg = self.config
        self._status("running")
        bar = tqdm(
            total=cfg.steps,
            initial=self.step,
            disable=not (self.progress and self.is_main),
            desc="train",
            unit="step",
            dynamic_ncols=True,
        )
        acc: dict[str, float] = {}
        n_acc, t_last, t_start, step_start = 0, time.perf_counter(), time.perf_counter(), self.step
        last_ckpt: Path | None = None
        last_saved = self.step if self.resume else -1
        state = "finished"
        try:
            while self.step < cfg.steps:
                if self._should_stop():
                    state = "stopped"
                    break
                t_step = time.perf_counter()
                stats = self.train_step()
                self.step += 1
                self.train_seconds += time.perf_counter() - t_step
                bar.update(1)
                for k, v in vars(stats).items():
                    acc[k] = acc.get(k, 0.0) + v
                n_acc += 1
                if not all(math.isfinite(v) for v in vars(stats).values()):
                    raise FloatingPointError(
                        f"Training diverged at step {self.step} (non-finite loss: {stats}). Resume from the last "
                        "checkpoint with a lower learning rate (--lr-g/--lr-d) or --precision fp32."
                    )
                if self.step % cfg.log_every == 0 or self.step == cfg.steps:
                    now = time.perf_counter()
                    ips = n_acc * cfg.batch * self.world_size / max(now - t_last, 1e-9)
                    record = {
                        "step": self.step,
                        **{k: v / n_acc for k, v in acc.items()},
                        "images_per_s": ips,
                        "time": time.time(),
                    }
                    self._log(record)
                    rate = (self.step - step_start) / max(now - t_start, 1e-9)
                    self._status("running", images_per_s=ips, eta_s=(cfg.steps - self.step) / max(rate, 1e-9))
                    bar.set_postfix(
                        d=f"{record['loss_d_real'] + record['loss_d_fake']:.3f}",
                        g=f"{record['loss_g']:.3f}",
                        rec=f"{record['loss_recon']:.3f}",
                        r_t=f"{record['r_t']:.2f}",
                        ips=f"{ips:.1f}",
                    )
                    acc, n_acc, t_last = {}, 0, now
                if cfg.sample_every > 0 and self.step % cfg.sample_every == 0:
                    self.save_samples()
                if cfg.ckpt_every > 0 and self.step % cfg.ckpt_every == 0:
                    last_ckpt, last_saved = self.save_checkpoint(), self.step
            if last_saved != self.step:  # decided identically on every rank
                self.save_samples()
                last_ckpt = self.save_checkpoint()
        except BaseException as exc:
            self._status("failed", error=f"{type(exc).__name__}: {exc}")
            raise
        finally:
            bar.close()
        self._status(state)
        if state == "stopped" and self.is_main:
            print(f"Stopped at step {self.step}; saved {last_ckpt}. Continue with --resume.", file=sys.stderr)
        return last_ckpt


def train(config: TrainConfig, *, resume: bool = False, progress: bool = True) -> Path | None:
    return Trainer(config, resume=resume, progress=progress).fit()
