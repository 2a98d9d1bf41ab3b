"""Shared-Space soak: N simultaneous API clients sampling, curating and exporting against one app in
Space mode, for a few minutes; counts errors, checks that no client sees another's accepted set, and
reports the app's peak memory.

Starts ``python app.py`` in a subprocess with ``GAN_STUDIO_PROFILE=space`` (the limits and the private
curation sets a Hugging Face Space gets) over the shipped checkpoints and a fresh workdir. Each client
has its own gradio_client connection and loops: Sample (one image per class), Curate generate (two new
candidates of a random class), thresholds, a toggle by hand, an export, and a check of what it sees.
Clients 0..N-3 curate their private sets; the last two share the named set ``soak-team``.

Each call may take up to 10 minutes (on a busy CPU the queue is long); the times are reported.
A client's view is wrong when its set holds candidates it did not make (or, for the shared set, that
neither sharer made), when its candidate count differs from what it made, or when its export holds
another client's images. Every exception of a call is an error too. Peak memory is the app process's
VmHWM (Linux) plus the largest resident size sampled for the app and its children.

    python benchmarks/space_soak.py                      # 8 clients, 3 minutes
    python benchmarks/space_soak.py --minutes 1 --json soak.json
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.request
import zipfile
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from gan_studio.sampling import safe_name  # noqa: E402 - the curation's own folder names

SHARED_SET = "soak-team"
CALL_TIMEOUT_S = 600.0  # a call slower than this is an error
SEED_BLOCK = 1_000_000  # client i draws seeds from (i + 1) * SEED_BLOCK upward: owners are readable
_COUNT = re.compile(r"\*\*(\d+) accepted\*\* of (\d+) candidates")
_SEED = re.compile(r"seed_(\d+)_t")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_page(url: str, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"app.py exited with code {proc.returncode} before serving the page")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"no page at {url} after {timeout:.0f} s")


def _rss_kb(pid: int, field: str = "VmRSS") -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants (Linux /proc)."""
    children = defaultdict(list)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children[ppid].append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        todo += children.get(current, [])
    return out


class MemoryWatch(threading.Thread):
    """Samples the resident size of the app and its children every ``every`` seconds."""

    def __init__(self, pid: int, every: float = 0.5):
        super().__init__(daemon=True)
        self.pid, self.every, self.peak_kb, self.stop_event = pid, every, 0, threading.Event()

    def run(self) -> None:
        while not self.stop_event.is_set():
            self.peak_kb = max(self.peak_kb, sum(_rss_kb(p) for p in _tree(self.pid)))
            self.stop_event.wait(self.every)


class Soaker:
    """One client: its own connection, set, seeds, and what it made."""

    def __init__(self, index: int, url: str, run: str, evaluator: str, classes: list[str], shared: bool):
        from gradio_client import Client

        self.index, self.run, self.evaluator, self.classes = index, run, evaluator, classes
        self.set = SHARED_SET if shared else ""
        # httpx's 5 s default would count a slow file download on a busy CPU as an error; the calls'
        # times are reported instead.
        self.client = Client(url, verbose=False, httpx_kwargs={"timeout": CALL_TIMEOUT_S})
        self.next_seed = (index + 1) * SEED_BLOCK
        self.made: set[int] = set()  # seeds of the candidates this client generated
        self.ops: dict[str, list[float]] = defaultdict(list)
        self.errors: list[str] = []
        self.rng = random.Random(index)

    def call(self, name: str, *args):
        start = time.perf_counter()
        try:
            return self.client.predict(*args, api_name=f"/{name}")
        finally:
            self.ops[name].append(time.perf_counter() - start)

    def loop_once(self, allowed_seeds) -> None:
        self.call(
            "sample", self.run, self.evaluator, "All classes", 1, self.next_seed, 1.0, [], 3, 40, 80, 1.2
        )
        klass, seed = self.rng.choice(self.classes), self.next_seed
        self.next_seed += 10
        self.made |= {seed, seed + 1}  # before the call: a sharer may see them as soon as they exist
        _, _, status, *_ = self.call(
            "curate_generate", self.run, self.evaluator, klass, 2, seed, 1.0, [], 3, 40, 80, 1.2,
            "All classes", "All", "Class, then seed", self.set,
        )  # fmt: skip
        self.check(status, allowed_seeds, "after generate")
        conf = round(self.rng.uniform(0.2, 0.8), 2)
        self.call(
            "curate_thresholds", self.run, "All classes", conf, 0.0, "All", "Class, then seed", self.set
        )
        candidate = f"{safe_name(klass)}/seed_{seed:06d}_t100"
        for _ in range(2):  # a toggle by hand; again when it left nothing accepted (an export needs one)
            _, _, status, *_ = self.call(
                "curate_toggle", self.run, "All classes", candidate, "All", "Class, then seed", self.set
            )
            self.check(status, allowed_seeds, "after toggle")
            if (found := _COUNT.search(status)) and int(found.group(1)) > 0:
                break
        archive, _ = self.call("curate_export", self.run, False, 64, "metadata.jsonl", self.set)
        with zipfile.ZipFile(archive) as zf:
            seeds = {int(m.group(1)) for name in zf.namelist() if (m := _SEED.search(name))}
        if not seeds <= allowed_seeds():
            self.errors.append(
                f"client {self.index}: export holds others' seeds {sorted(seeds - allowed_seeds())[:5]}"
            )

    def check(self, status: str, allowed_seeds, when: str) -> None:
        """A private set holds exactly what this client made; the shared one at least that."""
        found = _COUNT.search(status)
        if not found:
            self.errors.append(f"client {self.index}: no count in the status {when}: {status[:200]!r}")
            return
        total = int(found.group(2))
        wrong = (
            total != len(self.made)
            if not self.set
            else total < len(self.made) or total > len(allowed_seeds())
        )
        if wrong:
            self.errors.append(f"client {self.index}: sees {total} candidates {when}, made {len(self.made)}")

    def soak(self, until: float, allowed_seeds) -> None:
        while time.monotonic() < until:
            try:
                self.loop_once(allowed_seeds)
            except Exception as error:  # noqa: BLE001 - every failed call is counted, then the loop goes on
                self.errors.append(f"client {self.index}: {type(error).__name__}: {error}"[:500])
                self.ops["failed loops"].append(0.0)


def start_app(args, workdir: str, port: int) -> subprocess.Popen:
    env = {
        **os.environ,
        "GAN_STUDIO_PROFILE": "space",
        "GRADIO_ANALYTICS_ENABLED": "False",
        "HF_HUB_OFFLINE": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "PYTHONPATH": str(REPO),
    }
    argv = [sys.executable, "app.py", "--port", str(port), "--workdir", workdir, "--device", "cpu"]
    for folder in args.checkpoints:
        argv += ["--checkpoints", folder]
    log = open(Path(workdir) / "app.log", "wb")  # noqa: SIM115 - lives as long as the app
    return subprocess.Popen(argv, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)


def models(url: str) -> tuple[str, str, list[str]]:
    """The default run, its evaluator and its classes, as the page offers them."""
    from gradio_client import Client

    client = Client(url, verbose=False, httpx_kwargs={"timeout": CALL_TIMEOUT_S})
    runs, evaluators, _, _ = client.predict(None, None, api_name="/list_models")
    run, evaluator = runs["value"], evaluators["value"]
    if not run or not evaluator:
        raise RuntimeError(f"the app offers no run with an evaluator (runs {runs}, evaluators {evaluators})")
    _, counts, *_ = client.predict(
        run, "All classes", "All", "Class, then seed", "soak-probe", api_name="/curate_show"
    )  # the per-class table of an empty set: every class of the run
    classes = [row[0] for row in counts["data"]]
    # A warm-up before the clock starts: the real images' features are computed once per app.
    client.predict(
        run, evaluator, classes[0], 1, 0, 1.0, [], 3, 40, 80, 1.2, "All classes", "All", "Class, then seed",
        "soak-probe", api_name="/curate_generate",
    )  # fmt: skip
    return run, evaluator, classes


def summarise(
    soakers: list[Soaker], baseline_kb: int, peak_hwm_kb: int, peak_tree_kb: int, seconds: float, args
) -> dict:
    ops = defaultdict(list)
    for soaker in soakers:
        for name, times in soaker.ops.items():
            ops[name] += times
    return {
        "clients": len(soakers),
        "minutes": args.minutes,
        "seconds": round(seconds, 1),
        "errors": [error for soaker in soakers for error in soaker.errors],
        "calls": {name: len(times) for name, times in sorted(ops.items())},
        "median_s": {name: round(statistics.median(t), 2) for name, t in sorted(ops.items()) if t},
        "max_s": {name: round(max(t), 2) for name, t in sorted(ops.items()) if t},
        "candidates_per_client": [len(s.made) for s in soakers],
        "rss_mb_app_before_clients": round(baseline_kb / 1024, 1),
        "peak_rss_mb_app": round(peak_hwm_kb / 1024, 1),
        "peak_rss_mb_app_and_children": round(peak_tree_kb / 1024, 1),
        "cpu": _cpu(),
        "date": time.strftime("%Y-%m-%d"),
    }


def _cpu() -> str:
    try:
        names = [
            line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")
        ]
        return f"{names[0]}, {len(names)} cores" if names else "unknown"
    except OSError:
        return "unknown"


def final_check(soakers: list[Soaker], allowed) -> None:
    """After the clients stopped: each private set is exactly its maker's; the shared one is both sharers'."""
    for soaker in soakers:
        try:
            _, _, status, *_ = soaker.call(
                "curate_show", soaker.run, "All classes", "All", "Class, then seed", soaker.set
            )
            found = _COUNT.search(status)
            expected = len(allowed(soaker)())
            if not found or int(found.group(2)) != expected:
                soaker.errors.append(
                    f"client {soaker.index}: final view {status[:160]!r}, expected {expected}"
                )
        except Exception as error:  # noqa: BLE001
            soaker.errors.append(f"client {soaker.index}: final check failed: {error}"[:500])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=3.0, help="how long the clients keep going")
    parser.add_argument("--clients", type=int, default=8, help="simultaneous clients (at least 3)")
    parser.add_argument("--checkpoints", nargs="+", default=[str(REPO / "checkpoints")])
    parser.add_argument("--startup-timeout", type=float, default=600.0)
    parser.add_argument("--json", default=None, help="also write the result here")
    args = parser.parse_args(argv)
    if args.clients < 3:
        parser.error("--clients must be at least 3 (two share a set, the others keep theirs private)")

    with tempfile.TemporaryDirectory(prefix="space-soak-") as workdir:
        port = free_port()
        url = f"http://127.0.0.1:{port}/"
        proc = start_app(args, workdir, port)
        watch = MemoryWatch(proc.pid)
        watch.start()
        try:
            wait_for_page(url, proc, args.startup_timeout)
            run, evaluator, classes = models(url)
            print(f"app up at {url}: run {run}, evaluator {evaluator}, {len(classes)} classes", flush=True)
            soakers = [
                Soaker(i, url, run, evaluator, classes, shared=i >= args.clients - 2)
                for i in range(args.clients)
            ]
            sharers = [s for s in soakers if s.set]

            def allowed(soaker: Soaker):
                group = sharers if soaker.set else [soaker]
                return lambda: set().union(*(s.made for s in group))

            baseline_kb = _rss_kb(proc.pid)  # after start-up and the warm-up, before any client
            until = time.monotonic() + 60 * args.minutes
            started = time.monotonic()
            threads = [threading.Thread(target=s.soak, args=(until, allowed(s))) for s in soakers]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            seconds = time.monotonic() - started
            final_check(soakers, allowed)
            watch.stop_event.set()
            result = summarise(soakers, baseline_kb, _rss_kb(proc.pid, "VmHWM"), watch.peak_kb, seconds, args)
        except Exception:
            traceback.print_exc()
            print((Path(workdir) / "app.log").read_text(errors="replace")[-4000:], file=sys.stderr)
            raise
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 1 if result["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
