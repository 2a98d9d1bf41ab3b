"""results.json and results.csv: rewritten after every finished (arm, seed), so a bench can resume.

A rerun into the same folder trains only the missing pairs, and refuses to mix in results measured
with a different setup (generator, data, classifier budget).
"""

from __future__ import annotations

import csv
import io
import json
import time
from pathlib import Path
from typing import Any

from gan_studio.evaluation.augment_bench.arms import ARM_KINDS
from gan_studio.utils.atomic import write_json_atomic, write_text_atomic

RESULTS_VERSION = 1
RESULTS_JSON, RESULTS_CSV = "results.json", "results.csv"


class BenchResults:
    """results.json + results.csv in the bench folder; refuses to mix results of different setups."""

    def __init__(self, out: Path, fingerprint: dict, header: dict, class_names: list[str]):
        self.out, self.class_names = out, class_names
        self.path = out / RESULTS_JSON
        self.doc: dict[str, Any] = {"results": []}
        if self.path.is_file():
            try:
                self.doc = json.loads(self.path.read_text(encoding="utf-8"))
            except json.JSONDecodeError as error:
                raise ValueError(
                    f"'{self.path}' is not valid JSON ({error}); delete it to start the bench over."
                ) from None
            self._check_fingerprint(fingerprint)
        created = self.doc.get("created", time.strftime("%Y-%m-%dT%H:%M:%S"))
        results = self.doc.get("results", [])
        # The union: a run without an evaluator keeps the filter setup of earlier filtered arms.
        fingerprint = {**self.doc.get("fingerprint", {}), **fingerprint}
        self.doc = {"format_version": RESULTS_VERSION, "kind": "gan-studio-augment-bench", **header}
        self.doc.update(fingerprint=fingerprint, created=created, results=results)

    def _check_fingerprint(self, fingerprint: dict) -> None:
        """Keys on both sides must agree; a key only one side has (the filter) constrains nothing yet."""
        old = self.doc.get("fingerprint", {})
        changed = [
            f"{key}: {old[key]!r} -> {value!r}"
            for key, value in fingerprint.items()
            if key in old and old[key] != value
        ]
        if self.doc.get("format_version") != RESULTS_VERSION or changed:
            raise ValueError(
                f"'{self.path}' holds results of a different setup ({'; '.join(changed) or 'another format'}). "
                "Use a new --out folder, or delete that results.json to start over."
            )

    def has(self, arm: str, seed: int) -> bool:
        return any(row["arm"] == arm and row["seed"] == seed for row in self.doc["results"])

    def add(self, row: dict) -> None:
        self.doc["results"] = [
            r for r in self.doc["results"] if (r["arm"], r["seed"]) != (row["arm"], row["seed"])
        ]
        self.doc["results"].append(row)
        self.doc["results"].sort(key=lambda r: (ARM_KINDS.index(r["kind"]), r["ratio"], r["seed"]))
        self.save()

    def save(self) -> None:
        self.doc["updated"] = time.strftime("%Y-%m-%dT%H:%M:%S")
        self.out.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.path, self.doc)
        write_text_atomic(self.out / RESULTS_CSV, results_csv(self.doc["results"], self.class_names))


def results_csv(rows: list[dict], class_names: list[str]) -> str:
    """One line per (arm, seed); per-class accuracies as accuracy[<class>] columns."""
    columns = ["arm", "kind", "ratio", "seed", "accuracy", "n_real", "n_synthetic", "n_test", "quota_met"]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns + [f"accuracy[{name}]" for name in class_names])
    for row in rows:
        per_class = row["per_class_accuracy"]
        writer.writerow([row[c] for c in columns] + [per_class.get(name) for name in class_names])
    return buffer.getvalue()
