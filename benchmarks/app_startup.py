"""First-run experience: seconds from ``python app.py`` to a served page, and to the first sample grid.

Starts the app exactly as the README does (``python app.py``, shipped checkpoints, a fresh workdir),
polls the page until it answers, then asks the Sample tab's endpoint for one image of every class
with the default generator, as a newcomer's first click does. Repeats in fresh processes.

``--compare DIR`` also starts DIR/app.py (another checkout, e.g. a worktree of the commit before a
change) in turns with this one, so that both see the same machine load: on a shared machine, figures
taken minutes apart are not comparable.

    python benchmarks/app_startup.py                 # 3 cold starts
    python benchmarks/app_startup.py --repeats 1 --json startup.json
    python benchmarks/app_startup.py --repeats 3 --compare ../gan-studio-before
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time a process has used so far (Linux /proc; None elsewhere).

    On a shared machine the wall time to the page depends on the other load; the CPU time it took does
    much less, and on an idle machine the start-up (one busy thread) takes about that long."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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
            time.sleep(0.1)
    raise TimeoutError(f"no page at {url} after {timeout:.0f} s")


def one_start(per_class: int, timeout: float, repo: Path = REPO) -> dict:
    from gradio_client import Client

    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    env = {
        **os.environ,
        "GRADIO_ANALYTICS_ENABLED": "False",
        "HF_HUB_OFFLINE": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
    }
    with tempfile.TemporaryDirectory() as workdir:
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "app.py", "--port", str(port), "--workdir", workdir],
            cwd=repo,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            wait_for_page(url, proc, timeout)
            t_page = time.perf_counter() - t0
            cpu_page = cpu_seconds(proc.pid)
            client = Client(url, verbose=False)
            runs, evaluators, _, _ = client.predict(None, None, api_name="/list_models")
            run_id, evaluator_id = runs["value"], evaluators["value"]
            if run_id is None:
                raise RuntimeError("the app lists no generator: is checkpoints/ empty?")
            gallery, *_ = client.predict(
                run_id, evaluator_id, "All classes", per_class, 0, 1.0, [], 3, 40, 80, 1.2, api_name="/sample"
            )
            t_grid = time.perf_counter() - t0
            t1 = time.perf_counter()
            client.predict(
                run_id,
                evaluator_id,
                "All classes",
                per_class,
                100,
                1.0,
                [],
                3,
                40,
                80,
                1.2,
                api_name="/sample",
            )
            t_again = time.perf_counter() - t1
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
    return {
        "checkout": str(repo),
        "generator": run_id,
        "evaluator": evaluator_id,
        "images": len(gallery),
        "page_s": round(t_page, 2),
        "page_cpu_s": None if cpu_page is None else round(cpu_page, 2),
        "first_grid_s": round(t_grid, 2),
        "next_grid_s": round(t_again, 2),
    }


def cpu(result: dict) -> str:
    return "CPU time n/a" if result["page_cpu_s"] is None else f"{result['page_cpu_s']:.1f} s of CPU"


def report(label: str, i: int, result: dict) -> None:
    print(
        f"{label}start {i + 1}: page {result['page_s']:.1f} s ({cpu(result)}), first grid ({result['images']} images of "
        f"{result['generator']}) {result['first_grid_s']:.1f} s, next grid {result['next_grid_s']:.1f} s",
        flush=True,
    )


def medians(label: str, results: list[dict]) -> None:
    keys = ("page_s", "first_grid_s", "next_grid_s")
    values = {k: statistics.median(r[k] for r in results) for k in keys}
    cpus = [r["page_cpu_s"] for r in results if r["page_cpu_s"] is not None]
    page_cpu = f" ({statistics.median(cpus):.1f} s of CPU)" if cpus else ""
    print(
        f"{label}median of {len(results)}: page {values['page_s']:.1f} s{page_cpu}, first grid "
        f"{values['first_grid_s']:.1f} s, next grid {values['next_grid_s']:.1f} s"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="cold starts, each in a fresh process")
    parser.add_argument("--per-class", type=int, default=1, help="images per class in the grid")
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument(
        "--compare", type=Path, default=None, help="another checkout to start in turns with this one"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()
    checkouts = [REPO] if args.compare is None else [args.compare.resolve(), REPO]
    results: dict[Path, list[dict]] = {repo: [] for repo in checkouts}
    for i in range(args.repeats):
        # In turns, and the first one alternating, so neither side always starts on a cold file cache.
        for repo in checkouts if i % 2 == 0 else checkouts[::-1]:
            result = one_start(args.per_class, args.timeout, repo)
            results[repo].append(result)
            report(f"{repo.name}: " if args.compare else "", i, result)
    if args.compare:
        for repo in checkouts:
            medians(f"{repo}: ", results[repo])
    load = os.getloadavg()[0]
    print(f"load average at the end: {load:.2f} on {os.cpu_count()} cores")
    if args.json:
        flat = [r for repo in checkouts for r in results[repo]]
        args.json.write_text(json.dumps({"results": flat, "load_average": load}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
