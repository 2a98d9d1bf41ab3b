"""Seed-paired comparisons with a t confidence interval, and the one-line verdict they support.

Seed s of every arm shares the classifier's initialisation and batch order and the real images, so
the arm-minus-reference difference per seed removes most of the seed-to-seed noise that two
independent means would carry. With n seeds the 95% interval is mean ± t(0.975, n-1) · sd / sqrt(n):
three seeds give t = 4.30, so only a steady effect clears it, which is the point.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import stats

VERDICTS = ("helps", "no detectable effect", "hurts", "too few seeds")


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    values = np.asarray(values, dtype=np.float64)
    return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0


def paired_difference(arm: dict[int, float], reference: dict[int, float], confidence: float = 0.95) -> dict:
    """Mean and confidence interval of arm - reference over the seeds both have, and a verdict.

    ``arm`` and ``reference`` map seed -> test accuracy.
    """
    seeds = sorted(set(arm) & set(reference))
    diffs = np.array([arm[s] - reference[s] for s in seeds], dtype=np.float64)
    out = {"seeds": seeds, "n": len(seeds), "differences": diffs.tolist()}
    if len(diffs) == 0:
        return {**out, "mean": None, "low": None, "high": None, "verdict": "too few seeds"}
    mean = float(diffs.mean())
    if len(diffs) < 2:
        return {**out, "mean": mean, "low": None, "high": None, "verdict": "too few seeds"}
    sd = float(diffs.std(ddof=1))
    half = float(stats.t.ppf(0.5 + confidence / 2, len(diffs) - 1)) * sd / math.sqrt(len(diffs))
    low, high = mean - half, mean + half
    if low > 0:
        verdict = "helps"
    elif high < 0:
        verdict = "hurts"
    else:
        verdict = "no detectable effect"
    return {**out, "mean": mean, "low": low, "high": high, "confidence": confidence, "verdict": verdict}
