"""Evaluations side by side (gan_studio/metrics/history.py): each kept in an entry of its own, never
overwritten; folders from before the history read as one; every figure says what it was computed on."""

from __future__ import annotations

import json
from pathlib import Path

from gan_studio.app.common import entry_markdown
from gan_studio.app.evaluation_jobs import EvaluationService, history_choices, history_rows
from gan_studio.app.jobs import JobRunner
from gan_studio.app.registry import GENERATOR, discover
from gan_studio.metrics import history
from gan_studio.utils.atomic import write_json_atomic

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "checkpoints" / "vise-parts"
CLASSES = ["a", "b"]


def meta(n: int, created: str, **extra) -> dict:
    return {
        "step": 40, "evaluator": "/x/run/evaluator", "split": "/x/run/split.json", "split_sha1": "0123456789ab",
        "n_real_train": 30, "real_train_per_class": {"a": 15, "b": 15}, "n_per_class": n, "seed": 0,
        "seeds": f"0..{n - 1} for every class", "created": created, **extra,
    }  # fmt: skip


def evaluate_into(out: Path, n: int, coverage: float, created: str, pairs: bool = False) -> Path:
    """What `evaluate --out OUT` does after measuring: a new entry, then the newest copied to the top."""
    m = meta(n, created)
    folder = history.new_entry(out, m)
    write_json_atomic(folder / "metrics.json", {"meta": m, "metrics": {"prdc": {"coverage": coverage}}})
    (folder / "report.md").write_text(f"# report n={n}\n")
    (folder / "samples.png").write_bytes(b"png %d" % n)
    if pairs:
        (folder / "memorization_pairs.png").write_bytes(b"pairs")
    history.publish(out, folder)
    return folder


def test_two_evaluations_are_two_entries_and_the_newest_is_on_top(tmp_path):
    out = tmp_path / "report"
    first = evaluate_into(out, 200, 0.78, "2026-12-01T10:00:00Z", pairs=True)
    second = evaluate_into(out, 20, 0.34, "2026-12-02T10:00:00Z")
    kept = history.history(out)
    assert [e.id for e in kept] == ["20261201T100000Z-n200", "20261202T100000Z-n20"]
    assert [e.headline["coverage"] for e in kept] == [0.78, 0.34]  # the first one is intact
    assert (first / "report.md").read_text() == "# report n=200\n" and (
        first / "memorization_pairs.png"
    ).is_file()
    top = json.loads((out / "metrics.json").read_text())
    assert (
        top["meta"]["evaluation_id"] == second.name and (out / "report.md").read_text() == "# report n=20\n"
    )
    assert not (out / "memorization_pairs.png").exists()  # the top never mixes two evaluations
    index = json.loads((out / "evaluations" / "index.json").read_text())
    assert [row["id"] for row in index["evaluations"]] == [first.name, second.name]
    assert index["evaluations"][0]["computed_on"].startswith("200 generated + 15 real train per class")


def test_evaluations_in_the_same_second_get_their_own_folders(tmp_path):
    out = tmp_path / "report"
    a = evaluate_into(out, 5, 0.1, "2026-12-01T10:00:00Z")
    b = evaluate_into(out, 5, 0.2, "2026-12-01T10:00:00Z")
    assert a != b and b.name == f"{a.name}-2"
    assert sorted(e.headline["coverage"] for e in history.history(out)) == [0.1, 0.2]


def test_a_folder_from_before_the_history_reads_as_one_and_is_kept_when_evaluated_again(tmp_path):
    out = tmp_path / "old-report"
    old = meta(200, "2026-11-30T00:34:13")  # old files: local time, no evaluation_id, no entries
    write_json_atomic(out / "metrics.json", {"meta": old, "metrics": {"prdc": {"coverage": 0.782}}})
    (out / "report.md").write_text("# the shipped report\n")
    (only,) = history.history(out)
    assert only.origin == "top" and only.headline == {"coverage": 0.782} and only.when == "2026-11-30 00:34"

    evaluate_into(out, 2, 0.225, "2026-12-05T10:00:00Z")
    earlier, newer = history.history(out)
    assert earlier.origin == newer.origin == "history"
    assert earlier.headline == {"coverage": 0.782} and newer.headline == {"coverage": 0.225}
    assert (earlier.folder / "report.md").read_text() == "# the shipped report\n"
    assert (out / "report.md").read_text() == "# report n=2\n"


def test_the_label_says_what_a_figure_was_computed_on():
    label = history.computed_on(meta(200, "2026-12-01T10:00:00Z"))
    assert label == (
        "200 generated + 15 real train per class · real: the train fold of split.json (01234567) · step 40 · "
        "evaluator run/evaluator · seeds 0..199 for every class"
    )
    uneven = meta(20, "x", real_train_per_class={"a": 12, "b": 15})
    assert history.sample_size(uneven) == "20 generated + 12-15 real train per class"
    older = {"n_per_class": 200, "n_real_train": 1400}  # no per-class counts recorded
    assert history.sample_size(older, n_classes=10) == "200 generated + 140 real train per class"
    assert history.sample_size(older) == "200 generated per class + 1400 real train images"
    given = {**meta(3, "x"), "n_per_class": "3-5", "images": "/w/exports/toy-curated-1.zip"}  # --images
    assert history.sample_size(given) == "3-5 generated (given: toy-curated-1.zip) + 15 real train per class"
    assert history.entry_id({**given, "created": "2026-12-05T10:00:00Z"}) == "20261205T100000Z-n3-5-given"


def test_the_shipped_package_is_the_first_entry_and_is_never_written(tmp_path):
    before = sorted(p.name for p in PACKAGE.iterdir())
    (package,) = [e for e in discover([REPO / "checkpoints"]) if e.kind == GENERATOR]
    service = EvaluationService(JobRunner(), tmp_path)
    (shipped,) = service.history(package)
    assert shipped.origin == "top" and shipped.meta["n_per_class"] == 200
    assert round(shipped.headline["coverage"], 3) == 0.728

    evaluate_into(service.report_dir(package), 2, 0.225, "2030-01-01T00:00:00Z")  # a small app evaluation
    kept = service.history(package)
    assert [e.meta["n_per_class"] for e in kept] == [200, 2]
    rows = history_rows(kept, package)  # newest first
    assert rows[0][0] == "2" and rows[0][3] == "2 + 15" and rows[0][10] == "history"
    assert rows[1][0] == "1" and rows[1][3] == "200 + 140" and rows[1][7] == "0.7279"
    assert rows[1][10] == "package"
    assert [value for _, value in history_choices(kept)] == [kept[1].id, kept[0].id]
    assert sorted(p.name for p in PACKAGE.iterdir()) == before  # nothing was added to the package


def test_the_model_line_says_what_its_metrics_were_computed_on():
    (package,) = [e for e in discover([REPO / "checkpoints"]) if e.kind == GENERATOR]
    line = entry_markdown(package, None)
    assert "metrics on 200 generated + 140 real train per class: CAS 97%" in line
    assert "coverage 0.728" in line
