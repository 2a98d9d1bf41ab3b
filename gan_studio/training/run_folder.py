"""The one owner of a training run folder's layout: every file name, reader and writer.

    RUN_DIR/
      run.json            config, phases, class names, dataset summary     (RunFolder.read_run / write_run)
      split.json          the train/test split (the GAN never sees test images)
      train_files.json    the train images actually used (few-shot subsets)
      data_report.json    the dataset validation report
      log.jsonl           one JSON line per logging interval              (RunFolder.append_log / log_records)
      status.json         live state for the app                          (RunFolder.read_status / write_status)
      samples/            per-class sample grids
      checkpoints/        see gan_studio.training.checkpoint

Other modules ask a ``RunFolder`` for paths and contents instead of spelling these names.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from gan_studio.training import checkpoint as ckpt
from gan_studio.utils.atomic import write_json_atomic

RUN_FILE = "run.json"
STATUS_FILE = "status.json"
LOG_FILE = "log.jsonl"
SPLIT_FILE = "split.json"
TRAIN_FILES_FILE = "train_files.json"
DATA_REPORT_FILE = "data_report.json"
SAMPLES_DIR = "samples"
SAMPLE_GRID = re.compile(r"^step_(\d+)\.png$")  # samples/step_0002000.png: the grid at step 2000
# The files a model package copies from its run folder.
PACKAGED_FILES = (RUN_FILE, SPLIT_FILE, TRAIN_FILES_FILE, DATA_REPORT_FILE)


class RunFolder:
    """A training run folder (``train --out``); also answers for a package, which keeps run.json and split.json."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    @property
    def run_path(self) -> Path:
        return self.path / RUN_FILE

    @property
    def status_path(self) -> Path:
        return self.path / STATUS_FILE

    @property
    def log_path(self) -> Path:
        return self.path / LOG_FILE

    @property
    def split_path(self) -> Path:
        return self.path / SPLIT_FILE

    @property
    def train_files_path(self) -> Path:
        return self.path / TRAIN_FILES_FILE

    @property
    def data_report_path(self) -> Path:
        return self.path / DATA_REPORT_FILE

    @property
    def samples_dir(self) -> Path:
        return self.path / SAMPLES_DIR

    def sample_grids(self) -> list[tuple[int, Path]]:
        """(step, path) of every per-class sample grid the run saved, oldest first."""
        if not self.samples_dir.is_dir():
            return []
        grids = []
        for path in self.samples_dir.iterdir():
            match = SAMPLE_GRID.match(path.name)
            if match:
                grids.append((int(match.group(1)), path))
        return sorted(grids)

    @property
    def checkpoints_dir(self) -> Path:
        return ckpt.checkpoints_root(self.path)

    def has_run_file(self) -> bool:
        return self.run_path.is_file()

    def read_run(self) -> Any:
        """run.json; CheckpointError when missing or damaged."""
        return ckpt.read_json(self.run_path)

    def write_run(self, info: dict) -> None:
        write_json_atomic(self.run_path, info)

    def config_values(self) -> dict:
        """run.json's "config" table, unchecked (``run_files.saved_config`` checks it)."""
        return self.read_run()["config"]

    def read_status(self) -> Any:
        """status.json; CheckpointError when missing or damaged."""
        return ckpt.read_json(self.status_path)

    def write_status(self, status: dict) -> None:
        write_json_atomic(self.status_path, status)

    def read_train_files(self) -> Any:
        return ckpt.read_json(self.train_files_path)

    def write_train_files(self, files: list[str]) -> None:
        write_json_atomic(self.train_files_path, files)

    def start_log(self) -> None:
        """An empty log.jsonl (a new run)."""
        self.log_path.write_text("")

    def append_log(self, record: dict) -> None:
        with open(self.log_path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")

    def log_records(self) -> list[dict]:
        """log.jsonl's records; none when it cannot be read, skipping a line being written right now."""
        records = []
        try:
            lines = self.log_path.read_text(encoding="utf-8").splitlines()
        except OSError:
            return records
        for line in lines:
            try:
                records.append(json.loads(line))
            except ValueError:
                continue  # a line being written right now
        return records
