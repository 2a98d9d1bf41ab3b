"""UMAP maps of evaluator features: do generated images land among the real ones of their class?

Real train, real test and generated images are embedded together, so a class whose samples form
their own island (or sit on top of single training images) is visible at a glance. The same
features give the precision / coverage readout (k-NN manifolds, ``gan_studio.metrics.prdc``), which
says what it was computed on: the map takes as many real images of each class as generated ones, so
its figures are measured on n + n images per class, not on the evaluation's samples.

UMAP's first fit in a process compiles its numba kernels (~15 s on a small CPU), so ``warm_up``
does one tiny fit in a background thread when the app starts; results are cached per sample set.
Each point carries a small thumbnail that the page shows on hover (``HOVER_JS``).
"""

from __future__ import annotations

import base64
import io
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from gan_studio.metrics.prdc import prdc
from gan_studio.utils.progress import StageProgress

KINDS = ("real train", "real test", "generated")
_SYMBOLS = {"real train": "circle", "real test": "diamond", "generated": "x"}
_MAX_CACHED = 8
THUMBNAIL_PX = 32
THUMBNAILS_UP_TO = 1500  # points; beyond, hovering names the image only (the figure stays light)
_EPOCHS = re.compile(r"(\d+)/(\d+)")


@dataclass
class Embedding:
    coords: np.ndarray  # float32 [N, 2]
    kinds: list[str]  # one of KINDS per point
    labels: np.ndarray  # class index per point (for generated: the class asked for)
    names: list[str]  # what the point is: a file path, or "seed N"
    class_names: list[str]
    scores: dict  # precision / recall / density / coverage of generated vs real train
    basis: str = ""  # what the scores were computed on, said beside them
    thumbnails: list[str] | None = None  # a PNG data URI per point, shown on hover

    def readout(self) -> str:
        """Markdown: the precision / coverage numbers, what they mean, and what they were computed on."""
        s = self.scores
        if s.get("precision") is None:
            return "Too few images for precision / coverage; generate more per class."
        text = (
            f"**Precision** {s['precision']:.2f} (share of generated images inside the real manifold: fidelity) · "
            f"**Coverage** {s['coverage']:.2f} (share of real images with a generated neighbour: variety) · "
            f"recall {s['recall']:.2f} · density {s['density']:.2f} · k = {s['k']}"
        )
        return f"{text}\n\nComputed on {self.basis}." if self.basis else text


class _EpochSink(io.TextIOBase):
    """Where UMAP's epoch bar writes '12/500' (bar_format below): each write reports (done, total)."""

    def __init__(self, on_epoch: Callable[[int, int], None]):
        self.on_epoch = on_epoch

    def write(self, text: str) -> int:
        found = _EPOCHS.search(text)
        if found:
            self.on_epoch(int(found.group(1)), int(found.group(2)))
        return len(text)


def fit_umap(
    features: np.ndarray,
    *,
    seed: int = 0,
    n_neighbors: int = 15,
    min_dist: float = 0.1,
    on_epoch: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """2-D UMAP of ``features`` (cosine metric: evaluator features differ mostly in direction);
    ``on_epoch(done, total)`` follows the layout's epochs, after the neighbour graph is built."""
    import umap

    n = len(features)
    if n < 4:
        raise ValueError(f"UMAP needs at least 4 images, got {n}; generate more per class.")
    epochs = (
        {"disable": False, "file": _EpochSink(on_epoch), "bar_format": "{n}/{total}", "mininterval": 0.2}
        if on_epoch is not None
        else None
    )
    reducer = umap.UMAP(
        n_components=2,
        n_neighbors=max(2, min(n_neighbors, n - 1)),
        min_dist=min_dist,
        metric="cosine",
        random_state=seed,
        n_jobs=1,  # what a fixed random_state implies anyway (said explicitly, UMAP stays quiet)
        init="spectral" if n > 16 else "random",
        tqdm_kwds=epochs,
    )
    return reducer.fit_transform(np.asarray(features, dtype=np.float32)).astype(np.float32)


def balanced_pick(labels: np.ndarray, per_class: int, seed: int) -> np.ndarray:
    """Indices of at most ``per_class`` images of each class (a seeded random pick, in file order), so
    that real and generated points weigh alike in the map and in its precision / coverage."""
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels)
    picks = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        picks.append(members if len(members) <= per_class else rng.choice(members, per_class, replace=False))
    return np.sort(np.concatenate(picks)) if picks else np.zeros(0, dtype=np.int64)


def thumbnail_uri(image: torch.Tensor, size: int = THUMBNAIL_PX) -> str:
    """A uint8 [3, H, W] image as a small PNG data URI (what the hover shows)."""
    if image.shape[-1] != size:
        image = F.interpolate(image[None].float(), size=(size, size), mode="bilinear", antialias=True)[0]
        image = image.round().clamp(0, 255).to(torch.uint8)
    buffer = io.BytesIO()
    Image.fromarray(image.permute(1, 2, 0).numpy()).save(buffer, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def build_embedding(
    class_names: Sequence[str],
    sets: Sequence[tuple[str, np.ndarray, np.ndarray, list[str]]],
    *,
    seed: int = 0,
    on_epoch: Callable[[int, int], None] | None = None,
) -> Embedding:
    """Embed (kind, features, labels, names) sets together; scores compare 'generated' with 'real train'."""
    features = np.concatenate([f for _, f, _, _ in sets])
    coords = fit_umap(features, seed=seed, on_epoch=on_epoch)
    kinds = [kind for kind, f, _, _ in sets for _ in range(len(f))]
    by_kind = {kind: f for kind, f, _, _ in sets}
    scores = {}
    if "generated" in by_kind and "real train" in by_kind:
        scores = prdc(by_kind["real train"], by_kind["generated"])
    return Embedding(
        coords=coords,
        kinds=kinds,
        labels=np.concatenate([np.asarray(lab, dtype=np.int64) for _, _, lab, _ in sets]),
        names=[name for _, _, _, names in sets for name in names],
        class_names=list(class_names),
        scores=scores,
    )


def embedding_figure(embedding: Embedding, title: str = ""):
    """Plotly scatter: colour = class, marker = real train / real test / generated, hover = which image."""
    import plotly.express as px
    import plotly.graph_objects as go

    palette = px.colors.qualitative.Plotly + px.colors.qualitative.Set2 + px.colors.qualitative.Dark24
    fig = go.Figure()
    kinds = np.asarray(embedding.kinds)
    thumbs = embedding.thumbnails

    def thumb(i: int) -> str:
        return thumbs[i] if thumbs is not None else ""

    for c, name in enumerate(embedding.class_names):
        for kind in KINDS:
            mask = (embedding.labels == c) & (kinds == kind)
            if not mask.any():
                continue
            idx = np.flatnonzero(mask)
            fig.add_trace(
                go.Scatter(
                    x=embedding.coords[idx, 0],
                    y=embedding.coords[idx, 1],
                    mode="markers",
                    name=f"{name} · {kind}",
                    legendgroup=name,
                    marker={
                        "color": palette[c % len(palette)],
                        "symbol": _SYMBOLS[kind],
                        "size": 9 if kind == "generated" else 8,
                        "line": {"width": 0.5, "color": "white"} if kind != "generated" else {"width": 0},
                        "opacity": 0.9,
                    },
                    customdata=[[embedding.names[i], kind, name, thumb(i)] for i in idx],
                    hovertemplate="<b>%{customdata[2]}</b> · %{customdata[1]}<br>%{customdata[0]}<extra></extra>",
                )
            )
    fig.update_layout(
        title=title or None,
        height=560,
        template="plotly_white",
        margin={"l": 10, "r": 10, "t": 40 if title else 10, "b": 10},
        legend={"font": {"size": 10}, "itemsizing": "constant"},
        xaxis={"showticklabels": False, "title": "UMAP 1"},
        yaxis={"showticklabels": False, "title": "UMAP 2"},
    )
    return fig


class EmbeddingCache:
    """Finished embeddings keyed by (generator, step, evaluator, sample set), plus the UMAP warm-up."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cache: OrderedDict[tuple, Embedding] = OrderedDict()
        self.warm = threading.Event()
        self._warm_thread: threading.Thread | None = None

    def warm_up(self) -> threading.Thread:
        """Compile UMAP's kernels in a daemon thread (a tiny fit on random data)."""
        with self._lock:
            if self._warm_thread is None:

                def run() -> None:
                    try:
                        fit_umap(np.random.default_rng(0).normal(size=(40, 8)).astype(np.float32))
                    finally:
                        self.warm.set()

                self._warm_thread = threading.Thread(target=run, name="umap-warm-up", daemon=True)
                self._warm_thread.start()
            return self._warm_thread

    def get(self, key: tuple) -> Embedding | None:
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        return None

    def put(self, key: tuple, embedding: Embedding) -> None:
        with self._lock:
            self._cache[key] = embedding
            while len(self._cache) > _MAX_CACHED:
                self._cache.popitem(last=False)


# ------------------------------------------------------------------------------------- making a map

MAP_STAGES = (
    "generating",
    "real images",
    "features",
    "compiling UMAP",
    "UMAP neighbours",
    "UMAP layout",
    "thumbnails",
)


@dataclass(frozen=True)
class MapRequest:
    """What the user asked for: n generated images per class (and as many real ones), seeds, truncation."""

    n: int
    seed: int
    truncation: float
    with_test: bool


def _generate(model, n_classes: int, req: MapRequest, stages: StageProgress):
    """(uint8 images, class per image, seed per image): image i of every class from seed + i."""
    from gan_studio.sampling import generate

    labels = [c for c in range(n_classes) for _ in range(req.n)]
    seeds = [req.seed + i for _ in range(n_classes) for i in range(req.n)]
    stages.start("generating", total=n_classes, unit="classes")
    fake = generate(model, labels, seeds, truncation=req.truncation, on_batch=stages.ticker(per_unit=req.n))
    return fake, np.asarray(labels), seeds


def _sets(studio, entry, evaluator_entry, req: MapRequest, generated, stages: StageProgress):
    """[(kind, features, labels, names)] and their images: n real images of each class per real kind
    (a seeded pick), and the generated ones."""
    fake, labels, seeds = generated
    stages.start("real images", detail="reading the dataset")
    split = studio.real_data.get(entry)
    parts = [("real train", split.train, split.train_names)]
    if req.with_test and len(split.test):
        parts.append(("real test", split.test, split.test_names))
    total = sum(len(images) for _, images, _ in parts) + len(fake)
    stages.start("features", total=total, unit="images")
    sets, images, done = [], [], 0
    with studio.registry.use_evaluator(evaluator_entry.id) as evaluator:
        for kind, real, names in parts:
            part = "train" if kind == "real train" else "test"
            _, features = studio.real_data.features(evaluator, split, part, stages.ticker(offset=done))
            done += len(real)
            pick = balanced_pick(real.labels.numpy(), req.n, req.seed)
            sets.append((kind, features[pick], real.labels.numpy()[pick], [names[i] for i in pick]))
            images.append(real.images[torch.from_numpy(pick)])
        _, fake_features = evaluator.model.predict_uint8(fake, on_batch=stages.ticker(offset=done))
    sets.append(("generated", fake_features, labels, [f"seed {s}" for s in seeds]))
    return sets, torch.cat([*images, fake])


def _wait_for_umap(warm: threading.Event, stages: StageProgress, timeout_s: float = 120) -> None:
    """UMAP's one-off compile (its warm-up thread) has no measurable progress: say so, and for how long."""
    if "compiling UMAP" not in stages.stages:
        return
    stages.start("compiling UMAP", detail="first map only")
    waited = 0.0
    while not warm.wait(0.5) and waited < timeout_s:
        waited += 0.5
        stages.update(0, force=True)


def _basis(sets, req: MapRequest, step: int, evaluator_id: str, k: int) -> str:
    """What the map's precision / coverage were computed on."""
    real = next(labels for kind, _, labels, _ in sets if kind == "real train")
    counts = np.bincount(real) if len(real) else np.zeros(1, np.int64)
    per_class = str(counts.min()) if counts.min() == counts.max() else f"{counts.min()}-{counts.max()}"
    return (
        f"{req.n} generated + {per_class} real train per class (a random pick of the train fold, seed "
        f"{req.seed}; seeds {req.seed}..{req.seed + req.n - 1}), all classes pooled, k = {k} · step {step} · "
        f"evaluator {evaluator_id}"
    )


def make_map(studio, entry, evaluator_entry, req: MapRequest, sink=None) -> tuple[Embedding, int]:
    """(the map, the generator's step) for ``req``, cached per sample set; every stage goes to ``sink``."""
    stages = StageProgress(
        [s for s in MAP_STAGES if s != "compiling UMAP" or not studio.embeddings.warm.is_set()],
        sink,
        min_interval=0.25,
    )
    with studio.registry.use_generator(entry.id) as loaded:
        step = loaded.info.step
        key = (entry.id, step, evaluator_entry.id, evaluator_entry.step, *vars(req).values())
        cached = studio.embeddings.get(key)
        if cached is not None:
            return cached, step
        generated = _generate(loaded.model, len(entry.class_names), req, stages)
    sets, images = _sets(studio, entry, evaluator_entry, req, generated, stages)
    _wait_for_umap(studio.embeddings.warm, stages)
    stages.start("UMAP neighbours", detail="nearest-neighbour graph")

    def on_epoch(done: int, total: int) -> None:
        if stages.stage != "UMAP layout":
            stages.start("UMAP layout", total=total, unit="epochs")
        stages.update(done)

    embedding = build_embedding(entry.class_names, sets, seed=0, on_epoch=on_epoch)
    embedding.basis = _basis(sets, req, step, evaluator_entry.id, embedding.scores.get("k", 0))
    if len(images) <= THUMBNAILS_UP_TO:
        stages.start("thumbnails", total=len(images), unit="images")
        embedding.thumbnails = []
        for image in images:
            embedding.thumbnails.append(thumbnail_uri(image))
            stages.update(len(embedding.thumbnails))
    stages.finish()
    studio.embeddings.put(key, embedding)
    return embedding, step
