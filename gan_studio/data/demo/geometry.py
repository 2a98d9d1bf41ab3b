"""Signed-distance primitives, and the `Shape` that unites them into one part.

Why distances: a part is modelled once as a function and sphere-traced at any resolution, so threads,
holes and knurls stay sharp at every image size. Coordinates are float32 arrays; z points up and the
table is z = 0.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


def len2(a, b):
    return np.sqrt(a * a + b * b)


def len3(a, b, c):
    return np.sqrt(a * a + b * b + c * c)


def box2(x, y, hx, hy, rounding=0.0):
    qx = np.abs(x) - (hx - rounding)
    qy = np.abs(y) - (hy - rounding)
    outside = len2(np.maximum(qx, 0), np.maximum(qy, 0))
    return outside + np.minimum(np.maximum(qx, qy), 0) - rounding


def extrude(d2, z, half_height, rounding=0.0):
    """Turn a 2-D distance into a slab of `half_height` about z = 0, with rounded edges."""
    w1 = d2 + rounding
    w2 = np.abs(z) - (half_height - rounding)
    outside = len2(np.maximum(w1, 0), np.maximum(w2, 0))
    return outside + np.minimum(np.maximum(w1, w2), 0) - rounding


def box(x, y, z, hx, hy, hz, rounding=0.0):
    return extrude(box2(x, y, hx - rounding, hy - rounding), z, hz, rounding)


def cylinder(radial, axial, radius, half_length, rounding=0.0):
    """Capped cylinder from its radial distance and axial coordinate (any axis)."""
    return extrude(radial - radius, axial, half_length, rounding)


def hexagon(x, y, apothem):
    """Regular hexagon with flats at y = +-apothem (a lower bound of the distance: safe to trace)."""
    ax, ay = np.abs(x), np.abs(y)
    return np.maximum(ax * 0.8660254 + ay * 0.5, ay) - apothem


def triangle_wave(phase):
    """0 at integers, 1 half-way: the V profile of a thread or knurl."""
    return np.abs(phase - np.floor(phase) - 0.5) * 2.0


def thread(radial, axial, angle, radius, pitch, depth):
    """Distance to a helical V-thread of outer `radius` (flattened crests like a printed thread)."""
    phase = axial / pitch + angle * (1.0 / (2.0 * math.pi))
    profile = np.clip(1.25 * triangle_wave(phase) - 0.1, 0.0, 1.0)
    return radial - (radius - depth * (1.0 - profile))


def polar_repeat(x, y, count, radius):
    """Fold the plane into one of `count` sectors and move the sector centre (at `radius`) to 0."""
    angle = np.arctan2(y, x)
    sector = 2.0 * math.pi / count
    local = angle - sector * np.round(angle / sector)
    rho = len2(x, y)
    return rho * np.cos(local) - radius, rho * np.sin(local)


def subtract(a, b):
    return np.maximum(a, -b)


Distance = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Shape:
    """A part as a union of signed-distance components, each with its material (filament colour)."""

    components: tuple[tuple[Distance, int], ...]  # (distance function, material index)
    lo: tuple[float, float, float]  # axis-aligned bounds of the part
    hi: tuple[float, float, float]

    def distance(self, x, y, z):
        d = self.components[0][0](x, y, z)
        for fn, _ in self.components[1:]:
            d = np.minimum(d, fn(x, y, z))
        return d

    def material(self, x, y, z):
        if len(self.components) == 1:
            return np.zeros(x.shape, dtype=np.int64)
        distances = np.stack([fn(x, y, z) for fn, _ in self.components])
        materials = np.array([m for _, m in self.components])
        return materials[np.argmin(distances, axis=0)]

    @property
    def extent(self) -> float:
        return float(max(h - lo for lo, h in zip(self.lo, self.hi)))


def make_shape(*components, lo, hi, margin=0.05) -> Shape:
    """A Shape whose bounds are padded by `margin`: rays start tracing at the box, so it must hold it all."""
    return Shape(
        tuple(components), tuple(float(v) - margin for v in lo), tuple(float(v) + margin for v in hi)
    )
