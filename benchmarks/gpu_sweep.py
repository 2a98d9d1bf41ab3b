"""One prepared GPU lease: several demo-GAN recipes trained side by side, evaluated as they go.

    OUT=/tmp/out BUDGET=560 AFTER_TRAIN=85 python benchmarks/gpu_sweep.py   # as run for commit 4ab5766
    OUT=/tmp/out BUDGET=560 RECIPES=wide-b64,ft-d48,short-s0 EVAL_FROM=1500 \
        METRICS=cas,fid,prdc,memorization,c2st RANK=c2st python benchmarks/gpu_sweep.py   # realism (issue 20)

Why one script: a leased GPU is paid by the second and every start costs minutes, so the whole
experiment (demo data, guide classifier, N training runs, evaluations, packing) runs in one call with
one wall-clock budget. Training runs are plain ``python -m gan_studio train`` phases, so whatever it
finds is reproducible from the printed commands. Runs are stopped by SIGTERM at the training deadline
(the trainer saves a checkpoint and records the step it reached). Evaluations start as soon as a
checkpoint at one of EVAL_STEPS exists, so little is left to do after the deadline. What comes back
($OUT): summary.json (every evaluation and each run's speed), logs.tar.gz (run logs, sample grids,
reports) and the best few checkpoints as candN.tar (fp16 EMA generator plus the run's metadata, so
``package`` can be run on them at home).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path

T0 = time.time()
BUDGET = float(os.environ.get("BUDGET", 530))  # seconds for the whole script
TRAIN_DEADLINE = BUDGET - float(os.environ.get("AFTER_TRAIN", 90))  # stop training here
EVAL_DEADLINE = BUDGET - 25  # leave time to pack
WORK = Path(os.environ.get("WORK", "/tmp/sweep"))
OUT = Path(os.environ.get("OUT", WORK / "out"))
SCALE = float(os.environ.get("SCALE", 1.0))  # step-count scale, for a dry run on a CPU
EVAL_EVERY = int(os.environ.get("EVAL_EVERY", 500))
EVAL_FROM = int(os.environ.get("EVAL_FROM", 7000))
N_PER_CLASS = int(os.environ.get("N_PER_CLASS", 200))
MAX_EVALS = int(os.environ.get("MAX_EVALS", 2))  # evaluations running at once
N_CANDIDATES = int(os.environ.get("N_CANDIDATES", 3))
GS = [sys.executable, "-m", "gan_studio"]
SPLIT = "checkpoints/vise-parts/split.json"
EVALUATOR = "checkpoints/vise-parts/evaluator"
GUIDE = WORK / "guide"

COMMON = [
    "--data", "demo", "--res", "64", "--batch", "16", "--ngf", "24", "--ndf", "24",
    "--class-loss", "1.0", "--mode-seeking", "0.3", "--class-groups", "8", "--pose-mmd", "1",
    "--split", SPLIT,
]  # fmt: skip
CKPT_EVERY = os.environ.get("CKPT_EVERY", "250")
EVERY = ["--sample-every", CKPT_EVERY, "--ckpt-every", CKPT_EVERY, "--keep", "14", "--no-progress"]
GUIDE_ON = ["--guide", str(GUIDE), "--guide-augment", "color,translation,rotation"]


def s(steps: int) -> str:
    return str(max(1, int(steps * SCALE)))


# name -> list of phases (each the arguments after `train --out RUN`); phase 0 starts the run.
RECIPES = {
    # run X's recipe with the guide capped at 0.8 from its first step and 1500 fewer steps of it
    "short-s0": [
        [*COMMON, "--seed", "0", "--steps", s(5000)],
        ["--resume", "--steps", s(7000), *GUIDE_ON, "--guide-weight", "0.5", "--guide-confidence", "0.8"],
        ["--resume", "--steps", s(8500), "--guide-weight", "1.0"],
    ],
    "short-s1": [
        [*COMMON, "--seed", "1", "--steps", s(5000)],
        ["--resume", "--steps", s(7000), *GUIDE_ON, "--guide-weight", "0.5", "--guide-confidence", "0.8"],
        ["--resume", "--steps", s(8500), "--guide-weight", "1.0"],
    ],
    # run X's own schedule (docs/experiments/2026-11-29-pose-mmd-run-x.md), second seed
    "X-s1": [
        [*COMMON, "--seed", "1", "--steps", s(5000)],
        ["--resume", "--steps", s(7500), *GUIDE_ON, "--guide-weight", "0.5"],
        ["--resume", "--steps", s(9500), "--guide-weight", "1.0"],
        ["--resume", "--steps", s(10000), "--guide-confidence", "0.8"],
    ],
}


# Realism (issue 20): the runs above make samples a fresh classifier tells from the photos 99.6% of the time
# (c2st). On a GPU the step is launch-bound, so a wider D and a batch of 64 cost little more per step; these
# runs test whether capacity and images seen bring c2st down while the guide keeps every class. Choose them
# with RECIPES=wide-b64,ft-d48 METRICS=cas,fid,prdc,memorization,c2st RANK=c2st.
def with_options(args: list[str], **changes: str) -> list[str]:
    """``args`` with the values of some of its options replaced (``ndf="48"`` for ``--ndf``)."""
    out = list(args)
    for name, value in changes.items():
        out[out.index("--" + name.replace("_", "-")) + 1] = value
    return out


WIDE = with_options(COMMON, batch="64", ngf="48", ndf="48")
RECIPES["wide-b64"] = [
    [*WIDE, "--lr-g", "0.0004", "--lr-d", "0.0004", "--seed", "0", "--steps", s(2500)],
    ["--resume", "--steps", s(4000), *GUIDE_ON, "--guide-weight", "0.5", "--guide-confidence", "0.8"],
]
RECIPES["ft-d48"] = [  # the shipped generator against a fresh, wider D, the guide keeping the classes
    [*with_options(COMMON, ndf="48"), "--init-generator", "checkpoints/vise-parts", "--d-warmup", s(200),
     "--seed", "0", "--steps", s(200)],
    ["--resume", "--steps", s(4000), *GUIDE_ON, "--guide-weight", "1.0", "--guide-confidence", "0.8"],
]  # fmt: skip
METRICS = os.environ.get("METRICS", "cas,fid,prdc,memorization")
RANK = os.environ.get("RANK", "fid")  # among runs that meet the CAS bar: lowest FID, or lowest c2st
if os.environ.get("RECIPES"):
    RECIPES = {k: v for k, v in RECIPES.items() if k in os.environ["RECIPES"].split(",")}


def now() -> float:
    return time.time() - T0


def log(msg: str) -> None:
    print(f"[{now():6.1f}s] {msg}", flush=True)


def run(cmd: list[str], log_file: Path, deadline: float) -> int | None:
    """Run ``cmd`` until it ends or ``deadline`` (seconds from start) passes; then SIGTERM, so the
    trainer saves a checkpoint, and SIGKILL 30 s later."""
    with open(log_file, "a") as f:
        f.write("$ " + " ".join(cmd) + "\n")
        f.flush()
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT)
        while proc.poll() is None:
            if now() > deadline:
                proc.terminate()
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                break
            time.sleep(1)
        return proc.wait()


def train_recipe(name: str, phases: list[list[str]], guide_ready: threading.Event) -> None:
    out = WORK / name
    for i, args in enumerate(phases):
        if "--guide" in args and not guide_ready.wait(max(0.0, TRAIN_DEADLINE - now())):
            log(f"{name}: no guide in time; stopping before phase {i}")
            return
        if now() > TRAIN_DEADLINE:
            return
        rc = run(
            [*GS, "train", "--out", str(out), *args, *EVERY], WORK / "logs" / f"{name}.log", TRAIN_DEADLINE
        )
        log(f"{name}: phase {i} exit {rc}, step {reached(out)}")
        if rc != 0:
            return


def reached(run_dir: Path) -> int:
    try:
        return int(json.loads((run_dir / "status.json").read_text()).get("step", 0))
    except (OSError, ValueError):
        return 0


def checkpoints(run_dir: Path) -> dict[int, Path]:
    found = {}
    for c in (run_dir / "checkpoints").glob("step_*"):
        if (c / "checkpoint.json").is_file() and (c / "generator_ema" / "model.safetensors").is_file():
            found[int(c.name.split("_")[1])] = c
    return found


def summarize(metrics: dict) -> dict:
    m = metrics["metrics"]
    per_class = {k: v["accuracy"] for k, v in m["cas"]["per_class"].items()}
    worst = min(per_class, key=per_class.get)
    row = {
        "cas": m["cas"]["value"],
        "lowest_class": worst,
        "lowest_cas": per_class[worst],
        "fid": m["fid"]["value"],
        "precision": m["prdc"]["precision"],
        "recall": m["prdc"]["recall"],
        "coverage": m["prdc"]["coverage"],
        "near_copies": m["memorization"]["value"],
    }
    if "c2st" in m:
        row["c2st"] = m["c2st"]["value"]
        row["c2st_real_baseline"] = m["c2st"]["real_baseline"]
    row["meets_bar"] = row["cas"] >= 0.90 and row["lowest_cas"] >= 0.75 and row["near_copies"] < 0.01
    return row


def evaluate(name: str, step: int, ckpt_dir: Path, results: dict) -> None:
    report = WORK / "reports" / f"{name}-{step:05d}"
    keep = WORK / "kept" / f"{name}-{step:05d}"  # a copy, so --keep cannot delete it before packing
    shutil.copytree(
        ckpt_dir, keep, ignore=shutil.ignore_patterns("training_state.pt", "generator", "discriminator")
    )
    cmd = [*GS, "evaluate", "--ckpt", str(keep), "--evaluator", EVALUATOR, "--data", "demo", "--split", SPLIT,
           "--n-per-class", str(N_PER_CLASS), "--metrics", METRICS, "--out", str(report),
           "--no-progress"]  # fmt: skip
    rc = run(cmd, WORK / "logs" / f"eval-{name}.log", EVAL_DEADLINE)
    try:
        row = summarize(json.loads((report / "metrics.json").read_text()))
    except (OSError, KeyError, ValueError) as e:
        row = {"error": f"rc {rc}: {e}"}
    row.update(run=name, step=step, seconds=round(now(), 1))
    results[f"{name}-{step:05d}"] = row
    log(f"eval {name}@{step}: {row}")


def run_stats(run_dir: Path) -> dict:
    """Steps reached and training speed (median images/s without and with the guide), from the run's log."""
    stats = {"step": reached(run_dir)}
    try:
        rows = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines() if line.strip()]
        for label, keep in (
            ("unguided", lambda r: not r.get("loss_guide")),
            ("guided", lambda r: r.get("loss_guide")),
        ):
            ips = sorted(r["images_per_s"] for r in rows[1:] if "images_per_s" in r and keep(r))
            stats[f"images_per_s_{label}_median"] = ips[len(ips) // 2] if ips else None
    except (OSError, ValueError):
        pass
    return stats


def fp16_copy(src: Path, dst: Path) -> None:
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(src))
    save_file({k: v.half() if v.is_floating_point() else v for k, v in tensors.items()}, str(dst))


def pack_candidate(name: str, step: int, dest: Path) -> None:
    """The run's metadata plus one checkpoint (EMA generator in fp16), laid out as a run folder."""
    run_dir, kept = WORK / name, WORK / "kept" / f"{name}-{step:05d}"
    stage = WORK / "pack" / name
    shutil.rmtree(stage, ignore_errors=True)
    (stage / "checkpoints").mkdir(parents=True)
    for f in run_dir.iterdir():
        if f.is_file():
            shutil.copy2(f, stage / f.name)
    ck = stage / "checkpoints" / f"step_{step:07d}"
    shutil.copytree(kept, ck, ignore=shutil.ignore_patterns("model.safetensors"))
    fp16_copy(kept / "generator_ema" / "model.safetensors", ck / "generator_ema" / "model.safetensors")
    (stage / "checkpoints" / "latest").write_text(f"step_{step:07d}\n")
    samples = sorted((run_dir / "samples").glob("*.png"))
    if samples:
        (stage / "samples").mkdir()
        shutil.copy2(samples[-1], stage / "samples" / samples[-1].name)
    shutil.copy2(GUIDE / "training.json", stage / "guide_training.json")
    with tarfile.open(dest, "w") as tar:
        tar.add(stage, arcname=name)


def main() -> None:
    for d in ("logs", "reports", "kept", "pack"):
        (WORK / d).mkdir(parents=True, exist_ok=True)
    OUT.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("GAN_STUDIO_CACHE", str(WORK / "cache"))
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    os.environ.setdefault("OMP_NUM_THREADS", "4")  # several processes share the CPU cores
    log(f"recipes {list(RECIPES)}; budget {BUDGET}s, training until {TRAIN_DEADLINE}s")
    cache = Path(os.environ["GAN_STUDIO_CACHE"]) / "datasets" / "vise-parts-s128-n200-seed0"
    if not cache.is_dir():
        workers = str(max(1, min(16, (os.cpu_count() or 2) - 1)))
        rc = run([*GS, "demo-data", str(cache), "--per-class", "200", "--size", "128", "--seed", "0",
                  "--workers", workers], WORK / "logs" / "demo-data.log", 120)  # fmt: skip
        log(f"demo data exit {rc}")

    guide_ready = threading.Event()

    def make_guide() -> None:
        rc = run([*GS, "train-evaluator", "--data", "demo", "--split", SPLIT, "--arch", "resnet18",
                  "--stem-stride", "2", "--res", "64", "--steps", s(1200), "--batch", "64", "--lr", "0.002",
                  "--seed", "7", "--out", str(GUIDE), "--no-progress"],
                 WORK / "logs" / "guide.log", TRAIN_DEADLINE)  # fmt: skip
        log(f"guide exit {rc}")
        if rc == 0:
            guide_ready.set()

    threads = [threading.Thread(target=make_guide)]
    threads += [threading.Thread(target=train_recipe, args=(n, p, guide_ready)) for n, p in RECIPES.items()]
    for t in threads:
        t.start()

    results: dict = {}
    evaluating: list[threading.Thread] = []
    queued: set[tuple[str, int]] = set()

    def launch(name: str, step: int, path: Path) -> None:
        queued.add((name, step))
        t = threading.Thread(target=evaluate, args=(name, step, path, results))
        t.start()
        evaluating.append(t)

    while now() < EVAL_DEADLINE:
        training = any(t.is_alive() for t in threads)
        evaluating[:] = [t for t in evaluating if t.is_alive()]
        for name in RECIPES:
            found = checkpoints(WORK / name)
            wanted = [st for st in found if st >= EVAL_FROM * SCALE and st % EVAL_EVERY == 0]
            if not training and found and max(found) >= EVAL_FROM * SCALE:  # each run's last one too
                wanted.append(max(found))
            for step in sorted(set(wanted), reverse=True):
                if (name, step) not in queued and len(evaluating) < MAX_EVALS:
                    launch(name, step, found[step])
                    evaluating[:] = [t for t in evaluating if t.is_alive()]
        if not training and not evaluating:
            break
        time.sleep(3)
    for t in evaluating:
        t.join(max(0.0, EVAL_DEADLINE + 5 - now()))

    summary = {
        "budget_s": BUDGET,
        "elapsed_s": round(now(), 1),
        "recipes": {n: [" ".join(p) for p in ph] for n, ph in RECIPES.items()},
        "runs": {n: run_stats(WORK / n) for n in RECIPES},
        "evaluations": results,
    }
    rows = [r for r in results.values() if "cas" in r]
    rows.sort(
        key=lambda r: (
            not r["meets_bar"],
            r["near_copies"] >= 0.01,
            -min(r["lowest_cas"], 0.75),
            r.get(RANK, r["fid"]),
        )
    )
    summary["ranking"] = [f"{r['run']}-{r['step']:05d}" for r in rows]
    (OUT / "summary.json").write_text(json.dumps(summary, indent=2))
    log("summary written")
    for i, r in enumerate(rows[:N_CANDIDATES]):
        try:
            pack_candidate(r["run"], r["step"], OUT / f"cand{i + 1}-{r['run']}-{r['step']:05d}.tar")
            log(f"packed {r['run']}@{r['step']}")
        except (OSError, ValueError) as e:
            log(f"pack {r['run']}@{r['step']} failed: {e}")
    with tarfile.open(OUT / "logs.tar.gz", "w:gz") as tar:
        tar.add(WORK / "logs", arcname="logs")
        for rep in (WORK / "reports").iterdir():
            for f in ("metrics.json", "report.md"):
                if (rep / f).is_file():
                    tar.add(rep / f, arcname=f"reports/{rep.name}/{f}")
        for n in RECIPES:
            for f in ("run.json", "log.jsonl", "status.json"):
                if (WORK / n / f).is_file():
                    tar.add(WORK / n / f, arcname=f"runs/{n}/{f}")
            samples = sorted((WORK / n / "samples").glob("*.png"))
            if samples:
                tar.add(samples[-1], arcname=f"runs/{n}/{samples[-1].name}")
    log("done")


if __name__ == "__main__":
    main()
