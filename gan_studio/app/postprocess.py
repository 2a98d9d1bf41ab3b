"""Post-processing filters for generated images: denoise, sharpen, contrast.

The original study planned cleaning up GAN outputs before they join a training set (GAN samples
often carry high-frequency checkerboard noise). Each filter is a small pure function of one RGB
image and its strength, so a chain of them is reproducible and can be recorded in an export's
manifest (``describe``) and re-applied later.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter


@dataclass(frozen=True)
class FilterSpec:
    name: str
    strength: float

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "strength": self.strength,
            "params": FILTERS[self.name].params(self.strength),
        }


@dataclass(frozen=True)
class _Filter:
    label: str
    default: float
    minimum: float
    maximum: float
    params: Callable[[float], dict]
    apply: Callable[[Image.Image, dict], Image.Image]


def _median(image: Image.Image, p: dict) -> Image.Image:
    return image.filter(ImageFilter.MedianFilter(p["size"]))


def _bilateral(image: Image.Image, p: dict) -> Image.Image:
    import cv2  # opencv-python-headless; imported here so the rest works without it

    out = cv2.bilateralFilter(
        np.asarray(image), d=p["diameter"], sigmaColor=p["sigma_color"], sigmaSpace=p["sigma_space"]
    )
    return Image.fromarray(out)


def _unsharp(image: Image.Image, p: dict) -> Image.Image:
    return image.filter(
        ImageFilter.UnsharpMask(radius=p["radius"], percent=p["percent"], threshold=p["threshold"])
    )


def _contrast(image: Image.Image, p: dict) -> Image.Image:
    return ImageEnhance.Contrast(image).enhance(p["factor"])


FILTERS: dict[str, _Filter] = {
    "median": _Filter(
        "Median denoise (window)", 3, 3, 7, lambda s: {"size": int(s) | 1}, _median
    ),  # odd windows only
    "bilateral": _Filter(
        "Bilateral denoise (sigma)",
        40,
        5,
        150,
        lambda s: {"diameter": 5, "sigma_color": float(s), "sigma_space": float(s)},
        _bilateral,
    ),
    "unsharp": _Filter(
        "Unsharp mask (percent)",
        80,
        10,
        300,
        lambda s: {"radius": 1.5, "percent": int(s), "threshold": 2},
        _unsharp,
    ),
    "contrast": _Filter("Contrast (factor)", 1.2, 0.5, 2.0, lambda s: {"factor": float(s)}, _contrast),
}
FILTER_ORDER = tuple(FILTERS)  # denoise before sharpening, contrast last


def build_chain(enabled: Sequence[str], strengths: dict[str, float] | None = None) -> list[FilterSpec]:
    """Filters in the fixed order (denoise, sharpen, contrast), whatever order they were ticked in."""
    unknown = [name for name in enabled if name not in FILTERS]
    if unknown:
        raise ValueError(f"Unknown filter(s) {', '.join(unknown)}; choose from {', '.join(FILTERS)}.")
    strengths = strengths or {}
    chain = []
    for name in FILTER_ORDER:
        if name in enabled:
            spec = FILTERS[name]
            strength = float(strengths.get(name, spec.default))
            if not spec.minimum <= strength <= spec.maximum:
                raise ValueError(
                    f"{spec.label} must be between {spec.minimum} and {spec.maximum}, got {strength}."
                )
            chain.append(FilterSpec(name, strength))
    return chain


def apply_chain(image: Image.Image, chain: Sequence[FilterSpec]) -> Image.Image:
    image = image.convert("RGB")
    for spec in chain:
        image = FILTERS[spec.name].apply(image, FILTERS[spec.name].params(spec.strength))
    return image


def describe(chain: Sequence[FilterSpec]) -> list[dict]:
    """The chain as plain data, for manifests."""
    return [spec.to_dict() for spec in chain]
