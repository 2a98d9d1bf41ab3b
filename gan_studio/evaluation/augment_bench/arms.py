"""The bench's arms: which training recipes exist, how their names and ratios are parsed, and quotas."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

ARM_KINDS = ("real", "real+classic", "real+syn", "real+classic+syn", "real+syn_filtered")
BASELINE_KINDS = ("real", "real+classic")
DEFAULT_RATIOS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.25)  # +25% .. +125% of the real training set, as in the study


@dataclass(frozen=True)
class Arm:
    """One training recipe; ``ratio`` is synthetic images per real image (0 for the baselines)."""

    kind: str
    ratio: float = 0.0

    @property
    def name(self) -> str:
        return self.kind if self.kind in BASELINE_KINDS else f"{self.kind}@{self.ratio:g}"

    @property
    def augment(self) -> str:
        return "classic" if "classic" in self.kind else "none"

    @property
    def synthetic(self) -> bool:
        return self.kind not in BASELINE_KINDS

    @property
    def filtered(self) -> bool:
        return self.kind == "real+syn_filtered"

    @property
    def baseline(self) -> str:
        """The arm this one adds synthetic images to: its curve starts there at ratio 0."""
        return "real+classic" if self.augment == "classic" else "real"


def _parse_ratio(text: str, what: str) -> float:
    try:
        ratio = float(text)
    except ValueError:
        raise ValueError(f"{what}: {text!r} is not a number (write ratios like 0.25 for +25%).") from None
    if not math.isfinite(ratio) or ratio < 0:
        raise ValueError(f"{what}: ratio {text!r} must be a finite number >= 0.")
    return round(ratio, 6)


def parse_ratios(text: str | Iterable[float]) -> tuple[float, ...]:
    """'0,0.25,0.5' (or numbers) -> sorted unique ratios; 0 stands for the baseline arms."""
    items = text.split(",") if isinstance(text, str) else list(text)
    ratios = sorted({_parse_ratio(str(item).strip(), "--ratios") for item in items if str(item).strip()})
    if not ratios:
        raise ValueError("--ratios is empty; pass e.g. --ratios 0,0.25,0.5,0.75,1.0,1.25")
    return tuple(ratios)


def parse_arms(names: str | Sequence[str], ratios: Sequence[float]) -> list[Arm]:
    """Arm names -> arms. A synthetic kind without '@r' runs at every non-zero ratio; 'all' is every kind."""
    if isinstance(names, str):
        names = [name for name in names.split(",") if name.strip()]
    if not names:
        raise ValueError("--arms is empty; pass e.g. --arms real,real+syn or --arms all")
    hint = f"use one of {', '.join(ARM_KINDS)} (synthetic ones optionally with @RATIO, e.g. real+syn@0.5), or all"
    arms: list[Arm] = []
    for raw in names:
        name = raw.strip()
        if name == "all":
            arms += parse_arms(ARM_KINDS, ratios)
            continue
        kind, at, ratio_text = name.partition("@")
        if kind not in ARM_KINDS:
            raise ValueError(f"Unknown arm {name!r}: {hint}.")
        if kind in BASELINE_KINDS:
            if at:
                raise ValueError(
                    f"Arm {kind!r} adds no synthetic images, so it takes no ratio: write '{kind}'."
                )
            arms.append(Arm(kind))
            continue
        chosen = [_parse_ratio(ratio_text, f"arm {name!r}")] if at else [r for r in ratios if r > 0]
        if at and chosen[0] == 0:
            baseline = Arm(kind).baseline
            raise ValueError(f"Arm {name!r} adds no synthetic images; that is the arm '{baseline}'.")
        arms += [Arm(kind, ratio) for ratio in chosen]
    return sorted(set(arms), key=lambda arm: (ARM_KINDS.index(arm.kind), arm.ratio))


def synthetic_quota(ratio: float, real_count: int) -> int:
    """Synthetic images of one class: ratio x its real count, rounded half up."""
    return int(math.floor(ratio * real_count + 0.5))
