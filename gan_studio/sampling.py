"""Load a trained generator from any of its folders, draw reproducible class-conditioned images with
their provenance, and write and read the samples manifest.

Reproducibility contract: an image is a pure function of (weights, class, seed, truncation). Each
seed gives its own latent, and sampling uses the generator's constant noise maps, so the same seed
yields the same image whatever the batch size or the order of the request.

One call draws images for the user: ``sample(generator, info, class_indices, seeds, truncation=...)``
returns a ``SampleBatch``, the uint8 images with one ``SampleRecord`` each (class index and name,
seed, truncation, checkpoint step, model id). The ``sample`` command, the Sample tab and curation draw
through it; ``generate`` is the images-only call the metrics and the augmentation bench's per-class
streams use (the bench records its images as ``SampleRecord``s all the same).

The samples manifest (``manifest.json``, schema ``gan-studio/samples-v1``)
--------------------------------------------------------------------------
Every set of images GAN Studio writes carries one, in one schema: ``python -m gan_studio sample``'s
folder, the Sample tab's .zip, the curated export (gan_studio.app.export) and the augmentation
bench's synthetic sets. ``write_samples`` / ``write_manifest`` / ``build_manifest`` write it and
``read_manifest`` reads it, including the unversioned manifests written before the schema had a name
(their top-level generator/run/step/truncation/filters move into ``model`` and the image entries).

    schema   "gan-studio/samples-v1"
    created  when it was written (ISO 8601, local time; null for an older manifest that did not say)
    model    the generator: id (the run or package name), generator (its weights folder), run_dir,
             step, resolution, z_dim, noise_mode ("const"); null when no image was generated
    classes  every class of the model in the model's order: {index, name, folder}, where folder is
             the class's folder in this set (an export adds its counts to each row; a manifest from
             before the schema lists the classes its images show)
    images   one entry per image, file relative to the manifest's folder:
               all:        file, class, class_index, source ("generated" or "real")
               generated:  seed, truncation, step, model (the model id), latent (the rounded z;
                           null in the bench's large sets, where the seed redraws it),
                           filters (the post-processing chain applied, [] for none)
               real:       original (its path in the dataset), fit (how it was fitted to size)
               optional:   scores {confidence (the evaluator's, in the image's class), predicted,
                           predicted_confidence, memorization_ratio, nearest_real}, decision,
                           size, and a writer's own keys (the bench: stream_index, passes_filter)
    ...      what a writer records about the whole set (an export: image_size, metadata_file,
             counts, thresholds; the bench: first_seed, arms, candidates_tried)
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from gan_studio.device import autocast
from gan_studio.models import Generator
from gan_studio.training.generator_loading import GeneratorInfo
from gan_studio.training.generator_loading import load_generator as load_generator  # re-exported
from gan_studio.training.generator_loading import resolve_generator_dir as resolve_generator_dir
from gan_studio.utils.atomic import write_json_atomic
from gan_studio.utils.images import save_png_atomic, to_pil, to_uint8

SAMPLES_SCHEMA = "gan-studio/samples-v1"
MANIFEST_FILE = "manifest.json"


def class_index(G: Generator, name_or_index: str | int) -> int:
    """Accept a class name (case-insensitive) or its index."""
    names = list(G.class_names)
    if isinstance(name_or_index, int) or str(name_or_index).isdigit() and str(name_or_index) not in names:
        idx = int(name_or_index)
        if 0 <= idx < len(names):
            return idx
    else:
        lowered = {n.lower(): i for i, n in enumerate(names)}
        if str(name_or_index) in names:
            return names.index(str(name_or_index))
        if str(name_or_index).lower() in lowered:
            return lowered[str(name_or_index).lower()]
    raise ValueError(f"Unknown class {name_or_index!r}. This model's classes: {', '.join(names)}")


def latent_for_seed(seed: int, z_dim: int, truncation: float = 1.0) -> torch.Tensor:
    """The latent of one seed. ``truncation`` < 1 pulls it toward the mean latent (0): less variety,
    more typical images."""
    z = torch.randn(z_dim, generator=torch.Generator().manual_seed(int(seed)))
    return z * float(truncation)


@torch.no_grad()
def generate_from_latents(
    G: Generator,
    latents: torch.Tensor,
    class_indices: torch.Tensor,
    *,
    batch_size: int = 64,
    progress: bool = False,
    precision: str = "fp32",
    on_batch: Callable[[int, int], None] | None = None,
) -> torch.Tensor:
    """uint8 [N, 3, R, R] images for given latents and classes; ``on_batch(done, total)`` after each batch."""
    device = next(G.parameters()).device
    out = []
    for i in tqdm(range(0, len(latents), batch_size), disable=not progress, desc="sample", unit="batch"):
        z = latents[i : i + batch_size].to(device)
        y = class_indices[i : i + batch_size].to(device)
        with autocast(device, precision):
            out.append(to_uint8(G(z, y, noise_mode="const")))
        if on_batch is not None:
            on_batch(min(i + batch_size, len(latents)), len(latents))
    return torch.cat(out) if out else torch.empty(0, 3, G.resolution, G.resolution, dtype=torch.uint8)


def generate(
    generator: Generator,
    class_indices: Sequence[int],
    seeds: Sequence[int],
    *,
    truncation: float = 1.0,
    batch_size: int = 64,
    device=None,  # noqa: ARG001 - the generator's own device is used
    progress: bool = False,
    on_batch: Callable[[int, int], None] | None = None,
) -> torch.Tensor:
    """uint8 [N, 3, R, R] images, one per (class, seed), without provenance (``sample`` adds it)."""
    if len(class_indices) != len(seeds):
        raise ValueError("class_indices and seeds must have the same length")
    latents = (
        torch.stack([latent_for_seed(s, generator.z_dim, truncation) for s in seeds])
        if seeds
        else torch.empty(0, generator.z_dim)
    )
    labels = torch.as_tensor(list(class_indices), dtype=torch.long)
    return generate_from_latents(
        generator, latents, labels, batch_size=batch_size, progress=progress, on_batch=on_batch
    )


_UNSAFE = re.compile(r"[^\w\-. ]+", re.UNICODE)


def safe_name(name: str) -> str:
    """A class name usable as one path component (no separators, no '..', never empty)."""
    cleaned = _UNSAFE.sub("_", name).strip(" .") or "class"
    return cleaned[:100]


def sample_file(class_name: str, seed: int) -> str:
    """Where an image of ``class_name`` and ``seed`` goes in a samples folder (ImageFolder layout)."""
    return f"{safe_name(class_name)}/seed_{int(seed):06d}.png"


def rounded_latent(seed: int, z_dim: int, truncation: float) -> list[float]:
    """The latent of one seed as the manifest records it."""
    return [round(v, 6) for v in latent_for_seed(seed, z_dim, truncation).tolist()]


@dataclass(frozen=True)
class SampleRecord:
    """Where one generated image came from: enough to draw it again."""

    class_index: int
    class_name: str
    seed: int
    truncation: float
    step: int  # the checkpoint's training step (-1: unknown)
    model: str  # the model id

    @property
    def file(self) -> str:
        return sample_file(self.class_name, self.seed)

    def entry(
        self,
        z_dim: int | None,
        *,
        file: str | None = None,
        filters: Sequence[dict] = (),
        scores: dict | None = None,
        **extra,
    ) -> dict:
        """This image's manifest entry (``file`` defaults to its place in a samples folder)."""
        entry = {
            "file": file or self.file,
            "class": self.class_name,
            "class_index": self.class_index,
            "source": "generated",
            "seed": self.seed,
            "truncation": self.truncation,
            "step": self.step,
            "model": self.model,
            "latent": rounded_latent(self.seed, z_dim, self.truncation) if z_dim else None,
            "filters": list(filters),
        }
        if scores is not None:
            entry["scores"] = scores
        return {**entry, **extra}


def real_entry(file: str, class_name: str, class_index: int, *, original: str, fit: str, **extra) -> dict:
    """The manifest entry of a real (dataset) image copied into a set."""
    entry = {"file": file, "class": class_name, "class_index": int(class_index), "source": "real"}
    return {**entry, "original": original, "fit": fit, **extra}


def evaluator_scores(probs: np.ndarray, class_index: int, class_names: Sequence[str]) -> dict:
    """An evaluator's verdict on one image (its class probabilities) as the manifest's ``scores``."""
    predicted = int(np.argmax(probs))
    return {
        "confidence": float(probs[class_index]),
        "predicted": class_names[predicted],
        "predicted_confidence": float(probs[predicted]),
    }


def model_id(info: GeneratorInfo) -> str:
    """The name a generator goes by: its run folder's, or its package's (the registry's ids)."""
    return _model_id(info.source, info.run_dir)


def _model_id(source: str | None, run_dir) -> str | None:
    if run_dir:
        return Path(run_dir).name
    if not source:
        return None
    folder = Path(source)
    if folder.name in ("generator", "generator_ema"):
        folder = folder.parent
    if folder.parent.name == "checkpoints":  # a checkpoint of a run: checkpoints/step_N
        folder = folder.parent.parent
    return folder.name


def model_provenance(generator: Generator, info: GeneratorInfo, model: str | None = None) -> dict:
    """The manifest's ``model``: which weights drew the images, and how."""
    return {
        "id": model or model_id(info),
        "generator": info.source,
        "run_dir": str(info.run_dir) if info.run_dir else None,
        "step": int(info.step),
        "resolution": int(info.resolution),
        "z_dim": int(generator.z_dim),
        "noise_mode": "const",
    }


@dataclass
class SampleBatch:
    """Images drawn by ``sample``, in the order asked, each with its record."""

    images: torch.Tensor  # uint8 [N, 3, R, R]
    records: list[SampleRecord]
    model: dict  # model_provenance: the manifest's "model"
    class_names: list[str]  # every class of the model, in its order

    def __len__(self) -> int:
        return len(self.records)

    def pil(self) -> list[Image.Image]:
        return [to_pil(image) for image in self.images]

    def entries(
        self, *, filters: Sequence[dict] = (), scores: Sequence[dict | None] | None = None
    ) -> list[dict]:
        """The manifest entry of every image (``scores``: one per image, or None)."""
        scores = scores if scores is not None else [None] * len(self)
        z_dim = self.model["z_dim"]
        return [r.entry(z_dim, filters=filters, scores=s) for r, s in zip(self.records, scores)]


def seeds_per_class(classes: Sequence[int], n_per_class: int, first_seed: int) -> tuple[list[int], list[int]]:
    """(class indices, seeds) for ``n_per_class`` images of each class: seeds first_seed, first_seed + 1, ...
    in every class."""
    labels = [int(c) for c in classes for _ in range(n_per_class)]
    seeds = [int(first_seed) + i for _ in classes for i in range(n_per_class)]
    return labels, seeds


def sample(
    generator: Generator,
    info: GeneratorInfo,
    class_indices: Sequence[int],
    seeds: Sequence[int],
    *,
    truncation: float = 1.0,
    model: str | None = None,
    batch_size: int = 64,
    progress: bool = False,
) -> SampleBatch:
    """One image per (class, seed) with its provenance; ``model`` names the generator (default: model_id)."""
    for c in class_indices:
        if not 0 <= int(c) < len(info.class_names):
            raise ValueError(
                f"Class index {c} is out of range: this model has {len(info.class_names)} classes."
            )
    images = generate(
        generator, class_indices, seeds, truncation=truncation, batch_size=batch_size, progress=progress
    )
    provenance = model_provenance(generator, info, model)
    records = [
        SampleRecord(
            int(c), info.class_names[int(c)], int(s), float(truncation), int(info.step), provenance["id"]
        )
        for c, s in zip(class_indices, seeds)
    ]
    return SampleBatch(images, records, provenance, list(info.class_names))


# ------------------------------------------------------------------------------------- the manifest


def class_table(class_names: Sequence[str]) -> list[dict]:
    """The manifest's ``classes``: every class of the model, in its order."""
    return [{"index": i, "name": name, "folder": safe_name(name)} for i, name in enumerate(class_names)]


_RESERVED = ("schema", "created", "model", "classes", "images")


def build_manifest(images: Sequence[dict], *, model: dict | None, classes: Sequence[dict], **extra) -> dict:
    """A samples-v1 manifest: ``images`` are entries (SampleRecord.entry, real_entry), ``extra`` the
    writer's own top-level keys."""
    clash = sorted(set(extra) & set(_RESERVED))
    if clash:
        raise ValueError(f"{', '.join(clash)}: the manifest's own keys, not a writer's")
    head = {"schema": SAMPLES_SCHEMA, "created": time.strftime("%Y-%m-%dT%H:%M:%S"), "model": model}
    return {**head, "classes": list(classes), **extra, "images": list(images)}


def write_manifest(
    folder: str | Path, images: Sequence[dict], *, model: dict | None, classes, **extra
) -> Path:
    path = Path(folder) / MANIFEST_FILE
    write_json_atomic(path, build_manifest(images, model=model, classes=classes, **extra))
    return path


def write_samples(
    batch: SampleBatch,
    out_dir: str | Path,
    *,
    images: Sequence[Image.Image] | None = None,
    filters: Sequence[dict] = (),
    scores: Sequence[dict | None] | None = None,
    **extra,
) -> Path:
    """One PNG per image in class folders (ImageFolder layout) plus ``manifest.json``; returns its path.

    ``images`` replaces the batch's own pictures (post-processed by ``filters``), ``scores`` gives each
    image its evaluator verdict, ``extra`` adds top-level keys."""
    out_dir = Path(out_dir)
    pictures = list(images) if images is not None else batch.pil()
    if len(pictures) != len(batch):
        raise ValueError(f"{len(pictures)} images for {len(batch)} records")
    for picture, record in zip(pictures, batch.records):
        save_png_atomic(picture, out_dir / record.file)
    entries = batch.entries(filters=filters, scores=scores)
    return write_manifest(
        out_dir, entries, model=batch.model, classes=class_table(batch.class_names), **extra
    )


def read_manifest(path: str | Path) -> dict:
    """A samples manifest (a folder holding one, or the file), as samples-v1 whatever its age."""
    path = Path(path)
    if path.is_dir():
        path = path / MANIFEST_FILE
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as error:
        raise ValueError(f"'{path}' is not a readable manifest ({error}).") from None
    return upgrade_manifest(manifest, where=str(path))


def upgrade_manifest(manifest: dict, *, where: str = "the manifest") -> dict:
    """``manifest`` as samples-v1: v1 as it is, the unversioned manifests of before converted."""
    if not isinstance(manifest, dict) or not isinstance(manifest.get("images", []), list):
        raise ValueError(f"{where} is not a samples manifest (no list of images).")
    schema = manifest.get("schema")
    if schema == SAMPLES_SCHEMA:
        return manifest
    if schema is not None:
        raise ValueError(
            f"{where} has schema '{schema}'; this GAN Studio reads '{SAMPLES_SCHEMA}' "
            "(a newer version wrote it?)."
        )
    return _from_unversioned(manifest)


# The top-level keys of the unversioned manifests (the sample command's, the Sample tab's, the export's
# and the augmentation bench's) that samples-v1 keeps in "model" or in each image.
_OLD_KEYS = ("run", "generator", "run_dir", "step", "resolution", "truncation", "noise_mode", "filters")


def _from_unversioned(old: dict) -> dict:
    images = old.get("images", [])
    generated = [e for e in images if e.get("source", "generated") == "generated"]
    z_dim = next((len(e["latent"]) for e in generated if e.get("latent")), None)
    name = old.get("run") or _model_id(old.get("generator"), old.get("run_dir"))
    step = old.get("step", next((e["step"] for e in generated if "step" in e), None))
    model = None
    if generated or old.get("generator"):
        model = {
            "id": name,
            "generator": old.get("generator"),
            "run_dir": old.get("run_dir"),
            "step": step,
            "resolution": old.get("resolution"),
            "z_dim": z_dim,
            "noise_mode": old.get("noise_mode", "const"),
        }
    entries = [_entry_from_unversioned(e, old, name, step) for e in images]
    classes = old.get("classes") or [
        {"index": index, "name": cls, "folder": safe_name(cls)}
        for index, cls in sorted({(e["class_index"], e["class"]) for e in entries})
    ]
    extra = {k: v for k, v in old.items() if k not in (*_OLD_KEYS, *_RESERVED)}
    manifest = build_manifest(entries, model=model, classes=classes, **extra)
    manifest["created"] = old.get("created")  # unknown for most: they did not record it
    return manifest


def _entry_from_unversioned(old_entry: dict, old: dict, name: str | None, step) -> dict:
    entry = dict(old_entry)
    entry.setdefault("source", "generated")
    if entry["source"] != "generated":
        return entry
    entry.setdefault("truncation", old.get("truncation", 1.0))
    entry.setdefault("step", step)
    run = entry.pop("run", None)
    entry.setdefault("model", run or name)
    entry.setdefault("latent", None)
    entry.setdefault("filters", old.get("filters", []))
    verdict = entry.pop("evaluator", None)  # the Sample tab's: the predicted class and its probability
    if verdict is not None and "scores" not in entry:
        entry["scores"] = {
            "predicted": verdict.get("predicted"),
            "predicted_confidence": verdict.get("confidence"),
        }
    if "confidence" in entry and "scores" not in entry:  # the bench's: the probability of its own class
        entry["scores"] = {"confidence": entry.pop("confidence")}
    return entry
