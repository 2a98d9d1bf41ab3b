"""Write an evaluation to disk: metrics.json for programs, report.md (+ PNGs) for people; each
evaluation an entry of its folder's history (``gan_studio.metrics.history``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from gan_studio.metrics import history
from gan_studio.metrics.context import MetricContext
from gan_studio.utils.atomic import write_json_atomic, write_text_atomic
from gan_studio.utils.images import save_image_grid

SAMPLES_PER_CLASS_IN_GRID = 8
FEATURE_SPACE_NOTE = (
    "All distances above are measured in the evaluator's feature space (its penultimate layer). They rank "
    "generators of this dataset against each other; they are not Inception FIDs and cannot be compared with "
    "published numbers."
)


def format_value(value: Any, *, percent: bool = False) -> str:
    if value is None:
        return "n/a"
    if percent:
        return f"{100 * value:.1f}%"
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.2e}"
    return str(value)


PERCENT_METRICS = {"cas", "memorization", "c2st"}


def summary_line(name: str, result: dict) -> str:
    """One line per metric for the terminal: its headline number(s) and label."""
    if name == "prdc":
        numbers = ", ".join(
            f"{k} {format_value(result[k])}" for k in ("precision", "recall", "density", "coverage")
        )
    else:
        numbers = format_value(result.get("value"), percent=name in PERCENT_METRICS)
    if name == "c2st" and result.get("value") is not None:
        numbers += f" (real vs real: {format_value(result.get('real_baseline'), percent=True)})"
    return f"{name:>13}: {numbers}  ({result['label']})"


def _table(header: list[str], rows: list[list[str]]) -> str:
    escape = [[cell.replace("|", "\\|") for cell in row] for row in (header, *rows)]
    lines = ["| " + " | ".join(escape[0]) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in escape[1:]]
    return "\n".join(lines)


def _get(results: dict, *keys: str) -> Any:
    value: Any = results
    for key in keys:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


PRDC_NOTES = {
    "precision": "share of generated images inside the real images' k-NN manifold (fidelity)",
    "recall": "share of real images inside the generated images' k-NN manifold (variety)",
    "density": "real neighbourhoods holding each generated image, / k (about 1 when real-like)",
    "coverage": "share of real images with a generated image among their k nearest",
}


def _overview_rows(results: dict) -> list[list[str]]:
    """[metric, value, real reference, notes] for each metric that was computed."""
    rows = []

    def add(name: str, value: Any, *notes: str, reference: Any = "", percent: bool = False) -> None:
        ref = reference if isinstance(reference, str) else format_value(reference, percent=percent)
        rows.append([name, format_value(value, percent=percent), ref, ". ".join(n for n in notes if n)])

    def missing(result: dict) -> str:
        return (
            f"not computed: {result['reason']}"
            if result.get("value") is None and result.get("reason")
            else ""
        )

    if "cas" in results:
        r = results["cas"]
        note = "reference: " + r["real_test_accuracy_label"]
        add(r["label"], r["value"], note, reference=r["real_test_accuracy"], percent=True)
        add(r["mean_confidence_label"], r["mean_confidence"], percent=True)
    if "fid" in results:
        r = results["fid"]
        add(
            r["label"],
            r["value"],
            missing(r),
            "reference: " + r["real_baseline_label"],
            reference=r["real_baseline"],
        )
    if "kid" in results:
        r = results["kid"]
        note = (
            "reference: real test vs real train. Unbiased: about 0 (even below) when the distributions match"
        )
        add(r["label"], r["value"], missing(r), note, reference=r["real_baseline"])
    if "inception_fid" in results:
        r = results["inception_fid"]
        add(r["label"], r["value"], missing(r))
    if "prdc" in results:
        r = results["prdc"]
        for part, note in PRDC_NOTES.items():
            add(f"{part} (k-NN, k={r['k']}, evaluator features)", r[part], note)
    if "diversity" in results:
        r = results["diversity"]
        note = f"generated / real = {format_value(r['ratio'])} (1: real-like variety, near 0: collapse)"
        add(r["label"], r["value"], note, r.get("reason") or "", reference=r["real_value"])
    if "memorization" in results:
        r = results["memorization"]
        baseline = r.get("real_baseline")
        held_out = "" if baseline is None else f"; held-out real images: {100 * baseline:.1f}%"
        add(
            r["label"],
            r["value"],
            f"{r['n_near_copies']} near-copies{held_out}; the closest pairs are below",
            percent=True,
        )
    if "c2st" in results:
        r = results["c2st"]
        told = (
            f"held-out real told apart {format_value(r['real_accuracy'], percent=True)}, generated "
            f"{format_value(r['generated_accuracy'], percent=True)} (n = {r['n_real']} + {r['n_generated']})"
            if r.get("value") is not None
            else ""
        )
        add(
            r["label"],
            r["value"],
            missing(r),
            told,
            "reference: " + r["real_baseline_label"],
            reference=r["real_baseline"],
            percent=True,
        )
    return rows


PER_CLASS_COLUMNS = (  # (header, metric, key in its per-class row, percent?)
    ("CAS", "cas", "accuracy", True),
    ("confidence", "cas", "mean_confidence", True),
    ("real test acc.", "cas", "real_test_accuracy", True),
    ("KID", "kid", "mean", False),
    ("KID real", "kid", "real_baseline", False),
    ("precision", "prdc", "precision", False),
    ("recall", "prdc", "recall", False),
    ("density", "prdc", "density", False),
    ("coverage", "prdc", "coverage", False),
    ("diversity", "diversity", "generated", False),
    ("diversity real", "diversity", "real", False),
    ("near-copies", "memorization", "near_copy_fraction", True),
    ("C2ST", "c2st", "accuracy", True),
    ("C2ST real vs real", "c2st", "real_baseline", True),
)


def _per_class_table(results: dict, ctx: MetricContext) -> str:
    columns = [c for c in PER_CLASS_COLUMNS if c[1] in results]
    rows = []
    for c, name in enumerate(ctx.class_names):
        counts = [str(int((ctx.real_train.labels == c).sum())), str(int((ctx.fake.labels == c).sum()))]
        cells = [
            format_value(_get(results, metric, "per_class", name, key), percent=pct)
            for _, metric, key, pct in columns
        ]
        rows.append([name, *counts, *cells])
    return _table(["class", "real train", "generated", *[c[0] for c in columns]], rows)


def _sample_grid(ctx: MetricContext, path: Path) -> Path | None:
    picks = [ctx.fake.of_class(c).images[:SAMPLES_PER_CLASS_IN_GRID] for c in range(len(ctx.class_names))]
    if not any(len(p) for p in picks):
        return None
    size = ctx.fake.images.shape[-1]
    rows = [torch.cat([p, p.new_zeros(SAMPLES_PER_CLASS_IN_GRID - len(p), 3, size, size)]) for p in picks]
    return save_image_grid(torch.cat(rows), path, SAMPLES_PER_CLASS_IN_GRID, row_labels=ctx.class_names)


def _at_size(images: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 [N, 3, H, W] images at ``size`` px (real images beside samples, shown alike)."""
    if not len(images) or images.shape[-1] == size:
        return images
    x = F.interpolate(images.float(), size=(size, size), mode="bilinear", antialias=True)
    return x.round().clamp(0, 255).to(torch.uint8)


def _pairs_grid(pairs: list[dict], ctx: MetricContext, path: Path) -> Path | None:
    """Each worst pair as one row: generated image, then its nearest training image (at the same size)."""
    if not pairs:
        return None
    size = ctx.fake.images.shape[-1]
    tiles = []
    for pair in pairs:
        real = _at_size(ctx.real_train.images[pair["real_index"]][None], size)[0]
        tiles += [ctx.fake.images[pair["fake_index"]], real]
    labels = [f"{p['class']} {p['ratio']:.2f}" for p in pairs]
    return save_image_grid(torch.stack(tiles), path, 2, row_labels=labels)


def _photo_likeness_grid(c2st: dict, ctx: MetricContext, path: Path) -> Path | None:
    """Per class: real train images, then the held-out samples c2st found most and least photo-like."""
    most, least = c2st.get("most_photo_like"), c2st.get("least_photo_like")
    if not most:
        return None
    k = max(len(rows) for rows in (*most.values(), *least.values()))
    if k == 0:
        return None
    size = ctx.fake.images.shape[-1]
    blank = ctx.fake.images.new_zeros(3, size, size)

    def padded(images: list[torch.Tensor]) -> list[torch.Tensor]:
        return images + [blank] * (k - len(images))

    tiles, labels = [], []
    for c, name in enumerate(ctx.class_names):
        tiles += padded(list(_at_size(ctx.real_train.of_class(c).images[:k], size)))
        for rows in (most.get(name, []), least.get(name, [])):
            tiles += padded([ctx.fake.images[row["fake_index"]] for row in rows])
        labels.append(name)
    groups = [("real", k), ("most photo-like", k), ("least photo-like", k)]
    return save_image_grid(torch.stack(tiles), path, 3 * k, row_labels=labels, column_groups=groups)


def _memorization_section(memo: dict, n_generated: int, pairs_image: Path | None) -> list[str]:
    lines = [
        "## Memorisation: the generated images closest to a training image",
        "",
        "Ratio = distance to the nearest training image / typical nearest-neighbour distance between the "
        "training images of the same class (each class's `spacing` is in metrics.json); below "
        f"{memo['threshold']} counts as a near-copy. {memo['n_near_copies']} of {n_generated} generated images "
        "are near-copies.",
        "",
    ]
    if memo.get("real_baseline") is not None:
        lines[-1:-1] = [
            f"By the same rule, {100 * memo['real_baseline']:.1f}% of the held-out real test images count as "
            "near-copies of a training image: the floor for a generator that copies nothing.",
        ]
    if pairs_image:
        lines += [f"![generated (left) and nearest training image (right)]({pairs_image.name})", ""]
    rows = [
        [
            str(i + 1),
            p["class"],
            str(p["fake_index"]),
            p["real_name"] or str(p["real_index"]),
            format_value(p["ratio"]),
        ]
        for i, p in enumerate(memo["worst_pairs"])
    ]
    return lines + [_table(["#", "class", "generated image #", "nearest training image", "ratio"], rows), ""]


def _c2st_side(result: dict, sides: tuple[str, str]) -> list[str]:
    a, b = sides
    if result.get("value") is None:
        return ["n/a", "", "", "", "", result.get("reason") or "", ""]
    low, high = result["ci95"]
    return [
        format_value(result["value"], percent=True),
        f"{100 * low:.1f}-{100 * high:.1f}%",
        format_value(result[f"{a}_accuracy"], percent=True),
        format_value(result[f"{b}_accuracy"], percent=True),
        f"{result[f'n_{a}']} + {result[f'n_{b}']}",
        f"{result['n_trained_on']} images; one-sided p = {result['p_value']:.2g}",
        format_value(result.get("auc")),
    ]


def _c2st_section(r: dict, likeness_image: Path | None = None) -> list[str]:
    """How the two-sample test was run, and both of its figures side by side."""
    c = r["classifier"]
    cap = f", at most {c['max_per_class']} per class and side" if c.get("max_per_class") else ""
    coarse = (
        f" Every image was first reduced to {c['coarse_px']} px and enlarged back: only coarse shape, pose and "
        "colour were left to tell the sides apart."
        if c.get("coarse_px")
        else ""
    )
    rows = [
        ["real train vs generated", *_c2st_side(r, ("real", "generated"))],
        ["real train vs real test (baseline)", *_c2st_side(r.get("baseline") or {}, ("train", "test"))],
    ]
    header = [
        "test",
        "accuracy",
        "95% interval",
        "real / train side",
        "generated / test side",
        "held out",
        "trained on",
        "AUC",
    ]
    return [
        "## Realism: classifier two-sample test (C2ST)",
        "",
        f"A fresh {c['arch']} (from scratch, stem stride {c['stem_stride']}, {c['resolution']} px) learns to tell "
        f"the two sides apart on half of each, balanced within every class{cap}, for {c['steps']} steps of "
        f"{c['batch_size']} images (seed {c['seed']}, augmentation: {c['augment']}), and is scored on the other "
        "half, at the probability cut that sorts its training half best (a classifier stopped after a fixed "
        "budget can be off-centre). 50% means it cannot tell them apart, 100% that it always can; the AUC "
        "says the same without any cut. The baseline runs the same test "
        f"on real train against real test images: read the generator's figure against it.{coarse}",
        "",
        _table(header, rows),
        "",
        *_photo_likeness_lines(r, likeness_image),
    ]


def _photo_likeness_lines(r: dict, image: Path | None) -> list[str]:
    """Which held-out samples the test's classifier took for real most and least readily, per class."""
    most, least = r.get("most_photo_like") or {}, r.get("least_photo_like") or {}
    if not most:
        return []

    def probabilities(rows: list[dict]) -> str:
        return ", ".join(f"{row['p_real']:.2f} (#{row['fake_index']})" for row in rows) or "-"

    lines = [
        "### Which samples come closest to passing",
        "",
        "For every class, the held-out generated images the test's classifier gave the highest and the "
        "lowest probability of being real (generated image numbers in brackets), beside real train images "
        f"of the class; the test counted a sample as real from {r.get('threshold', 0.5):.2f} up. Compare "
        "them to see what gives the samples away.",
        "",
    ]
    if image:
        lines += [f"![real, most and least photo-like samples per class]({image.name})", ""]
    rows = [[name, probabilities(most[name]), probabilities(least.get(name, []))] for name in most]
    return lines + [_table(["class", "most photo-like: p(real)", "least photo-like: p(real)"], rows), ""]


def render_markdown(results: dict, ctx: MetricContext, meta: dict, images: dict[str, Path | None]) -> str:
    facts = [
        f"- **{key}**: {format_value(value)}"
        for key, value in meta.items()
        if not isinstance(value, (list, dict)) and key != "created_unix"
    ]
    lines = ["# GAN Studio evaluation report", ""]
    if meta.get("n_per_class") is not None:
        lines += [f"Computed on: {history.computed_on(meta, len(ctx.class_names))}.", ""]
    lines += [*facts, ""]
    lines += [f"> **Warning:** {warning}\n" for warning in meta.get("warnings", [])]
    lines += [
        "## Overview",
        "",
        _table(["metric", "value", "real reference", "notes"], _overview_rows(results)),
        "",
    ]
    lines += ["## Per class", "", _per_class_table(results, ctx), "", FEATURE_SPACE_NOTE, ""]
    if images.get("samples"):
        lines += [
            "## Samples",
            "",
            f"The first {SAMPLES_PER_CLASS_IN_GRID} generated images of each class.",
            "",
        ]
        lines += [f"![generated samples per class]({images['samples'].name})", ""]
    if "memorization" in results:
        lines += _memorization_section(results["memorization"], len(ctx.fake), images.get("pairs"))
    if "c2st" in results:
        lines += _c2st_section(results["c2st"], images.get("photo_likeness"))
    return "\n".join(lines)


def write_report(results: dict, ctx: MetricContext, out_dir: str | os.PathLike, *, meta: dict) -> Path:
    """metrics.json + report.md + samples.png + memorization_pairs.png + c2st_photo_likeness.png in
    ``out_dir``; returns report.md."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    images = {
        "samples": _sample_grid(ctx, out_dir / "samples.png"),
        "pairs": _pairs_grid(
            _get(results, "memorization", "worst_pairs") or [], ctx, out_dir / "memorization_pairs.png"
        ),
        "photo_likeness": _photo_likeness_grid(
            results.get("c2st") or {}, ctx, out_dir / "c2st_photo_likeness.png"
        ),
    }
    write_json_atomic(out_dir / "metrics.json", {"meta": meta, "metrics": results})
    report = out_dir / "report.md"
    write_text_atomic(report, render_markdown(results, ctx, meta, images))
    return report


def write_evaluation(results: dict, ctx: MetricContext, out_dir: str | os.PathLike, *, meta: dict) -> Path:
    """The report as a new entry of ``out_dir``'s history (never over an earlier one), then copied to
    the top of ``out_dir`` as the newest; returns the entry's report.md."""
    out_dir = Path(out_dir)
    folder = history.new_entry(out_dir, meta)
    report = write_report(results, ctx, folder, meta=meta)
    history.publish(out_dir, folder)
    return report
