"""What a GAN run recorded about its real data: run.json, and the exact images the GAN trained on.

Both experiments that compare synthetic with real data (augment-bench, study) must give their
real-only arms the images the GAN saw, so they read those images from here in the same way.
"""

from __future__ import annotations

import json
from pathlib import Path

from gan_studio.data import DatasetError, few_shot_paths
from gan_studio.training.run_folder import RunFolder


def read_run(run_dir: Path | None) -> dict:
    """The run's run.json; {} for a checkpoint without a run folder (a bare or downloaded generator)."""
    if run_dir is None or not RunFolder(run_dir).run_path.is_file():
        return {}
    return json.loads(RunFolder(run_dir).run_path.read_text(encoding="utf-8"))


def gan_train_files(
    run_dir: Path | None, run: dict, train_records: list, train_paths: set[str]
) -> set[str] | None:
    """The exact real images the GAN trained on: train_files.json, else rebuilt from run.json, else None."""
    listing = RunFolder(run_dir).train_files_path if run_dir else None
    if listing is not None and listing.is_file():
        files = json.loads(listing.read_text(encoding="utf-8"))
        if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
            raise DatasetError(f"'{listing}' must be a JSON list of file paths; restore it from the run.")
        return set(files)
    if not run:
        return None
    per_class = int(run.get("config", {}).get("train_per_class") or 0)
    if per_class > 0:
        return set(few_shot_paths(train_records, per_class, seed=int(run["config"].get("seed", 0))))
    return set(train_paths)
