"""The training loop: class-conditional FastGAN with DiffAugment, hinge loss and EMA.

One iteration (FastGAN's schedule, one generator forward per step):
  1. G draws a batch of fakes for the classes of a real batch; both are DiffAugmented.
  2. D step: hinge loss on fakes (detached) and on reals, plus the D-side loss terms on the real
     batch (the reconstruction loss of D's decoders; AC-GAN's class loss).
  3. G step: -D(fake), through the updated D, plus the G-side loss terms (mode seeking, shape and
     pose MMD, a frozen guide classifier's loss; see ``gan_studio.training.losses``); then the EMA
     generator follows G.

Data-parallel training is built on accelerate: under ``torchrun --nproc_per_node N`` each process
draws its own batches and DDP averages gradients, so every rank holds identical weights.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from accelerate import Accelerator
from tqdm.auto import tqdm

from gan_studio.data import resolve_dataset_source
from gan_studio.device import (
    autocast,
    hardware_summary,
    pick_device,
    resolve_precision,
    use_channels_last,
    use_compile,
)
from gan_studio.models.diffaug import diff_augment, parse_policy
from gan_studio.models.ema import make_ema, update_ema
from gan_studio.models.layers import fp32
from gan_studio.training import checkpoint as ckpt
from gan_studio.training import losses, run_files, run_lock
from gan_studio.training.config import TrainConfig
from gan_studio.training.networks import build_networks, compiled, load_initial_generator
from gan_studio.training.new_run import write_new_run_files
from gan_studio.training.progress import LogWindow, bar_summary, write_status
from gan_studio.training.run_folder import RunFolder
from gan_studio.training.samples import grid_latents, save_generated_grid, save_reconstructions
from gan_studio.training.stop_signals import stop_requests
from gan_studio.training.train_data import check_class_groups, draw_batch_indices, load_train_set, real_batch
from gan_studio.training.trainer_state import load_latest, save_trainer_checkpoint

__all__ = ["Trainer", "train"]


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
        check_class_groups(cfg)
        losses.check_config(cfg)

        device = pick_device(cfg.device)
        self.accelerator = Accelerator(cpu=device.type == "cpu")
        self.device = self.accelerator.device
        self.precision = resolve_precision(cfg.precision, self.device)
        self.channels_last = use_channels_last(cfg.channels_last, self.device)
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
        self._compile_networks()
        setup = losses.TermSetup(
            self.images, self.labels, len(self.class_names), self.device, self.precision, self.guide
        )
        self.terms = losses.build_terms(cfg, setup)  # LPIPS (--recon-loss) loads its backbone here
        self.stat_names = losses.stat_names()
        self.zero_stat = torch.zeros((), device=self.device)  # what a term that is off reports
        self.grid_z, self.grid_labels = grid_latents(len(self.class_names), cfg.z_dim)

    def _compile_networks(self) -> None:
        """What a step calls G and D through: the networks themselves, or compiled (--compile).
        ``D_frozen``: D in G's step, unwrapped from DDP (its weights are frozen there)."""
        self.compiled = use_compile(self.config.compile)
        D_plain = self.accelerator.unwrap_model(self.D)
        if not self.compiled:
            self.G_train, self.D_train, self.D_frozen = self.G, self.D, D_plain
            return
        self.G_train, self.D_train = compiled(self.G, self.device), compiled(self.D, self.device)
        self.D_frozen = self.D_train if D_plain is self.D else compiled(D_plain, self.device)

    # ----------------------------------------------------------------------------- set-up
    def _config_for_resume(self, cli_config: TrainConfig, phase_options: dict) -> TrainConfig:
        run_json = RunFolder(self.run_dir).run_path
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
        run = RunFolder(self.run_dir)
        info = run.read_run()
        info["config"] = self.config.to_dict()
        info.setdefault("phases", []).append(
            {"from_step": self.step, "changes": dict(self.phase_changes), "command": self.command}
        )
        run.write_run(info)

    def _load_data(self) -> None:
        cfg = self.config
        if self.is_main:
            root = resolve_dataset_source(cfg.data)  # builds the demo data / unpacks a zip once
        self.accelerator.wait_for_everyone()
        root = resolve_dataset_source(cfg.data)
        self.train_set = load_train_set(cfg, root, self.run_dir, progress=self.progress and self.is_main)
        self.data, self.split, self.report = self.train_set.data, self.train_set.split, self.train_set.report
        self.class_names, self.class_members = self.train_set.class_names, self.train_set.class_members
        self.images = self.data.images  # uint8 [N,3,R,R], the in-memory cache
        self.labels = self.data.labels

    def _build_models(self) -> None:
        cfg = self.config
        self.G, self.D = build_networks(cfg, self.class_names)
        if cfg.init_generator and not self.resume:
            load_initial_generator(self.G, cfg.init_generator)
        memory_format = torch.channels_last if self.channels_last else torch.contiguous_format
        self.G.to(memory_format=memory_format)
        self.D.to(memory_format=memory_format)
        self.G_ema = make_ema(self.G).to(self.device)
        betas = (cfg.beta1, cfg.beta2)
        # The fused Adam kernel updates all tensors in one pass (much faster than the per-tensor loop on CPUs).
        fused = self.device.type in ("cpu", "cuda")
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=cfg.lr_g, betas=betas, fused=fused)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=cfg.lr_d, betas=betas, fused=fused)
        self.guide = None  # the frozen guide classifier: refused here, before any run file is written
        if cfg.guide and cfg.guide_weight > 0:
            self.guide = losses.load_guide(cfg, self.class_names, self.run_dir, self.device)

    def _write_run_files(self) -> None:
        hardware = hardware_summary(self.device, self.world_size)
        write_new_run_files(
            self.run_dir, self.config, self.train_set, command=self.command, hardware=hardware
        )

    def _load_latest(self) -> None:
        load_latest(self)

    # ----------------------------------------------------------------------------- training
    def _batch_indices(self) -> torch.Tensor:
        cfg = self.config
        return draw_batch_indices(
            len(self.images), self.class_members, cfg.batch, cfg.class_group_size, self.data_rng
        )

    def _real_batch(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The real batch and its labels on the device, and its labels on the host."""
        idx, flip = self._batch_indices(), self.config.flip
        return real_batch(
            self.images, self.labels, idx, self.device, flip=flip, channels_last=self.channels_last
        )

    def train_step(self) -> dict[str, float]:
        """One D step and one G step; every statistic of ``losses.stat_names()`` as a float (one
        device-to-host copy; ``fit`` reads them once per log line instead)."""
        return dict(zip(self.stat_names, self.step_on_device().tolist(), strict=True))

    def step_on_device(self) -> torch.Tensor:
        """One D step and one G step; their statistics as one float32 vector in ``stat_names``
        order, left where they were computed: the step reads nothing back from the device."""
        cfg = self.config
        if self.compiled and self.device.type == "cuda":
            torch.compiler.cudagraph_mark_step_begin()  # the previous step's graph outputs are done with
        real, labels, classes = self._real_batch()
        z = torch.randn(real.shape[0], cfg.z_dim, device=self.device)
        # The fakes' classes: the real batch's (so D compares like with like), unless a term pairs
        # them (mode seeking). The reals keep their own labels. Decided on the host, where the
        # per-class terms read them without a device read.
        fake_classes = classes
        for term in self.terms.values():
            fake_classes = term.fake_labels(fake_classes)
        fake_labels = labels if fake_classes is classes else fake_classes.to(self.device)

        warming_up = self.step < cfg.d_warmup  # only D trains: G needs no graph
        with autocast(self.device, self.precision), torch.set_grad_enabled(not warming_up):
            fake = self.G_train(z, fake_labels)
        D_plain = self.accelerator.unwrap_model(self.D)
        ctx = losses.StepContext(real, labels, z, fake, fake_labels, D_plain, fake_classes.tolist())
        # Terms that need only the raw fakes run now, before D's step, as they always have: the
        # backward pass adds their gradients in the order the graph was built.
        early = {name: t.generator_loss(ctx) for name, t in self.terms.items() if t.uses_raw_fakes}
        ctx.fake_aug = diff_augment(fake, self.policy)
        ctx.real_aug = diff_augment(real, self.policy)

        stats = self._discriminator_step(ctx)
        if not warming_up:  # during warm-up D catches up with a G it did not train with (--init-generator)
            stats.update(self._generator_step(ctx, early))
            # EMA ramp-up: average over roughly the steps so far until the full horizon is reached, so
            # that short runs (and the first samples of long ones) are not dominated by the initial weights.
            decay = min(cfg.ema_decay, (1.0 + self.step) / (10.0 + self.step))
            update_ema(self.G_ema, self.accelerator.unwrap_model(self.G), decay)
        return losses.stat_vector(stats, self.stat_names, self.zero_stat)

    def _discriminator_step(self, ctx: losses.StepContext) -> dict[str, torch.Tensor]:
        """Hinge loss on the fakes (detached) and the reals, plus the terms' D losses. The fake half
        runs without gradient sync; the real half (which uses every parameter, decoders included)
        syncs the accumulated gradients across processes."""
        D = self.D_train
        self.opt_d.zero_grad(set_to_none=True)
        with self.accelerator.no_sync(self.D):
            with autocast(self.device, self.precision):
                out_fake = D(ctx.fake_aug.detach(), ctx.fake_labels)
            logits_fake = fp32(out_fake.logits)
            loss_d_fake = F.relu(torch.rand_like(logits_fake) * 0.2 + 0.8 + logits_fake).mean()
            self.accelerator.backward(loss_d_fake)
        # The quarter D's part decoder redraws, drawn here where D drew it before (a CPU draw; an
        # argument, so that a compiled D does not stop at it).
        part = int(torch.randint(0, 4, ()).item())
        with autocast(self.device, self.precision):
            ctx.d_real = D(ctx.real_aug, ctx.labels, reconstruct=True, part=part)
        logits_real = fp32(ctx.d_real.logits)
        loss_d_real = F.relu(torch.rand_like(logits_real) * 0.2 + 0.8 - logits_real).mean()
        results = [(term, term.discriminator_loss(ctx)) for term in self.terms.values()]
        total, term_stats = losses.weighted_total(loss_d_real, results)
        self.accelerator.backward(total)
        self.opt_d.step()
        return dict(
            loss_d_real=loss_d_real,
            loss_d_fake=loss_d_fake,
            logits_real=logits_real.mean(),
            logits_fake=logits_fake.mean(),
            r_t=torch.sign(logits_real).mean(),  # ADA's over-fitting signal: near 1, D memorises the reals
            **term_stats,
        )

    def _generator_step(self, ctx: losses.StepContext, early: dict) -> dict[str, torch.Tensor]:
        """-D(fake) through the updated D (its weights frozen: no D gradients are computed), plus
        the terms' G losses (``early``: those already computed from the raw fakes)."""
        self.opt_g.zero_grad(set_to_none=True)
        ctx.discriminator.requires_grad_(False)
        with autocast(self.device, self.precision):
            ctx.d_fake = self.D_frozen(ctx.fake_aug, ctx.fake_labels)
        loss_g = -fp32(ctx.d_fake.logits).mean()
        results = [
            (term, early[name] if name in early else term.generator_loss(ctx))
            for name, term in self.terms.items()
        ]
        total, term_stats = losses.weighted_total(loss_g, results)
        self.accelerator.backward(total)
        ctx.discriminator.requires_grad_(True)
        self.opt_g.step()
        return {"loss_g": loss_g, **term_stats}

    # ----------------------------------------------------------------------------- outputs
    def _status(self, state: str, **extra) -> None:
        if self.is_main:
            where = {"world_size": self.world_size, "device": str(self.device), "precision": self.precision}
            write_status(self.run_dir, state, step=self.step, total_steps=self.config.steps, **where, **extra)

    def save_samples(self) -> Path | None:
        """The EMA generator's per-class grid and D's reconstructions, under ``samples/``."""
        if not self.is_main:
            return None
        out = RunFolder(self.run_dir).samples_dir
        out.mkdir(parents=True, exist_ok=True)
        where = {"device": self.device, "precision": self.precision}
        G = self.G_ema.eval()
        path = save_generated_grid(
            G, self.grid_z, self.grid_labels, self.class_names, out, self.step, **where
        )
        save_reconstructions(self.accelerator.unwrap_model(self.D), self.images, self.labels, out, **where)
        return path

    def save_checkpoint(self) -> Path | None:
        return save_trainer_checkpoint(self)

    def _log(self, record: dict) -> None:
        if self.is_main:
            RunFolder(self.run_dir).append_log(record)

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

    def _due(self, step: int) -> tuple[bool, bool, bool]:
        """Whether ``step`` writes a log line, a sample grid and a checkpoint."""
        cfg = self.config
        log = step % cfg.log_every == 0 or step == cfg.steps
        sample = cfg.sample_every > 0 and step % cfg.sample_every == 0
        return log, sample, cfg.ckpt_every > 0 and step % cfg.ckpt_every == 0

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
        window = LogWindow(self.stat_names, images_per_step=cfg.batch * self.world_size)
        t_start, step_start = time.perf_counter(), self.step
        last_ckpt: Path | None = None
        last_saved = self.step if self.resume else -1
        state = "finished"
        try:
            while self.step < cfg.steps:
                if self._should_stop():
                    state = "stopped"
                    break
                t_step = time.perf_counter()
                window.add(self.step_on_device(), self.step + 1)
                self.step += 1
                log, sample, save = self._due(self.step)
                if log or sample or save:  # read the statistics back (a diverged run saves nothing)
                    window.settle()
                self.train_seconds += time.perf_counter() - t_step
                bar.update(1)
                if log:
                    now = time.perf_counter()
                    record = window.close(self.step, now)
                    self._log(record)
                    rate = (self.step - step_start) / max(now - t_start, 1e-9)
                    eta_s = (cfg.steps - self.step) / max(rate, 1e-9)
                    self._status("running", images_per_s=record["images_per_s"], eta_s=eta_s)
                    bar.set_postfix(**bar_summary(record))
                if sample:
                    self.save_samples()
                if save:
                    last_ckpt, last_saved = self.save_checkpoint(), self.step
            if last_saved != self.step:  # decided identically on every rank
                window.settle()
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
