"""The Embeddings tab's map (gan_studio/app/embeddings.py): as many real points as generated ones per
class, a thumbnail per point for the hover, the stages it reports and what its figures were computed on."""

from __future__ import annotations

import base64
import io

import numpy as np
import torch
from PIL import Image

from gan_studio.app.embeddings import (
    MapRequest,
    balanced_pick,
    embedding_figure,
    fit_umap,
    make_map,
    thumbnail_uri,
)
from tests.app_support import tiny_evaluator


def test_balanced_pick_takes_at_most_n_of_each_class_and_repeats_for_a_seed():
    labels = np.repeat([0, 1, 2], [10, 3, 7])
    pick = balanced_pick(labels, 4, seed=0)
    assert np.bincount(labels[pick]).tolist() == [4, 3, 4]  # class 1 has only 3
    assert np.array_equal(pick, balanced_pick(labels, 4, seed=0)) and np.all(np.diff(pick) > 0)
    assert not np.array_equal(pick, balanced_pick(labels, 4, seed=1))


def test_umap_reports_its_layout_epochs():
    seen = []
    features = np.random.default_rng(0).normal(size=(40, 8)).astype(np.float32)
    coords = fit_umap(features, on_epoch=lambda done, total: seen.append((done, total)))
    assert coords.shape == (40, 2)
    total = seen[-1][1]
    assert total > 0 and seen[-1][0] == total
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)


def test_thumbnails_are_small_pngs():
    image = torch.randint(0, 256, (3, 64, 64), dtype=torch.uint8)
    uri = thumbnail_uri(image)
    assert uri.startswith("data:image/png;base64,")
    png = Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))
    assert png.size == (32, 32)


def test_a_map_balances_real_and_generated_and_says_what_it_was_computed_on(
    tmp_path, tmp_path_factory, tiny_run, demo_dir
):
    from gan_studio.app import create_studio

    evaluator = tiny_evaluator(tmp_path_factory.getbasetemp(), tiny_run, demo_dir)
    studio = create_studio(
        workdir=tmp_path / "w",
        checkpoint_dirs=[tiny_run.parent, evaluator.parent],
        device="cpu",
        warm_up_umap=False,
    )
    studio.embeddings.warm.set()  # no warm-up thread here: the fit compiles in place
    entry = studio.registry.get("generator", "tiny")
    evaluator_entry = studio.registry.get("evaluator", "tiny-evaluator")
    snapshots = []
    request = MapRequest(n=3, seed=0, truncation=1.0, with_test=True)
    embedding, step = make_map(studio, entry, evaluator_entry, request, snapshots.append)

    kinds = np.asarray(embedding.kinds)
    for kind in ("real train", "real test", "generated"):
        counts = np.bincount(embedding.labels[kinds == kind], minlength=len(entry.class_names))
        assert counts.max() <= 3, (kind, counts)
    assert (kinds == "generated").sum() == 3 * len(entry.class_names)
    assert embedding.basis.startswith("3 generated + ") and f"step {step}" in embedding.basis
    assert "Computed on 3 generated + " in embedding.readout()
    assert len(embedding.thumbnails) == len(kinds)
    figure = embedding_figure(embedding)
    assert all(point[3].startswith("data:image/png") for trace in figure.data for point in trace.customdata)

    stages = [s["stage"] for s in snapshots if s["state"] == "running"]
    assert list(dict.fromkeys(stages)) == [
        "generating", "real images", "features", "UMAP neighbours", "UMAP layout", "thumbnails",
    ]  # fmt: skip
    layout = [s for s in snapshots if s["stage"] == "UMAP layout"]
    assert layout[-1]["unit"] == "epochs" and layout[-1]["done"] == layout[-1]["total"]
    assert snapshots[-1]["state"] == "finished"

    again = []
    assert make_map(studio, entry, evaluator_entry, request, again.append)[0] is embedding  # cached
    assert again == []
