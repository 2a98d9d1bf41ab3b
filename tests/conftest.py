"""Shared fixtures: offline environment, a tiny demo dataset, and one tiny trained run per session."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# Offline, quiet, deterministic: set before anything imports gradio / huggingface_hub.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

TINY_MODEL_ARGS = ["--ngf", "8", "--ndf", "8", "--z-dim", "16"]


def run_cli(
    *args: str,
    cwd: Path | None = None,
    env: dict | None = None,
    timeout: int = 600,
    module: tuple[str, ...] = ("-m", "gan_studio"),
) -> subprocess.CompletedProcess:
    """Run ``python -m gan_studio ...`` in a subprocess, as a user would."""
    full_env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.run(
        [sys.executable, *module, *map(str, args)],
        cwd=cwd or REPO,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("gan_studio_cache")
    os.environ["GAN_STUDIO_CACHE"] = str(path)
    return path


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory, cache_dir) -> Path:
    """A small vise-parts dataset: 10 classes x 8 images at 64 px."""
    from gan_studio.data.demo import make_demo_dataset

    return make_demo_dataset(
        tmp_path_factory.mktemp("data") / "vise", per_class=8, size=64, seed=0, progress=False
    )


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, demo_dir) -> Path:
    """A run trained for a handful of steps at 32 px with a tiny model (seconds on a CPU)."""
    out = tmp_path_factory.mktemp("runs") / "tiny"
    proc = run_cli(
        "train",
        "--data",
        demo_dir,
        "--out",
        out,
        "--res",
        "32",
        "--steps",
        "6",
        "--batch",
        "4",
        *TINY_MODEL_ARGS,
        "--log-every",
        "2",
        "--sample-every",
        "3",
        "--ckpt-every",
        "3",
        "--precision",
        "fp32",
        "--no-progress",
    )
    assert proc.returncode == 0, proc.stderr
    return out
