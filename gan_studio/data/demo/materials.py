"""Light and surfaces: a desk lamp, the filament colours of printed plastic, and a wooden table top.

Every class draws its plastic colour from the same palette, so colour never gives the class away and
only shape tells the parts apart.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# Filament colours (sRGB) shared by every class: colour must never give the class away.
PLASTIC_PALETTE = (
    (30, 82, 172),  # royal blue
    (46, 116, 200),  # azure
    (74, 130, 186),  # steel blue
    (108, 160, 214),  # light blue
    (26, 56, 124),  # cobalt
    (24, 32, 70),  # navy
    (32, 44, 94),  # dark navy
    (26, 26, 29),  # black
    (48, 49, 53),  # charcoal
    (96, 99, 104),  # dark grey
    (142, 144, 148),  # grey
    (190, 192, 194),  # light grey
)
# Table woods (sRGB): (early wood, late wood). Each image blends two species for variety.
WOODS = (
    ((206, 160, 108), (158, 108, 62)),  # light oak
    ((222, 186, 134), (184, 138, 86)),  # pine / birch
    ((168, 108, 70), (118, 70, 40)),  # cherry
    ((126, 86, 58), (74, 48, 30)),  # walnut
)


@dataclass(frozen=True)
class Lighting:
    """A desk lamp (directional, with a soft shadow edge) plus the room's ambient light."""

    direction: np.ndarray  # unit vector towards the lamp
    lamp: np.ndarray  # lamp irradiance on a surface facing it (linear RGB)
    sky: np.ndarray  # ambient light from the room (linear RGB)
    sharpness: float  # soft-shadow parameter: larger means a smaller lamp and crisper shadows


def random_lighting(rng: np.random.Generator) -> Lighting:
    heading, elevation = rng.uniform(0, 2 * math.pi), math.radians(rng.uniform(30, 65))
    direction = np.array(
        [
            math.cos(elevation) * math.cos(heading),
            math.cos(elevation) * math.sin(heading),
            math.sin(elevation),
        ],
        dtype=np.float32,
    )
    warmth = rng.uniform(-1, 1)
    tint = np.array([1.0 + 0.06 * warmth, 1.0, 1.0 - 0.1 * warmth], dtype=np.float32)
    ambient = rng.uniform(0.22, 0.38)
    lamp = (rng.uniform(0.9, 1.15) - ambient) / direction[2]  # the table receives ~1 in total
    sky = ambient * np.array([0.92, 0.96, 1.05], dtype=np.float32)
    return Lighting(direction, lamp * tint, sky, rng.uniform(4.0, 10.0))


def srgb_to_linear(rgb) -> np.ndarray:
    return (np.asarray(rgb, dtype=np.float32) / 255.0) ** 2.2


def plastic_colours(rng: np.random.Generator) -> np.ndarray:
    """Linear RGB of a part's two materials: two filaments from the shared palette, each slightly off."""
    colours = rng.choice(len(PLASTIC_PALETTE), size=2)
    palette = np.stack([srgb_to_linear(PLASTIC_PALETTE[c]) for c in colours])
    palette *= (1.0 + rng.normal(0, 0.05, size=(2, 3))).astype(np.float32)
    return palette


def _value_noise(rng: np.random.Generator, grid_shape: tuple[int, int], u, v) -> np.ndarray:
    """Smooth random field: a random grid, smoothstep-interpolated at float grid coordinates (wraps)."""
    rows, cols = grid_shape
    grid = rng.standard_normal(rows * cols).astype(np.float32)
    u0, v0 = np.floor(u), np.floor(v)
    fu, fv = u - u0, v - v0
    fu, fv = fu * fu * (3 - 2 * fu), fv * fv * (3 - 2 * fv)
    i0, j0 = u0.astype(np.int32) % rows, v0.astype(np.int32) % cols
    i1, j1 = (i0 + 1) % rows * cols, (j0 + 1) % cols
    i0 *= cols
    g00, g01, g10, g11 = grid[i0 + j0], grid[i0 + j1], grid[i1 + j0], grid[i1 + j1]
    near = g00 + (g01 - g00) * fv
    return near + (g10 + (g11 - g10) * fv - near) * fu


def wood_albedo(rng: np.random.Generator, gx: np.ndarray, gy: np.ndarray, scale: float) -> np.ndarray:
    """Linear-RGB albedo of a table top at ground points: growth rings, fibres, knots, plank seams.

    The rings are where cylinders around a trunk axis (slightly tilted to the board) cut the surface,
    which gives straight grain and cathedral arches; noise warps them like a real log.
    """
    first, second = rng.choice(len(WOODS), size=2)
    mix = np.float32(rng.uniform(0, 1) ** 2)
    early = (1 - mix) * srgb_to_linear(WOODS[first][0]) + mix * srgb_to_linear(WOODS[second][0])
    late = (1 - mix) * srgb_to_linear(WOODS[first][1]) + mix * srgb_to_linear(WOODS[second][1])

    angle = rng.uniform(0, math.pi)
    along = (gx * math.cos(angle) + gy * math.sin(angle)) / scale
    across = (-gx * math.sin(angle) + gy * math.cos(angle)) / scale

    seam = rng.uniform(-0.7, 0.7) if rng.random() < 0.3 else None
    plank = np.zeros(along.shape, np.int64) if seam is None else (across > seam).astype(np.int64)
    offset = rng.uniform(-2.0, 2.0, size=2).astype(np.float32)[plank]
    depth = rng.uniform(0.3, 1.5, size=2).astype(np.float32)[plank]
    slope = rng.uniform(-0.25, 0.25, size=2).astype(np.float32)[plank]
    tone = (1.0 + rng.normal(0, 0.07, size=2)).astype(np.float32)[plank]
    spacing = rng.uniform(0.07, 0.16)

    warp = 0.25 * _value_noise(rng, (16, 16), along * 0.5, across * 1.5)
    warp += 0.05 * _value_noise(rng, (32, 64), along * 1.5, across * 6.0)
    radius = np.sqrt((across - offset + warp * 0.3) ** 2 + (depth + slope * along) ** 2) + warp * spacing
    knot_dark = np.zeros(along.shape, dtype=np.float32)
    for _ in range(int(rng.choice([0, 0, 0, 1, 1, 2]))):
        ka, kc, size = rng.uniform(-1.5, 1.5), rng.uniform(-1.0, 1.0), rng.uniform(0.03, 0.09)
        dist2 = ((along - ka) * 0.4) ** 2 + (across - kc) ** 2
        radius += size * 2.0 * np.exp(-dist2 / (size * 5) ** 2)
        knot_dark = np.maximum(knot_dark, np.exp(-dist2 / size**2))
    phase = radius / spacing
    ring = phase - np.floor(phase)
    latewood = np.clip((ring - 0.6) / 0.4, 0, 1) ** 2  # a darker band closes each growth ring
    fibres = _value_noise(rng, (16, 256), along * 3.0, across * 90.0)
    pores = _value_noise(rng, (64, 512), along * 20.0, across * 220.0)
    blotches = _value_noise(rng, (8, 8), gx / scale * 0.8, gy / scale * 0.8)

    amount = 0.25 + 0.4 * latewood + 0.07 * fibres + 0.04 * pores + 0.7 * knot_dark
    if seam is not None:
        amount += 0.8 * np.exp(-(((across - seam) / 0.01) ** 2))
    amount = np.clip(amount, 0, 1.3)[:, None]
    albedo = early * (1 - amount) + late * amount
    albedo *= (tone * (1.0 + 0.05 * blotches))[:, None]
    return np.clip(albedo, 0, 1).astype(np.float32)
