"""Training throughput and peak memory of the real training step, per resolution and precision.

Each configuration runs in a fresh subprocess (so peak RSS is its own) through the same
``Trainer.train_step`` the CLI uses, on the built-in demo data, with warm-up steps excluded.

    python benchmarks/train_throughput.py                       # 64/128/256 px, fp32 + bf16, batch 8, width 64
    python benchmarks/train_throughput.py --res 256 --precision bf16 --steps 5
    python benchmarks/train_throughput.py --res 64 --precision bf16 --batch 16 64 --width 24 \
        --set class_loss=1.0 mode_seeking=0.3 class_group_size=8 pose_mmd=1.0   # the shipped recipe's step
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def measure(args) -> dict:
    import torch

    from gan_studio.data.demo import make_demo_dataset
    from gan_studio.training.config import TrainConfig
    from gan_studio.training.loop import Trainer

    torch.set_num_threads(args.threads or os.cpu_count())
    with tempfile.TemporaryDirectory() as tmp:
        data = make_demo_dataset(
            Path(tmp) / "data", per_class=4, size=min(args.res, 128), seed=0, progress=False
        )
        cfg = TrainConfig(
            data=str(data),
            out=str(Path(tmp) / "run"),
            resolution=args.res,
            batch=args.batch,
            steps=10**9,
            precision=args.precision,
            g_width=args.width,
            d_width=args.width,
            d_widths=args.d_widths,
            z_dim=args.z_dim,
            sample_every=0,
            ckpt_every=0,
            min_per_class=2,
            device=args.device,
        )
        for item in args.set:  # any other TrainConfig field, e.g. pose_mmd=1.0
            name, value = item.split("=", 1)
            setattr(cfg, name, type(getattr(cfg, name))(value))
        trainer = Trainer(cfg, progress=False)
        for _ in range(args.warmup):
            trainer.train_step()
        if trainer.device.type == "cuda":
            torch.cuda.synchronize()
        times = []
        for _ in range(args.steps):
            t0 = time.perf_counter()
            trainer.train_step()
            if trainer.device.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
        g_params = sum(p.numel() for p in trainer.G.parameters())
        d_params = sum(p.numel() for p in trainer.D.parameters())
    times.sort()
    mean = sum(times) / len(times)
    return {
        "res": args.res,
        "precision": trainer.precision,
        "batch": args.batch,
        "width": args.width,
        "device": str(trainer.device),
        "threads": torch.get_num_threads(),
        "s_per_step_mean": round(mean, 4),
        "s_per_step_median": round(times[len(times) // 2], 4),
        "s_per_step_best": round(times[0], 4),
        "images_per_s": round(args.batch / mean, 2),
        "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
        "cuda_peak_gb": round(torch.cuda.max_memory_allocated() / 2**30, 2)
        if torch.cuda.is_available()
        else None,
        "g_params_m": round(g_params / 1e6, 2),
        "d_params_m": round(d_params / 1e6, 2),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--res", type=int, nargs="*", default=[64, 128, 256])
    p.add_argument("--precision", nargs="*", default=["fp32", "bf16"])
    p.add_argument("--batch", type=int, nargs="*", default=[8])
    p.add_argument("--width", type=int, default=64, help="ngf = ndf")
    p.add_argument("--d-widths", choices=["compact", "fastgan"], default="compact")
    p.add_argument("--z-dim", type=int, default=128)
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--set", nargs="*", default=[], metavar="FIELD=VALUE", help="other TrainConfig fields")
    p.add_argument("--json", type=Path, default=None, help="also write the results here")
    p.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one:
        args.res, args.precision, args.batch = args.res[0], args.precision[0], args.batch[0]
        print(json.dumps(measure(args)))
        return
    results = []
    for res, precision, batch in [(r, p, b) for r in args.res for p in args.precision for b in args.batch]:
        cmd = [
            sys.executable,
            __file__,
            "--one",
            "--res",
            str(res),
            "--precision",
            precision,
            "--batch",
            str(batch),
            "--width",
            str(args.width),
            "--z-dim",
            str(args.z_dim),
            "--d-widths",
            args.d_widths,
            "--steps",
            str(args.steps),
            "--warmup",
            str(args.warmup),
            "--threads",
            str(args.threads),
            "--device",
            args.device,
            "--set",
            *args.set,
        ]
        out = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
        if out.returncode != 0:
            print(out.stderr[-3000:], file=sys.stderr)
            raise SystemExit(out.returncode)
        row = json.loads(out.stdout.strip().splitlines()[-1])
        results.append(row)
        print(
            f"{res:>5} px {row['precision']:>5} batch {batch:>3}  {row['s_per_step_mean']:7.3f} s/step (best "
            f"{row['s_per_step_best']:.3f})  {row['images_per_s']:7.2f} img/s  peak RSS {row['peak_rss_gb']} GB  "
            f"G {row['g_params_m']}M D {row['d_params_m']}M",
            flush=True,
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
