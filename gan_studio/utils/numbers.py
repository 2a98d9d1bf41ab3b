"""Bounds on the numbers a user types: one rule for the command line, recipes, the app and run.json.

An unchecked number fails far from where it was typed: ``--batch 0`` reads as "Training diverged",
``--steps -5`` trains nothing and exits 0, a generator width of 10^6 asks for half a terabyte. Each
number is checked where it enters, against the range its declaration gives, with a message that
says what is allowed.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

# The largest count (steps, images, seeds...) any option accepts: far above any real use, far below
# what makes arithmetic or allocation misbehave.
MAX_COUNT = 10**9
# Seeds: torch and NumPy take far larger ones, but training derives seed * 1000 + rank from it.
MAX_SEED = 2**31 - 1


def range_problem(value: float, minimum: float | None = None, maximum: float | None = None) -> str | None:
    """Why ``value`` is out of [minimum, maximum] (None bounds: open), or None when it is fine."""
    if isinstance(value, float) and not math.isfinite(value):
        return f"must be a finite number, got {value}"
    if minimum is not None and value < minimum:
        return f"must be at least {minimum}, got {value}"
    if maximum is not None and value > maximum:
        return f"must be at most {maximum}, got {value}"
    return None


def number_in(
    kind: type, minimum: float | None = None, maximum: float | None = None
) -> Callable[[str], float]:
    """An argparse ``type``: ``kind`` (int or float) within [minimum, maximum]. A value outside is an
    argparse error ("argument --steps: must be at least 1, got -5"), exit code 2, no traceback."""

    def convert(text: str):
        try:
            value = kind(text)
        except ValueError:
            what = "an integer" if kind is int else "a number"
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        problem = range_problem(value, minimum, maximum)
        if problem:
            raise argparse.ArgumentTypeError(problem)
        return value

    convert.__name__ = kind.__name__
    convert.bounds = (minimum, maximum)  # for tests and help texts
    return convert


def count(minimum: int = 0, maximum: int = MAX_COUNT) -> Callable[[str], int]:
    """An argparse ``type`` for a whole number of things (steps, images, seeds)."""
    return number_in(int, minimum, maximum)


def fraction(minimum: float = 0.0, maximum: float = 1.0) -> Callable[[str], float]:
    """An argparse ``type`` for a share or probability."""
    return number_in(float, minimum, maximum)
