"""Limits for a shared deployment (a Hugging Face Space): each declared once, each set by an environment variable.

A public Space is one small machine for everyone: without limits, one visitor can start trainings until
the CPUs are gone, ask for a billion steps, fill the disk with a zip bomb or the memory with one huge
image. On a Space (``SPACE_ID`` set, or ``GAN_STUDIO_PROFILE=space``) the defaults below are safe for
a 2-CPU, 16 GB machine; everywhere else they are generous (the command line's own ranges). Each limit
reads its environment variable when it is used, so a test or a deployment can change it:

    GAN_STUDIO_MAX_STEPS=20000 GAN_STUDIO_MAX_TRAININGS=2 python app.py

A value that is not a number, or is outside the range the declaration allows, is refused with a
message naming the variable, what it limits and its defaults.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

from gan_studio.utils.numbers import MAX_COUNT

PROFILE_ENV = "GAN_STUDIO_PROFILE"
PROFILES = ("space", "local")
# Pillow's own bomb guard refuses images over twice its MAX_IMAGE_PIXELS (89,478,485) before we see them.
PILLOW_BOMB_PIXELS = 2 * 89_478_485


@dataclass(frozen=True)
class Limit:
    """One limit: its variable, what it bounds (for messages), its two defaults and the values it may take."""

    env: str
    what: str  # completes "at most N ...": "training steps per run"
    space: float  # the default on a Space
    local: float  # the default elsewhere
    minimum: float
    maximum: float
    integer: bool = True
    unit: str = ""  # after the number in messages: "MB", "px"

    def format(self, value: float) -> str:
        number = f"{int(value):,}" if self.integer or float(value).is_integer() else f"{value:g}"
        return f"{number} {self.unit}".rstrip()


LIMITS: dict[str, Limit] = {
    "trainings": Limit(
        "GAN_STUDIO_MAX_TRAININGS",
        "background job(s) at once (trainings, evaluator trainings, evaluations, experiments, studies)",
        space=1, local=16, minimum=1, maximum=1000,
    ),
    "steps": Limit(
        "GAN_STUDIO_MAX_STEPS", "training steps per run (GAN, evaluator and experiment steps)",
        space=10_000, local=MAX_COUNT, minimum=1, maximum=MAX_COUNT,
    ),
    "batch": Limit("GAN_STUDIO_MAX_BATCH", "images per training batch", space=32, local=4096, minimum=1, maximum=4096),
    "resolution": Limit(
        "GAN_STUDIO_MAX_RESOLUTION", "pixels per side for training and exports",
        space=128, local=1024, minimum=32, maximum=1024, unit="px",
    ),
    "upload_mb": Limit(
        "GAN_STUDIO_MAX_UPLOAD_MB", "per uploaded dataset .zip",
        space=200, local=4096, minimum=0, maximum=10**6, integer=False, unit="MB",
    ),
    "extract_mb": Limit(
        "GAN_STUDIO_MAX_EXTRACT_MB", "extracted from one dataset .zip",
        space=1024, local=4096, minimum=0, maximum=10**6, integer=False, unit="MB",
    ),
    "image_pixels": Limit(
        "GAN_STUDIO_MAX_IMAGE_PIXELS", "pixels per decoded image (width x height)",
        space=40_000_000, local=PILLOW_BOMB_PIXELS, minimum=1, maximum=PILLOW_BOMB_PIXELS,
    ),
    "study_hours": Limit(
        "GAN_STUDIO_MAX_STUDY_HOURS", "of classifier training per study (its --budget-hours)",
        space=2, local=1000, minimum=0.01, maximum=10**4, integer=False, unit="h",
    ),
    "output_mb": Limit(
        "GAN_STUDIO_MAX_OUTPUT_MB", "of served outputs kept (sample zips, GIFs, curated exports)",
        space=2048, local=20480, minimum=0, maximum=10**7, integer=False, unit="MB",
    ),
    "uploads_mb": Limit(
        "GAN_STUDIO_MAX_UPLOADS_MB", "of uploaded dataset .zips kept (those a run trains on are never removed)",
        space=2048, local=20480, minimum=0, maximum=10**7, integer=False, unit="MB",
    ),
    "zip_cache_mb": Limit(
        "GAN_STUDIO_ZIP_CACHE_MB", "of extracted dataset .zips kept in the cache",
        space=2048, local=20480, minimum=0, maximum=10**7, integer=False, unit="MB",
    ),
}  # fmt: skip


class LimitError(ValueError):
    """An environment variable gives a limit a value it cannot take."""


def space_profile() -> bool:
    """True on a Hugging Face Space (``SPACE_ID``), or wherever ``GAN_STUDIO_PROFILE=space`` asks for it."""
    profile = os.environ.get(PROFILE_ENV, "").strip().lower()
    if profile and profile not in PROFILES:
        raise LimitError(
            f"{PROFILE_ENV}={os.environ[PROFILE_ENV]!r} is not a profile; use 'space' (the safe limits of a "
            "shared server) or 'local' (generous limits), or unset it (a Space sets SPACE_ID)."
        )
    return profile == "space" if profile else bool(os.environ.get("SPACE_ID"))


def value(name: str) -> float:
    """The limit's value: its environment variable when set, else the default of this profile."""
    limit = LIMITS[name]
    default = limit.space if space_profile() else limit.local
    text = os.environ.get(limit.env, "").strip()
    if not text:
        return int(default) if limit.integer else float(default)
    kind = "a whole number" if limit.integer else "a number"
    try:
        number = int(text) if limit.integer else float(text)
    except ValueError:
        number = None
    if number is None or not math.isfinite(number) or not limit.minimum <= number <= limit.maximum:
        raise LimitError(
            f"{limit.env}={text!r} is not usable: it takes {kind} from {limit.format(limit.minimum)} to "
            f"{limit.format(limit.maximum)} (the most {limit.what}). Unset it for the default: "
            f"{limit.format(limit.space)} on a Space, {limit.format(limit.local)} elsewhere."
        )
    return number


def is_set(name: str) -> bool:
    """Whether the limit binds here: a Space, or its environment variable set (elsewhere the
    defaults are a machine's own bounds, not a decision of whoever runs it)."""
    return space_profile() or bool(os.environ.get(LIMITS[name].env, "").strip())


def check_all() -> dict[str, float]:
    """Every limit's value; a bad environment value fails here, when the app starts, not at first use."""
    return {name: value(name) for name in LIMITS}


def exceeded(name: str, requested: float, asked: str) -> str | None:
    """None when ``requested`` is within the limit, else a message naming the limit and its variable.

    ``asked`` says what was asked for: "Steps 50000", "'big.zip' (350 MB)"."""
    limit, allowed = LIMITS[name], value(name)
    if requested <= allowed:
        return None
    where = "this Space" if space_profile() else "this server"
    return (
        f"{asked} is more than {where} allows: at most {limit.format(allowed)} {limit.what}. "
        f"Whoever runs it can raise the limit with the environment variable {limit.env}."
    )


class LimitExceeded(ValueError):
    """A request asks for more than a limit allows."""


def refuse_above(name: str, requested: float, asked: str) -> None:
    """Raise ``LimitExceeded`` when ``requested`` is over the limit ``name``."""
    message = exceeded(name, requested, asked)
    if message:
        raise LimitExceeded(message)


def table() -> list[tuple[str, str, str, str, str]]:
    """(variable, what it limits, Space default, default elsewhere, value now) of every limit."""
    return [
        (
            limit.env,
            limit.what,
            limit.format(limit.space),
            limit.format(limit.local),
            limit.format(value(name)),
        )
        for name, limit in LIMITS.items()
    ]
