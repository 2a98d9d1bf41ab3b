"""The study's arms: what each classifier trains on, what it is compared with, and what a budget keeps.

An arm is real images (with or without classic augmentation) plus, for the synthetic arms, a number
of synthetic images per real image of each class (``ratio``), a filter (``synthetic.FILTERS``) and a
way of using them (``use``):

    mix         one training set of real + synthetic images (the original study's method)
    weighted    the same set, each synthetic image's loss down-weighted (``weight``)
    share       a fixed share of every batch is synthetic, whatever the ratio (``share``)
    pretrain    train on the synthetic images alone, then fine-tune on the real images

Every synthetic arm is compared with its baseline (real, or real+classic), seed by seed; a lever
arm (filter, weighting, share, pre-training) is also compared with the plain arm it varies.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

from gan_studio.metrics.candidates import FILTERS

USES = ("mix", "weighted", "share", "pretrain")
DEFAULT_RATIOS = (0.2, 0.75, 1.25, 2.0)  # the original study's +20%, +75%, +125%, and +200%
LEVER_RATIO = 1.25
SHARE_POOL_RATIO = 2.0
FILTER_TAGS = {"none": "syn", "confidence": "syn_confident", "confidence+novelty": "syn_filtered"}


@dataclass(frozen=True)
class ArmSpec:
    classic: bool
    ratio: float = 0.0
    filter: str = "none"
    use: str = "mix"
    weight: float = 1.0  # use == "weighted": loss weight of a synthetic image
    share: float = 0.0  # use == "share": synthetic share of every batch
    priority: int = 9  # lower is kept first when a budget cuts arms

    def __post_init__(self) -> None:
        if self.filter not in FILTERS:
            raise ValueError(f"Unknown filter {self.filter!r}: use one of {', '.join(FILTERS)}")
        if self.use not in USES:
            raise ValueError(f"Unknown use {self.use!r}: use one of {', '.join(USES)}")
        if self.ratio < 0:
            raise ValueError(f"A synthetic ratio cannot be negative, got {self.ratio}")

    @property
    def synthetic(self) -> bool:
        return self.ratio > 0

    @property
    def base_name(self) -> str:
        return "real+classic" if self.classic else "real"

    @property
    def name(self) -> str:
        if not self.synthetic:
            return self.base_name
        tag = f"{self.base_name}+{FILTER_TAGS[self.filter]}"
        if self.use == "share":
            return f"{tag}:share{self.share:g}"
        name = f"{tag}@{self.ratio:g}"
        if self.use == "weighted":
            return f"{name}:weight{self.weight:g}"
        if self.use == "pretrain":
            return f"{name}:pretrain"
        return name

    @property
    def plain(self) -> ArmSpec | None:
        """The plain (mixed, confidence+novelty filtered) arm a lever arm varies, if any."""
        if not self.synthetic or (self.use == "mix" and self.filter != "confidence"):
            return None
        return ArmSpec(self.classic, self.ratio if self.use != "share" else LEVER_RATIO, "confidence+novelty")

    def comparisons(self) -> list[tuple[str, str]]:
        """(this arm, reference arm) pairs the report tests."""
        if not self.synthetic:
            return []
        pairs = [(self.name, self.base_name)]
        if self.plain is not None:
            pairs.append((self.name, self.plain.name))
        return pairs

    def to_dict(self) -> dict:
        return {"name": self.name, **asdict(self)}


def default_arms(ratios: Sequence[float] = DEFAULT_RATIOS) -> list[ArmSpec]:
    """Baselines; every ratio unfiltered and filtered, with and without classic augmentation; the levers.

    Priorities: the comparison the study exists for (real+classic+filtered synthetic against
    real+classic) first, then the same without classic augmentation, then unfiltered, other ratios
    and the levers.
    """
    lever = LEVER_RATIO if LEVER_RATIO in ratios else max(ratios)
    arms = [ArmSpec(True, priority=0), ArmSpec(False, priority=1)]
    for ratio in ratios:
        near = ratio == lever
        for classic in (True, False):
            arms.append(
                ArmSpec(classic, ratio, "confidence+novelty", priority=(0 if classic else 1) if near else 3)
            )
            arms.append(ArmSpec(classic, ratio, "none", priority=2 if near else 5))
    arms += [
        ArmSpec(True, lever, "confidence", priority=4),
        ArmSpec(True, lever, "confidence+novelty", "pretrain", priority=4),
        ArmSpec(True, lever, "confidence+novelty", "weighted", weight=0.5, priority=4),
        ArmSpec(True, SHARE_POOL_RATIO, "confidence+novelty", "share", share=0.25, priority=4),
        ArmSpec(False, lever, "confidence+novelty", "pretrain", priority=6),
    ]
    return arms


def select_arms(arms: Sequence[ArmSpec], names: str | Iterable[str]) -> list[ArmSpec]:
    """``names``: 'all', or comma-separated arm names (each synthetic arm brings its references along)."""
    if isinstance(names, str):
        if names.strip() == "all":
            return list(arms)
        names = [n.strip() for n in names.split(",") if n.strip()]
    by_name = {arm.name: arm for arm in arms}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise ValueError(f"Unknown arm(s) {', '.join(unknown)}. Arms of this study: {', '.join(by_name)}")
    chosen = {n for n in names}
    for n in list(chosen):
        chosen |= {ref for _, ref in by_name[n].comparisons()}
    return [arm for arm in arms if arm.name in chosen]


@dataclass
class Plan:
    kept: list[ArmSpec]
    cut: list[ArmSpec]
    estimate_s: float  # estimated seconds for the kept (arm, seed) pairs still to train
    seconds_per_fit: float

    def describe(self) -> list[str]:
        lines = [
            f"{len(self.kept)} arms planned, about {self.estimate_s / 3600:.1f} h of classifier training left"
        ]
        if self.cut:
            lines.append("cut to fit the budget: " + ", ".join(arm.name for arm in self.cut))
        return lines


def plan_arms(
    arms: Sequence[ArmSpec],
    seeds: int,
    *,
    seconds_per_fit: float,
    done: set[tuple[str, int]],
    budget_s: float | None,
) -> Plan:
    """Keep arms in priority order while all their seeds fit the budget; an arm is kept whole or cut.

    An arm is only kept with the references it is compared with, and a baseline only with an arm
    compared with it (a baseline alone answers nothing), so the first group kept, whatever the
    budget, is the study's key comparison. Pre-training arms cost two fits.
    """
    started = {name for name, _ in done}
    order = sorted(arms, key=lambda arm: (arm.name not in started, arm.priority))  # never drop half an arm
    kept: list[ArmSpec] = []
    total = 0.0
    by_name = {arm.name: arm for arm in arms}
    has_synthetic = any(arm.synthetic for arm in arms)

    def anchored() -> bool:  # the key comparison (or, in a study of baselines only, one arm) is in
        return any(a.synthetic for a in kept) if has_synthetic else bool(kept)

    referenced = {
        ref for arm in arms for _, ref in arm.comparisons() if ref in by_name and not by_name[ref].synthetic
    }

    def cost(arm: ArmSpec) -> float:
        todo = sum(1 for s in range(seeds) if (arm.name, s) not in done)
        return todo * seconds_per_fit * (2 if arm.use == "pretrain" else 1)

    for arm in order:
        if arm in kept or (arm.name in referenced and arm.name not in started):
            continue  # a baseline comes with the first arm compared with it
        group = [arm] + [
            by_name[ref] for _, ref in arm.comparisons() if by_name.get(ref) and by_name[ref] not in kept
        ]
        group = list(dict.fromkeys(group))
        extra = sum(cost(a) for a in group)
        if budget_s is not None and total + extra > budget_s and anchored():
            continue
        kept += [a for a in group if a not in kept]
        total += extra
    kept_names = {a.name for a in kept}
    kept = [a for a in arms if a.name in kept_names]  # report order, not priority order
    cut = [a for a in arms if a.name not in kept_names]
    return Plan(kept, cut, total, seconds_per_fit)
