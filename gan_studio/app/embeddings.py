"""UMAP maps of evaluator features: do generated images land among the real ones of their class?

Real train, real test and generated images are embedded together, so a class whose samples form
their own island (or sit on top of single training images) is visible at a glance. The same
features give the precision / coverage readout (k-NN manifolds, ``gan_studio.metrics.prdc``).

UMAP's first fit in a process compiles its numba kernels (~15 s on a small CPU), so ``warm_up``
does one tiny fit in a background thread when the app starts; results are cached per sample set.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from gan_studio.metrics.prdc import prdc

KINDS = ("real train", "real test", "generated")
_SYMBOLS = {"real train": "circle", "real test": "diamond", "generated": "x"}
_MAX_CACHED = 8


@dataclass
class Embedding:
    coords: np.ndarray  # float32 [N, 2]
    kinds: list[str]  # one of KINDS per point
    labels: np.ndarray  # class index per point (for generated: the class asked for)
    names: list[str]  # what the point is: a file path, or "seed N"
    class_names: list[str]
    scores: dict  # precision / recall / density / coverage of generated vs real train

    def readout(self) -> str:
        """Markdown: the precision / coverage numbers and what they mean."""
        s = self.scores
        if s.get("precision") is None:
            return "Too few images for precision / coverage; generate more per class."
        return (
            f"**Precision** {s['precision']:.2f} (share of generated images inside the real manifold: fidelity) · "
            f"**Coverage** {s['coverage']:.2f} (share of real images with a generated neighbour: variety) · "
            f"recall {s['recall']:.2f} · density {s['density']:.2f} · k = {s['k']}"
        )


def fit_umap(
    features: np.ndarray, *, seed: int = 0, n_neighbors: int = 15, min_dist: float = 0.1
) -> np.ndarray:
    """2-D UMAP of ``features`` (cosine metric: evaluator features differ mostly in direction)."""
    import umap

    n = len(features)
    if n < 4:
        raise ValueError(f"UMAP needs at least 4 images, got {n}; generate more per class.")
    reducer = umap.UMAP(
        n_components=2,
        n_neighbors=max(2, min(n_neighbors, n - 1)),
        min_dist=min_dist,
        metric="cosine",
        random_state=seed,
        n_jobs=1,  # what a fixed random_state implies anyway (said explicitly, UMAP stays quiet)
        init="spectral" if n > 16 else "random",
    )
    return reducer.fit_transform(np.asarray(features, dtype=np.float32)).astype(np.float32)


def build_embedding(
    class_names: Sequence[str],
    sets: Sequence[tuple[str, np.ndarray, np.ndarray, list[str]]],
    *,
    seed: int = 0,
) -> Embedding:
    """Embed (kind, features, labels, names) sets together; scores compare 'generated' with 'real train'."""
    features = np.concatenate([f for _, f, _, _ in sets])
    coords = fit_umap(features, seed=seed)
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
                    customdata=[[embedding.names[i], kind, name] for i in idx],
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
