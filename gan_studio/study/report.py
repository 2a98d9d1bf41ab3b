"""The study's answer: per-arm accuracy, paired comparisons with 95% intervals and verdicts, and a plot.

Writes report.md, results.csv and differences.html (+ differences.png where kaleido can render it)
into the study folder. Everything is computed from the rows of results.json, so a report rewritten
after an interrupted study shows exactly what was measured so far.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from gan_studio.evaluation.plots import write_plot_png
from gan_studio.study.arms import ArmSpec
from gan_studio.study.realism import realism_markdown
from gan_studio.study.stats import mean_std, paired_difference
from gan_studio.utils.atomic import write_text_atomic

REPORT_MD, RESULTS_CSV, PLOT_HTML, PLOT_PNG = (
    "report.md",
    "results.csv",
    "differences.html",
    "differences.png",
)
CSV_COLUMNS = (
    "arm",
    "seed",
    "accuracy",
    "n_real",
    "n_synthetic",
    "quota_met",
    "steps",
    "best_step",
    "stopped_by",
    "val_accuracy",
    "learned",
    "seconds",
)


def _arms(doc: dict) -> list[ArmSpec]:
    fields = ("classic", "ratio", "filter", "use", "weight", "share", "priority")
    return [ArmSpec(**{k: a[k] for k in fields}) for a in doc["arms"]]


def summarize(doc: dict) -> tuple[list[dict], list[dict]]:
    """(one entry per arm with results, one entry per comparison) in the order of the study's arms."""
    by_arm: dict[str, dict[int, dict]] = {}
    for row in doc["rows"]:
        by_arm.setdefault(row["arm"], {})[row["seed"]] = row
    arms = [arm for arm in _arms(doc) if arm.name in by_arm]
    summary = []
    for arm in arms:
        rows = list(by_arm[arm.name].values())
        mean, std = mean_std([r["accuracy"] for r in rows])
        summary.append(
            {
                "arm": arm.name,
                "ratio": arm.ratio,
                "filter": arm.filter if arm.synthetic else None,
                "use": arm.use if arm.synthetic else None,
                "mean": mean,
                "std": std,
                "n_seeds": len(rows),
                "n_synthetic": round(sum(r["n_synthetic"] for r in rows) / len(rows)),
                "mean_steps": round(sum(r["steps"] for r in rows) / len(rows)),
                "capped": sum(r["stopped_by"] == "cap" for r in rows),
                "not_learned": sum(r.get("learned") is False for r in rows),  # (older rows: unknown)
                "quota_met": all(r["quota_met"] for r in rows),
            }
        )
    comparisons = []
    for arm in arms:
        for name, reference in arm.comparisons():
            if reference not in by_arm:
                continue
            accuracy = {s: r["accuracy"] for s, r in by_arm[name].items()}
            reference_accuracy = {s: r["accuracy"] for s, r in by_arm[reference].items()}
            comparisons.append(
                {
                    "arm": name,
                    "reference": reference,
                    "kind": "vs baseline" if reference in ("real", "real+classic") else "lever",
                    **paired_difference(accuracy, reference_accuracy),
                }
            )
    # Several comparisons at 95% each: about one in twenty reads 'helps' or 'hurts' by chance alone.
    # Each also says whether it holds at the Bonferroni level over the comparisons with a baseline.
    tested = [c for c in comparisons if c["kind"] == "vs baseline" and c["low"] is not None]
    confidence = 1 - 0.05 / max(1, len(tested))
    for c in tested:
        strict = paired_difference(
            dict(zip(c["seeds"], c["differences"], strict=True)), dict.fromkeys(c["seeds"], 0.0), confidence
        )
        c["family_confidence"], c["family_verdict"] = confidence, strict["verdict"]
    return summary, comparisons


def _pct(value: float | None, signed: bool = False) -> str:
    return "n/a" if value is None else f"{value * 100:{'+' if signed else ''}.1f}"


def _interval(c: dict) -> str:
    if c["low"] is None:
        return "n/a"
    return f"[{_pct(c['low'], True)}, {_pct(c['high'], True)}]"


def headline(comparisons: list[dict], summary: list[dict] | None = None) -> str:
    """One sentence: the answer to 'does it help?' so far, with what weakens a 'helps': a baseline
    that did not learn, and a gain that does not survive the number of comparisons made."""
    baseline = [c for c in comparisons if c["kind"] == "vs baseline"]
    if not baseline:
        return "No synthetic arm has results yet."
    helps = [c for c in baseline if c["verdict"] == "helps"]
    hurts = [c for c in baseline if c["verdict"] == "hurts"]
    if helps:
        best = max(helps, key=lambda c: c["low"])
        text = (
            f"**Synthetic images help**: {best['arm']} beats {best['reference']} by {_pct(best['mean'], True)} "
            f"points (95% CI {_interval(best)}, {best['n']} seeds); {len(helps)} of {len(baseline)} comparisons "
            "with a baseline say 'helps'."
        )
        if len(baseline) > 1 and best.get("family_verdict") != "helps":
            text += (
                f" With {len(baseline)} comparisons, about {0.05 * len(baseline):.1f} would say 'helps' or 'hurts' "
                f"by chance alone; this one does not hold at the corrected level "
                f"({best['family_confidence'] * 100:.1f}% interval)."
            )
        reference = next((s for s in summary or [] if s["arm"] == best["reference"]), None)
        if reference and reference.get("not_learned"):
            text += (
                f" Its baseline {best['reference']} did not learn in {reference['not_learned']} of "
                f"{reference['n_seeds']} seeds (validation at chance): the gain is over a classifier that failed."
            )
        return text
    tested = [c for c in baseline if c["low"] is not None]
    if not tested:
        return "Too few seeds to tell yet: every comparison needs at least 2 seeds of both arms."
    best = max(tested, key=lambda c: c["mean"])
    return (
        f"**No arm beats its baseline by more than its 95% confidence interval** ({len(tested)} comparisons, "
        f"{len(hurts)} of them hurt). Closest: {best['arm']} against {best['reference']}, "
        f"{_pct(best['mean'], True)} points (95% CI {_interval(best)})."
    )


def report_markdown(doc: dict, summary: list[dict], comparisons: list[dict], notes: list[str]) -> str:
    setup = doc["setup"]
    rule = setup["rule"]
    per_class = (
        f"{setup['train_per_class']} per class" if setup["train_per_class"] else "the whole train split"
    )
    lines = [
        "# Does it help? Augmentation study",
        "",
        headline(comparisons, summary),
        "",
        f"- data: `{setup['data']}`; GAN: {setup['gan']} (step {setup['generator_step']}, {setup['resolution']} px)",
        f"- real images: {setup['n_train']} train ({per_class}), {setup['n_validation']} validation "
        f"(only to stop training), {setup['n_test']} test (only to score)",
        f"- classifier: {setup['arch']} from scratch (stem stride {setup['stem_stride']}), batch {rule['batch_size']}, "
        f"lr {rule['lr']:g}; every arm trains until {rule['patience']} validation checks {rule['eval_every']} "
        f"steps apart bring no improvement (lr halved every {max(1, rule['patience'] // 2)}), at most "
        f"{rule['max_steps']} steps, and keeps its best-validation weights; patience counts only once its "
        "validation accuracy beats chance by two standard errors (a fit that never does is marked 'did "
        "not learn')",
        f"- synthetic filter: evaluator confidence >= {setup['filter']['confidence']:g}; novelty: distance to the "
        f"nearest training image >= {setup['filter']['novelty']:g} x its class's spacing; evaluator "
        f"{setup['evaluator']}",
        f"- seeds: {setup['seeds']} (seed s: the classifier's initialisation, batch order and synthetic draw, "
        "shared by every arm); device "
        f"{setup['device']} ({setup['precision']})",
        "",
        "## Arms",
        "",
        "| arm | synthetic images | test accuracy % (mean ± std) | seeds | mean steps | capped | did not learn |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in summary:
        quota = "" if s["quota_met"] else " (quota not met)"
        lines.append(
            f"| {s['arm']} | {s['n_synthetic']}{quota} | {_pct(s['mean'])} ± {_pct(s['std'])} | {s['n_seeds']} "
            f"| {s['mean_steps']} | {s['capped']} | {s['not_learned']} |"
        )
    lines += [
        "",
        "## Comparisons (paired by seed)",
        "",
        "Difference in test accuracy, percentage points, with its 95% confidence interval (t over the "
        "per-seed differences). 'helps' and 'hurts' need the whole interval on one side of zero. "
        "'corrected': the verdict of the wider interval that holds for all comparisons with a baseline "
        "at once (Bonferroni), since one in twenty 95% intervals misses by chance.",
        "",
        "| arm | against | difference | 95% CI | seeds | verdict | corrected |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in comparisons:
        corrected = c.get("family_verdict", "")
        lines.append(
            f"| {c['arm']} | {c['reference']} | {_pct(c['mean'], True)} | {_interval(c)} | {c['n']} | {c['verdict']} "
            f"| {corrected} |"
        )
    pools = doc.get("pools") or {}
    if pools:
        lines += [
            "",
            "## Synthetic candidates",
            "",
            "Per study seed, over all classes: candidates drawn, and how many pass each filter (the "
            "study's evaluator's confidence in the intended class; novelty = distance to the nearest "
            "training image over the class's spacing).",
            "",
            "| seed | drawn | pass confidence | pass confidence + novelty | median confidence | median novelty |",
            "|---|---|---|---|---|---|",
        ]
        for seed, classes in sorted(pools.items(), key=lambda item: int(item[0])):
            stats = list(classes.values())
            drawn = sum(c["drawn"] for c in stats)
            confident = sum(c["confidence"] for c in stats)
            novel = sum(c["confidence+novelty"] for c in stats)
            median_conf = np.median(
                [c["median_confidence"] for c in stats if c["median_confidence"] is not None]
            )
            median_novelty = np.median(
                [c["median_novelty"] for c in stats if c["median_novelty"] is not None]
            )
            lines.append(
                f"| {seed} | {drawn} | {confident} ({confident / max(drawn, 1):.0%}) | {novel} "
                f"({novel / max(drawn, 1):.0%}) | {median_conf:.2f} | {median_novelty:.2f} |"
            )
    lines += realism_markdown(doc.get("realism"))
    if doc.get("cut"):
        lines += ["", f"Cut to fit --budget-hours {setup['budget_hours']}: " + ", ".join(doc["cut"]) + "."]
    all_notes = [*doc.get("notes", []), *notes]
    if all_notes:
        lines += ["", "Notes:", *(f"- {note}" for note in all_notes)]
    return "\n".join(lines) + "\n"


def results_csv(doc: dict) -> str:
    class_names = doc["setup"]["class_names"]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([*CSV_COLUMNS, *(f"accuracy[{name}]" for name in class_names)])
    for row in doc["rows"]:
        writer.writerow(
            [row.get(c) for c in CSV_COLUMNS] + [row["per_class_accuracy"].get(n) for n in class_names]
        )
    return buffer.getvalue()


def differences_figure(comparisons: list[dict], title: str):
    """Forest plot: each comparison's mean difference with its 95% interval; zero marked."""
    import plotly.graph_objects as go

    shown = [c for c in comparisons if c["mean"] is not None]
    colours = {
        "helps": "#2ca02c",
        "hurts": "#d62728",
        "no detectable effect": "#7f7f7f",
        "too few seeds": "#bbbbbb",
    }
    labels = [f"{c['arm']}  vs  {c['reference']}" for c in shown]
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=[c["mean"] * 100 for c in shown],
            y=labels,
            mode="markers",
            marker={"color": [colours[c["verdict"]] for c in shown], "size": 10},
            error_x={
                "type": "data",
                "symmetric": False,
                "array": [(c["high"] - c["mean"]) * 100 if c["high"] is not None else 0 for c in shown],
                "arrayminus": [(c["mean"] - c["low"]) * 100 if c["low"] is not None else 0 for c in shown],
            },
            customdata=[[c["verdict"], c["n"]] for c in shown],
            hovertemplate="%{y}: %{x:+.1f} points, %{customdata[0]} (%{customdata[1]} seeds)<extra></extra>",
        )
    )
    fig.add_vline(x=0, line={"color": "#333333", "dash": "dash"})
    fig.update_layout(
        title=title,
        template="plotly_white",
        xaxis={"title": "difference in held-out real test accuracy (points), 95% CI"},
        yaxis={"autorange": "reversed", "automargin": True},
        height=max(320, 34 * len(shown) + 140),
        showlegend=False,
    )
    return fig


def write_report(out: Path, doc: dict) -> tuple[list[dict], list[dict]]:
    """report.md, results.csv, differences.html (and .png with kaleido); returns (summary, comparisons)."""
    out = Path(out)
    summary, comparisons = summarize(doc)
    setup = doc["setup"]
    title = f"Synthetic images vs their baselines: {setup['n_train']} real train images, {setup['arch']}"
    fig = differences_figure(comparisons, title)
    write_text_atomic(out / PLOT_HTML, fig.to_html(include_plotlyjs=True, full_html=True))
    notes = [note for note in [write_plot_png(fig, out / PLOT_PNG)] if note]
    write_text_atomic(out / RESULTS_CSV, results_csv(doc))
    write_text_atomic(out / REPORT_MD, report_markdown(doc, summary, comparisons, notes))
    return summary, comparisons
