"""Train tab service: check a dataset, start / stop / resume runs in the background, read their progress.

A run is the folder ``gan_studio train`` writes (see ``gan_studio.training.checkpoint``); this module
only starts that command and reads the files it leaves behind (status.json, log.jsonl, samples/), so
whatever the app shows is exactly what the CLI would have produced.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import signal
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

from gan_studio.app.jobs import Job, JobRunner, cli_command, read_tail
from gan_studio.app.registry import metrics_file
from gan_studio.data import DatasetError, ValidationReport, resolve_dataset_source, scan_image_folder
from gan_studio.training import checkpoint as ckpt
from gan_studio.training import run_files, run_lock
from gan_studio.training.config import TrainConfig, config_problems
from gan_studio.training.run_folder import RunFolder
from gan_studio.utils import limits
from gan_studio.utils.disk_budget import prune_oldest, remove_path

log = logging.getLogger(__name__)
DEMO = "demo"
RESOLUTIONS = (32, 64, 128, 256, 512, 1024)
LOG_FILE = "train.log"
_NAME = re.compile(r"[^A-Za-z0-9_.-]+")


def _default(name: str):
    """TrainConfig's declared default of an option (gan_studio/training/config.py)."""
    return TrainConfig.__dataclass_fields__[name].default


CUSTOM = "custom"  # the Train tab's "no recipe": every option as the tab sets it


def default_recipe() -> str:
    """The recipe the Train tab offers first: a GPU recipe where CUDA is available, else a CPU one."""
    import torch

    return "gpu-128" if torch.cuda.is_available() else "photos-cpu-64"


@dataclass
class TrainOptions:
    """The main knobs of ``gan_studio train`` (defaults: TrainConfig's); everything else keeps the
    CLI default, or the recipe's value when ``recipe`` names one."""

    resolution: int = _default("resolution")
    steps: int = _default("steps")
    batch: int = _default("batch")
    width: int = _default("g_width")  # --ngf; --ndf the same, or the recipe's multiple of it
    z_dim: int = _default("z_dim")
    lr: float = _default("lr_g")
    diffaug: str = _default("diffaug")
    test_fraction: float = _default("test_fraction")
    seed: int = _default("seed")
    precision: str = _default("precision")
    log_every: int | None = None  # None: about 100 points on the loss curve, at most every 10 steps
    sample_every: int = _default("sample_every")
    ckpt_every: int = _default("ckpt_every")
    recipe: str | None = None  # a recipe name: run it, with the options above where they differ from it

    @classmethod
    def from_recipe(cls, name: str | None) -> TrainOptions:
        """The options as a recipe sets them (TrainConfig's defaults for None or "custom")."""
        if not name or name == CUSTOM:
            return cls()
        from gan_studio.training.recipes import load_recipe

        config = load_recipe(name).resolve({}).config
        return cls(
            resolution=config.resolution,
            steps=config.steps,
            batch=config.batch,
            width=config.g_width,
            z_dim=config.z_dim,
            lr=config.lr_g,
            diffaug=config.diffaug,
            test_fraction=config.test_fraction,
            seed=config.seed,
            precision=config.precision,
            log_every=config.log_every,
            sample_every=config.sample_every,
            ckpt_every=config.ckpt_every,
            recipe=name,
        )

    def values(self) -> dict:
        """These options as TrainConfig fields."""
        values = {
            "resolution": self.resolution,
            "steps": self.steps,
            "batch": self.batch,
            "g_width": self.width,
            "d_width": self._d_width(),
            "z_dim": self.z_dim,
            "lr_g": self.lr,
            "lr_d": self.lr,
            "diffaug": self.diffaug,
            "test_fraction": self.test_fraction,
            "seed": self.seed,
            "precision": self.precision,
            "sample_every": self.sample_every,
            "ckpt_every": self.ckpt_every,
        }
        if self.log_every or not self.recipe:
            values["log_every"] = self.log_every or max(1, min(10, self.steps // 100))
        return values

    def _d_width(self) -> int:
        """D keeps the recipe's width relative to G's (the shipped recipe's D is twice as wide)."""
        if not self.recipe or self.recipe == CUSTOM:
            return self.width
        from gan_studio.training.recipes import load_recipe

        config = load_recipe(self.recipe).resolve({}).config
        return max(1, round(self.width * config.d_width / config.g_width))

    def cli_args(self) -> list[str]:
        from gan_studio.training.options import option_args

        if self.resolution not in RESOLUTIONS:
            raise ValueError(f"Resolution {self.resolution} is not supported; choose one of {RESOLUTIONS}.")
        problems = config_problems(self.values())  # the ranges TrainConfig declares
        if problems:
            raise ValueError(f"Check the training options: {'; '.join(problems)}.")
        check_training_limits(self.steps, self.batch, self.resolution)
        if not self.recipe or self.recipe == CUSTOM:
            return option_args(self.values())
        from gan_studio.training.recipes import load_recipe

        recipe = load_recipe(self.recipe)
        config = recipe.resolve({}).config
        changed = {k: v for k, v in self.values().items() if getattr(config, k) != v}
        recipe.resolve({**changed, "out": "RUN"})  # a batch the class groups do not divide fails here
        return ["--recipe", recipe.name, *option_args(changed)]


def check_training_limits(steps: int, batch: int, resolution: int) -> None:
    """Refuse a training this server does not allow (GAN_STUDIO_MAX_STEPS, _BATCH, _RESOLUTION)."""
    limits.refuse_above("steps", steps, f"{steps:,} training steps")
    limits.refuse_above("batch", batch, f"A batch of {batch} images")
    limits.refuse_above("resolution", resolution, f"Training at {resolution} px")


@dataclass
class RunProgress:
    """Everything the Train tab shows about one run, read from its folder."""

    run_dir: Path
    state: str  # starting | running | finished | stopped | failed | interrupted | stale | idle
    step: int = 0
    total_steps: int = 0
    images_per_s: float | None = None
    eta_s: float | None = None
    error: str | None = None
    log: list[dict] = field(default_factory=list)
    samples: Path | None = None
    reconstructions: Path | None = None
    grids: list[tuple[int, Path]] = field(default_factory=list)  # (step, sample grid), oldest first
    checkpoints: list[dict] = field(default_factory=list)
    log_tail: str = ""
    alive: bool = False  # a process this app started is running for it

    @property
    def fraction(self) -> float:
        return min(1.0, self.step / self.total_steps) if self.total_steps else 0.0

    def summary(self) -> str:
        """One markdown line: state, step, speed, ETA."""
        parts = [f"**{self.state}**", f"step {self.step} / {self.total_steps or '?'}"]
        if self.images_per_s:
            parts.append(f"{self.images_per_s:.1f} images/s")
        if self.state == "running" and self.eta_s is not None:
            parts.append(f"ETA {format_duration(self.eta_s)}")
        text = " · ".join(parts)
        if self.error:
            text += f"\n\n**Error:** {self.error}"
        return text


def format_duration(seconds: float) -> str:
    seconds = int(max(0, seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h {minutes:02d}m" if hours else f"{minutes}m {secs:02d}s" if minutes else f"{secs}s"


def sanitize_run_name(name: str) -> str:
    """A run name usable as one folder name: letters, digits, '-', '_', '.'; never empty or hidden."""
    cleaned = _NAME.sub("-", name.strip()).strip("-.")[:64]
    return cleaned or time.strftime("run-%Y%m%d-%H%M%S")


UPLOAD_GRACE_S = 600  # an upload this young may be about to start a run: never pruned for size


def uploads_in_use(runs_dir: Path) -> set[Path]:
    """The uploaded .zips that runs in ``runs_dir`` train on (a resume reads its dataset again)."""
    used = set()
    for run in Path(runs_dir).glob("*/"):
        try:
            data = RunFolder(run).config_values().get("data")
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            continue  # no run file, or a damaged one: nothing it names can be trusted
        if isinstance(data, str) and data.lower().endswith(".zip"):
            used.add(Path(data).resolve())
    return used


def prune_uploads(uploads_dir: Path, keep: set[Path]) -> list[Path]:
    """Keep ``uploads/`` within ``GAN_STUDIO_MAX_UPLOADS_MB``: the least recently used .zips go
    first, never one in ``keep`` (a run trains on it) nor one staged in the last ``UPLOAD_GRACE_S``."""
    keep = {path.resolve() for path in keep}
    return prune_oldest(
        Path(uploads_dir).glob("*.zip"),
        limits.value("uploads_mb") * 2**20,
        remove_path,
        grace_s=UPLOAD_GRACE_S,
        keep=lambda path: path.resolve() in keep,
    )


def stage_upload(zip_path: str | Path, uploads_dir: Path, runs_dir: Path | None = None) -> Path:
    """Copy an uploaded .zip (Gradio deletes its temp files) under a content-derived name, then keep
    the uploads within their budget (those the runs in ``runs_dir`` train on are kept)."""
    src = Path(zip_path)
    if src.suffix.lower() != ".zip":
        raise DatasetError(f"'{src.name}' is not a .zip file. Upload a .zip holding one folder per class.")
    size_mb = src.stat().st_size / 2**20
    if message := limits.exceeded("upload_mb", size_mb, f"'{src.name}' ({size_mb:,.1f} MB)"):
        raise DatasetError(message)
    digest = hashlib.sha256()
    with open(src, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    uploads_dir.mkdir(parents=True, exist_ok=True)
    dest = uploads_dir / f"{digest.hexdigest()[:16]}.zip"
    if dest.is_file():
        os.utime(dest)  # used again: the last to be pruned
    else:
        tmp = dest.with_suffix(".zip.tmp")
        shutil.copyfile(src, tmp)
        tmp.replace(dest)
    in_use = uploads_in_use(runs_dir) if runs_dir is not None else set()
    if removed := prune_uploads(uploads_dir, in_use | {dest}):
        log.info("uploads over GAN_STUDIO_MAX_UPLOADS_MB: removed the %d least recently used", len(removed))
    return dest


def validate_dataset(
    source: str | Path, *, min_per_class: int = 2, progress: bool = True
) -> tuple[Path, ValidationReport]:
    """Resolve 'demo' / a folder / a .zip and scan it: (dataset folder, validation report)."""
    root = resolve_dataset_source(source if source == DEMO else Path(source))
    _, report = scan_image_folder(root, min_per_class=min_per_class, progress=progress)
    return root, report


def read_log(run_dir: Path) -> list[dict]:
    return RunFolder(run_dir).log_records()


def list_run_checkpoints(run_dir: Path) -> list[dict]:
    rows = []
    for path in reversed(ckpt.list_checkpoints(Path(run_dir))):
        try:
            meta = ckpt.load_checkpoint_meta(path)
        except ckpt.CheckpointError:
            continue
        rows.append({"step": int(meta["step"]), "created": meta.get("created", ""), "path": str(path)})
    return rows


def trainer_pid(run_dir: Path) -> int | None:
    """The process holding the run's lock (else the pid in status.json), only if that process is
    alive and is ``gan_studio train --out RUN_DIR``.

    The command-line check (Linux /proc) guards against a recycled pid: nothing else is ever signalled.
    """
    holder = run_lock.live_holder(run_dir)
    if holder is not None and holder.host == socket.gethostname():
        pid = holder.pid
    else:
        try:
            status = RunFolder(run_dir).read_status()
        except ckpt.CheckpointError:
            return None
        pid = status.get("pid")
        if status.get("state") not in {"starting", "running"} or not isinstance(pid, int):
            return None
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return None
    if "gan_studio" not in argv or "train" not in argv or "--out" not in argv:
        return None
    out = argv[argv.index("--out") + 1] if argv.index("--out") + 1 < len(argv) else ""
    return pid if Path(out).resolve() == Path(run_dir).resolve() else None


class TrainingManager:
    """Starts ``gan_studio train`` runs under ``runs_dir`` and reports on any run folder."""

    def __init__(self, runs_dir: str | Path, jobs: JobRunner | None = None):
        self.runs_dir = Path(runs_dir)
        self.jobs = jobs or JobRunner()

    def trainers_elsewhere(self, own_pids: set[int]) -> list[str]:
        """'train NAME (process PID)' for each run under ``runs_dir`` whose trainer is alive but was
        not started by this app process (one an earlier app process left running, or a CLI run)."""
        found = []
        for lock in sorted(self.runs_dir.glob(f"*/{run_lock.LOCK_FILE}")):
            holder = run_lock.live_holder(lock.parent)
            if holder is not None and holder.pid not in own_pids:
                found.append(f"train {lock.parent.name} (process {holder.pid})")
        return found

    def _job_name(self, run_dir: Path) -> str:
        return f"train:{Path(run_dir).resolve()}"

    def job(self, run_dir: Path) -> Job | None:
        return self.jobs.get(self._job_name(run_dir))

    def new_run_dir(self, name: str) -> Path:
        base = sanitize_run_name(name)
        run_dir, n = self.runs_dir / base, 2
        while run_dir.exists():
            run_dir, n = self.runs_dir / f"{base}-{n}", n + 1
        return run_dir

    def start(self, data_source: str | Path, name: str, options: TrainOptions) -> Path:
        """Start a new run (never overwrites one: a taken name gets a suffix)."""
        args = options.cli_args()
        self.jobs.check_capacity()  # before a run folder exists
        run_dir = self.new_run_dir(name)
        run_dir.mkdir(parents=True)
        argv = cli_command("train", "--data", data_source, "--out", run_dir, *args, "--no-progress")
        try:
            self._launch(run_dir, argv, options.steps)
        except BaseException:
            shutil.rmtree(run_dir, ignore_errors=True)  # refused at the last moment: no empty run left
            raise
        return run_dir

    def resume(self, run_dir: Path, steps: int) -> Path:
        """Continue a run from its latest checkpoint up to ``steps`` total steps."""
        run_dir = Path(run_dir)
        run_lock.refuse_if_held(run_dir)  # its trainer still runs (started before the app restarted?)
        run = RunFolder(run_dir).read_run()
        config = run["config"]
        check_training_limits(
            steps,
            int(config.get("batch", _default("batch"))),
            int(config.get("resolution", _default("resolution"))),
        )
        if ckpt.latest_checkpoint(run_dir) is None:
            raise ckpt.CheckpointError(
                f"Run '{run_dir.name}' has no checkpoint to resume from; start a new run."
            )
        latest_step = int(ckpt.load_checkpoint_meta(ckpt.latest_checkpoint(run_dir))["step"])
        if steps <= latest_step:
            raise ValueError(
                f"Run '{run_dir.name}' is already at step {latest_step}; set more total steps to resume."
            )
        recipe = (run.get("recipe") or {}).get("name")
        if recipe:  # the recipe continues its phases, with the overrides the run was started with
            argv = cli_command(
                "train", "--recipe", recipe, "--out", run_dir, "--steps", steps, "--no-progress"
            )
            self._launch(run_dir, argv, steps)
            return run_dir
        argv = cli_command(  # the saved config wins for everything but the schedule (see Trainer)
            "train",
            "--data",
            config["data"],
            "--out",
            run_dir,
            "--resume",
            "--steps",
            steps,
            "--res",
            config["resolution"],
            "--log-every",
            config["log_every"],
            "--sample-every",
            config["sample_every"],
            "--ckpt-every",
            config["ckpt_every"],
            "--no-progress",
        )
        self._launch(run_dir, argv, steps)
        return run_dir

    def _launch(self, run_dir: Path, argv: list[str], steps: int) -> Job:
        run_lock.refuse_if_held(run_dir)  # never write next to a live trainer
        self.jobs.check_capacity()  # before status.json says "starting"
        log = run_dir / LOG_FILE
        with open(log, "a", encoding="utf-8") as f:
            f.write(f"\n$ {' '.join(map(str, argv[1:]))}\n")
        # status.json is the trainer's; until it writes one, the UI reads 'starting' from here.
        RunFolder(run_dir).write_status(
            {
                "state": "starting",
                "step": self._latest_step(run_dir),
                "total_steps": steps,
                "updated": time.time(),
            },
        )
        return self.jobs.start(
            self._job_name(run_dir), [str(a) for a in argv], log, meta={"run_dir": str(run_dir)}
        )

    @staticmethod
    def _latest_step(run_dir: Path) -> int:
        latest = ckpt.latest_checkpoint(run_dir)
        return int(latest.name.split("_")[1]) if latest else 0

    def stop(self, run_dir: Path, timeout: float | None = None) -> bool:
        """Ask the run to save a checkpoint and exit; False when no trainer of this run is running.

        Covers runs started by an earlier app process too (the app restarted, training went on)."""
        job = self.job(run_dir)
        if job is not None and job.running:
            job.stop(timeout)
            return True
        pid = trainer_pid(run_dir)
        if pid is None:
            return False
        os.kill(pid, signal.SIGTERM)
        return True

    def recover_runs(self) -> list[str]:
        """Tidy the app's run folders that no live trainer holds: temporary leftovers of killed
        trainers removed, a "running" status with no trainer marked "interrupted"."""
        notes = []
        if not self.runs_dir.is_dir():
            return notes
        for run_dir in sorted(
            p for p in self.runs_dir.iterdir() if p.is_dir() and not p.name.startswith(".")
        ):
            job = self.job(run_dir)
            if job is None or not job.running:
                notes += run_files.recover(run_dir)
        return notes

    def progress(self, run_dir: Path) -> RunProgress:
        run_dir = Path(run_dir)
        job = self.job(run_dir)
        alive = job is not None and job.running
        if job is None:  # a trainer this app did not start, or one killed: "interrupted" if nobody holds it
            run_files.mark_interrupted(run_dir)
        status = {}
        try:
            status = RunFolder(run_dir).read_status()
        except ckpt.CheckpointError:
            pass
        state = status.get("state", "idle")
        error = status.get("error")
        if job is not None and not alive and state in {"starting", "running"}:
            # The process ended without updating status.json (e.g. a dataset error before training started).
            code = job.poll()
            state = "failed" if code else "finished"
            if code:
                tail = read_tail(job.log_path, 2000).strip().splitlines()
                error = next((line for line in reversed(tail) if line.startswith("error:")), None) or (
                    f"training exited with code {code}; see the log below"
                )
        elif (
            job is None and state in {"starting", "running"} and time.time() - status.get("updated", 0) > 600
        ):
            state = "stale"  # held by a process on another host, and silent for 10 minutes
        samples = RunFolder(run_dir).samples_dir
        return RunProgress(
            run_dir=run_dir,
            state=state,
            step=int(status.get("step", 0)),
            total_steps=int(status.get("total_steps", 0)),
            images_per_s=status.get("images_per_s"),
            eta_s=status.get("eta_s"),
            error=error,
            log=read_log(run_dir),
            samples=samples / "latest.png" if (samples / "latest.png").is_file() else None,
            reconstructions=samples / "reconstructions.png"
            if (samples / "reconstructions.png").is_file()
            else None,
            grids=RunFolder(run_dir).sample_grids(),
            checkpoints=list_run_checkpoints(run_dir),
            log_tail=read_tail(run_dir / LOG_FILE, 4000),
            alive=alive,
        )


def loss_figure(log: list[dict]):
    """Plotly figure: the losses (top), and D's over-fitting signal r_t with, when a guide is on, its
    accuracy on the fakes (bottom), over steps."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.68, 0.32], vertical_spacing=0.08)
    steps = [r["step"] for r in log]
    mode = "lines" if len(log) > 20 else "lines+markers"
    curves = (
        ("D loss (real)", "loss_d_real", "#4f46e5"),
        ("D loss (fake)", "loss_d_fake", "#0ea5e9"),
        ("G loss", "loss_g", "#f97316"),
        ("D reconstruction", "loss_recon", "#10b981"),
        ("class CE (fakes)", "loss_cls_fake", "#db2777"),
        ("guide CE (fakes)", "loss_guide", "#854d0e"),
    )
    for label, key, color in curves:
        if key in ("loss_cls_fake", "loss_guide") and not any(r.get(key) for r in log):
            continue  # runs without the auxiliary classifier / without a guide
        fig.add_trace(
            go.Scatter(x=steps, y=[r.get(key) for r in log], name=label, mode=mode, line={"color": color}),
            1,
            1,
        )
    signals = [("r_t = E[sign D(real)]", "r_t", "#a855f7")]
    if any(r.get("loss_guide") for r in log):
        signals.append(("guide accuracy on fakes", "acc_guide_fake", "#854d0e"))
    for label, key, color in signals:
        fig.add_trace(
            go.Scatter(
                x=steps,
                y=[r.get(key) for r in log],
                name=label,
                mode=mode,
                line={"color": color, "dash": "dot"},
            ),
            2,
            1,
        )
    fig.update_layout(
        height=400,
        margin={"l": 40, "r": 10, "t": 60, "b": 30},
        legend={"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 0},
        template="plotly_white",
        uirevision="losses",  # keep the user's zoom while the curve grows
    )
    fig.update_yaxes(title_text="loss", row=1, col=1)
    fig.update_yaxes(title_text="r_t / acc.", range=[-1.05, 1.05], row=2, col=1)
    fig.update_xaxes(title_text="step", row=2, col=1)
    return fig


def logged_cas(run_dir: Path) -> list[tuple[int, float]]:
    """(step, CAS) of the run's evaluation, when it has one that measured CAS (the Evaluate tab's)."""
    found = metrics_file(Path(run_dir))
    if found is None:
        return []
    data, _ = found
    value = ((data.get("metrics") or {}).get("cas") or {}).get("value")
    step = (data.get("meta") or {}).get("step")
    if not isinstance(value, (int, float)) or not isinstance(step, int):
        return []
    return [(step, float(value))]


RUN_COLOURS = ("#4f46e5", "#f97316")  # the first run indigo, the second orange
COMPARED_LOSSES = (("G loss", "loss_g", "solid"), ("D loss (real)", "loss_d_real", "dot"),
                   ("D loss (fake)", "loss_d_fake", "dash"))  # fmt: skip


def comparison_figure(runs: list[tuple[str, list[dict], list[tuple[int, float]]]]):
    """Plotly figure of two (or more) runs, one colour each: their losses over steps (top), and below,
    the CAS of their evaluations and, for guided runs, the guide's accuracy on their fakes.

    ``runs``: (name, log records, [(step, CAS)]) per run."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.62, 0.38], vertical_spacing=0.08)
    for (name, log, cas), colour in zip(runs, RUN_COLOURS * len(runs)):
        steps = [r["step"] for r in log]
        for label, key, dash in COMPARED_LOSSES:
            if any(r.get(key) is not None for r in log):
                line = {"color": colour, "dash": dash}
                trace = go.Scatter(x=steps, y=[r.get(key) for r in log], name=f"{name} · {label}", line=line)
                fig.add_trace(trace, 1, 1)
        if any(r.get("loss_guide") for r in log):  # unguided runs log the guide's accuracy as 0
            y = [r.get("acc_guide_fake") for r in log]
            line = {"color": colour, "dash": "dot"}
            fig.add_trace(go.Scatter(x=steps, y=y, name=f"{name} · guide accuracy on fakes", line=line), 2, 1)
        if cas:
            fig.add_trace(
                go.Scatter(
                    x=[step for step, _ in cas], y=[value for _, value in cas], name=f"{name} · CAS",
                    mode="markers+text", text=[f"CAS {value:.0%}" for _, value in cas], textposition="top center",
                    marker={"color": colour, "size": 12, "symbol": "diamond"},
                ),
                2, 1,
            )  # fmt: skip
    fig.update_layout(
        height=480,
        margin={"l": 40, "r": 10, "t": 80, "b": 30},
        legend={"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 0},
        template="plotly_white",
        font={"size": 13},
    )
    fig.update_yaxes(title_text="loss", row=1, col=1)
    fig.update_yaxes(title_text="CAS / accuracy", range=[0, 1.1], row=2, col=1)
    fig.update_xaxes(title_text="step", row=2, col=1)
    return fig
