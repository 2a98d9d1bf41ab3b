"""The synthetic images: each class's seeded stream, its confidence filter, and the manifest on disk.

Every arm of one bench seed takes its images from the same stream (latent seed first_seed + i), so a
larger ratio only adds images and a filtered set is literally the unfiltered stream, filtered. The
manifest records every seed, so any arm can be rebuilt exactly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from gan_studio import sampling
from gan_studio.utils.images import save_png_atomic, to_pil

SEED_STRIDE = 1_000_000  # bench seed s draws latent seeds sample_seed + s * SEED_STRIDE + i
SYNTHETIC_DIR = "synthetic"


@dataclass
class Candidate:
    """One drawn synthetic image, with its evaluator score when the filtered arms need one."""

    class_index: int
    stream_index: int  # i: the i-th image drawn for its class
    seed: int  # latent seed = first_seed + stream_index
    image: torch.Tensor  # uint8 [3, R, R]
    confidence: float | None  # evaluator probability of the intended class (None: no evaluator)
    passes_filter: bool | None


@dataclass
class SyntheticPool:
    """Every synthetic image one bench seed uses: per class, the stream prefix and the accepted candidates."""

    first_seed: int
    kept: dict[int, list[Candidate]]  # class -> candidates some arm uses, in stream order
    tried: dict[int, int]  # class -> candidates drawn

    def select(self, quotas: dict[int, int], *, filtered: bool) -> list[Candidate]:
        """The first ``quota`` images of each class's stream (filtered: of its accepted candidates)."""
        chosen = []
        for c, quota in quotas.items():
            if filtered:
                chosen += [cand for cand in self.kept.get(c, []) if cand.passes_filter][:quota]
            else:
                chosen += [cand for cand in self.kept.get(c, []) if cand.stream_index < quota]
        return chosen


def draw_synthetic_pool(
    generate_images: Callable[[int, list[int]], torch.Tensor],
    plain_quota: dict[int, int],
    filtered_quota: dict[int, int],
    *,
    first_seed: int,
    confidence: Callable[[torch.Tensor, int], np.ndarray] | None = None,
    threshold: float = 0.8,
    max_factor: int = 20,
) -> SyntheticPool:
    """Draw each class's stream (latent seed first_seed + i) until both quotas are met or the cap is hit.

    The unfiltered arms take the stream's prefix and the filtered ones its first candidates with
    ``confidence >= threshold``, so a filtered set is literally the unfiltered stream, filtered. A class
    draws at most ``max_factor`` candidates per filtered image it needs; a shortfall is left to the caller
    to report (``tried`` and the accepted count tell it).
    """
    if filtered_quota and any(filtered_quota.values()) and confidence is None:
        raise ValueError("Filtered synthetic images need an evaluator to score their confidence.")
    kept: dict[int, list[Candidate]] = {}
    tried: dict[int, int] = {}
    for c in sorted(set(plain_quota) | set(filtered_quota)):
        n_plain, n_filtered = plain_quota.get(c, 0), filtered_quota.get(c, 0)
        cap = max(n_plain, n_filtered * max_factor)
        if cap >= SEED_STRIDE:
            raise ValueError(
                f"Class {c} would draw {cap} candidates, more than the {SEED_STRIDE} seeds a bench seed owns."
            )
        kept[c], drawn, accepted = [], 0, 0
        while drawn < n_plain or (accepted < n_filtered and drawn < cap):
            if drawn < n_plain:
                chunk = n_plain - drawn
            else:
                chunk = min(cap - drawn, max(16, 2 * (n_filtered - accepted)))
            seeds = [first_seed + drawn + j for j in range(chunk)]
            images = generate_images(c, seeds)
            scores = confidence(images, c) if confidence is not None else None
            for j, image in enumerate(images):
                score = float(scores[j]) if scores is not None else None
                passes = None if score is None else score >= threshold
                use_filtered = bool(passes) and accepted < n_filtered
                accepted += use_filtered
                if drawn + j < n_plain or use_filtered:
                    # clone: a view would keep the whole chunk, rejected candidates included, alive
                    kept[c].append(Candidate(c, drawn + j, seeds[j], image.clone(), score, passes))
            drawn += chunk
        tried[c] = drawn
    return SyntheticPool(first_seed, kept, tried)


def _image_file(class_name: str, seed: int) -> str:
    return sampling.sample_file(class_name, seed)


def _same_draw(old: dict, model: dict, first_seed: int, truncation: float) -> bool:
    """Whether an earlier manifest lists images of this very stream (same weights, seeds and truncation)."""
    earlier = old.get("model") or {}
    return (
        earlier.get("generator") == model["generator"]
        and earlier.get("step") == model["step"]
        and old.get("first_seed") == first_seed
        and all(entry.get("truncation") == truncation for entry in old.get("images", []))
    )


def write_synthetic(
    pool: SyntheticPool,
    selections: dict[str, list[Candidate]],
    folder: Path,
    *,
    class_names: list[str],
    model: dict,
    truncation: float,
    extra: dict,
) -> Path:
    """PNGs of every selected image plus the samples manifest (gan_studio.sampling's schema), merged
    with an earlier run's, which it extends. ``model`` is sampling.model_provenance of the generator.

    The entries leave the latent out (a bench draws thousands of images; the seed redraws it) and add
    the image's place in its class's stream (stream_index) and whether it passed the filter."""
    manifest_path = folder / sampling.MANIFEST_FILE
    old = sampling.read_manifest(manifest_path) if manifest_path.is_file() else {}
    if not _same_draw(old, model, pool.first_seed, truncation):
        old = {}  # an earlier bench in this folder drew other images: start the manifest afresh
    images = {entry["file"]: entry for entry in old.get("images", [])}
    used = {id(cand): cand for chosen in selections.values() for cand in chosen}
    for cand in sorted(used.values(), key=lambda cand: (cand.class_index, cand.stream_index)):
        name = class_names[cand.class_index]
        record = sampling.SampleRecord(
            cand.class_index, name, cand.seed, truncation, model["step"], model["id"]
        )
        save_png_atomic(to_pil(cand.image), folder / record.file)
        scores = None if cand.confidence is None else {"confidence": round(cand.confidence, 6)}
        images[record.file] = record.entry(
            None, scores=scores, stream_index=cand.stream_index, passes_filter=cand.passes_filter
        )
    arms = {**old.get("arms", {})}
    for arm_name, chosen in selections.items():
        arms[arm_name] = [_image_file(class_names[cand.class_index], cand.seed) for cand in chosen]
    tried = {**old.get("candidates_tried", {})}
    for c, n in pool.tried.items():
        tried[class_names[c]] = max(n, tried.get(class_names[c], 0))
    return sampling.write_manifest(
        folder,
        sorted(images.values(), key=lambda e: (e["class_index"], e["stream_index"])),
        model=model,
        classes=sampling.class_table(class_names),
        **extra,
        first_seed=pool.first_seed,
        seed_rule="the i-th image drawn for a class uses latent seed first_seed + i "
        "(python -m gan_studio sample --ckpt RUN --class C --seed first_seed --n i+1 redraws it)",
        candidates_tried=tried,
        arms=dict(sorted(arms.items())),
    )
