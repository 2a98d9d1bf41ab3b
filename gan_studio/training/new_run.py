"""The files a new run writes before its first step: its split, what loading the data found, the
exact train images, run.json (config, classes, data, command, hardware) and an empty log."""

from __future__ import annotations

import time
from pathlib import Path

from gan_studio.data import save_split
from gan_studio.training import checkpoint as ckpt
from gan_studio.training.run_folder import RunFolder
from gan_studio.training.train_data import TrainSet


def write_new_run_files(
    run_dir: Path, config, train_set: TrainSet, *, command: str | None, hardware: dict
) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    run = RunFolder(run_dir)
    save_split(train_set.split, run.split_path)
    ckpt.write_json_atomic(run.data_report_path, train_set.report.to_dict())
    # The exact real images this run trains on (the whole train split, or its few-shot subset).
    run.write_train_files([r.path for r in train_set.data.records])
    run.write_run(
        {
            "format_version": ckpt.FORMAT_VERSION,
            "kind": "gan-studio-run",
            "config": config.to_dict(),
            "class_names": train_set.class_names,
            "data": {
                "source": config.data,
                "root": str(train_set.root),
                "resolution": config.resolution,
                "fit": config.fit,
                "n_train": len(train_set.data),
                "train_per_class": config.train_per_class,
                "n_test": len(train_set.split.test),
                "counts": train_set.report.counts,
            },
            "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "command": command,
            "hardware": hardware,
        },
    )
    run.start_log()
