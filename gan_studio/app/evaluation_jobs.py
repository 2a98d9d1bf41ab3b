"""Evaluate tab service: run train-evaluator / evaluate / augment-bench in the background, read the results.

The CLI commands do the work (and write metrics.json + report.md); this module picks their output
folders, starts them through the shared ``JobRunner`` and turns what they wrote into tables. Every
evaluation is an entry of its folder's history (``gan_studio.metrics.history``); a package's own
evaluation, shipped beside its weights, is the first entry of the package's history here.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from gan_studio.app.export import SavedExport, saved_exports
from gan_studio.app.jobs import Job, JobRunner, cli_command, tqdm_progress
from gan_studio.app.real_data import dataset_of
from gan_studio.app.registry import ModelEntry
from gan_studio.metrics import history
from gan_studio.metrics.history import Evaluation
from gan_studio.metrics.report import PER_CLASS_COLUMNS, format_value
from gan_studio.sampling import safe_name
from gan_studio.utils import limits
from gan_studio.utils.progress import describe


def available_commands() -> set[str]:
    """CLI commands installed in this version (augment-bench arrives with the augmentation experiment)."""
    from gan_studio.cli import build_parser

    parser = build_parser()
    for action in parser._subparsers._group_actions:  # argparse keeps sub-commands here
        return set(getattr(action, "choices", {}) or {})
    return set()


@dataclass
class JobStatus:
    state: str  # idle | running | finished | failed
    fraction: float | None
    description: str
    log_tail: str
    stage: dict | None = None  # the job's own report of its stage (evaluate --progress-file), if any

    def summary(self) -> str:
        if self.stage is not None and self.state in ("running", "finished"):
            return f"**{self.state}** · {describe(self.stage, now=time.time())}"
        if self.state == "running" and self.fraction is not None:
            return f"**running** · {self.description or 'working'} {100 * self.fraction:.0f}%"
        if self.state == "running":
            return "**running** · starting"
        return f"**{self.state}**"


def read_stage(job: Job) -> dict | None:
    """The stage snapshot the job keeps in its progress file (see gan_studio.utils.progress), if any."""
    path = job.meta.get("progress")
    if not path:
        return None
    try:
        snapshot = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return snapshot if isinstance(snapshot, dict) and "stage" in snapshot else None


def job_status(job: Job | None) -> JobStatus:
    """What a job is doing: its own stage report when it writes one, else the last tqdm bar of its log."""
    if job is None:
        return JobStatus("idle", None, "", "")
    tail = job.log_tail(6000)
    code = job.poll()
    state = "running" if code is None else "finished" if code == 0 else "failed"
    stage = read_stage(job)
    if stage is not None:
        fraction = 1.0 if stage.get("state") == "finished" else stage.get("fraction")
        return JobStatus(state, fraction, str(stage.get("stage") or ""), tail, stage)
    found = tqdm_progress(tail)
    desc, fraction = found if found else ("", None)
    return JobStatus(state, fraction, desc, tail)


class EvaluationService:
    """Output folders: inside an app run when the generator is one, else under the workspace."""

    def __init__(
        self,
        jobs: JobRunner,
        workdir: Path,
        fallback_data: str | None = None,
        exports_dir: Path | None = None,
    ):
        self.jobs, self.workdir, self.fallback_data = jobs, Path(workdir), fallback_data
        self.exports_dir = Path(exports_dir) if exports_dir is not None else self.workdir / "exports"

    def _own_folder(self, entry: ModelEntry, name: str, workspace_kind: str) -> Path:
        if entry.source == "run" and entry.run_dir is not None:
            return Path(entry.run_dir) / name
        return self.workdir / workspace_kind / safe_name(entry.id.replace("/", "__"))

    def evaluator_dir(self, generator: ModelEntry) -> Path:
        return self._own_folder(generator, "evaluator", "evaluators")

    def report_dir(self, generator: ModelEntry) -> Path:
        return self._own_folder(generator, "evaluation", "evaluations")

    def bench_dir(self, generator: ModelEntry) -> Path:
        return self._own_folder(generator, "augment-bench", "augment-bench")

    def study_dir(self, generator: ModelEntry) -> Path:
        return self._own_folder(generator, "study", "studies")

    def job_name(self, kind: str, generator: ModelEntry) -> str:
        return f"{kind}:{generator.id}"

    def job(self, kind: str, generator: ModelEntry) -> Job | None:
        return self.jobs.get(self.job_name(kind, generator))

    def _data_args(self, generator: ModelEntry) -> tuple[list[str], str]:
        source, fit = dataset_of(generator, self.fallback_data)
        split = generator.split_path
        if split is None:
            raise FileNotFoundError(
                f"'{generator.id}' has no split.json; evaluate a run folder or a package that ships one."
            )
        return ["--data", str(source), "--split", str(split)], fit

    def train_evaluator(
        self, generator: ModelEntry, *, steps: int = 1000, arch: str = "mobilenet_v3_small"
    ) -> Job:
        limits.refuse_above("steps", steps, f"{steps:,} evaluator training steps")
        data_args, fit = self._data_args(generator)
        out = self.evaluator_dir(generator)
        argv = cli_command(
            "train-evaluator",
            *data_args,
            "--out",
            out,
            "--arch",
            arch,
            "--res",
            generator.resolution,
            "--fit",
            fit,
            "--steps",
            steps,
        )
        return self._start("train-evaluator", generator, argv, out)

    def exports(self, generator: ModelEntry) -> list[SavedExport]:
        """The Curate exports of ``generator`` in the workspace, newest first: sets an evaluation can measure."""
        return saved_exports(self.exports_dir, generator.id)

    def export_path(self, generator: ModelEntry, name: str) -> Path:
        """The export of ``generator`` called ``name``; only a file listed by ``exports``, never another path."""
        found = next((e.path for e in self.exports(generator) if e.path.name == name), None)
        if found is None:
            raise ValueError(
                f"'{name}' is not a Curate export of '{generator.id}' in this workspace (it may have been "
                "removed to make room); export the set again in Curate & export, then pick it here."
            )
        return found

    def evaluate(
        self,
        generator: ModelEntry,
        evaluator: ModelEntry,
        *,
        n_per_class: int = 50,
        seed: int = 0,
        truncation: float = 1.0,
        metrics: list[str] | None = None,
        filter: str = "none",
        export: str | None = None,
    ) -> Job:
        """``evaluate``; ``filter`` (as ``evaluate --filter``) measures the candidates the study's filter keeps,
        ``export`` (the name of one of ``exports``) the generated images of a Curate export (``--images``)."""
        if tuple(evaluator.class_names) != tuple(generator.class_names):
            raise ValueError(
                f"The evaluator '{evaluator.id}' knows other classes than '{generator.id}'; train one for this run first."
            )
        if export:
            images = ["--images", self.export_path(generator, export)]
        else:
            images = ["--ckpt", generator.path, "--n-per-class", n_per_class, "--seed", seed,
                      "--truncation", truncation, "--filter", filter]  # fmt: skip
        data_args, _ = self._data_args(generator)
        out = self.report_dir(generator)
        progress = out.parent / f"{out.name}.progress.json"
        progress.unlink(missing_ok=True)  # a finished job's stages are not this one's
        argv = cli_command(
            "evaluate", *images, "--evaluator", evaluator.path, "--out", out, "--progress-file", progress,
            *data_args, "--metrics", ",".join(metrics) if metrics else "all",
        )  # fmt: skip
        return self._start("evaluate", generator, argv, out, progress=progress)

    def augment_bench(
        self,
        generator: ModelEntry,
        evaluator: ModelEntry | None,
        *,
        arms: list[str],
        ratios: str = "0.5,1.0",
        seeds: int = 1,
        steps: int = 300,
    ) -> Job:
        """Does synthetic data help? One classifier per arm, same budget, scored on the real test split."""
        if "augment-bench" not in available_commands():
            raise RuntimeError(
                "The augmentation experiment (augment-bench) is not part of this GAN Studio version."
            )
        if not arms:
            raise ValueError("Tick at least one arm of the experiment (e.g. real and real+syn).")
        if "real+syn_filtered" in arms and evaluator is None:
            raise ValueError(
                "The real+syn_filtered arm needs an evaluator: train one first, or untick that arm."
            )
        limits.refuse_above("steps", steps, f"{steps:,} steps per arm")
        data_args, _ = self._data_args(generator)
        out = self.bench_dir(generator)
        argv = cli_command(
            "augment-bench", "--ckpt", generator.path, "--out", out, *data_args, "--arms", ",".join(arms),
            "--ratios", ratios, "--seeds", seeds, "--steps", steps,
            *(["--evaluator", evaluator.path] if evaluator is not None else []),
        )  # fmt: skip
        return self._start("augment-bench", generator, argv, out)

    def study(
        self,
        generator: ModelEntry,
        *,
        train_per_class: int = 0,
        seeds: int = 3,
        budget_hours: float | None = None,
        arms: str = "all",
    ) -> Job:
        """Does it help? Every arm to convergence, several seeds, paired 95% intervals (``study --ckpt``)."""
        if seeds < 1:
            raise ValueError("A study needs at least one seed (three for a verdict that holds).")
        if budget_hours is not None and budget_hours <= 0:
            raise ValueError("The budget must be a positive number of hours (or empty for no budget).")
        # A study's length is its budget: held to the server's limit, which is also the budget of one
        # asked for without any (seeds x arms fits to convergence could otherwise run for a day).
        if budget_hours is None:
            if limits.is_set("study_hours"):
                budget_hours = limits.value("study_hours")
        else:
            limits.refuse_above("study_hours", budget_hours, f"A study budget of {budget_hours:g} h")
        data_args, _ = self._data_args(generator)
        out = self.study_dir(generator)
        argv = cli_command(
            "study", "--ckpt", generator.path, "--out", out, *data_args, "--seeds", seeds,
            "--train-per-class", train_per_class, "--arms", arms,
            *(["--budget-hours", budget_hours] if budget_hours else []),
        )  # fmt: skip
        return self._start("study", generator, argv, out)

    def _start(
        self, kind: str, generator: ModelEntry, argv: list, out: Path, progress: Path | None = None
    ) -> Job:
        out.mkdir(parents=True, exist_ok=True)
        log = out.parent / f"{out.name}.log"
        log.write_text(f"$ {' '.join(map(str, argv[1:]))}\n", encoding="utf-8")
        meta = {"out": str(out), **({"progress": str(progress)} if progress else {})}
        return self.jobs.start(self.job_name(kind, generator), [str(a) for a in argv], log, meta=meta)

    def history(self, generator: ModelEntry) -> list[Evaluation]:
        """Every evaluation of ``generator``, oldest first: what shipped with it (a package's, or a run's
        own metrics.json), then each one the Evaluate tab or ``evaluate --out`` kept in its folder."""
        folders = [self.report_dir(generator)]
        if generator.metrics_path is not None:
            folders.append(generator.metrics_path.parent)
        found: dict[tuple, Evaluation] = {}
        for folder in dict.fromkeys(f.resolve() for f in folders):
            for evaluation in history.history(folder):
                found.setdefault((evaluation.id, evaluation.created), evaluation)
        return sorted(found.values(), key=history.order)


def read_metrics(report_dir: Path) -> dict | None:
    return history.read_metrics(Path(report_dir))


def overview_rows(metrics: dict) -> list[list[str]]:
    """[metric, value, real reference, what it measures] rows, as in report.md."""
    from gan_studio.metrics.report import _overview_rows  # the report's own wording; one source of truth

    return _overview_rows(metrics.get("metrics", {}))


# The per-class table shares the results column with others: its one-word headers are its widest cells, so the
# longest are shortened here (the overview above names each metric in full; report.md keeps the long headers).
SHORT_HEADERS = {
    "confidence": "conf.",
    "real test acc.": "real acc.",
    "precision": "prec.",
    "coverage": "cov.",
    "diversity": "div.",
    "diversity real": "div. real",
    "C2ST real vs real": "C2ST real",
}


def per_class_rows(metrics: dict, class_names: list[str]) -> tuple[list[str], list[list[str]]]:
    """The report's per-class columns, under headers short enough for the table to fit a 1280 px window."""
    results = metrics.get("metrics", {})
    columns = [c for c in PER_CLASS_COLUMNS if c[1] in results]
    rows = []
    for name in class_names:
        row = [name]
        for _, metric, key, percent in columns:
            value = results.get(metric, {}).get("per_class", {}).get(name, {}).get(key)
            row.append(format_value(value, percent=percent))
        rows.append(row)
    return ["class", *[SHORT_HEADERS.get(c[0], c[0]) for c in columns]], rows


HISTORY_HEADERS = [  # words short enough that none breaks inside at 1280 px (the report has the full names)
    "#",
    "date",
    "step",
    "generated + real per class",
    "CAS",
    "C2ST",
    "prec.",
    "cov.",
    "FID",
    "near-copies",
    "kept",
]


def _where(evaluation: Evaluation, generator: ModelEntry) -> str:
    """Where an evaluation is kept, in a word (the report's full path is shown with the one picked)."""
    if evaluation.origin == "history":
        return "history"
    package = (
        Path(generator.run_dir).resolve() if generator.source == "package" and generator.run_dir else None
    )
    return "package" if evaluation.folder == package else "run folder"


def _images_per_class(meta: dict, n_classes: int) -> str:
    """'200 + 140' under the header 'generated + real per class' (the full wording is in sample_size)."""
    text = history.sample_size({**meta, "images": None}, n_classes)  # the export is named above the tables
    if text.endswith(" real train per class"):
        given = " given + " if meta.get("images") else " + "  # a Curate export's images, not samples drawn
        return text.removesuffix(" real train per class").replace(" generated + ", given)
    return text


def history_rows(evaluations: list[Evaluation], generator: ModelEntry) -> list[list[str]]:
    """One row per evaluation, newest first: when, which checkpoint, on how many images, key figures."""
    n_classes = len(generator.class_names)
    rows = []
    for number, e in reversed(list(enumerate(evaluations, start=1))):
        h, step = e.headline, e.meta.get("step")
        rows.append([
            str(number), e.when, str(step) if step not in (None, -1) else "?",
            _images_per_class(e.meta, n_classes),
            format_value(h.get("cas"), percent=True), format_value(h.get("c2st"), percent=True),
            format_value(h.get("precision")),
            format_value(h.get("coverage")), format_value(h.get("fid")),
            format_value(h.get("memorization"), percent=True), _where(e, generator),
        ])  # fmt: skip
    return rows


def history_choices(evaluations: list[Evaluation]) -> list[tuple[str, str]]:
    """(label, id) of each evaluation for the picker, newest first."""
    return [
        (
            f"#{number} · {e.when} · step {e.meta.get('step', '?')} · {e.meta.get('n_per_class', '?')}/class",
            e.id,
        )
        for number, e in reversed(list(enumerate(evaluations, start=1)))
    ]
