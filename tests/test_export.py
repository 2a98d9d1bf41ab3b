"""Curation views and the export (.zip, manifest.json, metadata.csv / metadata.jsonl) without any model."""

from __future__ import annotations

import csv
import io
import json
import os
import zipfile
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from gan_studio.app.common import decisive
from gan_studio.app.curation import SORT_ORDERS, Candidate, CurationStore, next_cursor, step_cursor, view
from gan_studio.app.evaluation_jobs import EvaluationService
from gan_studio.app.export import (
    METADATA_COLUMNS,
    check_size,
    export_file_name,
    missing_warning,
    saved_exports,
)
from gan_studio.app.jobs import JobRunner
from gan_studio.data.folder import ImageRecord
from gan_studio.sampling import SAMPLES_SCHEMA, upgrade_manifest

CLASSES = ["Nut", "Clamp", "Slider"]  # the model's order: not sorted, as an ImageFolder loader would


def _png(path, size, value):
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(value)
    Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(path)


def _candidate(store, class_index, seed, confidence, ratio, accepted):
    name = CLASSES[class_index]
    cid = f"{name}/seed_{seed:06d}_t100"
    file = f"images/{cid}.png"
    _png(store.folder / file, 32, seed + 100 * class_index)
    return Candidate(
        id=cid, class_name=name, class_index=class_index, seed=seed, truncation=1.0, step=7, file=file,
        confidence=confidence, predicted=name, predicted_confidence=confidence, memorization_ratio=ratio,
        nearest_real=f"{name}/real_0.png", accepted=accepted,
    )  # fmt: skip


@pytest.fixture
def store(tmp_path):
    """Nut: 2 of 3 accepted, Clamp: 1 of 1, Slider: 0 of 2 (none passes), 32 px candidates."""
    store = CurationStore(tmp_path / "curation", "toy")
    store.meta = {"generator": "toy", "z_dim": 8, "class_names": CLASSES}
    store.candidates = [
        _candidate(store, 0, 0, 0.9, 1.0, True),
        _candidate(store, 0, 1, 0.597, 1.2, False),
        _candidate(store, 0, 2, 0.7, 0.8, True),
        _candidate(store, 1, 0, 0.95, 0.9, True),
        _candidate(store, 2, 0, 0.2, 0.9, False),
        _candidate(store, 2, 1, 0.3, 0.2, False),
    ]
    store.save()
    return store


@pytest.fixture
def real(tmp_path):
    """Two real 128 px train images per class (one a JPEG), under their own root."""
    root, records = tmp_path / "real", []
    for index, name in enumerate(CLASSES):
        for i, ext in enumerate((".png", ".jpg")):
            _png(root / name / f"img {i}{ext}", 128, 1000 + 10 * index + i)
            records.append(ImageRecord(f"{name}/img {i}{ext}", index, name))
    return root, records


def _read(archive):
    with zipfile.ZipFile(archive) as zf:
        names = set(zf.namelist())
        manifest = json.loads(zf.read("manifest.json"))
        texts = {n: zf.read(n).decode() for n in names if n.startswith("metadata.")}
        sizes = {n: Image.open(io.BytesIO(zf.read(n))).size for n in names if n.endswith(".png")}
    return names, manifest, texts, sizes


def test_metadata_csv_lists_every_image_with_label_index_source_and_scores(store, real, tmp_path):
    result = store.export(tmp_path / "out.zip", size=64, real_root=real[0], real_records=real[1])
    names, manifest, texts, sizes = _read(result.path)
    assert set(texts) == {"metadata.csv"}  # the imagefolder loader refuses two metadata formats in one folder
    rows = list(csv.DictReader(io.StringIO(texts["metadata.csv"])))
    assert tuple(rows[0]) == METADATA_COLUMNS
    assert {r["file_name"] for r in rows} == set(sizes) == names - {"manifest.json", "metadata.csv"}
    generated = [r for r in rows if r["source"] == "generated"]
    real_rows = [r for r in rows if r["source"] == "real"]
    assert len(generated) == 3 and len(real_rows) == 6
    nut = next(r for r in generated if r["file_name"] == "Nut/seed_000002_t100.png")
    assert nut["label"] == "Nut" and nut["class_index"] == "0" and float(nut["confidence"]) == 0.7
    assert float(nut["memorization_ratio"]) == 0.8 and nut["seed"] == "2" and nut["decision"] == "threshold"
    slider = next(r for r in real_rows if r["label"] == "Slider" and r["original"] == "Slider/img 1.jpg")
    assert slider["class_index"] == "2" and slider["file_name"] == "Slider/real_img 1.png"
    assert slider["confidence"] == "" and slider["seed"] == ""  # no scores for a real image
    assert manifest["metadata_file"] == "metadata.csv" and result.n_real == 6


def test_metadata_jsonl_has_the_same_rows_with_nulls(store, tmp_path):
    result = store.export(tmp_path / "out.zip", class_names=CLASSES, metadata_file="metadata.jsonl")
    names, _, texts, sizes = _read(result.path)
    assert set(texts) == {"metadata.jsonl"}
    rows = [json.loads(line) for line in texts["metadata.jsonl"].splitlines()]
    assert [tuple(r) for r in rows] == [METADATA_COLUMNS] * 3
    assert {r["file_name"] for r in rows} == set(sizes)
    clamp = next(r for r in rows if r["label"] == "Clamp")
    assert clamp["class_index"] == 1 and clamp["source"] == "generated" and clamp["confidence"] == 0.95
    assert clamp["original"] is None and clamp["predicted"] == "Clamp"
    assert set(sizes.values()) == {(32, 32)}  # no size given: the generated images' own


def test_a_class_without_accepted_candidates_is_named_and_kept_in_the_manifest(store, tmp_path):
    result = store.export(tmp_path / "out.zip", class_names=CLASSES, size=32)
    names, manifest, _, _ = _read(result.path)
    assert not any(n.startswith("Slider/") for n in names)
    assert "Slider (0 of 2 accepted)" in result.warning and "no folder for them" in result.warning
    assert "Nut" not in result.warning
    assert [(c["index"], c["name"], c["generated"]) for c in manifest["classes"]] == [
        (0, "Nut", 2),
        (1, "Clamp", 1),
        (2, "Slider", 0),
    ]
    assert manifest["no_accepted_candidate"] == ["Slider"] and manifest["counts"]["Slider"] == 0
    assert {e["class_index"] for e in manifest["images"] if e["class"] == "Clamp"} == {1}


def test_merged_export_writes_every_image_at_the_chosen_size(store, real, tmp_path):
    result = store.export(
        tmp_path / "out.zip", class_names=CLASSES, size=48, real_root=real[0], real_records=real[1]
    )
    _, manifest, _, sizes = _read(result.path)
    assert len(sizes) == 9 and set(sizes.values()) == {(48, 48)}
    assert manifest["image_size"] == 48 and {e["size"] for e in manifest["images"]} == {48}
    # gan_studio.sampling's samples manifest; a curation from before the model was recorded: named by its run
    assert manifest["schema"] == SAMPLES_SCHEMA and upgrade_manifest(manifest) == manifest
    assert manifest["model"]["id"] == "toy" and "min_confidence" in manifest["thresholds"]
    nut = next(e for e in manifest["images"] if e["file"] == "Nut/seed_000002_t100.png")
    assert (nut["source"], nut["model"], nut["step"], nut["seed"], len(nut["latent"])) == (
        "generated", "toy", 7, 2, 8,
    )  # fmt: skip
    real_entry = next(e for e in manifest["images"] if e["source"] == "real")
    assert real_entry["fit"] == "center-crop" and real_entry["original"] and "seed" not in real_entry
    assert result.warning.endswith("They have real images only.")  # Slider: no generated image, still there
    base = {"name": "Base", "index": 3, "generated": 0, "real": 0, "candidates": 0, "accepted": 0}
    mixed = missing_warning([*result.classes, base])
    assert "Slider (0 of 2 accepted); none generated for Base." in mixed
    assert "no folder for Base, so" in mixed and mixed.endswith("The others have real images only.")
    with pytest.raises(ValueError, match="from 8 to 1024"):
        check_size(4)


def test_views_filter_and_sort_and_the_cursor_moves_through_them(store):
    everything = view(store.candidates)
    assert [c.class_name for c in everything] == ["Nut"] * 3 + ["Clamp"] + ["Slider"] * 2
    rejected = view(store.candidates, show="Rejected", order="Confidence: lowest first")
    assert [c.confidence for c in rejected] == [0.2, 0.3, 0.597]
    assert [c.seed for c in view(store.candidates, "Nut", "Accepted", SORT_ORDERS[-1])] == [0, 2]
    assert view(store.candidates, order="Memorisation ratio: lowest first")[0].memorization_ratio == 0.2
    ids = ["a", "b", "c"]
    assert step_cursor(ids, None, 1) == "a" and step_cursor(ids, None, -1) == "c"
    assert (
        step_cursor(ids, "b", 6) == "c"
        and step_cursor(ids, "b", -6) == "a"
        and step_cursor([], "a", 1) is None
    )
    assert next_cursor(ids, ids, "a") == "b" and next_cursor(ids, ids, "c") == "c"
    assert next_cursor(ids, ["a", "c"], "b") == "c"  # "b" left a filtered view: its successor is next
    assert next_cursor(ids, ["a", "b"], "c") == "b" and next_cursor(["a"], [], "a") is None


def test_decisions_by_hand_stick_and_numbers_show_their_side_of_the_threshold(store):
    store.decide("Slider/seed_000000_t100", True)
    store.set_thresholds(0.99, 0.0)
    assert store.get("Slider/seed_000000_t100").accepted and store.get("Slider/seed_000000_t100").manual
    assert (
        decisive(0.597, 0.6, scale=100, decimals=1) == "59.7"
        and decisive(0.602, 0.6, scale=100, decimals=1) == "60.2"
    )
    assert decisive(0.59996, 0.6, scale=100, decimals=1) == "59.996"  # never "60.0" beside a rejection
    assert decisive(0.6, 0.6, scale=100, decimals=1) == "60.0"


def test_the_hugging_face_loader_reads_both_metadata_formats(store, real, tmp_path):
    datasets = pytest.importorskip("datasets")
    for metadata in ("metadata.csv", "metadata.jsonl"):
        result = store.export(
            tmp_path / f"{metadata}.zip", class_names=CLASSES, size=32, metadata_file=metadata,
            real_root=real[0], real_records=real[1],
        )  # fmt: skip
        folder = tmp_path / metadata
        with zipfile.ZipFile(result.path) as zf:
            zf.extractall(folder)
        ds = datasets.load_dataset("imagefolder", data_dir=str(folder), split="train")
        assert len(ds) == 9 and {"image", "label", "class_index", "source", "confidence"} <= set(
            ds.column_names
        )
        assert sorted(set(zip(ds["label"], ds["class_index"]))) == [("Clamp", 1), ("Nut", 0), ("Slider", 2)]
        assert ds[0]["image"].size == (32, 32)


def test_the_exports_an_evaluation_can_measure_are_this_models_newest_first(store, tmp_path):
    """Evaluate lists a model's Curate exports (evaluate --images): by name and manifest, never a path
    a client sends."""
    folder = tmp_path / "exports"
    older = store.export(folder / export_file_name("toy", "20261205-100000-0a"), class_names=CLASSES, size=32)
    newer = store.export(folder / export_file_name("toy", "20261205-110000-0b"), class_names=CLASSES, size=32)
    os.utime(older.path, (1_000_000, 1_000_000))
    (folder / export_file_name("toy", "broken")).write_bytes(b"not a zip")  # skipped, not an error
    with zipfile.ZipFile(
        folder / export_file_name("toy", "other-model"), "w"
    ) as zf:  # named for it, drawn by another
        zf.writestr("manifest.json", json.dumps({"model": {"id": "toy-2"}, "classes": []}))
    found = saved_exports(folder, "toy")
    assert [e.path for e in found] == [newer.path, older.path]
    assert found[0].generated_per_class == {"Nut": 2, "Clamp": 1, "Slider": 0}
    assert found[0].label == "export 12-05 11:00:00 · 3 images"
    assert saved_exports(folder, "toy-2") == []  # its images, but a name the app never gave its exports

    service = EvaluationService(JobRunner(), tmp_path, exports_dir=folder)
    toy = SimpleNamespace(id="toy")
    assert service.export_path(toy, newer.path.name) == newer.path
    for name in ("../curation/toy/state.json", str(newer.path), export_file_name("toy", "other-model")):
        with pytest.raises(ValueError, match="is not a Curate export of 'toy'"):
            service.export_path(toy, name)
