"""Helpers shared by the app, registry and hub tests: a tiny evaluator next to the session's tiny run."""

from __future__ import annotations

import shutil
from contextlib import contextmanager
from pathlib import Path

EVALUATOR_DIR = "tiny-evaluator"


def tiny_evaluator(base: Path, tiny_run: Path, demo_dir: Path) -> Path:
    """An evaluator trained for a few steps on the tiny run's train split, made once per test session.

    It lives outside the run folder (``base/evaluators/tiny-evaluator``) so other tests see the run as
    the trainer left it; the registry finds it through its own root.
    """
    out = base / "evaluators" / EVALUATOR_DIR
    if (out / "model.safetensors").is_file():
        return out
    from gan_studio.data import load_labeled_images, load_split
    from gan_studio.evaluation import save_evaluator, train_classifier

    data = load_labeled_images(demo_dir, 32, progress=False)
    train_idx, _ = load_split(tiny_run / "split.json").indices(data.records)
    train = data.subset(train_idx)
    model = train_classifier(
        train.images, train.labels, class_names=data.class_names, steps=3, batch_size=16, progress=False,
        precision="fp32", device="cpu",
    )  # fmt: skip
    staging = base / "evaluators" / f".{EVALUATOR_DIR}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    save_evaluator(
        model, staging, training={"data": {"source": str(demo_dir), "root": str(demo_dir)}, "steps": 3}
    )
    shutil.copy2(tiny_run / "split.json", staging / "split.json")
    staging.rename(out)
    return out


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_app(workdir: Path, tiny_run: Path, demo_dir: Path, evaluator: Path):
    """Launch the app on 127.0.0.1 over the tiny run and evaluator; yield (url, studio)."""
    from gan_studio.app import build_app, create_studio, launch_options

    studio = create_studio(
        workdir=workdir,
        checkpoint_dirs=[tiny_run.parent, evaluator.parent],
        default_data=str(demo_dir),
        device="cpu",
    )
    demo = build_app(studio)
    port = free_port()
    demo.launch(
        server_name="127.0.0.1",
        server_port=port,
        prevent_thread_lock=True,
        quiet=True,
        **launch_options(studio),
    )
    try:
        yield f"http://127.0.0.1:{port}/", studio
    finally:
        studio.shutdown()
        demo.close()
