"""The bench's report: accuracy per arm over seeds, a plot against the synthetic ratio, summary.md."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gan_studio.evaluation.augment_bench.arms import ARM_KINDS, BASELINE_KINDS, Arm
from gan_studio.evaluation.plots import write_plot_png
from gan_studio.utils.atomic import write_text_atomic

PLOT_HTML, PLOT_PNG, SUMMARY_MD = "accuracy.html", "accuracy.png", "summary.md"
_ARM_COLOURS = {
    "real": "#444444",
    "real+classic": "#8c564b",
    "real+syn": "#1f77b4",
    "real+classic+syn": "#ff7f0e",
    "real+syn_filtered": "#2ca02c",
}


def summarize(rows: list[dict]) -> list[dict]:
    """Mean and spread (sample std) of test accuracy over seeds per arm, and the change against 'real'."""
    by_arm: dict[str, list[dict]] = {}
    for row in rows:
        by_arm.setdefault(row["arm"], []).append(row)
    summary = []
    for arm, group in by_arm.items():
        accuracies = np.array([r["accuracy"] for r in group], dtype=np.float64)
        summary.append(
            {
                "arm": arm,
                "kind": group[0]["kind"],
                "ratio": group[0]["ratio"],
                "mean": float(accuracies.mean()),
                "std": float(accuracies.std(ddof=1)) if len(accuracies) > 1 else 0.0,
                "n_seeds": len(accuracies),
            }
        )
    summary.sort(key=lambda s: (ARM_KINDS.index(s["kind"]), s["ratio"]))
    real = next((s["mean"] for s in summary if s["arm"] == "real"), None)
    for s in summary:
        s["delta_vs_real"] = None if real is None else s["mean"] - real
    return summary


def accuracy_figure(summary: list[dict], title: str):
    """Test accuracy against synthetic ratio: one curve per synthetic arm, baselines as lines with a band."""
    import plotly.graph_objects as go

    by_arm = {s["arm"]: s for s in summary}
    fig = go.Figure()
    for kind in ARM_KINDS[2:]:
        points = [s for s in summary if s["kind"] == kind]
        if not points:
            continue
        start = by_arm.get(Arm(kind).baseline)
        points = ([{**start, "ratio": 0.0}] if start else []) + points
        fig.add_trace(_curve(go, kind, points))
    for kind in BASELINE_KINDS:
        base = by_arm.get(kind)
        if base is not None:
            _add_baseline(fig, kind, base)
    ratios = sorted({0.0, *(s["ratio"] for s in summary)})
    fig.update_layout(
        title=title,
        template="plotly_white",
        xaxis={
            "title": "synthetic images added (share of the real training set)",
            "tickformat": "+.0%",
            "tickvals": ratios,
        },
        yaxis={"title": "accuracy on the held-out real test split", "tickformat": ".0%"},
        legend={"title": "arm"},
        width=900,
        height=550,
    )
    return fig


def _curve(go, kind: str, points: list[dict]):
    """One synthetic arm's mean accuracy per ratio, with its spread over seeds as error bars."""
    return go.Scatter(
        x=[p["ratio"] for p in points],
        y=[p["mean"] for p in points],
        error_y={"type": "data", "array": [p["std"] for p in points], "visible": True},
        customdata=[[p["n_seeds"]] for p in points],
        hovertemplate="+%{x:.0%} synthetic: %{y:.1%} (%{customdata[0]} seeds)<extra>" + kind + "</extra>",
        mode="lines+markers",
        name=kind,
        line={"color": _ARM_COLOURS[kind]},
    )


def _add_baseline(fig, kind: str, base: dict) -> None:
    """A baseline has no ratio: a dashed line at its mean, in a band of plus or minus its std."""
    fig.add_hrect(
        y0=base["mean"] - base["std"],
        y1=base["mean"] + base["std"],
        fillcolor=_ARM_COLOURS[kind],
        opacity=0.12,
        line_width=0,
    )
    fig.add_hline(
        y=base["mean"],
        line={"color": _ARM_COLOURS[kind], "dash": "dash"},
        annotation_text=f"{kind}: {base['mean']:.1%} ± {base['std']:.1%}",
        annotation_position="bottom right",
    )


def _pct(value: float | None, signed: bool = False) -> str:
    return "n/a" if value is None else f"{value * 100:{'+' if signed else ''}.1f}%"


def summary_markdown(doc: dict, summary: list[dict], report_notes: list[str]) -> str:
    """summary.md: the setup, every warning, one table row per arm (mean ± std over seeds), and the notes."""
    setup = doc["setup"]
    real_set = (
        f"{setup['train_per_class']} per class" if setup["train_per_class"] else "those the GAN trained on"
    )
    lines = [
        "# Augmentation benchmark",
        "",
        f"- generator: `{setup['generator']}` (step {setup['generator_step']})",
        f"- data: `{setup['data']}`, split `{setup['split']}`",
        f"- real training images per arm: {setup['n_real_train']} ({real_set}); "
        f"held-out real test images: {setup['n_test']}",
        f"- classifier: {setup['arch']} from scratch, {setup['steps']} steps x batch {setup['batch_size']} for every arm",
        f"- GAN saw more real images than the arms: {doc['gan_saw_more_real_images']}",
        "",
    ]
    for warning in doc.get("warnings", []):
        lines.append(f"> **Warning:** {warning}")
        lines.append("")
    lines += [
        "| arm | synthetic ratio | test accuracy (mean ± std) | seeds | Δ vs real |",
        "|---|---|---|---|---|",
    ]
    for s in summary:
        ratio = "—" if s["kind"] in BASELINE_KINDS else f"+{s['ratio']:.0%}"
        lines.append(
            f"| {s['arm']} | {ratio} | {_pct(s['mean'])} ± {_pct(s['std'])} | {s['n_seeds']} | "
            f"{_pct(s['delta_vs_real'], signed=True)} |"
        )
    notes = [
        *doc.get("notes", []),
        *(row["note"] for row in doc["results"] if row.get("note")),
        *report_notes,
    ]
    if notes:
        lines += ["", "Notes:", *(f"- {note}" for note in notes)]
    return "\n".join(lines) + "\n"


def write_bench_report(out: Path, doc: dict) -> tuple[list[dict], list[str]]:
    """summary.md, accuracy.html and (with kaleido) accuracy.png; returns the summary and report notes."""
    summary = summarize(doc["results"])
    setup = doc["setup"]
    title = (
        f"Classifier accuracy vs synthetic data — {setup['n_real_train']} real train images, "
        f"{setup['steps']} steps, mean ± std over seeds"
    )
    fig = accuracy_figure(summary, title)
    write_text_atomic(out / PLOT_HTML, fig.to_html(include_plotlyjs=True, full_html=True))  # viewable offline
    notes = [note for note in [write_plot_png(fig, out / PLOT_PNG)] if note]
    write_text_atomic(out / SUMMARY_MD, summary_markdown(doc, summary, notes))
    return summary, notes
