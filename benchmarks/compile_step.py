"""Eager against compiled (``--compile on``) training steps, side by side in one process: the
compile's cost, the step time after it, and how far the compiled run's losses drift from the
eager run's (same seed, same data).

    python benchmarks/compile_step.py                         # the shipped 64 px recipe, batch 16
    python benchmarks/compile_step.py --recipe tiny --steps 20
    python benchmarks/compile_step.py --threads 2 --json out.json

The recipe's [config] at step 0 on the demo data (``--precision``: auto as a run would pick it).
The compiled trainer's first steps compile G's and D's forward and backward passes (D has four
variants: fakes, reals with reconstructions, the reals' part decoder with the quarter symbolic, and
G's step through a frozen D); "compile_wall_s" is the wall time of those warm-up steps less the
eager trainer's, "compile_cpu_s" this process's CPU time likewise (inductor's compile workers add
theirs). The timed steps then alternate between the two trainers, so that both meet the same load
on a shared machine. Inductor caches its kernels under /tmp/torchinductor_$USER: clear it to time a
cold compile.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402


def warm_up(config, steps: int):
    """A trainer of ``config`` after ``steps`` steps: wall and CPU seconds, and their losses."""
    from gan_studio.training.loop import Trainer

    trainer = Trainer(config, progress=False)  # seeds torch's generator, as a run does
    trainer.rng_state = torch.get_rng_state()
    t0, c0 = time.perf_counter(), time.process_time()
    losses = [step(trainer)[1] for _ in range(steps)]
    return trainer, time.perf_counter() - t0, time.process_time() - c0, losses


def step(trainer) -> tuple[float, dict[str, float]]:
    """One step of ``trainer`` with its own draws of torch's generator (the two trainers alternate)."""
    torch.set_rng_state(trainer.rng_state)
    t0 = time.perf_counter()
    stats = trainer.train_step()
    trainer.step += 1
    trainer.rng_state = torch.get_rng_state()
    return time.perf_counter() - t0, {
        k: stats[k] for k in ("loss_d_real", "loss_d_fake", "loss_g", "loss_recon")
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--recipe", default="photos-cpu-64")
    parser.add_argument("--batch", type=int, default=0, help="0: the recipe's")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--steps", type=int, default=10, help="timed steps after the warm-up")
    parser.add_argument("--warmup", type=int, default=3, help="steps before timing (the compile)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    from gan_studio.data.demo import make_demo_dataset
    from gan_studio.training.config import TrainConfig
    from gan_studio.training.recipes import load_recipe

    torch.set_num_threads(args.threads)
    recipe = load_recipe(args.recipe)
    results = {"recipe": args.recipe, "threads": args.threads, "torch": torch.__version__}
    results.update(device=args.device, precision=args.precision)
    with tempfile.TemporaryDirectory() as tmp:
        data = make_demo_dataset(Path(tmp) / "data", per_class=8, size=64, seed=0, progress=False)
        values = dict(recipe.config)
        batch = args.batch or values["batch"]
        values.update(batch=batch, precision=args.precision, data=str(data))
        results["batch"] = batch
        values.update(sample_every=0, ckpt_every=0, device=args.device)
        trainers, losses, times = {}, {}, {"off": [], "on": []}
        for mode in ("off", "on"):
            config = TrainConfig(**{**values, "out": str(Path(tmp) / mode), "compile": mode})
            trainer, wall, cpu, losses[mode] = warm_up(config, args.warmup)
            trainers[mode] = trainer
            results[mode] = {"warmup_wall_s": wall, "warmup_cpu_s": cpu}
        for _ in range(args.steps):  # alternate, so that both see the same load on a shared machine
            for mode in ("off", "on"):
                seconds, stats = step(trainers[mode])
                times[mode].append(seconds)
                losses[mode].append(stats)
    for mode in ("off", "on"):
        median = statistics.median(times[mode])
        results[mode].update(step_s_median=median, step_s_min=min(times[mode]), images_per_s=batch / median)
        print(mode, json.dumps(results[mode]), flush=True)
    eager, compiled = results["off"], results["on"]
    results["compile_wall_s"] = compiled["warmup_wall_s"] - eager["warmup_wall_s"]
    results["compile_cpu_s"] = compiled["warmup_cpu_s"] - eager["warmup_cpu_s"]
    results["speedup_median"] = eager["step_s_median"] / compiled["step_s_median"]
    results["speedup_min"] = eager["step_s_min"] / compiled["step_s_min"]
    saved = eager["step_s_median"] - compiled["step_s_median"]
    results["break_even_steps"] = results["compile_wall_s"] / saved if saved > 0 else None
    results["loss_drift"] = [
        max(abs(a[k] - b[k]) for k in a) for a, b in zip(losses["off"], losses["on"], strict=True)
    ]
    shown = ("compile_wall_s", "compile_cpu_s", "speedup_median", "speedup_min", "break_even_steps")
    print(json.dumps({k: results[k] for k in shown}))
    print("largest loss difference per step:", [f"{d:.1e}" for d in results["loss_drift"]])
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results))  # last: the whole result on one line (gpu_step_side_by_side.sh reads it)


if __name__ == "__main__":
    main()
