"""Reproduce the reliability cases of RELIABILITY.md through the command line, each several times.

    python benchmarks/reliability_repro.py --data D --work /tmp/rel --tries 5 --cases 1 2 9
    python benchmarks/reliability_repro.py --data D --work /tmp/rel --tries 3 --cases 3 4 5 6 7 8

D: a small dataset (e.g. ``python -m gan_studio demo-data D --per-class 8 --size 64``). Prints one
line per try ("OK" when the behaviour RELIABILITY.md describes was seen) and a count per case.
``--source DIR`` runs another copy of the code (e.g. ``git archive HEAD~1 gan_studio | tar -x -C DIR``)
to see the behaviour before a fix.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

TINY = "--res 32 --ngf 16 --ndf 16 --batch 4 --no-progress --precision fp32".split()


class Repro:
    def __init__(self, data: Path, work: Path, source: Path):
        self.data, self.work, self.source = data, work, source
        self.env = {**os.environ, "PYTHONPATH": str(source), "OMP_NUM_THREADS": "1"}

    def cli(self, *args) -> subprocess.CompletedProcess:
        argv = [sys.executable, "-m", "gan_studio", *map(str, args)]
        return subprocess.run(argv, capture_output=True, text=True, env=self.env, cwd=self.source)

    def start(self, *args) -> subprocess.Popen:
        argv = [sys.executable, "-m", "gan_studio", *map(str, args)]
        return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=self.env,
                                cwd=self.source)  # fmt: skip

    def fresh(self, name: str) -> Path:
        out = self.work / name
        shutil.rmtree(out, ignore_errors=True)
        return out

    def long_trainer(self, out: Path, *extra) -> subprocess.Popen:
        proc = self.start(
            "train", "--data", self.data, "--out", out, "--steps", 100000, "--log-every", 1, *extra
        )
        log = out / "log.jsonl"
        while not (log.is_file() and log.read_text().count("\n") >= 3):
            if proc.poll() is not None:
                raise RuntimeError(proc.communicate()[1])
            time.sleep(0.05)
        return proc

    def source_run(self) -> Path:
        """A finished 4-step run (checkpoints at 2 and 4) that cases 4-6 copy and damage."""
        out = self.work / "source-run"
        if not (out / "checkpoints" / "latest").is_file():
            shutil.rmtree(out, ignore_errors=True)
            done = self.cli(
                "train", "--data", self.data, "--out", out, "--steps", 4, "--ckpt-every", 2, *TINY
            )
            assert done.returncode == 0, done.stderr
        return out

    def copy_of_source(self, name: str) -> Path:
        out = self.fresh(name)
        shutil.copytree(self.source_run(), out)
        return out

    # -- the cases ----------------------------------------------------------------------------------

    def case1(self, i: int) -> tuple[bool, str]:
        """Two trainers on one run folder."""
        out = self.fresh(f"c1-{i}")
        first = self.long_trainer(out, "--seed", 1, *TINY)
        second = self.cli("train", "--data", self.data, "--out", out, "--steps", 6, "--seed", 2, *TINY)
        resume = self.cli("train", "--out", out, "--steps", 6, "--resume", *TINY)
        first.send_signal(signal.SIGTERM)
        first.communicate()
        steps = [json.loads(line)["step"] for line in (out / "log.jsonl").read_text().splitlines()]
        one_writer = steps == list(range(1, len(steps) + 1))
        ok = second.returncode == resume.returncode == 2 and one_writer and first.returncode == 0
        ok = (
            ok
            and f"process {first.pid}" in second.stderr
            and "Traceback" not in second.stderr + resume.stderr
        )
        return (
            ok,
            f"second rc={second.returncode}, --resume rc={resume.returncode}, log one writer={one_writer}",
        )

    def case2(self, i: int) -> tuple[bool, str]:
        """SIGTERM, then more SIGTERMs while the final checkpoint is written (a wider model: a longer save)."""
        out = self.fresh(f"c2-{i}")
        proc = self.long_trainer(out, "--ckpt-every", 0, "--sample-every", 0, "--res", 32, "--ngf", 64, "--ndf", 64,
                                 "--batch", 4, "--no-progress", "--precision", "fp32")  # fmt: skip
        proc.send_signal(signal.SIGTERM)
        during_save, deadline = False, time.time() + 120
        while proc.poll() is None and time.time() < deadline and not during_save:
            if (out / "checkpoints").is_dir() and list((out / "checkpoints").glob(".tmp-*")):
                for _ in range(3):
                    proc.send_signal(signal.SIGTERM)
                during_save = True
            time.sleep(0.001)
        proc.communicate()
        state = json.loads((out / "status.json").read_text())["state"]
        left = list((out / "checkpoints").glob(".tmp-*"))
        saved = (out / "checkpoints" / "latest").is_file()
        ok = proc.returncode == 0 and state == "stopped" and saved and not left
        return (
            ok,
            f"signals during the save={during_save}, rc={proc.returncode}, status={state}, .tmp left={len(left)}",
        )

    def case3(self, i: int) -> tuple[bool, str]:
        """The newest checkpoint's weights cut short."""
        out = self.copy_of_source(f"c3-{i}")
        part = ("generator", "discriminator", "generator_ema")[i % 3]
        weights = out / "checkpoints" / "step_0000004" / part / "model.safetensors"
        data = weights.read_bytes()
        keep = (50, len(data) // 2, len(data) - 100)[i % 3]
        weights.write_bytes(data[:keep])
        done = self.cli("train", "--out", out, "--steps", 6, "--resume", *TINY)
        ok = (
            done.returncode == 0
            and "skipped checkpoint 'step_0000004'" in done.stderr
            and str(weights) in done.stderr
        )
        return ok, f"{part} cut to {keep} of {len(data)} bytes: rc={done.returncode}"

    def case4(self, i: int) -> tuple[bool, str]:
        """Out-of-range values in run.json."""
        key, value = (("resolution", 100000), ("g_width", 10**6), ("batch", 0))[i % 3]
        out = self.copy_of_source(f"c4-{i}")
        info = json.loads((out / "run.json").read_text())
        info["config"][key] = value
        (out / "run.json").write_text(json.dumps(info))
        done = self.cli("train", "--out", out, "--steps", 8, "--resume", "--no-progress")
        ok = done.returncode == 2 and str(out / "run.json") in done.stderr and "Traceback" not in done.stderr
        return ok, f"{key}={value}: rc={done.returncode}"

    def case5(self, i: int) -> tuple[bool, str]:
        """A torn last line in log.jsonl."""
        out = self.copy_of_source(f"c5-{i}")
        with open(out / "log.jsonl", "a") as log:
            log.write('{"step": 5, "loss_d_real": 0.7'[: 5 + 7 * i])
        done = self.cli("train", "--out", out, "--steps", 5, "--resume", *TINY)
        return done.returncode == 0 and "torn last line" in done.stderr, f"rc={done.returncode}"

    def case6(self, i: int) -> tuple[bool, str]:
        """A training_state.pt whose unpickling would run a shell command."""
        out = self.copy_of_source(f"c6-{i}")
        marker, state = out / "payload-ran", out / "checkpoints" / "step_0000004" / "training_state.pt"
        payload = (f"import os, torch\nclass P:\n    def __reduce__(self): return (os.system, ('touch {marker}',))\n"
                   f"torch.save({{'step': 4, 'optimizer_g': P()}}, {str(state)!r})\n")  # fmt: skip
        subprocess.run([sys.executable, "-c", payload], check=True, env=self.env)
        done = self.cli("train", "--out", out, "--steps", 6, "--resume", *TINY)
        ok = done.returncode == 2 and "was not loaded" in done.stderr and "Traceback" not in done.stderr
        return ok and not marker.exists(), f"rc={done.returncode}, payload ran={marker.exists()}"

    def case7(self, i: int) -> tuple[bool, str]:
        """Numbers out of range on the command line."""
        out = self.work / f"c7-{i}"
        commands = [["train", "--data", self.data, "--out", out, "--steps", "-5"],
                    ["train", "--data", self.data, "--out", out, "--batch", "0"],
                    ["train", "--data", self.data, "--out", out, "--batch", "-3"],
                    ["train", "--data", self.data, "--out", out, "--ngf", "0"],
                    ["sample", "--ckpt", out, "--out", out, "--n", "0"]]  # fmt: skip
        codes = [self.cli(*argv).returncode for argv in commands]
        return codes == [2] * len(commands) and not out.exists(), f"exit codes {codes}"

    def case8(self, i: int) -> tuple[bool, str]:
        """Symbolic link loops inside a class folder and at the top."""
        data = self.work / f"c8-data-{i}"
        shutil.rmtree(data, ignore_errors=True)
        shutil.copytree(self.data, data)
        cls = sorted(p for p in data.iterdir() if p.is_dir())[0]
        os.symlink("loop.png", cls / "loop.png")
        os.symlink("b.png", cls / "a.png")
        os.symlink("a.png", cls / "b.png")
        os.symlink("top.png", data / "top.png")
        done = self.cli("train", "--data", data, "--out", self.fresh(f"c8-{i}"), "--steps", 2, *TINY)
        loops = [line for line in done.stdout.splitlines() if "link loop" in line]
        return done.returncode == 0 and len(loops) == 4, f"rc={done.returncode}, loops reported={len(loops)}"

    def case9(self, i: int) -> tuple[bool, str]:
        """SIGKILL at a random moment while a checkpoint is saved every step."""
        out = self.fresh(f"c9-{i}")
        proc = self.long_trainer(out, "--ckpt-every", 1, "--keep", 2, "--sample-every", 0, *TINY)
        time.sleep(random.random() * 0.5)
        proc.kill()
        proc.communicate()
        root = out / "checkpoints"
        debris = sorted(p.name for p in root.iterdir() if p.name.startswith("."))
        after_kill = json.loads((out / "status.json").read_text())["state"]
        sys.path.insert(0, str(self.source))
        from gan_studio.app.training_manager import TrainingManager

        shown = TrainingManager(self.work).progress(out).state
        step = json.loads((root / (root / "latest").read_text().strip() / "checkpoint.json").read_text())[
            "step"
        ]
        done = self.cli("train", "--out", out, "--steps", step + 1, "--resume", *TINY)
        left = sorted(p.name for p in root.iterdir() if p.name.startswith("."))
        final = json.loads((out / "status.json").read_text())["state"]
        ok = shown == "interrupted" and done.returncode == 0 and not left and final == "finished"
        return (
            ok,
            f"debris {debris}, status {after_kill}, app shows {shown}, resume rc={done.returncode}, left {left}",
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--tries", type=int, default=3)
    parser.add_argument("--cases", nargs="+", default=[str(n) for n in range(1, 10)])
    parser.add_argument("--source", type=Path, default=Path(__file__).resolve().parents[1])
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    repro = Repro(args.data.resolve(), args.work.resolve(), args.source.resolve())
    for case in args.cases:
        run = getattr(repro, f"case{case}")
        results = []
        for i in range(args.tries):
            ok, detail = run(i)
            results.append(ok)
            print(f"case {case} try {i + 1}: {'OK' if ok else 'FAIL'}: {detail}", flush=True)
        print(f"case {case} ({run.__doc__.strip()}): {sum(results)}/{len(results)} OK", flush=True)


if __name__ == "__main__":
    main()
